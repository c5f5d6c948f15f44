"""Past–future canonical correlation analysis (CCA) of lag vectors, sampled and analytic.

Used for the Rectified Spectral Units of Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al.
(2025), "A Network of Biologically Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features
Without Error Backpropagation", arXiv:2512.23146.

Notation (paper Eqs 1–8).  For a signal x (one or C channels) the *past* lag vector at time t is
``p_t = [x_t, x_{t−1}, …, x_{t−m+1}]`` and the *future* lag vector ``f_t = [x_{t+1}, …, x_{t+h}]``; with C
channels both are stacked channel by channel (index ``c·m + k`` is channel c at lag k).  With the covariances
``C_pp, C_ff, C_fp`` the whitened cross-covariance ``G = C_ff^{-1/2} C_fp C_pp^{-1/2} = U Σ Vᵀ`` gives the
canonical correlations ρ_k (singular values), the *past filters* (canonical directions)
``ψ_k = v_kᵀ C_pp^{-1/2}`` (the ReSU projection is ``u_t = ψ_k · p_t``), the future filters
``φ_k = u_kᵀ C_ff^{-1/2}``, and the mutual information between past and future of a Gaussian process
captured by the first r pairs, ``I = −½ Σ_k log(1 − ρ_k²)`` (paper Eq 8).

Sign convention (CCA fixes each pair (ψ_k, φ_k) only up to a common sign): every past filter is flipped
so that its *earliest significant coefficient* is positive, i.e. scanning lags from the most recent (lag 0)
backwards, the first lag at which some coefficient reaches ``sign_threshold`` × max|ψ_k| has its
largest-magnitude coefficient positive.  A unit with that filter therefore responds positively to a
recent increase of its input: the ON-rectified output of the second (derivative-like) filter is an
ON (L1-like) cell, the first (low-pass) filter is positive.  The future filter is flipped with it, so
that every ρ_k ≥ 0.  The convention depends only on the filter, never on sample order.  The authors' notebooks
fix no sign (raw singular vectors); this one is ours, fixed before any comparison with data
(:func:`orient_light_positive` applies it to given filters).  It is the layer-1 convention of the ReSU
protocols; the T4-like layer-2 filter gets its own sign rule there (an ON edge moving in the trained
direction gives a positive linear response, ``protocols/resu_t4.py``).

Analytic CCA: for a stationary process with autocovariance k(τ) (in samples) plus white observation
noise of variance σ², ``C_pp = Toeplitz(k(0..m−1)) + σ²I``, ``C_ff = Toeplitz(k(0..h−1)) + σ²I`` and
``C_fp[i, j] = cov(x_{t+1+i}, x_{t−j}) = k(i + j + 1)``.  For an Ornstein–Uhlenbeck process
(k(τ) = s² e^{−|τ|/τ_c}) C_fp has rank one and the only non-zero canonical correlation is e^{−1/τ_c}.

Regularisation: ``reg`` × (mean eigenvalue) is added to the diagonal of C_pp and C_ff before whitening.

Deliberate deviations from the authors' notebooks: covariances are accumulated with matrix products over
all lag vectors at once (direct) or from the autocovariance by FFT (``method='toeplitz'``, the stationary
estimate), instead of loops over samples; Gaussian-process samples are drawn by circulant embedding
(exact for OU via its AR(1) recursion); covariances are centred by default (the notebooks use uncentred
second moments E[p pᵀ]: ``center=False``); the sign convention above (the notebooks fix none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "KERNELS",
    "CCAResult",
    "analytic_cca",
    "analytic_covariances",
    "apply_filter",
    "cca_from_covariances",
    "count_lobes",
    "kernel_autocovariance",
    "lag_covariances",
    "lag_vectors",
    "mutual_information",
    "orient_light_positive",
    "past_future_cca",
    "principal_angles",
    "sample_ou",
    "sample_stationary",
]

KERNELS = ("ou", "se", "rq")


@dataclass
class CCAResult:
    """Result of a past–future CCA (filters are rows; past filter ψ_k acts on p_t)."""

    past_filters: np.ndarray  # (r, C·m): ψ_k, u_t = ψ_k · p_t
    future_filters: np.ndarray  # (r, C·h): φ_k
    rho: np.ndarray  # (r,) canonical correlations, descending, >= 0
    m: int
    h: int
    channels: int

    @property
    def mutual_information(self) -> float:
        """Past–future mutual information (nats) captured by these r pairs (paper Eq 8)."""
        return mutual_information(self.rho)

    def filters_by_channel(self) -> np.ndarray:
        """Past filters as (r, C, m): [k, c, lag]."""
        return self.past_filters.reshape(len(self.rho), self.channels, self.m)


# ----------------------------------------------------------------------------------------------
# lag vectors and covariances
# ----------------------------------------------------------------------------------------------
def _as_trajectories(x) -> list[np.ndarray]:
    """A (T,) / (T, C) array or a list of them -> list of (T, C) float arrays with a common C."""
    if isinstance(x, np.ndarray) and x.dtype != object:
        xs = [x]
    else:
        xs = list(x)
    out = []
    for a in xs:
        a = np.asarray(a, dtype=float)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise ValueError(f"a signal must be (T,) or (T, C), got shape {a.shape}")
        out.append(a)
    if not out:
        raise ValueError("no signal given")
    if len({a.shape[1] for a in out}) != 1:
        raise ValueError(f"trajectories have different channel counts {sorted({a.shape[1] for a in out})}")
    return out


def _check_mh(m: int, h: int):
    if int(m) != m or int(h) != h or m < 1 or h < 1:
        raise ValueError(f"past length m and future length h must be integers >= 1 (got m={m}, h={h})")


def lag_vectors(x, m: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Past and future lag vectors of a signal: P (N, C·m), F (N, C·h), N = T − m − h + 1.

    ``P[n, c·m + k] = x[t − k, c]`` and ``F[n, c·h + k] = x[t + 1 + k, c]`` with t = n + m − 1.
    """
    _check_mh(m, h)
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"a signal must be (T,) or (T, C), got shape {a.shape}")
    T, C = a.shape
    if T < m + h:
        raise ValueError(f"signal of {T} samples is shorter than m + h = {m + h}")
    W = np.lib.stride_tricks.sliding_window_view(a, m + h, axis=0)  # (N, C, m+h)
    P = W[:, :, m - 1::-1] if m > 1 else W[:, :, :1]
    P = P.reshape(len(W), C * m)
    F = W[:, :, m:].reshape(len(W), C * h)
    return P, F


