"""Multimodal data (names, B/13 toy set), analysis functions and the FFA baseline."""

import numpy as np
import pytest

from b2models.analysis import multimodal as mm
from b2models.data.multimodal import (
    NAME_SIZE,
    display_name,
    fit_name_size,
    ink_clipped,
    render_name,
    split_by_person,
    toy_b13,
)

LONG_NAMES = ["Maria Soledad Alvear Valenzuela", "Luis Ernesto Derbez Bautista", "Muhammad Saeed al-Sahhaf",
              "Arnold Schwarzenegger", "Halle Berry", "Gloria Macapagal Arroyo", "Jy", "WWWWWWWWWWWWWWWWWW"]


def _names():
    try:
        from b2models.data.loaders import lfw_people

        return [display_name(p) for p in lfw_people()]
    except Exception:  # no LFW here: the long names above still cover the size rule
        return []


@pytest.mark.parametrize("source", ["long", "lfw"])
def test_rendered_names_never_clip(source):
    names = LONG_NAMES if source == "long" else _names()
    if not names:
        pytest.skip("LFW not available (b2models data fetch lfw)")
    W, H = NAME_SIZE
    for name in names:
        img = render_name(name)
        assert img.shape == (H, W)
        assert img.max() > 0.5, f"{name!r} rendered empty"
        # no ink in the 1-pixel margin, no ink lost against a large canvas
        assert img[0].max() == 0 and img[-1].max() == 0 and img[:, 0].max() == 0 and img[:, -1].max() == 0, name
        assert ink_clipped(name) < 1e-9, f"{name!r} is clipped"
        assert 4 <= fit_name_size(name) <= 20


def test_name_that_cannot_fit_raises():
    with pytest.raises(ValueError, match="does not fit"):
        render_name("A" * 200)


def test_short_names_use_the_largest_size_that_fits():
    assert fit_name_size("Jy") > fit_name_size("Maria Soledad Alvear Valenzuela")
    # the chosen size fits, one pixel more does not (unless it is the maximum)
    for name in LONG_NAMES[:4]:
        px = fit_name_size(name)
        assert px == 20 or fit_name_size(name, max_px=px + 1) == px


def test_toy_set():
    toy = toy_b13(n_per_class=6, size=32, n_ambiguous=3, seed=1)
    assert toy.handwritten.shape == (12, 32, 32) and toy.printed.shape == (12, 32, 32)
    assert np.bincount(toy.labels).tolist() == [6, 6]
    assert toy.ambiguous.shape == (3, 32, 32)
    assert 0 <= toy.handwritten.min() and toy.handwritten.max() <= 1
    for k in (0, 1):
        assert np.array_equal(toy.printed[toy.labels == k][0], toy.printed_classes[k])
    # handwritten items differ from each other (distortion), and each class is closer to its own printed mean
    assert np.abs(toy.handwritten[0] - toy.handwritten[1]).max() > 0.1
    means = np.stack([toy.handwritten[toy.labels == k].mean(0) for k in (0, 1)])
    assert np.linalg.norm(means[0] - means[1]) > 1.0
    # seeded
    assert np.array_equal(toy_b13(n_per_class=6, n_ambiguous=3, seed=1).handwritten, toy.handwritten)


def test_split_by_person_is_disjoint_and_covers_everyone():
    faces = {f"p{k}": np.arange(n * 2, dtype=float).reshape(n, 2) + 100 * k for k, n in enumerate([2, 5, 10, 1])}
    people, Xtr, ytr, Xte, yte = split_by_person(faces, 0.3, seed=0)
    assert people == ["p0", "p1", "p2"]  # one image only: dropped
    for k in range(3):
        tr = {tuple(r) for r in Xtr[ytr == k]}
        te = {tuple(r) for r in Xte[yte == k]}
        assert tr and te and not (tr & te)
        assert len(tr) + len(te) == len(faces[people[k]])
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_person(faces, 1.5)


