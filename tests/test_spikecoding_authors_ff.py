"""The authors' online feedforward rule for correlated inputs (Brendel et al. 2020, their speech code), as the
option ``ff_rule="authors_online"`` of the spike-coding network: Brian2 against a NumPy reference, state carried
across chunks, the default rule untouched, bad option values refused."""

import numpy as np
import pytest
from brian2 import ms

from b2models.backend import Session
from b2models.data.signals import SmoothedNoise
from b2models.models import spikecoding as sc
from b2models.protocols.spikecoding_speech import SpeechParams, command_from_samples, lowpassed_current

MIX = np.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.6], [0.2, 0.6, 1.0]])  # makes the three input channels correlated


def _params(**kw):
    base = dict(N=8, J=3, noise_per_step=0.0, threshold_jitter=0.0, eps_F=0.02, eps_Omega=1e-3)
    base.update(kw)
    return sc.SpikeCodingParams(**base)


def _inputs(p, steps, seed=7):
    c, x = SmoothedNoise(p.J, 30, p.input_amplitude, float(p.lambda_ * p.dt), float(p.dt), seed=seed).next(steps)
    return c @ MIX.T, x @ MIX.T  # linear: x is still the leaky integral of c


def _start_state(p, seed=3):
    rng = np.random.default_rng(seed)
    return dict(u_f=rng.normal(0, 2, p.J), u_bar=rng.normal(0, 1, p.J), U=rng.normal(0, 0.5, (p.J, p.N)))


def _reference(p, c, spike_i, spike_step, F0, u_f, u_bar, U, scale):
    """The rule step by step in NumPy, driven by the network's spikes: u_f, then ū, then g and U, then the
    weight change of the neuron that fired in this step."""
    dt, lam = float(p.dt), float(p.lambda_)
    decay = np.exp(-dt / float(sc.AUTHORS_FF_TAU))
    rate = float(sc.AUTHORS_FF_AVERAGE_RATE) * dt
    F, u_f, u_bar, U = F0.copy(), u_f.copy(), u_bar.copy(), U.copy()
    fired = {}
    for i, n in zip(spike_i, spike_step):
        fired.setdefault(int(n), []).append(int(i))
    for n in range(len(c)):
        u = c[n] / lam
        u_f = u + (u_f - u) * decay
        u_bar = u_bar + rate * (u_f - u_bar)
        d = u_f - u_bar
        g = d @ F  # per neuron
        U = U + rate * (np.outer(d, g) - U)
        for k in fired.get(n, []):
            F[:, k] += p.eps_F * (p.alpha * u_f - U[:, k] / scale)
    return F, u_f, u_bar, U


