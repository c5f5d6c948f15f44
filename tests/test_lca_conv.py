"""Convolutional LCA layer (models/lca_conv.py): unrolled dictionary, lasso solution, Gram form, learning, backends."""

import numpy as np
import pytest

from b2models.backend import Session
from b2models.models.lca import lca_reference
from b2models.models.lca_conv import (
    ConvLCALayer,
    ConvLCAParams,
    conv_correlate,
    conv_lca_reference,
    conv_transpose,
    dictionary_connectivity,
    gram_connectivity,
    gram_kernel,
    normalise_kernels,
    pad_input,
    random_kernels,
    unrolled_dictionary,
)

# a tiny problem: 2 channels 8×8, 3 kernels 3×3, stride 2, pad 1 → codes 3×4×4 (48) for 200 padded inputs
TINY = dict(in_shape=(2, 8, 8), n_kernels=3, kernel_size=3, stride=2, pad=1)


def _problem(seed=0, n=2, scale=1.0, **kw):
    p = ConvLCAParams(**{**TINY, **kw})
    rng = np.random.default_rng(seed)
    kernel = random_kernels(p, rng)
    x = scale * rng.standard_normal((n,) + tuple(p.in_shape)) / np.sqrt(np.prod(p.kernel_shape[1:]))
    return p, kernel, x


def _run(backend, p, kernel, x, name, learn=False, record_u=False):
    with Session(backend, name, key=(repr(p), len(x), learn)) as s:
        layer = ConvLCALayer(p, len(x), s, kernel=kernel, plastic=learn, record_u=record_u, name="clca")
        out = layer.run(x, learn=learn, seed=1)
        syn = dict(layer.n_synapses)
    return out, layer.kernel, syn


def test_unrolled_dictionary_and_gram_kernel():
    """The conv operators equal the explicit matrix D; the Gram synapses hold exactly DᵀD − I."""
    p, kernel, x = _problem()
    D = unrolled_dictionary(kernel, p)
    assert D.shape == (2 * 10 * 10, 3 * 4 * 4)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, err_msg="placed kernels must keep unit norm")
    xp = pad_input(x, p)
    np.testing.assert_allclose(conv_correlate(xp, kernel, p.stride).reshape(len(x), -1), xp.reshape(len(x), -1) @ D,
                               atol=1e-12)
    a = np.random.default_rng(1).random((len(x),) + p.out_shape)
    np.testing.assert_allclose(conv_transpose(a, kernel, p.stride, p.padded_shape[1:]).reshape(len(x), -1),
                               a.reshape(len(x), -1) @ D.T, atol=1e-12)
    pre, post, k_idx = gram_connectivity(p)
    G = np.zeros((D.shape[1],) * 2)
    G[post, pre] = gram_kernel(kernel, p.stride).ravel()[k_idx]
    np.testing.assert_allclose(G, D.T @ D - np.eye(D.shape[1]), atol=1e-12,
                               err_msg="Gram synapses differ from the unrolled ΦᵀΦ − I")
    assert np.all(np.diff(pre) >= 0), "Gram synapses must be sorted by presynaptic index"
    code, _, _ = dictionary_connectivity(p)
    assert np.all(np.diff(code) >= 0) and code.size == D.shape[1] * 2 * 9


def test_conv_lca_matches_dense_lca_and_lasso():
    """Brian2 conv LCA == dense LCA with the unrolled dictionary (same Euler steps), and its fixed point is the
    non-negative lasso solution of scikit-learn (α = λ / N)."""
    from sklearn.linear_model import Lasso

    p, kernel, x = _problem(seed=2, n=2, scale=2.0, lam=0.05, n_iter=300)
    out, _, syn = _run("numpy", p, kernel, x, "clca_lasso")
    D = unrolled_dictionary(kernel, p)
    assert syn["dictionary"] * p.in_shape[0] == np.count_nonzero(D), "one synapse per (code unit, kernel position)"
    xp = pad_input(x, p).reshape(len(x), -1)
    a = out["a"].reshape(len(x), -1)
    a_dense, _ = lca_reference(xp, D, p.lam, p.n_iter, 0.1)
    np.testing.assert_allclose(a, a_dense, atol=1e-10, err_msg="conv LCA differs from the dense LCA on D")
    np.testing.assert_allclose(out["a"], conv_lca_reference(x, kernel, p), atol=1e-10)
    for k in range(len(x)):
        w = Lasso(alpha=p.lam / D.shape[0], fit_intercept=False, positive=True, tol=1e-12,
                  max_iter=100000).fit(D, xp[k]).coef_
        assert 0 < np.count_nonzero(w) < w.size, "degenerate test problem (lasso solution all zero or all active)"
        np.testing.assert_allclose(a[k], w, atol=2e-4, err_msg="conv LCA fixed point differs from the lasso")


