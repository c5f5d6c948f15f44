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
* ``rule='authors_code'``: the net rule of the authors' public code, which indexes the true class in both
  branches of the update: at every root event the synapse from the true class gets LTP, then LTD of the
  updated weight (``CO_OCCURRENCE_ON_POST_AUTHORS_CODE``; net ≈ +(a⁺ − a⁻)·λ·w(1−w) per event); the synapses
  of the other classes never change. The paper's rule stays the default.
* ``rule='silent_ltd'`` (an earlier reading of that code, kept for comparison; ``rule='published'`` named it
  before and now raises an error that says so): on the teacher spike every synapse of the true class is
  depressed (``TEACHER_ON_PRE_SILENT_LTD``) and, where the root neuron then fires, the depression is replaced by
  the potentiation of the weight the synapse had at the teacher spike (``CO_OCCURRENCE_ON_POST_SILENT_LTD``);
  the other classes do not change.
* Root events (``root_events``): ``'once'`` (default) replays each root neuron's single conv3 spike;
  ``'every_step'`` is the authors' naming pass, where conv3 does not spike and a root neuron is active at
  every time slot in which its accumulated potential is at or above the root threshold, so a neuron that
  crosses at slot t learns and votes ``n_root_steps`` − t times (latency weighting;
  ``ROOT_THRESHOLD_EVERY_STEP``; the crossing steps come from :class:`AuthorsRootLayer`).
* Votes (``vote``): ``'spikes'`` (default) adds gain·w per root event; ``'potential'`` adds gain·w·V with V
  the root neuron's potential in the image (``RETROGRADE_ON_POST_POTENTIAL``; the potential-weighted vote of
  the recollection paper's footnote 14), a run argument per image and root neuron.
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
#: root_events='every_step': an event at every step from the crossing step to the end of the root window
#: (the potential of a non-leaky root neuron with non-negative input never falls back below its threshold)
ROOT_THRESHOLD_EVERY_STEP = (f"root_stim(t - dt, i) > -0.5 and {LOCAL_STEP} > root_stim(t - dt, i) + 0.5 and "
                             f"{LOCAL_STEP} < n_root_steps + 0.5")
