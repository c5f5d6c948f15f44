"""Spiking deep convolutional network (SDNN) with STDP: retina coding, conv/pool layers, learning, readout.

Kheradpisheh SR, Ganjtabesh M, Thorpe SJ, Masquelier T (2018). STDP-based spiking deep convolutional
neural networks for object recognition. Neural Networks 99: 56-67.
https://doi.org/10.1016/j.neunet.2017.12.005

The module holds the whole feature-learning network of the paper's Caltech experiment:

* the input layer (pure numpy): a grayscale image of 250×160 (W×H) pixels on a 0-255 scale is
  correlated with a 7×7 ON-centre difference-of-Gaussians kernel (σ 1 and 2, zero mean); the
  5-pixel border is zeroed and contrasts below 15 are dropped; every remaining pixel fires exactly
  one spike, brighter contrast earlier: the pixels, ranked by contrast, are split into 15 time
  steps of equal count (intensity-to-latency coding);
* :func:`shared_kernel_synapses`: a 2-D convolution written as Brian2 synapses whose weights are
  *shared*, not copied (DESIGN.md, Backends): a kernel group holds one weight per kernel coefficient and
  every synapse links to its coefficient with ``S.w = linked_var(kernel_group, 'w', index='k_idx')``;
  synapses are created sorted by presynaptic index;
* :class:`SpikingConvNet`: conv1 (4 maps 5×5, threshold 10) → pool1 (7×7, stride 6) → conv2 (20 maps
  17×17, threshold 60) → pool2 (5×5, stride 5) → conv3 (20 maps 5×5, threshold 2) (:class:`SDNNParams`),
  non-leaky integrate-and-fire neurons that fire at most once per image, first-spike pooling, lateral
  inhibition, and STDP with k winners per image; one compiled network serves learning of every layer and
  feature extraction (the learning layer, k, a⁺/a⁻, thresholds and kernels are run arguments);
* :class:`ConvLayer`: a single valid convolution layer fed by a SpikeGeneratorGroup (one image per build),
  kept as the simplest check of the shared kernels against a scipy correlation.

How one run works (all of it Brian2 code, ``b2models show sdnn``): a chunk of images goes through ONE run.
The input is a NeuronGroup that fires when the image's local step equals its entry in a 2-D TimedArray
(image × pixel; one row per image), so the input changes per run through ``run_args``. Every image lasts
``t_fwd + R + 1`` steps; ``run_regularly`` on an image clock resets all state at the end of an image, and
StateMonitors on the same clock (scheduled just before the reset) record the conv3 potentials (the readout)
and the number of STDP winners.

* Lateral inhibition (conv layers): a custom ``candidate`` event (above threshold, not fired, position not
  taken) travels, before the threshold test, through synapses that join the maps at each position; each
  candidate counts the candidates with a higher potential (ties: lower map) and only the one whose count
  is 0 fires; its spike then closes the position for the other maps for the rest of the image ("per
  position only the earliest, highest-potential map fires"). pool1 closes positions too (the authors'
  code does): maps that fire in the same step at a position all pass.
* First-spike pooling: a pool unit counts the input spikes of its window and fires once, one step after
  the first one.
* A layer can only fire until one step after the last step in which a spike can reach it (input steps
  0..n_steps−1 plus one step per layer), so its threshold tests are limited to those steps; the results are
  the same as with tests in every forward step (a candidate fires or is blocked in the step it appears).
* STDP winners (k per layer and image: 10/4/2) are chosen after the forward part of the image, in R =
  max min(k, maps) rounds of one step each: the fired, still-enabled neurons of the learning layer send an
  ``offer`` event to a one-neuron selector, whose synapse code keeps the best offer (earliest spike, then
  highest potential at the spike, then lowest index); in the same step (its threshold test is scheduled
  after the offers' synapses) the selector fires (while fewer than k winners), marks the winner and
  disables its map and a neighbourhood (offset 5/2/5 positions) in all maps before the next round.
* STDP: a winner emits a ``learn`` event that runs the rule on its incoming synapses (a post pathway of
  the conv synapses): Δw = a⁺·w(1−w) if the input spike reached the potential before the output spike,
  else −a⁻·w(1−w) (also when the input never fired); the synapses write through ``linked_var`` into the
  kernel group, so every synapse of the map sees the change at once. The weights are clipped to [0, 1].
* Choice measured for speed: winner selection and STDP inside the binary (a chunk of 50 images per run)
  rather than in Python between images; one run per image would pay the start-up of the ~24 M-synapse
  binary (loading and building the synapses, seconds) for every image (numbers in benchmarks/bench_sdnn.py
  and benchmarks/results/sdnn.json).

Index conventions (row-major everywhere): input neuron ``(c, y, x)`` of a (C, H, W) map is
``(c*H + y)*W + x``; output neuron ``(m, y, x)`` of (n_maps, Ho, Wo) maps is ``(m*Ho + y)*Wo + x``;
kernel coefficient ``(m, c, dy, dx)`` of a (n_maps, C, k, k) kernel is ``((m*C + c)*k + dy)*k + dx``.
The potential of output (m, y, x) integrates Σ_c,dy,dx w[m, c, dy, dx]·s[c, y+dy−pad, x+dx−pad]
(a correlation, as in the paper's code); the network's conv layers use 'same' padding k//2, pooling
padding size//2 (the authors' code does both), so the Caltech maps are 160×250 → 27×42 → 6×9.

Deviations from the paper and its public code (deliberate):

* Only the ON-centre DoG channel is built by default; ``input_channels='on_off'`` adds the OFF-centre
  channel (the negative half of the same DoG response), ranked together with the ON channel in one latency
  code, and conv1 kernels then span both channels (the Caltech input of the paper has ON and OFF maps).
* DoG kernel scaling: zero mean, then divided by its maximum (centre = 1), as in the authors' Python
  code; the paper states only the kernel size and the two σ. Ties in contrast are ranked by pixel index.
* Timing: each layer adds one step of delay (as in the authors' code: layer i at step t integrates the
  spikes of layer i−1 at step t−1); an image runs for n_steps + (number of layers) forward steps so that
  the last input spikes reach conv3 (the authors' code stops after 15 steps in all).
* STDP is applied once per image after the forward pass, with the winners chosen over the whole image
  (earliest spike first, then potential); the authors' code selects winners and updates weights at every
  time step during the forward pass, so later spikes of the same image see the updated weights. The rule,
  the winner inhibition (map + neighbourhood) and k are the same.
* Kernel coefficients that fall on the zero padding at the map border have no synapse, so they are not
  depressed when an edge neuron wins (the authors' code depresses them).
* The potential used to rank simultaneous winners is the one that crossed the threshold (before the
  input of the spike's step).
* Pooling is first-spike in every pool layer (a unit fires once per image), as the paper describes it. The
  authors' code lets pool2 (no lateral inhibition there) fire at every step that follows input in its window,
  and its STDP adds (n·(a⁺ + a⁻) − a⁻)·w(1−w) where n is the number of input spikes before the output spike
  (the plain rule when n ≤ 1): ``PoolSpec(multi_spike=True)`` and ``ConvSpec(stdp_count=True)`` build both
  (off by default; ``recollection.features``: ``sdnn_pool2_multi_spike``, ``stdp_spike_count``).
* No second threshold for feature extraction by default (``readout_conv2_threshold`` = 60; the
  authors' code uses 50 for conv2 then).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
INPUT_CHANNELS = ("on", "on_off")


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
    channels: str = "on"  # 'on': ON-centre map only; 'on_off': ON- and OFF-centre maps

    @property
    def n_channels(self) -> int:
        return 2 if self.channels == "on_off" else 1

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
        if self.channels not in INPUT_CHANNELS:
            raise ValueError(f"input channels {self.channels!r}: expected one of {INPUT_CHANNELS}")


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


def _dog_response(image, p: RetinaParams) -> np.ndarray:
    """Signed DoG response (H, W) of ``image`` on the 0-255 scale, border zeroed."""
    from scipy.ndimage import correlate

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
    return out


def dog_contrast(image, p: RetinaParams | None = None) -> np.ndarray:
    """ON-centre contrast map (H, W) of a grayscale ``image`` (H, W) with values in [0, 1].

    The image is put on the 0-255 scale, correlated with :func:`dog_kernel` (zero padding), the border is
    zeroed, and negative contrasts and contrasts below ``p.threshold`` are set to 0.
    """
    p = p or RetinaParams()
    return dog_channels(image, replace(p, channels="on"))[0]


def dog_channels(image, p: RetinaParams | None = None) -> np.ndarray:
    """Contrast maps (C, H, W) of the input layer: the ON map of :func:`dog_contrast`, and with
    ``p.channels == 'on_off'`` also the OFF map (the negated response, thresholded the same way)."""
    p = p or RetinaParams()
    r = _dog_response(image, p)
    maps = [r, -r] if p.channels == "on_off" else [r]
    out = np.stack(maps)
    out[out < p.threshold] = 0.0
    return out


def latency_code(contrast, n_steps: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """One spike per pixel with positive contrast, brighter earlier, in ``n_steps`` equal-count bins.

    The pixels are ranked by decreasing contrast (ties: lower pixel index first) and the ranking is split
    into ``n_steps`` consecutive bins whose sizes differ by at most one (earlier bins take the extra spike).
    Returns ``(spike_step, pixel_index)``, int64, sorted by step then rank; pixel index = y*W + x for an
    (H, W) map, the flat index ``(c*H + y)*W + x`` for (C, H, W) maps (all channels in one ranking).
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
    """Image (H, W) in [0, 1] → ``(spike_step, input_index)`` of the input layer; input index
    ``(c*H + y)*W + x`` over the channels of :func:`dog_channels`, all ranked in one latency code."""
    p = p or RetinaParams()
    return latency_code(dog_channels(image, p), p.n_steps)


