"""Every documented error path of the command line, and one real run through it."""

import json

import pytest

from b2models import cli


def run_cli(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "nosuch.protocol"], "unknown protocol 'nosuch.protocol'"),
        (["run", "spikecoding.fig2", "--set", "tau=20*ms"], "--set tau: unknown parameter"),
        (["run", "spikecoding.fig2", "--set", "dt=3*mV"], "wrong units, dt expects s"),
        (["run", "spikecoding.fig2", "--set", "T=3*ms"], "wrong units, T expects 1"),
        (["run", "spikecoding.fig2", "--set", "dt=3*furlong"], "unknown unit or name"),
        (["run", "spikecoding.fig2", "--set", "dt=(3*ms"], "cannot parse"),
        (["run", "spikecoding.fig2", "--set", "dt"], "expected NAME=VALUE"),
        (["run", "spikecoding.fig2", "--set", "dt=__import__('os')"], "only"),
        (["run", "spikecoding.fig2", "--set", "N=2.5"], "expected an integer"),
        (["run", "spikecoding.fig2", "--set", "one_spike_per_step=maybe"], "expected true or false"),
        (["run", "spikecoding.fig2", "--set", "init=random"], "init must be one of"),
        (["run", "spikecoding.fig2", "--set", "chunk=0.5*ms"], "not a whole number of steps"),
        (["run", "spikecoding.fig2", "--backend", "gpu"], "invalid choice: 'gpu'"),
        (["run", "spikecoding.fig2", "--seed", "abc"], "invalid int value: 'abc'"),
        (["run", "spikecoding.fig2", "--threads", "-1"], "--threads -1"),
        (["reproduce", "nosuchpaper"], "unknown paper or protocol 'nosuchpaper'"),
        (["reproduce", "--quick"], "or give --all to run every protocol"),
        (["reproduce", "spikecoding", "--all"], "either 'spikecoding' or --all"),
        (["show", "nosuchmodel"], "unknown model 'nosuchmodel'"),
        (["data", "fetch", "nosuchdata"], "nosuchdata"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, fragment, capsys, tmp_path):
    code, out, err = run_cli(argv + (["--out", str(tmp_path)] if argv[0] in ("run", "reproduce") else []), capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    assert lines[0].startswith("b2models: error:")
    assert fragment in lines[0]
    assert not list(tmp_path.iterdir()), "nothing may be written for bad input"


def test_list_and_show(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0 and "spikecoding.fig2" in out
    code, out, _ = run_cli(["show", "spikecoding"], capsys)
    assert code == 0
    assert "# LIF_CODING_NEURON" in out and "dV/dt" in out
    assert "# VOLTAGE_RECURRENT_RULE_ON_PRE" in out and "Omega -= eta_Omega" in out


def test_data_list(capsys):
    code, out, _ = run_cli(["data", "list"], capsys)
    assert code == 0
    for name in ("caltech_face_motor", "lfw", "librispeech"):
        assert name in out


def test_interrupted_run_leaves_nothing(monkeypatch, tmp_path, capsys):
    from b2models.protocols import spikecoding_fig2

    def interrupted(ctx):
        ctx.writer.save_metrics({"half": 1})
        raise KeyboardInterrupt

    monkeypatch.setattr(spikecoding_fig2.PROTOCOL, "run", interrupted)
    code, out, err = run_cli(["run", "spikecoding.fig2", "--quick", "--out", str(tmp_path)], capsys)
    assert code == 130 and "interrupted" in err
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], f"half-written files left behind: {leftovers}"


@pytest.mark.standalone
def test_run_writes_complete_results(tmp_path, capsys, have_compiler):
    argv = ["run", "spikecoding.fig2", "--quick", "--backend", "cpp", "--seed", "2", "--no-progress",
            "--set", "duration=4*second", "--set", "n_snapshots=2", "--set", "n_angles=8",
            "--set", "alpha=0.18", "--out", str(tmp_path)]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    runs = list((tmp_path / "spikecoding.fig2").iterdir())
    assert len(runs) == 1 and not runs[0].name.startswith(".")
    run = runs[0]
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 2 and config["backend"] == "cpp"
    assert config["params"]["dt"]["unit"] == "s" and config["params"]["dt"]["value"] == pytest.approx(1e-3)
    assert config["params"]["duration"]["value"] == pytest.approx(4.0)
    assert "brian2" in config["versions"] and config["git_revision"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["final_error"] < 1
    assert (run / "arrays.npz").exists() and (run / "log.txt").exists()
    assert f"results: {run}" in out
    # --resume reuses the cached learning stage: same numbers, no new learning
    code, out, err = run_cli(argv + ["--resume"], capsys)
    assert code == 0, err
    second = [r for r in (tmp_path / "spikecoding.fig2").iterdir() if r != run]
    assert len(second) == 1
    assert "reusing the cached learning run" in (second[0] / "log.txt").read_text()
    assert json.loads((second[0] / "metrics.json").read_text())["final_error"] == metrics["final_error"]


def test_reproduce_bad_jobs_and_missing_dask(capsys, tmp_path):
    code, _, err = run_cli(["reproduce", "spikecoding", "--jobs", "0", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--jobs 0" in err
    import importlib.util

    if importlib.util.find_spec("dask") is None:
        code, _, err = run_cli(["reproduce", "spikecoding", "--quick", "--dask", "tcp://127.0.0.1:1",
                                "--out", str(tmp_path)], capsys)
        assert code == 2 and "dask" in err


def test_seed_summary_formats_integer_claims():
    from b2models.cli import _summary

    assert _summary([0, 0, 0], "{:d}") == (0.0, "0 ± 0 (n=3)")
    assert _summary([1, 2], "{:d}")[1] == "1.5 ± 0.707 (n=2)"
    assert _summary([0.5], "{:.3f}") == (0.5, "0.500")
    assert _summary([None], "{:.3f}") == (None, "—")


@pytest.mark.standalone
def test_reproduce_writes_report_with_seed_statistics(tmp_path, capsys, have_compiler):
    argv = ["reproduce", "spikecoding.fig2", "--quick", "--seeds", "1", "2", "--no-progress",
            "--set", "duration=4*second", "--set", "n_snapshots=2", "--set", "n_angles=8", "--out", str(tmp_path)]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    reports = list((tmp_path / "reproduce").glob("*/REPORT.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "| coding error after learning | 0.0050 (authors' code) | ≤ 0.0055 |" in text
    assert "(n=2)" in text and "for N in 1, 2" in text
    assert "![spikecoding.fig2 fig2B_learning" in text
    assert (reports[0].parent / "figures" / "spikecoding.fig2_fig2B_learning.png").exists()
    assert len(list((tmp_path / "spikecoding.fig2").iterdir())) == 2
