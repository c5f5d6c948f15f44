"""Protocol ``recollection.oneshot``: one labelled image per class, naming vs SVMs on exactly the same pairs
(Ben Houidi 2021, Fig 6).

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis: backpropagated action potentials
mediate recall, imagination, language understanding and naming. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137

``n_pairs`` distinct pairs (one training image of each class) are drawn at random. For every pair the
category layer learns the two names with λ = ``lam`` (paper: 65) from fresh initial weights and names all
test images; a linear and an RBF SVM are fitted on the same two images' features (per-map maximum conv3
potentials) and tested on the same test images, with two scalings of the features (:data:`SVM_SCALINGS`):
by the mean and s.d. of all training images, which needs no labels (``svm_*``, the suite's baseline), and by
the pair's own two images (``svm_*_pair``, the paper's terms). Naming is scored under both conventions
(``naming_*`` strict: silent = wrong; ``naming_authors_*``: silent → class 0). The pairs run on one compiled
category network per worker, the pair's images, teacher
and initial weights being run arguments; the root-layer spike patterns are cached, so no image goes through
the SDNN again. Sweeps run through joblib (``--jobs``) or a Dask cluster (``--dask``).

Outputs: ``fig_oneshot_cdf`` (empirical CDFs of the test accuracy over pairs, both methods; the papers'
Fig 6), metrics (mean, median, best, worst for naming and every SVM; fraction of pairs where naming wins),
arrays (the pairs and every accuracy).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from b2models.analysis.classify import svm_accuracy
from b2models.analysis.recollection import CONVENTIONS, accuracy, ecdf, name_by, paired_comparison, summary
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
class OneShotParams(RecollectionRunParams):
    n_pairs: int = 1500  # random (class 0, class 1) training pairs
    lam: float = 65.0  # λ of one-shot learning (paper: 65)
    pairs_per_batch: int = 50  # pairs per worker task

    def validate(self):
        super().validate()
        if self.n_pairs < 1 or self.pairs_per_batch < 1:
            raise ValueError(f"n_pairs and pairs_per_batch must be >= 1 (got {self.n_pairs}, {self.pairs_per_batch})")


def draw_pairs(labels, n_pairs: int, rng) -> np.ndarray:
    """``n_pairs`` distinct (class-0 index, class-1 index) pairs of training images (all of them if fewer)."""
    labels = np.asarray(labels)
    a, b = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if a.size == 0 or b.size == 0:
        raise ValueError("one-shot pairs need training images of classes 0 and 1")
    total = a.size * b.size
    flat = rng.choice(total, size=min(n_pairs, total), replace=False)
    return np.stack([a[flat // b.size], b[flat % b.size]], axis=1)


class _Pair:
    """Picklable ``run_point(net, point)``: learn one pair, name every test image."""

    def __init__(self, rp, lam, root_train, root_test, y_test, potential_test=None):
        self.rp, self.lam, self.root_train, self.root_test, self.y_test = rp, lam, root_train, root_test, y_test
        self.potential_test = potential_test

    def __call__(self, net, pt):
        pair = pt["pair"]
        r = learn_then_name(net, self.rp, self.root_train[pair], np.array([0, 1]), self.root_test, self.lam,
                            pt["seed"], name_potential=self.potential_test)
        return [accuracy(name_by(r["scores"], c), self.y_test) for c in CONVENTIONS]


def oneshot_naming(root_train, root_test, y_test, pairs, rp, lam: float, backend: str, n_root_steps: int, seed: int,
                   *, threads: int = 0, jobs: int = 1, dask=None, progress=None, potential_test=None) -> np.ndarray:
    """Naming test accuracy of every pair under each scoring convention (array (n_pairs, 2): strict, authors;
    :data:`analysis.recollection.CONVENTIONS`), one category network per worker."""
    from b2models.sweep import sweep

    points = [{"pair": pr, "seed": [seed, 13, int(pr[0]), int(pr[1])]} for pr in pairs]
    build = CategoryBuilder(backend, threads, root_train.shape[1], 2, 2 + len(root_test), n_root_steps, rp)
    return np.asarray(sweep(_Pair(rp, lam, root_train, root_test, y_test, potential_test), points, build=build,
                            jobs=jobs, dask_address=dask, progress=progress), dtype=float).reshape(len(pairs), -1)


#: how the one-shot SVM's features are scaled: 'all_training' = mean and s.d. of all training images (no
#: labels needed; the suite's baseline); 'pair' = mean and s.d. of the pair's own two images (s.d. + 1e-5),
#: as the paper's one-shot comparison does
SVM_SCALINGS = ("all_training", "pair")


def oneshot_svm(features_train, features_test, y_test, pairs, kernel: str, C: float = 1.0,
                scaling: str = "all_training") -> np.ndarray:
    """SVM test accuracy of every pair, features scaled as ``scaling`` says (:data:`SVM_SCALINGS`)."""
    if scaling not in SVM_SCALINGS:
        raise ValueError(f"scaling={scaling!r}: expected one of {SVM_SCALINGS}")
    y = np.array([0, 1])
    if scaling == "pair":
        return np.array([svm_accuracy(features_train[pr], y, features_test, y_test, kernel=kernel, C=C)["test"]
                         for pr in pairs])
    f_tr, f_te = standardise_by(features_train, features_train, features_test)
    return np.array([svm_accuracy(f_tr[pr], y, f_te, y_test, kernel=kernel, C=C, standardize=False)["test"]
                     for pr in pairs])


def run(ctx) -> dict:
    p: OneShotParams = ctx.params
    p.validate()
    a = root_layer(ctx, p)
    if a["n_classes"] != 2:
        raise ValueError(f"one-shot pairs need exactly 2 classes, the root layer has {a['n_classes']}")
    pairs = draw_pairs(a["labels_train"], p.n_pairs, np.random.default_rng([ctx.seed, 8]))
    y_te = a["labels_test"]
    ctx.log(f"recollection.oneshot: {len(pairs)} pairs, λ = {p.lam:g}, {len(y_te)} test images, rule {p.rule}"
            f"{' (retro_norm)' if p.retro_norm else ''}, "
            f"backend={ctx.backend}, jobs={ctx.jobs}{', dask ' + ctx.dask if ctx.dask else ''}")
    bar = ctx.progress(total=len(pairs), desc="one-shot pairs", unit="pair")
    t0 = time.perf_counter()
    naming = oneshot_naming(a["root_train"], a["root_test"], y_te, pairs, p.recollection(), p.lam, ctx.backend,
                            a["n_root_steps"], ctx.seed, threads=ctx.threads, jobs=ctx.jobs, dask=ctx.dask,
                            progress=bar.update, potential_test=a.get("potential_test") if p.vote == "potential"
                            else None)
    naming, naming_authors = naming[:, 0], naming[:, 1]
    naming_s = time.perf_counter() - t0
    bar.close()
    t0 = time.perf_counter()
    # svm_*: features scaled by all training images (the suite's baseline); svm_*_pair: by the pair's own two
    # images (the paper's one-shot terms)
    svm = {f"svm_{k}{'_pair' if sc == 'pair' else ''}": oneshot_svm(a["features_train"], a["features_test"], y_te,
                                                                     pairs, k, p.svm_C, sc)
           for sc in SVM_SCALINGS for k in ("linear", "rbf")}
    svm_s = time.perf_counter() - t0
    metrics = {"n_pairs": int(len(pairs)), "naming_wall_s": naming_s, "svm_wall_s": svm_s}
    for name, acc in (("naming", naming), ("naming_authors", naming_authors), *svm.items()):
        s = summary(acc)
        for k in ("mean", "sd", "median", "best", "worst"):
            metrics[f"{name}_{k}"] = s[k]
        ctx.log(f"{name}: mean {s['mean']:.3f} ± {s['sd']:.3f}, median {s['median']:.3f}, best {s['best']:.3f}, "
                f"worst {s['worst']:.3f}")
    for nm, acc in (("naming", naming), ("naming_authors", naming_authors)):
        for k in svm:
            c = paired_comparison(acc, svm[k])
            metrics[f"{nm}_beats_{k}"] = c["a_wins"]
            metrics[f"{nm}_minus_{k}_mean"] = c["mean_difference"]
    ctx.log(f"naming beats the linear SVM on {metrics['naming_beats_svm_linear']:.3f} of the pairs (features scaled "
            f"by all training images), on {metrics['naming_beats_svm_linear_pair']:.3f} (scaled by the pair)")
    ctx.log(f"one-shot sweep: {naming_s:.1f} s for {len(pairs)} pairs (naming), {svm_s:.1f} s (SVMs)")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(pairs=pairs, naming_accuracy=naming, naming_accuracy_authors=naming_authors,
                           **{f"{k}_accuracy": v for k, v in svm.items()})
    _figure(ctx, naming, naming_authors, svm, p)
    return metrics


def _figure(ctx, naming, naming_authors, svm, p):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for acc, label, style in ((naming, f"naming (λ = {p.lam:g}), strict", "-"),
                              (naming_authors, "naming, authors' convention", "-."),
                              (svm["svm_linear"], "SVM linear, scaled by all training images", "--"),
                              (svm["svm_linear_pair"], "SVM linear, scaled by the pair", ":"),
                              (svm["svm_rbf"], "SVM RBF, scaled by all training images", (0, (1, 3)))):
        x, f = ecdf(acc)
        ax.step(x, f, where="post", ls=style, label=f"{label}: median {np.median(acc):.3f}, best {acc.max():.3f}")
    ax.set_xlabel("test accuracy of a one-shot pair")
    ax.set_ylabel("fraction of pairs (empirical CDF)")
    ax.set_title(f"{len(naming)} pairs, one image per class", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_oneshot_cdf")


def quick_params(p: OneShotParams) -> OneShotParams:
    return dataclasses.replace(quick_features(p), n_pairs=60)


PROTOCOL = Protocol(
    name="recollection.oneshot",
    paper="recollection",
    summary="one-shot naming (one image per class, λ = 65) vs linear/RBF SVMs on the same pairs (Fig 6)",
    params=OneShotParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("naming_best", "one-shot naming, best pair, strict", "96.2%", "", None, "{:.3f}"),
        Claim("naming_authors_best", "one-shot naming, best pair, authors", "96.2%", "", None, "{:.3f}"),
        Claim("svm_linear_best", "one-shot linear SVM, best pair (scaled by all training images)", "84.5% (SVM)",
              "", None, "{:.3f}"),
        Claim("svm_linear_pair_best", "one-shot linear SVM, best pair (scaled by its own two images)",
              "84.5% (SVM)", "", None, "{:.3f}"),
        Claim("naming_beats_svm_linear_pair", "fraction of pairs where naming (strict) beats the pair-scaled "
              "linear SVM", "—", "", None, "{:.3f}"),
        Claim("naming_median", "one-shot naming, median over pairs", "—", "", None, "{:.3f}"),
        Claim("svm_linear_median", "one-shot linear SVM, median over pairs", "—", "", None, "{:.3f}"),
        Claim("naming_beats_svm_linear", "fraction of pairs where naming beats the linear SVM", "—", "", None,
              "{:.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_oneshot_cdf"],
)
