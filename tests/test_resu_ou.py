"""resu.ou: Kalman-filter theory of the noisy OU past filter, and the protocol at small scale."""

import numpy as np
import pytest

from b2models.analysis import cca
from b2models.protocols import resu_ou


@pytest.mark.parametrize("noise_var", [0.05, 0.5, 5.0])
def test_analytic_cca_past_filter_is_the_kalman_filter(noise_var):
    tau, m = 6.0, 30
    a = np.exp(-1.0 / tau)
    an = cca.analytic_cca("ou", m, m, tau, noise_var=noise_var, rank=2, reg=0.0)
    kal = resu_ou.kalman_filter_weights(a, noise_var, m)
    cos = abs(an.past_filters[0] @ kal) / np.linalg.norm(an.past_filters[0]) / np.linalg.norm(kal)
    assert cos > 0.9999, f"analytic ψ1 differs from the Kalman impulse response (cos {cos:.6f}): check kalman_gain"
    assert an.rho[1] < 1e-6, "a noisy OU process still has one canonical pair"


def test_kalman_gain_limits_and_riccati():
    a = 0.9
    assert resu_ou.kalman_gain(a, 0.0) == 1.0
    for r in (0.1, 1.0, 10.0):
        K = resu_ou.kalman_gain(a, r)
        P = K * r / (1 - K)  # prior variance from K = P / (P + r)
        q = 1 - a * a
        assert P == pytest.approx(a * a * P * r / (P + r) + q, rel=1e-10), "steady-state Riccati equation"
    assert resu_ou.kalman_gain(a, 10.0) < resu_ou.kalman_gain(a, 1.0) < resu_ou.kalman_gain(a, 0.1) < 1


def test_decay_time_of_hand_made_filters():
    w = 0.7 ** np.arange(40)
    assert resu_ou.decay_time(w) == pytest.approx(-1 / np.log(0.7), rel=1e-9)
    assert resu_ou.decay_time(np.r_[1.0, np.zeros(9)]) == 0.0


def test_protocol_quick(tmp_path):
    from b2models.cli import main

    rc = main(["run", "resu.ou", "--quick", "--out", str(tmp_path), "--no-progress",
               "--set", "n_samples=20000", "--set", "m=20", "--set", "h=20"])
    assert rc == 0
    import json

    (run_dir,) = list((tmp_path / "resu.ou").iterdir())
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["rho1_noiseless_error"] < 0.02, "sampled noiseless ρ1 should be e^{-1/τ}"
    assert m["cos_sampled_kalman_min"] > 0.98, "sampled past filters should follow the Kalman filter"
    assert m["tau_filter_increases_with_noise"] is True
    assert (run_dir / "figures" / "ou_filters.png").is_file()
