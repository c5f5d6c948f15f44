"""Protocol ``resu.mou``: past–future CCA of an oscillating two-dimensional Ornstein–Uhlenbeck process,
against the theory (the steady-state Kalman filter), paper Fig 2B.

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146 (Fig 2B: an example multivariate OU process, whose past–future CCA filters match the
theory).

Process: a two-dimensional OU process whose drift rotates as it decays, sampled every dt,

    x_{t+1} = A x_t + w_t,    A = a R(ω),  a = e^{−1/τ},  R(ω) = [[cos ω, −sin ω], [sin ω, cos ω]],

with var(w) = (1 − a²) I, so that the stationary covariance is I and the lagged covariance is
Γ(k) = cov(x_{t+k}, x_t) = a^k R(kω).  Both coordinates are observed through white noise of variance r:
y_t = x_t + n_t (two channels).

Theory.  The process is Markov in its 2-D state, so the future of y depends on its past only through the
Kalman estimate x̂_t = E[x_t | y_≤t]: the past–future CCA has exactly two non-zero canonical correlations
(analytic ρ₃ = 0) and its two past filters span the rows of the steady-state Kalman filter

    x̂_t = Σ_k G_k y_{t−k},    G_k = ((I − K) A)^k K,   K = P (P + r I)^{-1},

P the one-step prior covariance (discrete algebraic Riccati equation).  Here P = p I and K = κ I, so the
filters are damped rotations, ψ ∝ κ ((1 − κ) a)^k [cos kω, ∓ sin kω]: they *oscillate* at the process's own
frequency and lengthen as the noise rises.  Without noise K = I: the filters are deltas on the present
sample (the process is then observed exactly).

Measured, for each noise variance: the principal angles between the top-2 past CCA filters (sampled,
``n_traj`` trajectories of ``n_samples``) and the rows of the Kalman filter truncated at m lags; the same
for the analytic CCA (covariances from Γ(k) exactly); ρ₁…ρ₃ analytic and sampled; the oscillation period
of the filters (from the phase advance per lag of the leading filter's two channels, x̂ ∝ Σ_k (…) R(−kω)).
Generated signals only.  ``--quick``: fewer samples and noise levels.  Time in samples.

Conventions fixed before the comparison: filters are compared as subspaces (principal angles), because the
CCA fixes the two filters only up to a rotation within their span when ρ₁ = ρ₂ (here the two canonical
correlations are equal by the rotational symmetry of the process); the verdict uses the largest principal
angle over all noise levels; the suite's criterion is cos(angle) ≥ 0.99.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from b2models.analysis import cca
from b2models.protocol import Claim, Protocol


@dataclass
class MOUParams:
    tau: float = 8.0  # decay time τ of the process, samples
    period: float = 16.0  # rotation period 2π/ω, samples
    m: int = 40  # past length (samples)
    h: int = 40  # future length (samples)
    reg: float = 1e-8  # relative ridge on C_pp, C_ff
    n_samples: int = 200_000  # samples per trajectory
    n_traj: int = 2  # independent trajectories
    noise_vars: tuple = field(default_factory=lambda: (0.0, 0.1, 0.3, 1.0, 3.0))
    dt_ms: float = 10.0  # ms per sample (figure labels only)

    def validate(self):
        if self.tau <= 0 or self.period <= 2:
            raise ValueError(f"tau > 0 and period > 2 samples are required (got tau={self.tau}, "
                             f"period={self.period})")
        if self.m < 2 or self.h < 2:
            raise ValueError(f"need m >= 2 and h >= 2 for a rank-2 CCA (m={self.m}, h={self.h})")
        if self.n_samples < 10 * (self.m + self.h) or self.n_traj < 1:
            raise ValueError(f"n_samples={self.n_samples} is too short for m + h = {self.m + self.h}")
        if len(self.noise_vars) < 1 or any(v < 0 for v in self.noise_vars):
            raise ValueError("noise_vars: at least one value >= 0")
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg}")


def quick_params(p: MOUParams) -> MOUParams:
    return dataclasses.replace(p, n_samples=40_000, n_traj=1, m=20, h=20, noise_vars=(0.0, 0.3, 3.0))


def transition(p: MOUParams) -> np.ndarray:
    """A = e^{−1/τ} R(2π/period)."""
    w = 2 * np.pi / p.period
    return np.exp(-1.0 / p.tau) * np.array([[np.cos(w), -np.sin(w)], [np.sin(w), np.cos(w)]])


def sample(p: MOUParams, n: int, n_traj: int, rng) -> np.ndarray:
    """Exact stationary samples (n_traj, n, 2): z = x₁ + i x₂ follows z_{t+1} = a e^{iω} z_t + ε_t."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(rng)
    a = np.exp(-1.0 / p.tau)
    lam = a * np.exp(2j * np.pi / p.period)
    e = (rng.standard_normal((n_traj, n)) + 1j * rng.standard_normal((n_traj, n))) * np.sqrt(1 - a * a)
    e[:, 0] = rng.standard_normal(n_traj) + 1j * rng.standard_normal(n_traj)  # stationary start, var 1 each
    z = lfilter([1.0], [1.0, -lam], e, axis=1)
    return np.stack([z.real, z.imag], axis=-1)


