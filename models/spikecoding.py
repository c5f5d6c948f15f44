"""Spike-coding networks that learn an efficient, balanced code spike by spike.

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

This module holds the network of the paper's Fig 2 (N leaky integrate-and-fire neurons
coding a J-dimensional signal), written as Brian2 equation strings, and the two local
learning rules as Brian2 synapse code:

* recurrent, voltage-based rule (paper Eq 6), at every presynaptic spike of neuron k::

      ΔΩ_ik = −ε_Ω (β (V_i + μ r_i) + Ω_ik + μ δ_ik)

* feedforward, Hebbian rule (paper Eq 7), at every postsynaptic spike of neuron i::

      ΔF_ij = ε_F (α x_j − F_ij)

The membrane obeys dV/dt = −λV + F·c(t) + Ω·o(t): the input drive F·c is summed from the
input synapses every step, the recurrent term arrives as jumps V_i += Ω_ik when neuron k
spikes, and the self-connection Ω_kk is the reset (there is no separate reset of V).
The filtered spike trains obey dr/dt = −λr + o(t); the readout is x̂ = D r.

Reproduces: Fig 2 A, B, C, G (protocol ``spikecoding.fig2``); with correlated inputs Fig 3 C–D
(``spikecoding.fig3``) and the speech network of Figs 5–6 (``spikecoding.speech``).

Correlated (non-white) inputs.  Eq 7 drives F_i towards α times the average input at neuron i's
spikes, which gives the optimal network (F = Dᵀ, Ω = −FᵀF) when the input x is white.  For
correlated inputs the network is the optimal network of the whitened signal x̃ = W x with
W = M^(−1/2), M = ⟨x xᵀ⟩ the input's second-moment matrix: drive F̃ W c = Γ c, recurrence
Ω = −F̃ᵀF̃, readout x̂ = W⁻¹ D̃ r.  Writing Eq 7 for F̃ in whitened coordinates and mapping back
(Γ = F̃ W) gives the rule used here for the feedforward weights Γ the neurons actually carry::

      ΔΓ_ij = ε_F (α (P x)_j − Γ_ij)       at postsynaptic spikes,   P = (tr M / J) M⁻¹

so after learning Γ_i ∝ D_iᵀ M⁻¹ (feedforward weights are the decoders sharpened by the inverse
input correlations: excitatory subfields with inhibitory flanks when neighbouring inputs are
positively correlated) and Ω = −Γ D.  The recurrent rule (Eq 6) is unchanged: it only sees
voltages.  The factor tr M / J keeps the scale of Eq 7 (P = I for white inputs of any variance,
so the Fig 2 network is the special case).  This rule (``ff_rule="paper"``) is the default.
Implementation: the Brian2 code is the same — the input
group's variable ``x`` is used only as the presynaptic term of Eq 7, and for correlated inputs
the protocols pass P x there (:func:`decorrelated_hebbian_signal`) while c still drives the
membrane.  M may be shrunk towards its mean diagonal (``shrinkage``) for strongly correlated
inputs such as spectrogram channels.

The authors' online rule for correlated inputs (``ff_rule="authors_online"``).  Their public speech code
(machenslab/spikes, ``MatlabCode/Figure5/netall.m``) learns the feedforward weights with a rule of
another form.  At every step (dt = 0.05 ms) they low-pass their per-step input current I = dt·c at
2000 s⁻¹ (I_f), keep a running mean m of I_f at 0.2 s⁻¹ (τ = 5 s) and a running average, at the same rate,
U = ⟨(Γ(I_f − m))(I_f − m)ᵀ⟩ (N×J, i.e. Γ C with C the centred covariance of I_f); at a spike of neuron k,
ΔΓ_k = ε (I_f − 120 U_k) (their "α = 1/120").  The fixed point Γ_k = ⟨I_f⟩_k C⁻¹ / 120 (⟨·⟩_k: at k's spikes)
is the decorrelation of the rule above, reached online without inverting C, with the input current
rather than x as presynaptic term.  Here it is written in the units of x: u = c/λ (whose leaky integral
is x; the authors' I_f = λ dt u_f), low-passed with τ_f = 0.5 ms (u_f, on the input group), its running
mean ū (rate 0.2 s⁻¹), per neuron the centred feedforward current g_i = Σ_j Γ_ij (u_f,j − ū_j) (a summed
synaptic variable), per synapse the running average U_ij of g_i (u_f,j − ū_j) (rate 0.2 s⁻¹), and at
postsynaptic spikes::

      ΔΓ_ij = ε_F (α u_f,j − U_ij / s)

so that the fixed point is Γ_k = α s ⟨u_f⟩_k C_u⁻¹.  Their constants map to α = 1, s = 1/(120 λ dt) ≈ 20.8
and ε_F = ε λ dt at their λ dt = 4·10⁻⁴ (their "1/120" fixes s relative to their per-step current units and
their gain 0.03 on it, not to the covariance of the input); here s is a fixed scale passed with every run
(``ff_scale``; the speech protocol uses tr C_u / J estimated once from the learning input, as P's tr M / J,
so that the fixed point has the scale of the default rule for the same α).  Kept from their code: the
time constants (0.5 ms, 5 s), the centred online covariance, the uncentred presynaptic term at the
spike, no inversion of C.  Not kept: (i) the low-pass u_f is integrated exactly (factor exp(−dt/τ_f) per
step) instead of their Euler step 1 − dt/τ_f, which is unstable for dt > 1 ms and nearly equal at their
0.05 ms (0.905 against 0.9); (ii) they restart V, x and I_f at zero at the start of every 2.5 s segment
and therefore start feedforward learning only 0.25 s (5,000 steps) into each segment, when those
transients have decayed; here the state is continuous across chunks (u_f, ū and U are carried like V
and r), so there is no transient to wait for; (iii) they warm up m and U with four segments of frozen
learning; here their initial values can be set (``set_state``; the speech protocol starts them at the
learning input's mean and Γ₀ C_u).  The running averages advance only in learning chunks: a frozen
(``learning=False``) chunk leaves them as they were.

Deliberate deviations and choices (each measured or reasoned, see the README):

* Simultaneous threshold crossings.  The authors' code lets at most one neuron fire per
  1 ms step (the one furthest above its jittered threshold).  Brian2 thresholds are
  evaluated per neuron, so this rule is built from Brian2 parts: the jittered margin
  V − T − σ_T ξ is computed for every neuron; neurons above their jittered threshold emit
  a custom Brian2 event ("candidate") before the threshold test, which sends the margin and
  then the index to a one-cell arbiter; it keeps the largest margin and the lowest index
  among the candidates with that margin, and only that candidate may fire (ties go to the
  lower index).  The cost is O(1) per candidate (``ONE_SPIKE_ARBITER``; the earlier form
  sent each candidate through the all-to-all recurrent synapses to count, in every neuron,
  the candidates with a larger margin: O(N) per candidate, the same spikes, 4 % more time
  per step at N = 20).  ``one_spike_per_step=False`` gives the plain per-neuron threshold
  instead.
* Recurrent input enters the membrane in the same step as the spike (after the
  threshold test), so it takes part in the next step's leak: relative to the authors'
  code, where it is added undecayed one step later, every recurrent jump is scaled by
  1 − λ dt (0.95 at the paper's values).  Timing of the effect on the next threshold test
  is the same.
* Membrane noise: the authors add 0.001·randn to V every step; here ``noise_per_step``
  sets σ of an Euler–Maruyama noise term with the same per-step standard deviation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from brian2 import (
    Clock,
    Hz,
    Network,
    NeuronGroup,
    Quantity,
    SpikeMonitor,
    Synapses,
    TimedArray,
    linked_var,
    ms,
    second,
)

from b2models.backend import Session

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
LIF_CODING_NEURON = """
dV/dt = -lambda_ * V + I_ff + sigma_V * xi : 1  # membrane potential V_i (leak λ, drive F·c, noise)
I_ff : Hz                                       # feedforward drive Σ_j F_ij c_j(t), summed over input synapses
dr/dt = -lambda_ * r : 1                        # filtered spike train r_i, +1 at each spike
margin : 1                                      # V_i − T − jitter: how far above threshold (this step)
n_above : 1                                     # neurons with a larger margin this step (one-spike rule)
dV_int/dt = V / second : 1                      # ∫V dt / s since the run started (voltage statistics)
dV2_int/dt = V**2 / second : 1                  # ∫V² dt / s since the run started
"""

#: added to the neuron model with ``per_neuron_threshold=True`` (threshold homeostasis, clamping a neuron):
#: the threshold T then is a per-neuron variable instead of one constant, set before every run
PER_NEURON_THRESHOLD = """
T : 1  # firing threshold T_i of neuron i
"""

#: jittered threshold margin, computed every step after the membrane update
THRESHOLD_MARGIN = """
margin = V - T - sigma_T * randn()
n_above = 0
"""

#: custom event of the one-spike-per-step rule: "I am above threshold", before the threshold test
CANDIDATE_EVENT = "margin > 0"

#: fire when above the jittered threshold ...
THRESHOLD_ANY = "margin > 0"
#: ... and, with the one-spike-per-step rule, only if no other neuron is further above it
THRESHOLD_ONE_PER_STEP = "margin > 0 and n_above < 0.5"

#: the reset of V is the self-connection Ω_ii; the neuron only counts its spike in r
CODING_RESET = "r += 1"

INPUT_SIGNAL = """
c = stim_c(t, i) : Hz  # command signal c_j(t) that drives the network
x = stim_x(t, i) : 1   # signal to be represented x_j(t): dx/dt = −λx + c
"""

#: with ``cache_inputs=True``: c and x are stored variables, looked up once per step (``INPUT_LOOKUP``)
#: instead of once per feedforward synapse -- the same spikes, ~40 % less time per step at N = 100, J = 25, dt = 0.05 ms
INPUT_SIGNAL_STORED = """
c : Hz  # command signal c_j(t) that drives the network (from stim_c every step)
x : 1   # signal to be represented x_j(t) (from stim_x every step)
"""

INPUT_LOOKUP = """
c = stim_c(t, i)
x = stim_x(t, i)
"""

FEEDFORWARD_SYNAPSE = """
F : 1                           # feedforward weight F_ij from input j to neuron i
I_ff_post = F * c_pre : Hz (summed)  # drive of neuron i
eta_F : 1 (shared)              # learning rate ε_F (0: learning off)
"""

#: paper Eq 7, at postsynaptic spikes
HEBBIAN_FEEDFORWARD_RULE_ON_POST = """
F += eta_F * (alpha * x_pre - F)  # ΔF_ij = ε_F (α x_j − F_ij) o_i
"""

#: feedforward rules: "paper" (Eq 7, presynaptic term x or P x) or "authors_online" (module docstring)
FF_RULES = ("paper", "authors_online")
#: authors' online rule: low-pass of the input current (their 2000 s⁻¹) and rate of the running averages (their la)
AUTHORS_FF_TAU = 0.5 * ms
AUTHORS_FF_AVERAGE_RATE = 0.2 * Hz

#: authors' online rule, added to the input group: the low-passed current u_f (units of x) and its running mean
AUTHORS_FF_INPUT = """
u_f : 1    # input current c_j/λ low-passed with τ_f (units of x)
u_bar : 1  # running mean of u_f (rate 0.2 s⁻¹)
"""
#: ... updated at the start of every step (after the input lookup), exactly for u_f, Euler for the slow mean
AUTHORS_FF_INPUT_UPDATE = """
u_f = c / lambda_ + (u_f - c / lambda_) * decay_f
u_bar += rate_avg * (u_f - u_bar)
"""
#: ... the neuron's centred feedforward current g_i = Σ_j Γ_ij (u_f,j − ū_j)
AUTHORS_FF_NEURON = """
g_ff : 1  # centred feedforward current Σ_j Γ_ij (u_f,j − ū_j) (authors' online rule)
"""
AUTHORS_FF_SYNAPSE = """
g_ff_post = F * (u_f_pre - u_bar_pre) : 1 (summed)  # centred feedforward current of neuron i
U : 1                                                 # running average of g_i (u_f,j − ū_j)
s_ff : 1 (shared)                                     # scale s of the fixed point α s ⟨u_f⟩ C_u⁻¹
"""
#: ... every step, after the summed current g_i of this step
AUTHORS_FF_AVERAGE_UPDATE = """
U += rate_avg * (g_ff_post * (u_f_pre - u_bar_pre) - U)
"""
#: ... at postsynaptic spikes
AUTHORS_FF_RULE_ON_POST = """
F += eta_F * (alpha * u_f_pre - U / s_ff)  # ΔΓ_ij = ε_F (α u_f,j − U_ij / s) o_i
"""

VOLTAGE_RECURRENT_SYNAPSE = """
Omega : 1                  # recurrent weight Ω_ik from neuron k (pre) to neuron i (post)
delta : 1 (constant)       # δ_ik: 1 for the self-connection, else 0
pre_first : 1 (constant)   # 1 if k < i: k wins a tie in the one-spike rule
eta_Omega : 1 (shared)     # learning rate ε_Ω (0: learning off)
"""

#: one-spike-per-step rule, on candidate events: count candidates with a larger margin
#: (ties: the lower index wins)
ONE_SPIKE_COMPETE_ON_CANDIDATE = """
n_above_post += int(margin_pre > margin_post or (margin_pre == margin_post and pre_first > 0.5))
"""

#: paper Eq 6, at presynaptic spikes (pathway ``learn``, runs before the recurrent input)
VOLTAGE_RECURRENT_RULE_ON_PRE = """
Omega -= eta_Omega * (beta * (V_post + mu * r_post) + Omega + mu * delta)  # ΔΩ_ik with V_i at the spike
"""

#: the recurrent input itself (pathway ``pre``); for i = k it is the reset
RECURRENT_INPUT_ON_PRE = """
V_post += Omega  # V_i += Ω_ik
"""

#: One-spike rule through a one-cell arbiter (``ONE_SPIKE_ARBITER = True``, the default): each candidate sends
#: its margin and then its index to the arbiter, which keeps the largest margin and the lowest index among the
#: candidates with that margin (the same winner as the pairwise count above, ties to the lower index), in O(1)
#: per candidate instead of O(N); only the winner passes the threshold.  False builds the pairwise count.
ONE_SPIKE_ARBITER = True
ARBITER_CELL = """
best : 1     # largest margin among this step's candidates
winner : 1   # lowest index among the candidates with that margin (n_neurons: none)
"""
ARBITER_CLEAR = """
best = 0
winner = n_neurons
"""
ARBITER_MAX_ON_CANDIDATE = "best_post = clip(margin_pre, best_post, inf)  # max(best, margin)"
ARBITER_FIRST_ON_CANDIDATE = "winner_post = clip(winner_post, -1, idx_pre + n_neurons * int(margin_pre < best_post))"
ARBITER_LINK = """
idx : 1 (constant)   # this neuron's index (compared with the arbiter's winner)
winner : 1 (linked)  # the arbiter's winner of this step
"""
THRESHOLD_ARBITER = "margin > 0 and abs(idx - winner) < 0.5"


class _ArbiterWarningFilter(logging.Filter):
    """Brian2 warns that a synaptic write to one cell from many candidates may depend on their order; the
    arbiter's two writes are a maximum and a minimum, which do not.  Only these two warnings are dropped."""

    def filter(self, record):
        msg = record.getMessage()
        return ARBITER_MAX_ON_CANDIDATE.split("  #")[0] not in msg and "winner_post = clip(winner_post" not in msg


