"""Protocol ``resu.t4``: a two-layer ReSU network trained on natural scenes moving in one direction becomes
direction selective (T4-like); DSI vs speed for gratings and edges (paper Fig 5).

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146.

Training (offline past–future CCA, analysis/cca.py):

1. layer 1: CCA of single-pixel contrast scans (as in ``resu.scenes``) gives ψ1 (L3-like) and ψ2
   (L1/L2-like);
2. layer 2: three pixels 5° apart see the same scenes translating at constant velocity in the *preferred*
   direction (pixel a → b → c); their layer-1 outputs (L1 = ON-rectified ψ2 projection, L3 = ψ1 projection:
   6 channels) are the input of a second past–future CCA; the T4-like unit uses one canonical direction
   ψ⁽²⁾ and rectifies, with threshold θ₂ = 0 (plain) or θ₂ = ``theta2_sd`` × the s.d. of its projection on
   the training data (the thresholded variant).  Two variants (``--set layer2=...``):

   * ``suite`` (default): component ``component`` (0: the first canonical direction), m2 = 10 lags, h2 = 10,
     centred covariances;
   * ``authors`` (the authors' notebook): the *second* canonical direction (0-based component 1), 6 weights
     and no lags (m2 = 1), a 5-sample horizon (h2 = 5: future vector ``y[t+1 … t+5]``, the notebooks' meaning
     of "horizon"), uncentred second moments.

Conventions, fixed in code before any comparison with data (each function's docstring gives the reason):

* layer-1 filters: ψ positive for a light increment (analysis/cca.py sign convention);
* layer-2 channels are computed light-referred (as layer 1 gives them); the weights are reported on each
  channel's cell type in its own light polarity (:func:`cell_polarity_weights`: Mi1/Tm3 +1, L3/Mi9 −1);
* layer-2 sign: the peak linear response to an ON edge moving in the trained direction is positive
  (:func:`orient_layer2`; T4 is the ON-edge detector) — it replaces the CCA sign convention for ψ⁽²⁾;
* pixels are named by their role in the trained (preferred) direction (:func:`pixel_roles`: leading pixel
  first, the Mi9 side), not by array index.

Testing (Brian2, models/resu.py): sine and square gratings (wavelength 30°) and ON/OFF edges at several
speeds in both directions, all conditions in one run (one T4 unit and three pixels per condition);
R = time-averaged rectified response after the filters' warm-up;
DSI = (R_pref − R_null)/(R_pref + R_null) (analysis/direction.py).  Stimulus contrast = the s.d. of the
training contrast.  DSI is undefined (reported as null) where a unit does not respond in either direction.
ON and OFF edges are reported separately at every speed, twice: R over the whole trial after the warm-up
(as the gratings), and R over the edge's *passage window* only (:func:`passage_windows`: from the edge's
first touch of a pixel until the filters' memory m + m2 after it has covered the last one — after that the
input is uniform and a unit sits at one level whatever the direction; at high speeds the warm-up discard
would also cut the passage off).  Metrics ``dsi_{on,off}_edge[_passage]_at_training_speed_*``, per speed
in ``dsi_thresholded`` / ``dsi_plain`` (keys ``on_edge_passage``, ``off_edge_passage``).

Input decomposition (paper Fig 5C; :func:`pathway_decomposition`): at the training speed the linear
layer-2 input v for the ON edge and the sine grating is split into its Mi1/Tm3 (L1) and Mi9 (L3) parts at
the peak of v in each direction, and each pathway's share of the peak difference pref − null is reported
(``decomposition_*``).

The variant trained on both directions with plasticity gated by the rectified output (T4a/T4b) is the
protocol ``resu.t4ab`` (:func:`gated_pair_cca` here).  Deviations: test stimuli bypass the local-mean
normalisation (they are contrast patterns already); velocity, noise, pixel spacing and lag lengths are our
choices (see the parameters); the default layer 2 (``suite``: first component, 10 lags, centred) differs
from the authors' (``layer2=authors``); the authors fix no sign for the layer-2 filter (raw singular vectors),
the ON-edge rule above is ours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from brian2 import ms

from b2models.analysis import cca, direction
from b2models.backend import Session
from b2models.models import resu
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol
from b2models.protocols import resu_scenes as scenes

#: layer-2 variants: "suite" (component, m2, h2 as set; centred covariances) and "authors" (the authors'
#: notebook: the second canonical direction, 6 weights and no lags, 5-sample horizon, uncentred covariances)
LAYER2_VARIANTS = ("suite", "authors")
AUTHORS_LAYER2 = {"component": 1, "m2": 1, "h2": 5}

#: light polarity of the cell type each layer-2 channel stands for, in the channel order of models.resu
#: (ON(ψ2) of pixels a, b, c, then ψ1 of a, b, c).  Mi1 and Tm3 (the L1-pathway inputs of T4) are ON cells
#: (+1); L3 and its T4-input Mi9 are OFF cells (−1: Mi9 depolarises to dimming), so a weight on the model's
#: light-positive ψ1 channel is, as a weight on Mi9 activity, its negative.
LAYER2_POLARITY = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
LAYER2_CELLS = ("Mi1/Tm3 a", "Mi1/Tm3 b", "Mi1/Tm3 c", "Mi9 a", "Mi9 b", "Mi9 c")


@dataclass
class T4Params(scenes.SceneParams):
    m2: int = 10  # layer-2 past length
    h2: int = 10  # layer-2 future length
    spacing_deg: float = 5.0  # distance of adjacent pixels (inter-ommatidial angle)
    component: int = 0  # which layer-2 canonical direction is the T4 unit (0-based)
    layer2: str = "suite"  # "suite" or "authors" (component 1, m2 = 1, h2 = 5, uncentred covariances)
    theta2_sd: float = 1.0  # threshold of the thresholded variant, in s.d. of the training projection
    speeds_deg_s: tuple = (7.5, 15.0, 30.0, 60.0, 120.0)
    wavelength_deg: float = 30.0
    test_steps: int = 400  # samples per condition
    train400_limit: int = 100
    gate_iters: int = 15  # iterations of the gated two-unit learning
    gate_tol: float = 1e-6  # stop when 1 − cos(new, old filter) < tol for both units
    gate_stride: int = 6  # use every k-th lag vector in the gated learning
    gate_init: str = "cca"  # start of the gated learning: "cca" (first two canonical directions) or "random"
    gate_rate: float = 0.3  # each iteration moves a unit's covariances this fraction towards the gated ones

    def validate(self):
        super().validate()
        if self.layer2 not in LAYER2_VARIANTS:
            raise ValueError(f"layer2 must be one of {', '.join(LAYER2_VARIANTS)} (got {self.layer2!r})")
        if self.layer2 == "authors":
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            clash = {k: getattr(self, k) for k, v in AUTHORS_LAYER2.items() if getattr(self, k) not in (v, defaults[k])}
            if clash:
                raise ValueError(f"layer2=authors fixes {', '.join(f'{k}={v}' for k, v in AUTHORS_LAYER2.items())}; "
                                 f"got {', '.join(f'{k}={v}' for k, v in clash.items())}")
        if self.m2 < 1 or self.h2 < 1 or not 0 <= self.component < 6 * min(self.m2, self.h2):
            raise ValueError(f"bad layer-2 sizes m2={self.m2}, h2={self.h2}, component={self.component}")
        if self.test_steps <= self.m + self.m2 + 10:
            raise ValueError(f"test_steps={self.test_steps} must exceed the warm-up m + m2 + 10")
        if self.gate_init not in ("cca", "random") or not 0 < self.gate_rate <= 1 or self.gate_iters < 1 \
                or self.gate_stride < 1:
            raise ValueError(f"gate_init must be 'cca' or 'random' (got {self.gate_init!r}), 0 < gate_rate <= 1, "
                             "gate_iters >= 1 and gate_stride >= 1")
        if self.theta2_sd < 0 or self.spacing_deg <= 0 or not self.speeds_deg_s:
            raise ValueError("theta2_sd >= 0, spacing_deg > 0 and at least one speed are required")


def quick_params(p: T4Params) -> T4Params:
    return dataclasses.replace(p, use_panorama=False, train400_limit=0, row_step=4,
                               speeds_deg_s=(15.0, 30.0, 60.0), test_steps=300)


def resolve_layer2(p: T4Params) -> T4Params:
    """``p`` with the layer-2 sizes of its variant: unchanged for "suite", :data:`AUTHORS_LAYER2` for
    "authors" (validated: a different m2, h2 or component set together with layer2=authors is an error)."""
    p.validate()
    return p if p.layer2 == "suite" else dataclasses.replace(p, **AUTHORS_LAYER2)


def layer2_centered(p: T4Params) -> bool:
    """Whether layer 2 uses centred covariances (suite) or uncentred second moments (authors)."""
    return p.layer2 == "suite"


# ---------------------------------------------------------------------------------------------
# conventions fixed before any comparison (each with its reason)
# ---------------------------------------------------------------------------------------------
def cell_polarity_weights(psi2, m2: int) -> np.ndarray:
    """Layer-2 filter (6·m2,) as (6, m2) weights on the activity of each channel's cell type
    (:data:`LAYER2_POLARITY`).  Reason: a connectome weight is a synaptic sign × count on the presynaptic
    cell's own activity; Mi9 is an OFF cell, so light acting through it disinhibits T4 — a positive weight
    on the light-positive ψ1 channel is a negative (inhibitory) Mi9 weight.  The unit is unchanged
    (w_cell · y_cell = w · y)."""
    return LAYER2_POLARITY[:, None] * np.asarray(psi2, dtype=float).reshape(6, m2)


def on_edge_stimulus(p: T4Params, direction_sign: float = 1.0) -> tuple[np.ndarray, int]:
    """Unit-contrast ON edge at the three pixels (spacing ``spacing_deg``, blur ``blur_deg``) moving at the
    training velocity, ``direction_sign`` +1: in the trained direction (the motion of the training scenes,
    ``scene_trajectories(speed_sign=+1)``: a → b → c for a positive ``velocity_deg_s``); (T, 3) and the end of
    the response window: the last pixel's arrival sample plus the filters' memory m + m2."""
    speed = p.velocity_deg_s
    xs = np.array([0.0, p.spacing_deg, 2 * p.spacing_deg])
    travel = 2 * p.spacing_deg + 6 * p.blur_deg  # the edge starts 3 blur widths outside the pixels
    n = int(np.ceil(travel / abs(speed) / (p.dt_ms * 1e-3))) + p.m + p.m2 + 10
    stim = direction.moving_pattern("on_edge", xs, n, p.dt_ms * 1e-3, direction_sign * speed,
                                    contrast=1.0, blur_fwhm_deg=p.blur_deg)
    stop = int(direction.arrival_times(stim).max()) + p.m + p.m2
    return stim, min(stop, n)


def layer2_linear_response(stim, psi1, psi2, m2: int) -> np.ndarray:
    """Linear layer-2 projection v_t = ψ⁽²⁾ · p⁽²⁾_t (no threshold) for a (T, 3) stimulus that starts at
    zero (delay lines start empty; the Brian2 network computes the same, models.resu)."""
    from scipy.signal import lfilter

    stim = np.asarray(stim, dtype=float)
    u = np.stack([lfilter(psi1[k], [1.0], stim, axis=0) for k in range(2)], axis=-1)  # (T, 3, 2)
    ch = np.concatenate([np.maximum(u[..., 1], 0.0), u[..., 0]], axis=1)  # (T, 6), models.resu order
    return cca.apply_filter(ch, np.asarray(psi2, dtype=float).ravel(), m2)


def input_decomposition(stim, psi1, psi2, m2: int) -> np.ndarray:
    """Contribution of each layer-2 input channel to the linear projection, (T, 6) in the channel order of
    models.resu (Mi1/Tm3 = ON(ψ2) of pixels a, b, c, then Mi9 = ψ1 of a, b, c); the row sums are
    :func:`layer2_linear_response` (delay lines start at zero)."""
    from scipy.signal import lfilter

    stim = np.asarray(stim, dtype=float)
    u = np.stack([lfilter(psi1[k], [1.0], stim, axis=0) for k in range(2)], axis=-1)  # (T, 3, 2)
    ch = np.concatenate([np.maximum(u[..., 1], 0.0), u[..., 0]], axis=1)  # (T, 6)
    w = np.asarray(psi2, dtype=float).reshape(6, m2)
    return np.stack([lfilter(w[c], [1.0], ch[:, c]) for c in range(6)], axis=1)


def pathway_decomposition(p: T4Params, psi1, psi2, stims: dict, windows: dict) -> dict:
    """Fig 5C-style decomposition of the linear layer-2 input by pathway: for each direction d (+1 trained,
    −1 null) the total v at its peak (largest v in the window) split into the Mi1/Tm3 (L1) and Mi9 (L3)
    parts at that sample, and each pathway's share of the peak difference pref − null
    (share_g = Δ_g / Δ_v, Δ_g = v_g(t*_pref) − v_g(t*_null); the shares sum to 1).  ``stims``: {d: (T, 3)},
    ``windows``: {d: (start, stop)}."""
    out = {}
    for d, st in stims.items():
        parts = input_decomposition(st, psi1, psi2, p.m2)
        lo, hi = windows[d]
        v = parts[lo:hi].sum(axis=1)
        t = lo + int(np.argmax(v))
        out[d] = {"v": float(v.max()), "L1": float(parts[t, :3].sum()), "L3": float(parts[t, 3:].sum()),
                  "peak_sample": t}
    dv = out[1]["v"] - out[-1]["v"]
    share = {g: (float((out[1][g] - out[-1][g]) / dv) if abs(dv) > 1e-12 else None) for g in ("L1", "L3")}
    return {"pref": out[1], "null": out[-1], "share_L1": share["L1"], "share_L3": share["L3"],
            "peak_difference": float(dv)}


def on_edge_response(psi1, psi2, p: T4Params, direction_sign: float = 1.0) -> float:
    """Linear response of the layer-2 unit to an ON edge (:func:`on_edge_stimulus`): the signed peak, v_t
    at the sample of largest ``|v_t|`` in the window (before the edge arrives v = 0).  The peak, not the sum:
    the time integral of a linear response to a whole passage is Σ_c (DC gain_c × input_c), the same for
    both directions, so it would not see the direction at all."""
    stim, stop = on_edge_stimulus(p, direction_sign)
    v = layer2_linear_response(stim, psi1, psi2, p.m2)[:stop]
    return float(v[np.argmax(np.abs(v))])


def orient_layer2(psi1, psi2, p: T4Params) -> tuple[np.ndarray, bool]:
    """The layer-2 filter with the sign that makes the (peak) linear response to an ON edge moving in the
    trained direction positive; also whether it was flipped.  Reason: T4 is the ON-edge motion detector
    (it depolarises to ON edges moving in its preferred direction); the CCA fixes ψ⁽²⁾ only up to its sign,
    and the rectified unit keeps the half of the canonical variable this sign selects.  ψ⁽²⁾ and −ψ⁽²⁾ give
    the same result."""
    psi2 = np.asarray(psi2, dtype=float)
    r = on_edge_response(psi1, psi2, p)
    if r == 0 or not np.isfinite(r):
        raise ValueError(f"the ON-edge response of the layer-2 filter is {r}: its sign is undefined")
    return (psi2, False) if r > 0 else (-psi2, True)


def pixel_roles(p: T4Params) -> np.ndarray:
    """Model pixels in role order (leading, centre, trailing) for motion in the trained direction, from the
    arrival order of the trained-direction ON edge.  Reason: pixels are compared with the connectome by
    their role in the preferred direction (leading pixel ↔ Mi9, preferred side), never by array index."""
    stim, _ = on_edge_stimulus(p, 1.0)
    return direction.arrival_order(stim)


def train_filters(p: T4Params, quick: bool, rng, log=print) -> dict:
    """Layer-1 and layer-2 CCA on scenes moving in the preferred direction (layer-2 variant ``p.layer2``;
    the layer-2 filter oriented by :func:`orient_layer2`)."""
    from scipy.signal import lfilter

    p = resolve_layer2(p)
    sets = scenes.scene_sets(p, quick, log)
    singles, triples = [], []
    for imgs, periodic, dpp in sets.values():
        d = p.spacing_deg / dpp
        X = scenes.scene_trajectories(imgs, periodic, dpp, p)
        singles.append(X + np.sqrt(p.noise_var * X.var()) * rng.standard_normal(X.shape))
        X3 = scenes.scene_trajectories(imgs, periodic, dpp, p, offsets=(0.0, d, 2 * d), speed_sign=1.0)
        triples.append(X3 + np.sqrt(p.noise_var * X3.var()) * rng.standard_normal(X3.shape))
    T = min(x.shape[1] for x in singles)
    c1 = cca.past_future_cca(np.concatenate([x[:, :T] for x in singles]), p.m, p.h, rank=2, reg=p.reg)
    psi1 = c1.past_filters
    T3 = min(x.shape[1] for x in triples)
    X3 = np.concatenate([x[:, :T3] for x in triples])
    u = np.stack([lfilter(psi1[k], [1.0], X3, axis=1) for k in range(2)], axis=-1)[:, p.m:]  # (n, T, 3, 2)
    ch = np.concatenate([np.maximum(u[..., 1], 0.0), u[..., 0]], axis=2)  # L1 = ON(ψ2) a,b,c; L3 = ψ1 a,b,c
    psi2, c2, flipped = layer2_filter(ch, psi1, p)
    v_train = cca.apply_filter(ch.reshape(-1, 6)[: 200_000], psi2)
    vt = v_train[p.m2:]
    return {"psi1": psi1, "rho1": c1.rho, "psi2": psi2, "rho2": c2.rho, "v_sd": float(vt.std()),
            "v_mean": float(vt.mean()), "v_skew": float(((vt - vt.mean()) ** 3).mean() / vt.std() ** 3),
            "contrast_sd": float(X3.std()), "psi2_flipped_by_on_edge_rule": flipped,
            "on_edge_response": on_edge_response(psi1, psi2, p), "layer2": p.layer2}


def layer2_filter(ch, psi1, p: T4Params) -> tuple[np.ndarray, cca.CCAResult, bool]:
    """The T4 unit's filter from layer-2 channels ``ch`` (n, T, 6): past–future CCA with the variant's
    sizes and centring (``p`` resolved by :func:`resolve_layer2`), component ``p.component``, oriented by
    :func:`orient_layer2`; also the CCA result and whether the ON-edge rule flipped the CCA's sign."""
    c2 = cca.past_future_cca(ch, p.m2, p.h2, rank=max(4, p.component + 1), reg=p.reg, center=layer2_centered(p))
    psi2, flipped = orient_layer2(psi1, c2.past_filters[p.component], p)
    return psi2, c2, flipped


