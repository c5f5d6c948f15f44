"""Protocol ``resu.t4ab``: two layer-2 ReSUs trained on scenes moving in both directions, with plasticity
gated by their rectified outputs (T4a/T4b-like), tested for opposite direction preferences.

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146 (Fig 5 shows the network trained on one direction; the two-direction variant is ours).

Layer 1 is trained as in ``resu.t4`` (single-pixel scans).  Layer 2: three pixels see the same scenes
translating in the +1 (a → b → c) and the −1 direction, equally often.  Trained on both directions
together, the plain past–future CCA has no reason to prefer a direction; two units that compete for
the samples can split them.  :func:`protocols.resu_t4.gated_pair_cca`: each unit's covariance update is
weighted by its rectified output, and only the unit with the larger output learns from a sample
(winner-take-all); the units start from ``gate_init`` ("random": seeded random filters; "cca": the first
two canonical directions of the ungated CCA) and move their covariances a fraction ``gate_rate`` per
iteration.  The learned units are then tested in the Brian2 network (models/resu.py) exactly like the
``resu.t4`` unit — gratings and edges at several speeds in both directions, thresholded at
``theta2_sd`` s.d. of each unit's training projection — and the DSI of each unit is reported.
T4a/T4b-like means: at the training speed the two units' sine-grating DSIs have opposite signs.  Each
unit's ON- and OFF-edge DSIs over the edge's passage window (as ``resu.t4``) are reported beside them
(``dsi_{on,off}_edge_passage_at_training_speed``).

``--quick``: scikit-image scenes only (as ``resu.t4 --quick``).  The direction labels of the training
samples are never used by the learning; they only report which direction each unit learned from.

Conventions: layer 1 and the pixel names as in ``resu.t4``; each unit's sign comes from the gated learning
itself (a unit learns from the samples where its rectified output is positive), starting from the CCA sign
convention of analysis/cca.py — the ON-edge sign rule of ``resu.t4`` is for a unit trained on one
direction and is not applied here.  Only ``layer2=suite`` (the authors have no two-direction variant).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from brian2 import ms

from b2models.backend import Session
from b2models.models import resu
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol
from b2models.protocols import resu_t4 as t4


@dataclass
class T4abParams(t4.T4Params):
    """``resu.t4``'s parameters; layer 2 is the suite's (the authors' variant is defined for one unit)."""

    def validate(self):
        super().validate()
        if self.layer2 != "suite":
            raise ValueError(f"layer2={self.layer2!r}: resu.t4ab supports only layer2=suite (the authors' layer 2 "
                             "is a single unit trained on one direction: run resu.t4 or resu.compare)")


def default_params() -> T4abParams:
    return T4abParams(gate_init="cca")


def run(ctx) -> dict:
    p: T4abParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    f = t4.train_filters(p, ctx.quick, rng, ctx.log)
    ctx.log(f"layer 1 ρ = {np.round(f['rho1'], 3)}")
    chs = {}
    for d in (1, -1):
        chs[d] = [t4.layer2_channels(X3, f["psi1"], p.m)
                  for X3 in t4.scene_triples(p, ctx.quick, rng, float(d), log=lambda m: None)]
    g = t4.gated_pair_cca(chs, p, log=ctx.log, rng=ctx.seed)
    conds = t4.conditions(p)
    stim = t4.test_stimulus(p, conds, f["contrast_sd"])
    n_pix = stim.shape[1]
    triples = np.arange(n_pix).reshape(-1, 3)
    rp = resu.ReSUParams(dt=p.dt_ms * ms, m1=p.m, m2=p.m2, theta1=0.0, theta2=0.0)
    key = jsonable(dataclasses.asdict(rp)) | {"n_pix": n_pix, "steps": p.test_steps}
    discard = p.m + p.m2 + 10
    tabs = []
    with Session(ctx.backend, "resu_t4", key=key, threads=ctx.threads) as session:
        net = resu.ReSUNetwork(rp, session, n_pix, p.test_steps, f["psi1"], g["psi2"][0], triples,
                               monitor_layer1=False)
        for k in range(2):
            out = net.run(stim, psi2=g["psi2"][k], theta2=p.theta2_sd * float(g["v_sd"][k]), seed=ctx.seed)
            tabs.append(t4.dsi_table(p, conds, out["r"], discard, stim))
    speeds = list(p.speeds_deg_s)
    train_i = int(np.argmin(np.abs(np.array(speeds) - p.velocity_deg_s)))
    d_train = [tab["sine"]["dsi"][train_i] for tab in tabs]
    share = g["history"][-1]["share_from_plus"]
    opposite = (None if any(d is None for d in d_train) else bool(d_train[0] * d_train[1] < 0))
    metrics = {
        "speeds_deg_s": speeds, "training_speed_deg_s": p.velocity_deg_s, "gate_init": p.gate_init,
        "gate_iterations": len(g["history"]), "gate_final_change": g["history"][-1]["filter_change"],
        "share_of_learning_from_direction_plus": share,
        "dsi_sine_at_training_speed": d_train,
        "opposite_preferences": opposite,
        "min_abs_dsi_sine_at_training_speed": (None if any(d is None for d in d_train)
                                               else float(min(abs(d) for d in d_train))),
        "dsi_on_edge_passage_at_training_speed": [tab["on_edge_passage"]["dsi"][train_i] for tab in tabs],
        "dsi_off_edge_passage_at_training_speed": [tab["off_edge_passage"]["dsi"][train_i] for tab in tabs],
        "dsi": [{kind: v["dsi"] for kind, v in tab.items()} for tab in tabs],
        "responses": tabs,
    }
    ctx.log(f"units' sine DSI at the training speed: {d_train}; share of learning from direction +1: "
            f"{np.round(share, 3)}")
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(psi1=f["psi1"], psi2=g["psi2"].reshape(2, 6, p.m2), speeds=np.array(speeds))
    _figure(ctx, p, g, tabs)
    return metrics


def _figure(ctx, p, g, tabs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for k in range(2):
        K = g["psi2"][k].reshape(6, p.m2)
        lim = np.abs(K).max()
        axes[k].imshow(K, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=(0, p.m2 * p.dt_ms, 5.5, -0.5))
        axes[k].set_yticks(range(6), ["L1 a", "L1 b", "L1 c", "L3 a", "L3 b", "L3 c"])
        axes[k].set_xlabel("lag (ms)")
        axes[k].set_title(f"unit {k} filter")
        ax = axes[2 + k]
        for kind, v in tabs[k].items():
            ax.semilogx(p.speeds_deg_s, [np.nan if x is None else x for x in v["dsi"]], "o-", label=kind)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("speed (°/s)")
        ax.set_ylabel("DSI (+: a → c)")
        ax.set_title(f"unit {k}")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "t4ab_dsi")
    plt.close(fig)


PROTOCOL = Protocol(
    name="resu.t4ab",
    paper="resu",
    summary="Two layer-2 ReSUs with output-gated plasticity trained on both motion directions: do they "
            "split into T4a/T4b-like opposite preferences?",
    params=default_params,
    quick=t4.quick_params,
    run=run,
    data=["scenes_clark_pano", "scenes_train400"],
    claims=[
        Claim("opposite_preferences", "the two units prefer opposite directions (sine, training speed)",
              "T4a/T4b (stated as future work)", "yes (in every seed)", lambda v: v is not None and float(v) == 1.0,
              "{}"),
        Claim("min_abs_dsi_sine_at_training_speed", "smaller |DSI| of the two units at the training speed",
              "—", "> 0.3", lambda v: v is not None and v > 0.3, "{:.2f}"),
    ],
    figures=["t4ab_dsi"],
)
