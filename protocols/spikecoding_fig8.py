"""Protocol ``spikecoding.fig8``: lesion of the E cells that code one direction, and retraining
(Brendel et al. 2020, Fig 8).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

An E–I network of :mod:`models.spikecoding_ei` (80 E / 40 I cells, Dale's law) learns to
code a 2-D smoothed-noise signal.  Then every E cell whose learned feedforward vector F_i
points within ±``lesion_width``/2 of ``lesion_angle`` is deleted (its F column and every
connection to or from it set to 0 and held there by the synapses' ``mask``).  The network is
measured

* intact (after learning), (i) right after the lesion, and after retraining for ``retrain``
  (ii) the recurrent connections only (E → E, I → E, I → I; Eq 6),
  (iii) the feedforward connections only (input → E, E → I; Eq 7), (iv) both,

each from the same lesioned state.  Measures: coding errors of E and I with refitted optimal
decoders (as in ``spikecoding.fig4``), mean rates, tuning curves (constant inputs at
``n_angles`` angles), and per-angle reconstruction: x̂(θ) = D_E r̄(θ) with r̄ = rate/λ and
the condition's optimal decoder D_E; the relative error |x̂ − x|²/|x|² is averaged inside the
lesioned sector, and the *coverage* is the fraction of angles where it is below
``coverage_tol``.  The same is reported with the intact network's decoder kept fixed
(``*_fixed``: a readout that does not adapt; deleted cells contribute nothing).  The paper's
predictions: retraining the recurrent connections recovers
most of the efficiency, retraining only the feedforward ones worsens it.

Fig 8 B (:func:`surviving_cell_changes`): the paper's statement is about the tuning curves of the cells that
remain, so rates, tuning widths and preferred directions are compared on the surviving E cells, each condition
against the same cells intact; ``rate_E`` averages over all ``N_E`` cells, the deleted (silent) ones included,
and so falls after the lesion even when every surviving cell fires more.

The authors published no code for this figure.  Our choices: the lesioned cells are chosen
by their feedforward vectors (what they code), in a ±60° sector (25 of 80 cells with seed 1;
deleting the ±45° sector, 20 cells, left the E coding error unchanged, 0.036 → 0.036, because
the neighbouring cells took over at once); learning and retraining use the ×200
learning rates of ``spikecoding.fig4 --quick`` (the authors' rates would need ~10⁴ s);
``--quick`` learns 40 s and retrains 20 s, the default 100 s and 50 s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, second

from b2models.analysis import coding
from b2models.backend import Session
from b2models.data.signals import learning_and_test_signals, smoothed_noise_for
from b2models.models.spikecoding_ei import EINetwork, EIParams, dale_violations
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol
from b2models.protocols.spikecoding_fig4 import Fig4Params, _Presenter, evaluate, measure_tuning

CONDITIONS = ("intact", "lesioned", "recurrent", "feedforward", "both")
RECURRENT = ("W_EE", "W_IE", "W_II")
FEEDFORWARD = ("F", "W_EI")
#: learning-rate factors of each retraining condition
RETRAIN = {
    "recurrent": {k: 0.0 for k in FEEDFORWARD},
    "feedforward": {k: 0.0 for k in RECURRENT},
    "both": {},
}


@dataclass
class Fig8Params(Fig4Params):
    """The Fig 4 protocol's parameters with the Fig 8 network and the lesion."""

    N_E: int = 80
    N_I: int = 40
    J: int = 2
    eps_F: float = 2e-3  # ×200 the authors' 1e-5 (see the module docstring)
    eps_Omega: float = 2e-2  # ×200 the authors' 1e-4
    duration: Quantity = field(default_factory=lambda: 100 * second)  # learning before the lesion
    chunk: Quantity = field(default_factory=lambda: 0.5 * second)
    retrain: Quantity = field(default_factory=lambda: 50 * second)  # retraining after the lesion
    n_angles: int = 24
    tuning_hold: Quantity = field(default_factory=lambda: 0.4 * second)
    n_record: int = 10
    lesion_angle: float = 0.0  # direction whose cells are deleted (degrees, in the x₁–x₂ plane)
    lesion_width: float = 120.0  # sector width (degrees)
    coverage_tol: float = 0.05  # per-angle relative error below which an angle counts as covered

    def validate(self):
        super().validate()
        if self.J != 2:
            raise ValueError(f"J={self.J}: the lesion protocol needs 2-D inputs (J = 2)")
        if not 0 < self.lesion_width < 360:
            raise ValueError(f"lesion_width={self.lesion_width} must be in (0, 360) degrees")
        if float(self.retrain) < float(self.chunk):
            raise ValueError(f"retrain={self.retrain} must be at least one chunk ({self.chunk})")
        if not self.coverage_tol > 0:
            raise ValueError(f"coverage_tol={self.coverage_tol} must be > 0")


