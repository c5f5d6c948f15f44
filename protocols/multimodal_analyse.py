"""Protocol ``multimodal.analyse``: invariant multimodal neurons, sparsity, separability, missing modality.

Kim E, Hannan D, Kenyon G (2018), "Deep Sparse Coding for Invariant Multimodal Halle Berry Neurons",
CVPR 2018, arXiv:1711.07998 (Figs 6–9, Table 1).

Reads the training stage of ``multimodal.train`` with the same parameters, seed and backend (runs it
if it is not cached) and measures, for the LCA hierarchy and the FFA baseline, on the joint layer P1
(:mod:`analysis.multimodal`).  The FFA's L1 weight is chosen before anything is compared, on the training
pairs only, so that 47.8 % of its joint units are active (the paper's FFA; ``ffa_target_active``,
``ffa_l1`` and the search are in the metrics):

* the paper's test (Figs 6–7), first: for each of the ``top_people`` most frequent people (the most
  frequent, George W Bush at full data scale, stands in for the paper's augmented Halle Berry), the P1 unit
  with the largest mean activation difference over the person's face + name *training pairs* against all
  other pairs; a threshold fixed on face-only training codes; then the face-only test AUC, the accuracy on
  up to 75 of the person's test faces + as many random other test faces ("thresholding it gives nearly 90 %
  accuracy"), and the rank of the person's own name among all names (name-only input).  Controls: the
  same for the autoencoder's joint layer, and with selection on face-only training codes for the LCA's V1
  units and for pixels; a label-permutation null (selection and test on shuffled training and test
  labels, 200 draws) for the most frequent person.  The paper's claim holds for a person when AUC ≥ 0.9,
  accuracy ≥ 0.85 and the name ranks first (``*_paper_n_pass``);
* invariant neurons, stricter secondary statistic: for each of the ``top_people``, the P1 unit with the largest
  ROC AUC for that person vs all others on face-only presentations of the *training* faces; that
  unit's AUC on face-only *test* faces and on the name-only presentations (one name per person; the
  AUC then is the fraction of other names that drive the unit less).  Paper: AUC ≥ 0.9 in both
  modalities for the most frequent people (the goal here: the 5 most frequent);
* multimodal fraction: units responsive (active on ≥ 5% of the inputs) to face-only test faces and to
  name-only names, among units responsive to either (paper: LCA 59.76%, FFA 5.27%);
* sparsity: mean fraction of active P1 units for face+name test pairs (paper: 20.2% vs 47.8%), and for
  the training pairs; P1's λ (``lam_p1``, or chosen on training pairs with ``p1_target_active``) and
  its search are in the metrics (``lca_p1_*``);
* identity from P1 features: logistic regression fitted on face-only training codes, accuracy on
  face-only test codes (a number for "more separable", Fig 9; chance = 1/n_people); the same
  classifier on the input faces (``pixels_identity_accuracy``) and on the LCA's V1 code
  (``lca_V1_identity_accuracy``) shows how much identity each stage keeps;
* missing modality: the name image reconstructed from face-only input (LCA: P1 code down the text
  dictionaries; FFA: its name decoder), decoded by the most similar rendered name: top-1 accuracy
  (paper: ~70% of the reconstructions legible).

Figures: ``multimodal_auc`` (per-person AUCs, both models), ``multimodal_tsne`` (t-SNE of P1 codes of
face+name test pairs, 10 people), ``multimodal_ata`` (activity-triggered averages of the best units:
mean face and mean name weighted by the unit's activation, Fig 8), ``multimodal_name_recon``.
"""

from __future__ import annotations

import numpy as np

from b2models.analysis import multimodal as mm
from b2models.protocol import Claim, Protocol
from b2models.protocols.multimodal_train import (
    MultimodalParams,
    ffa_metrics,
    lca_p1_metrics,
    quick_params,
    train_stage,
)


