"""Convolutional LCA layer (models/lca_conv.py): unrolled dictionary, lasso solution, Gram form, learning, backends."""

import numpy as np
import pytest

from b2models.backend import Session
from models.lca import lca_reference
from models.lca_conv import (
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
    out_cpp, k_cpp, _ = _run("cpp", p, kernel, x, "clca_learn_cpp", learn=True)
    np.testing.assert_allclose(out_cpp["a"], out_np["a"], atol=1e-12, err_msg="numpy and cpp codes differ")
    np.testing.assert_allclose(k_cpp, k_np, atol=1e-12, err_msg="numpy and cpp kernels differ")


@pytest.mark.parametrize("kw, msg", [
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
