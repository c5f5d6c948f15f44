"""Recollection by retrograde action potentials: co-occurrence rule, naming pathway, protocols at --quick scale."""

import dataclasses

import numpy as np
import pytest

from b2models.analysis.recollection import (
    accuracy,
    accuracy_on,
    decided,
    ecdf,
    fraction_per_class,
    name_by,
    name_by_first_crossing,
    name_by_largest,
    paired_comparison,
    recall_matrix,
    summary,
)
from b2models.models.recollection import (
    RULES,
    CategoryNetwork,
    RecollectionParams,
    backward_operators,
    first_root_spikes,
    initial_weights,
    recall_input_map,
    reference_learning,
    reference_retro,
)


def toy_patterns(n_root=24, n_img=10, seed=0):
    """Class 0 fires root neurons 0-11 at random steps, class 1 neurons 12-23 (plus a shared neuron 5)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_img) % 2
    root = -np.ones((n_img, n_root), dtype=int)
    for k, c in enumerate(y):
        own = np.arange(12) + 12 * c
        fire = own[rng.random(12) < 0.6]
        root[k, fire] = rng.integers(0, 4, fire.size)
        root[k, 5] = 2
    return root, y


def open_net(backend, n_root, n_present, p, steps=4):
    from b2models.backend import Session

    key = (n_root, n_present, steps, p.rule, p.per_class, p.retro_norm, p.root_events, p.vote)
    s = Session(backend, f"test_recollection_{p.rule}", key=key)
    s.open()
    try:
        return s, CategoryNetwork(n_root, 2, n_present, steps, s, p)
    except Exception:
        s.close()
        raise


@pytest.mark.parametrize("rule", RULES)
def test_co_occurrence_rule_on_toy_patterns_numpy(rule):
    """The Brian2 synapse code equals the NumPy statement of the rule; the paper's rule potentiates the true
    class on the root neurons that fired and depresses the other class there; silent neurons do not change."""
    root, y = toy_patterns()
    p = RecollectionParams(rule=rule)
    s, net = open_net("numpy", root.shape[1], 12, p)
    try:
        w0 = initial_weights(2, root.shape[1], p, 3)
        r = net.run(root, y, 40.0, 0.0, w0)
    finally:
        s.close()
    ref = reference_learning(root, y, 40.0, w0, [0, 1], rule=rule)
    np.testing.assert_allclose(r.weights, ref, atol=1e-12, err_msg=f"{rule}: Brian2 and the NumPy rule differ")
    dw = r.weights - w0
    fired0 = np.any(root[y == 0] >= 0, axis=0) & ~np.any(root[y == 1] >= 0, axis=0)  # only class-0 images
    assert np.all(dw[0, fired0] > 0), "true-class synapses of co-active root neurons must be potentiated"
    never = ~np.any(root >= 0, axis=0)
    if rule == "paper":
        assert np.all(dw[1, fired0] < 0), "paper rule: the other class must be depressed where the root fired"
        assert np.all(dw[:, never] == 0), "paper rule: root neurons that never fired must keep their weights"
    elif rule == "authors_code":
        assert np.all(dw[1, fired0] == 0), "authors_code: the other class never changes"
        assert np.all(dw[:, never] == 0), "authors_code: root neurons that never fired keep their weights"
    else:
        assert np.all(dw[1, fired0] <= 0) and np.all(dw[0, never] < 0), \
            "silent_ltd: the true class is depressed where the root neuron stayed silent"
    # names follow the learned weights
    assert accuracy(name_by_largest(reference_retro(root, r.weights, np.ones(len(y)))), y) == 1.0


@pytest.mark.parametrize("rule", RULES)
def test_two_neuron_weight_change_equals_the_formula_numpy(rule):
    """One category neuron per class, one root neuron firing at step 1 of a 4-step window: the Brian2 weight
    change equals the rule's formula, once per root event (every_step: 4 - 1 = 3 events, latency weighting)."""
    ap, am, lam, w = 0.007, 0.003, 20.0, 0.4
    root, y = np.array([[1]]), np.array([0])
    for events, n in (("once", 1), ("every_step", 3)):
        p = RecollectionParams(rule=rule, root_events=events)
        s, net = open_net("numpy", 1, 1, p)
        try:
            r = net.run(root, y, lam, 0.0, np.full((2, 1), w))
        finally:
            s.close()
        true, other = w, w
        for _ in range(n):
            if rule == "paper":  # true class +λa⁺w(1−w), other class −λa⁻w(1−w)
                true, other = true + lam * ap * true * (1 - true), other - lam * am * other * (1 - other)
            elif rule == "authors_code":  # true class: LTP, then LTD of the updated weight; other unchanged
                true = true + lam * ap * true * (1 - true)
                true = true - lam * am * true * (1 - true)
        if rule == "silent_ltd":  # potentiation of the weight at the teacher spike, however many events
            true = w + lam * ap * w * (1 - w)
        np.testing.assert_allclose(r.weights[:, 0], [true, other], rtol=0, atol=1e-12,
                                   err_msg=f"rule {rule}, root_events {events}")
        if rule != "silent_ltd":
            assert (true - w) == pytest.approx(n * lam * (ap - (am if rule == "authors_code" else 0)) * w * (1 - w),
                                               rel=0.15), "the net change grows with the number of events"