#: ... ts keeps the first event's step
ROOT_RESET_EVERY_STEP = f"ts = clip(ts, 0, {LOCAL_STEP})"
#: vote='potential': the root neuron's potential in the current image (a run argument, image x root neuron)
ROOT_POTENTIAL = "v_root = root_amp(t - dt, i) : 1  # potential of this root neuron in the current image\n"

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
w_taught : 1           # weight at the teacher spike (rule silent_ltd)
a_plus : 1 (shared)    # a+ (potentiation)
a_minus : 1 (shared)   # a- (depression)
"""
#: forward (teacher) spike of the category neuron: remember it for the STDP order test
TEACHER_ON_PRE = "pre_spiked = 1"
#: co-occurrence STDP at a root spike: category spike before the root spike -> LTP, none -> LTD (x lambda)
CO_OCCURRENCE_ON_POST = """
w = clip(w + lam(t - dt) * (pre_spiked * a_plus - (1 - pre_spiked) * a_minus) * w * (1 - w), 0, 1)
"""
#: rule 'authors_code' (the net effect of the authors' public code, which indexes the true class in both
#: branches): at a root spike the true-class synapse gets LTP, then LTD of the updated weight; the other
#: classes never change (net ~ +(a+ - a-) lam w(1-w) per root event)
CO_OCCURRENCE_ON_POST_AUTHORS_CODE = """
w = clip(w + pre_spiked * lam(t - dt) * a_plus * w * (1 - w), 0, 1)
w = clip(w - pre_spiked * lam(t - dt) * a_minus * w * (1 - w), 0, 1)
"""
#: rule 'silent_ltd' (an earlier reading, kept for comparison), teacher spike: depress every synapse of the
#: true class ...
TEACHER_ON_PRE_SILENT_LTD = """
pre_spiked = 1
w_taught = w
w = clip(w - lam(t - dt) * a_minus * w * (1 - w), 0, 1)
"""
#: ... and where the root neuron fires, potentiate the weight it had at the teacher spike instead
CO_OCCURRENCE_ON_POST_SILENT_LTD = """
w = clip(w + pre_spiked * (w_taught + lam(t - dt) * a_plus * w_taught * (1 - w_taught) - w), 0, 1)
"""
#: naming pathway: a retrograde action potential from the root neuron to every category neuron
RETROGRADE_ON_POST = "retro_pre += gain(t - dt) * w"
#: vote='potential': the retrograde action potential carries the root neuron's potential too
RETROGRADE_ON_POST_POTENTIAL = "retro_pre += gain(t - dt) * w * v_root_post"
#: retro_norm: the category neuron's total synaptic weight (summed over its synapses, every step) ...
CATEGORY_W_TOTAL = "w_total : 1  # total weight of the neuron's synapses (retro_norm)\n"
W_TOTAL_SUMMED = "w_total_pre = w : 1 (summed)\n"
#: ... divides its retrograde input (relative to the mean weight w_total / n_root; w_total = 0 means w = 0)
RETROGRADE_ON_POST_NORM = "retro_pre += gain(t - dt) * w * n_root / clip(w_total_pre, 1e-12, inf)"
RETROGRADE_ON_POST_NORM_POTENTIAL = ("retro_pre += gain(t - dt) * w * v_root_post * n_root / "
                                     "clip(w_total_pre, 1e-12, inf)")

#: on_pre (teacher) and learning on_post code of each rule
RULE_CODE = {
    "paper": (TEACHER_ON_PRE, CO_OCCURRENCE_ON_POST),
    "authors_code": (TEACHER_ON_PRE, CO_OCCURRENCE_ON_POST_AUTHORS_CODE),
    "silent_ltd": (TEACHER_ON_PRE_SILENT_LTD, CO_OCCURRENCE_ON_POST_SILENT_LTD),
}

IMAGE_RESET = {
    "root": "ts = 1e9",
    "category": "retro = 0\nnamed = 0\nt_named = 1e9",
    "synapse": "pre_spiked = 0",
}

RULES = ("paper", "authors_code", "silent_ltd")
#: former rule names and what became of them (one clear error instead of a silent change of meaning)
RENAMED_RULES = {"published": "rule='published' was renamed: the reading it named (true class depressed where the "
                              "root neuron stayed silent) is now rule='silent_ltd'; the net rule of the authors' "
                              "public code is rule='authors_code'"}
#: root events: 'once' = one event at the root neuron's spike step; 'every_step' = an event at every step from
#: the first step at which the root potential reached its threshold to the end of the root window (the
#: authors' naming pass: a neuron that crosses at slot t learns and votes n_root_steps - t times)
ROOT_EVENTS = ("once", "every_step")
#: votes: 'spikes' = each root event adds gain*w; 'potential' = gain*w*V, V the root neuron's potential
VOTES = ("spikes", "potential")


def check_rule(rule: str) -> str:
    if rule in RENAMED_RULES:
        raise ValueError(RENAMED_RULES[rule])
    if rule not in RULES:
        raise ValueError(f"rule={rule!r}: expected one of {RULES}")
    return rule


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
    rule: str = "paper"  # 'paper', 'authors_code' (the authors' public code) or 'silent_ltd' (see module doc)
    epochs: int = 1  # passes over the labelled images
    retro_norm: bool = False  # divide the retrograde input by the total weight (a deviation, see module doc)
    root_events: str = "once"  # 'once' or 'every_step' (the authors' naming pass: latency-weighted events)
    vote: str = "spikes"  # 'spikes' or 'potential' (each root event's vote weighted by the root potential)

    def validate(self):
        if self.per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {self.per_class}")
        if not 0 <= self.w_mean <= 1 or self.w_std < 0:
            raise ValueError(f"need 0 <= w_mean <= 1 and w_std >= 0 (got {self.w_mean}, {self.w_std})")
        if self.a_plus < 0 or self.a_minus < 0 or self.lam < 0 or self.gain < 0:
            raise ValueError("a_plus, a_minus, lam and gain must be >= 0")
        check_rule(self.rule)
        if self.root_events not in ROOT_EVENTS:
            raise ValueError(f"root_events={self.root_events!r}: expected one of {ROOT_EVENTS}")
        if self.vote not in VOTES:
            raise ValueError(f"vote={self.vote!r}: expected one of {VOTES}")
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
              "gain": self.gain, "n_root": float(self.n_root), "n_root_steps": float(self.n_root_steps)}
        norm = bool(p.retro_norm)
        potential = p.vote == "potential"
        self.root_amp = None
        if potential:
            self.root_amp = TimedArray(np.zeros((self.n_present, self.n_root)), dt=T, name=f"{name}_root_amp")
            ns["root_amp"] = self.root_amp
        every = p.root_events == "every_step"
        self.root = NeuronGroup(self.n_root, ROOT_NEURON + (ROOT_POTENTIAL if potential else ""),
                                threshold=ROOT_THRESHOLD_EVERY_STEP if every else ROOT_THRESHOLD,
                                reset=ROOT_RESET_EVERY_STEP if every else ROOT_RESET, clock=clock,
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
        on_pre, on_learn = RULE_CODE[p.rule]
        retrograde = {(False, False): RETROGRADE_ON_POST, (True, False): RETROGRADE_ON_POST_NORM,
                      (False, True): RETROGRADE_ON_POST_POTENTIAL,
                      (True, True): RETROGRADE_ON_POST_NORM_POTENTIAL}[(norm, potential)]
        self.syn = Synapses(
            self.category, self.root, CATEGORY_ROOT_SYNAPSE + (W_TOTAL_SUMMED if norm else ""),
            on_pre=on_pre, on_post={"retrograde": retrograde, "learn": on_learn},
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
            theta_name: float | None = None, potential=None) -> NamingRun:
        """Present images.

        ``root`` (n, n_root) conv3 spike steps (-1 silent; with ``root_events='every_step'`` the step at which
        the root potential first reached its threshold); ``teach_class`` (n,) class whose category neurons
        spike at the start of the image (-1: none); ``lam`` and ``gain`` scalars or (n,) per image; ``w0``
        (n_cat, n_root) initial weights; ``potential`` (n, n_root) root potentials (needed with
        ``vote='potential'``, refused otherwise).
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
        if (potential is None) != (self.root_amp is None):
            raise ValueError("root potentials are needed with vote='potential' and only then "
                             f"(this network votes by {self.p.vote})")
        stim = np.concatenate([root, -np.ones((pad, self.n_root))])
        teach = (teach_class[:, None] == self.cat_class[None, :]).astype(float)
        teach = np.concatenate([teach, np.zeros((pad, self.n_cat))])
        args = {self.root_stim: stim, self.teach: teach,
                self.lam: np.concatenate([lam, np.zeros(pad)]), self.gain: np.concatenate([gain, np.zeros(pad)]),
                self.syn.w: w0.ravel(),
                self.syn.a_plus: self.p.a_plus if a_plus is None else float(a_plus),
                self.syn.a_minus: self.p.a_minus if a_minus is None else float(a_minus),
                self.category.theta_name: self.p.theta_name if theta_name is None else float(theta_name)}
        if potential is not None:
            potential = np.asarray(potential, dtype=float)
            if potential.shape != (n, self.n_root) or not np.all(np.isfinite(potential)) or np.any(potential < 0):
                raise ValueError(f"root potentials must be finite, >= 0 and of shape {(n, self.n_root)}, got "
                                 f"{potential.shape}")
            args[self.root_amp] = np.concatenate([potential, np.zeros((pad, self.n_root))])
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
# the authors' naming-pass root layer: pool2 -> non-spiking conv3 (Brian2)
# ----------------------------------------------------------------------------------------
AUTHORS_CONV2_NEURON = """
ts : 1  # time slot of this conv2 neuron's spike in the current image (1e9: none yet)
"""
#: a conv2 neuron spikes at its time slot (stim: image x neuron, -1 = no spike); slot s -> local step s
AUTHORS_CONV2_THRESHOLD = f"abs(conv2_stim(t - dt, i) - {LOCAL_STEP}) < 0.5"
AUTHORS_CONV2_RESET = f"ts = {LOCAL_STEP}"

