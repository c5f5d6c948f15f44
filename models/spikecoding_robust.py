"""Spike-coding network of the Fig 2 kind with synaptic delays, EPSC/IPSC kernels, removable
connections and an adjustable white-noise current, for robustness experiments.

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

Used by protocol ``spikecoding.fig7`` (the paper's Fig 7: coding error against network size,
against the fraction of recurrent connections removed before learning, and against the
amplitude of an injected white-noise current for several synaptic delays with EPSC/IPSC
time courses).  The network and its two learning rules are those of :mod:`models.spikecoding`
(neurons ``LIF_CODING_NEURON``-like, recurrent rule Eq 6 at presynaptic spikes, feedforward
rule Eq 7 at postsynaptic spikes, same parameter dataclass); what is added:

* **Synaptic delay** ``delay`` of every lateral (k ≠ i) recurrent connection: the input
  reaches the postsynaptic membrane ``delay`` after the presynaptic spike, and so (by default,
  see below) does the weight change of Eq 6.  The self-connection Ω_ii is the neuron's reset:
  it acts, and learns, at once.
* **EPSC/IPSC time course** ``epsc_tau``: with ``epsc_tau > 0`` a lateral spike adds
  Ω_ik/τ_s to a synaptic current I_rec_i that decays with τ_s (an exponential PSC of total
  charge Ω_ik, the same integrated effect as the instantaneous jump of Fig 2); 0 gives the jump.
* **Removed connections**: every recurrent synapse has ``alive`` ∈ {0, 1}, a run argument;
  a removed connection has weight 0 and stays 0 during learning.
* **Noise current**: the per-step s.d. of the membrane's white-noise current is a run
  argument ``noise_sd`` (default the paper's 0.001), so one binary serves a whole noise sweep.

The paper's authors published no code for Fig 7; the following are our choices:

* **Eq 6 with delayed synapses: the lateral update is made when the spike arrives**
  (``lateral_rule="arrival"``, the default).  Eq 6 is a stochastic gradient step on the
  voltage (prediction-error) loss: the voltage that Ω_ik should cancel is V_i at the moment
  Ω_ik acts on it.  Without delay that is the moment of the presynaptic spike; with a delay
  it is ``delay`` later, so the lateral change ΔΩ_ik = −ε_Ω (β (V_i + μ r_i) + Ω_ik) is made
  at the arrival of k's spike at i, with V_i just before the lateral input starts (a
  second, equally delayed synaptic pathway ordered before the input).  The self-connection
  (reset, no delay) keeps Eq 6 at the spike.  For ``delay = 0`` both forms are the same
  code as Fig 2.  ``lateral_rule="spike"`` applies Eq 6 at the presynaptic spike for all
  connections (the literal Fig 2 rule).  Measured (N = 20, 2 ms PSC, 200 s of learning,
  ``spikecoding.fig7``): with a 2 or 4 ms delay the spike-time rule lets the weights grow
  without bound (one seed, 2 ms: ``|Ω_ii|`` from 0.8 to 13 at ×1 the Fig 2 learning rates, to
  10¹⁹ at ×10), every cell ends at the one-spike-per-step ceiling (50 Hz) and the error is
  ≈ 0.5–1 (1.00 in 5 of 5 seeds at ×10); with a 1 ms delay both forms learn (error
  0.0078 ± 0.0006 at the spike, 0.0086 ± 0.0009 at arrival, 5 seeds).  Our reading: the
  voltage at the presynaptic spike does not yet contain the inputs still in flight, so the
  rule fits lateral weights to a voltage they never meet; the delayed over-correction they
  cause raises the voltages at the next spikes, which the rule answers with larger weights
  (it runs away at ×1 the rates too, so it is not a step-size instability).  With the update
  at arrival the same network learns a code whose error rises with the delay but stays far
  below the error before learning and below an equally-rated Poisson population (README,
  Fig 7).  The paper's exact treatment of delayed synapses was not available to us and may
  differ in detail.
* One spike per step (the authors' rule of Fig 2) is kept, built as in
  :mod:`models.spikecoding_ei` (a one-cell arbiter finds the largest candidate margin), so
  the lateral synapses need not carry the competition and can be delayed.
* Spikes still in flight at the end of a chunk (a re-run of the binary) are dropped: at
  most ``delay`` of lateral input (and of lateral learning) is lost every chunk (chunks are
  ≥ 1 s, delays a few ms).
* With a PSC (``epsc_tau > 0``) the arrival-time update uses the voltage when the current
  starts; the charge Ω_ik is delivered over the next few τ_s, so the fitted Ω_ik is that of an
  instantaneous jump at the arrival time (thresholds, μ and β are the Fig 2 values, unscaled).
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
    Synapses,
    TimedArray,
    linked_var,
    ms,
)

from b2models.backend import Session
from b2models.models.spikecoding import (
    CODING_RESET,
    FEEDFORWARD_SYNAPSE,
    HEBBIAN_FEEDFORWARD_RULE_ON_POST,
    INPUT_SIGNAL,
    SpikeCodingParams,
    initial_weights,
)
from b2models.models.spikecoding_ei import (
    ARBITER,
    ARBITER_CLEAR,
    ARBITER_ON_CANDIDATE,
    CANDIDATE_EVENT_AUTHORS,
    POPULATION_BEST,
    THRESHOLD_BEST_OF_POPULATION,
)

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
#: coding neuron with a settable noise current and (optionally) a lateral synaptic current
ROBUST_CODING_NEURON = """
dV/dt = -lambda_ * V + I_ff + I_rec + noise_sd * xi / sqrt(dt_noise) : 1  # V_i: leak, drive, PSCs, noise
I_ff : Hz                                       # feedforward drive Σ_j F_ij c_j(t)
dr/dt = -lambda_ * r : 1                        # filtered spike train r_i, +1 at each spike
margin : 1                                      # V_i − T − jitter (this step)
noise_sd : 1 (shared)                           # s.d. of the noise current's effect on V per step
dV_int/dt = V / second : 1                      # ∫V dt / s since the run started
dV2_int/dt = V**2 / second : 1                  # ∫V² dt / s since the run started
"""
#: lateral input as an exponential PSC (epsc_tau > 0)
PSC_CURRENT = """
dI_rec/dt = -I_rec / tau_s : Hz                 # summed lateral PSCs (charge Ω_ik per spike)
"""
#: lateral input as jumps of V (epsc_tau = 0)
NO_PSC_CURRENT = """
I_rec : Hz                                      # (no PSC: lateral input jumps V)
"""

#: jittered threshold margin, computed every step after the membrane update
ROBUST_MARGIN = "margin = V - T - sigma_T * randn()"

ROBUST_RECURRENT_SYNAPSE = """
Omega : 1                  # recurrent weight Ω_ik from neuron k (pre) to neuron i (post)
delta : 1 (constant)       # δ_ik: 1 for the self-connection (the reset), else 0
alive : 1                  # 1: connection present, 0: removed (stays 0)
eta_Omega : 1 (shared)     # learning rate ε_Ω (0: learning off)
"""

#: paper Eq 6 at the presynaptic spike (no delay), removed connections stay 0
ROBUST_RECURRENT_RULE_ON_PRE = """
Omega = alive * (Omega - eta_Omega * (beta * (V_post + mu * r_post) + Omega + mu * delta))  # ΔΩ_ik (Eq 6)
"""
#: Eq 6 for the self-connection only (δ_ii = 1, the undelayed reset), at the spike
SELF_RULE_ON_PRE = """
Omega = Omega - delta * eta_Omega * (beta * (V_post + mu * r_post) + Omega + mu)  # ΔΩ_ii (Eq 6)
"""
#: Eq 6 for lateral connections (δ_ik = 0), when k's spike arrives at i (after the delay),
#: with V_i just before the lateral input; removed connections stay 0
LATERAL_RULE_ON_ARRIVAL = """
Omega = alive * (Omega - (1 - delta) * eta_Omega * (beta * (V_post + mu * r_post) + Omega))  # ΔΩ_ik (Eq 6)
"""
#: where Eq 6 acts on lateral connections: at the input's arrival, or at the presynaptic spike
LATERAL_RULES = ("arrival", "spike")
#: the self-connection is the reset: at once
SELF_RESET_ON_PRE = "V_post += Omega * delta  # reset V_i += Ω_ii"
#: lateral input, after the synaptic delay: a jump of V ...
LATERAL_JUMP_ON_PRE = "V_post += Omega * (1 - delta)  # V_i += Ω_ik (k ≠ i)"
#: ... or an exponential PSC of the same charge
LATERAL_PSC_ON_PRE = "I_rec_post += Omega * (1 - delta) / tau_s  # PSC of charge Ω_ik (k ≠ i)"


@dataclass
class RobustParams(SpikeCodingParams):
    """The Fig 2 network (authors' values) plus delay and PSC time constant of lateral synapses."""

    delay: Quantity = field(default_factory=lambda: 0 * ms)  # lateral synaptic delay
    epsc_tau: Quantity = field(default_factory=lambda: 0 * ms)  # PSC decay time (0: instantaneous jump)
    lateral_rule: str = "arrival"  # Eq 6 for k ≠ i: at the input's 'arrival' (after the delay) or at the 'spike'

    def validate(self):
        super().validate()
        if float(self.delay) < 0 or float(self.epsc_tau) < 0:
            raise ValueError(f"delay={self.delay} and epsc_tau={self.epsc_tau} must be >= 0")
        steps = float(self.delay / self.dt)
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"delay={self.delay} is not a whole number of steps dt={self.dt}")
        if 0 < float(self.epsc_tau) < float(self.dt):
            raise ValueError(f"epsc_tau={self.epsc_tau} must be 0 or >= dt={self.dt}")
        if self.lateral_rule not in LATERAL_RULES:
            raise ValueError(f"lateral_rule must be one of {LATERAL_RULES}, got {self.lateral_rule!r}")
        if self.noise_per_step < 0:
            raise ValueError(f"noise_per_step={self.noise_per_step} must be >= 0")


