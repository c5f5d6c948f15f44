"""LCA inference speed (JSON on stdout and in benchmarks/results/lca.json).

    .venv/bin/python benchmarks/bench_lca.py [--backends numpy cpp] [--n-pres 10] [--quick]

* ``hierarchy``: the ``multimodal.train`` configuration (V 128-128-128 on 32×32 faces, T 128-128 on
  64×8 names, P1 256, 100 iterations, feedback on), frozen dictionaries: images (face + name pairs)
  per second of wall time (best of ``--repeat``) of one run of one protocol chunk (50 presentations),
  per backend (build excluded);
* ``hierarchy_conv`` (``hierarchy_conv_v1`` in the JSON): the same with the convolutional V1 of
  ``--set vision=conv`` (16 kernels 8×8 stride 4, padding 4, 1296 code units);
* ``v1_direct_vs_residual``: one input layer (1024 → 128, 100 iterations) with direct ΦᵀΦ
  inhibition (:class:`models.lca.LCADirectLayer`) and with the residual population
  (:class:`models.lca.LCAHierarchy`), same dictionary and inputs: images/s and the largest code
  difference;
* ``conv_reference``: the convolutional layer (:class:`models.lca_conv.ConvLCALayer`, residual form) at the
  reference configuration, 64 kernels 7×7 stride 2 on 64×64×3 (padding 3, code 64×32×32), 400 iterations,
  λ = 0.1, random unit-norm kernels, natural colour images (scikit-image, 64×64, zero mean per channel,
  pixel s.d. 0.1): images/s and ms per iteration with ``--conv-n-pres`` images per run (build excluded;
  wall time, best of ``--repeat``, and images per CPU second, which the load of the shared machine
  affects less),
  synapse counts, active fraction, and the largest difference from the numpy reference for the first image;
* ``conv_forms_small``: residual form (Φᵀ E over kernel-major and over code-major synapses) against the
  Gram form (:mod:`models.lca_conv`) on the same kernels at a smaller input (3×32×32, code 64×16×16,
  where the Gram form's synapses fit comfortably), λ = 0.1 and 0.2 (a run argument of one build);
* reference: a PyTorch LCA library reaches 0.04–0.14 images/s on this machine kind for the reference
  convolutional configuration.

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
        p = ConvLCAParams(in_shape=shape, n_iter=n_iter, **kw)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["numpy", "cpp"])
    ap.add_argument("--n-pres", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (best is kept)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lca.json"))
    ap.add_argument("--what", nargs="+", default=["hierarchy", "direct", "conv", "conv_forms"],
                    choices=["hierarchy", "hierarchy_conv", "direct", "conv", "conv_forms"])
    ap.add_argument("--conv-n-pres", type=int, default=2, help="images per run of the convolutional layer")
    args = ap.parse_args()
    import logging

    logging.getLogger("brian2").setLevel(logging.WARNING)
    out_path = Path(args.out)
    res = {}
    if out_path.exists() and not args.quick:
        res = json.loads(out_path.read_text())  # keep the entries of measurements not repeated now
    command = "python benchmarks/bench_lca.py " + " ".join(sys.argv[1:])
    run = {"command": command, "cores": os.cpu_count(), "quick": args.quick, "repeat": args.repeat,
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_average_at_start": os.getloadavg()}
    res.update({"reference_pytorch_lca_images_per_s": [0.04, 0.14],
                "reference_config": "64 kernels 7x7 stride 2 on 64x64x3, 400 iterations (conv_reference)"})
    if {"hierarchy", "direct"} & set(args.what):
        res.update({k: v for k, v in run.items() if k != "date_utc"})
    jobs = {"hierarchy": lambda b: _hierarchy(b, args.quick, args.repeat),
            "hierarchy_conv_v1": lambda b: _hierarchy(b, args.quick, args.repeat, vision="conv"),
            "v1_direct_vs_residual": lambda b: _direct_vs_residual(b, args.n_pres, args.quick, args.repeat),
            "conv_reference": lambda b: _conv_reference(b, args.conv_n_pres, args.repeat, args.quick),
            "conv_forms_small": lambda b: _conv_forms(b, args.conv_n_pres, args.repeat, args.quick)}
    picked = {"hierarchy": "hierarchy", "hierarchy_conv": "hierarchy_conv_v1", "direct": "v1_direct_vs_residual",
              "conv": "conv_reference",
              "conv_forms": "conv_forms_small"}
    for b in args.backends:
        res.setdefault(b, {})
        for what in args.what:
            key = picked[what]
            res[b][key] = jobs[key](b)
            if key.startswith("conv") or key == "hierarchy_conv_v1":
                res[b][key]["load_average_at_end"] = os.getloadavg()
                res[b][key]["run"] = run
            print(json.dumps({b: {key: res[b][key]}}, indent=1), file=sys.stderr, flush=True)
    if {"hierarchy", "direct"} & set(args.what):
        res["load_average_at_end"] = os.getloadavg()
    text = json.dumps(res, indent=2)
    print(text)
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
