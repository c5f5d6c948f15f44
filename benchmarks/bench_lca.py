"""LCA inference and training speed (JSON on stdout and in benchmarks/results/bench_lca.json).

    .venv/bin/python benchmarks/bench_lca.py [--backends cpp] [--what engines conv_engines] [--threads 0 2] [--quick]

Engines (``LCAParams.engine`` / ``ConvLCAParams.engine``, :func:`models.lca.resolve_engine`): ``synapses``
(Brian2 summed variables over the dictionary synapses) and ``kernel`` (one compiled function per layer and
step; only the active atoms add Φa).  Every run starts with the machine's limit measured in the same process
(``benchmarks/_machine.py``: numpy GEMM 1024³, float32 and float64, 1 and 2 BLAS threads) and the load
average; work is counted in multiply-adds (MACs) and set beside the GEMM's.

* ``engines`` (``hierarchy_engines`` in the JSON): the ``multimodal.train`` hierarchy at its defaults (V
  128-128-128 on 32×32 faces, T 128-128 on 64×8 names, P1 ``--p-atoms``, 100 iterations, feedback on,
  learning on, one protocol chunk of 50 presentations per binary run), dictionaries drawn from the presented
  inputs (:func:`models.lca.greedy_data_init`, so that activity is like the protocol's): presentations per
  second of wall time (median of ``--repeat`` runs, build excluded) and per CPU second, per engine and OpenMP
  threads (``--threads``, 0 = no OpenMP; the synapses engine at the first value only), both engines in the
  same run; MACs per step: Σ_layers N·M (ΦᵀE, both engines) + N·M (Φa, synapses engine) or N·(active
  atoms) (kernel engine, from the codes at the last step of every presentation, an estimate); the key gets
  ``_p{P1}`` with ``--p-atoms`` and ``_{tag}`` with ``--tag`` (also for ``conv_engines``);
* ``conv_engines`` (``conv_reference_engines``): the reference convolutional layer, 64 kernels 7×7 stride
  2 on 64×64×3 padded by 3 (code 64×32×32), 400 iterations, λ = 0.1, random unit-norm kernels, natural colour
  images (scikit-image, zero mean per channel, pixel s.d. 0.1), frozen kernels: images/s (median of
  ``--repeat``) per engine and threads; MACs per step: M·Ho·Wo·C·K² (Φᵀ E) + C·K²·(active units) (Φ*a,
  from the final active fraction, an estimate); the largest code difference from the numpy reference
  (:func:`models.lca_conv.conv_lca_reference`) for the first image;
* the earlier measurements (``--what hierarchy hierarchy_conv direct conv conv_forms``; their last results,
  taken before the kernel engine existed, are in benchmarks/results/lca.json): ``hierarchy`` (random
  dictionaries, frozen, engine 'auto'), ``hierarchy_conv_v1`` (the same with ``--set vision=conv``),
  ``v1_direct_vs_residual`` (direct ΦᵀΦ inhibition against the residual population), ``conv_reference``
  (engine 'auto') and ``conv_forms_small`` (residual synapse layouts against the Gram form, synapses engine).

Reference figure for the conv configuration (not measured by this script): the PyTorch library lca-pytorch
(dense float32 convolutions) was reported, measured side by side on this machine kind, to code the
reference configuration at 0.43 images/s on one thread and 0.74–0.82 images/s on two.

``--what`` picks the measurements; results are merged into the existing JSON file (entries of other
measurements are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _best(fn, repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls (the machine is shared: the minimum is the least disturbed)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _hierarchy(backend: str, quick: bool, repeat: int, vision: str = "dense") -> dict:
    from b2models.backend import Session
    from b2models.models.lca import LCAHierarchy
    from b2models.protocols.multimodal_train import MultimodalParams, quick_params

    p = MultimodalParams(vision=vision)
    if quick:
        p = quick_params(p)
    n_pres = p.chunk  # one chunk of the protocol
    dims = {"face": p.face_size**2, "name": (128 // p.name_pool) * (16 // p.name_pool)}
    rng = np.random.default_rng(0)
    x = {k: rng.standard_normal((n_pres, d)) / np.sqrt(d) for k, d in dims.items()}
    lp = p.lca_params()
    with Session(backend, f"bench_lca_hierarchy_{vision}", key=(n_pres, quick, p.n_iter)) as s:
        t0 = time.perf_counter()
        net = LCAHierarchy(lp, p.layers(), dims, n_pres, s, record_u=False)
        build = time.perf_counter() - t0
        net.run(x)  # warm-up (loads the binary's files)
        wall = _best(lambda: net.run(x), repeat)
    return {"build_s": build, "run_wall_s": wall, "images_per_s": n_pres / wall, "n_pres": n_pres,
            "n_iter": p.n_iter, "steps_per_s": n_pres * p.n_iter / wall,
            "layers": {L.name: L.n_atoms for L in p.layers()}, "code_units": {L.name: L.size for L in p.layers()},
            "vision": vision, "input_dims": dims}


def _median_runs(fn, repeat: int) -> tuple[float, list[float], list[float], float]:
    """Median wall time of ``repeat`` calls, all wall times, the load average after each, and the median CPU
    time (this process and the standalone binary: all threads, so it grows with idle-spinning threads)."""
    times, loads, cpus = [], [], []
    for _ in range(repeat):
        c0 = _cpu_s()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(_cpu_s() - c0)
        loads.append(round(os.getloadavg()[0], 2))
    return float(np.median(times)), times, loads, float(np.median(cpus))


def _settings(engine: str, threads: list, backend: str) -> list:
    """OpenMP settings measured for ``engine``: every ``--threads`` value for the kernel engine, the first one
    for the synapses engine (the state before the kernel engine; OpenMP does not help it on 2 shared cores)."""
    if backend != "cpp":
        return [0]
    return list(threads) if engine == "kernel" else list(threads[:1])


def _hierarchy_engines(backend: str, quick: bool, repeat: int, threads: list, p_atoms: int | None,
                       engines=("synapses", "kernel")) -> dict:
    """The default multimodal hierarchy, learning on, both engines, each OpenMP setting: presentations/s, MACs/s."""
    import dataclasses

    from b2models.backend import Session
    from b2models.models.lca import LCAHierarchy, greedy_data_init
    from b2models.protocols.multimodal_train import MultimodalParams, quick_params

    p = MultimodalParams() if p_atoms is None else MultimodalParams(p_atoms=p_atoms)
    if quick:
        p = quick_params(p)
    n_pres, layers = p.chunk, p.layers()
    dims = {"face": p.face_size**2, "name": (128 // p.name_pool) * (16 // p.name_pool)}
    rng = np.random.default_rng(0)
    x = {k: rng.standard_normal((n_pres, d)) / np.sqrt(d) for k, d in dims.items()}
    phi0 = greedy_data_init(layers, x, p.n_iter, float(p.dt / p.tau), np.random.default_rng(1))
    out = {"n_pres_per_run": n_pres, "n_iter": p.n_iter, "learning": True, "feedback": p.feedback,
           "layers": {L.name: L.n_atoms for L in layers}, "input_dims": dims, "runs": []}
    codes = {}
    for engine in engines:
        for th in _settings(engine, threads, backend):
            lp = dataclasses.replace(p.lca_params(), engine=engine)
            with Session(backend, f"bench_lca_hier_{engine}_t{th}", key=(n_pres, quick, p.n_iter, p.p_atoms, th),
                         threads=th) as s:
                t0 = time.perf_counter()
                net = LCAHierarchy(lp, layers, dims, n_pres, s, record_u=False)
                build = time.perf_counter() - t0
                net.phi.update({k: v.copy() for k, v in phi0.items()})
                first = net.run(x, learn=True, seed=1)  # warm-up; the codes of the first run are compared
                wall, walls, loads, cpu = _median_runs(lambda: net.run(x, learn=True, seed=1), repeat)
            n_in = net.n_in
            active = {L.name: float(np.mean(first[L.name]["a"] > 0)) for L in layers}
            drive = sum(n_in[L.name] * L.n_atoms for L in layers)
            recon = sum(n_in[L.name] * L.n_atoms * (active[L.name] if engine == "kernel" else 1.0) for L in layers)
            steps_per_s = n_pres * p.n_iter / wall
            codes[(engine, th)] = first
            out["runs"].append({"engine": engine, "openmp_threads": th, "build_s": build, "run_wall_s_median": wall,
                                "run_wall_s_all": walls, "load_1min_after_each": loads,
                                "presentations_per_s": n_pres / wall, "run_cpu_s_median": cpu,
                                "presentations_per_cpu_s": n_pres / cpu, "active_fraction_last_step": active,
                                "macs_per_step": drive + recon, "macs_per_step_dense": 2 * drive,
                                "macs_per_s": (drive + recon) * steps_per_s})
    ref = next(iter(codes.values()))
    out["max_code_difference_vs_first_setting"] = {
        f"{e}_t{t}": float(max(np.abs(c[L]["a"] - ref[L]["a"]).max() for L in c)) for (e, t), c in codes.items()}
    base = out["runs"][0]["presentations_per_s"]
    for r in out["runs"]:
        r["speed_over_first_setting"] = r["presentations_per_s"] / base
    return out


def _conv_engines(backend: str, n_pres: int, quick: bool, repeat: int, threads: list,
                  engines=("synapses", "kernel")) -> dict:
    """The reference conv layer, frozen kernels, both engines, each OpenMP setting: images/s, MACs/s."""
    from b2models.backend import Session
    from b2models.models.lca_conv import ConvLCALayer, ConvLCAParams, conv_lca_reference, random_kernels

    base = ConvLCAParams(n_iter=40) if quick else ConvLCAParams()
    kernel = random_kernels(base, np.random.default_rng(0))
    x = _conv_images(n_pres, base.in_shape[1])
    M, Ho, Wo = base.out_shape
    C, K = base.in_shape[0], base.kernel_size
    ref = conv_lca_reference(x[:1], kernel, base)
    out = {"in_shape": list(base.in_shape), "out_shape": list(base.out_shape), "n_kernels": M, "kernel_size": K,
           "stride": base.stride, "pad": base.pad, "n_iter": base.n_iter, "lam": base.lam, "n_pres_per_run": n_pres,
           "runs": []}
    settings = [(engine, th) for engine in engines for th in _settings(engine, threads, backend)]
    for engine, th in settings:
        p = ConvLCAParams(**{**base.__dict__, "engine": engine})
        with Session(backend, f"bench_lca_conv_{engine}_t{th}", key=(repr(p), n_pres, th), threads=th) as s:
            t0 = time.perf_counter()
            layer = ConvLCALayer(p, n_pres, s, kernel=kernel)
            build = time.perf_counter() - t0
            a = layer.run(x)["a"]  # warm-up
            wall, walls, loads, cpu = _median_runs(lambda: layer.run(x), repeat)
        active = float(np.mean(a > 0))
        drive = M * Ho * Wo * C * K * K
        recon = C * K * K * active * M * Ho * Wo
        steps_per_s = n_pres * p.n_iter / wall
        out["runs"].append({"engine": engine, "openmp_threads": th, "build_s": build,
                            "run_wall_s_median": wall, "run_wall_s_all": walls, "load_1min_after_each": loads,
                            "images_per_s": n_pres / wall, "ms_per_iteration": 1e3 / steps_per_s,
                            "run_cpu_s_median": cpu, "images_per_cpu_s": n_pres / cpu,
                            "active_fraction_final": active, "macs_per_step": drive + recon,
                            "macs_per_step_dense": 2 * drive, "macs_per_s": (drive + recon) * steps_per_s,
                            "max_code_difference_vs_numpy_reference": float(np.abs(a[:1] - ref).max()),
                            "synapses": layer.n_synapses})
    first = out["runs"][0]["images_per_s"]
    for r in out["runs"]:
        r["speed_over_first_setting"] = r["images_per_s"] / first
    out["max_code"] = float(ref.max())
    return out


def _direct_vs_residual(backend: str, n_pres: int, quick: bool, repeat: int) -> dict:
    from b2models.backend import Session
    from b2models.models.lca import LayerSpec, LCADirectLayer, LCAHierarchy, LCAParams, random_dictionary

    N, M = (256, 48) if quick else (1024, 128)
    lam = 0.02
    rng = np.random.default_rng(1)
    phi = random_dictionary(N, M, rng)
    x = rng.standard_normal((n_pres, N)) / np.sqrt(N)
    p = LCAParams(n_iter=100, eta=0.0, feedback=False)
    out = {"N": N, "M": M, "n_iter": p.n_iter}
    codes = {}
    with Session(backend, "bench_lca_direct", key=(N, M, n_pres)) as s:
        layer = LCADirectLayer(p, phi, lam, n_pres, s)
        codes["direct"] = layer.run(x)
        out["direct_images_per_s"] = n_pres / _best(lambda: layer.run(x), repeat)
    with Session(backend, "bench_lca_residual", key=(N, M, n_pres)) as s:
        net = LCAHierarchy(p, [LayerSpec("L1", M, ("img",), lam)], {"img": N}, n_pres, s, record_u=False)
        net.phi["L1"] = phi
        codes["residual"] = net.run({"img": x})["L1"]["a"]
        out["residual_images_per_s"] = n_pres / _best(lambda: net.run({"img": x}), repeat)
    out["direct_over_residual"] = out["direct_images_per_s"] / out["residual_images_per_s"]
    # the direct form's Φᵀx arrives one step later (event at the first step), so codes differ slightly
    out["max_code_difference"] = float(np.abs(codes["direct"] - codes["residual"]).max())
    out["max_code"] = float(np.abs(codes["residual"]).max())
    return out


def _conv_images(n: int, hw: int, sd: float = 0.1) -> np.ndarray:
    """n natural colour images (scikit-image), hw×hw, zero mean per channel, pixel s.d. ``sd``: (n, 3, hw, hw)."""
    from skimage import data, transform

    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina"]
    out = []
    for k in range(n):
        img = getattr(data, names[k % len(names)])()[..., :3].astype(float)
        if k >= len(names):  # more images than sources: mirrored copies
            img = img[:, ::-1]
        img = transform.resize(img, (hw, hw), anti_aliasing=True).transpose(2, 0, 1)
        img = img - img.mean(axis=(1, 2), keepdims=True)
        out.append(img / img.std() * sd)
    return np.array(out)


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (the standalone binary)."""
    import resource

    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def _conv_layer(backend: str, p, n_pres: int, repeat: int, check: bool, name: str, lams=None) -> tuple:
    """Build one layer, then time one run (best of ``repeat``) per λ in ``lams`` (λ is a run argument)."""
    from b2models.backend import Session
    from b2models.models.lca_conv import ConvLCALayer, conv_lca_reference, random_kernels

    kernel = random_kernels(p, np.random.default_rng(0))
    x = _conv_images(n_pres, p.in_shape[1])
    lams = [p.lam] if lams is None else list(lams)
    runs, codes = [], {}
    with Session(backend, name, key=(repr(p), n_pres)) as s:
        t0 = time.perf_counter()
        layer = ConvLCALayer(p, n_pres, s, kernel=kernel)
        build = time.perf_counter() - t0
        for lam in lams:
            a = layer.run(x, lam=lam)["a"]  # warm-up (loads the binary's files)
            cpu0 = _cpu_s()
            wall = _best(lambda: layer.run(x, lam=lam), repeat)
            cpu = (_cpu_s() - cpu0) / repeat  # mean CPU time of one run (this process and the binary)
            codes[lam] = a
            runs.append({"lam": lam, "run_wall_s": wall, "binary_s_last": s.last_run.binary_s,
                         "images_per_s": n_pres / wall, "ms_per_iteration": 1e3 * wall / (n_pres * p.n_iter),
                         "run_cpu_s_mean": cpu, "images_per_cpu_s": n_pres / cpu,
                         "active_fraction_final": float(np.mean(a > 0))})
    out = {"form": p.form, "drive_layout": p.drive_layout if p.form == "residual" else None,
           "in_shape": list(p.in_shape), "out_shape": list(p.out_shape), "n_kernels": p.n_kernels,
           "kernel_size": p.kernel_size, "stride": p.stride, "pad": p.pad, "n_iter": p.n_iter,
           "n_pres_per_run": n_pres, "build_s": build, "synapses": layer.n_synapses,
           "synapses_total": int(sum(layer.n_synapses.values())), **runs[0], "runs": runs}
    if check:
        ref = conv_lca_reference(x[:1], kernel, p)
        out["max_code_difference_vs_numpy_reference"] = float(np.abs(codes[lams[0]][:1] - ref).max())
        out["max_code"] = float(ref.max())
    return out, codes