def lag_covariance(p: MOUParams, k: int) -> np.ndarray:
    """Γ(k) = cov(x_{t+k}, x_t) = A^k (stationary covariance I); Γ(−k) = Γ(k)ᵀ."""
    G = np.linalg.matrix_power(transition(p), abs(int(k)))
    return G if k >= 0 else G.T


def analytic_covariances(p: MOUParams, noise_var: float):
    """(C_pp, C_ff, C_fp) of the 2-channel lag vectors (channel-major, index c·m + k, as analysis/cca)."""
    m, h = p.m, p.h
    n = m + h
    G = {k: lag_covariance(p, k) for k in range(-n, n + 1)}

    def block(rows, cols, lag):
        out = np.zeros((2 * len(rows), 2 * len(cols)))
        for i, ri in enumerate(rows):
            for j, cj in enumerate(cols):
                out[i::len(rows), j::len(cols)] = G[lag(ri, cj)]
        return out

    Cpp = block(range(m), range(m), lambda k, q: q - k)  # cov(x_{t−k}, x_{t−q}) = Γ(q − k)
    Cff = block(range(h), range(h), lambda i, j: i - j)  # cov(x_{t+1+i}, x_{t+1+j}) = Γ(i − j)
    Cfp = block(range(h), range(m), lambda i, q: 1 + i + q)  # cov(x_{t+1+i}, x_{t−q}) = Γ(1 + i + q)
    return Cpp + noise_var * np.eye(2 * m), Cff + noise_var * np.eye(2 * h), Cfp


def kalman_filters(p: MOUParams, noise_var: float) -> np.ndarray:
    """Rows of the steady-state Kalman filter x̂_t = Σ_k G_k y_{t−k} on m lags, as (2, 2·m) filters in the
    channel-major layout of analysis/cca (row i, index c·m + k = G_k[i, c])."""
    from scipy.linalg import solve_discrete_are

    A = transition(p)
    a2 = np.exp(-2.0 / p.tau)
    if noise_var == 0:
        K = np.eye(2)
    else:
        P = solve_discrete_are(A.T, np.eye(2), (1 - a2) * np.eye(2), noise_var * np.eye(2))  # prior covariance
        K = P @ np.linalg.inv(P + noise_var * np.eye(2))
    F = (np.eye(2) - K) @ A
    out = np.zeros((2, 2, p.m))  # (row i, channel c, lag k)
    G = K.copy()
    for k in range(p.m):
        out[:, :, k] = G
        G = F @ G
    return out.reshape(2, 2 * p.m)


