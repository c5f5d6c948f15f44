"""Protocol ``recollection.fewshot_nested``: the paper's nested single-draw few-shot protocol and its training
curve (Ben Houidi 2021, Figs 4-5).

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137

Unlike ``recollection.fewshot`` (independent random draws per shot count), the paper takes one draw: the
first n training images of each class, n = ``n_min``, ``n_min`` + ``n_step``, ... up to ``n_max`` (5 ... 200
in steps of 5), so the labelled sets are nested. Order (fixed here, before any comparison): the training
images of each class in their stored order, presented alternately class 0, class 1, class 0, ...; the first
2n presentations are the first n images per class. For every n and every λ in ``lams`` the category layer
learns these images once from the same initial weights (drawn with the run's seed) and names every test
image and every training image. A linear SVM is fitted on the same images (features scaled by all training
images, as in ``recollection.fewshot``).

Outputs: ``fig_fewshot_nested`` (test accuracy against n, one curve per λ, with the SVM: the paper's Fig 5;
accuracy on all training images against n at λ = ``train_curve_lam``: the Fig 4 training curve), metrics
(per λ the accuracy at every n under both scoring conventions, the peak, its n and the value at ``n_max``:
whether the curve rises then falls), arrays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from b2models.analysis.classify import svm_accuracy
from b2models.analysis.recollection import CONVENTIONS, accuracy, name_by
from b2models.protocol import Claim, Protocol
from b2models.protocols.recollection_common import (
    CategoryBuilder,
    RecollectionRunParams,
    learn_then_name,
    quick_features,
    root_layer,
    standardise_by,
)


@dataclass
class NestedParams(RecollectionRunParams):
    n_min: int = 5  # smallest number of images per class
    n_max: int = 200  # largest
    n_step: int = 5
    lams: tuple = (1.0, 2.0, 5.0, 10.0, 65.0)  # neuromodulation factors λ (one curve each)
    train_curve_lam: float = 1.0  # λ of the training curve (the paper's many-shot value)

    def validate(self):
        super().validate()
        if not (isinstance(self.n_min, (int, np.integer)) and isinstance(self.n_step, (int, np.integer))
                and 1 <= self.n_min <= self.n_max and self.n_step >= 1):
            raise ValueError(f"need integers 1 <= n_min <= n_max and n_step >= 1 (got {self.n_min}, {self.n_max}, "
                             f"{self.n_step})")
        if not self.lams or min(self.lams) < 0:
            raise ValueError(f"lams must be >= 0, got {self.lams}")
        if self.train_curve_lam not in self.lams:
            raise ValueError(f"train_curve_lam={self.train_curve_lam} must be one of lams={self.lams}")

    def shots(self) -> list[int]:
        return list(range(self.n_min, self.n_max + 1, self.n_step))


def nested_order(labels, n_max: int) -> np.ndarray:
    """Training indices in presentation order: the first ``n_max`` images of each class in stored order,
    alternating classes (class 0, 1, ..., 0, 1, ...); the first k·n_classes entries hold the first k of each."""
    labels = np.asarray(labels)
    per = [np.flatnonzero(labels == c)[:n_max] for c in np.unique(labels)]
    n = min(len(x) for x in per)
    if n < n_max:
        raise ValueError(f"n_max={n_max}: a class has only {n} training images")
    return np.stack(per, axis=1).ravel()


class _Point:
    """Picklable ``run_point(net, point)``: learn the first n images per class with one λ, name test and
    training images."""

    def __init__(self, rp, root_train, y_train, name_root, order, n_classes, potential=None):
        self.rp, self.root_train, self.y_train, self.name_root = rp, root_train, y_train, name_root
        self.order, self.n_classes, self.potential = order, n_classes, potential

    def __call__(self, net, pt):
        idx = self.order[:pt["n"] * self.n_classes]
        r = learn_then_name(net, self.rp, self.root_train[idx], self.y_train[idx], self.name_root, pt["lam"],
                            pt["seed"], name_potential=self.potential)
        return {c: name_by(r["scores"], c) for c in CONVENTIONS}


def run(ctx) -> dict:
    p: NestedParams = ctx.params
    p.validate()
    a = root_layer(ctx, p)
    y_tr, y_te = a["labels_train"], a["labels_test"]
    k = a["n_classes"]
    order = nested_order(y_tr, p.n_max)
    shots = p.shots()
    name_root = np.concatenate([a["root_test"], a["root_train"]])
    pot = None
    if p.vote == "potential":
        pot = np.concatenate([a["potential_test"], a["potential_train"]])
    n_te = len(y_te)
    points = [{"n": n, "lam": float(lam), "seed": [ctx.seed, 21]} for n in shots for lam in p.lams]
    rp = p.recollection()
    ctx.log(f"recollection.fewshot_nested: first n images per class, n = {shots[0]}..{shots[-1]} step {p.n_step}, "
            f"λ {list(p.lams)}: {len(points)} runs, rule {p.rule}, backend={ctx.backend}, jobs={ctx.jobs}")
    bar = ctx.progress(total=len(points), desc="nested few-shot runs", unit="run")
    out = ctx.sweep(_Point(rp, a["root_train"], y_tr, name_root, order, k, pot), points,
                    build=CategoryBuilder(ctx.backend, ctx.threads, a["root_train"].shape[1], k,
                                          p.n_max * k + len(name_root), a["n_root_steps"], rp),
                    progress=bar.update)
    bar.close()
    shape = (len(shots), len(p.lams))
    test = {c: np.array([accuracy(o[c][:n_te], y_te) for o in out]).reshape(shape) for c in CONVENTIONS}
    train = {c: np.array([accuracy(o[c][n_te:], y_tr) for o in out]).reshape(shape) for c in CONVENTIONS}
    f_tr, f_te = standardise_by(a["features_train"], a["features_train"], a["features_test"])
    svm = np.array([svm_accuracy(f_tr[order[:n * k]], y_tr[order[:n * k]], f_te, y_te, kernel="linear", C=p.svm_C,
                                 standardize=False)["test"] for n in shots])
    metrics = {"points": len(points), "shots": shots, "svm_linear": svm.tolist()}
    for j, lam in enumerate(p.lams):
        for c in CONVENTIONS:
            sfx = "" if c == "strict" else f"_{c}"
            curve = test[c][:, j]
            i = int(np.argmax(curve))
            metrics[f"test_lam{lam:g}{sfx}"] = curve.tolist()
            metrics[f"peak_lam{lam:g}{sfx}"] = float(curve[i])
            metrics[f"peak_n_lam{lam:g}{sfx}"] = int(shots[i])
            metrics[f"at_nmax_lam{lam:g}{sfx}"] = float(curve[-1])
            metrics[f"peak_minus_nmax_lam{lam:g}{sfx}"] = float(curve[i] - curve[-1])
        ctx.log(f"λ = {lam:g}: peak {metrics[f'peak_lam{lam:g}']:.3f} at n = {metrics[f'peak_n_lam{lam:g}']} "
                f"(authors {metrics[f'peak_lam{lam:g}_authors']:.3f} at n = {metrics[f'peak_n_lam{lam:g}_authors']}), "
                f"{metrics[f'at_nmax_lam{lam:g}']:.3f} at n = {shots[-1]} "
                f"(authors {metrics[f'at_nmax_lam{lam:g}_authors']:.3f})")
    jt = list(p.lams).index(p.train_curve_lam)
    for c in CONVENTIONS:
        sfx = "" if c == "strict" else f"_{c}"
        metrics[f"train_curve{sfx}"] = train[c][:, jt].tolist()
        metrics[f"train_at_nmax{sfx}"] = float(train[c][-1, jt])
    if 10.0 in p.lams and 20 in shots:
        metrics["report_accuracy"] = float(test["strict"][shots.index(20), list(p.lams).index(10.0)])
        metrics["report_accuracy_authors"] = float(test["authors"][shots.index(20), list(p.lams).index(10.0)])
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(shots=np.array(shots), lams=np.array(p.lams, dtype=float), order=order,
                           test_accuracy=test["strict"], test_accuracy_authors=test["authors"],
                           train_accuracy=train["strict"], train_accuracy_authors=train["authors"], svm_linear=svm)
    _figure(ctx, p, shots, test, train, svm, jt)
    return metrics


def _figure(ctx, p, shots, test, train, svm, jt):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for j, lam in enumerate(p.lams):
        line, = axes[0].plot(shots, test["strict"][:, j], "-", lw=1.2, label=f"λ = {lam:g}, strict")
        axes[0].plot(shots, test["authors"][:, j], ":", color=line.get_color(), lw=1, label=f"λ = {lam:g}, authors")
    axes[0].plot(shots, svm, "k--", lw=1, label="linear SVM")
    axes[0].set_xlabel("first n training images per class (nested)")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=6, ncol=2)
    axes[1].plot(shots, train["strict"][:, jt], "-", label="training images, strict")
    axes[1].plot(shots, train["authors"][:, jt], ":", label="training images, authors")
    axes[1].plot(shots, test["strict"][:, jt], "-", label="test images, strict")
    axes[1].set_xlabel("first n training images per class (nested)")
    axes[1].set_ylabel("naming accuracy")
    axes[1].set_title(f"λ = {p.train_curve_lam:g}", fontsize=9)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_fewshot_nested")


def quick_params(p: NestedParams) -> NestedParams:
    return dataclasses.replace(quick_features(p), n_min=4, n_max=40, n_step=12, lams=(1.0, 10.0))


PROTOCOL = Protocol(
    name="recollection.fewshot_nested",
    paper="recollection",
    summary="nested single-draw few-shot naming (first n images per class, λ family) and the training curve "
            "(Figs 4-5)",
    params=NestedParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("report_accuracy", "nested draw, 20 images per class, λ = 10, strict", "95.5%", "", None, "{:.3f}"),
        Claim("report_accuracy_authors", "nested draw, 20 images per class, λ = 10, authors", "95.5%", "", None,
              "{:.3f}"),
        Claim("peak_lam10_authors", "λ = 10 curve: peak (authors)", "0.955 at 15-20 per class", "", None,
              "{:.3f}"),
        Claim("at_nmax_lam10_authors", "λ = 10 curve: at 200 per class (authors)", "0.662", "", None, "{:.3f}"),
        Claim("train_at_nmax", "training accuracy after 200 per class, λ = 1 (Fig 4), strict", "96.7%", "", None,
              "{:.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_fewshot_nested"],
)
