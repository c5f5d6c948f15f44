"""Protocol ``resu.online``: ReSU filters learned online by local rules in Brian2 synapses, converging to
the offline past–future CCA filters (beyond the paper).

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), arXiv:2512.23146 (offline CCA
filters); online rule: Bio-CCA of Lipshutz D, Bahroun Y, Golkar S, Sengupta AM, Chklovskii DB (2021),
Neural Computation 33(9):2309–2352, https://doi.org/10.1162/neco_a_01414, adapted to past–future lag
vectors (models/resu_online.py).

A Gaussian-process signal (squared-exponential kernel, length ``length`` samples, white observation noise
``noise_var``; or an OU process with ``kernel='ou'``) drives the network (models/resu_online.py) for
``n_samples`` samples.  Every ``record_every`` samples the basal weights W_x (k × m) are compared with the
top-k past CCA filters by principal angles (analysis/cca.py): against the offline CCA of the same signal
and against the analytic CCA of the kernel.  Convergence = the largest principal angle at the end.
Generated signals only (no data set).  ``--quick`` uses fewer samples and fewer relaxation steps.

Deviations (see models/resu_online.py): pairs used h samples late, finite relaxation of the outputs,
decaying learning rate; only the subspace of the filters is learned (the rule does not separate ψ1 from
ψ2 within it), so the angles, not filter-by-filter cosines, are the measure.  For OU only one canonical
correlation is non-zero: use k = 1 there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from brian2 import ms

from b2models.analysis import cca
from b2models.backend import Session
from b2models.models import resu_online as ro
from b2models.protocol import Claim, Protocol


@dataclass
class OnlineParams:
    kernel: str = "se"
    length: float = 3.0  # kernel length (samples)
    noise_var: float = 0.1  # observation noise (signal variance 1)
    m: int = 5
    h: int = 5
    k: int = 2
    n_samples: int = 8000
    eta0: float = 0.05
    decay_samples: float = 500.0
    tau_m: float = 0.5
    n_inner: int = 8
    gamma: float = 0.35
    record_every: int = 100
    dt_ms: float = 10.0  # labels only

    def validate(self):
        if self.kernel not in cca.KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; expected one of {cca.KERNELS}")
        if self.n_samples < 10 * (self.m + self.h) or self.length <= 0 or self.noise_var < 0:
            raise ValueError("n_samples >= 10 (m + h), length > 0 and noise_var >= 0 are required")
        self.model().validate()

    def model(self) -> ro.BioCCAParams:
        return ro.BioCCAParams(dt=self.dt_ms * ms, m=self.m, h=self.h, k=self.k, eta0=self.eta0,
                               decay_samples=self.decay_samples, tau_m=self.tau_m, n_inner=self.n_inner,
                               gamma=self.gamma, record_every=self.record_every)


def quick_params(p: OnlineParams) -> OnlineParams:
    return dataclasses.replace(p, n_samples=3000, n_inner=5, gamma=0.45)


def make_signal(p: OnlineParams, rng) -> np.ndarray:
    if p.kernel == "ou":
        x = cca.sample_ou(p.n_samples, p.length, rng=rng)[0]
    else:
        x = cca.sample_stationary(lambda lag: cca.kernel_autocovariance(p.kernel, lag, p.length), p.n_samples,
                                  1, rng=rng)[0]
    return x + np.sqrt(p.noise_var) * rng.standard_normal(p.n_samples)


def angles_over_time(wx_t, filters) -> np.ndarray:
    """Principal angles (degrees) of every W_x snapshot to the filters: (n_snapshots, k)."""
    return np.array([np.degrees(cca.principal_angles(W, filters)) for W in wx_t])


def run(ctx) -> dict:
    p: OnlineParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    x = make_signal(p, rng)
    offline = cca.past_future_cca(x, p.m, p.h, rank=p.k)
    analytic = cca.analytic_cca(p.kernel, p.m, p.h, p.length, noise_var=p.noise_var, rank=p.k)
    mp = p.model()
    w0 = ro.initial_weights(mp, ctx.seed)
    with Session(ctx.backend, "resu_online", key=(dataclasses.asdict(p), ctx.backend), threads=ctx.threads) as s:
        net = ro.BioCCANetwork(mp, s, p.n_samples)
        ctx.log(f"built in {s.build_s:.1f} s")
        out = net.run(x, weights=w0, seed=ctx.seed)
    ang_off = angles_over_time(out["wx_t"], offline.past_filters)
    ang_an = angles_over_time(out["wx_t"], analytic.past_filters)
    final_off = np.degrees(cca.principal_angles(out["wx"], offline.past_filters))
    final_an = np.degrees(cca.principal_angles(out["wx"], analytic.past_filters))
    metrics = {
        "rho_offline": offline.rho.tolist(), "rho_analytic": analytic.rho.tolist(),
        "angles_initial_deg": ang_off[0].tolist(), "angles_final_offline_deg": final_off.tolist(),
        "angles_final_analytic_deg": final_an.tolist(),
        "max_angle_initial_deg": float(ang_off[0].max()),
        "max_angle_final_offline_deg": float(final_off.max()),
        "max_angle_final_analytic_deg": float(final_an.max()),
        "min_angle_final_offline_deg": float(final_off.min()),
        "samples_to_max_angle_below_20deg": _first_below(out["t_samples"], ang_off.max(axis=1), 20.0),
    }
    ctx.log(f"principal angles to offline CCA: start {np.round(ang_off[0], 1)}°, end {np.round(final_off, 1)}° "
            f"(to analytic {np.round(final_an, 1)}°)")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(t_samples=out["t_samples"], angles_offline=ang_off, angles_analytic=ang_an,
                           wx_final=out["wx"], wy_final=out["wy"], M_final=out["M"],
                           offline_filters=offline.past_filters, analytic_filters=analytic.past_filters)
    _figure(ctx, p, out, ang_off, ang_an, offline)
    return metrics


def _first_below(t, values, threshold):
    idx = np.flatnonzero(np.asarray(values) < threshold)
    return int(t[idx[0]]) if idx.size else None


def _figure(ctx, p, out, ang_off, ang_an, offline):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    t = out["t_samples"]
    for j in range(ang_off.shape[1]):
        axes[0].plot(t, ang_off[:, j], color=f"C{j}", label=f"angle {j + 1} (offline CCA)")
        axes[0].plot(t, ang_an[:, j], color=f"C{j}", ls="--", lw=0.8, label=f"angle {j + 1} (analytic)")
    axes[0].set_xlabel("samples")
    axes[0].set_ylabel("principal angle (°)")
    axes[0].legend(fontsize=7)
    # online filters expressed in the offline basis (least squares), for display
    W = out["wx"]
    B = offline.past_filters
    coef = np.linalg.lstsq(W.T, B.T, rcond=None)[0]
    lags = -np.arange(p.m) * p.dt_ms
    for j in range(len(B)):
        axes[1].plot(lags, B[j] / np.linalg.norm(B[j]), color=f"C{j}", label=f"ψ{j + 1} offline")
        rec = coef[:, j] @ W
        axes[1].plot(lags, rec / np.linalg.norm(rec), color=f"C{j}", ls="--", label=f"ψ{j + 1} from online W_x")
    axes[1].set_xlabel("lag (ms)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "online_convergence")


PROTOCOL = Protocol(
    name="resu.online",
    paper="resu",
    summary="ReSU filters learned online with local Bio-CCA rules in Brian2 synapses: principal angles to "
            "the offline CCA filters over time (beyond Qin et al. 2025; Lipshutz et al. 2021)",
    params=OnlineParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("max_angle_final_offline_deg", "largest principal angle, online W_x vs offline CCA filters",
              "— (beyond the paper)", "≤ 20°", lambda v: v <= 20.0, "{:.1f}"),
        Claim("min_angle_final_offline_deg", "smallest principal angle, online vs offline", "—", "≤ 10°",
              lambda v: v <= 10.0, "{:.1f}"),
    ],
    figures=["online_convergence"],
)
