"""Speed of the one-shot naming sweep of the recollection model (Ben Houidi 2021, Fig 6), as JSON.

Ben Houidi Z (2021), arXiv:2101.04137, https://doi.org/10.48550/arXiv.2101.04137.

For ``--pairs`` one-shot pairs, the category network learns the two images' names (λ = 65) and names all
test images; one compiled network per worker, run arguments per pair (``protocols.recollection_oneshot``).
Timed per backend and number of joblib workers: the whole sweep (build included: the first build of a code
compiles, later ones reuse the binary), seconds per pair, and the SVM one-shot baseline on the same pairs.
The root layer is a ``recollection.features`` run (``--features-run``) or, without one, random patterns of
the Caltech size (1080 conv3 neurons, 54 spikes per image, 400 training and 396 test images). The load
average at start and end is recorded: the machine may be shared.

numpy and cython run only the first ``--slow-pairs`` pairs (their build is included, so their seconds per pair
are an upper bound for long sweeps).

    python benchmarks/bench_recollection.py [--pairs 1500] [--backends cpp cython] [--jobs 1 2]
        [--features-run results/recollection.features/RUN] [--out benchmarks/results/recollection.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def synthetic_root(n_train=400, n_test=396, maps=20, positions=54, steps=20, seed=1):
    """One spike per position in one of ``maps`` maps, class-dependent map preferences."""
    rng = np.random.default_rng(seed)
    pref = rng.dirichlet(np.ones(maps) * 0.5, size=(2, positions))

    def draw(n):
        y = np.arange(n) % 2
        root = -np.ones((n, maps * positions), dtype=np.int16)
        for k in range(n):
            m = np.array([rng.choice(maps, p=pref[y[k], q]) for q in range(positions)])
            root[k, m * positions + np.arange(positions)] = rng.integers(0, steps, positions)
        return root, y

    (rtr, ytr), (rte, yte) = draw(n_train), draw(n_test)
    ftr = rng.random((n_train, maps)) + ytr[:, None] * 0.3
    fte = rng.random((n_test, maps)) + yte[:, None] * 0.3
    return {"root_train": rtr, "labels_train": ytr, "root_test": rte, "labels_test": yte,
            "features_train": ftr, "features_test": fte}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1500)
    ap.add_argument("--backends", nargs="+", default=["cpp", "cython"])
    ap.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--slow-pairs", type=int, default=30,
                    help="pairs for the runtime backends numpy/cython (seconds per pair; the first pairs of the sweep)")
    ap.add_argument("--features-run", default="")
    ap.add_argument("--out", default="benchmarks/results/recollection.json")
    args = ap.parse_args(argv)
    if args.pairs < 1 or min(args.jobs) < 1:
        ap.error("--pairs and --jobs must be >= 1")

    from b2models.models.recollection import RecollectionParams
    from b2models.protocols.recollection_common import load_features_run
    from b2models.protocols.recollection_oneshot import draw_pairs, oneshot_naming, oneshot_svm

    if args.features_run:
        a = load_features_run(args.features_run)
        source = f"recollection.features run {args.features_run}"
    else:
        a = synthetic_root()
        source = "synthetic root patterns of the Caltech size"
    n_steps = int(max(a["root_train"].max(), a["root_test"].max())) + 1
    pairs = draw_pairs(a["labels_train"], args.pairs, np.random.default_rng(3))
    rp = RecollectionParams()
    out = {"benchmark": "recollection one-shot sweep", "pairs": int(len(pairs)), "lam": 65.0,
           "root_neurons": int(a["root_train"].shape[1]), "test_images": int(len(a["labels_test"])),
           "root_source": source, "machine": platform.platform(), "cpus": os.cpu_count(),
           "load_average_start": os.getloadavg(), "runs": []}
    t0 = time.perf_counter()
    svm = oneshot_svm(a["features_train"], a["features_test"], a["labels_test"], pairs, "linear")
    out["svm_linear_s"] = time.perf_counter() - t0
    out["svm_linear_median_accuracy"] = float(np.median(svm))
    for backend in args.backends:
        for jobs in args.jobs:
            these = pairs if backend in ("cpp", "cuda") else pairs[:args.slow_pairs]
            t0 = time.perf_counter()
            acc = oneshot_naming(a["root_train"], a["root_test"], a["labels_test"], these, rp, 65.0, backend,
                                 n_steps, 1, jobs=jobs)[:, 0]  # strict convention (silent = wrong)
            wall = time.perf_counter() - t0
            row = {"backend": backend, "jobs": jobs, "pairs": int(len(these)), "sweep_s": wall,
                   "s_per_pair": wall / len(these), "naming_median_accuracy": float(np.median(acc))}
            out["runs"].append(row)
            print(json.dumps(row), flush=True)
    best = min(out["runs"], key=lambda r: r["s_per_pair"])
    out["fastest"] = {k: best[k] for k in ("backend", "jobs", "pairs", "sweep_s", "s_per_pair")}
    out["fastest"]["estimated_s_for_1500_pairs"] = best["s_per_pair"] * 1500
    base = {(r["backend"], r["jobs"]): r["s_per_pair"] for r in out["runs"]}
    if ("cpp", 1) in base and ("cython", 1) in base:
        out["cython_over_cpp_s_per_pair_1_job"] = base[("cython", 1)] / base[("cpp", 1)]
    out["load_average_end"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    print(text)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
