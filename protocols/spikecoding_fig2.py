"""Protocol ``spikecoding.fig2``: 20 neurons learn to code a 2-D signal (Brendel et al. 2020, Fig 2).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

Learning runs for ``duration`` of smoothed-noise input (paper: 14,000 s), presented as
consecutive chunks of ``chunk`` to one compiled network.  At snapshots spaced
logarithmically in time the learned weights are frozen and tested on held-out input that
never changes between snapshots: the optimal linear decoder is fitted on one held-out
segment and the coding error Σvar(x − x̂)/Σvar(x) measured on another; the mean rate and
the voltage variance come from the same test, and the distance of Ω to the best-scaled
−FᵀF from the weights.  Tuning curves (rate vs. input angle at constant radius) are
measured before and after learning.

After learning (Fig 2 E–F) the frozen network codes the same held-out segment ``n_repeats`` times from other
initial membrane potentials and with other noise: the share of spikes that recur on another trial (same cell,
±``repeat_window`` steps) is set beside the same share for rate-modulated Poisson trials with the network's
trial-averaged firing probability, and the across-trial variance of the readout beside var(x).  Fig 3 A–B on
white input: each neuron's tuning maximum against the direction of its feedforward vector F_i.

Figures: ``fig2A_signal`` (x, x̂ and spikes before/after; paper Fig 2 A/C), ``fig2F_trials`` (rasters of three
trials of the same input and every trial's readout; Fig 2 E–F),
``fig2B_learning`` (error, rate, voltage variance, Ω distance over learning; Fig 2 B),
``fig2C_weights`` (Ω against −FᵀF, feedforward vectors; Fig 2 C) and ``fig2G_tuning``
(tuning curves before/after; Fig 2 G).  The input needs no data files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, second

from b2models.analysis import coding, spike_stats
from b2models.backend import Session
from b2models.data.signals import learning_and_test_signals
from b2models.models.spikecoding import SpikeCodingNetwork, SpikeCodingParams
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol, model_equations


def check_chunked_learning(p):
    """Checks shared by the chunked-learning protocols (duration, chunk, dt, snapshots, tests)."""
    if float(p.chunk) <= 0 or float(p.duration) < float(p.chunk):
        raise ValueError(f"need 0 < chunk <= duration (chunk={p.chunk}, duration={p.duration})")
    steps = float(p.chunk / p.dt)
    if abs(steps - round(steps)) > 1e-6:
        raise ValueError(f"chunk={p.chunk} is not a whole number of steps dt={p.dt}")
    if p.n_snapshots < 1 or p.test_chunks < 1 or p.n_angles < 4:
        raise ValueError("n_snapshots >= 1, test_chunks >= 1 and n_angles >= 4 are required")
    if float(p.discard) >= float(p.chunk) * p.test_chunks:
        raise ValueError(f"discard={p.discard} must be shorter than the test ({p.test_chunks} chunks)")


@dataclass
class Fig2Params(SpikeCodingParams):
    """Network parameters (paper defaults) plus the protocol's."""

    duration: Quantity = field(default_factory=lambda: 14000 * second)  # learning time
    chunk: Quantity = field(default_factory=lambda: 20 * second)  # one re-run of the binary
    n_snapshots: int = 14  # log-spaced test points (plus t = 0)
    test_chunks: int = 1  # chunks of held-out input to fit the decoder, and again to test it
    discard: Quantity = field(default_factory=lambda: 0.2 * second)  # transient dropped at test start
    n_angles: int = 24  # tuning-curve angles
    tuning_hold: Quantity = field(default_factory=lambda: 1 * second)  # time per angle
    tuning_radius: float = 0.0  # |x| for tuning curves; 0: the RMS |x| of the input
    n_repeats: int = 10  # Fig 2 F: trials of the same held-out input after learning (0: none)
    repeat_window: int = 1  # steps either side within which a spike counts as repeated in another trial

    def validate(self):
        super().validate()
        check_chunked_learning(self)
        if float(self.tuning_hold) <= float(self.discard):
            raise ValueError(f"tuning_hold={self.tuning_hold} must be longer than discard={self.discard}")
        if self.n_repeats == 1 or self.n_repeats < 0 or self.repeat_window < 0:
            raise ValueError(f"n_repeats must be 0 or >= 2 and repeat_window >= 0 (got {self.n_repeats}, "
                             f"{self.repeat_window})")


