"""Shared parts of the recollection protocols: parameters, the cached root layer, the compiled category network.

Ben Houidi Z (2021). The backpropagation-based recollection hypothesis. arXiv:2101.04137,
https://doi.org/10.48550/arXiv.2101.04137. The root layer comes from the STDP network of Kheradpisheh et al.
(2018), https://doi.org/10.1016/j.neunet.2017.12.005, through the cached stage of ``recollection.features``
(learned once per feature parameters, seed and backend; every recollection protocol reuses it, so no image
is propagated through the SDNN twice).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from b2models.backend import Session
from b2models.models.recollection import CategoryNetwork, RecollectionParams, first_root_spikes, initial_weights
from b2models.models.sdnn import network_steps
from b2models.protocols.recollection_features import FeaturesParams, features_stage, resolved
from b2models.protocols.recollection_features import quick_params as features_quick


@dataclass
class RecollectionRunParams(FeaturesParams):
    """Feature network (see ``recollection.features``) plus the category layer (prefix ``cat_``) and naming."""

    per_class: int = 1  # category neurons per class
    cat_w_mean: float = 0.5  # initial category -> root weights N(mean, std)
    cat_w_std: float = 0.05
    cat_a_plus: float = 0.007  # co-occurrence STDP a+
    cat_a_minus: float = 0.003  # co-occurrence STDP a-
    lam: float = 1.0  # neuromodulation factor lambda while learning names
    gain: float = 1.0  # retrograde gain while naming (0: retrieval off)
    theta_name: float = 5.0  # naming threshold of the spiking decision (retro_norm: ~ 1/cat_w_mean times larger)
    rule: str = "paper"  # co-occurrence rule: 'paper', 'authors_code' (the authors' public code) or 'silent_ltd'
    epochs: int = 1  # passes over the labelled images
    features_run: str = ""  # a recollection.features run directory (or its arrays.npz) to take the root layer from
    kernels_file: str = ""  # learned kernels (.npz, models.sdnn.load_kernels): features and root layer from them
    root_threshold: float = 0.0  # conv3 threshold of the root layer; 0: the pattern recorded with the features
    retro_norm: bool = False  # divide each category neuron's retrograde input by its total weight (not the paper's)
    root_winners: int = 0  # keep each image's k earliest root spikes (k-WTA, not the paper's; 0: all)
    root_layer: str = "spikes"  # 'spikes': conv3 spikes; 'authors': the authors' naming pass (AuthorsRootLayer)
    naming_conv1_threshold: float = 6.25  # root_layer='authors': conv1 threshold of the naming pass
    naming_conv2_threshold: float = 20.75  # root_layer='authors': conv2 threshold of the naming pass
    pool2_multi_spike: bool = False  # root_layer='authors': pool2 fires at every slot with input
    vote: str = "spikes"  # 'spikes' or 'potential' (votes weighted by the root potential; root_layer='authors')

    def recollection(self) -> RecollectionParams:
        return RecollectionParams(per_class=self.per_class, w_mean=self.cat_w_mean, w_std=self.cat_w_std,
                                  a_plus=self.cat_a_plus, a_minus=self.cat_a_minus, lam=self.lam, gain=self.gain,
                                  theta_name=self.theta_name, rule=self.rule, epochs=self.epochs,
                                  retro_norm=self.retro_norm, vote=self.vote,
                                  root_events="every_step" if self.root_layer == "authors" else "once")

    def validate(self):
        super().validate()
        self.recollection().validate()
        if self.root_layer not in ROOT_LAYERS:
            raise ValueError(f"root_layer={self.root_layer!r}: expected one of {ROOT_LAYERS}")
        if self.vote == "potential" and self.root_layer != "authors":
            raise ValueError("vote='potential' needs root_layer='authors' (the root potentials come from its pass)")
        if not (self.naming_conv1_threshold > 0 and self.naming_conv2_threshold > 0):
            raise ValueError(f"naming_conv1_threshold and naming_conv2_threshold must be positive (got "
                             f"{self.naming_conv1_threshold}, {self.naming_conv2_threshold})")
        if not isinstance(self.pool2_multi_spike, (bool, np.bool_)):
            raise ValueError(f"pool2_multi_spike must be true or false, got {self.pool2_multi_spike!r}")
        if not self.root_threshold >= 0:
            raise ValueError(f"root_threshold={self.root_threshold} must be >= 0 (0: the features run's conv3 "
                             "pattern)")
        if not isinstance(self.root_winners, (int, np.integer)) or self.root_winners < 0:
            raise ValueError(f"root_winners={self.root_winners!r} must be an integer >= 0 (0: every root spike)")


def quick_features(p):
    """--quick: the digits network of ``recollection.features --quick``, other fields kept."""
    q = features_quick(p)
    return dataclasses.replace(p, **{f.name: getattr(q, f.name) for f in dataclasses.fields(FeaturesParams)})


def feature_params(p: RecollectionRunParams) -> FeaturesParams:
    """The ``recollection.features`` parameters inside ``p`` (the key of the cached features)."""
    return FeaturesParams(**{f.name: getattr(p, f.name) for f in dataclasses.fields(FeaturesParams)})


ROOT_STAGE = "recollection_root"
NAMING_PASS_STAGE = "recollection_naming_pass"
AUTHORS_ROOT_STAGE = "recollection_authors_root"
#: root layers: 'spikes' = the conv3 spike pattern (features run, or extracted at root_threshold); 'authors' =
#: the authors' naming pass (conv1/conv2 at the naming thresholds, non-spiking conv3, AuthorsRootLayer)
ROOT_LAYERS = ("spikes", "authors")
#: root threshold of the authors' naming pass (used when root_threshold is 0)
AUTHORS_ROOT_THRESHOLD = 10.0
ROOT_ARRAYS = ("root_train", "root_test", "labels_train", "labels_test", "features_train", "features_test")


def load_features_run(path) -> dict:
    """The arrays of a finished ``recollection.features`` run (its directory or its arrays.npz)."""
    from pathlib import Path

    from b2models.data import DataError

    f = Path(path)
    if f.is_dir():
        f = f / "arrays.npz"
    if not f.is_file():
        raise DataError(f"features_run={path}: no such recollection.features run (expected {f})")
    try:
        with np.load(f, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except Exception as e:  # not an npz, truncated, ...
        raise DataError(f"features_run={path}: {f} is not a readable arrays file ({e})") from None
    missing = [k for k in ROOT_ARRAYS if k not in a]
    if missing:
        raise DataError(f"features_run={path}: {f} lacks {', '.join(missing)} (a recollection.features run "
                         "from before root-layer patterns were recorded?); rerun recollection.features")
    return a


def features_run_params(path) -> tuple[FeaturesParams, bool]:
    """The feature parameters (CPU schedule resolved) and ``--quick`` flag of a finished features run."""
    import json
    from pathlib import Path

    from b2models.data import DataError

    d = Path(path)
    d = d.parent if d.is_file() else d
    f = d / "config.json"
    try:
        cfg = json.loads(f.read_text())
        given = cfg["params"]
        defaults = FeaturesParams()
        kw = {}
        for fld in dataclasses.fields(FeaturesParams):
            if fld.name in given:
                v = given[fld.name]
                kw[fld.name] = tuple(v) if isinstance(getattr(defaults, fld.name), tuple) else v
        return resolved(FeaturesParams(**kw)), bool(cfg.get("quick", False))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"features_run={path}: cannot read its parameters from {f} ({e}); they are needed to "
                        "extract the root layer at root_threshold") from None


def _extract_root(ctx, fp: FeaturesParams, quick: bool, kernels, threshold: float) -> dict:
    """conv3 spike patterns of the training and test images with the learned ``kernels`` and conv3 at
    ``threshold`` (one forward pass, no learning)."""
    from b2models.models.sdnn import encode_batch
    from b2models.protocols.recollection_features import caltech_sets, digits_sets, extract_features, open_network

    _, (train_x, _), (test_x, _) = digits_sets(fp) if quick else caltech_sets(fp)
    ctx.log(f"extracting the root layer with conv3 threshold {threshold:g} "
            f"(features learned at {fp.conv3_threshold:g})")
    train_s, test_s = (encode_batch(x, fp.retina()) for x in (train_x, test_x))
    with open_network(fp, ctx.backend, ctx.threads) as (_, net):
        _, r_train = extract_features(net, fp, train_s, kernels, ctx.progress, "root layer (training)", True,
                                      conv3_threshold=threshold)
        _, r_test = extract_features(net, fp, test_s, kernels, ctx.progress, "root layer (test)", True,
                                     conv3_threshold=threshold)
    return {"root_train": r_train, "root_test": r_test}


def _kernel_hash(kernels) -> str:
    return hashlib.sha1(b"".join(np.ascontiguousarray(k, dtype=float).tobytes() for k in kernels)).hexdigest()


def _naming_pass(ctx, fp: FeaturesParams, quick: bool, kernels, th1: float, th2: float) -> dict:
    """conv2 spike slots (n, conv2 neurons; -1 silent) of the training and test images with conv1 and conv2 at
    the naming-pass thresholds: one forward pass through the SDNN's first three layers (Brian2, no learning)."""
    from b2models.models.sdnn import SpikingConvNet, encode_batch
    from b2models.protocols.recollection_features import caltech_sets, digits_sets

    _, (train_x, _), (test_x, _) = digits_sets(fp) if quick else caltech_sets(fp)
    ctx.log(f"naming pass: conv1 threshold {th1:g}, conv2 threshold {th2:g} (features learned at "
            f"{fp.conv1_threshold:g} / {fp.conv2_threshold:g})")
    layers = fp.layers()[:3]
    delay = 3  # conv2 fires 3 steps after its input slot (one step per layer)
    key = (repr(fp.in_shape()), repr(layers), fp.n_steps, fp.chunk)
    out = {}
    with Session(ctx.backend, "recollection_naming_pass", key=key, threads=ctx.threads) as s:
        net = SpikingConvNet(fp.in_shape(), layers, fp.n_steps, fp.chunk, s, name="sdnn")
        for part, x in (("train", train_x), ("test", test_x)):
            spikes = encode_batch(x, fp.retina())
            slots = []
            bar = ctx.progress(total=len(spikes), desc=f"naming pass ({part})", unit="image")
            for start in range(0, len(spikes), net.n_images):
                res = net.run_chunk(spikes[start:start + net.n_images].astype(float), kernels[:2],
                                    thresholds=[th1, th2])
                ts = res.last_ts.reshape(res.last_ts.shape[0], -1)
                slots.append(np.where(ts < 1e8, ts - delay, -1).astype(np.int16))
                bar.update(res.last_ts.shape[0])
            bar.close()
            out[f"conv2_{part}"] = np.concatenate(slots)
            out["conv2_shape"] = np.asarray(net.conv[-1]["shape"])
    return out


