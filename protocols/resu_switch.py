"""Protocol ``resu.switch``: an online ReSU re-adapts its filter after the signal-to-noise ratio of its input
switches (paper Fig S2).

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146 (Fig S2: re-adaptation after a switch of the noise level).  Online rule: Bio-CCA of
Lipshutz D, Bahroun Y, Golkar S, Sengupta AM, Chklovskii DB (2021), Neural Computation 33(9):2309–2352,
https://doi.org/10.1162/neco_a_01414 (models/resu_online.py, local rules in Brian2 synapses).

Signal: one continuous Gaussian-process sample (squared-exponential kernel, length ``length`` samples,
variance 1) observed through white noise whose variance switches between segments of ``segment_samples``
samples: ``noise_vars`` = (0.03, 1.0, 0.03) by default, i.e. SNR high → low → high.  The past–future CCA
filter of such a signal depends on the SNR (it lengthens and smooths as the noise rises, paper Fig 3), so
the optimal filter changes at each switch.

The online network (models/resu_online.py) learns throughout with a *constant* learning rate
(``decay_samples`` = 10⁹ samples, far beyond the run: a decaying rate would freeze the filters and no
switch could be followed).  Every ``record_every`` samples the basal weights W_x are compared, by their
largest principal angle, with the analytic CCA filters of every segment's noise level.  Measured per
segment: the steady-state angle to its own optimum and to the previous segment's (mean over the last
``tail`` fraction of the segment's snapshots), the angle between the two optima, and the samples after a
switch until the filters are first closer to the new optimum than to the old one.

What the paper's panel computes (online learning or CCA on windows) is not recorded here; this protocol
measures re-adaptation with the suite's online ReSU.  ``k = 1`` (the leading filter ψ₁, the L3-like
low-pass one, whose shape depends most on the SNR); generated signals only; ``--quick`` uses shorter
segments.  The learning rate and sizes are fixed from the first segment only (the run before any switch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import ms

from b2models.analysis import cca
from b2models.backend import Session
from b2models.models import resu_online as ro
from b2models.protocol import Claim, Protocol


@dataclass
class SwitchParams:
    kernel: str = "se"
    length: float = 3.0  # kernel length (samples)
    noise_vars: tuple = field(default_factory=lambda: (0.03, 1.0, 0.03))  # one per segment (signal variance 1)
    segment_samples: int = 15_000
    m: int = 5
    h: int = 5
    k: int = 1
    eta0: float = 0.002  # constant learning rate
    decay_samples: float = 1e9  # ≫ the run: η stays η₀
    tau_m: float = 0.5
    n_inner: int = 8
    gamma: float = 0.35
    record_every: int = 250
    tail: float = 0.2  # fraction of a segment's snapshots averaged for its steady state
    dt_ms: float = 10.0  # labels only

    def validate(self):
        if self.kernel not in cca.KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; expected one of {cca.KERNELS}")
        if len(self.noise_vars) < 2 or any(v < 0 for v in self.noise_vars):
            raise ValueError("noise_vars: at least two segments, each noise variance >= 0")
        if self.length <= 0 or self.segment_samples < 10 * self.record_every:
            raise ValueError("length > 0 and segment_samples >= 10 record_every are required")
        if not 0 < self.tail <= 1:
            raise ValueError(f"tail must be in (0, 1], got {self.tail}")
        self.model().validate()

    def model(self) -> ro.BioCCAParams:
        return ro.BioCCAParams(dt=self.dt_ms * ms, m=self.m, h=self.h, k=self.k, eta0=self.eta0,
                               decay_samples=self.decay_samples, tau_m=self.tau_m, n_inner=self.n_inner,
                               gamma=self.gamma, record_every=self.record_every)


def quick_params(p: SwitchParams) -> SwitchParams:
    return dataclasses.replace(p, segment_samples=6000, eta0=0.004, n_inner=5, gamma=0.45, record_every=200)


def make_signal(p: SwitchParams, rng) -> tuple[np.ndarray, np.ndarray]:
    """The observed signal (n,) and the noise variance of every sample (n,)."""
    n = p.segment_samples * len(p.noise_vars)
    x = cca.sample_stationary(lambda lag: cca.kernel_autocovariance(p.kernel, lag, p.length), n, 1, rng=rng)[0]
    r = np.repeat(np.asarray(p.noise_vars, dtype=float), p.segment_samples)
    return x + np.sqrt(r) * rng.standard_normal(n), r


def optimal_filters(p: SwitchParams) -> list[np.ndarray]:
    """The analytic top-k past CCA filters at every segment's noise level."""
    return [cca.analytic_cca(p.kernel, p.m, p.h, p.length, noise_var=r, rank=p.k).past_filters
            for r in p.noise_vars]