#: parameters that reach the compiled network as run arguments, not as code
RUN_ARG_FIELDS = ("eps_Omega", "eps_F", "init")


def quick_params(p: Fig2Params) -> Fig2Params:
    """The demo: 300 s of learning in 2 s chunks (same network)."""
    return dataclasses.replace(
        p, duration=300 * second, chunk=2 * second, n_snapshots=8, n_angles=16,
        tuning_hold=0.6 * second,
    )


def snapshot_chunks(n_chunks: int, n_snapshots: int) -> np.ndarray:
    """Chunk counts after which to test: 0 plus log-spaced values up to n_chunks."""
    pts = np.unique(np.round(np.logspace(0, np.log10(n_chunks), n_snapshots)).astype(int))
    return np.concatenate([[0], pts[pts <= n_chunks]])


class _Presenter:
    """Feeds arbitrary-length input to the chunked network and collects the output."""

    def __init__(self, net: SpikeCodingNetwork, seed: int):
        self.net = net
        self.seed = seed
        self.n_runs = 0
        self.binary_s = 0.0
        self.binary_steps = 0

    def present(self, c, x, learning: bool):
        net = self.net
        L = net.chunk_steps
        n = len(c)
        n_chunks = int(np.ceil(n / L))
        pad = n_chunks * L - n
        if pad:
            c = np.concatenate([c, np.repeat(c[-1:], pad, axis=0)])
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        spikes_i, spikes_t, v_means, v_vars = [], [], [], []
        for k in range(n_chunks):
            res = net.run_chunk(c[k * L:(k + 1) * L], x[k * L:(k + 1) * L], learning=learning,
                                seed=self.seed * 1_000_003 + self.n_runs)
            self.n_runs += 1
            if net.session.last_run.binary_s is not None:
                self.binary_s += net.session.last_run.binary_s
                self.binary_steps += L
            keep = res.spike_step < (n - k * L)
            spikes_i.append(res.spike_i[keep])
            spikes_t.append(res.spike_step[keep] + k * L)
            v_means.append(res.V_mean)
            v_vars.append(res.V_var)
        v_means = np.array(v_means)
        # total variance over the chunks = mean within-chunk variance + variance of chunk means
        v_var = np.mean(v_vars, axis=0) + np.var(v_means, axis=0)
        return np.concatenate(spikes_i), np.concatenate(spikes_t), v_var


def evaluate(pres: _Presenter, p: Fig2Params, test_fit, test_eval):
    """Freeze learning, fit the decoder on one held-out segment and test on the other."""
    net = pres.net
    saved = net.state()
    lam_dt = float(p.lambda_ * p.dt)
    d = int(round(float(p.discard / p.dt)))
    out = {}
    rs = []
    for (c, x) in (test_fit, test_eval):
        r0 = net.r.copy()
        si, st, v_var = pres.present(c, x, learning=False)
        o = coding.spike_counts(si, st, p.N, len(c))
        r = coding.filtered_spike_trains(o, lam_dt, r0=r0)
        rs.append((r[d:], x[d:], si, st, v_var))
    r_fit, x_fit = rs[0][0], rs[0][1]
    r_ev, x_ev, si, st, v_var = rs[1]
    D = coding.optimal_decoder(r_fit, x_fit)
    x_hat = r_ev @ D.T
    n_eval = len(x_ev)
    sel = st >= d
    out["error"] = coding.coding_error(x_ev, x_hat)
    out["rate_hz"] = coding.mean_rate(int(sel.sum()), p.N, n_eval * float(p.dt))
    out["voltage_var"] = float(np.mean(v_var))
    out["omega_distance"], out["omega_scale"] = coding.recurrent_vs_feedforward(net.Omega, net.F)
    out["decoder"] = D
    out["example"] = (x_ev, x_hat, si[sel], st[sel] - d)
    net.set_state(V=saved["V"], r=saved["r"])  # testing does not disturb the learning trajectory
    return out


