"""Protocol ``spikecoding.fig3``: learning with correlated 2-D inputs (Brendel et al. 2020, Fig 3 C–D).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

The Fig 2 network (20 neurons, same parameters) learns a 2-D signal whose two components are
correlated: the smoothed-noise input of Fig 2 is mixed as x = A x_white with
A = R(θ) diag(s₁, s₂) R(θ)ᵀ, so the input cloud is an ellipse whose long axis points at θ
(default 45°) with standard deviations in the ratio s₁/s₂ (default 3) and the same total variance
as in Fig 2.  The feedforward rule for correlated inputs is the one documented in
:mod:`models.spikecoding` (presynaptic term P x, P = (tr M/J) M⁻¹ with M estimated from a separate
200 s stretch of training input); for comparison the same network is also trained with the
plain Eq 7 (presynaptic term x).  Both learn for ``duration`` from the same start and input.

Measured on each network after learning: held-out coding error and rate (as in Fig 2), tuning
curves (preferred direction: the angle of the peak) and how the preferred directions, the feedforward vectors and the
optimal decoder vectors are distributed around the input's axes, and the distance of Ω to
−FᵀP⁻¹F (= −F̃ᵀF̃, the optimal recurrence of the whitened problem) and to −FᵀD (D fitted).  The axial alignment of a set
of directions φ_k is mean cos 2(φ_k − θ): +1 all along the long axis, −1 all along the short
one, 0 uniform; the input's own value (over the samples of x) is reported beside it, and the
fraction of preferred directions within ±22.5° of the long axis (either sign) against the
fraction within ±22.5° of the short axis gives the density ratio of Fig 3 D (1 = uniform).
Tuning curves are measured on the input's iso-density ellipse (constant Mahalanobis radius, equally
spaced angles), where every direction is equally typical of the input; the Fig 2 measurement at
constant |x| is reported too (``*_const_radius``): there inputs along the short axis are far out in
the tail of the distribution, the neurons coding them fire hardest, and the rate peaks move
towards the short axis.  Fig 3 A–B: each neuron's tuning maximum (angle of its highest rate) against the direction
of its feedforward vector F_i, at constant |x| and on the ellipse (``*_peak_vs_F_*``).

Deviations: the paper's exact input distribution for Fig 3 is not reproduced (an elliptical
Gaussian cloud is used); learning is shorter than Fig 2's 14,000 s (default 5,000 s per network).

Figures: ``fig3C_weights`` (input samples with feedforward and decoder vectors, both rules),
``fig3D_tuning`` (tuning curves and histogram of preferred directions against the input's angle
distribution), ``fig3_learning`` (coding error over learning).  No data files are needed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, second

from b2models.analysis import coding
from b2models.backend import Session
from b2models.data.signals import SmoothedNoise
from b2models.models.spikecoding import (
    SpikeCodingNetwork,
    SpikeCodingParams,
    decorrelated_hebbian_signal,
    hebbian_precision,
)
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol
from b2models.protocols.spikecoding_fig2 import (
    RUN_ARG_FIELDS,
    Fig2Params,
    _Presenter,
    evaluate,
    measure_tuning,
    snapshot_chunks,
)

RULES = ("decorrelated", "plain")


@dataclass
class Fig3Params(Fig2Params):
    """Fig 2 network and protocol plus the input's correlation structure."""

    duration: Quantity = field(default_factory=lambda: 5000 * second)  # learning time per network
    n_snapshots: int = 8
    init: str = "authors_code"  # random unit feedforward vectors: no direction is favoured at the start
    axis_angle_deg: float = 45.0  # direction θ of the long axis of the input ellipse
    axis_ratio: float = 3.0  # s.d. along the long axis / s.d. along the short axis
    stats_duration: Quantity = field(default_factory=lambda: 200 * second)  # input used to estimate M
    n_angles: int = 36
    compare_plain: bool = True  # also train the same network with the plain Eq 7

    def validate(self):
        super().validate()
        if self.J != 2:
            raise ValueError(f"J={self.J}: the correlated-input protocol is 2-D (J=2)")
        if self.axis_ratio < 1:
            raise ValueError(f"axis_ratio={self.axis_ratio} must be >= 1 (long / short axis)")
        if float(self.stats_duration) <= 0:
            raise ValueError(f"stats_duration={self.stats_duration} must be positive")


