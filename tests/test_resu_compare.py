"""Comparisons of the ReSU network with recordings and the connectome (protocols/resu_compare.py)."""

import dataclasses

import numpy as np
import pytest

from b2models.analysis import cca
from b2models.protocols import resu_compare as rc


def test_pearson_values_and_errors():
    assert rc.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert rc.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(rc.pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equal-length"):
        rc.pearson([1, 2, 3], [1, 2])


def test_flash_box_sampling_and_time_stamps():
    s = rc.flash_stimulus(10.0, 6, (15.0, 35.0), -1.0)
    np.testing.assert_allclose(s, [0, -0.5, -1, -0.5, 0, 0])
    assert s.sum() * 10.0 == pytest.approx(-20.0)  # flash area is kept for any Δ
    # output of sample k is stamped at (k+1)Δ
    np.testing.assert_allclose(rc.to_recording_grid([1.0, 2.0], 10.0, [0.0, 5.0, 10.0, 20.0, 30.0]),
                               [0, 0.5, 1, 2, 2])


def test_model_traces_are_in_light_positive_polarity():
    u = np.array([-2.0, 1.0, 3.0])
    np.testing.assert_allclose(rc.model_flash_trace(u, "rectified", "L1"), [0, 1, 3])
    np.testing.assert_allclose(rc.model_flash_trace(u, "rectified", "L2"), [-2, 0, 0])
    with pytest.raises(ValueError, match="unknown"):
        rc.model_flash_trace(u, "rectified", "L3")


def test_orientation_of_a_direction_selective_filter():
    """A delay-and-compare filter (early lobe at position 0, later at 1, …) prefers motion 0 → 2."""
    F = np.zeros((30, 3))
    for x in range(3):
        F[2 + 4 * (2 - x): 6 + 4 * (2 - x), x] = 1.0  # position 0 is delayed most
    plus, minus = rc.grating_amplitudes(F, 0.01, 5.0)
    assert plus > 1.5 * minus
    G, rev = rc.orient_preferred_first(F[:, ::-1], 0.01, 5.0)
    assert rev and np.array_equal(G, F)


def test_reverse_correlation_recovers_a_linear_filter():
    rng = np.random.default_rng(0)
    T, U = 20000, 2
    s = rng.standard_normal((T, U, 3))
    F = rng.standard_normal((5, 3))
    r = np.zeros((T, U))
    for lag in range(5):
        r[lag:] += np.einsum("tup,p->tu", s[: T - lag], F[lag])
    est = rc.reverse_correlation(r, s, 5, 10)
    np.testing.assert_allclose(est, F, atol=0.05)
    with pytest.raises(ValueError, match="discard"):
        rc.reverse_correlation(r, s, 5, 2)


def test_connectome_comparison_uses_fixed_mapping_and_sign():
    """Model gains equal to the paper's weights (placed by the authors' column mapping) give r = 1; the
    same gains with the opposite sign give r = −1: the comparison never flips a sign by itself."""
    m2 = 3
    paper = {"L1": np.array([0.37, 1.37, 0.34]), "L3": np.array([0.20, -0.38, -0.09])}
    K = np.zeros((6, m2))
    for path, rows in (("L1", slice(0, 3)), ("L3", slice(3, 6))):
        gains_abc = np.zeros(3)
        gains_abc[list(rc.PAPER_COLUMN_FROM_PIXEL)] = paper[path]
        K[rows, 0] = gains_abc
    out = rc.connectome_comparison(rc.CompareParams(m2=m2), K.ravel(), paper, None)
    assert out["r_paper_L1"] == pytest.approx(1.0) and out["r_paper_L3"] == pytest.approx(1.0)
    neg = rc.connectome_comparison(rc.CompareParams(m2=m2), -K.ravel(), paper, None)
    assert neg["r_paper_L1"] == pytest.approx(-1.0) and neg["r_paper_L3"] == pytest.approx(-1.0)


def test_flyvis_columns_from_the_real_connectome():
    from b2models.data.loaders import require

    path = require("fly_connectome") / "DERIVED_edges_by_offset.csv"
    l1 = rc.flyvis_column_counts(path, rc.FLYVIS_L1_TYPES)
    l3 = rc.flyvis_column_counts(path, rc.FLYVIS_L3_TYPES)
    assert l1[1] == l1.max() > 0, f"Mi1/Tm3 input should peak in the centre column, got {l1}"
    assert np.all(l3 <= 0) and l3.min() < 0, f"Mi9 is inhibitory onto T4a in flyvis, got {l3}"
    mi4 = rc.flyvis_column_counts(path, ("Mi4",))
    assert mi4[2] < mi4[0], f"Mi4 should sit on the null side (pixel c), got {mi4}"


def test_flash_comparison_brian2_matches_reference_and_reports_every_r():
    from b2models.data import fly_l1l2_recordings

    p = dataclasses.replace(rc.CompareParams(m=12), model_ms_grid=(4.0, 8.0, 16.0))
    psi1 = cca.analytic_cca("rq", 12, 12, 3.0, noise_var=0.5, rank=2).past_filters
    out = rc.flash_comparison(p, psi1, fly_l1l2_recordings(), "numpy")
    assert set(out["best"]) == {f"{c}_{lum}_{q}" for c in rc.CELLS for lum in rc.LUMS for q in rc.QUANTITIES}
    t_ms = np.arange(63) * rc.FLASH_DT_MS
    flash_ms = (2 * rc.FLASH_DT_MS, 5 * rc.FLASH_DT_MS)
    for i, d in enumerate(p.model_ms_grid):  # the Brian2 traces equal the numpy reference
        np.testing.assert_allclose(out["traces"][i], rc.traces_at(p, psi1, d, t_ms, flash_ms), atol=1e-10)
    for b in out["best"].values():
        assert -1 <= b["r_fitted"] <= 1 and b["delta_ms"] in p.model_ms_grid
        assert b["r_fitted"] >= b["r_at_training_dt"] - 1e-12 or b["delta_ms"] != p.dt_ms
    # light and dark flashes give opposite linear responses
    np.testing.assert_allclose(out["traces"][:, 0], -out["traces"][:, 1], atol=1e-12)


def test_params_validate():
    with pytest.raises(ValueError, match="flash_samples"):
        dataclasses.replace(rc.CompareParams(), flash_samples=(5, 2)).validate()


@pytest.mark.slow
def test_protocol_compare_quick(tmp_path):
    from b2models.protocol import Context, params_with_quick
    from b2models.results import RunWriter

    proto = rc.PROTOCOL
    w = RunWriter(proto.name, out_root=tmp_path)
    with w:
        m = proto.run(Context(params=params_with_quick(proto, True), seed=1, backend="numpy", quick=True,
                              writer=w, show_progress=False))
    for fig in proto.figures:
        assert (w.path / "figures" / f"{fig}.png").exists()
    for key in ("r_paper_L1", "r_paper_L3", "r_flyvis_L1", "r_flyvis_L3", "t4_filter_r_rectified",
                "flash_r_mean_linear", "flash_r_mean_rectified"):
        assert np.isfinite(m[key]) and -1 <= m[key] <= 1, (key, m[key])
