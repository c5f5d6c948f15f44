"""The Fig 2 network's faster build: the one-spike arbiter picks the same spikes as the pairwise count, and the
standalone loop runs at the network's dt while Brian2's default clock is left alone."""

import numpy as np
import pytest
from brian2 import defaultclock

from b2models.backend import Session
from b2models.data.signals import SmoothedNoise
from b2models.models import spikecoding as sc


def _learn(arbiter: bool, steps=200, chunks=2, **kw):
    p = sc.SpikeCodingParams(**kw)
    gen = SmoothedNoise(p.J, 30, p.input_amplitude, 0.05, 0.001, seed=11)
    saved = sc.ONE_SPIKE_ARBITER
    sc.ONE_SPIKE_ARBITER = arbiter
    try:
        out = []
        with Session("numpy", f"test_arbiter_{int(arbiter)}", key=(steps,)) as s:
            net = sc.SpikeCodingNetwork(p, s, steps, plastic=True, seed=4)
            net.set_state(V=np.linspace(0.0, 0.9, p.N))  # many candidates in the first steps
            for k in range(chunks):
                c, x = gen.next(steps)
                res = net.run_chunk(c, x, learning=True, seed=k + 1)
                out.append((res.spike_i, res.spike_step))
            return out, net.F.copy(), net.Omega.copy(), net.V.copy()
    finally:
        sc.ONE_SPIKE_ARBITER = saved


@pytest.mark.parametrize("noise", [True, False])
def test_arbiter_picks_the_spikes_of_the_pairwise_count(noise):
    """Same spikes (one per step at most, ties to the lower index) and the same learned weights."""
    kw = {} if noise else {"noise_per_step": 0.0, "threshold_jitter": 0.0}
    a, b = _learn(False, **kw), _learn(True, **kw)
    assert sum(len(i) for i, _ in a[0]) > 20, "the test input should make the network fire"
    for (i1, t1), (i2, t2) in zip(a[0], b[0]):
        np.testing.assert_array_equal(t2, t1)
        np.testing.assert_array_equal(i2, i1)
        assert len(np.unique(t2)) == len(t2), "at most one spike per step"
    for x, y in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(y, x)


def test_arbiter_tie_goes_to_the_lower_index():
    """Two neurons exactly equally far above threshold: only the lower index fires."""
    p = sc.SpikeCodingParams(N=3, J=1, noise_per_step=0.0, threshold_jitter=0.0)
    with Session("numpy", "test_arbiter_tie") as s:
        net = sc.SpikeCodingNetwork(p, s, 3, plastic=False, F=np.zeros((1, 3)), Omega=-0.5 * np.eye(3))
        net.set_state(V=np.array([0.2, 0.8, 0.8]))
        res = net.run_chunk(np.zeros((3, 1)), np.zeros((3, 1)), learning=False)
    assert list(res.spike_i[:1]) == [1] and list(res.spike_step[:1]) == [0]


@pytest.mark.standalone
def test_standalone_loop_runs_at_the_network_dt(have_compiler):
    """The session's seed holder sits on the network's clock, so no object adds a finer clock to the loop (on
    Brian2's default clock of 0.1 ms it made the loop turn ten times per 1 ms step); Python's default clock is
    kept."""
    dt0 = defaultclock.dt
    p = sc.SpikeCodingParams()
    with Session("cpp", "test_default_clock", key=(50,)) as s:
        net = sc.SpikeCodingNetwork(p, s, 50, plastic=True)
        assert defaultclock.dt == dt0
        dts = {float(o.clock.dt) for o in s.net.objects}
        res = net.run_chunk(np.zeros((50, p.J)), np.zeros((50, p.J)))
    assert len(dts) == 1 and dts.pop() == pytest.approx(float(p.dt)), dts
    assert float(p.dt) != pytest.approx(float(dt0))
    assert res.n_steps == 50
