"""Spiking deep convolutional network (SDNN): retina coding and the first convolutional layer.

Kheradpisheh SR, Ganjtabesh M, Thorpe SJ, Masquelier T (2018). STDP-based spiking deep convolutional
neural networks for object recognition. Neural Networks 99: 56-67.
https://doi.org/10.1016/j.neunet.2017.12.005

This module holds the first building blocks of the paper's network (issue 4):

* the input layer (pure numpy): a grayscale image of 250×160 (W×H) pixels on a 0-255 scale is
  correlated with a 7×7 ON-centre difference-of-Gaussians kernel (σ 1 and 2, zero mean); the
  5-pixel border is zeroed and contrasts below 15 are dropped; every remaining pixel fires exactly
  one spike, brighter contrast earlier: the pixels, ranked by contrast, are split into 15 time
  steps of equal count (intensity-to-latency coding);
* :func:`shared_kernel_synapses`: a valid 2-D convolution written as Brian2 synapses whose weights
  are *shared*, not copied (DESIGN.md, Backends): a kernel group holds one weight per kernel
  coefficient and every synapse links to its coefficient with
  ``S.w = linked_var(kernel_group, 'w', index='k_idx')``; synapses are created sorted by
  presynaptic index;
* :class:`ConvLayer`: the first convolutional layer, non-leaky integrate-and-fire neurons that fire at
  most once per image (paper defaults: 4 maps, 5×5 kernels, threshold 10), fed by a
  SpikeGeneratorGroup of the input spikes. The kernel can be replaced per run
  (``run_args={layer.kernel.w: ...}``) without rebuilding.

Index conventions (row-major everywhere): input neuron ``(c, y, x)`` of a (C, H, W) map is
``(c*H + y)*W + x``; output neuron ``(m, y, x)`` of (n_maps, H-k+1, W-k+1) maps is
``(m*Ho + y)*Wo + x``; kernel coefficient ``(m, c, dy, dx)`` of a (n_maps, C, k, k) kernel is
``((m*C + c)*k + dy)*k + dx``. The potential of output (m, y, x) integrates
Σ_c,dy,dx w[m, c, dy, dx]·s[c, y+dy, x+dx] (a correlation, as in the paper's code).

Deviations and choices so far (not yet a reproduction of any figure):

* Only the ON-centre DoG channel is built (the brief of this step); the paper's Caltech input has the
  ON- and OFF-centre maps (2 channels), which :func:`shared_kernel_synapses` already supports (C > 1).
* DoG kernel scaling: zero mean, then divided by its maximum (centre = 1), as in the authors' Python
  code; the paper states only the kernel size and the two σ.
* Ties in contrast are ranked by pixel index (stable sort), so the equal-count bins are deterministic.
* Timing: an input spike in step s reaches the potential in step s, and Brian2 tests the threshold
  before synaptic propagation, so a neuron whose potential reaches threshold in step s fires in step
  s + 1 (one step later than in the event-driven original). Layers are built with
  ``n_steps + 1`` steps so that the last input step is integrated.
* After its spike a neuron is blocked (``fired = 1``) but its potential is not reset, so the final
  potential is the full integrated input (the paper's later layers and the classifier read potentials).
* Not yet here: pooling layers, lateral inhibition / local winner-take-all, STDP learning, the
  later conv layers, the SVM readout; and a new image needs a new build (the input spikes are fixed in
  the SpikeGeneratorGroup).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from brian2 import Clock, Network, NeuronGroup, Quantity, SpikeGeneratorGroup, SpikeMonitor, Synapses, linked_var, ms

from b2models.backend import Session

# ----------------------------------------------------------------------------------------
# equations
# ----------------------------------------------------------------------------------------
KERNEL_GROUP = """
w : 1  # one shared kernel coefficient w[m, c, dy, dx] per neuron of the kernel group
"""

CONV_SYNAPSE = """
w : 1 (linked)              # the shared coefficient this synapse uses, linked to the kernel group
k_idx : integer (constant)  # which kernel coefficient: ((m*C + c)*k + dy)*k + dx
"""

#: non-leaky integration: each input spike adds its weight
CONV_ON_PRE = "v_post += w"

IF_NEURON = """
v : 1                    # membrane potential (non-leaky: changes only by input spikes)
fired : 1                # 1 once the neuron has fired in this presentation
v_th : 1 (shared, constant)  # firing threshold
"""

#: at most one spike per neuron and image
IF_THRESHOLD = "v >= v_th and fired < 0.5"
#: no reset of v: the neuron is blocked, its potential keeps integrating
IF_RESET = "fired = 1"


# ----------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------
@dataclass
class RetinaParams:
    """Input layer (paper Sec. 2.1 and the Caltech experiment): DoG filtering and latency coding."""

    width: int = 250  # image width W after resizing (pixels)
    height: int = 160  # image height H (pixels)
    dog_size: int = 7  # DoG kernel side (pixels)
    sigma_centre: float = 1.0  # σ of the centre Gaussian (pixels)
    sigma_surround: float = 2.0  # σ of the surround Gaussian (pixels)
    border: int = 5  # pixels zeroed at each image border
    threshold: float = 15.0  # contrasts below this (0-255 intensity scale) emit no spike
    n_steps: int = 15  # time steps over which the spikes are spread

    def validate(self):
        if self.width < 1 or self.height < 1:
            raise ValueError(f"width and height must be >= 1 (got {self.width}, {self.height})")
        if self.dog_size < 1 or self.dog_size % 2 == 0:
            raise ValueError(f"dog_size must be an odd number >= 1, got {self.dog_size}")
        if not 0 < self.sigma_centre < self.sigma_surround:
            raise ValueError(
                f"need 0 < sigma_centre < sigma_surround (got {self.sigma_centre}, {self.sigma_surround})"
            )
        if self.border < 0 or self.n_steps < 1:
            raise ValueError(f"border must be >= 0 and n_steps >= 1 (got {self.border}, {self.n_steps})")


@dataclass
class ConvParams:
    """A convolutional layer of non-leaky integrate-and-fire neurons; defaults: the paper's conv1 (Caltech)."""

    n_maps: int = 4  # feature maps
    kernel_size: int = 5  # kernel side k (pixels)
    threshold: float = 10.0  # firing threshold of the membrane potential
    dt: Quantity = field(default_factory=lambda: 1 * ms)  # one time step of the latency code
    n_steps: int = 15  # input time steps per image

    def validate(self):
        if self.n_maps < 1 or self.kernel_size < 1 or self.n_steps < 1:
            raise ValueError(
                f"n_maps, kernel_size and n_steps must be >= 1 (got {self.n_maps}, {self.kernel_size}, {self.n_steps})"
            )
        if float(self.dt) <= 0:
            raise ValueError(f"dt must be positive, got {self.dt}")


