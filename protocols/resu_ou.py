"""Protocol ``resu.ou``: past–future CCA of a noisy Ornstein–Uhlenbeck process against Kalman filtering.

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146 (the OU example of Fig 3).

An OU process sampled every dt is the AR(1) process x_{t+1} = a x_t + w_t with a = e^{−dt/τ} and
var(w) = σ²(1 − a²).  Because it is Markov, its past and its future share one dimension: without noise the
past–future CCA has a single non-zero canonical correlation ρ₁ = a and the past filter is a delta on the
most recent sample.  Observed through white noise, y_t = x_t + n_t with var(n) = r, the future still
depends on the past only through the Kalman estimate x̂_t = E[x_t | y_≤t], so the CCA stays rank one and
its past filter must be the steady-state Kalman filter's impulse response

    ψ₁[k] ∝ K · ((1 − K) a)^k,    K = P / (P + r),    P = a² P r / (P + r) + σ²(1 − a²)

(P: the one-step prior variance, the positive root of P² + (r(1 − a²) − q) P − q r = 0, q = σ²(1 − a²)).
The filter is one exponential lobe whose time constant −dt / ln((1 − K) a) grows from 0 (no noise) towards
τ as the noise rises: the SNR adaptation of Fig 3 in its simplest form.

The protocol computes, for a range of noise variances, the analytic CCA from the OU covariance
(analysis/cca.py), the CCA of sampled trajectories, and the Kalman prediction, and reports canonical
correlations, past–future mutual information (paper Eq 8), cosines between the filters, the number of
lobes and the filters' time constants (fitted by log-linear regression on the lags where |ψ| ≥ 1 % of
its maximum).  Runs on generated signals only; ``--quick`` uses fewer samples and noise levels.
Units: time in samples (``dt_ms`` only labels the figures).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from b2models.analysis import cca
from b2models.protocol import Claim, Protocol


@dataclass
class OUParams:
    tau: float = 8.0  # correlation time τ of the OU process, samples
    m: int = 40  # past length (samples)
    h: int = 40  # future length (samples)
    rank: int = 3  # canonical pairs computed
    reg: float = 1e-8  # relative ridge on C_pp, C_ff
    n_samples: int = 200_000  # samples per trajectory
    n_traj: int = 4  # independent trajectories
    noise_vars: tuple = field(default_factory=lambda: (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0))
    lobe_threshold: float = 0.1
    dt_ms: float = 10.0  # ms per sample (labels only)

    def validate(self):
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0 samples, got {self.tau}")
        if self.m < 2 or self.h < 1 or not 1 <= self.rank <= min(self.m, self.h):
            raise ValueError(f"need m >= 2, h >= 1 and 1 <= rank <= min(m, h) (m={self.m}, h={self.h}, "
                             f"rank={self.rank})")
        if self.n_samples < 10 * (self.m + self.h) or self.n_traj < 1:
            raise ValueError(f"n_samples={self.n_samples} is too short for m + h = {self.m + self.h}")
        if len(self.noise_vars) < 2 or any(v < 0 for v in self.noise_vars):
            raise ValueError("noise_vars: at least two values >= 0")


def quick_params(p: OUParams) -> OUParams:
    return dataclasses.replace(p, n_samples=40_000, n_traj=2, noise_vars=(0.0, 0.1, 1.0, 10.0))


def kalman_gain(a: float, noise_var: float, variance: float = 1.0) -> float:
    """Steady-state Kalman gain K for x_{t+1} = a x_t + w (stationary variance ``variance``) seen in
    white noise of variance ``noise_var``; K = 1 without noise."""
    if noise_var == 0:
        return 1.0
    q = variance * (1.0 - a * a)
    b = noise_var * (1.0 - a * a) - q
    P = 0.5 * (-b + np.sqrt(b * b + 4.0 * q * noise_var))
    return float(P / (P + noise_var))


def kalman_filter_weights(a: float, noise_var: float, m: int, variance: float = 1.0) -> np.ndarray:
    """Impulse response of the steady-state Kalman filter on lags 0 … m−1 (lag 0 = most recent)."""
    K = kalman_gain(a, noise_var, variance)
    return K * ((1.0 - K) * a) ** np.arange(m)


def decay_time(w, floor: float = 0.01) -> float:
    """Time constant (samples) of an exponential filter: −1/slope of log|w| over lags with |w| ≥ floor·max.
    0 for a filter concentrated on one lag."""
    w = np.abs(np.asarray(w, dtype=float))
    keep = np.flatnonzero(w >= floor * w.max())
    keep = keep[: np.argmax(np.diff(np.r_[keep, keep[-1] + 2]) > 1) + 1]  # first contiguous run from lag 0
    if len(keep) < 2:
        return 0.0
    slope = np.polyfit(keep, np.log(w[keep]), 1)[0]
    return float(-1.0 / slope) if slope < 0 else float("inf")


def _cos(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(ctx) -> dict:
    p: OUParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    a = float(np.exp(-1.0 / p.tau))
    nv = np.asarray(p.noise_vars, dtype=float)
    ctx.log(f"resu.ou: τ = {p.tau} samples (a = {a:.4f}), m = h = {p.m}/{p.h}, {p.n_traj}×{p.n_samples} "
            f"samples, noise variances {nv.tolist()}")
    x = cca.sample_ou(p.n_samples, p.tau, n_traj=p.n_traj, rng=rng)
    noise = rng.standard_normal(x.shape)
    rows = []
    for r in ctx.progress(nv, desc="noise levels"):
        an = cca.analytic_cca("ou", p.m, p.h, p.tau, noise_var=r, rank=p.rank, reg=p.reg if r > 0 else 0.0)
        sa = cca.past_future_cca(list(x + np.sqrt(r) * noise), p.m, p.h, rank=p.rank, reg=p.reg,
                                 method="toeplitz")
        kal = kalman_filter_weights(a, r, p.m)
        rows.append({
            "noise_var": float(r), "rho_analytic": an.rho, "rho_sampled": sa.rho,
            "mi_analytic": an.mutual_information, "mi_sampled": sa.mutual_information,
            "psi_analytic": an.past_filters[0], "psi_sampled": sa.past_filters[0], "psi_kalman": kal,
            "cos_analytic_kalman": _cos(an.past_filters[0], kal), "cos_sampled_kalman": _cos(sa.past_filters[0], kal),
            "lobes_sampled": cca.count_lobes(sa.past_filters[0], p.lobe_threshold),
            "tau_filter_sampled": decay_time(sa.past_filters[0]), "tau_filter_kalman": decay_time(kal),
            "kalman_gain": kalman_gain(a, r),
        })
        ctx.log(f"noise {r:g}: ρ analytic {np.round(an.rho, 4)}, sampled {np.round(sa.rho, 4)}; "
                f"cos(ψ1 sampled, Kalman) = {rows[-1]['cos_sampled_kalman']:.4f}; time constant sampled "
                f"{rows[-1]['tau_filter_sampled']:.2f}, Kalman {rows[-1]['tau_filter_kalman']:.2f} samples")
    noisy = [row for row in rows if row["noise_var"] > 0]
    clean = rows[int(np.argmin(nv))]
    metrics = {
        "a_expected": a, "noise_vars": nv.tolist(),
        "rho1_sampled_noiseless": float(clean["rho_sampled"][0]),
        "rho1_noiseless_error": abs(float(clean["rho_sampled"][0]) - a) if clean["noise_var"] == 0 else None,
        "rho2_analytic_max": float(max(row["rho_analytic"][1] for row in rows)),
        "rho2_sampled_max": float(max(row["rho_sampled"][1] for row in rows)),
        "cos_sampled_kalman_min": float(min(row["cos_sampled_kalman"] for row in rows)),
        "cos_analytic_kalman_min": float(min(row["cos_analytic_kalman"] for row in rows)),
        "lobes_sampled": [row["lobes_sampled"] for row in rows],
        "lobes_max": int(max(row["lobes_sampled"] for row in rows)),
        "tau_filter_sampled": [row["tau_filter_sampled"] for row in rows],
        "tau_filter_kalman": [row["tau_filter_kalman"] for row in rows],
        "tau_filter_increases_with_noise": bool(np.all(np.diff([row["tau_filter_sampled"] for row in rows]) > 0))
        if np.all(np.diff(nv) > 0) else None,
        "tau_filter_max_rel_error": float(max(abs(row["tau_filter_sampled"] - row["tau_filter_kalman"])
                                              / row["tau_filter_kalman"] for row in noisy)) if noisy else None,
        "rho1_analytic": [float(row["rho_analytic"][0]) for row in rows],
        "rho1_sampled": [float(row["rho_sampled"][0]) for row in rows],
        "mi_analytic_nats": [row["mi_analytic"] for row in rows],
        "mi_sampled_nats": [row["mi_sampled"] for row in rows],
    }
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(noise_vars=nv, psi_sampled=np.array([r["psi_sampled"] for r in rows]),
                           psi_analytic=np.array([r["psi_analytic"] for r in rows]),
                           psi_kalman=np.array([r["psi_kalman"] for r in rows]),
                           rho_analytic=np.array([r["rho_analytic"] for r in rows]),
                           rho_sampled=np.array([r["rho_sampled"] for r in rows]))
    _figure(ctx, p, rows)
    return metrics


def _figure(ctx, p: OUParams, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    lags = np.arange(p.m) * p.dt_ms
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(rows)))
    for c, row in zip(colors, rows):
        s = row["psi_sampled"] / np.abs(row["psi_sampled"]).max()
        k = row["psi_kalman"] / np.abs(row["psi_kalman"]).max()
        axes[0].plot(-lags, s, color=c, label=f"r = {row['noise_var']:g}")
        axes[0].plot(-lags, k, color=c, ls=":", lw=1.5)
    axes[0].set_xlim(-lags[min(len(lags) - 1, 30)], 0)
    axes[0].set_xlabel("lag (ms)")
    axes[0].set_title("ψ1 sampled (solid) vs Kalman (dotted)")
    axes[0].legend(fontsize=6)
    nv = np.array([row["noise_var"] for row in rows])
    xs = np.where(nv > 0, nv, nv[nv > 0].min() / 10 if np.any(nv > 0) else 1e-3)
    for k in range(min(3, len(rows[0]["rho_sampled"]))):
        axes[1].semilogx(xs, [row["rho_sampled"][k] for row in rows], "o-", label=f"ρ{k + 1} sampled")
        axes[1].semilogx(xs, [row["rho_analytic"][k] for row in rows], "k:", lw=1)
    axes[1].set_xlabel("noise variance (0 plotted at the left)")
    axes[1].set_title("canonical correlations (dotted: analytic)")
    axes[1].legend(fontsize=7)
    axes[2].semilogx(xs, [row["tau_filter_sampled"] * p.dt_ms for row in rows], "o-", label="ψ1 sampled")
    axes[2].semilogx(xs, [row["tau_filter_kalman"] * p.dt_ms for row in rows], "k:", label="Kalman")
    axes[2].axhline(p.tau * p.dt_ms, color="0.6", lw=0.8, label="τ of the process")
    axes[2].set_xlabel("noise variance")
    axes[2].set_ylabel("filter time constant (ms)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "ou_filters")
    plt.close(fig)


PROTOCOL = Protocol(
    name="resu.ou",
    paper="resu",
    summary="Past–future CCA of a noisy OU process: one canonical pair, Kalman-filter past filters whose "
            "time constant grows with noise (Qin et al. 2025, Fig 3)",
    params=OUParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("rho1_noiseless_error", "|ρ1 − e^{−dt/τ}| without noise (sampled)", "ρ1 = e^{−dt/τ}", "≤ 0.01",
              lambda v: v is not None and v <= 0.01),
        Claim("rho2_analytic_max", "largest second canonical correlation (analytic, all noise levels)",
              "0 (Markov: one pair)", "< 1e-3", lambda v: v < 1e-3, "{:.2g}"),
        Claim("cos_sampled_kalman_min", "min cosine(ψ1 sampled, Kalman filter) over noise levels",
              "ψ1 = Kalman filter", "≥ 0.99", lambda v: v >= 0.99),
        Claim("lobes_max", "lobes of ψ1 (max over noise levels)", "1", "1", lambda v: v == 1, "{:d}"),
        Claim("tau_filter_increases_with_noise", "filter time constant grows with noise", "yes", "yes",
              lambda v: bool(v), "{}"),
    ],
    figures=["ou_filters"],
)
