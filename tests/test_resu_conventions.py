"""Conventions of the ReSU comparisons, fixed before any comparison with data, on synthetic filters and stimuli
(analysis/cca.py, analysis/direction.py, protocols/resu_t4.py, protocols/resu_compare.py), and the authors'
layer 2 (``layer2=authors``)."""

import dataclasses

import numpy as np
import pytest

from b2models.analysis import cca, direction
from b2models.params import ParameterError, apply_overrides
from b2models.protocols import resu_compare as rc
from b2models.protocols import resu_scenes as scenes
from b2models.protocols import resu_t4 as t4

M = 12


def _layer1(m=M):
    """Synthetic light-positive layer-1 filters: ψ1 an exponential low-pass (L3-like), ψ2 a difference of
    exponentials with zero-ish sum (L1/L2-like smoothed derivative, positive at lag 0)."""
    k = np.arange(m)
    psi1 = np.exp(-k / 3.0)
    psi2 = np.exp(-k / 2.0) - 0.5 * np.exp(-k / 4.0)
    return np.stack([psi1, psi2])


def _params(**kw):
    return dataclasses.replace(t4.T4Params(), m=M, h=M, **kw)


# ---------------------------------------------------------------------------------------------
# layer 1: ψ positive for a light increment
# ---------------------------------------------------------------------------------------------
def test_layer1_filters_are_light_positive_whatever_sign_they_come_with():
    F = _layer1()
    for G in (F, -F, F * np.array([[1.0], [-1.0]])):
        np.testing.assert_array_equal(cca.orient_light_positive(G, M), F)
    np.testing.assert_array_equal(cca.orient_light_positive(-F[1], M), F[1])  # one filter
    step = np.r_[np.zeros(20), np.ones(20)]  # a light increment at sample 20
    for f in cca.orient_light_positive(-F, M):
        assert cca.apply_filter(step, f)[20] > 0, "a light-positive filter answers a light step positively"
    with pytest.raises(ValueError, match="channels"):
        cca.orient_light_positive(F, M + 1)


# ---------------------------------------------------------------------------------------------
# layer 2: the ON-edge sign rule
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_on_edge_rule_makes_the_trained_direction_on_edge_response_positive(seed):
    p = _params(m2=3)
    psi1 = _layer1()
    psi2 = np.random.default_rng(seed).standard_normal(6 * p.m2)
    a, flip_a = t4.orient_layer2(psi1, psi2, p)
    b, flip_b = t4.orient_layer2(psi1, -psi2, p)
    np.testing.assert_array_equal(a, b)  # a filter and its negation give the same oriented filter
    assert flip_a != flip_b
    assert t4.on_edge_response(psi1, a, p, 1.0) > 0


def test_on_edge_rule_uses_the_trained_direction_not_the_reverse():
    """L3 of the leading pixel minus L3 of the trailing pixel: a transient whose sign follows the direction
    (positive when a is reached first).  Given with the wrong sign, the rule must flip it; its response to
    the reverse-direction edge is then negative."""
    p = _params(m2=1)
    psi1 = _layer1()
    wrong = np.zeros(6)
    wrong[3], wrong[5] = -1.0, 1.0  # channels: Mi1/Tm3 a, b, c, L3 a, b, c (light-referred)
    oriented, flipped = t4.orient_layer2(psi1, wrong, p)
    assert flipped and oriented[3] == 1.0 and oriented[5] == -1.0
    assert t4.on_edge_response(psi1, oriented, p, 1.0) > 0 > t4.on_edge_response(psi1, oriented, p, -1.0)


