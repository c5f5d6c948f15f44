"""LCA layers and hierarchy (models/lca.py): lasso solution, energy, learning rule, feedback, backends."""

import numpy as np
import pytest

from b2models.backend import Session
from b2models.models.lca import (
    LayerSpec,
    LCAHierarchy,
    LCAParams,
    check_architecture,
    lca_energy,
    lca_reference,
    normalise_atoms,
    random_dictionary,
    soft_threshold,
    top_down,
)


def _single_layer(backend, phi, x, lam, n_iter, name, eta=0.0, record_u=False):
    N, M = phi.shape
    p = LCAParams(n_iter=n_iter, eta=eta, feedback=False)
    with Session(backend, name, key=(N, M, len(x), n_iter)) as s:
        net = LCAHierarchy(p, [LayerSpec("L1", M, ("img",), lam)], {"img": N}, len(x), s, record_u=record_u)
        net.phi["L1"] = phi.copy()
        out = net.run({"img": x}, learn=eta > 0, seed=1)
    return out["L1"], net.phi["L1"]


def test_lca_matches_numpy_reference_and_lasso():
    """Brian2 LCA == the same Euler update in numpy, and converges to scikit-learn's Lasso (α = λ/N)."""
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(3)
    N, M, P, lam = 20, 10, 3, 0.05
    phi = random_dictionary(N, M, rng)
    x = rng.standard_normal((P, N)) / np.sqrt(N)
    out, _ = _single_layer("numpy", phi, x, lam, 500, "lca_lasso")
    a_ref, traj = lca_reference(x, phi, lam, 500, 0.1)
    np.testing.assert_allclose(out["a"], a_ref, atol=1e-12)
    for k in range(P):
        w = Lasso(alpha=lam / N, fit_intercept=False, positive=True, tol=1e-12, max_iter=100000).fit(phi, x[k]).coef_
        assert np.count_nonzero(w) > 0, "degenerate test problem: the lasso solution is all zeros"
        np.testing.assert_allclose(out["a"][k], w, atol=2e-4,
                                   err_msg="LCA fixed point differs from the non-negative lasso solution")


def test_energy_decreases_over_iterations():
    rng = np.random.default_rng(0)
    N, M, lam = 16, 32, 0.1  # overcomplete
    phi = random_dictionary(N, M, rng)
    x = rng.standard_normal((4, N)) / np.sqrt(N) * 2
    _, traj = lca_reference(x, phi, lam, 300, 0.1)
    energy = np.array([lca_energy(x, phi, a, lam) for a in traj])  # (iterations, inputs)
    assert np.all(np.diff(energy, axis=0) <= 1e-12), "the LCA energy increased between iterations"
    assert np.all(energy[-1] < energy[0] - 1e-3)
    # the end point is sparse (overcomplete dictionary, λ > 0)
    assert np.mean(traj[-1] > 0) < 0.5


def test_dictionary_learning_rule_one_presentation():
    """Φ_m ← (Φ_m + η a_m E) / ‖·‖ for active atoms, with E = x − Φ a from the last step."""
    rng = np.random.default_rng(5)
    N, M, lam, eta, n_iter = 12, 8, 0.05, 0.2, 50
    phi = random_dictionary(N, M, rng)
    x = rng.standard_normal((1, N)) / np.sqrt(N)
    out, phi_new = _single_layer("numpy", phi, x, lam, n_iter, "lca_learn", eta=eta)
    _, traj = lca_reference(x, phi, lam, n_iter, 0.1)
    a_cur, a_prev = traj[-1][0], traj[-2][0]
    assert np.count_nonzero(a_cur) >= 2
    E = x[0] - phi @ a_prev
    expected = normalise_atoms(phi + eta * np.outer(E, a_cur))
    np.testing.assert_allclose(phi_new, expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(phi_new, axis=0), 1.0, atol=1e-12)
    assert np.array_equal(phi_new[:, a_cur == 0], phi[:, a_cur == 0]), "inactive atoms must not change"


