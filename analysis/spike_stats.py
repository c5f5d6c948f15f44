"""Variability, correlation and balance statistics of spike trains (pure numpy).

Used for Brendel et al. (2020), https://doi.org/10.1371/journal.pcbi.1007692, Fig 4: after
learning, the E–I network's spike trains are Poisson-like — coefficient of variation (CV)
of the inter-spike intervals and Fano factor of the spike counts near 1, pairwise
spike-count correlations near 0 — while its excitatory and inhibitory input currents are
tightly balanced.  Conventions follow the authors' ``FanoCV.m``: variances and standard
deviations with the n − 1 normalisation, ISIs pooled over trials (never across a trial
boundary), and population averages over the cells whose mean count per trial exceeds
``min_mean_count`` (authors: 1).

Spikes are given as parallel arrays: cell index, time (in steps or seconds, any unit —
CVs are unit-free) and, where trials matter, the trial index.
"""

from __future__ import annotations

import numpy as np


def _spikes(spike_i, spike_t, trial=None):
    spike_i = np.asarray(spike_i, dtype=np.int64)
    spike_t = np.asarray(spike_t, dtype=float)
    trial = np.zeros(spike_i.shape, dtype=np.int64) if trial is None else np.asarray(trial, dtype=np.int64)
    if not (spike_i.shape == spike_t.shape == trial.shape) or spike_i.ndim != 1:
        raise ValueError(
            f"spike_i {spike_i.shape}, spike_t {spike_t.shape} and trial {trial.shape} must be 1-D and equal"
        )
    if spike_i.size and spike_i.min() < 0:
        raise ValueError("negative cell index")
    return spike_i, spike_t, trial


def interspike_intervals(spike_i, spike_t, n_neurons: int, trial=None) -> list[np.ndarray]:
    """ISIs of every cell, pooled over trials (no interval spans two trials)."""
    spike_i, spike_t, trial = _spikes(spike_i, spike_t, trial)
    if spike_i.size and spike_i.max() >= n_neurons:
        raise ValueError(f"cell index out of range [0, {n_neurons})")
    order = np.lexsort((spike_t, trial, spike_i))
    i, t, k = spike_i[order], spike_t[order], trial[order]
    same = (i[1:] == i[:-1]) & (k[1:] == k[:-1])
    d = np.diff(t)[same]
    owner = i[1:][same]
    return [d[owner == n] for n in range(n_neurons)]


def coefficient_of_variation(intervals) -> float:
    """std/mean of a set of intervals (n − 1 normalisation); NaN with fewer than 2 intervals."""
    x = np.asarray(intervals, dtype=float)
    if x.size < 2:
        return float("nan")
    if np.any(x < 0):
        raise ValueError("intervals must be non-negative")
    m = x.mean()
    if m == 0:
        return float("nan")
    return float(x.std(ddof=1) / m)


def isi_cv(spike_i, spike_t, n_neurons: int, trial=None) -> np.ndarray:
    """CV of the ISIs of every cell (NaN for cells with fewer than two ISIs)."""
    return np.array([coefficient_of_variation(d) for d in interspike_intervals(spike_i, spike_t, n_neurons,
                                                                                 trial)])


def spike_counts_per_trial(spike_i, trial, n_neurons: int, n_trials: int) -> np.ndarray:
    """(n_trials, n_neurons) spike counts."""
    spike_i = np.asarray(spike_i, dtype=np.int64)
    trial = np.asarray(trial, dtype=np.int64)
    if spike_i.shape != trial.shape:
        raise ValueError(f"spike_i {spike_i.shape} and trial {trial.shape} differ in shape")
    if spike_i.size and (spike_i.min() < 0 or spike_i.max() >= n_neurons):
        raise ValueError(f"cell index out of range [0, {n_neurons})")
    if trial.size and (trial.min() < 0 or trial.max() >= n_trials):
        raise ValueError(f"trial index out of range [0, {n_trials})")
    counts = np.zeros((n_trials, n_neurons))
    np.add.at(counts, (trial, spike_i), 1.0)
    return counts