logging.getLogger("brian2.codegen.generators.base").addFilter(_ArbiterWarningFilter())



# ----------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------
INITIAL_CONDITIONS = ("paper", "authors_code", "authors_speech_code")


@dataclass
class SpikeCodingParams:
    """Fig 2 network; defaults are the values of the authors' code for that figure."""

    N: int = 20  # coding neurons
    J: int = 2  # input dimensions
    dt: Quantity = field(default_factory=lambda: 1 * ms)  # time step
    lambda_: Quantity = field(default_factory=lambda: 50 * Hz)  # leak of V and decay of r (λ)
    T: float = 0.5  # threshold
    eps_Omega: float = 1e-3  # recurrent learning rate ε_Ω
    eps_F: float = 1e-4  # feedforward learning rate ε_F
    alpha: float = 0.18  # feedforward rule gain α
    beta: float = 1 / 0.9  # recurrent rule gain β
    mu: float = 0.02 / 0.9  # cost of spiking μ
    noise_per_step: float = 1e-3  # s.d. of membrane noise added per time step
    threshold_jitter: float = 0.01  # s.d. of the threshold jitter per step
    one_spike_per_step: bool = True  # authors' rule: at most one spike per step
    init: str = "paper"  # initial weights: 'paper' (Fig 2) or 'authors_code'
    input_sigma: Quantity = field(default_factory=lambda: 30 * ms)  # Gaussian smoothing of c
    input_amplitude: float = 2000.0  # gain of the smoothed white noise c

    def validate(self):
        if self.N < 1 or self.J < 1:
            raise ValueError(f"N and J must be >= 1 (got N={self.N}, J={self.J})")
        if self.init not in INITIAL_CONDITIONS:
            raise ValueError(f"init must be one of {INITIAL_CONDITIONS}, got {self.init!r}")
        if float(self.dt) <= 0 or float(self.lambda_) <= 0:
            raise ValueError("dt and lambda_ must be positive")
        if float(self.lambda_ * self.dt) >= 1:
            raise ValueError(f"lambda_*dt = {float(self.lambda_ * self.dt):g} must be < 1")