def _two_layer_reference(x, phi1, phi2, lam1, lam2, n_iter, k, g):
    u1 = np.zeros((len(x), phi1.shape[1]))
    u2 = np.zeros((len(x), phi2.shape[1]))
    for _ in range(n_iter):
        a1, a2 = soft_threshold(u1, lam1), soft_threshold(u2, lam2)
        E1 = x - a1 @ phi1.T
        E2 = u1 - a2 @ phi2.T
        u1, u2 = (u1 + k * (-u1 + E1 @ phi1 + a1 - g * E2), u2 + k * (-u2 + E2 @ phi2 + a2))
    return u1, u2


def test_feedback_switch_changes_lower_layer_as_the_equation_says():
    rng = np.random.default_rng(7)
    N, M1, M2, P, n_iter = 10, 12, 6, 3, 80
    lam1, lam2 = 0.05, 0.02
    phi1, phi2 = random_dictionary(N, M1, rng), random_dictionary(M1, M2, rng)
    x = rng.standard_normal((P, N)) / np.sqrt(N) * 2
    layers = [LayerSpec("L1", M1, ("img",), lam1), LayerSpec("L2", M2, ("L1",), lam2)]
    with Session("numpy", "lca_fb", key=(N, M1, M2)) as s:
        net = LCAHierarchy(LCAParams(n_iter=n_iter, eta=0.0), layers, {"img": N}, P, s)
        net.phi.update(L1=phi1, L2=phi2)
        on = net.run({"img": x}, feedback=True)
        off = net.run({"img": x}, feedback=False)
    for g, out in ((1.0, on), (0.0, off)):
        u1, u2 = _two_layer_reference(x, phi1, phi2, lam1, lam2, n_iter, 0.1, g)
        np.testing.assert_allclose(out["L1"]["u"], u1, atol=1e-12, err_msg=f"layer 1 with feedback gain {g}")
        np.testing.assert_allclose(out["L2"]["u"], u2, atol=1e-12, err_msg=f"layer 2 with feedback gain {g}")
    # without feedback the lower layer is the single-layer LCA; with feedback it is not
    a_single, _ = lca_reference(x, phi1, lam1, n_iter, 0.1)
    np.testing.assert_allclose(off["L1"]["a"], a_single, atol=1e-12)
    assert np.abs(on["L1"]["u"] - off["L1"]["u"]).max() > 1e-3


@pytest.mark.standalone
@pytest.mark.parametrize("engine", ["kernel", "synapses"])
def test_numpy_and_cpp_agree_with_learning_and_feedback(have_compiler, engine):
    """numpy (synapses engine, the reference) and cpp_standalone with each engine: same codes and dictionaries."""
    rng = np.random.default_rng(11)
    N, P = 12, 4
    x = rng.standard_normal((P, N)) / np.sqrt(N) * 2
    layers = [LayerSpec("L1", 10, ("img",), 0.05), LayerSpec("L2", 6, ("L1",), 0.02)]
    res = {}
    for backend, eng in (("numpy", "synapses"), ("cpp", engine)):
        with Session(backend, f"lca_equiv_{eng}", key=(N, P)) as s:
            net = LCAHierarchy(LCAParams(n_iter=40, eta=0.1, feedback=True, engine=eng), layers, {"img": N}, P, s,
                               seed=2)
            assert net.engine == eng
            first = net.run({"img": x}, learn=True, seed=1)
            second = net.run({"img": x}, learn=False, seed=1)
        res[backend] = (first, second, dict(net.phi))
    (f0, s0, p0), (f1, s1, p1) = res["numpy"], res["cpp"]
    for L in ("L1", "L2"):
        np.testing.assert_allclose(f1[L]["a"], f0[L]["a"], atol=1e-10)
        np.testing.assert_allclose(s1[L]["a"], s0[L]["a"], atol=1e-10)
        np.testing.assert_allclose(p1[L], p0[L], atol=1e-10)
        assert np.abs(p1[L] - random_dictionary(*p1[L].shape, np.random.default_rng(99))).max() > 0
    assert np.count_nonzero(s0["L1"]["a"]) > 0
    assert np.count_nonzero(s0["L1"]["a"] == 0) > 0, "degenerate test: every atom active (no event-driven skip)"


