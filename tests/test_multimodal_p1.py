"""The joint layer's sparsity options of ``multimodal.train``: ``lam_p1`` (P1's own λ) and ``p1_target_active``
(P1's λ chosen on training pairs for a given active fraction)."""

import dataclasses

import numpy as np
import pytest

from b2models.backend import Session
from b2models.models.lca import LayerSpec, LCAHierarchy, LCAParams, hierarchy_reference, random_dictionary
from b2models.params import apply_overrides
from b2models.protocols import multimodal_train as mt
from b2models.results import config_hash


class _Ctx:
    def __init__(self, seed, backend):
        self.seed, self.backend = seed, backend


def _tiny(seed=3):
    rng = np.random.default_rng(seed)
    layers = [LayerSpec("V1", 7, ("face",), 0.05), LayerSpec("T1", 5, ("name",), 0.05),
              LayerSpec("P1", 10, ("V1", "T1"), 0.05)]
    phi = {"V1": random_dictionary(9, 7, rng), "T1": random_dictionary(6, 5, rng), "P1": random_dictionary(12, 10, rng)}
    x = {"face": rng.standard_normal((12, 9)) / 1.5, "name": rng.standard_normal((12, 6)) / 1.2}
    return layers, phi, x


def test_lam_p1_reaches_the_joint_layer_only():
    p = mt.MultimodalParams()
    assert [L.lam for L in p.layers() if L.name == "P1"] == [p.lam_hidden], "default: P1 uses lam_hidden"
    q = dataclasses.replace(p, lam_p1=0.004)
    spec = {L.name: L for L in q.layers()}
    assert spec["P1"].lam == 0.004
    assert all(spec[n].lam == p.lam_hidden for n in ("V2", "V3", "T2")) and spec["V1"].lam == p.lam_input
    # through --set and the data-scale preset
    r = apply_overrides(mt.MultimodalParams(), {"scale": "data", "lam_p1": "0.004"}).effective()
    assert r.layers()[-1].name == "P1" and r.layers()[-1].lam == 0.004 and r.p_atoms == 512


def test_defaults_keep_the_lca_stage_cache_key():
    """Stages cached before the P1 options existed are found again: these hashes are those of the keys then."""
    data = apply_overrides(mt.MultimodalParams(), {"scale": "data"}).effective()
    assert config_hash(mt.lca_stage_config(_Ctx(1, "cpp"), data)) == "07ef1af053169810"
    assert config_hash(mt.lca_stage_config(_Ctx(1, "numpy"), mt.MultimodalParams())) == "29a19ae1c5f9d50c"
    for change in (dict(lam_p1=0.004), dict(p1_target_active=0.202)):
        key = mt.lca_stage_config(_Ctx(1, "cpp"), dataclasses.replace(data, **change))
        (name, value), = change.items()
        assert key["params"][name] == value
        assert config_hash(key) != "07ef1af053169810"


@pytest.mark.parametrize("target", [0.1, 0.49])  # at λ = 0.05: 0.45 active
def test_calibration_hits_the_target_on_a_tiny_hierarchy(target):
    layers, phi, x = _tiny()
    lam, act, probes = mt.calibrate_p1_lam(layers, phi, x, target, 40, 0.1, lam0=0.05, tol=0.02, max_probes=20)
    assert abs(act - target) <= 0.02, f"probes {probes}"
    assert len(probes) >= 2, f"the first probe {probes} should miss the target: the search is not exercised"
    trial = [dataclasses.replace(L, lam=lam) if L.name == "P1" else L for L in layers]
    again = hierarchy_reference(trial, phi, x, 40, 0.1)["P1"]["a"]
    assert np.mean(again > 0) == pytest.approx(act), "the returned fraction should be that of the returned λ"
    # the search moves λ up after a probe above the target and down after one below
    for (l1, a1), (l2, _) in zip(probes, probes[1:]):
        assert (l2 > l1) == (a1 > target)


def test_calibration_returns_the_closest_probe_when_the_target_cannot_be_reached():
    layers, phi, x = _tiny()  # at most ~51 % of these P1 units are active, even at λ → 0
    lam, act, probes = mt.calibrate_p1_lam(layers, phi, x, 0.7, 40, 0.1, lam0=0.05, tol=0.02, max_probes=6)
    assert len(probes) == 6 and act < 0.6
    assert (lam, act) == min(probes, key=lambda pr: abs(pr[1] - 0.7))


def test_bad_p1_options_raise():
    p = mt.MultimodalParams()
    for name, bad in (("lam_p1", -0.01), ("lam_p1", 1.0), ("p1_target_active", -0.1), ("p1_target_active", 1.0)):
        with pytest.raises(ValueError, match=name):
            dataclasses.replace(p, **{name: bad}).validate()
    with pytest.raises(ValueError, match="lam_p1.*p1_target_active"):
        dataclasses.replace(p, lam_p1=0.01, p1_target_active=0.2).validate()
    layers, phi, x = _tiny()
    for bad in (dict(target=0.0), dict(target=1.0), dict(target=0.2, lam0=0.0), dict(target=0.2, tol=0.0)):
        with pytest.raises(ValueError):
            mt.calibrate_p1_lam(layers, phi, x, n_iter=10, dt_over_tau=0.1, **bad)


def test_the_chosen_lam_reaches_the_compiled_network():
    """λ set at run time (no rebuild) codes P1 as the reference does with that λ, and not as with the built one."""
    layers, phi, x = _tiny()
    with Session("numpy", "lca_p1_lam", key=()) as s:
        net = LCAHierarchy(LCAParams(n_iter=40), layers, {"face": 9, "name": 6}, 12, mt._RunArgSession(s))
        net.phi.update({k: v.copy() for k, v in phi.items()})
        built = net.run(x)["P1"]["a"]
        mt._set_p1_lam(net, 0.005)
        assert net.spec["P1"].lam == 0.005
        out = net.run(x)["P1"]["a"]
    ref = hierarchy_reference(net.layers, phi, x, 40, 0.1)["P1"]["a"]
    np.testing.assert_allclose(out, ref, atol=1e-10)
    assert np.mean(out > 0) > np.mean(built > 0), "a smaller λ should make P1 more active"


def test_training_with_a_target_ends_near_it_and_records_the_choice(tmp_path, have_lfw):
    import b2models
    small = dict(n_people=4, max_train=6, max_test=2, v_atoms=(16, 16, 16), t_atoms=(16, 16), p_atoms=16, n_iter=20,
                 epochs=2, chunk=8, ffa_epochs=0, p1_target_active=0.3)
    r = b2models.run("multimodal.train", backend="numpy", quick=True, out=tmp_path, **small)
    m = r.metrics
    assert [c["epochs_trained"] for c in m["lca_p1_calibration"]] == [0, 1, 2]
    assert m["lca_p1_lam"] == m["lca_p1_calibration"][-1]["lam"] != 0.05
    # the network's own codes of every training pair (not the search's reference) are near the target
    assert abs(m["lca_p1_active_fraction_train"] - 0.3) <= 0.03
    assert m["lca_p1_active_fraction_train"] == pytest.approx(m["lca_p1_active_fraction_calibration"], abs=0.01)
    assert any("P1 λ after training" in line for line in r.log.splitlines())