def initial_weights(p: SpikeCodingParams, rng: np.random.Generator):
    """Initial (F, Omega): F is J×N (column i = neuron i), Omega is N×N (Ω[i, k]: k → i).

    ``paper``: the start of Fig 2 — unit feedforward vectors with no positive weight for
    input 1 (angles in [π/2, 3π/2] for J = 2; first component made non-positive for J > 2),
    no lateral connections, self-resets Ω_ii = −0.5.
    ``authors_code``: random unit vectors, Ω = −0.2·U(0, 1) − 0.5·I.
    ``authors_speech_code``: the start of the authors' speech code: F = 0.025·N(0, 1) (norm ≈ 0.025·√J),
    Ω = −0.1·N(0, 1) off the diagonal, −0.8 on it.
    """
    if p.init == "paper":
        if p.J == 2:
            ang = rng.uniform(np.pi / 2, 3 * np.pi / 2, p.N)
            F = np.vstack([np.cos(ang), np.sin(ang)])
        else:
            F = rng.standard_normal((p.J, p.N))
            F[0] = -np.abs(F[0])
            F /= np.linalg.norm(F, axis=0, keepdims=True)
        Omega = -0.5 * np.eye(p.N)
    elif p.init == "authors_code":
        F = rng.standard_normal((p.J, p.N))
        F /= np.linalg.norm(F, axis=0, keepdims=True)
        Omega = -0.2 * rng.uniform(0, 1, (p.N, p.N)) - 0.5 * np.eye(p.N)
    elif p.init == "authors_speech_code":
        F = 0.025 * rng.standard_normal((p.J, p.N))
        Omega = -0.1 * rng.standard_normal((p.N, p.N))
        np.fill_diagonal(Omega, -0.8)
    else:
        raise ValueError(f"unknown initial condition {p.init!r}; expected one of {INITIAL_CONDITIONS}")
    return F, Omega


