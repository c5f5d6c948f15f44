"""Rectified Spectral Units (ReSUs) in Brian2: a two-layer network of fly-like L1/L2/L3 and T4 units.

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146.  Online learning rule adapted from Lipshutz D, Bahroun Y, Golkar S, Sengupta AM,
Chklovskii DB (2021), "A biologically plausible neural network for multichannel canonical correlation
analysis", Neural Computation 33(9):2309–2352, https://doi.org/10.1162/neco_a_01414.

A ReSU keeps a memory of its input's recent past p_t = [x_t, …, x_{t−m+1}], projects it on a canonical
direction ψ (past–future CCA, analysis/cca.py) and rectifies: z⁺ = max(ψ·p − θ, 0) (ON),
z⁻ = max(−ψ·p − θ, 0) (OFF); the L3-like unit is the unrectified projection on the first direction ψ1.

Network (protocols ``resu.t4``, ``resu.compare``):

* input: contrast at every pixel, a 2-D ``TimedArray`` (time × pixel);
* layer-1 delay line: one neuron per (pixel, lag k) whose value is the input k samples ago
  (``stim(t − k·dt, pixel)``);
* layer-1 ReSUs: per pixel one unit per filter (ψ1: L3-like, ψ2: L1/L2-like), ``u = Σ_k ψ[k] x_{t−k}``
  summed over synapses from the delay line; outputs ``lin`` (L3), ``on`` (L1-like), ``off`` (L2-like);
* layer-2 delay line: a shift register of the 6 channels of each T4 unit (L1-like ``on`` and L3-like
  ``lin`` of three adjacent pixels), built from synapses (tap k−1 → tap k) and a per-step copy;
* layer-2 ReSU (T4-like): ``v = Σ w · y`` over the 6 × m₂ taps, output ``r = max(v − θ₂, 0)``; m₂ = 1
  (no lags, the authors' layer 2) is a register of one tap.

Signs: every channel here is light-referred (ψ1 and the ON half of ψ2 rise for a light increment, the
layer-1 convention of analysis/cca.py).  The protocols express the layer-2 weights per channel's cell type
in its own light polarity (Mi1/Tm3 +1, L3/Mi9 −1; ``protocols.resu_t4.cell_polarity_weights``) and fix
the sign of ψ⁽²⁾ by an ON edge moving in the trained direction (``protocols.resu_t4.orient_layer2``); the
network computes the same unit either way (w_cell · y_cell = w · y).

Filters are shared between pixels and between T4 units for real (one kernel group per layer holds the
weights; the synapses link to it with ``linked_var``), so replacing the filters for a run is a
``run_args`` entry of the kernel group.

Deliberate deviations:

* time is discrete (one Brian2 step = one sample of the CCA); the projections are instantaneous sums,
  with no membrane time constant (the filters themselves carry all the dynamics, as in the paper);
* before t = 0 the delay line holds the first input sample (TimedArray clipping), not zeros;
* the layer-2 shift register adds no delay: tap 0 holds the current layer-1 output (scheduling orders
  below make each step: layer-1 sums → tap inputs → shift → layer-2 sum).
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
    linked_var,
    ms,
)

from b2models.backend import Session

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
INPUT_DELAY_LINE = """
x = stim(t - lag * dt_in, pixel) : 1  # x_{t−k}: contrast seen by this pixel k = lag samples ago
lag : integer (constant)              # k, position in the past lag vector p_t
pixel : integer (constant)            # input pixel (column of the stimulus TimedArray)
"""

RESU_LAYER1_NEURON = """
u : 1                          # projection ψ_f · p_t (summed over the delay-line synapses)
lin = u : 1                    # unrectified output (L3-like for ψ1)
on = u * int(u > theta1) - theta1 * int(u > theta1) : 1      # z⁺ = max(u − θ, 0): ON ReSU (L1-like for ψ2)
off = -u * int(u < -theta1) - theta1 * int(u < -theta1) : 1  # z⁻ = max(−u − θ, 0): OFF ReSU (L2-like for ψ2)
pixel : integer (constant)     # the pixel it looks at
filt : integer (constant)      # which canonical direction: 0 = ψ1, 1 = ψ2
"""

FILTER_KERNEL = """
w : 1  # shared filter coefficient ψ[f, k] (one kernel neuron per coefficient)
"""

LAYER1_SYNAPSE = """
w : 1 (linked)                      # ψ_f[k], linked to the shared kernel group
k_idx : integer (constant)          # which kernel coefficient
u_post = w * x_pre : 1 (summed)     # u = Σ_k ψ_f[k] x_{t−k}
"""

LAYER2_TAP = """
y : 1                 # channel value `lag` samples ago (shift register)
y_in0 : 1             # input of tap 0: the layer-1 output (summed, one synapse)
y_in1 : 1             # input of taps > 0: the previous tap (summed, one synapse)
lag : integer (constant)
chan : integer (constant)   # 0..2: L1-like (ON ψ2) of pixels 0,1,2; 3..5: L3-like (ψ1) of pixels 0,1,2
unit : integer (constant)   # T4 unit
"""

#: per step, after the tap inputs were summed: shift the register
LAYER2_SHIFT = "y = y_in0 + y_in1"

LAYER1_TO_TAP = """
use_on : 1 (constant)                                   # 1: take the ON output, 0: the linear output
y_in0_post = use_on * on_pre + (1 - use_on) * lin_pre : 1 (summed)
"""

TAP_CHAIN = """
y_in1_post = y_pre : 1 (summed)  # tap k ← tap k−1 (previous step's value)
"""

RESU_T4_NEURON = """
v : 1                              # projection ψ⁽²⁾ · p⁽²⁾_t over 6 channels × m₂ taps (summed)
r = (v - theta2) * int(v > theta2) : 1  # T4-like rectified output max(v − θ₂, 0)
theta2 : 1 (shared, constant)      # layer-2 threshold θ₂ (replaceable per run)
"""

LAYER2_SYNAPSE = """
w : 1 (linked)                    # ψ⁽²⁾[chan, k], linked to the layer-2 kernel
k_idx : integer (constant)
v_post = w * y_pre : 1 (summed)
"""

# ----------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------
@dataclass
class ReSUParams:
    """Sizes and thresholds of the two-layer network (filters are given to the builder)."""

    dt: Quantity = field(default_factory=lambda: 10 * ms)  # one sample
    m1: int = 30  # layer-1 past length
    m2: int = 10  # layer-2 past length
    theta1: float = 0.0  # layer-1 rectification threshold
    theta2: float = 0.0  # layer-2 (T4) threshold

    def validate(self):
        if self.m1 < 1 or self.m2 < 1:
            raise ValueError(f"m1 and m2 must be >= 1 (got {self.m1}, {self.m2})")
        if float(self.dt) <= 0:
            raise ValueError(f"dt must be positive, got {self.dt}")


def _link_shared(syn, kernel, index):
    """Real weight sharing: syn.w reads and writes kernel.w[index] (DESIGN.md, linked_var)."""
    syn.k_idx = np.asarray(index, dtype=np.int64)
    syn.w = linked_var(kernel, "w", index="k_idx")


class ReSUNetwork:
    """Layer-1 ReSUs on ``n_pix`` pixels and (optionally) T4-like layer-2 units on pixel triples.

    ``psi1``: (n_filters, m1) layer-1 filters (row 0 = ψ1, L3-like; row 1 = ψ2, L1/L2-like);
    ``psi2``: (6·m2,) layer-2 filter in the channel-major layout of analysis/cca (channels: L1 of pixels
    a, b, c, then L3 of a, b, c); ``triples``: (n_t4, 3) pixel indices of each T4 unit (None: no layer 2).
    One build, many runs: :meth:`run` takes a stimulus (n_steps, n_pix) and optional new filters.
    """

    def __init__(self, p: ReSUParams, session: Session, n_pix: int, n_steps: int, psi1, psi2=None,
                 triples=None, monitor_layer1: bool = True, name: str = "resu"):
        p.validate()
        self.p, self.session, self.n_pix, self.n_steps = p, session, int(n_pix), int(n_steps)
        self.psi1 = np.atleast_2d(np.asarray(psi1, dtype=float))
        self.n_filt = self.psi1.shape[0]
        if self.psi1.shape[1] != p.m1:
            raise ValueError(f"layer-1 filters have length {self.psi1.shape[1]}, expected m1={p.m1}")
        self.triples = None if triples is None else np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        if self.triples is not None:
            if self.n_filt < 2:
                raise ValueError("layer 2 needs two layer-1 filters (ψ1 for L3, ψ2 for L1)")
            if self.triples.min() < 0 or self.triples.max() >= n_pix:
                raise ValueError(f"pixel triples out of range [0, {n_pix})")
            self.psi2 = np.asarray(psi2, dtype=float).ravel()
            if self.psi2.size != 6 * p.m2:
                raise ValueError(f"layer-2 filter has {self.psi2.size} values, expected 6·m2 = {6 * p.m2}")
        self._build(name, monitor_layer1)

    def _build(self, name, monitor_layer1):
        p, P, m1 = self.p, self.n_pix, self.p.m1
        F = self.n_filt
        clock = Clock(p.dt, name=f"{name}_clock")
        self.stim = TimedArray(np.zeros((self.n_steps, P)), dt=p.dt, name=f"{name}_stim")
        ns = {"stim": self.stim, "dt_in": p.dt, "theta1": p.theta1}
        self.delay = NeuronGroup(P * m1, INPUT_DELAY_LINE, clock=clock, namespace=ns, name=f"{name}_delay")
        self.delay.pixel = np.repeat(np.arange(P), m1)
        self.delay.lag = np.tile(np.arange(m1), P)
        self.kernel1 = NeuronGroup(F * m1, FILTER_KERNEL, clock=clock, name=f"{name}_kernel1")
        self.kernel1.w = self.psi1.ravel()
        self.layer1 = NeuronGroup(P * F, RESU_LAYER1_NEURON, clock=clock, namespace=ns, name=f"{name}_layer1")
        self.layer1.pixel = np.repeat(np.arange(P), F)
        self.layer1.filt = np.tile(np.arange(F), P)
        # synapse (pixel, f, k): delay neuron pixel·m1 + k → layer-1 unit pixel·F + f; sorted by pre
        pix, k, f = np.meshgrid(np.arange(P), np.arange(m1), np.arange(F), indexing="ij")
        self.syn1 = Synapses(self.delay, self.layer1, LAYER1_SYNAPSE, clock=clock, namespace=ns,
                             name=f"{name}_syn1")
        self.syn1.connect(i=(pix * m1 + k).ravel(), j=(pix * F + f).ravel())
        _link_shared(self.syn1, self.kernel1, (f * m1 + k).ravel())
        self.syn1.summed_updaters["u_post"].order = 0
        objs = [self.delay, self.kernel1, self.layer1, self.syn1]
        if monitor_layer1:
            self.mon1 = StateMonitor(self.layer1, ["u"], record=True, clock=clock, when="end",
                                     name=f"{name}_mon1")
            objs.append(self.mon1)
        if self.triples is not None:
            objs += self._build_layer2(name, clock, ns)
        self.net = Network(*objs)
        self.session.build(self.net, self.n_steps * p.dt)

    def _build_layer2(self, name, clock, ns):
        m2, F = self.p.m2, self.n_filt
        U = len(self.triples)
        n_taps = U * 6 * m2
        self.taps = NeuronGroup(n_taps, LAYER2_TAP, clock=clock, name=f"{name}_taps")
        unit, chan, lag = np.meshgrid(np.arange(U), np.arange(6), np.arange(m2), indexing="ij")
        self.taps.unit, self.taps.chan, self.taps.lag = unit.ravel(), chan.ravel(), lag.ravel()
        tap_index = (unit * 6 * m2 + chan * m2 + lag)
        # layer-1 → tap 0 of each channel
        src_pix = self.triples[unit[:, :, 0], chan[:, :, 0] % 3]  # (U, 6)
        src_filt = np.where(chan[:, :, 0] < 3, 1, 0)  # L1 ← ψ2 (ON), L3 ← ψ1 (linear)
        pre = (src_pix * F + src_filt).ravel()
        post = tap_index[:, :, 0].ravel()
        order = np.argsort(pre, kind="stable")
        self.to_taps = Synapses(self.layer1, self.taps, LAYER1_TO_TAP, clock=clock, namespace=ns,
                                name=f"{name}_to_taps")
        self.to_taps.connect(i=pre[order], j=post[order])
        self.to_taps.use_on = (chan[:, :, 0].ravel()[order] < 3).astype(float)
        chain = []
        if m2 > 1:  # with one tap (no lags) there is nothing to shift: y_in1 stays 0
            self.chain = Synapses(self.taps, self.taps, TAP_CHAIN, clock=clock, name=f"{name}_chain")
            self.chain.connect(i=tap_index[:, :, :-1].ravel(), j=tap_index[:, :, 1:].ravel())
            self.chain.summed_updaters["y_in1_post"].order = 2
            chain = [self.chain]
        self.shift = self.taps.run_regularly(LAYER2_SHIFT, when="groups", order=3, name=f"{name}_shift")
        self.kernel2 = NeuronGroup(6 * m2, FILTER_KERNEL, clock=clock, name=f"{name}_kernel2")
        self.kernel2.w = self.psi2
        self.t4 = NeuronGroup(U, RESU_T4_NEURON, clock=clock, namespace=ns, name=f"{name}_t4")
        self.t4.theta2 = self.p.theta2
        self.syn2 = Synapses(self.taps, self.t4, LAYER2_SYNAPSE, clock=clock, namespace=ns, name=f"{name}_syn2")
        self.syn2.connect(i=tap_index.ravel(), j=unit.ravel())
        _link_shared(self.syn2, self.kernel2, (chan * m2 + lag).ravel())
        # per step: layer-1 sums (0) → tap inputs (1, 2) → shift (3) → layer-2 sum (4)
        self.to_taps.summed_updaters["y_in0_post"].order = 1
        self.syn2.summed_updaters["v_post"].order = 4
        self.mon2 = StateMonitor(self.t4, ["v", "r"], record=True, clock=clock, when="end", name=f"{name}_mon2")
        return [self.taps, self.to_taps, *chain, self.shift, self.kernel2, self.t4, self.syn2, self.mon2]

    # -- running --------------------------------------------------------------------------
    def run(self, stimulus, psi1=None, psi2=None, theta2: float | None = None, seed: int | None = None) -> dict:
        """One run on ``stimulus`` (n_steps, n_pix); returns u (n_steps, n_pix, F) and, with layer 2,
        v (n_steps, n_t4) and r = max(v − θ₂, 0) (θ₂ from the parameters unless given)."""
        s = np.asarray(stimulus, dtype=float)
        if s.shape != (self.n_steps, self.n_pix):
            raise ValueError(f"stimulus of shape {s.shape}, expected {(self.n_steps, self.n_pix)}")
        args = {self.stim: s}
        if psi1 is not None:
            psi1 = np.asarray(psi1, dtype=float)
            if psi1.shape != self.psi1.shape:
                raise ValueError(f"psi1 of shape {psi1.shape}, expected {self.psi1.shape}")
            args[self.kernel1.w] = psi1.ravel()
        if psi2 is not None:
            if self.triples is None:
                raise ValueError("this network has no layer 2")
            psi2 = np.asarray(psi2, dtype=float).ravel()
            if psi2.size != self.psi2.size:
                raise ValueError(f"psi2 has {psi2.size} values, expected {self.psi2.size}")
            args[self.kernel2.w] = psi2
        if theta2 is not None:
            if self.triples is None:
                raise ValueError("this network has no layer 2")
            args[self.t4.theta2] = float(theta2)
        self.session.run(args, seed=seed)
        out = {}
        if hasattr(self, "mon1"):
            out["u"] = np.asarray(self.mon1.u[:]).T.reshape(self.n_steps, self.n_pix, self.n_filt)
        if self.triples is not None:
            v = np.asarray(self.mon2.v[:]).T
            out["v"] = v
            out["r"] = np.asarray(self.mon2.r[:]).T
        return out


def layer1_reference(stimulus, psi1, theta1: float = 0.0) -> dict:
    """What the Brian2 layer 1 computes, in numpy (same delay-line start: the first sample repeated)."""
    s = np.asarray(stimulus, dtype=float)
    psi1 = np.atleast_2d(psi1)
    m = psi1.shape[1]
    padded = np.concatenate([np.repeat(s[:1], m - 1, axis=0), s])
    W = np.lib.stride_tricks.sliding_window_view(padded, m, axis=0)[..., ::-1]  # (T, P, m), lag order
    u = np.einsum("tpk,fk->tpf", W, psi1)
    return {"u": u, "on": np.maximum(u - theta1, 0), "off": np.maximum(-u - theta1, 0)}


def layer2_inputs(u, triples, theta1: float = 0.0) -> np.ndarray:
    """The 6 channels of each T4 unit from layer-1 projections u (T, P, F): (U, T, 6)
    = [ON(ψ2) of pixels a, b, c, ψ1 of pixels a, b, c]."""
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    on = np.maximum(u[:, :, 1] - theta1, 0.0)
    lin = u[:, :, 0]
    return np.stack([np.concatenate([on[:, t], lin[:, t]], axis=1) for t in triples])


def layer2_reference(u, triples, psi2, m2: int, theta1: float = 0.0, theta2: float = 0.0) -> np.ndarray:
    """T4 projections v (T, U) in numpy, with the layer-2 shift register starting at zero."""
    X = layer2_inputs(u, triples, theta1)  # (U, T, 6)
    psi2 = np.asarray(psi2, dtype=float).reshape(6, m2)
    U, _T, _ = X.shape
    padded = np.concatenate([np.zeros((U, m2 - 1, 6)), X], axis=1)
    W = np.lib.stride_tricks.sliding_window_view(padded, m2, axis=1)[..., ::-1]  # (U, T, 6, m2)
    return np.einsum("utck,ck->tu", W, psi2)
