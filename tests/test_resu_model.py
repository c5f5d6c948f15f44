"""ReSU Brian2 network (models/resu.py), direction selectivity (analysis/direction.py) and protocols."""

import dataclasses

import numpy as np
import pytest
from brian2 import ms

from b2models.analysis import direction
from b2models.backend import Session
from b2models.models import resu
from b2models.protocol import Context
from b2models.results import RunWriter


def _small_net_run(backend, tmp_name, m2=4):
    rng = np.random.default_rng(0)
    p = resu.ReSUParams(m1=6, m2=m2, theta1=0.1, theta2=0.2)
    psi1, psi2 = rng.standard_normal((2, 6)), rng.standard_normal(6 * m2)
    T, P = 40, 6
    triples = [[0, 1, 2], [3, 4, 5], [2, 1, 0]]
    stim = rng.standard_normal((T, P))
    with Session(backend, tmp_name, key=(T, P, m2)) as s:
        net = resu.ReSUNetwork(p, s, P, T, psi1, psi2, triples)
        out = net.run(stim)
        out_neg = net.run(stim, psi2=-psi2, theta2=0.0)
    return stim, psi1, psi2, triples, out, out_neg


def _check_against_reference(stim, psi1, psi2, triples, out, out_neg):
    ref = resu.layer1_reference(stim, psi1, theta1=0.1)
    np.testing.assert_allclose(out["u"], ref["u"], atol=1e-10)
    v = resu.layer2_reference(ref["u"], triples, psi2, len(psi2) // 6, theta1=0.1)
    np.testing.assert_allclose(out["v"], v, atol=1e-10)
    np.testing.assert_allclose(out["r"], np.maximum(v - 0.2, 0), atol=1e-10)
    # filters and threshold replaced per run through run_args (shared kernel group)
    np.testing.assert_allclose(out_neg["v"], -v, atol=1e-10)
    np.testing.assert_allclose(out_neg["r"], np.maximum(-v, 0), atol=1e-10)


@pytest.mark.parametrize("m2", [4, 1])  # 1: no lags (the authors' layer 2), a register of one tap
def test_brian2_network_equals_numpy_reference(m2):
    _check_against_reference(*_small_net_run("numpy", "resu_test_np", m2))


@pytest.mark.standalone
@pytest.mark.slow
@pytest.mark.parametrize("m2", [4, 1])
def test_cpp_standalone_equals_numpy_reference(m2):
    _check_against_reference(*_small_net_run("cpp", f"resu_test_cpp_m{m2}", m2))


def test_network_rejects_bad_sizes():
    with Session("numpy", "resu_bad") as s, pytest.raises(ValueError, match="m1"):
        resu.ReSUNetwork(resu.ReSUParams(m1=5), s, 3, 10, np.zeros((2, 4)))
    with Session("numpy", "resu_bad2") as s:
        net = resu.ReSUNetwork(resu.ReSUParams(m1=4), s, 3, 10, np.ones((2, 4)))
        with pytest.raises(ValueError, match="stimulus"):
            net.run(np.zeros((10, 4)))
        with pytest.raises(ValueError, match="layer 2"):
            net.run(np.zeros((10, 3)), theta2=1.0)


def test_dsi_values_and_errors():
    assert direction.dsi(3.0, 1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(direction.dsi([1, 0, 2], [0, 1, 2]), [1, -1, 0])
    with pytest.raises(ValueError, match="non-negative"):
        direction.dsi(-1.0, 1.0)
    with pytest.raises(ValueError, match="undefined"):
        direction.dsi(0.0, 0.0)


def test_moving_pattern_travels_at_its_velocity():
    xs = np.array([0.0, 5.0])
    s = direction.moving_pattern("sine", xs, 200, 0.01, 50.0, wavelength_deg=40.0, blur_fwhm_deg=0)
    # pixel at 5° sees what the pixel at 0° saw 5/50 s = 10 samples earlier
    np.testing.assert_allclose(s[10:, 1], s[:-10, 0], atol=1e-3)
    e = direction.moving_pattern("on_edge", xs, 100, 0.01, 50.0, blur_fwhm_deg=2.0)
    assert e[0].max() < 0.01 and e[-1].min() > 0.99 and np.all(np.diff(e, axis=0) >= -1e-12)
    with pytest.raises(ValueError, match="stimulus"):
        direction.moving_pattern("plaid", xs, 10, 0.01, 1.0)


def test_grating_preferred_direction_gives_positive_dsi_reverse_negative():
    """Train on a little scene data moving a → b → c; a unit that sees the pixels mirrored (c, b, a) must
    prefer the other direction."""
    from b2models.protocols import resu_t4

    p = dataclasses.replace(resu_t4.quick_params(resu_t4.T4Params()), skimage_images=("camera", "grass"),
                            row_step=8, speeds_deg_s=(30.0,), test_steps=250)
    f = resu_t4.train_filters(p, quick=True, rng=np.random.default_rng(0), log=lambda m: None)
    conds = [("sine", 30.0, 1), ("sine", 30.0, -1)]
    stim = resu_t4.test_stimulus(p, conds, f["contrast_sd"])
    triples = [[0, 1, 2], [3, 4, 5], [2, 1, 0], [5, 4, 3]]  # normal and mirrored units
    rp = resu.ReSUParams(dt=p.dt_ms * ms, m1=p.m, m2=p.m2)
    with Session("numpy", "resu_dsi_test") as s:
        net = resu.ReSUNetwork(rp, s, 6, p.test_steps, f["psi1"], f["psi2"], triples, monitor_layer1=False)
        r = net.run(stim, theta2=0.0)["r"]
    R = direction.mean_response(r, p.test_steps - 200)  # two whole grating periods (1 s each)
    d_normal = direction.dsi(R[0], R[1])
    d_mirror = direction.dsi(R[2], R[3])
    assert d_normal > 0, f"preferred-direction grating should give DSI > 0, got {d_normal:.3f} (R={R})"
    assert d_mirror < 0, f"mirrored unit should prefer the reverse direction, got DSI {d_mirror:.3f}"
    assert d_mirror == pytest.approx(-d_normal, abs=0.005)  # mirror symmetry (up to sampling)


def _run_protocol(module, tmp_path, backend="numpy"):
    from b2models.protocol import params_with_quick

    proto = module.PROTOCOL
    w = RunWriter(proto.name, out_root=tmp_path)
    with w:
        ctx = Context(params=params_with_quick(proto, True), seed=1, backend=backend, quick=True, writer=w,
                      show_progress=False)
        metrics = proto.run(ctx)
    assert (w.path / "metrics.json").exists()
    for fig in proto.figures:
        assert (w.path / "figures" / f"{fig}.png").exists(), fig
    return metrics


def test_protocol_gp_quick(tmp_path):
    from b2models.protocols import resu_gp

    m = _run_protocol(resu_gp, tmp_path)
    assert m["ou_rho1_sampled_error"] < 0.01, "sampled OU ρ1 should equal exp(−dt/τ)"
    assert m["se_lobes_high_snr"] >= 3 and m["se_lobes_low_snr"] == 1, m["se_lobes_vs_noise"]
    assert m["rq_rho_max_abs_diff"] < 0.05


def test_protocol_scenes_quick(tmp_path):
    from b2models.protocols import resu_scenes

    m = _run_protocol(resu_scenes, tmp_path)
    assert m["psi1_lobes"] == 1, "ψ1 should be a one-lobed low-pass filter"
    assert m["psi2_lobes"] == 2 and m["psi2_dc_fraction"] < 0.3, "ψ2 should be a smoothed derivative"


@pytest.mark.slow
def test_protocol_t4_quick(tmp_path):
    from b2models.protocols import resu_t4

    m = _run_protocol(resu_t4, tmp_path)
    assert m["dsi_sine_at_training_speed_thresholded"] > 0.3, m["dsi_thresholded"]


def test_gated_pair_learning_converges_and_protocol_t4ab_runs(tmp_path):
    """resu.t4ab at toy scale: the output-gated two-unit learning settles (filter changes shrink; an
    earlier version without the damping jumped between near-degenerate directions forever) and both units
    are tested in the Brian2 network."""
    from b2models.protocols import resu_t4ab

    p = dataclasses.replace(resu_t4ab.PROTOCOL.quick(resu_t4ab.default_params()), skimage_images=("camera", "grass"),
                            row_step=8, speeds_deg_s=(30.0,), test_steps=250, gate_iters=8, gate_stride=8)
    w = RunWriter("resu.t4ab", out_root=tmp_path)
    with w:
        ctx = Context(params=p, seed=1, backend="numpy", quick=True, writer=w, show_progress=False)
        m = resu_t4ab.run(ctx)
    assert max(m["gate_final_change"]) < 1e-2, f"gated learning did not settle: last change {m['gate_final_change']}"
    assert len(m["dsi_sine_at_training_speed"]) == 2
    assert all(0.0 <= s <= 1.0 for s in m["share_of_learning_from_direction_plus"])
    assert (w.path / "figures" / "t4ab_dsi.png").exists()