# ----------------------------------------------------------------------------------------
# input layer (pure numpy)
# ----------------------------------------------------------------------------------------
def dog_kernel(size: int = 7, sigma_centre: float = 1.0, sigma_surround: float = 2.0) -> np.ndarray:
    """ON-centre difference of Gaussians, ``size``×``size``, zero mean, centre value 1."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd number >= 1, got {size}")
    if not 0 < sigma_centre < sigma_surround:
        raise ValueError(f"need 0 < sigma_centre < sigma_surround (got {sigma_centre}, {sigma_surround})")
    r = np.arange(size) - size // 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    g = np.exp(-d2 / (2 * sigma_centre**2)) / sigma_centre - np.exp(-d2 / (2 * sigma_surround**2)) / sigma_surround
    g = g - g.mean()
    return g / g.max()


def dog_contrast(image, p: RetinaParams | None = None) -> np.ndarray:
    """ON-centre contrast map (H, W) of a grayscale ``image`` (H, W) with values in [0, 1].

    The image is put on the 0-255 scale, correlated with :func:`dog_kernel` (zero padding), the border is
    zeroed, and negative contrasts and contrasts below ``p.threshold`` are set to 0.
    """
    from scipy.ndimage import correlate

    p = p or RetinaParams()
    p.validate()
    image = np.asarray(image, dtype=np.float64)
    if image.shape != (p.height, p.width):
        raise ValueError(
            f"image of shape {image.shape}, expected (H, W) = {(p.height, p.width)}: resize it first "
            f"(data.loaders.load_caltech(size=({p.width}, {p.height})) does)"
        )
    if image.size and (image.min() < 0 or image.max() > 1):
        raise ValueError(f"image values must lie in [0, 1], got [{image.min():g}, {image.max():g}]")
    kernel = dog_kernel(p.dog_size, p.sigma_centre, p.sigma_surround)
    out = correlate(image * 255.0, kernel, mode="constant", cval=0.0)
    if p.border:
        b = p.border
        out[:b, :] = 0
        out[-b:, :] = 0
        out[:, :b] = 0
        out[:, -b:] = 0
    out[out < p.threshold] = 0.0
    return out


def latency_code(contrast, n_steps: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """One spike per pixel with positive contrast, brighter earlier, in ``n_steps`` equal-count bins.

    The pixels are ranked by decreasing contrast (ties: lower pixel index first) and the ranking is split
    into ``n_steps`` consecutive bins whose sizes differ by at most one (earlier bins take the extra spike).
    Returns ``(spike_step, pixel_index)``, int64, sorted by step then rank; pixel index = y*W + x.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    values = np.asarray(contrast, dtype=np.float64).ravel()
    if np.any(~np.isfinite(values)):
        raise ValueError("contrast contains NaN or infinite values")
    active = np.flatnonzero(values > 0)
    order = active[np.argsort(-values[active], kind="stable")]
    steps = np.empty(order.size, dtype=np.int64)
    for s, chunk in enumerate(np.array_split(np.arange(order.size), n_steps)):
        steps[chunk] = s
    return steps, order.astype(np.int64)