def test_brian2_rule_matches_numpy_reference():
    p = _params()
    steps, scale = 300, 3.0
    c, x = _inputs(p, steps)
    start = _start_state(p)
    with Session("numpy", "test_authors_ff", key=(steps,)) as s:
        net = sc.SpikeCodingNetwork(p, s, steps, plastic=True, seed=5, ff_rule="authors_online", ff_scale=scale)
        F0 = net.F.copy()
        net.set_state(**start)
        res = net.run_chunk(c, x, learning=True)
    assert len(res.spike_i) > 20, "the test input should make the network fire"
    F, u_f, u_bar, U = _reference(p, c, res.spike_i, res.spike_step, F0, start["u_f"], start["u_bar"], start["U"],
                                  scale)
    assert np.abs(F - F0).max() > 1e-2, "learning should change the feedforward weights"
    np.testing.assert_allclose(net.u_f, u_f, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.u_bar, u_bar, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.U, U, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(net.F, F, rtol=1e-9, atol=1e-11)


def test_state_carries_across_chunks_and_frozen_chunks_leave_it():
    p = _params()
    L = 150
    c, x = _inputs(p, 2 * L)
    start = _start_state(p)
    with Session("numpy", "test_authors_ff_long", key=(2 * L,)) as s:
        one = sc.SpikeCodingNetwork(p, s, 2 * L, plastic=True, seed=5, ff_rule="authors_online", ff_scale=3.0)
        one.set_state(**start)
        r1 = one.run_chunk(c, x, learning=True)
    with Session("numpy", "test_authors_ff_short", key=(L,)) as s:
        two = sc.SpikeCodingNetwork(p, s, L, plastic=True, seed=5, ff_rule="authors_online", ff_scale=3.0)
        two.set_state(**start)
        a = two.run_chunk(c[:L], x[:L], learning=True)
        held = two.state()
        frozen = two.run_chunk(c[L:], x[L:], learning=False)  # a frozen chunk in between changes nothing
        assert len(frozen.spike_i) > 0
        for name in ("u_f", "u_bar", "U", "F"):
            np.testing.assert_array_equal(getattr(two, name), held[name])
        two.set_state(V=held["V"], r=held["r"])
        b = two.run_chunk(c[L:], x[L:], learning=True)
    assert len(a.spike_i) > 5 and len(b.spike_i) > 5
    np.testing.assert_array_equal(np.concatenate([a.spike_step, b.spike_step + L]), r1.spike_step)
    np.testing.assert_array_equal(np.concatenate([a.spike_i, b.spike_i]), r1.spike_i)
    for name in ("F", "Omega", "U", "u_f", "u_bar", "V", "r"):
        np.testing.assert_allclose(getattr(two, name), getattr(one, name), rtol=1e-10, atol=1e-12, err_msg=name)


def test_default_rule_is_unchanged_and_differs_from_the_authors_rule():
    p = _params()
    steps = 200
    c, x = _inputs(p, steps)
    with Session("numpy", "test_authors_ff_default", key=(steps,)) as s:
        net = sc.SpikeCodingNetwork(p, s, steps, plastic=True, seed=5)
        assert net.ff_rule == "paper"
        assert "u_f" not in net.inputs.variables and "U" not in net.ff.variables
        assert "g_ff" not in net.neurons.variables
        assert sorted(net.state()) == ["F", "Omega", "T", "V", "r"]
        with pytest.raises(ValueError, match="authors_online"):
            net.set_state(U=np.zeros((p.J, p.N)))
        F0 = net.F.copy()
        res = net.run_chunk(c, x, learning=True)
    # Eq 7 replayed from the network's spikes: ΔF_ij = ε_F (α x_j − F_ij) at each spike of i
    F = F0.copy()
    for i, n in zip(res.spike_i, res.spike_step):
        F[:, i] += p.eps_F * (p.alpha * x[n] - F[:, i])
    np.testing.assert_allclose(net.F, F, rtol=1e-10, atol=1e-12)
    with Session("numpy", "test_authors_ff_default", key=(steps,)) as s:
        other = sc.SpikeCodingNetwork(p, s, steps, plastic=True, seed=5, ff_rule="authors_online", ff_scale=3.0)
        other.run_chunk(c, x, learning=True)
    assert np.abs(other.F - net.F).max() > 1e-3, "the two rules should learn different weights"


def test_bad_option_values_are_refused():
    p = _params()
    with Session("numpy", "test_authors_ff_bad") as s:
        with pytest.raises(ValueError, match="ff_rule='hebbian'"):
            sc.SpikeCodingNetwork(p, s, 10, ff_rule="hebbian")
    with Session("numpy", "test_authors_ff_bad") as s:
        with pytest.raises(ValueError, match="ff_scale"):
            sc.SpikeCodingNetwork(p, s, 10, ff_rule="authors_online", ff_scale=0.0)
    with pytest.raises(ValueError, match="ff_rule='authors'"):
        SpeechParams(ff_rule="authors").validate()
    SpeechParams(ff_rule="authors_online").validate()
    with pytest.raises(ValueError, match="u_f"):
        sc.authors_ff_initial_state(np.ones((1, 3)), np.zeros((3, 4)))


def test_protocol_current_and_start_state():
    """The protocol's u_f (end of every envelope sample, in blocks) equals the step-by-step low-pass of the held
    command, and the start state is the mean, C_u F and tr C_u / J."""
    p = SpeechParams(dt=0.5 * ms)  # two network steps per envelope sample
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (40, 25)), axis=0) + 5.0
    got = lowpassed_current(x, p, block=7)
    c = command_from_samples(x, float(p.lambda_ * p.dt), float(p.dt), 2)
    decay = np.exp(-float(p.dt) / float(sc.AUTHORS_FF_TAU))
    u_f, want = np.zeros(25), []
    for k in range(len(x)):
        for _ in range(2):
            u_f = c[k] / float(p.lambda_) + (u_f - c[k] / float(p.lambda_)) * decay
        want.append(u_f.copy())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lowpassed_current(x, p, block=6, every=3), got[::3], rtol=1e-12)
    F = rng.normal(size=(25, 4))
    st = sc.authors_ff_initial_state(got, F)
    d = got - got.mean(0)
    C = d.T @ d / len(got)
    np.testing.assert_allclose(st["u_bar"], got.mean(0))
    np.testing.assert_allclose(st["U"], C @ F, rtol=1e-10)
    assert st["scale"] == pytest.approx(np.trace(C) / 25)