def scene_triples(p: T4Params, quick: bool, rng, speed_sign: float, log=print) -> list:
    """Noisy contrast scans at three pixels a, b, c (spacing ``spacing_deg``) of scenes moving with
    ``speed_sign`` (+1: a → b → c), one (n_traj, T, 3) array per scene set."""
    out = []
    for imgs, periodic, dpp in scenes.scene_sets(p, quick, log).values():
        d = p.spacing_deg / dpp
        X3 = scenes.scene_trajectories(imgs, periodic, dpp, p, offsets=(0.0, d, 2 * d), speed_sign=speed_sign)
        out.append(X3 + np.sqrt(p.noise_var * X3.var()) * rng.standard_normal(X3.shape))
    return out


def layer2_channels(X3, psi1, m: int) -> np.ndarray:
    """(n, T, 3) contrast at pixels a, b, c → (n, T − m, 6) layer-2 input channels
    [ON(ψ2) of a, b, c, ψ1 of a, b, c] (what models.resu computes, after the filters' warm-up)."""
    from scipy.signal import lfilter

    u = np.stack([lfilter(psi1[k], [1.0], X3, axis=1) for k in range(2)], axis=-1)[:, m:]
    return np.concatenate([np.maximum(u[..., 1], 0.0), u[..., 0]], axis=2)


