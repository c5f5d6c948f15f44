"""The E–I network of Brendel et al. 2020 Fig 4 (models.spikecoding_ei, protocols.spikecoding_fig4)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
from brian2 import second

from b2models.backend import Session
from b2models.data.signals import SmoothedNoise
from b2models.models.spikecoding_ei import EINetwork, EIParams, dale_violations, initial_weights

# learning rates far above the paper's so that a fraction of a second moves weights onto the sign bounds
FAST = {"eps_F": 5e-3, "eps_Omega": 5e-2}


def _inputs(p, n_steps, seed=0):
    src = SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt),
                        float(p.dt), seed=seed)
    return src.next(n_steps)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("B2MODELS_CACHE", str(tmp_path / "cache"))


def test_initial_weights_follow_authors_code():
    p = EIParams(N_E=40, N_I=10)
    W = initial_weights(p, np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(W["F"], axis=0), 1.0)
    # each I cell gets 0.5 from N_E/N_I = 4 E cells, each E cell projects to one I cell
    assert np.all((W["W_EI"] > 0).sum(axis=1) == 4)
    assert np.all((W["W_EI"] > 0).sum(axis=0) == 1)
    assert set(np.unique(W["W_EI"])) == {0.0, 0.5}
    assert np.allclose(W["W_IE"], -0.3 * W["W_EI"].T)
    assert np.allclose(W["W_II"], -0.5 * np.eye(10))
    assert not W["W_EE"].any()
    assert sum(dale_violations(W).values()) == 0


def test_dale_violations_counts_wrong_signs():
    W = {"W_EE": np.array([[0.0, -0.1], [0.2, 0.0]]), "W_IE": np.array([[0.3, -1.0]]),
         "W_EI": np.zeros((1, 2)), "W_II": -np.eye(2), "F": -np.ones((1, 2))}
    assert dale_violations(W) == {"W_EE": 1, "W_EI": 0, "W_IE": 1, "W_II": 0}


@pytest.mark.parametrize("kw, match", [
    ({"N_E": 30, "N_I": 7}, "multiple"),
    ({"w_EI_init": -0.5}, "Dale"),
    ({"lambda_F": 20000 * EIParams().lambda_F / 300}, "lambda_F"),
    ({"n_record": -1}, "n_record"),
])
def test_bad_parameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        EIParams(**kw).validate()


def test_dale_signs_hold_throughout_learning_numpy():
    """Fast learning on the numpy backend: after every chunk no weight has the wrong sign, and the
    clipping was exercised (weights of cells that spiked sit exactly on the bound 0)."""
    p = EIParams(N_E=16, N_I=4, n_record=2, **FAST)
    L = 400
    with Session("numpy", "test_ei_dale") as s:
        net = EINetwork(p, s, L, seed=3)
        spiked_E, spiked_I = set(), set()
        c, _ = _inputs(p, 4 * L)
        for k in range(4):
            res = net.run_chunk(c[k * L:(k + 1) * L], seed=k)
            assert dale_violations(net.weights) == {"W_EE": 0, "W_EI": 0, "W_IE": 0, "W_II": 0}, \
                f"chunk {k}: a weight crossed its Dale bound; check the clip() in the rule strings"
            spiked_E |= set(res.spike_i_E.tolist())
            spiked_I |= set(res.spike_i_I.tolist())
    W = net.weights
    assert spiked_E and spiked_I, "no spikes: the test does not exercise learning"
    # E → E entries of spiking presynaptic cells move at every spike: exact zeros come from the clip
    cols = sorted(spiked_E)
    off = ~np.eye(p.N_E, dtype=bool)
    ee = W["W_EE"][:, cols][off[:, cols]]
    assert (ee > 0).any() and (ee == 0).any(), "E → E weights never reached the bound 0"
    ie = W["W_IE"][:, sorted(spiked_I)]
    assert (ie < 0).any() and (ie == 0).any(), "I → E weights never reached the bound 0"
    # the learned E → I weights differ from the initial ones (the feedforward rule ran)
    assert not np.allclose(W["W_EI"], initial_weights(p, np.random.default_rng(3))["W_EI"])
    # one spike per step per population
    for si, st in ((res.spike_i_E, res.spike_step_E), (res.spike_i_I, res.spike_step_I)):
        assert len(np.unique(st)) == len(st)
    # currents recorded for n_record cells: E cells get positive excitation, negative inhibition
    assert res.currents["E_exc"].shape == (L, 2)
    assert res.currents["E_exc"].min() >= 0 and res.currents["E_inh"].max() <= 0


def _rule_net(s, W):
    """Two E cells, one I cell, one input; no noise, no jitter, fast rates; 3 steps per run."""
    p = EIParams(N_E=2, N_I=1, J=1, n_record=0, noise_per_step=0.0, threshold_jitter=0.0,
                 eps_F=0.05, eps_Omega=0.1)
    return p, EINetwork(p, s, 3, plastic=True, weights=W, seed=0)


_W0 = {"F": np.array([[0.4, -0.3]]), "W_EE": np.array([[0.0, 0.2], [0.3, 0.0]]),
       "W_EI": np.array([[0.1, 0.2]]), "W_IE": np.array([[-0.3], [-0.05]]), "W_II": np.array([[-0.5]])}


def test_e_spike_rules_follow_their_formulas_numpy():
    """E cell 0 starts above threshold and fires once at step 0 (nothing else fires): the input → E
    weight changes by Eq 7 (ΔF = ε_F (α_E x̄ − F)), E → E by Eq 6 (clipped ≥ 0); no other weight moves."""
    with Session("numpy", "test_ei_rules") as s:
        p, net = _rule_net(s, _W0)
        V, r, xbar = np.array([0.6, 0.05]), np.array([0.0, 0.4]), np.array([2.0])
        net.set_dynamic_state(V_E=V, r_E=r, V_I=0.0, r_I=0.0, xbar=xbar)
        res = net.run_chunk(np.zeros((3, 1)), learning=True)
    assert list(res.spike_i_E) == [0] and list(res.spike_step_E) == [0], "expected one spike of E cell 0 at step 0"
    assert len(res.spike_i_I) == 0
    lam_dt, lamF_dt = float(p.lambda_ * p.dt), float(p.lambda_F * p.dt)
    V1, r1 = V * (1 - lam_dt), r * (1 - lam_dt)  # at the threshold test of step 0 (Euler, no drive)
    xb = xbar * (1 - lamF_dt)
    W = net.weights
    exp_F = _W0["F"].copy()
    exp_F[0, 0] += p.eps_F * (p.alpha_E * xb[0] - exp_F[0, 0])
    np.testing.assert_allclose(W["F"], exp_F, rtol=1e-12)
    exp_EE = _W0["W_EE"].copy()
    exp_EE[1, 0] = max(0.0, exp_EE[1, 0] - p.eps_Omega * (p.beta * (V1[1] + p.mu * r1[1]) + exp_EE[1, 0]))
    assert exp_EE[1, 0] > 0
    np.testing.assert_allclose(W["W_EE"], exp_EE, rtol=1e-12)
    for key in ("W_EI", "W_IE", "W_II"):  # their rules run at I spikes only
        np.testing.assert_array_equal(W[key], _W0[key])


def test_i_spike_rules_follow_their_formulas_numpy():
    """I cell 0 starts above threshold and fires once at step 0: E → I changes by Eq 7 with r_E as
    signal (clipped ≥ 0), I → E and I → I by Eq 6 (clipped ≤ 0; I → I with the cost μ δ_ik)."""
    W0 = dict(_W0, W_IE=np.array([[-0.3], [-0.01]]))
    with Session("numpy", "test_ei_rules") as s:
        p, net = _rule_net(s, W0)
        VE, rE, VI, rI = np.array([0.2, -0.3]), np.array([0.3, 0.1]), np.array([0.6]), np.array([0.5])
        net.set_dynamic_state(V_E=VE, r_E=rE, V_I=VI, r_I=rI, xbar=0.0)
        res = net.run_chunk(np.zeros((3, 1)), learning=True)
    assert len(res.spike_i_E) == 0, "no E cell may fire in this test"
    assert list(res.spike_i_I) == [0] and list(res.spike_step_I) == [0]
    d = 1 - float(p.lambda_ * p.dt)
    VE1, rE1, VI1, rI1 = VE * d, rE * d, VI * d, rI * d
    W = net.weights
    exp_EI = np.maximum(0.0, W0["W_EI"] + p.eps_F * (p.alpha_I * rE1[None, :] - W0["W_EI"]))
    np.testing.assert_allclose(W["W_EI"], exp_EI, rtol=1e-12)
    exp_IE = np.minimum(0.0, W0["W_IE"][:, 0] - p.eps_Omega * (p.beta * (VE1 + p.mu * rE1) + W0["W_IE"][:, 0]))
    assert exp_IE[0] < 0 and exp_IE[1] == 0.0, "the test should exercise both a free update and the clip at 0"
    np.testing.assert_allclose(W["W_IE"][:, 0], exp_IE, rtol=1e-12)
    exp_II = min(0.0, W0["W_II"][0, 0] - p.eps_Omega * (p.beta * (VI1[0] + p.mu * rI1[0]) + W0["W_II"][0, 0] + p.mu))
    np.testing.assert_allclose(W["W_II"][0, 0], exp_II, rtol=1e-12)
    for key in ("F", "W_EE"):  # their rules run at E spikes only
        np.testing.assert_array_equal(W[key], W0[key])


def test_refractory_best_candidate_blocks_its_population_numpy():
    """Authors' rule: E cell 0 fires at step 0 and, with no reset of its own, stays furthest above
    threshold; while it is refractory no other E cell may fire, even though cell 1 is above threshold."""
    p = EIParams(N_E=2, N_I=1, J=1, n_record=0, noise_per_step=0.0, threshold_jitter=0.0)
    W = {"W_EI": np.zeros((1, 2)), "W_IE": np.zeros((2, 1)), "W_EE": np.zeros((2, 2))}
    n = 30
    with Session("numpy", "test_ei_block") as s:
        net = EINetwork(p, s, n, plastic=False, weights=W, seed=0)
        net.set_dynamic_state(V_E=np.array([0.9, 0.7]))
        res = net.run_chunk(np.zeros((n, 1)), learning=False)
    refr = round(float(p.refractory / p.dt))
    # cell 0 fires whenever it leaves its refractory period; cell 1 (above threshold too) never fires
    assert set(res.spike_i_E.tolist()) == {0} and list(res.spike_step_E[:2]) == [0, refr], (
        f"got E spikes {list(zip(res.spike_i_E, res.spike_step_E))}: a refractory best candidate must "
        "silence its population (refractory_blocks=True)")


def test_refractory_period_respected_numpy():
    p = EIParams(N_E=8, N_I=2, n_record=0)
    with Session("numpy", "test_ei_refr") as s:
        net = EINetwork(p, s, 600, plastic=False, seed=0)
        # strong constant drive along the first cell's F: it would fire every step without refractoriness
        c = np.repeat((2000.0 * net.weights["F"][:, 0])[None, :], 600, axis=0)
        res = net.run_chunk(c, learning=False, seed=1)
        with pytest.raises(ValueError, match="plastic=False"):
            net.run_chunk(c, learning=True)
        with pytest.raises(ValueError, match="shape"):
            net.run_chunk(c[:10], learning=False)
    refr_steps = round(float(p.refractory / p.dt))
    for n in range(p.N_E):
        st = np.sort(res.spike_step_E[res.spike_i_E == n])
        if len(st) > 1:
            assert np.diff(st).min() >= refr_steps
    assert (res.spike_i_E == 0).sum() > 10, "the driven cell should fire"


def test_weight_round_trip_and_shape_errors():
    p = EIParams(N_E=8, N_I=2, n_record=0)
    with Session("numpy", "test_ei_weights") as s:
        net = EINetwork(p, s, 10, plastic=False, seed=0)
        rng = np.random.default_rng(1)
        for key in net.WEIGHTS:
            W = rng.standard_normal(net.shapes[key])
            if key == "W_EE":
                np.fill_diagonal(W, 0)
            assert np.array_equal(net._unpack(key, net._pack(key)), net.weights[key])
            net.set_weights(**{key: W})
            assert np.array_equal(net._unpack(key, net._pack(key)), W)
        with pytest.raises(ValueError, match="shape"):
            net.set_weights(W_IE=np.zeros((2, 8)))
        with pytest.raises(KeyError):
            net.set_weights(W_XX=np.zeros(1))


@pytest.mark.standalone
@pytest.mark.slow
def test_short_learning_lowers_coding_error_cpp(tmp_path):
    """The protocol at tiny scale on cpp: the E coding error falls by a margin, Dale's law holds."""
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler")
    from b2models.protocol import Context
    from b2models.protocols import spikecoding_fig4 as fig4
    from b2models.results import RunWriter

    p = fig4.quick_params(fig4.Fig4Params())
    # the --quick network and learning (100 E / 25 I, 60 s); a 40 / 10 network for 20 s did not improve
    p = dataclasses.replace(p, n_snapshots=2, n_inputs=2, n_trials=3, n_angles=4, tuning_hold=0.2 * second)
    writer = RunWriter("spikecoding.fig4", out_root=tmp_path / "results")
    with writer:
        ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer, show_progress=False)
        m = fig4.run(ctx)
    assert m["dale_violations_max"] == 0
    # the frozen network after learning codes at moderate rates, far below the one-spike-per-step ceiling
    for pop in ("E", "I"):
        ceiling = m[f"rate_ceiling_{pop}_hz"]
        assert m[f"final_rate_{pop}"] < 0.3 * ceiling, (
            f"frozen {pop} rate {m[f'final_rate_{pop}']:.1f} Hz after learning, ceiling {ceiling:.0f} Hz: the "
            "frozen network saturates; check the one-spike rule (refractory_blocks) and the I → E weights")
        assert m[f"rate_{pop}_after"] < 0.3 * ceiling, f"{pop} saturates on the constant test inputs"
    assert m["final_error_I"] < m["initial_error_I"]
    assert m["final_error_E"] < 0.7 * m["initial_error_E"], (
        f"E coding error {m['initial_error_E']:.3f} -> {m['final_error_E']:.3f}: learning did not improve "
        "the code; check the rule strings and the learning rates passed as run_args")
    saved = json.loads((writer.path / "metrics.json").read_text())
    assert saved["final_error_E"] == pytest.approx(m["final_error_E"])
    for fig in fig4.PROTOCOL.figures:
        assert (writer.path / "figures" / f"{fig}.png").exists()