def _authors_root(ctx, fp: FeaturesParams, conv2: dict, kernel3, theta_root: float, multi: bool) -> dict:
    """Root crossing slots and potentials of the authors' naming pass (:class:`AuthorsRootLayer`, Brian2)."""
    from b2models.models.recollection import AuthorsRootLayer

    layers = fp.layers()
    shape = tuple(int(x) for x in conv2["conv2_shape"])
    n_present = min(fp.chunk, 200)
    key = (shape, repr(layers[3]), repr(layers[4]), n_present, fp.n_steps)
    out = {}
    with Session(ctx.backend, "recollection_authors_root", key=key, threads=ctx.threads) as s:
        net = AuthorsRootLayer(shape, layers[3], layers[4], n_present, fp.n_steps, s)
        for part in ("train", "test"):
            x = conv2[f"conv2_{part}"]
            res = [net.run(x[i:i + n_present], kernel3, theta_root, multi) for i in range(0, len(x), n_present)]
            out[f"root_{part}"] = np.concatenate([r.cross_slot for r in res])
            out[f"potential_{part}"] = np.concatenate([r.potential for r in res])
            out[f"pool2_spikes_{part}"] = np.concatenate([r.pool_spikes for r in res])
    return out


def authors_root_layer(ctx, a: dict, fp: FeaturesParams, quick: bool, p: RecollectionRunParams) -> dict:
    """The root layer of the authors' naming pass for the learned kernels in ``a``: conv2 slots at the naming
    thresholds (cached stage), then pool2 → non-spiking conv3 at ``root_threshold`` (0: 10, the authors'
    value), with ``pool2_multi_spike`` (cached stage)."""
    kernels = [np.asarray(a[f"kernel{c + 1}"]) for c in range(3)]
    th1, th2 = float(p.naming_conv1_threshold), float(p.naming_conv2_threshold)
    base = {"params": fp, "quick": quick, "backend": ctx.backend, "kernels": _kernel_hash(kernels)}
    conv2 = ctx.cached_stage(NAMING_PASS_STAGE, dict(base, conv1_threshold=th1, conv2_threshold=th2),
                             lambda: _naming_pass(ctx, fp, quick, kernels, th1, th2), "naming pass", reuse=True)
    theta = float(p.root_threshold) if p.root_threshold > 0 else AUTHORS_ROOT_THRESHOLD
    multi = bool(p.pool2_multi_spike)
    cfg = dict(base, conv1_threshold=th1, conv2_threshold=th2, theta_root=theta, pool2_multi_spike=multi)
    roots = ctx.cached_stage(AUTHORS_ROOT_STAGE, cfg, lambda: _authors_root(ctx, fp, conv2, kernels[2], theta, multi),
                             "authors' root layer", reuse=True)
    ctx.log(f"authors' root layer: conv1/conv2 thresholds {th1:g} / {th2:g}, root threshold {theta:g}, pool2 "
            f"{'multi-spike' if multi else 'first-spike'}; {np.mean(roots['pool2_spikes_test']):.1f} pool2 spikes "
            "per test image")
    return dict(a, **roots)


