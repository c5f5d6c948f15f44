"""The scripts in examples/ at --quick size: each runs as a subprocess from a foreign working directory, exits 0,
writes its figure and shows one scientific property; bad input gives one line and exit code 2."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import b2models

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def build_cache(tmp_path_factory):
    """One build cache for the examples of this module, so that the cpp examples compile the network once."""
    return tmp_path_factory.mktemp("b2models_cache")


def run_script(cmd, tmp_path, cache, env=None, timeout=900):
    cwd = tmp_path / "elsewhere"  # not the project root: the examples must not depend on the working directory
    cwd.mkdir(exist_ok=True)
    env = {**os.environ, "B2MODELS_CACHE": str(cache), "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_example(name, tmp_path, cache, *args, env=None):
    out = tmp_path / "out"
    proc = run_script([sys.executable, EXAMPLES / name, "--quick", "--out", out, *args], tmp_path, cache, env)
    assert proc.returncode == 0, (f"examples/{name} --quick failed (exit {proc.returncode}); check the example "
                                  f"against the API it uses. stderr:\n{proc.stderr[-3000:]}")
    return out, proc.stdout


def only_run(out, protocol):
    runs = sorted((out / protocol).iterdir())
    assert len(runs) == 1, f"expected one {protocol} run in {out / protocol}, found {len(runs)}"
    return b2models.load(runs[0])


@pytest.mark.standalone
def test_change_rule(tmp_path, build_cache, have_compiler):
    out, _ = run_example("plot_01_change_rule.py", tmp_path, build_cache, "--backend", "cpp")
    assert (out / "change_rule.png").is_file(), "plot_01 wrote no change_rule.png under --out"
    eq6 = only_run(out, "spikecoding.fig2").arrays["error"]
    soft = only_run(out, "user.fig2_soft_bounds").arrays["error"]
    assert eq6[0] == soft[0], "both rules start from the same weights and test input: the errors before learning differ"
    assert not np.allclose(eq6, soft), "the soft-bound learning curve equals Eq 6's: the rule string was not replaced"
    for name, err in (("Eq 6", eq6), ("soft bounds", soft)):
        assert err[-1] < 0.5 * err[0], (
            f"{name}: coding error {err[0]:.3f} -> {err[-1]:.3f} did not halve in the learning; check the rule")


def test_own_protocol(tmp_path, build_cache, monkeypatch):
    path = EXAMPLES / "plot_02_own_protocol.py"
    out, _ = run_example(path.name, tmp_path, build_cache)  # as a script: numpy by default
    run = only_run(out, "user.t4_apparent_motion")
    assert run.figures.get("apparent_motion", Path("-")).is_file(), "no figures/apparent_motion.png in the run"
    m = run.metrics
    assert m["dsi_bright"] > 0 and m["r_pref_bright"] > m["r_null_bright"], (
        f"bright flash pairs: DSI {m['dsi_bright']} (R_pref {m['r_pref_bright']}, R_null {m['r_null_bright']}); "
        "the preferred order (towards pixel c) should win: check PAIRS and the order of the flashes")
    assert m["dsi_dark"] > 0.1, f"dark flash pairs: DSI {m['dsi_dark']}, measured 0.17 at --quick with seed 1"
    cli = Path(sys.executable).with_name("b2models")
    cmd = [cli] if cli.exists() else [sys.executable, "-m", "b2models.cli"]
    proc = run_script([*cmd, "run", path, "--quick", "--backend", "numpy", "--no-progress", "--out", tmp_path / "cli"],
                      tmp_path, build_cache)
    assert proc.returncode == 0, f"`b2models run {path.name}` failed:\n{proc.stderr[-3000:]}"
    monkeypatch.setenv("B2MODELS_CACHE", str(build_cache))
    via_api = b2models.run(str(path), backend="numpy", quick=True, out=tmp_path / "api", progress=False).metrics
    for how, other in (("b2models run", only_run(tmp_path / "cli", "user.t4_apparent_motion").metrics),
                       ("b2models.run", via_api)):
        assert other["dsi_bright"] == pytest.approx(m["dsi_bright"]) and other["dsi_dark"] == pytest.approx(
            m["dsi_dark"]), f"{how} gave other DSIs than the script (same seed and backend)"


def fly_data_missing():
    from b2models.data import DataError, locate

    try:
        return locate("fly_l1l2") is None
    except DataError:
        return True


def test_compare_recording(tmp_path, build_cache):
    if fly_data_missing():
        proc = run_script([sys.executable, EXAMPLES / "plot_03_compare_recording.py", "--quick", "--out",
                           tmp_path / "out"], tmp_path, build_cache)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "fly_l1l2" in lines[0], proc.stderr[-3000:]
        pytest.skip(lines[0])
    out, _ = run_example("plot_03_compare_recording.py", tmp_path, build_cache)
    assert (out / "compare_recording.png").is_file(), "plot_03 wrote no compare_recording.png under --out"
    assert (out / "recording.csv").is_file(), "plot_03 wrote no stand-in recording.csv"
    fit = json.loads((out / "compare_recording.json").read_text())
    # the example reports a fit, it does not judge it (resu.compare does, under the suite's conventions)
    assert fit["polarity"] == -1.0, "the stand-in calcium recording is compared dark-positive (RECORDING_POLARITY)"
    assert -1 <= fit["r"] <= 1 and fit["r_at_training_delta"] <= fit["r"] + 1e-12, \
        "the fitted Δ must be the grid's best, the training Δ among the grid"
    assert fit["variance_explained"] == pytest.approx(fit["r"] ** 2), "a gain-and-offset fit explains r² exactly"


def test_compare_recording_without_data(tmp_path, build_cache):
    empty = tmp_path / "no_data"
    empty.mkdir()
    proc = run_script([sys.executable, EXAMPLES / "plot_03_compare_recording.py", "--quick", "--out",
                       tmp_path / "out"], tmp_path, build_cache, env={"B2MODELS_DATA": str(empty)})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, f"expected one error line and exit 2, got:\n{proc.stderr}"
    assert str(empty) in lines[0] and "fly_l1l2" in lines[0], f"the error does not name the missing path: {lines[0]}"


@pytest.mark.standalone
def test_seed_sweep(tmp_path, build_cache, have_compiler):
    out, _ = run_example("plot_04_seed_sweep.py", tmp_path, build_cache, "--backend", "cpp")
    assert (out / "seed_sweep.png").is_file(), "plot_04 wrote no seed_sweep.png under --out"
    with open(out / "seed_sweep.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6, f"expected 2 values × 3 seeds = 6 runs in seed_sweep.csv, found {len(rows)}"
    assert sorted((r["eps_Omega"], r["seed"]) for r in rows) == sorted(
        (v, str(s)) for v in ("1e-3", "4e-3") for s in (1, 2, 3)), "the table lacks a (value, seed) combination"
    for r in rows:
        m = b2models.load(r["run"]).metrics
        assert m["final_error"] < m["initial_error"], f"run {r['run']}: coding error did not fall during learning"


@pytest.mark.parametrize("name, args", [
    ("plot_01_change_rule.py", ["--omega-max", "-1"]),
    ("plot_02_own_protocol.py", ["--set", "nosuch=1"]),
    ("plot_03_compare_recording.py", ["--flash-ms", "40", "20"]),
    ("plot_04_seed_sweep.py", ["--param", "nosuch"]),
])
def test_bad_input_gives_one_line(tmp_path, build_cache, name, args):
    proc = run_script([sys.executable, EXAMPLES / name, "--out", tmp_path / "out", *args], tmp_path, build_cache)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "error" in lines[0], (
        f"examples/{name} {' '.join(args)}: expected one error line and exit code 2, got exit "
        f"{proc.returncode}:\n{proc.stderr[-2000:]}")
