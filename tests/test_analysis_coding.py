"""analysis.coding against hand-computed values and invariants."""

import numpy as np
import pytest

from b2models.analysis import coding


def test_spike_counts_and_filtered_trains():
    o = coding.spike_counts([0, 1, 0], [0, 0, 2], n_neurons=2, n_steps=4)
    np.testing.assert_array_equal(o, [[1, 1], [0, 0], [1, 0], [0, 0]])
    r = coding.filtered_spike_trains(o, lam_dt=0.5)
    np.testing.assert_allclose(r[:, 0], [1, 0.5, 1.25, 0.625])
    np.testing.assert_allclose(r[:, 1], [1, 0.5, 0.25, 0.125])
    r = coding.filtered_spike_trains(np.zeros((2, 1)), lam_dt=0.5, r0=[4.0])
    np.testing.assert_allclose(r[:, 0], [2.0, 1.0])
    with pytest.raises(ValueError, match="out of range"):
        coding.spike_counts([2], [0], n_neurons=2, n_steps=4)
    with pytest.raises(ValueError, match="lam_dt"):
        coding.filtered_spike_trains(o, lam_dt=1.5)


def test_decoder_and_error():
    rng = np.random.default_rng(0)
    r = rng.random((500, 4))
    D_true = rng.standard_normal((2, 4))
    x = r @ D_true.T
    D = coding.optimal_decoder(r, x)
    np.testing.assert_allclose(D, D_true, atol=1e-10)
    assert coding.coding_error(x, r @ D.T) == pytest.approx(0, abs=1e-20)
    assert coding.coding_error(x, np.zeros_like(x) + x.mean(0)) == pytest.approx(1.0)
    # hand-computed: var(x) = [1, 4] (population), error var [0.25, 0] -> 0.25 / 5
    x = np.array([[1.0, 2.0], [-1.0, -2.0]])
    xh = np.array([[0.5, 2.0], [-0.5, -2.0]])
    assert coding.coding_error(x, xh) == pytest.approx(0.25 / 5)
    with pytest.raises(ValueError, match="zero variance"):
        coding.coding_error(np.ones((3, 1)), np.ones((3, 1)))


def test_recurrent_vs_feedforward_distance():
    F = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    d, s = coding.recurrent_vs_feedforward(-2.0 * F.T @ F, F)
    assert d == pytest.approx(0, abs=1e-15) and s == pytest.approx(2.0)
    d, _ = coding.recurrent_vs_feedforward(np.eye(3), F)
    assert 0 < d <= 1
    with pytest.raises(ValueError, match="shapes differ"):
        coding.relative_distance_to_scaled(np.eye(2), np.eye(3))


def test_rates_tuning_and_coverage():
    assert coding.mean_rate(30, 3, 2.0) == 5.0
    rates = coding.tuning_curves([0, 0, 1], [1, 5, 6], 2, [(0, 4), (4, 8)], dt_s=0.5)
    np.testing.assert_allclose(rates, [[0.5, 0.0], [0.5, 0.5]])
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False) + np.pi / 8  # mid-sector
    tc = np.maximum(np.cos(angles[:, None] - angles[None, :]), 0)
    pref = coding.preferred_angles(angles, tc)
    np.testing.assert_allclose(np.mod(pref, 2 * np.pi), angles, atol=1e-12)
    assert coding.angular_coverage(pref, 8) == 1.0
    assert coding.angular_coverage([0.1, 0.2], 8) == 1 / 8
