"""Generated input signals (no download needed).

:class:`SmoothedNoise` is the input of Brendel et al. (2020, https://doi.org/10.1371/journal.pcbi.1007692)
Fig 2: white noise smoothed with a Gaussian of unit sum, scaled by an amplitude, as the
command signal c(t); the represented signal x(t) is its leaky integral dx/dt = −λx + c.
It is produced in consecutive chunks that join without seams, so learning runs of any
length need memory for one chunk only.
"""

from __future__ import annotations

import numpy as np


def gaussian_kernel(sigma_steps: float, width: float = 4.0) -> np.ndarray:
    """Gaussian of unit sum, truncated at ±``width`` σ."""
    if sigma_steps <= 0:
        return np.ones(1)
    h = int(np.ceil(width * sigma_steps))
    t = np.arange(-h, h + 1)
    w = np.exp(-0.5 * (t / sigma_steps) ** 2)
    return w / w.sum()


def leaky_integrate(c, lam_dt: float, dt: float, x0=None):
    """x[n] = (1 − λdt) x[n−1] + dt c[n] along axis 0 (Euler, as in the authors' code)."""
    from scipy.signal import lfilter

    c = np.asarray(c, dtype=float)
    a = 1.0 - lam_dt
    zi = None
    if x0 is not None:
        zi = (a * np.asarray(x0, dtype=float))[None, ...]
    if zi is None:
        return lfilter([dt], [1.0, -a], c, axis=0)
    y, _ = lfilter([dt], [1.0, -a], c, axis=0, zi=zi)
    return y


class SmoothedNoise:
    """Seamless chunks of smoothed white noise c (J channels) and its leaky integral x."""

    def __init__(self, J: int, sigma_steps: float, amplitude: float, lam_dt: float, dt: float, seed=0):
        self.J = int(J)
        self.kernel = gaussian_kernel(sigma_steps)
        self.amplitude = float(amplitude)
        self.lam_dt = float(lam_dt)
        self.dt = float(dt)
        self.rng = np.random.default_rng(seed)
        self._tail = self.rng.standard_normal((len(self.kernel) - 1, self.J))
        self._x = np.zeros(self.J)
        # start x from its stationary distribution: run the integrator in for 10 time constants
        self._x = self.next(int(10 / self.lam_dt) + 1)[1][-1]

    def next(self, n_steps: int):
        """The next ``n_steps`` samples: (c, x), each of shape (n_steps, J)."""
        from scipy.signal import fftconvolve

        raw = np.concatenate([self._tail, self.rng.standard_normal((n_steps, self.J))])
        c = self.amplitude * fftconvolve(raw, self.kernel[:, None], mode="valid", axes=0)
        self._tail = raw[len(raw) - (len(self.kernel) - 1):]
        x = leaky_integrate(c, self.lam_dt, self.dt, x0=self._x)
        self._x = x[-1].copy()
        return c, x


def smoothed_noise_for(p, seed) -> SmoothedNoise:
    """The smoothed-noise input stream of a spike-coding parameter set (fields J, dt, lambda_, input_sigma,
    input_amplitude; Brian2 quantities or plain numbers in seconds/Hz)."""
    dt = float(p.dt)
    return SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt), dt, seed=seed)


def learning_and_test_signals(p, seed: int, n_test_steps: int):
    """Learning stream (seed [seed, 1]) and two held-out segments of ``n_test_steps`` (seed [seed, 2]): one to
    fit decoders, one to measure the error; plus the rms input radius of the fit segment (for tuning curves).
    Returns (train, test_fit, test_eval, rms_radius); the segments are (c, x) pairs."""
    train = smoothed_noise_for(p, [seed, 1])
    held_out = smoothed_noise_for(p, [seed, 2])
    test_fit = held_out.next(n_test_steps)
    test_eval = held_out.next(n_test_steps)
    return train, test_fit, test_eval, float(np.sqrt(np.mean(np.sum(test_fit[1] ** 2, axis=1))))