def test_on_edge_response_is_what_the_linear_unit_computes():
    p = _params(m2=2)
    psi1 = _layer1()
    psi2 = np.random.default_rng(7).standard_normal(12)
    stim, stop = t4.on_edge_stimulus(p, 1.0)
    assert stim[0].max() < 1e-9 and stim[-1].min() > 0.99 and stop <= len(stim)
    v = t4.layer2_linear_response(stim, psi1, psi2, p.m2)
    # against the numpy reference of the Brian2 network (models.resu; its delay line starts at stim[0] ≈ 1e-12)
    from b2models.models import resu

    u = resu.layer1_reference(stim, psi1)["u"]
    np.testing.assert_allclose(v, resu.layer2_reference(u, [[0, 1, 2]], psi2, p.m2)[:, 0], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# pixel roles and cell polarity
# ---------------------------------------------------------------------------------------------
def test_pixel_roles_follow_the_motion_not_the_array():
    p = _params()
    assert t4.pixel_roles(p).tolist() == [0, 1, 2]  # trained direction: a → b → c
    assert t4.pixel_roles(_params(velocity_deg_s=-30.0)).tolist() == [2, 1, 0]  # scenes trained moving c → a
    mirrored, _ = t4.on_edge_stimulus(p, -1.0)
    order = direction.arrival_order(mirrored)
    assert order.tolist() == [2, 1, 0]
    w = np.array([1.0, 2.0, 3.0])  # per pixel a, b, c
    assert direction.by_role(w, order).tolist() == [3.0, 2.0, 1.0]  # leading pixel (Mi9 side) first
    assert direction.by_role(w, [0, 1, 2], mirror=True).tolist() == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="permutation"):
        direction.by_role(w, [0, 0, 1])
    with pytest.raises(ValueError, match="same sample"):
        direction.arrival_order(np.repeat(np.r_[0.0, 1.0, 1.0][:, None], 3, axis=1))
    with pytest.raises(ValueError, match="never change"):
        direction.arrival_times(np.zeros((5, 2)))


def test_training_scans_reach_pixel_a_first():
    """The scenes of layer-2 training (speed_sign=+1) move in the same direction as the +1 test stimuli: a
    bright region entering the view reaches pixel a first."""
    p = _params()
    img = np.where(np.arange(400) < 150, 1.0, 0.2)[None, :].repeat(4, axis=0)
    d = p.spacing_deg / scenes.PANORAMA_DEG_PER_PX
    X3 = scenes.scene_trajectories([img], False, scenes.PANORAMA_DEG_PER_PX, p, offsets=(0.0, d, 2 * d),
                                   speed_sign=1.0)
    assert direction.arrival_order(X3[0]).tolist() == [0, 1, 2]
    X3r = scenes.scene_trajectories([img[:, ::-1]], False, scenes.PANORAMA_DEG_PER_PX, p,
                                    offsets=(0.0, d, 2 * d), speed_sign=-1.0)
    assert direction.arrival_order(X3r[0]).tolist() == [2, 1, 0]


def test_cell_polarity_weights_negate_the_mi9_channels_only():
    psi2 = np.arange(1.0, 13.0)
    W = t4.cell_polarity_weights(psi2, 2)
    np.testing.assert_array_equal(W[:3], psi2.reshape(6, 2)[:3])
    np.testing.assert_array_equal(W[3:], -psi2.reshape(6, 2)[3:])
    y = np.random.default_rng(0).standard_normal((6, 2))  # light-referred channel values
    assert np.sum(W * (t4.LAYER2_POLARITY[:, None] * y)) == pytest.approx(np.sum(psi2.reshape(6, 2) * y))


