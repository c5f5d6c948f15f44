"""Feed-forward autoencoder (FFA) baseline of Kim, Hannan & Kenyon (2018), arXiv:1711.07998, Sec. 4.

The paper's baseline: per modality a stack of layers with ReLU (vision 3, text 2), the top vision and
text layers merged by addition into a joint embedding of ReLU units with an L1 activity penalty, and
mirrored decoders that reconstruct both inputs; trained by backpropagation (the paper's FFA was
written in Keras).  Here Keras 3 on the JAX backend, an optional dependency
(``pip install -e '.[baselines]'``).

Deliberate deviations: dense layers (as in this project's CPU configuration of the LCA hierarchy,
:mod:`models.lca`) instead of convolutions; layer widths are those of the LCA layers they mirror;
Adam with mean-squared reconstruction error.

Sparsity.  The paper's FFA has 47.8 % of its joint units active; it does not give its L1 weight.  With
inputs of unit L2 norm the reconstruction error per pixel is ~1e-3 (reconstructing zeros: 1/1024 + 1/512 for
32×32 faces and 64×8 names), so an L1 weight of 1e-4 on 512 units outweighs the whole reconstruction term
once the mean activation exceeds ~0.05: every joint unit is pushed below zero within the first epoch and,
ReLU passing no gradient there, stays dead (measured on the 4,800 training pairs of ``multimodal.train
--set scale=data``: 0 % active, the loss stuck at that of reconstructing the mean; L1 = 0 gives 56 %, 1e-6
34 %).  :func:`fit_to_active_fraction` therefore chooses the weight so that a target fraction of the joint
units is active on the training pairs (bisection in log L1, every fit from the same seed).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np

KERAS_MISSING = ("the FFA baseline needs Keras 3 with the JAX backend: pip install -e '.[baselines]' "
                 "(keras>=3, jax[cpu])")


def import_keras():
    """Keras on the JAX backend, or a clear error naming the install command."""
    os.environ["KERAS_BACKEND"] = "jax"
    try:
        import keras
    except ImportError as err:
        raise ImportError(KERAS_MISSING) from err
    if keras.backend.backend() != "jax":
        raise ImportError(f"Keras was already imported with the {keras.backend.backend()!r} backend; "
                          "set KERAS_BACKEND=jax before importing it")
    return keras


def keras_available() -> tuple[bool, str]:
    try:
        import_keras()
        return True, ""
    except ImportError as err:
        return False, str(err)


@dataclass
class FFAParams:
    vision: tuple = (128, 128, 128)  # widths of the vision layers (LCA: V1, V2, V3)
    text: tuple = (128, 128)  # widths of the text layers (T1, T2)
    joint: int = 256  # joint embedding (LCA: P1)
    l1: float = 1e-4  # L1 activity penalty on the joint layer
    learning_rate: float = 1e-3
    epochs: int = 20
    batch: int = 32

    def validate(self):
        if not self.vision or not self.text or self.joint < 1:
            raise ValueError("FFA needs at least one vision and one text layer and joint >= 1")
        if min(self.vision + self.text) < 1:
            raise ValueError(f"layer widths must be >= 1: {self.vision}, {self.text}")
        if self.l1 < 0 or self.learning_rate <= 0 or self.epochs < 0 or self.batch < 1:
            raise ValueError(f"bad FFA training parameters: l1={self.l1}, learning_rate={self.learning_rate}, "
                             f"epochs={self.epochs}, batch={self.batch}")


class FFA:
    """The autoencoder: :meth:`fit` on (face, name) pairs, :meth:`encode` the joint layer,
    :meth:`reconstruct` both modalities (a missing modality is given as zeros)."""

    def __init__(self, p: FFAParams, face_dim: int, name_dim: int, seed: int = 0):
        p.validate()
        keras = import_keras()
        keras.utils.set_random_seed(int(seed))
        L = keras.layers
        self.p = p
        face_in = keras.Input((face_dim,), name="face")
        name_in = keras.Input((name_dim,), name="name")
        h = face_in
        for k, w in enumerate(p.vision):
            h = L.Dense(w, activation="relu", name=f"V{k + 1}")(h)
        g = name_in
        for k, w in enumerate(p.text):
            g = L.Dense(w, activation="relu", name=f"T{k + 1}")(g)
        merged = L.Add(name="merge")([L.Dense(p.joint, name="V_to_P1")(h), L.Dense(p.joint, name="T_to_P1")(g)])
        joint = L.Activation("relu", name="P1")(merged)
        joint = L.ActivityRegularization(l1=p.l1, name="P1_l1")(joint)
        dv = joint
        for k, w in enumerate(reversed(p.vision)):
            dv = L.Dense(w, activation="relu", name=f"dec_V{len(p.vision) - k}")(dv)
        face_out = L.Dense(face_dim, name="face_out")(dv)
        dt = joint
        for k, w in enumerate(reversed(p.text)):
            dt = L.Dense(w, activation="relu", name=f"dec_T{len(p.text) - k}")(dt)
        name_out = L.Dense(name_dim, name="name_out")(dt)
        self.model = keras.Model([face_in, name_in], [face_out, name_out], name="ffa")
        self.encoder = keras.Model([face_in, name_in], joint, name="ffa_encoder")
        self.model.compile(optimizer=keras.optimizers.Adam(p.learning_rate), loss=["mse", "mse"])
        self.face_dim, self.name_dim = face_dim, name_dim

    def fit(self, faces, names, epochs: int | None = None, verbose: int = 0) -> list:
        faces, names = self._inputs(faces, names)
        epochs = self.p.epochs if epochs is None else epochs
        if epochs == 0:  # nothing to train (keras records no loss then)
            return []
        hist = self.model.fit([faces, names], [faces, names], epochs=epochs,
                              batch_size=self.p.batch, shuffle=True, verbose=verbose)
        return list(map(float, hist.history["loss"]))

    def _inputs(self, faces, names):
        n = len(faces) if faces is not None else len(names)
        faces = np.zeros((n, self.face_dim)) if faces is None else np.asarray(faces, dtype="float32")
        names = np.zeros((n, self.name_dim)) if names is None else np.asarray(names, dtype="float32")
        if faces.shape != (n, self.face_dim) or names.shape != (n, self.name_dim):
            raise ValueError(f"inputs of shape {faces.shape} and {names.shape}, expected "
                             f"({n}, {self.face_dim}) and ({n}, {self.name_dim})")
        return faces.astype("float32"), names.astype("float32")

    def encode(self, faces=None, names=None) -> np.ndarray:
        return np.asarray(self.encoder.predict(list(self._inputs(faces, names)), verbose=0, batch_size=256))

    def reconstruct(self, faces=None, names=None):
        f, n = self.model.predict(list(self._inputs(faces, names)), verbose=0, batch_size=256)
        return np.asarray(f), np.asarray(n)


def active_fraction(z) -> float:
    """Mean over inputs of the fraction of joint units with activation > 0."""
    return float(np.mean(np.asarray(z) > 0))


def fit_to_active_fraction(p: FFAParams, faces, names, target: float, tol: float = 0.02,
                           l1_range: tuple = (1e-9, 1e-4), max_fits: int = 8, seed: int = 0, log=None):
    """Train the autoencoder with the L1 weight that makes ``target`` of its joint units active on the given
    (training) pairs, face + name together.

    Bisection in log10(L1) on ``l1_range`` (the active fraction falls as L1 grows): each step trains a fresh
    autoencoder from ``seed`` on (``faces``, ``names``) for ``p.epochs`` and measures the active fraction on
    the same pairs.  Stops when it is within ``tol`` of ``target`` or after ``max_fits`` fits; the fit
    closest to the target is returned.  Returns ``(ffa, l1, loss, search)`` with ``search`` the list of
    (l1, active fraction) of every fit in order."""
    lo, hi = (float(v) for v in l1_range)
    if not 0 < lo < hi:
        raise ValueError(f"l1_range={l1_range}: expected 0 < low < high")
    if not 0 < target < 1:
        raise ValueError(f"target={target}: the active fraction must lie in (0, 1)")
    if tol <= 0 or max_fits < 1:
        raise ValueError(f"tol={tol} must be > 0 and max_fits={max_fits} >= 1")
    faces = np.asarray(faces)
    face_dim, name_dim = faces.shape[1], np.asarray(names).shape[1]
    search, best = [], None
    for _ in range(int(max_fits)):
        l1 = 10 ** ((math.log10(lo) + math.log10(hi)) / 2)
        ffa = FFA(dataclasses.replace(p, l1=l1), face_dim, name_dim, seed=seed)
        loss = ffa.fit(faces, names)
        act = active_fraction(ffa.encode(faces=faces, names=names))
        search.append((l1, act))
        if log is not None:
            log(f"FFA L1 search: l1={l1:.3g} -> {act:.3f} of the joint units active on the training pairs "
                f"(target {target:.3f})")
        if best is None or abs(act - target) < abs(best[2] - target):
            best = (ffa, l1, act, loss)
        if abs(act - target) <= tol:
            break
        if act > target:  # too many active: stronger L1
            lo = l1
        else:
            hi = l1
    ffa, l1, _, loss = best
    return ffa, l1, loss, search
