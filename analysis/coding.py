"""Measures of how well a spiking population represents a signal (pure array functions).

Used for Brendel et al. (2020), https://doi.org/10.1371/journal.pcbi.1007692: filtered
spike trains, the optimal linear decoder, the coding error Σvar(x − x̂)/Σvar(x), firing
rates, the distance of the recurrent weights to −FᵀF, and tuning curves.
"""

from __future__ import annotations

import numpy as np


def spike_counts(spike_i, spike_step, n_neurons: int, n_steps: int) -> np.ndarray:
    """Dense (n_steps, n_neurons) matrix of spike counts per time step."""
    spike_i = np.asarray(spike_i, dtype=np.int64)
    spike_step = np.asarray(spike_step, dtype=np.int64)
    if spike_i.shape != spike_step.shape:
        raise ValueError(f"spike_i {spike_i.shape} and spike_step {spike_step.shape} differ in shape")
    if spike_i.size and (spike_i.min() < 0 or spike_i.max() >= n_neurons):
        raise ValueError(f"neuron index out of range [0, {n_neurons})")
    if spike_step.size and (spike_step.min() < 0 or spike_step.max() >= n_steps):
        raise ValueError(f"time step out of range [0, {n_steps})")
    o = np.zeros((n_steps, n_neurons))
    np.add.at(o, (spike_step, spike_i), 1.0)
    return o


def filtered_spike_trains(o, lam_dt: float, r0=None) -> np.ndarray:
    """r[n] = (1 − λdt) r[n−1] + o[n]: the exponentially filtered spike trains.

    ``o`` is (n_steps, n_neurons) spike counts; ``r0`` the state before the first step.
    """
    from scipy.signal import lfilter

    if not 0 < lam_dt < 1:
        raise ValueError(f"lam_dt must be in (0, 1), got {lam_dt}")
    o = np.asarray(o, dtype=float)
    a = 1.0 - lam_dt
    if r0 is None:
        return lfilter([1.0], [1.0, -a], o, axis=0)
    zi = (a * np.asarray(r0, dtype=float))[None, :]
    return lfilter([1.0], [1.0, -a], o, axis=0, zi=zi)[0]


def optimal_decoder(r, x, ridge: float = 0.0) -> np.ndarray:
    """Least-squares linear decoder D (J × N) with x ≈ D r, from samples r (T×N), x (T×J)."""
    r = np.asarray(r, dtype=float)
    x = np.asarray(x, dtype=float)
    if r.ndim != 2 or x.ndim != 2 or r.shape[0] != x.shape[0]:
        raise ValueError(f"r {r.shape} and x {x.shape} must be (T, N) and (T, J) with the same T")
    if ridge > 0:
        A = r.T @ r + ridge * np.eye(r.shape[1])
        return np.linalg.solve(A, r.T @ x).T
    D, *_ = np.linalg.lstsq(r, x, rcond=None)
    return D.T


def coding_error(x, x_hat) -> float:
    """Σ_j var(x_j − x̂_j) / Σ_j var(x_j): 0 for a perfect code, 1 for x̂ = mean."""
    x = np.asarray(x, dtype=float)
    x_hat = np.asarray(x_hat, dtype=float)
    if x.shape != x_hat.shape:
        raise ValueError(f"x {x.shape} and x_hat {x_hat.shape} differ in shape")
    total = np.var(x, axis=0).sum()
    if total == 0:
        raise ValueError("x has zero variance: the coding error is undefined")
    return float(np.var(x - x_hat, axis=0).sum() / total)


def mean_rate(n_spikes: int, n_neurons: int, duration_s: float) -> float:
    """Population mean firing rate in Hz."""
    if duration_s <= 0 or n_neurons <= 0:
        raise ValueError("duration and number of neurons must be positive")
    return float(n_spikes) / n_neurons / duration_s


def relative_distance_to_scaled(A, B) -> tuple[float, float]:
    """min_s ‖A − s B‖² / ‖A‖² and the best scale s."""
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    if A.shape != B.shape:
        raise ValueError(f"shapes differ: {A.shape} vs {B.shape}")
    nA = np.sum(A * A)
    nB = np.sum(B * B)
    if nA == 0 or nB == 0:
        raise ValueError("the distance to a scaled zero matrix is undefined")
    s = float(np.sum(A * B) / nB)
    return float(np.sum((A - s * B) ** 2) / nA), s


