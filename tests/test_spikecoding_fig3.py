"""Correlated inputs (Brendel et al. 2020, Fig 3): input mixing, measures, the decorrelated rule, learning."""

import dataclasses

import numpy as np
import pytest

from b2models.models.spikecoding import SpikeCodingParams, decorrelated_hebbian_signal, hebbian_precision
from b2models.protocols.spikecoding_fig3 import axial_alignment, axis_density_ratio, mixing_matrix, peak_angles


def test_mixing_matrix_gives_the_requested_ellipse():
    A = mixing_matrix(30.0, 3.0)
    C = A @ A.T
    w, v = np.linalg.eigh(C)
    assert np.trace(C) == pytest.approx(2.0), "total variance must stay that of the white 2-D input"
    assert np.sqrt(w[1] / w[0]) == pytest.approx(3.0)
    long_axis = np.degrees(np.arctan2(v[1, 1], v[0, 1])) % 180
    assert long_axis == pytest.approx(30.0)


def test_axial_measures_by_hand():
    axis = np.pi / 4
    assert axial_alignment([axis, axis + np.pi], axis) == pytest.approx(1.0)
    assert axial_alignment([axis + np.pi / 2, axis - np.pi / 2], axis) == pytest.approx(-1.0)
    assert axial_alignment(np.linspace(0, 2 * np.pi, 8, endpoint=False), axis) == pytest.approx(0.0, abs=1e-12)
    # 3 near the long axis (one of them pointing the other way), 1 near the short axis, 1 in between
    angles = np.radians([45, 50, 225, 135, 0, np.nan])
    assert axis_density_ratio(angles, axis) == pytest.approx(3.0)
    assert axis_density_ratio(np.radians([45, 40, 230]), axis) == pytest.approx(3.0), "no short-axis direction: 3/1"
    assert np.isnan(axial_alignment([np.nan], axis))
    rates = np.array([[0.0, 4.0, 0.0], [2.0, 3.0, 0.0], [1.0, 0.0, 0.0]])  # rows: angles, columns: neurons
    np.testing.assert_array_equal(peak_angles([0.0, 1.0, 2.0], rates)[:2], [1.0, 0.0])
    assert np.isnan(peak_angles([0.0, 1.0, 2.0], rates)[2])


def test_hebbian_precision_is_identity_for_white_input_and_whitens_correlated_input():
    rng = np.random.default_rng(0)
    white = 3.0 * rng.standard_normal((200_000, 2))
    np.testing.assert_allclose(hebbian_precision(white), np.eye(2), atol=0.02)
    x = white @ mixing_matrix(45.0, 4.0).T
    P = hebbian_precision(x)
    M = x.T @ x / len(x)
    np.testing.assert_allclose(P, np.trace(M) / 2 * np.linalg.inv(M), rtol=1e-10)
    # P x has second moments proportional to P: the long axis is compressed
    y = decorrelated_hebbian_signal(x, P)
    m_y = y.T @ y / len(y)
    np.testing.assert_allclose(m_y / np.trace(m_y), P / np.trace(P), atol=1e-3)
    with pytest.raises(ValueError, match="shrinkage"):
        hebbian_precision(x, shrinkage=1.5)
    with pytest.raises(ValueError, match="T >= J"):
        hebbian_precision(np.ones((1, 2)))


def test_bad_fig3_parameters_are_refused():
    from b2models.protocols.spikecoding_fig3 import Fig3Params

    with pytest.raises(ValueError, match="axis_ratio"):
        Fig3Params(axis_ratio=0.5).validate()
    with pytest.raises(ValueError, match="J=3"):
        Fig3Params(J=3).validate()
    assert dataclasses.fields(SpikeCodingParams)  # the Fig 2 parameter set is unchanged in type


@pytest.mark.standalone
def test_short_learning_puts_more_preferred_directions_along_the_long_axis(tmp_path, have_compiler):
    """The quick protocol (400 s, decorrelated rule only) on cpp: preferred directions crowd where the input is."""
    from b2models.protocol import Context
    from b2models.protocols.spikecoding_fig3 import PROTOCOL, quick_params
    from b2models.results import RunWriter

    p = dataclasses.replace(quick_params(PROTOCOL.params()), compare_plain=False)
    with RunWriter(PROTOCOL.name, out_root=tmp_path) as w:
        m = PROTOCOL.run(Context(params=p, seed=1, backend="cpp", quick=True, writer=w, show_progress=False))
    assert m["decorrelated_tuning_density_ratio"] > 1.5, (
        f"preferred directions near the long / short axis: {m['decorrelated_tuning_density_ratio']}; expected the "
        "denser input direction to attract more neurons - check the presynaptic term P x of the feedforward rule"
    )
    assert m["decorrelated_decoder_alignment"] > 0.2
    assert m["decorrelated_final_error"] < 0.3 * m["decorrelated_initial_error"]
    assert (w.path / "figures" / "fig3D_tuning.png").exists()


def test_tuning_shape_measures_by_hand():
    from b2models.analysis import coding

    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    narrow = np.zeros(8)
    narrow[2] = 10.0
    broad = 10.0 * np.maximum(np.cos(angles - angles[2]), 0) + 1e-9
    flat = np.full(8, 3.0)
    rates = np.stack([narrow, broad, flat, np.zeros(8)], axis=1)
    w = coding.halfmax_width(angles, rates)
    np.testing.assert_allclose(w[:3], [2 * np.pi / 8, 2 * np.pi * 3 / 8, 2 * np.pi])
    assert np.isnan(w[3])
    s = coding.circular_spread(angles, rates)
    assert s[0] == pytest.approx(0.0, abs=1e-12) and s[2] == pytest.approx(1.0) and 0 < s[1] < 1
    pk = coding.peak_angles(angles, rates)
    assert pk[0] == pytest.approx(angles[2]) and np.isnan(pk[3])
    np.testing.assert_allclose(coding.angle_difference([0.1, 3.0], [-0.1, -3.0]), [0.2, 6.0 - 2 * np.pi])
    assert coding.angle_difference(np.pi, 0.0) == pytest.approx(np.pi)
    with pytest.raises(ValueError, match="n_angles"):
        coding.halfmax_width(angles, rates[:5])
