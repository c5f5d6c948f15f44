"""Online past–future CCA with local rules in Brian2 (models/resu_online.py, protocols/resu_online.py)."""

import dataclasses

import numpy as np
import pytest

from b2models.analysis import cca
from b2models.backend import Session
from b2models.models import resu_online as ro


def _signal(n, seed=0, ell=3.0, noise_var=0.1):
    rng = np.random.default_rng(seed)
    x = cca.sample_stationary(lambda lag: cca.kernel_autocovariance("se", lag, ell), n, 1, rng=rng)[0]
    return x + np.sqrt(noise_var) * rng.standard_normal(n)


def test_brian2_rules_equal_numpy_reference():
    """Every weight, the lateral matrix and the outputs of the Brian2 network equal the step-by-step formula."""
    p = ro.BioCCAParams(m=4, h=3, k=2, n_inner=3, record_every=40)
    x = _signal(200, seed=3)
    w0 = ro.initial_weights(p, seed=7)
    with Session("numpy", "biocca_test_eq") as s:
        out = ro.BioCCANetwork(p, s, len(x)).run(x, weights=w0)
    ref = ro.bio_cca_reference(x, p, w0)
    np.testing.assert_allclose(out["wx"], ref["wx"], atol=1e-12)
    np.testing.assert_allclose(out["wy"], ref["wy"], atol=1e-12)
    np.testing.assert_allclose(out["M"], ref["M"], atol=1e-12)
    np.testing.assert_allclose(out["z"], ref["z"][:-1], atol=1e-12)
    np.testing.assert_array_equal(out["t_samples"], ref["t_samples"])
    np.testing.assert_allclose(out["wx_t"], ref["wx_t"], atol=1e-12)
    assert np.abs(out["wx"] - w0["wx"]).max() > 1e-3, "the weights did not learn at all"


def test_one_step_weight_change_equals_formula():
    """Two samples: the only plastic update (at sample 1) is η(z − a)p, η(z − b)f, (η/τ)(zzᵀ − M)."""
    p = ro.BioCCAParams(m=2, h=2, k=1, n_inner=4, gamma=0.5, eta0=0.1, decay_samples=10.0, record_every=1)
    x = np.array([0.3, -1.0, 2.0, 0.5, 1.5, -0.7])
    w0 = {"wx": np.array([[0.2, -0.1]]), "wy": np.array([[0.05, 0.3]]), "M": np.array([[1.5]])}
    with Session("numpy", "biocca_test_formula") as s:
        out = ro.BioCCANetwork(p, s, len(x)).run(x, weights=w0)
    # by hand: sample 0, delay line holds x_0 everywhere (before t = 0: first sample)
    past, fut = np.array([x[0], x[0]]), np.array([x[0], x[0]])
    a, b = w0["wx"] @ past, w0["wy"] @ fut
    z = np.zeros(1)
    for _ in range(4):
        z = z + 0.5 * (a + b - 1.5 * z)
    eta = 0.1 / (1 + 1 / 10.0)
    np.testing.assert_allclose(out["wx_t"][1], w0["wx"] + eta * np.outer(z - a, past), atol=1e-12)
    assert out["z"][0, 0] == pytest.approx(z[0], abs=1e-12)


def test_online_filters_converge_to_offline_cca_short_run():
    """Brian2, 1500 samples of a GP: the learned subspace approaches the offline CCA filters."""
    p = ro.BioCCAParams(m=5, h=5, k=2, eta0=0.05, decay_samples=500.0, n_inner=4, gamma=0.5, record_every=100)
    x = _signal(1500, seed=1)
    offline = cca.past_future_cca(x, p.m, p.h, rank=2)
    with Session("numpy", "biocca_test_conv") as s:
        out = ro.BioCCANetwork(p, s, len(x)).run(x, weights=ro.initial_weights(p, seed=1))
    start = np.degrees(cca.principal_angles(out["wx_t"][0], offline.past_filters))
    end = np.degrees(cca.principal_angles(out["wx"], offline.past_filters))
    assert start.max() > 45, f"random start should be far from the CCA subspace, angles {start}"
    assert end.min() < 10 and end.max() < 30, (
        f"online filters should approach the offline CCA subspace: angles {start} → {end} degrees "
        "(check the rule signs, the learning rate and the past/future tap order)")


def test_reference_converges_on_a_longer_run():
    """Numpy reference (equal to the Brian2 network, tested above) on 6000 samples: both angles small."""
    p = ro.BioCCAParams(m=5, h=5, k=2, eta0=0.05, decay_samples=500.0, n_inner=8, gamma=0.35)
    x = _signal(6000, seed=2)
    offline = cca.past_future_cca(x, p.m, p.h, rank=2)
    ref = ro.bio_cca_reference(x, p, ro.initial_weights(p, seed=2), record=False)
    end = np.degrees(cca.principal_angles(ref["wx"], offline.past_filters))
    assert end.max() < 20, f"angles {end}"


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="exceeds"):
        ro.BioCCAParams(m=2, h=1, k=2).validate()
    with pytest.raises(ValueError, match="gamma"):
        ro.BioCCAParams(gamma=1.5).validate()
    p = ro.BioCCAParams(m=3, h=3, k=1)
    with Session("numpy", "biocca_test_bad") as s:
        net = ro.BioCCANetwork(p, s, 50)
        with pytest.raises(ValueError, match="signal"):
            net.run(np.zeros(49))
        with pytest.raises(ValueError, match="initial wx"):
            net.run(np.zeros(50), weights={"wx": np.zeros((2, 3)), "wy": np.zeros((1, 3)), "M": np.eye(1)})


@pytest.mark.slow
def test_protocol_online_quick(tmp_path):
    from b2models.protocol import Context, params_with_quick
    from b2models.protocols import resu_online
    from b2models.results import RunWriter

    proto = resu_online.PROTOCOL
    w = RunWriter(proto.name, out_root=tmp_path)
    with w:
        m = proto.run(Context(params=params_with_quick(proto, True), seed=1, backend="numpy", quick=True,
                              writer=w, show_progress=False))
    assert (w.path / "figures" / "online_convergence.png").exists()
    assert m["max_angle_initial_deg"] > 45
    assert m["max_angle_final_offline_deg"] < 20, m


def test_protocol_params_validate():
    from b2models.protocols import resu_online

    with pytest.raises(ValueError, match="kernel"):
        dataclasses.replace(resu_online.OnlineParams(), kernel="matern").validate()