def filter_period(psi, m: int) -> float:
    """Oscillation period (samples) of a 2-channel filter ψ (2·m,): 2π / the phase advance per lag of the
    complex filter z_k = ψ_c0[k] + i ψ_c1[k], arg Σ_k z_{k+1} conj(z_k) (magnitude-weighted) over the lags
    where |z| ≥ 5 % of its peak; inf if it does not rotate (a delta filter, or fewer than two such lags)."""
    w = np.asarray(psi, dtype=float).reshape(2, m)
    z = w[0] + 1j * w[1]
    keep = np.flatnonzero(np.abs(z) >= 0.05 * np.abs(z).max())
    keep = keep[: np.argmax(np.diff(np.r_[keep, keep[-1] + 2]) > 1) + 1]  # first contiguous run
    if len(keep) < 2:
        return float("inf")
    step = abs(float(np.angle(np.sum(z[keep[1:]] * np.conj(z[keep[:-1]])))))
    return float(2 * np.pi / step) if step > 0 else float("inf")


def _max_angle_deg(A, B) -> float:
    return float(np.degrees(cca.principal_angles(A, B).max()))


def run(ctx) -> dict:
    p: MOUParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    nv = np.asarray(p.noise_vars, dtype=float)
    ctx.log(f"resu.mou: τ = {p.tau}, period {p.period} samples, m = h = {p.m}/{p.h}, {p.n_traj}×{p.n_samples} "
            f"samples, noise variances {nv.tolist()}")
    x = sample(p, p.n_samples, p.n_traj, rng)
    noise = rng.standard_normal(x.shape)
    rows = []
    for r in ctx.progress(nv, desc="noise levels"):
        an = cca.cca_from_covariances(*analytic_covariances(p, r), p.m, p.h, rank=3, reg=p.reg if r > 0 else 0.0)
        sa = cca.past_future_cca(list(x + np.sqrt(r) * noise), p.m, p.h, rank=3, reg=p.reg)
        kal = kalman_filters(p, r)
        row = {
            "noise_var": float(r), "rho_analytic": an.rho.tolist(), "rho_sampled": sa.rho.tolist(),
            "angle_sampled_kalman_deg": _max_angle_deg(sa.past_filters[:2], kal),
            "angle_analytic_kalman_deg": _max_angle_deg(an.past_filters[:2], kal),
            "angle_sampled_analytic_deg": _max_angle_deg(sa.past_filters[:2], an.past_filters[:2]),
            "period_kalman": filter_period(kal[0], p.m),
            "period_sampled": filter_period(sa.past_filters[0], p.m),
            "psi_sampled": sa.past_filters[:2], "psi_analytic": an.past_filters[:2], "psi_kalman": kal,
        }
        rows.append(row)
        ctx.log(f"noise {r:g}: ρ analytic {np.round(an.rho, 4)}, sampled {np.round(sa.rho, 4)}; largest angle "
                f"sampled–Kalman {row['angle_sampled_kalman_deg']:.2f}°, analytic–Kalman "
                f"{row['angle_analytic_kalman_deg']:.2f}°; period sampled {row['period_sampled']:.2f} "
                f"(Kalman {row['period_kalman']:.2f}, process {p.period:g})")
    worst = max(row["angle_sampled_kalman_deg"] for row in rows)
    noisy = [row for row in rows if row["noise_var"] > 0]
    metrics = {
        "noise_vars": nv.tolist(), "process_period": p.period, "tau": p.tau,
        "angle_sampled_kalman_deg": [row["angle_sampled_kalman_deg"] for row in rows],
        "angle_analytic_kalman_deg": [row["angle_analytic_kalman_deg"] for row in rows],
        "angle_sampled_analytic_deg": [row["angle_sampled_analytic_deg"] for row in rows],
        "max_angle_sampled_kalman_deg": worst,
        "cos_max_angle_sampled_kalman": float(np.cos(np.radians(worst))),
        "max_angle_analytic_kalman_deg": max(row["angle_analytic_kalman_deg"] for row in rows),
        "rho_analytic": [row["rho_analytic"] for row in rows],
        "rho_sampled": [row["rho_sampled"] for row in rows],
        "rho3_analytic_max": float(max(row["rho_analytic"][2] for row in rows)),
        "rho3_sampled_max": float(max(row["rho_sampled"][2] for row in rows)),
        "period_sampled": [row["period_sampled"] for row in rows],
        "period_kalman": [row["period_kalman"] for row in rows],
        "period_max_rel_error": (float(max(abs(row["period_sampled"] - p.period) / p.period for row in noisy))
                                 if noisy else None),
    }
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(noise_vars=nv, psi_sampled=np.array([r["psi_sampled"] for r in rows]),
                           psi_analytic=np.array([r["psi_analytic"] for r in rows]),
                           psi_kalman=np.array([r["psi_kalman"] for r in rows]),
                           example=x[0, :400])
    _figure(ctx, p, rows, x[0, :300])
    return metrics