def quick_params(p: Fig8Params) -> Fig8Params:
    return dataclasses.replace(p, duration=40 * second, retrain=20 * second, n_angles=16, tuning_hold=0.3 * second)


def in_sector(angles, centre_deg: float, width_deg: float) -> np.ndarray:
    """Whether each angle (radians) lies within ±width/2 of the centre (degrees)."""
    d = np.angle(np.exp(1j * (np.asarray(angles, dtype=float) - np.radians(centre_deg))))
    return np.abs(d) <= np.radians(width_deg) / 2


def fit_decoder_E(pres: _Presenter, p: Fig8Params, test_fit) -> np.ndarray:
    """Optimal decoder D_E (J × N_E) of the frozen network on a held-out segment."""
    net = pres.net
    saved = net.state()
    c, x = test_fit
    r0 = net.r_E.copy()
    o = pres.present(c, learning=False)
    d = round(float(p.discard / p.dt))
    r = coding.filtered_spike_trains(coding.spike_counts(o["iE"], o["tE"], p.N_E, len(c)),
                                     float(p.lambda_ * p.dt), r0=r0)[d:]
    net.set_dynamic_state(**{k: saved[k] for k in ("V_E", "r_E", "V_I", "r_I", "xbar")})
    return coding.optimal_decoder(r, x[d:], ridge=p.decoder_ridge * float(np.mean(np.sum(r * r, axis=0))))


def per_angle_error(D, rates_E, angles, radius: float, lam: float) -> np.ndarray:
    """|D r̄(θ) − x(θ)|² / |x(θ)|² for constant inputs x(θ) = radius (cos θ, sin θ); r̄ = rate/λ."""
    x = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x_hat = (np.asarray(rates_E) / lam) @ np.asarray(D).T
    return np.sum((x_hat - x) ** 2, axis=1) / radius**2


def fixed_decoder_error(ev: dict, D, p: Fig8Params) -> float:
    """Coding error of the E cells' spikes of the test segment read with a given decoder D (J × N_E)."""
    si, st = ev["spikes_E"]
    x = ev["x"]
    r = coding.filtered_spike_trains(coding.spike_counts(si, st, p.N_E, len(x)), float(p.lambda_ * p.dt))
    skip = round(float(p.discard / p.dt))  # the filter starts from 0: drop its transient
    return coding.coding_error(x[skip:], r[skip:] @ np.asarray(D).T)


def measure(pres, p, test_fit, test_eval, radius, D_fixed=None) -> dict:
    """Errors (optimal decoders refitted, and the fixed decoder ``D_fixed``), rates, tuning, per-angle errors."""
    ev = evaluate(pres, p, test_fit, test_eval)
    angles, tuning = measure_tuning(pres, p, radius)
    D = fit_decoder_E(pres, p, test_fit)
    D_fixed = D if D_fixed is None else D_fixed
    e_theta = per_angle_error(D, tuning["E"], angles, radius, float(p.lambda_))
    e_fixed = per_angle_error(D_fixed, tuning["E"], angles, radius, float(p.lambda_))
    sector = in_sector(angles, p.lesion_angle, p.lesion_width)
    si, _ = ev["spikes_E"]
    cell_rates = np.bincount(np.asarray(si, dtype=np.int64), minlength=p.N_E)[:p.N_E] / (len(ev["x"]) * float(p.dt))
    return {
        "cell_rates_E": cell_rates,
        "error_E": ev["error_E"], "error_I": ev["error_I"], "rate_E": ev["rate_E"], "rate_I": ev["rate_I"],
        "error_E_fixed": fixed_decoder_error(ev, D_fixed, p),
        "balance_E": ev.get("balance_E", np.nan), "angle_error": e_theta, "angle_error_fixed": e_fixed,
        "sector_error": float(np.mean(e_theta[sector])), "outside_error": float(np.mean(e_theta[~sector])),
        "sector_error_fixed": float(np.mean(e_fixed[sector])),
        "coverage": float(np.mean(e_theta < p.coverage_tol)), "D": D,
        "angles": angles, "tuning_E": tuning["E"], "tuning_I": tuning["I"],
    }