def quick_params(p: Fig3Params) -> Fig3Params:
    """400 s per rule with a 10× faster feedforward rate (ε_F = 1e-3), so the directions can rearrange."""
    return dataclasses.replace(p, duration=400 * second, chunk=4 * second, n_snapshots=5, n_angles=24,
                               tuning_hold=0.6 * second, stats_duration=50 * second, eps_F=1e-3)


def mixing_matrix(angle_deg: float, ratio: float) -> np.ndarray:
    """A = R diag(s₁, s₂) Rᵀ with s₁/s₂ = ratio and s₁² + s₂² = 2 (total variance of the white input)."""
    th = np.radians(angle_deg)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    s2 = np.sqrt(2.0 / (1.0 + ratio**2))
    return R @ np.diag([ratio * s2, s2]) @ R.T


class CorrelatedNoise:
    """The Fig 2 smoothed noise mixed by A (c and x are linear in the noise, so both are mixed)."""

    def __init__(self, white: SmoothedNoise, A):
        self.white = white
        self.A = np.asarray(A, dtype=float)

    def next(self, n_steps):
        c, x = self.white.next(n_steps)
        return c @ self.A.T, x @ self.A.T


def axial_alignment(angles, axis_rad: float, weights=None) -> float:
    """mean cos 2(φ − θ): +1 along the axis, −1 orthogonal, 0 uniform (NaN angles ignored)."""
    a = np.asarray(angles, dtype=float)
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(a) & (w > 0)
    if not ok.any():
        return float("nan")
    return float(np.sum(w[ok] * np.cos(2 * (a[ok] - axis_rad))) / np.sum(w[ok]))


#: preferred direction of each neuron: the angle of its highest rate (NaN for silent neurons)
peak_angles = coding.peak_angles


def axis_density_ratio(angles, axis_rad: float, half_width_rad: float = np.pi / 8) -> float:
    """(directions within ±half_width of the long axis, either sign) / (same for the short axis, counted as at
    least 1 so that the ratio stays finite for small populations)."""
    a = np.asarray(angles, dtype=float)
    a = a[np.isfinite(a)]
    d_long = np.abs(np.angle(np.exp(2j * (a - axis_rad)))) / 2  # axial distance in [0, π/2]
    n_long = int(np.sum(d_long <= half_width_rad))
    n_short = int(np.sum(d_long >= np.pi / 2 - half_width_rad))
    return float(n_long / max(n_short, 1))


def measure_tuning_on_contour(pres: _Presenter, p: Fig3Params, radius: float, A):
    """Tuning curves on the input's iso-density ellipse: at equally spaced angles φ the constant input
    x = ρ(φ)(cos φ, sin φ) with |A⁻¹x| = radius (the white-noise radius), held for tuning_hold each."""
    from b2models.data.signals import leaky_integrate

    net = pres.net
    saved = net.state()
    hold = int(round(float(p.tuning_hold / p.dt)))
    angles = np.linspace(0, 2 * np.pi, p.n_angles, endpoint=False)
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rho = radius / np.linalg.norm(np.linalg.solve(A, u.T), axis=0)
    pts = rho[:, None] * u
    c = np.repeat(float(p.lambda_) * pts, hold, axis=0)
    x = leaky_integrate(c, float(p.lambda_ * p.dt), float(p.dt), x0=pts[0])
    d = int(round(float(p.discard / p.dt)))
    bounds = [(k * hold + d, (k + 1) * hold) for k in range(p.n_angles)]
    si, st, _ = pres.present(c, x, learning=False)
    rates = coding.tuning_curves(si, st, p.N, bounds, float(p.dt))
    net.set_state(V=saved["V"], r=saved["r"])
    return angles, rates


