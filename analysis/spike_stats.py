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
