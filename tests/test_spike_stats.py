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


# ---------------------------------------------------------------------------------------
# binned spike-train correlations
# ---------------------------------------------------------------------------------------
def _poisson_trains(rates, duration, rng, n_trials=1):
    i, t, k = [], [], []
    for trial in range(n_trials):
        for cell, r in enumerate(rates):
            n = rng.poisson(r * duration)
            i += [cell] * n
            t += rng.uniform(0, duration, n).tolist()
            k += [trial] * n
    return np.array(i), np.array(t), np.array(k)


def test_binned_counts_by_hand():
    # 2 trials of 1.0 s, 0.25 s bins (4 per trial); a spike at 0.9 s of trial 1 lands in row 4 + 3 = 7
    C = ss.binned_spike_counts([0, 0, 1, 0], [0.0, 0.3, 0.24, 0.9], 2, 1.0, 0.25, trial=[0, 0, 0, 1],
                               n_trials=2).toarray()
    assert C.shape == (8, 2)
    assert C[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 1]
    assert C[:, 1].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    # a trailing partial bin is dropped: 1.0 s in 0.3 s bins keeps 3 bins, the spike at 0.95 s is not counted
    C = ss.binned_spike_counts([0, 0], [0.1, 0.95], 1, 1.0, 0.3).toarray()
    assert C.ravel().tolist() == [1, 0, 0]
    # steps on the dt grid: step 10 at dt = 0.1 is t = 1.0000000000000002 in floating point, bin 1 of 1.0
    C = ss.binned_spike_counts([0], [10 * 0.1], 1, 3.0, 1.0, dt=0.1).toarray()
    assert C.ravel().tolist() == [0, 1, 0]


def test_binned_correlation_identical_and_complementary_trains():
    # cell 1 = cell 0 (identical), cell 2 fires exactly in the bins where cell 0 is silent (complement)
    bins0 = np.array([0, 2, 3, 6, 9])
    comp = np.setdiff1d(np.arange(10), bins0)
    t0 = bins0 + 0.5
    i = np.concatenate([np.zeros(5), np.ones(5), np.full(comp.size, 2)])
    t = np.concatenate([t0, t0, comp + 0.5])
    pair01 = ss.binned_pairwise_correlation(i, t, 3, 10.0, 1.0, active=[True, True, False])
    assert pair01["mean"] == pytest.approx(1.0) and pair01["n_pairs"] == 1
    pair02 = ss.binned_pairwise_correlation(i, t, 3, 10.0, 1.0, active=[True, False, True])
    assert pair02["mean"] == pytest.approx(-1.0)
    # all three: (0,1) = 1, (0,2) = −1, (1,2) = −1 -> −1/3
    assert ss.binned_pairwise_correlation(i, t, 3, 10.0, 1.0)["mean"] == pytest.approx(-1 / 3)


def test_binned_correlation_by_hand():
    # 4 bins: a = [1, 0, 1, 0], b = [1, 1, 0, 0]: means 1/2, cov = 1/4 - 1/4 = 0 -> ρ = 0
    r = ss.binned_pairwise_correlation([0, 0, 1, 1], [0.5, 2.5, 0.5, 1.5], 2, 4.0, 1.0)
    assert r["mean"] == pytest.approx(0.0, abs=1e-15)
    # a = [2, 0, 1, 0], b = [1, 0, 0, 0]: Σab/n − āb̄ = 2/4 − (3/4)(1/4) = 5/16; var a = 5/4 − 9/16 = 11/16,
    # var b = 1/4 − 1/16 = 3/16 -> ρ = 5 / √33
    r = ss.binned_pairwise_correlation([0, 0, 0, 1], [0.1, 0.2, 2.5, 0.7], 2, 4.0, 1.0)
    assert r["mean"] == pytest.approx(5 / np.sqrt(33))
    assert r["n_bins"] == 4 and r["null_sd"] == pytest.approx(1 / np.sqrt(3))


def test_binned_correlation_cell_selection_and_constant_trains():
    # cell 0 fires in bins 0, 1; cell 1 in bin 0; cell 2 never; cell 3 in every bin (constant)
    i = [0, 0, 1, 3, 3, 3, 3]
    t = [0.5, 1.5, 0.5, 0.5, 1.5, 2.5, 3.5]
    # default: cells with >= 1 spike (0, 1, 3); cell 3 is constant: its 2 pairs are excluded and counted
    r = ss.binned_pairwise_correlation(i, t, 4, 4.0, 1.0)
    assert (r["n_cells"], r["n_constant"], r["n_pairs"], r["n_pairs_excluded"]) == (3, 1, 1, 2)
    assert r["mean"] == pytest.approx(np.sqrt(1 / 3))  # a = [1,1,0,0], b = [1,0,0,0]
    # an explicit mask that includes the silent cell: it is constant too
    r = ss.binned_pairwise_correlation(i, t, 4, 4.0, 1.0, active=[True, True, True, False])
    assert (r["n_cells"], r["n_constant"], r["n_pairs"], r["n_pairs_excluded"]) == (3, 1, 1, 2)
    # min_spikes=2 keeps cells 0 and 3 only: one non-constant cell, no pair
    r = ss.binned_pairwise_correlation(i, t, 4, 4.0, 1.0, min_spikes=2)
    assert np.isnan(r["mean"]) and r["n_pairs"] == 0 and r["n_pairs_excluded"] == 1


