"""Linear readouts of feature vectors: standardisation and scikit-learn SVMs (arrays in, numbers out)."""

from __future__ import annotations

import numpy as np


def _check_xy(X, y, what: str):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"{what} features must be 2-D (samples, features), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"{what} labels of shape {y.shape} do not match {X.shape[0]} samples")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{what} features contain NaN or infinite values")
    return X, y


def standardise(train, test, eps: float = 1e-5):
    """Centre and scale both sets with the training set's mean and s.d. (s.d. + ``eps``, as the authors' code)."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"train {train.shape} and test {test.shape} must be 2-D with the same number of features")
    mean = train.mean(axis=0)
    sd = train.std(axis=0) + eps
    return (train - mean) / sd, (test - mean) / sd


def svm_accuracy(X_train, y_train, X_test, y_test, kernel: str = "linear", C: float = 1.0,
                 standardize: bool = True) -> dict:
    """Fit a support-vector classifier on the training set and score both sets.

    ``kernel`` is 'linear' (:class:`sklearn.svm.LinearSVC`) or 'rbf' (:class:`sklearn.svm.SVC`,
    gamma='scale'). Returns {'train': accuracy, 'test': accuracy, 'predictions': test predictions}.
    """
    from sklearn.svm import SVC, LinearSVC

    X_train, y_train = _check_xy(X_train, y_train, "training")
    X_test, y_test = _check_xy(X_test, y_test, "test")
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    if len(np.unique(y_train)) < 2:
        raise ValueError("the training labels hold a single class: nothing to classify")
    if standardize:
        X_train, X_test = standardise(X_train, X_test)
    if kernel == "linear":
        clf = LinearSVC(C=C, max_iter=20000)
    elif kernel == "rbf":
        clf = SVC(C=C, kernel="rbf", gamma="scale")
    else:
        raise ValueError(f"kernel={kernel!r}: expected 'linear' or 'rbf'")
    clf.fit(X_train, y_train)
    pred = clf.predict(X_test)
    return {"train": float(np.mean(clf.predict(X_train) == y_train)), "test": float(np.mean(pred == y_test)),
            "predictions": pred}


def chance_level(y) -> float:
    """Accuracy of always guessing the most frequent class."""
    y = np.asarray(y)
    if y.size == 0:
        raise ValueError("no labels")
    return float(np.max(np.unique(y, return_counts=True)[1]) / y.size)