KERNELS_STAGE = "recollection_from_kernels"


def _from_kernels(ctx, fp: FeaturesParams, quick: bool, kernels) -> dict:
    """Features, conv3 spike patterns and labels of the training and test images through the SDNN of ``fp``
    with the given kernels (one forward pass, no learning)."""
    from b2models.models.sdnn import encode_batch
    from b2models.protocols.recollection_features import caltech_sets, digits_sets, extract_features, open_network

    _, (train_x, train_y), (test_x, test_y) = digits_sets(fp) if quick else caltech_sets(fp)
    train_s, test_s = (encode_batch(x, fp.retina()) for x in (train_x, test_x))
    with open_network(fp, ctx.backend, ctx.threads) as (_, net):
        f_train, r_train = extract_features(net, fp, train_s, kernels, ctx.progress, "training features", True)
        f_test, r_test = extract_features(net, fp, test_s, kernels, ctx.progress, "test features", True)
    out = {f"kernel{c + 1}": k for c, k in enumerate(kernels)}
    out.update(features_train=f_train, features_test=f_test, root_train=r_train, root_test=r_test,
               labels_train=train_y, labels_test=test_y)
    return out


def kernels_file_layer(ctx, p: RecollectionRunParams) -> tuple[dict, FeaturesParams, bool]:
    """(arrays, feature parameters, quick) of the kernels in ``p.kernels_file`` on this run's SDNN (cached)."""
    from b2models.models.sdnn import kernel_shapes, load_kernels

    fp, quick = resolved(feature_params(p)), ctx.quick
    kernels = load_kernels(p.kernels_file, kernel_shapes(fp))
    ctx.log(f"kernels from {p.kernels_file}; features and root layer through this run's SDNN")
    config = {"params": fp, "quick": quick, "backend": ctx.backend, "kernels": _kernel_hash(kernels)}
    a = ctx.cached_stage(KERNELS_STAGE, config, lambda: _from_kernels(ctx, fp, quick, kernels),
                         "features of the kernel file", reuse=True)
    return a, fp, quick