def test_connectome_comparison_by_role_in_cell_polarity_with_both_mirrors():
    """Model weights placed so that their cell-polarity DC gains, in role order, equal the targets give
    r = 1; the negated filter gives r = −1 (the comparison never flips a sign); the mirror image is the
    reversed profile; the Mi9 polarity turns the light-referred L3 gains around."""
    m2 = 2
    p = rc.CompareParams(m2=m2)
    target = {"L1": np.array([0.5, 2.0, 0.3]), "L3": np.array([-0.4, 0.1, -1.0])}
    K = np.zeros((6, m2))
    K[:3, 0] = target["L1"]  # Mi1/Tm3 channels, polarity +1
    K[3:, 1] = -target["L3"]  # Mi9 channels: light-referred gain = −(cell-polarity weight)
    out = rc.connectome_comparison(p, K.ravel(), target, flyvis=target, roles=[0, 1, 2])
    for src in ("paper", "flyvis"):
        for path in ("L1", "L3"):
            assert out[f"r_{src}_{path}"] == pytest.approx(1.0)
            assert out[f"dist_{src}_{path}"] == pytest.approx(0.0)
            np.testing.assert_allclose(out[f"model_{path}_by_role_mirror"], target[path][::-1])
            np.testing.assert_allclose(out[f"norm_model_{path}"], target[path] / np.abs(target[path]).sum())
    neg = rc.connectome_comparison(p, -K.ravel(), target, roles=[0, 1, 2])
    assert neg["r_paper_L1"] == pytest.approx(-1.0) and neg["r_paper_L3"] == pytest.approx(-1.0)
    assert neg["dist_paper_L1"] == pytest.approx(2.0)
    assert "r_flyvis_L1" not in neg
    # the same weights on a unit whose leading pixel is c: the profile by role is reversed
    rev = rc.connectome_comparison(p, K.ravel(), target, roles=[2, 1, 0])
    np.testing.assert_allclose(rev["model_L1_by_role"], target["L1"][::-1])
    assert rev["r_paper_L1_mirror"] == pytest.approx(1.0)
    # default roles: from the trained-direction stimulus (a leads)
    assert rc.connectome_comparison(p, K.ravel(), target)["pixel_roles"].tolist() == [0, 1, 2]


def test_flash_traces_are_in_the_dark_positive_polarity_of_calcium_dff():
    u = np.array([-2.0, 1.0, 3.0])  # light-positive ψ2 projection
    assert rc.RECORDING_POLARITY == -1.0
    np.testing.assert_allclose(rc.model_flash_trace(u, "linear", "L1"), [2, -1, -3])
    np.testing.assert_allclose(rc.model_flash_trace(u, "rectified", "L1"), [0, -1, -3])  # −z⁺
    np.testing.assert_allclose(rc.model_flash_trace(u, "rectified", "L2"), [2, 0, 0])  # z⁻
    with pytest.raises(ValueError, match="unknown"):
        rc.model_flash_trace(u, "rectified", "L3")


# ---------------------------------------------------------------------------------------------
# layer2=authors
# ---------------------------------------------------------------------------------------------
def test_layer2_variants_are_validated():
    s = t4.resolve_layer2(t4.T4Params())
    assert (s.layer2, s.component, s.m2, s.h2) == ("suite", 0, 10, 10) and t4.layer2_centered(s)
    a = t4.resolve_layer2(dataclasses.replace(t4.T4Params(), layer2="authors"))
    assert (a.component, a.m2, a.h2) == (1, 1, 5) and not t4.layer2_centered(a)
    with pytest.raises(ParameterError, match="layer2 must be one of suite, authors"):
        apply_overrides(t4.T4Params(), {"layer2": "paper"})
    with pytest.raises(ParameterError, match="layer2=authors fixes"):
        apply_overrides(rc.CompareParams(), {"layer2": "authors", "m2": "3"})
    assert apply_overrides(rc.CompareParams(), {"layer2": "authors"}).layer2 == "authors"
    from b2models.protocols import resu_t4ab

    with pytest.raises(ParameterError, match="supports only layer2=suite"):
        apply_overrides(resu_t4ab.default_params(), {"layer2": "authors"})


def _moments(ch, m, h, center):
    P, F = map(np.concatenate, zip(*(cca.lag_vectors(x, m, h) for x in ch)))
    if center:
        P, F = P - P.mean(axis=0), F - F.mean(axis=0)
    n = len(P) - 1 if center else len(P)
    return P.T @ P / n, F.T @ F / n, F.T @ P / n


