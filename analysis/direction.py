"""Direction selectivity of motion-sensitive units, and the moving stimuli used to measure it (pure numpy).

Used for the T4-like units of Qin et al. (2025), arXiv:2512.23146 (paper Fig 5):
direction selectivity index DSI = (R_pref − R_null) / (R_pref + R_null) of rectified (non-negative)
responses; +1: responds only to the preferred direction, −1: only to the null direction.

Stimuli are contrast patterns f(x − v t) sampled at pixel positions (degrees) and time steps, after a
Gaussian spatial blur (the photoreceptor acceptance angle): sine and square gratings, ON and OFF edges.
Positive velocity moves the pattern towards larger x.

Pixel roles (a convention fixed before any comparison with the connectome): a unit's pixels are named by
the order in which motion in its preferred direction reaches them (:func:`arrival_order`: leading pixel
first), not by their position in an array; the leading pixel is the side a T4 cell's Mi9 input comes from
(Mi9 on the preferred side, Mi4/CT1/C3 on the null side).  :func:`by_role` reorders per-pixel values into
(leading, centre, trailing), or into the mirror image.
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


def arrival_times(stimulus, threshold: float = 0.5) -> np.ndarray:
    """Per pixel, the first sample at which a pattern has arrived: ``|s_t − s_0|`` reaches ``threshold`` × its
    maximum over time.  ``stimulus``: (T, P) with the pattern absent at t = 0 (an edge coming from outside).

    Raises if a pixel never changes (the pattern does not reach it)."""
    s = np.asarray(stimulus, dtype=float)
    if s.ndim != 2 or len(s) < 2:
        raise ValueError(f"stimulus must be (T >= 2, pixels), got shape {s.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    d = np.abs(s - s[:1])
    peak = d.max(axis=0)
    if np.any(peak == 0):
        raise ValueError(f"pixels {np.flatnonzero(peak == 0).tolist()} never change: no arrival")
    return np.argmax(d >= threshold * peak, axis=0)


def arrival_order(stimulus, threshold: float = 0.5) -> np.ndarray:
    """Pixel indices in the order a moving pattern reaches them (leading pixel first).

    Raises on ties (two pixels reached in the same sample: the direction is not resolved)."""
    t = arrival_times(stimulus, threshold)
    if len(np.unique(t)) != len(t):
        raise ValueError(f"pixels reached in the same sample (arrival samples {t.tolist()}): order undefined")
    return np.argsort(t, kind="stable")


def by_role(values, order, mirror: bool = False) -> np.ndarray:
    """Per-pixel ``values`` (last axis) in role order: (leading, …, trailing) for the pixel ``order`` of
    :func:`arrival_order`; ``mirror=True`` gives the mirror image (trailing first)."""
    order = np.asarray(order, dtype=np.int64)
    v = np.asarray(values)
    if sorted(order.tolist()) != list(range(v.shape[-1])):
        raise ValueError(f"order {order.tolist()} is not a permutation of the {v.shape[-1]} pixels")
    return v[..., order[::-1] if mirror else order]


def passage_window(stimulus, memory: int, onset: float = 0.01) -> tuple[int, int]:
    """Samples ``[start, stop)`` in which a pattern passing over the pixels can drive a unit whose filters
    remember ``memory`` samples: from the first sample at which any pixel has made ``onset`` of its full
    change, to ``memory`` samples after the last pixel has made ``1 − onset`` of it (clipped to the trial).

    For an edge this is the edge's passage: before ``start`` the input is uniform, and ``memory`` samples after
    the last pixel has changed the input is uniform again, so a linear unit sits at the same steady level for
    either direction of motion and averaging over it only dilutes the direction signal.  ``stimulus``: (T, P)
    with the pattern absent at t = 0 (see :func:`arrival_times`)."""
    if memory < 0:
        raise ValueError(f"memory must be >= 0 samples, got {memory}")
    if not 0 < onset < 0.5:
        raise ValueError(f"onset must be in (0, 0.5), got {onset}")
    s = np.asarray(stimulus, dtype=float)
    start = int(arrival_times(s, onset).min())
    stop = int(arrival_times(s, 1.0 - onset).max()) + int(memory) + 1
    return start, min(stop, len(s))