@dataclass
class RobustChunkResult:
    spike_i: np.ndarray
    spike_step: np.ndarray
    n_steps: int
    V_var: np.ndarray
    wall_s: float


class RobustNetwork:
    """The robustness variant compiled once for chunks of ``chunk_steps`` steps.

    Run arguments for every chunk: input (c, x), V, r, I_rec, F, Ω, the ``alive`` mask of the
    recurrent synapses (:meth:`set_alive`), the noise s.d. (:attr:`noise_sd`) and the learning
    rates.  Delay and PSC time constant shape the code (one build per value).
    """

    def __init__(self, p: RobustParams, session: Session, chunk_steps: int, seed: int = 0,
                 name: str = "rob"):
        p.validate()
        self.p = p
        self.session = session
        self.chunk_steps = int(chunk_steps)
        if self.chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
        self.reset_state(seed)
        self._build(name)

    def reset_state(self, seed: int):
        """Fresh initial weights (``p.init``) from ``seed``, all connections present, rest state."""
        p = self.p
        F, Omega = initial_weights(p, np.random.default_rng(seed))
        self.F, self.Omega = np.array(F, dtype=float), np.array(Omega, dtype=float)
        self.alive = np.ones((p.N, p.N))
        self.V, self.r, self.I_rec = np.zeros(p.N), np.zeros(p.N), np.zeros(p.N)
        self.noise_sd = float(p.noise_per_step)
        self.eps_Omega, self.eps_F = float(p.eps_Omega), float(p.eps_F)

    def set_alive(self, alive):
        """Mask (N × N, post × pre) of present recurrent connections; the diagonal (reset) must be 1."""
        alive = np.array(alive, dtype=float)
        if alive.shape != (self.p.N, self.p.N) or not np.isin(alive, (0.0, 1.0)).all():
            raise ValueError(f"alive must be an {self.p.N}×{self.p.N} matrix of 0 and 1")
        if not np.all(np.diag(alive) == 1):
            raise ValueError("the self-connections (resets) cannot be removed")
        self.alive = alive
        self.Omega = self.Omega * alive

    def _build(self, name):
        p = self.p
        N, J = p.N, p.J
        dt = p.dt
        psc = float(p.epsc_tau) > 0
        ns = {"lambda_": p.lambda_, "dt_noise": dt, "T": p.T, "sigma_T": p.threshold_jitter,
              "alpha": p.alpha, "beta": p.beta, "mu": p.mu}
        if psc:
            ns["tau_s"] = p.epsc_tau
        self.stim_c = TimedArray(np.zeros((self.chunk_steps, J)) * Hz, dt=dt, name=f"{name}_stim_c")
        self.stim_x = TimedArray(np.zeros((self.chunk_steps, J)), dt=dt, name=f"{name}_stim_x")
        ns.update(stim_c=self.stim_c, stim_x=self.stim_x)
        clock = Clock(dt, name=f"{name}_clock")
        self.inputs = NeuronGroup(J, INPUT_SIGNAL, clock=clock, name=f"{name}_inputs", namespace=ns)
        one = p.one_spike_per_step
        eqs = ROBUST_CODING_NEURON + (PSC_CURRENT if psc else NO_PSC_CURRENT) + (POPULATION_BEST if one else "")
        G = NeuronGroup(N, eqs, threshold=THRESHOLD_BEST_OF_POPULATION if one else "margin > 0",
                        reset=CODING_RESET, method="euler",
                        events={"candidate": CANDIDATE_EVENT_AUTHORS} if one else None,
                        clock=clock, name=f"{name}_neurons", namespace=ns)
        self.neurons = G
        margin = G.run_regularly(ROBUST_MARGIN, when="before_thresholds", order=0, name=f"{name}_margin")
        objects = [self.inputs, G, margin]
        if one:
            arb = NeuronGroup(1, ARBITER, clock=clock, name=f"{name}_arbiter")
            clear = arb.run_regularly(ARBITER_CLEAR, when="before_thresholds", order=0, name=f"{name}_arbiter_clear")
            th = G.thresholder["candidate"]
            th.when, th.order = "before_thresholds", 1
            to_arb = Synapses(G, arb, on_pre={"candidate": ARBITER_ON_CANDIDATE}, on_event={"candidate": "candidate"},
                              clock=clock, name=f"{name}_to_arbiter")
            to_arb.connect(i=np.arange(N), j=np.zeros(N, dtype=int))
            to_arb.candidate.when, to_arb.candidate.order = "before_thresholds", 2
            G.best = linked_var(arb, "best", index=np.zeros(N, dtype=int))
            objects += [arb, clear, to_arb]
        lateral = LATERAL_PSC_ON_PRE if psc else LATERAL_JUMP_ON_PRE
        if p.lateral_rule == "arrival":
            on_pre = {"learn": SELF_RULE_ON_PRE, "reset": SELF_RESET_ON_PRE, "learn_lateral": LATERAL_RULE_ON_ARRIVAL,
                      "pre": lateral}
            delays = {"pre": p.delay, "learn_lateral": p.delay}
        else:
            on_pre = {"learn": ROBUST_RECURRENT_RULE_ON_PRE, "reset": SELF_RESET_ON_PRE, "pre": lateral}
            delays = {"pre": p.delay}
        self.rec = Synapses(G, G, model=ROBUST_RECURRENT_SYNAPSE, on_pre=on_pre, delay=delays, clock=clock,
                            name=f"{name}_recurrent", namespace=ns)
        pre, post = np.repeat(np.arange(N), N), np.tile(np.arange(N), N)  # synapse k*N + i is Ω[i, k]
        self.rec.connect(i=pre, j=post)
        self.rec.delta = (pre == post).astype(float)
        self.rec.learn.order = self.rec.pre.order - 2
        self.rec.reset.order = self.rec.pre.order - 1
        if p.lateral_rule == "arrival":
            self.rec.learn_lateral.order = self.rec.pre.order - 2
        self.ff = Synapses(self.inputs, G, model=FEEDFORWARD_SYNAPSE, on_post=HEBBIAN_FEEDFORWARD_RULE_ON_POST,
                           clock=clock, name=f"{name}_feedforward", namespace=ns)
        self.ff.connect(i=np.repeat(np.arange(J), N), j=np.tile(np.arange(N), J))  # synapse j*N + i is F[j, i]
        self.spikes = SpikeMonitor(G, name=f"{name}_spikes")
        self.rec.Omega = self.Omega.T.ravel()
        self.rec.alive = 1.0
        self.ff.F = self.F.ravel()
        for var, size in ((self.rec.Omega, N * N), (self.rec.alive, N * N), (self.ff.F, N * J)):
            self.session.expect_size(var, size)
        self.net = Network(*objects, self.rec, self.ff, self.spikes)
        self.session.build(self.net, self.chunk_steps * dt)

    def run_chunk(self, c, x, learning: bool = True, seed: int | None = None) -> RobustChunkResult:
        """Present one input segment (c in Hz as plain numbers, x dimensionless), ``(chunk_steps, J)``."""
        p = self.p
        c = np.asarray(c, dtype=float)
        x = np.asarray(x, dtype=float)
        shape = (self.chunk_steps, p.J)
        if c.shape != shape or x.shape != shape:
            raise ValueError(f"input segment of shape c {c.shape}, x {x.shape}; expected {shape}")
        if not self.noise_sd >= 0:
            raise ValueError(f"noise_sd must be >= 0, got {self.noise_sd}")
        G = self.neurons
        args = {
            self.stim_c: c * Hz, self.stim_x: x, G.V: self.V, G.r: self.r, G.noise_sd: self.noise_sd,
            self.rec.Omega: self.Omega.T.ravel(), self.rec.alive: self.alive.T.ravel(), self.ff.F: self.F.ravel(),
            self.rec.eta_Omega: self.eps_Omega if learning else 0.0, self.ff.eta_F: self.eps_F if learning else 0.0,
        }
        if float(self.p.epsc_tau) > 0:
            args[G.I_rec] = self.I_rec * Hz
        info = self.session.run(args, seed=seed)
        self.V = np.array(G.V[:])
        self.r = np.array(G.r[:])
        if float(self.p.epsc_tau) > 0:
            self.I_rec = np.array(G.I_rec_[:])
        self.Omega = np.array(self.rec.Omega[:]).reshape(p.N, p.N).T.copy()
        self.F = np.array(self.ff.F[:]).reshape(p.J, p.N).copy()
        duration = self.chunk_steps * float(p.dt)
        m = np.array(G.V_int[:]) / duration
        steps = np.round(np.asarray(self.spikes.t_[:]) / float(p.dt)).astype(np.int64)
        return RobustChunkResult(spike_i=np.asarray(self.spikes.i[:], dtype=np.int64), spike_step=steps,
                                 n_steps=self.chunk_steps, V_var=np.array(G.V2_int[:]) / duration - m**2,
                                 wall_s=info.wall_s)
