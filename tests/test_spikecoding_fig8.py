"""Lesions of the E–I network (models.spikecoding_ei.lesion_E) and protocol spikecoding.fig8."""

import json

import numpy as np
import pytest

from b2models.backend import Session
from b2models.data.signals import SmoothedNoise
from b2models.models.spikecoding_ei import EINetwork, EIParams, dale_violations

FAST = {"eps_F": 5e-3, "eps_Omega": 5e-2}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("B2MODELS_CACHE", str(tmp_path / "cache"))


def test_lesioned_cells_stay_deleted_and_frozen_weights_stay_fixed_numpy():
    """After lesion_E the deleted cells never fire and every weight to or from them stays 0 while the
    rest learns; eta_scale=0 freezes the feedforward weights (retraining 'recurrent only')."""
    p = EIParams(N_E=12, N_I=4, J=2, n_record=0, **FAST)
    L = 300
    src = SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt),
                        float(p.dt), seed=0)
    dead = np.array([0, 5, 7])
    with Session("numpy", "test_ei_lesion") as s:
        net = EINetwork(p, s, L, seed=1)
        net.lesion_E(dead)
        with pytest.raises(ValueError, match="out of range"):
            net.lesion_E([12])
        F0, W0 = net.weights["F"].copy(), {k: v.copy() for k, v in net.weights.items()}
        spikes = []
        for k in range(2):
            c, _ = src.next(L)
            res = net.run_chunk(c, learning=True, seed=k, eta_scale={"F": 0.0, "W_EI": 0.0})
            spikes.append(res.spike_i_E)
        with pytest.raises(ValueError, match="eta_scale"):
            net.run_chunk(c, learning=True, eta_scale={"W_XX": 0.0})
    W = net.weights
    spikes = np.concatenate(spikes)
    assert len(spikes) > 10, "too few E spikes to exercise learning"
    assert not np.isin(spikes, dead).any(), "a deleted E cell fired"
    assert not W["F"][:, dead].any()
    assert not W["W_EE"][dead, :].any() and not W["W_EE"][:, dead].any(), "E → E weights of deleted cells moved"
    assert not W["W_EI"][:, dead].any() and not W["W_IE"][dead, :].any(), "E ↔ I weights of deleted cells moved"
    np.testing.assert_array_equal(W["F"], F0)  # frozen by eta_scale
    np.testing.assert_array_equal(W["W_EI"], W0["W_EI"])
    assert not np.allclose(W["W_IE"], W0["W_IE"]), "the recurrent weights should still learn"
    assert sum(dale_violations(W).values()) == 0


def test_sector_selection():
    from b2models.protocols.spikecoding_fig8 import in_sector, per_angle_error

    ang = np.radians([0, 40, 50, 180, 350, -30])
    assert in_sector(ang, 0, 90).tolist() == [True, True, False, False, True, True]
    assert in_sector(np.radians([175, -175]), 180, 20).tolist() == [True, True]
    # a decoder that reproduces x exactly from r̄ = rate/λ has zero per-angle error
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    D = np.eye(2)
    rates = 50.0 * 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert np.allclose(per_angle_error(D, rates, angles, 2.0, 50.0), 0)
    assert np.allclose(per_angle_error(D, 0 * rates, angles, 2.0, 50.0), 1)


@pytest.mark.standalone
@pytest.mark.slow
def test_lesion_degrades_the_code_and_retraining_recovers_it_cpp(tmp_path, have_compiler):
    """The --quick Fig 8 run (80 E / 40 I): deleting the E cells of one direction leaves that direction
    badly read out by the intact decoder and raises the coding error; retraining all weights brings the
    error back down, retraining only the feedforward weights makes it worse."""
    from b2models.protocol import Context
    from b2models.protocols import spikecoding_fig8 as fig8
    from b2models.results import RunWriter

    p = fig8.quick_params(fig8.Fig8Params())
    writer = RunWriter("spikecoding.fig8", out_root=tmp_path / "results")
    with writer:
        ctx = Context(params=p, seed=1, backend="cpp", quick=True, writer=writer, show_progress=False)
        m = fig8.run(ctx)
    assert m["n_lesioned_E"] > 0 and m["dale_violations_max"] == 0 and m["stray_weight_max"] == 0.0
    assert m["lesioned_sector_error_fixed"] > 3 * m["intact_sector_error_fixed"], (
        f"sector error {m['intact_sector_error_fixed']:.3f} intact, {m['lesioned_sector_error_fixed']:.3f} "
        "lesioned (intact readout): deleting the cells of one direction should leave it badly coded; "
        "check lesion_E and the sector selection")
    assert m["lesioned_error_E"] > 1.2 * m["intact_error_E"], "the lesion should raise the coding error"
    assert m["both_error_E"] < m["lesioned_error_E"], "retraining all weights should lower the error again"
    assert m["recurrent_error_E"] < m["lesioned_error_E"], "retraining the recurrent weights should lower it"
    assert m["feedforward_error_E"] > m["lesioned_error_E"], \
        "feedforward-only retraining should make the error worse (paper Fig 8 iii)"
    saved = json.loads((writer.path / "metrics.json").read_text())
    assert saved["n_lesioned_E"] == m["n_lesioned_E"]


def test_surviving_cell_changes_by_hand():
    """Fig 8 B measures on the surviving E cells: rate rise in the lesioned sector, preferred directions that
    move towards the lesion, wider tuning; the deleted cells do not enter."""
    from b2models.protocols.spikecoding_fig8 import Fig8Params, surviving_cell_changes

    p = Fig8Params(N_E=4, N_I=2)
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)  # lesion sector: ±60° around 0 -> angles 0, ±45°

    def bump(centre, width):
        return 10 * np.exp(-np.angle(np.exp(1j * (angles - np.radians(centre)))) ** 2 / (2 * np.radians(width) ** 2))
    intact = np.stack([bump(0, 30), bump(90, 30), bump(180, 30), bump(270, 30)], axis=1)
    lesioned = np.stack([np.zeros(8), bump(60, 60), bump(180, 30), bump(300, 60)], axis=1)
    res = {c: {"angles": angles, "tuning_E": intact, "cell_rates_E": np.array([5.0, 4, 4, 4])}
           for c in ("intact", "recurrent", "feedforward", "both")}
    res["lesioned"] = {"angles": angles, "tuning_E": lesioned, "cell_rates_E": np.array([0.0, 6, 4, 6])}
    m = surviving_cell_changes(res, [0], p)
    assert m["n_surviving_E"] == 3
    assert m["intact_rate_E_surviving"] == pytest.approx(4.0)
    assert m["lesioned_rate_E_surviving"] == pytest.approx(16 / 3)
    assert m["lesioned_sector_rate_E_surviving_over_intact"] > 1
    # cells 1 and 3 move 30° towards 0°, cell 2 stays: median 30°, 2 of 3 move towards the lesion
    assert m["lesioned_pref_shift_towards_lesion_deg"] == pytest.approx(30.0, abs=1.0)
    assert m["lesioned_pref_shift_towards_lesion_share"] == pytest.approx(2 / 3)
    assert m["lesioned_width_ratio_surviving"] >= 1 and m["recurrent_width_ratio_surviving"] == pytest.approx(1.0)
    assert m["recurrent_pref_shift_towards_lesion_deg"] == pytest.approx(0.0)
