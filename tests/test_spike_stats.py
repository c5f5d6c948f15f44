"""analysis.spike_stats against hand-computed spike trains and synthetic currents."""

import numpy as np
import pytest

from b2models.analysis import spike_stats as ss


def test_regular_train_has_cv_zero():
    t = np.arange(0, 100, 5.0)
    assert ss.isi_cv(np.zeros(t.size), t, 1)[0] == pytest.approx(0.0, abs=1e-12)


def test_cv_by_hand():
    # ISIs 1, 3: mean 2, std (n-1) = sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2)
    cv = ss.isi_cv([0, 0, 0], [0.0, 1.0, 4.0], 1)
    assert cv[0] == pytest.approx(np.sqrt(2) / 2)


def test_isis_do_not_span_trials_and_are_sorted():
    # cell 0: trial 0 spikes at 0, 10 (ISI 10); trial 1 at 2, 4 (ISI 2); given out of order
    i = [0, 0, 0, 0, 1]
    t = [10.0, 4.0, 0.0, 2.0, 7.0]
    k = [0, 1, 0, 1, 0]
    isis = ss.interspike_intervals(i, t, 2, trial=k)
    assert sorted(isis[0].tolist()) == [2.0, 10.0]
    assert isis[1].size == 0
    assert np.isnan(ss.isi_cv(i, t, 2, trial=k)[1])


def test_poisson_train_has_cv_and_fano_near_one():
    rng = np.random.default_rng(0)
    isis = rng.exponential(1.0, 20000)
    assert ss.coefficient_of_variation(isis) == pytest.approx(1.0, abs=0.03)
    counts = rng.poisson(20.0, size=(4000, 3))
    assert np.allclose(ss.fano_factor(counts), 1.0, atol=0.08)


def test_fano_by_hand():
    counts = np.array([[2, 5, 0], [4, 5, 0], [6, 5, 0]])
    # cell 0: mean 4, var (n-1) = (4 + 0 + 4) / 2 = 4 -> 1; cell 1: constant -> 0; cell 2: silent -> NaN
    ff = ss.fano_factor(counts)
    assert ff[0] == pytest.approx(1.0)
    assert ff[1] == 0.0
    assert np.isnan(ff[2])


def test_counts_per_trial():
    c = ss.spike_counts_per_trial([0, 1, 1, 0, 1], [0, 0, 0, 1, 1], 3, 2)
    assert c.tolist() == [[1, 2, 0], [1, 1, 0]]
    with pytest.raises(ValueError, match="trial index"):
        ss.spike_counts_per_trial([0], [2], 3, 2)
    with pytest.raises(ValueError, match="cell index"):
        ss.spike_counts_per_trial([3], [0], 3, 2)


def test_count_correlations_by_hand():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    counts = np.stack([a, 2 * a + 1, -a + 10, np.full(4, 3.0)], axis=1)
    C = ss.count_correlations(counts)
    assert C[0, 1] == pytest.approx(1.0)
    assert C[0, 2] == pytest.approx(-1.0)
    assert np.all(np.isnan(C[3]))
    # pairs (0,1)=1, (0,2)=-1, (1,2)=-1 -> mean -1/3; the constant cell is left out
    assert ss.mean_pairwise_correlation(counts) == pytest.approx(-1 / 3)
    assert ss.mean_pairwise_correlation(counts, active=[True, True, False, False]) == pytest.approx(1.0)


def test_independent_counts_have_near_zero_mean_correlation():
    rng = np.random.default_rng(1)
    counts = rng.poisson(10.0, size=(500, 60))
    assert abs(ss.mean_pairwise_correlation(counts)) < 0.01


