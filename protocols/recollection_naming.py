"""Protocol ``recollection.naming``: many-shot naming by retrograde action potentials, against SVMs on the
same features (Ben Houidi 2021, Fig 3).

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137

Steps: the root layer (conv3 spike patterns of the Caltech TrainingSet and TestingSet) comes from the cached
``recollection.features`` stage; the category layer (:mod:`models.recollection`) learns the names of
``n_train_per_class`` training images per class by co-occurrence STDP (λ = ``lam``), then names every
training and test image by its integrated retrograde input (largest input; also the spiking decision, the
first category neuron to reach ``theta_name``). The same run is repeated with the other co-occurrence rules
(paper, the authors' code's net rule ``authors_code`` and the earlier reading ``silent_ltd``) for comparison.
Baselines on the same images: a linear and an RBF SVM on the per-map maximum conv3 potentials (the SDNN
readout), and a linear SVM on the binary root spike pattern (the naming network's own input).

Every naming accuracy is reported under two scoring conventions (:data:`analysis.recollection.CONVENTIONS`):
``strict`` (unsuffixed keys: an image with tied scores, e.g. one that evoked no root activity, is undecided
and wrong) and ``authors`` (``*_authors`` keys: such an image is named class 0, as the arg-max of the
authors' code does). λ defaults to 1, the paper's many-shot value.

Test images that evoke no root spike get no retrograde input and stay unnamed (counted wrong), while the SVMs
classify them (all-zero features) through their intercept; so the metrics also give the fraction of silent
test images per class (``silent_test_images_class<c>``) and the naming and SVM test accuracies on the test
images with at least one root spike (``*_test_accuracy_nonsilent``). ``--set retro_norm=true`` names with the
divisive normalisation of :mod:`models.recollection` (a deviation from the paper).

Outputs: ``fig_score_difference`` (per image: face score minus motorbike score, training and test; the
papers' Fig 3), ``fig_weights`` (learned category → root weights per class), metrics with all accuracies.
``--quick`` uses the digits features of ``recollection.features --quick``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from b2models.analysis.classify import chance_level, svm_accuracy
from b2models.analysis.recollection import (
    CONVENTIONS,
    accuracy,
    accuracy_on,
    decided,
    fraction_per_class,
    name_by,
    name_by_first_crossing,
    name_by_largest,
    score_difference,
)
from b2models.models.recollection import RULES
from b2models.protocol import Claim, Protocol
from b2models.protocols.recollection_common import (
    RecollectionRunParams,
    learn_then_name,
    open_category,
    quick_features,
    root_layer,
)


@dataclass
class NamingParams(RecollectionRunParams):
    n_train_per_class: int = 200  # labelled training images per class (paper: 200)
    lam: float = 1.0  # λ while learning names (the paper's many-shot value)
    compare_rules: bool = True  # also run the other co-occurrence rule

    def validate(self):
        super().validate()
        if self.n_train_per_class < 1:
            raise ValueError(f"n_train_per_class must be >= 1, got {self.n_train_per_class}")


def pick_per_class(labels, n_per_class: int, rng) -> np.ndarray:
    """Indices of up to ``n_per_class`` images of every class, drawn at random, in a random (interleaved)
    presentation order."""
    labels = np.asarray(labels)
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out.append(rng.choice(idx, size=min(n_per_class, idx.size), replace=False))
    return rng.permutation(np.concatenate(out))


def name_images(ctx, a: dict, p: NamingParams, rule: str, train_idx) -> dict:
    """Learn from the chosen training images, then name all training and test images, with ``rule``."""
    rp = dataclasses.replace(p.recollection(), rule=rule)
    learn_root, learn_y = a["root_train"][train_idx], a["labels_train"][train_idx]
    name_root = np.concatenate([a["root_train"], a["root_test"]])
    n_present = p.epochs * len(train_idx) + len(name_root)
    with open_category(ctx.backend, name_root.shape[1], a["n_classes"], n_present, a["n_root_steps"], rp,
                       ctx.threads) as net:
        pot = None
        if rp.vote == "potential":
            pot = np.concatenate([a["potential_train"], a["potential_test"]])
        out = learn_then_name(net, rp, learn_root, learn_y, name_root, p.lam, [ctx.seed, 11], p.epochs,
                              name_potential=pot)
    n_tr = len(a["root_train"])
    out["scores_train"], out["scores_test"] = out["scores"][:n_tr], out["scores"][n_tr:]
    out["t_train"], out["t_test"] = out["t_named"][:n_tr], out["t_named"][n_tr:]
    return out


def run(ctx) -> dict:
    p: NamingParams = ctx.params
    p.validate()
    a = root_layer(ctx, p)
    rng = np.random.default_rng([ctx.seed, 5])
    train_idx = pick_per_class(a["labels_train"], p.n_train_per_class, rng)
    y_tr, y_te = a["labels_train"], a["labels_test"]
    ctx.log(f"recollection.naming: {len(train_idx)} labelled images ({p.n_train_per_class} per class), "
            f"λ = {p.lam:g}, {p.epochs} epoch(s), rule {p.rule}{', retro_norm' if p.retro_norm else ''}, "
            f"backend={ctx.backend}, seed={ctx.seed}")
    n_fired = np.sum(a["root_test"] >= 0, axis=1)
    heard = n_fired > 0  # test images that evoke at least one root spike (silent ones can never be named)
    metrics = {"chance_level": chance_level(y_te), "n_labelled": int(len(train_idx)),
               "root_spikes_per_test_image": float(np.mean(n_fired)),
               "silent_test_images": float(np.mean(~heard))}
    for c, frac in enumerate(fraction_per_class(~heard, y_te, a["n_classes"])):
        metrics[f"silent_test_images_class{c}"] = float(frac)
    if not np.all(heard):
        ctx.log("silent test images per class: " + ", ".join(
            f"class {c} {metrics[f'silent_test_images_class{c}']:.3f}" for c in range(a["n_classes"])))
    rules = [p.rule] + ([r for r in RULES if r != p.rule] if p.compare_rules else [])
    results = {}
    for rule in rules:
        r = name_images(ctx, a, p, rule, train_idx)
        results[rule] = r
        sfx = "" if rule == p.rule else f"_rule_{rule}"  # e.g. test_accuracy_rule_authors_code(_authors)
        named = name_by_largest(r["scores_test"])
        first = name_by_first_crossing(r["t_test"], r["scores_test"])
        for conv in CONVENTIONS:  # unsuffixed keys: strict (silent = wrong); '_authors': silent -> class 0
            cs = "" if conv == "strict" else f"_{conv}"
            metrics[f"train_accuracy{sfx}{cs}"] = accuracy(name_by(r["scores_train"][train_idx], conv),
                                                            y_tr[train_idx])
            metrics[f"train_accuracy_all{sfx}{cs}"] = accuracy(name_by(r["scores_train"], conv), y_tr)
            metrics[f"test_accuracy{sfx}{cs}"] = accuracy(name_by(r["scores_test"], conv), y_te)
            metrics[f"test_accuracy_spiking{sfx}{cs}"] = accuracy(decided(first, conv), y_te)
        metrics[f"test_accuracy_nonsilent{sfx}"] = accuracy_on(named, y_te, heard)
        metrics[f"test_undecided{sfx}"] = float(np.mean(named < 0))
        metrics[f"test_undecided_spiking{sfx}"] = float(np.mean(first < 0))
        metrics[f"run_wall_s{sfx}"] = float(r["wall_s"])
        ctx.log(f"rule {rule}: naming accuracy train {metrics[f'train_accuracy{sfx}']:.3f}, test "
                f"{metrics[f'test_accuracy{sfx}']:.3f} strict, {metrics[f'test_accuracy{sfx}_authors']:.3f} "
                f"authors' convention ({metrics[f'test_accuracy_nonsilent{sfx}']:.3f} on the "
                f"{int(heard.sum())} test images with a root spike; spiking decision "
                f"{metrics[f'test_accuracy_spiking{sfx}']:.3f}, "
                f"undecided {metrics[f'test_undecided_spiking{sfx}']:.3f})")
    f_tr, f_te = a["features_train"][train_idx], a["features_test"]
    for kernel in ("linear", "rbf"):
        s = svm_accuracy(f_tr, y_tr[train_idx], f_te, y_te, kernel=kernel, C=p.svm_C)
        metrics[f"svm_{kernel}_train_accuracy"] = s["train"]
        metrics[f"svm_{kernel}_test_accuracy"] = s["test"]
        metrics[f"svm_{kernel}_test_accuracy_nonsilent"] = accuracy_on(s["predictions"], y_te, heard)
    s = svm_accuracy((a["root_train"][train_idx] >= 0).astype(float), y_tr[train_idx],
                     (a["root_test"] >= 0).astype(float), y_te, kernel="linear", C=p.svm_C, standardize=False)
    metrics["svm_root_pattern_test_accuracy"] = s["test"]
    best_svm = max(metrics["svm_linear_test_accuracy"], metrics["svm_rbf_test_accuracy"])
    metrics["naming_minus_svm"] = metrics["test_accuracy"] - best_svm
    metrics["naming_minus_svm_authors"] = metrics["test_accuracy_authors"] - best_svm
    ctx.log("SVM test accuracy on the same features: linear {:.3f}, RBF {:.3f}; linear on the root pattern {:.3f}"
            .format(metrics["svm_linear_test_accuracy"], metrics["svm_rbf_test_accuracy"],
                    metrics["svm_root_pattern_test_accuracy"]))
    ctx.log("on the test images with a root spike: naming {:.3f}, SVM linear {:.3f}, RBF {:.3f}".format(
        metrics["test_accuracy_nonsilent"], metrics["svm_linear_test_accuracy_nonsilent"],
        metrics["svm_rbf_test_accuracy_nonsilent"]))
    main = results[p.rule]
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(train_index=train_idx, scores_train=main["scores_train"], scores_test=main["scores_test"],
                           t_named_test=main["t_test"], labels_train=y_tr, labels_test=y_te,
                           weights=main["weights"], initial_weights=main["w0"])
    _figures(ctx, main, y_tr, y_te, train_idx, metrics)
    return metrics


def _figures(ctx, r, y_tr, y_te, train_idx, metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    for ax, scores, y, title in ((axes[0], r["scores_train"][train_idx], y_tr[train_idx], "training"),
                                 (axes[1], r["scores_test"], y_te, "test")):
        d = score_difference(scores)
        order = np.argsort(y, kind="stable")
        colours = np.where(y[order] == 0, "tab:blue", "tab:orange")
        ax.bar(np.arange(d.size), d[order], color=colours, width=1.0)
        ax.axhline(0, color="k", lw=0.5)
        acc = metrics["train_accuracy" if title == "training" else "test_accuracy"]
        ax.set_title(f"{title} images: accuracy {acc:.3f}", fontsize=9)
        ax.set_xlabel("image (blue: class 0, orange: class 1)")
    axes[0].set_ylabel("retrograde input, class 0 − class 1")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_score_difference")

    w = np.asarray(r["weights"])
    fig, ax = plt.subplots(figsize=(5, 3))
    for c in range(w.shape[0]):
        ax.hist(w[c], bins=40, range=(0, 1), histtype="step", label=f"category neuron {c}")
    ax.set_xlabel("category → root weight after learning")
    ax.set_ylabel("synapses")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_weights")


def quick_params(p: NamingParams) -> NamingParams:
    return dataclasses.replace(quick_features(p), n_train_per_class=100)


PROTOCOL = Protocol(
    name="recollection.naming",
    paper="recollection",
    summary="many-shot naming by retrograde action potentials vs SVMs on the same features (Fig 3)",
    params=NamingParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("test_accuracy", "naming test accuracy (200 images per class), strict: silent = wrong", "95.7%",
              "≥ 0.95", lambda v: v >= 0.95, "{:.3f}"),
        Claim("test_accuracy_authors", "naming test accuracy, authors: silent → class 0", "95.7%", "≥ 0.95",
              lambda v: v >= 0.95, "{:.3f}"),
        Claim("train_accuracy", "naming training accuracy, strict", "96.7%", "", None, "{:.3f}"),
        Claim("train_accuracy_authors", "naming training accuracy, authors", "96.7%", "", None, "{:.3f}"),
        Claim("svm_linear_test_accuracy", "linear SVM on the same features, test", "96%", "", None, "{:.3f}"),
        Claim("naming_minus_svm", "naming minus best SVM, test", "≈ 0", "≥ −0.01", lambda v: v >= -0.01,
              "{:+.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_score_difference", "fig_weights"],
)
