"""Deep sparse coding with the Locally Competitive Algorithm (LCA) and top-down feedback, in Brian2.

Kim E, Hannan D, Kenyon G (2018), "Deep Sparse Coding for Invariant Multimodal Halle Berry Neurons",
CVPR 2018, arXiv:1711.07998.  LCA: Rozell CJ, Johnson DH, Baraniuk RG, Olshausen BA (2008), "Sparse
coding via thresholding and local competition in neural circuits", Neural Computation 20(10):2526–2563,
https://doi.org/10.1162/neco.2008.03-07-486.

One LCA layer codes its input x (N values) with a dictionary Φ (N × M, unit-norm columns = atoms):

    τ du/dt = −u + Φᵀx − (ΦᵀΦ − I) a,      a = T_λ(u) = max(u − λ, 0)

which minimises the energy ½‖x − Φa‖² + λ‖a‖₁ over a ≥ 0.  Written with the explicit residual
population E = x − Φa (the form of the paper's simulator, PetaVision) the same equation reads

    τ du/dt = −u + Φᵀ E + a.

Hierarchy (paper Sec. 3): layer N+1 codes the dense potential u of layer N (its x is u_N, or the
concatenation of the u of several layers for the joint layer).  Top-down feedback (paper Eq 5): the
du/dt of layer N also receives −(u_N − Φ_{N+1} a_{N+1}) = −E_{N+1}, the residual of the layer above
restricted to layer N's part; the shared variable ``fb_gain`` (0 or 1, set per run) switches it.

Brian2 structure of one layer ``L`` (every object named ``{net}_{L}_...``):

* ``{L}_E``: the residual population (N neurons, ``LCA_RESIDUAL``): x comes from a 2-D ``TimedArray``
  (input layers: one row per presentation) or, one-to-one and summed, from the u of the lower
  layer(s) (``LCA_COPY_SYNAPSE``); ``recon`` = Φa is summed over the dictionary synapses;
* ``{L}_A``: the coding neurons (M neurons, ``LCA_NEURON``);
* ``{L}_phi``: the dictionary synapses A→E, one per (atom m, input n), holding Φ[n, m]; they sum
  Φa into E (``recon_post``) and ΦᵀE into A (``drive_pre``): one set of weights for both directions;
* ``{L}_norm``: a one-neuron group holding ‖E‖² (summed), broadcast to A by M synapses;
* ``{L}_fb``: one-to-one synapses from the part of the upper layer's E that codes this layer into
  this layer's ``fb``.

A convolutional input layer (``LayerSpec(kind='conv', kernel_size=K, stride=s, pad=q, in_shape=(C, H, W))``)
is built by :func:`models.lca_conv.build_residual_conv`: code units ``{L}_A`` (one per kernel and output
position, ``CONV_LCA_FEEDBACK_NEURON``: the same du/dt with the feedback term), a residual population on
the zero-padded input grid, and a kernel group ``{L}_phi_kernel`` to which every dictionary synapse links
(``linked_var(..., index='k_idx')``: shared, not copied).  Its code units take the place of ``{L}_A``
for the layer above (copy and feedback synapses as for a dense layer); ``net.phi[L]`` holds the kernels
(M, C, K, K).  Learning: ΔΦ_m = η Σ_positions a E[patch], then every kernel is scaled to unit norm.
:func:`hierarchy_reference` is the whole hierarchy (dense and conv layers, feedback on or off) in numpy.

Per time step every summed variable is computed from the previous step's u and a (x copies and Φa
first, then ‖E‖², ΦᵀE and the feedback), then all layers integrate together (Euler), so the
hierarchy is updated synchronously.

Presentations: ``n_iter`` steps each; many presentations in one run (DESIGN.md): the input
TimedArray has one row per presentation, ``u`` is reset to 0 at the first step of each
presentation (``run_regularly``) and a custom event ``done`` at its last step records a and u
(EventMonitor).

Dictionary learning (paper Sec. 3; Olshausen & Field): at the last step of every presentation a
custom event ``learn`` fires in each *active* coding neuron (a > 0, η > 0); the dictionary synapses
then apply ``LCA_DICTIONARY_LEARNING``: Φ_m ← (Φ_m + η a_m E) / ‖Φ_m + η a_m E‖.  The new norm is
computed exactly from quantities the network already has, ‖Φ_m + η a_m E‖² = 1 + 2η a_m (ΦᵀE)_m +
η² a_m² ‖E‖² (atoms have unit norm before the update), so learning costs N operations per active
atom and presentation and needs no second pass.

Lateral inhibition, direct ΦᵀΦ vs residual population (measured, ``benchmarks/bench_lca.py``,
``benchmarks/results/lca.json``): the direct form (``LCADirectLayer``: Φᵀx once per presentation by
an event, (ΦᵀΦ − I)a every step over M² synapses) costs M² per step against 2NM for the residual
form, so it is faster for one input layer with M < 2N: 26 against 4.4 images/s for 1024 → 128 at 100
iterations on cpp (best of 3 on the shared 2-core machine; the same codes within 2e-6); but (i) it
needs ΦᵀΦ, which changes with every dictionary update (M²N to recompute), (ii) the upper layers'
input u changes every step, so Φᵀx is needed every step anyway (NM + M² > 2NM when M > N), and (iii)
the residual E_{N+1} is exactly the feedback term. The hierarchy therefore uses the residual form;
the direct form is kept for frozen single-layer inference and for the measurement.

Engines (``LCAParams.engine``, :func:`resolve_engine`).  ``'synapses'``: Φa and ΦᵀE are Brian2 summed
variables over the dictionary synapses (``recon_post``, ``drive_pre``) and ‖E‖² goes through ``{L}_norm``;
every backend runs it and it is the readable reference.  ``'kernel'`` (the default on ``cpp``): per layer
and step one function (:data:`LCA_DENSE_KERNEL_CPP`, a numpy implementation alongside for the tests) reads
u, λ, x and the synapses' Φ and writes recon, E, ΦᵀE and ‖E‖² into the same variables, at the place
of the summed variables in the schedule; only the active atoms add Φa (event-driven), every row of Φᵀ is
read contiguously (the synapses are sorted by atom), and the dictionary synapses only hold Φ and learn
(same learning rule, same run arguments).  Sums are taken in the same order as the summed synapses, so
the engines agree to rounding (tests: ≤ 1e-12 on numpy, ≤ 1e-10 between numpy and cpp).  Profile of
the synapses engine on cpp (Brian2 ``profile=True``, the default ``multimodal.train`` hierarchy, one chunk
of 50 presentations × 100 iterations, frozen): the summed ΦᵀE loops took 76 % and the summed Φa loops 22 %
of the time spent in code objects (12.5 and 3.6 of 16.4 s; load average 9, 2 cores shared), about 8 ns
per synapse and step (index gathers, and for input layers the stimulus TimedArray read once per synapse).
Both engines in one run (``benchmarks/bench_lca.py --what engines --threads 0``,
``benchmarks/results/bench_lca.json``, ``hierarchy_engines``: that hierarchy with P1 = 256, learning on,
dictionaries drawn from the inputs, 2 % of the atoms active, cpp without OpenMP, medians of 3 chunk runs
at load average ~7): synapses 3.2 presentations/s (7.0 per CPU second), kernel 31.6 presentations/s (152
per CPU second), the same codes within 2.2e-16; with P1 = 512 (``--p-atoms 512``) 2.4 against 50.9
presentations/s (5.7 against 145 per CPU second).  The kernel engine's time per chunk is then mostly the
binary's start and file input/output, not arithmetic.

Deliberate deviations from the paper:

* only input layers can be convolutional (``LayerSpec(kind='conv')``: shared kernels from
  :mod:`models.lca_conv`, residual form, per-kernel normalisation); the layers above code the conv
  layer's dense potential u with dense dictionaries, whereas the paper's upper vision and text layers
  are convolutional too;
* the CPU configuration of the protocols is much smaller (sizes in ``protocols/multimodal_train.py``);
* atoms are normalised after every update (the paper normalises per batch);
* the protocols start every dictionary from data (:func:`greedy_data_init`): the atoms of a layer are
  the inputs of that layer for randomly drawn training items (faces/names for V1/T1, the potentials u
  of the layers below for the others, the joint layer from face–name pairs), computed bottom-up by a
  numpy LCA without feedback, before Hebbian learning starts; measured for V1 alone (20 people × 20
  faces, 300 presentations, 128 atoms): test reconstruction error 0.31 against 0.66–0.81 from a
  Gaussian start, and with Gaussian upper layers the joint layer stayed almost silent (0.2% active);
* plain Euler integration with dt/τ = ``dt / tau``; the paper uses PetaVision's (also first-order)
  update with its own time constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import Clock, EventMonitor, Network, NeuronGroup, Quantity, Synapses, TimedArray, ms

from b2models.backend import Session

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
LCA_NEURON = """
du/dt = (-u + drive + a - fb_gain * fb) / tau : 1  # τ du/dt = −u + Φᵀ(x − Φa) + a − g (u − Φ_{N+1} a_{N+1})
a = (u - lambda_) * int(u > lambda_) : 1  # a = T_λ(u): non-negative soft threshold (the code)
drive : 1                                # Φᵀ E, summed over the dictionary synapses
fb : 1                                   # E_{N+1} for this unit: u − Φ_{N+1} a_{N+1} (summed, one-to-one)
E2 : 1                                   # ‖E‖² of this layer's residual (broadcast; for the atom norm)
lambda_ : 1 (shared, constant)           # λ, the threshold (sparsity penalty)
fb_gain : 1 (shared, constant)           # g: 1 = top-down feedback on, 0 = off
tau : second (shared, constant)          # τ, time constant of u
"""

#: residual population of an input layer: x from the stimulus TimedArray (one row per presentation)
LCA_RESIDUAL_INPUT = """
x = {stim}(t, i) : 1      # input x_n of the current presentation
recon : 1                 # (Φ a)_n, summed over the dictionary synapses
E = x - recon : 1         # residual E = x − Φa
"""

#: residual population of a hidden layer: x = u of the lower layer(s), copied each step
LCA_RESIDUAL_HIDDEN = """
x : 1                     # input x_n = u_n of the layer below (summed, one-to-one)
recon : 1                 # (Φ a)_n, summed over the dictionary synapses
E = x - recon : 1         # residual E = x − Φa (the top-down feedback for the layer below)
"""

LCA_NORM = """
E2 : 1  # ‖E‖² = Σ_n E_n² of one layer's residual (summed)
"""

LCA_DICTIONARY_SYNAPSE = """
phi : 1                               # Φ[n, m]: input n of atom m (pre = coding neuron m, post = E_n)
recon_post = phi * a_pre : 1 (summed)  # (Φ a)_n
drive_pre = phi * E_post : 1 (summed)  # (Φᵀ E)_m
eta : 1 (shared, constant)            # η, the dictionary learning rate (0 = frozen)
"""

#: ΔΦ_m = η a_m E (Hebbian: code × residual), then the atom is renormalised (exact norm, see docstring)
LCA_DICTIONARY_LEARNING = (
    "phi = (phi + eta * a_pre * E_post)"
    " / sqrt(1 + 2 * eta * a_pre * drive_pre + eta**2 * a_pre**2 * E2_pre)"
)

LCA_NORM_SYNAPSE = """
E2_post = E_pre**2 : 1 (summed)  # ‖E‖²
"""

LCA_NORM_BROADCAST = """
E2_post = E2_pre : 1 (summed)  # every coding neuron reads its layer's ‖E‖²
"""

LCA_COPY_SYNAPSE = """
x_post = u_pre : 1 (summed)  # the upper layer's input is the dense potential u of this layer
"""

LCA_FEEDBACK_SYNAPSE = """
fb_post = E_pre : 1 (summed)  # top-down: (u_N − Φ_{N+1} a_{N+1}) of the unit's own entry
"""

#: last step of a presentation (the run starts at a presentation boundary)
LCA_DONE_EVENT = "timestep(t, dt) % n_iter == n_iter - 1"
#: ... and the neuron is active (η = 0 in the synapses makes the update a no-op)
LCA_LEARN_EVENT = "timestep(t, dt) % n_iter == n_iter - 1 and a > 0"
#: first step of a presentation: start from u = 0
LCA_RESET = "u = 0"

# --- direct form (single input layer, frozen dictionary; for the measurement) -----------------
LCA_DIRECT_NEURON = """
du/dt = (-u + b - inh) / tau : 1  # τ du/dt = −u + Φᵀx − (ΦᵀΦ − I) a
a = (u - lambda_) * int(u > lambda_) : 1  # a = T_λ(u)
b : 1                             # Φᵀx, added once per presentation by the input event
inh : 1                           # ((ΦᵀΦ − I) a)_m, summed over the inhibition synapses
lambda_ : 1 (shared, constant)
tau : second (shared, constant)
"""
LCA_DIRECT_INPUT = """
x = {stim}(t, i) : 1  # input of the current presentation
"""
LCA_DIRECT_FEEDFORWARD = """
phi : 1  # Φ[n, m]
"""
#: at the first step of a presentation every input neuron sends x_n Φ[n, m] to atom m
LCA_DIRECT_FEEDFORWARD_ON_PRE = "b_post += phi * x_pre"
LCA_DIRECT_INHIBITION = """
G : 1 (constant)                 # (ΦᵀΦ − I)[m, k], m ≠ k
inh_post = G * a_pre : 1 (summed)
"""
LCA_PRESENT_EVENT = "timestep(t, dt) % n_iter == 0"
LCA_DIRECT_RESET = "u = 0\nb = 0"


# --- kernel engine (see resolve_engine): the products with Φ are one compiled function per layer ----------
#: residual population with stored x, Φa and E (the layer's kernel writes recon and E once per step)
LCA_RESIDUAL_STORED = """
x : 1      # input x_n: the stimulus row, or u_n of the layer below (summed, one-to-one)
recon : 1  # (Φ a)_n, summed by the kernel over the active atoms only
E : 1      # residual E = x − Φa, stored by the kernel
"""
#: input layers, kernel engine: x of the current presentation, read once per step
LCA_INPUT_READ = "x = {stim}(t, i)"
#: dictionary synapses, kernel engine: they hold Φ (and learn); Φa and ΦᵀE are computed by the kernel
LCA_DICTIONARY_STORAGE = """
phi : 1                     # Φ[n, m]: input n of atom m (pre = coding neuron m, post = E_n)
eta : 1 (shared, constant)  # η, the dictionary learning rate (0 = frozen)
"""
#: one-neuron holder of a layer's kernel call
LCA_KERNEL_HOLDER = "kstep : 1 (shared)  # return value of the kernel call (always 0)"
LCA_KERNEL_CALL = "kstep = {fn}(t)"

#: the dense kernel (C++): from u of the previous step, a = T_λ(u); Φa summed over the active atoms only
#: (blocks of inputs, atoms in increasing order: the same order of additions as the summed synapses);
#: E = x − Φa; ΦᵀE (contiguous rows of Φ, one per atom) and ‖E‖² for every atom
LCA_DENSE_KERNEL_CPP = """
double {fn}(const double t)
{{
    const int N = {N}, M = {M}, NB = 256;
    const double* const u = {u};
    const double lam = {lam}[0];
    const double* const phi = {phi};
    const double* const x = {x};
    double* const recon = {recon};
    double* const E = {E};
    double* const drive = {drive};
    double* const E2 = {E2};
    static int act[{M}];
    static double aval[{M}];
    int n_act = 0;
    for (int m = 0; m < M; m++)
        if (u[m] > lam) {{ act[n_act] = m; aval[n_act] = u[m] - lam; n_act++; }}
    #ifdef _OPENMP
    #pragma omp parallel for schedule(static) if ((long)n_act * N > 32768)
    #endif
    for (int n0 = 0; n0 < N; n0 += NB)
    {{
        const int n1 = n0 + NB < N ? n0 + NB : N;
        for (int n = n0; n < n1; n++) recon[n] = 0.0;
        for (int k = 0; k < n_act; k++)
        {{
            const double* const p = phi + (size_t)act[k] * N;
            const double ak = aval[k];
            for (int n = n0; n < n1; n++) recon[n] += p[n] * ak;
        }}
    }}
    double e2 = 0.0;
    for (int n = 0; n < N; n++) {{ const double e = x[n] - recon[n]; E[n] = e; e2 += e * e; }}
    #ifdef _OPENMP
    #pragma omp parallel for schedule(static) if ((long)M * N > 32768)
    #endif
    for (int m = 0; m < M; m++)
    {{
        const double* const p = phi + (size_t)m * N;
        double s = 0.0;
        for (int n = 0; n < N; n++) s += p[n] * E[n];
        drive[m] = s;
        E2[m] = e2;
    }}
    return 0.0;
}}
"""

ENGINES = ("auto", "synapses", "kernel")
#: backends with an implementation of the kernel engine (numpy: for the equivalence tests)
KERNEL_BACKENDS = ("numpy", "cpp")


def check_engine(engine: str):
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: expected one of {ENGINES}")


def resolve_engine(engine: str, backend: str) -> str:
    """Which implementation of the products with Φ a layer uses on ``backend``.

    ``'synapses'``: Brian2 summed variables over the dictionary synapses (every backend; the readable
    reference).  ``'kernel'``: one function per layer and time step (C++ on ``cpp``, numpy on
    ``numpy``) that reads the same state variables and writes the same sums; only the active atoms
    (a > 0) add Φa, rows of Φ are read contiguously, and the synapses only hold Φ and learn.
    ``'auto'``: the kernel on ``cpp``, the synapses elsewhere."""
    check_engine(engine)
    if engine == "auto":
        return "kernel" if backend == "cpp" else "synapses"
    if engine == "kernel" and backend not in KERNEL_BACKENDS:
        raise ValueError(f"engine='kernel' has implementations for {KERNEL_BACKENDS}, not for backend {backend!r}")
    return engine


def cpp_standalone_active() -> bool:
    """Whether Brian2's current device is cpp_standalone (kernels then need their C++ code)."""
    from brian2 import get_device

    return type(get_device()).__name__ == "CPPStandaloneDevice"


