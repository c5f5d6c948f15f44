"""Spike-coding network with separate excitatory and inhibitory populations (Dale's law).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

Reproduces the network of the paper's Fig 4 (protocol ``spikecoding.fig4``): N_E
excitatory (E) and N_I inhibitory (I) leaky integrate-and-fire coding neurons, with the
same two local rules as the Fig 2 network (:mod:`models.spikecoding`), now applied to four
connection types and clipped to obey Dale's law:

=========  ======================  ===================================  ===========
synapses   matrix (post × pre)     rule                                 sign
=========  ======================  ===================================  ===========
input → E  F (J × N_E, as Fig 2)   feedforward, Eq 7, at E spikes       free
E → I      W_EI (N_I × N_E)        feedforward, Eq 7, at I spikes       ≥ 0
E → E      W_EE (N_E × N_E)        recurrent, Eq 6, at E spikes         ≥ 0
I → E      W_IE (N_E × N_I)        recurrent, Eq 6, at I spikes         ≤ 0
I → I      W_II (N_I × N_I)        recurrent, Eq 6, at I spikes         ≤ 0
=========  ======================  ===================================  ===========

After every update the weight is clipped to its sign (``clip(w, 0, inf)`` or
``clip(w, -inf, 0)``), as in the authors' code (``max(·, 0)`` / ``min(·, 0)``).

How the populations are arranged (our reading of the paper and the authors' code)
-------------------------------------------------------------------------------------
* **E codes x.**  The E population is the Fig 2 network's coding layer: its membranes
  integrate the command signal through F (dV_E/dt = −λV_E + F·c + …) and it learns F with
  the Hebbian rule ΔF_ij = ε_F (α_E x̄_j − F_ij) at each spike of E cell i.  Its estimate
  x̂_E = D_E r_E is read with the optimal linear decoder.  The presynaptic trace x̄_j is,
  as in the authors' code, the command c_j filtered with a rate λ_F = 6λ (x̄ ≈ c/(6λ) ≈ x/6
  for slow input, so α_E = 1 here plays the role of α ≈ 0.18 in Fig 2).
* **I codes the E population's estimate.**  For the I population the E spikes o_E are the
  command signal and the E population's filtered spike trains r_E are the signal to be
  represented: E → I weights are the I cells' feedforward weights and learn with the same
  Eq 7, ΔW_EI[i, k] = ε_F (α_I r_E,k − W_EI[i, k]) at each spike of I cell i (α_I = 1).
  Since x̂_E = D_E r_E is linear in r_E, a code of r_E in the I cells carries x̂_E;
  x̂_I = D_I r_I is read with its own optimal decoder and compared with x.
* **Recurrent rule for the other three.**  Every connection that carries the recurrent
  ("prediction") input learns with Eq 6 using the postsynaptic voltage and rate:
  ΔW[i, k] = −ε_Ω (β (V_i + μ r_i) + W[i, k] + μ δ_ik) at each spike of presynaptic cell k.
  The μ δ_ik term only exists for I → I (the I cells' self-connection is their reset);
  the E cells have a fixed, weak autapse W_EE[i, i] = −0.02 (refixed after every update in
  the authors' code), so here it is a fixed reset ``V += w_EE_self`` and the E → E
  synapses exclude i = k.  E cells are brought back below threshold by the I → E
  inhibition that their spikes recruit, and by a 1 ms refractory period.

Values (authors' code for Fig 4, ``LearningDale.m``): N_E = 300, N_I = 75, J = 3,
dt = 0.1 ms, λ = 50 Hz, λ_F = 6λ, ε_F = 1e-5 (both feedforward rules),
ε_Ω = 1e-4 (the three recurrent rules), β = 1, μ = 0.002, thresholds T = ‖F_i‖²/2 = 0.5 for
both populations (F unit columns, kept fixed during learning), threshold jitter 0.02,
membrane noise 0.002 per step, refractory period 1 ms (10 steps), input: white noise
smoothed with a Gaussian of σ = 30 steps (3 ms) and amplitude 2000.  Initial weights:
F random unit columns; each I cell receives W_EI = 0.5 from N_E/N_I = 4 E cells, each E cell
projects to exactly one I cell (the authors' ``[Id Id Id Id]``; here the E cells are
assigned in a random order, which is the same in distribution since F is random);
W_EE = −0.02 I (autapse only), W_II = −0.5 I, W_IE = −0.3 W_EIᵀ.

Deliberate deviations and choices
---------------------------------
* One spike per step per population, as the authors: the cell furthest above its jittered
  threshold fires only if it is not refractory — a refractory cell that is furthest above
  threshold silences its whole population for that step (``refractory_blocks=True``).  This
  is not a detail: the E cells have no reset of their own (autapse −0.02), so a cell that
  fired stays the furthest above threshold until the inhibition it recruits arrives, and
  the block stops other E cells from firing meanwhile.  The variant in which the best
  *non-refractory* candidate fires (``refractory_blocks=False``, the earlier version of
  this module) makes the frozen network bistable: with weights learned for 60 s at ×200
  rates (100 E / 25 I) it coded at ~11 Hz but flipped, in ~30 % of 2-s test trials (4/12,
  3/10, 3/8, 2/8 in four measurements), into the one-spike-per-step state (E 100 Hz, I
  ~280 Hz) that only ongoing fast plasticity could pull it out of; with the authors' rule
  the same weights flipped in 0/8 trials.
* The one-spike rule is built differently from :mod:`models.spikecoding`: there, every
  candidate counts the candidates with larger margins through the all-to-all recurrent
  synapses (O(candidates × N) per step).  Without a reset, many E cells wait above
  threshold before learning, and that count took 60 % of the run time at N_E = 300.  Here
  each candidate sends its margin to a one-cell "arbiter" group that keeps the running
  maximum (O(candidates)); the cells read it back through a linked variable and only the
  candidate whose margin equals the maximum fires (exact ties of the jittered margins
  have probability zero).
* I cells receive an E spike in the same step (the authors update V_I after the E spike
  of the step); here synaptic input is added after the threshold test of the step, so an
  E spike can make an I cell fire one step (0.1 ms) later.  Recurrent inputs are added
  in the step of the spike and so decay by 1 − λ dt = 0.995 before the next threshold
  test (authors: added undecayed in the next step), as in :mod:`models.spikecoding`.
* Membrane noise 0.002 per step in both populations during learning and testing (the
  authors' test function uses 0.001 for the E cells).
* Lesions (protocol ``spikecoding.fig8``; not in the authors' code): every recurrent synapse
  carries a presence ``mask`` (a run argument); a removed connection's weight is multiplied by
  0 after every update and so stays 0 (:meth:`EINetwork.lesion_E`).  ``eta_scale`` of
  :meth:`EINetwork.run_chunk` freezes single weight types (retraining only some of them).
* The I → I synapses mark the self-connection with a constant ``delta`` rather than ``i == j``
  in the synapse code: the cython (and brian2cuda) templates use ``i`` and ``j`` as their own
  loop variables, and the cython backend failed to compile the ``i == j`` version.
* Synaptic delays and a settable noise current (protocol ``spikecoding.fig7``, robustness; not
  in the authors' code for Fig 4).  ``delay`` delays every connection between different cells
  (E → E, E → I, I → E, I → I); the I cells' self-connection is their reset and acts at once.
  Eq 6 on a delayed synapse is made when the spike arrives, with the postsynaptic voltage of
  that moment (the voltage the weight meets, as ``lateral_rule="arrival"`` of
  :mod:`models.spikecoding_robust`); Eq 7 on E → I stays at the I spike; spikes still in flight
  at the end of a chunk are dropped.
  The one-spike-per-step arbiter is itself a message between the cells of a population: with
  ``arbiter="delayed"`` (the default) it obeys the delay, and since a message sent in one step
  arrives ``delay`` ≥ one step later, no cell can be stopped by another cell's spike of the same
  step — with a delay every cell above its jittered threshold and not refractory fires, and the
  cells coordinate only through the delayed synapses; without delay it is the authors' rule.
  ``arbiter="instant"`` keeps the undelayed arbiter with delayed synapses (the earlier
  construction; it removes exactly the synchrony that delays cause).  ``noise_run_arg=True``
  makes the membrane noise's per-step s.d. a run argument (:attr:`EINetwork.noise_sd`), so one
  binary serves a noise sweep.
* Input currents for the balance analysis are not in the authors' code.  Each cell's
  excitatory and inhibitory input is low-pass filtered with ``current_tau``: for E cells,
  excitatory = positive terms F_ij c_j of the feedforward drive + E → E input, inhibitory
  = negative terms + I → E input; for I cells, excitatory = E → I input, inhibitory = I → I
  input from other I cells (the self-connection is the reset and is left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import (
    Clock,
    Hz,
    Network,
    NeuronGroup,
    Quantity,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    TimedArray,
    linked_var,
    ms,
    second,
)

from b2models.backend import Session
from b2models.models.spikecoding import THRESHOLD_ANY, THRESHOLD_MARGIN

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
#: E and I cells: the Fig 2 coding neuron plus refractoriness and filtered input currents
EI_CODING_NEURON = """
dV/dt = -lambda_ * V + I_ff + sigma_V * xi : 1   # membrane potential V_i (leak λ, drive, noise)
I_ff : Hz                                        # feedforward drive Σ_j F_ij c_j(t) (E cells; 0 for I)
I_ff_exc : Hz                                    # sum of the positive terms F_ij c_j (E cells)
dr/dt = -lambda_ * r : 1                         # filtered spike train r_i, +1 at each spike
margin : 1                                       # V_i − T − jitter: how far above threshold (this step)
n_above : 1                                      # candidates with a larger margin (one-spike rule)
dI_exc/dt = (I_ff_exc - I_exc) / tau_cur : Hz    # low-passed excitatory input current
dI_inh/dt = (I_ff - I_ff_exc - I_inh) / tau_cur : Hz  # low-passed inhibitory input current
dV_int/dt = V / second : 1                       # ∫V dt / s since the run started
dV2_int/dt = V**2 / second : 1                   # ∫V² dt / s since the run started
"""

#: the noise term as a run argument (``noise_run_arg=True``): per-step s.d. ``noise_sd``
NOISE_AS_RUN_ARG = """
noise_sd : 1 (shared)                            # s.d. of the membrane noise per step (a run argument)
"""

#: the one-spike-per-step candidate (authors' rule): above the jittered threshold, refractory or not;
#: if the best candidate is refractory, Brian2's refractoriness stops its spike and nobody fires
CANDIDATE_EVENT_AUTHORS = "margin > 0"
#: variant: only cells able to fire compete (a refractory best candidate does not block the others)
CANDIDATE_EVENT_REFRACTORY = "margin > 0 and not_refractory"

#: with the one-spike rule each cell sees its population's largest candidate margin
POPULATION_BEST = """
best : 1 (linked)   # largest margin among this step's candidates in the population
"""

#: fire only if no candidate of the population is further above threshold
THRESHOLD_BEST_OF_POPULATION = "margin > 0 and margin >= best"

#: one-cell group per population that finds the largest candidate margin each step
ARBITER = """
best : 1   # running maximum of the candidates' margins (this step)
"""
ARBITER_CLEAR = "best = 0"  # before the candidates arrive (candidates have margin > 0)

#: cell → arbiter synapse, on candidate events: running maximum
ARBITER_ON_CANDIDATE = "best_post = clip(margin_pre, best_post, inf)  # max(best, margin)"

#: E reset: count the spike in r; the fixed weak autapse W_EE[i, i]
E_RESET = """
r += 1            # filtered spike train
V += w_self_E     # autapse W_EE[i, i] (fixed, −0.02)
"""

#: I reset: count the spike in r (the self-connection W_II[i, i] is a learned I → I synapse)
I_RESET = "r += 1"

#: input channels: command c_j, signal x_j and the presynaptic trace x̄_j of the feedforward rule
EI_INPUT_SIGNAL = """
c = stim_c(t, i) : Hz                        # command signal c_j(t) (x_j: dx/dt = −λx + c)
dxbar/dt = -lambda_F * xbar + c : 1          # trace of c for Eq 7 (authors: rate λ_F = 6λ)
"""

INPUT_TO_E_SYNAPSE = """
w : 1                                                  # feedforward weight F_ij (input j → E cell i)
I_ff_post = w * c_pre : Hz (summed)                    # drive of E cell i
I_ff_exc_post = w * c_pre * int(w * c_pre > 0*Hz) : Hz (summed)  # its positive part
eta : 1 (shared)                                       # learning rate ε_F (0: off)
"""

#: paper Eq 7 at postsynaptic (E) spikes, trace x̄ of the input
INPUT_TO_E_RULE_ON_POST = """
w += eta * (alpha_E * xbar_pre - w)  # ΔF_ij = ε_F (α x̄_j − F_ij)
"""

#: all recurrent synapses: a weight, a presence mask and a learning rate
EI_SYNAPSE = """
w : 1              # weight W[i, k] from cell k (pre) to cell i (post)
mask : 1           # 1: connection present, 0: removed (a lesion); a removed weight stays 0
eta : 1 (shared)   # learning rate (0: off)
"""

#: I → I synapses also know which one is the self-connection (no i/j in synapse code: the
#: cython and CUDA templates use those names for their own loop indices)
EI_SYNAPSE_WITH_SELF = EI_SYNAPSE + """delta : 1 (constant)   # δ_ik: 1 for the self-connection (the reset), else 0
"""

#: E → I: paper Eq 7 at postsynaptic (I) spikes with the E cells' r as signal, clipped ≥ 0
E_TO_I_RULE_ON_POST = """
w = mask * clip(w + eta * (alpha_I * r_pre - w), 0, inf)  # ΔW_EI = ε_F (α r_E − W_EI), Dale: ≥ 0
"""

_RECURRENT_RULE = (
    "w = mask * clip(w - eta * (beta * (V_post + mu * r_post) + w{self_cost}), {low}, {high})"
    "  # Eq 6, then Dale's sign\n"
)
_INPUT_EXC = """
V_post += w                      # recurrent input
I_exc_post += w / tau_cur        # ... counted as excitatory current
"""
_INPUT_INH = """
V_post += w                      # recurrent input
I_inh_post += w / tau_cur        # ... counted as inhibitory current
"""
_INPUT_INH_NOT_SELF = """
V_post += w                                # recurrent input (i = k: the reset)
I_inh_post += (1 - delta) * w / tau_cur    # inhibitory current from other cells
"""

#: E → E at presynaptic spikes: Eq 6, clipped ≥ 0 (no autapse synapse), then the input
E_TO_E_RULE_ON_PRE = _RECURRENT_RULE.format(self_cost="", low="0", high="inf") + _INPUT_EXC
#: I → E at presynaptic spikes: Eq 6 with the E cell's V and r, clipped ≤ 0
I_TO_E_RULE_ON_PRE = _RECURRENT_RULE.format(self_cost="", low="-inf", high="0") + _INPUT_INH
#: I → I at presynaptic spikes: Eq 6 with the cost term μ δ_ik, clipped ≤ 0
I_TO_I_RULE_ON_PRE = (
    _RECURRENT_RULE.format(self_cost=" + mu * delta", low="-inf", high="0") + _INPUT_INH_NOT_SELF
)
#: fixed-weight versions (plastic=False)
EXC_INPUT_ON_PRE = _INPUT_EXC
INH_INPUT_ON_PRE = _INPUT_INH
I_TO_I_INPUT_ON_PRE = _INPUT_INH_NOT_SELF

#: E → I input (both plastic and fixed)
E_TO_I_ON_PRE = _INPUT_EXC


# ----------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------
#: the one-spike arbiter with synaptic delays: obeys them (no same-step competition) or acts at once
ARBITERS = ("delayed", "instant")


@dataclass
class EIParams:
    """Fig 4 network; defaults are the values of the authors' code (``LearningDale.m``)."""

    N_E: int = 300  # excitatory cells
    N_I: int = 75  # inhibitory cells
    J: int = 3  # input dimensions
    dt: Quantity = field(default_factory=lambda: 0.1 * ms)  # time step
    lambda_: Quantity = field(default_factory=lambda: 50 * Hz)  # leak of V and decay of r (λ)
    lambda_F: Quantity = field(default_factory=lambda: 300 * Hz)  # decay of the input trace x̄ (6λ)
    T_E: float = 0.5  # E thresholds ‖F_i‖²/2
    T_I: float = 0.5  # I thresholds
    eps_F: float = 1e-5  # feedforward rules (input → E and E → I) ε_F
    eps_Omega: float = 1e-4  # recurrent rules (E → E, I → E, I → I) ε_Ω
    alpha_E: float = 1.0  # gain of the input → E rule
    alpha_I: float = 1.0  # gain of the E → I rule
    beta: float = 1.0  # gain of the recurrent rule
    mu: float = 0.002  # cost of spiking μ
    w_self_E: float = -0.02  # fixed E autapse
    w_EI_init: float = 0.5  # initial E → I weight (from N_E/N_I cells per I cell)
    w_II_init: float = -0.5  # initial I self-connection
    w_IE_scale: float = -0.3  # initial I → E = scale · W_EIᵀ
    refractory: Quantity = field(default_factory=lambda: 1 * ms)
    noise_per_step: float = 2e-3  # s.d. of membrane noise per step (both populations)
    threshold_jitter: float = 0.02  # s.d. of the threshold jitter per step
    one_spike_per_step: bool = True  # per population, as in the authors' code
    refractory_blocks: bool = True  # authors: a refractory best candidate silences its population this step
    input_sigma: Quantity = field(default_factory=lambda: 3 * ms)  # Gaussian smoothing of c (30 steps)
    input_amplitude: float = 2000.0  # gain of the smoothed white noise c
    current_tau: Quantity = field(default_factory=lambda: 5 * ms)  # low-pass of recorded currents
    n_record: int = 20  # cells per population (the first ones) whose currents are recorded (0: none)
    delay: Quantity = field(default_factory=lambda: 0 * ms)  # synaptic delay between different cells
    arbiter: str = "delayed"  # one-spike rule with delays: 'delayed' (obeys them) or 'instant'
    noise_run_arg: bool = False  # membrane noise s.d. per step as a run argument (noise sweeps)

    def validate(self):
        if self.N_E < 1 or self.N_I < 1 or self.J < 1:
            raise ValueError(f"N_E, N_I and J must be >= 1 (got {self.N_E}, {self.N_I}, {self.J})")
        if self.N_E % self.N_I:
            raise ValueError(f"N_E={self.N_E} must be a multiple of N_I={self.N_I} (E cells per I cell)")
        if float(self.dt) <= 0 or float(self.lambda_) <= 0 or float(self.lambda_F) <= 0:
            raise ValueError("dt, lambda_ and lambda_F must be positive")
        for name in ("lambda_", "lambda_F"):
            ld = float(getattr(self, name) * self.dt)
            if ld >= 1:
                raise ValueError(f"{name}*dt = {ld:g} must be < 1")
        if self.w_EI_init < 0 or self.w_II_init > 0 or self.w_IE_scale > 0 or self.w_self_E > 0:
            raise ValueError("initial weights must obey Dale's law (E → I ≥ 0; I → I, I → E, E autapse ≤ 0)")
        if self.n_record < 0:
            raise ValueError(f"n_record={self.n_record} must be >= 0")
        if self.arbiter not in ARBITERS:
            raise ValueError(f"arbiter={self.arbiter!r}: expected one of {ARBITERS}")
        d = float(self.delay / self.dt)
        if d < 0 or abs(d - round(d)) > 1e-6:
            raise ValueError(f"delay={self.delay} must be >= 0 and a whole number of steps dt={self.dt}")

    @property
    def same_step_arbiter(self) -> bool:
        """Whether the one-spike-per-step rule compares the candidates of one step (see ``arbiter``)."""
        return self.one_spike_per_step and (self.arbiter == "instant" or float(self.delay) == 0)


