"""Speed of the one-shot naming sweep of the recollection model (Ben Houidi 2021, Fig 6), as JSON.

Ben Houidi Z (2021), arXiv:2101.04137, https://doi.org/10.48550/arXiv.2101.04137.

For ``--pairs`` one-shot pairs, the category network learns the two images' names (λ = 65) and names all
test images; one compiled network per worker, run arguments per pair (``protocols.recollection_oneshot``).
Timed per backend and number of joblib workers: the whole sweep (build included; on cpp one untimed pair first
compiles the code, ``untimed_first_pair_s``, so the sweep reuses the binary), seconds per pair, and the SVM
one-shot baseline on the same pairs.
The root layer is a ``recollection.features`` run (``--features-run``) or, without one, random patterns of
the Caltech size (1080 conv3 neurons, 54 spikes per image, 400 training and 396 test images). The load
average at start and end is recorded: the machine may be shared.

numpy and cython run only the first ``--slow-pairs`` pairs (their build is included, so their seconds per pair
are an upper bound for long sweeps).  cpp also runs with 1 job at each ``--threads`` value above 0 (OpenMP
threads inside the one binary; the first ``--omp-pairs`` pairs), and with ``--clock-row`` once more with
Brian2's default clock at the network's dt (1 ms) while the code is generated (a standalone network loop turns
at its finest clock; the session's seed holder sits on the default clock, 0.1 ms: ten turns per step).  Each
row reports the work done per wall second (synaptic updates, :data:`WORK_RULE`) beside a numpy GEMM measured
in the same run (``benchmarks/_machine.py``).

    python benchmarks/bench_recollection.py [--pairs 1500] [--backends cpp cython] [--jobs 1 2] [--threads 0 1 2]
        [--omp-pairs 0] [--clock-row] [--features-run results/recollection.features/RUN]
        [--out benchmarks/results/recollection.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import fraction_of_peak, machine_end, machine_start  # noqa: E402

#: how ``work_per_s`` is counted (what the generated code touches per pair, root_events='once')
WORK_RULE = (
    "synaptic updates per pair (one run of n_present = 2 + n_test images, n_cat = 2*per_class category "
    "neurons, n_root root neurons, all-to-all synapses): every root spike touches its n_cat synapses twice "
    "(pathways 'retrograde' and 'learn'): 2*n_cat*root_spikes; every teacher spike (per_class per learned "
    "image) touches its n_root synapses (on_pre); the per-image reset (pre_spiked = 0) touches all "
    "n_cat*n_root synapses at each of the n_present + 1 ticks of the image clock.  work = "
    "2*n_cat*root_spikes + 2*per_class*n_root + (n_present + 1)*n_cat*n_root.  Not counted (reported as "
    "neuron_steps): the per-step threshold test of every root and category neuron, "
    "(n_root + n_cat) * n_present * (n_root_steps + 2) per pair."
)


def pair_work(root_train, root_test, pairs, n_cat: int, per_class: int) -> dict:
    """Synaptic updates and neuron steps of one sweep over ``pairs`` (see :data:`WORK_RULE`)."""
    n_root = root_test.shape[1]
    n_present = 2 + len(root_test)
    test_spikes = int((root_test >= 0).sum())
    learn_spikes = int(sum((root_train[list(pr)] >= 0).sum() for pr in pairs))
    spikes = learn_spikes + len(pairs) * test_spikes
    events = 2 * n_cat * spikes + len(pairs) * 2 * per_class * n_root
    reset = len(pairs) * (n_present + 1) * n_cat * n_root
    n_steps = int(max(root_train.max(), root_test.max())) + 1
    return {"synaptic_updates": events + reset, "event_updates": events, "reset_updates": reset,
            "root_spikes": spikes, "neuron_steps": len(pairs) * (n_root + n_cat) * n_present * (n_steps + 2)}


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
    ap.add_argument("--threads", nargs="+", type=int, default=[0, 1, 2],
                    help="OpenMP threads for cpp with 1 job (values > 0 add rows; 0 is the --jobs rows)")
    ap.add_argument("--clock-row", action="store_true",
                    help="one more cpp row (1 job): Brian2's default clock at the network's dt (1 ms) while building")
    ap.add_argument("--omp-pairs", type=int, default=0,
                    help="pairs for the cpp rows with OpenMP threads (0: --pairs; the first pairs of the sweep)")
    ap.add_argument("--slow-pairs", type=int, default=30,
                    help="pairs for the runtime backends numpy/cython (seconds per pair; the first pairs of the sweep)")
    ap.add_argument("--features-run", default="")
    ap.add_argument("--out", default="benchmarks/results/recollection.json")
    args = ap.parse_args(argv)
    if args.pairs < 1 or min(args.jobs) < 1 or min(args.threads) < 0 or args.omp_pairs < 0:
        ap.error("--pairs and --jobs must be >= 1, --threads >= 0")

    import brian2

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
    machine = machine_start()
    n_cat = 2 * rp.per_class
    out = {"benchmark": "recollection one-shot sweep",
           "command": "python " + " ".join(["benchmarks/bench_recollection.py",
                                            *(sys.argv[1:] if argv is None else argv)]),
           "pairs": int(len(pairs)), "lam": 65.0,
           "root_neurons": int(a["root_train"].shape[1]), "test_images": int(len(a["labels_test"])),
           "category_neurons": n_cat, "root_source": source, "platform": platform.platform(),
           "cpus": os.cpu_count(), "machine": machine, "work_rule": WORK_RULE, "runs": []}
    t0 = time.perf_counter()
    svm = oneshot_svm(a["features_train"], a["features_test"], a["labels_test"], pairs, "linear")
    out["svm_linear_s"] = time.perf_counter() - t0
    out["svm_linear_median_accuracy"] = float(np.median(svm))
    gemm = machine["gemm"]
    for backend in args.backends:
        settings = [(jobs, 0, False) for jobs in args.jobs]
        if backend == "cpp":
            settings += [(1, t, False) for t in args.threads if t > 0]
            if args.clock_row:
                settings.append((1, 0, True))
        for jobs, threads, clock_at_dt in settings:
            these = pairs if backend in ("cpp", "cuda") else pairs[:args.slow_pairs]
            if threads and args.omp_pairs:
                these = pairs[:args.omp_pairs]
            warm_s = None
            dt0 = brian2.defaultclock.dt
            if clock_at_dt:  # comparison row: the build generates the network loop at dt = 1 ms
                brian2.defaultclock.dt = 1 * brian2.ms
            if backend in ("cpp", "cuda"):  # compile once untimed (one pair): the sweep below reuses the binary
                t0 = time.perf_counter()
                oneshot_naming(a["root_train"], a["root_test"], a["labels_test"], pairs[:1], rp, 65.0, backend,
                               n_steps, 1, threads=threads, jobs=1)
                warm_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            acc = oneshot_naming(a["root_train"], a["root_test"], a["labels_test"], these, rp, 65.0, backend,
                                 n_steps, 1, threads=threads, jobs=jobs)[:, 0]  # strict convention (silent = wrong)
            wall = time.perf_counter() - t0
            brian2.defaultclock.dt = dt0
            row = {"backend": backend, "jobs": jobs, "openmp_threads": threads, "default_clock_at_dt": clock_at_dt,
                   "pairs": int(len(these)),
                   "sweep_s": wall, "s_per_pair": wall / len(these), "untimed_first_pair_s": warm_s,
                   "naming_median_accuracy": float(np.median(acc))}
            row.update(pair_work(a["root_train"], a["root_test"], these, n_cat, rp.per_class))
            row["work_per_s"] = round(row["synaptic_updates"] / wall)
            row["neuron_steps_per_s"] = round(row["neuron_steps"] / wall)
            # 2 BLAS threads for the rows that use both cores (2 jobs or 2 OpenMP threads)
            row["fraction_of_gemm_peak"] = fraction_of_peak(row["work_per_s"], gemm, max(jobs, threads))
            out["runs"].append(row)
            print(json.dumps(row), flush=True)
    out["fraction_of_gemm_peak_rule"] = (
        "work_per_s (whole sweep, build included) / float64 numpy GEMM multiply-adds per s (GFLOP/s * 1e9 / 2), "
        "1 BLAS thread for rows on one core, 2 BLAS threads for 2 jobs or 2 OpenMP threads")
    best = min((r for r in out["runs"] if not r["default_clock_at_dt"]), key=lambda r: r["s_per_pair"])
    out["fastest"] = {k: best[k] for k in ("backend", "jobs", "openmp_threads", "pairs", "sweep_s", "s_per_pair")}
    out["fastest"]["estimated_s_for_1500_pairs"] = best["s_per_pair"] * 1500
    base = {(r["backend"], r["jobs"]): r["s_per_pair"] for r in out["runs"]
            if not r["openmp_threads"] and not r["default_clock_at_dt"]}
    if ("cpp", 1) in base and ("cython", 1) in base:
        out["cython_over_cpp_s_per_pair_1_job"] = base[("cython", 1)] / base[("cpp", 1)]
    machine_end(machine)
    text = json.dumps(out, indent=2)
    print(text)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