def cpp_array(var) -> str:
    """The C++ expression of a Brian2 variable's data pointer in cpp_standalone (for kernel code)."""
    from brian2 import get_device

    dev = get_device()
    if getattr(var, "dynamic", False):
        return f"(&brian::{dev.get_array_name(var, access_data=False)}[0])"
    return f"brian::{dev.get_array_name(var)}"


def kernel_holder(name: str, fn_name: str, cpp_code: str, py_func, clock, when: str, order: int) -> list:
    """A one-neuron group whose ``run_regularly`` calls the kernel ``fn_name(t)`` once per step, with a C++
    implementation ``cpp_code`` (cpp_standalone) and ``py_func`` (numpy); returns [group, operation]."""
    from brian2 import Function, second

    fn = Function(py_func, arg_units=[second], return_unit=1, stateless=False)
    fn.implementations.add_implementation("cpp", cpp_code, name=fn_name)
    H = NeuronGroup(1, LCA_KERNEL_HOLDER, clock=clock, namespace={fn_name: fn}, name=name)
    op = H.run_regularly(LCA_KERNEL_CALL.format(fn=fn_name), when=when, order=order, name=f"{name}_call")
    return [H, op]


# ----------------------------------------------------------------------------------------
# parameters and architecture
# ----------------------------------------------------------------------------------------
def check_iterations(n_iter: int, tau, dt, eta: float):
    """The LCA integration settings shared by every layer type: clear errors for unusable values."""
    if n_iter < 2:
        raise ValueError(f"n_iter={n_iter} must be >= 2")
    if not float(tau) > 0 or not float(dt) > 0:
        raise ValueError(f"tau={tau} and dt={dt} must be positive")
    if float(dt) / float(tau) > 1:
        raise ValueError(f"dt/tau = {float(dt) / float(tau):g} > 1 makes the Euler update unstable")
    if eta < 0:
        raise ValueError(f"eta={eta} must be >= 0")


