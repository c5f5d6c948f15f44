"""
Write your own protocol: apparent motion on the T4 layer
========================================================

A protocol is a file that defines ``PROTOCOL``: a parameter dataclass and a ``run(ctx)`` that writes metrics,
arrays and figures through ``ctx.writer``.  This one uses the two-layer ReSU network of Qin et al. (2025)
(:mod:`b2models.models.resu`; filters trained as in ``resu.t4``, on scikit-image's images with ``--quick``) for a
stimulus no suite protocol has: apparent motion.  Two flashes hit neighbouring pixels (a–b or b–c, 5° apart),
the second a delay later, in the preferred order (towards c, the direction of the training motion) or the null
order.  Each condition (bright/dark × pair × delay × order) has its own T4 unit, all in one Brian2 run.
R = the output r = max(v − θ₂, 0) averaged over the trial; DSI = (R_pref − R_null)/(R_pref + R_null), per delay
and pooled.  With θ₂ = 0 the pooled DSI came out small for bright pairs (0.005–0.008) and larger for dark pairs
(0.17–0.21, with responses 30–50 times smaller), at both sizes with seeds 1 and 2.  Run it with::

    b2models run examples/plot_02_own_protocol.py --quick --backend numpy --set flash_ms=30
    python examples/plot_02_own_protocol.py --quick --set flash_ms=30  # the same; numpy unless --backend
"""

import sys
from dataclasses import dataclass

import matplotlib
import numpy as np
from brian2 import ms

from b2models.analysis import direction
from b2models.backend import Session
from b2models.models import resu
from b2models.protocol import Protocol
from b2models.protocols import resu_t4

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DT_MS = resu_t4.T4Params.dt_ms  # the model's time step (10 ms)
POLARITIES = {"bright": 1.0, "dark": -1.0}
PAIRS = ((0, 1), (1, 2))  # pixel pairs of each T4 unit, in the preferred order


@dataclass
class ApparentMotionParams:
    flash_ms: float = 50.0  # duration of each flash
    contrast: float = 1.0  # flash contrast: +1 doubles the luminance, −1 is black
    delays_ms: tuple = (10.0, 20.0, 30.0, 40.0, 60.0, 80.0, 120.0)  # onset of flash 2 after flash 1
    onset_ms: float = 50.0  # onset of flash 1
    trial_ms: float = 1000.0  # one trial (R is r averaged over it)
    theta2_sd: float = 0.0  # T4 threshold θ₂, in s.d. of its projection during training

    def validate(self):
        times = (self.flash_ms, self.onset_ms, self.trial_ms, *self.delays_ms)
        if not self.delays_ms or min(times) <= 0 or any(t % DT_MS for t in times) or self.theta2_sd < 0 or \
                self.onset_ms + max(self.delays_ms) + self.flash_ms > self.trial_ms:
            raise ValueError(f"times must be positive multiples of {DT_MS:g} ms (the model's step), the flashes "
                             "must end within trial_ms, and theta2_sd must be >= 0")


def stimulus(p, dt_ms=DT_MS):
    """(steps, 3 × units) contrast, and each T4 unit's condition (polarity, pair, delay, order: 1 = preferred)."""
    conds = [(pol, k, d, o) for pol in POLARITIES for k in range(len(PAIRS)) for d in p.delays_ms for o in (1, -1)]
    stim = np.zeros((round(p.trial_ms / dt_ms), 3 * len(conds)))
    on, dur = round(p.onset_ms / dt_ms), round(p.flash_ms / dt_ms)
    for u, (pol, k, d, o) in enumerate(conds):
        for pixel, start in zip(PAIRS[k][::o], (on, on + round(d / dt_ms))):
            stim[start:start + dur, 3 * u + pixel] += POLARITIES[pol] * p.contrast
    return stim, conds


def dsi(pref, null):
    return direction.dsi(pref, null) if pref + null > 0 else None  # undefined without any response


def run(ctx):
    p = ctx.params
    p.validate()
    fp = resu_t4.quick_params(resu_t4.T4Params()) if ctx.quick else resu_t4.T4Params()
    f = resu_t4.train_filters(fp, ctx.quick, np.random.default_rng(ctx.seed), ctx.log)
    stim, conds = stimulus(p, fp.dt_ms)
    with Session(ctx.backend, "apparent_motion", key=(stim.shape, fp.m, fp.m2), threads=ctx.threads) as session:
        net = resu.ReSUNetwork(resu.ReSUParams(dt=fp.dt_ms * ms, m1=fp.m, m2=fp.m2), session, stim.shape[1], len(stim),
                               f["psi1"], f["psi2"], np.arange(stim.shape[1]).reshape(-1, 3), monitor_layer1=False)
        r = net.run(stim, theta2=p.theta2_sd * f["v_sd"], seed=ctx.seed)["r"]  # (steps, units)
    R = r.mean(axis=0).reshape(len(POLARITIES), len(PAIRS), len(p.delays_ms), 2)  # last axis: pref, null
    metrics = {"delays_ms": list(p.delays_ms)}
    for pol, (pref, null) in zip(POLARITIES, R.sum(axis=1).transpose(0, 2, 1)):  # pairs summed
        metrics |= {f"dsi_{pol}": dsi(pref.sum(), null.sum()), f"dsi_{pol}_by_delay": list(map(dsi, pref, null)),
                    f"r_pref_{pol}": float(pref.sum()), f"r_null_{pol}": float(null.sum())}
        ctx.log(f"{pol} pairs: R_pref {pref.sum():.4g}, R_null {null.sum():.4g}, DSI {metrics[f'dsi_{pol}']}")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(r=r, R=R, stimulus=stim, psi1=f["psi1"], psi2=f["psi2"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    d = p.delays_ms[len(p.delays_ms) // 2]
    for ax, pol in zip(axes, POLARITIES):
        for o, name in ((1, "preferred (a, then b)"), (-1, "null (b, then a)")):
            ax.plot(np.arange(len(r)) * fp.dt_ms, r[:, conds.index((pol, 0, d, o))], label=name)
        ax.set(xlabel="time (ms)", ylabel="T4 output r", title=f"{pol} flashes, delay {d:g} ms")
        ax.legend(fontsize=7)
        axes[2].plot(p.delays_ms, np.array(metrics[f"dsi_{pol}_by_delay"], dtype=float), "o-",  # None -> nan
                     label=f"{pol} (pooled {float(np.array(metrics[f'dsi_{pol}'], dtype=float)):+.2f})")
    axes[2].set(xlabel="delay (ms)", ylabel="DSI", title="apparent-motion DSI, pairs a–b and b–c summed")
    axes[2].axhline(0, color="0.6", lw=0.5)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "apparent_motion")
    return metrics


PROTOCOL = Protocol(name="user.t4_apparent_motion", paper="resu", params=ApparentMotionParams, run=run,
                    summary="T4-like ReSU unit: direction selectivity for apparent motion (flash pairs)",
                    data=["scenes_clark_pano", "scenes_train400"], figures=["apparent_motion"])

if __name__ == "__main__":  # the command line's `run` on this file (numpy unless --backend is given)
    from b2models.cli import main

    sys.exit(main(["run", __file__, "--backend", "numpy", *sys.argv[1:]]))