AUTHORS_POOL_NEURON = """
n_in : 1                 # conv2 spikes received in this image
t_in : 1                 # local step of the latest conv2 spike in the window (-1e9: none)
fired : 1                # 1 once the unit fired in this image
n_out : 1                # spikes of the unit in this image
multi : 1 (shared)       # 1: fire at every slot with input (no refractoriness); 0: first spike only
"""
#: pool2 fires one step after a step with input in its window: once (first spike) or at every such step
AUTHORS_POOL_THRESHOLD = f"abs(t_in - ({LOCAL_STEP} - 1)) < 0.5 and (multi > 0.5 or fired < 0.5)"
AUTHORS_POOL_RESET = "fired = 1\nn_out += 1"
AUTHORS_POOL_ON_PRE = f"""
n_in_post += 1
t_in_post = {LOCAL_STEP}
"""

AUTHORS_ROOT_NEURON = """
v : 1                       # accumulated conv3 potential (non-leaky, never reset within an image, no spikes)
t_cross : 1                 # local step at which v first reached theta_root (1e9: never)
crossed : 1                 # 1 once v reached theta_root
theta_root : 1 (shared)     # root threshold of the naming pass
"""
#: the first step whose potential (pool2 input of the slots before) reaches theta_root, within the window
AUTHORS_ROOT_CROSS = f"v >= theta_root and crossed < 0.5 and {LOCAL_STEP} < n_slots + 2"
AUTHORS_ROOT_ON_CROSS = f"""
crossed = 1
t_cross = {LOCAL_STEP}
"""