def model_metrics(a, model: str, n_top: int) -> tuple[dict, dict]:
    """Metrics of one model (``lca`` or ``ffa``) from the arrays of the training stage."""
    n_people = len(a["names"])
    sel, ftest, names = a[f"{model}_P1_face_train"], a[f"{model}_P1_face_test"], a[f"{model}_P1_name"]
    per = [mm.best_unit_auc(sel, a["y_train"], k, {"face": (ftest, a["y_test"]),
                                                   "name": (names, np.arange(n_people))})
           for k in range(min(n_top, n_people))]
    auc_face = np.array([r["auc_face"] for r in per])
    auc_name = np.array([r["auc_name"] for r in per])
    top1, pred = mm.nearest_name_top1(a[f"{model}_name_from_face"], a["names"], a["y_test"])
    m = {
        f"{model}_auc_face_top5_min": float(auc_face[:5].min()),
        f"{model}_auc_name_top5_min": float(auc_name[:5].min()),
        f"{model}_auc_face_mean": float(auc_face.mean()),
        f"{model}_auc_name_mean": float(auc_name.mean()),
        f"{model}_n_top5_both_auc_ge_0.9": int(np.sum((auc_face[:5] >= 0.9) & (auc_name[:5] >= 0.9))),
        f"{model}_multimodal_fraction": mm.multimodal_fraction(ftest, names),
        f"{model}_active_fraction": mm.active_fraction(a[f"{model}_P1_both_test"]),
        f"{model}_identity_accuracy": mm.linear_identity_accuracy(sel, a["y_train"], ftest, a["y_test"]),
        f"{model}_name_from_face_top1": top1,
    }
    extra = {"auc_face": auc_face, "auc_name": auc_name, "units": np.array([r["unit"] for r in per]),
             "name_pred": pred}
    return m, extra


N_PERM = 200  # label permutations of the null
N_TEST = 75  # test faces of the person (and as many of others) in the paper's accuracy


def paper_test(a, kind: str, n_top: int, seed: int) -> tuple[dict, dict]:
    """The paper's per-person test for ``kind`` in lca, ffa (joint layers), v1, pixels (controls)."""
    n_people = len(a["names"])
    if kind in ("lca", "ffa"):
        sel, thr, test, names = (a[f"{kind}_P1_both_train"], a[f"{kind}_P1_face_train"], a[f"{kind}_P1_face_test"],
                                 a[f"{kind}_P1_name"])
    elif kind == "v1":
        sel = thr = a["lca_V1_face_train"]
        test, names = a["lca_V1_face_test"], None
    else:
        sel = thr = a["face_train"].reshape(len(a["y_train"]), -1)
        test, names = a["face_test"].reshape(len(a["y_test"]), -1), None
    rows = [mm.paper_unit_test(sel, a["y_train"], thr, a["y_train"], test, a["y_test"], k, name_acts=names,
                               n_test=N_TEST, seed=seed * 1000 + k) for k in range(min(n_top, n_people))]
    auc = np.array([r["auc_face"] for r in rows])
    acc = np.array([r["accuracy"] for r in rows])
    m = {f"{kind}_paper_auc_face_top1": float(auc[0]), f"{kind}_paper_accuracy_top1": float(acc[0]),
         f"{kind}_paper_auc_face_mean": float(auc.mean()), f"{kind}_paper_accuracy_mean": float(acc.mean()),
         f"{kind}_paper_best_person_auc_face": float(auc.max()),
         f"{kind}_paper_best_person": str(a["people"][int(np.argmax(auc))])}
    table = {"person": [str(x) for x in a["people"][:len(rows)]], "unit": [r["unit"] for r in rows],
             "auc_face": auc.round(4).tolist(), "accuracy": acc.round(4).tolist(),
             "n_test_each": [r["n_test_each"] for r in rows]}
    if names is not None:
        rank = np.array([r["name_rank"] for r in rows])
        m[f"{kind}_paper_name_rank_top1"] = int(rank[0])
        m[f"{kind}_paper_best_person_name_rank"] = int(rank[int(np.argmax(auc))])
        m[f"{kind}_paper_n_pass"] = int(np.sum((auc >= 0.9) & (acc >= 0.85) & (rank == 1)))
        table["name_rank"] = rank.tolist()
        null = mm.permutation_null(sel, a["y_train"], test, a["y_test"], 0, n_perm=N_PERM, seed=seed)
        m[f"{kind}_paper_null_auc_mean"] = float(null.mean())
        m[f"{kind}_paper_null_auc_sd"] = float(null.std(ddof=1))
        m[f"{kind}_paper_null_auc_p95"] = float(np.percentile(null, 95))
        m[f"{kind}_multimodal_fraction_all_units"] = mm.multimodal_fraction_all(test, names)
    m[f"{kind}_paper_table"] = table
    return m, table