def recurrent_vs_feedforward(Omega, F) -> tuple[float, float]:
    """Relative squared distance of Ω (N×N) to the best-scaled −FᵀF (F is J×N), and the scale."""
    F = np.asarray(F, dtype=float)
    return relative_distance_to_scaled(Omega, -(F.T @ F))


def tuning_curves(spike_i, spike_step, n_neurons: int, segment_bounds, dt_s: float) -> np.ndarray:
    """Firing rate (Hz) of every neuron in every [start, stop) step segment: (n_segments, n_neurons)."""
    spike_i = np.asarray(spike_i, dtype=np.int64)
    spike_step = np.asarray(spike_step, dtype=np.int64)
    rates = np.zeros((len(segment_bounds), n_neurons))
    for k, (start, stop) in enumerate(segment_bounds):
        if stop <= start:
            raise ValueError(f"segment {k}: stop {stop} <= start {start}")
        sel = (spike_step >= start) & (spike_step < stop)
        rates[k] = np.bincount(spike_i[sel], minlength=n_neurons)[:n_neurons] / ((stop - start) * dt_s)
    return rates


def angular_coverage(preferred_angles, n_bins: int = 8) -> float:
    """Fraction of ``n_bins`` equal angular sectors that contain at least one preferred angle."""
    a = np.mod(np.asarray(preferred_angles, dtype=float), 2 * np.pi)
    if a.size == 0:
        return 0.0
    bins = np.floor(a / (2 * np.pi / n_bins)).astype(int) % n_bins
    return float(len(np.unique(bins)) / n_bins)


def preferred_angles(angles, rates) -> np.ndarray:
    """Circular mean of the angles weighted by each neuron's rate: (n_neurons,), NaN if silent."""
    angles = np.asarray(angles, dtype=float)
    rates = np.asarray(rates, dtype=float)
    z = (rates * np.exp(1j * angles)[:, None]).sum(axis=0)
    out = np.angle(z)
    out[rates.sum(axis=0) == 0] = np.nan
    return out


def angle_difference(a, b) -> np.ndarray:
    """a − b wrapped into (−π, π] (radians, element-wise; NaN stays NaN)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return np.pi - np.mod(np.pi - d, 2 * np.pi)


def halfmax_width(angles, rates) -> np.ndarray:
    """Tuning width of every neuron: the share of the (equally spaced) ``angles`` at which its rate is at
    least half its maximum, times 2π (radians; 2π for a flat curve, NaN for a silent neuron).

    ``rates`` is (n_angles, n_neurons) as from :func:`tuning_curves`.
    """
    angles = np.asarray(angles, dtype=float)
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 2 or rates.shape[0] != angles.size:
        raise ValueError(f"rates {rates.shape} must be (n_angles, n_neurons) with n_angles = {angles.size}")
    peak = rates.max(axis=0)
    out = 2 * np.pi * np.mean(rates >= 0.5 * peak[None, :], axis=0)
    out[peak <= 0] = np.nan
    return out


def circular_spread(angles, rates) -> np.ndarray:
    """1 − |Σ_θ r(θ) e^{iθ}| / Σ_θ r(θ) per neuron: 0 for a single angle, 1 for a flat curve (NaN if silent)."""
    angles = np.asarray(angles, dtype=float)
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 2 or rates.shape[0] != angles.size:
        raise ValueError(f"rates {rates.shape} must be (n_angles, n_neurons) with n_angles = {angles.size}")
    total = rates.sum(axis=0)
    z = np.abs((rates * np.exp(1j * angles)[:, None]).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - z / total
    out[total <= 0] = np.nan
    return out


def peak_angles(angles, rates) -> np.ndarray:
    """Angle of each neuron's highest rate (the tuning maximum); NaN for silent neurons."""
    angles = np.asarray(angles, dtype=float)
    rates = np.asarray(rates, dtype=float)
    out = angles[np.argmax(rates, axis=0)]
    out[rates.max(axis=0) <= 0] = np.nan
    return out