def switch_analysis(wx_t, t_samples, optima, p: SwitchParams) -> dict:
    """Angles (degrees) of every W_x snapshot to every segment's optimum and, per segment, its steady state
    and re-adaptation (see the module docstring)."""
    t = np.asarray(t_samples)
    ang = np.array([[np.degrees(cca.principal_angles(W, B).max()) for B in optima] for W in wx_t])  # (n, S)
    seg = np.minimum(t // p.segment_samples, len(optima) - 1)
    rows = []
    for s in range(len(optima)):
        idx = np.flatnonzero(seg == s)
        tail = idx[-max(1, int(round(p.tail * len(idx)))):]
        row = {"segment": s, "noise_var": float(p.noise_vars[s]), "angle_own_deg": float(ang[tail, s].mean())}
        if s > 0:
            row["angle_previous_deg"] = float(ang[tail, s - 1].mean())
            row["optima_angle_deg"] = float(np.degrees(cca.principal_angles(optima[s], optima[s - 1]).max()))
            closer = idx[ang[idx, s] < ang[idx, s - 1]]
            row["samples_to_closer_to_new"] = int(t[closer[0]] - s * p.segment_samples) if closer.size else None
            row["readapted"] = bool(row["angle_own_deg"] < row["angle_previous_deg"])
        rows.append(row)
    return {"angles_deg": ang, "segments": rows}


def run(ctx) -> dict:
    p: SwitchParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    y, _ = make_signal(p, rng)
    optima = optimal_filters(p)
    mp = p.model()
    with Session(ctx.backend, "resu_switch", key=(dataclasses.asdict(p), ctx.backend), threads=ctx.threads) as s:
        net = ro.BioCCANetwork(mp, s, len(y))
        ctx.log(f"built in {s.build_s:.1f} s")
        out = net.run(y, weights=ro.initial_weights(mp, ctx.seed), seed=ctx.seed)
    res = switch_analysis(out["wx_t"], out["t_samples"], optima, p)
    for row in res["segments"]:
        ctx.log(f"segment {row['segment']} (noise {row['noise_var']:g}): angle to own optimum "
                f"{row['angle_own_deg']:.1f}°" + (f", to the previous one {row['angle_previous_deg']:.1f}° (optima "
                                                 f"{row['optima_angle_deg']:.1f}° apart); closer to the new optimum "
                                                 f"after {row['samples_to_closer_to_new']} samples"
                                                 if row["segment"] > 0 else ""))
    after = res["segments"][1:]
    metrics = {
        "noise_vars": list(map(float, p.noise_vars)), "segment_samples": p.segment_samples,
        "segments": res["segments"],
        "angle_before_switch_deg": res["segments"][0]["angle_own_deg"],
        "max_angle_own_after_switch_deg": float(max(r["angle_own_deg"] for r in after)),
        "min_angle_previous_after_switch_deg": float(min(r["angle_previous_deg"] for r in after)),
        "optima_angle_deg": float(min(r["optima_angle_deg"] for r in after)),
        "readapted_fraction": float(np.mean([r["readapted"] for r in after])),
        "max_samples_to_closer_to_new": (None if any(r["samples_to_closer_to_new"] is None for r in after)
                                         else int(max(r["samples_to_closer_to_new"] for r in after))),
    }
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(t_samples=out["t_samples"], angles_deg=res["angles_deg"], wx_final=out["wx"],
                           optima=np.array(optima), signal=y[:2000])
    _figure(ctx, p, out, res, optima)
    return metrics


def _figure(ctx, p, out, res, optima):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    t = out["t_samples"]
    for s, r in enumerate(p.noise_vars):
        if r not in p.noise_vars[:s]:  # one curve per distinct noise level (equal levels have one optimum)
            axes[0].plot(t, res["angles_deg"][:, s], lw=0.8, label=f"to the optimum at noise {r:g}")
    for s in range(1, len(p.noise_vars)):
        axes[0].axvline(s * p.segment_samples, color="0.5", ls=":")
    axes[0].set_xlabel("samples")
    axes[0].set_ylabel("largest principal angle (°)")
    axes[0].legend(fontsize=7)
    lags = -np.arange(p.m) * p.dt_ms
    for s, r in enumerate(p.noise_vars[:2]):
        f = optima[s][0]
        axes[1].plot(lags, f / np.abs(f).max(), color=f"C{s}", label=f"ψ₁ optimum, noise {r:g}")
    w = out["wx"][0]
    w = w * np.sign(w @ optima[-1][0])
    axes[1].plot(lags, w / np.abs(w).max(), "k--", label="online W_x at the end")
    axes[1].set_xlabel("lag (ms)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "switch_readaptation")
    plt.close(fig)


PROTOCOL = Protocol(
    name="resu.switch",
    paper="resu",
    summary="Online ReSU (Bio-CCA in Brian2 synapses) re-adapts its filter after SNR switches "
            "(Qin et al. 2025, Fig S2)",
    params=SwitchParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("readapted_fraction", "fraction of switches after which the filter ends closer to the new optimum "
              "than to the old", "filters re-adapt after a noise switch (Fig S2)", "1", lambda v: v == 1.0,
              "{:.2f}"),
        Claim("max_angle_own_after_switch_deg", "largest principal angle to the new optimum, end of each "
              "segment after a switch (worst segment)", "re-adapts (Fig S2)", "≤ 15° (suite)",
              lambda v: v <= 15.0, "{:.1f}"),
        Claim("optima_angle_deg", "angle between the optima before and after a switch", "—", "", None, "{:.1f}"),
        Claim("max_samples_to_closer_to_new", "samples after a switch until closer to the new optimum", "—", "",
              None, "{:d}"),
    ],
    figures=["switch_readaptation"],
)