def test_independent_poisson_trains_have_near_zero_binned_correlation():
    rng = np.random.default_rng(11)
    rates = rng.uniform(5, 30, 40)
    i, t, k = _poisson_trains(rates, 2.0, rng, n_trials=5)
    for bw in (0.001, 0.01, 0.1):
        r = ss.binned_pairwise_correlation(i, t, 40, 2.0, bw, trial=k, n_trials=5)
        assert r["n_pairs"] == 40 * 39 // 2
        # the estimator's exact s.d. for independent trains; 5 s.d. leaves a false alarm rate of ~1e-6
        assert abs(r["mean"]) < 5 * r["null_sd"], (bw, r)
    null = ss.independent_correlation_null(780, 10_000)
    assert null["mean"] == 0.0 and null["sd"] == pytest.approx(1 / np.sqrt(780 * 9_999))


def test_independent_correlation_null_sd_matches_simulation():
    # mean pairwise correlations of independent Poisson trains over many seeds: mean ≈ 0, s.d. ≈ the formula
    rng = np.random.default_rng(12)
    vals = [ss.poisson_binned_correlation(np.full(6, 8.0), 1, 1.0, 0.05, rng)["mean"] for _ in range(400)]
    sd = ss.independent_correlation_null(15, 20)["sd"]
    assert abs(np.mean(vals)) < 4 * sd / np.sqrt(400)
    assert np.std(vals, ddof=1) == pytest.approx(sd, rel=0.15)


def test_binned_correlation_grows_with_bin_for_jittered_copies():
    # cell 1 copies cell 0's spikes with ±5 ms jitter: uncorrelated at 1 ms bins, strongly correlated at 100 ms
    rng = np.random.default_rng(13)
    t0 = np.sort(rng.uniform(0, 20.0, 400))
    t1 = np.clip(t0 + rng.uniform(-0.005, 0.005, t0.size), 0, 20.0 - 1e-9)
    i = np.r_[np.zeros(t0.size), np.ones(t1.size)]
    t = np.r_[t0, t1]
    r = {bw: ss.binned_pairwise_correlation(i, t, 2, 20.0, bw)["mean"] for bw in (0.001, 0.01, 0.1, 1.0)}
    assert r[0.001] < 0.15 < r[0.01] < r[0.1] < r[1.0]
    assert r[1.0] > 0.9


def test_one_spike_per_bin_population_matches_the_exclusive_formula():
    # in each 1-ms step at most one of 4 cells fires (probabilities p_i): ρ_ij = −√(p_i p_j / ((1−p_i)(1−p_j)))
    rng = np.random.default_rng(14)
    p = np.array([0.05, 0.1, 0.15, 0.2])
    n = 200_000
    who = rng.choice(5, size=n, p=np.r_[p, 1 - p.sum()])
    step = np.flatnonzero(who < 4)
    r = ss.binned_pairwise_correlation(who[step], step, 4, float(n), 1.0, dt=1.0)
    assert r["mean"] == pytest.approx(ss.exclusive_bernoulli_correlation(p), abs=0.005)
    q = np.sqrt(p / (1 - p))
    assert ss.exclusive_bernoulli_correlation(p) == pytest.approx(-np.mean([q[a] * q[b] for a in range(4)
                                                                            for b in range(a + 1, 4)]))


@pytest.mark.parametrize("kw, match", [
    ({"bin_width": 0.0}, "bin_width"),
    ({"bin_width": -1.0}, "bin_width"),
    ({"bin_width": 0.05, "dt": 0.1}, "bin_width"),  # below the time step: not measurable
    ({"bin_width": 0.15, "dt": 0.1}, "bin_width"),  # not a whole multiple of dt
    ({"bin_width": 20.0}, "bin_width"),  # longer than the trial
    ({"duration": 0.0}, "duration"),
    ({"dt": 0.0}, "dt"),
    ({"n_neurons": 1}, "spike_i"),  # cell 1 out of range
    ({"trial": [0, 2], "n_trials": 2}, "trial"),
    ({"spike_t": [0.5, 10.0]}, "spike_t"),  # at or after the end of the trial
    ({"spike_t": [-0.1, 1.0]}, "spike_t"),
    ({"active": [True]}, "active"),
    ({"min_spikes": -1}, "min_spikes"),
])
def test_binned_correlation_bad_input_names_the_argument(kw, match):
    args = {"spike_i": [0, 1], "spike_t": [0.5, 1.5], "n_neurons": 2, "duration": 10.0, "bin_width": 1.0}
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        ss.binned_pairwise_correlation(**args)


def test_poisson_binned_correlation_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mean_counts"):
        ss.poisson_binned_correlation(np.array([1.0, -1.0]), 2, 1.0, 0.1, rng)
    with pytest.raises(ValueError, match="bin_width"):
        ss.poisson_binned_correlation(np.ones(3), 2, 1.0, 0.05, rng, dt=0.1)
    with pytest.raises(ValueError, match="p must"):
        ss.exclusive_bernoulli_correlation([0.5, 1.0])


