"""SDNN building blocks (Kheradpisheh et al. 2018): DoG retina, latency code, shared-kernel conv layer."""

import numpy as np
import pytest
from scipy.signal import correlate

from b2models.backend import Session
from b2models.models.sdnn import (
    CONV_SYNAPSE,
    ConvLayer,
    ConvParams,
    RetinaParams,
    SDNNParams,
    conv_connectivity,
    dog_channels,
    dog_contrast,
    dog_kernel,
    encode_batch,
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


def test_on_off_channels_split_the_dog_response_and_share_one_latency_code():
    p = RetinaParams(width=31, height=21, channels="on_off")
    dark = np.ones((21, 31))
    dark[10, 15] = 0.0
    maps = dog_channels(dark, p)
    assert maps.shape == (2, 21, 31)
    assert maps[1, 10, 15] == pytest.approx(255.0), "a dark dot on white gives the OFF channel's peak"
    assert maps[0, 9:12, 14:17].max() == 0 and maps[1].argmax() == 10 * 31 + 15
    img = np.random.default_rng(4).random((21, 31))
    on, off = dog_channels(img, p)
    assert np.array_equal(on, dog_contrast(img, p)), "the ON channel is the ON-only input"
    assert not np.any((on > 0) & (off > 0)), "a pixel is ON or OFF, never both"
    assert np.all((off == 0) | (off >= p.threshold))
    steps, idx = encode_image(img, p)
    flat = np.concatenate([on.ravel(), off.ravel()])
    assert sorted(idx.tolist()) == np.flatnonzero(flat > 0).tolist(), "index (c*H + y)*W + x over both maps"
    v = flat[idx]
    assert not np.any((v[:, None] > v[None, :]) & (steps[:, None] > steps[None, :])), "one ranking for both maps"
    enc = encode_batch(img[None], p)
    assert enc.shape == (1, 2 * 21 * 31) and np.array_equal(np.flatnonzero(enc[0] >= 0), np.sort(idx))
    assert SDNNParams(width=31, height=21, input_channels="on_off").in_shape() == (2, 21, 31)
    with pytest.raises(ValueError, match="channels"):
        RetinaParams(channels="off").validate()


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

    from b2models.models.sdnn import shared_kernel_synapses

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
    from b2models.data.loaders import load_caltech
    from b2models.data.registry import DataError

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


# ----------------------------------------------------------------------------------------
# the full network: pooling, lateral inhibition, winner selection, STDP, many images per run
# ----------------------------------------------------------------------------------------
def _ref_conv_input(s, kernel):
    """Σ_c correlate(s[c], kernel[m, c]) with 'same' zero padding: (C, H, W) spikes → (M, H, W)."""
    M, C, k, _ = kernel.shape
    p = k // 2
    sp = np.pad(s, ((0, 0), (p, p), (p, p)))
    return np.stack([sum(correlate(sp[c], kernel[m, c], mode="valid") for c in range(C)) for m in range(M)])


def _ref_pool_input(s, size, stride):
    C, H, W = s.shape
    p = size // 2
    Ho, Wo = 1 + (H + 2 * p - size) // stride, 1 + (W + 2 * p - size) // stride
    sp = np.pad(s, ((0, 0), (p, p), (p, p)))
    out = np.zeros((C, Ho, Wo))
    for Y in range(Ho):
        for X in range(Wo):
            out[:, Y, X] = sp[:, Y * stride:Y * stride + size, X * stride:X * stride + size].sum(axis=(1, 2))
    return out


def reference_network(in_shape, layers, n_steps, spikes, kernels, learn=None, a_plus=0.0, a_minus=0.0,
                      thresholds=None, last_layer=None):
    """Step-by-step numpy version of the network's rules (independent of the Brian2 code)."""
    from b2models.models.sdnn import ConvSpec

    t_fwd = n_steps + len(layers)
    rounds = max(min(s.winners, s.maps) for s in layers if isinstance(s, ConvSpec))
    n_img = t_fwd + rounds + 1
    kernels = [np.array(k, dtype=float) for k in kernels]
    conv_ids = [i for i, s in enumerate(layers) if isinstance(s, ConvSpec)]
    th = {}
    for c, li in enumerate(conv_ids):
        th[li] = layers[li].threshold if thresholds is None or thresholds[c] is None else thresholds[c]
    out = {"ts": [], "winners": [], "potentials": []}
    for img in spikes:
        shapes, state = [tuple(in_shape)], []
        for spec in layers:
            C, H, W = shapes[-1]
            if isinstance(spec, ConvSpec):
                shp = (spec.maps, H, W)
            else:
                p = spec.size // 2
                shp = (C, 1 + (H + 2 * p - spec.size) // spec.stride, 1 + (W + 2 * p - spec.size) // spec.stride)
            shapes.append(shp)
            state.append({"v": np.zeros(shp), "fired": np.zeros(shp, bool), "blocked": np.zeros(shp, bool),
                          "ts": np.full(shp, np.inf), "v_spike": np.zeros(shp), "inp": np.zeros(shp),
                          "n_out": np.zeros(shp)})
        in_ts = np.where(img >= 0, img, np.inf).reshape(in_shape)
        history = []  # spikes of every layer (input first) at every step
        for s in range(n_img):
            spk = [(in_ts == s).astype(float)]
            for li, spec in enumerate(layers):
                st = state[li]
                if isinstance(spec, ConvSpec):
                    cand = (st["v"] >= th[li]) & ~st["fired"] & ~st["blocked"] & (s < t_fwd)
                    if spec.inhibition:
                        score = np.where(cand, st["v"], -np.inf)
                        best = np.argmax(score, axis=0)  # ties: lower map
                        fire = cand & (np.arange(spec.maps)[:, None, None] == best[None])
                    else:
                        fire = cand
                else:
                    on = last_layer is None or li <= last_layer
                    if spec.multi_spike:  # a spike after every step with input
                        fire = (st["inp"] > 0.5) & ~st["blocked"] & on
                    else:
                        fire = (st["v"] > 0.5) & ~st["fired"] & ~st["blocked"] & on
                spk.append(fire.astype(float))
            history.append(spk)
            for li, spec in enumerate(layers):
                st, fire = state[li], spk[li + 1] > 0
                st["v_spike"][fire] = st["v"][fire]
                if isinstance(spec, ConvSpec):
                    st["v"] += _ref_conv_input(spk[li], kernels[conv_ids.index(li)])
                else:
                    st["inp"] = _ref_pool_input(spk[li], spec.size, spec.stride)
                    st["v"] += st["inp"]
                st["ts"][fire & ~st["fired"]] = s
                st["n_out"] += fire
                st["fired"] |= fire
                if spec.inhibition and fire.any():
                    taken = fire.any(axis=0)
                    st["blocked"] |= taken[None] & ~fire
        winners = np.zeros(len(conv_ids), int)
        if learn is not None:
            li = conv_ids[learn]
            spec, st = layers[li], state[li]
            M, H, W = shapes[li + 1]
            enabled = np.ones((M, H, W), bool)
            mm, yy, xx = np.meshgrid(np.arange(M), np.arange(H), np.arange(W), indexing="ij")
            chosen = []
            for _ in range(rounds):
                offers = st["fired"] & enabled
                if not offers.any() or len(chosen) >= spec.winners:
                    break
                idx = np.flatnonzero(offers.ravel())
                key = np.lexsort((idx, -st["v_spike"].ravel()[idx], st["ts"].ravel()[idx]))
                b = idx[key[0]]
                m, y, x = np.unravel_index(b, (M, H, W))
                chosen.append((m, y, x))
                enabled &= ~((mm == m) | ((np.abs(yy - y) <= spec.offset) & (np.abs(xx - x) <= spec.offset)))
            winners[learn] = len(chosen)
            pre_ts = in_ts if li == 0 else state[li - 1]["ts"]
            k = spec.size
            p = k // 2
            kern = kernels[learn]
            for m, y, x in chosen:
                t_post = st["ts"][m, y, x]
                # input spikes before the output spike, per input neuron (the spike-count rule's n)
                n_before = sum(history[t][li] for t in range(int(t_post)))
                for c in range(kern.shape[1]):
                    for dy in range(k):
                        for dx in range(k):
                            yi, xi = y + dy - p, x + dx - p
                            if 0 <= yi < pre_ts.shape[1] and 0 <= xi < pre_ts.shape[2]:
                                w = kern[m, c, dy, dx]
                                if spec.stdp_count:
                                    a = n_before[c, yi, xi] * (a_plus + a_minus) - a_minus
                                else:
                                    a = a_plus if pre_ts[c, yi, xi] < t_post else -a_minus
                                kern[m, c, dy, dx] = np.clip(w + a * w * (1 - w), 0, 1)
        out["ts"].append([st["ts"] for st in state])
        out.setdefault("n_out", []).append([st["n_out"] for st in state])
        out["winners"].append(winners)
        out["potentials"].append(state[conv_ids[-1]]["v"].copy())
    out["kernels"] = kernels
    return out


def _small_stack():
    from b2models.models.sdnn import ConvSpec, PoolSpec

    return [ConvSpec(3, 3, 1.6, winners=2, offset=1), PoolSpec(3, 2, inhibition=True),
            ConvSpec(4, 3, 1.2, winners=2, offset=1), PoolSpec(2, 2), ConvSpec(3, 3, 1.0, winners=1, offset=0)]


def _small_input(seed, n_images, in_shape=(1, 10, 12), n_steps=5, p_spike=0.5):
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(in_shape))
    return np.where(rng.random((n_images, n_in)) < p_spike, rng.integers(0, n_steps, (n_images, n_in)), -1)


def _compare(res, ref, n_layers):
    for b in range(len(ref["ts"])):
        for li in range(n_layers):
            got = res.record[f"ts{li}"][b]
            want = ref["ts"][b][li].ravel()
            np.testing.assert_array_equal(np.where(got > 1e8, np.inf, got), want,
                                          err_msg=f"image {b}, layer {li}: spike steps differ from the reference")
    np.testing.assert_array_equal(res.n_winners, np.array(ref["winners"]), err_msg="STDP winners per image")
    np.testing.assert_allclose(res.potentials, np.array(ref["potentials"]), rtol=1e-12, atol=1e-12,
                               err_msg="readout potentials")
    for c, (a, b) in enumerate(zip(res.kernels, ref["kernels"])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"kernel {c} after learning")


def test_pooling_and_lateral_inhibition_hand_made():
    """A row of 5 pixels, two 3×3 maps (only the middle kernel row is non-zero), pooling 3 stride 2."""
    from b2models.models.sdnn import ConvSpec, PoolSpec, SpikingConvNet

    kernel = np.zeros((2, 1, 3, 3))
    kernel[0, 0, 1] = [0.0, 1.0, 0.0]  # map 0: the pixel itself
    kernel[1, 0, 1] = [0.9, 0.2, 0.9]  # map 1: mostly the neighbours
    spikes = np.array([[-1, 1, 3, 3, -1]])
    never = np.inf
    layers = [ConvSpec(2, 3, 0.9, winners=0, inhibition=True), PoolSpec(3, 2)]
    with Session("numpy", "test_sdnn_handmade") as s:
        net = SpikingConvNet((1, 1, 5), layers, 4, 1, s, record=True)
        res = net.run_chunk(spikes, [kernel])
    ts = np.where(res.record["ts0"][0] > 1e8, never, res.record["ts0"][0]).reshape(2, 5)
    # map 1 reaches threshold first at x = 0, 2 and 4 (one neighbour spike at step 1 or 3); at x = 1 only
    # map 0 crosses in step 2 (the centre pixel); at x = 3 both cross in step 4 and the higher potential
    # (map 1: 0.9 + 0.2 against 1.0) wins; the losers never fire later
    np.testing.assert_array_equal(ts[0], [never, 2, never, never, never])
    np.testing.assert_array_equal(ts[1], [2, never, 2, 4, 4])
    pool = np.where(res.record["ts1"][0] > 1e8, never, res.record["ts1"][0]).reshape(2, 3)
    # first-spike pooling: one step after the first input spike of the window x ∈ [2X-1, 2X+1]
    np.testing.assert_array_equal(pool[0], [3, 3, never])
    np.testing.assert_array_equal(pool[1], [3, 3, 5])
    # the reference agrees, and without lateral inhibition every map fires when it crosses
    ref = reference_network((1, 1, 5), layers, 4, spikes, [kernel])
    np.testing.assert_array_equal(ref["ts"][0][0][:, 0], ts)
    layers[0].inhibition = False
    ref = reference_network((1, 1, 5), layers, 4, spikes, [kernel])
    np.testing.assert_array_equal(ref["ts"][0][0][:, 0], [[never, 2, 4, 4, never], [2, 4, 2, 4, 4]])


def test_network_matches_reference_and_learns_each_layer_numpy():
    from b2models.models.sdnn import SpikingConvNet

    layers = _small_stack()
    spikes = _small_input(10, 3)
    with Session("numpy", "test_sdnn_ref") as s:
        net = SpikingConvNet((1, 10, 12), layers, 5, 3, s, record=True)
        assert net.n_img == 5 + 5 + 2 + 1
        kernels = net.initial_kernels(0.8, 0.1, 3)
        for learn in (0, 1, 2):
            res = net.run_chunk(spikes, kernels, learn=learn, a_plus=0.05, a_minus=0.0375)
            ref = reference_network((1, 10, 12), layers, 5, spikes, kernels, learn=learn, a_plus=0.05,
                                    a_minus=0.0375)
            assert res.n_winners[:, learn].sum() > 0, f"layer {learn}: no STDP winner, the test is empty"
            assert np.abs(res.kernels[learn] - kernels[learn]).max() > 0
            _compare(res, ref, len(layers))
            others = [c for c in range(3) if c != learn]
            for c in others:
                np.testing.assert_array_equal(res.kernels[c], kernels[c], err_msg="a non-learning layer changed")
        # readout: no threshold in the last layer, a later layer switched off
        res = net.run_chunk(spikes[:2], kernels, thresholds=[None, None, 1e30], last_layer=2)
        ref = reference_network((1, 10, 12), layers, 5, spikes[:2], kernels, thresholds=[None, None, 1e30],
                                last_layer=2)
        _compare(res, ref, len(layers))
        assert res.potentials.shape == (2, 3, 3, 4)
        with pytest.raises(ValueError, match="kernel 1 of shape"):
            net.run_chunk(spikes, [kernels[0], kernels[0], kernels[2]])
        with pytest.raises(ValueError, match="spikes of shape"):
            net.run_chunk(spikes[:, :5], kernels)


def test_multi_spike_pool_and_spike_count_stdp_match_reference_numpy():
    """The authors'-code options: pool2 fires after every step with input (not only the first), and conv3's STDP
    is scaled by the number of earlier input spikes; Brian2 against the NumPy reference, and both options
    change what the network does on this input."""
    import dataclasses

    from b2models.models.sdnn import SpikingConvNet

    base = _small_stack()
    layers = list(base)
    layers[3] = dataclasses.replace(base[3], multi_spike=True)
    layers[4] = dataclasses.replace(base[4], stdp_count=True, threshold=2.5)
    spikes = _small_input(12, 3, p_spike=0.7)
    with Session("numpy", "test_sdnn_multi") as s:
        net = SpikingConvNet((1, 10, 12), layers, 5, 3, s, record=True)
        kernels = net.initial_kernels(0.8, 0.1, 7)
        res = net.run_chunk(spikes, kernels, learn=2, a_plus=0.05, a_minus=0.0375)
    ref = reference_network((1, 10, 12), layers, 5, spikes, kernels, learn=2, a_plus=0.05, a_minus=0.0375)
    _compare(res, ref, len(layers))
    n_out = res.record["n_out3"]
    np.testing.assert_array_equal(n_out, np.array([r[3].ravel() for r in ref["n_out"]]))
    assert n_out.max() >= 2, "no pool2 unit fired twice: the test does not exercise multi-spike pooling"
    assert res.n_winners[:, 2].sum() > 0
    # first-spike pooling gives other conv3 potentials on this input
    single = list(layers)
    single[3] = base[3]
    ref_single = reference_network((1, 10, 12), single, 5, spikes, kernels)
    assert np.abs(np.array(ref_single["potentials"]) - res.potentials).max() > 1e-6


def test_spike_count_stdp_magnitude_hand_made():
    """Two pixels spike at steps 0 and 2 → conv1 (1×1, weight 1) at steps 1 and 3 → one multi-spike pool unit
    over both fires at steps 2 and 4 → conv3 (1×1, weight w) reaches 1.5·w only with the second pool spike and
    fires at step 5; with two input spikes before it the count rule gives Δw = (2a⁺ + a⁻)·w(1−w), the plain rule
    a⁺·w(1−w); with first-spike pooling conv3 never reaches its threshold."""
    from b2models.models.sdnn import ConvSpec, PoolSpec, SpikingConvNet

    w, a_plus, a_minus = 0.6, 0.1, 0.05
    kernels = [np.ones((1, 1, 1, 1)), np.full((1, 1, 1, 1), w)]
    spikes = np.array([[0, 2]])
    got = {}
    for multi, count in ((True, True), (True, False), (False, False)):
        layers = [ConvSpec(1, 1, 0.5, winners=0), PoolSpec(3, 3, multi_spike=multi),
                  ConvSpec(1, 1, 1.5 * w, winners=1, stdp_count=count)]
        with Session("numpy", f"test_sdnn_count_{int(multi)}{int(count)}") as s:
            net = SpikingConvNet((1, 1, 2), layers, 3, 1, s, record=True)
            got[multi, count] = net.run_chunk(spikes, kernels, learn=1, a_plus=a_plus, a_minus=a_minus)
    r = got[True, True]
    assert r.record["n_out1"][0, 0] == 2 and r.record["ts1"][0, 0] == 2
    assert r.record["ts2"][0, 0] == 5
    assert r.kernels[1].item() == pytest.approx(w + (2 * a_plus + a_minus) * w * (1 - w), abs=1e-15)
    assert got[True, False].kernels[1].item() == pytest.approx(w + a_plus * w * (1 - w), abs=1e-15)
    assert got[False, False].record["ts2"][0, 0] > 1e8 and got[False, False].kernels[1].item() == w
    with pytest.raises(ValueError, match="multi_spike"):
        PoolSpec(3, 3, multi_spike=1).validate()
    with pytest.raises(ValueError, match="stdp_count"):
        ConvSpec(1, 1, 1.0, stdp_count="yes").validate()


def test_stdp_two_neurons_sign_and_magnitude():
    """One output neuron, two inputs (two channels of one pixel): the first input makes it fire (LTP), the
    second arrives later (LTD); a chunk of two images shows that the second image sees the learned weights."""
    from b2models.models.sdnn import ConvSpec, SpikingConvNet

    layers = [ConvSpec(1, 1, 0.5, winners=1)]
    w0 = np.array([0.6, 0.7]).reshape(1, 2, 1, 1)
    a_plus, a_minus = 0.1, 0.05
    spikes = np.array([[0, 3], [0, 3]])
    with Session("numpy", "test_sdnn_stdp") as s:
        net = SpikingConvNet((2, 1, 1), layers, 4, 2, s, record=True)
        res = net.run_chunk(spikes[:1], [w0], learn=0, a_plus=a_plus, a_minus=a_minus)
        assert res.record["ts0"][0, 0] == 1, "the neuron fires one step after its first input"
        w1 = res.kernels[0].ravel()
        assert w1[0] == pytest.approx(0.6 + a_plus * 0.6 * 0.4, abs=1e-15), "pre before post: +a⁺ w(1-w)"
        assert w1[1] == pytest.approx(0.7 - a_minus * 0.7 * 0.3, abs=1e-15), "pre after post: -a⁻ w(1-w)"
        res2 = net.run_chunk(spikes, [w0], learn=0, a_plus=a_plus, a_minus=a_minus)
        w2 = res2.kernels[0].ravel()
        assert w2[0] == pytest.approx(w1[0] + a_plus * w1[0] * (1 - w1[0]), abs=1e-15)
        assert w2[1] == pytest.approx(w1[1] - a_minus * w1[1] * (1 - w1[1]), abs=1e-15)
        # no learning without a post spike (threshold out of reach), and none without learn=
        res3 = net.run_chunk(spikes, [w0], learn=0, a_plus=a_plus, a_minus=a_minus, thresholds=[5.0])
        np.testing.assert_array_equal(res3.kernels[0], w0)
        np.testing.assert_array_equal(net.run_chunk(spikes, [w0]).kernels[0], w0)
        # per-image rates: the second image of the chunk learns with a⁺ = a⁻ = 0
        res5 = net.run_chunk(spikes, [w0], learn=0, a_plus=[a_plus, 0.0], a_minus=[a_minus, 0.0])
        np.testing.assert_allclose(res5.kernels[0].ravel(), w1, rtol=0, atol=1e-15)
        with pytest.raises(ValueError, match="one per image"):
            net.run_chunk(spikes, [w0], learn=0, a_plus=[a_plus] * 3)
        # weights stay in [0, 1] even with a huge rate
        res4 = net.run_chunk(spikes, [w0], learn=0, a_plus=50.0, a_minus=50.0)
        assert np.all((res4.kernels[0] >= 0) & (res4.kernels[0] <= 1))


@pytest.mark.standalone
def test_network_numpy_and_cpp_agree(have_compiler):
    from b2models.models.sdnn import SpikingConvNet

    layers = _small_stack()
    spikes = _small_input(11, 4)
    results = {}
    for backend in ("numpy", "cpp"):
        with Session(backend, f"test_sdnn_agree_{backend}") as s:
            net = SpikingConvNet((1, 10, 12), layers, 5, 4, s, record=True)
            kernels = net.initial_kernels(0.8, 0.1, 5)
            results[backend] = [net.run_chunk(spikes, kernels, learn=c, a_plus=0.05, a_minus=0.0375)
                                for c in (0, 1, 2)]
    for a, b in zip(results["numpy"], results["cpp"]):
        assert a.n_winners.sum() > 0
        np.testing.assert_array_equal(a.n_winners, b.n_winners)
        for li in range(len(layers)):
            np.testing.assert_array_equal(a.record[f"ts{li}"], b.record[f"ts{li}"])
        np.testing.assert_allclose(a.potentials, b.potentials, rtol=1e-12, atol=1e-12)
        for ka, kb in zip(a.kernels, b.kernels):
            np.testing.assert_allclose(ka, kb, rtol=1e-12, atol=1e-12)


def test_padded_connectivity_and_pooling_windows():
    from b2models.models.sdnn import PoolSpec, pool_connectivity, pool_out_shape

    pre, post, k_idx = conv_connectivity((2, 5, 6), 3, 3, pad=1)
    assert np.all(np.diff(pre) >= 0)
    rng = np.random.default_rng(8)
    x = rng.random((2, 5, 6))
    kernel = rng.random((3, 2, 3, 3))
    y = np.zeros(3 * 5 * 6)
    np.add.at(y, post, kernel.ravel()[k_idx] * x.ravel()[pre])
    np.testing.assert_allclose(y.reshape(3, 5, 6), _ref_conv_input(x, kernel), rtol=1e-12)
    spec = PoolSpec(7, 6)
    assert pool_out_shape((4, 160, 250), spec) == (4, 27, 42), "pool1 of the paper's Caltech network"
    assert pool_out_shape((20, 27, 42), PoolSpec(5, 5)) == (20, 6, 9)
    pre, post = pool_connectivity((2, 9, 11), PoolSpec(3, 2))
    s = rng.random((2, 9, 11))
    out = np.zeros(np.prod(pool_out_shape((2, 9, 11), PoolSpec(3, 2))))
    np.add.at(out, post, s.ravel()[pre])
    np.testing.assert_allclose(out.reshape(2, 5, 6), _ref_pool_input(s, 3, 2))


def test_sdnn_params_schedule_and_validation():
    from b2models.models.sdnn import SDNNParams, readout_features

    p = SDNNParams()
    assert [s.maps for s in p.layers()[::2]] == [4, 20, 20]
    assert p.a_plus(0, 0) == 0.004 and p.a_plus(0, 499) == 0.004 and p.a_plus(0, 500) == 0.008
    assert p.a_plus(1, 10**6) == 0.15, "a⁺ stops at a_plus_max"
    p.validate()
    with pytest.raises(ValueError, match="w_mean"):
        SDNNParams(w_mean=1.5).validate()
    with pytest.raises(ValueError, match="odd"):
        SDNNParams(conv2_size=16).validate()
    pot = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(readout_features(pot), pot.reshape(2, 3, 4).max(axis=2))