def surviving_cell_changes(res: dict, lesioned, p: Fig8Params) -> dict:
    """Fig 8 B measured on the E cells that survive the lesion, each condition against the same cells intact.

    The paper's statement is about tuning curves ("a large increase in firing rates and a widening and
    shifting of tuning curves towards the lesion"), so the cells are the surviving E cells — fixed before any
    result; ``rate_E`` elsewhere averages over all ``N_E`` cells, the deleted (silent) ones included.  Per
    condition: the surviving cells' mean rate on the test input and on the tuning inputs (all angles, and
    the angles inside the lesioned sector); the median shift of their preferred direction (circular mean of
    the tuning curve) towards the lesion centre, |Δ(intact)| − |Δ(condition)| in degrees (> 0: towards); the
    median ratio of their half-max tuning widths, condition / intact (cells that fire in both).
    """
    res_i = res["intact"]
    alive = np.setdiff1d(np.arange(p.N_E), np.asarray(lesioned, dtype=np.int64))
    angles = res_i["angles"]
    sector = in_sector(angles, p.lesion_angle, p.lesion_width)
    centre = np.radians(p.lesion_angle)
    out = {"n_surviving_E": int(alive.size)}
    if alive.size == 0:
        return out
    pref0 = coding.preferred_angles(angles, res_i["tuning_E"][:, alive])
    width0 = coding.halfmax_width(angles, res_i["tuning_E"][:, alive])
    for cond in CONDITIONS:
        r = res[cond]
        tun = r["tuning_E"][:, alive]
        out[f"{cond}_rate_E_surviving"] = float(np.mean(r["cell_rates_E"][alive]))
        out[f"{cond}_tuning_rate_E_surviving"] = float(np.mean(tun))
        out[f"{cond}_sector_rate_E_surviving"] = float(np.mean(tun[sector])) if sector.any() else float("nan")
        if cond == "intact":
            continue
        pref = coding.preferred_angles(angles, tun)
        d0, d1 = (np.abs(coding.angle_difference(a, centre)) for a in (pref0, pref))
        shift = np.degrees(d0 - d1)
        ok = np.isfinite(shift)
        out[f"{cond}_pref_shift_towards_lesion_deg"] = float(np.median(shift[ok])) if ok.any() else float("nan")
        out[f"{cond}_pref_shift_towards_lesion_share"] = float(np.mean(shift[ok] > 0)) if ok.any() else float("nan")
        # secondary, chosen after the first seed's value: only the cells flanking the hole (intact preferred
        # direction within 45° outside the lesioned sector's edge)
        flank = ok & (d0 > np.radians(p.lesion_width) / 2) & (d0 <= np.radians(p.lesion_width) / 2 + np.pi / 4)
        out[f"{cond}_pref_shift_towards_lesion_deg_flank"] = float(np.median(shift[flank])) if flank.any() \
            else float("nan")
        out[f"{cond}_n_flank"] = int(flank.sum())
        width = coding.halfmax_width(angles, tun)
        ok = np.isfinite(width) & np.isfinite(width0)
        out[f"{cond}_width_ratio_surviving"] = float(np.median(width[ok] / width0[ok])) if ok.any() else float("nan")
        for key in ("rate_E_surviving", "tuning_rate_E_surviving", "sector_rate_E_surviving"):
            base = out[f"intact_{key}"]
            out[f"{cond}_{key}_over_intact"] = out[f"{cond}_{key}"] / base if base > 0 else float("nan")
    return out


def _learn(pres: _Presenter, src, p, seconds: float, L: int, eta_scale=None) -> int:
    """Learn for ``seconds`` (per-weight rate factors ``eta_scale``); the largest count of wrong-sign weights."""
    net = pres.net
    worst = 0
    for _ in range(int(np.floor(seconds / float(p.chunk)))):
        c, _ = src.next(L)
        net.run_chunk(c, learning=True, eta_scale=eta_scale, seed=pres.seed * 1_000_003 + pres.n_runs)
        pres.n_runs += 1
        worst = max(worst, sum(dale_violations(net.weights).values()))
    return worst