def _conv_reference(backend: str, n_pres: int, repeat: int, quick: bool) -> dict:
    from b2models.models.lca_conv import ConvLCAParams

    p = ConvLCAParams(n_iter=40) if quick else ConvLCAParams()
    out, _ = _conv_layer(backend, p, n_pres, repeat, check=True, name="bench_lca_conv_ref")
    return out


def _conv_forms(backend: str, n_pres: int, repeat: int, quick: bool) -> dict:
    """Residual form (both layouts of Φᵀ E) against the Gram form, same kernels and inputs, λ 0.1 and 0.2."""
    from b2models.models.lca_conv import ConvLCAParams

    shape = (3, 16, 16) if quick else (3, 32, 32)
    n_iter = 40 if quick else 400
    lams = (0.1, 0.2)
    out, codes = {}, {}
    for key, kw in (("residual_kernel_major", dict(form="residual", drive_layout="kernel_major")),
                    ("residual_code_major", dict(form="residual", drive_layout="code_major")),
                    ("gram", dict(form="gram"))):
        p = ConvLCAParams(in_shape=shape, n_iter=n_iter, engine="synapses", **kw)
        out[key], codes[key] = _conv_layer(backend, p, n_pres, repeat, check=False, name=f"bench_lca_conv_{key}",
                                           lams=lams)
    for k, lam in enumerate(lams):
        out[f"lam_{lam}"] = {
            "gram_over_residual_speed": out["gram"]["runs"][k]["images_per_s"]
            / out["residual_kernel_major"]["runs"][k]["images_per_s"],
            "kernel_major_over_code_major_speed": out["residual_kernel_major"]["runs"][k]["images_per_s"]
            / out["residual_code_major"]["runs"][k]["images_per_s"],
            "max_code_difference": float(max(np.abs(codes[key][lam] - codes["residual_kernel_major"][lam]).max()
                                             for key in codes))}
    return out