def test_gram_form_and_layouts_match_residual_form():
    """Lateral inhibition through the conv Gram kernel, and Φᵀ E summed over code-major synapses, give the
    same codes as the residual population with kernel-major Φᵀ E (the default)."""
    p, kernel, x = _problem(seed=4, n=2, scale=2.0, lam=0.05, n_iter=60)
    res, _, syn = _run("numpy", p, kernel, x, "clca_res")
    assert syn["drive"] == syn["dictionary"]
    pc = ConvLCAParams(**{**TINY, "lam": 0.05, "n_iter": 60, "drive_layout": "code_major"})
    code_major, _, syn = _run("numpy", pc, kernel, x, "clca_res_cm")
    assert "drive" not in syn
    np.testing.assert_allclose(code_major["a"], res["a"], atol=1e-12, err_msg="the two layouts of Φᵀ E disagree")
    pg = ConvLCAParams(**{**TINY, "lam": 0.05, "n_iter": 60, "form": "gram"})
    gram, _, syn = _run("numpy", pg, kernel, x, "clca_gram")
    assert syn["gram"] == len(gram_connectivity(pg)[0])
    assert np.count_nonzero(res["a"]) > 0
    np.testing.assert_allclose(gram["a"], res["a"], atol=1e-10, err_msg="Gram form and residual form disagree")


def _hebbian_update(p, kernel, x, a):
    """ΔΦ_m = η Σ_positions a_{m,y,x} E[patch], then unit norm, with E = x − Φ*a (numpy, from the code a)."""
    xp = pad_input(x, p).reshape(len(x), -1)
    a = a.reshape(len(x), -1)
    code, inp, k_idx = dictionary_connectivity(p)
    for k in range(len(x)):  # presentations one after the other: the kernel changes in between
        E = xp[k] - a[k] @ unrolled_dictionary(kernel, p).T
        dk = np.zeros(kernel.size)
        np.add.at(dk, k_idx, p.eta * a[k][code] * E[inp])
        kernel = normalise_kernels(kernel + dk.reshape(kernel.shape))
    return kernel


def test_learning_rule_and_backends_agree():
    """One presentation with learning: the new kernels equal the Hebbian rule + per-kernel normalisation
    computed from the recorded code; numpy and cpp_standalone give the same codes and kernels."""
    p, kernel, x = _problem(seed=5, n=1, scale=2.0, lam=0.05, n_iter=40, eta=0.5)
    out_np, k_np, _ = _run("numpy", p, kernel, x, "clca_learn_np", learn=True)
    assert np.count_nonzero(out_np["a"]) > 0
    expected = _hebbian_update(p, kernel, x, out_np["a"])
    assert np.abs(expected - kernel).max() > 1e-3, "degenerate test: the rule changes nothing"
    np.testing.assert_allclose(k_np, expected, atol=1e-12, err_msg="kernel update differs from ΔΦ = η a Eᵀ")
    np.testing.assert_allclose(np.linalg.norm(k_np.reshape(p.n_kernels, -1), axis=1), 1.0, atol=1e-12)
    out_cpp, k_cpp, _ = _run("cpp", p, kernel, x, "clca_learn_cpp", learn=True)  # kernel engine ('auto' on cpp)
    np.testing.assert_allclose(out_cpp["a"], out_np["a"], atol=1e-12, err_msg="numpy and cpp codes differ")
    np.testing.assert_allclose(k_cpp, k_np, atol=1e-12, err_msg="numpy and cpp kernels differ")