def encode_image(image, p: RetinaParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W) in [0, 1] → ``(spike_step, pixel_index)`` of the ON-centre input layer."""
    p = p or RetinaParams()
    return latency_code(dog_contrast(image, p), p.n_steps)


# ----------------------------------------------------------------------------------------
# weight sharing
# ----------------------------------------------------------------------------------------
def conv_connectivity(in_shape: tuple[int, int, int], n_maps: int, kernel_size: int):
    """(pre, post, k_idx) of a valid 2-D convolution, sorted by presynaptic index (stable).

    ``in_shape`` is (C, H, W); the outputs are (n_maps, H-k+1, W-k+1); see the module docstring for the
    index conventions.
    """
    C, H, W = (int(s) for s in in_shape)
    k = int(kernel_size)
    if min(C, H, W, n_maps, k) < 1:
        raise ValueError(f"in_shape {in_shape}, n_maps {n_maps} and kernel_size {k} must all be >= 1")
    Ho, Wo = H - k + 1, W - k + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"kernel of size {k} is larger than the input map {H}×{W}")
    m, c, dy, dx, y, x = np.meshgrid(
        np.arange(n_maps), np.arange(C), np.arange(k), np.arange(k), np.arange(Ho), np.arange(Wo),
        indexing="ij", sparse=True,
    )
    pre = (c * H + (y + dy)) * W + (x + dx)
    post = (m * Ho + y) * Wo + x
    k_idx = ((m * C + c) * k + dy) * k + dx
    shape = (n_maps, C, k, k, Ho, Wo)
    pre, post, k_idx = (np.broadcast_to(a, shape).ravel().astype(np.int64) for a in (pre, post, k_idx))
    order = np.argsort(pre, kind="stable")
    return pre[order], post[order], k_idx[order]


def shared_kernel_synapses(
    source,
    target,
    in_shape: tuple[int, int, int],
    n_maps: int,
    kernel_size: int,
    *,
    name: str,
    clock: Clock,
    model: str = CONV_SYNAPSE,
    on_pre: str = CONV_ON_PRE,
    kernel=None,
    namespace: dict | None = None,
):
    """A valid 2-D convolution ``source`` (C, H, W) → ``target`` (n_maps, H-k+1, W-k+1) with shared weights.

    Creates the kernel group ``{name}_kernel`` (n_maps·C·k·k neurons, variable ``w``, initial values from
    ``kernel`` of shape (n_maps, C, k, k), else 0) and the synapses ``name``, whose ``model`` must declare
    ``w : 1 (linked)`` and ``k_idx : integer (constant)``; every synapse's ``w`` is the kernel group's
    ``w[k_idx]`` (read and write). Returns ``(kernel_group, synapses, n_synapses)``.
    """
    C, H, W = (int(s) for s in in_shape)
    k = int(kernel_size)
    compact = model.replace(" ", "")
    if "w:1(linked)" not in compact or "k_idx:integer(constant)" not in compact:
        raise ValueError("the synapse model must declare 'w : 1 (linked)' and 'k_idx : integer (constant)'")
    pre, post, k_idx = conv_connectivity((C, H, W), n_maps, k)
    Ho, Wo = H - k + 1, W - k + 1
    if len(source) != C * H * W:
        raise ValueError(f"source has {len(source)} neurons, expected C*H*W = {C * H * W}")
    if len(target) != n_maps * Ho * Wo:
        raise ValueError(f"target has {len(target)} neurons, expected n_maps*Ho*Wo = {n_maps * Ho * Wo}")
    n_kernel = n_maps * C * k * k
    kernel_group = NeuronGroup(n_kernel, KERNEL_GROUP, clock=clock, name=f"{name}_kernel")
    if kernel is not None:
        kernel = np.asarray(kernel, dtype=np.float64)
        if kernel.shape != (n_maps, C, k, k):
            raise ValueError(f"kernel of shape {kernel.shape}, expected {(n_maps, C, k, k)}")
        kernel_group.w = kernel.ravel()
    syn = Synapses(source, target, model=model, on_pre=on_pre, clock=clock, name=name, namespace=namespace)
    syn.connect(i=pre, j=post)
    syn.k_idx = k_idx
    syn.w = linked_var(kernel_group, "w", index="k_idx")
    return kernel_group, syn, int(pre.size)


# ----------------------------------------------------------------------------------------
# the first convolutional layer
# ----------------------------------------------------------------------------------------
@dataclass
class ConvResult:
    """What one presentation produced."""

    v: np.ndarray  # final membrane potentials, (n_maps, Ho, Wo)
    spike_step: np.ndarray  # time step of each output spike
    spike_index: np.ndarray  # output neuron index of each spike ((m*Ho + y)*Wo + x)
    wall_s: float


class ConvLayer:
    """Input spikes (C, H, W) → one convolutional layer of non-leaky IF neurons, built once in ``session``.

    ``spike_step``/``spike_index`` are the input spikes (index ``(c*H + y)*W + x``); the network runs for
    ``p.n_steps + 1`` steps. :meth:`run` presents them once, optionally with a new kernel.
    """

    def __init__(self, in_shape, spike_step, spike_index, p: ConvParams, session: Session, kernel=None,
                 name: str = "sdnn"):
        p.validate()
        self.p = p
        self.session = session
        self.in_shape = tuple(int(s) for s in in_shape)
        C, H, W = self.in_shape
        k = p.kernel_size
        self.out_shape = (p.n_maps, H - k + 1, W - k + 1)
        spike_step = np.asarray(spike_step, dtype=np.int64)
        spike_index = np.asarray(spike_index, dtype=np.int64)
        if spike_step.shape != spike_index.shape:
            raise ValueError(f"spike_step {spike_step.shape} and spike_index {spike_index.shape} differ in shape")
        if spike_step.size and (spike_step.min() < 0 or spike_step.max() >= p.n_steps):
            raise ValueError(f"input spike steps must lie in [0, {p.n_steps})")
        if spike_index.size and (spike_index.min() < 0 or spike_index.max() >= C * H * W):
            raise ValueError(f"input spike indices must lie in [0, {C * H * W})")
        self.kernel_init = np.zeros((p.n_maps, C, k, k)) if kernel is None else np.asarray(kernel, dtype=float)
        # one clock for every object
        clock = Clock(p.dt, name=f"{name}_clock")
        self.input = SpikeGeneratorGroup(
            C * H * W, spike_index, spike_step * p.dt, clock=clock, name=f"{name}_input"
        )
        self.neurons = NeuronGroup(
            int(np.prod(self.out_shape)), IF_NEURON, threshold=IF_THRESHOLD, reset=IF_RESET,
            clock=clock, name=f"{name}_conv1",
        )
        self.neurons.v_th = p.threshold
        self.kernel, self.syn, self.n_synapses = shared_kernel_synapses(
            self.input, self.neurons, self.in_shape, p.n_maps, k, name=f"{name}_conv1_syn", clock=clock,
            kernel=self.kernel_init,
        )
        self.spikes = SpikeMonitor(self.neurons, name=f"{name}_conv1_spikes")
        self.net = Network(self.input, self.neurons, self.kernel, self.syn, self.spikes)
        session.build(self.net, (p.n_steps + 1) * p.dt)

    def run(self, kernel=None, threshold: float | None = None) -> ConvResult:
        """Present the input once; ``kernel`` (n_maps, C, k, k) replaces the shared weights for this run."""
        C = self.in_shape[0]
        k = self.p.kernel_size
        args = {}
        if kernel is not None:
            kernel = np.asarray(kernel, dtype=float)
            if kernel.shape != (self.p.n_maps, C, k, k):
                raise ValueError(f"kernel of shape {kernel.shape}, expected {(self.p.n_maps, C, k, k)}")
            args[self.kernel.w] = kernel.ravel()
        if threshold is not None:
            args[self.neurons.v_th] = float(threshold)
        info = self.session.run(args)
        steps = np.round(np.asarray(self.spikes.t_[:]) / float(self.p.dt)).astype(np.int64)
        return ConvResult(
            v=np.asarray(self.neurons.v[:]).reshape(self.out_shape).copy(),
            spike_step=steps,
            spike_index=np.asarray(self.spikes.i[:], dtype=np.int64),
            wall_s=info.wall_s,
        )

    def kernel_weights(self) -> np.ndarray:
        """The kernel group's current weights, (n_maps, C, k, k)."""
        k = self.p.kernel_size
        return np.asarray(self.kernel.w[:]).reshape(self.p.n_maps, self.in_shape[0], k, k).copy()

    def synapse_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(w, k_idx) as every synapse sees them: w is read through the link to the kernel group."""
        return np.asarray(self.syn.w[:]).copy(), np.asarray(self.syn.k_idx[:]).copy()