#: measured side by side on this machine kind and reported with the task that asked for this benchmark; not
#: measured by this script (lca-pytorch, dense float32 convolutions, the conv_reference configuration)
REFERENCE_LCA_PYTORCH = {"library": "lca-pytorch (dense float32 convolutions)",
                         "images_per_s_1_thread": 0.43, "images_per_s_2_threads": [0.74, 0.82],
                         "config": "64 kernels 7x7 stride 2 on 64x64x3, 400 iterations (conv_reference)",
                         "source": "reported measurement on this machine kind; not run by this script"}


def _gemm_context(machine: dict, runs: list):
    """Each run's MACs/s beside the GEMM of the same process run (float32 and float64, same thread count)."""
    g = machine["gemm"]["gflops"]
    for r in runs:
        t = 2 if r.get("openmp_threads", 0) >= 2 else 1
        for dt in ("float32", "float64"):
            peak = g.get(f"{dt}_{t}thread")
            if peak:
                r[f"fraction_of_numpy_{dt}_gemm_{t}thread"] = r["macs_per_s"] / (peak * 1e9 / 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["cpp"])
    ap.add_argument("--n-pres", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    ap.add_argument("--threads", nargs="+", type=int, default=[0, 2],
                    help="OpenMP threads for cpp (0 = no OpenMP) in the engine measurements")
    ap.add_argument("--p-atoms", type=int, default=None, help="joint layer size of the hierarchy (default 256)")
    ap.add_argument("--engines", nargs="+", default=["synapses", "kernel"], choices=["synapses", "kernel"])
    ap.add_argument("--tag", default="", help="suffix of the engine measurements' keys in the JSON")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_lca.json"))
    ap.add_argument("--what", nargs="+", default=["engines", "conv_engines"],
                    choices=["engines", "conv_engines", "hierarchy", "hierarchy_conv", "direct", "conv", "conv_forms"])
    ap.add_argument("--conv-n-pres", type=int, default=2, help="images per run of the convolutional layer")
    args = ap.parse_args()
    import logging

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import machine_end, machine_start

    logging.getLogger("brian2").setLevel(logging.WARNING)
    out_path = Path(args.out)
    res = {}
    if out_path.exists() and not args.quick:
        res = json.loads(out_path.read_text())  # keep the entries of measurements not repeated now
    command = "python benchmarks/bench_lca.py " + " ".join(sys.argv[1:])
    machine = machine_start()
    run = {"command": command, "cores": os.cpu_count(), "quick": args.quick, "repeat": args.repeat,
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine}
    res.pop("reference_pytorch_lca_images_per_s", None)
    res["reference_lca_pytorch"] = REFERENCE_LCA_PYTORCH
    jobs = {"hierarchy": lambda b: _hierarchy(b, args.quick, args.repeat),
            "hierarchy_conv_v1": lambda b: _hierarchy(b, args.quick, args.repeat, vision="conv"),
            "v1_direct_vs_residual": lambda b: _direct_vs_residual(b, args.n_pres, args.quick, args.repeat),
            "conv_reference": lambda b: _conv_reference(b, args.conv_n_pres, args.repeat, args.quick),
            "conv_forms_small": lambda b: _conv_forms(b, args.conv_n_pres, args.repeat, args.quick),
            "hierarchy_engines": lambda b: _hierarchy_engines(b, args.quick, args.repeat, args.threads, args.p_atoms,
                                                              args.engines),
            "conv_reference_engines": lambda b: _conv_engines(b, args.conv_n_pres, args.quick, args.repeat,
                                                              args.threads, args.engines)}
    picked = {"hierarchy": "hierarchy", "hierarchy_conv": "hierarchy_conv_v1", "direct": "v1_direct_vs_residual",
              "conv": "conv_reference", "conv_forms": "conv_forms_small", "engines": "hierarchy_engines",
              "conv_engines": "conv_reference_engines"}
    for b in args.backends:
        res.setdefault(b, {})
        for what in args.what:
            key = picked[what]
            key_out = key
            if key == "hierarchy_engines" and args.p_atoms is not None:
                key_out += f"_p{args.p_atoms}"
            if key.endswith("engines") and args.tag:
                key_out += f"_{args.tag}"
            res[b][key_out] = jobs[key](b)
            _gemm_context(machine, res[b][key_out].get("runs", []))
            res[b][key_out]["load_average_at_end"] = os.getloadavg()
            res[b][key_out]["run"] = run
            print(json.dumps({b: {key_out: res[b][key_out]}}, indent=1), file=sys.stderr, flush=True)
    machine_end(machine)
    text = json.dumps(res, indent=2)
    print(text)
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