def initial_weights(p: EIParams, rng: np.random.Generator) -> dict:
    """Initial weights (matrices post × pre, F is J × N_E) as in ``LearningDale.m``."""
    F = rng.standard_normal((p.J, p.N_E))
    F /= np.linalg.norm(F, axis=0, keepdims=True)
    order = rng.permutation(p.N_E)
    W_EI = np.zeros((p.N_I, p.N_E))
    W_EI[order % p.N_I, order] = p.w_EI_init  # each E cell → one I cell; N_E/N_I E cells per I cell
    return {
        "F": F,
        "W_EE": np.zeros((p.N_E, p.N_E)),  # off-diagonal only (the autapse is the fixed reset)
        "W_EI": W_EI,
        "W_IE": p.w_IE_scale * W_EI.T,
        "W_II": p.w_II_init * np.eye(p.N_I),
    }


#: weight name -> (shape function, sign: +1 ≥ 0, −1 ≤ 0, 0 free)
WEIGHT_SIGNS = {"F": 0, "W_EE": 1, "W_EI": 1, "W_IE": -1, "W_II": -1}


def dale_violations(weights: dict, tol: float = 0.0) -> dict:
    """Number of entries of each matrix with the wrong sign (beyond ``tol``)."""
    out = {}
    for name, sign in WEIGHT_SIGNS.items():
        if sign == 0 or name not in weights:
            continue
        W = np.asarray(weights[name])
        out[name] = int(np.sum(W < -tol)) if sign > 0 else int(np.sum(W > tol))
    return out


