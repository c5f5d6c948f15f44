"""The authors' naming-pass root layer (non-spiking conv3, optional multi-spike pool2) against its NumPy
reference, and learned-kernel files."""

import numpy as np
import pytest

from b2models.models.recollection import AuthorsRootLayer, reference_authors_root
from b2models.models.sdnn import ConvSpec, PoolSpec


def _slots(rng, n, n_conv2, n_slots):
    s = rng.integers(0, n_slots, (n, n_conv2))
    return np.where(rng.random((n, n_conv2)) < 0.3, s, -1)


def test_authors_root_layer_equals_the_numpy_reference():
    """Crossing slots and end potentials of every root neuron equal the NumPy statement of the layer, with
    first-spike and multi-spike pool2; multi-spike pooling adds input, so crossings come no later."""
    from b2models.backend import Session

    rng = np.random.default_rng(0)
    shape, pool, conv3 = (3, 6, 8), PoolSpec(3, 2), ConvSpec(4, 3, 1.0)
    n, n_slots = 4, 5
    slots = _slots(rng, n, int(np.prod(shape)), n_slots)
    kernel = rng.uniform(0, 0.5, (4, 3, 3, 3))
    theta = float(np.median(reference_authors_root(slots[0], shape, pool, kernel, 1.0, n_slots)[1]))
    with Session("numpy", "test_authors_root", key=(shape, n, n_slots)) as s:
        net = AuthorsRootLayer(shape, pool, conv3, n, n_slots, s)
        out = {m: net.run(slots, kernel, theta, multi_spike=m) for m in (False, True)}
        with pytest.raises(ValueError, match="conv2 slots"):
            net.run(slots + n_slots, kernel, theta)
        with pytest.raises(ValueError, match="conv3 kernel"):
            net.run(slots, kernel[:2], theta)
        with pytest.raises(ValueError, match="theta_root"):
            net.run(slots, kernel, 0.0)
    for multi, r in out.items():
        for k in range(n):
            cross, v = reference_authors_root(slots[k], shape, pool, kernel, theta, n_slots, multi)
            np.testing.assert_array_equal(r.cross_slot[k], cross, err_msg=f"multi_spike={multi}, image {k}")
            np.testing.assert_allclose(r.potential[k], v, atol=1e-9, err_msg=f"multi_spike={multi}, image {k}")
    single, multi = out[False], out[True]
    assert np.all(multi.potential >= single.potential - 1e-12) and np.any(multi.potential > single.potential)
    fired_s, fired_m = single.cross_slot >= 0, multi.cross_slot >= 0
    assert np.all(fired_m[fired_s]) and np.all(multi.cross_slot[fired_s] <= single.cross_slot[fired_s])
    assert 0 < fired_s.mean() < 1, "the toy must have neurons on both sides of the threshold"
    assert np.all(multi.pool_spikes >= single.pool_spikes) and np.any(multi.pool_spikes > single.pool_spikes)


def test_kernel_file_round_trip_and_errors(tmp_path):
    """Kernels saved by save_kernels load back unchanged; a wrong layer name, shape, range or file gives one
    ValueError naming the file and the problem."""
    from b2models.models.sdnn import SDNNParams, kernel_shapes, load_kernels, save_kernels

    shapes = kernel_shapes(SDNNParams(input_channels="on_off"))
    assert shapes == {"conv1": (4, 2, 5, 5), "conv2": (20, 4, 17, 17), "conv3": (20, 20, 5, 5)}
    rng = np.random.default_rng(1)
    kernels = [rng.random(s) for s in shapes.values()]
    f = tmp_path / "kernels.npz"
    save_kernels(f, kernels)
    for k, back in zip(kernels, load_kernels(f, shapes)):
        np.testing.assert_array_equal(back, k)
    bad = tmp_path / "bad.npz"
    cases = [({"conv1": kernels[0], "conv2": kernels[1]}, "no layer 'conv3'"),
             ({"conv1": kernels[0], "conv2": kernels[1], "conv3": kernels[2][:, :4]}, "layer 'conv3' has shape"),
             ({"conv1": kernels[0] + 1, "conv2": kernels[1], "conv3": kernels[2]}, r"layer 'conv1' .*\[0, 1\]"),
             ({"conv1": np.where(kernels[0] > 0.5, np.nan, 0.0), "conv2": kernels[1], "conv3": kernels[2]},
              "layer .conv1. must hold finite")]
    for arrays, match in cases:
        np.savez(bad, **arrays)
        with pytest.raises(ValueError, match=f"kernel file .*bad.npz: {match}"):
            load_kernels(bad, shapes)
    bad.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_kernels(bad, shapes)
    with pytest.raises(ValueError, match="no such file"):
        load_kernels(tmp_path / "missing.npz", shapes)