def test_every_step_events_and_potential_vote_equal_the_reference_numpy():
    """Latency-weighted events (every_step) and the potential-weighted vote: Brian2 learning and retrograde
    input equal the NumPy reference; a neuron crossing at step t votes (n_root_steps − t) times."""
    root, y = toy_patterns(seed=4)
    pot = np.where(root >= 0, 1.0 + np.arange(root.shape[1])[None, :] / 10, 0.0)
    for rule in ("paper", "authors_code"):
        p = RecollectionParams(rule=rule, root_events="every_step", vote="potential")
        s, net = open_net("numpy", root.shape[1], 20, p)
        try:
            w0 = initial_weights(2, root.shape[1], p, 6)
            lam, gain = np.r_[np.full(10, 5.0), np.zeros(10)], np.r_[np.zeros(10), np.ones(10)]
            r = net.run(np.r_[root, root], np.r_[y, -np.ones(10, dtype=int)], lam, gain, w0,
                        potential=np.r_[pot, pot])
            with pytest.raises(ValueError, match="root potentials"):
                net.run(root, y, 1.0, 0.0, w0)
        finally:
            s.close()
        w = reference_learning(root, y, 5.0, w0, [0, 1], rule=rule, root_events="every_step", n_root_steps=4)
        np.testing.assert_allclose(r.weights, w, atol=1e-12, err_msg=rule)
        np.testing.assert_allclose(r.retro[10:], reference_retro(root, w, root_events="every_step", n_root_steps=4,
                                                                 potential=pot), atol=1e-12, err_msg=rule)
        once = reference_learning(root, y, 5.0, w0, [0, 1], rule=rule)
        assert not np.allclose(once, w), "latency weighting must change the learned weights"
    with pytest.raises(ValueError, match="rule='published' was renamed.*silent_ltd.*authors_code"):
        RecollectionParams(rule="published").validate()
    for bad in ({"root_events": "always"}, {"vote": "max"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RecollectionParams(**bad).validate()


@pytest.mark.parametrize("retro_norm", [False, True])
def test_gain_switches_retrieval_and_lambda_switches_learning_numpy(retro_norm):
    """The retrograde input equals the NumPy reference, plain or divided by the neuron's total weight
    (``retro_norm``), also when the weights were learned earlier in the same run."""
    root, y = toy_patterns(seed=1)
    p = RecollectionParams(theta_name=1.5, retro_norm=retro_norm)
    s, net = open_net("numpy", root.shape[1], 12, p)
    try:
        w = initial_weights(2, root.shape[1], p, 4)
        w[1] *= 0.5  # unequal total weights: the normalisation matters
        off = net.run(root, -np.ones(len(y), dtype=int), 0.0, 0.0, w)
        on = net.run(root, -np.ones(len(y), dtype=int), 0.0, 1.0, w)
        taught = net.run(root, y, 0.0, 1.0, w)
        # learn from 4 images (gain 0), then name 8 with the weights learned in this run
        lam, gain = np.r_[np.full(4, 40.0), np.zeros(8)], np.r_[np.zeros(4), np.full(8, 2.0)]
        both = net.run(np.r_[root[:4], root[2:]], np.r_[y[:4], -np.ones(8, dtype=int)], lam, gain, w)
    finally:
        s.close()
    assert np.all(off.retro == 0), "with the neuromodulatory gain at 0 no retrograde input may arrive"
    assert np.all(np.isinf(off.t_named)), "with the gain at 0 no category neuron may reach the naming threshold"
    np.testing.assert_allclose(on.retro, reference_retro(root, w, np.ones(len(y)), norm=retro_norm), atol=1e-12)
    assert np.all(on.retro > 0)
    assert np.array_equal(on.weights, w) and np.array_equal(taught.weights, w), "λ = 0 must freeze the weights"
    # the spiking decision: a neuron is named at a finite step exactly when its total input reached the threshold
    assert np.array_equal(np.isfinite(on.t_named), on.retro >= 1.5)
    learned = reference_learning(root[:4], y[:4], 40.0, w, [0, 1])
    np.testing.assert_allclose(both.weights, learned, atol=1e-12)
    np.testing.assert_allclose(both.retro[4:], reference_retro(root[2:], learned, 2.0, norm=retro_norm), atol=1e-12)
    if retro_norm:  # relative to the mean weight: halving a neuron's weights leaves its input unchanged
        np.testing.assert_allclose(reference_retro(root, w * [[1.0], [0.5]], norm=True) / on.retro, 1.0)
        with pytest.raises(ValueError, match="retro_norm"):
            RecollectionParams(retro_norm="yes").validate()


@pytest.mark.standalone
def test_category_network_numpy_and_cpp_agree(have_compiler):
    root, y = toy_patterns(seed=2)
    p = RecollectionParams(per_class=2)
    out = {}
    for backend in ("numpy", "cpp"):
        s, net = open_net(backend, root.shape[1], 20, p)
        try:
            w0 = initial_weights(4, root.shape[1], p, 5)
            lam = np.r_[np.full(10, 5.0), np.zeros(10)]
            gain = np.r_[np.zeros(10), np.ones(10)]
            out[backend] = net.run(np.r_[root, root], np.r_[y, -np.ones(10, dtype=int)], lam, gain, w0)
        finally:
            s.close()
    np.testing.assert_allclose(out["cpp"].weights, out["numpy"].weights, atol=1e-12)
    np.testing.assert_allclose(out["cpp"].retro, out["numpy"].retro, atol=1e-12)
    np.testing.assert_array_equal(out["cpp"].t_named, out["numpy"].t_named)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="rule"):
        RecollectionParams(rule="hebb").validate()
    with pytest.raises(ValueError, match="per_class"):
        RecollectionParams(per_class=0).validate()
    root, y = toy_patterns()
    p = RecollectionParams()
    s, net = open_net("numpy", root.shape[1], 12, p)
    try:
        w0 = initial_weights(2, root.shape[1], p, 3)
        with pytest.raises(ValueError, match="root spike steps"):
            net.run(root[:, :5], y, 1.0, 0.0, w0)
        with pytest.raises(ValueError, match="root spike steps"):
            net.run(root + 10, y, 1.0, 0.0, w0)
        with pytest.raises(ValueError, match="teach_class"):
            net.run(root, y + 2, 1.0, 0.0, w0)
        with pytest.raises(ValueError, match="initial weights"):
            net.run(root, y, 1.0, 0.0, w0[:1])
        with pytest.raises(ValueError, match="images for a network built for"):
            net.run(np.r_[root, root], np.r_[y, y], 1.0, 0.0, w0)
    finally:
        s.close()


def test_features_run_errors(tmp_path):
    from b2models.data import DataError
    from b2models.protocols.recollection_common import load_features_run

    with pytest.raises(DataError, match="no such recollection.features run"):
        load_features_run(tmp_path / "missing")
    bad = tmp_path / "arrays.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(DataError, match="not a readable arrays file"):
        load_features_run(tmp_path)
    np.savez(bad, features_train=np.zeros((2, 3)))
    with pytest.raises(DataError, match="lacks root_train"):
        load_features_run(bad)


def test_analysis_functions_hand_computed():
    scores = np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 2.0]])
    assert name_by_largest(scores).tolist() == [0, 1, -1], "a tie (no evidence) must stay undecided"
    assert name_by(scores, "strict").tolist() == [0, 1, -1]
    assert name_by(scores, "authors").tolist() == [0, 1, 0], "authors' convention: a tie goes to class 0"
    assert decided(np.array([1, -1, 0]), "authors").tolist() == [1, 0, 0]
    assert decided(np.array([1, -1, 0]), "strict").tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match="convention"):
        name_by(scores, "lenient")
    t = np.array([[4.0, 2.0], [np.inf, np.inf], [3.0, 3.0]])
    assert name_by_first_crossing(t, np.array([[9.0, 1.0], [1.0, 2.0], [1.0, 5.0]])).tolist() == [1, -1, 1]
    assert accuracy(np.array([1, -1, 1]), np.array([1, 0, 0])) == pytest.approx(1 / 3)
    heard = np.array([True, False, True])  # the silent image is left out
    assert accuracy_on(np.array([1, -1, 1]), np.array([1, 0, 1]), heard) == 1.0
    assert np.isnan(accuracy_on(np.array([1, -1, 1]), np.array([1, 0, 1]), np.zeros(3, dtype=bool)))
    np.testing.assert_allclose(fraction_per_class(~heard, np.array([0, 0, 1]), 3), [0.5, 0.0, np.nan])
    x, f = ecdf([0.9, 0.5, 0.7, 0.7])
    assert x.tolist() == [0.5, 0.7, 0.7, 0.9] and f.tolist() == [0.25, 0.5, 0.75, 1.0]
    s = summary([0.5, 0.7, 0.9])
    assert (s["mean"], s["median"], s["best"], s["worst"]) == pytest.approx((0.7, 0.7, 0.9, 0.5))
    c = paired_comparison([0.9, 0.5, 0.7], [0.8, 0.6, 0.7])
    assert (c["a_wins"], c["ties"], c["b_wins"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    M = recall_matrix([np.array([1.0, 2, 3]), np.array([3.0, 2, 1])], [np.array([2.0, 4, 6]), np.array([1.0, 0, -1])])
    np.testing.assert_allclose(M, [[1, -1], [-1, 1]])
    with pytest.raises(ValueError):
        name_by_largest(np.zeros(3))


def test_backward_pass_through_one_conv_layer_is_a_transposed_correlation():
    """Activity sent back through a 'same' conv layer equals the convolution of the output map with the kernel."""
    from scipy.signal import convolve2d

    from b2models.models.sdnn import ConvSpec

    rng = np.random.default_rng(0)
    spec = ConvSpec(maps=1, size=3, threshold=1.0, winners=1, offset=1)
    ops = backward_operators((1, 6, 7), [spec])
    kernel = rng.random((1, 1, 3, 3))
    y = rng.random(42)
    x = recall_input_map(y, [kernel], ops)
    np.testing.assert_allclose(x.reshape(6, 7), convolve2d(y.reshape(6, 7), kernel[0, 0], mode="same"))
    # only synapses above the threshold carry the signal
    x_thr = recall_input_map(y, [kernel], ops, w_threshold=0.5)
    np.testing.assert_allclose(x_thr.reshape(6, 7),
                               convolve2d(y.reshape(6, 7), np.maximum(kernel[0, 0] - 0.5, 0), mode="same"))


@pytest.mark.slow
@pytest.mark.standalone
def test_quick_protocols_name_digits_above_chance(tmp_path, have_compiler):
    """--quick: digits features (learned once, then reused), many-shot naming clearly above chance; one-shot
    and few-shot sweeps and the recall map run on the same cached root layer."""
    from b2models.protocol import Context, protocols
    from b2models.results import RunWriter, StageCache

    reg = protocols()
    out = {}
    for name in ("recollection.naming", "recollection.oneshot", "recollection.fewshot", "recollection.recall",
                 "recollection.naming_cv", "recollection.fewshot_nested"):
        proto = reg[name]
        p = proto.quick(proto.params())
        if name == "recollection.naming":
            p.compare_rules = False  # the other rules are compared with the reference in the tests above
        if name == "recollection.oneshot":
            p.n_pairs = 20
        if name == "recollection.fewshot":
            p.shots, p.lams, p.draws = (5, 40), (1.0, 10.0), 2
        with RunWriter(name, out_root=tmp_path) as writer:
            ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer,
                          cache=StageCache(tmp_path / "cache"), show_progress=False)
            out[name] = (proto.run(ctx), writer.path)
    m, path = out["recollection.naming"]
    assert m["test_accuracy"] >= m["chance_level"] + 0.2, \
        f"naming test accuracy {m['test_accuracy']:.3f} is not clearly above chance {m['chance_level']:.3f}"
    assert (path / "figures" / "fig_score_difference.png").exists()
    assert "reusing the cached features" in (out["recollection.oneshot"][1] / "log.txt").read_text(), \
        "the one-shot sweep must reuse the cached root layer, not propagate the images again"
    assert m["test_accuracy_authors"] >= m["test_accuracy"], "silent images named class 0 can only add hits"
    m1 = out["recollection.oneshot"][0]
    assert m1["n_pairs"] == 20 and 0 <= m1["naming_worst"] <= m1["naming_median"] <= m1["naming_best"] <= 1
    assert m1["naming_authors_mean"] >= m1["naming_mean"] and 0 <= m1["naming_beats_svm_linear_pair"] <= 1
    assert 0.5 < m1["svm_linear_pair_best"] <= 1
    mn = out["recollection.fewshot_nested"][0]
    assert mn["shots"] == [4, 16, 28, 40] and len(mn["test_lam10"]) == 4 and len(mn["train_curve"]) == 4
    assert mn["at_nmax_lam1"] > 0.6, f"nested few-shot, 40 per class at λ = 1: {mn['at_nmax_lam1']:.3f}"
    mf = out["recollection.fewshot"][0]
    assert mf["acc_n40_lam10"][0] > 0.6, f"40 shots at λ = 10 should name digits well, got {mf['acc_n40_lam10']}"
    assert (out["recollection.recall"][1] / "figures" / "fig_recall.png").exists()
    # naming_cv: its chosen setting, run by recollection.naming, gives the same test accuracy
    mc, path = out["recollection.naming_cv"]
    assert mc["n_settings"] == 4 and (path / "figures" / "fig_cv.png").exists()
    assert mc["cv_accuracy"] >= mc["cv_accuracy_worst_setting"] and 0.5 < mc["svm_linear_cv_accuracy"] <= 1
    proto = reg["recollection.naming"]
    p = dataclasses.replace(proto.quick(proto.params()), compare_rules=False, root_winners=mc["best_root_winners"],
                            lam=mc["best_lam"], retro_norm=mc["best_retro_norm"])
    with RunWriter("recollection.naming", out_root=tmp_path) as writer:
        ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer,
                      cache=StageCache(tmp_path / "cache"), show_progress=False)
        assert proto.run(ctx)["test_accuracy"] == pytest.approx(mc["test_accuracy"], abs=1e-12)

    # root_threshold: the conv3 pattern extracted again from the learned kernels; at the features' own conv3
    # threshold the extraction reproduces the recorded pattern, at another it differs and is cached
    from b2models.protocols.recollection_common import _extract_root, feature_params, root_layer
    from b2models.protocols.recollection_features import resolved

    proto = reg["recollection.naming"]
    p = proto.quick(proto.params())
    with RunWriter("recollection.naming", out_root=tmp_path) as writer:
        ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer,
                      cache=StageCache(tmp_path / "cache"), show_progress=False)
        base = root_layer(ctx, p)
        fp = resolved(feature_params(p))
        again = _extract_root(ctx, fp, True, [base[f"kernel{c + 1}"] for c in range(3)], fp.conv3_threshold)
        assert np.array_equal(again["root_train"], base["root_train"])
        assert np.array_equal(again["root_test"], base["root_test"])
        p.root_threshold = 2 * fp.conv3_threshold
        high = root_layer(ctx, p)
        assert not np.array_equal(high["root_test"], base["root_test"])
        assert np.array_equal(high["labels_test"], base["labels_test"])
        high2 = root_layer(ctx, p)
        assert np.array_equal(high2["root_test"], high["root_test"])
        # kernels from a file: the same SDNN with the same kernels gives the same features and root layer
        from b2models.models.sdnn import save_kernels

        save_kernels(tmp_path / "kernels.npz", [base[f"kernel{c + 1}"] for c in range(3)])
        q = dataclasses.replace(proto.quick(proto.params()), kernels_file=str(tmp_path / "kernels.npz"))
        again = root_layer(ctx, q)
        for key in ("root_train", "root_test", "features_train", "features_test", "labels_test"):
            np.testing.assert_array_equal(again[key], base[key], err_msg=f"kernels_file: {key}")
        # the authors' naming pass: crossing slots within the window, latency-weighted root events
        q = dataclasses.replace(proto.quick(proto.params()), root_layer="authors", naming_conv1_threshold=7.0,
                                naming_conv2_threshold=6.0, root_threshold=4.0)
        au = root_layer(ctx, q)
        crossed = au["root_test"] >= 0
        assert au["n_root_steps"] == 15 and au["root_test"].max() < 15 and 0.01 < crossed.mean() < 0.99
        assert np.all(au["potential_test"][crossed] >= 4.0 - 1e-9)
        assert np.mean(np.any(crossed, axis=1)) > 0.8, "most test images must reach the root threshold"
    log = (writer.path / "log.txt").read_text()
    assert "extracting the root layer with conv3 threshold" in log and "reusing the cached root layer" in log
    assert "naming pass: conv1 threshold 7" in log

    # naming on the authors' root layer (latency-weighted events), with the authors_code rule and with the
    # potential-weighted vote: the protocol's learned weights and test scores equal the NumPy reference
    for extra in ({"rule": "authors_code"}, {"vote": "potential"}):
        p = dataclasses.replace(proto.quick(proto.params()), compare_rules=False, root_layer="authors",
                                naming_conv1_threshold=7.0, naming_conv2_threshold=6.0, root_threshold=4.0,
                                **extra)
        with RunWriter("recollection.naming", out_root=tmp_path) as writer:
            ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer,
                          cache=StageCache(tmp_path / "cache"), show_progress=False)
            ma = proto.run(ctx)
        z = np.load(writer.path / "arrays.npz")
        idx, steps = z["train_index"], au["n_root_steps"]
        w = reference_learning(au["root_train"][idx], au["labels_train"][idx], p.lam, z["initial_weights"], [0, 1],
                               rule=p.rule, root_events="every_step", n_root_steps=steps)
        np.testing.assert_allclose(z["weights"], w, atol=1e-9, err_msg=f"authors' root layer, {extra}")
        pot = au["potential_test"] if p.vote == "potential" else None
        np.testing.assert_allclose(z["scores_test"], reference_retro(au["root_test"], w, root_events="every_step",
                                                                     n_root_steps=steps, potential=pot),
                                   rtol=1e-9, atol=1e-9, err_msg=f"authors' root layer, {extra}")
        assert ma["test_accuracy_authors"] >= ma["test_accuracy"]


