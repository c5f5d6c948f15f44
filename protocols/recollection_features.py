"""Protocol ``recollection.features``: STDP feature learning in a spiking deep convolutional network,
then an SVM readout, on Caltech Faces/Motorbikes.

Kheradpisheh SR, Ganjtabesh M, Thorpe SJ, Masquelier T (2018). STDP-based spiking deep convolutional
neural networks for object recognition. Neural Networks 99: 56-67. https://doi.org/10.1016/j.neunet.2017.12.005
(the feature-learning network that the recollection model builds on).

Steps: every image is turned into DoG latency spikes (:func:`models.sdnn.encode_batch`; ON-centre, ON and
OFF with ``--set input_channels=on_off``); the three
conv layers learn one after the other with STDP on images drawn at random (without replacement within each
pass) from the LearningSet, in chunks of ``chunk`` images per run of one compiled binary (a⁺ follows the
doubling schedule image by image); then the TrainingSet and TestingSet go through the frozen
network with conv3 thresholds removed, the features are the per-map maxima of the conv3 potentials, and a
linear and an RBF SVM are fitted on the standardised training features and scored on the test features.

Outputs: ``fig_conv1_kernels`` (learned conv1 kernels; expected: oriented edges), ``fig_learning`` (STDP
winners per image and a⁺ over learning), metrics (both SVMs, train/test, chance level, timing), arrays
(kernels, features, labels, and the conv3 spike pattern of every training and test image, which the
recollection protocols use as the root layer), ``kernels.npz`` (the learned kernels as a kernel file,
:func:`models.sdnn.load_kernels`, which the recollection protocols read with ``--set kernels_file=PATH``).
The kernels and features are cached
(:class:`b2models.results.StageCache`, stage ``recollection_features``) and reused with ``--resume`` and by
later protocols.

Deviations: the learning schedule is shorter than the paper's 3000/5000/6000 images when ``learn_images1..3``
are set lower (measured runs say which values they used); ``--set cpu_schedule=true`` selects the shortened
schedule :data:`CPU_SCHEDULE` (200/700/2000 images, a⁺ reaching its maximum after 200 images); see
:mod:`models.sdnn` for the model's deviations. Two options follow the authors' code instead of the paper's text
(both off by default): ``--set sdnn_pool2_multi_spike=true`` lets pool2 fire at every step with input (in
learning and in feature extraction), and ``--set stdp_spike_count=true`` (with it) scales conv3's STDP by the
number of input spikes before the output spike.
``--quick`` uses scikit-learn's digits (classes 0 and 1, upsampled ×3 to 24×24 and placed on a 32×32
canvas; odd samples learn and train, even samples test) and a smaller network (pool1 3/2, conv2 10 maps 5×5
threshold 8, pool2 2/2, conv3 10 maps 3×3; k = 4/2/1; 200 learning images per layer, initial a⁺ = 0.02 doubling
every 50 images so that the weights converge within the short schedule), so it needs no data files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from b2models.analysis.classify import chance_level, svm_accuracy
from b2models.backend import Session
from b2models.models.sdnn import SDNNParams, SpikingConvNet, encode_batch, readout_features, save_kernels
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol

STAGE = "recollection_features"


@dataclass
class FeaturesParams(SDNNParams):
    """Network and learning parameters (paper values) plus the protocol's."""

    chunk: int = 50  # images per binary run
    svm_C: float = 1.0  # SVM regularisation (authors' code: 1.0)
    quick_digits: tuple = (0, 1)  # --quick: the two digit classes
    cpu_schedule: bool = False  # True: the shortened learning schedule of CPU_SCHEDULE (see cpu_schedule())
    # the authors' code, not the paper's text (which describes first-spike pooling and the plain STDP rule):
    sdnn_pool2_multi_spike: bool = False  # pool2 fires at every step with input (learning and features)
    stdp_spike_count: bool = False  # conv3 STDP scaled by the number of earlier input spikes (needs the above)

    def layers(self) -> list:
        """The network of :class:`SDNNParams` with the two options of the authors' code applied to pool2 and
        conv3 (:class:`models.sdnn.PoolSpec` ``multi_spike``, :class:`models.sdnn.ConvSpec` ``stdp_count``)."""
        layers = super().layers()
        layers[3] = dataclasses.replace(layers[3], multi_spike=bool(self.sdnn_pool2_multi_spike))
        layers[4] = dataclasses.replace(layers[4], stdp_count=bool(self.stdp_spike_count))
        return layers

    def validate(self):
        for name in ("sdnn_pool2_multi_spike", "stdp_spike_count"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.stdp_spike_count and not self.sdnn_pool2_multi_spike:
            raise ValueError("stdp_spike_count=true needs sdnn_pool2_multi_spike=true: with first-spike pooling "
                             "every input spikes at most once and the count rule is the plain rule")
        super().validate()
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")
        if self.svm_C <= 0:
            raise ValueError(f"svm_C must be positive, got {self.svm_C}")


#: A shortened learning schedule (200 / 700 / 2000 learning images instead of 3000 / 5000 / 6000) after which
#: most weights have reached the bimodal 0/1 state of the w(1-w) rule (measured, 5 seeds: 85-92 % of the conv1,
#: 77-84 % of the conv2 and 50-77 % of the conv3 weights below 0.1 or above 0.9): a⁺ starts at a quarter of its
#: maximum in every layer and doubles every 100 images, so each layer spends most of its images at
#: a⁺ = a_plus_max (0.15); conv2 is read out with threshold 50 as in the authors' code; 400 images per binary
#: run (fewer start-ups of the 24 M-synapse binary; the result does not depend on the chunk size).
CPU_SCHEDULE = {
    "learn_images1": 200, "learn_images2": 700, "learn_images3": 2000,
    "a_plus1": 0.0375, "a_plus2": 0.0375, "a_plus3": 0.0375, "a_plus_double_every": 100,
    "readout_conv2_threshold": 50.0, "chunk": 400,
}


def cpu_schedule(p: FeaturesParams) -> FeaturesParams:
    """``p`` with :data:`CPU_SCHEDULE` applied to every schedule field that still has its paper default
    (values set explicitly, e.g. with ``--set``, are kept)."""
    defaults = FeaturesParams()
    changes = {k: v for k, v in CPU_SCHEDULE.items() if getattr(p, k) == getattr(defaults, k)}
    return dataclasses.replace(p, cpu_schedule=False, **changes)


def resolved(p: FeaturesParams) -> FeaturesParams:
    """The parameters that run: the CPU schedule applied when ``p.cpu_schedule`` is set."""
    return cpu_schedule(p) if getattr(p, "cpu_schedule", False) else p


def quick_params(p: FeaturesParams) -> FeaturesParams:
    """Digits on a 32×32 canvas and a smaller network (about a minute on cpp after compilation)."""
    return dataclasses.replace(
        p, width=32, height=32, border=2, conv1_maps=4, conv1_size=5, conv1_threshold=10.0,
        pool1_size=3, pool1_stride=2, conv2_maps=10, conv2_size=5, conv2_threshold=8.0,
        readout_conv2_threshold=8.0, pool2_size=2, pool2_stride=2, conv3_maps=10, conv3_size=3,
        conv3_threshold=2.0, winners1=4, winners2=2, winners3=1, offset1=2, offset2=1, offset3=1,
        a_plus1=0.02, a_plus2=0.02, a_plus3=0.02, a_plus_double_every=50,
        learn_images1=200, learn_images2=200, learn_images3=200, chunk=40,
    )


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def digits_sets(p: FeaturesParams):
    """scikit-learn digits of two classes on a (height, width) canvas: (learn, train, test) (images, labels)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, p.quick_digits)
    imgs = d.images[keep] / 16.0
    labels = np.searchsorted(np.array(sorted(p.quick_digits)), d.target[keep])
    big = np.kron(imgs, np.ones((1, 3, 3)))
    if big.shape[1] > p.height or big.shape[2] > p.width:
        raise ValueError(f"digits (24×24) do not fit a {p.width}×{p.height} canvas")
    canvas = np.zeros((len(big), p.height, p.width))
    y0, x0 = (p.height - 24) // 2, (p.width - 24) // 2
    canvas[:, y0:y0 + 24, x0:x0 + 24] = big
    odd = np.arange(len(canvas)) % 2 == 1
    train = (canvas[odd], labels[odd])
    return train, train, (canvas[~odd], labels[~odd])


def caltech_sets(p: FeaturesParams):
    from b2models.data.loaders import load_caltech

    size = (p.width, p.height)
    out = []
    for split in ("learning", "training", "testing"):
        images, labels, _ = load_caltech(split, size=size)
        if len(images) == 0:
            raise ValueError(f"the Caltech {split} set holds no readable images")
        out.append((images, labels))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# learning and feature extraction (one compiled network)
# --------------------------------------------------------------------------------------------
def learn_kernels(net: SpikingConvNet, p: SDNNParams, learn_spikes, seed: int, progress=None, log=None):
    """Layer-by-layer STDP on images drawn from ``learn_spikes`` (n, n_in); returns (kernels, history)."""
    rng = np.random.default_rng([seed, 7])
    kernels = net.initial_kernels(p.w_mean, p.w_std, rng)
    history = {"layer": [], "a_plus": [], "winners": [], "wall_s": []}
    n_learn = len(learn_spikes)
    order = np.zeros(0, dtype=int)
    for c, n_images in enumerate(p.learn_images()):
        done = 0
        bar = progress(total=n_images, desc=f"STDP conv{c + 1}", unit="image") if progress else None
        while done < n_images:
            b = min(net.n_images, n_images - done)
            while order.size < b:
                order = np.concatenate([order, rng.permutation(n_learn)])
            pick, order = order[:b], order[b:]
            a = np.array([p.a_plus(c, done + j) for j in range(b)])
            res = net.run_chunk(learn_spikes[pick].astype(float), kernels, learn=c, a_plus=a,
                                a_minus=p.a_minus_ratio * a, last_layer=net.conv[c]["layer"],
                                seed=seed * 1000 + c * 100 + done)
            kernels = res.kernels
            history["layer"] += [c] * b
            history["a_plus"] += a.tolist()
            history["winners"] += res.n_winners[:, c].tolist()
            history["wall_s"] += [res.wall_s / b] * b
            done += b
            if bar is not None:
                bar.update(b)
                bar.set_postfix(a_plus=f"{a[-1]:.4g}", winners=f"{res.n_winners[:, c].mean():.2f}")
        if bar is not None:
            bar.close()
        if log:
            k = np.asarray(kernels[c])
            log(f"conv{c + 1}: {n_images} learning images; weights mean {k.mean():.3f}, "
                f"fraction < 0.1 or > 0.9: {np.mean((k < 0.1) | (k > 0.9)):.3f}")
    return kernels, {k: np.asarray(v) for k, v in history.items()}


def extract_features(net: SpikingConvNet, p: SDNNParams, spikes, kernels, progress=None, desc="features",
                     root_spikes: bool = False, conv3_threshold: float | None = None):
    """Per-map maximum potential of conv3 for every image: (n, conv3 maps).

    conv3 keeps its firing threshold, so the run also yields the conv3 ("root layer") spike pattern: with
    ``root_spikes=True`` the function returns ``(features, root)`` where ``root`` (n, conv3 neurons) holds the
    spike step of every conv3 neuron (-1: silent). The potentials are never reset within an image and
    nothing follows conv3, so the features are the same as with the threshold removed.
    ``conv3_threshold`` (default: the learning threshold of ``p``) sets the conv3 threshold of this pass.
    """
    feats, roots = [], []
    thresholds = [None] * len(net.conv)
    if len(net.conv) > 1:
        thresholds[1] = p.readout_conv2_threshold
    if conv3_threshold is not None:
        thresholds[-1] = float(conv3_threshold)
    bar = progress(total=len(spikes), desc=desc, unit="image") if progress else None
    for start in range(0, len(spikes), net.n_images):
        block = spikes[start:start + net.n_images].astype(float)
        res = net.run_chunk(block, kernels, thresholds=thresholds)
        feats.append(readout_features(res.potentials))
        ts = res.last_ts.reshape(len(block), -1)
        roots.append(np.where(ts < 1e8, ts, -1).astype(np.int16))
        if bar is not None:
            bar.update(len(block))
    if bar is not None:
        bar.close()
    n_root = int(np.prod(net.conv[-1]["shape"]))
    f = np.concatenate(feats) if feats else np.zeros((0, net.conv[-1]["spec"].maps))
    r = np.concatenate(roots) if roots else np.zeros((0, n_root), dtype=np.int16)
    return (f, r) if root_spikes else f


#: parameters that reach the binary as run arguments (they do not change the generated code)
RUN_ARG_FIELDS = ("a_plus1", "a_plus2", "a_plus3", "a_minus_ratio", "a_plus_max", "a_plus_double_every",
                  "w_mean", "w_std", "learn_images1", "learn_images2", "learn_images3", "readout_conv2_threshold",
                  "conv1_threshold", "conv2_threshold", "conv3_threshold", "winners1", "winners2", "winners3",
                  "border", "contrast_threshold", "sigma_centre", "sigma_surround", "dog_size")


@contextlib.contextmanager
def open_network(p: SDNNParams, backend: str, threads: int = 0, chunk: int | None = None):
    """The compiled network of ``p`` (one build per code: the session key leaves out run-argument values)."""
    chunk = chunk or getattr(p, "chunk", 50)
    layers = [dataclasses.replace(s, threshold=0.0, winners=min(s.winners, s.maps)) if hasattr(s, "threshold")
              else s for s in p.layers()]
    model_key = jsonable({f.name: getattr(p, f.name) for f in dataclasses.fields(SDNNParams)
                          if f.name not in RUN_ARG_FIELDS})
    key = (model_key, repr(layers), chunk)
    # options outside the layers' repr (the default network keeps its key and its cached build)
    variant = [(i, name) for i, s in enumerate(layers) for name in ("multi_spike", "stdp_count")
               if getattr(s, name, False)]
    if variant:
        key = key + (variant,)
    with Session(backend, "recollection_features", key=key, threads=threads) as s:
        net = SpikingConvNet(p.in_shape(), p.layers(), p.n_steps, chunk, s, name="sdnn")
        yield s, net


def _stage(ctx, p: FeaturesParams) -> dict:
    sets = digits_sets(p) if ctx.quick else caltech_sets(p)
    retina = p.retina()
    t0 = time.perf_counter()
    (learn_x, _), (train_x, train_y), (test_x, test_y) = sets
    learn_s, train_s, test_s = (encode_batch(x, retina) for x in (learn_x, train_x, test_x))
    n_spikes = float(np.mean(np.sum(learn_s >= 0, axis=1)))
    ctx.log(f"encoded {len(learn_s)} learning, {len(train_s)} training, {len(test_s)} test images "
            f"in {time.perf_counter() - t0:.1f} s; {n_spikes:.0f} input spikes per image")
    with open_network(p, ctx.backend, ctx.threads) as (session, net):
        ctx.log(f"built in {session.build_s:.1f} s: {sum(c['n_synapses'] for c in net.conv)} conv synapses, "
                f"{net.n_img} steps per image ({session.directory})")
        t0 = time.perf_counter()
        kernels, hist = learn_kernels(net, p, learn_s, ctx.seed, ctx.progress, ctx.log)
        learn_s_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        f_train, r_train = extract_features(net, p, train_s, kernels, ctx.progress, "training features", True)
        f_test, r_test = extract_features(net, p, test_s, kernels, ctx.progress, "test features", True)
        extract_wall = time.perf_counter() - t0
        build_s = session.build_s
    arrays = {f"kernel{c + 1}": k for c, k in enumerate(kernels)}
    arrays.update(features_train=f_train, labels_train=train_y, features_test=f_test, labels_test=test_y,
                  root_train=r_train, root_test=r_test, root_shape=np.asarray(net.conv[-1]["shape"]),
                  history_layer=hist["layer"], history_a_plus=hist["a_plus"], history_winners=hist["winners"],
                  learning_wall_s=learn_s_wall, extraction_wall_s=extract_wall, build_s=build_s,
                  n_extracted=len(train_s) + len(test_s))
    return arrays


#: options that enter the stage key only when set (stages cached before they existed keep their keys)
KEY_IF_SET = ("sdnn_pool2_multi_spike", "stdp_spike_count")


def stage_config(p: FeaturesParams, seed: int, backend: str, quick: bool) -> dict:
    """The key of the cached features stage (kernels, SVM features, root-layer spike patterns)."""
    params = {k: v for k, v in jsonable(p).items() if not (k in KEY_IF_SET and not v)}
    return {"params": params, "seed": seed, "backend": backend, "quick": quick, "outputs": 2}


def features_stage(ctx, p: FeaturesParams, reuse: bool = False) -> dict:
    """The learned kernels, features and conv3 spike patterns of ``p``: from the stage cache with ``--resume``
    or ``reuse=True`` (later protocols that take the features as their input), else learned here."""
    p = resolved(p)
    config = stage_config(p, ctx.seed, ctx.backend, ctx.quick)
    return ctx.cached_stage(STAGE, config, lambda: _stage(ctx, p), "features", reuse=reuse)


def run(ctx) -> dict:
    p: FeaturesParams = resolved(ctx.params)
    p.validate()
    ctx.log(f"recollection.features: {'digits (--quick)' if ctx.quick else 'Caltech Faces/Motorbikes'}, "
            f"learning images per layer {p.learn_images()}, chunk {p.chunk}, backend={ctx.backend}, seed={ctx.seed}")
    a = features_stage(ctx, p)
    metrics = {"chance_level": chance_level(a["labels_test"])}
    for kernel in ("linear", "rbf"):
        r = svm_accuracy(a["features_train"], a["labels_train"], a["features_test"], a["labels_test"],
                         kernel=kernel, C=p.svm_C)
        metrics[f"train_accuracy_{kernel}"] = r["train"]
        metrics[f"test_accuracy_{kernel}"] = r["test"]
    metrics["test_accuracy"] = max(metrics["test_accuracy_linear"], metrics["test_accuracy_rbf"])
    n_learn = int(np.size(a["history_layer"]))
    metrics.update({
        # fraction of kernel weights that reached the bimodal end states of the w(1-w) rule
        "converged_fraction": [float(np.mean((np.asarray(a[f"kernel{c + 1}"]) < 0.1)
                                             | (np.asarray(a[f"kernel{c + 1}"]) > 0.9))) for c in range(3)],
        "learning_images": [int(np.sum(a["history_layer"] == c)) for c in range(3)],
        "mean_winners_per_image": [float(np.mean(a["history_winners"][a["history_layer"] == c]))
                                   if np.any(a["history_layer"] == c) else None for c in range(3)],
        "learning_wall_s": float(a["learning_wall_s"]),
        "s_per_learning_image": float(a["learning_wall_s"]) / max(1, n_learn),
        "s_per_extracted_image": float(a["extraction_wall_s"]) / max(1, int(a["n_extracted"])),
        "build_s": float(a["build_s"]),
        "n_features": int(a["features_train"].shape[1]),
        "root_spikes_per_test_image": float(np.mean(np.sum(a["root_test"] >= 0, axis=1))),
    })
    ctx.log("accuracy (test): linear SVM {:.3f}, RBF SVM {:.3f}; chance {:.3f}".format(
        metrics["test_accuracy_linear"], metrics["test_accuracy_rbf"], metrics["chance_level"]))
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**a)
    # the learned kernels in the kernel-file format (models.sdnn.load_kernels; recollection protocols: kernels_file)
    save_kernels(ctx.writer.partial / "kernels.npz", [a[f"kernel{c + 1}"] for c in range(3)])
    _figures(ctx, a)
    return metrics


def _figures(ctx, a):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k1 = np.asarray(a["kernel1"])  # (maps, C, k, k)
    M, C = k1.shape[:2]
    fig, axes = plt.subplots(C, M, figsize=(1.6 * M, 1.9 * C), squeeze=False)
    for m in range(M):
        for c in range(C):
            ax = axes[c, m]
            ax.imshow(k1[m, c], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"map {m + 1}" + (f", {('ON', 'OFF')[c]}" if C == 2 else ""), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("conv1 kernels after STDP (0 black, 1 white)", fontsize=9)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "fig_conv1_kernels")

    layer = np.asarray(a["history_layer"])
    if layer.size:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3))
        x = np.arange(layer.size)
        for c in range(3):
            sel = layer == c
            axes[0].plot(x[sel], np.asarray(a["history_winners"])[sel], ".", ms=2, label=f"conv{c + 1}")
            axes[1].plot(x[sel], np.asarray(a["history_a_plus"])[sel], label=f"conv{c + 1}")
        axes[0].set_xlabel("learning image")
        axes[0].set_ylabel("STDP winners")
        axes[0].legend(fontsize=7)
        axes[1].set_xlabel("learning image")
        axes[1].set_ylabel("a⁺")
        axes[1].set_yscale("log")
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig_learning")


PROTOCOL = Protocol(
    name="recollection.features",
    paper="recollection",
    summary="STDP-learned features of a spiking deep conv net + SVM on Caltech Faces/Motorbikes "
            "(Kheradpisheh et al. 2018)",
    params=FeaturesParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("test_accuracy_linear", "test accuracy, linear SVM on conv3 features", "99.1% (paper)",
              "≥ 0.95", lambda v: v >= 0.95, "{:.3f}"),
        Claim("test_accuracy_rbf", "test accuracy, RBF SVM on conv3 features", "99.1% (paper, SVM)",
              "≥ 0.95", lambda v: v >= 0.95, "{:.3f}"),
    ],
    data=["caltech_face_motor"],
    figures=["fig_conv1_kernels", "fig_learning"],
)