def _learn_one(ctx, p: Fig3Params, rule: str, net, train, test_fit, test_eval, P, radius, start):
    """Learn from the weights ``start`` with one form of the feedforward rule."""
    L = net.chunk_steps
    net.set_state(F=start["F"], Omega=start["Omega"], V=np.zeros(p.N), r=np.zeros(p.N))
    pres = _Presenter(net, ctx.seed)
    F0 = net.F.copy()
    n_chunks = int(np.floor(float(p.duration / p.chunk)))
    snaps = set(int(s) for s in snapshot_chunks(n_chunks, p.n_snapshots)[1:])
    hist_t, hist_err, hist_rate = [], [], []

    def snapshot(k):
        ev = evaluate(pres, p, test_fit, test_eval)
        hist_t.append(k * float(p.chunk))
        hist_err.append(ev["error"])
        hist_rate.append(ev["rate_hz"])
        ctx.log(f"[{rule}] t={k * float(p.chunk):8.1f} s  error={ev['error']:.4f}  rate={ev['rate_hz']:.2f} Hz")
        return ev

    snapshot(0)
    bar = ctx.progress(total=n_chunks, desc=f"learning ({rule})", unit="chunk")
    ev = None
    for k in range(1, n_chunks + 1):
        c, x = train.next(L)
        pres.present(c, decorrelated_hebbian_signal(x, P) if rule == "decorrelated" else x, learning=True)
        bar.update(1)
        if k in snaps:
            ev = snapshot(k)
    bar.close()
    angles, tuning = measure_tuning(pres, p, radius)
    _, tuning_contour = measure_tuning_on_contour(pres, p, radius, train.A)
    return {
        "t": np.array(hist_t), "error": np.array(hist_err), "rate_hz": np.array(hist_rate),
        "F_initial": F0, "F": net.F.copy(), "Omega": net.Omega.copy(), "decoder": ev["decoder"],
        "tuning_angles": angles, "tuning": tuning, "tuning_contour": tuning_contour,
    }