def gated_pair_cca(ch_by_direction: dict, p: T4Params, log=print, rng=None) -> dict:
    """T4a/T4b: two layer-2 units learn from scenes moving both ways.

    Every sample's contribution to a unit's past/future covariances is weighted by that unit's rectified
    output r_k = max(v_k − θ_k, 0) (θ_k = ``theta2_sd`` s.d. of v_k), and only the unit with the larger
    rectified output learns from a sample (winner-take-all).  Each unit's filter is the first canonical
    past direction of its gated covariances; the two start from the first two canonical directions of the
    ungated CCA of both directions and iterate (``gate_iters``): each iteration moves a unit's
    covariances a fraction ``gate_rate`` towards its gated ones, and the unit takes the canonical direction
    closest to its current filter (sign carried over).  ``ch_by_direction``: {+1: [(n, T, 6) arrays, one per
    scene set], −1: [...]}.
    The direction labels are used only to report which direction each unit learned from.
    """
    Ps, Fs, labels = [], [], []
    for d, sets in ch_by_direction.items():
        for traj in (t for ch in sets for t in ch):
            P, F = cca.lag_vectors(traj, p.m2, p.h2)
            Ps.append(P[:: p.gate_stride])
            Fs.append(F[:: p.gate_stride])
            labels.append(np.full(len(Ps[-1]), d, dtype=np.int8))
    P, F, lab = np.concatenate(Ps), np.concatenate(Fs), np.concatenate(labels)
    del Ps, Fs

    def cov(w):
        W = w.sum()
        mp, mf = w @ P / W, w @ F / W
        Pc, Fc = P - mp, F - mf
        Pw = Pc * w[:, None]
        return Pw.T @ Pc / W, (Fc * w[:, None]).T @ Fc / W, Fc.T @ Pw / W

    C0 = cov(np.ones(len(P)))
    if p.gate_init == "cca":
        psi = cca.cca_from_covariances(*C0, p.m2, p.h2, rank=2, reg=p.reg).past_filters[:2].copy()
    else:  # random unit vectors
        psi = np.random.default_rng(rng).standard_normal((2, P.shape[1]))
        psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    C = [list(C0), list(C0)]  # each unit's running (gated) covariances
    history = []
    for it in range(p.gate_iters):
        v = P @ psi.T  # (N, 2)
        r = np.maximum(v - p.theta2_sd * v.std(axis=0), 0.0)
        win = np.argmax(r, axis=1)
        new = np.empty_like(psi)
        pref = []
        for k in range(2):
            w = np.where(win == k, r[:, k], 0.0)
            if w.sum() <= 0:
                raise RuntimeError(f"layer-2 unit {k} never responds: gated learning cannot proceed")
            C[k] = [(1 - p.gate_rate) * a + p.gate_rate * b for a, b in zip(C[k], cov(w))]
            res = cca.cca_from_covariances(*C[k], p.m2, p.h2, rank=3, reg=p.reg)
            # the unit follows the canonical direction closest to its current filter (no jumps between
            # near-degenerate directions)
            cos = [abs(f @ psi[k]) / np.linalg.norm(f) / np.linalg.norm(psi[k]) for f in res.past_filters]
            f = res.past_filters[int(np.argmax(cos))]
            new[k] = f if f @ psi[k] >= 0 else -f
            pref.append(float(w[lab > 0].sum() / w.sum()))  # share of the gated mass from direction +1
        change = [1.0 - abs(new[k] @ psi[k]) / np.linalg.norm(new[k]) / np.linalg.norm(psi[k]) for k in range(2)]
        psi = new
        history.append({"iteration": it + 1, "filter_change": change, "share_from_plus": pref})
        log(f"gated layer 2, iteration {it + 1}: 1 − cos = {np.round(change, 6)}, share of learning from "
            f"direction +1: unit 0 {pref[0]:.3f}, unit 1 {pref[1]:.3f}")
        if max(change) < p.gate_tol:
            break
    v = P @ psi.T
    return {"psi2": psi, "history": history, "v_sd": v.std(axis=0), "n_samples": len(P)}


