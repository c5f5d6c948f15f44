"""SDNN building blocks (Kheradpisheh et al. 2018): DoG retina, latency code, shared-kernel conv layer."""

import numpy as np
import pytest
from scipy.signal import correlate

from b2models.backend import Session
from models.sdnn import (
    CONV_SYNAPSE,
    ConvLayer,
    ConvParams,
    RetinaParams,
    conv_connectivity,
    dog_contrast,
    dog_kernel,
    encode_image,
    latency_code,
)


# ----------------------------------------------------------------------------------------
# independent references
# ----------------------------------------------------------------------------------------
def _spike_tensor(steps, index, in_shape, n_steps):
    s = np.zeros((n_steps, *in_shape))
    s.reshape(n_steps, -1)[steps, index] = 1.0
    return s


def _reference(steps, index, in_shape, kernel, threshold, n_steps):
    """Potentials after each step (scipy correlation per map/channel) and the expected output spikes."""
    s = _spike_tensor(steps, index, in_shape, n_steps)
    n_maps, C = kernel.shape[:2]
    per_step = np.stack([
        np.stack([sum(correlate(s[t, c], kernel[m, c], mode="valid") for c in range(C)) for m in range(n_maps)])
        for t in range(n_steps)
    ])
    cum = np.cumsum(per_step, axis=0)  # (n_steps, n_maps, Ho, Wo)
    above = cum.reshape(n_steps, -1) >= threshold
    fires = above.any(axis=0)
    first = np.argmax(above, axis=0)
    idx = np.flatnonzero(fires)
    # the threshold is tested before the step's input arrives: spike one step after reaching it
    return cum[-1], first[idx] + 1, idx


def _small_problem(seed=0, in_shape=(2, 9, 11), n_maps=3, k=3, n_steps=6, p_spike=0.5):
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(in_shape))
    index = np.flatnonzero(rng.random(n_in) < p_spike)
    steps = rng.integers(0, n_steps, index.size)
    kernel = rng.uniform(0.0, 1.0, (n_maps, in_shape[0], k, k))
    return steps, index, kernel


def _check_result(res, steps, index, in_shape, kernel, threshold, n_steps):
    v_ref, spike_steps_ref, spike_idx_ref = _reference(steps, index, in_shape, kernel, threshold, n_steps)
    np.testing.assert_allclose(res.v, v_ref, rtol=1e-12, atol=1e-10,
                               err_msg="final potentials differ from the 2-D correlation of the input spikes")
    got = sorted(zip(res.spike_index.tolist(), res.spike_step.tolist()))
    want = sorted(zip(spike_idx_ref.tolist(), spike_steps_ref.tolist()))
    assert got == want, "output spikes (neuron, step) differ from the reference IF layer"
    assert len(set(res.spike_index.tolist())) == res.spike_index.size, "a neuron fired more than once"


# ----------------------------------------------------------------------------------------
# retina
# ----------------------------------------------------------------------------------------
def test_dog_kernel_zero_mean_on_centre():
    k = dog_kernel(7, 1.0, 2.0)
    assert k.shape == (7, 7)
    assert abs(k.sum()) < 1e-12
    assert k[3, 3] == pytest.approx(1.0) and k[3, 3] == k.max(), "the centre must be the positive peak (ON-centre)"
    ring = np.hypot(*np.meshgrid(np.arange(7) - 3, np.arange(7) - 3))
    assert np.all(k[(ring > 1.9) & (ring < 2.9)] < 0), "the surround (radius 2) must be negative"
    assert np.all(k[ring <= 1] > 0), "the centre (radius <= 1) must be positive"
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    with pytest.raises(ValueError, match="odd"):
        dog_kernel(6)
    with pytest.raises(ValueError, match="sigma"):
        dog_kernel(7, 2.0, 1.0)


def test_dog_contrast_on_only_border_and_threshold():
    p = RetinaParams(width=31, height=21)
    bright = np.zeros((21, 31))
    bright[10, 15] = 1.0
    c = dog_contrast(bright, p)
    assert c[10, 15] == pytest.approx(255.0), "a bright dot on black gives the kernel's centre × 255"
    assert c.argmax() == 10 * 31 + 15
    dark = np.ones((21, 31))
    dark[10, 15] = 0.0
    assert dog_contrast(dark, p)[9:12, 14:17].max() == 0, "a dark dot must give no ON response at its centre"
    rng = np.random.default_rng(1)
    img = rng.random((21, 31))
    c = dog_contrast(img, p)
    b = p.border
    assert np.all(c[:b] == 0) and np.all(c[-b:] == 0) and np.all(c[:, :b] == 0) and np.all(c[:, -b:] == 0)
    assert np.all((c == 0) | (c >= p.threshold)), "contrasts below the threshold must be dropped"
    assert (c > 0).sum() > 0, "random texture should leave some contrast above threshold"
    with pytest.raises(ValueError, match="resize"):
        dog_contrast(np.zeros((20, 31)), p)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dog_contrast(img * 255, p)