def _learn(ctx, p: Fig3Params) -> dict:
    dt = float(p.dt)
    L = int(round(float(p.chunk / p.dt)))
    lam_dt = float(p.lambda_ * p.dt)
    A = mixing_matrix(p.axis_angle_deg, p.axis_ratio)
    sig = float(p.input_sigma / p.dt)
    held_out = CorrelatedNoise(SmoothedNoise(2, sig, p.input_amplitude, lam_dt, dt, seed=[ctx.seed, 2]), A)
    test_fit = held_out.next(L * p.test_chunks)
    test_eval = held_out.next(L * p.test_chunks)
    stats = CorrelatedNoise(SmoothedNoise(2, sig, p.input_amplitude, lam_dt, dt, seed=[ctx.seed, 3]), A)
    x_stats = stats.next(int(round(float(p.stats_duration / p.dt))))[1]
    P = hebbian_precision(x_stats)
    radius = p.tuning_radius or float(np.sqrt(np.mean(np.sum(x_stats**2, axis=1))))
    model_key = jsonable({f.name: getattr(p, f.name) for f in dataclasses.fields(SpikeCodingParams)
                          if f.name not in RUN_ARG_FIELDS})
    out = {"A": A, "P": P, "x_sample": x_stats[:: max(1, len(x_stats) // 4000)], "tuning_radius": radius}
    with Session(ctx.backend, "spikecoding_fig3", key=(model_key, L), threads=ctx.threads) as session:
        net = SpikeCodingNetwork(p, session, L, plastic=True, seed=ctx.seed, name="sc")
        ctx.log(f"built in {session.build_s:.1f} s ({session.directory})")
        start = net.state()
        for rule in RULES if p.compare_plain else RULES[:1]:
            train = CorrelatedNoise(SmoothedNoise(2, sig, p.input_amplitude, lam_dt, dt, seed=[ctx.seed, 1]), A)
            res = _learn_one(ctx, p, rule, net, train, test_fit, test_eval, P, radius, start)
            out.update({f"{rule}_{k}": v for k, v in res.items()})
        out["build_s"] = session.build_s
    return out


def run(ctx) -> dict:
    p: Fig3Params = ctx.params
    p.validate()
    ctx.log(f"spikecoding.fig3: N={p.N}, correlated 2-D input (long axis {p.axis_angle_deg:g} deg, s.d. ratio "
            f"{p.axis_ratio:g}), {float(p.duration):g} s of learning per rule, backend={ctx.backend}, seed={ctx.seed}")
    stage = {"params": p, "seed": ctx.seed, "backend": ctx.backend}
    a = ctx.cached_stage("spikecoding_fig3", stage, lambda: _learn(ctx, p), "learning run")
    axis = np.radians(p.axis_angle_deg)
    xs = a["x_sample"]
    x_ang = np.arctan2(xs[:, 1], xs[:, 0])
    x_w = np.sum(xs**2, axis=1)
    metrics = {"input_alignment": axial_alignment(x_ang, axis),
               "input_alignment_energy": axial_alignment(x_ang, axis, x_w),
               "input_density_ratio": axis_density_ratio(x_ang, axis)}
    rules = [r for r in RULES if f"{r}_tuning" in a]
    for rule in rules:
        tun = a[f"{rule}_tuning"]
        pref_circle = peak_angles(a[f"{rule}_tuning_angles"], tun)
        pref = peak_angles(a[f"{rule}_tuning_angles"], a[f"{rule}_tuning_contour"])
        F, D = a[f"{rule}_F"], a[f"{rule}_decoder"]
        act = np.flatnonzero(np.linalg.norm(D, axis=0) > 0)  # neurons that fired in the decoder's fit
        metrics.update({
            f"{rule}_final_error": float(a[f"{rule}_error"][-1]),
            f"{rule}_initial_error": float(a[f"{rule}_error"][0]),
            f"{rule}_final_rate_hz": float(a[f"{rule}_rate_hz"][-1]),
            f"{rule}_tuning_alignment": axial_alignment(pref, axis),
            f"{rule}_tuning_density_ratio": axis_density_ratio(pref, axis),
            f"{rule}_tuning_alignment_const_radius": axial_alignment(pref_circle, axis),
            f"{rule}_tuning_density_ratio_const_radius": axis_density_ratio(pref_circle, axis),
            f"{rule}_feedforward_alignment": axial_alignment(np.arctan2(F[1], F[0]), axis),
            f"{rule}_decoder_alignment": axial_alignment(np.arctan2(D[1], D[0]), axis),
            f"{rule}_omega_vs_minus_FD": coding.relative_distance_to_scaled(
                a[f"{rule}_Omega"][np.ix_(act, act)], -(F[:, act].T @ D[:, act]))[0],
            f"{rule}_omega_vs_whitened": coding.relative_distance_to_scaled(
                a[f"{rule}_Omega"][np.ix_(act, act)], -(F[:, act].T @ np.linalg.solve(a["P"], F[:, act])))[0],
            f"{rule}_omega_vs_minus_FtF": coding.recurrent_vs_feedforward(a[f"{rule}_Omega"][np.ix_(act, act)],
                                                                           F[:, act])[0],
            f"{rule}_active_neurons": int(len(act)),
        })
        # Fig 3 A–B: each neuron's tuning maximum against the direction of its feedforward vector F_i (both
        # tuning measurements; tuning maximum = the angle of the highest rate, as for the density ratio above)
        step = 360.0 / len(a[f"{rule}_tuning_angles"])
        for tag, peaks in (("", pref_circle), ("_contour", pref)):
            dev = np.degrees(np.abs(coding.angle_difference(peaks, np.arctan2(F[1], F[0]))))
            dev = dev[np.isfinite(dev)]
            metrics[f"{rule}_peak_vs_F_median_deg{tag}"] = float(np.median(dev)) if dev.size else float("nan")
            metrics[f"{rule}_peak_vs_F_within_step{tag}"] = float(np.mean(dev <= step + 1e-9)) if dev.size \
                else float("nan")
        metrics[f"{rule}_tuning_step_deg"] = step
    metrics["tuning_radius"] = float(a["tuning_radius"])
    metrics["build_s"] = float(a["build_s"])
    for k, v in metrics.items():
        if isinstance(v, float) and not np.isfinite(v):
            metrics[k] = None
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**a)
    _figures(ctx, p, a, metrics, rules)
    return metrics


def _figures(ctx, p, a, m, rules):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = np.radians(p.axis_angle_deg)
    xs = a["x_sample"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), squeeze=False)
    axes = axes[0]
    for ax, rule in zip(axes, rules):
        ax.plot(xs[:, 0], xs[:, 1], ".", color="0.8", ms=1, zorder=0)
        F, D = a[f"{rule}_F"], a[f"{rule}_decoder"]
        lim = np.percentile(np.abs(xs), 99)
        sF = 0.8 * lim / max(np.linalg.norm(F, axis=0).max(), 1e-12)
        sD = 0.8 * lim / max(np.linalg.norm(D, axis=0).max(), 1e-12)
        ax.quiver(np.zeros(p.N), np.zeros(p.N), sF * F[0], sF * F[1], angles="xy", scale_units="xy", scale=1,
                  color="C0", width=0.006, label="feedforward F (scaled)")
        ax.quiver(np.zeros(p.N), np.zeros(p.N), sD * D[0], sD * D[1], angles="xy", scale_units="xy", scale=1,
                  color="C3", width=0.004, label="decoder D (scaled)")
        ax.plot([-lim * np.cos(axis), lim * np.cos(axis)], [-lim * np.sin(axis), lim * np.sin(axis)], "k:", lw=1)
        ax.set_aspect("equal")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{rule} rule: error {m[f'{rule}_final_error']:.4f}")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig3C_weights")

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    deg_axis = p.axis_angle_deg
    bins = np.linspace(-180, 180, 17)
    x_ang = np.degrees(np.arctan2(xs[:, 1], xs[:, 0]))
    for ax, rule in zip(axes[:2], rules):
        ang = np.degrees(a[f"{rule}_tuning_angles"])
        ax.plot(ang, a[f"{rule}_tuning_contour"], lw=1)
        for d in (deg_axis, deg_axis + 180):
            ax.axvline(d % 360, color="k", ls=":", lw=1)
        ax.set_xlabel("input angle (deg)")
        ax.set_ylabel("rate (Hz)")
        ax.set_title(f"tuning on the input's iso-density ellipse, {rule} rule", fontsize=9)
    ax = axes[2]
    ax.hist(x_ang, bins=bins, density=True, color="0.8", label="input angles")
    for rule, col in zip(rules, ("C0", "C1")):
        pref = np.degrees(np.angle(np.exp(1j * peak_angles(a[f"{rule}_tuning_angles"], a[f"{rule}_tuning_contour"]))))
        ax.hist(pref[np.isfinite(pref)], bins=bins, density=True, histtype="step", color=col, lw=2,
                label=f"preferred directions ({rule})")
    ax.set_xlabel("angle (deg)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig3D_tuning")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rule in rules:
        t = np.maximum(a[f"{rule}_t"], float(p.chunk) / 2)
        ax.plot(t, a[f"{rule}_error"], "o-", ms=3, label=rule)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning time (s)")
    ax.set_ylabel("coding error")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig3_learning")