# ----------------------------------------------------------------------------------------
# weight sharing
# ----------------------------------------------------------------------------------------
def conv_connectivity(in_shape: tuple[int, int, int], n_maps: int, kernel_size: int, pad: int = 0):
    """(pre, post, k_idx) of a 2-D convolution with zero padding ``pad``, sorted by presynaptic index (stable).

    ``in_shape`` is (C, H, W); the outputs are (n_maps, H+2·pad-k+1, W+2·pad-k+1); see the module docstring
    for the index conventions. Output (m, y, x) reads input (c, y+dy-pad, x+dx-pad); coefficients that fall
    on the zero padding get no synapse.
    """
    C, H, W = (int(s) for s in in_shape)
    k = int(kernel_size)
    pad = int(pad)
    if min(C, H, W, n_maps, k) < 1 or pad < 0:
        raise ValueError(f"in_shape {in_shape}, n_maps {n_maps} and kernel_size {k} must all be >= 1, pad >= 0")
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"kernel of size {k} is larger than the (padded) input map {H}×{W}")
    parts = []
    m = np.arange(n_maps)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    for dy in range(k):
        ys = np.arange(max(0, pad - dy), min(Ho, H + pad - dy))
        for dx in range(k):
            xs = np.arange(max(0, pad - dx), min(Wo, W + pad - dx))
            if ys.size == 0 or xs.size == 0:
                continue
            y, x = ys[None, None, :, None], xs[None, None, None, :]
            shape = (n_maps, C, ys.size, xs.size)
            pre = np.broadcast_to((c * H + (y + dy - pad)) * W + (x + dx - pad), shape)
            post = np.broadcast_to((m * Ho + y) * Wo + x, shape)
            kid = np.broadcast_to(((m * C + c) * k + dy) * k + dx, shape)
            parts.append(np.stack([pre.ravel(), post.ravel(), kid.ravel()]))
    pre, post, k_idx = np.concatenate(parts, axis=1).astype(np.int64)
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
    pad: int = 0,
    on_post=None,
    on_event=None,
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
    pre, post, k_idx = conv_connectivity((C, H, W), n_maps, k, pad)
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
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
    extra = {k: v for k, v in (("on_post", on_post), ("on_event", on_event)) if v is not None}
    syn = Synapses(source, target, model=model, on_pre=on_pre, clock=clock, name=name, namespace=namespace, **extra)
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


# ========================================================================================
# the full network: many images per run, first-spike pooling, lateral inhibition, STDP
# ========================================================================================
#: an image's local time step: every image lasts ``n_img`` steps, after one initial step of the run
LOCAL_STEP = "((timestep(t, dt) + n_img - 1) % n_img)"

INPUT_NEURON = """
ts : 1  # step of this pixel's spike in the current image (1e9: none yet)
"""
#: the pixel fires in the step given by the input array (stim: image × pixel, -1 = no spike)
INPUT_THRESHOLD = f"{LOCAL_STEP} < n_steps and abs(stim(t - dt, i) - {LOCAL_STEP}) < 0.5"
INPUT_RESET = f"ts = {LOCAL_STEP}"