def test_kernel_engine_matches_reference_and_synapses_engine():
    """The kernel engine (numpy implementation) on a joint hierarchy with feedback on and off equals the numpy
    reference, and one learning run gives the same dictionaries as the synapses engine."""
    from b2models.models.lca import hierarchy_reference

    rng = np.random.default_rng(13)
    layers = [LayerSpec("A1", 7, ("a",), 0.05), LayerSpec("B1", 5, ("b",), 0.05), LayerSpec("J", 6, ("A1", "B1"), 0.02)]
    phi = {"A1": random_dictionary(9, 7, rng), "B1": random_dictionary(6, 5, rng), "J": random_dictionary(12, 6, rng)}
    x = {"a": rng.standard_normal((3, 9)) / 1.5, "b": rng.standard_normal((3, 6)) / 1.2}
    learned = {}
    for engine in ("kernel", "synapses"):
        with Session("numpy", f"lca_engine_{engine}", key=()) as s:
            net = LCAHierarchy(LCAParams(n_iter=60, eta=0.2, engine=engine), layers, {"a": 9, "b": 6}, 3, s)
            assert net.engine == engine
            net.phi.update({k: v.copy() for k, v in phi.items()})
            if engine == "kernel":
                for g in (1.0, 0.0):
                    out = net.run(x, feedback=bool(g))
                    ref = hierarchy_reference(layers, phi, x, 60, 0.1, fb_gain=g)
                    for L in ("A1", "B1", "J"):
                        np.testing.assert_allclose(out[L]["u"], ref[L]["u"], atol=1e-12, err_msg=f"{L}, feedback {g}")
                    assert 0 < np.count_nonzero(out["A1"]["a"]) < out["A1"]["a"].size, "degenerate test"
            net.run(x, learn=True, seed=1)
            learned[engine] = {k: v.copy() for k, v in net.phi.items()}
    for L in phi:
        assert np.abs(learned["kernel"][L] - phi[L]).max() > 1e-3, f"degenerate test: {L} did not learn"
        np.testing.assert_allclose(learned["kernel"][L], learned["synapses"][L], atol=1e-12, err_msg=L)


def test_engine_choice_and_bad_engine():
    from b2models.models.lca import resolve_engine

    assert resolve_engine("auto", "cpp") == "kernel"
    assert resolve_engine("auto", "numpy") == "synapses" and resolve_engine("auto", "cuda") == "synapses"
    with pytest.raises(ValueError, match="engine='fast'"):
        LCAParams(engine="fast").validate()
    with pytest.raises(ValueError, match="not for backend 'cython'"):
        resolve_engine("kernel", "cython")


def test_top_down_reconstruction_follows_dictionaries():
    rng = np.random.default_rng(1)
    layers = [LayerSpec("T1", 6, ("name",), 0.0), LayerSpec("V1", 5, ("face",), 0.0),
              LayerSpec("P1", 4, ("V1", "T1"), 0.0)]
    phi = {"T1": rng.standard_normal((8, 6)), "V1": rng.standard_normal((9, 5)), "P1": rng.standard_normal((11, 4))}
    a = np.abs(rng.standard_normal((2, 4)))
    r = top_down(phi, layers, a, ["P1", "T1"], part_offset=5, part_size=6)
    expected = soft_threshold((a @ phi["P1"].T)[:, 5:], 0.0) @ phi["T1"].T
    np.testing.assert_allclose(r, expected)