def _aligned(psi, ref):
    """ψ (2, d) rotated within its span onto ref (2, d) (least squares): filters drawn in the Kalman basis."""
    T, *_ = np.linalg.lstsq(psi.T, ref.T, rcond=None)
    return (psi.T @ T).T


def _figure(ctx, p: MOUParams, rows, example):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(np.arange(len(example)) * p.dt_ms, example[:, 0], lw=0.8, label="x₁")
    axes[0].plot(np.arange(len(example)) * p.dt_ms, example[:, 1], lw=0.8, label="x₂")
    axes[0].set_xlabel("time (ms)")
    axes[0].set_title("oscillating 2-D OU process")
    axes[0].legend(fontsize=7)
    lags = np.arange(p.m) * p.dt_ms
    row = rows[min(len(rows) - 1, len(rows) // 2)]
    kal = row["psi_kalman"]
    fit = _aligned(row["psi_sampled"], kal)
    for c, ls in ((0, "-"), (1, "--")):
        axes[1].plot(-lags, kal[0].reshape(2, p.m)[c], "k" + ls, lw=2, alpha=0.4,
                     label=f"Kalman, channel {c + 1}")
        axes[1].plot(-lags, fit[0].reshape(2, p.m)[c], "C3" + ls, lw=1, label=f"CCA, channel {c + 1}")
    axes[1].set_xlabel("lag (ms)")
    axes[1].set_title(f"filter for x̂₁, noise variance {row['noise_var']:g}", fontsize=9)
    axes[1].legend(fontsize=6)
    nv = [r["noise_var"] for r in rows]
    axes[2].plot(nv, [r["angle_sampled_kalman_deg"] for r in rows], "o-", label="sampled CCA vs Kalman")
    axes[2].plot(nv, [r["angle_analytic_kalman_deg"] for r in rows], "s--", label="analytic CCA vs Kalman")
    axes[2].set_xscale("symlog", linthresh=0.1)
    axes[2].set_xlabel("noise variance")
    axes[2].set_ylabel("largest principal angle (°)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "mou_filters")
    plt.close(fig)


PROTOCOL = Protocol(
    name="resu.mou",
    paper="resu",
    summary="Past–future CCA of an oscillating 2-D Ornstein–Uhlenbeck process vs the Kalman filter "
            "(Qin et al. 2025, Fig 2B)",
    params=MOUParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("cos_max_angle_sampled_kalman", "cos of the largest principal angle, sampled CCA past filters vs "
              "the Kalman filter (worst noise level)", "CCA filters match the theory (Fig 2B)", "≥ 0.99",
              lambda v: v >= 0.99, "{:.4f}"),
        Claim("rho3_analytic_max", "third canonical correlation (analytic, largest over noise levels)",
              "2-D Markov process: two canonical pairs", "< 1e-6", lambda v: v < 1e-6, "{:.2g}"),
        Claim("period_max_rel_error", "relative error of the filter's oscillation period (sampled, noisy levels)",
              "filters oscillate at the process frequency", "≤ 0.05", lambda v: v is not None and v <= 0.05,
              "{:.3f}"),
    ],
    figures=["mou_filters"],
)
