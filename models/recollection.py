"""Recollection by retrograde action potentials: a category ("signifier") layer on top of the SDNN root layer.

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137; extended as: Ben Houidi Z (2024). Backpropagation-based
recollection of memories: biological plausibility and computational efficiency. bioRxiv,
https://doi.org/10.1101/2024.02.05.578854.
The root layer is conv3 of the STDP network of Kheradpisheh et al. (2018), Neural Networks 99:56-67,
https://doi.org/10.1016/j.neunet.2017.12.005 (:mod:`models.sdnn`), without a final pooling layer.

Reproduces the naming experiments (many-shot, few-shot, one-shot; the papers' Figs 3-6) with
``protocols.recollection_naming``, ``protocols.recollection_fewshot``, ``protocols.recollection_oneshot``,
and the recall-from-a-name direction that the papers hypothesise (``protocols.recollection_recall``).

The network (:class:`CategoryNetwork`, all Brian2 code, ``b2models show recollection``):

* Root neurons replay the conv3 spike pattern of an image, one spike per neuron at most, at the step the
  neuron fired in the SDNN (cached by ``recollection.features``, so no image goes through the SDNN twice).
* Category neurons, ``per_class`` per class, are joined to every root neuron by synapses category → root,
  initial weights N(0.5, 0.05) clipped to [0, 1].
* Co-occurrence learning: while an image is shown, the teacher makes the category neurons of its class
  spike at the start of the image (before any root spike). When a root neuron fires, its synapses apply
  the SDNN's simplified STDP rule (``CO_OCCURRENCE_ON_POST``): the category neuron spiked before the root
  neuron (true class) → Δw = λ·a⁺·w(1−w); it did not (other classes) → Δw = −λ·a⁻·w(1−w); a⁺ = 0.007,
  a⁻ = 0.003, λ the neuromodulation factor of the image. Silent root neurons change nothing.
* The variant of the authors' public code (``rule='published'``) applies the depression to the true class
  instead of the other classes: on the teacher spike every synapse of the true class is depressed
  (``TEACHER_ON_PRE_PUBLISHED``) and, where the root neuron then fires, the depression is replaced by the
  potentiation of the weight the synapse had at the teacher spike (``CO_OCCURRENCE_ON_POST_PUBLISHED``); the
  other classes do not change. (Our reading of that code: the category neuron is treated as the
  post-synaptic side of the SDNN rule.)
* Naming: a second post→pre pathway of the same synapses (``RETROGRADE_ON_POST``): each root spike sends a
  retrograde action potential to every category neuron, adding gain·w to its integrated retrograde input
  ``retro``; the gain is the neuromodulatory switch (0: retrieval off, nothing arrives). The class of the
  category neuron with the largest ``retro`` at the end of the image names it; as a spiking decision,
  a category neuron emits a ``named`` event when ``retro`` first reaches ``theta_name``, and the earliest
  such event (ties: larger ``retro``) names the image.
* Optional divisive normalisation (``retro_norm=True``; an extension beyond the papers, off by default): a
  homeostatic scaling of each category neuron's retrograde input by its total synaptic weight. The category
  neuron holds ``w_total`` = Σ_j w[c, j], a summed variable of its synapses (``W_TOTAL_SUMMED``, updated
  every step before the synapses act, so it is the total the weights had before this step's plasticity,
  like the weight the retrograde signal carries), and a root spike adds gain·w·n_root / w_total instead of
  gain·w (``RETROGRADE_ON_POST_NORM``; w_total is clipped at 1e-12, below which every w is 0), i.e. each
  synapse counts relative to the neuron's mean weight. A neuron that owns many strong synapses (after
  many-shot learning on Caltech: motorbikes) then no longer wins the vote just by owning more of them.
  Units: with uniform weights the normalised input is the number of root spikes, i.e. the plain input
  divided by the mean weight; at the initial mean weight 0.5 it is twice the plain input, so a
  ``theta_name`` comparable to the plain rule's is 1 / ``w_mean`` times it (10 instead of 5). The
  largest-input name only depends on ratios and needs no change.
* λ and the gain are per-image arrays (TimedArrays), so one run can learn from some images and name
  others; the initial weights, the images, the teacher and λ/gain are run arguments, so one compiled
  binary serves every pair, shot count and λ of a sweep.

Timing of one image (``n_img = n_root_steps + 2`` steps, dt = 1 ms): step 0 the teacher spikes; a root
neuron that fired at conv3 step s spikes at step s + 1; the last step records the category neurons and a
``run_regularly`` on an image clock resets the state.

Deviations: the root layer's spike pattern is replayed from the cached SDNN run rather than simulated
together with the SDNN (the SDNN is frozen during naming, so the pattern is the same); the category layer
learns for one pass over the labelled images by default (``epochs``); the recall from a name travels
backwards through the conv layers in NumPy over the connectivity the Brian2 SDNN uses
(:func:`recall_input_map`), not as a Brian2 run; the divisive normalisation ``retro_norm`` (off by default)
is an extension of ours, and so is ``root_winners`` of the protocols (:func:`first_root_spikes`, applied
to the cached pattern before it is replayed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brian2 import Clock, Network, NeuronGroup, StateMonitor, Synapses, TimedArray, ms

from b2models.backend import Session

#: local step within an image (the network's first time step precedes image 0)
LOCAL_STEP = "((timestep(t, dt) + n_img - 1) % n_img)"

ROOT_NEURON = """
ts : 1  # step of this root neuron's spike in the current image (1e9: none yet)
"""
#: a root neuron fires one step after its conv3 spike step (step 0 belongs to the teacher)
ROOT_THRESHOLD = f"root_stim(t - dt, i) > -0.5 and abs(root_stim(t - dt, i) + 1 - {LOCAL_STEP}) < 0.5"
ROOT_RESET = f"ts = {LOCAL_STEP}"

CATEGORY_NEURON = """
retro : 1                 # retrograde input integrated in this image: sum of gain*w over root spikes
named : 1                 # 1 once retro reached theta_name in this image
t_named : 1               # step at which retro reached theta_name (1e9: never)
theta_name : 1 (shared)   # naming threshold of the spiking decision
"""
#: teacher: the category neurons of the image's class spike at step 0
CATEGORY_THRESHOLD = f"{LOCAL_STEP} == 0 and teach(t - dt, i) > 0.5"
#: spiking decision: the first time the integrated retrograde input reaches the threshold
CATEGORY_NAMED = "retro >= theta_name and named < 0.5"
CATEGORY_ON_NAMED = f"""
named = 1
t_named = {LOCAL_STEP}
"""

CATEGORY_ROOT_SYNAPSE = """
w : 1                  # weight of the category -> root synapse
pre_spiked : 1         # 1 once the category neuron (teacher) spiked in this image
w_taught : 1           # weight at the teacher spike (published variant of the rule)
a_plus : 1 (shared)    # a+ (potentiation)
a_minus : 1 (shared)   # a- (depression)
"""
#: forward (teacher) spike of the category neuron: remember it for the STDP order test
TEACHER_ON_PRE = "pre_spiked = 1"
#: co-occurrence STDP at a root spike: category spike before the root spike -> LTP, none -> LTD (x lambda)
CO_OCCURRENCE_ON_POST = """
w = clip(w + lam(t - dt) * (pre_spiked * a_plus - (1 - pre_spiked) * a_minus) * w * (1 - w), 0, 1)
"""
#: published variant, teacher spike: depress every synapse of the true class ...
TEACHER_ON_PRE_PUBLISHED = """
pre_spiked = 1
w_taught = w
w = clip(w - lam(t - dt) * a_minus * w * (1 - w), 0, 1)
"""
#: ... and where the root neuron fires, potentiate the weight it had at the teacher spike instead
CO_OCCURRENCE_ON_POST_PUBLISHED = """
w = clip(w + pre_spiked * (w_taught + lam(t - dt) * a_plus * w_taught * (1 - w_taught) - w), 0, 1)
"""
#: naming pathway: a retrograde action potential from the root neuron to every category neuron
RETROGRADE_ON_POST = "retro_pre += gain(t - dt) * w"
#: retro_norm: the category neuron's total synaptic weight (summed over its synapses, every step) ...
CATEGORY_W_TOTAL = "w_total : 1  # total weight of the neuron's synapses (retro_norm)\n"
W_TOTAL_SUMMED = "w_total_pre = w : 1 (summed)\n"
#: ... divides its retrograde input (relative to the mean weight w_total / n_root; w_total = 0 means w = 0)
RETROGRADE_ON_POST_NORM = "retro_pre += gain(t - dt) * w * n_root / clip(w_total_pre, 1e-12, inf)"

IMAGE_RESET = {
    "root": "ts = 1e9",
    "category": "retro = 0\nnamed = 0\nt_named = 1e9",
    "synapse": "pre_spiked = 0",
}

RULES = ("paper", "published")


@dataclass
class RecollectionParams:
    """The category layer and its learning (values from the recollection paper)."""

    per_class: int = 1  # category neurons per class
    w_mean: float = 0.5  # initial weights N(mean, std), clipped to [0, 1]
    w_std: float = 0.05
    a_plus: float = 0.007  # co-occurrence STDP a+
    a_minus: float = 0.003  # co-occurrence STDP a-
    lam: float = 1.0  # neuromodulation factor lambda of learning
    gain: float = 1.0  # retrograde gain while naming (0: retrieval switched off)
    theta_name: float = 5.0  # naming threshold of the spiking decision (integrated retrograde input)
    rule: str = "paper"  # 'paper' or 'published' (the authors' code)
    epochs: int = 1  # passes over the labelled images
    retro_norm: bool = False  # divide the retrograde input by the total weight (a deviation, see module doc)

    def validate(self):
        if self.per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {self.per_class}")
        if not 0 <= self.w_mean <= 1 or self.w_std < 0:
            raise ValueError(f"need 0 <= w_mean <= 1 and w_std >= 0 (got {self.w_mean}, {self.w_std})")
        if self.a_plus < 0 or self.a_minus < 0 or self.lam < 0 or self.gain < 0:
            raise ValueError("a_plus, a_minus, lam and gain must be >= 0")
        if self.rule not in RULES:
            raise ValueError(f"rule={self.rule!r}: expected one of {RULES}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.theta_name <= 0:
            raise ValueError(f"theta_name must be positive, got {self.theta_name}")
        if not isinstance(self.retro_norm, (bool, np.bool_)):
            raise ValueError(f"retro_norm must be true or false, got {self.retro_norm!r}")


def initial_weights(n_cat: int, n_root: int, p: RecollectionParams, rng) -> np.ndarray:
    """(n_cat, n_root) weights drawn from N(w_mean, w_std), clipped to [0, 1]."""
    rng = np.random.default_rng(rng)
    return np.clip(rng.normal(p.w_mean, p.w_std, (n_cat, n_root)), 0.0, 1.0)


def first_root_spikes(root, k: int, seed: int = 0) -> np.ndarray:
    """Keep each image's ``k`` earliest root spikes (``root_winners``; -1 elsewhere): a k-winner-take-all over
    the whole root layer. Spikes in the same step are ordered at random with a generator seeded by ``seed``,
    so the pattern is a fixed function of the conv3 pattern, ``k`` and ``seed``. ``k`` = 0 keeps every spike."""
    root = np.asarray(root)
    if k < 0:
        raise ValueError(f"root_winners must be >= 0 (0: every root spike), got {k}")
    if k == 0:
        return root.copy()
    rng = np.random.default_rng(seed)
    out = -np.ones_like(root)
    for i, row in enumerate(root):
        idx = np.flatnonzero(row >= 0)
        keep = idx[np.lexsort((rng.random(len(idx)), row[idx]))][:k]
        out[i, keep] = row[keep]
    return out


def root_steps_checked(root, n_root: int, n_root_steps: int) -> np.ndarray:
    """Root spike steps (n, n_root) as float, -1 for silent; raises on a wrong shape or a step out of range."""
    root = np.asarray(root)
    if root.ndim != 2 or root.shape[1] != n_root:
        raise ValueError(f"root spike steps of shape {root.shape}, expected (images, {n_root})")
    fired = root >= 0
    if np.any(root[fired] >= n_root_steps) or np.any(root[~fired] != -1):
        raise ValueError(f"root spike steps must be -1 (silent) or lie in [0, {n_root_steps})")
    return root.astype(float)


@dataclass
class NamingRun:
    """What one run of the category network produced."""

    retro: np.ndarray  # integrated retrograde input at the end of each image (n_images, n_cat)
    t_named: np.ndarray  # step of the first naming-threshold crossing (n_images, n_cat); inf: none
    weights: np.ndarray  # (n_cat, n_root) after the run
    wall_s: float


class CategoryNetwork:
    """Category neurons joined to a replayed root layer; learns names and names images in one Brian2 network.

    ``n_present`` images per run (fewer are padded with blank images); ``n_root_steps`` the number of conv3
    steps a root spike may take. Build once, then :meth:`run` with different images, teachers, λ, gains and
    initial weights.
    """

    def __init__(self, n_root: int, n_classes: int, n_present: int, n_root_steps: int, session: Session,
                 p: RecollectionParams, *, name: str = "recollection"):
        p.validate()
        if min(n_root, n_present, n_root_steps) < 1 or n_classes < 2:
            raise ValueError(f"need n_root, n_present, n_root_steps >= 1 and n_classes >= 2 (got {n_root}, "
                             f"{n_present}, {n_root_steps}, {n_classes})")
        self.p = p
        self.n_root, self.n_classes, self.n_present = int(n_root), int(n_classes), int(n_present)
        self.n_cat = self.n_classes * p.per_class
        self.cat_class = np.repeat(np.arange(self.n_classes), p.per_class)
        self.n_root_steps = int(n_root_steps)
        self.n_img = self.n_root_steps + 2
        self.session = session
        dt = 1 * ms
        clock = Clock(dt, name=f"{name}_clock")
        image_clock = Clock(self.n_img * dt, name=f"{name}_image_clock")
        T = self.n_img * dt
        self.root_stim = TimedArray(-np.ones((self.n_present, self.n_root)), dt=T, name=f"{name}_root_stim")
        self.teach = TimedArray(np.zeros((self.n_present, self.n_cat)), dt=T, name=f"{name}_teach")
        self.lam = TimedArray(np.zeros(self.n_present), dt=T, name=f"{name}_lam")
        self.gain = TimedArray(np.zeros(self.n_present), dt=T, name=f"{name}_gain")
        ns = {"n_img": self.n_img, "root_stim": self.root_stim, "teach": self.teach, "lam": self.lam,
              "gain": self.gain, "n_root": float(self.n_root)}
        norm = bool(p.retro_norm)
        self.root = NeuronGroup(self.n_root, ROOT_NEURON, threshold=ROOT_THRESHOLD, reset=ROOT_RESET, clock=clock,
                                name=f"{name}_root", namespace=ns)
        self.root.ts = 1e9
        self.category = NeuronGroup(self.n_cat, CATEGORY_NEURON + (CATEGORY_W_TOTAL if norm else ""),
                                    threshold=CATEGORY_THRESHOLD, reset="", events={"named": CATEGORY_NAMED},
                                    clock=clock, name=f"{name}_category", namespace=ns)
        self.category.t_named = 1e9
        self.category.theta_name = p.theta_name
        self.category.run_on_event("named", CATEGORY_ON_NAMED, when="after_synapses")
        # the naming event sees this step's retrograde input
        self.category.thresholder["named"].when = "after_synapses"
        published = p.rule == "published"
        self.syn = Synapses(
            self.category, self.root, CATEGORY_ROOT_SYNAPSE + (W_TOTAL_SUMMED if norm else ""),
            on_pre=TEACHER_ON_PRE_PUBLISHED if published else TEACHER_ON_PRE,
            on_post={"retrograde": RETROGRADE_ON_POST_NORM if norm else RETROGRADE_ON_POST,
                     "learn": CO_OCCURRENCE_ON_POST_PUBLISHED if published else CO_OCCURRENCE_ON_POST},
            clock=clock, name=f"{name}_syn", namespace=ns)
        cat, root = np.meshgrid(np.arange(self.n_cat), np.arange(self.n_root), indexing="ij")
        self.syn.connect(i=cat.ravel(), j=root.ravel())  # synapse c*n_root + j
        self.syn.retrograde.order = 0  # the retrograde signal carries the weight before this spike's update
        self.syn.learn.order = 1
        self.syn.a_plus = p.a_plus
        self.syn.a_minus = p.a_minus
        session.expect_size(self.syn.w, self.n_cat * self.n_root)
        objs = [self.root, self.category, self.syn]
        for group, kind in ((self.root, "root"), (self.category, "category"), (self.syn, "synapse")):
            objs.append(group.run_regularly(IMAGE_RESET[kind], clock=image_clock, when="end", order=1,
                                            name=f"{group.name}_image_reset"))
        self.monitor = StateMonitor(self.category, ["retro", "t_named"], record=True, clock=image_clock,
                                    when="end", order=0, name=f"{name}_mon")
        self.net = Network(*objs, self.monitor)
        session.build(self.net, (self.n_present * self.n_img + 1) * dt)

    def run(self, root, teach_class, lam, gain, w0, *, a_plus: float | None = None, a_minus: float | None = None,
            theta_name: float | None = None) -> NamingRun:
        """Present images.

        ``root`` (n, n_root) conv3 spike steps (-1 silent); ``teach_class`` (n,) class whose category neurons
        spike at the start of the image (-1: none); ``lam`` and ``gain`` scalars or (n,) per image; ``w0``
        (n_cat, n_root) initial weights.
        """
        root = root_steps_checked(root, self.n_root, self.n_root_steps)
        n = root.shape[0]
        if n > self.n_present:
            raise ValueError(f"{n} images for a network built for {self.n_present}")
        teach_class = np.asarray(teach_class, dtype=int)
        if teach_class.shape != (n,) or np.any(teach_class >= self.n_classes) or np.any(teach_class < -1):
            raise ValueError(f"teach_class must be {n} class indices in [-1, {self.n_classes})")
        lam = np.broadcast_to(np.asarray(lam, dtype=float), (n,))
        gain = np.broadcast_to(np.asarray(gain, dtype=float), (n,))
        if np.any(lam < 0) or np.any(gain < 0):
            raise ValueError("lam and gain must be >= 0")
        w0 = np.asarray(w0, dtype=float)
        if w0.shape != (self.n_cat, self.n_root):
            raise ValueError(f"initial weights of shape {w0.shape}, expected {(self.n_cat, self.n_root)}")
        pad = self.n_present - n
        stim = np.concatenate([root, -np.ones((pad, self.n_root))])
        teach = (teach_class[:, None] == self.cat_class[None, :]).astype(float)
        teach = np.concatenate([teach, np.zeros((pad, self.n_cat))])
        args = {self.root_stim: stim, self.teach: teach,
                self.lam: np.concatenate([lam, np.zeros(pad)]), self.gain: np.concatenate([gain, np.zeros(pad)]),
                self.syn.w: w0.ravel(),
                self.syn.a_plus: self.p.a_plus if a_plus is None else float(a_plus),
                self.syn.a_minus: self.p.a_minus if a_minus is None else float(a_minus),
                self.category.theta_name: self.p.theta_name if theta_name is None else float(theta_name)}
        info = self.session.run(args)
        retro = np.asarray(self.monitor.retro[:]).T[1:n + 1].copy()
        t_named = np.asarray(self.monitor.t_named[:]).T[1:n + 1].copy()
        t_named[t_named > 1e8] = np.inf
        w = np.asarray(self.syn.w[:]).reshape(self.n_cat, self.n_root).copy()
        return NamingRun(retro=retro, t_named=t_named, weights=w, wall_s=info.wall_s)

    def class_scores(self, retro) -> np.ndarray:
        """(n, n_cat) category-neuron inputs → (n, n_classes): the largest input among each class's neurons."""
        retro = np.asarray(retro)
        return np.stack([retro[:, self.cat_class == c].max(axis=1) for c in range(self.n_classes)], axis=1)