@dataclass
class LCAParams:
    """Dynamics and learning of an LCA hierarchy (λ per layer lives in :class:`LayerSpec`)."""

    tau: Quantity = field(default_factory=lambda: 10 * ms)  # τ of u
    dt: Quantity = field(default_factory=lambda: 1 * ms)  # Euler step (dt/τ = 0.1)
    n_iter: int = 400  # LCA iterations per presentation (paper: 400)
    eta: float = 0.01  # dictionary learning rate η (per presentation)
    feedback: bool = True  # top-down feedback (paper Eq 5)
    engine: str = "auto"  # products with Φ: 'synapses', 'kernel' or 'auto' (see resolve_engine)

    def validate(self):
        check_iterations(self.n_iter, self.tau, self.dt, self.eta)
        check_engine(self.engine)


LAYER_KINDS = ("dense", "conv")


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``inputs`` names either one stimulus modality or one or more lower layers.

    ``kind='dense'``: ``n_atoms`` atoms over the whole input.  ``kind='conv'`` (input layers only):
    ``n_atoms`` shared kernels C×K×K (``kernel_size`` K) applied with ``stride`` to the modality
    reshaped to ``in_shape`` (C, H, W) and zero-padded by ``pad`` (:mod:`models.lca_conv`); the layer
    then has n_atoms·Ho·Wo code units, in (kernel, y, x) order, and the layer above codes their u.
    """

    name: str
    n_atoms: int
    inputs: tuple[str, ...]
    lam: float = 0.1  # λ
    kind: str = "dense"  # 'dense' or 'conv'
    kernel_size: int = 0  # conv: K
    stride: int = 1  # conv: s
    pad: int = 0  # conv: zero padding on each side
    in_shape: tuple = ()  # conv: (C, H, W) of the input modality

    def __post_init__(self):
        if self.n_atoms < 1:
            raise ValueError(f"layer {self.name!r}: n_atoms={self.n_atoms} must be >= 1")
        if self.lam < 0:
            raise ValueError(f"layer {self.name!r}: lam={self.lam} must be >= 0")
        if not self.inputs:
            raise ValueError(f"layer {self.name!r} has no inputs")
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer {self.name!r}: kind={self.kind!r}, expected one of {LAYER_KINDS}")
        if self.kind == "conv":
            if len(tuple(self.in_shape)) != 3:
                raise ValueError(f"layer {self.name!r}: in_shape={self.in_shape} must be (C, H, W) for kind='conv'")
            self.conv_params()  # geometry errors name the parameter

    @property
    def is_conv(self) -> bool:
        return self.kind == "conv"

    def conv_params(self, p: LCAParams | None = None):
        """The :class:`models.lca_conv.ConvLCAParams` of a conv layer (dynamics from ``p``)."""
        from b2models.models.lca_conv import ConvLCAParams

        p = LCAParams() if p is None else p
        cp = ConvLCAParams(in_shape=tuple(int(v) for v in self.in_shape), n_kernels=self.n_atoms,
                           kernel_size=self.kernel_size, stride=self.stride, pad=self.pad, lam=self.lam,
                           tau=p.tau, dt=p.dt, n_iter=p.n_iter, eta=p.eta, engine=p.engine)
        try:
            cp.validate()
        except ValueError as err:
            raise ValueError(f"layer {self.name!r}: {err}") from None
        return cp

    @property
    def size(self) -> int:
        """Number of code units (the input size of the layer above)."""
        if self.is_conv:
            return int(np.prod(self.conv_params().out_shape))
        return self.n_atoms


def check_architecture(layers, input_dims: dict) -> dict[str, int]:
    """Validate a hierarchy (bottom-up order) and return every layer's input size N."""
    sizes, feeds, n_in = {}, {}, {}
    for L in layers:
        if L.name in sizes or L.name in input_dims:
            raise ValueError(f"layer name {L.name!r} is used twice")
        mods = [s for s in L.inputs if s in input_dims]
        lower = [s for s in L.inputs if s in sizes]
        unknown = [s for s in L.inputs if s not in input_dims and s not in sizes]
        if unknown:
            raise ValueError(f"layer {L.name!r}: unknown inputs {unknown} (modalities {list(input_dims)}, "
                             f"layers below {list(sizes)})")
        if mods and (lower or len(mods) > 1):
            raise ValueError(f"layer {L.name!r}: an input layer codes exactly one modality")
        if L.is_conv:
            if not mods:
                raise ValueError(f"layer {L.name!r}: kind='conv' is only available for input layers "
                                 f"(it codes {list(L.inputs)})")
            if int(np.prod(L.in_shape)) != int(input_dims[mods[0]]):
                raise ValueError(f"layer {L.name!r}: in_shape={tuple(L.in_shape)} has {int(np.prod(L.in_shape))} "
                                 f"values, the modality {mods[0]!r} has {int(input_dims[mods[0]])}")
        for s in lower:
            if s in feeds:
                raise ValueError(f"layer {s!r} feeds both {feeds[s]!r} and {L.name!r}")
            feeds[s] = L.name
        n_in[L.name] = int(input_dims[mods[0]]) if mods else sum(sizes[s] for s in lower)
        sizes[L.name] = L.size
    return n_in


