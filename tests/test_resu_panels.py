"""The remaining ReSU panels at toy scale: edge DSI over the passage window (resu.t4), the Fig 5C input
decomposition, the oscillating multivariate OU process against the Kalman filter (resu.mou, Fig 2B),
re-adaptation of the online ReSU after an SNR switch (resu.switch, Fig S2) and the ganglion-cell analogue
(resu.ganglion, Fig 3D)."""

import dataclasses

import numpy as np
import pytest

from b2models.analysis import cca, direction
from b2models.models import resu_online as ro
from b2models.protocols import resu_ganglion as rg
from b2models.protocols import resu_mou as mou
from b2models.protocols import resu_switch as sw
from b2models.protocols import resu_t4 as t4


# ---------------------------------------------------------------------------------------------
# edges: the passage window
# ---------------------------------------------------------------------------------------------
def test_passage_window_of_a_sharp_edge_by_hand():
    xs = np.array([0.0, 5.0, 10.0])
    # sharp edge starting at x0 = −1° moving at 100 °/s, 10 ms samples: 1° per sample; pixel x reached when
    # the edge has passed it, i.e. at sample x + 2 (d = x0 + t − x > 0)
    s = direction.moving_pattern("on_edge", xs, 40, 0.01, 100.0, blur_fwhm_deg=0.0, x0_deg=-1.0)
    np.testing.assert_array_equal(direction.arrival_times(s), [2, 7, 12])
    assert direction.passage_window(s, memory=5) == (2, 12 + 5 + 1)
    assert direction.passage_window(s, memory=100) == (2, 40)  # clipped to the trial
    with pytest.raises(ValueError, match="memory"):
        direction.passage_window(s, memory=-1)
    with pytest.raises(ValueError, match="onset"):
        direction.passage_window(s, memory=3, onset=0.7)


def test_passage_dsi_sees_a_transient_that_the_whole_trial_mean_dilutes():
    """A unit that, after any edge has passed, sits at one plateau whatever the direction, and answers the
    preferred direction with a transient during the passage: the passage-window DSI must be large and
    larger than the whole-trial DSI."""
    p = dataclasses.replace(t4.T4Params(), m=12, m2=4, speeds_deg_s=(30.0,), test_steps=300)
    conds = [(k, 30.0, d) for k in ("on_edge", "off_edge") for d in (1, -1)]
    stim = t4.test_stimulus(p, conds, 1.0)
    win = t4.passage_windows(p, conds, stim)
    r = np.zeros((p.test_steps, len(conds)))
    for i, c in enumerate(conds):
        lo, hi = win[c]
        r[hi:, i] = 1.0  # the same plateau for both directions
        if c[2] == 1 and c[0] == "on_edge":
            r[lo:hi, i] = 2.0  # preferred ON edge: a transient during its passage
        else:
            r[lo:hi, i] = 0.2
    tab = t4.dsi_table(p, [("sine", 30.0, 1), ("sine", 30.0, -1), ("square", 30.0, 1), ("square", 30.0, -1)]
                       + conds, np.c_[np.ones((p.test_steps, 4)), r], discard=20,
                       stim=np.c_[t4.test_stimulus(p, [("sine", 30.0, 1), ("sine", 30.0, -1), ("square", 30.0, 1),
                                                      ("square", 30.0, -1)], 1.0), stim])
    on_pass, on_trial = tab["on_edge_passage"]["dsi"][0], tab["on_edge"]["dsi"][0]
    assert on_pass == pytest.approx((2.0 - 0.2) / 2.2), "passage DSI should compare the transients only"
    assert on_trial < on_pass - 0.2, f"whole-trial DSI {on_trial:.3f} should be diluted by the plateau"
    assert tab["off_edge_passage"]["dsi"][0] == pytest.approx(0.0)