CONV_NEURON = """
v : 1                        # membrane potential (non-leaky, never reset within an image)
fired : 1                    # 1 once the neuron fired in this image
blocked : 1                  # 1 once another map fired at this position (lateral inhibition)
n_better : integer           # candidates at this position with a higher potential, this step
ts : 1                       # step of the spike in this image (1e9: none)
v_spike : 1                  # potential when it fired
enabled : 1                  # may still be chosen as an STDP winner in this image
winner : 1                   # 1: chosen as an STDP winner in this image
learned : 1                  # 1: its STDP update has been applied
mp : integer (constant)      # map index m
py : integer (constant)      # row y
px : integer (constant)      # column x
nid : integer (constant)     # neuron index ((m*H + y)*W + x)
v_th : 1 (shared)            # firing threshold
learning : 1 (shared)        # 1: this layer learns (offers STDP candidates)
"""
#: may fire: above threshold, not yet fired, position not taken, and early enough in the image that input can
#: still have arrived (t_fire: one step after the last step in which the layer can receive a spike)
CONV_CANDIDATE = f"{LOCAL_STEP} < t_fire and v >= v_th and fired < 0.5 and blocked < 0.5"
#: ... and no candidate at the same position (other map) has a higher potential (ties: lower map)
CONV_THRESHOLD = CONV_CANDIDATE + " and n_better == 0"
CONV_RESET = f"""
fired = 1
ts = {LOCAL_STEP}
v_spike = v
"""
#: after the forward part, one step per round: fired, still-enabled neurons offer themselves as STDP winners
CONV_OFFER = (f"learning > 0.5 and {LOCAL_STEP} >= t_fwd and {LOCAL_STEP} < t_fwd + n_rounds and "
              f"fired > 0.5 and enabled > 0.5")
#: a chosen winner applies STDP once (winners exist only in the learning layer, after the forward part)
CONV_LEARN = f"learning > 0.5 and {LOCAL_STEP} > t_fwd and winner > 0.5 and learned < 0.5"

#: lateral inhibition, candidate pathway: count the candidates at the same position that beat this one
LATERAL_COMPETE_ON_CANDIDATE = """
n_better_post += int(v_post >= v_th_post and (v_pre > v_post or (v_pre == v_post and mp_pre < mp_post)))
"""
#: lateral inhibition, spike pathway: the position is taken for the rest of the image
LATERAL_BLOCK_ON_SPIKE = "blocked_post = 1"

POOL_NEURON = """
n_in : 1               # input spikes received in this image
fired : 1              # 1 once the neuron fired in this image
blocked : 1            # 1 once another map fired at this position (lateral inhibition)
ts : 1                 # step of the spike in this image (1e9: none)
on : 1 (shared)        # 0: the layer is switched off (nothing propagates beyond it)
"""
#: first-spike pooling: fire once, one step after the first input spike in the window (t_fire as for conv)
POOL_THRESHOLD = f"on > 0.5 and {LOCAL_STEP} < t_fire and n_in > 0.5 and fired < 0.5 and blocked < 0.5"
POOL_RESET = f"""
fired = 1
ts = {LOCAL_STEP}
"""
POOL_ON_PRE = "n_in_post += 1"

#: multi-spike pooling (the authors' code, pool2): a unit fires at every step that follows a step with input in
#: its window, with no refractoriness; ``ts`` keeps the first spike, ``n_out`` counts the spikes
POOL_MULTI_NEURON = POOL_NEURON + """t_in : 1               # local step of the latest input spike (-1e9: none)
n_out : 1              # spikes of the unit in this image
"""
POOL_MULTI_THRESHOLD = f"on > 0.5 and {LOCAL_STEP} < t_fire and abs(t_in - ({LOCAL_STEP} - 1)) < 0.5 and blocked < 0.5"
POOL_MULTI_RESET = f"""
ts = ts + int(fired < 0.5) * ({LOCAL_STEP} - ts)
fired = 1
n_out += 1
"""
POOL_MULTI_ON_PRE = f"""
n_in_post += 1
t_in_post = {LOCAL_STEP}
"""

CONV_LEARNING_SYNAPSE = """
w : 1 (linked)              # the shared kernel coefficient
k_idx : integer (constant)  # which kernel coefficient: ((m*C + c)*k + dy)*k + dx
"""
#: simplified STDP at a winner: Δw = a⁺·w(1−w) if the input spike reached the potential before the output
#: spike (pre "before or with" post), else Δw = −a⁻·w(1−w), also for inputs that never fired; a⁺ and a⁻
#: are per-image values (TimedArrays over the images of a run), so a learning-rate schedule can change
#: within a run
STDP_ON_LEARN = """
rate = int(ts_pre < ts_post) * a_plus(t - dt) - int(ts_pre >= ts_post) * a_minus(t - dt)
w = clip(w + rate * w * (1 - w), 0, 1)
"""

#: spike-count STDP (the authors' code; for a layer whose input units can fire more than once): every synapse
#: counts the input spikes that arrive before its output neuron fires, and a winner applies
#: Δw = (n·(a⁺ + a⁻) − a⁻)·w(1−w) with n that count: −a⁻ without an earlier input spike, +a⁺ with one (the rule
#: above), 2a⁺ + a⁻ with two, ...
CONV_COUNT_SYNAPSE = CONV_LEARNING_SYNAPSE + """n_before : 1               # input spikes before the post spike
"""
CONV_COUNT_ON_PRE = CONV_ON_PRE + "\nn_before += int(fired_post < 0.5)"
STDP_COUNT_ON_LEARN = """
rate = n_before * (a_plus(t - dt) + a_minus(t - dt)) - a_minus(t - dt)
w = clip(w + rate * w * (1 - w), 0, 1)
"""

