"""Protocol ``recollection.naming_cv``: choose the naming settings by cross-validation on the labelled training
images only, then name the test images once with the chosen setting.

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137

The naming network has settings the paper does not fix for this feature network: the conv3 threshold of the
root layer (``root_threshold``), a k-winner-take-all over the root layer (``root_winners``), the
neuromodulation factor λ (``lam``) and the divisive normalisation of the retrograde input (``retro_norm``).
Choosing them on the test images would make the test accuracy optimistic, so this protocol scores every
setting of the grid ``cv_thresholds`` × ``cv_winners`` × ``cv_lams`` × ``cv_norms`` by ``cv_folds``-fold
cross-validation on the ``n_train_per_class`` labelled training images per class that ``recollection.naming``
learns from (the same images, in the same order): in each fold the category layer learns from the other folds
and names the held-out images. The compiled category network is the one of ``recollection.naming``; a fold's
images, teachers, λ and initial weights are run arguments, so there is one build per root threshold and
``retro_norm``. The linear SVM on the SDNN features is cross-validated on the same folds.

Every fold is scored under both conventions of :data:`analysis.recollection.CONVENTIONS` (``strict``: an
image with tied scores, e.g. without root activity, is wrong; ``authors``: it is named class 0); the choice
uses ``cv_convention`` (strict by default, fixed before any comparison) and both are reported. With
``root_layer='authors'`` the thresholds of the grid are the root thresholds θ_root of the authors' naming
pass (0: their 10).

The setting with the largest mean CV accuracy (ties: the first in grid order) is then run exactly as
``recollection.naming`` runs it (same labelled images, order and initial weights), and its test accuracy is
reported with the linear SVM's on the same images. The test images are touched only in that last run.

Outputs: ``fig_cv`` (mean CV accuracy of every setting, sorted; the SVM's CV accuracy as a line), metrics
(the chosen setting, its CV and test accuracy, the SVM's), arrays (the grid and every fold's accuracy).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass

import numpy as np

from b2models.analysis.classify import svm_accuracy
from b2models.analysis.recollection import CONVENTIONS, accuracy, accuracy_on, check_convention, name_by
from b2models.models.recollection import RecollectionParams, first_root_spikes
from b2models.protocol import Claim, Protocol
from b2models.protocols.recollection_common import learn_then_name, open_category, root_layer
from b2models.protocols.recollection_naming import NamingParams, name_images, pick_per_class
from b2models.protocols.recollection_naming import quick_params as naming_quick

GRID_FIELDS = ("cv_thresholds", "cv_winners", "cv_lams", "cv_norms")


@dataclass
class NamingCVParams(NamingParams):
    cv_folds: int = 5
    cv_thresholds: tuple = (0.0, 1.0)  # root_threshold values (0: the features' own conv3 pattern)
    cv_winners: tuple = (0, 8, 12, 16)  # root_winners values (0: every root spike)
    cv_lams: tuple = (1.0, 10.0, 30.0, 65.0)  # λ values (1: the paper's many-shot value)
    cv_norms: tuple = (False, True)  # retro_norm values
    cv_convention: str = "strict"  # scoring convention of the CV choice ('strict' or 'authors')
    compare_rules: bool = False  # (not used: only the chosen rule is cross-validated)

    def validate(self):
        super().validate()
        if not isinstance(self.cv_folds, (int, np.integer)) or self.cv_folds < 2:
            raise ValueError(f"cv_folds={self.cv_folds!r} must be an integer >= 2")
        for name in GRID_FIELDS:
            if len(getattr(self, name)) < 1:
                raise ValueError(f"{name} must hold at least one value")
        if min(self.cv_thresholds) < 0:
            raise ValueError(f"cv_thresholds={self.cv_thresholds}: root thresholds must be >= 0")
        if any(not isinstance(k, (int, np.integer)) or k < 0 for k in self.cv_winners):
            raise ValueError(f"cv_winners={self.cv_winners}: root_winners must be integers >= 0")
        if min(self.cv_lams) < 0:
            raise ValueError(f"cv_lams={self.cv_lams}: λ must be >= 0")
        if any(not isinstance(v, (bool, np.bool_)) for v in self.cv_norms):
            raise ValueError(f"cv_norms={self.cv_norms}: expected true/false values")
        check_convention(self.cv_convention)

    def settings(self) -> list[tuple]:
        """The grid as (root_threshold, root_winners, lam, retro_norm) tuples, in grid order."""
        return [(float(t), int(k), float(lam), bool(n)) for t, k, lam, n in
                itertools.product(self.cv_thresholds, self.cv_winners, self.cv_lams, self.cv_norms)]


def cv_folds(n: int, n_folds: int, rng) -> np.ndarray:
    """Fold index of each of ``n`` images: equal sizes (±1), assigned at random."""
    if n < n_folds:
        raise ValueError(f"cross-validation needs at least cv_folds={n_folds} labelled images, got {n}")
    return rng.permutation(np.arange(n) % n_folds)


class _Fold:
    """Picklable ``run_point(net, point)``: learn from the other folds, name the held-out images; accuracy."""

    def __init__(self, patterns: dict, y, folds, rp: RecollectionParams, epochs: int, potentials=None):
        self.patterns, self.y, self.folds, self.rp, self.epochs = patterns, np.asarray(y), np.asarray(folds), rp, epochs
        self.potentials = potentials
        self.n_learn = int(max(np.sum(self.folds != f) for f in np.unique(self.folds)))

    def __call__(self, net, pt):
        t, k, lam, norm = pt["setting"]
        root = first_root_spikes(self.patterns[t], k)
        learn = self.folds != pt["fold"]
        pad = self.n_learn - int(learn.sum())  # silent, untaught presentations: every fold has one network size
        learn_root = np.concatenate([root[learn], -np.ones((pad, root.shape[1]), dtype=root.dtype)])
        learn_y = np.concatenate([self.y[learn], -np.ones(pad, dtype=int)])
        rp = dataclasses.replace(self.rp, retro_norm=norm)
        pot = self.potentials[t] if rp.vote == "potential" else None
        r = learn_then_name(net, rp, learn_root, learn_y, root, lam, pt["seed"], self.epochs, name_potential=pot)
        held = ~learn
        return [accuracy(name_by(r["scores"][held], c), self.y[held]) for c in CONVENTIONS]


class _Builder:
    """Picklable ``build(key)``: the compiled category network for (root threshold, retro_norm)."""

    def __init__(self, backend, threads, n_root, n_classes, n_present, steps: dict, rp):
        self.backend, self.threads, self.n_root, self.n_classes = backend, threads, n_root, n_classes
        self.n_present, self.steps, self.rp = n_present, steps, rp

    def __call__(self, key):
        t, norm = key
        return open_category(self.backend, self.n_root, self.n_classes, self.n_present, self.steps[t],
                             dataclasses.replace(self.rp, retro_norm=norm), self.threads)


def cv_naming(patterns: dict, y, folds, settings, rp: RecollectionParams, backend: str, n_root_steps: dict,
              seed, *, epochs: int = 1, threads: int = 0, jobs: int = 1, dask=None, progress=None,
              potentials: dict | None = None) -> dict:
    """Held-out naming accuracy (n_settings, n_folds) under each scoring convention: {'strict': ...,
    'authors': ...} (:data:`analysis.recollection.CONVENTIONS`).

    ``patterns``: root threshold → root spike steps (n, n_root) of the labelled images (in presentation
    order); ``y``: their classes; ``folds``: fold index per image; ``settings``: (root_threshold,
    root_winners, lam, retro_norm) tuples; ``n_root_steps``: root threshold → steps of the root layer.
    Every setting of a fold starts from the same initial weights (drawn with ``[seed, 19, fold]``)."""
    from b2models.sweep import sweep

    y = np.asarray(y)
    fold_ids = np.unique(folds)
    points = [{"setting": s, "fold": int(f), "seed": [*np.atleast_1d(seed).tolist(), 19, int(f)]}
              for s in settings for f in fold_ids]
    run_point = _Fold(patterns, y, folds, rp, epochs, potentials)
    n_root = next(iter(patterns.values())).shape[1]
    n_classes = int(y.max() + 1)
    build = _Builder(backend, threads, n_root, n_classes, run_point.n_learn * epochs + len(y), n_root_steps, rp)
    acc = sweep(run_point, points, build=build, key=lambda pt: (pt["setting"][0], pt["setting"][3]), jobs=jobs,
                dask_address=dask, progress=progress)
    acc = np.asarray(acc, dtype=float).reshape(len(settings), len(fold_ids), len(CONVENTIONS))
    return {c: acc[:, :, i] for i, c in enumerate(CONVENTIONS)}


def svm_cv(features, y, folds, C: float) -> float:
    """Mean held-out accuracy of the linear SVM on the same folds."""
    y = np.asarray(y)
    return float(np.mean([svm_accuracy(features[folds != f], y[folds != f], features[folds == f], y[folds == f],
                                       kernel="linear", C=C)["test"] for f in np.unique(folds)]))


def best_setting(cv_acc) -> int:
    """Index of the largest mean CV accuracy; ties go to the first in grid order."""
    m = np.asarray(cv_acc).mean(axis=1)
    return int(np.flatnonzero(m == m.max())[0])


def run(ctx) -> dict:
    p: NamingCVParams = ctx.params
    p.validate()
    settings = p.settings()
    a_by_t = {}
    for t in dict.fromkeys(s[0] for s in settings):
        a_by_t[t] = root_layer(ctx, dataclasses.replace(p, root_threshold=t, root_winners=0))
    a0 = next(iter(a_by_t.values()))
    y_tr, y_te = a0["labels_train"], a0["labels_test"]
    train_idx = pick_per_class(y_tr, p.n_train_per_class, np.random.default_rng([ctx.seed, 5]))  # as naming
    y_lab = y_tr[train_idx]
    folds = cv_folds(len(train_idx), p.cv_folds, np.random.default_rng([ctx.seed, 17]))
    ctx.log(f"recollection.naming_cv: {len(settings)} settings × {p.cv_folds} folds on {len(train_idx)} labelled "
            f"training images (rule {p.rule}, root layer {p.root_layer}, vote {p.vote}, {p.epochs} epoch(s)), "
            f"choice by the {p.cv_convention} convention, backend={ctx.backend}, seed={ctx.seed}")
    bar = ctx.progress(total=len(settings) * p.cv_folds, desc="cross-validation", unit="fold")
    t0 = time.perf_counter()
    cv_all = cv_naming({t: a["root_train"][train_idx] for t, a in a_by_t.items()}, y_lab, folds, settings,
                       p.recollection(), ctx.backend, {t: a["n_root_steps"] for t, a in a_by_t.items()}, ctx.seed,
                       epochs=p.epochs, threads=ctx.threads, jobs=ctx.jobs, dask=ctx.dask, progress=bar.update,
                       potentials={t: a["potential_train"][train_idx] for t, a in a_by_t.items()
                                   if "potential_train" in a})
    cv_acc = cv_all[p.cv_convention]  # the convention the choice is made by (strict unless set otherwise)
    cv_s = time.perf_counter() - t0
    bar.close()
    svm_cv_acc = svm_cv(a0["features_train"][train_idx], y_lab, folds, p.svm_C)
    order = np.argsort(-cv_acc.mean(axis=1), kind="stable")
    for i in order[:10]:
        t, k, lam, norm = settings[i]
        ctx.log(f"CV {cv_acc[i].mean():.3f} ± {cv_acc[i].std():.3f}: root_threshold={t:g} root_winners={k} "
                f"lam={lam:g} retro_norm={str(norm).lower()}")
    ctx.log(f"linear SVM on the features, same folds: CV {svm_cv_acc:.3f}; cross-validation took {cv_s:.1f} s")

    b = best_setting(cv_acc)
    t, k, lam, norm = settings[b]
    chosen = dataclasses.replace(p, root_threshold=t, root_winners=k, lam=lam, retro_norm=norm)
    a = root_layer(ctx, chosen)  # as recollection.naming prepares it (cached patterns, root_winners applied)
    r = name_images(ctx, a, chosen, p.rule, train_idx)
    named = name_by(r["scores_test"], "strict")
    heard = np.any(a["root_test"] >= 0, axis=1)
    svm = svm_accuracy(a0["features_train"][train_idx], y_lab, a0["features_test"], y_te, kernel="linear",
                       C=p.svm_C)
    metrics = {
        "n_settings": len(settings), "cv_folds": int(p.cv_folds), "n_labelled": int(len(train_idx)),
        "best_root_threshold": t, "best_root_winners": k, "best_lam": lam, "best_retro_norm": norm,
        "cv_convention": p.cv_convention,
        "cv_accuracy": float(cv_all["strict"][b].mean()), "cv_accuracy_sd": float(cv_all["strict"][b].std()),
        "cv_accuracy_authors": float(cv_all["authors"][b].mean()),
        "cv_accuracy_worst_setting": float(cv_acc.mean(axis=1).min()),
        "svm_linear_cv_accuracy": svm_cv_acc,
        "test_accuracy": accuracy(named, y_te), "test_accuracy_nonsilent": accuracy_on(named, y_te, heard),
        "test_accuracy_authors": accuracy(name_by(r["scores_test"], "authors"), y_te),
        "silent_test_images": float(np.mean(~heard)),
        "svm_linear_test_accuracy": svm["test"],
        "cv_wall_s": cv_s,
    }
    metrics["naming_minus_svm"] = metrics["test_accuracy"] - metrics["svm_linear_test_accuracy"]
    metrics["naming_minus_svm_authors"] = metrics["test_accuracy_authors"] - metrics["svm_linear_test_accuracy"]
    sets = " ".join(f"--set {n}={v}" for n, v in (("root_threshold", f"{t:g}"), ("root_winners", k),
                                                  ("lam", f"{lam:g}"), ("retro_norm", str(norm).lower())))
    ctx.log(f"chosen: {sets} (CV {metrics['cv_accuracy']:.3f} strict, {metrics['cv_accuracy_authors']:.3f} "
            f"authors); test accuracy {metrics['test_accuracy']:.3f} strict, "
            f"{metrics['test_accuracy_authors']:.3f} authors "
            f"({metrics['test_accuracy_nonsilent']:.3f} on the {int(heard.sum())} test images with a root spike), "
            f"linear SVM {metrics['svm_linear_test_accuracy']:.3f}. The same run: b2models run recollection.naming "
            f"{sets} with this run's other settings")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(settings=np.array(settings, dtype=float), cv_accuracy=cv_all["strict"],
                           cv_accuracy_authors=cv_all["authors"], folds=folds,
                           train_index=train_idx, scores_test=r["scores_test"], labels_test=y_te)
    _figure(ctx, cv_acc, settings, b, svm_cv_acc, metrics)
    return metrics


def _figure(ctx, cv_acc, settings, b, svm_cv_acc, metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m, sd = cv_acc.mean(axis=1), cv_acc.std(axis=1)
    order = np.argsort(-m, kind="stable")
    fig, ax = plt.subplots(figsize=(max(5.0, 0.18 * len(m) + 2), 3.4))
    colours = ["tab:red" if i == b else "tab:blue" for i in order]
    ax.bar(np.arange(len(m)), m[order], yerr=sd[order], color=colours, width=0.8, error_kw={"lw": 0.5})
    ax.axhline(svm_cv_acc, color="k", ls="--", lw=1, label=f"linear SVM, same folds ({svm_cv_acc:.3f})")
    ax.set_xticks(np.arange(len(m)))
    ax.set_xticklabels([f"T{settings[i][0]:g} k{settings[i][1]} λ{settings[i][2]:g}{' n' if settings[i][3] else ''}"
                        for i in order], rotation=90, fontsize=6)
    ax.set_ylim(max(0.0, float(m.min()) - 0.1), 1.0)
    ax.set_ylabel("naming accuracy, held-out fold")
    ax.set_xlabel("setting: T root threshold (0: the features' own pattern), k root_winners (0: all), λ, "
                  "n retro_norm", fontsize=7)
    ax.set_title(f"chosen (red): CV {metrics['cv_accuracy']:.3f}, test {metrics['test_accuracy']:.3f}; "
                 f"linear SVM test {metrics['svm_linear_test_accuracy']:.3f}", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_cv")


def quick_params(p: NamingCVParams) -> NamingCVParams:
    q = naming_quick(p)
    return dataclasses.replace(q, cv_folds=3, cv_thresholds=(0.0,), cv_winners=(0, 6), cv_lams=(10.0, 40.0),
                               cv_norms=(False,))


PROTOCOL = Protocol(
    name="recollection.naming_cv",
    paper="recollection",
    summary="naming settings chosen by cross-validation on the labelled training images, then tested once",
    params=NamingCVParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("cv_accuracy", "naming, CV accuracy of the chosen setting (training images), strict", "—", "", None,
              "{:.3f}"),
        Claim("test_accuracy", "naming test accuracy, setting chosen by CV, strict: silent = wrong", "95.7%",
              "≥ 95 %", lambda v: v >= 0.95, "{:.3f}"),
        Claim("test_accuracy_authors", "naming test accuracy, setting chosen by CV, authors: silent → class 0",
              "95.7%", "≥ 95 %", lambda v: v >= 0.95, "{:.3f}"),
        Claim("svm_linear_test_accuracy", "linear SVM test accuracy, same features", "96%", "", None, "{:.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_cv"],
)
