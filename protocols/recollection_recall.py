"""Protocol ``recollection.recall``: recall from a name - a category neuron's activity travels back through the
learned feature layers to the input layer (the direction the recollection hypothesis predicts).

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137 (hypothesised there, not simulated).

Steps: the category layer learns the names of ``n_train_per_class`` training images per class (as in
``recollection.naming``); then each category neuron is driven alone. Its activity reaches the root layer
through its learned synapses; ``recall_drive`` = 'contrast' keeps, per root neuron, how much more strongly
this name reaches it than the strongest other name (max(w_c − max_other w, 0): the pathways this name owns),
'weight' uses the weights themselves. The root activity then travels backwards through conv3, pool2, conv2,
pool1 and conv1 with the learned kernels (:func:`models.recollection.recall_input_map`: every conv neuron
spreads its activity over its inputs weighted by the kernel coefficient, every pool unit to its window;
activities stay non-negative), giving an input-layer map per class. The backward signal follows the strong
pathways only: a synapse passes it with weight max(w − ``backward_w_threshold``, 0), and at every layer only
the ``backward_keep`` fraction of the most active neurons sends it further (a sparse backward wave). With all
synapses and all neurons (0 and 1) the recalled maps are a blur of the receptive fields.

Measures: the correlation of each recalled map with each class's mean DoG input map (training images), the
margin of the own class over the other, and a recall-based naming of the test images (each test image's DoG
map goes to the class whose recalled map it correlates with best). Figure ``fig_recall``: recalled maps and
class-mean inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from b2models.analysis.recollection import accuracy, recall_matrix, recall_naming
from b2models.data import DataError
from b2models.models.recollection import backward_operators, recall_input_map
from b2models.models.sdnn import dog_channels
from b2models.protocol import Claim, Protocol
from b2models.protocols.recollection_common import (
    RecollectionRunParams,
    learn_then_name,
    open_category,
    quick_features,
    root_layer,
)
from b2models.protocols.recollection_features import caltech_sets, digits_sets
from b2models.protocols.recollection_naming import pick_per_class

DRIVES = ("contrast", "weight")


@dataclass
class RecallParams(RecollectionRunParams):
    n_train_per_class: int = 200  # labelled images the names are learned from
    lam: float = 10.0  # λ while learning names
    recall_drive: str = "contrast"  # 'contrast' or 'weight' (see the module docstring)
    backward_w_threshold: float = 0.5  # a synapse carries the backward signal with weight max(w - this, 0)
    backward_keep: float = 0.05  # fraction of the most active neurons per layer that pass it further back

    def validate(self):
        super().validate()
        if self.recall_drive not in DRIVES:
            raise ValueError(f"recall_drive={self.recall_drive!r}: expected one of {DRIVES}")
        if self.n_train_per_class < 1:
            raise ValueError(f"n_train_per_class must be >= 1, got {self.n_train_per_class}")
        if not 0 < self.backward_keep <= 1 or not 0 <= self.backward_w_threshold < 1:
            raise ValueError("need 0 < backward_keep <= 1 and 0 <= backward_w_threshold < 1 (got "
                             f"{self.backward_keep}, {self.backward_w_threshold})")


def root_drive(weights, c: int, how: str) -> np.ndarray:
    """Root-layer activity when category neuron ``c`` alone is driven."""
    w = np.asarray(weights, dtype=float)
    if how == "weight":
        return w[c].copy()
    if how == "contrast":
        other = np.delete(w, c, axis=0).max(axis=0)
        return np.maximum(w[c] - other, 0.0)
    raise ValueError(f"recall_drive={how!r}: expected one of {DRIVES}")


def run(ctx) -> dict:
    p: RecallParams = ctx.params
    p.validate()
    a = root_layer(ctx, p)
    y_tr, y_te = a["labels_train"], a["labels_test"]
    rp = p.recollection()
    rng = np.random.default_rng([ctx.seed, 5])
    idx = pick_per_class(y_tr, p.n_train_per_class, rng)
    with open_category(ctx.backend, a["root_train"].shape[1], a["n_classes"], p.epochs * len(idx),
                       a["n_root_steps"], rp, ctx.threads) as net:
        r = learn_then_name(net, rp, a["root_train"][idx], y_tr[idx], np.zeros((0, net.n_root), dtype=int),
                            p.lam, [ctx.seed, 11], p.epochs)
        cat_class = net.cat_class
    w = np.stack([r["weights"][cat_class == c].mean(axis=0) for c in range(a["n_classes"])])
    kernels = [a[f"kernel{c + 1}"] for c in range(3)]
    ops = backward_operators(p.in_shape(), p.layers())
    n_root = int(np.prod(ops[-1][5]))
    if n_root != w.shape[1]:
        raise DataError(f"the root layer has {w.shape[1]} neurons but the feature network's conv3 has {n_root}: "
                         "the feature parameters do not match the root-layer patterns")
    recalled = [recall_input_map(root_drive(w, c, p.recall_drive), kernels, ops, w_threshold=p.backward_w_threshold,
                                 keep=p.backward_keep).reshape(p.in_shape()) for c in range(a["n_classes"])]
    sets = digits_sets(p) if ctx.quick else caltech_sets(p)
    (_, _), (train_x, train_y), (test_x, test_y) = sets
    if not (np.array_equal(train_y, y_tr) and np.array_equal(test_y, y_te)):
        raise DataError("the images' labels do not match the root layer's: the root layer comes from other data")
    retina = p.retina()
    dog_tr = np.stack([dog_channels(x, retina) for x in train_x])
    dog_te = np.stack([dog_channels(x, retina) for x in test_x])
    means = [dog_tr[y_tr == c].mean(axis=0) for c in range(a["n_classes"])]
    M = recall_matrix(recalled, means)
    own = np.diag(M)
    other = np.array([np.delete(M[c], c).max() for c in range(len(M))])
    pred = recall_naming(recalled, dog_te)
    metrics = {"recall_correlation": M.tolist(), "recall_margin_min": float(np.min(own - other)),
               "recall_own_class_correlation": own.tolist(),
               "recall_naming_test_accuracy": accuracy(pred, y_te),
               "recalled_active_fraction": [float(np.mean(m > 0)) for m in recalled],
               "root_drive_active": [int(np.sum(root_drive(w, c, p.recall_drive) > 0)) for c in range(len(w))]}
    ctx.log("recall: correlation of recalled maps (rows) with class-mean inputs (columns) " +
            "; ".join(" ".join(f"{v:+.3f}" for v in row) for row in M) +
            f"; own-class margin {metrics['recall_margin_min']:+.3f}; test images named by recall "
            f"{metrics['recall_naming_test_accuracy']:.3f}")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(recalled=np.stack(recalled), class_mean_input=np.stack(means), weights=w,
                           recall_correlation=M)
    _figure(ctx, recalled, means, M)
    return metrics


def _shown(maps):
    """One image of (C, H, W) input-layer maps: the ON map, or ON minus OFF with two channels."""
    maps = np.asarray(maps)
    return maps[0] - maps[1] if len(maps) == 2 else maps[0]


def _figure(ctx, recalled, means, M):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(recalled)
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 4.6), squeeze=False)
    for c in range(n):
        axes[0, c].imshow(_shown(recalled[c]), cmap="gray")
        axes[0, c].set_title(f"recalled from name {c} (r = {M[c, c]:+.2f})", fontsize=8)
        axes[1, c].imshow(_shown(means[c]), cmap="gray")
        axes[1, c].set_title(f"class {c}: mean DoG input", fontsize=8)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_recall")


def quick_params(p: RecallParams) -> RecallParams:
    return dataclasses.replace(quick_features(p), n_train_per_class=100)


PROTOCOL = Protocol(
    name="recollection.recall",
    paper="recollection",
    summary="recall from a name: category activity sent back through the learned layers to the input layer",
    params=RecallParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("recall_margin_min", "recalled map: own-class minus other-class correlation (worst class)",
              "hypothesised, not simulated", "> 0", lambda v: v > 0, "{:+.3f}"),
        Claim("recall_naming_test_accuracy", "test images named by correlation with the recalled maps", "—", "",
              None, "{:.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_recall"],
)
