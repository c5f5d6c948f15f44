"""Speed and memory of the SDNN (Kheradpisheh et al. 2018) on the Caltech network, as JSON.

The paper's network (250×160 ON-centre input, conv1 4@5×5, pool1, conv2 20@17×17, pool2, conv3 20@5×5;
about 24 M synapses) is built once on cpp and re-run with chunks of ``--chunk`` images. Measured:

* forward pass (feature extraction: all layers, conv3 without threshold): seconds per image;
* STDP iteration of each layer (one learning image: forward up to that layer, winner selection, STDP):
  seconds per image;
* a learning stage of ``--learn-images`` images per layer (the schedule of ``recollection.features``);
* build time, start-up of one binary run (a run with one chunk of blank images), peak RSS of this process
  and of the largest child process (the simulation binary is started from a fork of this process, so the
  child value is the larger of the binary's peak and this process's size at the fork: an upper bound for the
  binary).

Per image, three numbers: ``s_per_image`` = wall time of the whole run (binary start-up included) divided
by the images of the chunk; ``network_s_per_image`` = the binary's own timing of its network loop (start-up
excluded: Brian2's last_run_info) per image; ``cpu_s_per_image`` = CPU time of the binary minus that of a
run on blank images, per image (less sensitive to other load on a shared machine). The load average at the
start and end is recorded.

Work per second (``work``): a second network with spike recording runs the first ``--work-images`` images
of the chunk forward (same kernels and thresholds) and counts the synaptic events the forward pass
executes (every spike of a layer times the number of synapses it drives: conv, pooling and lateral
inhibition); ``events_per_s`` divides them by the forward ``network_s_per_image``.  Beside it, the
multiply-adds a dense, time-stepped implementation does for the same forward pass (every conv layer's
full convolution at each of the forward steps, as dense libraries compute it) per second of the same
run, and both as fractions of the numpy float64 GEMM multiply-adds/s measured at the start
(``benchmarks/_machine.py``). The reference is the numba CPU port of the public implementation (0.065 s per
image forward, 0.07 s per STDP iteration on this machine kind); the ratios use ``network_s_per_image``.

    python benchmarks/bench_sdnn.py [--chunk 50] [--learn-images 100] [--backend cpp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import fraction_of_peak, machine_end, machine_start  # noqa: E402

REFERENCE = {"forward_s_per_image": 0.065, "stdp_s_per_iteration": 0.07,
             "source": "numba CPU port of the public implementation, same machine kind"}


def _images(n: int, p, seed: int = 1):
    """Caltech learning images when the data are present, else smoothed random textures."""
    try:
        from b2models.data.loaders import load_caltech

        images, _, _ = load_caltech("learning", size=(p.width, p.height))
        rng = np.random.default_rng(seed)
        return images[rng.choice(len(images), n, replace=len(images) < n)], "caltech learning set"
    except Exception:  # no data: synthetic input of the same size
        from scipy.ndimage import gaussian_filter

        rng = np.random.default_rng(seed)
        imgs = np.stack([gaussian_filter(rng.random((p.height, p.width)), 2) for _ in range(n)])
        imgs = (imgs - imgs.min()) / (imgs.max() - imgs.min())
        return imgs, "synthetic smoothed noise"


#: targets: forward and STDP iteration per image, whole run (start-up included), at the protocol's chunk size;
#: the peer's figures (SpykeTorch, dense float32 on this machine kind; measured earlier, not in this run)
TARGET_S_PER_IMAGE = 0.025
PEER_S_PER_IMAGE = {"1_thread": 0.067, "2_threads": 0.046}


def distance_to_target(result: dict, chunk: int) -> dict:
    """How far the whole-run times are from the target and the peer, and where the whole-run time goes."""
    fwd = result["forward"]
    stdp = {k: v["s_per_image"] for k, v in result["stdp"].items()}
    # start-up outside the network loop, from the run over blank images (its loop time is excluded)
    start = (result["startup"]["wall_s"] - (result["startup"].get("network_loop_s") or 0.0)) / chunk
    out = {
        "target_s_per_image_whole_run": TARGET_S_PER_IMAGE,
        "forward_s_per_image_whole_run": fwd["s_per_image"],
        "forward_over_target": round(fwd["s_per_image"] / TARGET_S_PER_IMAGE, 3),
        "slowest_stdp_s_per_image_whole_run": max(stdp.values()),
        "slowest_stdp_over_target": round(max(stdp.values()) / TARGET_S_PER_IMAGE, 3),
        "met": bool(fwd["s_per_image"] <= TARGET_S_PER_IMAGE and max(stdp.values()) <= TARGET_S_PER_IMAGE),
        "peer_s_per_image_quoted": PEER_S_PER_IMAGE,
        "forward_speedup_vs_peer": {k: round(v / fwd["s_per_image"], 2) for k, v in PEER_S_PER_IMAGE.items()},
        "forward_split_s_per_image": {
            "network_loop": fwd.get("network_s_per_image"),
            "startup_outside_loop_blank_run": round(start, 4),
            "note": "the two parts come from different runs (the forward chunk, and a chunk of blank images), so "
                    "they need not add up to the whole-run time",
        },
    }
    out["why"] = (f"whole run {fwd['s_per_image']:.4f} s per image at chunk {chunk}: the binary's network loop "
                  f"{fwd.get('network_s_per_image', float('nan')):.4f} s (every step of every neuron group and "
                  f"conv pathway, {result['steps_per_image']} steps per image), start-up "
                  f"{start * chunk:.1f} s per run outside the loop = {start:.4f} s per image (loading "
                  f"{result['n_synapses']:,} synapses, writing inputs, reading results)")
    return out


def _timed(net, *args, **kw):
    """run_chunk plus the binary's network-loop time and the CPU time of child processes."""
    import brian2

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = net.run_chunk(*args, **kw)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    loop = getattr(brian2.get_device(), "_last_run_time", None)
    return res, cpu, loop


