"""Robustness network (models.spikecoding_robust) and protocol spikecoding.fig7 at tiny scale (numpy)."""

import json

import numpy as np
import pytest
from brian2 import ms, second

from b2models.backend import Session
from b2models.models.spikecoding_robust import RobustNetwork, RobustParams


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("B2MODELS_CACHE", str(tmp_path / "cache"))


def _lateral_after(n_steps, delay_ms, tau_ms):
    """Cell 0 starts above threshold and fires at step 0; cell 1 gets Ω[1, 0] = −0.1 after the delay."""
    p = RobustParams(N=2, J=1, noise_per_step=0.0, threshold_jitter=0.0, delay=delay_ms * ms, epsc_tau=tau_ms * ms)
    with Session("numpy", "test_robust_delay") as s:
        net = RobustNetwork(p, s, n_steps, seed=0)
        net.F = np.zeros((1, 2))
        net.Omega = np.array([[-0.5, 0.0], [-0.1, -0.5]])
        net.V = np.array([0.6, 0.0])
        res = net.run_chunk(np.zeros((n_steps, 1)), np.zeros((n_steps, 1)), learning=False)
    assert list(res.spike_i) == [0] and list(res.spike_step) == [0], "expected one spike of cell 0 at step 0"
    # the reset acts at once: V_0 = 0.6 (1 − λdt) − 0.5, then decays
    assert net.V[0] < 0.1
    return net.V[1], net.I_rec[1]


@pytest.mark.parametrize("tau", [0.0, 2.0])
def test_lateral_input_arrives_after_the_delay_numpy(tau):
    v_early, i_early = _lateral_after(3, 3.0, tau)  # the spike is still in flight after 3 steps of 1 ms
    assert v_early == 0.0 and i_early == 0.0, "lateral input arrived before the 3 ms delay"
    v_late, i_late = _lateral_after(12, 3.0, tau)
    assert v_late < -0.03, f"V_1 = {v_late}: the delayed inhibition of −0.1 did not arrive"
    if tau:
        assert i_late < 0, "with a PSC the lateral input must flow as a decaying current"


def test_bad_robust_parameters_raise():
    with pytest.raises(ValueError, match="whole number"):
        RobustParams(delay=0.5 * ms).validate()
    with pytest.raises(ValueError, match="epsc_tau"):
        RobustParams(epsc_tau=0.5 * ms).validate()
    with pytest.raises(ValueError, match=">= 0"):
        RobustParams(noise_per_step=-1.0).validate()
    from b2models.protocols.spikecoding_fig7 import Fig7Params

    with pytest.raises(ValueError, match="comma-separated"):
        Fig7Params(network="single", sizes="5,ten").validate()
    with pytest.raises(ValueError, match="same length"):
        Fig7Params(network="single", delays="0,2", psc_taus="0").validate()
    with pytest.raises(ValueError, match="whole number of steps"):
        Fig7Params(network="single", delays="0,1.5", psc_taus="0,2").validate()
    with pytest.raises(ValueError, match="network"):
        Fig7Params(network="both").validate()
    with pytest.raises(ValueError, match="ei_removed"):
        Fig7Params(network="ei", ei_removed="0,1.0").validate()
    with pytest.raises(ValueError, match="delay"):
        Fig7Params(network="ei", ei_delays="0,0.05").validate()
    with pytest.raises(ValueError, match="ei_arbiter"):
        Fig7Params(network="ei", ei_arbiter="never").validate()


def test_removed_connections_cannot_include_resets():
    p = RobustParams(N=3)
    with Session("numpy", "test_robust_alive") as s:
        net = RobustNetwork(p, s, 10, seed=0)
        with pytest.raises(ValueError, match="self-connections"):
            net.set_alive(np.zeros((3, 3)))
        with pytest.raises(ValueError, match="3×3"):
            net.set_alive(np.ones((2, 2)))