def test_delayed_synapses_and_the_delay_respecting_arbiter_numpy():
    """With a 1 ms delay an E spike reaches the I cell 10 steps (0.1 ms each) later, not at once; the
    arbiter obeys the delay (two E cells above threshold in the same step both fire), while
    arbiter='instant' lets only the furthest one fire."""
    from brian2 import ms

    base = dict(N_E=2, N_I=1, J=1, n_record=0, noise_per_step=0.0, threshold_jitter=0.0)
    W = {"W_EI": np.array([[0.3, 0.0]]), "W_IE": np.zeros((2, 1)), "W_EE": np.zeros((2, 2)),
         "W_II": np.array([[-0.5]])}
    n = 40
    got = {}
    for delay, arbiter in ((0.0, "delayed"), (1.0, "delayed"), (1.0, "instant")):
        p = EIParams(delay=delay * ms, arbiter=arbiter, **base)
        with Session("numpy", f"test_ei_delay_{delay:g}_{arbiter}") as s:
            net = EINetwork(p, s, n, plastic=False, weights=W, seed=0)
            net.set_dynamic_state(V_E=np.array([0.9, 0.7]), V_I=np.array([0.35]))
            got[delay, arbiter] = net.run_chunk(np.zeros((n, 1)), learning=False)
    r0, r1, ri = got[0.0, "delayed"], got[1.0, "delayed"], got[1.0, "instant"]
    assert r0.spike_i_E.tolist()[:1] == [0] and 1 not in r0.spike_i_E[r0.spike_step_E == 0].tolist()
    # without delay the input 0.3 (decayed once) lifts V_I from 0.35 over 0.5 in the next step
    assert r0.spike_step_I.tolist()[:1] == [1], r0.spike_step_I
    # with the delay it arrives 10 steps later
    assert r1.spike_step_I.tolist()[:1] == [11], r1.spike_step_I
    assert sorted(r1.spike_i_E[r1.spike_step_E == 0].tolist()) == [0, 1], "both candidates fire: no same-step arbiter"
    assert ri.spike_i_E[ri.spike_step_E == 0].tolist() == [0], "the instant arbiter lets only the best fire"
    with pytest.raises(ValueError, match="arbiter"):
        EIParams(arbiter="late").validate()
    with pytest.raises(ValueError, match="delay"):
        EIParams(delay=0.05 * ms).validate()