WINNER_SELECTOR = """
best_ts : 1               # spike step of the best offer this round
best_v : 1                # its potential at the spike
best_n : integer          # its neuron index
best_m : integer          # its map
best_y : integer          # its row
best_x : integer          # its column
has : 1                   # 1: an offer arrived this round
n_won : integer           # winners so far in this image
quota : integer (shared)  # k: winners per image (0: no learning)
"""
#: offers (in neuron order): keep the earliest spike, then the highest potential, then the lowest index
OFFER_ON_PRE = """
better = int(ts_pre < best_ts_post or (ts_pre == best_ts_post and v_spike_pre > best_v_post))
best_n_post = best_n_post + better * (nid_pre - best_n_post)
best_m_post = best_m_post + better * (mp_pre - best_m_post)
best_y_post = best_y_post + better * (py_pre - best_y_post)
best_x_post = best_x_post + better * (px_pre - best_x_post)
best_v_post = best_v_post + better * (v_spike_pre - best_v_post)
best_ts_post = best_ts_post + better * (ts_pre - best_ts_post)
has_post = 1
"""
SELECTOR_THRESHOLD = "has > 0.5 and n_won < quota"
SELECTOR_RESET = """
n_won += 1
has = 0
best_ts = 1e9
best_v = -1e9
"""
#: the winner learns; its map and its neighbourhood (all maps) are barred for the rest of the image
WINNER_ON_PRE = """
winner_post = winner_post + int(nid_post == best_n_pre)
near = abs(py_post - best_y_pre) <= offset and abs(px_post - best_x_pre) <= offset
enabled_post = enabled_post * (1 - int(mp_post == best_m_pre or near))
"""

IMAGE_RESET = {
    "input": "ts = 1e9",
    "conv": "v = 0\nfired = 0\nblocked = 0\nn_better = 0\nts = 1e9\nv_spike = 0\nenabled = 1\nwinner = 0\nlearned = 0",
    "pool": "n_in = 0\nfired = 0\nblocked = 0\nts = 1e9",
    "pool_multi": "n_in = 0\nfired = 0\nblocked = 0\nts = 1e9\nt_in = -1e9\nn_out = 0",
    "count_synapse": "n_before = 0",
    "selector": "best_ts = 1e9\nbest_v = -1e9\nhas = 0\nn_won = 0",
}

#: a threshold that is never reached (readout layer, switched-off layers)
NEVER = 1e30


@dataclass
class ConvSpec:
    """A convolutional layer ('same' zero padding k//2, stride 1) with its STDP settings."""

    maps: int
    size: int
    threshold: float
    winners: int = 1  # k: STDP winners per image
    offset: int = 0  # winner inhibition: neighbourhood half-width (positions) in all maps
    inhibition: bool = True  # lateral inhibition across maps at each position
    # spike-count STDP (STDP_COUNT_ON_LEARN; the authors' code): only differs from the default rule when the
    # input layer can fire more than once (multi-spike pooling); not in the repr, so that build keys made from
    # repr(layers) stay those of the default network (a caller that sets it adds it to its key)
    stdp_count: bool = field(default=False, repr=False)

    def validate(self):
        if self.maps < 1 or self.size < 1 or self.size % 2 == 0:
            raise ValueError(f"conv layer needs maps >= 1 and an odd size >= 1 (got {self.maps}, {self.size})")
        if self.winners < 0 or self.offset < 0:
            raise ValueError(f"winners and offset must be >= 0 (got {self.winners}, {self.offset})")
        if not isinstance(self.stdp_count, (bool, np.bool_)):
            raise ValueError(f"stdp_count must be true or false, got {self.stdp_count!r}")


@dataclass
class PoolSpec:
    """First-spike pooling (padding size//2): a unit fires once, at the first spike in its window."""

    size: int
    stride: int
    inhibition: bool = False  # a position that fired in one map is closed for the other maps
    # a spike at every step that follows a step with input (the authors' pool2), not only the first (not in the
    # repr: see ConvSpec.stdp_count)
    multi_spike: bool = field(default=False, repr=False)

    def validate(self):
        if self.size < 1 or self.stride < 1:
            raise ValueError(f"pool layer needs size and stride >= 1 (got {self.size}, {self.stride})")
        if not isinstance(self.multi_spike, (bool, np.bool_)):
            raise ValueError(f"multi_spike must be true or false, got {self.multi_spike!r}")


def conv_out_shape(in_shape, spec: ConvSpec):
    _, H, W = in_shape
    return (spec.maps, H, W)


def pool_out_shape(in_shape, spec: PoolSpec):
    C, H, W = in_shape
    p = spec.size // 2
    Ho, Wo = 1 + (H + 2 * p - spec.size) // spec.stride, 1 + (W + 2 * p - spec.size) // spec.stride
    if Ho < 1 or Wo < 1:
        raise ValueError(f"pooling window {spec.size} does not fit the map {H}×{W}")
    return (C, Ho, Wo)


def pool_connectivity(in_shape, spec: PoolSpec):
    """(pre, post) of first-spike pooling, sorted by presynaptic index: unit (c, Y, X) pools the inputs
    (c, y, x) with Y·stride − pad ≤ y < Y·stride − pad + size (same in x), pad = size//2."""
    C, H, W = in_shape
    _, Ho, Wo = pool_out_shape(in_shape, spec)
    p = spec.size // 2

    def pairs(n_in, n_out):
        o = np.repeat(np.arange(n_out), spec.size)
        i = o * spec.stride - p + np.tile(np.arange(spec.size), n_out)
        ok = (i >= 0) & (i < n_in)
        return i[ok], o[ok]

    iy, oy = pairs(H, Ho)
    ix, ox = pairs(W, Wo)
    c = np.arange(C)[:, None, None]
    pre = (c * H + iy[None, :, None]) * W + ix[None, None, :]
    post = (c * Ho + oy[None, :, None]) * Wo + ox[None, None, :]
    pre, post = pre.ravel(), post.ravel()
    order = np.argsort(pre, kind="stable")
    return pre[order], post[order]


def lateral_connectivity(shape):
    """(pre, post) between all maps at each position (no self-connections), sorted by presynaptic index."""
    M, H, W = shape
    P = H * W
    m_pre, m_post = np.meshgrid(np.arange(M), np.arange(M), indexing="ij")
    keep = m_pre != m_post
    m_pre, m_post = m_pre[keep], m_post[keep]
    pos = np.arange(P)
    pre = (m_pre[:, None] * P + pos[None, :]).ravel()
    post = (m_post[:, None] * P + pos[None, :]).ravel()
    order = np.argsort(pre, kind="stable")
    return pre[order], post[order]


def network_steps(n_steps: int, layers) -> tuple[int, int]:
    """(forward steps, STDP selection rounds) of one image: the input's steps plus one step of delay per
    layer (the last spikes must reach the last layer), then one step per winner round."""
    t_fwd = n_steps + len(layers)
    rounds = max([min(s.winners, s.maps) for s in layers if isinstance(s, ConvSpec)] + [0])
    return t_fwd, rounds


