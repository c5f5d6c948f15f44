"""Convolutional LCA layer with shared kernels (Brian2 rate equations).

Kim E, Hannan D, Kenyon G (2018), "Deep Sparse Coding for Invariant Multimodal Halle Berry Neurons",
CVPR 2018, arXiv:1711.07998 (the vision layers of the paper are convolutional sparse coding layers).
LCA: Rozell CJ, Johnson DH, Baraniuk RG, Olshausen BA (2008), "Sparse coding via thresholding and local
competition in neural circuits", Neural Computation 20(10):2526–2563,
https://doi.org/10.1162/neco.2008.03-07-486.

A convolutional dictionary has M kernels Φ_m of size C×K×K applied with stride s.  The input x (C, H, W)
is zero-padded by ``pad`` on each side to (C, Hp, Wp); the code a has one unit per kernel and output
position, (M, Ho, Wo) with Ho = (Hp − K)//s + 1.  The reconstruction is the transposed (strided)
convolution of the code, Φ*a = Σ_{m,y,x} a_{m,y,x} Φ_m placed at (s·y, s·x), and the layer minimises
½‖x − Φ*a‖² + λ‖a‖₁ (a ≥ 0) on the padded grid, exactly the dense LCA (models/lca.py) with the unrolled
dictionary matrix D whose columns are the placed kernels (:func:`unrolled_dictionary`):

    τ du/dt = −u + Φᵀ E + a,    E = x − Φ*a,    a = max(u − λ, 0)

where Φᵀ E is the strided correlation of the residual with every kernel.

Weights are shared, not copied: one kernel group holds Φ and every synapse reads and writes its
coefficients through ``linked_var(kernel_group, ..., index='k_idx')``.  Index conventions (row-major):
padded input position (y, x) → ``y*Wp + x`` (channel c of the stimulus: ``c*Hp*Wp + y*Wp + x``); code
(m, y, x) → ``(m*Ho + y)*Wo + x``; kernel position (m, dy, dx) → ``(m*K + dy)*K + dx``.

Two forms of the same dynamics (``ConvLCAParams.form``):

* ``residual`` (default; learning possible): a residual population ``{name}_E`` with one neuron per
  padded position holding E and Φ*a of all C channels; the kernel group ``{name}_phi_kernel`` has one
  neuron per kernel position (m, dy, dx) with the C coefficients ``w_0 … w_{C−1}``; one dictionary
  synapse per (code unit, dy, dx) carries the C channels.  Every step the active code units (custom event
  ``active``: a > 0) add a·Φ_m to ``recon`` (event-driven transposed convolution: only active units
  cost anything), E = x − Φ*a is stored once, and Φᵀ E is a summed variable (the dense part,
  M·Ho·Wo·K² synapses with C terms each) over a second synapse group E → A (``{name}_phiT``, same
  kernel group) ordered kernel-position-major (``drive_layout='kernel_major'``) or over the dictionary
  synapses themselves (``'code_major'``).
* ``gram`` (frozen dictionary): lateral inhibition through the Gram operator ΦᵀΦ − I, which for a
  strided conv dictionary is itself a convolution between code maps with a (2r+1)×(2r+1) kernel,
  r = (K − 1)//s, for all M×M pairs of maps (``{name}_gram_kernel``, :func:`gram_kernel`); Φᵀx is
  loaded once per presentation by an input event (one extra step per presentation in which u stays 0),
  and only active units propagate, ``inh_post += G·a_pre``.  Per step this costs (active units)·M·(2r+1)²
  synaptic events against M·Ho·Wo·K² summed synapses (C terms) + (active units)·K² events for the
  residual form.

Measured choice (``benchmarks/bench_lca.py``, ``benchmarks/results/lca.json``; cpp_standalone on the
shared 2-core machine at load average 1–8, so wall times vary; CPU seconds of the binary vary less).
Reference configuration, 64 kernels 7×7 stride 2 on 64×64×3 padded by 3 (code 64×32×32 = 65,536 units),
λ = 0.1 (6% of the units active at the end), 400 iterations:

* Φᵀ E over one synapse per (code unit, c, dy, dx) (9.63 M synapses, one term each): 90 ms per
  iteration (wall, load 4–6) summed over the dictionary synapses (sorted by code unit), 70 ms over a second group sorted
  by kernel coefficient (consecutive writes go to different code units instead of one accumulator);
* the layout built here, one synapse per (code unit, dy, dx) carrying the 3 channels (3.21 M synapses,
  kernel-major second group for Φᵀ E): 18.8 ms per iteration, 0.133 images/s wall at load 1.4–2.9
  (0.19 images per CPU second; 0.087 images/s at load 7–8), two images per run;
* one synapse per (code unit, dy) carrying a whole kernel row (3·7 terms, from a population of row
  patches; 459 k synapses for Φᵀ E): the same CPU time per image measured back to back (5.85–5.91 s
  against 5.80–6.38 s) with a 4× longer build, so not kept;
* the Gram form needs 184 M synapses at this size (up to 3136 per code unit, 19× the unpacked
  dictionary), so it is compared at 3×32×32 (``conv_forms_small``, 41 M Gram synapses): per CPU second
  5.2× slower than the residual form at 6% activity (λ = 0.1) and 1.9× slower at 1.3% (λ = 0.2) —
  event propagation costs more per synapse than a summed loop, and the inhibitory fan-out
  M·(2r+1)² = 3136 per unit exceeds the residual's 2·C·K² = 294.  At the same size the kernel-major
  group for Φᵀ E gave 1.3–1.5× more images per CPU second than summing over the dictionary synapses
  (``drive_layout='code_major'``).

Engines (``ConvLCAParams.engine``, :func:`models.lca.resolve_engine`; residual form).  ``'synapses'``: the
layout above.  ``'kernel'`` (the default on ``cpp``): two functions per step replace the synapse loops at the
same places in the schedule — Φ*a over the active units only, in increasing code order (the order of
additions of the event-driven synapses; :data:`CONV_LCA_RECON_KERNEL_CPP`), and Φᵀ E as a direct strided
correlation that reads S×S phase planes of the stored residual contiguously and accumulates 4 kernels × 8
output columns in registers (:data:`CONV_LCA_DRIVE_KERNEL_CPP`); both read the kernel group's coefficients,
so the weights stay shared, and the dictionary synapses are built only for learning (``plastic``).
Numpy implementations alongside (``conv_transpose``, ``conv_correlate``) serve the equivalence tests.
Measured at the reference configuration below (``benchmarks/bench_lca.py --what conv_engines --threads 0 1
2``, ``benchmarks/results/bench_lca.json``, ``conv_reference_engines``; cpp, two images per run, medians of
3 runs, both engines in the same run, load average 6–8 on the shared 2 cores): synapses engine 0.10 images/s
(0.24 per CPU second), kernel engine 1.15 images/s (2.8 per CPU second; 11× the synapses engine, codes
equal to the numpy reference within 2.5e-16), 4.7 G multiply-adds/s against 9.9 G for numpy's float64 and
21 G for its float32 GEMM measured in the same run (one thread); with OpenMP 1 thread 0.89 images/s and 2
threads 0.16 (the second thread competes with the other loads), so the default stays without OpenMP.
Profile of the kernel engine (Brian2 ``profile=True``, same configuration): Φᵀ E 62–66 %, Φ*a 28–34 %
(scattered adds of overlapping patches), the update of u and the rest ≤ 6 %.  float32 arithmetic in Φᵀ E
was tried: codes within 6e-8 of float64, but 1.2–3.3× slower as compiled here (GCC 12), so not kept.

Dictionary learning (``plastic=True``, residual form): at the last step of every presentation the
active code units emit a ``learn`` event and every one of their dictionary synapses adds η·a_pre·E_post
to its shared coefficients (each channel), i.e. ΔΦ_m = η Σ_positions a_(m,y,x) E[patch(y, x)] (the
Hebbian code × residual rule summed over the positions of the kernel); in the same step the squared norm
of every kernel is summed (kernel group → one neuron per kernel → back) and the kernels are divided by
their norm (per-kernel normalisation, custom event ``norm`` of the kernel group).

In a hierarchy (models/lca.py, ``LayerSpec(kind='conv')``) the same objects are built by
:func:`build_residual_conv` with :data:`CONV_LCA_FEEDBACK_NEURON` (the du/dt also receives the top-down
term −g (u − Φ_{N+1} a_{N+1}) of the layer above) and always plastic (η = 0 in a run freezes them).
Settings whose kernels leave the last input rows or columns uncoded (stride that does not tile the
padded input) are refused by :meth:`ConvLCAParams.validate`.

Deliberate deviations and choices:

* the residual is defined on the zero-padded grid (the padding must be reconstructed as zero), so the
  unrolled dictionary has unit-norm columns and the Gram operator is an exact convolution also at the
  border (a convolutional LCA that pads the input behaves the same way);
* plain Euler integration with dt/τ = ``dt / tau`` as in models/lca.py;
* learning is applied once per presentation with the code at its last iteration (as models/lca.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import Clock, EventMonitor, Network, NeuronGroup, Quantity, Synapses, TimedArray, linked_var, ms

from b2models.backend import Session
from b2models.models.lca import (
    check_engine,
    check_iterations,
    cpp_array,
    cpp_standalone_active,
    kernel_holder,
    resolve_engine,
)

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
#: code units, residual form (one per kernel and output position)
CONV_LCA_NEURON = """
du/dt = (-u + drive + a) / tau : 1        # τ du/dt = −u + Φᵀ(x − Φ*a) + a
a = (u - lam) * int(u > lam) : 1          # a = T_λ(u) = max(u − λ, 0), the code
drive : 1                                 # (Φᵀ E)_(m,y,x): strided correlation of E with Φ_m (summed)
lam : 1 (shared, constant)                # λ, the threshold (sparsity penalty)
tau : second (shared, constant)           # τ, time constant of u
"""

#: code units inside a hierarchy (models/lca.py): the same, plus top-down feedback (paper Eq 5)
CONV_LCA_FEEDBACK_NEURON = """
du/dt = (-u + drive + a - fb_gain * fb) / tau : 1  # τ du/dt = −u + Φᵀ(x − Φ*a) + a − g (u − Φ_{N+1} a_{N+1})
a = (u - lam) * int(u > lam) : 1          # a = T_λ(u) = max(u − λ, 0), the code
drive : 1                                 # (Φᵀ E)_(m,y,x): strided correlation of E with Φ_m (summed)
fb : 1                                    # E_{N+1} of this unit: u − Φ_{N+1} a_{N+1} (summed, one-to-one)
lam : 1 (shared, constant)                # λ, the threshold (sparsity penalty)
fb_gain : 1 (shared, constant)            # g: 1 = top-down feedback on, 0 = off
tau : second (shared, constant)           # τ, time constant of u
"""

# The residual form carries the C input channels inside each synapse: one residual neuron per padded
# spatial position (y, x) holds E and Φ*a of every channel, one dictionary synapse per (code unit, dy, dx)
# holds the C coefficients Φ_m[:, dy, dx].  Per-channel lines are written once with the placeholder
# ``<c>`` and repeated for c = 0 … C−1 (:func:`per_channel`).

#: residual population, one neuron per position of the zero-padded input grid (Hp, Wp)
CONV_LCA_RESIDUAL_CHANNEL = """
recon_<c> : 1  # (Φ*a)_(<c>,y,x): transposed convolution of the code in channel <c>, added by the active units
E_<c> : 1      # residual E_(<c>,y,x) = x − Φ*a (stored once per step, read by every dictionary synapse)
"""
#: x of the current presentation (padded grid, 0 on the padding) minus the reconstruction
CONV_LCA_RESIDUAL_UPDATE_CHANNEL = "E_<c> = {stim}(t, <c> * n_pos + i) - recon_<c>"
CONV_LCA_RECON_CLEAR_CHANNEL = "recon_<c> = 0"

#: dictionary synapses, pre = code unit (m, y, x), post = input position (s·y + dy, s·x + dx)
CONV_LCA_DICTIONARY_SYNAPSE = """
k_idx : integer (constant)  # which kernel position: (m*K + dy)*K + dx
"""
CONV_LCA_WEIGHT_CHANNEL = """
w_<c> : 1 (linked)          # Φ_m[<c>, dy, dx], shared: linked to the kernel group
"""
#: Φᵀ E summed over the dictionary synapses themselves (``drive_layout='code_major'``)
CONV_LCA_DRIVE_ON_DICTIONARY = """
drive_pre = {terms} : 1 (summed)  # (Φᵀ E)_(m,y,x) = Σ_(c,dy,dx) Φ_m[c, dy, dx] E_(c, s·y+dy, s·x+dx)
"""
CONV_LCA_DRIVE_TERM_POST = "w_<c> * E_<c>_post"
#: Φᵀ E over a second group E → A ordered by kernel position (``drive_layout='kernel_major'``)
CONV_LCA_DRIVE_SYNAPSE = """
k_idx : integer (constant)         # (m*K + dy)*K + dx  (pre = input position, post = code unit (m, y, x))
drive_post = {terms} : 1 (summed)  # (Φᵀ E)_(m,y,x)
"""
CONV_LCA_DRIVE_TERM_PRE = "w_<c> * E_<c>_pre"
#: event ``active`` (a > 0): the unit adds a·Φ_m to the reconstruction
CONV_LCA_RECON_ON_PRE_CHANNEL = "recon_<c>_post += w_<c> * a_pre"
#: Hebbian dictionary rule, ΔΦ_m = η a_(m,y,x) E[patch]; summed over positions through the shared weights
CONV_LCA_LEARNING_ON_PRE_CHANNEL = "w_<c> += eta * a_pre * E_<c>_post"
CONV_LCA_LEARNING_RATE = """
eta : 1 (shared, constant)  # η, the dictionary learning rate
"""

#: the shared kernels: one neuron per kernel position (m, dy, dx), one variable per channel
CONV_LCA_KERNEL = """
n2 : 1      # ‖Φ_m‖² of the kernel this position belongs to (summed, broadcast back)
"""
CONV_LCA_KERNEL_CHANNEL = """
w_<c> : 1   # kernel coefficient Φ_m[<c>, dy, dx]
"""
CONV_LCA_KERNEL_NORM = """
n2 : 1      # ‖Φ_m‖² = Σ_(c,dy,dx) Φ_m[c, dy, dx]² (summed)
"""
CONV_LCA_NORM_SYNAPSE = """
n2_post = {terms} : 1 (summed)  # ‖Φ_m‖²
"""
CONV_LCA_NORM_TERM = "w_<c>_pre**2"
CONV_LCA_NORM_BROADCAST = """
n2_post = n2_pre : 1 (summed)    # every kernel position reads its kernel's squared norm
"""
#: per-kernel normalisation after the Hebbian update
CONV_LCA_NORMALISE_CHANNEL = "w_<c> = w_<c> / sqrt(n2)"

#: code units, Gram form: lateral inhibition (ΦᵀΦ − I) a, feedforward Φᵀx once per presentation
CONV_LCA_GRAM_NEURON = """
du/dt = (-u + b - inh) / tau : 1          # τ du/dt = −u + Φᵀx − (ΦᵀΦ − I) a
a = (u - lam) * int(u > lam) : 1          # a = T_λ(u)
b : 1                                     # (Φᵀx)_{m,y,x}, loaded at the first step of a presentation
inh : 1                                   # ((ΦᵀΦ − I) a)_{m,y,x}, added by the active units each step
lam : 1 (shared, constant)                # λ
tau : second (shared, constant)           # τ
"""
CONV_LCA_FLAT_KERNEL = """
w : 1       # one coefficient: Φ_m[c, dy, dx] (feedforward) or G[m, m', Δy, Δx] (inhibition)
"""
CONV_LCA_GRAM_INPUT = """
x = {stim}(t, i) : 1  # padded input of the current presentation
"""
CONV_LCA_FEEDFORWARD_SYNAPSE = """
w : 1 (linked)              # Φ_m[c, dy, dx] (pre = input (c, s·y + dy, s·x + dx), post = code (m, y, x))
k_idx : integer (constant)  # ((m*C + c)*K + dy)*K + dx
"""
CONV_LCA_FEEDFORWARD_ON_PRE = "b_post += w * x_pre"
CONV_LCA_GRAM_SYNAPSE = """
w : 1 (linked)              # G[m, m', Δy, Δx] = <Φ_m at (0, 0), Φ_m' at (sΔy, sΔx)>, self term removed
k_idx : integer (constant)  # ((m*M + m')*(2r+1) + Δy + r)*(2r+1) + Δx + r
"""
CONV_LCA_GRAM_ON_PRE = "inh_post += w * a_pre"

#: events and resets (``n_steps`` steps per presentation)
CONV_LCA_ACTIVE_EVENT = "a > 0"
CONV_LCA_DONE_EVENT = "timestep(t, dt) % n_steps == n_steps - 1"
CONV_LCA_LEARN_EVENT = "timestep(t, dt) % n_steps == n_steps - 1 and a > 0"
CONV_LCA_PRESENT_EVENT = "timestep(t, dt) % n_steps == 0"
CONV_LCA_RESET = "u = 0"
CONV_LCA_GRAM_RESET = "u = 0\nb = 0\ninh = 0"
CONV_LCA_INH_CLEAR = "inh = 0"

#: kernel engine (models.lca.resolve_engine), C++: the reconstruction Φ*a, summed over the active units only
#: in increasing code order (the order of additions of the event-driven synapses: every input position gets
#: its terms in the same order), after the update of u; one contiguous kernel row per (channel, dy)
CONV_LCA_RECON_KERNEL_CPP = """
double {fn}(const double t)
{{
    const int C = {C}, NPOS = {NPOS}, NCODE = {NCODE}, HWo = {HWo}, Wo = {Wo}, Wp = {Wp}, K = {K}, S = {S};
    const double* const u = {u};
    const double lam = {lam}[0];
    double* const recon[{C}] = {{ {recon} }};
    const double* const w[{C}] = {{ {w} }};
    for (int c = 0; c < C; c++)
        for (int n = 0; n < NPOS; n++) recon[c][n] = 0.0;
    for (int idx = 0; idx < NCODE; idx++)
    {{
        if (!(u[idx] > lam)) continue;
        const double a = u[idx] - lam;
        const int m = idx / HWo, y = (idx % HWo) / Wo, x = idx % Wo;
        const int base = S * y * Wp + S * x, kb = m * K * K;
        for (int c = 0; c < C; c++)
            for (int dy = 0; dy < K; dy++)
            {{
                double* const r = recon[c] + base + dy * Wp;
                const double* const wr = w[c] + kb + dy * K;
                for (int dx = 0; dx < K; dx++) r[dx] += wr[dx] * a;
            }}
    }}
    return 0.0;
}}
"""
#: kernel engine, C++: Φᵀ E, the strided correlation of the stored residual with every kernel.  The residual
#: is split into S×S phase planes (E[c, S·Y + py, S·X + px] at plane (c, py, px), row Y, column X) so that
#: every kernel coefficient meets a contiguous row; 4 kernels × 8 output columns are accumulated in registers
#: over all C·K·K coefficients (weights repacked coefficient-major, zero-padded to 4 kernels)
CONV_LCA_DRIVE_KERNEL_CPP = """
double {fn}(const double t)
{{
    const int C = {C}, Hp = {Hp}, Wp = {Wp}, M = {M}, Ho = {Ho}, Wo = {Wo}, K = {K}, S = {S};
    const int Hq = {Hq}, Wq = {Wq}, M4 = {M4};
    const double* const E[{C}] = {{ {E} }};
    const double* const w[{C}] = {{ {w} }};
    double* const drive = {drive};
    typedef double real_t;
    static real_t planes[{NPLANE}];
    static real_t wt[{NW}];
    for (int c = 0; c < C; c++)
        for (int py = 0; py < S; py++)
            for (int px = 0; px < S; px++)
                for (int Y = 0; Y < Hq; Y++)
                {{
                    real_t* const row = planes + (((c * S + py) * S + px) * Hq + Y) * Wq;
                    const int yy = S * Y + py;
                    for (int X = 0; X < Wq; X++)
                    {{
                        const int xx = S * X + px;
                        row[X] = (yy < Hp && xx < Wp) ? (real_t)E[c][yy * Wp + xx] : (real_t)0;
                    }}
                }}
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K * K; k++)
            for (int m = 0; m < M4; m++) wt[(c * K * K + k) * M4 + m] = m < M ? (real_t)w[c][m * K * K + k] : 0;
    #ifdef _OPENMP
    #pragma omp parallel for schedule(static)
    #endif
    for (int mb = 0; mb < M4; mb += 4)
        for (int y = 0; y < Ho; y++)
            for (int xb = 0; xb < Wo; xb += {XB})
            {{
                real_t acc[4][{XB}] = {{{{0}}}};
                for (int c = 0; c < C; c++)
                    for (int dy = 0; dy < K; dy++)
                        for (int dx = 0; dx < K; dx++)
                        {{
                            const real_t* const p = planes + (((c * S + dy % S) * S + dx % S) * Hq + y + dy / S) * Wq
                                                    + xb + dx / S;
                            const real_t* const wk = wt + ((c * K + dy) * K + dx) * M4 + mb;
                            for (int j = 0; j < 4; j++)
                                for (int i = 0; i < {XB}; i++) acc[j][i] += wk[j] * p[i];
                        }}
                for (int j = 0; j < 4 && mb + j < M; j++)
                    for (int i = 0; i < {XB} && xb + i < Wo; i++) drive[((mb + j) * Ho + y) * Wo + xb + i] = acc[j][i];
            }}
    return 0.0;
}}
"""

FORMS = ("residual", "gram")
DRIVE_LAYOUTS = ("kernel_major", "code_major")


# ----------------------------------------------------------------------------------------
# parameters and geometry
# ----------------------------------------------------------------------------------------
@dataclass
class ConvLCAParams:
    """One convolutional LCA layer (defaults: the benchmark's reference configuration)."""

    in_shape: tuple = (3, 64, 64)  # input (C, H, W)
    n_kernels: int = 64  # M
    kernel_size: int = 7  # K
    stride: int = 2  # s
    pad: int = 3  # zero padding on each side
    lam: float = 0.1  # λ
    tau: Quantity = field(default_factory=lambda: 10 * ms)  # τ of u
    dt: Quantity = field(default_factory=lambda: 1 * ms)  # Euler step (dt/τ = 0.1)
    n_iter: int = 400  # LCA iterations per presentation
    eta: float = 0.01  # dictionary learning rate η (per presentation)
    form: str = "residual"  # 'residual' or 'gram' (see the module docstring)
    drive_layout: str = "kernel_major"  # residual form: Φᵀ E over 'kernel_major' or 'code_major' synapses
    engine: str = "auto"  # residual form: 'synapses', 'kernel' or 'auto' (models.lca.resolve_engine)

    def validate(self):
        if len(tuple(self.in_shape)) != 3 or min(int(v) for v in self.in_shape) < 1:
            raise ValueError(f"in_shape={self.in_shape} must be (C, H, W) with positive sizes")
        for name in ("n_kernels", "kernel_size", "stride"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.pad < 0:
            raise ValueError(f"pad={self.pad} must be >= 0")
        _, Hp, Wp = self.padded_shape
        if self.kernel_size > min(Hp, Wp):
            raise ValueError(f"kernel_size={self.kernel_size} is larger than the padded input {Hp}×{Wp}")
        if self.stride > self.kernel_size:
            raise ValueError(f"stride={self.stride} > kernel_size={self.kernel_size} leaves input pixels uncoded")
        _, Ho, Wo = self.out_shape
        C, H, W = (int(v) for v in self.in_shape)
        reach = (self.stride * (Ho - 1) + self.kernel_size, self.stride * (Wo - 1) + self.kernel_size)
        if reach[0] < self.pad + H or reach[1] < self.pad + W:
            raise ValueError(f"stride={self.stride} does not tile the input: with kernel_size={self.kernel_size} "
                             f"and pad={self.pad} the kernels reach {reach[0]}×{reach[1]} of the padded "
                             f"{Hp}×{Wp} grid, the last input rows/columns stay uncoded (choose stride, "
                             f"kernel_size and pad with (H + 2·pad − kernel_size) divisible by stride)")
        if self.lam < 0:
            raise ValueError(f"lam={self.lam} must be >= 0")
        check_iterations(self.n_iter, self.tau, self.dt, self.eta)
        if self.form not in FORMS:
            raise ValueError(f"form={self.form!r}: expected one of {FORMS}")
        if self.drive_layout not in DRIVE_LAYOUTS:
            raise ValueError(f"drive_layout={self.drive_layout!r}: expected one of {DRIVE_LAYOUTS}")
        check_engine(self.engine)

    @property
    def padded_shape(self) -> tuple[int, int, int]:
        C, H, W = (int(v) for v in self.in_shape)
        return C, H + 2 * self.pad, W + 2 * self.pad

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, Hp, Wp = self.padded_shape
        K, s = self.kernel_size, self.stride
        return self.n_kernels, (Hp - K) // s + 1, (Wp - K) // s + 1

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        return self.n_kernels, int(self.in_shape[0]), self.kernel_size, self.kernel_size

    @property
    def gram_radius(self) -> int:
        """r: code units up to r positions apart (per axis) have overlapping kernels."""
        return (self.kernel_size - 1) // self.stride

    @property
    def n_steps(self) -> int:
        """Time steps per presentation (the Gram form spends one loading Φᵀx)."""
        return self.n_iter + (1 if self.form == "gram" else 0)


def dictionary_connectivity(p: ConvLCAParams):
    """(code, input, k_idx) of every dictionary synapse, sorted by code index (m, y, x)."""
    M, Ho, Wo = p.out_shape
    C, Hp, Wp = p.padded_shape
    K, s = p.kernel_size, p.stride
    m = np.arange(M)[:, None, None, None, None, None]
    y = np.arange(Ho)[None, :, None, None, None, None]
    x = np.arange(Wo)[None, None, :, None, None, None]
    c = np.arange(C)[None, None, None, :, None, None]
    dy = np.arange(K)[None, None, None, None, :, None]
    dx = np.arange(K)[None, None, None, None, None, :]
    shape = (M, Ho, Wo, C, K, K)
    code = np.broadcast_to((m * Ho + y) * Wo + x, shape).ravel().astype(np.int32)
    inp = np.broadcast_to((c * Hp + s * y + dy) * Wp + s * x + dx, shape).ravel().astype(np.int32)
    k_idx = np.broadcast_to(((m * C + c) * K + dy) * K + dx, shape).ravel().astype(np.int32)
    return code, inp, k_idx


def gram_connectivity(p: ConvLCAParams):
    """(pre, post, k_idx) of the Gram synapses, sorted by presynaptic code index; no self synapse."""
    M, Ho, Wo = p.out_shape
    r = p.gram_radius
    n = 2 * r + 1
    mp = np.arange(M)[:, None, None, None, None, None]  # m' (pre)
    yp = np.arange(Ho)[None, :, None, None, None, None]
    xp = np.arange(Wo)[None, None, :, None, None, None]
    oy = np.arange(-r, r + 1)[None, None, None, :, None, None]  # Δ = pre − post position
    ox = np.arange(-r, r + 1)[None, None, None, None, :, None]
    m = np.arange(M)[None, None, None, None, None, :]  # m (post)
    shape = (M, Ho, Wo, n, n, M)
    y, x = yp - oy, xp - ox
    valid = (y >= 0) & (y < Ho) & (x >= 0) & (x < Wo) & ~((oy == 0) & (ox == 0) & (m == mp))
    valid = np.broadcast_to(valid, shape)
    pre = np.broadcast_to((mp * Ho + yp) * Wo + xp, shape)[valid].astype(np.int32)
    post = np.broadcast_to((m * Ho + y) * Wo + x, shape)[valid].astype(np.int32)
    k_idx = np.broadcast_to(((m * M + mp) * n + oy + r) * n + ox + r, shape)[valid].astype(np.int32)
    return pre, post, k_idx


def gram_kernel(kernel, stride: int) -> np.ndarray:
    """G[m, m', Δy, Δx] = Σ_{c,p} Φ_m[c, p] Φ_m'[c, p − sΔ]: inner product of kernel m at the origin and
    kernel m' shifted by (sΔy, sΔx), Δ ∈ [−r, r]², r = (K − 1)//s; shape (M, M, 2r+1, 2r+1)."""
    kernel = np.asarray(kernel, dtype=float)
    M, C, K, _ = kernel.shape
    r = (K - 1) // stride
    n = 2 * r + 1
    G = np.zeros((M, M, n, n))
    flat = kernel.reshape(M, C, K, K)
    for iy, oy in enumerate(range(-r, r + 1)):
        for ix, ox in enumerate(range(-r, r + 1)):
            sy, sx = stride * oy, stride * ox
            # overlap region in the frame of kernel m: p with 0 <= p - sΔ < K
            ya, yb = max(0, sy), min(K, K + sy)
            xa, xb = max(0, sx), min(K, K + sx)
            if ya >= yb or xa >= xb:
                continue
            A = flat[:, :, ya:yb, xa:xb].reshape(M, -1)
            B = flat[:, :, ya - sy:yb - sy, xa - sx:xb - sx].reshape(M, -1)
            G[:, :, iy, ix] = A @ B.T
    return G


def unrolled_dictionary(kernel, p: ConvLCAParams) -> np.ndarray:
    """The explicit dictionary matrix D (C·Hp·Wp × M·Ho·Wo) of a conv dictionary: column (m, y, x) is
    kernel m placed at (s·y, s·x) on the padded grid."""
    kernel = np.asarray(kernel, dtype=float)
    if kernel.shape != p.kernel_shape:
        raise ValueError(f"kernel of shape {kernel.shape}, expected {p.kernel_shape}")
    code, inp, k_idx = dictionary_connectivity(p)
    C, Hp, Wp = p.padded_shape
    D = np.zeros((C * Hp * Wp, int(np.prod(p.out_shape))))
    D[inp, code] = kernel.ravel()[k_idx]
    return D


def normalise_kernels(kernel) -> np.ndarray:
    """Each kernel Φ_m scaled to unit norm."""
    kernel = np.asarray(kernel, dtype=float)
    n = np.sqrt(np.sum(kernel**2, axis=(1, 2, 3), keepdims=True))
    return kernel / np.maximum(n, 1e-12)


def random_kernels(p: ConvLCAParams, rng: np.random.Generator) -> np.ndarray:
    """Gaussian kernels (M, C, K, K) with unit norm."""
    return normalise_kernels(rng.standard_normal(p.kernel_shape))


def pad_input(x, p: ConvLCAParams) -> np.ndarray:
    """Inputs (P, C, H, W) → zero-padded (P, C, Hp, Wp)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(int(v) for v in p.in_shape):
        raise ValueError(f"input of shape {x.shape}, expected (n, {', '.join(str(int(v)) for v in p.in_shape)})")
    q = p.pad
    return np.pad(x, ((0, 0), (0, 0), (q, q), (q, q)))


def conv_correlate(xp, kernel, stride: int) -> np.ndarray:
    """Φᵀx: strided correlation of padded inputs (P, C, Hp, Wp) with kernels (M, C, K, K) → (P, M, Ho, Wo)."""
    M, C, K, _ = kernel.shape
    P, _, Hp, Wp = xp.shape
    Ho, Wo = (Hp - K) // stride + 1, (Wp - K) // stride + 1
    out = np.zeros((P, M, Ho, Wo))
    for dy in range(K):
        for dx in range(K):
            patch = xp[:, :, dy:dy + stride * (Ho - 1) + 1:stride, dx:dx + stride * (Wo - 1) + 1:stride]
            out += np.einsum("pcyx,mc->pmyx", patch, kernel[:, :, dy, dx], optimize=True)
    return out


def conv_transpose(a, kernel, stride: int, padded_hw) -> np.ndarray:
    """Φ*a: transposed strided convolution of codes (P, M, Ho, Wo) → (P, C, Hp, Wp)."""
    M, C, K, _ = kernel.shape
    P, _, Ho, Wo = a.shape
    Hp, Wp = padded_hw
    out = np.zeros((P, C, Hp, Wp))
    for dy in range(K):
        for dx in range(K):
            out[:, :, dy:dy + stride * (Ho - 1) + 1:stride, dx:dx + stride * (Wo - 1) + 1:stride] += np.einsum(
                "pmyx,mc->pcyx", a, kernel[:, :, dy, dx], optimize=True)
    return out


def conv_lca_reference(x, kernel, p: ConvLCAParams, n_iter: int | None = None, return_u: bool = False):
    """The same Euler update in numpy (residual form): codes (P, M, Ho, Wo) after ``n_iter`` steps
    (and the potentials u if ``return_u``)."""
    xp = pad_input(x, p)
    kernel = np.asarray(kernel, dtype=float)
    k = float(p.dt) / float(p.tau)
    u = np.zeros((len(xp),) + p.out_shape)
    for _ in range(p.n_iter if n_iter is None else n_iter):
        a = np.maximum(u - p.lam, 0.0)
        E = xp - conv_transpose(a, kernel, p.stride, p.padded_shape[1:])
        u = u + k * (-u + conv_correlate(E, kernel, p.stride) + a)
    if return_u:
        return np.maximum(u - p.lam, 0.0), u
    return np.maximum(u - p.lam, 0.0)


def patch_kernels(x, p: ConvLCAParams, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """Kernels (M, C, K, K) started from data: patches of the padded inputs x (P, C, H, W) at random
    inputs and kernel positions of the code grid, plus a little Gaussian noise, unit norm."""
    xp = pad_input(x, p)
    M, C, K, _ = p.kernel_shape
    _, Ho, Wo = p.out_shape
    n, y, xx = rng.integers(len(xp), size=M), rng.integers(Ho, size=M), rng.integers(Wo, size=M)
    s = p.stride
    patches = np.stack([xp[n[k], :, s * y[k]:s * y[k] + K, s * xx[k]:s * xx[k] + K] for k in range(M)])
    scale = noise * np.mean(np.linalg.norm(patches.reshape(M, -1), axis=1)) / np.sqrt(C * K * K)
    return normalise_kernels(patches + max(scale, 1e-6) * rng.standard_normal(patches.shape))


# ----------------------------------------------------------------------------------------
# the Brian2 layer
# ----------------------------------------------------------------------------------------
def per_channel(template: str, n_channels: int, sep: str = "\n") -> str:
    """``template`` repeated for c = 0 … C−1 with ``<c>`` replaced by c."""
    return sep.join(template.replace("<c>", str(c)) for c in range(n_channels))


def position_connectivity(p: ConvLCAParams):
    """(code, position, k_idx) of the channel-carrying dictionary synapses, sorted by code index:
    code (m, y, x) → padded input position (s·y + dy, s·x + dx), k_idx = (m*K + dy)*K + dx."""
    M, Ho, Wo = p.out_shape
    _, Hp, Wp = p.padded_shape
    K, s = p.kernel_size, p.stride
    m = np.arange(M)[:, None, None, None, None]
    y = np.arange(Ho)[None, :, None, None, None]
    x = np.arange(Wo)[None, None, :, None, None]
    dy = np.arange(K)[None, None, None, :, None]
    dx = np.arange(K)[None, None, None, None, :]
    shape = (M, Ho, Wo, K, K)
    code = np.broadcast_to((m * Ho + y) * Wo + x, shape).ravel().astype(np.int32)
    pos = np.broadcast_to((s * y + dy) * Wp + s * x + dx, shape).ravel().astype(np.int32)
    k_idx = np.broadcast_to((m * K + dy) * K + dx, shape).ravel().astype(np.int32)
    return code, pos, k_idx


def _shared_synapses(source, target, pre, post, k_idx, model: str, kernel_group, weights, *, name: str,
                     clock, on_pre=None, on_event=None, namespace=None):
    """Synapses pre → post whose weight variables ``weights`` are the kernel group's, at index ``k_idx``
    (shared, any stride; the synapse model declares them ``(linked)`` and ``k_idx : integer (constant)``)."""
    extra = {}
    if on_pre is not None:
        extra["on_pre"] = on_pre
    if on_event is not None:
        extra["on_event"] = on_event
    syn = Synapses(source, target, model=model, clock=clock, name=name, namespace=namespace, **extra)
    syn.connect(i=pre, j=post)
    syn.k_idx = k_idx
    for var in weights:
        setattr(syn, var, linked_var(kernel_group, var, index="k_idx"))
    return syn


def build_residual_conv(p: ConvLCAParams, name: str, clock, ns: dict, stim: str, kernel, plastic: bool,
                        neuron: str = CONV_LCA_NEURON, drive_order: int = -1, engine: str = "synapses") -> dict:
    """The Brian2 objects of one residual-form conv LCA layer (shared by :class:`ConvLCALayer` and the
    hierarchy of models/lca.py): residual population ``{name}_E``, code units ``{name}_A`` (``neuron``:
    :data:`CONV_LCA_NEURON`, or :data:`CONV_LCA_FEEDBACK_NEURON` inside a hierarchy), kernel group
    ``{name}_phi_kernel`` holding ``kernel`` (M, C, K, K), dictionary synapses ``{name}_phi`` (and
    ``{name}_phiT``), the residual updates and resets and, if ``plastic``, Hebbian learning with
    per-kernel normalisation.  ``stim``: the namespace name of the 2-D TimedArray holding the padded
    input (one row per presentation, channel-major); ``ns`` must also hold ``n_steps``.
    ``engine`` (resolved, :func:`models.lca.resolve_engine`): ``'synapses'`` as described in the module
    docstring; ``'kernel'``: Φ*a and Φᵀ E are two compiled functions per step (:data:`CONV_LCA_RECON_KERNEL_CPP`,
    :data:`CONV_LCA_DRIVE_KERNEL_CPP`, numpy alongside) at the places of the event-driven synapses and of the
    summed Φᵀ E, and the dictionary synapses exist only for learning (``plastic``).
    Returns {'objects', 'A', 'E', 'S', 'KG', 'n_synapses'}."""
    C, Hp, Wp = p.padded_shape
    M, Ho, Wo = p.out_shape
    n_code = M * Ho * Wo
    T = p.n_steps * p.dt
    n_pos, n_kpos = Hp * Wp, M * p.kernel_size**2
    ns = {**ns, "n_pos": n_pos}
    n_synapses, objs = {}, []
    E = NeuronGroup(n_pos, per_channel(CONV_LCA_RESIDUAL_CHANNEL, C), clock=clock, namespace=ns,
                    name=f"{name}_E")
    kernel_engine = engine == "kernel"
    events = {"done": CONV_LCA_DONE_EVENT} if kernel_engine else {"active": CONV_LCA_ACTIVE_EVENT,
                                                                   "done": CONV_LCA_DONE_EVENT}
    if plastic:
        events["learn"] = CONV_LCA_LEARN_EVENT
    A = NeuronGroup(n_code, neuron, method="euler", clock=clock, namespace=ns, order=0,
                    events=events, name=f"{name}_A")
    KG = NeuronGroup(n_kpos, CONV_LCA_KERNEL + per_channel(CONV_LCA_KERNEL_CHANNEL, C), clock=clock,
                     namespace=ns, events={"norm": CONV_LCA_DONE_EVENT} if plastic else {},
                     name=f"{name}_phi_kernel")
    if kernel_engine:
        S, kobjs = _conv_kernels(p, name, clock, ns, A, E, KG, plastic, drive_order)
        objs += kobjs
        n_synapses["dictionary"] = int(M * Ho * Wo * p.kernel_size**2) if plastic else 0
    else:
        S = _conv_synapses(p, name, clock, ns, A, E, KG, plastic, drive_order, objs, n_synapses)
    if plastic:
        S.eta = p.eta
        S.learn.order = 2  # after the new residual of the same step
    # order within a step: Φᵀ E (groups, −1), u (groups, 0), events, then in the synapses slot
    # recon cleared (−1), Φ*a added by the active units (0), E = x − Φ*a stored (1), learning (2)
    clear_code = per_channel(CONV_LCA_RECON_CLEAR_CHANNEL, C)
    update_code = per_channel(CONV_LCA_RESIDUAL_UPDATE_CHANNEL, C).format(stim=stim)
    if not kernel_engine:  # the kernel clears recon itself
        objs.append(E.run_regularly(clear_code, when="synapses", order=-1, name=f"{name}_clear"))
    update = E.run_regularly(update_code, when="synapses", order=1, name=f"{name}_residual")
    reset_E = E.run_regularly(clear_code + "\n" + update_code, dt=T, when="start", name=f"{name}_reset_E")
    reset = A.run_regularly(CONV_LCA_RESET, dt=T, when="start", name=f"{name}_reset")
    objs += [E, A, KG, update, reset_E, reset]
    if plastic:
        KN = NeuronGroup(M, CONV_LCA_KERNEL_NORM, clock=clock, name=f"{name}_knorm")
        kk = np.arange(n_kpos)
        per_kernel = p.kernel_size**2
        Sn = Synapses(KG, KN, CONV_LCA_NORM_SYNAPSE.format(terms=per_channel(CONV_LCA_NORM_TERM, C, " + ")),
                      clock=clock, name=f"{name}_knormsyn")
        Sn.connect(i=kk, j=kk // per_kernel)
        Sb = Synapses(KN, KG, CONV_LCA_NORM_BROADCAST, clock=clock, name=f"{name}_knormbc")
        Sb.connect(i=kk // per_kernel, j=kk)
        Sn.summed_updaters["n2_post"].when = "end"
        Sn.summed_updaters["n2_post"].order = 1
        Sb.summed_updaters["n2_post"].when = "end"
        Sb.summed_updaters["n2_post"].order = 2
        KG.run_on_event("norm", per_channel(CONV_LCA_NORMALISE_CHANNEL, C), when="end", order=3)
        objs += [KN, Sn, Sb]
    kernel = np.asarray(kernel, dtype=float)
    for c in range(C):
        setattr(KG, f"w_{c}", kernel[:, c].ravel())
    return {"objects": objs, "A": A, "E": E, "S": S, "KG": KG, "n_synapses": n_synapses}


def _conv_kernels(p: ConvLCAParams, name: str, clock, ns: dict, A, E, KG, plastic: bool, drive_order: int):
    """Kernel engine of :func:`build_residual_conv`: the two kernel calls and, if ``plastic``, the learning
    synapses (the learning pathway only).  Returns (synapses or None, objects)."""
    C, Hp, Wp = p.padded_shape
    M, Ho, Wo = p.out_shape
    K, s = p.kernel_size, p.stride
    objs, S = [], None
    weights = [f"w_{c}" for c in range(C)]
    if plastic:
        code, pos, k_idx = position_connectivity(p)
        model = CONV_LCA_DICTIONARY_SYNAPSE + per_channel(CONV_LCA_WEIGHT_CHANNEL, C) + CONV_LCA_LEARNING_RATE
        S = _shared_synapses(A, E, code, pos, k_idx, model, KG, weights, name=f"{name}_phi", clock=clock,
                             on_pre={"learn": per_channel(CONV_LCA_LEARNING_ON_PRE_CHANNEL, C)},
                             on_event={"learn": "learn"}, namespace=ns)
        objs.append(S)
        del code, pos, k_idx

    def kernel_now():
        return np.stack([KG.variables[w].get_value().reshape(M, K, K) for w in weights], axis=1)

    def recon_step(t):
        u, lam = A.variables["u"].get_value(), A.variables["lam"].get_value()[0]
        a = np.where(u > lam, u - lam, 0.0).reshape(1, M, Ho, Wo)
        r = conv_transpose(a, kernel_now(), s, (Hp, Wp))[0]
        for c in range(C):
            E.variables[f"recon_{c}"].get_value()[:] = r[c].ravel()
        return 0.0

    def drive_step(t):
        e = np.stack([E.variables[f"E_{c}"].get_value().reshape(Hp, Wp) for c in range(C)])[None]
        A.variables["drive"].get_value()[:] = conv_correlate(e, kernel_now(), s).ravel()
        return 0.0

    rcode = dcode = ""
    if cpp_standalone_active():
        ws = ", ".join(cpp_array(KG.variables[w]) for w in weights)
        rcode = CONV_LCA_RECON_KERNEL_CPP.format(
            fn=f"{name}_recon_kernel", C=C, NPOS=Hp * Wp, NCODE=M * Ho * Wo, HWo=Ho * Wo, Wo=Wo, Wp=Wp, K=K, S=s,
            u=cpp_array(A.variables["u"]), lam=cpp_array(A.variables["lam"]), w=ws,
            recon=", ".join(cpp_array(E.variables[f"recon_{c}"]) for c in range(C)))
        XB = 8
        Hq, M4 = -(-Hp // s), -(-M // 4) * 4
        Wq = max(-(-Wp // s), -(-Wo // XB) * XB + (K - 1) // s)
        dcode = CONV_LCA_DRIVE_KERNEL_CPP.format(
            fn=f"{name}_drive_kernel", C=C, Hp=Hp, Wp=Wp, M=M, Ho=Ho, Wo=Wo, K=K, S=s, Hq=Hq, Wq=Wq, M4=M4,
            XB=XB,
            NPLANE=C * s * s * Hq * Wq, NW=C * K * K * M4, w=ws, drive=cpp_array(A.variables["drive"]),
            E=", ".join(cpp_array(E.variables[f"E_{c}"]) for c in range(C)))
    # Φ*a after the update of u (synapses slot, before E = x − Φ*a at order 1); Φᵀ E before the update
    objs += kernel_holder(f"{name}_recon_kernel", f"{name}_recon_kernel", rcode, recon_step, clock,
                          when="synapses", order=0)
    objs += kernel_holder(f"{name}_drive_kernel", f"{name}_drive_kernel", dcode, drive_step, clock,
                          when="groups", order=drive_order)
    return S, objs


def _conv_synapses(p: ConvLCAParams, name: str, clock, ns: dict, A, E, KG, plastic: bool, drive_order: int,
                   objs: list, n_synapses: dict):
    """Synapse engine of :func:`build_residual_conv`: event-driven Φ*a and summed Φᵀ E (adds to ``objs``)."""
    C = p.padded_shape[0]
    weights = [f"w_{c}" for c in range(C)]
    code, pos, k_idx = position_connectivity(p)
    on_pre = {"recon": per_channel(CONV_LCA_RECON_ON_PRE_CHANNEL, C)}
    on_event = {"recon": "active"}
    model = CONV_LCA_DICTIONARY_SYNAPSE + per_channel(CONV_LCA_WEIGHT_CHANNEL, C)
    if p.drive_layout == "code_major":
        model += CONV_LCA_DRIVE_ON_DICTIONARY.format(terms=per_channel(CONV_LCA_DRIVE_TERM_POST, C, " + "))
    if plastic:
        on_pre["learn"] = per_channel(CONV_LCA_LEARNING_ON_PRE_CHANNEL, C)
        on_event["learn"] = "learn"
        model += CONV_LCA_LEARNING_RATE
    S = _shared_synapses(A, E, code, pos, k_idx, model, KG, weights, name=f"{name}_phi", clock=clock,
                         on_pre=on_pre, on_event=on_event, namespace=ns)
    n_synapses["dictionary"] = int(code.size)
    if p.drive_layout == "code_major":
        S.summed_updaters["drive_pre"].order = drive_order
        objs.append(S)
    else:
        # kernel-major order: consecutive synapses add into different code units (no dependency
        # chain through one accumulator) and read the same shared coefficients for long runs
        order = np.lexsort((code, k_idx))
        model_d = (CONV_LCA_DRIVE_SYNAPSE.format(terms=per_channel(CONV_LCA_DRIVE_TERM_PRE, C, " + "))
                   + per_channel(CONV_LCA_WEIGHT_CHANNEL, C))
        SD = _shared_synapses(E, A, pos[order], code[order], k_idx[order], model_d, KG, weights,
                              name=f"{name}_phiT", clock=clock, namespace=ns)
        del order
        SD.summed_updaters["drive_post"].order = drive_order
        n_synapses["drive"] = int(code.size)
        objs += [S, SD]
    return S


class ConvLCALayer:
    """One convolutional LCA layer, built once in ``session``, run on chunks of ``n_pres`` inputs.

    :meth:`run` takes inputs (n_pres, C, H, W) and returns the codes at the last iteration,
    (n_pres, M, Ho, Wo) (and u if ``record_u``); with ``plastic=True`` (residual form) ``learn=True``
    updates the shared kernels once per presentation.  The kernels live in :attr:`kernel`
    (M, C, K, K) and are carried from run to run.
    """

    def __init__(self, p: ConvLCAParams, n_pres: int, session: Session, kernel=None, seed: int = 0,
                 plastic: bool = False, record_u: bool = False, name: str = "clca"):
        p.validate()
        if int(n_pres) < 1:
            raise ValueError(f"n_pres={n_pres} must be >= 1")
        if plastic and p.form != "residual":
            raise ValueError("dictionary learning needs form='residual' (the Gram form has a frozen dictionary)")
        self.p, self.session, self.n_pres, self.name = p, session, int(n_pres), name
        self.plastic, self.record_u = bool(plastic), bool(record_u)
        if kernel is None:
            kernel = random_kernels(p, np.random.default_rng(seed))
        kernel = np.asarray(kernel, dtype=float)
        if kernel.shape != p.kernel_shape:
            raise ValueError(f"kernel of shape {kernel.shape}, expected {p.kernel_shape}")
        self.kernel = kernel.copy()
        self.n_synapses: dict[str, int] = {}
        #: residual form: the engine of Φ*a and Φᵀ E on this session's backend (models.lca.resolve_engine)
        self.engine = resolve_engine(p.engine, session.backend) if p.form == "residual" else "synapses"
        self._build()

    def _build(self):
        p, name = self.p, self.name
        C, Hp, Wp = p.padded_shape
        M, Ho, Wo = p.out_shape
        n_in, n_code, n_kernel = C * Hp * Wp, M * Ho * Wo, int(np.prod(p.kernel_shape))
        clock = Clock(p.dt, name=f"{name}_clock")
        T = p.n_steps * p.dt
        self.stim = TimedArray(np.zeros((self.n_pres, n_in)), dt=T, name=f"{name}_stim")
        ns = {"stim": self.stim, "n_steps": p.n_steps}
        objs = []
        if p.form == "residual":
            parts = build_residual_conv(p, name, clock, ns, "stim", self.kernel, self.plastic, engine=self.engine)
            objs += parts["objects"]
            A, self.S, self.KG = parts["A"], parts["S"], parts["KG"]
            self.n_synapses.update(parts["n_synapses"])
        else:
            X = NeuronGroup(n_in, CONV_LCA_GRAM_INPUT.format(stim="stim"), clock=clock, namespace=ns,
                            events={"present": CONV_LCA_PRESENT_EVENT}, name=f"{name}_X")
            A = NeuronGroup(n_code, CONV_LCA_GRAM_NEURON, method="euler", clock=clock, namespace=ns, order=0,
                            events={"active": CONV_LCA_ACTIVE_EVENT, "done": CONV_LCA_DONE_EVENT},
                            name=f"{name}_A")
            code, inp, k_idx = dictionary_connectivity(p)
            self.n_synapses["dictionary"] = int(code.size)
            order = np.argsort(inp, kind="stable")  # feedforward synapses sorted by input index
            KG = NeuronGroup(n_kernel, CONV_LCA_FLAT_KERNEL, clock=clock, name=f"{name}_ff_kernel")
            F = _shared_synapses(X, A, inp[order], code[order], k_idx[order], CONV_LCA_FEEDFORWARD_SYNAPSE, KG,
                                 ["w"], name=f"{name}_ff", clock=clock, on_pre={"load": CONV_LCA_FEEDFORWARD_ON_PRE},
                                 on_event={"load": "present"}, namespace=ns)
            del code, inp, k_idx, order
            KG.w = self.kernel.ravel()
            gpre, gpost, gk = gram_connectivity(p)
            n = 2 * p.gram_radius + 1
            GG = NeuronGroup(M * M * n * n, CONV_LCA_FLAT_KERNEL, clock=clock, name=f"{name}_gram_kernel")
            G = _shared_synapses(A, A, gpre, gpost, gk, CONV_LCA_GRAM_SYNAPSE, GG, ["w"], name=f"{name}_gram",
                                 clock=clock, on_pre={"inhibit": CONV_LCA_GRAM_ON_PRE}, on_event={"inhibit": "active"})
            GG.w = gram_kernel(self.kernel, p.stride).ravel()
            self.n_synapses["gram"] = int(gpre.size)
            del gpre, gpost, gk
            clear = A.run_regularly(CONV_LCA_INH_CLEAR, when="synapses", order=-1, name=f"{name}_clear")
            reset = A.run_regularly(CONV_LCA_GRAM_RESET, dt=T, when="start", name=f"{name}_reset")
            objs += [X, A, KG, F, GG, G, clear, reset]
            self.KG, self.GG = KG, GG
        A.lam = p.lam
        A.tau = p.tau
        self.A = A
        self.mon = EventMonitor(A, "done", variables=["a", "u"] if self.record_u else ["a"], name=f"{name}_mon")
        objs.append(self.mon)
        self.net = Network(*objs)
        self.session.build(self.net, self.n_pres * T)

    # -- running --------------------------------------------------------------------------
    def run(self, x, learn: bool = False, seed: int | None = None, lam: float | None = None) -> dict:
        """Present ``n_pres`` inputs (n_pres, C, H, W); returns {'a': (n_pres, M, Ho, Wo)} (and 'u').

        ``lam``: λ for this run (default ``p.lam``)."""
        if learn and not self.plastic:
            raise ValueError("learn=True needs a layer built with plastic=True")
        lam = self.p.lam if lam is None else float(lam)
        if lam < 0:
            raise ValueError(f"lam={lam} must be >= 0")
        xp = pad_input(x, self.p)
        if len(xp) != self.n_pres:
            raise ValueError(f"{len(xp)} inputs, expected n_pres={self.n_pres}")
        args = {self.stim: xp.reshape(self.n_pres, -1), self.A.lam: lam, **self._kernel_args()}
        if self.plastic:
            args[self.S.eta] = self.p.eta if learn else 0.0
        self.session.run(args, seed=seed)
        if learn:
            M, C, K, _ = self.p.kernel_shape
            w = np.stack([np.asarray(getattr(self.KG, f"w_{c}")[:]).reshape(M, K, K) for c in range(C)], axis=1)
            self.kernel = normalise_kernels(w)
        return self._read_monitor()

    def _kernel_args(self) -> dict:
        """Run arguments that load :attr:`kernel` into the kernel group(s)."""
        if self.p.form == "gram":
            return {self.KG.w: self.kernel.ravel(), self.GG.w: gram_kernel(self.kernel, self.p.stride).ravel()}
        return {getattr(self.KG, f"w_{c}"): self.kernel[:, c].ravel() for c in range(self.p.kernel_shape[1])}

    def _read_monitor(self) -> dict:
        M, Ho, Wo = self.p.out_shape
        step = np.round(np.asarray(self.mon.t[:]) / float(self.p.dt)).astype(np.int64)
        idx = np.asarray(self.mon.i[:])
        if len(idx) != self.n_pres * M * Ho * Wo:
            raise RuntimeError(f"expected {self.n_pres * M * Ho * Wo} end-of-presentation records, got {len(idx)}")
        pres = step // self.p.n_steps
        out = {}
        for var in ("a", "u") if self.record_u else ("a",):
            arr = np.zeros((self.n_pres, M * Ho * Wo))
            arr[pres, idx] = np.asarray(getattr(self.mon, var)[:])
            out[var] = arr.reshape(self.n_pres, M, Ho, Wo)
        return out