def test_noise_as_run_argument_numpy():
    """noise_run_arg: the membrane noise's s.d. per step is set per run; 0 leaves an undriven membrane at 0,
    and the per-step s.d. of V matches the setting."""
    p = EIParams(N_E=4, N_I=1, J=1, n_record=0, threshold_jitter=0.0, noise_run_arg=True, T_E=50.0, T_I=50.0)
    n = 2000
    with Session("numpy", "test_ei_noise_arg") as s:
        net = EINetwork(p, s, n, plastic=False, seed=0)
        net.noise_sd = 0.0
        res0 = net.run_chunk(np.zeros((n, 1)), learning=False, seed=1)
        V0 = net.V_E.copy()
        net.noise_sd = 0.01
        res1 = net.run_chunk(np.zeros((n, 1)), learning=False, seed=2)
        net.noise_sd = -1.0
        with pytest.raises(ValueError, match="noise_sd"):
            net.run_chunk(np.zeros((n, 1)), learning=False)
    assert np.all(V0 == 0) and np.all(res0.V_var_E == 0)
    # stationary variance of V_{n+1} = (1 − λdt) V_n + σ ξ: σ² / (1 − (1 − λdt)²)
    a = 1 - float(p.lambda_ * p.dt)
    expected = 0.01 ** 2 / (1 - a ** 2)
    assert np.mean(res1.V_var_E) == pytest.approx(expected, rel=0.5)