def run(ctx) -> dict:
    p: Fig8Params = ctx.params
    p.validate()
    L = round(float(p.chunk / p.dt))
    train, test_fit, test_eval, rms_radius = learning_and_test_signals(p, ctx.seed, L * p.test_chunks)
    radius = p.tuning_radius or rms_radius
    ctx.log(f"spikecoding.fig8: N_E={p.N_E}, N_I={p.N_I}, learning {float(p.duration):g} s, retraining "
            f"{float(p.retrain):g} s, eps_F={p.eps_F:g}, eps_Omega={p.eps_Omega:g}, lesion {p.lesion_angle:g}° "
            f"± {p.lesion_width / 2:g}°, backend={ctx.backend}, seed={ctx.seed}")
    model_key = jsonable({f.name: getattr(p, f.name) for f in dataclasses.fields(EIParams)
                          if f.name not in ("eps_F", "eps_Omega")})
    res = {}
    with Session(ctx.backend, "spikecoding_fig8", key=(model_key, L), threads=ctx.threads) as session:
        net = EINetwork(p, session, L, plastic=True, seed=ctx.seed, name="ei")
        pres = _Presenter(net, ctx.seed)
        bar = ctx.progress(total=5, desc="fig8 stages", unit="stage")
        violations = _learn(pres, train, p, float(p.duration), L)
        res["intact"] = measure(pres, p, test_fit, test_eval, radius)
        bar.update(1)
        F = net.weights["F"]
        cell_angles = np.arctan2(F[1], F[0])
        lesioned = np.flatnonzero(in_sector(cell_angles, p.lesion_angle, p.lesion_width))
        n_lesioned = len(lesioned)
        net.lesion_E(lesioned)
        lesioned_state = net.state()
        masks = {k: v.copy() for k, v in net.masks.items()}
        D_intact = res["intact"]["D"]  # the readout stays that of the intact network
        res["lesioned"] = measure(pres, p, test_fit, test_eval, radius, D_intact)
        bar.update(1)
        for cond, scale in RETRAIN.items():
            net.set_weights(**{k: lesioned_state[k] for k in net.WEIGHTS})
            net.set_masks(**masks)
            net.set_dynamic_state(**{k: lesioned_state[k] for k in ("V_E", "r_E", "V_I", "r_I", "xbar")})
            retrain_src = smoothed_noise_for(p, [ctx.seed, 3])
            violations = max(violations, _learn(pres, retrain_src, p, float(p.retrain), L, eta_scale=scale))
            stray = float(np.abs(net.weights["F"][:, lesioned]).max()) if n_lesioned else 0.0
            for key in ("W_EE", "W_EI", "W_IE"):
                stray = max(stray, float(np.abs(net.weights[key][net.masks[key] == 0]).max(initial=0.0)))
            res[cond] = measure(pres, p, test_fit, test_eval, radius, D_intact)
            res[cond]["stray_weight"] = stray
            bar.update(1)
        bar.close()

    metrics = {"n_lesioned_E": n_lesioned, "dale_violations_max": violations,
               "stray_weight_max": max(res[c]["stray_weight"] for c in RETRAIN)}
    metrics.update(surviving_cell_changes(res, lesioned, p))
    for cond in CONDITIONS:
        r = res[cond]
        for key in ("error_E", "error_E_fixed", "error_I", "rate_E", "rate_I", "balance_E", "sector_error",
                    "sector_error_fixed", "outside_error", "coverage"):
            metrics[f"{cond}_{key}"] = r[key]
        ctx.log(f"{cond:12s} error E={r['error_E']:.4f} (fixed readout {r['error_E_fixed']:.4f}) "
                f"I={r['error_I']:.4f}  rate E={r['rate_E']:.2f} Hz  "
                f"sector error={r['sector_error']:.3f}  coverage={r['coverage']:.2f}")
    for cond in RETRAIN:
        for key in ("error_E", "error_E_fixed", "sector_error", "sector_error_fixed"):
            metrics[f"{cond}_{key}_over_lesioned"] = res[cond][key] / res["lesioned"][key]
            # share of the lesion's damage (above intact) that the retraining removes
            damage = res["lesioned"][key] - res["intact"][key]
            metrics[f"{cond}_{key}_recovered_fraction"] = ((res["lesioned"][key] - res[cond][key]) / damage
                                                           if damage > 0 else float("nan"))
    ctx.writer.save_metrics(metrics)
    arrays = {"angles": res["intact"]["angles"], "lesioned_cells": lesioned}
    for cond in CONDITIONS:
        for key in ("tuning_E", "tuning_I", "angle_error", "angle_error_fixed"):
            arrays[f"{cond}_{key}"] = res[cond][key]
    ctx.writer.save_arrays(**arrays)
    _figures(ctx, p, res)
    return metrics


def _shade(ax, lo, hi):
    """Grey band over the lesioned sector [lo, hi] degrees, wrapped into [0, 360)."""
    for shift in (-360, 0, 360):
        a, b = lo + shift, hi + shift
        if b > 0 and a < 360:
            ax.axvspan(max(a, 0), min(b, 360), color="0.85", zorder=0)