def test_removed_connections_stay_zero_during_learning_numpy():
    p = RobustParams(N=6, eps_Omega=0.05, eps_F=0.01, init="authors_code")
    L = 400
    from b2models.data.signals import SmoothedNoise

    src = SmoothedNoise(p.J, 30, p.input_amplitude, 0.05, 0.001, seed=0)
    with Session("numpy", "test_robust_learn") as s:
        net = RobustNetwork(p, s, L, seed=2)
        alive = np.ones((6, 6))
        alive[0, 1:] = 0  # cell 0 receives no lateral input
        alive[3:, 2] = 0
        net.set_alive(alive)
        before = net.Omega.copy()
        c, x = src.next(L)
        res = net.run_chunk(c, x, learning=True, seed=1)
    assert len(res.spike_i) > 5, "too few spikes to exercise learning"
    assert np.all(net.Omega[alive == 0] == 0.0), "a removed connection changed during learning"
    assert not np.allclose(net.Omega[alive == 1], before[alive == 1]), "the present connections did not learn"


def test_fig7_noise_raises_error_numpy(tmp_path):
    """A tiny Fig 7 sweep on numpy: strong injected noise raises the coding error of the learned network."""
    from b2models.protocol import Context
    from b2models.protocols import spikecoding_fig7 as fig7
    from b2models.results import RunWriter

    p = fig7.Fig7Params(network="single", N=8, duration=0.5 * second, chunk=0.5 * second, test=0.5 * second,
                        discard=0.1 * second, n_seeds=1, panels="C", noise_levels="0.001,0.15", delays="0",
                        psc_taus="0", eps_scale=10.0)
    writer = RunWriter("spikecoding.fig7", out_root=tmp_path / "results")
    with writer:
        ctx = Context(params=p, seed=1, backend="numpy", quick=True, writer=writer, show_progress=False)
        m = fig7.run(ctx)
    quiet, noisy = m["C_error_d0ms_tau0ms_noise0.001"], m["C_error_d0ms_tau0ms_noise0.15"]
    assert noisy > 1.5 * quiet, f"coding error {quiet:.4f} without and {noisy:.4f} with strong noise: noise " \
                                "should degrade the code; check that noise_sd reaches the binary as a run argument"
    saved = json.loads((writer.path / "metrics.json").read_text())
    assert saved["C_error_ratio_max_noise_no_delay"] == pytest.approx(noisy / quiet)
    assert (writer.path / "figures" / "fig7CD_noise_delay.png").exists()


def test_poisson_reference_population_error_falls_with_size():
    """The equally-rated Poisson population of panel A: more cells at the same rate, lower error."""
    from b2models.data.signals import SmoothedNoise
    from b2models.protocols.spikecoding_fig7 import poisson_population_error

    src = SmoothedNoise(2, 30, 2000.0, 0.05, 0.001, seed=0)
    _, x_fit = src.next(20000)
    _, x_ev = src.next(20000)
    errs = []
    for N in (8, 64):
        ang = np.linspace(0, 2 * np.pi, N, endpoint=False)
        F = np.stack([np.cos(ang), np.sin(ang)])
        e, rate = poisson_population_error(F, x_fit, x_ev, 15.0, 0.001, 0.05, np.random.default_rng(1))
        assert rate == pytest.approx(15.0, rel=0.2)
        errs.append(e)
    # the sampling noise falls as 1/N; the rate code's lag behind x (r low-passes the rate) does not
    assert errs[1] < 0.7 * errs[0], f"Poisson population errors {errs} for N = 8, 64: should fall with N"


def test_lateral_rule_acts_when_the_delayed_spike_arrives_numpy():
    """Eq 6 with a 3 ms lateral delay: Ω[1, 0] changes only when cell 0's spike reaches cell 1,
    with the voltage of cell 1 at that moment (not at the moment cell 0 fired)."""
    eps, omega0, v1 = 0.5, -0.1, 0.4
    p = RobustParams(N=2, J=1, noise_per_step=0.0, threshold_jitter=0.0, delay=3 * ms, epsc_tau=2 * ms,
                     eps_Omega=eps)
    lam_dt = float(p.lambda_ * p.dt)
    omegas = {}
    for n_steps in (3, 4):  # cell 0 fires in step 0; its spike arrives at cell 1 in step 3
        with Session("numpy", "test_robust_rule_delay") as s:
            net = RobustNetwork(p, s, n_steps, seed=0)
            net.F = np.zeros((1, 2))
            net.Omega = np.array([[-0.5, 0.0], [omega0, -0.5]])
            net.V = np.array([0.6, v1])
            res = net.run_chunk(np.zeros((n_steps, 1)), np.zeros((n_steps, 1)), learning=True)
        assert list(res.spike_i) == [0] and list(res.spike_step) == [0], "expected one spike of cell 0 at step 0"
        omegas[n_steps] = net.Omega[1, 0]
        v_end = net.V[1]  # with a PSC the arriving input has not moved V yet: V_1 at arrival
    assert omegas[3] == omega0, f"Ω[1, 0] changed to {omegas[3]} before the delayed spike arrived"
    assert v_end == pytest.approx(v1 * (1 - lam_dt) ** 4, rel=1e-9)
    expected = omega0 - eps * (p.beta * v_end + omega0)  # Eq 6, r_1 = 0, V_1 at arrival
    at_spike = omega0 - eps * (p.beta * v1 * (1 - lam_dt) + omega0)  # Eq 6 with V_1 when cell 0 fired
    assert omegas[4] == pytest.approx(expected, rel=1e-9), \
        f"Ω[1, 0] = {omegas[4]}; Eq 6 with V_1 at arrival gives {expected} (with V_1 at the spike: {at_spike})"


