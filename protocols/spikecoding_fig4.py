"""Protocol ``spikecoding.fig4``: an E–I network obeying Dale's law learns to code a 3-D signal.

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

The network of :mod:`models.spikecoding_ei` (300 E / 75 I cells at full scale) learns for
``duration`` of smoothed-noise input, presented as chunks of ``chunk`` to one compiled
network (the re-runs of one binary carry the learned weights).  At log-spaced snapshots
learning is frozen and the network is tested on held-out input that is the same at every
snapshot: optimal linear decoders are fitted separately to the E and the I cells' filtered
spike trains on one segment (``test_chunks`` long: at dt = 0.1 ms a 1 s segment holds only
~50 independent samples of x, too few for 300 decoder weights — the authors fit on 4 s; a
small relative ridge keeps the decoder of near-constant rates bounded) and the coding errors
Σvar(x − x̂)/Σvar(x) measured on another,
together with the mean rates, the membrane-potential variances and the E–I balance
(correlation of the low-passed excitatory and inhibitory input currents of the recorded
cells, :func:`analysis.spike_stats.current_balance`).

Before and after learning, spike-train variability is measured as in the authors'
``FanoCV.m``: ``n_inputs`` constant inputs c = ``input_radius`` · U (U random unit vectors),
each for ``n_trials`` trials of ``chunk`` that start from rest and differ only in the
noise; ISI CVs (pooled over trials), Fano factors of the counts and the mean pairwise
count correlation, averaged over the cells with more than one spike per trial on average,
then over inputs.  Beside them: the CV and Fano factor that independent Poisson trains with
the same cells' rates give under the same estimator (:func:`analysis.spike_stats.poisson_reference`;
short trials bias a Poisson train's ISI CV below 1, e.g. 0.74 for 2.8 Hz and 0.5 s trials),
var(Σ counts)/Σ var(counts) of the active cells (1 for independent cells, → 0 when the
population count is fixed) and the correlation −1/(n − 1) that a fixed population count forces.
That count correlation over trials is labelled *trial count correlation*: it is not the statistic
of the paper's "pairwise correlations < 0.001".

Binned spike-train correlations (``binned_corr_{E,I}_{bin}_{before,after}``): on the same spikes (same
constant inputs and trials), each cell's train is counted in bins of 0.1, 1, 10 and 100 ms (trials
concatenated, no bin across a trial boundary), the Pearson correlation of every pair of active cells
is averaged, then the mean is taken over inputs (:func:`analysis.spike_stats.binned_pairwise_correlation`).
Decisions fixed before any result: *which bin* — the paper states none (its Fig 4 caption names CV
and Fano factor only; the authors' ``FanoCV.m`` computes no correlation), so every bin is reported and
each has a Claim; *which cells* — the authors' active cells (mean count per trial > 1), the only
selection in their Fig 4 analysis and the cells of the CV, Fano factor and trial count correlation
(every cell with ≥ 1 spike as a secondary ``_anyspike``).  A bin below ``dt`` is not measurable
(spike times are known to one step) and is reported as NaN: at the default dt = 0.1 ms all four bins
are measured, at dt = 1 ms the 0.1 ms bin is NaN.  Beside each value: ``_poisson``, independent
Poisson trains at the same cells' rates binned the same way (one seeded realisation,
:func:`analysis.spike_stats.poisson_binned_correlation`), ``_null_sd``, the exact s.d. of the mean for
independent trains (expectation 0), ``_pairs`` / ``_excluded_pairs`` (pairs left out for a constant
train); at a bin of one step ``_exclusive``, the correlation that the one-spike-per-step rule alone
forces (:func:`analysis.spike_stats.exclusive_bernoulli_correlation`).
Tuning curves (rate vs. angle of a constant input in the x₁–x₂ plane)
come after learning, for E and I cells; Fig 4 D's "I cells more broadly tuned" is measured as the median half-max
width (and, secondary, the circular spread) of the most active half of each population's firing cells
(:func:`tuning_breadth`; "the most active" is the paper's selection, the half fixed here before any result).
Fig 4 Bii–iii: the rates at every snapshot, and the CV and Fano factor at every snapshot on the first
``traj_inputs`` constant inputs × ``traj_trials`` trials (an own noise stream, so the learning run is unchanged).

Figures: ``fig4_learning`` (errors, rates, voltage variance, balance over learning),
``fig4_signal`` (x, x̂_E, x̂_I and rasters before/after), ``fig4_variability`` (CV, Fano,
correlation before/after, ISI distribution after), ``fig4_balance`` (currents of one E cell
before/after) and ``fig4_tuning``.  The input needs no data files.

Learning-rate schedule (optional deviation, off by default and in ``--quick``): after
``anneal_start`` (a fraction of ``duration``) the rates decay as ε / (1 + (t − start)/τ)
(``anneal_tau``); the authors keep them constant.  Every rule moves a weight by a fraction ε
of a noisy sample, so frozen weights carry fluctuations ∝ √ε (~0.02 rms at ×200); annealing
removes them.  It lowered how often a frozen network of the earlier one-spike variant
(see :mod:`models.spikecoding_ei`) flipped to the ceiling (3/10 → 0/10 trials of 2 s) but did
not fix it; the authors' refractory rule did.

``--quick``: a 100 E / 25 I network (same E:I ratio and parameters) learns for 60 s with
learning rates ×200 (the authors learn for ~10⁵ s; at ×20 the E cells stayed at the
one-spike-per-step ceiling for the whole minute — measured with the earlier one-spike
variant), and variability uses 4 inputs × 10 trials of 0.5 s.  The full protocol (300/75
cells, 50 trials × 20 inputs × 1 s) is far shorter than the authors' 10⁵ s of learning; set
``duration`` to approach it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, second

from b2models.analysis import coding, spike_stats
from b2models.backend import Session
from b2models.data.signals import learning_and_test_signals
from b2models.models.spikecoding_ei import EINetwork, EIParams, dale_violations
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol
from b2models.protocols.spikecoding_fig2 import check_chunked_learning, snapshot_chunks, tuning_input


@dataclass
class Fig4Params(EIParams):
    """Network parameters (authors' values) plus the protocol's."""

    duration: Quantity = field(default_factory=lambda: 1000 * second)  # learning time
    chunk: Quantity = field(default_factory=lambda: 1 * second)  # one binary run; also one trial
    n_snapshots: int = 10  # log-spaced test points (plus t = 0)
    test_chunks: int = 4  # chunks to fit the decoders, and again to test them
    decoder_ridge: float = 1e-3  # ridge of the optimal decoder, relative to mean(diag(rᵀr))
    discard: Quantity = field(default_factory=lambda: 0.1 * second)  # transient dropped at test start
    n_inputs: int = 20  # constant inputs for CV / Fano / correlations
    n_trials: int = 50  # trials per constant input
    input_radius: float = 90.0  # |c| of the constant inputs (Hz), authors: 90
    n_angles: int = 16  # tuning-curve angles
    tuning_hold: Quantity = field(default_factory=lambda: 0.5 * second)  # time per angle
    tuning_radius: float = 0.0  # |x| for tuning curves; 0: the RMS |x| of the input
    anneal_start: float = 1.0  # fraction of duration after which the learning rates decay (1: never)
    anneal_tau: Quantity = field(default_factory=lambda: 1 * second)  # ε(t) = ε / (1 + (t − start)/τ)
    traj_inputs: int = 2  # Fig 4 Biii: the first constant inputs (at most n_inputs) for CV / Fano at every
    # snapshot (0: not measured)
    traj_trials: int = 10  # trials per input at every snapshot

    def rate_scale(self, t_done: float) -> float:
        """Learning-rate factor for a chunk that starts after ``t_done`` seconds of learning."""
        start = self.anneal_start * float(self.duration)
        if t_done <= start:
            return 1.0
        return 1.0 / (1.0 + (t_done - start) / float(self.anneal_tau))

    def validate(self):
        super().validate()
        check_chunked_learning(self)
        if self.n_inputs < 1 or self.n_trials < 2:
            raise ValueError(f"n_inputs >= 1 and n_trials >= 2 are required ({self.n_inputs}, {self.n_trials})")
        if not (0 <= self.anneal_start <= 1 and float(self.anneal_tau) > 0):
            raise ValueError(f"need 0 <= anneal_start <= 1 and anneal_tau > 0 "
                             f"(got {self.anneal_start}, {self.anneal_tau})")
        if float(self.tuning_hold) <= float(self.discard):
            raise ValueError(f"tuning_hold={self.tuning_hold} must be longer than discard={self.discard}")
        if self.traj_inputs < 0 or (self.traj_inputs and self.traj_trials < 2):
            raise ValueError(f"need traj_inputs >= 0 and traj_trials >= 2 (got {self.traj_inputs}, "
                             f"{self.traj_trials})")


def quick_params(p: Fig4Params) -> Fig4Params:
    """The demo (under a minute on cpp): 100 E / 25 I cells, 60 s of faster learning."""
    return dataclasses.replace(
        p, N_E=100, N_I=25, duration=60 * second, chunk=0.5 * second, n_snapshots=5, test_chunks=4,
        eps_F=200 * p.eps_F, eps_Omega=200 * p.eps_Omega, n_inputs=4, n_trials=10, n_angles=16,
        tuning_hold=0.3 * second, n_record=10,
    )


class _Presenter:
    """Feeds input of any length to the chunked network and collects the output."""

    def __init__(self, net: EINetwork, seed: int):
        self.net = net
        self.seed = seed
        self.n_runs = 0
        self.binary_s = 0.0
        self.binary_steps = 0

    def present(self, c, learning: bool, rate_scale: float = 1.0) -> dict:
        net = self.net
        L = net.chunk_steps
        n = len(c)
        n_chunks = int(np.ceil(n / L))
        pad = n_chunks * L - n
        if pad:
            c = np.concatenate([c, np.repeat(c[-1:], pad, axis=0)])
        out = {k: [] for k in ("iE", "tE", "iI", "tI")}
        cur = {}
        vE, vI, mE, mI = [], [], [], []
        for k in range(n_chunks):
            res = net.run_chunk(c[k * L:(k + 1) * L], learning=learning, rate_scale=rate_scale,
                                seed=self.seed * 1_000_003 + self.n_runs)
            self.n_runs += 1
            if net.session.last_run.binary_s is not None:
                self.binary_s += net.session.last_run.binary_s
                self.binary_steps += L
            for pop, si, st in (("E", res.spike_i_E, res.spike_step_E), ("I", res.spike_i_I, res.spike_step_I)):
                keep = st < (n - k * L)
                out["i" + pop].append(si[keep])
                out["t" + pop].append(st[keep] + k * L)
            for key, arr in res.currents.items():
                cur.setdefault(key, []).append(arr)
            mE.append(res.V_mean_E)
            mI.append(res.V_mean_I)
            vE.append(res.V_var_E)
            vI.append(res.V_var_I)
        out = {k: np.concatenate(v) for k, v in out.items()}
        out["currents"] = {k: np.concatenate(v)[:n] for k, v in cur.items()}
        # total variance over the chunks = mean within-chunk variance + variance of chunk means
        out["V_var_E"] = np.mean(vE, axis=0) + np.var(mE, axis=0)
        out["V_var_I"] = np.mean(vI, axis=0) + np.var(mI, axis=0)
        return out


def evaluate(pres: _Presenter, p: Fig4Params, test_fit, test_eval) -> dict:
    """Frozen weights: decoders of E and I fitted on one segment, errors and balance on the other."""
    net = pres.net
    saved = net.state()
    lam_dt = float(p.lambda_ * p.dt)
    d = round(float(p.discard / p.dt))
    runs = []
    for c, x in (test_fit, test_eval):
        r0 = {"E": net.r_E.copy(), "I": net.r_I.copy()}
        o = pres.present(c, learning=False)
        r = {}
        for pop, N in (("E", p.N_E), ("I", p.N_I)):
            counts = coding.spike_counts(o["i" + pop], o["t" + pop], N, len(c))
            r[pop] = coding.filtered_spike_trains(counts, lam_dt, r0=r0[pop])[d:]
        runs.append((r, x[d:], o))
    (r_fit, x_fit, _), (r_ev, x_ev, o) = runs
    out = {"x": x_ev}
    n_eval = len(x_ev)
    for pop, N in (("E", p.N_E), ("I", p.N_I)):
        rf = r_fit[pop]
        D = coding.optimal_decoder(rf, x_fit, ridge=p.decoder_ridge * float(np.mean(np.sum(rf * rf, axis=0))))
        x_hat = r_ev[pop] @ D.T
        sel = o["t" + pop] >= d
        out[f"error_{pop}"] = coding.coding_error(x_ev, x_hat)
        out[f"rate_{pop}"] = coding.mean_rate(int(sel.sum()), N, n_eval * float(p.dt))
        out[f"voltage_var_{pop}"] = float(np.mean(o["V_var_" + pop]))
        out[f"xhat_{pop}"] = x_hat
        out[f"spikes_{pop}"] = (o["i" + pop][sel], o["t" + pop][sel] - d)
        if o["currents"]:
            exc, inh = o["currents"][f"{pop}_exc"][d:], o["currents"][f"{pop}_inh"][d:]
            out[f"balance_{pop}"] = float(np.nanmean(spike_stats.current_balance(exc, inh)))
            out[f"net_ratio_{pop}"] = float(np.nanmean(spike_stats.net_to_total_ratio(exc, inh)))
            out[f"currents_{pop}"] = (exc[:, 0], inh[:, 0])
    net.set_dynamic_state(**{k: saved[k] for k in ("V_E", "r_E", "V_I", "r_I", "xbar")})
    return out


def constant_inputs(p: Fig4Params, rng: np.random.Generator) -> np.ndarray:
    """``n_inputs`` constant commands c = radius · U with U uniform on the unit sphere (n_inputs, J)."""
    U = rng.standard_normal((p.n_inputs, p.J))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return p.input_radius * U


#: bins (ms) of the binned spike-train correlations.  Brendel et al. state no bin for their "< 0.001": the
#: Fig 4 caption names only CV and Fano factor and the authors' FanoCV.m computes no correlation, so every
#: bin is reported (one Claim each) rather than one chosen after seeing the numbers.
CORR_BINS_MS = (0.1, 1.0, 10.0, 100.0)


def corr_bin_label(bin_ms: float) -> str:
    return f"{bin_ms:g}ms"


def measurable_bins(p: Fig4Params) -> dict:
    """{bin label: bin in seconds, or None where the bin is below dt or not a whole multiple of it}.

    Spike times are known to one step, so a bin below ``dt`` is not measurable: it is reported as NaN
    (at the default dt = 0.1 ms all four bins are measurable; at dt = 1 ms the 0.1 ms bin is NaN)."""
    dt_ms = float(p.dt) * 1e3
    out = {}
    for b in CORR_BINS_MS:
        ratio = b / dt_ms
        ok = ratio >= 1 - 1e-9 and abs(ratio - round(ratio)) <= 1e-6 * ratio
        out[corr_bin_label(b)] = b * 1e-3 if ok else None
    return out


def binned_correlations(si, st, tr, N: int, L: int, p: Fig4Params, mean_counts, rng) -> dict:
    """Binned pairwise spike-train correlations of one population and one constant input, at every bin.

    Cells: the authors' active cells (mean count per trial > 1, FanoCV.m's only selection, the same cells as
    the CV, Fano factor and trial count correlation) — decided before any result; secondary ("anyspike"):
    every cell with >= 1 spike.  Beside each: independent Poisson trains at the same cells' rates, binned the
    same way (one seeded realisation), and the exact s.d. of the estimator for independent trains.
    """
    dt = float(p.dt)
    act = np.asarray(mean_counts) > 1.0
    anyspike = np.asarray(mean_counts) > 0
    out = {}
    for lab, b in measurable_bins(p).items():
        if b is None:
            continue
        bw = b / dt  # in steps
        kw = dict(trial=tr, n_trials=p.n_trials, dt=1.0)
        net = spike_stats.binned_pairwise_correlation(si, st, N, float(L), bw, active=act, **kw)
        pois = spike_stats.poisson_binned_correlation(mean_counts, p.n_trials, float(L), bw, rng, dt=1.0,
                                                      active=act)
        net_any = spike_stats.binned_pairwise_correlation(si, st, N, float(L), bw, active=anyspike, **kw)
        pois_any = spike_stats.poisson_binned_correlation(mean_counts, p.n_trials, float(L), bw, rng, dt=1.0,
                                                          active=anyspike)
        out[lab] = {"": net["mean"], "poisson": pois["mean"], "null_sd": net["null_sd"],
                    "pairs": net["n_pairs"], "excluded_pairs": net["n_pairs_excluded"],
                    "anyspike": net_any["mean"], "anyspike_poisson": pois_any["mean"]}
        if round(bw) == 1:  # one step per bin: what the one-spike-per-step rule alone forces
            prob = np.asarray(mean_counts)[act] / L
            out[lab]["exclusive"] = spike_stats.exclusive_bernoulli_correlation(prob) if act.sum() >= 2 \
                else float("nan")
    return out


def _average_binned(per_input: list, p: Fig4Params) -> dict:
    """{(bin label, statistic): mean over inputs}; the null s.d. combines as √Σs²/K.  Bins that are not
    measurable at this dt give NaN."""
    out = {}
    for lab, b in measurable_bins(p).items():
        rows = [d[lab] for d in per_input] if b is not None else []
        for key in ("", "poisson", "null_sd", "pairs", "excluded_pairs", "anyspike", "anyspike_poisson",
                    "exclusive"):
            vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
            if key == "exclusive" and not np.isfinite(vals).any():
                continue
            fin = vals[np.isfinite(vals)]
            if not fin.size:
                out[lab, key] = float("nan")
            elif key == "null_sd":
                out[lab, key] = float(np.sqrt(np.sum(fin ** 2)) / fin.size)
            else:
                out[lab, key] = float(fin.mean())
    return out


def measure_variability(pres: _Presenter, p: Fig4Params, inputs) -> dict:
    """CV, Fano factor, trial count correlation and binned spike-train correlations of E and I cells,
    averaged over the inputs."""
    net = pres.net
    saved = net.state()
    L = net.chunk_steps
    per_input = {pop: [] for pop in ("E", "I")}
    binned = {pop: [] for pop in ("E", "I")}
    isis_E = []
    rng = np.random.default_rng(pres.seed)
    rng_corr = np.random.default_rng([pres.seed, 5])  # separate stream: the CV / Fano references are unchanged
    for c0 in inputs:
        c = np.repeat(c0[None, :], L, axis=0)
        spikes = {pop: ([], [], []) for pop in ("E", "I")}
        for trial in range(p.n_trials):
            net.set_dynamic_state(V_E=0, r_E=0, V_I=0, r_I=0, xbar=0)  # every trial starts from rest
            o = pres.present(c, learning=False)
            for pop in ("E", "I"):
                spikes[pop][0].append(o["i" + pop])
                spikes[pop][1].append(o["t" + pop])
                spikes[pop][2].append(np.full(len(o["i" + pop]), trial))
        for pop, N in (("E", p.N_E), ("I", p.N_I)):
            si, st, tr = (np.concatenate(a) for a in spikes[pop])
            summ = spike_stats.variability_summary(si, st, tr, N, p.n_trials)
            # what independent Poisson trains with these cells' rates give under the same estimator
            ref = spike_stats.poisson_reference(summ["mean_counts"], p.n_trials, float(L), rng)
            summ["cv_poisson_ref"], summ["fano_poisson_ref"] = ref["cv"], ref["fano"]
            per_input[pop].append(summ)
            binned[pop].append(binned_correlations(si, st, tr, N, L, p, summ["mean_counts"], rng_corr))
            if pop == "E":
                isis_E.append(np.concatenate(spike_stats.interspike_intervals(si, st * float(p.dt), N, tr)))
    net.set_dynamic_state(**{k: saved[k] for k in ("V_E", "r_E", "V_I", "r_I", "xbar")})
    out = {}
    for pop in ("E", "I"):
        for key in ("cv", "fano", "pairwise_correlation", "n_active", "cv_poisson_ref", "fano_poisson_ref",
                    "variance_ratio", "population_fano", "correlation_floor"):
            vals = np.array([s[key] for s in per_input[pop]], dtype=float)
            out[f"{key}_{pop}"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        # mean rate over inputs and trials (a saturated network sits at the one-spike-per-step ceiling)
        out[f"rate_{pop}"] = float(np.mean([s["mean_count"] for s in per_input[pop]])) / (L * float(p.dt))
        out[f"binned_{pop}"] = _average_binned(binned[pop], p)
    out["isis_E"] = np.concatenate(isis_E) if isis_E else np.zeros(0)
    return out


def measure_tuning(pres: _Presenter, p: Fig4Params, radius: float):
    net = pres.net
    saved = net.state()
    angles, c, _, bounds = tuning_input(p, radius)
    o = pres.present(c, learning=False)
    rates = {pop: coding.tuning_curves(o["i" + pop], o["t" + pop], N, bounds, float(p.dt))
             for pop, N in (("E", p.N_E), ("I", p.N_I))}
    net.set_dynamic_state(**{k: saved[k] for k in ("V_E", "r_E", "V_I", "r_I", "xbar")})
    return angles, rates


HISTORY_KEYS = ("error_E", "error_I", "rate_E", "rate_I", "voltage_var_E", "voltage_var_I",
                "balance_E", "balance_I", "net_ratio_E", "net_ratio_I")
#: variability measured at every snapshot (Fig 4 Biii), on ``traj_inputs`` of the constant inputs
TRAJ_KEYS = ("cv_E", "fano_E", "cv_I", "fano_I", "cv_poisson_ref_E", "fano_poisson_ref_E", "rate_E", "rate_I")


def tuning_breadth(angles, rates, top_fraction: float = 0.5) -> dict:
    """Tuning breadth of one population (Fig 4 D): half-max width (degrees) and circular spread of its most
    active cells — those whose mean tuning rate is in the top ``top_fraction`` of the cells that fire (the
    paper shows "the most active" cells; fixed here before any result) — and of every cell that fires."""
    rates = np.asarray(rates, dtype=float)
    mean = rates.mean(axis=0)
    firing = np.flatnonzero(mean > 0)
    out = {"n_firing": int(firing.size)}
    if firing.size == 0:
        return out | {k: float("nan") for k in ("width_deg", "spread", "width_deg_all", "spread_all")}
    k = max(1, int(np.ceil(top_fraction * firing.size)))
    top = firing[np.argsort(mean[firing])[::-1][:k]]
    width = np.degrees(coding.halfmax_width(angles, rates))
    spread = coding.circular_spread(angles, rates)
    return out | {"width_deg": float(np.median(width[top])), "spread": float(np.median(spread[top])),
                  "width_deg_all": float(np.median(width[firing])), "spread_all": float(np.median(spread[firing])),
                  "n_top": int(k)}


def run(ctx) -> dict:
    p: Fig4Params = ctx.params
    p.validate()
    L = round(float(p.chunk / p.dt))
    n_chunks = int(np.floor(float(p.duration / p.chunk)))
    snaps = snapshot_chunks(n_chunks, p.n_snapshots)
    train, test_fit, test_eval, rms_radius = learning_and_test_signals(p, ctx.seed, L * p.test_chunks)
    inputs = constant_inputs(p, np.random.default_rng([ctx.seed, 3]))
    radius = p.tuning_radius or rms_radius
    ctx.log(
        f"spikecoding.fig4: N_E={p.N_E}, N_I={p.N_I}, J={p.J}, {float(p.duration):g} s of learning in "
        f"{n_chunks} chunks of {float(p.chunk):g} s, eps_F={p.eps_F:g}, eps_Omega={p.eps_Omega:g}, "
        f"backend={ctx.backend}, seed={ctx.seed}"
    )
    # learning rates reach the binary as run_args: they do not change the generated code
    model_key = jsonable({f.name: getattr(p, f.name) for f in dataclasses.fields(EIParams)
                          if f.name not in ("eps_F", "eps_Omega")})
    with Session(ctx.backend, "spikecoding_fig4", key=(model_key, L), threads=ctx.threads) as session:
        net = EINetwork(p, session, L, plastic=True, seed=ctx.seed, name="ei")
        ctx.log(f"built in {session.build_s:.1f} s ({session.directory})")
        pres = _Presenter(net, ctx.seed)
        W0 = {k: v.copy() for k, v in net.weights.items()}
        var_before = measure_variability(pres, p, inputs)
        ctx.log("before learning: " + _fmt_var(var_before))
        history = {k: [] for k in ("t",) + HISTORY_KEYS}
        traj = {k: [] for k in TRAJ_KEYS}
        # its own noise stream, so that the learning run is the same with or without the trajectory
        traj_pres = _Presenter(net, ctx.seed + 7_919)
        p_traj = dataclasses.replace(p, n_trials=p.traj_trials)
        examples = {}
        max_violations = 0

        def snapshot(k_done):
            if p.traj_inputs:
                v = measure_variability(traj_pres, p_traj, inputs[:p.traj_inputs])
                for key in TRAJ_KEYS:
                    traj[key].append(v[key])
            ev = evaluate(pres, p, test_fit, test_eval)
            ev["rate_scale"] = p.rate_scale(k_done * float(p.chunk))
            history["t"].append(k_done * float(p.chunk))
            for key in HISTORY_KEYS:
                history[key].append(ev.get(key, np.nan))
            ctx.log(
                f"t={k_done * float(p.chunk):8.1f} s  error E={ev['error_E']:.4f} I={ev['error_I']:.4f}  "
                f"rate E={ev['rate_E']:.2f} I={ev['rate_I']:.2f} Hz  balance E={ev.get('balance_E', np.nan):.3f}  "
                f"eps x{ev['rate_scale']:.3g}"
            )
            return ev

        examples["before"] = snapshot(0)
        learn_spikes = [0, 0]
        learn_bin_s, learn_bin_steps = 0.0, 0
        bar = ctx.progress(total=n_chunks, desc="learning", unit="chunk")
        snap_set = {int(s) for s in snaps[1:]}
        ev = examples["before"]
        for k in range(1, n_chunks + 1):
            c, _ = train.next(L)
            b0, s0 = pres.binary_s, pres.binary_steps
            scale = p.rate_scale((k - 1) * float(p.chunk))
            o = pres.present(c, learning=True, rate_scale=scale)
            learn_bin_s += pres.binary_s - b0
            learn_bin_steps += pres.binary_steps - s0
            learn_spikes[0] += len(o["iE"])
            learn_spikes[1] += len(o["iI"])
            max_violations = max(max_violations, sum(dale_violations(net.weights).values()))
            bar.update(1)
            if k in snap_set:
                ev = snapshot(k)
                bar.set_postfix(error_E=f"{ev['error_E']:.4f}", rate_E=f"{ev['rate_E']:.1f}", eps_scale=f"{scale:.3g}")
        bar.close()
        examples["after"] = ev
        var_after = measure_variability(pres, p, inputs)
        ctx.log("after learning: " + _fmt_var(var_after))
        angles, tuning = measure_tuning(pres, p, radius)
        W1 = {k: v.copy() for k, v in net.weights.items()}
        build_s = session.build_s

    learned_s = n_chunks * float(p.chunk)
    metrics = {}
    for key in HISTORY_KEYS:
        metrics[f"initial_{key}"] = history[key][0]
        metrics[f"final_{key}"] = history[key][-1]
    for when, v in (("before", var_before), ("after", var_after)):
        for key in ("cv_E", "fano_E", "pairwise_correlation_E", "cv_I", "fano_I", "pairwise_correlation_I",
                    "n_active_E", "rate_E", "rate_I", "cv_poisson_ref_E", "fano_poisson_ref_E",
                    "cv_poisson_ref_I", "fano_poisson_ref_I", "variance_ratio_E", "population_fano_E",
                    "correlation_floor_E"):
            metrics[f"{key}_{when}"] = v[key]
        for pop in ("E", "I"):  # binned_corr_E_1ms_after, binned_corr_E_1ms_after_poisson, ...
            for (lab, key), val in v[f"binned_{pop}"].items():
                metrics[f"binned_corr_{pop}_{lab}_{when}" + (f"_{key}" if key else "")] = val
    for pop in ("E", "I"):
        pref = coding.preferred_angles(angles, tuning[pop])
        metrics[f"tuning_coverage_{pop}"] = coding.angular_coverage(pref[np.isfinite(pref)], 8)
        # Fig 4 D: tuning breadth of the most active cells
        for key, val in tuning_breadth(angles, tuning[pop]).items():
            metrics[f"tuning_{key}_{pop}"] = val
    if metrics.get("tuning_width_deg_E"):
        metrics["tuning_width_I_over_E"] = metrics["tuning_width_deg_I"] / metrics["tuning_width_deg_E"]
    if metrics.get("tuning_spread_E"):
        metrics["tuning_spread_I_over_E"] = metrics["tuning_spread_I"] / metrics["tuning_spread_E"]
    # Fig 4 Bii–iii: rates, CV and Fano factor over learning (at every snapshot)
    metrics["rate_E_final_over_initial"] = history["rate_E"][-1] / history["rate_E"][0] \
        if history["rate_E"][0] > 0 else float("nan")
    metrics["rate_I_final_over_initial"] = history["rate_I"][-1] / history["rate_I"][0] \
        if history["rate_I"][0] > 0 else float("nan")
    if p.traj_inputs:
        for key in ("cv_E", "fano_E", "cv_I", "fano_I"):
            vals = np.array(traj[key], dtype=float)
            learned = vals[1:] if vals.size > 1 else vals
            metrics[f"traj_{key}_initial"] = float(vals[0])
            metrics[f"traj_{key}_final"] = float(vals[-1])
            metrics[f"traj_{key}_min_learning"] = float(np.nanmin(learned)) if np.isfinite(learned).any() \
                else float("nan")
            metrics[f"traj_{key}_max_learning"] = float(np.nanmax(learned)) if np.isfinite(learned).any() \
                else float("nan")
    metrics.update({
        "dale_violations_max": max_violations,
        "learning_rate_E_hz": learn_spikes[0] / p.N_E / learned_s,
        "learning_rate_I_hz": learn_spikes[1] / p.N_I / learned_s,
        "tuning_radius": radius,
        "final_learning_rate_scale": p.rate_scale(max(0, n_chunks - 1) * float(p.chunk)),
        "rate_ceiling_E_hz": ceiling(p.N_E, p),
        "rate_ceiling_I_hz": ceiling(p.N_I, p),
        "learned_seconds": learned_s,
        "build_s": build_s,
        "binary_us_per_step_learning": (1e6 * learn_bin_s / learn_bin_steps) if learn_bin_steps else None,
        "n_binary_runs": pres.n_runs,
    })
    ctx.writer.save_metrics(metrics)
    arrays = {"snapshot_t": np.array(history["t"]), "tuning_angles": angles,
              "tuning_E": tuning["E"], "tuning_I": tuning["I"], "isis_E_after": var_after["isis_E"],
              "constant_inputs": inputs}
    arrays.update({k: np.array(v) for k, v in history.items() if k != "t"})
    arrays.update({f"traj_{k}": np.array(v, dtype=float) for k, v in traj.items() if v})
    arrays.update({f"{k}_initial": v for k, v in W0.items()})
    arrays.update({f"{k}_final": v for k, v in W1.items()})
    ctx.writer.save_arrays(**arrays, **recorded(p, examples))
    _figures(ctx, p, history, examples, var_before, var_after, angles, tuning, traj)
    return metrics


def recorded(p, examples: dict) -> dict:
    """The evaluation segments before and after learning under the recording convention
    (:func:`b2models.results.spike_arrays`): E and I spikes, both readouts x̂ and the signal x, times in seconds."""
    from b2models.results import spike_arrays, trace_arrays

    dt = float(p.dt)
    out = {}
    for key in ("before", "after"):
        ev = examples[key]
        t = np.arange(len(ev["x"])) * dt
        out.update(trace_arrays(f"signal_{key}", t, ev["x"], "1", f"the test signal x, {key} learning",
                                kind="stimulus"))
        for pop, n in (("E", p.N_E), ("I", p.N_I)):
            si, st = ev[f"spikes_{pop}"]
            out.update(spike_arrays(f"{pop}_{key}", si, np.asarray(st) * dt, n,
                                    model="b2models.models.spikecoding_ei", resolution=dt))
            out.update(trace_arrays(f"readout_{pop}_{key}", t, ev[f"xhat_{pop}"], "1",
                                    f"the readout x̂ of the {pop} population, {key} learning"))
    return out


def ceiling(N: int, p: EIParams | None = None) -> float:
    """Largest mean rate (Hz) with one spike per step per population and the refractory period."""
    p = p or EIParams()
    per_cell = 1 / float(p.refractory)
    return min(1 / (N * float(p.dt)), per_cell) if p.one_spike_per_step else per_cell


def _fmt_var(v):
    binned = "  ".join(
        f"{pop} {lab} {v[f'binned_{pop}'][lab, '']:.2e} (Poisson {v[f'binned_{pop}'][lab, 'poisson']:.2e} "
        f"± {v[f'binned_{pop}'][lab, 'null_sd']:.1e})"
        for pop in ("E", "I") for lab in (corr_bin_label(b) for b in CORR_BINS_MS))
    return (f"rate E={v['rate_E']:.1f} I={v['rate_I']:.1f} Hz  CV E={v['cv_E']:.3f} I={v['cv_I']:.3f}  "
            f"Fano E={v['fano_E']:.3f} I={v['fano_I']:.3f}  "
            f"trial count corr E={v['pairwise_correlation_E']:.4f} (floor {v['correlation_floor_E']:.4f})  "
            f"active E cells={v['n_active_E']:.0f}  Poisson reference CV E={v['cv_poisson_ref_E']:.3f} "
            f"Fano E={v['fano_poisson_ref_E']:.3f}  var(Σn)/Σvar(n) E={v['variance_ratio_E']:.3f}\n"
            f"  binned spike-train corr: {binned}")


def _figures(ctx, p, history, examples, var_before, var_after, angles, tuning, traj=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dt = float(p.dt)
    colors = {"E": "C2", "I": "C1"}
    # learning curves
    t = np.maximum(np.array(history["t"]), float(p.chunk) / 2)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3))
    for ax, key, label, logy in zip(
        axes, ("error", "rate", "voltage_var", "balance"),
        ("coding error", "mean rate (Hz)", "voltage variance", "E–I current correlation"), (True, True, True, False),
    ):
        for pop in ("E", "I"):
            ax.plot(t, history[f"{key}_{pop}"], "o-", color=colors[pop], ms=3, label=pop)
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("learning time (s)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig4_learning")

    if traj and traj.get("cv_E"):  # Bii–iii: rates, CV and Fano factor over learning
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        for pop in ("E", "I"):
            axes[0].plot(t, history[f"rate_{pop}"], "o-", color=colors[pop], ms=3, label=f"{pop} (test input)")
        axes[0].set_ylabel("mean rate (Hz)")
        for key, mk, lab in (("cv", "o-", "ISI CV"), ("fano", "s--", "Fano factor")):
            axes[1].plot(t, traj[f"{key}_E"], mk, color=colors["E"], ms=3, label=f"{lab} E")
            axes[1].plot(t, traj[f"{key}_I"], mk, color=colors["I"], ms=3, label=f"{lab} I")
        axes[1].axhline(1, color="k", ls=":", lw=1)
        axes[1].set_ylabel("CV, Fano factor (constant inputs)")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("learning time (s)")
            ax.legend(fontsize=6)
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig4B_trajectories")

    # signal and rasters
    fig, axes = plt.subplots(p.J + 1, 2, figsize=(11, 1.6 * (p.J + 1) + 1), sharex=True)
    for col, key in enumerate(("before", "after")):
        ev = examples[key]
        n_show = min(len(ev["x"]), int(0.5 / dt))
        tt = np.arange(n_show) * dt
        for j in range(p.J):
            ax = axes[j, col]
            ax.plot(tt, ev["x"][:n_show, j], "k", lw=1, label="x")
            ax.plot(tt, ev["xhat_E"][:n_show, j], color=colors["E"], lw=1, label="x̂ (E)")
            ax.plot(tt, ev["xhat_I"][:n_show, j], color=colors["I"], lw=1, label="x̂ (I)")
            ax.set_ylabel(f"x{j + 1}")
        axes[0, col].set_title(f"{key} learning")
        ax = axes[p.J, col]
        for pop, offset in (("E", 0), ("I", p.N_E)):
            si, st = ev[f"spikes_{pop}"]
            sel = st < n_show
            ax.plot(st[sel] * dt, si[sel] + offset, "|", color=colors[pop], ms=2)
        ax.set_ylabel("cell (E, then I)")
        ax.set_xlabel("time (s)")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig4_signal")

    # variability
    fig, axes = plt.subplots(1, 5, figsize=(19, 3))
    for ax, key, label in zip(axes[:3], ("cv", "fano", "pairwise_correlation"),
                              ("ISI CV", "Fano factor", "mean pairwise trial count correlation")):
        for k, pop in enumerate(("E", "I")):
            ax.bar([3 * k, 3 * k + 1], [var_before[f"{key}_{pop}"], var_after[f"{key}_{pop}"]],
                   color=["0.7", colors[pop]])
        ax.set_xticks([0, 1, 3, 4], ["E before", "E after", "I before", "I after"], fontsize=7)
        if key != "pairwise_correlation":
            ax.axhline(1, color="k", ls=":", lw=1)
        ax.set_title(label)
    isis = var_after["isis_E"]
    if isis.size:
        axes[3].hist(isis * 1e3, bins=60, color=colors["E"])
        axes[3].set_xlabel("ISI (ms), E cells after learning")
        axes[3].set_yscale("log")
    ax = axes[4]
    labs = [corr_bin_label(b) for b in CORR_BINS_MS]
    for k, pop in enumerate(("E", "I")):
        d = var_after[f"binned_{pop}"]
        ax.errorbar(np.array(CORR_BINS_MS) * (1 + 0.08 * k), [d[lab, ""] for lab in labs], fmt="o-",
                    color=colors[pop], ms=4, label=f"{pop} after learning")
        ax.errorbar(np.array(CORR_BINS_MS) * (1 + 0.08 * k), [d[lab, "poisson"] for lab in labs],
                    yerr=[d[lab, "null_sd"] for lab in labs], fmt="s--", color=colors[pop], mfc="none", ms=4,
                    lw=0.8, label=f"{pop} Poisson, same rates (± s.d.)")
    ax.axhspan(-1e-3, 1e-3, color="0.85", zorder=0, label="|ρ| < 0.001 (paper)")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlabel("bin (ms)")
    ax.set_title("mean pairwise spike-train correlation")
    ax.legend(fontsize=6)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig4_variability")

    # balance: currents of one E cell
    if "currents_E" in examples["after"]:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3), sharey=True)
        for ax, key in zip(axes, ("before", "after")):
            exc, inh = examples[key]["currents_E"]
            n_show = min(len(exc), int(0.5 / dt))
            tt = np.arange(n_show) * dt
            ax.plot(tt, exc[:n_show], "C3", lw=1, label="excitatory")
            ax.plot(tt, inh[:n_show], "C0", lw=1, label="inhibitory")
            ax.plot(tt, exc[:n_show] + inh[:n_show], "k", lw=0.8, label="net")
            ax.set_title(f"E cell 0, {key} learning (corr {examples[key].get('balance_E', np.nan):.2f} avg)")
            ax.set_xlabel("time (s)")
        axes[0].set_ylabel("input current (Hz)")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig4_balance")

    # tuning
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    deg = np.degrees(angles)
    for ax, pop in zip(axes, ("E", "I")):
        ax.plot(deg, tuning[pop], lw=0.8)
        ax.set_xlabel("input angle in the x₁–x₂ plane (deg)")
        ax.set_ylabel("rate (Hz)")
        ax.set_title(f"{pop} cells after learning")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig4_tuning")


PROTOCOL = Protocol(
    name="spikecoding.fig4",
    paper="spikecoding",
    summary="E and I populations under Dale's law learn a precise code with Poisson-like, "
            "uncorrelated spike trains (Brendel et al. 2020, Fig 4)",
    params=Fig4Params,
    quick=quick_params,
    run=run,
    claims=[
        Claim("final_error_E", "E coding error after learning", "falls during learning (Fig 4)",
              "< initial", None),
        Claim("final_error_I", "I coding error after learning", "falls during learning (Fig 4)",
              "< initial", None),
        Claim("cv_E_after", "ISI CV of E cells after learning", "≈ 1 (Poisson-like)", "0.8–1.2",
              lambda v: 0.8 <= v <= 1.2, "{:.3f}"),
        Claim("fano_E_after", "Fano factor of E cells after learning", "≈ 1 (Poisson-like)", "0.7–1.3",
              lambda v: 0.7 <= v <= 1.3, "{:.3f}"),
        Claim("pairwise_correlation_E_after", "mean pairwise trial count correlation (E; whole-trial counts, "
              "a different statistic, floor −1/(n − 1))", "< 0.001 (stated for spike-train correlations)",
              "|ρ| < 0.001", lambda v: abs(v) < 0.001, "{:.5f}"),
        *[Claim(f"binned_corr_E_{corr_bin_label(b)}_after",
                f"mean pairwise spike-train correlation (E), {corr_bin_label(b)} bins",
                "< 0.001 (bin not stated: every bin reported)", "|ρ| < 0.001", lambda v: abs(v) < 0.001, "{:.2e}")
          for b in CORR_BINS_MS],
        Claim("tuning_width_I_over_E", "median half-max tuning width, I / E (most active half of each "
              "population)", "I cells more broadly tuned than E cells (Fig 4 D)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("tuning_spread_I_over_E", "median circular spread of the tuning curves, I / E (secondary)",
              "broader I tuning (Fig 4 D)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("rate_E_final_over_initial", "E rate on the test input after / before learning",
              "mean rates over learning (Fig 4 Bii)", "—", None, "{:.2f}"),
        Claim("traj_cv_E_final", "ISI CV of E cells at the last snapshot (trajectory inputs)",
              "CV over learning (Fig 4 Biii)", "0.8–1.2", lambda v: 0.8 <= v <= 1.2, "{:.2f}"),
        Claim("traj_fano_E_final", "Fano factor of E cells at the last snapshot (trajectory inputs)",
              "Fano factor over learning (Fig 4 Biii)", "0.7–1.3", lambda v: 0.7 <= v <= 1.3, "{:.2f}"),
        Claim("traj_cv_E_initial", "ISI CV of E cells before learning (trajectory inputs)", "—",
              "(start of the trajectory)", None, "{:.2f}"),
        Claim("final_balance_E", "E–I current correlation of E cells after learning", "tight balance",
              "> 0.5", lambda v: v > 0.5, "{:.3f}"),
        Claim("dale_violations_max", "weights of the wrong sign during learning", "0 (Dale's law)", "0",
              lambda v: v == 0, "{:d}"),
    ],
    figures=["fig4_learning", "fig4B_trajectories", "fig4_signal", "fig4_variability", "fig4_balance", "fig4_tuning"],
)
