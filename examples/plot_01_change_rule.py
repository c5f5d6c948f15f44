"""
Change a plasticity rule
========================

The recurrent weights Ω of the spike-coding network (Brendel et al. 2020, Fig 2) learn with the voltage-based
rule of the paper's Eq 6.  Its Brian2 code is the string ``VOLTAGE_RECURRENT_RULE_ON_PRE`` in
:mod:`b2models.models.spikecoding` (``b2models show spikecoding`` prints it), and the network builder reads it
when it builds the network.  This example runs the ``spikecoding.fig2`` protocol twice, with Eq 6 and with a
weight-dependent variant — soft bounds: a step that raises Ω is scaled by 1 − Ω/Ω_max, one that lowers it by
1 + Ω/Ω_max, so that updates fade out as Ω approaches ±Ω_max — and plots both learning curves (coding error
against learning time) in one figure.

The variant is a protocol of its own: ``spikecoding.fig2`` with the rule string replaced while it runs, so
its results go to their own folder (``OUT/user.fig2_soft_bounds/``) next to ``OUT/spikecoding.fig2/``.
Without ``--quick`` each rule learns for 300 s (the ``b2models run spikecoding.fig2 --quick`` demo); with
``--quick`` for 30 s.  The figure is ``OUT/change_rule.png``.  Run it with::

    python plot_01_change_rule.py --quick --out results
"""

import argparse
import dataclasses
import sys
from pathlib import Path
from unittest import mock

import matplotlib
from brian2 import second

import b2models
from b2models.backend import BACKENDS, BackendError
from b2models.models import spikecoding
from b2models.protocols import spikecoding_fig2 as fig2

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Eq 6 with soft bounds; OMEGA_MAX is replaced by the bound's value (the builder's namespace has no such name)
SOFT_BOUND_RECURRENT_RULE_ON_PRE = """
dOmega = -eta_Omega * (beta * (V_post + mu * r_post) + Omega + mu * delta)  # the step of Eq 6
Omega += dOmega * (1 - sign(dOmega) * Omega / OMEGA_MAX)  # soft bounds: no step beyond ±Ω_max
"""


def soft_bound_protocol(omega_max: float):
    """``spikecoding.fig2`` learning with the soft-bound rule instead of Eq 6."""
    rule = SOFT_BOUND_RECURRENT_RULE_ON_PRE.replace("OMEGA_MAX", repr(float(omega_max)))

    def run(ctx):
        # no stage cache: its key does not see the rule, so a cached Eq 6 run must not be taken for this one
        with mock.patch.object(spikecoding, "VOLTAGE_RECURRENT_RULE_ON_PRE", rule):
            return fig2.run(dataclasses.replace(ctx, cache=None))

    return dataclasses.replace(fig2.PROTOCOL, name="user.fig2_soft_bounds", run=run, claims=[],
                               summary=f"Fig 2 with Eq 6 under soft bounds, Ω_max = {omega_max:g}")


def main(argv=None):
    # usage=SUPPRESS: a bad option gives one line, "plot_01_change_rule.py: error: ..."
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0], usage=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="30 s of learning instead of 300 s")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default ./results)")
    parser.add_argument("--backend", choices=BACKENDS, default="cpp", help="simulation target (default cpp)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--omega-max", type=float, default=1.0, help="soft bound Ω_max (default 1.0)")
    args = parser.parse_args(argv)
    if not args.omega_max > 0:
        parser.error(f"--omega-max {args.omega_max}: must be > 0")
    size = dict(duration=30 * second, chunk=2 * second, n_snapshots=5, n_angles=8) if args.quick else {}
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for proto, label in ((fig2.PROTOCOL, "Eq 6"), (soft_bound_protocol(args.omega_max),
                                                   f"Eq 6, soft bounds Ω_max = {args.omega_max:g}")):
        run = b2models.run(proto, backend=args.backend, seed=args.seed, quick=True, out=args.out, **size)
        t, err = run.arrays["snapshot_t"], run.arrays["error"]
        print(f"{label}: coding error {err[0]:.4f} -> {err[-1]:.4f} ({run.path})")
        ax.loglog(t[1:], err[1:], "o-", ms=3, label=label)
    ax.axhline(err[0], color="0.5", lw=0.8, ls=":", label="before learning (same start for both)")
    ax.set_xlabel("learning time (s)")
    ax.set_ylabel("coding error")
    ax.set_xticks(t[1:], [f"{x:g}" for x in t[1:]])  # the test times, without the log axis' minor ticks
    ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "change_rule.png", dpi=120)
    print(f"figure: {args.out / 'change_rule.png'}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, BackendError) as err:  # bad parameters, unusable backend: one line, exit code 2
        print(f"{Path(__file__).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
