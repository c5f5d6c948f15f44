"""Online past–future CCA with local learning rules in Brian2 synapses (ReSU filters learned online).

Rule: Bio-CCA of Lipshutz D, Bahroun Y, Golkar S, Sengupta AM, Chklovskii DB (2021), "A biologically
plausible neural network for multichannel canonical correlation analysis", Neural Computation 33(9):
2309–2352, https://doi.org/10.1162/neco_a_01414, adapted to the past–future lag vectors of the ReSUs of
Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), arXiv:2512.23146.

Per sample t the network sees one (past, future) pair.  The future of a sample is not known yet, so the
pair is taken h samples late from one delay line of length m + h: at time t the delay line holds x_{t−L},
L = 0 … m+h−1; the "future" view f = [x_{t−h+1}, …, x_t] (taps L = h−1 … 0) and the "past" view
p = [x_{t−h}, …, x_{t−h−m+1}] (taps L = h … h+m−1), i.e. the pair (p_{t−h}, f_{t−h}) of analysis/cca.py.

* basal input a = W_x p (synapses from the past taps), apical input b = W_y f (from the future taps);
* output z = M⁻¹(a + b), reached by fast recurrent dynamics τ_z dz/dt = a + b − M z with lateral
  synapses M (``n_inner`` Euler steps of a fast clock per sample, step γ = dt_fast/τ_z);
* local plasticity once per sample, before the next input: ΔW_x = η (z − a) pᵀ, ΔW_y = η (z − b) fᵀ
  (post-synaptic output minus the dendritic current, times the presynaptic tap), ΔM = (η/τ_M)(z zᵀ − M)
  (Hebbian lateral weights), with η = η₀ / (1 + t/t_decay).

The rows of W_x converge to a basis of the span of the top-k past CCA filters ψ_1..ψ_k (the rule fixes the
subspace, not the individual filters), so convergence is measured by principal angles (analysis/cca.py).

Deliberate deviations: the pairs are used h samples late (causality); z is relaxed with a finite number
of Euler steps, warm-started from the previous sample's z, instead of the exact M⁻¹; learning-rate decay
is ours; before t = 0 the delay line holds the first input sample (TimedArray clipping, as models/resu.py);
plasticity is off at t = 0 (nothing has been seen yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import (
    Clock,
    Network,
    NeuronGroup,
    Quantity,
    StateMonitor,
    Synapses,
    TimedArray,
    ms,
)

from b2models.backend import Session

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
LAG_DELAY_LINE = """
x : 1                         # x_{t−L}: input of channel `chan`, L = lag samples ago
lag : integer (constant)      # L = 0 … m+h−1 (L < h: future view, L ≥ h: past view)
chan : integer (constant)     # input channel
"""

#: per sample, before the synaptic sums: shift in the input (stored, so plasticity sees the old pair)
LAG_DELAY_LINE_UPDATE = "x = stim(t - lag * dt_in, chan)"

BIO_CCA_NEURON = """
dz/dt = (a + b - l) / tau_z : 1   # fast relaxation to z = M⁻¹(a + b)
a : 1                             # basal current W_x p (summed over past-tap synapses)
b : 1                             # apical current W_y f (summed over future-tap synapses)
l : 1                             # lateral current (M z)_i (summed over lateral synapses, incl. self)
"""

PAST_SYNAPSE = """
wx : 1                          # W_x[i, c·m + k]: weight of past tap k of channel c onto output i
a_post = wx * x_pre : 1 (summed)
"""

FUTURE_SYNAPSE = """
wy : 1                          # W_y[i, c·h + k]: weight of future tap k of channel c onto output i
b_post = wy * x_pre : 1 (summed)
"""

LATERAL_SYNAPSE = """
mw : 1                          # M[i, j] (symmetric, self-connections included)
l_post = mw * z_pre : 1 (summed)
"""

#: learning rate η(t) (plasticity is off at t = 0)
LEARNING_RATE = "eta0 / (1 + t / t_decay) * int(t > 0.5 * dt_in)"
#: ΔW_x = η (z − a) p
PAST_RULE = f"wx += {LEARNING_RATE} * (z_post - a_post) * x_pre"
#: ΔW_y = η (z − b) f
FUTURE_RULE = f"wy += {LEARNING_RATE} * (z_post - b_post) * x_pre"
#: ΔM = (η/τ_M)(z_i z_j − M_ij)
LATERAL_RULE = f"mw += {LEARNING_RATE} / tau_m * (z_pre * z_post - mw)"


@dataclass
class BioCCAParams:
    """Sizes and learning parameters of the online past–future CCA network."""

    dt: Quantity = field(default_factory=lambda: 10 * ms)  # one sample
    m: int = 6  # past length
    h: int = 6  # future length
    k: int = 2  # number of filters (outputs)
    channels: int = 1
    eta0: float = 0.02  # initial learning rate η₀
    decay_samples: float = 2000.0  # η = η₀ / (1 + t / t_decay), t_decay in samples
    tau_m: float = 0.5  # τ_M: lateral weights learn η/τ_M
    n_inner: int = 10  # Euler steps of the output relaxation per sample
    gamma: float = 0.3  # Euler step of the relaxation, dt_fast / τ_z
    record_every: int = 100  # samples between weight snapshots

    def validate(self):
        if min(self.m, self.h, self.k, self.channels, self.n_inner, self.record_every) < 1:
            raise ValueError("m, h, k, channels, n_inner and record_every must be >= 1")
        if self.k > self.channels * min(self.m, self.h):
            raise ValueError(f"k={self.k} exceeds the rank C·min(m, h) = {self.channels * min(self.m, self.h)}")
        if not 0 < self.gamma < 1 or self.eta0 <= 0 or self.tau_m <= 0 or self.decay_samples <= 0:
            raise ValueError("need 0 < gamma < 1 and eta0, tau_m, decay_samples > 0")


def initial_weights(p: BioCCAParams, seed: int = 0) -> dict:
    """Small random W_x, W_y and M = I (the same for the Brian2 network and the reference)."""
    rng = np.random.default_rng(seed)
    return {"wx": 0.1 * rng.standard_normal((p.k, p.channels * p.m)),
            "wy": 0.1 * rng.standard_normal((p.k, p.channels * p.h)), "M": np.eye(p.k)}


class BioCCANetwork:
    """Delay line, k Bio-CCA outputs and their plastic synapses; one build, many runs."""

    def __init__(self, p: BioCCAParams, session: Session, n_steps: int, name: str = "biocca"):
        p.validate()
        self.p, self.session, self.n_steps = p, session, int(n_steps)
        if self.n_steps < p.m + p.h + 1:
            raise ValueError(f"n_steps={n_steps} must exceed m + h = {p.m + p.h}")
        C, m, h, k = p.channels, p.m, p.h, p.k
        L = m + h
        clock = Clock(p.dt, name=f"{name}_clock")
        fast = Clock(p.dt / p.n_inner, name=f"{name}_fast")
        self.stim = TimedArray(np.zeros((self.n_steps, C)), dt=p.dt, name=f"{name}_stim")
        ns = {"stim": self.stim, "dt_in": p.dt, "eta0": p.eta0, "t_decay": p.decay_samples * p.dt,
              "tau_m": p.tau_m, "tau_z": p.dt / p.n_inner / p.gamma}
        self.taps = NeuronGroup(C * L, LAG_DELAY_LINE, clock=clock, namespace=ns, name=f"{name}_taps")
        self.taps.chan = np.repeat(np.arange(C), L)
        self.taps.lag = np.tile(np.arange(L), C)
        self.taps_update = self.taps.run_regularly(LAG_DELAY_LINE_UPDATE, when="before_groups",
                                                   name=f"{name}_shift")
        self.out = NeuronGroup(k, BIO_CCA_NEURON, method="euler", clock=fast, namespace=ns, name=f"{name}_out")
        # past synapses: tap (c, h + kk) → output i  ↔  W_x[i, c·m + kk]
        c, kk, i = np.meshgrid(np.arange(C), np.arange(m), np.arange(k), indexing="ij")
        self.sx = Synapses(self.taps, self.out, PAST_SYNAPSE, clock=clock, namespace=ns, name=f"{name}_sx")
        self.sx.connect(i=(c * L + h + kk).ravel(), j=i.ravel())
        self._sx_index = (i.ravel(), (c * m + kk).ravel())
        # future synapses: tap (c, h − 1 − kk) → output i  ↔  W_y[i, c·h + kk]
        c, kk, i = np.meshgrid(np.arange(C), np.arange(h), np.arange(k), indexing="ij")
        self.sy = Synapses(self.taps, self.out, FUTURE_SYNAPSE, clock=clock, namespace=ns, name=f"{name}_sy")
        self.sy.connect(i=(c * L + h - 1 - kk).ravel(), j=i.ravel())
        self._sy_index = (i.ravel(), (c * h + kk).ravel())
        self.lat = Synapses(self.out, self.out, LATERAL_SYNAPSE, clock=fast, namespace=ns, name=f"{name}_lat")
        pre, post = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        self.lat.connect(i=pre.ravel(), j=post.ravel())
        self._lat_index = (pre.ravel(), post.ravel())
        # plasticity once per sample, at its start (before the new input), on the sample clock
        self.rule_x = self.sx.run_regularly(PAST_RULE, when="start", name=f"{name}_rule_x")
        self.rule_y = self.sy.run_regularly(FUTURE_RULE, when="start", name=f"{name}_rule_y")
        self.rule_m = self.lat.run_regularly(LATERAL_RULE, dt=p.dt, when="start", name=f"{name}_rule_m")
        # per step: feed-forward sums (0) → lateral sum (1) → relaxation (2)
        self.sx.summed_updaters["a_post"].order = 0
        self.sy.summed_updaters["b_post"].order = 0
        self.lat.summed_updaters["l_post"].order = 1
        self.out.state_updater.order = 2
        rec = Clock(p.dt * p.record_every, name=f"{name}_rec_clock")
        self.mon_x = StateMonitor(self.sx, "wx", record=True, clock=rec, when="end", name=f"{name}_mon_x")
        # z at the start of sample n+1 = the relaxed output of sample n
        self.mon_z = StateMonitor(self.out, "z", record=True, clock=clock, when="start", order=-1,
                                  name=f"{name}_mon_z")
        session.expect_size(self.sx.wx, k * C * m)
        session.expect_size(self.sy.wy, k * C * h)
        session.expect_size(self.lat.mw, k * k)
        self.net = Network(self.taps, self.out, self.sx, self.sy, self.lat, self.rule_x, self.rule_y,
                           self.rule_m, self.taps_update, self.mon_x, self.mon_z)
        w0 = initial_weights(p)
        self.sx.wx = w0["wx"][self._sx_index]
        self.sy.wy = w0["wy"][self._sy_index]
        self.lat.mw = w0["M"][self._lat_index]
        session.build(self.net, self.n_steps * p.dt)

    def run(self, signal, weights: dict | None = None, seed: int | None = None) -> dict:
        """Learn online on ``signal`` (n_steps,) or (n_steps, C) from ``weights`` (default
        :func:`initial_weights` with seed 0); returns the W_x snapshots (n_rec, k, C·m), their sample
        indices, the final W_x, W_y, M and the relaxed outputs z (n_steps − 1, k) of samples 0 … n_steps − 2."""
        p = self.p
        s = np.asarray(signal, dtype=float)
        if s.ndim == 1:
            s = s[:, None]
        if s.shape != (self.n_steps, p.channels):
            raise ValueError(f"signal of shape {s.shape}, expected {(self.n_steps, p.channels)}")
        w = weights or initial_weights(p)
        for key, shape in (("wx", (p.k, p.channels * p.m)), ("wy", (p.k, p.channels * p.h)), ("M", (p.k, p.k))):
            if np.shape(w[key]) != shape:
                raise ValueError(f"initial {key} of shape {np.shape(w[key])}, expected {shape}")
        args = {self.stim: s, self.sx.wx: np.asarray(w["wx"])[self._sx_index],
                self.sy.wy: np.asarray(w["wy"])[self._sy_index], self.lat.mw: np.asarray(w["M"])[self._lat_index]}
        self.session.run(args, seed=seed)
        snaps = np.asarray(self.mon_x.wx[:])  # (n_syn, n_rec)
        Wt = np.zeros((snaps.shape[1], p.k, p.channels * p.m))
        Wt[:, self._sx_index[0], self._sx_index[1]] = snaps.T
        wx = np.zeros((p.k, p.channels * p.m))
        wx[self._sx_index] = np.asarray(self.sx.wx[:])
        wy = np.zeros((p.k, p.channels * p.h))
        wy[self._sy_index] = np.asarray(self.sy.wy[:])
        M = np.zeros((p.k, p.k))
        M[self._lat_index] = np.asarray(self.lat.mw[:])
        steps = np.round(np.asarray(self.mon_x.t[:]) / float(p.dt)).astype(int)
        return {"wx_t": Wt, "t_samples": steps, "wx": wx, "wy": wy, "M": M,
                "z": np.asarray(self.mon_z.z[:]).T[1:]}


def bio_cca_reference(signal, p: BioCCAParams, weights: dict | None = None, record: bool = True) -> dict:
    """What :class:`BioCCANetwork` computes, step by step in numpy (same delays, relaxation and order)."""
    p.validate()
    s = np.asarray(signal, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    T, C = s.shape
    m, h, k = p.m, p.h, p.k
    L = m + h
    w = weights or initial_weights(p)
    Wx, Wy, M = (np.array(w[key], dtype=float) for key in ("wx", "wy", "M"))
    padded = np.concatenate([np.repeat(s[:1], L - 1, axis=0), s])
    z = np.zeros(k)
    a = np.zeros(k)
    b = np.zeros(k)
    past = np.zeros(C * m)
    fut = np.zeros(C * h)
    Wt, steps, Z = [], [], np.zeros((T, k))
    for n in range(T):
        if n > 0:  # plasticity at the start of the sample, with the previous pair
            eta = p.eta0 / (1.0 + n / p.decay_samples)
            Wx += eta * np.outer(z - a, past)
            Wy += eta * np.outer(z - b, fut)
            M += eta / p.tau_m * (np.outer(z, z) - M)
        window = padded[n:n + L][::-1]  # (L, C): row l = x_{n−l}
        past = window[h:h + m].T.ravel()  # channel-major, lag k = tap h + k
        fut = window[h - 1::-1][:h].T.ravel() if h > 0 else np.zeros(0)  # future k = tap h − 1 − k
        a, b = Wx @ past, Wy @ fut
        for _ in range(p.n_inner):
            z = z + p.gamma * (a + b - M @ z)
        Z[n] = z
        if record and n % p.record_every == 0:
            Wt.append(Wx.copy())
            steps.append(n)
    return {"wx_t": np.array(Wt), "t_samples": np.array(steps), "wx": Wx, "wy": Wy, "M": M, "z": Z}