@dataclass
class ChunkResult:
    """What one run over a chunk of images produced."""

    potentials: np.ndarray  # final potentials of the last conv layer (n_images, maps, H, W)
    n_winners: np.ndarray  # STDP winners per image and conv layer (n_images, n_conv)
    kernels: list  # kernel of every conv layer after the run
    wall_s: float
    binary_s: float | None
    record: dict | None = None  # with record=True: per layer 'ts' (and 'v', 'winner' for conv) per image
    last_ts: np.ndarray | None = None  # spike step of every last-layer neuron (n_images, maps, H, W); 1e9: none


class SpikingConvNet:
    """The SDNN as one Brian2 network that presents a chunk of ``n_images`` images per run.

    ``in_shape`` (C, H, W) is the input layer; ``layers`` a list of :class:`ConvSpec` and :class:`PoolSpec`.
    Each image takes ``t_fwd + rounds + 1`` steps (see :func:`network_steps`); state is reset at the end of
    every image by ``run_regularly`` on an image clock, and the potentials of the last conv layer (and with
    ``record=True`` every layer's spike steps) are recorded just before that reset.

    The input of a run is an array (n_images, C·H·W) of spike steps (-1: no spike), given to a 2-D
    TimedArray; the kernels of all conv layers, thresholds, the learning layer, its k and a⁺/a⁻ are run
    arguments too, so one compiled binary serves learning of every layer and feature extraction.
    """

    def __init__(self, in_shape, layers, n_steps: int, n_images: int, session: Session, *, dt=1 * ms,
                 record: bool = False, name: str = "sdnn"):
        from brian2 import StateMonitor, TimedArray

        self.in_shape = tuple(int(s) for s in in_shape)
        if len(self.in_shape) != 3 or min(self.in_shape) < 1:
            raise ValueError(f"in_shape must be (C, H, W) with positive sizes, got {in_shape}")
        if n_steps < 1 or n_images < 1:
            raise ValueError(f"n_steps and n_images must be >= 1 (got {n_steps}, {n_images})")
        if not layers or not isinstance(layers[0], ConvSpec):
            raise ValueError("the first layer must be a ConvSpec")
        for spec in layers:
            if not isinstance(spec, (ConvSpec, PoolSpec)):
                raise ValueError(f"unknown layer spec {spec!r}")
            spec.validate()
        self.layers = list(layers)
        self.session = session
        self.n_steps = int(n_steps)
        self.n_images = int(n_images)
        self.record = record
        self.dt = dt
        self.t_fwd, self.rounds = network_steps(n_steps, layers)
        self.n_img = self.t_fwd + self.rounds + 1
        self.n_in = int(np.prod(self.in_shape))
        clock = Clock(dt, name=f"{name}_clock")
        image_clock = Clock(self.n_img * dt, name=f"{name}_image_clock")
        self.stim = TimedArray(-np.ones((self.n_images, self.n_in)), dt=self.n_img * dt, name=f"{name}_stim")
        self.rate_plus = TimedArray(np.zeros(self.n_images), dt=self.n_img * dt, name=f"{name}_a_plus")
        self.rate_minus = TimedArray(np.zeros(self.n_images), dt=self.n_img * dt, name=f"{name}_a_minus")
        ns = {"n_img": self.n_img, "t_fwd": self.t_fwd, "n_rounds": self.rounds, "n_steps": self.n_steps,
              "stim": self.stim, "a_plus": self.rate_plus, "a_minus": self.rate_minus}
        objs = []

        def reset(group, kind):
            objs.append(group.run_regularly(IMAGE_RESET[kind], clock=image_clock, when="end", order=1,
                                            name=f"{group.name}_image_reset"))

        self.input = NeuronGroup(self.n_in, INPUT_NEURON, threshold=INPUT_THRESHOLD, reset=INPUT_RESET,
                                 clock=clock, name=f"{name}_input", namespace=ns)
        self.input.ts = 1e9
        reset(self.input, "input")
        objs.append(self.input)
        self.shapes = [self.in_shape]
        self.groups = [self.input]
        self.conv = []  # dicts: group, kernel, syn, selector, spec, index in self.layers
        self.pools = []
        self.monitors = {}
        prev, shape = self.input, self.in_shape
        for li, spec in enumerate(self.layers):
            lname = f"{name}_L{li + 1}"
            # the last input spike (step n_steps - 1) reaches layer li in step n_steps - 1 + li, so the layer
            # can fire only before step t_fire (candidates resolve in the step they appear)
            t_fire = self.n_steps + li + 1
            if isinstance(spec, ConvSpec):
                out = conv_out_shape(shape, spec)
                M, H, W = out
                n = M * H * W
                g = NeuronGroup(n, CONV_NEURON, threshold=CONV_THRESHOLD, reset=CONV_RESET,
                                events={"candidate": CONV_CANDIDATE, "offer": CONV_OFFER, "learn": CONV_LEARN},
                                clock=clock, name=f"{lname}_conv",
                                namespace=dict(ns, t_fire=t_fire))
                idx = np.arange(n)
                g.mp = idx // (H * W)
                g.py = (idx // W) % H
                g.px = idx % W
                g.nid = idx
                g.v_th = spec.threshold
                g.ts = 1e9
                g.enabled = 1
                g.run_on_event("candidate", "n_better = 0", when="after_resets")
                g.run_on_event("learn", "learned = 1")
                g.thresholder["candidate"].when, g.thresholder["candidate"].order = "before_thresholds", 1
                # the spike's reset runs before this step's synaptic input: v_spike is the crossing potential
                g.resetter["spike"].when = "after_thresholds"
                reset(g, "conv")
                count = bool(spec.stdp_count)
                kernel, syn, n_syn = shared_kernel_synapses(
                    prev, g, shape, M, spec.size, name=f"{lname}_syn", clock=clock,
                    model=CONV_COUNT_SYNAPSE if count else CONV_LEARNING_SYNAPSE,
                    on_pre={"pre": CONV_COUNT_ON_PRE if count else CONV_ON_PRE},
                    on_post={"stdp": STDP_COUNT_ON_LEARN if count else STDP_ON_LEARN},
                    on_event={"pre": "spike", "stdp": "learn"}, pad=spec.size // 2, namespace=ns,
                )
                objs += [g, kernel, syn]
                if count:
                    reset(syn, "count_synapse")
                if spec.inhibition and M > 1:
                    pre, post = lateral_connectivity(out)
                    lat = Synapses(g, g, on_pre={"compete": LATERAL_COMPETE_ON_CANDIDATE,
                                                 "pre": LATERAL_BLOCK_ON_SPIKE},
                                   on_event={"compete": "candidate", "pre": "spike"}, clock=clock,
                                   name=f"{lname}_lateral", namespace=ns)
                    lat.connect(i=pre, j=post)
                    lat.compete.when, lat.compete.order = "before_thresholds", 2
                    objs.append(lat)
                sel = NeuronGroup(1, WINNER_SELECTOR, threshold=SELECTOR_THRESHOLD, reset=SELECTOR_RESET,
                                  clock=clock, name=f"{lname}_selector", namespace=ns)
                sel.best_ts = 1e9
                sel.best_v = -1e9
                reset(sel, "selector")
                offer = Synapses(g, sel, on_pre=OFFER_ON_PRE, on_event="offer", clock=clock,
                                 name=f"{lname}_offer", namespace=ns)
                offer.connect(i=idx, j=np.zeros(n, dtype=int))
                bcast = Synapses(sel, g, on_pre=WINNER_ON_PRE, clock=clock, name=f"{lname}_winner",
                                 namespace=dict(ns, offset=int(spec.offset)))
                bcast.connect(i=np.zeros(n, dtype=int), j=idx)
                # a whole round in one step: offers arrive, the selector fires and bars the winner's
                # neighbourhood before the next step's offers
                offer.pre.when, offer.pre.order = "synapses", 0
                sel.thresholder["spike"].when, sel.thresholder["spike"].order = "synapses", 1
                bcast.pre.when, bcast.pre.order = "synapses", 2
                objs += [sel, offer, bcast]
                self.monitors[f"winners{len(self.conv)}"] = StateMonitor(
                    sel, "n_won", record=0, clock=image_clock, when="end", order=0, name=f"{lname}_mon_won")
                if record:
                    self.monitors[f"rec{li}"] = StateMonitor(
                        g, ["ts", "v", "winner"], record=True, clock=image_clock, when="end", order=0,
                        name=f"{lname}_mon")
                session.expect_size(syn.k_idx, n_syn)
                self.conv.append({"group": g, "kernel": kernel, "syn": syn, "selector": sel, "spec": spec,
                                  "layer": li, "in_shape": shape, "shape": out, "n_synapses": n_syn})
            else:
                out = pool_out_shape(shape, spec)
                n = int(np.prod(out))
                multi = bool(spec.multi_spike)
                g = NeuronGroup(n, POOL_MULTI_NEURON if multi else POOL_NEURON,
                                threshold=POOL_MULTI_THRESHOLD if multi else POOL_THRESHOLD,
                                reset=POOL_MULTI_RESET if multi else POOL_RESET, clock=clock,
                                name=f"{lname}_pool", namespace=dict(ns, t_fire=t_fire))
                g.ts = 1e9
                g.on = 1
                if multi:
                    g.t_in = -1e9
                reset(g, "pool_multi" if multi else "pool")
                pre, post = pool_connectivity(shape, spec)
                ps = Synapses(prev, g, on_pre=POOL_MULTI_ON_PRE if multi else POOL_ON_PRE, clock=clock,
                              name=f"{lname}_poolsyn", namespace=ns)
                ps.connect(i=pre, j=post)
                objs += [g, ps]
                if spec.inhibition and out[0] > 1:
                    pre, post = lateral_connectivity(out)
                    lat = Synapses(g, g, on_pre=LATERAL_BLOCK_ON_SPIKE, clock=clock, name=f"{lname}_lateral",
                                   namespace=ns)
                    lat.connect(i=pre, j=post)
                    objs.append(lat)
                if record:
                    self.monitors[f"rec{li}"] = StateMonitor(
                        g, ["ts", "n_out"] if multi else "ts", record=True, clock=image_clock, when="end", order=0,
                        name=f"{lname}_mon")
                self.pools.append({"group": g, "spec": spec, "layer": li, "shape": out})
            self.shapes.append(out)
            self.groups.append(g)
            prev, shape = g, out
        last = self.conv[-1]
        self.monitors["readout"] = StateMonitor(last["group"], ["v", "ts"], record=True, clock=image_clock,
                                                when="end", order=0, name=f"{name}_mon_readout")
        if record:
            self.monitors["rec_input"] = StateMonitor(self.input, "ts", record=True, clock=image_clock,
                                                      when="end", order=0, name=f"{name}_mon_input")
        self.net = Network(*objs, *self.monitors.values())
        self.duration = (self.n_images * self.n_img + 1) * dt
        session.build(self.net, self.duration)

    # -- helpers ---------------------------------------------------------------------------------
    def kernel_shape(self, c: int) -> tuple[int, int, int, int]:
        layer = self.conv[c]
        k = layer["spec"].size
        return (layer["spec"].maps, layer["in_shape"][0], k, k)

    def initial_kernels(self, mean: float = 0.8, std: float = 0.01, rng=None) -> list[np.ndarray]:
        """Kernels drawn from N(mean, std), clipped to [0.01, 0.99] (as in the authors' code)."""
        rng = np.random.default_rng(rng)
        return [np.clip(rng.normal(mean, std, self.kernel_shape(c)), 0.01, 0.99) for c in range(len(self.conv))]

    def spike_array(self, encoded) -> np.ndarray:
        """List of (spike_step, pixel_index) pairs → (n_images, n_in) steps, -1 for no spike, padded."""
        out = -np.ones((self.n_images, self.n_in))
        if len(encoded) > self.n_images:
            raise ValueError(f"{len(encoded)} images for a chunk of {self.n_images}")
        for n, (steps, index) in enumerate(encoded):
            steps = np.asarray(steps)
            if steps.size and (steps.min() < 0 or steps.max() >= self.n_steps):
                raise ValueError(f"image {n}: spike steps must lie in [0, {self.n_steps})")
            out[n, np.asarray(index, dtype=np.int64)] = steps
        return out

    # -- one run ----------------------------------------------------------------------------------
    def run_chunk(self, spikes, kernels, *, learn: int | None = None, a_plus=0.0,
                  a_minus=0.0, thresholds=None, last_layer: int | None = None,
                  seed: int | None = None) -> ChunkResult:
        """Present a chunk of images.

        ``spikes``: (n_images, n_in) spike steps (-1: none; fewer rows are padded with blank images) or a list
        of ``(spike_step, pixel_index)``; ``kernels``: one array per conv layer; ``learn``: index of the conv
        layer that learns (None: none); ``a_plus``, ``a_minus``: STDP rates of the learning layer, one number
        or one per image; ``thresholds``: per conv layer (None entries keep the spec's value);
        ``last_layer``: index (in ``layers``) of the last layer that propagates, pools after it are off.
        """
        if isinstance(spikes, list):
            spikes = self.spike_array(spikes)
        spikes = np.asarray(spikes, dtype=float)
        n_given = spikes.shape[0]
        if spikes.ndim != 2 or spikes.shape[1] != self.n_in or n_given > self.n_images:
            raise ValueError(f"spikes of shape {spikes.shape}, expected (<= {self.n_images}, {self.n_in})")
        if spikes.size and spikes.max() >= self.n_steps:
            raise ValueError(f"spike steps must be < n_steps = {self.n_steps} (got {spikes.max():g})")
        if n_given < self.n_images:
            spikes = np.concatenate([spikes, -np.ones((self.n_images - n_given, self.n_in))])
        if len(kernels) != len(self.conv):
            raise ValueError(f"{len(kernels)} kernels for {len(self.conv)} conv layers")
        if learn is not None and not 0 <= learn < len(self.conv):
            raise ValueError(f"learn={learn}: no such conv layer (0..{len(self.conv) - 1})")
        thresholds = list(thresholds) if thresholds is not None else [None] * len(self.conv)
        args = {self.stim: spikes}
        for ta, rate, what in ((self.rate_plus, a_plus, "a_plus"), (self.rate_minus, a_minus, "a_minus")):
            rate = np.broadcast_to(np.asarray(rate, dtype=float), (n_given,)) if np.ndim(rate) == 0 else \
                np.asarray(rate, dtype=float)
            if rate.shape != (n_given,):
                raise ValueError(f"{what} of shape {rate.shape}: expected one number or {n_given} "
                                 "(one per image)")
            per_image = np.zeros(self.n_images)
            if learn is not None:
                per_image[:n_given] = rate
            args[ta] = per_image
        for c, (layer, kern) in enumerate(zip(self.conv, kernels)):
            kern = np.asarray(kern, dtype=float)
            if kern.shape != self.kernel_shape(c):
                raise ValueError(f"kernel {c} of shape {kern.shape}, expected {self.kernel_shape(c)}")
            args[layer["kernel"].w] = kern.ravel()
            th = thresholds[c] if thresholds[c] is not None else layer["spec"].threshold
            args[layer["group"].v_th] = float(th)
            on = learn == c
            args[layer["group"].learning] = 1.0 if on else 0.0
            args[layer["selector"].quota] = layer["spec"].winners if on else 0
        for pool in self.pools:
            args[pool["group"].on] = 0.0 if (last_layer is not None and pool["layer"] > last_layer) else 1.0
        info = self.session.run(args, seed=seed)
        n = n_given
        last = self.conv[-1]
        pot = np.asarray(self.monitors["readout"].v[:]).T[1:n + 1].reshape((n,) + last["shape"])
        last_ts = np.asarray(self.monitors["readout"].ts[:]).T[1:n + 1].reshape((n,) + last["shape"])
        won = np.stack([np.asarray(self.monitors[f"winners{c}"].n_won[:])[0, 1:n + 1]
                        for c in range(len(self.conv))], axis=1)
        new_kernels = [np.asarray(layer["kernel"].w[:]).reshape(self.kernel_shape(c)).copy()
                       for c, layer in enumerate(self.conv)]
        rec = None
        if self.record:
            rec = {"input_ts": np.asarray(self.monitors["rec_input"].ts[:]).T[1:n + 1].copy()}
            for li in range(len(self.layers)):
                mon = self.monitors[f"rec{li}"]
                rec[f"ts{li}"] = np.asarray(mon.ts[:]).T[1:n + 1].copy()
                if isinstance(self.layers[li], ConvSpec):
                    rec[f"v{li}"] = np.asarray(mon.v[:]).T[1:n + 1].copy()
                    rec[f"winner{li}"] = np.asarray(mon.winner[:]).T[1:n + 1].copy()
                elif self.layers[li].multi_spike:
                    rec[f"n_out{li}"] = np.asarray(mon.n_out[:]).T[1:n + 1].copy()
        return ChunkResult(potentials=pot.copy(), n_winners=won.astype(int), kernels=new_kernels,
                           wall_s=info.wall_s, binary_s=info.binary_s, record=rec, last_ts=last_ts.copy())


# ----------------------------------------------------------------------------------------
# the paper's network and learning schedule
# ----------------------------------------------------------------------------------------
@dataclass
class SDNNParams:
    """The Caltech network of the paper (values of the public implementation the paper's code derives from)."""

    # input layer
    width: int = 250  # image width after resizing (pixels)
    height: int = 160  # image height (pixels)
    dog_size: int = 7  # DoG kernel side
    sigma_centre: float = 1.0  # DoG centre σ (pixels)
    sigma_surround: float = 2.0  # DoG surround σ (pixels)
    border: int = 5  # border zeroed (pixels)
    contrast_threshold: float = 15.0  # contrasts below this emit no spike
    n_steps: int = 15  # time steps of the latency code
    input_channels: str = "on"  # 'on' (ON-centre DoG) or 'on_off' (ON- and OFF-centre maps, as in the paper)
    # layers
    conv1_maps: int = 4
    conv1_size: int = 5
    conv1_threshold: float = 10.0
    pool1_size: int = 7
    pool1_stride: int = 6
    pool1_inhibition: bool = True  # the authors' code applies lateral inhibition to pool1 as well
    conv2_maps: int = 20
    conv2_size: int = 17
    conv2_threshold: float = 60.0
    pool2_size: int = 5
    pool2_stride: int = 5
    conv3_maps: int = 20
    conv3_size: int = 5
    conv3_threshold: float = 2.0
    readout_conv2_threshold: float = 60.0  # conv2 threshold during feature extraction (authors' code: 50)
    # STDP
    winners1: int = 10  # k winners per image, conv1
    winners2: int = 4
    winners3: int = 2
    offset1: int = 5  # winner inhibition neighbourhood half-width (positions), conv1
    offset2: int = 2
    offset3: int = 5
    a_plus1: float = 0.004  # initial a⁺, conv1
    a_plus2: float = 0.0004
    a_plus3: float = 0.0004
    a_minus_ratio: float = 0.75  # a⁻ = ratio · a⁺
    a_plus_max: float = 0.15  # a⁺ stops doubling here
    a_plus_double_every: int = 500  # a⁺ doubles every this many learning images of a layer
    w_mean: float = 0.8  # initial weights N(mean, std)
    w_std: float = 0.01
    learn_images1: int = 3000  # learning images per layer
    learn_images2: int = 5000
    learn_images3: int = 6000

    def retina(self) -> RetinaParams:
        return RetinaParams(width=self.width, height=self.height, dog_size=self.dog_size,
                            sigma_centre=self.sigma_centre, sigma_surround=self.sigma_surround, border=self.border,
                            threshold=self.contrast_threshold, n_steps=self.n_steps, channels=self.input_channels)

    def in_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of the input layer."""
        return (self.retina().n_channels, self.height, self.width)

    def layers(self) -> list:
        return [
            ConvSpec(self.conv1_maps, self.conv1_size, self.conv1_threshold, self.winners1, self.offset1),
            PoolSpec(self.pool1_size, self.pool1_stride, inhibition=self.pool1_inhibition),
            ConvSpec(self.conv2_maps, self.conv2_size, self.conv2_threshold, self.winners2, self.offset2),
            PoolSpec(self.pool2_size, self.pool2_stride),
            ConvSpec(self.conv3_maps, self.conv3_size, self.conv3_threshold, self.winners3, self.offset3),
        ]

    def a_plus(self, layer: int, n_done: int) -> float:
        """a⁺ of conv layer ``layer`` (0-based) after ``n_done`` learning images of that layer."""
        a0 = (self.a_plus1, self.a_plus2, self.a_plus3)[layer]
        doublings = min(n_done // self.a_plus_double_every, 60)  # 2**60: far beyond any a_plus_max
        return float(min(a0 * 2.0**doublings, self.a_plus_max))

    def learn_images(self) -> tuple[int, int, int]:
        return (self.learn_images1, self.learn_images2, self.learn_images3)

    def validate(self):
        self.retina().validate()
        for spec in self.layers():
            spec.validate()
        if min(self.learn_images()) < 0:
            raise ValueError(f"learn_images must be >= 0, got {self.learn_images()}")
        if not 0 < self.w_mean < 1 or self.w_std < 0:
            raise ValueError(f"need 0 < w_mean < 1 and w_std >= 0 (got {self.w_mean}, {self.w_std})")
        if min(self.a_plus1, self.a_plus2, self.a_plus3) < 0 or self.a_minus_ratio < 0 or self.a_plus_max <= 0:
            raise ValueError("a_plus1..3 and a_minus_ratio must be >= 0 and a_plus_max > 0")
        if self.a_plus_double_every < 1:
            raise ValueError(f"a_plus_double_every must be >= 1, got {self.a_plus_double_every}")


def encode_batch(images, p: RetinaParams) -> np.ndarray:
    """Images (n, H, W) in [0, 1] → (n, C·H·W) int8 spike steps of the input layer (-1: no spike)."""
    images = np.asarray(images)
    out = -np.ones((len(images), p.n_channels * p.height * p.width), dtype=np.int8)
    for n, img in enumerate(images):
        steps, index = encode_image(img, p)
        out[n, index] = steps
    return out


def readout_features(potentials) -> np.ndarray:
    """Per map the maximum potential of the readout layer: (n, maps, H, W) → (n, maps)."""
    pot = np.asarray(potentials)
    return pot.reshape(pot.shape[0], pot.shape[1], -1).max(axis=2)


# ----------------------------------------------------------------------------------------
# learned kernels in a file
# ----------------------------------------------------------------------------------------
#: names of the conv layers' kernels in a kernel file (an .npz archive, one array (maps, C, k, k) per layer)
KERNEL_NAMES = ("conv1", "conv2", "conv3")


def kernel_shapes(p: SDNNParams) -> dict:
    """Expected kernel shape of every conv layer of ``p``, by name: {'conv1': (maps, C, k, k), ...}."""
    shapes, channels = {}, p.in_shape()[0]
    for name, spec in zip(KERNEL_NAMES, [s for s in p.layers() if isinstance(s, ConvSpec)]):
        shapes[name] = (spec.maps, channels, spec.size, spec.size)
        channels = spec.maps
    return shapes


def save_kernels(path, kernels) -> None:
    """Write the learned kernels (one array per conv layer, input side first) as an .npz archive with the
    layers named ``conv1``, ``conv2``, ... (written through a temporary file, then renamed)."""
    import io

    from b2models.results import atomic_write

    kernels = [np.asarray(k, dtype=np.float64) for k in kernels]
    if len(kernels) > len(KERNEL_NAMES) or any(k.ndim != 4 for k in kernels):
        raise ValueError(f"expected up to {len(KERNEL_NAMES)} kernels of shape (maps, C, k, k)")
    buf = io.BytesIO()
    np.savez(buf, **dict(zip(KERNEL_NAMES, kernels)))
    atomic_write(path, buf.getvalue())


def load_kernels(path, shapes: dict) -> list[np.ndarray]:
    """Learned kernels from an .npz file written by :func:`save_kernels` (or by hand: one array per layer
    named ``conv1``, ``conv2``, ...). ``shapes`` (name → shape, :func:`kernel_shapes`) says which layers are
    needed and their shapes; every value must be finite and lie in [0, 1] (the range of the STDP rule).
    Any other file gives one ValueError that names the file and the problem."""
    from pathlib import Path

    f = Path(path)
    if not f.is_file():
        raise ValueError(f"kernel file {f}: no such file")
    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:  # not an npz, truncated, pickled objects, ...
        raise ValueError(f"kernel file {f}: not a readable .npz archive ({e})") from None
    out = []
    for name, shape in shapes.items():
        if name not in arrays:
            raise ValueError(f"kernel file {f}: no layer {name!r} (it holds {sorted(arrays)}; expected "
                             f"{list(shapes)})")
        k = arrays[name]
        if tuple(k.shape) != tuple(shape):
            raise ValueError(f"kernel file {f}: layer {name!r} has shape {tuple(k.shape)}, expected {tuple(shape)} "
                             "(maps, input channels, k, k)")
        if not np.issubdtype(k.dtype, np.number) or not np.all(np.isfinite(k)) or k.min() < 0 or k.max() > 1:
            raise ValueError(f"kernel file {f}: layer {name!r} must hold finite numbers in [0, 1]")
        out.append(k.astype(np.float64))
    return out