def test_authors_layer2_uses_uncentred_moments_component_1_six_weights_no_lags():
    rng = np.random.default_rng(3)
    T, n = 400, 3
    x = rng.standard_normal((n, T + 5))
    ch = np.stack([x[:, 5 - k:T + 5 - k] for k in range(6)], axis=-1)  # channels: delayed copies (predictable)
    ch = ch + 0.3 * rng.standard_normal(ch.shape) + np.array([2.0, 1.0, 0.5, -1.0, 0.3, 1.5])  # non-zero means
    a = t4.resolve_layer2(dataclasses.replace(_params(), layer2="authors"))
    psi1 = _layer1()
    psi2, res, _ = t4.layer2_filter(ch, psi1, a)
    assert psi2.shape == (6,) and res.m == 1 and res.h == 5  # 6 weights, no lags, 5-sample horizon
    expected = cca.cca_from_covariances(*_moments(ch, 1, 5, center=False), 1, 5, rank=4, reg=a.reg)
    np.testing.assert_allclose(res.past_filters, expected.past_filters, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.abs(psi2), np.abs(expected.past_filters[1]), rtol=1e-6)  # component 1
    assert t4.on_edge_response(psi1, psi2, a) > 0
    # the centred moments of the same data give other canonical directions (the mean is not removed above)
    centred = cca.cca_from_covariances(*_moments(ch, 1, 5, center=True), 1, 5, rank=4, reg=a.reg)
    cos = abs(centred.past_filters[1] @ expected.past_filters[1]) / np.linalg.norm(centred.past_filters[1]) \
        / np.linalg.norm(expected.past_filters[1])
    assert cos < 0.99, f"uncentred and centred layer 2 should differ on data with a non-zero mean (cos {cos:.4f})"
    # uncentred second moments = centred covariance × (n−1)/n + mean meanᵀ
    Cu, Cc = _moments(ch, 1, 5, False)[0], _moments(ch, 1, 5, True)[0]
    N = n * (T - 5)
    mu = np.concatenate([cca.lag_vectors(c, 1, 5)[0] for c in ch]).mean(axis=0)
    np.testing.assert_allclose(Cu, Cc * (N - 1) / N + np.outer(mu, mu), atol=1e-10)
    np.testing.assert_allclose(cca.lag_covariances(ch, 1, 5, center=False)[0], Cu, atol=1e-10)
    # the suite's variant (same sizes) centres
    s = dataclasses.replace(a, layer2="suite")
    np.testing.assert_allclose(np.abs(t4.layer2_filter(ch, psi1, s)[0]), np.abs(centred.past_filters[1]), rtol=1e-6)


def test_authors_layer2_trains_and_runs_in_brian2_without_lags():
    """layer2=authors end to end on two small scenes: a 6-weight filter, positive to the trained-direction ON
    edge, and a Brian2 network with one layer-2 tap computing the numpy reference."""
    from brian2 import ms

    from b2models.backend import Session
    from b2models.models import resu

    p = dataclasses.replace(t4.quick_params(t4.T4Params()), skimage_images=("camera", "grass"), row_step=8,
                            layer2="authors")
    f = t4.train_filters(p, quick=True, rng=np.random.default_rng(0), log=lambda m: None)
    assert f["psi2"].shape == (6,) and f["layer2"] == "authors" and f["on_edge_response"] > 0
    a = t4.resolve_layer2(p)
    stim = np.concatenate([t4.on_edge_stimulus(a, d)[0][:150] for d in (1.0, -1.0)], axis=1)
    rp = resu.ReSUParams(dt=a.dt_ms * ms, m1=a.m, m2=a.m2)
    with Session("numpy", "resu_authors_test") as s:
        net = resu.ReSUNetwork(rp, s, 6, len(stim), f["psi1"], f["psi2"], [[0, 1, 2], [3, 4, 5]],
                               monitor_layer1=False)
        v = net.run(stim, theta2=0.0)["v"]
    ref = resu.layer2_reference(resu.layer1_reference(stim, f["psi1"])["u"], [[0, 1, 2], [3, 4, 5]], f["psi2"], 1)
    np.testing.assert_allclose(v, ref, atol=1e-9)
    stop = t4.on_edge_stimulus(a, 1.0)[1]
    assert stop <= 150
    pd = v[:stop, 0]  # the trained-direction ON edge, as the Brian2 unit sees it
    assert pd[np.argmax(np.abs(pd))] == pytest.approx(f["on_edge_response"], rel=1e-6)
