"""
Sweep a parameter over seeds
============================

Runs ``spikecoding.fig2`` (Brendel et al. 2020, Fig 2) through :func:`b2models.run` for each value of one
parameter and each of several seeds, collects every run's ``run.metrics`` and plots the coding error and the firing
rate after learning as mean ± s.d. over seeds.  The default sweeps the recurrent learning rate ε_Ω (``eps_Omega``);
``--param NAME --values V1 V2 ...`` sweeps any parameter of the protocol, the values written as after ``--set``
on the command line (``--param lambda_ --values 40*Hz 50*Hz``).  Without ``--quick``: 5 seeds × 300 s of learning (the
protocol's ``--quick`` size); with ``--quick``: 3 seeds × 20 s.  Every run stays in ``OUT/spikecoding.fig2/``;
the table of all runs is ``OUT/seed_sweep.csv`` and the figure ``OUT/seed_sweep.png``.  Run it with::

    python plot_04_seed_sweep.py --quick --out results
"""

import argparse
import csv
import sys
from pathlib import Path

import matplotlib
import numpy as np
from brian2 import second

import b2models
from b2models.backend import BACKENDS, BackendError
from b2models.params import apply_values

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = {"final_error": "coding error after learning", "final_rate_hz": "mean rate after learning (Hz)"}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sweep a parameter of spikecoding.fig2 over seeds",
                                     usage=argparse.SUPPRESS)
    parser.add_argument("--param", default="eps_Omega", help="parameter to sweep (default eps_Omega)")
    parser.add_argument("--values", nargs="+", default=["1e-3", "4e-3"], help="its values (default 1e-3 4e-3)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default 5; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="20 s of learning per run instead of 300 s")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default ./results)")
    parser.add_argument("--backend", choices=BACKENDS, default="cpp", help="simulation target (default cpp)")
    args = parser.parse_args(argv)
    seeds = range(1, (args.seeds or (3 if args.quick else 5)) + 1)
    if len(seeds) < 2:
        parser.error("--seeds: at least 2 for a standard deviation")
    size = dict(duration=20 * second, chunk=2 * second, n_snapshots=4, n_angles=8) if args.quick else {}
    for value in args.values:  # every value checked (as --set checks it) before the first run
        apply_values(b2models.default_params("spikecoding.fig2", quick=True), {args.param: value})
    rows = []
    for value in args.values:
        for seed in seeds:
            run = b2models.run("spikecoding.fig2", backend=args.backend, seed=seed, quick=True, out=args.out,
                               **size, **{args.param: value})
            rows.append({args.param: value, "seed": seed, **{k: run.metrics[k] for k in METRICS}, "run": run.path})
            print(f"{args.param}={value} seed={seed}: " + ", ".join(f"{k} {rows[-1][k]:.4g}" for k in METRICS))
    with open(args.out / "seed_sweep.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.5 * len(METRICS), 3.4))
    for ax, (key, label) in zip(axes, METRICS.items()):
        values = np.array([[row[key] for row in rows if row[args.param] == v] for v in args.values])
        ax.errorbar(range(len(args.values)), values.mean(axis=1), yerr=values.std(axis=1, ddof=1), fmt="o",
                    capsize=4, label=f"mean ± s.d., {len(seeds)} seeds")
        for i, v in enumerate(values):
            ax.plot(np.full(len(v), i) + 0.1, v, ".", color="0.6", label=None if i else "single seeds")
        ax.set(xticks=range(len(args.values)), xticklabels=args.values, xlim=(-0.5, len(args.values) - 0.5),
               xlabel=args.param, ylabel=label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "seed_sweep.png", dpi=120)
    print(f"table: {args.out / 'seed_sweep.csv'}; figure: {args.out / 'seed_sweep.png'}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, BackendError) as err:  # b2models' parameter errors, unusable backend: one line, exit code 2
        print(f"{Path(__file__).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