def tuning_input(p: Fig2Params, radius: float):
    """Constant inputs c = λ R (cos θ, sin θ) held for tuning_hold each: x settles to radius R."""
    hold = int(round(float(p.tuning_hold / p.dt)))
    angles = np.linspace(0, 2 * np.pi, p.n_angles, endpoint=False)
    lam = float(p.lambda_)
    dirs = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if p.J > 2:
        dirs = np.concatenate([dirs, np.zeros((p.n_angles, p.J - 2))], axis=1)
    c = np.repeat(lam * radius * dirs, hold, axis=0)
    from b2models.data.signals import leaky_integrate

    x = leaky_integrate(c, float(p.lambda_ * p.dt), float(p.dt), x0=radius * dirs[0])
    d = int(round(float(p.discard / p.dt)))
    bounds = [(k * hold + d, (k + 1) * hold) for k in range(p.n_angles)]
    return angles, c, x, bounds


def measure_tuning(pres: _Presenter, p: Fig2Params, radius: float):
    net = pres.net
    saved = net.state()
    angles, c, x, bounds = tuning_input(p, radius)
    si, st, _ = pres.present(c, x, learning=False)
    rates = coding.tuning_curves(si, st, p.N, bounds, float(p.dt))
    net.set_state(V=saved["V"], r=saved["r"])
    return angles, rates


def repeat_trials(pres: _Presenter, p: Fig2Params, segment, D, seed: int) -> dict:
    """Fig 2 E–F: the frozen network codes the same held-out segment ``n_repeats`` times, each trial from
    other initial membrane potentials (uniform in [−T, T]) and with other membrane and threshold noise.

    Returns the spikes (after ``discard``), each trial's readout x̂ = D r and the statistics: the share of
    spikes that recur (same cell, ±``repeat_window`` steps) in another trial, the same share for surrogate
    trials drawn independently from the trial-averaged firing probability (what rate-modulated Poisson
    cells would repeat), the across-trial variance of x̂ relative to var(x), and each trial's coding error.
    """
    net = pres.net
    saved = net.state()
    c, x = segment
    d = int(round(float(p.discard / p.dt)))
    lam_dt = float(p.lambda_ * p.dt)
    rng = np.random.default_rng([seed, 7])
    si_all, st_all, tr_all, xhats = [], [], [], []
    for k in range(p.n_repeats):
        net.set_state(V=rng.uniform(-p.T, p.T, p.N), r=saved["r"])  # other initial conditions every trial
        si, st, _ = pres.present(c, x, learning=False)
        r = coding.filtered_spike_trains(coding.spike_counts(si, st, p.N, len(c)), lam_dt, r0=saved["r"])
        xhats.append(r[d:] @ np.asarray(D).T)
        keep = st >= d
        si_all.append(si[keep])
        st_all.append(st[keep] - d)
        tr_all.append(np.full(int(keep.sum()), k))
    net.set_state(V=saved["V"], r=saved["r"])
    si, st, tr = (np.concatenate(v) for v in (si_all, st_all, tr_all))
    xh = np.array(xhats)
    n_steps = len(c) - d
    s_i, s_t, s_k = spike_stats.psth_poisson_trials(si, st, tr, p.N, p.n_repeats, n_steps,
                                                    np.random.default_rng([seed, 8]))
    return {
        "repeat_spike_i": si, "repeat_spike_step": st, "repeat_trial": tr, "repeat_xhat": xh,
        "trial_repeat_fraction": spike_stats.trial_repeat_fraction(si, st, tr, p.n_repeats, p.repeat_window),
        "trial_repeat_fraction_psth_poisson": spike_stats.trial_repeat_fraction(s_i, s_t, s_k, p.n_repeats,
                                                                                p.repeat_window),
        "trial_readout_variance_ratio": float(np.mean(np.var(xh, axis=0).sum(axis=1)) / np.var(x[d:], axis=0).sum()),
        "trial_coding_errors": np.array([coding.coding_error(x[d:], h) for h in xh]),
        "trial_rate_hz": coding.mean_rate(len(si), p.N * p.n_repeats, n_steps * float(p.dt)),
    }


