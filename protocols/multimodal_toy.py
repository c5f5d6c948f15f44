"""Protocol ``multimodal.feedback_toy``: top-down feedback changes a lower layer's mind (B vs 13).

Kim E, Hannan D, Kenyon G (2018), "Deep Sparse Coding for Invariant Multimodal Halle Berry Neurons",
CVPR 2018, arXiv:1711.07998 (Figs 3–4).

A small LCA hierarchy (:mod:`models.lca`): a handwritten layer H1 codes "handwritten-style" ``B`` and
``13`` images, a printed layer R1 codes the printed versions, and a joint layer J codes the dense
potentials of H1 and R1 together.  It learns on the paired toy set of :func:`data.multimodal.toy_b13`
(``epochs`` passes, feedback on; H1 and R1 start from randomly drawn training images).  Then, with frozen dictionaries:

* class centres: mean H1 and J codes of the training pairs (handwritten + printed);
* test inputs: the ambiguous images (halfway between a handwritten B and 13), presented
  (i) handwritten-only and (ii) together with the printed ``13`` (contradictory evidence for a B);
* measured per layer: the margin d(B centre) − d(13 centre) before and after adding the printed 13
  (positive = closer to 13), with feedback on and off.  With feedback off H1 receives nothing from
  above, so its code cannot change (a check of the switch); with feedback on the paper's claim is
  that both J and H1 move towards 13.

No data files needed (fonts bundled with matplotlib).  ``--quick``: 20 items per class, 2 epochs,
60 iterations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, ms

from b2models.analysis import multimodal as mm
from b2models.backend import Session
from b2models.data.multimodal import toy_b13
from b2models.models.lca import LayerSpec, LCAHierarchy, LCAParams, greedy_data_init
from b2models.protocol import Claim, Protocol
from b2models.protocols.multimodal_train import _pool, unit_norm


@dataclass
class ToyParams:
    n_per_class: int = 50
    image_size: int = 32  # rendered glyph size
    pool: int = 2  # model input: image_size / pool squared
    n_ambiguous: int = 10
    h_atoms: int = 48
    r_atoms: int = 16
    j_atoms: int = 32
    lam: float = 0.05
    n_iter: int = 100
    tau: Quantity = field(default_factory=lambda: 10 * ms)
    dt: Quantity = field(default_factory=lambda: 1 * ms)
    eta: float = 0.05
    epochs: int = 5
    chunk: int = 50

    def validate(self):
        if self.image_size % self.pool:
            raise ValueError(f"pool={self.pool} must divide image_size={self.image_size}")
        if min(self.h_atoms, self.r_atoms, self.j_atoms, self.epochs, self.chunk, self.n_ambiguous) < 1:
            raise ValueError("atom counts, epochs, chunk and n_ambiguous must be >= 1")
        LCAParams(tau=self.tau, dt=self.dt, n_iter=self.n_iter, eta=self.eta).validate()


def quick_params(p: ToyParams) -> ToyParams:
    return dataclasses.replace(p, n_per_class=20, epochs=2, n_iter=60, chunk=40)


def run(ctx) -> dict:
    p: ToyParams = ctx.params
    p.validate()
    toy = toy_b13(p.n_per_class, p.image_size, n_ambiguous=p.n_ambiguous, seed=ctx.seed)
    hw = unit_norm(_pool(toy.handwritten, p.pool))
    pr = unit_norm(_pool(toy.printed, p.pool))
    amb = unit_norm(_pool(toy.ambiguous, p.pool))
    pr13 = unit_norm(_pool(toy.printed_classes[1:2], p.pool))
    D = hw.shape[1]
    layers = [LayerSpec("H1", p.h_atoms, ("hand",), p.lam), LayerSpec("R1", p.r_atoms, ("print",), p.lam),
              LayerSpec("J", p.j_atoms, ("H1", "R1"), p.lam)]
    lp = LCAParams(tau=p.tau, dt=p.dt, n_iter=p.n_iter, eta=p.eta, feedback=True)
    rng = np.random.default_rng(ctx.seed)
    with Session(ctx.backend, "multimodal_toy", key=(dataclasses.asdict(p), D), threads=ctx.threads) as s:
        net = LCAHierarchy(lp, layers, {"hand": D, "print": D}, p.chunk, s, seed=ctx.seed)
        net.phi.update(greedy_data_init(layers, {"hand": hw, "print": pr}, p.n_iter, float(p.dt / p.tau), rng))
        for ep in range(p.epochs):
            order = rng.permutation(len(hw))
            net.present({"hand": hw[order], "print": pr[order]}, learn=True, seed=ctx.seed * 31 + ep)
        res = {}
        for fb in (True, False):
            key = "on" if fb else "off"
            train = net.present({"hand": hw, "print": pr}, feedback=fb, seed=1)
            before = net.present({"hand": amb}, feedback=fb, seed=2)
            after = net.present({"hand": amb, "print": np.repeat(pr13, len(amb), axis=0)}, feedback=fb, seed=3)
            for L in ("H1", "J"):
                centres = mm.class_centres(train[L]["a"], toy.labels, 2)
                d0 = mm.class_distances(before[L]["a"], centres)
                d1 = mm.class_distances(after[L]["a"], centres)
                res[f"{L}_{key}_margin_before"] = d0[:, 0] - d0[:, 1]
                res[f"{L}_{key}_margin_after"] = d1[:, 0] - d1[:, 1]
                res[f"{L}_{key}_code_change"] = np.abs(after[L]["a"] - before[L]["a"]).max(axis=1)
    metrics = {}
    for L in ("H1", "J"):
        for key in ("on", "off"):
            b, a = res[f"{L}_{key}_margin_before"], res[f"{L}_{key}_margin_after"]
            metrics[f"{L}_feedback_{key}_margin_before"] = float(np.mean(b))
            metrics[f"{L}_feedback_{key}_margin_after"] = float(np.mean(a))
            metrics[f"{L}_feedback_{key}_shift_to_13"] = float(np.mean(a - b))
            metrics[f"{L}_feedback_{key}_fraction_moved_to_13"] = float(np.mean(a > b))
            metrics[f"{L}_feedback_{key}_max_code_change"] = float(np.max(res[f"{L}_{key}_code_change"]))
    ctx.log(", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**res, handwritten=toy.handwritten, ambiguous=toy.ambiguous,
                           printed=toy.printed_classes, labels=toy.labels)
    _figures(ctx, toy, res)
    return metrics


def _figures(ctx, toy, res):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 6, figsize=(9, 3.4))
    picks = [0, 1, 2, len(toy.labels) - 3, len(toy.labels) - 2, len(toy.labels) - 1]
    for ax, k in zip(axes[0], picks):
        ax.imshow(toy.handwritten[k], cmap="gray")
        ax.set_title("B" if toy.labels[k] == 0 else "13", fontsize=8)
    for ax, k in zip(axes[1, :4], range(4)):
        ax.imshow(toy.ambiguous[k], cmap="gray")
        ax.set_title("ambiguous", fontsize=8)
    axes[1, 4].imshow(toy.printed_classes[0], cmap="gray")
    axes[1, 5].imshow(toy.printed_classes[1], cmap="gray")
    for ax in axes.flat:
        ax.axis("off")
    ctx.writer.save_figure(fig, "toy_inputs")
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, L in zip(axes, ("J", "H1")):
        for k, key in enumerate(("on", "off")):
            b, a = res[f"{L}_{key}_margin_before"], res[f"{L}_{key}_margin_after"]
            x = np.array([0, 1]) + 2.5 * k
            for bi, ai in zip(b, a):
                ax.plot(x, [bi, ai], "-o", color="C0" if key == "on" else "C1", ms=3, lw=0.8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks([0, 1, 2.5, 3.5], ["fb on\nalone", "+ printed 13", "fb off\nalone", "+ printed 13"],
                      fontsize=7)
        ax.set_title(f"layer {L}")
    axes[0].set_ylabel("d(B centre) − d(13 centre)")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "toy_feedback")


PROTOCOL = Protocol(
    name="multimodal.feedback_toy",
    paper="multimodal",
    summary="a printed 13 makes the joint and (through feedback) the handwritten layer read an ambiguous "
            "B/13 as 13 (Kim et al. 2018, Figs 3-4)",
    params=ToyParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("J_feedback_on_shift_to_13", "joint layer: margin shift towards 13", "> 0 (Fig 4)", "> 0",
              lambda v: v > 0, "{:.4f}"),
        Claim("H1_feedback_on_shift_to_13", "handwritten layer, feedback on: margin shift towards 13",
              "> 0 (Fig 4)", "> 0", lambda v: v > 0, "{:.4f}"),
        Claim("H1_feedback_off_max_code_change", "handwritten layer, feedback off: max code change",
              "0 (no top-down input)", "0", lambda v: v == 0, "{:.3g}"),
    ],
    backends=("numpy", "cython", "cpp"),
    figures=["toy_inputs", "toy_feedback"],
)