def test_input_decomposition_adds_up_to_the_linear_response():
    rng = np.random.default_rng(0)
    k = np.arange(12)
    psi1 = np.stack([np.exp(-k / 3.0), np.exp(-k / 2.0) - 0.5 * np.exp(-k / 4.0)])
    psi2 = rng.standard_normal(6 * 4)
    stim = rng.standard_normal((80, 3))
    parts = t4.input_decomposition(stim, psi1, psi2, 4)
    np.testing.assert_allclose(parts.sum(axis=1), t4.layer2_linear_response(stim, psi1, psi2, 4), atol=1e-12)
    p = dataclasses.replace(t4.T4Params(), m=12, m2=4)
    stims = {1: stim, -1: stim[:, ::-1]}
    dec = t4.pathway_decomposition(p, psi1, psi2, stims, {1: (10, 80), -1: (10, 80)})
    for d in ("pref", "null"):
        assert dec[d]["L1"] + dec[d]["L3"] == pytest.approx(dec[d]["v"])
    assert dec["share_L1"] + dec["share_L3"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Fig 2B: oscillating multivariate OU
# ---------------------------------------------------------------------------------------------
def _mou(**kw):
    return dataclasses.replace(mou.MOUParams(), m=12, h=12, **kw)


def test_mou_samples_have_the_lagged_covariance_a_R():
    p = _mou()
    x = mou.sample(p, 60_000, 2, rng=3).reshape(-1, 2)
    np.testing.assert_allclose(x.var(axis=0), [1.0, 1.0], atol=0.05)
    y = mou.sample(p, 60_000, 1, rng=4)[0]
    G1 = y[1:].T @ y[:-1] / (len(y) - 1)  # cov(x_{t+1}, x_t)
    np.testing.assert_allclose(G1, mou.transition(p), atol=0.03)


@pytest.mark.parametrize("noise_var", [0.0, 0.3, 3.0])
def test_mou_analytic_cca_is_the_kalman_filter_and_has_rank_two(noise_var):
    p = _mou()
    an = cca.cca_from_covariances(*mou.analytic_covariances(p, noise_var), p.m, p.h, rank=3,
                                  reg=1e-10 if noise_var else 0.0)
    kal = mou.kalman_filters(p, noise_var)
    # < 1°: with m = 12 lags the finite-window optimum differs slightly from the truncated Kalman filter
    assert np.degrees(cca.principal_angles(an.past_filters[:2], kal)).max() < 1.0
    assert an.rho[2] < 1e-6, f"a 2-D Markov process has two canonical pairs, ρ = {an.rho}"
    assert an.rho[0] == pytest.approx(an.rho[1], abs=1e-8)  # rotational symmetry
    if noise_var > 0:
        assert mou.filter_period(kal[0], p.m) == pytest.approx(p.period, rel=1e-6)
    # the comparison can fail: a process rotating at another period has other filters
    other = mou.kalman_filters(dataclasses.replace(p, period=9.0), noise_var)
    if noise_var > 0:
        assert np.degrees(cca.principal_angles(an.past_filters[:2], other)).max() > 5


def test_mou_sampled_cca_filters_match_the_kalman_filter():
    p = _mou()
    x = mou.sample(p, 60_000, 1, rng=1)
    noise = np.random.default_rng(2).standard_normal(x.shape)
    for r in (0.3, 3.0):
        sa = cca.past_future_cca(list(x + np.sqrt(r) * noise), p.m, p.h, rank=3)
        cos = np.cos(cca.principal_angles(sa.past_filters[:2], mou.kalman_filters(p, r)).max())
        assert cos >= 0.99, f"sampled CCA vs Kalman at noise {r}: cos = {cos:.4f}"
        assert abs(mou.filter_period(sa.past_filters[0], p.m) - p.period) / p.period < 0.1


def test_mou_bad_parameters():
    for bad in (dict(period=2.0), dict(tau=0.0), dict(noise_vars=(-1.0,)), dict(m=1)):
        with pytest.raises(ValueError):
            dataclasses.replace(mou.MOUParams(), **bad).validate()


# ---------------------------------------------------------------------------------------------
# Fig S2: re-adaptation after an SNR switch (numpy reference of the Brian2 rule)
# ---------------------------------------------------------------------------------------------
def test_online_resu_readapts_after_an_snr_switch():
    p = dataclasses.replace(sw.quick_params(sw.SwitchParams()), noise_vars=(0.03, 1.0), segment_samples=5000)
    p.validate()
    y, r = sw.make_signal(p, np.random.default_rng(1))
    assert np.all(r[:5000] == 0.03) and np.all(r[5000:] == 1.0)
    optima = sw.optimal_filters(p)
    mp = p.model()
    out = ro.bio_cca_reference(y, mp, ro.initial_weights(mp, 1))
    res = sw.switch_analysis(out["wx_t"], out["t_samples"], optima, p)
    first, second = res["segments"]
    assert second["optima_angle_deg"] > 20, "the switch should move the optimal filter"
    assert first["angle_own_deg"] < 15, f"not converged before the switch: {first}"
    assert second["readapted"] and second["angle_own_deg"] < 15, f"no re-adaptation after the switch: {second}"
    assert second["samples_to_closer_to_new"] is not None and second["samples_to_closer_to_new"] < 4000


def test_switch_bad_parameters():
    with pytest.raises(ValueError, match="two segments"):
        dataclasses.replace(sw.SwitchParams(), noise_vars=(0.1,)).validate()
    with pytest.raises(ValueError, match="kernel"):
        dataclasses.replace(sw.SwitchParams(), kernel="nosuch").validate()


# ---------------------------------------------------------------------------------------------
# Fig 3D: ganglion-cell analogue
# ---------------------------------------------------------------------------------------------
def test_temporal_shape_by_hand():
    mono = rg.temporal_shape(np.exp(-np.arange(20) / 3.0))
    assert mono["biphasic_index"] == 0 and mono["bandpass_index"] == pytest.approx(0.0, abs=1e-12)
    assert mono["peak_lag"] == 0 and mono["first_lobe_lags"] == 7  # e^{−7/3} < 0.1 ≤ e^{−6/3}
    diff = rg.temporal_shape(np.array([1.0, -1.0, 0.0, 0.0]))
    assert diff["biphasic_index"] == 1 and diff["bandpass_index"] == pytest.approx(1.0)
    assert diff["centroid_lag"] == pytest.approx(0.5) and diff["first_lobe_lags"] == 1
    with pytest.raises(ValueError, match="zero"):
        rg.temporal_shape(np.zeros(5))


@pytest.mark.parametrize("kind", ["se", "rq"])
def test_leading_filter_turns_monophasic_and_low_pass_as_noise_rises(kind):
    p = rg.GanglionParams()
    shapes = [rg.temporal_shape(cca.analytic_cca(kind, p.m, p.h, p.length, noise_var=r, rank=1).past_filters[0])
              for r in (1e-4, 1e-1, 10.0)]
    bi = [s["biphasic_index"] for s in shapes]
    bp = [s["bandpass_index"] for s in shapes]
    assert bi[0] > 0.3 and bi[-1] < 0.1 and bi[0] > bi[1] > bi[2], bi
    assert bp[0] > 0.4 and bp[-1] < 0.05 and bp[0] > bp[1] > bp[2], bp
    assert shapes[-1]["first_lobe_lags"] > 2 * shapes[0]["first_lobe_lags"]


def test_ganglion_bad_parameters():
    with pytest.raises(ValueError, match="increasing"):
        dataclasses.replace(rg.GanglionParams(), noise_vars=(1.0, 0.1)).validate()
    with pytest.raises(ValueError, match="kernels"):
        dataclasses.replace(rg.GanglionParams(), kernels=("nosuch",)).validate()


# ---------------------------------------------------------------------------------------------
# the protocols at --quick scale
# ---------------------------------------------------------------------------------------------
def _run_quick(module, tmp_path):
    from b2models.protocol import Context, params_with_quick
    from b2models.results import RunWriter

    proto = module.PROTOCOL
    w = RunWriter(proto.name, out_root=tmp_path)
    with w:
        ctx = Context(params=params_with_quick(proto, True), seed=1, backend="numpy", quick=True, writer=w,
                      show_progress=False)
        metrics = proto.run(ctx)
    for fig in proto.figures:
        assert (w.path / "figures" / f"{fig}.png").exists(), fig
    return metrics


def test_protocol_mou_quick(tmp_path):
    m = _run_quick(mou, tmp_path)
    assert m["cos_max_angle_sampled_kalman"] > 0.99, m["angle_sampled_kalman_deg"]
    assert m["rho3_analytic_max"] < 1e-6 and m["max_angle_analytic_kalman_deg"] < 1.0


def test_protocol_ganglion_quick(tmp_path):
    m = _run_quick(rg, tmp_path)
    for kind in ("se", "rq"):
        bi = m[f"{kind}_biphasic_index_analytic"]
        assert bi[-1] < bi[0], f"{kind}: ψ₁ should turn monophasic as the noise rises, biphasic index {bi}"
        assert m[f"{kind}_first_lobe_lags_sampled"][-1] > m[f"{kind}_first_lobe_lags_sampled"][0]
