"""Past–future CCA (analysis/cca.py): sampled vs analytic, sign convention, mutual information, errors."""

import numpy as np
import pytest

from b2models.analysis import cca


@pytest.mark.parametrize("tau", [2.0, 5.0, 12.0])
@pytest.mark.parametrize("noise_var", [0.0, 0.5])
def test_analytic_ou_has_one_canonical_correlation_exp_minus_dt_over_tau(tau, noise_var):
    res = cca.analytic_cca("ou", m=12, h=8, length=tau, noise_var=noise_var, reg=0.0)
    if noise_var == 0:
        assert res.rho[0] == pytest.approx(np.exp(-1.0 / tau), abs=1e-9)
    else:  # white observation noise of variance σ² shrinks the correlation but keeps rank one
        assert 0 < res.rho[0] < np.exp(-1.0 / tau)
    assert np.all(res.rho[1:] < 1e-6), f"OU must have one non-zero canonical correlation, got {res.rho[:3]}"
    if noise_var == 0:  # Markov: the first past filter reads only x_t
        psi = res.past_filters[0]
        assert abs(psi[0]) > 1e3 * np.abs(psi[1:]).max()


def test_sampled_ou_matches_analytic():
    tau, m, h = 5.0, 10, 10
    x = cca.sample_ou(100_000, tau, n_traj=2, rng=3)
    sampled = cca.past_future_cca(list(x), m, h)
    analytic = cca.analytic_cca("ou", m, h, tau)
    assert sampled.rho[0] == pytest.approx(analytic.rho[0], abs=0.01)
    assert np.all(sampled.rho[1:] < 0.03), sampled.rho[:4]
    a, b = sampled.past_filters[0], analytic.past_filters[0]
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cos > 0.99, f"first OU filter differs from the analytic one (cosine {cos:.3f})"


def test_sampled_gp_matches_analytic_first_two_pairs():
    m = h = 12
    ell, nv = 4.0, 0.1
    x = cca.sample_stationary(lambda lag: cca.kernel_autocovariance("rq", lag, ell, alpha=1.0), 60_000,
                              n_traj=4, rng=0)
    x = x + np.sqrt(nv) * np.random.default_rng(1).standard_normal(x.shape)
    sampled = cca.past_future_cca(list(x), m, h, method="toeplitz")
    analytic = cca.analytic_cca("rq", m, h, ell, noise_var=nv)
    np.testing.assert_allclose(sampled.rho[:2], analytic.rho[:2], atol=0.02)
    for k in range(2):  # same filters and the same sign (the convention is applied to both)
        a, b = sampled.past_filters[k], analytic.past_filters[k]
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.95


def test_direct_and_toeplitz_covariances_agree_multichannel():
    rng = np.random.default_rng(0)
    x = cca.sample_ou(50_000, 3.0, rng=rng)[0]
    y = np.stack([x, np.roll(x, 2) + 0.3 * rng.standard_normal(len(x))], axis=1)
    A = cca.lag_covariances(y, 4, 3, method="direct")
    B = cca.lag_covariances(y, 4, 3, method="toeplitz")
    for a, b in zip(A[:3], B[:3]):
        np.testing.assert_allclose(a, b, atol=2e-3)
    assert A[0].shape == (8, 8) and A[2].shape == (6, 8)


def test_lag_vector_layout():
    x = np.arange(10.0)
    P, F = cca.lag_vectors(x, 3, 2)
    np.testing.assert_array_equal(P[0], [2, 1, 0])  # x_t, x_{t-1}, x_{t-2} with t = 2
    np.testing.assert_array_equal(F[0], [3, 4])
    assert len(P) == 10 - 3 - 2 + 1


def test_sign_convention_stable_under_sample_order():
    rng = np.random.default_rng(5)
    x = cca.sample_stationary(lambda lag: cca.kernel_autocovariance("se", lag, 3.0), 20_000, 1, rng=rng)[0]
    x = x + 0.1 * rng.standard_normal(len(x))
    P, F = cca.lag_vectors(x, 8, 8)
    res = []
    for order in (np.arange(len(P)), rng.permutation(len(P)), np.arange(len(P))[::-1]):
        Z = np.concatenate([P[order], F[order]], axis=1)
        Z = Z - Z.mean(axis=0)
        S = Z.T @ Z / (len(Z) - 1)
        res.append(cca.cca_from_covariances(S[:8, :8], S[8:, 8:], S[8:, :8], 8, 8, rank=3))
    for r in res[1:]:
        np.testing.assert_allclose(r.past_filters, res[0].past_filters, rtol=1e-6, atol=1e-8)
    # independent halves of the data agree in sign as well (a flip would give a cosine near −1)
    halves = [cca.past_future_cca(x[s], 8, 8, rank=2) for s in (slice(0, 10_000), slice(10_000, None))]
    for k in range(2):
        a, b = halves[0].past_filters[k], halves[1].past_filters[k]
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.9