def conditions(p: T4Params):
    """(kind, speed, direction) of every test condition; direction +1 = preferred (a → b → c)."""
    return [(kind, s, d) for kind in direction.STIMULI for s in p.speeds_deg_s for d in (1, -1)]


def test_stimulus(p: T4Params, conds, contrast: float) -> np.ndarray:
    xs = np.array([0.0, p.spacing_deg, 2 * p.spacing_deg])
    cols = [direction.moving_pattern(kind, xs, p.test_steps, p.dt_ms * 1e-3, d * s, p.wavelength_deg,
                                     contrast=contrast, blur_fwhm_deg=p.blur_deg)
            for kind, s, d in conds]
    return np.concatenate(cols, axis=1)


EDGES = ("on_edge", "off_edge")


def edge_memory(p: T4Params) -> int:
    """Samples the two layers remember (m + m2): how long after the input has settled a unit still sees it."""
    return p.m + p.m2


def dsi_table(p: T4Params, conds, r: np.ndarray, discard: int, stim: np.ndarray | None = None) -> dict:
    """kind -> {"dsi": list over speeds (None where undefined), "r_pref", "r_null"}: R is the time-averaged
    rectified response after the warm-up ``discard`` (the whole trial).  With ``stim`` (the (T, 3·n_cond) test
    stimulus), also "on_edge_passage" and "off_edge_passage": R averaged over each edge condition's passage
    window only (:func:`passage_windows`), the same number of samples for both directions."""
    R = direction.mean_response(r, discard)
    idx = {c: i for i, c in enumerate(conds)}
    windows = passage_windows(p, conds, stim) if stim is not None else {}
    kinds = list(direction.STIMULI) + ([f"{k}_passage" for k in EDGES] if stim is not None else [])
    out = {}
    for kind in kinds:
        base = kind.removesuffix("_passage")
        vals, rp, rn = [], [], []
        for s in p.speeds_deg_s:
            if kind == base:
                a, b = R[idx[(kind, s, 1)]], R[idx[(kind, s, -1)]]
            else:
                a, b = (float(np.asarray(r)[slice(*windows[(base, s, d)]), idx[(base, s, d)]].mean())
                        for d in (1, -1))
            rp.append(float(a))
            rn.append(float(b))
            vals.append(direction.dsi(a, b) if a + b > 1e-12 else None)
        out[kind] = {"dsi": vals, "r_pref": rp, "r_null": rn}
    return out