def test_root_threshold_errors(tmp_path):
    from b2models.data import DataError
    from b2models.protocols.recollection_common import RecollectionRunParams, features_run_params

    with pytest.raises(ValueError, match="root_threshold"):
        RecollectionRunParams(root_threshold=-1.0).validate()
    with pytest.raises(DataError, match="features_run=.*config.json"):
        features_run_params(tmp_path)
    (tmp_path / "config.json").write_text('{"params": {"conv3_threshold": 3.0, "cpu_schedule": true}, "quick": false}')
    fp, quick = features_run_params(tmp_path)
    assert fp.conv3_threshold == 3.0 and fp.readout_conv2_threshold == 50.0 and not quick


def test_root_winners_keep_the_earliest_spikes():
    from b2models.protocols.recollection_common import RecollectionRunParams

    root = np.array([[3, -1, 0, 5, 1, 2],  # distinct steps: the 3 earliest are neurons 2, 4, 5
                     [-1, -1, -1, -1, -1, -1],  # silent stays silent
                     [1, 1, 1, 1, -1, 0]])  # a tie at step 1: neuron 5 plus 2 of the 4 tied neurons
    out = first_root_spikes(root, 3, seed=0)
    assert out.shape == root.shape and np.all((out == root) | (out == -1))
    assert np.array_equal(out[0], [-1, -1, 0, -1, 1, 2])
    assert np.all(out[1] == -1)
    assert out[2, 5] == 0 and np.sum(out[2] >= 0) == 3 and np.sum(out[2, :4] == 1) == 2
    assert np.array_equal(out, first_root_spikes(root, 3, seed=0))  # the tie break is seeded
    assert np.array_equal(first_root_spikes(root, 0), root)  # 0: every spike
    assert np.array_equal(first_root_spikes(root, 10), root)  # more winners than spikes: every spike
    with pytest.raises(ValueError, match="root_winners"):
        first_root_spikes(root, -1)
    with pytest.raises(ValueError, match="root_winners"):
        RecollectionRunParams(root_winners=-2).validate()
    with pytest.raises(ValueError, match="root_winners"):
        RecollectionRunParams(root_winners=2.5).validate()