def test_kernel_engine_matches_synapses_engine():
    """The kernel engine (numpy implementation of the compiled kernels) gives the codes and, with learning, the
    kernels of the synapses engine (event-driven Φ*a, summed Φᵀ E)."""
    p, kernel, x = _problem(seed=6, n=2, scale=2.0, lam=0.05, n_iter=40, eta=0.5)
    res = {}
    for engine in ("kernel", "synapses"):
        pe = ConvLCAParams(**{**p.__dict__, "engine": engine})
        with Session("numpy", f"clca_engine_{engine}", key=()) as s:
            layer = ConvLCALayer(pe, len(x), s, kernel=kernel, plastic=True, name="clca")
            assert layer.engine == engine
            frozen = layer.run(x, seed=1)["a"]
            learned = layer.run(x, learn=True, seed=1)["a"]
            res[engine] = (frozen, learned, layer.kernel.copy())
    assert 0 < np.count_nonzero(res["synapses"][0]) < res["synapses"][0].size, "degenerate test"
    np.testing.assert_allclose(res["kernel"][0], conv_lca_reference(x, kernel, p), atol=1e-12)
    for k, what in enumerate(("frozen codes", "codes of the learning run", "learned kernels")):
        np.testing.assert_allclose(res["kernel"][k], res["synapses"][k], atol=1e-12, err_msg=what)
    assert np.abs(res["kernel"][2] - kernel).max() > 1e-3, "degenerate test: learning changed nothing"


@pytest.mark.standalone
def test_cpp_kernel_engine_other_geometry(have_compiler):
    """The compiled kernels at stride 1 with a code row longer than two register blocks (20 columns) and a kernel
    count that is not a multiple of 4 equal the numpy reference."""
    p = ConvLCAParams(in_shape=(2, 10, 20), n_kernels=5, kernel_size=3, stride=1, pad=1, lam=0.05, n_iter=50,
                      engine="kernel")
    rng = np.random.default_rng(7)
    kernel = random_kernels(p, rng)
    x = 2 * rng.standard_normal((2,) + p.in_shape) / np.sqrt(18)
    with Session("cpp", "clca_kernel_geom", key=(repr(p),)) as s:
        layer = ConvLCALayer(p, 2, s, kernel=kernel)
        assert layer.engine == "kernel" and layer.n_synapses["dictionary"] == 0
        out = layer.run(x, seed=1)
    ref = conv_lca_reference(x, kernel, p)
    assert 0 < np.count_nonzero(ref) < ref.size, "degenerate test"
    np.testing.assert_allclose(out["a"], ref, atol=1e-12)