AUTHORS_IMAGE_RESET = {
    "conv2": "ts = 1e9",
    "pool": "n_in = 0\nt_in = -1e9\nfired = 0\nn_out = 0",
    "root": "v = 0\nt_cross = 1e9\ncrossed = 0",
}


@dataclass
class RootPass:
    """What one pass of :class:`AuthorsRootLayer` produced."""

    cross_slot: np.ndarray  # (n, n_root) slot at which the root potential first reached theta_root; -1: never
    potential: np.ndarray  # (n, n_root) root potential at the end of the window
    pool_spikes: np.ndarray  # (n,) pool2 spikes per image
    wall_s: float


class AuthorsRootLayer:
    """The root layer of the authors' naming pass, as Brian2 code: conv2 spikes (one per neuron, at its time
    slot) → pool2 (first-spike, or with ``multi_spike`` a spike at every slot with input in its window) →
    conv3 with the learned shared kernels ('same' padding, as in :mod:`models.sdnn`) whose neurons do not
    spike and have no lateral inhibition; the output is, per root neuron, the slot at which its accumulated
    potential first reaches ``theta_root`` (from then on it is ≥ ``theta_root`` at every slot: non-negative
    weights, no leak) and its potential at the end of the ``n_slots`` window.

    Slots: a conv2 spike of slot s arrives at local step s, pool2 fires at step s + 1 and conv3 integrates it
    in that step; the crossing is tested at the next step, so slot = step − 2 (in the authors' code, which has
    no delay between layers, conv3 at slot t has integrated the pool2 spikes of slots ≤ t: the same).
    ``n_present`` images per run; the conv2 slots, the kernel, ``theta_root`` and ``multi_spike`` are run
    arguments.
    """

    def __init__(self, conv2_shape, pool_spec, conv3_spec, n_present: int, n_slots: int, session: Session, *,
                 name: str = "authors_root"):
        from b2models.models.sdnn import pool_connectivity, pool_out_shape, shared_kernel_synapses

        self.conv2_shape = tuple(int(x) for x in conv2_shape)
        self.pool_shape = pool_out_shape(self.conv2_shape, pool_spec)
        self.spec = conv3_spec
        self.shape = (conv3_spec.maps,) + self.pool_shape[1:]
        self.n_conv2, self.n_root = int(np.prod(self.conv2_shape)), int(np.prod(self.shape))
        self.n_present, self.n_slots = int(n_present), int(n_slots)
        if min(self.n_present, self.n_slots) < 1:
            raise ValueError(f"n_present and n_slots must be >= 1 (got {n_present}, {n_slots})")
        self.session = session
        self.n_img = self.n_slots + 3
        dt = 1 * ms
        clock = Clock(dt, name=f"{name}_clock")
        image_clock = Clock(self.n_img * dt, name=f"{name}_image_clock")
        self.stim = TimedArray(-np.ones((self.n_present, self.n_conv2)), dt=self.n_img * dt, name=f"{name}_stim")
        ns = {"n_img": self.n_img, "n_slots": float(self.n_slots), "conv2_stim": self.stim}
        self.conv2 = NeuronGroup(self.n_conv2, AUTHORS_CONV2_NEURON, threshold=AUTHORS_CONV2_THRESHOLD,
                                 reset=AUTHORS_CONV2_RESET, clock=clock, name=f"{name}_conv2", namespace=ns)
        self.conv2.ts = 1e9
        self.pool = NeuronGroup(int(np.prod(self.pool_shape)), AUTHORS_POOL_NEURON, threshold=AUTHORS_POOL_THRESHOLD,
                                reset=AUTHORS_POOL_RESET, clock=clock, name=f"{name}_pool2", namespace=ns)
        self.pool.t_in = -1e9
        pre, post = pool_connectivity(self.conv2_shape, pool_spec)
        self.pool_syn = Synapses(self.conv2, self.pool, on_pre=AUTHORS_POOL_ON_PRE, clock=clock,
                                 name=f"{name}_poolsyn", namespace=ns)
        self.pool_syn.connect(i=pre, j=post)
        self.root = NeuronGroup(self.n_root, AUTHORS_ROOT_NEURON, threshold=None,
                                events={"cross": AUTHORS_ROOT_CROSS}, clock=clock, name=f"{name}_conv3",
                                namespace=ns)
        self.root.t_cross = 1e9
        self.root.run_on_event("cross", AUTHORS_ROOT_ON_CROSS)
        self.kernel, self.syn, n_syn = shared_kernel_synapses(
            self.pool, self.root, self.pool_shape, conv3_spec.maps, conv3_spec.size, name=f"{name}_conv3_syn",
            clock=clock, pad=conv3_spec.size // 2)
        session.expect_size(self.syn.k_idx, n_syn)
        objs = [self.conv2, self.pool, self.pool_syn, self.root, self.kernel, self.syn]
        for group, kind in ((self.conv2, "conv2"), (self.pool, "pool"), (self.root, "root")):
            objs.append(group.run_regularly(AUTHORS_IMAGE_RESET[kind], clock=image_clock, when="end", order=1,
                                            name=f"{group.name}_image_reset"))
        self.monitor = StateMonitor(self.root, ["v", "t_cross"], record=True, clock=image_clock, when="end",
                                    order=0, name=f"{name}_mon")
        self.pool_monitor = StateMonitor(self.pool, "n_out", record=True, clock=image_clock, when="end", order=0,
                                         name=f"{name}_mon_pool")
        self.net = Network(*objs, self.monitor, self.pool_monitor)
        session.build(self.net, (self.n_present * self.n_img + 1) * dt)

    def kernel_shape(self):
        return (self.spec.maps, self.pool_shape[0], self.spec.size, self.spec.size)

    def run(self, conv2_slots, kernel, theta_root: float, multi_spike: bool = False) -> RootPass:
        """``conv2_slots`` (n, n_conv2): time slot of every conv2 spike (-1: none), ``kernel`` the conv3 kernel."""
        slots = np.asarray(conv2_slots, dtype=float)
        n = slots.shape[0] if slots.ndim == 2 else -1
        if slots.ndim != 2 or slots.shape[1] != self.n_conv2 or not 0 < n <= self.n_present:
            raise ValueError(f"conv2 slots of shape {slots.shape}, expected (1..{self.n_present}, {self.n_conv2})")
        if np.any((slots != -1) & ((slots < 0) | (slots >= self.n_slots) | (slots != np.round(slots)))):
            raise ValueError(f"conv2 slots must be -1 (silent) or integers in [0, {self.n_slots})")
        kernel = np.asarray(kernel, dtype=float)
        if kernel.shape != self.kernel_shape():
            raise ValueError(f"conv3 kernel of shape {kernel.shape}, expected {self.kernel_shape()}")
        if not theta_root > 0:
            raise ValueError(f"theta_root must be positive, got {theta_root}")
        stim = np.concatenate([slots, -np.ones((self.n_present - n, self.n_conv2))])
        info = self.session.run({self.stim: stim, self.kernel.w: kernel.ravel(),
                                 self.root.theta_root: float(theta_root), self.pool.multi: float(bool(multi_spike))})
        v = np.asarray(self.monitor.v[:]).T[1:n + 1].copy()
        tc = np.asarray(self.monitor.t_cross[:]).T[1:n + 1]
        cross = np.where(tc < 1e8, tc - 2, -1).astype(np.int16)
        pool = np.asarray(self.pool_monitor.n_out[:]).T[1:n + 1].sum(axis=1).astype(int)
        return RootPass(cross_slot=cross, potential=v, pool_spikes=pool, wall_s=info.wall_s)


def reference_authors_root(conv2_slots, conv2_shape, pool_spec, kernel, theta_root: float, n_slots: int,
                           multi_spike: bool = False):
    """NumPy reference of :class:`AuthorsRootLayer` for one image: (cross_slot, potential) per root neuron."""
    from b2models.models.sdnn import conv_connectivity, pool_connectivity, pool_out_shape

    slots = np.asarray(conv2_slots)
    pshape = pool_out_shape(tuple(conv2_shape), pool_spec)
    pre, post = pool_connectivity(tuple(conv2_shape), pool_spec)
    n_pool = int(np.prod(pshape))
    fires = np.zeros((n_slots, n_pool), dtype=bool)  # pool2 spikes per slot
    for s in range(n_slots):
        fires[s] = np.bincount(post, weights=(slots[pre] == s).astype(float), minlength=n_pool) > 0
    if not multi_spike:
        first = np.cumsum(fires, axis=0) == 1
        fires = fires & first
    kernel = np.asarray(kernel, dtype=float)
    maps, size = kernel.shape[0], kernel.shape[-1]
    cpre, cpost, k_idx = conv_connectivity(pshape, maps, size, size // 2)
    n_root = maps * pshape[1] * pshape[2]
    v = np.cumsum([np.bincount(cpost, weights=kernel.ravel()[k_idx] * fires[s][cpre], minlength=n_root)
                   for s in range(n_slots)], axis=0)
    above = v >= theta_root
    cross = np.where(above.any(axis=0), np.argmax(above, axis=0), -1)
    return cross, v[-1]


# ----------------------------------------------------------------------------------------
# NumPy reference of the same rules (tests compare the Brian2 network with it)
# ----------------------------------------------------------------------------------------
def root_event_counts(root, root_events: str = "once", n_root_steps: int | None = None) -> np.ndarray:
    """Events per image and root neuron: 1 where the neuron fired (``once``), ``n_root_steps`` − step with
    ``every_step`` (an event at every step from the crossing to the end of the window), 0 where silent."""
    root = np.asarray(root)
    if root_events == "once":
        return (root >= 0).astype(int)
    if root_events != "every_step" or n_root_steps is None:
        raise ValueError(f"root_events={root_events!r}: expected 'once', or 'every_step' with n_root_steps")
    return np.where(root >= 0, int(n_root_steps) - root, 0).astype(int)


def reference_learning(root, teach_class, lam, w0, cat_class, a_plus=0.007, a_minus=0.003, rule="paper",
                       root_events="once", n_root_steps=None):
    """Weights after presenting ``root`` (n, n_root) with teachers, image by image (NumPy); each root event
    (:func:`root_event_counts`) applies the rule once."""
    check_rule(rule)
    w = np.array(w0, dtype=float)
    lam = np.broadcast_to(np.asarray(lam, dtype=float), (len(root),))
    counts = root_event_counts(root, root_events, n_root_steps)
    for img, y, la in zip(counts, np.asarray(teach_class), lam):
        if y < 0:
            continue
        true = np.asarray(cat_class) == y
        if rule == "silent_ltd":  # repeated events give the same weight (potentiation of the taught weight)
            fired = img > 0
            wt = w[true]
            new = np.clip(wt - la * a_minus * wt * (1 - wt), 0, 1)
            new[:, fired] = np.clip(wt[:, fired] + la * a_plus * wt[:, fired] * (1 - wt[:, fired]), 0, 1)
            w[true] = new
            continue
        for k in range(1, int(img.max(initial=0)) + 1):
            ev = img >= k  # neurons with a k-th event
            if rule == "paper":
                wf = w[:, ev]
                dw = np.where(true[:, None], a_plus, -a_minus) * la * wf * (1 - wf)
                w[:, ev] = np.clip(wf + dw, 0, 1)
            else:  # authors_code: the true class only, LTP then LTD of the updated weight
                wf = w[np.ix_(true, ev)]
                wf = np.clip(wf + la * a_plus * wf * (1 - wf), 0, 1)
                w[np.ix_(true, ev)] = np.clip(wf - la * a_minus * wf * (1 - wf), 0, 1)
    return w


def reference_retro(root, w, gain=1.0, norm=False, root_events="once", n_root_steps=None, potential=None):
    """Integrated retrograde input (n, n_cat): gain · Σ over the root events of w[c, j] (times the root
    potential with ``potential``); with ``norm`` (``retro_norm``) each w[c, j] is divided by the neuron's mean
    weight Σ_j w[c, j] / n_root (0 for a neuron whose weights are all 0: the total is clipped at 1e-12 as in the
    network)."""
    fired = root_event_counts(root, root_events, n_root_steps).astype(float)
    if potential is not None:
        fired = fired * np.asarray(potential, dtype=float)
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