def test_learning_with_delay_and_psc_lowers_the_error_numpy(tmp_path):
    """Fig 7C with a 2 ms lateral delay and 2 ms PSCs: learning lowers the coding error far below that
    of the unlearned network and of an equally-rated Poisson population, without driving the cells
    to the one-spike-per-step ceiling (the spike-time form of Eq 6 runs away to 50 Hz, error ≈ 1)."""
    from b2models.protocol import Context
    from b2models.protocols import spikecoding_fig7 as fig7
    from b2models.results import RunWriter

    # 8 s of learning at 50× the Fig 2 rates (the spike-time rule reaches 50 Hz within it)
    p = fig7.Fig7Params(network="single", duration=8 * second, chunk=2 * second, test=2 * second, discard=0.2 * second,
                        n_seeds=1, panels="C", noise_levels="0.001", delays="2", psc_taus="2", eps_scale=50.0)
    writer = RunWriter("spikecoding.fig7", out_root=tmp_path / "results")
    with writer:
        ctx = Context(params=p, seed=1, backend="numpy", quick=True, writer=writer, show_progress=False)
        m = fig7.run(ctx)
    tag = "d2ms_tau2ms_noise0.001"
    before, after = m[f"C_error_before_{tag}"], m[f"C_error_{tag}"]
    poisson, rate, ceiling = m[f"C_poisson_error_{tag}"], m[f"C_rate_hz_{tag}"], m["C_rate_ceiling_hz"]
    assert rate < 0.8 * ceiling, f"mean rate {rate:.1f} Hz after learning with a delay is near the " \
                                 f"one-spike-per-step ceiling ({ceiling:.0f} Hz): lateral learning ran away"
    assert after < 0.35 * before, f"coding error {before:.4f} before and {after:.4f} after learning with a " \
                                  "2 ms delay: check where Eq 6 acts on delayed lateral synapses"
    assert after < 0.25 * poisson, f"error after learning {after:.4f} is not far below the equally-rated " \
                                   f"Poisson population's {poisson:.4f}"


def test_fig7_ei_network_sweep_numpy(tmp_path):
    """A tiny E–I Fig 7 sweep on numpy (8 E / 2 I): removed connections stay 0 through learning and about the
    requested share is removed; every point has its Poisson references; delayed points run."""
    from b2models.protocol import Context
    from b2models.protocols import spikecoding_fig7 as fig7
    from b2models.results import RunWriter

    p = fig7.Fig7Params(network="ei", ei_N_E=8, ei_duration=0.04 * second, ei_chunk=0.02 * second,
                        ei_test=0.04 * second, discard=0.01 * second, n_seeds=1, panels="BC", ei_removed="0,0.5",
                        ei_noise_levels="0.002", ei_delays="0,1")
    writer = RunWriter("spikecoding.fig7", out_root=tmp_path / "results")
    with writer:
        ctx = Context(params=p, seed=1, backend="numpy", quick=True, writer=writer, show_progress=False)
        m = fig7.run(ctx)
    assert m["B_max_removed_weight"] == 0.0, "a removed connection learned a weight"
    assert 0.35 < m["B_kept_fraction_removed0.5"] < 0.65 and m["B_kept_fraction_removed0"] == 1.0
    for key in ("C_error_d0ms_noise0.002", "C_error_d1ms_noise0.002", "C_poisson5_error_d1ms_noise0.002",
                "C_poisson10_error_d1ms_noise0.002", "C_error_before_d1ms_noise0.002"):
        assert np.isfinite(m[key]) and 0 <= m[key], (key, m[key])
    assert (writer.path / "figures" / "fig7B_removed.png").exists()