def test_balance_on_synthetic_currents():
    rng = np.random.default_rng(2)
    drive = np.cumsum(rng.standard_normal((5000, 4)), axis=0)
    exc = 10 + drive
    balanced = -(10 + drive) - 0.01 * rng.standard_normal(drive.shape)
    independent = -(10 + np.cumsum(rng.standard_normal((5000, 4)), axis=0))
    assert np.all(ss.current_balance(exc, balanced) > 0.99)
    assert np.all(ss.net_to_total_ratio(exc, balanced) < 0.05)
    # random walks are spuriously correlated; white noise is not
    white_e, white_i = rng.standard_normal((2, 5000, 4))
    assert np.all(np.abs(ss.current_balance(white_e, -white_i)) < 0.06)
    assert np.all(ss.net_to_total_ratio(white_e, white_i) > 1.3)
    assert ss.current_balance(exc, independent).shape == (4,)
    # the sign convention: inhibition given as positive magnitudes gives −1
    assert np.all(ss.current_balance(exc, 10 + drive) < -0.99)


def test_balance_constant_current_is_nan_and_shapes_checked():
    exc = np.ones((10, 2))
    inh = -np.arange(20.0).reshape(10, 2)
    assert np.all(np.isnan(ss.current_balance(exc, inh)))
    with pytest.raises(ValueError):
        ss.current_balance(np.ones((10, 2)), np.ones((10, 3)))


def test_variability_summary_regular_vs_poisson():
    rng = np.random.default_rng(3)
    n_trials, n_cells = 30, 5
    # regular trains, identical in every trial: CV 0, Fano 0
    i, t, k = [], [], []
    for trial in range(n_trials):
        for cell in range(n_cells):
            times = np.arange(0.0, 1.0, 0.05 + 0.01 * cell)
            i += [cell] * times.size
            t += times.tolist()
            k += [trial] * times.size
    s = ss.variability_summary(i, t, k, n_cells, n_trials)
    assert s["cv"] == pytest.approx(0.0, abs=1e-9)
    assert s["fano"] == pytest.approx(0.0, abs=1e-12)
    assert s["n_active"] == n_cells
    # Poisson trains: CV, Fano near 1, correlations near 0
    i, t, k = [], [], []
    for trial in range(n_trials):
        for cell in range(n_cells):
            n = rng.poisson(40)
            times = np.sort(rng.uniform(0, 1, n))
            i += [cell] * n
            t += times.tolist()
            k += [trial] * n
    s = ss.variability_summary(i, t, k, n_cells, n_trials)
    assert 0.85 < s["cv"] < 1.1
    assert 0.6 < s["fano"] < 1.4
    assert abs(s["pairwise_correlation"]) < 0.15


def test_population_count_stats_by_hand():
    # the population count is 4 in every trial while the cells trade spikes: ratio 0, floor −1
    counts = np.array([[1, 3], [3, 1], [2, 2]])
    s = ss.population_count_stats(counts)
    assert s["variance_ratio"] == pytest.approx(0.0)
    assert s["population_fano"] == pytest.approx(0.0)
    assert s["correlation_floor"] == pytest.approx(-1.0)
    assert ss.mean_pairwise_correlation(counts) == pytest.approx(-1.0)
    # independent cells: var(Σ) ≈ Σ var
    rng = np.random.default_rng(4)
    s = ss.population_count_stats(rng.poisson(10.0, size=(3000, 20)))
    assert s["variance_ratio"] == pytest.approx(1.0, abs=0.1)
    assert s["correlation_floor"] == pytest.approx(-1 / 19)
    with pytest.raises(ValueError):
        ss.population_count_stats(np.ones((1, 3)))


def test_poisson_reference_shows_the_short_trial_bias_of_the_cv():
    rng = np.random.default_rng(5)
    long = ss.poisson_reference(np.full(40, 40.0), 30, 1.0, rng)  # 40 Hz, 1 s trials
    assert long["cv"] == pytest.approx(1.0, abs=0.05) and long["fano"] == pytest.approx(1.0, abs=0.15)
    # 2.8 Hz in 0.5 s trials: intervals longer than the trial are never seen, the CV falls well below 1
    short = ss.poisson_reference(np.full(40, 1.4), 30, 0.5, rng)
    assert short["cv"] < 0.85
    assert short["fano"] == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError):
        ss.poisson_reference(np.full(3, -1.0), 10, 1.0, rng)