def fano_factor(counts) -> np.ndarray:
    """var/mean over trials of every cell's count (n − 1 normalisation); NaN if the mean is 0.

    ``counts`` is (n_trials, n_neurons) with at least two trials.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] < 2:
        raise ValueError(f"counts must be (n_trials >= 2, n_neurons), got {counts.shape}")
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative")
    m = counts.mean(axis=0)
    v = counts.var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m > 0, v / np.where(m > 0, m, 1.0), np.nan)


def count_correlations(counts) -> np.ndarray:
    """(n_neurons, n_neurons) Pearson correlations of the counts over trials; NaN rows for constant cells."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] < 2:
        raise ValueError(f"counts must be (n_trials >= 2, n_neurons), got {counts.shape}")
    z = counts - counts.mean(axis=0)
    sd = np.sqrt((z * z).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = z / np.where(sd > 0, sd, np.nan)
    return z.T @ z


def mean_pairwise_correlation(counts, active=None) -> float:
    """Mean of the count correlations over distinct pairs of cells (constant cells left out).

    ``active`` optionally restricts the pairs to a boolean mask of cells.
    """
    C = count_correlations(counts)
    n = C.shape[0]
    mask = ~np.eye(n, dtype=bool)
    if active is not None:
        active = np.asarray(active, dtype=bool)
        mask &= active[:, None] & active[None, :]
    vals = C[mask]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def active_cells(counts, min_mean_count: float = 1.0) -> np.ndarray:
    """Cells whose mean count per trial exceeds ``min_mean_count`` (authors: > 1)."""
    return np.asarray(counts, dtype=float).mean(axis=0) > min_mean_count


def current_balance(exc, inh) -> np.ndarray:
    """Per-cell Pearson correlation over time of the excitatory current and minus the inhibitory one.

    ``exc`` and ``inh`` are (n_steps, n_cells), inhibitory currents negative (or positive: only
    the sign of the result depends on it, and −inh is used so that inhibition tracking
    excitation gives +1).  NaN for a cell whose current is constant.
    """
    exc = np.asarray(exc, dtype=float)
    inh = np.asarray(inh, dtype=float)
    if exc.shape != inh.shape or exc.ndim != 2 or exc.shape[0] < 2:
        raise ValueError(f"exc {exc.shape} and inh {inh.shape} must be equal (n_steps >= 2, n_cells)")
    a = exc - exc.mean(axis=0)
    b = -inh - (-inh).mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=0) / np.where(den > 0, den, 1.0), np.nan)