# ----------------------------------------------------------------------------------------
# NumPy reference of the same rules (tests compare the Brian2 network with it)
# ----------------------------------------------------------------------------------------
def reference_learning(root, teach_class, lam, w0, cat_class, a_plus=0.007, a_minus=0.003, rule="paper"):
    """Weights after presenting ``root`` (n, n_root) with teachers, image by image (NumPy)."""
    w = np.array(w0, dtype=float)
    lam = np.broadcast_to(np.asarray(lam, dtype=float), (len(root),))
    for img, y, la in zip(np.asarray(root), np.asarray(teach_class), lam):
        fired = img >= 0
        if y < 0:
            continue
        true = np.asarray(cat_class) == y
        if rule == "paper":
            wf = w[:, fired]
            dw = np.where(true[:, None], a_plus, -a_minus) * la * wf * (1 - wf)
            w[:, fired] = np.clip(wf + dw, 0, 1)
        elif rule == "published":
            wt = w[true]
            new = np.clip(wt - la * a_minus * wt * (1 - wt), 0, 1)
            new[:, fired] = np.clip(wt[:, fired] + la * a_plus * wt[:, fired] * (1 - wt[:, fired]), 0, 1)
            w[true] = new
        else:
            raise ValueError(f"rule={rule!r}: expected one of {RULES}")
    return w