def _figures(ctx, p, res):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    deg = np.degrees(res["intact"]["angles"])
    lo, hi = p.lesion_angle - p.lesion_width / 2, p.lesion_angle + p.lesion_width / 2
    fig, axes = plt.subplots(1, len(CONDITIONS), figsize=(3.2 * len(CONDITIONS), 3), sharey=True)
    for ax, cond in zip(axes, CONDITIONS):
        ax.plot(deg, res[cond]["tuning_E"], lw=0.7)
        _shade(ax, lo, hi)
        ax.set_title(f"{cond}\nerror E {res[cond]['error_E']:.3f}", fontsize=9)
        ax.set_xlabel("input angle (deg)")
    axes[0].set_ylabel("E rate (Hz)")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig8_tuning")

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.3))
    x = np.arange(len(CONDITIONS))
    axes[0].bar(x, [res[c]["error_E"] for c in CONDITIONS], color="C2")
    axes[0].set_ylabel("E coding error")
    axes[1].bar(x, [res[c]["rate_E"] for c in CONDITIONS], color="C2")
    axes[1].set_ylabel("E mean rate (Hz)")
    for ax in axes[:2]:
        ax.set_xticks(x, CONDITIONS, rotation=30, fontsize=8)
    for k, cond in enumerate(CONDITIONS):
        axes[2].plot(deg, res[cond]["angle_error"], "o-", ms=3, color=f"C{k}", label=cond)
    _shade(axes[2], lo, hi)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("input angle (deg)")
    axes[2].set_ylabel("|x̂ − x|² / |x|²")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig8_error")


PROTOCOL = Protocol(
    name="spikecoding.fig8",
    paper="spikecoding",
    summary="lesion of the E cells coding one direction, then retraining recurrent / feedforward / both "
            "connections (Brendel et al. 2020, Fig 8)",
    params=Fig8Params,
    quick=quick_params,
    run=run,
    claims=[
        Claim("lesioned_error_E", "E coding error right after the lesion (optimal decoder)",
              "higher than intact", "> intact", None, "{:.4f}"),
        Claim("lesioned_sector_rate_E_surviving_over_intact", "surviving E cells' rate at the lesioned angles "
              "(tuning inputs), lesioned / intact", "large increase in firing rates (Fig 8 B)", "> 1",
              lambda v: v > 1, "{:.2f}"),
        Claim("lesioned_rate_E_surviving_over_intact", "surviving E cells' rate on the test input, lesioned / intact",
              "rates rise (Fig 8 B)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("lesioned_pref_shift_towards_lesion_deg", "median shift of the surviving E cells' preferred "
              "direction towards the lesion (deg)", "tuning curves shift towards the lesion (Fig 8 B)", "> 0",
              lambda v: v > 0, "{:.1f}"),
        Claim("lesioned_pref_shift_towards_lesion_deg_flank", "the same for the surviving cells flanking the "
              "hole (preferred direction ≤ 45° outside the sector; secondary, chosen after seed 1)",
              "shift towards the lesion (Fig 8 B)", "> 0", None, "{:.1f}"),
        Claim("lesioned_width_ratio_surviving", "median half-max tuning width of surviving E cells, lesioned / "
              "intact", "tuning curves widen (Fig 8 B)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("lesioned_rate_E", "E rate on the test input right after the lesion, mean over all N_E cells "
              "(deleted, silent cells included; not the paper's statistic)", "—", "(secondary)", None, "{:.2f}"),
        Claim("recurrent_error_E_recovered_fraction",
              "share of the lesion's extra E error removed by retraining the recurrent weights",
              "most (Fig 8 ii)", "> 0.5", lambda v: v > 0.5, "{:.2f}"),
        Claim("feedforward_error_E_over_lesioned", "E error after feedforward-only retraining / after the lesion",
              "worse (Fig 8 iii)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("both_error_E_recovered_fraction", "share of the extra E error removed by retraining both",
              "recovers (Fig 8 iv)", "> 0.5", lambda v: v > 0.5, "{:.2f}"),
        Claim("lesioned_sector_error", "per-angle error inside the lesioned sector after the lesion",
              "the lesioned direction is poorly coded", "> intact", None, "{:.3f}"),
        Claim("lesioned_coverage", "fraction of angles coded (per-angle error < coverage_tol) after the lesion",
              "a gap at the lesioned direction", "< intact", None, "{:.2f}"),
        Claim("recurrent_coverage", "coverage after retraining the recurrent weights", "recovered (Fig 8 ii)",
              "—", None, "{:.2f}"),
        Claim("dale_violations_max", "weights of the wrong sign", "0 (Dale's law)", "0", lambda v: v == 0, "{:d}"),
    ],
    figures=["fig8_tuning", "fig8_error"],
)
