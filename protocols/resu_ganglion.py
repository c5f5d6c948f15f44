"""Protocol ``resu.ganglion``: the leading ReSU filter as a retinal-ganglion-cell analogue — from transient
(band-pass, biphasic, fast) at high SNR to sustained (low-pass, monophasic, slow) at low SNR (paper Fig 3D).

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146 (Fig 3D: a ganglion-cell analogue of the SNR adaptation of Fig 3).

What is recorded about the panel is only its subject, the ganglion-cell analogue of the filters' SNR
adaptation.  The retinal phenomenon it refers to is textbook: as the light level falls (the photon noise
rises relative to the signal) a ganglion cell's temporal filter turns from biphasic, band-pass and fast to
monophasic, low-pass and slow.  This protocol measures that transition on the leading past–future CCA
filter ψ₁ of Gaussian processes (squared-exponential and rational-quadratic kernels, the Fig 3 signals of
``resu.gp``) over the same noise range, analytically (exact, the same for every seed) and on sampled
trajectories (stochastic: one run per seed):

* biphasic index: Σ of ψ₁'s coefficients of the sign opposite to its largest one / Σ of those of that sign
  (0: monophasic; the ψ₁ sign is irrelevant);
* band-pass index: 1 − |Ψ(0)| / max_f |Ψ(f)| of the filter's frequency response (0: low-pass);
* centroid lag: Σ_k k |ψ₁[k]| / Σ_k |ψ₁[k]| in samples (the integration time);
* peak lag: the lag of the largest |ψ₁[k]|;
* first-lobe duration (secondary, added after the centroid was seen to count the later lobes of the
  high-SNR filters): lags from the peak until ψ₁ changes sign or falls below 10 % of the peak.

Expected from the retina (and the property tested): from the lowest to the highest noise the biphasic and
band-pass indices fall and the centroid lag rises.  Generated signals only; time in samples;
``--quick``: fewer samples and noise levels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from b2models.analysis import cca
from b2models.protocol import Claim, Protocol


@dataclass
class GanglionParams:
    m: int = 40  # past length (samples)
    h: int = 40  # future length (samples)
    length: float = 8.0  # kernel length ℓ (samples), as resu.gp
    rq_alpha: float = 1.0
    kernels: tuple = ("se", "rq")
    reg: float = 1e-8
    n_samples: int = 200_000  # samples per trajectory (sampled CCA)
    n_traj: int = 2
    noise_vars: tuple = field(default_factory=lambda: tuple(np.logspace(-4, 1, 6).round(8)))
    n_freq: int = 512  # frequency grid of the band-pass index
    dt_ms: float = 10.0  # labels only

    def validate(self):
        if self.m < 4 or self.h < 1:
            raise ValueError(f"need m >= 4 and h >= 1 (m={self.m}, h={self.h})")
        bad = set(self.kernels) - set(cca.KERNELS)
        if bad or not self.kernels:
            raise ValueError(f"kernels must be a non-empty subset of {cca.KERNELS}; unknown: {sorted(bad)}")
        if self.n_samples < 10 * (self.m + self.h) or self.n_traj < 1:
            raise ValueError(f"n_samples={self.n_samples} is too short for m + h = {self.m + self.h}")
        if len(self.noise_vars) < 2 or any(v < 0 for v in self.noise_vars) or list(self.noise_vars) != sorted(
                self.noise_vars):
            raise ValueError("noise_vars: at least two increasing values >= 0")
        if self.length <= 0 or self.n_freq < 16:
            raise ValueError("length > 0 and n_freq >= 16 are required")


def quick_params(p: GanglionParams) -> GanglionParams:
    return dataclasses.replace(p, n_samples=40_000, n_traj=1, noise_vars=(1e-4, 1e-1, 10.0))


def temporal_shape(psi, n_freq: int = 512) -> dict:
    """Biphasic index, band-pass index, centroid lag and peak lag of a temporal filter (lag 0 first)."""
    w = np.asarray(psi, dtype=float).ravel()
    if not np.any(w):
        raise ValueError("the filter is zero: its shape is undefined")
    main = np.sign(w[np.argmax(np.abs(w))])
    same = np.sum(np.abs(w[np.sign(w) == main]))
    opposite = np.sum(np.abs(w[np.sign(w) == -main]))
    H = np.abs(np.fft.rfft(w, n=max(n_freq, 2 * len(w))))
    a = np.abs(w)
    k0 = int(np.argmax(a))
    below = np.flatnonzero(w[k0:] * main < 0.1 * a[k0])  # first lobe ends: sign flips or below 10 % of the peak
    return {"biphasic_index": float(opposite / same), "bandpass_index": float(1.0 - H[0] / H.max()),
            "centroid_lag": float(np.sum(np.arange(len(w)) * a) / np.sum(a)), "peak_lag": k0,
            "first_lobe_lags": int(k0 + (below[0] if below.size else len(w) - k0))}


def _shapes(filters, n_freq) -> dict:
    rows = [temporal_shape(f, n_freq) for f in filters]
    return {key: [r[key] for r in rows] for key in rows[0]}


def run(ctx) -> dict:
    p: GanglionParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    nv = np.asarray(p.noise_vars, dtype=float)
    metrics: dict = {"noise_vars": nv.tolist()}
    arrays: dict = {"noise_vars": nv}
    for kind in ctx.progress(p.kernels, desc="kernels"):
        acov = lambda lags, kind=kind: cca.kernel_autocovariance(kind, lags, p.length, alpha=p.rq_alpha)  # noqa: E731
        x = cca.sample_stationary(acov, p.n_samples, n_traj=p.n_traj, rng=rng)
        noise = rng.standard_normal(x.shape)
        an = [cca.analytic_cca(kind, p.m, p.h, p.length, noise_var=r, alpha=p.rq_alpha, rank=1,
                               reg=p.reg).past_filters[0] for r in nv]
        sa = [cca.past_future_cca(list(x + np.sqrt(r) * noise), p.m, p.h, rank=1, reg=p.reg,
                                  method="toeplitz").past_filters[0] for r in nv]
        for tag, filters in (("analytic", an), ("sampled", sa)):
            sh = _shapes(filters, p.n_freq)
            for key, vals in sh.items():
                metrics[f"{kind}_{key}_{tag}"] = vals
            metrics[f"{kind}_transient_to_sustained_{tag}"] = bool(
                sh["biphasic_index"][-1] < sh["biphasic_index"][0]
                and sh["bandpass_index"][-1] < sh["bandpass_index"][0]
                and sh["centroid_lag"][-1] > sh["centroid_lag"][0])
            arrays[f"{kind}_psi1_{tag}"] = np.array(filters)
        ctx.log(f"{kind}: biphasic index {np.round(metrics[f'{kind}_biphasic_index_analytic'], 3)} (analytic), "
                f"band-pass index {np.round(metrics[f'{kind}_bandpass_index_analytic'], 3)}, centroid lag "
                f"{np.round(metrics[f'{kind}_centroid_lag_analytic'], 2)} samples; sampled biphasic "
                f"{np.round(metrics[f'{kind}_biphasic_index_sampled'], 3)}")
    for tag in ("analytic", "sampled"):
        metrics[f"transient_to_sustained_{tag}"] = float(np.mean(
            [metrics[f"{k}_transient_to_sustained_{tag}"] for k in p.kernels]))
        for key in ("biphasic_index", "bandpass_index", "centroid_lag", "first_lobe_lags"):
            for end, i in (("high_snr", 0), ("low_snr", -1)):
                metrics[f"{key}_{end}_{tag}"] = float(np.mean([metrics[f"{k}_{key}_{tag}"][i] for k in p.kernels]))
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**arrays)
    _figure(ctx, p, arrays, metrics)
    return metrics


def _figure(ctx, p, arrays, metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nv = arrays["noise_vars"]
    fig, axes = plt.subplots(1, 1 + len(p.kernels), figsize=(4.2 * (1 + len(p.kernels)), 3.4))
    lags = -np.arange(p.m) * p.dt_ms
    cmap = plt.get_cmap("viridis")
    for ax, kind in zip(axes[:-1], p.kernels):
        for i, r in enumerate(nv):
            f = arrays[f"{kind}_psi1_analytic"][i]
            ax.plot(lags, f / np.abs(f).max(), color=cmap(i / max(1, len(nv) - 1)), label=f"{r:.0e}")
        ax.set_title(f"{kind.upper()}: ψ₁ vs noise variance")
        ax.set_xlabel("lag (ms)")
    axes[0].legend(fontsize=6)
    ax = axes[-1]
    for k, kind in enumerate(p.kernels):
        ax.semilogx(nv, metrics[f"{kind}_biphasic_index_analytic"], "o-", color=f"C{k}", label=f"{kind} biphasic")
        ax.semilogx(nv, metrics[f"{kind}_bandpass_index_analytic"], "s--", color=f"C{k}",
                    label=f"{kind} band-pass")
    ax.set_xlabel("noise variance")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "ganglion_filters")
    plt.close(fig)


PROTOCOL = Protocol(
    name="resu.ganglion",
    paper="resu",
    summary="Leading ReSU filter vs noise as a ganglion-cell analogue: transient/band-pass at high SNR, "
            "sustained/low-pass at low SNR (Qin et al. 2025, Fig 3D)",
    params=GanglionParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("transient_to_sustained_analytic", "fraction of kernels whose ψ₁ turns less biphasic, less "
              "band-pass and slower from the lowest to the highest noise (analytic)",
              "ganglion-cell analogue (Fig 3D; panel statement not recorded: no verdict)", "1 (retina)", None,
              "{:.2f}"),
        Claim("transient_to_sustained_sampled", "the same, sampled CCA", "—", "1 (retina)", None, "{:.2f}"),
        Claim("biphasic_index_high_snr_analytic", "biphasic index of ψ₁, lowest noise (mean of kernels)", "—", "",
              None, "{:.3f}"),
        Claim("biphasic_index_low_snr_analytic", "biphasic index of ψ₁, highest noise", "—", "", None, "{:.3f}"),
        Claim("centroid_lag_high_snr_analytic", "centroid lag of ψ₁ (samples), lowest noise", "—", "", None,
              "{:.2f}"),
        Claim("centroid_lag_low_snr_analytic", "centroid lag of ψ₁ (samples), highest noise", "—", "", None,
              "{:.2f}"),
        Claim("first_lobe_lags_high_snr_analytic", "first-lobe duration of ψ₁ (samples), lowest noise "
              "(secondary)", "—", "", None, "{:.1f}"),
        Claim("first_lobe_lags_low_snr_analytic", "first-lobe duration of ψ₁ (samples), highest noise "
              "(secondary)", "—", "", None, "{:.1f}"),
    ],
    figures=["ganglion_filters"],
)