def run(ctx) -> dict:
    p: MultimodalParams = ctx.params
    p.validate()
    a = train_stage(ctx, p, reuse=True)
    models = ["lca"] + (["ffa"] if bool(a["ffa_available"]) else [])
    metrics = {"n_people": int(len(a["names"])), "n_test_faces": int(len(a["y_test"])),
               "chance_identity": 1.0 / len(a["names"])}
    metrics.update(lca_p1_metrics(a, p))  # P1's λ (given or chosen on the training pairs) and its activity
    if bool(a["ffa_available"]):  # the autoencoder's L1 weight, chosen on the training pairs
        metrics.update(ffa_metrics(a))
    if "face_test" in a:  # the same classifier on the model's input: what the layers keep of identity
        n_tr, n_te = len(a["y_train"]), len(a["y_test"])
        metrics["pixels_identity_accuracy"] = mm.linear_identity_accuracy(
            a["face_train"].reshape(n_tr, -1), a["y_train"], a["face_test"].reshape(n_te, -1), a["y_test"])
    else:
        ctx.log("the cached training stage predates stored test faces: no pixels_identity_accuracy")
    metrics["lca_V1_identity_accuracy"] = mm.linear_identity_accuracy(a["lca_V1_face_train"], a["y_train"],
                                                                   a["lca_V1_face_test"], a["y_test"])
    if "lca_P1_both_train" in a:
        kinds = ["lca"] + (["ffa"] if "ffa_P1_both_train" in a else []) + ["v1"] + (["pixels"] if "face_test" in a
                                                                                 else [])
        for kind in kinds:
            m, _ = paper_test(a, kind, p.top_people, ctx.seed)
            metrics.update(m)
            ctx.log(f"paper's test, {kind}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                                          for k, v in m.items() if not k.endswith("_paper_table")))
    else:
        ctx.log("the cached training stage predates the training-pair codes: the paper's test is skipped "
                "(rerun multimodal.train without --resume)")
    extras = {}
    for model in models:
        m, extras[model] = model_metrics(a, model, p.top_people)
        metrics.update(m)
        ctx.log(", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()))
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**{f"{model}_{k}": v for model, e in extras.items() for k, v in e.items()},
                           **{k: a[k] for k in a if k.endswith("_P1_both_test") or k == "y_test"})
    _figures(ctx, p, a, extras)
    return metrics


def _figures(ctx, p, a, extras):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people = [str(s).replace("_", " ") for s in a["people"]]
    fig, axes = plt.subplots(1, len(extras), figsize=(5 * len(extras), 3.2), squeeze=False)
    for ax, (model, e) in zip(axes[0], extras.items()):
        k = np.arange(len(e["auc_face"]))
        ax.bar(k - 0.2, e["auc_face"], 0.4, label="face only")
        ax.bar(k + 0.2, e["auc_name"], 0.4, label="name only")
        ax.axhline(0.9, color="k", ls="--", lw=0.8)
        ax.set_xticks(k, people[:len(k)], rotation=70, fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{model.upper()}: best P1 unit per person")
        ax.set_ylabel("ROC AUC")
        ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "multimodal_auc")

    from sklearn.manifold import TSNE

    keep = a["y_test"] < min(10, len(people))
    fig, axes = plt.subplots(1, len(extras), figsize=(5 * len(extras), 4), squeeze=False)
    for ax, model in zip(axes[0], extras):
        X = a[f"{model}_P1_both_test"][keep]
        # a silent layer gives identical points, on which the Barnes-Hut tree recurses without end: skip it
        if len(X) > 5 and np.ptp(X, axis=0).max() > 0:
            Y = TSNE(n_components=2, perplexity=min(30, (len(X) - 1) / 3), random_state=ctx.seed, init="pca",
                     method="exact" if len(X) <= 2000 else "barnes_hut").fit_transform(X)
            ax.scatter(Y[:, 0], Y[:, 1], c=a["y_test"][keep], cmap="tab10", s=12)
        else:
            ax.text(0.5, 0.5, "no activity to embed", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{model.upper()} P1 (face + name), t-SNE")
        ax.set_xticks([])
        ax.set_yticks([])
    ctx.writer.save_figure(fig, "multimodal_tsne")

    H, W = a["names_img"].shape[1:]
    S = a["face_img_test"].shape[1]
    n_show = min(5, len(extras["lca"]["units"]))
    fig, axes = plt.subplots(2 * len(extras), n_show, figsize=(2.4 * n_show, 2.2 * len(extras)), squeeze=False)
    for r, (model, e) in enumerate(extras.items()):
        for c in range(n_show):
            u = int(e["units"][c])
            face = mm.activity_triggered_average(a[f"{model}_P1_face_test"], a["face_img_test"], u)
            name = mm.activity_triggered_average(a[f"{model}_P1_name"], a["names_img"], u)
            axes[2 * r, c].imshow(face.reshape(S, S), cmap="gray")
            axes[2 * r, c].set_title(f"{model} unit {u}\n({people[c]})", fontsize=7)
            axes[2 * r + 1, c].imshow(name.reshape(H, W), cmap="gray", aspect="auto")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "multimodal_ata")

    n_show = min(6, len(a["y_test"]))
    fig, axes = plt.subplots(n_show, 1 + len(extras), figsize=(3 * (1 + len(extras)), 0.8 * n_show), squeeze=False)
    for r in range(n_show):
        axes[r, 0].imshow(a["face_img_test"][r].reshape(S, S), cmap="gray")
        for c, model in enumerate(extras, start=1):
            axes[r, c].imshow(a[f"{model}_name_from_face"][r].reshape(H, W), cmap="gray", aspect="auto")
            if r == 0:
                axes[r, c].set_title(f"{model.upper()}: name from face", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    ctx.writer.save_figure(fig, "multimodal_name_recon")


PROTOCOL = Protocol(
    name="multimodal.analyse",
    paper="multimodal",
    summary="invariant multimodal P1 neurons, sparsity, identity separability, names from faces "
            "(Kim et al. 2018, Figs 6-9)",
    params=MultimodalParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("lca_paper_auc_face_top1", "LCA, paper's test, most frequent person: face-only test AUC of the unit "
              "chosen on training pairs", "high (Fig 7)", "≥ 0.9", lambda v: v >= 0.9, "{:.3f}"),
        Claim("lca_paper_accuracy_top1", "LCA, paper's test, most frequent person: accuracy, person's test faces + "
              "as many others, threshold from training", "nearly 90 % (Fig 7)", "≥ 0.85", lambda v: v >= 0.85,
              "{:.3f}"),
        Claim("lca_paper_name_rank_top1", "LCA, paper's test, most frequent person: rank of the own name among all "
              "names", "1 (the unit answers the name, Fig 6)", "1", lambda v: v == 1, "{:d}"),
        Claim("lca_paper_best_person_auc_face", "LCA, paper's test: best face-only test AUC over the most frequent "
              "people (the paper shows its best example)", "high (Fig 7)", "≥ 0.9", lambda v: v >= 0.9, "{:.3f}"),
        Claim("lca_paper_n_pass", "LCA, paper's test: people with AUC ≥ 0.9, accuracy ≥ 0.85 and own name first",
              "≥ 1 (Halle Berry)", "≥ 1", lambda v: v >= 1, "{:d}"),
        Claim("lca_paper_null_auc_p95", "LCA, paper's test: 95th percentile of the AUC under shuffled training and "
              "test labels (null)", "—", "far below the measured AUC", None, "{:.3f}"),
        Claim("ffa_paper_auc_face_top1", "Autoencoder, paper's test, most frequent person: face-only test AUC",
              "— (no invariant units)", "< LCA", None, "{:.3f}"),
        Claim("lca_auc_face_top5_min", "LCA: min face-only AUC, 5 most frequent people", "≥ 0.9 (Fig 7)", "≥ 0.9",
              lambda v: v >= 0.9, "{:.3f}"),
        Claim("lca_auc_name_top5_min", "LCA: min name-only AUC, 5 most frequent people", "≥ 0.9 (Fig 7)", "≥ 0.9",
              lambda v: v >= 0.9, "{:.3f}"),
        Claim("lca_multimodal_fraction", "LCA: multimodal fraction of P1", "59.76%", "≥ 0.5",
              lambda v: v >= 0.5, "{:.3f}"),
        Claim("ffa_multimodal_fraction", "FFA: multimodal fraction of the joint layer", "5.27%", "< LCA", None,
              "{:.3f}"),
        Claim("lca_active_fraction", "LCA: active fraction of P1 (face + name)", "20.2%", "< FFA", None, "{:.3f}"),
        Claim("ffa_active_fraction", "FFA: active fraction of the joint layer", "47.8%", "—", None, "{:.3f}"),
        Claim("lca_identity_accuracy", "LCA: linear identity accuracy from P1 (face only)", "more separable "
              "than FFA (Fig 9)", "> FFA", None, "{:.3f}"),
        Claim("ffa_identity_accuracy", "FFA: linear identity accuracy (face only)", "—", "—", None, "{:.3f}"),
        Claim("lca_name_from_face_top1", "LCA: names from faces, nearest-name top-1", "~70% legible",
              "—", None, "{:.3f}"),
        Claim("ffa_name_from_face_top1", "FFA: names from faces, nearest-name top-1", "—", "—", None, "{:.3f}"),
    ],
    data=["lfw"],
    backends=("numpy", "cython", "cpp", "cuda"),
    figures=["multimodal_auc", "multimodal_tsne", "multimodal_ata", "multimodal_name_recon"],
)