def test_max_train_caps_training_images_and_leaves_the_test_set_unchanged():
    """A larger training cap (``--set max_train=…``) adds training faces only: the test set stays the same."""
    faces = {f"p{k}": np.arange(n * 2, dtype=float).reshape(n, 2) + 1000 * k for k, n in enumerate([40, 12, 6])}
    small = split_by_person(faces, 0.2, seed=0, max_train=5, max_test=4)
    large = split_by_person(faces, 0.2, seed=0, max_train=30, max_test=4)
    full = split_by_person(faces, 0.2, seed=0)
    assert np.array_equal(small[3], large[3]) and np.array_equal(small[4], large[4])
    assert [int(np.sum(small[2] == k)) for k in range(3)] == [5, 5, 5]
    assert [int(np.sum(large[2] == k)) for k in range(3)] == [30, 10, 5]  # 40 − 8 test; 12 − 2; 6 − 1
    assert len(full[2]) == sum(len(v) for v in faces.values()) - len(full[4])
    small_tr = {tuple(r) for r in small[1]}
    assert small_tr <= {tuple(r) for r in large[1]}  # the smaller training set is part of the larger


def test_auc_and_best_unit():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    acts = rng.random((40, 5))
    labels = rng.integers(0, 3, 40)
    acts[labels == 1, 3] += 1.0  # unit 3 prefers person 1
    acts[:, 4] = 0.0  # a silent unit (all ties)
    auc = mm.auc_per_unit(acts, labels == 1)
    for u in range(5):
        assert auc[u] == pytest.approx(roc_auc_score(labels == 1, acts[:, u]))
    assert auc[4] == pytest.approx(0.5)
    r = mm.best_unit_auc(acts, labels, 1, {"face": (acts, labels)})
    assert r["unit"] == 3 and r["auc_face"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        mm.auc_per_unit(acts, np.zeros(40, bool))


def test_paper_unit_test_by_hand():
    # selection: unit 1 has the largest mean difference for person 0 (3 - 0.5 = 2.5 vs unit 0's 1 - 0 = 1)
    sel = np.array([[1, 3, 0], [1, 3, 0], [0, 0, 5], [0, 1, 5]], dtype=float)
    lab = np.array([0, 0, 1, 2])
    assert mm.mean_difference_unit(sel, lab, 0) == (1, pytest.approx(2.5))
    # threshold on training scores: 0.2, 0.4 (others) / 0.6, 0.8 (person) -> 0.5 separates perfectly
    assert mm.balanced_threshold([0.2, 0.6, 0.4, 0.8], [False, True, False, True]) == pytest.approx(0.5)
    # a constant score cannot separate: the threshold lies below it (everything counts as the person)
    assert mm.balanced_threshold([1.0, 1.0], [True, False]) == pytest.approx(0.0)
    names = np.array([[0, 0.5, 0], [0, 0.9, 0], [0, 0.1, 0]])
    assert mm.name_rank(names, 1, 0) == 2 and mm.name_rank(names, 1, 1) == 1
    assert mm.name_rank(names, 0, 0) == 3  # silent for every name: last, not first
    thr_acts = np.array([[0, 0.6, 0], [0, 0.8, 0], [0, 0.2, 0], [0, 0.4, 0]])
    test = np.array([[0, 0.7, 0], [0, 0.3, 0], [0, 0.45, 0], [0, 0.9, 0], [0, 0.1, 0], [0, 0.55, 0]])
    tlab = np.array([0, 0, 1, 1, 2, 2])
    r = mm.paper_unit_test(sel, lab, thr_acts, np.array([0, 0, 1, 2]), test, tlab, 0, name_acts=names, n_test=2)
    assert r["unit"] == 1 and r["threshold"] == pytest.approx(0.5) and r["name_rank"] == 2
    assert r["n_test_each"] == 2
    # person 0: 0.7 (> 0.5, right) and 0.3 (wrong); two of the others {0.45, 0.9, 0.1, 0.55}
    assert r["auc_face"] == pytest.approx((3 + 1) / 8)
    assert r["accuracy"] in (0.25, 0.5, 0.75)
    null = mm.permutation_null(sel, lab, test, tlab, 0, n_perm=20)
    assert null.shape == (20,) and np.all((null >= 0) & (null <= 1))
    with pytest.raises(ValueError, match="person 5"):
        mm.mean_difference_unit(sel, lab, 5)


def test_multimodal_fraction_sparsity_and_name_decoding():
    face = np.array([[1, 0, 0, 2], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=float)
    name = np.array([[0, 3, 0, 1], [0, 0, 0, 0]], dtype=float)
    # responsive: face -> units 0, 3; name -> units 1, 3; both: 3 of {0, 1, 3}
    assert mm.multimodal_fraction(face, name, min_frac=0.3) == pytest.approx(1 / 3)
    assert mm.multimodal_fraction_all(face, name, min_frac=0.3) == pytest.approx(1 / 4)
    assert mm.active_fraction(face) == pytest.approx(4 / 12)
    names = np.random.default_rng(0).random((4, 8, 16))
    acc, pred = mm.nearest_name_top1(names[[2, 0, 1]] * 3 + 0.5, names, [2, 0, 1])
    assert acc == 1.0 and pred.tolist() == [2, 0, 1]
    acc, _ = mm.nearest_name_top1(names[[2, 0, 1]], names, [0, 0, 0])
    assert acc == pytest.approx(1 / 3)


def test_linear_identity_accuracy_and_class_distances():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    F = rng.normal(size=(60, 4)) * 0.1 + np.eye(3, 4)[y] * 3
    assert mm.linear_identity_accuracy(F[::2], y[::2], F[1::2], y[1::2]) == 1.0
    c = mm.class_centres(F, y, 3)
    d = mm.class_distances(F, c)
    assert np.array_equal(np.argmin(d, axis=1), y)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras/JAX, not by this project
def test_ffa_builds_and_trains_one_step(have_keras):
    from b2models.models.ffa import FFA, FFAParams

    rng = np.random.default_rng(0)
    faces, names = rng.random((8, 20)), rng.random((8, 12))
    ffa = FFA(FFAParams(vision=(6, 5, 4), text=(5, 4), joint=7, epochs=1, batch=8), 20, 12, seed=0)
    w0 = [np.array(w) for w in ffa.model.get_weights()]
    loss = ffa.fit(faces, names, epochs=1)
    assert len(loss) == 1 and np.isfinite(loss[0])
    assert any(np.abs(np.array(w) - v).max() > 0 for w, v in zip(ffa.model.get_weights(), w0))
    z = ffa.encode(faces=faces)
    assert z.shape == (8, 7) and z.min() >= 0  # ReLU joint layer
    f_hat, n_hat = ffa.reconstruct(faces=faces)
    assert f_hat.shape == (8, 20) and n_hat.shape == (8, 12)
    with pytest.raises(ValueError, match="expected"):
        ffa.encode(faces=np.zeros((2, 3)))


def test_vision_conv_option_and_paper_size_configuration():
    """``--set vision=conv`` makes V1 convolutional (V2 codes its 16×9×9 potentials); bad conv settings give one
    error naming the protocol's parameter; ``scale=paper`` is a valid paper-size configuration."""
    from b2models.params import ParameterError, apply_overrides
    from b2models.protocols.multimodal_train import PAPER_SIZE, MultimodalParams, quick_params

    p = apply_overrides(MultimodalParams(), {"vision": "conv"})
    layers = {L.name: L for L in p.layers()}
    assert layers["V1"].is_conv and layers["V1"].size == 16 * 9 * 9 and not layers["V2"].is_conv
    assert [L.name for L in MultimodalParams().layers() if L.is_conv] == [], "the default must stay dense"
    quick_params(p).validate()
    for assignment, name in (({"conv_kernel_size": "50"}, "conv_kernel_size=50"),
                             ({"conv_pad": "0", "conv_stride": "5"}, "conv_stride=5 does not tile"),
                             ({"vision": "fft"}, "vision")):
        with pytest.raises(ParameterError, match=name):
            apply_overrides(MultimodalParams(), {"vision": "conv", **assignment})
    two = apply_overrides(MultimodalParams(), {"v_atoms": "256,64"})  # layer sizes and count from the CLI
    assert [(L.name, L.size) for L in two.layers()][:2] == [("V1", 256), ("V2", 64)]
    with pytest.raises(ParameterError, match="every layer needs >= 1 atom"):
        apply_overrides(MultimodalParams(), {"t_atoms": "128,0"})
    paper = apply_overrides(MultimodalParams(), {"scale": "paper"}).effective()
    assert paper.n_iter == 400 and paper.p_atoms == 512 and paper.face_channels == 3
    v1 = paper.layers()[0]
    assert v1.is_conv and v1.conv_params().out_shape == (64, 32, 32) and v1.in_shape == (3, 64, 64)
    assert all(getattr(paper, k) == v for k, v in PAPER_SIZE.items())


def test_paper_test_finds_a_planted_multimodal_unit_and_the_null_does_not():
    from b2models.protocols.multimodal_analyse import paper_test

    rng = np.random.default_rng(3)
    n_people, n_units = 6, 40
    y_train, y_test = np.repeat(np.arange(n_people), 12), np.repeat(np.arange(n_people), 6)

    def codes(y, plant):
        x = rng.random((len(y), n_units)) * (rng.random((len(y), n_units)) < 0.2)
        x[:, 7] = plant * (y == 0) * (1 + rng.random(len(y))) + 0.3 * rng.random(len(y))
        return x

    names = rng.random((n_people, n_units)) * 0.5
    names[0, 7] = 3.0
    a = {"names": np.zeros((n_people, 10)), "people": np.array([f"p{k}" for k in range(n_people)]),
         "y_train": y_train, "y_test": y_test,
         "lca_P1_both_train": codes(y_train, 2.0), "lca_P1_face_train": codes(y_train, 1.0),
         "lca_P1_face_test": codes(y_test, 1.0), "lca_P1_name": names}
    m, table = paper_test(a, "lca", 3, seed=1)
    assert table["unit"][0] == 7, "the selection on training pairs should find the planted unit"
    assert m["lca_paper_auc_face_top1"] > 0.95 and m["lca_paper_accuracy_top1"] >= 0.85
    assert m["lca_paper_name_rank_top1"] == 1 and m["lca_paper_n_pass"] == 1
    assert m["lca_paper_null_auc_p95"] < 0.8, "a null selection should not reach the planted unit's AUC"


def test_training_interrupted_then_resumed_learns_what_an_uninterrupted_run_does(tmp_path, monkeypatch, have_lfw):
    import b2models
    from b2models.models.lca import LCAHierarchy
    small = dict(n_people=4, max_train=6, max_test=2, v_atoms=(16, 16, 16), t_atoms=(16, 16), p_atoms=16, n_iter=20,
                 epochs=2, chunk=8, checkpoint_every=8, ffa_epochs=0)
    whole = b2models.run("multimodal.train", backend="numpy", quick=True, out=tmp_path / "a", **small)

    calls = {"n": 0}
    present = LCAHierarchy.present

    def interrupted(self, *a, **kw):
        if kw.get("learn"):
            calls["n"] += 1
            if calls["n"] == 4:  # the second epoch's first block: after 3 checkpoints
                raise KeyboardInterrupt
        return present(self, *a, **kw)

    monkeypatch.setattr(LCAHierarchy, "present", interrupted)
    with pytest.raises(KeyboardInterrupt):
        b2models.run("multimodal.train", backend="numpy", quick=True, out=tmp_path / "b", **small)
    ckpts = list((tmp_path / "b" / "cache" / "multimodal_train_checkpoint").glob("*.npz"))
    assert len(ckpts) == 1, "the interrupted run should leave one training checkpoint"
    monkeypatch.setattr(LCAHierarchy, "present", present)
    resumed = b2models.run("multimodal.train", backend="numpy", quick=True, out=tmp_path / "b", resume=True, **small)
    assert "training continues from epoch 2, presentation 0" in resumed.log
    for k, v in whole.arrays.items():
        if k.startswith("lca_phi"):
            np.testing.assert_allclose(resumed.arrays[k], v, rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(resumed.arrays["lca_v1_error_by_epoch"], whole.arrays["lca_v1_error_by_epoch"])
    assert not ckpts[0].exists(), "the checkpoint of a finished, cached training stage should be removed"


def test_ffa_l1_search_hits_the_target_active_fraction_on_the_training_pairs(have_keras):
    from b2models.models.ffa import FFAParams, active_fraction, fit_to_active_fraction

    rng = np.random.default_rng(1)
    faces, names = rng.standard_normal((64, 24)), rng.standard_normal((64, 12))
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    names /= np.linalg.norm(names, axis=1, keepdims=True)
    p = FFAParams(vision=(12,), text=(8,), joint=16, epochs=15, batch=16)
    # on this problem 28.8 % of the joint units are active without L1, 22 % at l1 = 0.01 and 12 % at 0.1
    ffa, l1, loss, search = fit_to_active_fraction(p, faces, names, 0.2, tol=0.015, l1_range=(1e-4, 1.0),
                                                   max_fits=6, seed=0)
    acts = [a for _, a in search]
    assert len(search) >= 2, f"the first fit {search} should miss the target: the bisection is not exercised"
    assert len(loss) == 15 and l1 in [x for x, _ in search]
    got = active_fraction(ffa.encode(faces=faces, names=names))
    assert got == pytest.approx(dict(search)[l1]), "the returned autoencoder should be the fit recorded for its l1"
    assert abs(got - 0.2) == pytest.approx(min(abs(a - 0.2) for a in acts)), "the fit closest to the target wins"
    assert abs(got - 0.2) <= 0.015, f"search {search} did not reach 20 % active"
    # bisection: a fit above the target raises the next l1, one below lowers it
    for (l1a, act), (l1b, _) in zip(search, search[1:]):
        assert (l1b > l1a) == (act > 0.2)
    for bad in (dict(target=0.0), dict(target=0.3, l1_range=(0.0, 1e-4)), dict(target=0.3, tol=0.0)):
        with pytest.raises(ValueError):
            fit_to_active_fraction(p, faces, names, **bad)


def _stub_ctx(params, tmp_path, seed=1):
    from b2models.protocol import Context
    from b2models.results import StageCache

    class Writer:
        def __init__(self):
            self.lines = []

        def log(self, msg):
            self.lines.append(msg)

    return Context(params=params, seed=seed, backend="numpy", quick=False, writer=Writer(),
                   cache=StageCache(tmp_path / "cache"))


def test_autoencoder_stage_is_cached_apart_from_the_lca_stage(tmp_path, monkeypatch):
    """Changing only the autoencoder's parameters retrains the autoencoder, not the LCA; an LCA stage cached
    with an autoencoder inside (before the two were split) is found by its old key and its autoencoder is
    replaced."""
    import dataclasses

    import b2models.models.ffa as ffa_mod
    from b2models.protocols import multimodal_train as mt

    calls = {"lca": 0, "ffa": []}
    n_tr, n_te = 6, 3

    def fake_lca(ctx, p):
        calls["lca"] += 1
        return {"face_train": np.ones((n_tr, 4)), "face_test": np.ones((n_te, 4)), "names": np.ones((2, 3)),
                "y_train": np.arange(n_tr) % 2, "y_test": np.arange(n_te) % 2, "lca_P1_both_test": np.ones((n_te, 5)),
                "ffa_P1_both_test": np.full((n_te, 5), -1.0)}  # as in an LCA stage cached with its autoencoder

    def fake_ffa(ctx, p, D):
        calls["ffa"].append(p.ffa_target_active)
        assert D["face_train"].shape == (n_tr, 4), "the autoencoder should train on the LCA stage's data"
        return {"ffa_available": True, "ffa_P1_both_test": np.full((n_te, 5), p.ffa_target_active)}

    monkeypatch.setattr(mt, "_train", fake_lca)
    monkeypatch.setattr(mt, "_ffa_stage", fake_ffa)
    monkeypatch.setattr(ffa_mod, "keras_available", lambda: (True, ""))
    p = mt.MultimodalParams()
    a = mt.train_stage(_stub_ctx(p, tmp_path), p, reuse=True)
    assert calls == {"lca": 1, "ffa": [0.478]} and np.all(a["ffa_P1_both_test"] == 0.478)
    q = dataclasses.replace(p, ffa_target_active=0.3, ffa_l1=1e-6, ffa_epochs=5)
    ctx = _stub_ctx(q, tmp_path)
    b = mt.train_stage(ctx, q, reuse=True)
    assert calls == {"lca": 1, "ffa": [0.478, 0.3]}, "only the autoencoder should be trained again"
    assert np.all(b["ffa_P1_both_test"] == 0.3) and np.all(b["lca_P1_both_test"] == 1)
    assert any("reusing the cached LCA training stage" in line for line in ctx.writer.lines)
    other_seed = _stub_ctx(p, tmp_path, seed=2)
    assert mt.lca_stage_config(ctx, q) == mt.lca_stage_config(ctx, p) != mt.lca_stage_config(other_seed, p)
    assert mt.ffa_stage_config(ctx, q) != mt.ffa_stage_config(ctx, p)
    # keys of LCA stages cached before the split: the autoencoder fields at their old defaults, no new fields
    key = mt.lca_stage_config(ctx, q)["params"]
    assert (key["ffa_l1"], key["ffa_epochs"], key["ffa_lr"]) == (1e-4, 60, 1e-3) and "ffa_target_active" not in key
    with pytest.raises(ValueError, match="ffa_target_active"):
        dataclasses.replace(p, ffa_target_active=1.2).validate()


def test_paper_scale_prints_its_time_estimate_and_uses_the_gpu_engine_on_cuda(tmp_path, monkeypatch):
    """``scale=paper`` is checked without running it: its layers, the work per iteration counted by hand, the
    estimate printed before the LCA starts, and the engine that ``cuda`` gets (not the cpp-only kernel)."""
    from b2models.models.lca import LCAParams, resolve_engine
    from b2models.params import apply_overrides
    from b2models.protocols import multimodal_train as mt

    p = apply_overrides(mt.MultimodalParams(), {"scale": "paper"})
    p.validate()
    eff = p.effective()
    work = mt.lca_work(p)
    assert work["V1"] == ("conv", 2 * 64 * 32 * 32 * 3 * 7 * 7)
    assert work["V2"] == ("dense", 2 * (64 * 32 * 32) * 512)  # V2 codes the 65,536 potentials of the conv V1
    assert work["T1"] == ("dense", 2 * 128 * 16 * 512) and work["P1"] == ("dense", 2 * 1024 * 512)
    est = mt.estimate_time(p, 4800, 1185, 423)
    rate = mt.MEASURED_DENSE_MACS_PER_S["cpp"]
    per = 400 * (work["V1"][1] / rate["conv"] + sum(w for k, (_, w) in work.items() if k != "V1") / rate["dense"])
    assert est["backends"]["cpp"]["train_s"] == pytest.approx(per * 3 * 4800)
    assert est["backends"]["cpp"]["code_s"] == pytest.approx(per * (2 * 4800 + 2 * 1185 + 423))
    assert est["backends"]["cuda"] is None
    # on a GPU the products with Φ are Brian2 synapses (the kernel engine is C++ for cpp_standalone only)
    lp = eff.lca_params()
    assert lp.engine == "auto" and resolve_engine(lp.engine, "cuda") == "synapses"
    assert resolve_engine(eff.layers()[0].conv_params(LCAParams(engine=lp.engine)).engine, "cuda") == "synapses"
    assert resolve_engine(lp.engine, "cpp") == "kernel"
    # the protocol takes cuda, and generates the hierarchy without the loop invariants brian2cuda leaves undeclared
    import brian2

    from b2models.protocols.multimodal_analyse import PROTOCOL as ANALYSE

    assert "cuda" in mt.PROTOCOL.backends and "cuda" in ANALYSE.backends
    before = brian2.prefs.codegen.loop_invariant_optimisations
    with mt.cuda_codegen_prefs("cuda"):
        assert brian2.prefs.codegen.loop_invariant_optimisations is False
    with mt.cuda_codegen_prefs("cpp"):
        assert brian2.prefs.codegen.loop_invariant_optimisations == before
    assert brian2.prefs.codegen.loop_invariant_optimisations == before

    class Stop(Exception):
        pass

    def no_training(*a, **kw):
        raise Stop

    def fake_data(q):
        return {"people": ["a"] * 423, "y_train": np.zeros(4800, int), "y_test": np.zeros(1185, int),
                "face_train": np.zeros((1, 3 * 64 * 64)), "face_test": np.zeros((1, 3 * 64 * 64)),
                "names": np.zeros((1, 2048)), "names_img": np.zeros((1, 16, 128)),
                "face_img_test": np.zeros((1, 64, 64))}

    monkeypatch.setattr(mt, "prepare", fake_data)
    monkeypatch.setattr(mt, "_lca_stage", no_training)
    ctx = _stub_ctx(p, tmp_path)
    with pytest.raises(Stop):
        mt.train_stage(ctx, p)
    text = "\n".join(ctx.writer.lines)
    assert "estimated LCA time" in text and "cuda: not measured here" in text
    assert f"training {mt._hours(est['backends']['cpp']['train_s'])}" in text