def test_latency_code_order_one_spike_equal_bins():
    rng = np.random.default_rng(2)
    contrast = rng.uniform(0, 100, (13, 17))
    contrast[rng.random(contrast.shape) < 0.3] = 0.0
    contrast[0, :4] = 50.0  # ties
    n_steps = 15
    steps, pix = latency_code(contrast, n_steps)
    flat = contrast.ravel()
    positive = np.flatnonzero(flat > 0)
    assert sorted(pix.tolist()) == positive.tolist(), "exactly one spike per pixel with positive contrast"
    assert steps.min() == 0 and steps.max() == n_steps - 1
    counts = np.bincount(steps, minlength=n_steps)
    assert counts.max() - counts.min() <= 1, f"bins must hold equal counts, got {counts}"
    assert counts.sum() == positive.size
    # brighter -> earlier (or the same step), for every pair
    v = flat[pix]
    brighter = v[:, None] > v[None, :]
    later = steps[:, None] > steps[None, :]
    assert not np.any(brighter & later), "a brighter pixel spiked later than a dimmer one"
    assert v[steps == 0].min() >= v[steps == n_steps - 1].max()
    assert latency_code(np.zeros((4, 4)), 15)[0].size == 0


def test_encode_image_spikes_come_from_the_contrast_map():
    p = RetinaParams(width=40, height=30)
    rng = np.random.default_rng(3)
    img = rng.random((30, 40))
    steps, pix = encode_image(img, p)
    c = dog_contrast(img, p).ravel()
    assert set(pix.tolist()) == set(np.flatnonzero(c > 0).tolist())
    assert np.all(np.diff(steps) >= 0)


# ----------------------------------------------------------------------------------------
# shared-kernel convolution
# ----------------------------------------------------------------------------------------
def test_conv_connectivity_is_a_sorted_valid_correlation():
    in_shape, n_maps, k = (2, 6, 7), 3, 3
    pre, post, k_idx = conv_connectivity(in_shape, n_maps, k)
    assert np.all(np.diff(pre) >= 0), "synapses must be sorted by presynaptic index"
    assert pre.size == n_maps * 2 * k * k * 4 * 5
    assert len(set(zip(pre.tolist(), post.tolist()))) == pre.size, "no duplicate synapses"
    rng = np.random.default_rng(4)
    x = rng.random(in_shape)
    kernel = rng.random((n_maps, 2, k, k))
    y = np.zeros(n_maps * 4 * 5)
    np.add.at(y, post, kernel.ravel()[k_idx] * x.ravel()[pre])
    ref = np.stack([sum(correlate(x[c], kernel[m, c], mode="valid") for c in range(2)) for m in range(n_maps)])
    np.testing.assert_allclose(y.reshape(n_maps, 4, 5), ref, rtol=1e-12)
    with pytest.raises(ValueError, match="larger"):
        conv_connectivity((1, 2, 2), 1, 3)


def test_shared_kernel_synapses_needs_a_linked_weight():
    import gc

    from brian2 import Clock, NeuronGroup, ms, prefs

    from models.sdnn import shared_kernel_synapses

    warn = prefs.logging.warn_for_unused_objects
    prefs.logging.warn_for_unused_objects = False  # the groups below are never meant to run
    try:
        clock = Clock(1 * ms, name="tclock")
        src = NeuronGroup(16, "v : 1", clock=clock, name="tsrc")
        tgt = NeuronGroup(4, "v : 1", clock=clock, name="ttgt")
        with pytest.raises(ValueError, match="linked"):
            shared_kernel_synapses(src, tgt, (1, 4, 4), 1, 3, name="tsyn", clock=clock,
                                   model=CONV_SYNAPSE.replace("(linked)", ""))
        with pytest.raises(ValueError, match="target has"):
            shared_kernel_synapses(src, src, (1, 4, 4), 1, 3, name="tsyn2", clock=clock)
        del src, tgt, clock
        gc.collect()
    finally:
        prefs.logging.warn_for_unused_objects = warn