def test_bad_architecture_and_inputs_raise():
    with pytest.raises(ValueError, match="n_atoms"):
        LayerSpec("L", 0, ("img",))
    with pytest.raises(ValueError, match="unknown inputs"):
        check_architecture([LayerSpec("L", 3, ("nosuch",))], {"img": 4})
    with pytest.raises(ValueError, match="feeds both"):
        check_architecture([LayerSpec("A", 3, ("img",)), LayerSpec("B", 3, ("A",)), LayerSpec("C", 3, ("A",))],
                           {"img": 4})
    with pytest.raises(ValueError, match="unstable"):
        LCAParams(dt=LCAParams().tau * 2).validate()
    with Session("numpy", "lca_bad", key=()) as s:
        net = LCAHierarchy(LCAParams(n_iter=5), [LayerSpec("L1", 3, ("img",))], {"img": 4}, 2, s)
        with pytest.raises(ValueError, match="input 'img' of shape"):
            net.run({"img": np.zeros((3, 4))})
        with pytest.raises(ValueError, match="unknown input modalities"):
            net.run({"img": np.zeros((2, 4)), "txt": np.zeros((2, 4))})


def test_direct_inhibition_form_reaches_the_same_code():
    """Direct (ΦᵀΦ − I) inhibition and the residual population code the same fixed point."""
    from b2models.models.lca import LCADirectLayer

    rng = np.random.default_rng(4)
    N, M, P, lam = 20, 10, 2, 0.05
    phi = random_dictionary(N, M, rng)
    x = rng.standard_normal((P, N)) / np.sqrt(N)
    with Session("numpy", "lca_direct", key=(N, M, P)) as s:
        direct = LCADirectLayer(LCAParams(n_iter=300, eta=0.0), phi, lam, P, s).run(x)
    a_ref, _ = lca_reference(x, phi, lam, 300, 0.1)
    assert np.count_nonzero(a_ref) > 0
    np.testing.assert_allclose(direct, a_ref, atol=1e-6)


def test_joint_layer_hierarchy_matches_numpy_reference():
    """Two input layers and a joint layer coding both (feedback split between them): the Brian2 hierarchy
    equals models.lca.hierarchy_reference (and the reference equals the hand-written two-layer update)."""
    from b2models.models.lca import hierarchy_reference

    rng = np.random.default_rng(12)
    layers = [LayerSpec("A1", 7, ("a",), 0.05), LayerSpec("B1", 5, ("b",), 0.05), LayerSpec("J", 6, ("A1", "B1"), 0.02)]
    phi = {"A1": random_dictionary(9, 7, rng), "B1": random_dictionary(6, 5, rng), "J": random_dictionary(12, 6, rng)}
    x = {"a": rng.standard_normal((3, 9)) / 1.5, "b": rng.standard_normal((3, 6)) / 1.2}
    with Session("numpy", "lca_joint_ref", key=()) as s:
        net = LCAHierarchy(LCAParams(n_iter=70, eta=0.0), layers, {"a": 9, "b": 6}, 3, s)
        net.phi.update({k: v.copy() for k, v in phi.items()})
        for g in (1.0, 0.0):
            out = net.run(x, feedback=bool(g))
            ref = hierarchy_reference(layers, phi, x, 70, 0.1, fb_gain=g)
            for L in ("A1", "B1", "J"):
                np.testing.assert_allclose(out[L]["u"], ref[L]["u"], atol=1e-12, err_msg=f"{L}, feedback {g}")
            assert np.count_nonzero(out["J"]["a"]) > 0
    two = [LayerSpec("L1", 6, ("img",), 0.05), LayerSpec("L2", 4, ("L1",), 0.02)]
    p1, p2 = random_dictionary(8, 6, rng), random_dictionary(6, 4, rng)
    xi = rng.standard_normal((2, 8))
    ref = hierarchy_reference(two, {"L1": p1, "L2": p2}, {"img": xi}, 50, 0.1, fb_gain=1.0)
    u1, u2 = _two_layer_reference(xi, p1, p2, 0.05, 0.02, 50, 0.1, 1.0)
    np.testing.assert_allclose(ref["L1"]["u"], u1, atol=1e-13)
    np.testing.assert_allclose(ref["L2"]["u"], u2, atol=1e-13)