def _per_image(res, cpu, loop, blank_cpu, n):
    out = {"s_per_image": round(res.wall_s / n, 4), "cpu_s_per_image": round(max(cpu - blank_cpu, 0.0) / n, 4)}
    if loop is not None:
        out["network_s_per_image"] = round(loop / n, 4)
    return out


def conv_out_degree(in_shape, maps: int, size: int) -> np.ndarray:
    """Synapses driven by each input unit (C, H, W) of a 'same' conv layer (stride 1, padding size//2)."""
    C, H, W = in_shape
    r = size // 2

    def reach(n):
        i = np.arange(n)
        return np.minimum(i + r, n - 1) - np.maximum(i - r, 0) + 1

    return np.broadcast_to(maps * reach(H)[:, None] * reach(W)[None, :], (C, H, W)).ravel()


def forward_work(net, rec) -> dict:
    """Synaptic events per image of a recorded forward pass, and the dense multiply-adds of the same pass."""
    from b2models.models.sdnn import ConvSpec, pool_connectivity

    n = rec["input_ts"].shape[0]
    events = np.zeros(n)
    by_layer = {}
    dense = 0.0
    in_ts = rec["input_ts"]
    shape = net.in_shape
    for li, spec in enumerate(net.layers):
        fired = in_ts < 1e8  # (n, units of the layer's input): spikes of the previous layer
        if isinstance(spec, ConvSpec):
            deg = conv_out_degree(shape, spec.maps, spec.size)
            M, H, W = net.shapes[li + 1]
            dense += float(M * H * W * shape[0] * spec.size ** 2 * net.t_fwd)
        else:
            pre, _ = pool_connectivity(shape, spec)
            deg = np.bincount(pre, minlength=int(np.prod(shape)))
        e = fired.astype(float) @ deg
        out_ts = rec[f"ts{li}"]
        M = net.shapes[li + 1][0]
        if getattr(spec, "inhibition", False) and M > 1:  # lateral inhibition: every spike reaches M - 1 units
            e = e + (out_ts < 1e8).sum(axis=1) * (M - 1)
        by_layer[f"L{li + 1}_{type(spec).__name__}"] = float(e.mean())
        events += e
        in_ts, shape = out_ts, net.shapes[li + 1]
    return {"events_per_image": float(events.mean()), "events_per_image_by_layer": by_layer,
            "dense_multiply_adds_per_image": dense, "images": int(n)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=int, default=50, help="images per binary run")
    ap.add_argument("--learn-images", type=int, default=100, help="learning images per layer for the stage timing")
    ap.add_argument("--backend", default="cpp", choices=["cpp", "cuda", "cython"])
    ap.add_argument("--work-images", type=int, default=10, help="images of the recorded run that counts events "
                    "(0: no work count)")
    ap.add_argument("--out", default="benchmarks/results/sdnn.json")
    args = ap.parse_args(argv)
    if args.chunk < 1 or args.learn_images < 0 or args.work_images < 0:
        ap.error("--chunk must be >= 1, --learn-images and --work-images >= 0")

    import brian2

    from b2models.models.sdnn import SDNNParams, encode_batch
    from b2models.protocols.recollection_features import learn_kernels, open_network

    p = SDNNParams()
    machine = machine_start()
    images, source = _images(args.chunk, p)
    t0 = time.perf_counter()
    spikes = encode_batch(images, p.retina())
    encode_s = (time.perf_counter() - t0) / len(images)
    result = {
        "benchmark": "SDNN Caltech network (Kheradpisheh et al. 2018), ON-centre input",
        "machine": {"python": platform.python_version(), "brian2": brian2.__version__,
                    "processor": platform.processor() or platform.machine()},
        "backend": args.backend, "chunk": args.chunk, "images": source,
        "encode_s_per_image": round(encode_s, 4),
        "reference": REFERENCE,
    }
    t0 = time.perf_counter()
    with open_network(p, args.backend, chunk=args.chunk) as (s, net):
        result["build_s"] = round(time.perf_counter() - t0, 1)
        result["n_synapses"] = int(sum(c["n_synapses"] for c in net.conv))
        result["steps_per_image"] = net.n_img
        kernels = net.initial_kernels(p.w_mean, p.w_std, 1)
        result["load_average_start"] = os.getloadavg()[0]
        # start-up: a run of blank images (nothing propagates)
        blank, blank_cpu, blank_loop = _timed(net, -np.ones((1, net.n_in)), kernels)
        result["startup"] = {"wall_s": round(blank.wall_s, 3), "cpu_s": round(blank_cpu, 3),
                             "network_loop_s": blank_loop}
        readout = [None, p.readout_conv2_threshold, 1e30]
        res, cpu, loop = _timed(net, spikes.astype(float), kernels, thresholds=readout)
        result["forward"] = _per_image(res, cpu, loop, blank_cpu, args.chunk)
        result["stdp"] = {}
        for c in range(3):
            a = p.a_plus(c, 0)
            res, cpu, loop = _timed(net, spikes.astype(float), kernels, learn=c, a_plus=a,
                                    a_minus=p.a_minus_ratio * a, last_layer=net.conv[c]["layer"])
            result["stdp"][f"conv{c + 1}"] = _per_image(res, cpu, loop, blank_cpu, args.chunk)
            result["stdp"][f"conv{c + 1}"]["mean_winners"] = float(res.n_winners[:, c].mean())
        if args.learn_images:
            n = args.learn_images
            pl = SDNNParams(learn_images1=n, learn_images2=n, learn_images3=n, a_plus_double_every=max(1, n // 6))
            learn_set = encode_batch(_images(min(n, 200), p, seed=2)[0], p.retina())
            t0 = time.perf_counter()
            learn_kernels(net, pl, learn_set, seed=1)
            stage = time.perf_counter() - t0
            result["learning_stage"] = {"images_per_layer": n, "wall_s": round(stage, 1),
                                        "s_per_iteration": round(stage / (3 * n), 4),
                                        "full_schedule_estimate_s": round(stage / (3 * n) * sum(p.learn_images()))}
    if args.work_images:
        from b2models.backend import Session
        from b2models.models.sdnn import SpikingConvNet

        n = min(args.work_images, args.chunk)
        with Session(args.backend, "bench_sdnn_record", key=("record", n)) as s:
            rnet = SpikingConvNet(p.in_shape(), p.layers(), p.n_steps, n, s, record=True, name="sdnn")
            rres = rnet.run_chunk(spikes[:n].astype(float), kernels, thresholds=readout)
        work = forward_work(rnet, rres.record)
        fwd_s = result["forward"].get("network_s_per_image", result["forward"]["s_per_image"])
        work["events_per_s"] = work["events_per_image"] / fwd_s
        work["dense_equivalent_multiply_adds_per_s"] = work["dense_multiply_adds_per_image"] / fwd_s
        work["events_fraction_of_gemm_peak"] = fraction_of_peak(work["events_per_s"], machine["gemm"])
        work["dense_equivalent_fraction_of_gemm_peak"] = fraction_of_peak(
            work["dense_equivalent_multiply_adds_per_s"], machine["gemm"])
        work["note"] = ("kernels: the initial kernels (mean 0.8) of the timing runs; events per s use the "
                        "forward network_s_per_image of this run (cpp, one thread)")
        result["work"] = work
    result["machine_limit"] = machine_end(machine)
    result["load_average_end"] = os.getloadavg()[0]
    key = "network_s_per_image" if "network_s_per_image" in result["forward"] else "s_per_image"
    fwd = result["forward"][key]
    stdp = max(v[key] for v in result["stdp"].values())
    result["ratio_forward_vs_reference"] = round(fwd / REFERENCE["forward_s_per_image"], 3)
    result["ratio_slowest_stdp_vs_reference"] = round(stdp / REFERENCE["stdp_s_per_iteration"], 3)
    result["command"] = "python benchmarks/bench_sdnn.py " + " ".join(sys.argv[1:])
    result["distance_to_target"] = distance_to_target(result, args.chunk)
    result["peak_rss_mb"] = {
        "python": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "largest_child_process": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