def test_conv_layer_numpy_matches_correlation_and_shares_weights():
    n_steps = 6
    in_shape = (2, 9, 11)
    steps, index, kernel = _small_problem(n_steps=n_steps)
    threshold = 4.0
    p = ConvParams(n_maps=3, kernel_size=3, threshold=threshold, n_steps=n_steps)
    with Session("numpy", "test_sdnn_numpy") as s:
        layer = ConvLayer(in_shape, steps, index, p, s, kernel=kernel)
        n_kernel = 3 * 2 * 3 * 3
        assert len(layer.kernel) == n_kernel and layer.n_synapses == n_kernel * 7 * 9
        res = layer.run()
        assert 0 < res.spike_index.size < np.prod(layer.out_shape), "the test needs some, not all, neurons firing"
        _check_result(res, steps, index, in_shape, kernel, threshold, n_steps)

        # a new kernel for the next run changes every synapse that links to it
        kernel2 = -kernel[:, :, ::-1, :] + 0.7
        res2 = layer.run(kernel=kernel2)
        _check_result(res2, steps, index, in_shape, kernel2, threshold, n_steps)
        w, k_idx = layer.synapse_weights()
        np.testing.assert_array_equal(w, kernel2.ravel()[k_idx])

        # writing one coefficient of the kernel group is seen by all its synapses at once
        layer.kernel.w[5] = 123.0
        w, k_idx = layer.synapse_weights()
        assert np.sum(k_idx == 5) == 7 * 9, "each coefficient is used once per output position"
        assert np.all(w[k_idx == 5] == 123.0) and not np.any(w[k_idx != 5] == 123.0)
        # and a write through a synapse goes to the shared coefficient
        layer.syn.w[0] = -9.0
        assert layer.kernel.w[int(k_idx[0])] == -9.0
        w, _ = layer.synapse_weights()
        assert np.all(w[k_idx == k_idx[0]] == -9.0)


@pytest.mark.standalone
def test_conv_layer_cpp_matches_correlation_and_kernel_via_run_args(have_compiler):
    p_ret = RetinaParams(width=24, height=20, border=3, threshold=10.0, n_steps=8)
    rng = np.random.default_rng(5)
    img = rng.random((20, 24))
    steps, index = encode_image(img, p_ret)
    assert index.size > 20
    in_shape = (1, 20, 24)
    kernel = rng.uniform(0, 1, (4, 1, 5, 5))
    p = ConvParams(n_maps=4, kernel_size=5, threshold=3.0, n_steps=p_ret.n_steps)
    with Session("cpp", "test_sdnn_cpp") as s:
        layer = ConvLayer(in_shape, steps, index, p, s, kernel=kernel)
        res = layer.run()
        assert res.spike_index.size > 0
        _check_result(res, steps, index, in_shape, kernel, p.threshold, p.n_steps)
        kernel2 = rng.uniform(-0.5, 1.5, kernel.shape)
        res2 = layer.run(kernel=kernel2)
        _check_result(res2, steps, index, in_shape, kernel2, p.threshold, p.n_steps)
        np.testing.assert_array_equal(layer.kernel_weights(), kernel2)
        w, k_idx = layer.synapse_weights()
        np.testing.assert_array_equal(w, kernel2.ravel()[k_idx])
        with pytest.raises(ValueError, match="kernel of shape"):
            layer.run(kernel=kernel2[:2])


def test_caltech_image_full_size_conv1_numpy():
    """Paper sizes: one Caltech face (250×160), ON-centre DoG, 15 steps, conv1 4 maps 5×5, threshold 10."""
    from data.loaders import load_caltech
    from data.registry import DataError

    try:
        images, _, _ = load_caltech("learning", classes=("Face",), limit=1)
    except DataError as err:
        pytest.skip(f"Caltech data not available: {err}")
    p_ret = RetinaParams()
    steps, index = encode_image(images[0], p_ret)
    counts = np.bincount(steps, minlength=p_ret.n_steps)
    assert counts.size == 15 and counts.max() - counts.min() <= 1 and counts.sum() > 1000
    kernel = np.random.default_rng(6).normal(0.8, 0.05, (4, 1, 5, 5))
    p = ConvParams()
    assert (p.n_maps, p.kernel_size, p.threshold, p.n_steps) == (4, 5, 10.0, 15), "paper defaults of conv1"
    with Session("numpy", "test_sdnn_caltech") as s:
        layer = ConvLayer((1, 160, 250), steps, index, p, s, kernel=kernel)
        assert layer.out_shape == (4, 156, 246)
        res = layer.run()
    _check_result(res, steps, index, (1, 160, 250), kernel, p.threshold, p.n_steps)
    assert 0 < res.spike_index.size < 4 * 156 * 246