def _autocov_fft(a: np.ndarray, maxlag: int) -> np.ndarray:
    """Cross-covariances R[τ, c, d] = Σ_t a[t+τ, c] a[t, d] for τ = 0..maxlag (sums, not means)."""
    T, _C = a.shape
    nfft = 1 << int(np.ceil(np.log2(2 * T)))
    Fa = np.fft.rfft(a, nfft, axis=0)
    R = np.fft.irfft(Fa[:, :, None] * np.conj(Fa[:, None, :]), nfft, axis=0)[: maxlag + 1]
    return R


def lag_covariances(x, m: int, h: int, method: str = "direct", center: bool = True):
    """Covariances (C_pp, C_ff, C_fp) of past/future lag vectors, pooled over trajectories.

    ``x``: a (T,) or (T, C) array, a list of them (independent trajectories, e.g. one per image row), or
    an (n_traj, T, C) array of equal-length trajectories (direct method, batched).
    ``method='direct'``: sample covariance of the lag vectors (one matrix product per trajectory);
    ``method='toeplitz'``: stationary estimate from the auto- and cross-covariance functions (FFT),
    O(T log T) and independent of m, h for the expensive part.
    Returns the three matrices and the number of lag-vector pairs used.
    """
    _check_mh(m, h)
    L = m + h
    if isinstance(x, np.ndarray) and x.ndim == 3 and method == "direct":
        return _batch_direct(x, m, h, center)
    xs = _as_trajectories(x)
    C = xs[0].shape[1]
    if method == "direct":
        S = np.zeros((C * L, C * L))
        s1 = np.zeros(C * L)
        n = 0
        for a in xs:
            if len(a) < L:
                continue
            P, F = lag_vectors(a, m, h)
            Z = np.concatenate([P, F], axis=1)
            S += Z.T @ Z
            s1 += Z.sum(axis=0)
            n += len(Z)
        if n < 2:
            raise ValueError(f"fewer than 2 lag-vector pairs (every trajectory shorter than m + h = {L}?)")
        mu = s1 / n if center else np.zeros_like(s1)
        cov = (S - n * np.outer(mu, mu)) / (n - 1 if center else n)
        k = C * m
        return cov[:k, :k], cov[k:, k:], cov[k:, :k], n
    if method == "toeplitz":
        R = np.zeros((L, C, C))
        n_samples, total = 0, np.zeros(C)
        for a in xs:
            total += a.sum(axis=0)
            n_samples += len(a)
        mean = total / max(n_samples, 1) if center else np.zeros(C)
        n = 0
        for a in xs:
            if len(a) < L:
                continue
            R += _autocov_fft(a - mean, L - 1)
            n += len(a) - L + 1
        if n < 2:
            raise ValueError(f"fewer than 2 lag-vector pairs (every trajectory shorter than m + h = {L}?)")
        R /= n_samples - 1 if center else n_samples
        # R[τ, c, d] = cov(x_{t+τ, c}, x_{t, d})
        def block(rows, cols, lag):  # matrix [c·rows + i, d·cols + j] = cov(x_{c, lag(i, j)} , x_d)
            out = np.empty((C, rows, C, cols))
            ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            tau = lag(ii, jj)
            pos = tau >= 0
            vals = np.where(pos[..., None, None], R[np.abs(tau)],
                            np.swapaxes(R[np.abs(tau)], -1, -2))  # (rows, cols, C, C)
            out[:] = np.transpose(vals, (2, 0, 3, 1))
            return out.reshape(C * rows, C * cols)
        Cpp = block(m, m, lambda i, j: j - i)  # cov(x_{t−i}, x_{t−j}): τ = j − i
        Cff = block(h, h, lambda i, j: i - j)  # cov(x_{t+1+i}, x_{t+1+j})
        Cfp = block(h, m, lambda i, j: i + 1 + j)  # cov(x_{t+1+i}, x_{t−j})
        return Cpp, Cff, Cfp, n
    raise ValueError(f"method must be 'direct' or 'toeplitz', got {method!r}")