def _learn(ctx, p: Fig2Params) -> dict:
    """The expensive stage: learning with snapshots and tuning curves; everything as arrays."""
    L = int(round(float(p.chunk / p.dt)))
    n_chunks = int(np.floor(float(p.duration / p.chunk)))
    snaps = snapshot_chunks(n_chunks, p.n_snapshots)
    train, test_fit, test_eval, rms_radius = learning_and_test_signals(p, ctx.seed, L * p.test_chunks)
    radius = p.tuning_radius or rms_radius
    # what shapes the generated code (learning rates and initial weights arrive as run_args)
    model_key = jsonable({f.name: getattr(p, f.name) for f in dataclasses.fields(SpikeCodingParams)
                          if f.name not in RUN_ARG_FIELDS})
    history = {k: [] for k in ("t", "error", "rate_hz", "voltage_var", "omega_distance", "omega_scale")}
    examples = {}
    with Session(ctx.backend, "spikecoding_fig2", key=(model_key, L), threads=ctx.threads) as session:
        net = SpikeCodingNetwork(p, session, L, plastic=True, seed=ctx.seed, name="sc")
        ctx.log(f"built in {session.build_s:.1f} s ({session.directory})")
        pres = _Presenter(net, ctx.seed)
        F0, Om0 = net.F.copy(), net.Omega.copy()
        angles, tuning_before = measure_tuning(pres, p, radius)

        def snapshot(k_done):
            ev = evaluate(pres, p, test_fit, test_eval)
            history["t"].append(k_done * float(p.chunk))
            for key in ("error", "rate_hz", "voltage_var", "omega_distance", "omega_scale"):
                history[key].append(ev[key])
            ctx.log(
                f"t={k_done * float(p.chunk):9.1f} s  error={ev['error']:.4f}  rate={ev['rate_hz']:.2f} Hz  "
                f"Vvar={ev['voltage_var']:.4f}  |Ω+sFᵀF|²/|Ω|²={ev['omega_distance']:.4f}"
            )
            return ev

        ev = snapshot(0)
        examples["before"] = ev["example"]
        learn_spikes = 0
        learn_bin_s, learn_bin_steps = 0.0, 0
        bar = ctx.progress(total=n_chunks, desc="learning", unit="chunk")
        snap_set = set(int(s) for s in snaps[1:])
        for k in range(1, n_chunks + 1):
            c, x = train.next(L)
            b0, s0 = pres.binary_s, pres.binary_steps
            si, _, _ = pres.present(c, x, learning=True)
            learn_bin_s += pres.binary_s - b0
            learn_bin_steps += pres.binary_steps - s0
            learn_spikes += len(si)
            bar.update(1)
            if k in snap_set:
                ev = snapshot(k)
                bar.set_postfix(error=f"{ev['error']:.4f}", rate=f"{ev['rate_hz']:.1f}")
        bar.close()
        examples["after"] = ev["example"]
        angles, tuning_after = measure_tuning(pres, p, radius)
        arrays = {f"snapshot_{k}" if k == "t" else k: np.array(v) for k, v in history.items()}
        if p.n_repeats:
            arrays.update(repeat_trials(pres, p, test_eval, ev["decoder"], ctx.seed))
        for key in ("before", "after"):
            x, xh, si, st = examples[key]
            arrays[f"example_xhat_{key}"] = xh
            arrays[f"example_spike_i_{key}"] = si
            arrays[f"example_spike_step_{key}"] = st
        arrays.update(
            example_x=examples["after"][0], F_initial=F0, F_final=net.F.copy(), Omega_initial=Om0,
            Omega_final=net.Omega.copy(), tuning_angles=angles, tuning_before=tuning_before,
            tuning_after=tuning_after, tuning_radius=radius,
            learning_rate_hz=learn_spikes / p.N / (n_chunks * float(p.chunk)),
            learned_seconds=n_chunks * float(p.chunk), build_s=session.build_s,
            binary_us_per_step_learning=(1e6 * learn_bin_s / learn_bin_steps) if learn_bin_steps else np.nan,
            n_binary_runs=pres.n_runs,
        )
    return arrays