def root_layer(ctx, p: RecollectionRunParams) -> dict:
    """The root layer (conv3 spike patterns, labels, SDNN features): from ``features_run`` when given, from the
    kernels of ``kernels_file`` through this run's SDNN, else the cached features stage of ``p`` (learned here
    when not cached), plus what the category network needs. With ``root_threshold`` > 0 the conv3 pattern is
    extracted again with the learned kernels and that conv3 threshold (cached as its own stage); with
    ``root_layer='authors'`` the root layer is the authors' naming pass (:func:`authors_root_layer`: crossing
    slots and root potentials)."""
    if p.features_run and p.kernels_file:
        raise ValueError("features_run and kernels_file both given: set one of them")
    if p.kernels_file:
        a, fp, quick = kernels_file_layer(ctx, p)
    elif p.features_run:
        a = load_features_run(p.features_run)
        ctx.log(f"root layer from {p.features_run} (its own feature parameters apply, not this run's)")
        if p.root_threshold > 0 or p.root_layer == "authors":
            fp, quick = features_run_params(p.features_run)
    else:
        fp, quick = resolved(feature_params(p)), ctx.quick
        a = features_stage(ctx, feature_params(p), reuse=True)
        if "root_train" not in a:
            raise ValueError("the cached features hold no root-layer spike patterns; rerun recollection.features")
    if p.root_layer == "authors":
        a = authors_root_layer(ctx, a, fp, quick, p)
    elif p.root_threshold > 0 and p.root_threshold != fp.conv3_threshold:
        kernels = [np.asarray(a[f"kernel{c + 1}"]) for c in range(3)]
        config = {"params": fp, "quick": quick, "backend": ctx.backend, "root_threshold": p.root_threshold,
                  "kernels": _kernel_hash(kernels)}
        roots = ctx.cached_stage(ROOT_STAGE, config, lambda: _extract_root(ctx, fp, quick, kernels, p.root_threshold),
                                 "root layer", reuse=True)
        a = dict(a, **roots)
    out = {k: np.asarray(v) for k, v in a.items()}
    if p.root_winners > 0:
        for part in ("root_train", "root_test"):
            out[part] = first_root_spikes(out[part], p.root_winners)
        ctx.log(f"root layer: each image keeps its {p.root_winners} earliest root spikes (root_winners)")
    last = int(max(out["root_train"].max(), out["root_test"].max()))
    if p.root_layer == "authors":  # crossing slots: an event at every slot to the end of the window
        n_root_steps = max(fp.n_steps, last + 1)
    else:
        n_root_steps = max(network_steps(p.n_steps, p.layers())[0], last + 1)
    out["n_root_steps"] = int(n_root_steps)
    out["n_classes"] = int(max(out["labels_train"].max(), out["labels_test"].max()) + 1)
    n_fired = np.sum(out["root_test"] >= 0, axis=1)
    ctx.log(f"root layer: {out['root_train'].shape[1]} conv3 neurons, {out['root_train'].shape[0]} training / "
            f"{out['root_test'].shape[0]} test images, {n_fired.mean():.1f} root spikes per test image "
            f"(min {n_fired.min()}, max {n_fired.max()})")
    if np.any(n_fired == 0):
        ctx.log(f"warning: {int(np.sum(n_fired == 0))} test images evoke no root spike (they cannot be named)")
    return out