PROTOCOL = Protocol(
    name="spikecoding.fig3",
    paper="spikecoding",
    summary="correlated 2-D inputs: tuning density and weights follow the input distribution (Brendel et al. 2020, "
            "Fig 3 C-D)",
    params=Fig3Params,
    quick=quick_params,
    run=run,
    claims=[
        Claim("decorrelated_tuning_density_ratio",
              "preferred directions near the long / near the short input axis (±22.5°)",
              "denser where the input is denser (Fig 3 D)", "> 1.5", lambda v: v is not None and v > 1.5, "{:.2f}"),
        Claim("decorrelated_tuning_alignment", "axial alignment of preferred directions, mean cos 2(φ − θ)",
              "towards the long axis", "> 0.2", lambda v: v is not None and v > 0.2, "{:.2f}"),
        Claim("decorrelated_decoder_alignment", "axial alignment of the decoder vectors",
              "decoders follow the input distribution (Fig 3 C)", "> 0.2",
              lambda v: v is not None and v > 0.2, "{:.2f}"),
        Claim("decorrelated_peak_vs_F_median_deg", "median |tuning maximum − angle of F_i| (deg; constant |x|, "
              "active neurons)", "tuning maxima point along the feedforward weights (Fig 3 A–B)",
              "≤ one tuning-angle step", None, "{:.1f}"),
        Claim("decorrelated_peak_vs_F_within_step", "share of neurons whose tuning maximum lies within one "
              "tuning-angle step of F_i", "aligned (Fig 3 A–B)", "≥ 0.8", lambda v: v is not None and v >= 0.8,
              "{:.2f}"),
        Claim("decorrelated_peak_vs_F_median_deg_contour", "the same on the input's iso-density ellipse (deg)",
              "—", "(secondary)", None, "{:.1f}"),
        Claim("decorrelated_final_error", "coding error after learning (correlated-input rule)",
              "precise code, as for white inputs", "≤ 0.01", lambda v: v is not None and v <= 0.01),
        Claim("decorrelated_omega_vs_whitened", "‖Ω − s(−FᵀP⁻¹F)‖²/‖Ω‖² (neurons active in the test)",
              "Ω → −F̃ᵀF̃ in whitened coordinates", "≤ 0.05", lambda v: v is not None and v <= 0.05),
        Claim("decorrelated_omega_vs_minus_FD", "‖Ω − s(−FᵀD)‖²/‖Ω‖², D the fitted decoder", "Ω = −FᵀD", "",
              None),
        Claim("plain_final_error", "coding error after learning with the plain Eq 7", "—", "(comparison)", None),
        Claim("input_alignment", "axial alignment of the input samples themselves", "—", "(reference)", None,
              "{:.2f}"),
    ],
    figures=["fig3C_weights", "fig3D_tuning", "fig3_learning"],
)