def passage_windows(p: T4Params, conds, stim) -> dict:
    """(kind, speed, direction) -> [start, stop) of each edge condition's passage over its three pixels
    (:func:`direction.passage_window` with memory m + m2).  Reason: after the edge has covered all pixels the
    input is uniform and the unit settles to one level whatever the direction; a whole-trial mean averages this
    plateau in, and at high speeds the warm-up discard cuts the passage off."""
    stim = np.asarray(stim, dtype=float)
    return {c: direction.passage_window(stim[:, 3 * i:3 * i + 3], edge_memory(p))
            for i, c in enumerate(conds) if c[0] in EDGES}


def run(ctx) -> dict:
    p: T4Params = resolve_layer2(ctx.params)
    rng = np.random.default_rng(ctx.seed)
    f = train_filters(p, ctx.quick, rng, ctx.log)
    ctx.log(f"layer 1 ρ = {np.round(f['rho1'], 3)}, layer 2 ({p.layer2}: component {p.component}, m2 {p.m2}, "
            f"h2 {p.h2}) ρ = {np.round(f['rho2'][:4], 3)}; ON-edge rule flipped the CCA sign: "
            f"{f['psi2_flipped_by_on_edge_rule']}")
    conds = conditions(p)
    stim = test_stimulus(p, conds, f["contrast_sd"])
    n_pix = stim.shape[1]
    triples = np.arange(n_pix).reshape(-1, 3)
    rp = resu.ReSUParams(dt=p.dt_ms * ms, m1=p.m, m2=p.m2, theta1=0.0, theta2=0.0)
    key = jsonable(dataclasses.asdict(rp)) | {"n_pix": n_pix, "steps": p.test_steps}
    discard = p.m + p.m2 + 10
    with Session(ctx.backend, "resu_t4", key=key, threads=ctx.threads) as session:
        net = resu.ReSUNetwork(rp, session, n_pix, p.test_steps, f["psi1"], f["psi2"], triples,
                               monitor_layer1=False)
        ctx.log(f"built in {session.build_s:.1f} s")
        plain = net.run(stim, theta2=0.0, seed=ctx.seed)
        theta2 = p.theta2_sd * f["v_sd"]
        thr = net.run(stim, theta2=theta2, seed=ctx.seed)
    tab0 = dsi_table(p, conds, plain["r"], discard, stim)
    tab1 = dsi_table(p, conds, thr["r"], discard, stim)
    speeds = list(p.speeds_deg_s)
    train_i = int(np.argmin(np.abs(np.array(speeds) - p.velocity_deg_s)))

    def best(vals):
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    metrics = {
        "speeds_deg_s": speeds, "training_speed_deg_s": p.velocity_deg_s, "theta2": theta2,
        "layer1_rho": f["rho1"].tolist(), "layer2_rho": f["rho2"][:4].tolist(),
        "layer2": p.layer2, "layer2_component": p.component, "layer2_m2": p.m2, "layer2_h2": p.h2,
        "layer2_centered": layer2_centered(p), "layer2_on_edge_response": f["on_edge_response"],
        "layer2_flipped_by_on_edge_rule": f["psi2_flipped_by_on_edge_rule"],
        "dsi_plain": {k: v["dsi"] for k, v in tab0.items()},
        "dsi_thresholded": {k: v["dsi"] for k, v in tab1.items()},
        "responses_thresholded": tab1, "responses_plain": tab0,
        "dsi_sine_at_training_speed_thresholded": tab1["sine"]["dsi"][train_i],
        "dsi_sine_at_training_speed_plain": tab0["sine"]["dsi"][train_i],
        "dsi_sine_max_thresholded": best(tab1["sine"]["dsi"]),
        "dsi_sine_max_plain": best(tab0["sine"]["dsi"]),
        "dsi_square_max_thresholded": best(tab1["square"]["dsi"]),
    }
    # Fig 5C-style input decomposition at the training speed: ON edge (passage window), sine (after warm-up)
    s_train = speeds[train_i]
    windows = passage_windows(p, conds, stim)
    for kind in ("on_edge", "sine"):
        cols = {d: conds.index((kind, s_train, d)) for d in (1, -1)}
        stims = {d: stim[:, 3 * i:3 * i + 3] for d, i in cols.items()}
        win = {d: windows[(kind, s_train, d)] if kind in EDGES else (discard, p.test_steps) for d in cols}
        dec = pathway_decomposition(p, f["psi1"], f["psi2"], stims, win)
        metrics[f"decomposition_{kind}"] = dec
        metrics[f"decomposition_{kind}_share_L1"] = dec["share_L1"]
        metrics[f"decomposition_{kind}_share_L3"] = dec["share_L3"]
    # ON and OFF edges separately, whole trial and passage window, at the training speed (all speeds above)
    for kind in ("on_edge", "off_edge", "on_edge_passage", "off_edge_passage"):
        for tag, tab in (("thresholded", tab1), ("plain", tab0)):
            metrics[f"dsi_{kind}_at_training_speed_{tag}"] = tab[kind]["dsi"][train_i]
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(psi1=f["psi1"], psi2=f["psi2"].reshape(6, p.m2),
                           psi2_cell_polarity=cell_polarity_weights(f["psi2"], p.m2), v_plain=plain["v"],
                           speeds=np.array(speeds))
    _figure(ctx, p, f, tab0, tab1)
    return metrics