def run(ctx) -> dict:
    p: Fig2Params = ctx.params
    p.validate()
    ctx.log(
        f"spikecoding.fig2: N={p.N}, J={p.J}, {float(p.duration):g} s of learning in chunks "
        f"of {float(p.chunk):g} s, init={p.init!r}, one_spike_per_step={p.one_spike_per_step}, "
        f"backend={ctx.backend}, seed={ctx.seed}"
    )
    # the model's equation and rule strings are part of the key: a changed rule never reuses a cached run
    stage = {"params": p, "seed": ctx.seed, "backend": ctx.backend, "equations": model_equations("spikecoding")}
    a = ctx.cached_stage("spikecoding_fig2", stage, lambda: _learn(ctx, p), "learning run")
    pref_after = coding.preferred_angles(a["tuning_angles"], a["tuning_after"])
    timing = float(a["binary_us_per_step_learning"])
    metrics = {
        "final_error": a["error"][-1],
        "initial_error": a["error"][0],
        "final_rate_hz": a["rate_hz"][-1],
        "initial_rate_hz": a["rate_hz"][0],
        "final_voltage_var": a["voltage_var"][-1],
        "initial_voltage_var": a["voltage_var"][0],
        "omega_distance": a["omega_distance"][-1],
        "omega_scale": a["omega_scale"][-1],
        "learning_rate_hz": float(a["learning_rate_hz"]),
        "tuning_coverage": coding.angular_coverage(pref_after[np.isfinite(pref_after)], 8),
        "silent_neurons_after": int(np.sum(a["tuning_after"].sum(axis=0) == 0)),
        "tuning_radius": float(a["tuning_radius"]),
        "learned_seconds": float(a["learned_seconds"]),
        "build_s": float(a["build_s"]),
        "binary_us_per_step_learning": None if np.isnan(timing) else timing,
        "n_binary_runs": int(a["n_binary_runs"]),
    }
    # Fig 3 A–B (white input): each neuron's tuning maximum against the direction of its feedforward vector
    step = 360.0 / len(a["tuning_angles"])
    F1 = a["F_final"]
    dev = np.zeros(0)
    if p.J == 2:  # the tuning angles lie in the x₁–x₂ plane
        dev = np.degrees(np.abs(coding.angle_difference(coding.peak_angles(a["tuning_angles"], a["tuning_after"]),
                                                        np.arctan2(F1[1], F1[0]))))
        dev = dev[np.isfinite(dev)]
    if dev.size:
        metrics["tuning_peak_vs_F_median_deg"] = float(np.median(dev))
        metrics["tuning_peak_vs_F_within_step"] = float(np.mean(dev <= step + 1e-9))
        metrics["tuning_step_deg"] = step
    if "trial_repeat_fraction" in a:  # Fig 2 E–F: the same input on other trials
        errs = np.asarray(a["trial_coding_errors"])
        metrics.update({
            "trial_repeat_fraction": float(a["trial_repeat_fraction"]),
            "trial_repeat_fraction_psth_poisson": float(a["trial_repeat_fraction_psth_poisson"]),
            "trial_readout_variance_ratio": float(a["trial_readout_variance_ratio"]),
            "trial_coding_error_mean": float(errs.mean()),
            "trial_coding_error_max": float(errs.max()),
            "trial_rate_hz": float(a["trial_rate_hz"]),
        })
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**a, **recorded(p, a))
    _figures(ctx, p, a)
    return metrics


