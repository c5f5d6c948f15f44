"""Measures of multimodal, invariant codes (Kim, Hannan & Kenyon 2018, arXiv:1711.07998, Figs 6–9).

Pure functions of arrays: activations are (n_inputs, n_units), labels are integer identities.

* :func:`best_unit_auc`: for one person, the unit whose activation best separates that person from all
  others (ROC AUC) on a selection set (e.g. face-only presentations of training faces), and that unit's
  AUC on face-only test inputs and on name-only inputs (paper Figs 6–7);
* :func:`multimodal_fraction`: units responsive to face-only *and* to name-only inputs, among the units
  responsive to either.  A unit is responsive to a modality when it is active (> ``eps``) on at least
  ``min_frac`` of that modality's inputs (the paper gives no operational definition; this one treats
  the LCA's exact zeros and ReLU's exact zeros alike);
* :func:`active_fraction`: mean fraction of active units per input (the paper's "sparsity");
* :func:`linear_identity_accuracy`: identity from features with a linear classifier (logistic regression
  on standardised features), train/test split given;
* :func:`nearest_name_top1`: decode a reconstructed name image by the nearest rendered name
  (cosine similarity), top-1 accuracy;
* :func:`class_distances`: distances of a code to class centres (the B/13 toy experiment, Figs 3–4);
* :func:`activity_triggered_average`: mean input weighted by a unit's activation (Fig 8).
"""

from __future__ import annotations

import numpy as np


def _check_2d(name, x):
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (inputs × units), got shape {x.shape}")
    return x


def auc_per_unit(acts, positive) -> np.ndarray:
    """ROC AUC of every unit's activation for ``positive`` (bool, n_inputs) vs the rest (ties count ½)."""
    from scipy.stats import rankdata

    acts = _check_2d("acts", acts)
    pos = np.asarray(positive, dtype=bool)
    if pos.shape != (acts.shape[0],):
        raise ValueError(f"positive has shape {pos.shape}, expected ({acts.shape[0]},)")
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("AUC needs at least one positive and one negative input")
    ranks = rankdata(acts, axis=0)  # average ranks for ties
    return (ranks[pos].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def best_unit_auc(select_acts, select_labels, person: int, tests: dict) -> dict:
    """Unit with the largest AUC for ``person`` on the selection set, and its AUC on each test set.

    ``tests``: name -> (acts, labels).  Returns {'unit', 'auc_select', 'auc_<name>' ...}.
    """
    auc = auc_per_unit(select_acts, np.asarray(select_labels) == person)
    unit = int(np.argmax(auc))
    out = {"unit": unit, "auc_select": float(auc[unit])}
    for name, (acts, labels) in tests.items():
        out[f"auc_{name}"] = float(auc_per_unit(_check_2d(name, acts)[:, [unit]], np.asarray(labels) == person)[0])
    return out


def responsive_units(acts, eps: float = 0.0, min_frac: float = 0.05) -> np.ndarray:
    """Units active (> eps) on at least ``min_frac`` of the inputs."""
    acts = _check_2d("acts", acts)
    if not 0 < min_frac <= 1:
        raise ValueError(f"min_frac={min_frac} must be in (0, 1]")
    return np.mean(acts > eps, axis=0) >= min_frac


def multimodal_fraction(face_acts, name_acts, eps: float = 0.0, min_frac: float = 0.05) -> float:
    """Fraction of units responsive to both modalities among those responsive to at least one."""
    f = responsive_units(face_acts, eps, min_frac)
    n = responsive_units(name_acts, eps, min_frac)
    if f.shape != n.shape:
        raise ValueError(f"face and name activations have different unit counts ({f.size}, {n.size})")
    either = f | n
    return float((f & n).sum() / either.sum()) if either.any() else float("nan")


def active_fraction(acts, eps: float = 0.0) -> float:
    """Mean over inputs of the fraction of units with activation > eps."""
    return float(np.mean(_check_2d("acts", acts) > eps))


def linear_identity_accuracy(F_train, y_train, F_test, y_test, C: float = 1.0, seed: int = 0) -> float:
    """Test accuracy of a logistic-regression identity classifier on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    F_train, F_test = _check_2d("F_train", F_train), _check_2d("F_test", F_test)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    clf.fit(F_train, np.asarray(y_train))
    return float(np.mean(clf.predict(F_test) == np.asarray(y_test)))


def nearest_name_top1(recon, names, labels) -> tuple[float, np.ndarray]:
    """Top-1 accuracy of decoding reconstructed name images by the most similar (cosine) rendered name.

    ``recon`` (n, D) or (n, H, W); ``names`` (n_people, D) or (n_people, H, W); ``labels`` (n,).
    Returns (accuracy, predicted labels)."""
    r = np.asarray(recon, dtype=float).reshape(len(recon), -1)
    t = np.asarray(names, dtype=float).reshape(len(names), -1)
    if r.shape[1] != t.shape[1]:
        raise ValueError(f"reconstructions have {r.shape[1]} pixels, names {t.shape[1]}")
    r = r - r.mean(axis=1, keepdims=True)
    t = t - t.mean(axis=1, keepdims=True)
    sim = (r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)) @ (
        t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)).T
    pred = np.argmax(sim, axis=1)
    return float(np.mean(pred == np.asarray(labels))), pred


def class_centres(acts, labels, n_classes: int) -> np.ndarray:
    acts = _check_2d("acts", acts)
    labels = np.asarray(labels)
    return np.stack([acts[labels == k].mean(axis=0) for k in range(n_classes)])


def class_distances(codes, centres) -> np.ndarray:
    """Euclidean distances (n, n_classes) of codes to class centres."""
    codes = _check_2d("codes", codes)
    return np.linalg.norm(codes[:, None, :] - np.asarray(centres)[None], axis=2)


def activity_triggered_average(acts, inputs, unit: int) -> np.ndarray:
    """Σ_i a_i x_i / Σ_i a_i for one unit (zeros if the unit never fires)."""
    acts = _check_2d("acts", acts)
    w = np.maximum(acts[:, unit], 0)
    x = np.asarray(inputs, dtype=float)
    if w.sum() <= 0:
        return np.zeros(x.shape[1:])
    return np.tensordot(w, x, axes=1) / w.sum()