def _figure(ctx, p, f, tab0, tab1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    lags = np.arange(p.m) * p.dt_ms
    axes[0].plot(-lags, f["psi1"][0], label="ψ1 (L3)")
    axes[0].plot(-lags, f["psi1"][1], label="ψ2 (L1/L2)")
    axes[0].set_xlabel("lag (ms)")
    axes[0].legend(fontsize=7)
    K = cell_polarity_weights(f["psi2"], p.m2)
    lim = np.abs(K).max()
    axes[1].imshow(K, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   extent=(0, p.m2 * p.dt_ms, 5.5, -0.5))
    axes[1].set_yticks(range(6), LAYER2_CELLS)
    axes[1].set_xlabel("lag (ms)")
    axes[1].set_title(f"layer-2 weights, cell polarity ({p.layer2})", fontsize=9)
    for ax, tab, title in ((axes[2], tab0, "θ₂ = 0"), (axes[3], tab1, f"θ₂ = {p.theta2_sd:g} s.d.")):
        for kind in direction.STIMULI + tuple(f"{k}_passage" for k in EDGES):
            vals = [np.nan if v is None else v for v in tab[kind]["dsi"]]
            ax.semilogx(p.speeds_deg_s, vals, "o--" if kind.endswith("_passage") else "o-", label=kind)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("speed (°/s)")
        ax.set_ylabel("DSI")
        ax.set_title(title)
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "t4_dsi")