def test_convention_and_canonical_variates():
    rng = np.random.default_rng(2)
    x = cca.sample_stationary(lambda lag: cca.kernel_autocovariance("rq", lag, 5.0), 40_000, 1, rng=rng)[0]
    x += 0.2 * rng.standard_normal(len(x))
    res = cca.past_future_cca(x, 10, 6, rank=3)
    P, F = cca.lag_vectors(x, 10, 6)
    U, V = (P - P.mean(0)) @ res.past_filters.T, (F - F.mean(0)) @ res.future_filters.T
    np.testing.assert_allclose(U.var(axis=0, ddof=1), 1.0, atol=1e-6)  # whitened projections
    corr = np.mean(U * V, axis=0) * len(U) / (len(U) - 1)
    np.testing.assert_allclose(corr, res.rho, atol=1e-6)
    assert np.all(np.diff(res.rho) <= 0) and np.all(res.rho >= 0)
    for psi in res.past_filters:  # earliest significant coefficient is positive
        sig = np.flatnonzero(np.abs(psi) >= 0.2 * np.abs(psi).max())
        assert psi[sig[0]] > 0


def test_mutual_information_eq8():
    assert cca.mutual_information([0.6]) == pytest.approx(-0.5 * np.log(0.64))
    assert cca.mutual_information([0.6, 0.0, 0.8]) == pytest.approx(-0.5 * (np.log(0.64) + np.log(0.36)))
    assert cca.mutual_information([]) == 0.0
    res = cca.analytic_cca("ou", 5, 5, 4.0)
    assert res.mutual_information == pytest.approx(-0.5 * np.log(1 - np.exp(-0.5)))
    with pytest.raises(ValueError, match="rho"):
        cca.mutual_information([1.0])


def test_count_lobes():
    assert cca.count_lobes([1, 0.5, 0.2, 0.01, -0.05]) == 1  # tail below 10 % is ignored
    assert cca.count_lobes([1, 0.2, -0.5, -0.1, 0.3]) == 3
    assert cca.count_lobes(np.zeros(4)) == 0
    with pytest.raises(ValueError):
        cca.count_lobes([1, 2], threshold=1.5)


def test_snr_adaptation_lobes_fall_with_noise():
    lobes = [cca.count_lobes(cca.analytic_cca("se", 40, 40, 8.0, noise_var=nv).past_filters[0])
             for nv in (1e-4, 1e-2, 1.0, 10.0)]
    assert lobes[0] >= 3 and lobes[-1] == 1 and all(np.diff(lobes) <= 0), lobes


def test_apply_filter_equals_lag_projection():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    psi = rng.standard_normal(2 * 5)
    u = cca.apply_filter(x, psi)
    P, _ = cca.lag_vectors(x, 5, 1)
    np.testing.assert_allclose(u[4:-1], P @ psi)


def test_principal_angles():
    A = np.eye(4)[:2]
    assert np.allclose(cca.principal_angles(A, A), 0)
    assert np.allclose(cca.principal_angles(A[:1], np.eye(4)[1:2]), np.pi / 2)


def test_errors():
    with pytest.raises(ValueError, match="m="):
        cca.lag_vectors(np.zeros(10), 0, 2)
    with pytest.raises(ValueError, match="shorter"):
        cca.lag_vectors(np.zeros(4), 3, 2)
    with pytest.raises(ValueError, match="method"):
        cca.lag_covariances(np.zeros(100), 3, 2, method="loop")
    with pytest.raises(ValueError, match="zero variance"):
        cca.past_future_cca(np.ones(100), 3, 2)
    with pytest.raises(ValueError, match="kernel"):
        cca.kernel_autocovariance("matern", [0, 1], 2.0)
    with pytest.raises(ValueError, match="rank"):
        cca.analytic_cca("ou", 3, 2, 2.0, rank=3)
    with pytest.raises(ValueError, match="channel"):
        cca.lag_covariances([np.zeros((50, 1)), np.zeros((50, 2))], 3, 2)


def test_batched_trajectories_equal_list():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((7, 60, 2))
    A = cca.lag_covariances(X, 5, 3)
    B = cca.lag_covariances(list(X), 5, 3)
    for a, b in zip(A, B):
        np.testing.assert_allclose(a, b, atol=1e-12)