def test_random_removal_masks_keep_the_resets():
    from b2models.protocols.spikecoding_fig7 import connections_between_cells, random_removal_masks

    class _Net:
        shapes = {"W_EE": (40, 40), "W_EI": (10, 40), "W_IE": (40, 10), "W_II": (10, 10)}

    M = random_removal_masks(_Net(), 0.8, np.random.default_rng(0))
    assert np.all(np.diag(M["W_II"]) == 1) and np.all(np.diag(M["W_EE"]) == 0)
    kept = (sum(v.sum() for v in M.values()) - 10) / connections_between_cells(_Net())
    assert kept == pytest.approx(0.2, abs=0.03)


def test_removal_of_one_connection_type_takes_that_types_share_of_the_all_types_draw():
    from b2models.protocols.spikecoding_fig7 import Fig7Params, random_removal_masks

    class _Net:
        shapes = {"W_EE": (40, 40), "W_EI": (10, 40), "W_IE": (40, 10), "W_II": (10, 10)}

    every = random_removal_masks(_Net(), 0.4, np.random.default_rng(3))
    only = random_removal_masks(_Net(), 0.4, np.random.default_rng(3), ("IE",))
    np.testing.assert_array_equal(only["W_IE"], every["W_IE"])
    assert only["W_IE"].mean() == pytest.approx(0.6, abs=0.1)
    assert np.all(only["W_EI"] == 1) and np.all(only["W_II"] == 1)
    assert np.all(only["W_EE"] == 1 - np.eye(40))
    for bad in ("", "IE,IE", "E>I", "XY"):
        with pytest.raises(ValueError, match="ei_removed_types"):
            Fig7Params(network="ei", ei_removed_types=bad).validate()
    Fig7Params(network="ei", ei_removed_types="ie, ee").validate()


def test_seeds_below_noiseless_pairs_each_seed_with_its_own_noiseless_error():
    from b2models.protocols.spikecoding_fig7 import seeds_below_noiseless

    rows = [dict(seed=1, noise=0.0, error=0.10), dict(seed=1, noise=0.01, error=0.08),
            dict(seed=1, noise=0.03, error=0.20),
            dict(seed=2, noise=0.0, error=0.05), dict(seed=2, noise=0.01, error=0.06),
            dict(seed=3, noise=0.01, error=0.01),  # seed 3: no noiseless point, not counted
            dict(seed=4, noise=0.0, error=np.nan), dict(seed=4, noise=0.01, error=0.02)]  # NaN dropped
    out = seeds_below_noiseless(rows)
    assert set(out) == {0.01, 0.03}
    below, total, median = out[0.01]
    assert (below, total) == (1, 2) and median == pytest.approx((0.8 + 1.2) / 2)
    assert out[0.03][:2] == (0, 1) and out[0.03][2] == pytest.approx(2.0)
    assert seeds_below_noiseless([]) == {}


def test_single_network_summary_reports_whether_noise_helps_with_delays():
    from b2models.protocols.spikecoding_fig7 import Fig7Params, summarise

    p = Fig7Params(panels="C", delays="0,2", psc_taus="0,0", noise_levels="0,0.01", n_seeds=2)
    res = []
    for d, errs in ((0.0, {0.0: 0.01, 0.01: 0.02}), (2.0, {0.0: 0.05, 0.01: 0.04})):
        for seed in (1, 2):
            for lv, e in errs.items():
                res.append(dict(panel="C", N=20, removed=0.0, noise=lv, delay=d, tau=0.0, seed=seed, error=e,
                                rate_hz=10.0, error_before=0.2, poisson_error=0.3))
    m = summarise(p, res)
    assert m["C_best_noisy_over_noiseless_d0ms_tau0ms"] == pytest.approx(2.0)
    assert m["C_best_noisy_over_noiseless_d2ms_tau0ms"] == pytest.approx(0.8)
    assert (m["C_seeds_below_noiseless_d2ms_tau0ms_noise0.01"], m["C_seeds_paired_d2ms_tau0ms_noise0.01"]) == (2, 2)
    assert m["C_median_paired_ratio_d2ms_tau0ms_noise0.01"] == pytest.approx(0.8)
    assert m["C_noise_helps_min_ratio_delayed"] == pytest.approx(0.8)