PROTOCOL = Protocol(
    name="resu.t4",
    paper="resu",
    summary="Two-layer ReSU network trained on one motion direction: T4-like direction selectivity vs speed "
            "(Qin et al. 2025, Fig 5)",
    params=T4Params,
    quick=quick_params,
    run=run,
    data=["scenes_clark_pano", "scenes_train400"],
    claims=[
        Claim("dsi_sine_at_training_speed_thresholded", "DSI, sine grating at the training speed, thresholded",
              "> 0.3 (goal)", "> 0.3", lambda v: v is not None and v > 0.3, "{:.2f}"),
        Claim("dsi_sine_max_plain", "max DSI over speeds, sine grating, θ₂ = 0", "direction selective", "> 0",
              lambda v: v is not None and v > 0, "{:.2f}"),
        Claim("dsi_on_edge_at_training_speed_thresholded", "DSI, ON edge at the training speed, thresholded "
              "(whole-trial mean)", "T4: ON-edge DSI > 0.3", "> 0.3", lambda v: v is not None and v > 0.3, "{:.2f}"),
        Claim("dsi_on_edge_passage_at_training_speed_thresholded", "DSI, ON edge at the training speed, "
              "thresholded, mean over the edge's passage window", "T4: ON-edge DSI > 0.3", "> 0.3",
              lambda v: v is not None and v > 0.3, "{:.2f}"),
        Claim("dsi_on_edge_passage_at_training_speed_plain", "DSI, ON edge at the training speed, θ₂ = 0, "
              "passage window", "T4: ON-edge DSI > 0.3", "> 0.3", lambda v: v is not None and v > 0.3, "{:.2f}"),
        Claim("decomposition_on_edge_share_L1", "share of the ON-edge peak difference (pref − null) of the "
              "linear T4 input carried by the Mi1/Tm3 (L1) pathway (Fig 5C-style decomposition)",
              "— (panel statement not recorded)", "", None, "{:.2f}"),
        Claim("decomposition_sine_share_L1", "the same for the sine grating", "—", "", None, "{:.2f}"),
        Claim("dsi_off_edge_passage_at_training_speed_thresholded", "DSI, OFF edge at the training speed, "
              "thresholded, passage window (T4 is an ON-edge cell; no paper value recorded)", "—", "",
              None, "{:.2f}"),
    ],
    figures=["t4_dsi"],
)
