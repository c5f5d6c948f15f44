"""recollection.features: SVM readout functions, data errors, and a --quick learning run on digits."""

import dataclasses
import warnings

import numpy as np
import pytest

from b2models.analysis.classify import chance_level, standardise, svm_accuracy


def test_standardise_uses_training_statistics():
    rng = np.random.default_rng(0)
    tr = rng.normal(3.0, 2.0, (200, 4))
    te = rng.normal(3.0, 2.0, (50, 4))
    a, b = standardise(tr, te)
    np.testing.assert_allclose(a.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(a.std(axis=0), tr.std(axis=0) / (tr.std(axis=0) + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(b, (te - tr.mean(0)) / (tr.std(0) + 1e-5))
    with pytest.raises(ValueError, match="same number of features"):
        standardise(tr, te[:, :3])


def test_svm_accuracy_separable_and_random_labels():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (300, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    for kernel in ("linear", "rbf"):
        r = svm_accuracy(X[:200], y[:200], X[200:], y[200:], kernel=kernel)
        assert r["test"] > 0.9, f"{kernel} SVM should separate a linear boundary"
    y_rand = rng.integers(0, 2, 300)
    r = svm_accuracy(X[:200], y_rand[:200], X[200:], y_rand[200:], kernel="linear")
    assert abs(r["test"] - 0.5) < 0.2, "random labels must give about chance"
    assert chance_level([0, 0, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="kernel"):
        svm_accuracy(X, y, X, y, kernel="poly")
    with pytest.raises(ValueError, match="single class"):
        svm_accuracy(X, np.zeros(300), X, y)
    with pytest.raises(ValueError, match="NaN"):
        svm_accuracy(np.full((4, 2), np.nan), [0, 1, 0, 1], X[:2, :2], [0, 1])


def _fake_caltech(tmp_path, corrupt: bool):
    from PIL import Image

    base = tmp_path / "caltech_face_motor"
    rng = np.random.default_rng(2)
    lines = []
    for cls in ("Face", "Motor"):
        (base / cls).mkdir(parents=True)
        for n in range(2):
            path = base / cls / f"image_{n:04d}.jpg"
            Image.fromarray(rng.integers(0, 255, (40, 60), dtype=np.uint8)).save(path)
            lines.append(f"{cls}/{path.name}")
    if corrupt:
        (base / "Motor" / "image_0001.jpg").write_bytes(b"this is not a jpeg")
    (base / "splits").mkdir()
    for name in ("LearningSet", "TrainingSet", "TestingSet"):
        (base / "splits" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return base


def test_corrupt_image_file_gives_an_error_naming_it(tmp_path, monkeypatch):
    from b2models.data.registry import DataError
    from b2models.protocols.recollection_features import FeaturesParams, caltech_sets

    _fake_caltech(tmp_path, corrupt=True)
    monkeypatch.setenv("B2MODELS_DATA", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="image_0001.jpg"):
            caltech_sets(FeaturesParams(width=50, height=30))


def test_readable_fake_caltech_loads_at_network_size(tmp_path, monkeypatch):
    from b2models.protocols.recollection_features import FeaturesParams, caltech_sets

    _fake_caltech(tmp_path, corrupt=False)
    monkeypatch.setenv("B2MODELS_DATA", str(tmp_path))
    (lx, ly), _, (tx, ty) = caltech_sets(FeaturesParams(width=50, height=30))
    assert lx.shape == (4, 30, 50) and ly.tolist() == [0, 0, 1, 1] and tx.shape == (4, 30, 50)


def test_params_validation():
    from b2models.protocols.recollection_features import FeaturesParams, quick_params

    with pytest.raises(ValueError, match="chunk"):
        FeaturesParams(chunk=0).validate()
    with pytest.raises(ValueError, match="learn_images"):
        FeaturesParams(learn_images2=-1).validate()
    q = quick_params(FeaturesParams())
    q.validate()
    assert q.width == q.height == 32


def test_cpu_schedule_preset_keeps_paper_defaults_and_explicit_values():
    from b2models.params import apply_overrides
    from b2models.protocols.recollection_features import CPU_SCHEDULE, FeaturesParams, resolved, stage_config

    paper = FeaturesParams()
    assert paper.learn_images() == (3000, 5000, 6000) and paper.a_plus_double_every == 500
    assert resolved(paper) == paper, "without cpu_schedule the paper's schedule must run unchanged"
    p = apply_overrides(paper, {"cpu_schedule": "true", "learn_images3": "300"})
    r = resolved(p)
    assert r.learn_images() == (CPU_SCHEDULE["learn_images1"], CPU_SCHEDULE["learn_images2"], 300), \
        "an explicit --set must win over the preset"
    assert (r.a_plus2, r.a_plus_double_every, r.chunk) == (
        CPU_SCHEDULE["a_plus2"], CPU_SCHEDULE["a_plus_double_every"], CPU_SCHEDULE["chunk"])
    assert r.conv2_threshold == paper.conv2_threshold and r.winners2 == paper.winners2, "network unchanged"
    # the preset and the same values given one by one share one cached stage
    preset = resolved(apply_overrides(paper, {"cpu_schedule": "true"}))
    explicit = apply_overrides(paper, {k: str(v) for k, v in CPU_SCHEDULE.items()})
    assert stage_config(preset, 1, "cpp", False) == stage_config(resolved(explicit), 1, "cpp", False)


def test_learning_does_not_depend_on_the_chunk_size():
    """a⁺ follows the schedule image by image, so learning with 2 or 3 images per run gives the same kernels."""
    from b2models.backend import Session
    from b2models.models.sdnn import ConvSpec, PoolSpec, SDNNParams, SpikingConvNet
    from b2models.protocols.recollection_features import learn_kernels

    layers = [ConvSpec(3, 3, 1.6, winners=2, offset=1), PoolSpec(3, 2, inhibition=True),
              ConvSpec(4, 3, 1.2, winners=2, offset=1), PoolSpec(2, 2), ConvSpec(3, 3, 1.0, winners=1, offset=0)]
    rng = np.random.default_rng(12)
    spikes = np.where(rng.random((6, 120)) < 0.5, rng.integers(0, 5, (6, 120)), -1).astype(np.int8)
    p = SDNNParams(learn_images1=5, learn_images2=5, learn_images3=4, a_plus1=0.02, a_plus2=0.02, a_plus3=0.02,
                   a_plus_double_every=2, w_std=0.1)
    out = {}
    for chunk in (2, 3):
        with Session("numpy", f"test_features_chunk{chunk}") as s:
            net = SpikingConvNet((1, 10, 12), layers, 5, chunk, s)
            out[chunk] = learn_kernels(net, p, spikes, seed=3)
    (k2, h2), (k3, h3) = out[2], out[3]
    for c in range(3):
        assert h2["winners"][h2["layer"] == c].sum() > 0, f"conv{c + 1}: no STDP winner, the test is empty"
    np.testing.assert_array_equal(h2["a_plus"], h3["a_plus"])
    np.testing.assert_array_equal(h2["a_plus"][:5], [0.02, 0.02, 0.04, 0.04, 0.08])
    for c in range(3):
        assert np.abs(k2[c] - 0.8).max() > 0.05, f"conv{c + 1} did not learn"
        np.testing.assert_allclose(k2[c], k3[c], rtol=0, atol=1e-12, err_msg=f"conv{c + 1} depends on the chunk")


def test_authors_pool2_and_count_stdp_options():
    """``sdnn_pool2_multi_spike`` / ``stdp_spike_count``: validated, off by default (the paper's text), carried
    into the network's pool2 and conv3, and with them conv3 learns other kernels on the digits of --quick."""
    from b2models.backend import Session
    from b2models.models.sdnn import SpikingConvNet, encode_batch
    from b2models.params import apply_overrides
    from b2models.protocols.recollection_features import (
        FeaturesParams,
        digits_sets,
        learn_kernels,
        quick_params,
        stage_config,
    )

    default = FeaturesParams()
    assert not default.sdnn_pool2_multi_spike and not default.stdp_spike_count
    assert not default.layers()[3].multi_spike and not default.layers()[4].stdp_count
    with pytest.raises(ValueError, match="sdnn_pool2_multi_spike"):
        FeaturesParams(sdnn_pool2_multi_spike="yes").validate()
    with pytest.raises(ValueError, match="needs sdnn_pool2_multi_spike"):
        FeaturesParams(stdp_spike_count=True).validate()
    q = apply_overrides(quick_params(FeaturesParams()), {"sdnn_pool2_multi_spike": "true",
                                                         "stdp_spike_count": "true"})
    q.validate()
    assert q.layers()[3].multi_spike and q.layers()[4].stdp_count and not q.layers()[1].multi_spike
    # off, the options stay out of the cached stage's key (stages cached before them keep their keys); on, in it
    assert "sdnn_pool2_multi_spike" not in stage_config(default, 1, "cpp", False)["params"]
    assert stage_config(q, 1, "cpp", True)["params"]["stdp_spike_count"] is True
    # conv1 and conv2 learn as usual (same seed, same images); conv3 sees multi-spike pool2 input
    q = dataclasses.replace(q, learn_images1=30, learn_images2=30, learn_images3=30, a_plus1=0.05, a_plus2=0.05,
                            a_plus3=0.05, a_plus_double_every=1000)
    (learn_x, _), _, _ = digits_sets(q)
    spikes = encode_batch(learn_x[:30], q.retina())
    out = {}
    for multi in (False, True):
        p = dataclasses.replace(q, sdnn_pool2_multi_spike=multi, stdp_spike_count=multi)
        with Session("numpy", f"test_features_multi{int(multi)}") as s:
            net = SpikingConvNet(p.in_shape(), p.layers(), p.n_steps, 30, s)
            out[multi] = learn_kernels(net, p, spikes, seed=2)
    (k0, _), (k1, h1) = out[False], out[True]
    assert h1["winners"][h1["layer"] == 2].sum() > 0, "conv3: no STDP winner, the test is empty"
    for c in range(2):
        np.testing.assert_array_equal(k0[c], k1[c], err_msg=f"conv{c + 1} must not depend on the pool2 option")
    assert np.abs(k0[2] - k1[2]).max() > 1e-3, "multi-spike pool2 / count STDP did not change conv3 learning"


@pytest.mark.slow
@pytest.mark.standalone
def test_quick_learning_on_digits_beats_chance(tmp_path, have_compiler):
    """--quick: STDP on 2-class digits, conv3 features, SVMs: test accuracy well above chance (0.5)."""
    from b2models.protocol import Context
    from b2models.protocols.recollection_features import PROTOCOL
    from b2models.results import RunWriter, StageCache

    p = PROTOCOL.quick(PROTOCOL.params())
    with RunWriter(PROTOCOL.name, out_root=tmp_path) as writer:
        ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer,
                      cache=StageCache(tmp_path / "cache"), show_progress=False)
        m = PROTOCOL.run(ctx)
    assert m["learning_images"] == [p.learn_images1, p.learn_images2, p.learn_images3]
    assert all(w is not None and w > 0 for w in m["mean_winners_per_image"]), \
        f"every layer must have STDP winners (got {m['mean_winners_per_image']}): check thresholds"
    for kernel in ("linear", "rbf"):
        acc = m[f"test_accuracy_{kernel}"]
        assert acc >= m["chance_level"] + 0.2, (
            f"{kernel} SVM test accuracy {acc:.3f} is not clearly above chance {m['chance_level']:.3f}")
    assert m["test_accuracy"] >= m["chance_level"] + 0.25
    run_dir = writer.path
    assert (run_dir / "figures" / "fig_conv1_kernels.png").exists()
    with np.load(run_dir / "arrays.npz") as z:
        k1 = z["kernel1"]
        assert k1.shape == (4, 1, 5, 5) and np.all((k1 >= 0) & (k1 <= 1))
        assert np.abs(k1 - 0.8).max() > 0.05, "conv1 kernels did not move away from their initial values"
