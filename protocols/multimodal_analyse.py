"""Protocol ``multimodal.analyse``: invariant multimodal neurons, sparsity, separability, missing modality.

Kim E, Hannan D, Kenyon G (2018), "Deep Sparse Coding for Invariant Multimodal Halle Berry Neurons",
CVPR 2018, arXiv:1711.07998 (Figs 6–9, Table 1).

Reads the training stage of ``multimodal.train`` with the same parameters, seed and backend (runs it
if it is not cached) and measures, for the LCA hierarchy and the FFA baseline, on the joint layer P1
(:mod:`analysis.multimodal`):

* invariant neurons: for each of the ``top_people`` most frequent people, the P1 unit with the largest
  ROC AUC for that person vs all others on face-only presentations of the *training* faces; that
  unit's AUC on face-only *test* faces and on the name-only presentations (one name per person; the
  AUC then is the fraction of other names that drive the unit less).  Paper: AUC ≥ 0.9 in both
  modalities for the most frequent people (the goal here: the 5 most frequent);
* multimodal fraction: units responsive (active on ≥ 5% of the inputs) to face-only test faces and to
  name-only names, among units responsive to either (paper: LCA 59.76%, FFA 5.27%);
* sparsity: mean fraction of active P1 units for face+name test pairs (paper: 20.2% vs 47.8%);
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
from b2models.protocols.multimodal_train import MultimodalParams, quick_params, train_stage


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


def run(ctx) -> dict:
    p: MultimodalParams = ctx.params
    p.validate()
    a = train_stage(ctx, p, reuse=True)
    models = ["lca"] + (["ffa"] if bool(a["ffa_available"]) else [])
    metrics = {"n_people": int(len(a["names"])), "n_test_faces": int(len(a["y_test"])),
               "chance_identity": 1.0 / len(a["names"])}
    if "face_test" in a:  # the same classifier on the model's input: what the layers keep of identity
        n_tr, n_te = len(a["y_train"]), len(a["y_test"])
        metrics["pixels_identity_accuracy"] = mm.linear_identity_accuracy(
            a["face_train"].reshape(n_tr, -1), a["y_train"], a["face_test"].reshape(n_te, -1), a["y_test"])
    else:
        ctx.log("the cached training stage predates stored test faces: no pixels_identity_accuracy")
    metrics["lca_V1_identity_accuracy"] = mm.linear_identity_accuracy(a["lca_V1_face_train"], a["y_train"],
                                                                   a["lca_V1_face_test"], a["y_test"])
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
        if len(X) > 5:
            Y = TSNE(n_components=2, perplexity=min(30, (len(X) - 1) / 3), random_state=ctx.seed,
                     init="pca").fit_transform(X)
            ax.scatter(Y[:, 0], Y[:, 1], c=a["y_test"][keep], cmap="tab10", s=12)
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
    backends=("numpy", "cython", "cpp"),
    figures=["multimodal_auc", "multimodal_tsne", "multimodal_ata", "multimodal_name_recon"],
)