def random_dictionary(n_in: int, n_atoms: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian dictionary (N × M) with unit-norm atoms (columns)."""
    phi = rng.standard_normal((n_in, n_atoms))
    return normalise_atoms(phi)


def data_dictionary(X, n_atoms: int, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """Dictionary (N × M) of randomly drawn inputs (rows of X, with replacement if too few) plus a
    little Gaussian noise (so that repeated inputs give distinct atoms), unit-norm atoms."""
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    pick = rng.choice(len(X), n_atoms, replace=n_atoms > len(X))
    scale = noise * np.mean(np.linalg.norm(X, axis=1)) / np.sqrt(X.shape[1])
    return normalise_atoms(X[pick].T + scale * rng.standard_normal((X.shape[1], n_atoms)))


def normalise_atoms(phi: np.ndarray) -> np.ndarray:
    phi = np.asarray(phi, dtype=float)
    return phi / np.maximum(np.linalg.norm(phi, axis=0, keepdims=True), 1e-12)


def soft_threshold(u, lam):
    """T_λ(u) = max(u − λ, 0)."""
    return np.maximum(np.asarray(u) - lam, 0.0)


def lca_energy(x, phi, a, lam) -> np.ndarray:
    """½‖x − Φa‖² + λ‖a‖₁ for codes a (..., M) of inputs x (..., N)."""
    r = np.asarray(x) - np.asarray(a) @ np.asarray(phi).T
    return 0.5 * np.sum(r * r, axis=-1) + lam * np.sum(np.abs(a), axis=-1)


def greedy_data_init(layers, samples: dict, n_iter: int, dt_over_tau: float, rng: np.random.Generator,
                     noise: float = 0.01) -> dict:
    """Dictionaries for a whole hierarchy from data, bottom-up: each layer's atoms are drawn from
    its inputs for ``samples`` (modality -> (n, dim), rows paired across modalities), the inputs of
    a hidden layer being the potentials u of the layers below after ``n_iter`` numpy LCA steps
    (no feedback) with the dictionaries just drawn.  Returns layer -> N × M (dense layers) or
    kernels (M, C, K, K) drawn from input patches (conv layers, :func:`models.lca_conv.patch_kernels`)."""
    phi, u = {}, {}
    for L in layers:
        if L.inputs[0] in samples:
            X = np.asarray(samples[L.inputs[0]], dtype=float)
        else:
            X = np.concatenate([u[s] for s in L.inputs], axis=1)
        if L.is_conv:
            from b2models.models.lca_conv import conv_lca_reference, patch_kernels

            cp = L.conv_params(LCAParams(tau=1 * ms, dt=dt_over_tau * ms, n_iter=n_iter, eta=0.0))
            Xc = X.reshape((len(X),) + tuple(cp.in_shape))
            phi[L.name] = patch_kernels(Xc, cp, rng, noise)
            _, uc = conv_lca_reference(Xc, phi[L.name], cp, return_u=True)
            u[L.name] = uc.reshape(len(X), -1)
            continue
        phi[L.name] = data_dictionary(X, L.n_atoms, rng, noise)
        _, _, u[L.name] = lca_reference(X, phi[L.name], L.lam, n_iter, dt_over_tau, return_u=True)
    return phi


def reconstruct(L: LayerSpec, phi, a) -> np.ndarray:
    """Φa of layer ``L`` for codes a (P, size): the layer's input (P, N); for a conv layer the
    transposed convolution cropped to the unpadded input, flattened (C, H, W)."""
    a = np.atleast_2d(np.asarray(a, dtype=float))
    if not L.is_conv:
        return a @ np.asarray(phi).T
    from b2models.models.lca_conv import conv_transpose

    cp = L.conv_params()
    r = conv_transpose(a.reshape((len(a),) + cp.out_shape), phi, cp.stride, cp.padded_shape[1:])
    q, (_, H, W) = cp.pad, cp.in_shape
    return r[:, :, q:q + H, q:q + W].reshape(len(a), -1)


def hierarchy_reference(layers, phi: dict, inputs: dict, n_iter: int, dt_over_tau: float,
                        fb_gain: float = 1.0) -> dict:
    """The whole hierarchy in numpy, the same synchronous Euler update as :class:`LCAHierarchy`:
    every step computes, from the current u of all layers, each layer's input x (stimulus, zero-padded
    for conv layers, or the u of the layers below), residual E = x − Φa, drive ΦᵀE and feedback (the
    part of the upper layer's E that codes this layer), then updates all u together.  ``inputs``:
    modality -> (P, dim).  Returns layer -> {'a': (P, size), 'u': (P, size)}."""
    from b2models.models.lca_conv import conv_correlate, conv_transpose, pad_input

    spec = {L.name: L for L in layers}
    P = len(next(iter(inputs.values())))
    cps = {L.name: L.conv_params() for L in layers if L.is_conv}
    stim = {}
    for L in layers:
        if L.inputs[0] in inputs:
            x = np.asarray(inputs[L.inputs[0]], dtype=float)
            stim[L.name] = pad_input(x.reshape((P,) + tuple(cps[L.name].in_shape)), cps[L.name]) if L.is_conv else x
    u = {L.name: np.zeros((P, L.size)) for L in layers}
    for _ in range(n_iter):
        a = {n: soft_threshold(v, spec[n].lam) for n, v in u.items()}
        E, drive, fb = {}, {}, {n: np.zeros_like(v) for n, v in u.items()}
        for L in layers:
            if L.is_conv:
                cp = cps[L.name]
                A = a[L.name].reshape((P,) + cp.out_shape)
                E[L.name] = stim[L.name] - conv_transpose(A, phi[L.name], cp.stride, cp.padded_shape[1:])
                drive[L.name] = conv_correlate(E[L.name], phi[L.name], cp.stride).reshape(P, -1)
                continue
            x = stim[L.name] if L.name in stim else np.concatenate([u[s] for s in L.inputs], axis=1)
            E[L.name] = x - a[L.name] @ phi[L.name].T
            drive[L.name] = E[L.name] @ phi[L.name]
            off = 0
            for low in L.inputs:
                if low in spec:
                    fb[low] = E[L.name][:, off:off + spec[low].size]
                    off += spec[low].size
        u = {n: u[n] + dt_over_tau * (-u[n] + drive[n] + a[n] - fb_gain * fb[n]) for n in u}
    return {n: {"a": soft_threshold(v, spec[n].lam), "u": v} for n, v in u.items()}


def lca_reference(x, phi, lam, n_iter, dt_over_tau, feedback_target=None, fb_gain=0.0, return_u=False):
    """One LCA layer in numpy, the same Euler update as the Brian2 layer: codes a after ``n_iter``
    steps for inputs x (P, N), plus the trajectory of a (n_iter, P, M).  ``feedback_target``:
    optional (P, M) value Φ_{N+1} a_{N+1} held fixed (the feedback then is −g (u − target))."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    phi = np.asarray(phi, dtype=float)
    u = np.zeros((x.shape[0], phi.shape[1]))
    traj = []
    for _ in range(n_iter):
        a = soft_threshold(u, lam)
        drive = (x - a @ phi.T) @ phi
        fb = 0.0 if feedback_target is None else (u - feedback_target)
        u = u + dt_over_tau * (-u + drive + a - fb_gain * fb)
        traj.append(soft_threshold(u, lam))
    if return_u:
        return traj[-1], np.array(traj), u
    return traj[-1], np.array(traj)


# ----------------------------------------------------------------------------------------
# the hierarchy
# ----------------------------------------------------------------------------------------
class LCAHierarchy:
    """A hierarchy of LCA layers, built once, run on chunks of ``n_pres`` presentations.

    ``layers``: :class:`LayerSpec` in bottom-up order; ``input_dims``: modality -> input size.
    :meth:`run` takes the inputs of one chunk (modality -> (n_pres, dim); a missing modality is all
    zeros), learns if asked and returns a and u at the last step of every presentation per layer.
    The dictionaries live in :attr:`phi` (layer -> N × M) and are carried from run to run.
    """

    def __init__(self, p: LCAParams, layers, input_dims: dict, n_pres: int, session: Session,
                 seed: int = 0, name: str = "lca", record_u: bool = True):
        p.validate()
        if n_pres < 1:
            raise ValueError(f"n_pres={n_pres} must be >= 1")
        self.p, self.layers, self.session, self.name = p, list(layers), session, name
        self.input_dims = {k: int(v) for k, v in input_dims.items()}
        self.n_pres = int(n_pres)
        self.n_in = check_architecture(self.layers, self.input_dims)
        rng = np.random.default_rng(seed)
        self.conv = {L.name: L.conv_params(p) for L in self.layers if L.is_conv}
        self.phi = {}
        for L in self.layers:
            if L.is_conv:
                from b2models.models.lca_conv import random_kernels

                self.phi[L.name] = random_kernels(self.conv[L.name], rng)
            else:
                self.phi[L.name] = random_dictionary(self.n_in[L.name], L.n_atoms, rng)
        self.record_u = record_u
        #: the engine of the products with Φ on this session's backend (:func:`resolve_engine`)
        self.engine = resolve_engine(p.engine, session.backend)
        self._build()

    @property
    def spec(self) -> dict:
        return {L.name: L for L in self.layers}

    def _build(self):
        p, name = self.p, self.name
        clock = Clock(p.dt, name=f"{name}_clock")
        T = p.n_iter * p.dt
        dense_mods = {L.inputs[0] for L in self.layers if not L.is_conv and L.inputs[0] in self.input_dims}
        self.stim = {m: TimedArray(np.zeros((self.n_pres, d)), dt=T, name=f"{name}_stim_{m}")
                     for m, d in self.input_dims.items() if m in dense_mods}
        # conv input layers read their zero-padded input from a TimedArray of their own
        self.conv_stim = {Ln: TimedArray(np.zeros((self.n_pres, int(np.prod(cp.padded_shape)))), dt=T,
                                         name=f"{name}_stim_{Ln}") for Ln, cp in self.conv.items()}
        # one namespace for every object: expressions like E = x − Φa read the stimulus through E_post
        ns = {"n_iter": p.n_iter, **{f"stim_{m}": ta for m, ta in self.stim.items()}}
        objs = []
        self.A, self.E, self.S, self.mon, self.copies = {}, {}, {}, {}, {}
        self.feedback_syn, self.kernel_group = {}, {}
        for L in self.layers:
            N, M = self.n_in[L.name], L.n_atoms
            if L.is_conv:
                objs += self._build_conv(L, clock)
                continue
            kernel = self.engine == "kernel"
            if kernel:
                E = NeuronGroup(N, LCA_RESIDUAL_STORED, clock=clock, namespace=ns, name=f"{name}_{L.name}_E")
                if L.inputs[0] in self.input_dims:
                    objs.append(E.run_regularly(LCA_INPUT_READ.format(stim=f"stim_{L.inputs[0]}"), when="groups",
                                                order=-4, name=f"{name}_{L.name}_input"))
            elif L.inputs[0] in self.input_dims:
                mod = L.inputs[0]
                E = NeuronGroup(N, LCA_RESIDUAL_INPUT.format(stim=f"stim_{mod}"), clock=clock,
                                namespace=ns, name=f"{name}_{L.name}_E")
            else:
                E = NeuronGroup(N, LCA_RESIDUAL_HIDDEN, clock=clock, name=f"{name}_{L.name}_E")
            A = NeuronGroup(M, LCA_NEURON, method="euler", clock=clock, namespace=ns, order=0,
                            events={"done": LCA_DONE_EVENT, "learn": LCA_LEARN_EVENT},
                            name=f"{name}_{L.name}_A")
            A.lambda_ = L.lam
            A.tau = p.tau
            A.fb_gain = 1.0 if p.feedback else 0.0
            # dictionary synapses, pre = atom m, post = input n; sorted by pre (m-major: row m of Φᵀ is contiguous)
            S = Synapses(A, E, LCA_DICTIONARY_STORAGE if kernel else LCA_DICTIONARY_SYNAPSE,
                         on_pre={"learn": LCA_DICTIONARY_LEARNING}, on_event={"learn": "learn"}, clock=clock,
                         namespace=ns, name=f"{name}_{L.name}_phi")
            S.connect(i=np.repeat(np.arange(M), N), j=np.tile(np.arange(N), M))
            S.phi = self.phi[L.name].T.ravel()
            S.eta = p.eta
            self.session.expect_size(S.phi, N * M)
            if kernel:
                # x copies and stimulus (-4), then the kernel: Φa, E, ‖E‖², ΦᵀE (-3), then feedback (-2)
                objs += self._dense_kernel(L, A, E, S, clock)
            else:
                norm = NeuronGroup(1, LCA_NORM, clock=clock, name=f"{name}_{L.name}_norm")
                Snorm = Synapses(E, norm, LCA_NORM_SYNAPSE, clock=clock, namespace=ns,
                                 name=f"{name}_{L.name}_normsyn")
                Snorm.connect(i=np.arange(N), j=np.zeros(N, dtype=int))
                # order of the summed variables: x copies and Φa (-3), then ‖E‖², ΦᵀE, feedback (-2)
                S.summed_updaters["recon_post"].order = -3
                S.summed_updaters["drive_pre"].order = -2
                Snorm.summed_updaters["E2_post"].order = -2
                Sbc = Synapses(norm, A, LCA_NORM_BROADCAST, clock=clock, name=f"{name}_{L.name}_normbc")
                Sbc.connect(i=np.zeros(M, dtype=int), j=np.arange(M))
                Sbc.summed_updaters["E2_post"].order = -1
                objs += [norm, Snorm, Sbc]
            reset = A.run_regularly(LCA_RESET, dt=T, when="start", name=f"{name}_{L.name}_reset")
            mon = EventMonitor(A, "done", variables=["a", "u"] if self.record_u else ["a"],
                               name=f"{name}_{L.name}_mon")
            objs += [E, A, S, reset, mon]
            # inputs from (and feedback to) the layers below
            offset = 0
            for low in L.inputs:
                if low in self.input_dims:
                    continue
                Ml = self.A[low].N
                sub = E[offset:offset + Ml]
                C = Synapses(self.A[low], sub, LCA_COPY_SYNAPSE, clock=clock, name=f"{name}_{low}_to_{L.name}")
                C.connect(j="i")
                C.summed_updaters["x_post"].order = -4 if kernel else -3
                F = Synapses(sub, self.A[low], LCA_FEEDBACK_SYNAPSE, clock=clock, namespace=ns,
                             name=f"{name}_{L.name}_fb_{low}")
                F.connect(j="i")
                F.summed_updaters["fb_post"].order = -2
                self.feedback_syn[low] = F
                objs += [C, F]
                offset += Ml
            self.A[L.name], self.E[L.name], self.S[L.name], self.mon[L.name] = A, E, S, mon
        self.net = Network(*objs)
        self.session.build(self.net, self.n_pres * T)

    def _dense_kernel(self, L, A, E, S, clock) -> list:
        """The kernel of a dense layer (:data:`LCA_DENSE_KERNEL_CPP`; numpy implementation alongside)."""
        N, M = self.n_in[L.name], L.n_atoms
        fn = f"{self.name}_{L.name}_kernel"

        def step(t):
            u = A.variables["u"].get_value()
            a = np.where(u > A.variables["lambda_"].get_value()[0], u - A.variables["lambda_"].get_value()[0], 0.0)
            phi = S.variables["phi"].get_value().reshape(M, N)
            act = np.flatnonzero(a > 0)
            recon = a[act] @ phi[act]
            e = E.variables["x"].get_value() - recon
            E.variables["recon"].get_value()[:] = recon
            E.variables["E"].get_value()[:] = e
            A.variables["drive"].get_value()[:] = phi @ e
            A.variables["E2"].get_value()[:] = np.dot(e, e)
            return 0.0

        code = ""
        if cpp_standalone_active():
            refs = {"u": A.variables["u"], "lam": A.variables["lambda_"], "phi": S.variables["phi"],
                    "x": E.variables["x"], "recon": E.variables["recon"], "E": E.variables["E"],
                    "drive": A.variables["drive"], "E2": A.variables["E2"]}
            code = LCA_DENSE_KERNEL_CPP.format(fn=fn, N=N, M=M, **{k: cpp_array(v) for k, v in refs.items()})
        return kernel_holder(fn, fn, code, step, clock, when="groups", order=-3)

    def _build_conv(self, L, clock) -> list:
        """A convolutional input layer (residual form, shared kernels, plastic; η is a run argument)."""
        from b2models.models.lca_conv import CONV_LCA_FEEDBACK_NEURON, build_residual_conv

        cp, name = self.conv[L.name], self.name
        ns = {"n_steps": self.p.n_iter, "n_iter": self.p.n_iter, f"stim_{L.name}": self.conv_stim[L.name]}
        parts = build_residual_conv(cp, f"{name}_{L.name}", clock, ns, f"stim_{L.name}", self.phi[L.name],
                                    plastic=True, neuron=CONV_LCA_FEEDBACK_NEURON, drive_order=-2,
                                    engine=self.engine)
        A = parts["A"]
        A.lam = L.lam
        A.tau = self.p.tau
        A.fb_gain = 1.0 if self.p.feedback else 0.0
        mon = EventMonitor(A, "done", variables=["a", "u"] if self.record_u else ["a"], name=f"{name}_{L.name}_mon")
        self.A[L.name], self.E[L.name], self.S[L.name], self.mon[L.name] = A, parts["E"], parts["S"], mon
        self.kernel_group[L.name] = parts["KG"]
        return parts["objects"] + [mon]

    def _kernel_args(self, Lname: str) -> dict:
        KG, k = self.kernel_group[Lname], self.phi[Lname]
        return {getattr(KG, f"w_{c}"): k[:, c].ravel() for c in range(k.shape[1])}

    def reconstruct(self, layer: str, a) -> np.ndarray:
        """Φa of ``layer`` with the current dictionary: its input (flattened) for codes a (P, size)."""
        return reconstruct(self.spec[layer], self.phi[layer], a)

    # -- running --------------------------------------------------------------------------
    def run(self, inputs: dict, learn: bool = False, feedback: bool | None = None, seed: int | None = None,
            learn_layers=None) -> dict:
        """Present ``n_pres`` inputs; returns layer -> {'a': (n_pres, M), 'u': (n_pres, M)}.

        ``learn``: update the dictionaries (of ``learn_layers``, default all) at the end of every
        presentation; ``feedback``: override :attr:`LCAParams.feedback` for this run.
        """
        args, xs = {}, {}
        extra = set(inputs) - set(self.input_dims)
        if extra:
            raise ValueError(f"unknown input modalities {sorted(extra)}; expected {list(self.input_dims)}")
        for m, d in self.input_dims.items():
            x = inputs.get(m)
            if x is None:
                x = np.zeros((self.n_pres, d))
            x = np.asarray(x, dtype=float)
            if x.shape != (self.n_pres, d):
                raise ValueError(f"input {m!r} of shape {x.shape}, expected {(self.n_pres, d)}")
            xs[m] = x
            if m in self.stim:
                args[self.stim[m]] = x
        for Ln, cp in self.conv.items():
            from b2models.models.lca_conv import pad_input

            x = xs[self.spec[Ln].inputs[0]].reshape((self.n_pres,) + tuple(cp.in_shape))
            args[self.conv_stim[Ln]] = pad_input(x, cp).reshape(self.n_pres, -1)
        fb = self.p.feedback if feedback is None else feedback
        learn_layers = set(self.spec) if learn_layers is None else set(learn_layers)
        for L in self.layers:
            if L.is_conv:
                args.update(self._kernel_args(L.name))
            else:
                args[self.S[L.name].phi] = self.phi[L.name].T.ravel()
            args[self.S[L.name].eta] = self.p.eta if (learn and L.name in learn_layers) else 0.0
            args[self.A[L.name].fb_gain] = 1.0 if fb else 0.0
        self.session.run(args, seed=seed)
        out = {}
        for L in self.layers:
            M, N = L.n_atoms, self.n_in[L.name]
            if learn and L.name in learn_layers:
                if L.is_conv:
                    from b2models.models.lca_conv import normalise_kernels

                    KG, (M, C, K, _) = self.kernel_group[L.name], self.phi[L.name].shape
                    w = np.stack([np.asarray(getattr(KG, f"w_{c}")[:]).reshape(M, K, K) for c in range(C)], axis=1)
                    self.phi[L.name] = normalise_kernels(w)
                else:
                    self.phi[L.name] = np.asarray(self.S[L.name].phi[:]).reshape(M, N).T.copy()
            out[L.name] = self._read_monitor(self.mon[L.name], L.size)
        return out

    def _read_monitor(self, mon, M) -> dict:
        step = np.round(np.asarray(mon.t[:]) / float(self.p.dt)).astype(np.int64)
        pres = step // self.p.n_iter
        idx = np.asarray(mon.i[:])
        res = {}
        for var in ("a", "u") if self.record_u else ("a",):
            arr = np.zeros((self.n_pres, M))
            arr[pres, idx] = np.asarray(getattr(mon, var)[:])
            res[var] = arr
        if len(idx) != self.n_pres * M:
            raise RuntimeError(f"expected {self.n_pres * M} end-of-presentation records, got {len(idx)}")
        return res

    def present(self, inputs: dict, learn: bool = False, feedback: bool | None = None, seed: int = 0,
                learn_layers=None, progress=None) -> dict:
        """Present any number of inputs (modality -> (n, dim)) in chunks of ``n_pres``; the last
        chunk is padded with zeros.  Returns layer -> {'a': (n, M), 'u': (n, M)}."""
        n = {len(np.asarray(v)) for v in inputs.values() if v is not None}
        if len(n) != 1:
            raise ValueError(f"all modalities need the same number of inputs, got {sorted(n)}")
        n = n.pop()
        chunks = range(0, n, self.n_pres)
        if progress is not None:
            chunks = progress(chunks, desc="LCA chunks", total=len(chunks))
        res: dict = {}
        for k, s in enumerate(chunks):
            chunk = {}
            for m, v in inputs.items():
                if v is None:
                    continue
                v = np.asarray(v, dtype=float)[s:s + self.n_pres]
                if len(v) < self.n_pres:
                    v = np.concatenate([v, np.zeros((self.n_pres - len(v), v.shape[1]))])
                chunk[m] = v
            o = self.run(chunk, learn=learn and (s + self.n_pres <= n), feedback=feedback,
                         seed=seed * 1_000_003 + k, learn_layers=learn_layers)
            for L, d in o.items():
                for var, arr in d.items():
                    res.setdefault(L, {}).setdefault(var, []).append(arr[:min(self.n_pres, n - s)])
        return {L: {var: np.concatenate(v) for var, v in d.items()} for L, d in res.items()}


def top_down(net_phi: dict, layers, a_top, path, part_offset: int = 0, part_size: int | None = None):
    """Reconstruct a lower layer's input from the code of the layer above, down a chain of layers.

    ``a_top`` (P, M_top): code of ``path[0]``; the reconstruction Φ a of ``path[0]`` is sliced to
    [part_offset, part_offset + part_size) (the part coding ``path[1]``), thresholded with the λ of
    ``path[1]`` and reconstructed again, down to the input of ``path[-1]``.  Returns (P, N_input).
    """
    spec = {L.name: L for L in layers}
    r = reconstruct(spec[path[0]], net_phi[path[0]], a_top)
    if part_size is not None:
        r = r[:, part_offset:part_offset + part_size]
    for name in path[1:]:
        a = soft_threshold(r, spec[name].lam)
        r = reconstruct(spec[name], net_phi[name], a)
    return r


# ----------------------------------------------------------------------------------------
# direct form (frozen single layer)
# ----------------------------------------------------------------------------------------
class LCADirectLayer:
    """One input layer with direct lateral inhibition (ΦᵀΦ − I) and a frozen dictionary ``phi``."""

    def __init__(self, p: LCAParams, phi, lam: float, n_pres: int, session: Session, name: str = "lcad"):
        p.validate()
        self.p, self.session, self.n_pres = p, session, int(n_pres)
        self.phi = normalise_atoms(phi)
        N, M = self.phi.shape
        clock = Clock(p.dt, name=f"{name}_clock")
        T = p.n_iter * p.dt
        self.stim = TimedArray(np.zeros((self.n_pres, N)), dt=T, name=f"{name}_stim")
        ns = {"stim": self.stim, "n_iter": p.n_iter}
        X = NeuronGroup(N, LCA_DIRECT_INPUT.format(stim="stim"), clock=clock, namespace=ns,
                        events={"present": LCA_PRESENT_EVENT}, name=f"{name}_X")
        A = NeuronGroup(M, LCA_DIRECT_NEURON, method="euler", clock=clock, namespace=ns,
                        events={"done": LCA_DONE_EVENT}, name=f"{name}_A")
        A.lambda_, A.tau = lam, p.tau
        ff = Synapses(X, A, LCA_DIRECT_FEEDFORWARD, on_pre={"present": LCA_DIRECT_FEEDFORWARD_ON_PRE},
                      on_event={"present": "present"}, clock=clock, namespace=ns, name=f"{name}_ff")
        ff.connect(i=np.repeat(np.arange(N), M), j=np.tile(np.arange(M), N))
        ff.phi = self.phi.ravel()
        G = self.phi.T @ self.phi
        ii, jj = np.nonzero(~np.eye(M, dtype=bool))
        inh = Synapses(A, A, LCA_DIRECT_INHIBITION, clock=clock, name=f"{name}_inh")
        inh.connect(i=ii, j=jj)
        inh.G = G[ii, jj]
        reset = A.run_regularly(LCA_DIRECT_RESET, dt=T, when="start", name=f"{name}_reset")
        self.mon = EventMonitor(A, "done", variables=["a"], name=f"{name}_mon")
        self.A, self.M = A, M
        self.net = Network(X, A, ff, inh, reset, self.mon)
        session.build(self.net, self.n_pres * T)

    def run(self, x, seed=None) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n_pres, self.phi.shape[0]):
            raise ValueError(f"input of shape {x.shape}, expected {(self.n_pres, self.phi.shape[0])}")
        self.session.run({self.stim: x}, seed=seed)
        step = np.round(np.asarray(self.mon.t[:]) / float(self.p.dt)).astype(np.int64)
        out = np.zeros((self.n_pres, self.M))
        out[step // self.p.n_iter, np.asarray(self.mon.i[:])] = np.asarray(self.mon.a[:])
        return out

