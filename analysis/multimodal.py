"""Measures of multimodal, invariant codes (Kim, Hannan & Kenyon 2018, arXiv:1711.07998, Figs 6–9).

Pure functions of arrays: activations are (n_inputs, n_units), labels are integer identities.

* :func:`best_unit_auc`: for one person, the unit whose activation best separates that person from all
  others (ROC AUC) on a selection set (e.g. face-only presentations of training faces), and that unit's
  AUC on face-only test inputs and on name-only inputs (paper Figs 6–7);
* :func:`paper_unit_test`: the paper's own test (Figs 6–7): one unit chosen on face + name *training* pairs
  by the largest mean activation difference (person vs others), a threshold fixed on face-only training
  codes, then face-only test AUC, accuracy on n of the person's test faces + n random other test faces, and
  the rank of the person's own name among all names; :func:`permutation_null` is the same selection and
  test for a group of shuffled labels;
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


def mean_difference_unit(acts, labels, person: int) -> tuple[int, float]:
    """Unit with the largest mean activation for ``person`` minus the mean over everyone else.

    The paper picks its unit from the mean activation over the person's face + name pairs against random
    pairs; the difference of means is that criterion.  Ties go to the lowest index.  Returns (unit, diff)."""
    acts = _check_2d("acts", acts)
    pos = np.asarray(labels) == person
    if pos.shape != (acts.shape[0],):
        raise ValueError(f"labels have shape {np.shape(labels)}, expected ({acts.shape[0]},)")
    if not pos.any() or pos.all():
        raise ValueError(f"person {person}: the selection set needs inputs of the person and of others")
    diff = acts[pos].mean(axis=0) - acts[~pos].mean(axis=0)
    unit = int(np.argmax(diff))
    return unit, float(diff[unit])


def balanced_threshold(scores, positive) -> float:
    """Threshold t (a response counts as "the person" when > t) with the best balanced accuracy on
    ``scores``: candidates are midpoints between sorted distinct values and one below the minimum; among
    equally good candidates the median one is taken."""
    s = np.asarray(scores, dtype=float).ravel()
    pos = np.asarray(positive, dtype=bool).ravel()
    if s.shape != pos.shape or not pos.any() or pos.all():
        raise ValueError("balanced_threshold needs scores and a same-length mask with both classes")
    u = np.unique(s)
    cand = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2]) if u.size > 1 else np.array([u[0] - 1.0])
    above = s[None, :] > cand[:, None]
    bacc = 0.5 * (above[:, pos].mean(axis=1) + (~above[:, ~pos]).mean(axis=1))
    best = np.flatnonzero(bacc >= bacc.max() - 1e-12)
    return float(cand[best[len(best) // 2]])


def name_rank(name_acts, unit: int, person: int) -> int:
    """Rank of the person's own name among all names for one unit: 1 + the number of other names that drive
    the unit at least as much (a unit silent for every name ranks last, not first)."""
    r = _check_2d("name_acts", name_acts)[:, unit]
    own = r[person]
    return int(1 + np.sum(np.delete(r, person) >= own))


def paper_unit_test(select_acts, select_labels, thresh_acts, thresh_labels, test_acts, test_labels, person: int,
                    name_acts=None, n_test: int = 75, seed: int = 0) -> dict:
    """The paper's test of one person's unit (Kim et al. 2018, Figs 6–7), every choice made on training data.

    ``select_*``: the selection set (face + name training pairs for the joint layers; face-only training
    codes for controls without a name input); ``thresh_*``: face-only training codes, where the threshold
    is fixed (:func:`balanced_threshold`); ``test_*``: face-only test codes.  The accuracy is measured on
    ``min(n_test, #person's test faces)`` of the person's test faces and as many random test faces of others
    (drawn with ``seed``).  Returns unit, mean difference, threshold, face-only test AUC, accuracy, and with
    ``name_acts`` (one row per person) the rank of the person's name."""
    unit, diff = mean_difference_unit(select_acts, select_labels, person)
    tr = _check_2d("thresh_acts", thresh_acts)[:, unit]
    thr = balanced_threshold(tr, np.asarray(thresh_labels) == person)
    te = _check_2d("test_acts", test_acts)[:, unit]
    pos = np.asarray(test_labels) == person
    auc = float(auc_per_unit(te[:, None], pos)[0])
    rng = np.random.default_rng(seed)
    n = min(int(n_test), int(pos.sum()))
    ip = rng.choice(np.flatnonzero(pos), n, replace=False)
    ineg = rng.choice(np.flatnonzero(~pos), n, replace=(~pos).sum() < n)
    acc = float(0.5 * (np.mean(te[ip] > thr) + np.mean(te[ineg] <= thr)))
    out = {"unit": unit, "mean_diff": diff, "threshold": thr, "auc_face": auc, "accuracy": acc, "n_test_each": n}
    if name_acts is not None:
        out["name_rank"] = name_rank(name_acts, unit, person)
    return out


def permutation_null(select_acts, select_labels, test_acts, test_labels, person: int, n_perm: int = 200,
                     seed: int = 0) -> np.ndarray:
    """Face-only test AUC of a "person" made of shuffled labels, ``n_perm`` times: the training labels and
    the test labels are each permuted (class sizes kept), the unit is chosen by :func:`mean_difference_unit`
    on the shuffled training set and scored on the shuffled test set.  What the best-of-all-units selection
    and the test give for a random group of images of the person's size."""
    select_acts = _check_2d("select_acts", select_acts)
    test_acts = _check_2d("test_acts", test_acts)
    lab, tlab = np.asarray(select_labels), np.asarray(test_labels)
    rng = np.random.default_rng(seed)
    out = np.empty(n_perm)
    for i in range(n_perm):
        unit, _ = mean_difference_unit(select_acts, rng.permutation(lab), person)
        out[i] = auc_per_unit(test_acts[:, [unit]], rng.permutation(tlab) == person)[0]
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


def multimodal_fraction_all(face_acts, name_acts, eps: float = 0.0, min_frac: float = 0.05) -> float:
    """Fraction of *all* units responsive to both modalities (the denominator of
    :func:`multimodal_fraction` is the responsive units only)."""
    f = responsive_units(face_acts, eps, min_frac)
    n = responsive_units(name_acts, eps, min_frac)
    if f.shape != n.shape:
        raise ValueError(f"face and name activations have different unit counts ({f.size}, {n.size})")
    return float((f & n).mean())


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