def _all_to_all(n_pre: int, n_post: int, self_connections: bool = True):
    """(i, j) of all pairs sorted by presynaptic index, optionally without i == j."""
    i = np.repeat(np.arange(n_pre), n_post)
    j = np.tile(np.arange(n_post), n_pre)
    if not self_connections:
        keep = i != j
        i, j = i[keep], j[keep]
    return i, j


def _ij(n_pre: int, n_post: int, self_connections: bool = True) -> dict:
    i, j = _all_to_all(n_pre, n_post, self_connections)
    return {"i": i, "j": j}


# ----------------------------------------------------------------------------------------
# network
# ----------------------------------------------------------------------------------------
@dataclass
class EIChunkResult:
    """What one chunk produced (spike steps counted from the chunk start)."""

    spike_i_E: np.ndarray
    spike_step_E: np.ndarray
    spike_i_I: np.ndarray
    spike_step_I: np.ndarray
    n_steps: int
    V_mean_E: np.ndarray
    V_var_E: np.ndarray
    V_mean_I: np.ndarray
    V_var_I: np.ndarray
    currents: dict  # 'E_exc', 'E_inh', 'I_exc', 'I_inh': (n_steps, n_record) in Hz, or {} if none
    wall_s: float


class EINetwork:
    """The Fig 4 E–I network compiled once for chunks of ``chunk_steps`` steps.

    :meth:`run_chunk` feeds one input segment (the command c in Hz, ``(chunk_steps, J)``),
    continues from the current state (V, r, x̄ and all weights) and reads the new state
    back, so long learning runs are re-runs of one binary on the standalone backends.
    ``plastic=False`` builds the network without learning rules.
    """

    WEIGHTS = ("F", "W_EE", "W_EI", "W_IE", "W_II")

    def __init__(self, p: EIParams, session: Session, chunk_steps: int, plastic: bool = True,
                 weights: dict | None = None, seed: int = 0, name: str = "ei"):
        p.validate()
        self.p = p
        self.session = session
        self.chunk_steps = int(chunk_steps)
        if self.chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
        self.plastic = plastic
        init = initial_weights(p, np.random.default_rng(seed))
        self.shapes = {k: v.shape for k, v in init.items()}
        self.weights = {}
        self.masks = {k: np.ones(v.shape) for k, v in init.items() if k != "F"}
        self.set_weights(**init)
        if weights:
            self.set_weights(**weights)
        self.V_E, self.r_E = np.zeros(p.N_E), np.zeros(p.N_E)
        self.V_I, self.r_I = np.zeros(p.N_I), np.zeros(p.N_I)
        self.xbar = np.zeros(p.J)
        self.noise_sd = p.noise_per_step  # per-step s.d. of the membrane noise (a run argument if noise_run_arg)
        self._ee_i, self._ee_j = _all_to_all(p.N_E, p.N_E, self_connections=False)
        self._build(name)

    # -- weights: matrices (post × pre) <-> synapse arrays (sorted by pre) -------------------
    def set_weights(self, **weights):
        for key, W in weights.items():
            if key not in self.shapes:
                raise KeyError(f"unknown weight {key!r}; expected one of {self.WEIGHTS}")
            W = np.array(W, dtype=float)
            if W.shape != self.shapes[key]:
                raise ValueError(f"{key}: shape {W.shape}, expected {self.shapes[key]}")
            self.weights[key] = W

    def set_masks(self, **masks):
        """Presence masks (0/1, post × pre) of the recurrent connections; removed weights are set to 0."""
        for key, M in masks.items():
            if key not in self.masks:
                raise KeyError(f"unknown mask {key!r}; expected one of {tuple(self.masks)}")
            M = np.array(M, dtype=float)
            if M.shape != self.shapes[key] or not np.isin(M, (0.0, 1.0)).all():
                raise ValueError(f"mask {key}: expected a {self.shapes[key]} array of 0 and 1")
            self.masks[key] = M
            self.weights[key] = self.weights[key] * M

    def lesion_E(self, cells):
        """Delete E cells: their feedforward weights and every connection to or from them become 0 for good."""
        cells = np.asarray(cells, dtype=np.int64)
        if cells.size and (cells.min() < 0 or cells.max() >= self.p.N_E):
            raise ValueError(f"E cell index out of range [0, {self.p.N_E})")
        keep = np.ones(self.p.N_E)
        keep[cells] = 0.0
        self.weights["F"] = self.weights["F"] * keep[None, :]
        self.set_masks(W_EE=self.masks["W_EE"] * keep[:, None] * keep[None, :],
                       W_EI=self.masks["W_EI"] * keep[None, :], W_IE=self.masks["W_IE"] * keep[:, None])
        self.V_E[cells] = 0.0
        self.r_E[cells] = 0.0

    def _pack(self, key, W=None) -> np.ndarray:
        W = self.weights[key] if W is None else W
        if key == "F":
            return W.ravel()  # synapse j*N_E + i is F[j, i]
        if key == "W_EE":
            return W[self._ee_j, self._ee_i]
        return W.T.ravel()  # synapse k*N_post + i is W[i, k]

    def _unpack(self, key, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        shape = self.shapes[key]
        if key == "F":
            return values.reshape(shape).copy()
        if key == "W_EE":
            W = np.zeros(shape)
            W[self._ee_j, self._ee_i] = values
            return W
        return values.reshape(shape[1], shape[0]).T.copy()

    # -- construction ---------------------------------------------------------------------
    def _build(self, name):
        p = self.p
        NE, NI, J = p.N_E, p.N_I, p.J
        dt = p.dt
        base = {
            "lambda_": p.lambda_,
            "sigma_V": (second**-0.5 / np.sqrt(float(dt))) if p.noise_run_arg
            else p.noise_per_step / np.sqrt(float(dt)) * second**-0.5,
            "sigma_T": p.threshold_jitter,
            "beta": p.beta,
            "mu": p.mu,
            "tau_cur": p.current_tau,
        }
        self.stim_c = TimedArray(np.zeros((self.chunk_steps, J)) * Hz, dt=dt, name=f"{name}_stim_c")
        # the input's subexpression c_pre is are resolved in the synapses' namespaces too
        base.update(stim_c=self.stim_c)
        # one clock for every object: each extra clock costs the network loop time every step
        clock = Clock(dt, name=f"{name}_clock")
        self.inputs = NeuronGroup(
            J, EI_INPUT_SIGNAL, method="euler", clock=clock, name=f"{name}_inputs",
            namespace=dict(base, lambda_F=p.lambda_F),
        )
        objects = [self.inputs]
        groups = {}
        for pop, N, T, reset in (("E", NE, p.T_E, E_RESET), ("I", NI, p.T_I, I_RESET)):
            ns = dict(base, T=T, w_self_E=p.w_self_E)
            one = p.same_step_arbiter
            eqs = EI_CODING_NEURON
            if p.noise_run_arg:  # the same term, its amplitude a shared variable set per run
                eqs = eqs.replace("sigma_V * xi", "noise_sd * sigma_V * xi") + NOISE_AS_RUN_ARG
            G = NeuronGroup(
                N, eqs + (POPULATION_BEST if one else ""),
                threshold=THRESHOLD_BEST_OF_POPULATION if one else THRESHOLD_ANY,
                reset=reset, refractory=p.refractory, method="euler",
                events={"candidate": CANDIDATE_EVENT_AUTHORS if p.refractory_blocks else CANDIDATE_EVENT_REFRACTORY}
                if one else None,
                clock=clock, name=f"{name}_{pop}", namespace=ns,
            )
            margin = G.run_regularly(THRESHOLD_MARGIN, when="before_thresholds", order=0,
                                     name=f"{name}_{pop}_margin")
            objects += [G, margin]
            if one:
                # one-spike-per-step rule in O(candidates) per step: candidates send their margin
                # to a one-cell arbiter that keeps the maximum; cells read it through a linked
                # variable and only the best candidate passes the threshold
                arb = NeuronGroup(1, ARBITER, clock=clock, name=f"{name}_{pop}_arbiter")
                clear = arb.run_regularly(ARBITER_CLEAR, when="before_thresholds", order=0,
                                          name=f"{name}_{pop}_arbiter_clear")
                th = G.thresholder["candidate"]
                th.when, th.order = "before_thresholds", 1
                to_arb = Synapses(G, arb, on_pre={"candidate": ARBITER_ON_CANDIDATE},
                                  on_event={"candidate": "candidate"}, clock=clock,
                                  name=f"{name}_{pop}_to_arbiter")
                to_arb.connect(i=np.arange(N), j=np.zeros(N, dtype=int))
                to_arb.candidate.when, to_arb.candidate.order = "before_thresholds", 2
                G.best = linked_var(arb, "best", index=np.zeros(N, dtype=int))
                objects += [arb, clear, to_arb]
            groups[pop] = G
        self.E, self.I = groups["E"], groups["I"]
        ns = dict(base, alpha_E=p.alpha_E, alpha_I=p.alpha_I)
        plastic = self.plastic

        def syn(src, tgt, key, on_pre, on_post=None, model=EI_SYNAPSE):
            return Synapses(src, tgt, model=model, on_pre=on_pre, on_post=on_post, clock=clock,
                            name=f"{name}_{key}", namespace=ns)

        self.ee = syn(self.E, self.E, "EE", E_TO_E_RULE_ON_PRE if plastic else EXC_INPUT_ON_PRE)
        self.ee.connect(i=self._ee_i, j=self._ee_j)
        self.ei = syn(self.E, self.I, "EI", E_TO_I_ON_PRE, on_post=E_TO_I_RULE_ON_POST if plastic else None)
        self.ei.connect(**_ij(NE, NI))
        self.ie = syn(self.I, self.E, "IE", I_TO_E_RULE_ON_PRE if plastic else INH_INPUT_ON_PRE)
        self.ie.connect(**_ij(NI, NE))
        self.ii = syn(self.I, self.I, "II", I_TO_I_RULE_ON_PRE if plastic else I_TO_I_INPUT_ON_PRE,
                      model=EI_SYNAPSE_WITH_SELF)
        ii = _ij(NI, NI)
        self.ii.connect(**ii)
        self.ii.delta = (ii["i"] == ii["j"]).astype(float)
        if float(p.delay) > 0:  # every connection between different cells; the I reset acts at once
            for S in (self.ee, self.ei, self.ie):
                S.delay = p.delay
            self.ii.delay = np.where(ii["i"] == ii["j"], 0.0, float(p.delay)) * second
        self.ff = Synapses(self.inputs, self.E, model=INPUT_TO_E_SYNAPSE,
                           on_post=INPUT_TO_E_RULE_ON_POST if plastic else None,
                           clock=clock, name=f"{name}_FE", namespace=ns)
        self.ff.connect(**_ij(J, NE))
        self.syn = {"F": self.ff, "W_EE": self.ee, "W_EI": self.ei, "W_IE": self.ie, "W_II": self.ii}
        self.eps = {"F": p.eps_F, "W_EI": p.eps_F, "W_EE": p.eps_Omega, "W_IE": p.eps_Omega,
                    "W_II": p.eps_Omega}
        for key, S in self.syn.items():
            S.w = self._pack(key)
            self.session.expect_size(S.w, len(self._pack(key)))
            if key in self.masks:
                S.mask = 1.0
                self.session.expect_size(S.mask, len(self._pack(key)))
        self.spikes_E = SpikeMonitor(self.E, name=f"{name}_spikes_E")
        self.spikes_I = SpikeMonitor(self.I, name=f"{name}_spikes_I")
        objects += [self.ee, self.ei, self.ie, self.ii, self.ff, self.spikes_E, self.spikes_I]
        self.cur_mon = {}
        if p.n_record:
            for pop, G in (("E", self.E), ("I", self.I)):
                rec = np.arange(min(p.n_record, len(G)))
                self.cur_mon[pop] = StateMonitor(G, ["I_exc", "I_inh"], record=rec, clock=clock,
                                                 name=f"{name}_currents_{pop}")
                objects.append(self.cur_mon[pop])
        self.net = Network(*objects)
        self.session.build(self.net, self.chunk_steps * dt)

    # -- running --------------------------------------------------------------------------
    def run_chunk(self, c, learning: bool = True, seed: int | None = None,
                  rate_scale: float = 1.0, eta_scale: dict | None = None) -> EIChunkResult:
        """Present one input segment: the command c (Hz, as plain numbers), ``(chunk_steps, J)``.

        The network needs no x: the feedforward rule uses the trace x̄ of c.  ``rate_scale``
        multiplies every learning rate for this chunk (a decaying schedule; run_args only, no rebuild);
        ``eta_scale`` ({weight name: factor}) multiplies single ones (0 freezes that weight).
        """
        eta_scale = dict(eta_scale or {})
        for key, val in eta_scale.items():
            if key not in self.WEIGHTS or not val >= 0:
                raise ValueError(f"eta_scale: {key}={val}; expected factors >= 0 for {self.WEIGHTS}")
        p = self.p
        c = np.asarray(c, dtype=float)
        shape = (self.chunk_steps, p.J)
        if c.shape != shape:
            raise ValueError(f"input segment of shape {c.shape}; expected {shape}")
        if learning and not self.plastic:
            raise ValueError("this network was built with plastic=False; it cannot learn")
        if not rate_scale >= 0:
            raise ValueError(f"rate_scale must be >= 0, got {rate_scale}")
        args = {
            self.stim_c: c * Hz, self.inputs.xbar: self.xbar,
            self.E.V: self.V_E, self.E.r: self.r_E, self.I.V: self.V_I, self.I.r: self.r_I,
        }
        if p.noise_run_arg:
            if not self.noise_sd >= 0:
                raise ValueError(f"noise_sd={self.noise_sd} must be >= 0")
            args[self.E.noise_sd] = args[self.I.noise_sd] = float(self.noise_sd)
        for key, S in self.syn.items():
            args[S.w] = self._pack(key)
            if key in self.masks:
                args[S.mask] = self._pack(key, self.masks[key])
            if self.plastic:
                args[S.eta] = self.eps[key] * rate_scale * eta_scale.get(key, 1.0) if learning else 0.0
        info = self.session.run(args, seed=seed)
        self.V_E, self.r_E = np.array(self.E.V[:]), np.array(self.E.r[:])
        self.V_I, self.r_I = np.array(self.I.V[:]), np.array(self.I.r[:])
        self.xbar = np.array(self.inputs.xbar[:])
        if self.plastic:
            for key, S in self.syn.items():
                self.weights[key] = self._unpack(key, S.w[:])
        duration = self.chunk_steps * float(p.dt)
        out = {}
        for pop, G in (("E", self.E), ("I", self.I)):
            m = np.array(G.V_int[:]) / duration
            out[f"V_mean_{pop}"] = m
            out[f"V_var_{pop}"] = np.array(G.V2_int[:]) / duration - m**2
        currents = {}
        for pop, mon in self.cur_mon.items():
            currents[f"{pop}_exc"] = np.array(mon.I_exc_[:]).T
            currents[f"{pop}_inh"] = np.array(mon.I_inh_[:]).T

        def steps(mon):
            return np.round(np.asarray(mon.t_[:]) / float(p.dt)).astype(np.int64)

        return EIChunkResult(
            spike_i_E=np.asarray(self.spikes_E.i[:], dtype=np.int64), spike_step_E=steps(self.spikes_E),
            spike_i_I=np.asarray(self.spikes_I.i[:], dtype=np.int64), spike_step_I=steps(self.spikes_I),
            n_steps=self.chunk_steps, currents=currents, wall_s=info.wall_s, **out,
        )

    def state(self) -> dict:
        s = {k: v.copy() for k, v in self.weights.items()}
        s.update(V_E=self.V_E.copy(), r_E=self.r_E.copy(), V_I=self.V_I.copy(), r_I=self.r_I.copy(),
                 xbar=self.xbar.copy())
        return s

    def set_dynamic_state(self, V_E=None, r_E=None, V_I=None, r_I=None, xbar=None):
        """Replace the state variables (not the weights) that the next chunk starts from."""
        for key, val in (("V_E", V_E), ("r_E", r_E), ("V_I", V_I), ("r_I", r_I), ("xbar", xbar)):
            if val is not None:
                old = getattr(self, key)
                val = np.array(val, dtype=float) * np.ones_like(old)
                setattr(self, key, val)
