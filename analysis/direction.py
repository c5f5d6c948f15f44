"""Direction selectivity of motion-sensitive units, and the moving stimuli used to measure it (pure numpy).

Used for the T4-like units of Qin et al. (2025), arXiv:2512.23146 (paper Fig 5):
direction selectivity index DSI = (R_pref − R_null) / (R_pref + R_null) of rectified (non-negative)
responses; +1: responds only to the preferred direction, −1: only to the null direction.

Stimuli are contrast patterns f(x − v t) sampled at pixel positions (degrees) and time steps, after a
Gaussian spatial blur (the photoreceptor acceptance angle): sine and square gratings, ON and OFF edges.
Positive velocity moves the pattern towards larger x.
"""

from __future__ import annotations

import numpy as np

STIMULI = ("sine", "square", "on_edge", "off_edge")


def dsi(r_pref, r_null) -> np.ndarray | float:
    """(R_pref − R_null) / (R_pref + R_null), element-wise; responses must be >= 0 and not both zero."""
    rp = np.asarray(r_pref, dtype=float)
    rn = np.asarray(r_null, dtype=float)
    if rp.shape != rn.shape:
        raise ValueError(f"r_pref {rp.shape} and r_null {rn.shape} differ in shape")
    if np.any(rp < 0) or np.any(rn < 0) or not (np.all(np.isfinite(rp)) and np.all(np.isfinite(rn))):
        raise ValueError("DSI needs finite, non-negative (rectified) responses")
    total = rp + rn
    if np.any(total == 0):
        raise ValueError("R_pref + R_null = 0: no response in either direction, the DSI is undefined")
    out = (rp - rn) / total
    return float(out) if out.ndim == 0 else out


def mean_response(r, discard: int = 0) -> np.ndarray:
    """Time-averaged response after ``discard`` samples; r is (T,) or (T, units)."""
    r = np.asarray(r, dtype=float)
    if not 0 <= discard < len(r):
        raise ValueError(f"discard={discard} must be in [0, {len(r)})")
    return r[discard:].mean(axis=0)


def moving_pattern(kind: str, x_deg, n_steps: int, dt_s: float, velocity_deg_s: float, wavelength_deg: float = 30.0,
                   contrast: float = 1.0, blur_fwhm_deg: float = 5.0, x0_deg: float | None = None,
                   resolution_deg: float = 0.25) -> np.ndarray:
    """Contrast (n_steps, len(x_deg)) of a moving pattern seen through a Gaussian blur.

    ``kind``: 'sine' / 'square' gratings (period ``wavelength_deg``), 'on_edge' / 'off_edge' (a contrast step
    ±``contrast`` that starts at ``x0_deg``, default: just outside the pixels on the side it comes from).
    """
    from scipy.ndimage import gaussian_filter1d

    if kind not in STIMULI:
        raise ValueError(f"unknown stimulus {kind!r}; expected one of {STIMULI}")
    if dt_s <= 0 or wavelength_deg <= 0 or blur_fwhm_deg < 0 or n_steps < 1:
        raise ValueError("dt_s > 0, wavelength_deg > 0, blur_fwhm_deg >= 0, n_steps >= 1 are required")
    x = np.asarray(x_deg, dtype=float)
    t = np.arange(n_steps) * dt_s
    sigma = blur_fwhm_deg / (2 * np.sqrt(2 * np.log(2)))
    if kind in ("sine", "square"):
        # periodic profile on one period, blurred with wrap-around
        grid = np.arange(0, wavelength_deg, resolution_deg)
        prof = np.sin(2 * np.pi * grid / wavelength_deg)
        if kind == "square":
            prof = np.sign(prof)
        if sigma > 0:
            prof = gaussian_filter1d(prof, sigma / resolution_deg, mode="wrap")
        pos = (x[None, :] - velocity_deg_s * t[:, None]) % wavelength_deg
        return contrast * np.interp(pos, grid, prof, period=wavelength_deg)
    # edges: value behind the edge (already passed) is ±contrast, ahead 0
    sign = 1.0 if kind == "on_edge" else -1.0
    if x0_deg is None:
        x0_deg = (x.min() - 3 * blur_fwhm_deg) if velocity_deg_s > 0 else (x.max() + 3 * blur_fwhm_deg)
    from scipy.special import ndtr

    edge = x0_deg + velocity_deg_s * t[:, None]
    d = (edge - x[None, :]) if velocity_deg_s > 0 else (x[None, :] - edge)
    return sign * contrast * (ndtr(d / sigma) if sigma > 0 else (d > 0).astype(float))
