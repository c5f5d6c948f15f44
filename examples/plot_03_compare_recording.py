"""
Compare the model with your own recording
=========================================

Reads flash responses from a CSV file (a header; time in seconds, then the mean response to a light and/or a
dark flash in columns named ``light`` and ``dark``) and compares them with the ReSU unit that models L1/L2 cells
(Qin et al. 2025): the layer-1 projection u = ψ₂·p of the same flash, run in Brian2, with ψ₂ learned from natural
scenes as in ``resu.compare`` (``--quick``: from four bundled scikit-image images).  One model sample lasts Δ ms,
a time scale fitted on a grid as ``resu.compare`` fits it.  The fit is reported with the suite's analysis
functions: Pearson r of model and recording (columns end to end) and, after a least-squares gain and offset, the
variance explained, 1 − coding error (r² for this fit).  Without ``--csv`` the script first writes
``OUT/recording.csv`` from the mean L1 responses at high luminance of the Clandinin lab recordings
(``b2models.data.fly_l1l2_recordings``) as a stand-in for yours.  The model is light-positive; its trace is
multiplied by ``--polarity`` before the comparison, by default the suite's convention for these calcium
recordings (``resu_compare.RECORDING_POLARITY`` = −1: dark-positive) — give yours.  The figure is
``OUT/compare_recording.png``, the numbers ``OUT/compare_recording.json``.  Run it with::

    python plot_03_compare_recording.py --quick --out results [--csv my_cell.csv --flash-ms 20 60]
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

from b2models.analysis.coding import coding_error
from b2models.analysis.recording import Recording, pearson
from b2models.backend import BACKENDS, BackendError, Session
from b2models.data import DataError, fly_l1l2_recordings
from b2models.models import resu
from b2models.protocols import resu_compare, resu_t4

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIGNS = {"light": 1.0, "dark": -1.0}
STAND_IN_FLASH_MS = [s * resu_compare.FLASH_DT_MS for s in resu_compare.CompareParams.flash_samples]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Compare the ReSU L1/L2 unit with a recording",
                                     usage=argparse.SUPPRESS)  # a bad option: one line, "error: ..."
    parser.add_argument("--csv", type=Path, help="your recording (default: OUT/recording.csv, written from fly data)")
    parser.add_argument("--flash-ms", type=float, nargs=2, default=STAND_IN_FLASH_MS, metavar=("START", "STOP"),
                        help="the flash, in ms (default: the stand-in's, 16.7 to 41.7)")
    parser.add_argument("--polarity", type=float, choices=(-1.0, 1.0), default=resu_compare.RECORDING_POLARITY,
                        help="+1 if the recording rises with light, -1 if it rises with dimming (default: the "
                             "suite's convention for the stand-in calcium recordings, -1)")
    parser.add_argument("--quick", action="store_true", help="filters from 4 bundled images (no scene data)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default ./results)")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy", help="simulation target (default numpy)")
    args = parser.parse_args(argv)
    if not 0 <= args.flash_ms[0] < args.flash_ms[1]:
        parser.error(f"--flash-ms {args.flash_ms[0]:g} {args.flash_ms[1]:g}: need 0 <= START < STOP")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.csv is None:  # the stand-in: a fly recording written as such a file
        rec = fly_l1l2_recordings()["L1_highLum"]  # a Recording; columns: dark flash, light flash
        args.csv = args.out / "recording.csv"
        np.savetxt(args.csv, np.column_stack([rec.times, rec.values[:, 1], rec.values[:, 0]]), delimiter=",",
                   header="time,light,dark", comments="")
    try:
        table = np.genfromtxt(args.csv, delimiter=",", names=True)
        names = table.dtype.names
        cols = {c: table[c] for c in names[1:]}
        if not cols or set(cols) - set(SIGNS) or len(table) < 3 or np.isnan(table.tolist()).any():
            raise ValueError("not numbers")
        recording = Recording(times=table[names[0]], values=np.column_stack(list(cols.values())), units="dF/F",
                              source=str(args.csv), name=args.csv.stem)
        t_ms = 1e3 * recording.times
    except (OSError, ValueError, TypeError, IndexError) as err:
        raise ValueError(f"{args.csv}: expected a header 'time,light,dark' (light and/or dark) and >= 3 rows of "
                         f"numbers ({err})") from None
    p = resu_compare.quick_params(resu_compare.CompareParams()) if args.quick else resu_compare.CompareParams()
    psi1 = resu_t4.train_filters(p, args.quick, np.random.default_rng(1), log=lambda msg: None)["psi1"]
    grid = np.union1d(p.model_ms_grid, [p.dt_ms])  # Δ values tried, with the training Δ among them
    n = int(np.ceil(t_ms[-1] / grid.min())) + 2
    stim = np.stack([resu_compare.flash_stimulus(d, n, args.flash_ms, SIGNS[c]) for d in grid for c in cols], axis=1)
    with Session(args.backend, "compare_recording", key=stim.shape) as session:  # one pixel per (Δ, column)
        u = resu.ReSUNetwork(resu.ReSUParams(m1=p.m), session, stim.shape[1], n, psi1).run(stim)["u"][:, :, 1]
    model = np.array([np.concatenate([resu_compare.to_recording_grid(u[:, i * len(cols) + j], d, t_ms)
                                      for j in range(len(cols))]) for i, d in enumerate(grid)])  # (Δ, time)
    model = args.polarity * model  # in the recording's polarity
    target = recording.values.T.ravel()  # the columns one after the other, as the model traces
    rs = np.array([pearson(m, target) for m in model])
    best = int(np.argmax(rs))
    gain, offset = np.polyfit(model[best], target, 1)
    fit = {"recording": str(args.csv), "polarity": args.polarity, "r": float(rs[best]), "delta_ms": float(grid[best]),
           "variance_explained": 1 - coding_error(target, gain * model[best] + offset),
           "r_at_training_delta": float(rs[grid == p.dt_ms][0]), "training_delta_ms": p.dt_ms}
    (args.out / "compare_recording.json").write_text(json.dumps(fit, indent=1))
    print(f"{args.csv}: r = {fit['r']:.3f} at Δ = {fit['delta_ms']:.3g} ms (fitted), variance explained "
          f"{fit['variance_explained']:.3f}; r = {fit['r_at_training_delta']:.3f} at the training Δ = {p.dt_ms:g} ms")
    fig, axes = plt.subplots(1, len(cols) + 1, figsize=(4 * len(cols) + 4, 3.2))
    for j, (ax, c) in enumerate(zip(axes, cols)):
        ax.plot(t_ms, cols[c], "k", label="recording")
        ax.plot(t_ms, gain * model[best, j * len(t_ms):(j + 1) * len(t_ms)] + offset, "r", label="model")
        ax.axvspan(*args.flash_ms, color="0.9")
        ax.set(xlabel="time (ms)", title=f"{c} flash; model Δ = {grid[best]:.3g} ms")
    axes[0].legend(fontsize=7)
    axes[-1].plot(grid, rs, "o-")
    axes[-1].set(xlabel="model sample Δ (ms)", ylabel="Pearson r", title=f"best r = {rs[best]:.2f}")
    fig.tight_layout()
    fig.savefig(args.out / "compare_recording.png", dpi=120)
    print(f"figure: {args.out / 'compare_recording.png'}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, DataError, BackendError) as err:  # bad input or missing data: one line, exit code 2
        print(f"{Path(__file__).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
