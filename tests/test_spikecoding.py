"""The Fig 2 network of Brendel et al. 2020: rules, one-spike rule, backends, learning."""

import dataclasses

import numpy as np
import pytest
from brian2 import second

from b2models.backend import Session
from b2models.models.spikecoding import SpikeCodingNetwork, SpikeCodingParams, initial_weights


def _two_neuron_params(**kw):
    base = dict(N=2, J=1, noise_per_step=0.0, threshold_jitter=0.0, eps_Omega=0.1, eps_F=0.05)
    base.update(kw)
    return SpikeCodingParams(**base)


def test_recurrent_and_feedforward_rules_follow_their_formulas():
    """Neuron 0 starts above threshold and fires once; both rules change exactly by Eq 6 / Eq 7."""
    p = _two_neuron_params()
    steps = 5
    F0 = np.array([[0.3, -0.2]])
    Om0 = np.array([[-0.5, 0.1], [-0.05, -0.5]])
    with Session("numpy", "test_rules") as s:
        net = SpikeCodingNetwork(p, s, steps, plastic=True, F=F0, Omega=Om0)
        V_init = np.array([0.6, 0.3])
        r_init = np.array([0.0, 0.4])
        net.set_state(V=V_init, r=r_init)
        c = np.zeros((steps, 1))  # no drive: only the initial voltage makes neuron 0 fire
        x = np.full((steps, 1), 2.0)
        res = net.run_chunk(c, x, learning=True)
    assert list(res.spike_i) == [0] and list(res.spike_step) == [0], "expected exactly one spike of neuron 0 at step 0"
    decay = 1 - float(p.lambda_ * p.dt)
    V = V_init * decay  # membrane after the first update, when the threshold is tested
    r = r_init * decay
    expected_Om = Om0.copy()
    for i in range(2):
        expected_Om[i, 0] = Om0[i, 0] - p.eps_Omega * (p.beta * (V[i] + p.mu * r[i]) + Om0[i, 0] + p.mu * (i == 0))
    np.testing.assert_allclose(net.Omega, expected_Om, rtol=1e-12, atol=1e-14)
    expected_F = F0.copy()
    expected_F[0, 0] = F0[0, 0] + p.eps_F * (p.alpha * 2.0 - F0[0, 0])
    np.testing.assert_allclose(net.F, expected_F, rtol=1e-12, atol=1e-14)


def test_learning_off_leaves_weights_unchanged():
    p = _two_neuron_params()
    with Session("numpy", "test_rules") as s:
        net = SpikeCodingNetwork(p, s, 5, plastic=True, seed=3)
        F, Om = net.F.copy(), net.Omega.copy()
        net.set_state(V=np.array([0.6, 0.0]))
        res = net.run_chunk(np.zeros((5, 1)), np.ones((5, 1)), learning=False)
    assert len(res.spike_i) == 1
    np.testing.assert_array_equal(net.F, F)
    np.testing.assert_array_equal(net.Omega, Om)


def test_initial_conditions():
    rng = np.random.default_rng(0)
    F, Om = initial_weights(SpikeCodingParams(init="paper"), rng)
    assert F.shape == (2, 20) and np.all(F[0] <= 0), "paper start: no positive weight for input 1"
    np.testing.assert_allclose(np.linalg.norm(F, axis=0), 1)
    np.testing.assert_array_equal(Om, -0.5 * np.eye(20))
    F, Om = initial_weights(SpikeCodingParams(init="authors_code"), rng)
    off = Om[~np.eye(20, dtype=bool)]
    assert np.all(off <= 0) and np.all(off >= -0.2)
    with pytest.raises(ValueError, match="init must be one of"):
        SpikeCodingParams(init="random").validate()


def _noise_free_run(backend, steps=300, chunks=2, one_spike=True):
    p = SpikeCodingParams(noise_per_step=0.0, threshold_jitter=0.0, one_spike_per_step=one_spike)
    from b2models.data.signals import SmoothedNoise

    gen = SmoothedNoise(p.J, 30, p.input_amplitude, 0.05, 0.001, seed=7)
    out = []
    with Session(backend, f"test_equiv_{int(one_spike)}", key=(steps,)) as s:
        net = SpikeCodingNetwork(p, s, steps, plastic=True, seed=5)
        for k in range(chunks):
            c, x = gen.next(steps)
            res = net.run_chunk(c, x, learning=True)
            out.append((res.spike_i, res.spike_step))
        return out, net.F.copy(), net.Omega.copy()


@pytest.mark.standalone
def test_numpy_and_cpp_standalone_agree(have_compiler):
    spikes_np, F_np, Om_np = _noise_free_run("numpy")
    spikes_cpp, F_cpp, Om_cpp = _noise_free_run("cpp")
    assert sum(len(i) for i, _ in spikes_np) > 20, "the test input should make the network fire"
    for (i1, t1), (i2, t2) in zip(spikes_np, spikes_cpp):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(F_cpp, F_np, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Om_cpp, Om_np, rtol=1e-9, atol=1e-12)


def test_one_spike_per_step_rule():
    spikes, _, _ = _noise_free_run("numpy", steps=200, chunks=1, one_spike=True)
    i, t = spikes[0]
    assert len(t) > 10
    assert len(np.unique(t)) == len(t), "two neurons fired in the same step despite the one-spike rule"
    spikes, _, _ = _noise_free_run("numpy", steps=200, chunks=1, one_spike=False)
    i, t = spikes[0]
    assert len(np.unique(t)) < len(t), "without the rule the lopsided start makes neurons fire together"


