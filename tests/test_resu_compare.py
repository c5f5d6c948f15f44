"""Comparisons of the ReSU network with recordings and the connectome (protocols/resu_compare.py); the
conventions they use (signs, pixel roles, recording polarity) are tested in test_resu_conventions.py."""

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
    for name, b in out["best"].items():  # the other reading of the data's sign: the same fit, model reversed
        assert b["r_fitted_if_light_positive"] == pytest.approx(-np.nanmin(out["r"][name]))
        assert b["delta_ms_if_light_positive"] in p.model_ms_grid
    # light and dark flashes give opposite linear responses
    np.testing.assert_allclose(out["traces"][:, 0], -out["traces"][:, 1], atol=1e-12)


def test_t4_filter_comparison_runs_the_authors_layer2_in_brian2():
    """Reverse correlation through the Brian2 network with one layer-2 tap (layer2=authors), against a
    synthetic 'measured' filter: the model filter is in role order and has the measured shape."""
    from b2models.protocols import resu_t4

    p = resu_t4.resolve_layer2(dataclasses.replace(rc.CompareParams(m=8, h=8), layer2="authors", sta_units=4,
                                                   sta_steps=400, sta_lags=10))
    psi1 = cca.analytic_cca("rq", 8, 8, 3.0, noise_var=0.5, rank=2).past_filters
    psi2 = np.array([0.2, 1.0, 0.3, 0.5, -0.4, -0.6])
    measured = {"filterShapes": np.random.default_rng(0).standard_normal((30, 3, 2)), "t": np.arange(30) * 10.0,
                "x": np.array([0.0, 5.0, 10.0])}
    out = rc.t4_filter_comparison(p, {"psi1": psi1, "psi2": psi2, "contrast_sd": 1.0}, measured, "numpy")
    assert out["model_filter_r"].shape == out["measured"].shape == (10, 3)
    assert -1 <= out["r_linear"] <= 1 and np.abs(out["model_filter_v"]).max() > 0


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