def _batch_direct(X: np.ndarray, m: int, h: int, center: bool, chunk: int = 2_000_000):
    """Direct covariances of equal-length trajectories X (n_traj, T, C), in bounded-memory chunks."""
    X = np.asarray(X, dtype=float)
    n_traj, T, C = X.shape
    L = m + h
    if T < L:
        raise ValueError(f"trajectories of {T} samples are shorter than m + h = {L}")
    W = np.lib.stride_tricks.sliding_window_view(X, L, axis=1)  # (n_traj, N, C, L)
    N = W.shape[1]
    S = np.zeros((C * L, C * L))
    s1 = np.zeros(C * L)
    rows = max(1, chunk // max(1, N * C * L))
    for a in range(0, n_traj, rows):
        w = W[a:a + rows]
        past = w[..., m - 1::-1] if m > 1 else w[..., :1]
        Z = np.concatenate([past.reshape(-1, C * m), w[..., m:].reshape(-1, C * h)], axis=1)
        S += Z.T @ Z
        s1 += Z.sum(axis=0)
    n = n_traj * N
    if n < 2:
        raise ValueError("fewer than 2 lag-vector pairs")
    mu = s1 / n if center else np.zeros_like(s1)
    cov = (S - n * np.outer(mu, mu)) / (n - 1 if center else n)
    k = C * m
    return cov[:k, :k], cov[k:, k:], cov[k:, :k], n


# ----------------------------------------------------------------------------------------------
# CCA
# ----------------------------------------------------------------------------------------------
def _inv_sqrt(Cov: np.ndarray, reg: float) -> np.ndarray:
    Cov = 0.5 * (Cov + Cov.T)
    n = len(Cov)
    lam = reg * np.trace(Cov) / n
    w, V = np.linalg.eigh(Cov + lam * np.eye(n))
    floor = max(w.max(), 1e-300) * 1e-14
    return (V / np.sqrt(np.maximum(w, floor))) @ V.T


def _sign_flips(filters: np.ndarray, m: int, channels: int, threshold: float) -> np.ndarray:
    """+1/−1 per filter row by the module's sign convention (earliest significant coefficient > 0)."""
    W = filters.reshape(len(filters), channels, m)
    mag = np.abs(W)
    peak = mag.reshape(len(W), -1).max(axis=1)
    signs = np.ones(len(W))
    for k in range(len(W)):
        if peak[k] == 0:
            continue
        sig = (mag[k] >= threshold * peak[k]).any(axis=0)  # per lag
        lag = int(np.argmax(sig))
        c = int(np.argmax(mag[k, :, lag]))
        signs[k] = 1.0 if W[k, c, lag] > 0 else -1.0
    return signs


def orient_light_positive(filters, m: int, channels: int = 1, sign_threshold: float = 0.2) -> np.ndarray:
    """Filters (r, C·m) or (C·m,) flipped by the module's sign convention: the earliest significant
    coefficient (largest channel at the most recent lag reaching ``sign_threshold`` × max|ψ|) is positive.

    Reason: a ReSU with this filter answers a recent light increment with a positive projection, so its ON
    rectified half is an ON (light-increment) unit, as the fly's L1 → Mi1 pathway.  ψ and −ψ give the same
    result."""
    f = np.asarray(filters, dtype=float)
    one = f.ndim == 1
    F = np.atleast_2d(f)
    if F.shape[1] != channels * m:
        raise ValueError(f"filters of length {F.shape[1]} do not match {channels} channels × m={m}")
    out = F * _sign_flips(F, m, channels, sign_threshold)[:, None]
    return out[0] if one else out


def cca_from_covariances(Cpp, Cff, Cfp, m: int, h: int, rank: int | None = None, reg: float = 1e-8,
                         sign_threshold: float = 0.2) -> CCAResult:
    """Canonical directions and correlations from the lag covariances (see module docstring).

    ``rank``: number of pairs kept (default min(C·m, C·h)); ``reg``: relative ridge added to C_pp and C_ff.
    """
    _check_mh(m, h)
    Cpp, Cff, Cfp = (np.asarray(a, dtype=float) for a in (Cpp, Cff, Cfp))
    if Cpp.ndim != 2 or Cpp.shape[0] != Cpp.shape[1] or Cpp.shape[0] % m:
        raise ValueError(f"C_pp must be square with a size divisible by m={m}, got {Cpp.shape}")
    C = Cpp.shape[0] // m
    if Cff.shape != (C * h, C * h) or Cfp.shape != (C * h, C * m):
        raise ValueError(f"C_ff {Cff.shape} / C_fp {Cfp.shape} do not match C={C}, m={m}, h={h}")
    if reg < 0 or not np.isfinite(reg):
        raise ValueError(f"reg must be a finite number >= 0, got {reg}")
    if not (np.all(np.isfinite(Cpp)) and np.all(np.isfinite(Cff)) and np.all(np.isfinite(Cfp))):
        raise ValueError("covariances contain NaN or inf")
    if np.trace(Cpp) <= 0 or np.trace(Cff) <= 0:
        raise ValueError("the signal has zero variance: CCA is undefined")
    r_max = min(C * m, C * h)
    r = r_max if rank is None else int(rank)
    if not 1 <= r <= r_max:
        raise ValueError(f"rank must be in [1, {r_max}], got {rank}")
    Wp = _inv_sqrt(Cpp, reg)
    Wf = _inv_sqrt(Cff, reg)
    G = Wf @ Cfp @ Wp
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    past = Vt[:r] @ Wp
    future = U[:, :r].T @ Wf
    signs = _sign_flips(past, m, C, sign_threshold)
    return CCAResult(past_filters=past * signs[:, None], future_filters=future * signs[:, None],
                     rho=np.clip(s[:r], 0.0, 1.0), m=int(m), h=int(h), channels=C)


def past_future_cca(x, m: int, h: int, rank: int | None = None, reg: float = 1e-8,
                    method: str = "direct", sign_threshold: float = 0.2, center: bool = True) -> CCAResult:
    """Past–future CCA of a sampled signal (or list of trajectories); see :func:`lag_covariances`.

    ``center=False`` uses uncentred second moments E[p pᵀ], E[f fᵀ], E[f pᵀ] in place of covariances (the
    authors' notebooks do this): a signal with a non-zero mean then has a mean-carrying canonical pair."""
    Cpp, Cff, Cfp, _ = lag_covariances(x, m, h, method=method, center=center)
    return cca_from_covariances(Cpp, Cff, Cfp, m, h, rank=rank, reg=reg, sign_threshold=sign_threshold)


def mutual_information(rho) -> float:
    """I = −½ Σ log(1 − ρ_k²) in nats (paper Eq 8); ρ must lie in [0, 1)."""
    rho = np.asarray(rho, dtype=float)
    if np.any(~np.isfinite(rho)) or np.any(np.abs(rho) >= 1):
        raise ValueError("canonical correlations must be finite with |rho| < 1 (|rho| = 1: infinite information)")
    return float(-0.5 * np.sum(np.log1p(-rho**2)))


# ----------------------------------------------------------------------------------------------
# analytic CCA of stationary kernels
# ----------------------------------------------------------------------------------------------
def kernel_autocovariance(kind: str, lags, length: float, variance: float = 1.0, alpha: float = 1.0):
    """k(τ) of a stationary kernel at ``lags`` (in samples; ``length`` in samples too).

    'ou': s² exp(−|τ|/ℓ) · 'se': s² exp(−τ²/(2ℓ²)) · 'rq': s² (1 + τ²/(2αℓ²))^(−α).
    """
    tau = np.abs(np.asarray(lags, dtype=float))
    if length <= 0 or variance <= 0:
        raise ValueError(f"length and variance must be > 0 (got {length}, {variance})")
    if kind == "ou":
        return variance * np.exp(-tau / length)
    if kind == "se":
        return variance * np.exp(-0.5 * (tau / length) ** 2)
    if kind == "rq":
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0 for the rational-quadratic kernel, got {alpha}")
        return variance * (1.0 + tau**2 / (2.0 * alpha * length**2)) ** (-alpha)
    raise ValueError(f"unknown kernel {kind!r}; expected one of {KERNELS}")


def analytic_covariances(acov, m: int, h: int, noise_var: float = 0.0):
    """(C_pp, C_ff, C_fp) of a stationary scalar process from its autocovariance ``acov[τ]``, τ = 0..m+h−1,
    with white observation noise of variance ``noise_var`` added to the samples."""
    _check_mh(m, h)
    acov = np.asarray(acov, dtype=float)
    if acov.ndim != 1 or len(acov) < m + h:
        raise ValueError(f"need the autocovariance at lags 0..{m + h - 1}, got {acov.shape}")
    if noise_var < 0:
        raise ValueError(f"noise_var must be >= 0, got {noise_var}")
    i = np.arange(max(m, h))
    Cpp = acov[np.abs(i[:m, None] - i[None, :m])] + noise_var * np.eye(m)
    Cff = acov[np.abs(i[:h, None] - i[None, :h])] + noise_var * np.eye(h)
    Cfp = acov[i[:h, None] + i[None, :m] + 1]
    return Cpp, Cff, Cfp


def analytic_cca(kind: str, m: int, h: int, length: float, noise_var: float = 0.0, variance: float = 1.0,
                 alpha: float = 1.0, rank: int | None = None, reg: float = 1e-8) -> CCAResult:
    """Past–future CCA of a Gaussian process with kernel ``kind`` (see :func:`kernel_autocovariance`)."""
    acov = kernel_autocovariance(kind, np.arange(m + h), length, variance, alpha)
    Cpp, Cff, Cfp = analytic_covariances(acov, m, h, noise_var)
    return cca_from_covariances(Cpp, Cff, Cfp, m, h, rank=rank, reg=reg)


# ----------------------------------------------------------------------------------------------
# filters
# ----------------------------------------------------------------------------------------------
def apply_filter(x, psi, m: int | None = None) -> np.ndarray:
    """Causal projection u_t = ψ · p_t of a (T,) or (T, C) signal; ψ is (C·m,) or (r, C·m).

    Returns (T,) or (T, r); samples before the start count as 0 (as a delay line that starts empty).
    """
    from scipy.signal import lfilter

    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    one = np.ndim(psi) == 1
    psi = np.atleast_2d(np.asarray(psi, dtype=float))
    C = a.shape[1]
    if psi.shape[1] % C:
        raise ValueError(f"filter length {psi.shape[1]} is not a multiple of the {C} channels")
    mm = psi.shape[1] // C
    if m is not None and mm != m:
        raise ValueError(f"filter length {psi.shape[1]} does not match m={m} with {C} channels")
    out = np.zeros((len(a), len(psi)))
    for k, w in enumerate(psi.reshape(len(psi), C, mm)):
        for c in range(C):
            out[:, k] += lfilter(w[c], [1.0], a[:, c])
    return out[:, 0] if one else out


def count_lobes(w, threshold: float = 0.1) -> int:
    """Number of lobes of a 1-D filter: 1 + sign changes among coefficients with ``|w| ≥ threshold·max|w|``."""
    w = np.asarray(w, dtype=float).ravel()
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    peak = np.abs(w).max() if w.size else 0.0
    if peak == 0:
        return 0
    s = np.sign(w[np.abs(w) >= threshold * peak])
    return int(1 + np.count_nonzero(s[1:] != s[:-1]))


# ----------------------------------------------------------------------------------------------
# samples of stationary processes
# ----------------------------------------------------------------------------------------------
def sample_ou(n: int, tau: float, n_traj: int = 1, variance: float = 1.0, rng=None) -> np.ndarray:
    """Exact samples (n_traj, n) of a stationary OU process with correlation time ``tau`` (samples)."""
    from scipy.signal import lfilter

    if tau <= 0 or n < 1 or n_traj < 1:
        raise ValueError(f"need tau > 0, n >= 1, n_traj >= 1 (got {tau}, {n}, {n_traj})")
    rng = np.random.default_rng(rng)
    a = np.exp(-1.0 / tau)
    e = rng.standard_normal((n_traj, n)) * np.sqrt(variance * (1 - a**2))
    e[:, 0] = rng.standard_normal(n_traj) * np.sqrt(variance)
    return lfilter([1.0], [1.0, -a], e, axis=1)


def sample_stationary(acov_fn, n: int, n_traj: int = 1, rng=None) -> np.ndarray:
    """Samples (n_traj, n) of a stationary Gaussian process by circulant embedding.

    ``acov_fn(lags)`` gives the autocovariance at integer lags.  Negative eigenvalues of the embedding
    (a kernel that does not decay within n samples) are clipped to zero, which makes the result approximate.
    """
    if n < 2 or n_traj < 1:
        raise ValueError(f"need n >= 2 and n_traj >= 1 (got {n}, {n_traj})")
    rng = np.random.default_rng(rng)
    M = 1 << int(np.ceil(np.log2(2 * n)))
    lags = np.arange(M // 2 + 1)
    c = np.asarray(acov_fn(lags), dtype=float)
    row = np.concatenate([c, c[-2:0:-1]])
    lam = np.clip(np.fft.fft(row).real, 0.0, None)
    n_pairs = (n_traj + 1) // 2
    Z = rng.standard_normal((n_pairs, M)) + 1j * rng.standard_normal((n_pairs, M))
    X = np.fft.fft(np.sqrt(lam / M) * Z, axis=1)
    out = np.concatenate([X.real[:, :n], X.imag[:, :n]])[:n_traj]
    return out


def principal_angles(A, B) -> np.ndarray:
    """Principal angles (radians, ascending) between the row spaces of A (r×d) and B (s×d)."""
    from scipy.linalg import subspace_angles

    A = np.atleast_2d(np.asarray(A, dtype=float))
    B = np.atleast_2d(np.asarray(B, dtype=float))
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A {A.shape} and B {B.shape} must have the same number of columns")
    return np.sort(subspace_angles(A.T, B.T))