def hebbian_precision(x, shrinkage: float = 0.0) -> np.ndarray:
    """P = (tr M / J) M⁻¹ from samples x (T×J), M = ⟨x xᵀ⟩ shrunk as (1 − s) M + s (tr M / J) I.

    The presynaptic term of the feedforward rule for correlated inputs is P x (module docstring);
    P = I for white inputs.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < x.shape[1]:
        raise ValueError(f"x must be (T, J) with T >= J samples, got shape {x.shape}")
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage={shrinkage} must be in [0, 1]")
    M = x.T @ x / len(x)
    scale = np.trace(M) / M.shape[0]
    if scale <= 0:
        raise ValueError("x is zero: the input's second moments are undefined")
    M = (1 - shrinkage) * M + shrinkage * scale * np.eye(M.shape[0])
    return scale * np.linalg.inv(M)


def authors_ff_initial_state(u_f, F) -> dict:
    """Start of the authors' online rule from samples u_f (T×J) of the low-passed input current (units of x)
    and the initial weights F (J×N): the running mean ū = ⟨u_f⟩, the running average U = C_u F at its
    stationary value for F (U[j, i] = Σ_l C_u[j, l] F[l, i], C_u the centred covariance) and the scale
    s = tr C_u / J (returned as ``scale``, with ``C``)."""
    u_f = np.asarray(u_f, dtype=float)
    F = np.asarray(F, dtype=float)
    if u_f.ndim != 2 or u_f.shape[0] < 2 or F.ndim != 2 or F.shape[0] != u_f.shape[1]:
        raise ValueError(f"u_f must be (T, J) with T >= 2 and F (J, N): got u_f {u_f.shape}, F {F.shape}")
    mean = u_f.mean(axis=0)
    C = np.cov(u_f, rowvar=False, bias=True).reshape(u_f.shape[1], u_f.shape[1])
    scale = float(np.trace(C) / C.shape[0])
    if not scale > 0:
        raise ValueError("u_f does not vary: the scale tr C_u / J of the authors' rule is undefined")
    return {"u_bar": mean, "U": C @ F, "scale": scale, "C": C}


def decorrelated_hebbian_signal(x, P) -> np.ndarray:
    """The presynaptic signal P x of the feedforward rule for correlated inputs (x is T×J)."""
    x = np.asarray(x, dtype=float)
    return x @ np.asarray(P, dtype=float).T


# ----------------------------------------------------------------------------------------
# network
# ----------------------------------------------------------------------------------------
@dataclass
class ChunkResult:
    """What one chunk produced."""

    spike_i: np.ndarray  # neuron indices
    spike_step: np.ndarray  # time step of each spike (0 = first step of the chunk)
    n_steps: int
    V_mean: np.ndarray  # per neuron, over the chunk
    V_var: np.ndarray  # per neuron, over the chunk
    wall_s: float


class SpikeCodingNetwork:
    """The Fig 2 network compiled once for chunks of ``chunk_steps`` steps.

    Every call of :meth:`run_chunk` feeds a new input segment (c and x, shape
    ``(chunk_steps, J)``), continues from the network's current state (V, r, F, Ω) and
    reads the new state back, so a long learning run is a sequence of re-runs of one
    binary on the standalone backends.

    ``plastic=False`` builds the network without the learning rules (weights fixed).

    ``steps_per_input`` > 1 holds every input sample (c and x) for that many time steps: the input
    arrays of :meth:`run_chunk` then have ``chunk_steps // steps_per_input`` rows (a signal sampled at
    1 kHz drives a network with dt = 0.05 ms without 20× larger input arrays).
    ``per_neuron_threshold=True`` gives every neuron its own threshold (attribute ``T``, initially
    ``p.T``), passed with every run.  ``cache_inputs=True`` reads c and x from their arrays once per
    step at the start of the step instead of once per feedforward synapse (same values, faster).
    ``ff_rule`` selects the feedforward rule (:data:`FF_RULES`): ``"paper"`` (Eq 7, default) or
    ``"authors_online"`` (the authors' online decorrelating rule, module docstring; scale ``ff_scale``;
    its state u_f, ū and U is in :meth:`state`).  With ``plastic=False`` the rule is not built.
    The defaults build exactly the Fig 2 network.
    """

    def __init__(
        self,
        p: SpikeCodingParams,
        session: Session,
        chunk_steps: int,
        plastic: bool = True,
        F=None,
        Omega=None,
        seed: int = 0,
        name: str = "sc",
        steps_per_input: int = 1,
        per_neuron_threshold: bool = False,
        cache_inputs: bool = False,
        ff_rule: str = "paper",
        ff_scale: float = 1.0,
    ):
        p.validate()
        if ff_rule not in FF_RULES:
            raise ValueError(f"ff_rule={ff_rule!r}: expected one of {FF_RULES}")
        if not (np.isfinite(ff_scale) and ff_scale > 0):
            raise ValueError(f"ff_scale={ff_scale}: must be a positive number")
        self.ff_rule = ff_rule
        self.ff_scale = float(ff_scale)
        self.authors_ff = plastic and ff_rule == "authors_online"
        self.p = p
        self.session = session
        self.chunk_steps = int(chunk_steps)
        self.plastic = plastic
        self.steps_per_input = int(steps_per_input)
        self.per_neuron_threshold = bool(per_neuron_threshold)
        self.cache_inputs = bool(cache_inputs)
        if self.steps_per_input < 1 or self.chunk_steps % self.steps_per_input:
            raise ValueError(f"steps_per_input={steps_per_input} must be >= 1 and divide chunk_steps={chunk_steps}")
        self.input_rows = self.chunk_steps // self.steps_per_input
        rng = np.random.default_rng(seed)
        F0, Om0 = initial_weights(p, rng)
        self.F = np.array(F0 if F is None else F, dtype=float)
        self.Omega = np.array(Om0 if Omega is None else Omega, dtype=float)
        if self.F.shape != (p.J, p.N) or self.Omega.shape != (p.N, p.N):
            raise ValueError(
                f"weights of wrong shape: F {self.F.shape} (expected {(p.J, p.N)}), "
                f"Omega {self.Omega.shape} (expected {(p.N, p.N)})"
            )
        self.V = np.zeros(p.N)
        self.r = np.zeros(p.N)
        self.T = np.full(p.N, float(p.T))
        if self.authors_ff:
            self.u_f = np.zeros(p.J)
            self.u_bar = np.zeros(p.J)
            self.U = np.zeros((p.J, p.N))  # U[j, i], laid out as F
        self._build(name)

    # -- construction ---------------------------------------------------------------------
    def _build(self, name):
        p = self.p
        N, J = p.N, p.J
        dt = p.dt
        namespace = {
            "lambda_": p.lambda_,
            "sigma_V": p.noise_per_step / np.sqrt(float(dt)) * second**-0.5,
            "sigma_T": p.threshold_jitter,
            "alpha": p.alpha,
            "beta": p.beta,
            "mu": p.mu,
        }
        if not self.per_neuron_threshold:
            namespace["T"] = p.T
        if self.authors_ff:
            namespace["decay_f"] = float(np.exp(-float(dt / AUTHORS_FF_TAU)))
            namespace["rate_avg"] = float(AUTHORS_FF_AVERAGE_RATE * dt)
        in_dt = dt * self.steps_per_input
        self.stim_c = TimedArray(np.zeros((self.input_rows, J)) * Hz, dt=in_dt, name=f"{name}_stim_c")
        self.stim_x = TimedArray(np.zeros((self.input_rows, J)), dt=in_dt, name=f"{name}_stim_x")
        namespace.update(stim_c=self.stim_c, stim_x=self.stim_x)
        # one clock for every object: each extra clock costs the network loop time every step
        clock = Clock(dt, name=f"{name}_clock")

        self.inputs = NeuronGroup(J, (INPUT_SIGNAL_STORED if self.cache_inputs else INPUT_SIGNAL)
                                  + (AUTHORS_FF_INPUT if self.authors_ff else ""), clock=clock,
                                  name=f"{name}_inputs", namespace=namespace)
        extra = []
        if self.cache_inputs:
            extra.append(self.inputs.run_regularly(INPUT_LOOKUP, when="start", name=f"{name}_input_lookup"))
        if self.authors_ff:
            extra.append(self.inputs.run_regularly(AUTHORS_FF_INPUT_UPDATE, when="start", order=1,
                                                   name=f"{name}_authors_ff_input"))
        arbiter = p.one_spike_per_step and ONE_SPIKE_ARBITER
        self.neurons = NeuronGroup(
            N,
            LIF_CODING_NEURON + (PER_NEURON_THRESHOLD if self.per_neuron_threshold else "")
            + (ARBITER_LINK if arbiter else "") + (AUTHORS_FF_NEURON if self.authors_ff else ""),
            threshold=THRESHOLD_ARBITER if arbiter else THRESHOLD_ONE_PER_STEP if p.one_spike_per_step
            else THRESHOLD_ANY,
            reset=CODING_RESET,
            method="euler",
            events={"candidate": CANDIDATE_EVENT} if p.one_spike_per_step else None,
            clock=clock,
            name=f"{name}_neurons",
            namespace=namespace,
        )
        margin = self.neurons.run_regularly(
            THRESHOLD_MARGIN, when="before_thresholds", order=0, name=f"{name}_margin"
        )
        # two pathways so that every weight change sees the membrane potentials of the spike
        # step, before any recurrent input of that step arrives (as in the authors' code)
        on_pre = {"pre": RECURRENT_INPUT_ON_PRE}
        on_event = {"pre": "spike"}
        if self.plastic:
            on_pre["learn"] = VOLTAGE_RECURRENT_RULE_ON_PRE
            on_event["learn"] = "spike"
        if p.one_spike_per_step:
            thresholder = self.neurons.thresholder["candidate"]
            thresholder.when, thresholder.order = "before_thresholds", 1
        if p.one_spike_per_step and not arbiter:
            on_pre["compete"] = ONE_SPIKE_COMPETE_ON_CANDIDATE
            on_event["compete"] = "candidate"
        if arbiter:
            arb = NeuronGroup(1, ARBITER_CELL, clock=clock, name=f"{name}_arbiter", namespace={"n_neurons": N})
            clear = arb.run_regularly(ARBITER_CLEAR, when="before_thresholds", order=0, name=f"{name}_arbiter_clear")
            to_arb = Synapses(self.neurons, arb, on_pre={"best": ARBITER_MAX_ON_CANDIDATE,
                                                         "first": ARBITER_FIRST_ON_CANDIDATE},
                              on_event={"best": "candidate", "first": "candidate"}, clock=clock,
                              name=f"{name}_to_arbiter", namespace={"n_neurons": N})
            to_arb.connect(i=np.arange(N), j=np.zeros(N, dtype=int))
            to_arb.best.when, to_arb.best.order = "before_thresholds", 2
            to_arb.first.when, to_arb.first.order = "before_thresholds", 3
            self.neurons.idx = np.arange(N)
            self.neurons.winner = linked_var(arb, "winner", index=np.zeros(N, dtype=int))
            extra += [arb, clear, to_arb]
        self.rec = Synapses(
            self.neurons,
            self.neurons,
            model=VOLTAGE_RECURRENT_SYNAPSE,
            on_pre=on_pre,
            on_event=on_event,
            clock=clock,
            name=f"{name}_recurrent",
            namespace=namespace,
        )
        if p.one_spike_per_step and not arbiter:
            self.rec.compete.when, self.rec.compete.order = "before_thresholds", 2
        if self.plastic:
            self.rec.learn.order = self.rec.pre.order - 1
        # sorted by presynaptic index: synapse k*N + i is Ω[i, k]
        pre, post = np.repeat(np.arange(N), N), np.tile(np.arange(N), N)
        self.rec.connect(i=pre, j=post)
        # (i and j are not used in the synapse code: brian2cuda's loops take those names)
        self.rec.delta = (pre == post).astype(float)
        self.rec.pre_first = (pre < post).astype(float)
        self.ff = Synapses(
            self.inputs,
            self.neurons,
            model=FEEDFORWARD_SYNAPSE + (AUTHORS_FF_SYNAPSE if self.authors_ff else ""),
            on_post=(AUTHORS_FF_RULE_ON_POST if self.authors_ff else HEBBIAN_FEEDFORWARD_RULE_ON_POST)
            if self.plastic else None,
            clock=clock,
            name=f"{name}_feedforward",
            namespace=namespace,
        )
        # synapse j*N + i is F[j, i]
        self.ff.connect(i=np.repeat(np.arange(J), N), j=np.tile(np.arange(N), J))
        if self.authors_ff:
            # after the summed currents g_i of this step (slot "groups") and before the spikes' weight changes
            extra.append(self.ff.run_regularly(AUTHORS_FF_AVERAGE_UPDATE, when="after_groups",
                                               name=f"{name}_authors_ff_average"))
        self.spikes = SpikeMonitor(self.neurons, name=f"{name}_spikes")
        self.rec.Omega = self.Omega.T.ravel()
        self.ff.F = self.F.ravel()
        self.net = Network(self.inputs, *extra, self.neurons, margin, self.rec, self.ff, self.spikes)
        self.session.expect_size(self.rec.Omega, N * N)
        self.session.expect_size(self.ff.F, N * J)
        if self.authors_ff:
            self.session.expect_size(self.ff.U, N * J)
        if self.per_neuron_threshold:
            self.neurons.T = self.T
            self.session.expect_size(self.neurons.T, N)
        self.session.build(self.net, self.chunk_steps * dt)

    # -- running --------------------------------------------------------------------------
    def run_chunk(self, c, x, learning: bool = True, seed: int | None = None) -> ChunkResult:
        """Present one input segment (c in Hz as plain numbers, x dimensionless).

        ``c`` drives the membranes; ``x`` is used only as the presynaptic term of the feedforward
        rule (the represented signal for white inputs, P x for correlated ones).
        """
        p = self.p
        c = np.asarray(c, dtype=float)
        x = np.asarray(x, dtype=float)
        shape = (self.input_rows, p.J)
        if c.shape != shape or x.shape != shape:
            raise ValueError(f"input segment of shape c {c.shape}, x {x.shape}; expected {shape}")
        if learning and not self.plastic:
            raise ValueError("this network was built with plastic=False; it cannot learn")
        args = {
            self.stim_c: c * Hz,
            self.stim_x: x,
            self.neurons.V: self.V,
            self.neurons.r: self.r,
            self.rec.Omega: self.Omega.T.ravel(),
            self.ff.F: self.F.ravel(),
        }
        if self.per_neuron_threshold:
            args[self.neurons.T] = self.T
        if self.authors_ff:
            args.update({self.inputs.u_f: self.u_f, self.inputs.u_bar: self.u_bar, self.ff.U: self.U.ravel(),
                         self.ff.s_ff: self.ff_scale})
        if self.plastic:
            args[self.rec.eta_Omega] = p.eps_Omega if learning else 0.0
            args[self.ff.eta_F] = p.eps_F if learning else 0.0
        info = self.session.run(args, seed=seed)
        self.V = np.array(self.neurons.V[:])
        self.r = np.array(self.neurons.r[:])
        if self.plastic:
            self.Omega = np.array(self.rec.Omega[:]).reshape(p.N, p.N).T.copy()
            self.F = np.array(self.ff.F[:]).reshape(p.J, p.N).copy()
        if self.authors_ff and learning:  # the rule's running averages advance only while learning
            self.u_f = np.array(self.inputs.u_f[:])
            self.u_bar = np.array(self.inputs.u_bar[:])
            self.U = np.array(self.ff.U[:]).reshape(p.J, p.N).copy()
        duration = self.chunk_steps * float(p.dt)
        v_mean = np.array(self.neurons.V_int[:]) / duration
        v_var = np.array(self.neurons.V2_int[:]) / duration - v_mean**2
        steps = np.round(np.asarray(self.spikes.t_[:]) / float(p.dt)).astype(np.int64)
        return ChunkResult(
            spike_i=np.asarray(self.spikes.i[:], dtype=np.int64),
            spike_step=steps,
            n_steps=self.chunk_steps,
            V_mean=v_mean,
            V_var=v_var,
            wall_s=info.wall_s,
        )

    def state(self) -> dict:
        out = {"F": self.F.copy(), "Omega": self.Omega.copy(), "V": self.V.copy(), "r": self.r.copy(),
               "T": self.T.copy()}
        if self.authors_ff:
            out.update(u_f=self.u_f.copy(), u_bar=self.u_bar.copy(), U=self.U.copy())
        return out

    def set_state(self, F=None, Omega=None, V=None, r=None, T=None, u_f=None, u_bar=None, U=None):
        if T is not None and not self.per_neuron_threshold:
            raise ValueError("per-neuron thresholds need a network built with per_neuron_threshold=True")
        if not self.authors_ff and any(v is not None for v in (u_f, u_bar, U)):
            raise ValueError("u_f, u_bar and U belong to the rule ff_rule='authors_online' of a plastic network")
        for name, val in (("F", F), ("Omega", Omega), ("V", V), ("r", r), ("T", T), ("u_f", u_f),
                          ("u_bar", u_bar), ("U", U)):
            if val is not None:
                old = getattr(self, name)
                val = np.array(val, dtype=float)
                if val.shape != old.shape:
                    raise ValueError(f"{name}: shape {val.shape}, expected {old.shape}")
                setattr(self, name, val)