def test_bad_weights_and_inputs_are_refused():
    p = _two_neuron_params()
    with Session("numpy", "test_rules") as s:
        with pytest.raises(ValueError, match="weights of wrong shape"):
            SpikeCodingNetwork(p, s, 5, F=np.zeros((3, 3)))
    with Session("numpy", "test_rules") as s:
        net = SpikeCodingNetwork(p, s, 5)
        with pytest.raises(ValueError, match="input segment of shape"):
            net.run_chunk(np.zeros((4, 1)), np.zeros((4, 1)))
        with pytest.raises(ValueError, match="Omega: shape"):
            net.set_state(Omega=np.zeros((3, 3)))


@pytest.mark.standalone
def test_short_learning_lowers_coding_error(tmp_path, have_compiler):
    """40 s of learning on cpp from the paper's lopsided start: held-out coding error falls by >30%.

    Seed 3 is a slow starter (seed 1 falls by 80% in the same time); full-length runs reach 0.003.
    """
    from b2models.protocol import Context
    from b2models.protocols.spikecoding_fig2 import PROTOCOL, quick_params
    from b2models.results import RunWriter

    p = dataclasses.replace(quick_params(PROTOCOL.params()), duration=40 * second, n_snapshots=3, n_angles=8)
    with RunWriter(PROTOCOL.name, out_root=tmp_path) as w:
        m = PROTOCOL.run(Context(params=p, seed=3, backend="cpp", quick=True, writer=w, show_progress=False))
    assert m["final_error"] < 0.7 * m["initial_error"], (
        f"coding error went from {m['initial_error']:.4f} to {m['final_error']:.4f}: check the learning "
        "rules' signs and that eta_Omega/eta_F reach the binary through run_args"
    )
    assert m["final_rate_hz"] < m["initial_rate_hz"]
    assert m["omega_distance"] < 0.6
    out = w.path
    assert (out / "metrics.json").exists() and (out / "arrays.npz").exists()
    assert sorted(f.name for f in (out / "figures").iterdir()) == sorted(f"{n}.png" for n in PROTOCOL.figures)


def _held_input_run(steps_per_input=1, per_neuron_threshold=False, T=None, steps=200, cache_inputs=False):
    from b2models.data.signals import SmoothedNoise

    p = SpikeCodingParams(noise_per_step=0.0, threshold_jitter=0.0)
    c, x = SmoothedNoise(p.J, 30, p.input_amplitude, 0.05, 0.001, seed=7).next(steps // 4)
    if steps_per_input == 1:  # the same signal, each sample repeated for 4 steps
        c, x = np.repeat(c, 4, axis=0), np.repeat(x, 4, axis=0)
    with Session("numpy", "test_options") as s:
        net = SpikeCodingNetwork(p, s, steps, plastic=True, seed=5, steps_per_input=steps_per_input,
                                 per_neuron_threshold=per_neuron_threshold, cache_inputs=cache_inputs)
        if T is not None:
            net.set_state(T=T)
        res = net.run_chunk(c, x, learning=True)
    return res, net


def test_held_inputs_and_per_neuron_thresholds_change_nothing_by_themselves():
    """steps_per_input=4 equals repeating each input sample 4 times; per-neuron thresholds equal to T equal the
    shared threshold; inputs looked up once per step equal the per-synapse lookup; a neuron with a huge
    threshold never fires."""
    ref, net_ref = _held_input_run()
    assert len(ref.spike_i) > 10, "the test input should make the network fire"
    for kw in (dict(steps_per_input=4), dict(per_neuron_threshold=True), dict(cache_inputs=True)):
        res, net = _held_input_run(**kw)
        np.testing.assert_array_equal(res.spike_step, ref.spike_step)
        np.testing.assert_array_equal(res.spike_i, ref.spike_i)
        np.testing.assert_allclose(net.Omega, net_ref.Omega, rtol=1e-12)
    busiest = int(np.bincount(ref.spike_i).argmax())
    T = np.full(20, 0.5)
    T[busiest] = 1e3
    res, _ = _held_input_run(per_neuron_threshold=True, T=T)
    assert busiest not in set(res.spike_i.tolist()) and len(res.spike_i) > 0
    with Session("numpy", "test_options") as s:
        with pytest.raises(ValueError, match="steps_per_input"):
            SpikeCodingNetwork(SpikeCodingParams(), s, 10, steps_per_input=3)
        net = SpikeCodingNetwork(SpikeCodingParams(), s, 10)
        with pytest.raises(ValueError, match="per_neuron_threshold"):
            net.set_state(T=np.zeros(20))


def test_authors_speech_code_initial_condition():
    F, Om = initial_weights(SpikeCodingParams(N=100, J=25, init="authors_speech_code"), np.random.default_rng(0))
    assert F.shape == (25, 100) and 0.1 < np.linalg.norm(F, axis=0).mean() < 0.15, "F = 0.025·N(0, 1): |F_i| ≈ 0.125"
    np.testing.assert_array_equal(np.diag(Om), -0.8)
    off = Om[~np.eye(100, dtype=bool)]
    assert abs(off.mean()) < 0.01 and 0.09 < off.std() < 0.11
