"""Protocol ``resu.gp``: past–future CCA filters of an OU process and Gaussian processes (paper Fig 3).

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146.

For the Ornstein–Uhlenbeck (OU), squared-exponential (SE) and rational-quadratic (RQ) kernels the
protocol computes the analytic CCA from the kernel's covariance and the CCA of sampled trajectories side
by side (filters, canonical correlations, past–future mutual information, paper Eq 8), and sweeps white
observation noise to show SNR adaptation: the first filter's lobes go from several to one as the noise
rises.  Lobes are counted as 1 + sign changes among coefficients ≥ ``lobe_threshold`` × max |ψ|, for the
first filter ψ1 and the second ψ2 (Fig 3C: the lobes of ψ2 as the noise rises).

Besides the suite's sweep the lobes are counted, analytically, at the setting of the authors' notebook
(``gaussian_processes.ipynb``, the RQ kernel of the main text): ℓ = 1 on 1000 points over [−10, 10], i.e.
``notebook_length`` ≈ 50 samples, memory 75, horizon 25, white noise of s.d. 0.01, 0.1 and 0.4 (signal
variance 1): metrics ``notebook_rq_*``.

Time is in samples (one sample = ``dt_ms`` for the figure labels only).  Runs on generated signals only
(no data set); ``--quick`` uses shorter samples and fewer noise levels.  Deviations: the paper's exact
kernel lengths and noise range are not given in a form we could read; we use ℓ = 8 samples and noise
variances 10⁻⁴ … 10¹ (signal variance 1), stated in the parameters and in metrics.json; the setting of
the authors' notebook is measured beside it (analytic CCA only).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from b2models.analysis import cca
from b2models.protocol import Claim, Protocol


@dataclass
class GPParams:
    m: int = 40  # past length (samples)
    h: int = 40  # future length (samples)
    length: float = 8.0  # kernel length scale ℓ (OU: correlation time τ), samples
    rq_alpha: float = 1.0  # rational-quadratic shape α
    kernels: tuple = ("ou", "se", "rq")
    rank: int = 4  # canonical pairs kept
    reg: float = 1e-8  # relative ridge on C_pp, C_ff
    n_samples: int = 200_000  # samples per trajectory (sampled CCA)
    n_traj: int = 4  # independent trajectories per kernel
    sampled_noise_var: float = 0.01  # observation noise of the sampled-vs-analytic comparison
    noise_vars: tuple = field(default_factory=lambda: tuple(np.logspace(-4, 1, 11).round(8)))
    sampled_sweep_every: int = 2  # sampled CCA at every k-th noise level of the sweep
    lobe_threshold: float = 0.1
    dt_ms: float = 10.0  # ms per sample (labels only)
    # the authors' notebook (gaussian_processes.ipynb): RQ kernel, ℓ = 1 on np.linspace(−10, 10, 1000)
    notebook_length: float = 999 / 20  # ≈ 50 samples
    notebook_m: int = 75  # memory
    notebook_h: int = 25  # horizon
    notebook_noise_sd: tuple = (0.01, 0.1, 0.4)  # noise s.d.; the signal has variance 1

    def validate(self):
        if self.m < 2 or self.h < 1 or self.rank < 1 or self.rank > min(self.m, self.h):
            raise ValueError(f"need m >= 2, h >= 1 and 1 <= rank <= min(m, h) (m={self.m}, h={self.h}, "
                             f"rank={self.rank})")
        bad = set(self.kernels) - set(cca.KERNELS)
        if bad:
            raise ValueError(f"unknown kernels {sorted(bad)}; expected {cca.KERNELS}")
        if self.n_samples < 10 * (self.m + self.h) or self.n_traj < 1:
            raise ValueError(f"n_samples={self.n_samples} is too short for m + h = {self.m + self.h}")
        if any(v < 0 for v in self.noise_vars) or len(self.noise_vars) < 2:
            raise ValueError("noise_vars: at least two values >= 0")
        if self.rank < 2:
            raise ValueError(f"rank must be >= 2: the second filter ψ2 is measured (rank={self.rank})")
        if any(v < 0 for v in self.notebook_noise_sd) or len(self.notebook_noise_sd) < 2 or \
                self.notebook_m < 2 or self.notebook_h < 2 or self.notebook_length <= 0:
            raise ValueError("notebook_noise_sd: at least two values >= 0; notebook_m, notebook_h >= 2; "
                             "notebook_length > 0")


def quick_params(p: GPParams) -> GPParams:
    return dataclasses.replace(p, n_samples=40_000, n_traj=2,
                               noise_vars=tuple(np.logspace(-4, 1, 6).round(8)), sampled_sweep_every=5)


def _kernel_fn(p: GPParams, kind: str):
    return lambda lags: cca.kernel_autocovariance(kind, lags, p.length, alpha=p.rq_alpha)


def _samples(p: GPParams, kind: str, rng) -> np.ndarray:
    if kind == "ou":
        return cca.sample_ou(p.n_samples, p.length, n_traj=p.n_traj, rng=rng)
    return cca.sample_stationary(_kernel_fn(p, kind), p.n_samples, n_traj=p.n_traj, rng=rng)


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def notebook_lobes(p: GPParams) -> dict:
    """Analytic lobes of ψ1 and ψ2 (and ρ1, ρ2) of the RQ kernel at the authors' notebook setting
    (``notebook_*`` parameters; noise given as s.d., the signal has variance 1)."""
    out = {"notebook_rq_noise_sd": [float(v) for v in p.notebook_noise_sd], "notebook_rq_psi1_lobes": [],
           "notebook_rq_psi2_lobes": [], "notebook_rq_rho1": [], "notebook_rq_rho2": []}
    for sd in p.notebook_noise_sd:
        a = cca.analytic_cca("rq", p.notebook_m, p.notebook_h, p.notebook_length, noise_var=sd ** 2,
                             alpha=p.rq_alpha, rank=2, reg=p.reg)
        out["notebook_rq_psi1_lobes"].append(cca.count_lobes(a.past_filters[0], p.lobe_threshold))
        out["notebook_rq_psi2_lobes"].append(cca.count_lobes(a.past_filters[1], p.lobe_threshold))
        out["notebook_rq_rho1"].append(float(a.rho[0]))
        out["notebook_rq_rho2"].append(float(a.rho[1]))
    out["notebook_rq_psi2_lobes_high_snr"] = out["notebook_rq_psi2_lobes"][0]
    out["notebook_rq_psi2_lobes_low_snr"] = out["notebook_rq_psi2_lobes"][-1]
    return out


def run(ctx) -> dict:
    p: GPParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    noise_vars = np.asarray(p.noise_vars, dtype=float)
    ctx.log(f"resu.gp: kernels {p.kernels}, ℓ={p.length} samples, m={p.m}, h={p.h}, "
            f"{p.n_traj}×{p.n_samples} samples, {len(noise_vars)} noise levels")
    metrics: dict = {"noise_vars": noise_vars.tolist()}
    arrays: dict = {"noise_vars": noise_vars}
    results = {}
    for kind in ctx.progress(p.kernels, desc="kernels"):
        x = _samples(p, kind, rng)
        noise = rng.standard_normal(x.shape)
        an = cca.analytic_cca(kind, p.m, p.h, p.length, noise_var=p.sampled_noise_var, alpha=p.rq_alpha,
                              rank=p.rank, reg=p.reg)
        sa = cca.past_future_cca(list(x + np.sqrt(p.sampled_noise_var) * noise), p.m, p.h, rank=p.rank,
                                 reg=p.reg, method="toeplitz")
        n_sig = int(np.sum(an.rho > 0.1))  # compare only pairs that carry information
        metrics[f"{kind}_rho_analytic"] = an.rho.tolist()
        metrics[f"{kind}_rho_sampled"] = sa.rho.tolist()
        metrics[f"{kind}_rho_max_abs_diff"] = float(np.max(np.abs(an.rho - sa.rho)))
        metrics[f"{kind}_filter_cosine"] = [_cos(an.past_filters[k], sa.past_filters[k])
                                            for k in range(max(1, n_sig))]
        metrics[f"{kind}_mi_analytic_nats"] = an.mutual_information
        metrics[f"{kind}_mi_sampled_nats"] = sa.mutual_information
        # SNR sweep
        lobes_an, lobes_sa, rho1_an, rho1_sa, mi_an, f_an = [], [], [], [], [], []
        lobes2_an, lobes2_sa, rho2_an, f2_an = [], [], [], []
        for i, nv in enumerate(noise_vars):
            a = cca.analytic_cca(kind, p.m, p.h, p.length, noise_var=nv, alpha=p.rq_alpha, rank=p.rank,
                                 reg=p.reg)
            lobes_an.append(cca.count_lobes(a.past_filters[0], p.lobe_threshold))
            lobes2_an.append(cca.count_lobes(a.past_filters[1], p.lobe_threshold))
            rho1_an.append(a.rho[0])
            rho2_an.append(a.rho[1])
            mi_an.append(a.mutual_information)
            f_an.append(a.past_filters[0] / np.abs(a.past_filters[0]).max())
            f2_an.append(a.past_filters[1] / np.abs(a.past_filters[1]).max())
            if i % p.sampled_sweep_every == 0 or i == len(noise_vars) - 1:
                s = cca.past_future_cca(list(x + np.sqrt(nv) * noise), p.m, p.h, rank=2, reg=p.reg,
                                        method="toeplitz")
                lobes_sa.append(cca.count_lobes(s.past_filters[0], p.lobe_threshold))
                lobes2_sa.append(cca.count_lobes(s.past_filters[1], p.lobe_threshold))
                rho1_sa.append(s.rho[0])
            else:
                lobes_sa.append(-1)
                lobes2_sa.append(-1)
                rho1_sa.append(np.nan)
        metrics[f"{kind}_lobes_vs_noise"] = lobes_an
        metrics[f"{kind}_lobes_vs_noise_sampled"] = lobes_sa  # −1: not computed at that level
        metrics[f"{kind}_lobes_high_snr"] = lobes_an[0]
        metrics[f"{kind}_lobes_low_snr"] = lobes_an[-1]
        metrics[f"{kind}_psi2_lobes_vs_noise"] = lobes2_an
        metrics[f"{kind}_psi2_lobes_vs_noise_sampled"] = lobes2_sa  # −1: not computed at that level
        metrics[f"{kind}_psi2_lobes_high_snr"] = lobes2_an[0]
        metrics[f"{kind}_psi2_lobes_low_snr"] = lobes2_an[-1]
        metrics[f"{kind}_rho2_vs_noise"] = [float(r) for r in rho2_an]
        results[kind] = (an, sa, np.array(f_an))
        arrays.update({f"{kind}_filters_analytic": an.past_filters, f"{kind}_filters_sampled": sa.past_filters,
                       f"{kind}_rho_analytic": an.rho, f"{kind}_rho_sampled": sa.rho,
                       f"{kind}_lobes_vs_noise": np.array(lobes_an), f"{kind}_rho1_vs_noise": np.array(rho1_an),
                       f"{kind}_rho1_vs_noise_sampled": np.array(rho1_sa), f"{kind}_mi_vs_noise": np.array(mi_an),
                       f"{kind}_first_filter_vs_noise": np.array(f_an),
                       f"{kind}_psi2_lobes_vs_noise": np.array(lobes2_an),
                       f"{kind}_second_filter_vs_noise": np.array(f2_an)})
        ctx.log(f"{kind}: ρ analytic {np.round(an.rho, 3)}, sampled {np.round(sa.rho, 3)}; "
                f"lobes vs noise ψ1 {lobes_an}, ψ2 {lobes2_an}")
    metrics.update(notebook_lobes(p))
    ctx.log(f"authors' notebook setting (RQ, ℓ={p.notebook_length:.4g}, m={p.notebook_m}, h={p.notebook_h}), "
            f"noise s.d. {list(p.notebook_noise_sd)}: lobes ψ1 {metrics['notebook_rq_psi1_lobes']}, "
            f"ψ2 {metrics['notebook_rq_psi2_lobes']}")
    if "ou" in p.kernels:
        metrics["ou_rho1_expected"] = float(np.exp(-1.0 / p.length))
        clean = cca.analytic_cca("ou", p.m, p.h, p.length, rank=2, reg=0.0)
        metrics["ou_rho1_analytic_noiseless"] = float(clean.rho[0])
        xs = _samples(p, "ou", rng)
        metrics["ou_rho1_sampled_noiseless"] = float(cca.past_future_cca(list(xs), p.m, p.h, rank=2,
                                                                         method="toeplitz").rho[0])
        metrics["ou_rho1_sampled_error"] = abs(metrics["ou_rho1_sampled_noiseless"] - metrics["ou_rho1_expected"])
        metrics["ou_rho2_analytic"] = float(clean.rho[1])
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**arrays)
    _figures(ctx, p, results, noise_vars, metrics)
    return metrics


def _figures(ctx, p, results, noise_vars, metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lags = -np.arange(p.m) * p.dt_ms
    kinds = list(results)
    fig, axes = plt.subplots(2, len(kinds), figsize=(4.2 * len(kinds), 6.5), squeeze=False)
    for col, kind in enumerate(kinds):
        an, sa, _ = results[kind]
        ax = axes[0, col]
        for k in range(min(3, p.rank)):
            ax.plot(lags, an.past_filters[k], color=f"C{k}", lw=1.5, label=f"ψ{k + 1} analytic")
            ax.plot(lags, sa.past_filters[k], color=f"C{k}", lw=1, ls="--", label=f"ψ{k + 1} sampled")
        ax.set_title(f"{kind.upper()} kernel, σ²_noise={p.sampled_noise_var:g}")
        ax.set_xlabel("lag (ms)")
        if col == 0:
            ax.legend(fontsize=6)
        ax = axes[1, col]
        ax.plot(np.arange(1, p.rank + 1), an.rho, "o-k", label="analytic")
        ax.plot(np.arange(1, p.rank + 1), sa.rho, "x--r", label="sampled")
        ax.set_xlabel("canonical pair k")
        ax.set_ylabel("ρ_k")
        ax.set_title(f"I = {an.mutual_information:.2f} nats (analytic), {sa.mutual_information:.2f} (sampled)",
                     fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "gp_filters")

    fig, axes = plt.subplots(1, 1 + len(kinds), figsize=(4 * (1 + len(kinds)), 3.4))
    for k, kind in enumerate(kinds):
        axes[0].semilogx(noise_vars, metrics[f"{kind}_lobes_vs_noise"], "o-", color=f"C{k}", label=f"{kind} ψ1")
        axes[0].semilogx(noise_vars, metrics[f"{kind}_psi2_lobes_vs_noise"], "s--", color=f"C{k}",
                         label=f"{kind} ψ2")
    axes[0].set_xlabel("noise variance (signal variance 1)")
    axes[0].set_ylabel("lobes of ψ1 (solid), ψ2 (dashed)")
    axes[0].legend(fontsize=7)
    for ax, kind in zip(axes[1:], kinds):
        f = results[kind][2]
        cmap = plt.get_cmap("viridis")
        for i, nv in enumerate(noise_vars):
            ax.plot(lags, f[i], color=cmap(i / max(1, len(noise_vars) - 1)), lw=1, label=f"{nv:.0e}")
        ax.set_title(f"{kind.upper()}: ψ1 vs noise (normalised)")
        ax.set_xlabel("lag (ms)")
    axes[-1].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "gp_snr_adaptation")


PROTOCOL = Protocol(
    name="resu.gp",
    paper="resu",
    summary="Past–future CCA of OU and Gaussian processes: analytic vs sampled filters, SNR adaptation "
            "(Qin et al. 2025, Fig 3)",
    params=GPParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("ou_rho1_sampled_error", "|ρ1(sampled OU) − e^{−dt/τ}|", "OU: single ρ = e^{−dt/τ}", "≤ 0.01",
              lambda v: v <= 0.01),
        Claim("ou_rho2_analytic", "second canonical correlation of OU (analytic)", "0", "< 1e-6",
              lambda v: v < 1e-6, "{:.2g}"),
        Claim("se_lobes_high_snr", "lobes of ψ1, SE kernel, lowest noise", "several (Fig 3)", "≥ 3",
              lambda v: v >= 3, "{:d}"),
        Claim("se_lobes_low_snr", "lobes of ψ1, SE kernel, highest noise", "1 (Fig 3)", "1",
              lambda v: v == 1, "{:d}"),
        Claim("rq_lobes_low_snr", "lobes of ψ1, RQ kernel, highest noise", "1 (Fig 3)", "1",
              lambda v: v == 1, "{:d}"),
        Claim("rq_psi2_lobes_high_snr", "lobes of ψ2, RQ kernel, lowest noise", "3 (Fig 3C)", "≥ 3",
              lambda v: v >= 3, "{:d}"),
        Claim("rq_psi2_lobes_low_snr", "lobes of ψ2, RQ kernel, highest noise", "1 (Fig 3C)", "1",
              lambda v: v == 1, "{:d}"),
        Claim("notebook_rq_psi2_lobes_low_snr", "lobes of ψ2, RQ kernel at the authors' notebook setting, noise "
              "s.d. 0.4", "1 (Fig 3C)", "1", lambda v: v == 1, "{:d}"),
        Claim("rq_rho_max_abs_diff", "max |ρ analytic − ρ sampled| (RQ)", "analytic = sampled", "≤ 0.03",
              lambda v: v <= 0.03),
    ],
    figures=["gp_filters", "gp_snr_adaptation"],
)