def test_cross_cell_lag_ratio_by_hand_and_for_independent_trains():
    # cell 0 at steps 0, 5; cell 1 at step 1: ordered distinct-cell pairs at lag 1: (0@0, 1@1) -> 1 pair;
    # expected at lag 1 for counts (2, 1) in 10 steps: (9 − 5)(10 − 1)/100 = 0.36
    r = ss.cross_cell_lag_ratio([0, 0, 1], [0, 5, 1], 10, 4)
    assert r[1] == pytest.approx(1 / 0.36)
    assert r[0] == 0.0 and r[2] == 0.0  # no pair at lags 0 and 2
    assert r[4] == pytest.approx(1 / (4 * 6 / 100))  # (1@1, 0@5)
    # a same-cell pair (0@0, 0@5) at lag 5 is not counted; the expectation at lag 5 is 4·5/100
    assert ss.cross_cell_lag_ratio([0, 0, 1], [0, 5, 1], 10, 5)[5] == 0.0
    # independent Bernoulli trains: ≈ 1 at every lag; ~7,600 pairs expected per lag, so 1 s.d. ≈ 0.012
    rng = np.random.default_rng(15)
    n_steps, n_cells = 200_000, 20
    cells, steps = np.nonzero(rng.random((n_cells, n_steps)) < 0.01)
    r = ss.cross_cell_lag_ratio(cells, steps, n_steps, 10)
    assert np.all(np.abs(r - 1) < 0.07), r
    # copies one step later: the ratio peaks at lag 1
    r = ss.cross_cell_lag_ratio(np.r_[np.zeros(500), np.ones(500)], np.r_[np.arange(500) * 7, np.arange(500) * 7 + 1],
                                4000, 3)
    # 500 pairs at lag 1 against (1000² − 2·500²)·3999/4000² = 124.97 expected
    assert r[1] == pytest.approx(500 / (500_000 * 3999 / 4000 ** 2)) and r[1] == r.max()
    with pytest.raises(ValueError, match="max_lag"):
        ss.cross_cell_lag_ratio([0], [1], 10, 10)
    with pytest.raises(ValueError, match="spike_step"):
        ss.cross_cell_lag_ratio([0], [10], 10, 2)


def test_trial_repeat_fraction_by_hand():
    # trial 0: cell 0 at 10, 20; cell 1 at 30. trial 1: the same, cell 0's second spike 2 steps late
    i = [0, 0, 1, 0, 0, 1]
    t = [10, 20, 30, 10, 22, 30]
    k = [0, 0, 0, 1, 1, 1]
    assert ss.trial_repeat_fraction(i, t, k, 2, window=0) == pytest.approx(2 / 3)
    assert ss.trial_repeat_fraction(i, t, k, 2, window=2) == pytest.approx(1.0)
    # a spike of another cell at the same step does not count
    assert ss.trial_repeat_fraction([0, 1], [5, 5], [0, 1], 2, window=0) == 0.0
    # identical trials -> 1; a trial without spikes is skipped as a source, counts as a miss as a target
    assert ss.trial_repeat_fraction([3, 3, 3], [1, 1, 1], [0, 1, 2], 3) == 1.0
    assert ss.trial_repeat_fraction([3, 3], [1, 1], [0, 1], 3) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n_trials"):
        ss.trial_repeat_fraction([0], [1], [0], 1)
    with pytest.raises(ValueError, match="trial index"):
        ss.trial_repeat_fraction([0], [1], [2], 2)
    with pytest.raises(ValueError, match="whole time steps"):
        ss.trial_repeat_fraction([0], [1.5], [0], 2)


def test_psth_poisson_trials_keep_the_firing_probability_and_decorrelate_trials():
    rng = np.random.default_rng(3)
    n_steps, n_trials = 4000, 10
    # a perfectly repeated pattern: every trial identical
    cells = rng.integers(0, 5, 400)
    steps = rng.choice(n_steps, 400, replace=False)
    i = np.tile(cells, n_trials)
    t = np.tile(steps, n_trials)
    k = np.repeat(np.arange(n_trials), 400)
    assert ss.trial_repeat_fraction(i, t, k, n_trials, 0) == 1.0
    si, st, sk = ss.psth_poisson_trials(i, t, k, 5, n_trials, n_steps, rng)
    # probability 1 where the pattern fires: the surrogate is the same pattern
    assert len(si) == len(i) and ss.trial_repeat_fraction(si, st, sk, n_trials, 0) == 1.0
    # half the trials fire, half are silent: p = 0.5 per spike; surrogate repeats ≈ 0.5 of spikes at window 0
    half = k < n_trials // 2
    si, st, sk = ss.psth_poisson_trials(i[half], t[half], k[half], 5, n_trials, n_steps, rng)
    assert abs(len(si) / (len(i) // 2) - 1) < 0.1
    assert ss.trial_repeat_fraction(si, st, sk, n_trials, 0) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="out of range"):
        ss.psth_poisson_trials([0], [n_steps], [0], 5, 2, n_steps, rng)
