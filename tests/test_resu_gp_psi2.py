"""resu.gp: lobes of the second filter ψ2 beside ψ1 (Qin et al. 2025, Fig 3C), in the suite's sweep and at the
setting of the authors' notebook."""

import dataclasses

import numpy as np
import pytest

from b2models.analysis import cca
from b2models.protocol import Context, params_with_quick
from b2models.protocols import resu_gp
from b2models.results import RunWriter


def test_notebook_lobes_match_direct_count():
    p = dataclasses.replace(resu_gp.GPParams(), notebook_noise_sd=(0.01, 0.4))
    out = resu_gp.notebook_lobes(p)
    assert out["notebook_rq_noise_sd"] == [0.01, 0.4]
    for key in ("notebook_rq_psi1_lobes", "notebook_rq_psi2_lobes", "notebook_rq_rho1", "notebook_rq_rho2"):
        assert len(out[key]) == 2, key
    a = cca.analytic_cca("rq", 75, 25, 999 / 20, noise_var=0.4**2, alpha=1.0, rank=2, reg=p.reg)
    assert out["notebook_rq_psi2_lobes_low_snr"] == cca.count_lobes(a.past_filters[1], p.lobe_threshold)
    assert out["notebook_rq_psi1_lobes"][-1] == cca.count_lobes(a.past_filters[0], p.lobe_threshold)
    assert out["notebook_rq_psi2_lobes_high_snr"] == out["notebook_rq_psi2_lobes"][0]
    # more noise, less predictable second direction
    assert out["notebook_rq_rho2"][0] > out["notebook_rq_rho2"][1] > 0


def test_rank_one_is_refused():
    with pytest.raises(ValueError, match="rank must be >= 2"):
        dataclasses.replace(resu_gp.GPParams(), rank=1).validate()


def test_quick_run_reports_psi2_lobes(tmp_path):
    proto = resu_gp.PROTOCOL
    p = dataclasses.replace(params_with_quick(proto, True), kernels=("se", "rq"))
    w = RunWriter(proto.name, out_root=tmp_path)
    with w:
        m = proto.run(Context(params=p, seed=1, backend="numpy", quick=True, writer=w, show_progress=False))
    n = len(p.noise_vars)
    for kind in ("se", "rq"):
        lobes = m[f"{kind}_psi2_lobes_vs_noise"]
        assert len(lobes) == n and all(v >= 1 for v in lobes), lobes
        assert m[f"{kind}_psi2_lobes_high_snr"] == lobes[0] and m[f"{kind}_psi2_lobes_low_snr"] == lobes[-1]
        sampled = m[f"{kind}_psi2_lobes_vs_noise_sampled"]
        computed = [i for i in range(n) if i % p.sampled_sweep_every == 0 or i == n - 1]
        assert [i for i, v in enumerate(sampled) if v != -1] == computed
        assert np.all(np.diff(m[f"{kind}_rho2_vs_noise"]) <= 1e-12), "ρ2 should fall as the noise rises"
    # every claim of the protocol names a metric the run wrote
    assert {c.key for c in proto.claims if not c.key.startswith("ou_")} <= set(m)