def recorded(p: Fig2Params, a: dict) -> dict:
    """The example test segments before and after learning under the recording convention
    (:func:`b2models.results.spike_arrays`): spikes, readout x̂ and the signal x, times in seconds."""
    from b2models.results import spike_arrays, trace_arrays

    dt = float(p.dt)
    x = a["example_x"]
    out = trace_arrays("signal", np.arange(len(x)) * dt, x, "1", "the test signal x (J dimensions)", kind="stimulus")
    for key in ("before", "after"):
        out.update(spike_arrays(f"coding_{key}", a[f"example_spike_i_{key}"], a[f"example_spike_step_{key}"] * dt,
                                p.N, model="b2models.models.spikecoding", resolution=dt))
        xh = a[f"example_xhat_{key}"]
        out.update(trace_arrays(f"readout_{key}", np.arange(len(xh)) * dt, xh, "1",
                                f"the network's readout x̂ of the test signal, {key} learning"))
    return out


def _figures(ctx, p, a):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dt = float(p.dt)
    history = {"t": a["snapshot_t"], **{k: a[k] for k in ("error", "rate_hz", "voltage_var", "omega_distance")}}
    examples = {key: (a["example_x"], a[f"example_xhat_{key}"], a[f"example_spike_i_{key}"],
                      a[f"example_spike_step_{key}"]) for key in ("before", "after")}
    angles, tb, ta = a["tuning_angles"], a["tuning_before"], a["tuning_after"]
    # A/C: signal and readout, spikes, before and after
    fig, axes = plt.subplots(3, 2, figsize=(10, 6), sharex=True)
    n_show = min(len(examples["after"][0]), int(2.0 / dt))
    tt = np.arange(n_show) * dt
    for col, key in enumerate(("before", "after")):
        x, xh, si, st = examples[key]
        for j in range(min(2, p.J)):
            ax = axes[j, col]
            ax.plot(tt, x[:n_show, j], "k", lw=1, label="x")
            ax.plot(tt, xh[:n_show, j], "C3", lw=1, label="x̂ (optimal decoder)")
            ax.set_ylabel(f"x{j + 1}")
        axes[0, col].set_title(f"{key} learning")
        sel = st < n_show
        axes[2, col].plot(st[sel] * dt, si[sel], "|k", ms=4)
        axes[2, col].set_ylabel("neuron")
        axes[2, col].set_xlabel("time (s)")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    ctx.writer.save_figure(fig, "fig2A_signal")

    # B: learning curves
    t = np.maximum(np.array(history["t"]), float(p.chunk) / 2)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax, key, label in zip(
        axes, ("error", "rate_hz", "voltage_var", "omega_distance"),
        ("coding error", "mean rate (Hz)", "voltage variance", "‖Ω − s(−FᵀF)‖²/‖Ω‖²"),
    ):
        ax.plot(t, history[key], "o-k", ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("learning time (s)")
        ax.set_ylabel(label)
        if key in ("error", "omega_distance"):
            ax.set_yscale("log")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig2B_learning")

    # C: weights
    F0, Om0, F1, Om1 = a["F_initial"], a["Omega_initial"], a["F_final"], a["Omega_final"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (F, Om, label) in zip(axes[:2], ((F0, Om0, "before"), (F1, Om1, "after"))):
        G = -(F.T @ F)
        off = ~np.eye(p.N, dtype=bool)
        ax.plot(G[off], Om[off], ".", ms=3, label="i ≠ k")
        ax.plot(np.diag(G), np.diag(Om), "r.", ms=5, label="i = k")
        ax.set_xlabel("−FᵀF")
        ax.set_ylabel("Ω")
        ax.set_title(f"recurrent weights {label}")
        ax.legend(fontsize=7)
    ax = axes[2]
    if p.J >= 2:
        for F, col, label in ((F0, "0.6", "before"), (F1, "k", "after")):
            ax.quiver(np.zeros(p.N), np.zeros(p.N), F[0], F[1], angles="xy", scale_units="xy", scale=1,
                      color=col, width=0.005, label=label)
        lim = 1.1 * max(np.abs(F0[:2]).max(), np.abs(F1[:2]).max())
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title("feedforward weights (F₁, F₂)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig2C_weights")

    # G: tuning curves
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    deg = np.degrees(angles)
    for ax, rates, label in ((axes[0], tb, "before"), (axes[1], ta, "after")):
        ax.plot(deg, rates, lw=1)
        ax.set_xlabel("input angle (deg)")
        ax.set_title(f"tuning curves {label} learning")
    axes[0].set_ylabel("rate (Hz)")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig2G_tuning")

    if "repeat_xhat" in a:  # F: the same input, other trials
        xh = a["repeat_xhat"]
        n_show = min(xh.shape[1], int(1.0 / dt))
        tt = np.arange(n_show) * dt
        fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
        si, st, tr = a["repeat_spike_i"], a["repeat_spike_step"], a["repeat_trial"]
        n_tr = min(3, xh.shape[0])
        for k in range(n_tr):
            sel = (tr == k) & (st < n_show)
            axes[0].plot(st[sel] * dt, si[sel] + (p.N + 2) * k, "|", color=f"C{k}", ms=3)
        axes[0].set_ylabel("neuron (trials stacked)")
        axes[0].set_title(f"same input, {n_tr} trials: {a['trial_repeat_fraction']:.2f} of spikes repeated "
                          f"(±{p.repeat_window} step)")
        axes[1].plot(tt, a["example_x"][:n_show, 0], "k", lw=1.5, label="x₁")
        for k in range(xh.shape[0]):
            axes[1].plot(tt, xh[k, :n_show, 0], lw=0.6, alpha=0.7)
        axes[1].set_xlabel("time (s)")
        axes[1].set_ylabel("x̂₁, every trial")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig2F_trials")


PROTOCOL = Protocol(
    name="spikecoding.fig2",
    paper="spikecoding",
    summary="20 LIF neurons learn an efficient, balanced spike code of a 2-D signal (Brendel et al. 2020, Fig 2)",
    params=Fig2Params,
    quick=quick_params,
    run=run,
    claims=[
        Claim("final_error", "coding error after learning", "0.0050 (authors' code)", "≤ 0.0055",
              lambda v: v <= 0.0055),
        Claim("final_rate_hz", "mean rate after learning (Hz)", "15.1 (authors' code)", "≤ 16",
              lambda v: v <= 16.0, "{:.2f}"),
        Claim("omega_distance", "‖Ω − s(−FᵀF)‖²/‖Ω‖² after learning", "Ω → −FᵀF", "≤ 0.05",
              lambda v: v <= 0.05),
        Claim("tuning_coverage", "fraction of 8 angle sectors with a preferred angle", "all angles covered",
              "1.0", lambda v: v >= 1.0, "{:.2f}"),
        Claim("initial_error", "coding error before learning", "high (Fig 2 B)", "> final", None),
        Claim("tuning_peak_vs_F_within_step", "share of neurons whose tuning maximum lies within one tuning-angle "
              "step of the direction of F_i", "tuning maxima aligned with the feedforward weights (Fig 3 A–B)",
              "≥ 0.8", lambda v: v >= 0.8, "{:.2f}"),
        Claim("tuning_peak_vs_F_median_deg", "median |tuning maximum − angle of F_i| (deg)", "≈ 0 (Fig 3 A–B)",
              "(one step: 360°/n_angles)", None, "{:.1f}"),
        Claim("trial_repeat_fraction", "share of spikes repeated (same cell, ±1 step) on another trial of the "
              "same input, other initial state and noise", "spike times differ between trials (Fig 2 E vs F)",
              "< 0.5", lambda v: v < 0.5, "{:.3f}"),
        Claim("trial_repeat_fraction_psth_poisson", "the same share for rate-matched Poisson trials "
              "(trial-averaged firing probability)", "—", "(reference)", None, "{:.3f}"),
        Claim("trial_readout_variance_ratio", "across-trial variance of the readout x̂ / variance of x",
              "the readout is precise on every trial (Fig 2 E–F)", "< 0.01", lambda v: v < 0.01, "{:.2e}"),
        Claim("trial_coding_error_mean", "coding error of single trials (mean over trials)", "precise",
              "≤ 0.0055", lambda v: v <= 0.0055),
    ],
    figures=["fig2A_signal", "fig2B_learning", "fig2C_weights", "fig2F_trials", "fig2G_tuning"],
)