def net_to_total_ratio(exc, inh) -> np.ndarray:
    """Per-cell std of the net current exc + inh over the mean of the std of exc and of inh.

    0 for perfectly cancelling currents, ≈ √2 for independent currents of equal size.
    """
    exc = np.asarray(exc, dtype=float)
    inh = np.asarray(inh, dtype=float)
    if exc.shape != inh.shape or exc.ndim != 2:
        raise ValueError(f"exc {exc.shape} and inh {inh.shape} must be equal 2-D arrays")
    scale = 0.5 * (exc.std(axis=0) + inh.std(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (exc + inh).std(axis=0) / np.where(scale > 0, scale, 1.0), np.nan)


def population_count_stats(counts, active=None) -> dict:
    """How the cells' count fluctuations add up in the population (cells restricted to ``active``).

    ``variance_ratio`` = var(Σ_i n_i) / Σ_i var(n_i): 1 for independent cells, → 0 when the
    population count is fixed while single cells vary (negative correlations); then the mean
    pairwise correlation approaches ``correlation_floor`` = −1/(n − 1) for n cells of equal variance.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] < 2:
        raise ValueError(f"counts must be (n_trials >= 2, n_neurons), got {counts.shape}")
    if active is not None:
        counts = counts[:, np.asarray(active, dtype=bool)]
    n = counts.shape[1]
    total = counts.sum(axis=1)
    var_sum = float(counts.var(axis=0, ddof=1).sum())
    return {
        "variance_ratio": float(total.var(ddof=1) / var_sum) if var_sum > 0 else float("nan"),
        "population_fano": float(total.var(ddof=1) / total.mean()) if total.mean() > 0 else float("nan"),
        "correlation_floor": -1.0 / (n - 1) if n >= 2 else float("nan"),
    }


def poisson_reference(mean_counts, n_trials: int, duration: float, rng: np.random.Generator,
                      min_mean_count: float = 1.0) -> dict:
    """CV and Fano factor that independent homogeneous Poisson trains would show under the same estimator.

    Every cell fires at rate ``mean_counts[i] / duration`` in ``n_trials`` trials of ``duration``
    (any time unit); the trains are summarised with :func:`variability_summary`.  Short
    trials bias the ISI CV of a Poisson train below 1 (intervals longer than the trial are
    never seen), so a network's CV is judged against this reference, not against 1.
    """
    mean_counts = np.asarray(mean_counts, dtype=float)
    if mean_counts.ndim != 1 or np.any(mean_counts < 0) or duration <= 0 or n_trials < 2:
        raise ValueError("mean_counts must be a 1-D array >= 0, duration > 0 and n_trials >= 2")
    n = rng.poisson(mean_counts[None, :], size=(n_trials, mean_counts.size))
    trial, cell = np.nonzero(n)
    reps = n[trial, cell]
    spike_i = np.repeat(cell, reps)
    trial = np.repeat(trial, reps)
    spike_t = rng.uniform(0.0, duration, spike_i.size)
    return variability_summary(spike_i, spike_t, trial, mean_counts.size, n_trials, min_mean_count)


def variability_summary(spike_i, spike_t, trial, n_neurons: int, n_trials: int,
                        min_mean_count: float = 1.0) -> dict:
    """CV, Fano factor and pairwise count correlation of one stimulus condition (authors' averaging).

    Averages run over the cells with mean count per trial > ``min_mean_count``.
    """
    counts = spike_counts_per_trial(spike_i, trial, n_neurons, n_trials)
    act = active_cells(counts, min_mean_count)
    cv = isi_cv(spike_i, spike_t, n_neurons, trial)
    ff = fano_factor(counts)

    def avg(v):
        v = v[act & np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    return {
        "cv": avg(cv),
        "fano": avg(ff),
        "pairwise_correlation": mean_pairwise_correlation(counts, act) if act.sum() >= 2 else float("nan"),
        "n_active": int(act.sum()),
        "mean_count": float(counts.mean()),
        "mean_counts": counts.mean(axis=0),
        **(population_count_stats(counts, act) if act.sum() >= 2 else
           {"variance_ratio": float("nan"), "population_fano": float("nan"), "correlation_floor": float("nan")}),
    }


# ----------------------------------------------------------------------------------------
# binned spike-train correlations
# ----------------------------------------------------------------------------------------
# Brendel et al. (2020), https://doi.org/10.1371/journal.pcbi.1007692, report pairwise
# correlations "< 0.001" for the Fig 4 network.  The trial count correlation above
# (``mean_pairwise_correlation`` of whole-trial counts) is a different statistic: when the
# population count of n cells is precise it is pushed towards −1/(n − 1).  The functions
# below measure the correlation of the spike trains themselves, counted in bins of a given
# width, for which independent trains give exactly 0 on average.

_REL_TOL = 1e-9


def _check_bin(bin_width: float, duration: float, dt: float | None) -> int:
    """Number of whole bins per trial; raises ValueError naming the bad argument."""
    if not np.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be > 0, got {duration}")
    if not np.isfinite(bin_width) or bin_width <= 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width}")
    if dt is not None:
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        ratio = bin_width / dt
        if ratio < 1 - _REL_TOL:
            raise ValueError(f"bin_width={bin_width:g} is below the time step dt={dt:g}: spike times are only "
                             "known to one step, so a finer bin is not measurable")
        if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
            raise ValueError(f"bin_width={bin_width:g} must be a whole multiple of dt={dt:g} (bins of unequal "
                             "numbers of steps would alias the step grid)")
    n_bins = int(np.floor(duration / bin_width * (1 + _REL_TOL)))
    if n_bins < 1:
        raise ValueError(f"bin_width={bin_width:g} is longer than the trial (duration={duration:g})")
    return n_bins


def binned_spike_counts(spike_i, spike_t, n_neurons: int, duration: float, bin_width: float, trial=None,
                        n_trials: int = 1, dt: float | None = None):
    """Spike counts in bins of ``bin_width``: a sparse (n_trials · n_bins, n_neurons) matrix (scipy CSC).

    ``spike_t`` is the time of each spike from the start of its trial, in the unit of ``duration``
    and ``bin_width`` (seconds, or steps with ``dt = 1``).  Every trial of ``duration`` is cut into
    ``n_bins = floor(duration / bin_width)`` whole bins, trial after trial (no bin spans two trials);
    spikes in a trailing partial bin are dropped.  With ``dt`` (the time step on which spike times
    lie) a ``bin_width`` below ``dt`` or not a whole multiple of it raises ValueError, and times are
    assigned to bins on the step grid (immune to rounding of ``step · dt``).
    """
    from scipy import sparse

    n_bins = _check_bin(float(bin_width), float(duration), None if dt is None else float(dt))
    if int(n_neurons) < 1:
        raise ValueError(f"n_neurons must be >= 1, got {n_neurons}")
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    spike_i, spike_t, trial = _spikes(spike_i, spike_t, trial)
    if spike_i.size and spike_i.max() >= n_neurons:
        raise ValueError(f"spike_i: cell index out of range [0, {n_neurons})")
    if trial.size and (trial.min() < 0 or trial.max() >= n_trials):
        raise ValueError(f"trial: index out of range [0, {n_trials})")
    if spike_t.size and (not np.all(np.isfinite(spike_t)) or spike_t.min() < 0
                         or spike_t.max() >= duration):
        raise ValueError(f"spike_t: times must lie in [0, duration={duration:g}) within each trial")
    if dt is None:
        b = np.floor(spike_t / bin_width * (1 + _REL_TOL)).astype(np.int64)
    else:
        steps = np.rint(spike_t / dt).astype(np.int64)
        b = steps // int(round(bin_width / dt))
    keep = b < n_bins
    rows = trial[keep] * n_bins + b[keep]
    data = np.ones(rows.size)
    return sparse.csc_matrix((data, (rows, spike_i[keep])), shape=(int(n_trials) * n_bins, int(n_neurons)))


def binned_pairwise_correlation(spike_i, spike_t, n_neurons: int, duration: float, bin_width: float, trial=None,
                                n_trials: int = 1, dt: float | None = None, active=None,
                                min_spikes: int = 1) -> dict:
    """Mean pairwise Pearson correlation of binned spike trains (Brendel et al. 2020, Fig 4).

    Each cell's train is counted in bins (:func:`binned_spike_counts`; trials are concatenated, so
    the correlation is taken over all bins of all trials) and the Pearson correlation of every pair
    of selected cells is averaged.  Cell selection is explicit: ``active`` is a boolean mask of
    ``n_neurons`` cells, or, if None (the default), the cells with at least ``min_spikes`` spikes in
    the data (default 1: every cell that fired).  A selected cell whose binned train is constant
    (no spike, or a spike in every bin) has no correlation: its pairs are left out and counted.

    Returns ``mean`` (NaN if no pair is left), ``sd`` (s.d. over pairs), ``n_pairs`` (pairs
    averaged), ``n_cells`` (cells selected), ``n_constant`` (of them, constant trains),
    ``n_pairs_excluded`` (pairs left out for a constant train), ``n_bins`` (bins in all trials), and
    ``null_sd`` = 1/√(n_pairs (n_bins − 1)): the s.d. of the mean for independent trains
    (:func:`independent_correlation_null`).
    """
    C = binned_spike_counts(spike_i, spike_t, n_neurons, duration, bin_width, trial, n_trials, dt)
    n_bins = C.shape[0]
    total = np.asarray(C.sum(axis=0)).ravel()
    if active is None:
        if min_spikes < 0:
            raise ValueError(f"min_spikes must be >= 0, got {min_spikes}")
        sel = total >= min_spikes
    else:
        sel = np.asarray(active, dtype=bool)
        if sel.shape != (int(n_neurons),):
            raise ValueError(f"active must be a boolean mask of shape ({n_neurons},), got {sel.shape}")
    idx = np.flatnonzero(sel)
    Cs = C[:, idx]
    S = np.asarray(Cs.sum(axis=0), dtype=float).ravel()  # Σ_b c_ib
    G = (Cs.T @ Cs).toarray().astype(float)  # Σ_b c_ib c_jb (exact integers)
    # n² × covariance and n² × variances from integer sums: no cancellation error
    cov = n_bins * G - np.outer(S, S)
    var = np.diag(cov).copy()
    ok = var > 0
    k, k_ok = idx.size, int(ok.sum())
    out = {"n_cells": int(k), "n_constant": int(k - k_ok), "n_bins": int(n_bins),
           "n_pairs_excluded": int(k * (k - 1) // 2 - k_ok * (k_ok - 1) // 2)}
    if k_ok < 2:
        return {**out, "mean": float("nan"), "sd": float("nan"), "n_pairs": 0, "null_sd": float("nan")}
    sd = np.sqrt(var[ok])
    R = cov[np.ix_(ok, ok)] / np.outer(sd, sd)
    vals = R[np.triu_indices(k_ok, 1)]
    n_pairs = vals.size
    return {**out, "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if n_pairs > 1 else float("nan"),
            "n_pairs": int(n_pairs), "null_sd": independent_correlation_null(n_pairs, n_bins)["sd"]}


def independent_correlation_null(n_pairs: int, n_bins: int) -> dict:
    """Expectation and s.d. of the mean pairwise Pearson correlation of *independent* binned trains.

    Exact, for any count distribution, whenever the bins of one train of each pair are exchangeable
    (e.g. a homogeneous Poisson train) and no train is constant: given the other train, a
    correlation has mean 0 and mean square 1/(n_bins − 1), and the correlations of different pairs
    are uncorrelated, so the mean over ``n_pairs`` pairs has expectation 0 and s.d.
    1/√(n_pairs (n_bins − 1)).
    """
    if n_pairs < 1 or n_bins < 2:
        return {"mean": 0.0, "sd": float("nan")}
    return {"mean": 0.0, "sd": float(1.0 / np.sqrt(n_pairs * (n_bins - 1)))}


def poisson_binned_correlation(mean_counts, n_trials: int, duration: float, bin_width: float,
                               rng: np.random.Generator, dt: float | None = None, active=None,
                               min_spikes: int = 1) -> dict:
    """:func:`binned_pairwise_correlation` of independent homogeneous Poisson trains at the same rates.

    Cell i fires at rate ``mean_counts[i] / duration`` in each of ``n_trials`` trials of ``duration``
    (spike times continuous, uniform in the trial); the trains are binned and summarised exactly as
    the network's (pass the network's ``active`` mask so that the same cells are paired).  Its
    expectation is 0 (:func:`independent_correlation_null`, reported as ``null_sd``); the value
    returned is one seeded realisation of the estimator.
    """
    mean_counts = np.asarray(mean_counts, dtype=float)
    if mean_counts.ndim != 1 or mean_counts.size < 1 or np.any(~np.isfinite(mean_counts)) or np.any(mean_counts < 0):
        raise ValueError("mean_counts must be a non-empty 1-D array of finite values >= 0")
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    _check_bin(float(bin_width), float(duration), None if dt is None else float(dt))
    n = rng.poisson(mean_counts[None, :], size=(int(n_trials), mean_counts.size))
    trial, cell = np.nonzero(n)
    reps = n[trial, cell]
    spike_i = np.repeat(cell, reps)
    trial = np.repeat(trial, reps)
    spike_t = rng.uniform(0.0, duration, spike_i.size)
    # continuous times: bin them directly (dt=None), the bin width was checked against dt above
    return binned_pairwise_correlation(spike_i, spike_t, mean_counts.size, duration, bin_width, trial, n_trials,
                                       None, active, min_spikes)


def exclusive_bernoulli_correlation(p) -> float:
    """Mean pairwise correlation of binary trains that never fire in the same bin, with per-bin spike
    probabilities ``p`` (one per cell, 0 < p < 1): ρ_ij = −√(p_i p_j / ((1 − p_i)(1 − p_j))).

    The correlation that at most one spike per bin in the whole population forces by itself (the
    one-spike-per-step rule of the Fig 4 network at a bin of one time step), with no other dependence.
    """
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p >= 1):
        raise ValueError("p must be a 1-D array of probabilities in [0, 1)")
    p = p[p > 0]
    if p.size < 2:
        return float("nan")
    q = np.sqrt(p / (1 - p))
    R = -np.outer(q, q)
    return float(R[np.triu_indices(p.size, 1)].mean())


def cross_cell_lag_ratio(spike_i, spike_step, n_steps: int, max_lag: int) -> np.ndarray:
    """Short-lag cross-correlogram of a population, pooled over all ordered pairs of distinct cells.

    Entry ``k`` (k = 0 … ``max_lag`` steps) is the number of spike pairs (a spike of cell x at step t,
    a spike of another cell y at step t + k) divided by the number expected for independent
    homogeneous trains with the same spike counts, (N² − Σ n_x²)(n_steps − k)/n_steps².  1: no
    dependence at that lag; > 1: cells fire together at that lag (e.g. volleys within a millisecond,
    which make binned correlations positive at bins of that size); at k = 0 a one-spike-per-step rule
    gives 0.  ``spike_step`` is the integer time step of each spike in [0, ``n_steps``).  Used to
    explain the sign of the binned correlations of Brendel et al. (2020) Fig 4,
    https://doi.org/10.1371/journal.pcbi.1007692.
    """
    spike_i = np.asarray(spike_i, dtype=np.int64)
    step = np.asarray(spike_step)
    if spike_i.shape != step.shape or spike_i.ndim != 1:
        raise ValueError(f"spike_i {spike_i.shape} and spike_step {step.shape} must be 1-D and equal")
    if step.size and not np.all(step == np.round(step)):
        raise ValueError("spike_step must hold whole time steps")
    step = step.astype(np.int64)
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if not 0 <= int(max_lag) < int(n_steps):
        raise ValueError(f"max_lag must be in [0, n_steps), got {max_lag}")
    if spike_i.size and (spike_i.min() < 0 or step.min() < 0 or step.max() >= n_steps):
        raise ValueError(f"spike_i must be >= 0 and spike_step in [0, {n_steps})")
    n_steps, max_lag = int(n_steps), int(max_lag)
    P = np.bincount(step, minlength=n_steps).astype(float)  # population count per step
    keys, mult = np.unique(spike_i * n_steps + step, return_counts=True)  # (cell, step) with multiplicity
    n_cell = np.bincount(spike_i).astype(float)
    out = np.full(max_lag + 1, np.nan)
    for k in range(max_lag + 1):
        total = float(P[:n_steps - k] @ P[k:])
        # same-cell pairs at lag k: (cell, step) and (cell, step + k) both present
        pos = np.searchsorted(keys, keys + k)
        pos_ok = pos < keys.size
        hit = np.zeros(keys.size, dtype=bool)
        hit[pos_ok] = keys[pos[pos_ok]] == keys[pos_ok] + k
        hit &= (keys % n_steps) + k < n_steps  # never into the next cell's range
        same = float(np.sum(mult[hit] * mult[pos[hit]])) if k > 0 else float(np.sum(mult ** 2))
        expected = (n_cell.sum() ** 2 - np.sum(n_cell ** 2)) * (n_steps - k) / n_steps ** 2
        out[k] = (total - same) / expected if expected > 0 else np.nan
    return out


def trial_repeat_fraction(spike_i, spike_step, trial, n_trials: int, window: int = 1) -> float:
    """Share of spikes that recur in another trial: for every ordered pair of trials (a, b), the fraction of
    a's spikes for which the same cell fires in b within ±``window`` steps, averaged over the pairs that
    have spikes in a.  1 for identical trials; for independent trains it is the chance of a coincidence.

    Used for the trial-to-trial variability of a precise spike code (Brendel et al. 2020, Fig 2 E–F,
    https://doi.org/10.1371/journal.pcbi.1007692): the same input, different initial states and noise.
    """
    spike_i, t, tr = _spikes(spike_i, spike_step, trial)
    if t.size and not np.all(t == np.round(t)):
        raise ValueError("spike_step must hold whole time steps")
    if int(n_trials) < 2:
        raise ValueError(f"n_trials must be >= 2, got {n_trials}")
    if int(window) < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    if tr.size and (tr.min() < 0 or tr.max() >= n_trials):
        raise ValueError(f"trial index out of range [0, {n_trials})")
    t = t.astype(np.int64)
    span = int(t.max()) + 2 * int(window) + 2 if t.size else 1
    keys = [np.unique(spike_i[tr == k] * span + t[tr == k]) for k in range(int(n_trials))]
    fracs = []
    for a in range(int(n_trials)):
        ka = spike_i[tr == a] * span + t[tr == a]
        if ka.size == 0:
            continue
        for b in range(int(n_trials)):
            if a == b:
                continue
            kb = keys[b]
            hit = np.zeros(ka.size, dtype=bool)
            for s in range(-int(window), int(window) + 1):
                pos = np.searchsorted(kb, ka + s)
                ok = pos < kb.size
                hit[ok] |= kb[pos[ok]] == ka[ok] + s
            fracs.append(hit.mean())
    return float(np.mean(fracs)) if fracs else float("nan")


def psth_poisson_trials(spike_i, spike_step, trial, n_neurons: int, n_trials: int, n_steps: int,
                        rng: np.random.Generator):
    """Surrogate trials with the same per-step firing probability as the data, independent between trials:
    each cell fires in step s of each trial with probability (its count at step s over the trials)/n_trials
    (at most one spike per cell and step).  Returns (spike_i, spike_step, trial) of the surrogate."""
    spike_i, t, tr = _spikes(spike_i, spike_step, trial)
    t = t.astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= n_steps or spike_i.max() >= n_neurons):
        raise ValueError("spike_step or spike_i out of range")
    psth = np.zeros((n_neurons, n_steps))
    np.add.at(psth, (spike_i, t), 1.0)
    prob = np.minimum(psth / int(n_trials), 1.0)
    cells, steps = np.nonzero(prob)
    out_i, out_t, out_k = [], [], []
    for k in range(int(n_trials)):
        fire = rng.random(cells.size) < prob[cells, steps]
        out_i.append(cells[fire])
        out_t.append(steps[fire])
        out_k.append(np.full(int(fire.sum()), k))
    return np.concatenate(out_i), np.concatenate(out_t), np.concatenate(out_k)