@pytest.mark.parametrize("kw, msg", [
    (dict(engine="fast"), "engine"),
    (dict(stride=0), "stride"),
    (dict(kernel_size=12), "larger than the padded input"),
    (dict(stride=4), "uncoded"),
    (dict(lam=-1.0), "lam"),
    (dict(form="fft"), "form"),
    (dict(drive_layout="random"), "drive_layout"),
    (dict(in_shape=(8, 8)), "in_shape"),
    (dict(n_iter=1), "n_iter"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ConvLCAParams(**{**TINY, **kw}).validate()


def test_bad_inputs():
    p, kernel, x = _problem()
    with pytest.raises(ValueError, match="expected"):
        pad_input(np.zeros((1, 2, 7, 8)), p)
    with pytest.raises(ValueError, match="kernel of shape"):
        unrolled_dictionary(kernel[:2], p)
    with Session("numpy", "clca_bad", key=()) as s:
        with pytest.raises(ValueError, match="form='residual'"):
            ConvLCALayer(ConvLCAParams(**{**TINY, "form": "gram"}), 1, s, plastic=True)
        layer = ConvLCALayer(p, 2, s, kernel=kernel)
        with pytest.raises(ValueError, match="plastic=True"):
            layer.run(x, learn=True)
        with pytest.raises(ValueError, match="n_pres"):
            layer.run(x[:1])
        with pytest.raises(ValueError, match="lam"):
            layer.run(x, lam=-0.1)


# ----------------------------------------------------------------------------------------
# a conv layer inside the hierarchy (models/lca.py)
# ----------------------------------------------------------------------------------------
def _conv_hierarchy(lam1=0.05, lam2=0.02, m2=6):
    from b2models.models.lca import LayerSpec

    return [LayerSpec("V1", 3, ("img",), lam1, kind="conv", kernel_size=3, stride=2, pad=1, in_shape=(2, 8, 8)),
            LayerSpec("V2", m2, ("V1",), lam2)]


def _hierarchy_problem(seed, n):
    from b2models.models.lca import random_dictionary

    layers = _conv_hierarchy()
    rng = np.random.default_rng(seed)
    cp = layers[0].conv_params()
    kernel = random_kernels(cp, rng)
    phi2 = random_dictionary(layers[0].size, layers[1].n_atoms, rng)
    x = 2 * rng.standard_normal((n, 2 * 8 * 8)) / np.sqrt(2 * 9)
    return layers, kernel, phi2, x


def test_conv_layer_in_hierarchy_matches_numpy_reference():
    """Conv V1 (shared kernels) → dense V2 coding u_V1, feedback off and on: the Brian2 hierarchy equals the
    numpy reference step by step; without feedback V1 is the single conv layer (conv_lca_reference), with
    feedback it is not; the layer above codes V1's dense u."""
    from b2models.models.lca import LCAHierarchy, LCAParams, hierarchy_reference

    layers, kernel, phi2, x = _hierarchy_problem(seed=8, n=2)
    n_iter = 60
    with Session("numpy", "lca_conv_hier", key=(n_iter,)) as s:
        net = LCAHierarchy(LCAParams(n_iter=n_iter, eta=0.0), layers, {"img": x.shape[1]}, len(x), s)
        net.phi.update(V1=kernel.copy(), V2=phi2.copy())
        on = net.run({"img": x}, feedback=True)
        off = net.run({"img": x}, feedback=False)
    assert on["V1"]["a"].shape == (2, 3 * 4 * 4)
    for g, out in ((1.0, on), (0.0, off)):
        ref = hierarchy_reference(layers, {"V1": kernel, "V2": phi2}, {"img": x}, n_iter, 0.1, fb_gain=g)
        for L in ("V1", "V2"):
            np.testing.assert_allclose(out[L]["u"], ref[L]["u"], atol=1e-10, err_msg=f"{L}, feedback gain {g}")
        assert np.count_nonzero(out["V1"]["a"]) > 0 and np.count_nonzero(out["V2"]["a"]) > 0, "degenerate test"
    cp = layers[0].conv_params(LCAParams(n_iter=n_iter))
    single = conv_lca_reference(x.reshape(2, 2, 8, 8), kernel, cp)
    np.testing.assert_allclose(off["V1"]["a"], single.reshape(2, -1), atol=1e-10,
                               err_msg="without feedback the conv layer must be the single conv LCA")
    assert np.abs(on["V1"]["u"] - off["V1"]["u"]).max() > 1e-3, "feedback changed nothing in the conv layer"


@pytest.mark.standalone
def test_conv_hierarchy_learning_numpy_and_cpp_agree(have_compiler):
    """Learning in a hierarchy with a conv first layer: per-kernel Hebbian update + normalisation; numpy and
    cpp_standalone give the same codes and dictionaries, and a second (frozen) run uses the learned ones."""
    from b2models.models.lca import LCAHierarchy, LCAParams

    layers, kernel, phi2, x = _hierarchy_problem(seed=9, n=2)
    res = {}
    for backend in ("numpy", "cpp"):
        with Session(backend, "lca_conv_hier_equiv", key=()) as s:
            net = LCAHierarchy(LCAParams(n_iter=40, eta=0.3, feedback=True), layers, {"img": x.shape[1]}, len(x), s)
            net.phi.update(V1=kernel.copy(), V2=phi2.copy())
            first = net.run({"img": x}, learn=True, seed=1)
            second = net.run({"img": x}, learn=False, seed=1)
        res[backend] = (first, second, {k: v.copy() for k, v in net.phi.items()})
    (f0, s0, p0), (f1, s1, p1) = res["numpy"], res["cpp"]
    assert np.abs(p0["V1"] - kernel).max() > 1e-3, "degenerate test: learning changed no kernel"
    np.testing.assert_allclose(np.linalg.norm(p0["V1"].reshape(3, -1), axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(p0["V2"], axis=0), 1.0, atol=1e-12)
    for L in ("V1", "V2"):
        np.testing.assert_allclose(f1[L]["a"], f0[L]["a"], atol=1e-10, err_msg=f"{L} codes, learning run")
        np.testing.assert_allclose(s1[L]["a"], s0[L]["a"], atol=1e-10, err_msg=f"{L} codes, frozen run")
        np.testing.assert_allclose(p1[L], p0[L], atol=1e-10, err_msg=f"{L} dictionary")
    assert np.abs(s0["V1"]["a"] - f0["V1"]["a"]).max() > 0, "the second run did not use the learned kernels"


def test_conv_hierarchy_learning_rule_first_presentation():
    """One presentation (feedback off): the kernels change by ΔΦ_m = η Σ a E[patch] from the code and residual
    of the last step, then unit norm (the same rule as the single conv layer)."""
    from b2models.models.lca import LCAHierarchy, LCAParams

    layers, kernel, phi2, x = _hierarchy_problem(seed=10, n=1)
    p = LCAParams(n_iter=40, eta=0.5, feedback=False)
    with Session("numpy", "lca_conv_hier_learn", key=()) as s:
        net = LCAHierarchy(p, layers, {"img": x.shape[1]}, 1, s)
        net.phi.update(V1=kernel.copy(), V2=phi2.copy())
        out = net.run({"img": x}, learn=True, learn_layers=["V1"])
    cp = layers[0].conv_params(p)
    expected = _hebbian_update(cp, kernel, x.reshape(1, 2, 8, 8), out["V1"]["a"])
    np.testing.assert_allclose(net.phi["V1"], expected, atol=1e-12)
    np.testing.assert_allclose(net.phi["V2"], phi2, err_msg="V2 was not in learn_layers")


@pytest.mark.parametrize("kw, msg", [
    (dict(kernel_size=12), "kernel_size=12"),
    (dict(pad=0), "stride=2 does not tile"),
    (dict(kernel_size=4, stride=3, pad=0), "stride=3 does not tile"),
    (dict(kernel_size=0), "kernel_size=0"),
    (dict(in_shape=(8, 8)), "in_shape"),
    (dict(kind="fft"), "kind"),
])
def test_bad_conv_layer_settings(kw, msg):
    from b2models.models.lca import LayerSpec

    base = dict(kind="conv", kernel_size=3, stride=2, pad=1, in_shape=(2, 8, 8))
    with pytest.raises(ValueError, match=msg) as err:
        LayerSpec("V1", 3, ("img",), 0.1, **{**base, **kw})
    assert "'V1'" in str(err.value), "the error must name the layer"


def test_bad_conv_architecture():
    from b2models.models.lca import LayerSpec, check_architecture

    conv = dict(kind="conv", kernel_size=3, stride=2, pad=1, in_shape=(2, 8, 8))
    with pytest.raises(ValueError, match="in_shape"):
        check_architecture([LayerSpec("V1", 3, ("img",), **conv)], {"img": 100})
    with pytest.raises(ValueError, match="only available for input layers"):
        check_architecture([LayerSpec("V1", 3, ("img",)), LayerSpec("V2", 3, ("V1",), **conv)], {"img": 128})
    sizes = check_architecture([LayerSpec("V1", 3, ("img",), **conv), LayerSpec("V2", 5, ("V1",))], {"img": 128})
    assert sizes == {"V1": 128, "V2": 48}