@contextlib.contextmanager
def open_category(backend: str, n_root: int, n_classes: int, n_present: int, n_root_steps: int,
                  rp: RecollectionParams, threads: int = 0):
    """The compiled category network (one build per code and size; run arguments change everything else)."""
    key = (n_root, n_classes, n_present, n_root_steps, rp.per_class, rp.rule)
    if rp.retro_norm:  # other synapse equations (the default's key, and so its cached builds, unchanged)
        key += ("retro_norm",)
    if rp.root_events != "once":
        key += (f"root_events={rp.root_events}",)
    if rp.vote != "spikes":
        key += (f"vote={rp.vote}",)
    with Session(backend, f"recollection_{rp.rule}", key=key, threads=threads) as s:
        yield CategoryNetwork(n_root, n_classes, n_present, n_root_steps, s, rp)


class CategoryBuilder:
    """Picklable ``build(key)`` for sweeps: one compiled category network per worker (:func:`open_category`)."""

    def __init__(self, backend, threads, n_root, n_classes, n_present, n_root_steps, rp):
        self.args = (backend, n_root, n_classes, n_present, n_root_steps, rp, threads)

    def __call__(self, key):
        return open_category(*self.args)


def learn_then_name(net: CategoryNetwork, rp: RecollectionParams, learn_root, learn_y, name_root, lam: float,
                    seed, epochs: int = 1, name_potential=None) -> dict:
    """One run: learn from ``learn_root``/``learn_y`` (teacher on, gain 0, λ = ``lam``) for ``epochs`` passes,
    then name ``name_root`` (teacher off, λ = 0, gain ``rp.gain``), from initial weights drawn with ``seed``.
    ``name_potential`` (root potentials of the named images) is needed with ``vote='potential'``."""
    learn_root = np.asarray(learn_root)
    name_root = np.asarray(name_root)
    n_l, n_n = len(learn_root) * epochs, len(name_root)
    root = np.concatenate([np.tile(learn_root, (epochs, 1)), name_root])
    teach = np.concatenate([np.tile(np.asarray(learn_y), epochs), -np.ones(n_n, dtype=int)])
    lam_v = np.concatenate([np.full(n_l, float(lam)), np.zeros(n_n)])
    gain_v = np.concatenate([np.zeros(n_l), np.full(n_n, rp.gain)])
    w0 = initial_weights(net.n_cat, net.n_root, rp, seed)
    potential = None
    if rp.vote == "potential":
        if name_potential is None:
            raise ValueError("vote='potential' needs the root potentials of the named images")
        potential = np.concatenate([np.zeros((n_l, net.n_root)), np.asarray(name_potential, dtype=float)])
    res = net.run(root, teach, lam_v, gain_v, w0, potential=potential)
    retro = res.retro[n_l:]
    return {"scores": net.class_scores(retro), "t_named": class_first(net, res.t_named[n_l:]),
            "weights": res.weights, "w0": w0, "wall_s": res.wall_s}


def class_first(net: CategoryNetwork, t_named) -> np.ndarray:
    """(n, n_cat) crossing steps → (n, n_classes): the earliest crossing among each class's neurons."""
    t = np.asarray(t_named)
    return np.stack([t[:, net.cat_class == c].min(axis=1) for c in range(net.n_classes)], axis=1)


def standardise_by(pool, *sets):
    """Scale feature sets with the mean and s.d. of an unlabelled ``pool`` (all training images)."""
    from b2models.analysis.classify import standardise

    return [standardise(pool, s)[1] for s in sets]