def test_naming_cv_equals_the_rule_fold_by_fold_numpy():
    """Each fold's held-out accuracy equals the NumPy rule learned on the other folds (root_winners and
    retro_norm applied as in the network); folds have equal sizes; ties go to the first setting."""
    from b2models.protocols.recollection_cv import NamingCVParams, best_setting, cv_folds, cv_naming

    rng = np.random.default_rng(3)  # overlapping classes, so that accuracies differ between folds and settings
    y = np.arange(29) % 2
    prob = rng.uniform(0.1, 0.7, (2, 24))
    root = np.where(rng.random((29, 24)) < prob[y], rng.integers(0, 4, (29, 24)), -1)
    folds = cv_folds(len(y), 3, np.random.default_rng(0))
    assert sorted(np.bincount(folds)) == [9, 10, 10]
    p = RecollectionParams()
    settings = [(0.0, 0, 40.0, False), (0.0, 3, 5.0, True)]
    both = cv_naming({0.0: root}, y, folds, settings, p, "numpy", {0.0: 4}, [7])
    acc = both["strict"]
    assert acc.shape == (2, 3) and both["authors"].shape == (2, 3)
    for i, (_, k, lam, norm) in enumerate(settings):
        r = first_root_spikes(root, k)
        for f in range(3):
            learn = folds != f
            w0 = initial_weights(2, root.shape[1], p, [7, 19, f])
            w = reference_learning(r[learn], y[learn], lam, w0, [0, 1])
            scores = reference_retro(r[~learn], w, norm=norm)
            want = accuracy(name_by_largest(scores), y[~learn])
            assert acc[i, f] == pytest.approx(want, abs=1e-12), f"setting {settings[i]}, fold {f}"
            want = accuracy(name_by(scores, "authors"), y[~learn])
            assert both["authors"][i, f] == pytest.approx(want, abs=1e-12), f"authors: {settings[i]}, fold {f}"
    assert len(np.unique(acc)) > 2 and acc.min() < 1.0, "the toy must not be trivially separable"
    assert best_setting([[0.5, 0.7], [0.6, 0.6], [0.4, 0.4]]) == 0
    with pytest.raises(ValueError, match="cv_folds=3"):
        cv_folds(2, 3, np.random.default_rng(0))
    for bad, match in (({"cv_folds": 1}, "cv_folds"), ({"cv_winners": (4, -1)}, "cv_winners"),
                       ({"cv_lams": ()}, "cv_lams"), ({"cv_thresholds": (-1.0,)}, "cv_thresholds"),
                       ({"cv_convention": "lenient"}, "convention"), ({"root_layer": "x"}, "root_layer"),
                       ({"vote": "potential"}, "root_layer='authors'"), ({"pool2_multi_spike": 1}, "multi_spike")):
        with pytest.raises(ValueError, match=match):
            NamingCVParams(**bad).validate()