def reference_retro(root, w, gain=1.0, norm=False):
    """Integrated retrograde input (n, n_cat): gain · Σ over the root neurons that fired of w[c, j]; with
    ``norm`` (``retro_norm``) each w[c, j] is divided by the neuron's mean weight Σ_j w[c, j] / n_root (0 for a
    neuron whose weights are all 0: the total is clipped at 1e-12 as in the network)."""
    fired = (np.asarray(root) >= 0).astype(float)
    w = np.asarray(w, dtype=float)
    if norm:
        total = w.sum(axis=1, keepdims=True)
        w = w * w.shape[1] / np.maximum(total, 1e-12)
    return np.asarray(gain, dtype=float).reshape(-1, 1) * (fired @ w.T)


# ----------------------------------------------------------------------------------------
# recall from a name: the category neuron's activity travels back through the conv layers
# ----------------------------------------------------------------------------------------
def backward_operators(in_shape, layers):
    """For each SDNN layer (input side first) a function mapping output-side activity to input-side activity
    through the same connectivity as the Brian2 network: a conv layer spreads each output neuron's activity
    over its inputs weighted by the kernel coefficient (transposed convolution); a pool layer copies a
    pool unit's activity to every input of its window."""
    from b2models.models.sdnn import ConvSpec, conv_connectivity, conv_out_shape, pool_connectivity, pool_out_shape

    ops, shape = [], tuple(in_shape)
    for spec in layers:
        if isinstance(spec, ConvSpec):
            pre, post, k_idx = conv_connectivity(shape, spec.maps, spec.size, spec.size // 2)
            out = conv_out_shape(shape, spec)
            ops.append(("conv", pre, post, k_idx, int(np.prod(shape)), out))
        else:
            pre, post = pool_connectivity(shape, spec)
            out = pool_out_shape(shape, spec)
            ops.append(("pool", pre, post, None, int(np.prod(shape)), out))
        shape = out
    return ops


def recall_input_map(root_activity, kernels, ops, *, w_threshold: float = 0.0, keep: float = 1.0) -> np.ndarray:
    """Send ``root_activity`` (n_root,) backwards through ``ops`` (:func:`backward_operators`) with the learned
    ``kernels`` (one per conv layer); returns the input-layer activity (flat, non-negative).

    Backward action potentials follow the strong pathways: a synapse carries ``max(w − w_threshold, 0)``
    (only potentiated synapses when ``w_threshold`` = 0.5), and at every layer only the ``keep`` fraction of
    the most active neurons sends its activity further back (1: all)."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    x = np.maximum(np.asarray(root_activity, dtype=float), 0.0)
    conv_k = list(kernels)
    c = len([o for o in ops if o[0] == "conv"]) - 1
    for kind, pre, post, k_idx, n_in, _ in reversed(ops):
        if keep < 1 and np.any(x > 0):
            x = np.where(x >= np.quantile(x[x > 0], 1 - keep), x, 0.0)
        if kind == "conv":
            wk = np.maximum(np.asarray(conv_k[c], dtype=float).ravel() - w_threshold, 0.0)
            x = np.bincount(pre, weights=wk[k_idx] * x[post], minlength=n_in)
            c -= 1
        else:
            x = np.bincount(pre, weights=x[post], minlength=n_in)
    return x
