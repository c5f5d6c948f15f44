"""Binned spike-train correlations of the Fig 4 protocol (Brendel et al. 2020,
https://doi.org/10.1371/journal.pcbi.1007692): bins, claims and a tiny run on numpy."""

import dataclasses
import json

import numpy as np
import pytest
from brian2 import ms, second

from b2models.protocols import spikecoding_fig4 as fig4


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("B2MODELS_CACHE", str(tmp_path / "cache"))


def test_bins_below_dt_are_not_measurable():
    p = fig4.Fig4Params()
    assert float(p.dt) == pytest.approx(1e-4)  # the authors' 0.1 ms: every bin is measurable
    assert all(v is not None for v in fig4.measurable_bins(p).values())
    bins = fig4.measurable_bins(dataclasses.replace(p, dt=1 * ms))
    assert bins["0.1ms"] is None and bins["1ms"] == pytest.approx(1e-3) and bins["100ms"] == pytest.approx(0.1)


def test_claims_label_both_statistics():
    claims = {c.key: c for c in fig4.PROTOCOL.claims}
    assert "trial count" in claims["pairwise_correlation_E_after"].label
    for b in fig4.CORR_BINS_MS:
        c = claims[f"binned_corr_E_{fig4.corr_bin_label(b)}_after"]
        assert "< 0.001" in c.paper and c.check(5e-4) and not c.check(-2e-3)


def test_tiny_run_reports_binned_correlations_numpy(tmp_path):
    """The whole protocol at tiny scale (16 E / 4 I, 0.4 s of learning) on numpy: every binned correlation
    and its Poisson reference is in metrics.json and finite; at a bin of one step (0.1 ms) the correlation
    is exactly the one the one-spike-per-step rule forces (at most one spike per population per step); the
    Poisson references lie within 6 s.d. of the estimator's exact null distribution."""
    from b2models.protocol import Context
    from b2models.results import RunWriter

    p = dataclasses.replace(
        fig4.Fig4Params(), N_E=16, N_I=4, n_record=2, duration=0.4 * second, chunk=0.2 * second, n_snapshots=1,
        test_chunks=1, discard=0.05 * second, n_inputs=1, n_trials=4, n_angles=4, tuning_hold=0.1 * second,
        eps_F=2e-3, eps_Omega=2e-2, traj_inputs=1, traj_trials=2)
    writer = RunWriter("spikecoding.fig4", out_root=tmp_path / "results")
    with writer:
        ctx = Context(params=p, seed=2, backend="numpy", quick=True, writer=writer, show_progress=False)
        fig4.run(ctx)
    m = json.loads((writer.path / "metrics.json").read_text())
    for when in ("before", "after"):
        for pop in ("E", "I"):
            for b in fig4.CORR_BINS_MS:
                key = f"binned_corr_{pop}_{fig4.corr_bin_label(b)}_{when}"
                for suffix in ("", "_poisson", "_null_sd", "_pairs", "_anyspike", "_anyspike_poisson"):
                    assert np.isfinite(m[key + suffix]), f"{key + suffix} = {m[key + suffix]}"
                assert m[key + "_pairs"] >= 1 and m[key + "_null_sd"] > 0
                assert -1 <= m[key] <= 1
            one_step = f"binned_corr_{pop}_0.1ms_{when}"
            assert m[one_step] < 0, f"{one_step} = {m[one_step]}: one spike per step makes every pair negative"
            assert m[one_step] == pytest.approx(m[one_step + "_exclusive"], rel=1e-9), (
                "at a bin of one step the trains are binary and mutually exclusive: check the one-spike rule "
                "and the binning on the step grid")
            for b in (0.1, 1.0):
                key = f"binned_corr_{pop}_{fig4.corr_bin_label(b)}_{when}"
                assert abs(m[key + "_poisson"]) < 6 * m[key + "_null_sd"], (key, m[key + "_poisson"])
    # Fig 4 Bii–iii trajectories (one value per snapshot) and Fig 4 D tuning breadth are reported
    for key in ("traj_cv_E_initial", "traj_fano_E_final", "rate_E_final_over_initial", "tuning_width_deg_E",
                "tuning_width_deg_I"):
        assert key in m, f"{key} missing from metrics.json"
    arrays = np.load(writer.path / "arrays.npz")
    assert len(arrays["traj_cv_E"]) == len(arrays["snapshot_t"]) == 2


def test_tuning_breadth_ranks_broad_above_narrow_and_uses_the_most_active_cells():
    """Fig 4 D's measure: the median half-max width of the most active half of the firing cells."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    pref = angles[::2]
    narrow = np.stack([20 * np.maximum(np.cos(angles - a), 0) ** 8 for a in pref], axis=1)
    broad = np.stack([20 * np.maximum(np.cos(angles - a), 0) for a in pref], axis=1)
    bn, bb = fig4.tuning_breadth(angles, narrow), fig4.tuning_breadth(angles, broad)
    assert bb["width_deg"] > 1.5 * bn["width_deg"] and bb["spread"] > bn["spread"]
    # weak, flat cells do not enter the "most active" half
    mixed = np.concatenate([narrow, np.full((16, 8), 0.5)], axis=1)
    bm = fig4.tuning_breadth(angles, mixed)
    assert bm["n_firing"] == 16 and bm["n_top"] == 8 and bm["width_deg"] == pytest.approx(bn["width_deg"])
    assert bm["width_deg_all"] > bm["width_deg"]
    assert np.isnan(fig4.tuning_breadth(angles, np.zeros((16, 3)))["width_deg"])
