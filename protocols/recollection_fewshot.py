"""Protocol ``recollection.fewshot``: naming accuracy against the number of labelled images per class and the
neuromodulation factor λ (Ben Houidi 2021, Figs 4-5).

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137

For every shot count n in ``shots`` and every λ in ``lams``, ``draws`` random sets of n training images per
class are drawn (the same sets for every λ); the category layer learns their names (one pass) and names all
test images. A linear and an RBF SVM are fitted on the same draws (per-map maximum conv3 potentials, scaled
with the mean and s.d. of all training images, which needs no labels). All points run on one compiled
category network per worker (run arguments carry the images, the teacher, λ and the initial weights),
through joblib (``--jobs``) or a Dask cluster (``--dask``).

Outputs: ``fig_fewshot`` (accuracy vs images per class, one curve per λ, with the SVMs; accuracy vs λ at
``report_shots``), metrics (mean ± s.d. per point; ``acc_*`` strict: silent = wrong, ``acc_authors_*``:
silent → class 0). The paper's nested single-draw version is ``recollection.fewshot_nested``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from b2models.analysis.classify import svm_accuracy
from b2models.analysis.recollection import accuracy, name_by, summary
from b2models.protocol import Claim, Protocol
from b2models.protocols.recollection_common import (
    CategoryBuilder,
    RecollectionRunParams,
    learn_then_name,
    quick_features,
    root_layer,
    standardise_by,
)
from b2models.protocols.recollection_naming import pick_per_class


@dataclass
class FewShotParams(RecollectionRunParams):
    shots: tuple = (5, 10, 20, 50, 100, 200)  # labelled images per class
    lams: tuple = (0.1, 1.0, 2.0, 3.0, 5.0, 10.0)  # neuromodulation factors λ
    draws: int = 10  # random draws of the labelled images per shot count
    report_shots: int = 20  # the paper's headline point (λ = 10, 20 images per class)
    report_lam: float = 10.0

    def validate(self):
        super().validate()
        if not self.shots or min(self.shots) < 1:
            raise ValueError(f"shots must be positive counts, got {self.shots}")
        if not self.lams or min(self.lams) < 0:
            raise ValueError(f"lams must be >= 0, got {self.lams}")
        if self.draws < 1:
            raise ValueError(f"draws must be >= 1, got {self.draws}")


class _Point:
    """Picklable ``run_point(net, point)``: learn from one draw with one λ, name the test images."""

    def __init__(self, rp, root_train, y_train, root_test, potential_test=None):
        self.rp, self.root_train, self.y_train, self.root_test = rp, root_train, y_train, root_test
        self.potential_test = potential_test

    def __call__(self, net, pt):
        idx = pt["index"]
        r = learn_then_name(net, self.rp, self.root_train[idx], self.y_train[idx], self.root_test, pt["lam"],
                            pt["seed"], name_potential=self.potential_test)
        return {"predicted": name_by(r["scores"], "strict"), "predicted_authors": name_by(r["scores"], "authors"),
                "wall_s": r["wall_s"]}


def run(ctx) -> dict:
    p: FewShotParams = ctx.params
    p.validate()
    a = root_layer(ctx, p)
    y_tr, y_te = a["labels_train"], a["labels_test"]
    rng = np.random.default_rng([ctx.seed, 6])
    sets = {(n, d): pick_per_class(y_tr, n, rng) for n in p.shots for d in range(p.draws)}
    points = [{"shots": n, "draw": d, "lam": float(lam), "index": sets[(n, d)], "seed": [ctx.seed, 12, n, d]}
              for n in p.shots for d in range(p.draws) for lam in p.lams]
    n_present = max(len(i) for i in sets.values()) + len(y_te)
    rp = p.recollection()
    ctx.log(f"recollection.fewshot: shots {list(p.shots)} × λ {list(p.lams)} × {p.draws} draws = {len(points)} "
            f"runs, rule {p.rule}{' (retro_norm)' if p.retro_norm else ''}, "
            f"backend={ctx.backend}, jobs={ctx.jobs}{', dask ' + ctx.dask if ctx.dask else ''}")
    bar = ctx.progress(total=len(points), desc="few-shot runs", unit="run")
    out = ctx.sweep(_Point(rp, a["root_train"], y_tr, a["root_test"],
                           a.get("potential_test") if p.vote == "potential" else None), points,
                    build=CategoryBuilder(ctx.backend, ctx.threads, a["root_train"].shape[1], a["n_classes"], n_present,
                                           a["n_root_steps"], rp),
                    progress=bar.update)
    bar.close()
    acc = np.array([accuracy(o["predicted"], y_te) for o in out]).reshape(len(p.shots), p.draws, len(p.lams))
    acc_authors = np.array([accuracy(o["predicted_authors"], y_te) for o in out]).reshape(acc.shape)
    f_tr, f_te = standardise_by(a["features_train"], a["features_train"], a["features_test"])
    svm = {k: np.zeros((len(p.shots), p.draws)) for k in ("linear", "rbf")}
    for i, n in enumerate(p.shots):
        for d in range(p.draws):
            idx = sets[(n, d)]
            for k in svm:
                svm[k][i, d] = svm_accuracy(f_tr[idx], y_tr[idx], f_te, y_te, kernel=k, C=p.svm_C,
                                            standardize=False)["test"]
    metrics = {"points": len(points), "mean_run_wall_s": float(np.mean([o["wall_s"] for o in out]))}
    for i, n in enumerate(p.shots):
        for j, lam in enumerate(p.lams):
            s = summary(acc[i, :, j])
            metrics[f"acc_n{n}_lam{lam:g}"] = [s["mean"], s["sd"]]
            s = summary(acc_authors[i, :, j])
            metrics[f"acc_authors_n{n}_lam{lam:g}"] = [s["mean"], s["sd"]]
        for k in svm:
            s = summary(svm[k][i])
            metrics[f"svm_{k}_n{n}"] = [s["mean"], s["sd"]]
    if p.report_shots in p.shots and p.report_lam in p.lams:
        i, j = list(p.shots).index(p.report_shots), list(p.lams).index(p.report_lam)
        metrics["report_accuracy"] = float(acc[i, :, j].mean())
        metrics["report_accuracy_authors"] = float(acc_authors[i, :, j].mean())
        metrics["report_svm_linear"] = float(svm["linear"][i].mean())
        ctx.log(f"{p.report_shots} images per class, λ = {p.report_lam:g}: naming {metrics['report_accuracy']:.3f}, "
                f"linear SVM {metrics['report_svm_linear']:.3f}")
    best = np.unravel_index(np.argmax(acc.mean(axis=1)), (len(p.shots), len(p.lams)))
    metrics["best_point"] = {"shots": int(p.shots[best[0]]), "lam": float(p.lams[best[1]]),
                             "accuracy": float(acc.mean(axis=1)[best])}
    for i, n in enumerate(p.shots):
        ctx.log(f"n = {n:3d}: " + ", ".join(f"λ {lam:g} {acc[i, :, j].mean():.3f}" for j, lam in enumerate(p.lams))
                + f"; SVM linear {svm['linear'][i].mean():.3f}, RBF {svm['rbf'][i].mean():.3f}")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(accuracy=acc, accuracy_authors=acc_authors, svm_linear=svm["linear"], svm_rbf=svm["rbf"],
                           shots=np.array(p.shots),
                           lams=np.array(p.lams, dtype=float))
    _figure(ctx, p, acc, svm)
    return metrics


def _figure(ctx, p, acc, svm):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    shots = np.array(p.shots)
    for j, lam in enumerate(p.lams):
        m, s = acc[:, :, j].mean(axis=1), acc[:, :, j].std(axis=1)
        axes[0].errorbar(shots, m, yerr=s, marker="o", ms=3, capsize=2, label=f"naming, λ = {lam:g}")
    for k, style in (("linear", "k--"), ("rbf", "k:")):
        axes[0].plot(shots, svm[k].mean(axis=1), style, label=f"SVM ({k})")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("labelled images per class")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=6)
    if p.report_shots in p.shots:
        i = list(p.shots).index(p.report_shots)
        lams = np.array(p.lams, dtype=float)
        axes[1].errorbar(lams, acc[i].mean(axis=0), yerr=acc[i].std(axis=0), marker="o", capsize=2)
        axes[1].axhline(svm["linear"][i].mean(), color="k", ls="--", label="SVM (linear)")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("neuromodulation factor λ")
        axes[1].set_ylabel("test accuracy")
        axes[1].set_title(f"{p.report_shots} images per class", fontsize=9)
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_fewshot")


def quick_params(p: FewShotParams) -> FewShotParams:
    return dataclasses.replace(quick_features(p), shots=(5, 20, 80), lams=(1.0, 10.0), draws=3, report_shots=20)


PROTOCOL = Protocol(
    name="recollection.fewshot",
    paper="recollection",
    summary="naming accuracy vs labelled images per class and neuromodulation factor λ (Figs 4-5)",
    params=FewShotParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("report_accuracy", "naming test accuracy, 20 images per class, λ = 10, strict", "95.5%", "≥ 0.95",
              lambda v: v >= 0.95, "{:.3f}"),
        Claim("report_accuracy_authors", "naming test accuracy, 20 images per class, λ = 10, authors", "95.5%",
              "≥ 0.95", lambda v: v >= 0.95, "{:.3f}"),
        Claim("report_svm_linear", "linear SVM, same 20 images per class", "—", "", None, "{:.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_fewshot"],
)
