"""Naming by retrograde input, one-shot summaries and recall maps (arrays in, numbers out).

Measures of the recollection model (Ben Houidi 2021, arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137): which class the integrated retrograde input names, the
spiking decision (first category neuron to reach its threshold), empirical CDFs of one-shot accuracies,
and how well an input-layer map recalled from a name matches each class.
"""

from __future__ import annotations

import numpy as np


def _scores(scores, what="scores") -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"{what} must be (images, classes >= 2), got shape {s.shape}")
    return s


def name_by_largest(scores) -> np.ndarray:
    """Class with the largest score per image; -1 (undecided) where the largest score is shared, e.g. an image
    that evoked no root spike and so no retrograde input at all."""
    s = _scores(scores)
    out = np.argmax(s, axis=1)
    top = np.sort(s, axis=1)
    out[top[:, -1] == top[:, -2]] = -1
    return out


#: How an image without a decision is scored. ``strict``: an image whose scores tie (e.g. one that evoked no root
#: activity and so no retrograde input) stays undecided (-1) and counts as wrong -- the suite's convention, fixed
#: because a name needs evidence. ``authors``: the arg-max over equal scores returns the first class, so such an
#: image is named class 0 -- the behaviour of the authors' public code, reported beside the strict number.
CONVENTIONS = ("strict", "authors")


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r}: expected one of {CONVENTIONS}")
    return convention


def name_by(scores, convention: str = "strict") -> np.ndarray:
    """Names under a scoring ``convention`` (:data:`CONVENTIONS`): ``strict`` = :func:`name_by_largest`
    (ties undecided, -1); ``authors`` = the first class with the largest score (ties, and so silent images,
    go to class 0)."""
    check_convention(convention)
    if convention == "strict":
        return name_by_largest(scores)
    return np.argmax(_scores(scores), axis=1)


def decided(named, convention: str = "strict") -> np.ndarray:
    """Names of the spiking decision (or any -1 = undecided array) under ``convention``: ``authors`` turns
    an undecided -1 into class 0."""
    named = np.asarray(named)
    return named if check_convention(convention) == "strict" else np.where(named < 0, 0, named)


def name_by_first_crossing(t_named, scores) -> np.ndarray:
    """Spiking decision: the class whose neuron reached the naming threshold first; ties at the same step go to
    the larger score; -1 where no neuron reached it."""
    t = _scores(t_named, "t_named")
    s = _scores(scores)
    if t.shape != s.shape:
        raise ValueError(f"t_named {t.shape} and scores {s.shape} differ in shape")
    first = t.min(axis=1, keepdims=True)
    cand = np.where(t == first, s, -np.inf)
    out = np.argmax(cand, axis=1)
    out[~np.isfinite(first[:, 0])] = -1
    return out


def accuracy(predicted, labels) -> float:
    """Fraction of correct names (an undecided -1 counts as wrong)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} must be equal non-empty 1-D")
    return float(np.mean(predicted == labels))


def accuracy_on(predicted, labels, mask) -> float:
    """Accuracy on the images selected by the boolean ``mask`` (e.g. those that evoke a root spike); NaN when
    it selects none."""
    predicted, labels, mask = np.asarray(predicted), np.asarray(labels), np.asarray(mask)
    if mask.dtype != bool or mask.shape != labels.shape:
        raise ValueError(f"mask must be boolean of the labels' shape {labels.shape}, got {mask.dtype} {mask.shape}")
    return accuracy(predicted[mask], labels[mask]) if mask.any() else float("nan")


def fraction_per_class(flag, labels, n_classes: int) -> np.ndarray:
    """Per class the fraction of its images where the boolean ``flag`` holds (NaN for a class without images)."""
    flag, labels = np.asarray(flag, dtype=bool), np.asarray(labels)
    if flag.shape != labels.shape:
        raise ValueError(f"flag {flag.shape} and labels {labels.shape} differ in shape")
    return np.array([flag[labels == c].mean() if np.any(labels == c) else np.nan for c in range(n_classes)])


def score_difference(scores, a: int = 0, b: int = 1) -> np.ndarray:
    """Per image the score of class ``a`` minus that of class ``b`` (the papers' Fig 3)."""
    s = _scores(scores)
    return s[:, a] - s[:, b]


def ecdf(values) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF: sorted values x and F(x) = fraction of values <= x."""
    v = np.sort(np.asarray(values, dtype=float).ravel())
    if v.size == 0:
        raise ValueError("no values for an empirical CDF")
    return v, np.arange(1, v.size + 1) / v.size


def summary(values) -> dict:
    """mean, s.d., median, best, worst and count of a set of accuracies."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("no values to summarise")
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "median": float(np.median(v)), "best": float(v.max()), "worst": float(v.min()), "n": int(v.size)}


def paired_comparison(a, b) -> dict:
    """Two methods scored on the same items: fraction where a > b, a == b, a < b, and the mean difference."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired values must have the same non-empty shape ({a.shape} vs {b.shape})")
    return {"a_wins": float(np.mean(a > b)), "ties": float(np.mean(a == b)), "b_wins": float(np.mean(a < b)),
            "mean_difference": float(np.mean(a - b))}


def correlation(x, y) -> float:
    """Pearson correlation of two maps of the same shape (0 for a constant map)."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"maps of different or too small sizes ({x.size}, {y.size})")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def recall_matrix(recalled, references) -> np.ndarray:
    """Correlation of each recalled map (one per class) with each class reference map: (classes, classes)."""
    recalled, references = list(recalled), list(references)
    return np.array([[correlation(r, ref) for ref in references] for r in recalled])


def recall_naming(recalled, inputs) -> np.ndarray:
    """For each input map (n, ...) the class whose recalled map correlates best with it."""
    inputs = np.asarray(inputs, dtype=float)
    c = np.array([[correlation(x, r) for r in recalled] for x in inputs])
    return np.argmax(c, axis=1)
