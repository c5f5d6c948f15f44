"""The Python API (b2models.run / load / protocols / models) against the command line, and user protocols from a
file, a module and an installed package's entry point."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import b2models
from b2models.api import RunError
from b2models.cli import main
from b2models.params import ParameterError
from b2models.protocol import ProtocolError

TINY = '''
"""A tiny user protocol: no simulation, only the writer, so that the API's plumbing is tested quickly."""
import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import ms

from b2models.protocol import Protocol


@dataclass
class TinyParams:
    tau: object = field(default_factory=lambda: 10 * ms)  # a time constant
    n: int = 3  # number of samples
    scale: float = 1.0
    flag: bool = False
    sizes: tuple = (4, 2)


def run(ctx):
    p = ctx.params
    x = np.arange(p.n) * float(p.tau / ms) * p.scale
    ctx.writer.save_arrays(x=x)
    metrics = {"n": p.n, "tau_ms": float(p.tau / ms), "seed": ctx.seed, "flag": p.flag, "sizes": list(p.sizes),
               "total": float(x.sum())}
    ctx.writer.save_metrics(metrics)
    return metrics


PROTOCOL = Protocol(name="NAME", paper="user", summary="a tiny test protocol", params=TinyParams, run=run,
                    quick=lambda p: dataclasses.replace(p, n=2))
'''


def _tiny(tmp_path, name="user.tiny", filename="my_protocol.py") -> Path:
    path = tmp_path / filename
    path.write_text(TINY.replace('"NAME"', repr(name)))
    return path


def _cli(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_run_a_protocol_file_with_units_and_load_it_back(tmp_path):
    from brian2 import ms

    proto = _tiny(tmp_path)
    out = tmp_path / "results"
    run = b2models.run(str(proto), backend="numpy", seed=4, out=out, tau=20 * ms, n=5, sizes=(8, 3))
    assert run.path.parent == (out / "user.tiny").resolve() and run.path.is_dir()
    assert run.metrics["tau_ms"] == 20.0 and run.metrics["n"] == 5 and run.metrics["seed"] == 4
    assert run.metrics["sizes"] == [8, 3]
    assert list(run.arrays["x"]) == [0.0, 20.0, 40.0, 60.0, 80.0]
    assert run.config["params"]["tau"]["text"] == "20. ms" and run.config["seed"] == 4
    assert run.config["backend"] == "numpy" and run.config["command"].startswith("b2models.run('user.tiny'")
    again = b2models.load(run.path)
    assert again.metrics == run.metrics and again.protocol == "user.tiny" and again.figures == {}
    # a string is parsed exactly as --set parses it; quick applies the protocol's quick version
    run2 = b2models.run(proto, backend="numpy", out=out, quick=True, tau="30*ms")
    assert run2.metrics["tau_ms"] == 30.0 and run2.metrics["n"] == 2 and run2.path != run.path


def test_api_and_cli_give_the_same_metrics(tmp_path, capsys):
    proto = _tiny(tmp_path)
    code, out, err = _cli(["run", str(proto), "--backend", "numpy", "--seed", "2", "--no-progress",
                           "--set", "tau=15*ms", "--set", "flag=true", "--out", str(tmp_path / "cli")], capsys)
    assert code == 0, err
    (cli_run,) = (tmp_path / "cli" / "user.tiny").iterdir()
    from brian2 import ms

    api_run = b2models.run(proto, backend="numpy", seed=2, out=tmp_path / "api", tau=15 * ms, flag=True)
    cli_metrics = b2models.load(cli_run).metrics
    cli_metrics.pop("wall_s"), api_run.metrics.pop("wall_s")
    assert cli_metrics == {k: v for k, v in api_run.metrics.items() if k != "wall_s"}
    assert b2models.load(cli_run).config["command"].startswith(f"b2models run {proto}")


def test_run_a_module_object_and_an_importable_module_name(tmp_path, monkeypatch):
    _tiny(tmp_path, name="user.module", filename="tiny_user_mod.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("tiny_user_mod")
    r1 = b2models.run(module, backend="numpy", out=tmp_path / "r")
    r2 = b2models.run("tiny_user_mod", backend="numpy", out=tmp_path / "r", n=4)
    assert r1.metrics["n"] == 3 and r2.metrics["n"] == 4 and r1.protocol == r2.protocol == "user.module"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"tau": 5}, "tau=5: wrong units, tau expects s (e.g. 10. ms), got 1"),
        ({"tau": "5*mV"}, "--set tau=5*mV: wrong units, tau expects s (e.g. 10. ms), got V"),
        ({"n": 2.5}, "n=2.5: expected an integer"),
        ({"flag": 1}, "flag=1: expected True or False"),
        ({"sizes": (4, "x")}, "item 1"),
        ({"nosuch": 1}, "nosuch: unknown parameter; valid names: flag, n, scale, sizes, tau"),
    ],
)
def test_bad_parameters_raise_one_line_naming_them(tmp_path, params, message):
    proto = _tiny(tmp_path)
    with pytest.raises(ParameterError) as info:
        b2models.run(proto, backend="numpy", out=tmp_path / "out", **params)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists(), "a refused run must write nothing"


def test_api_and_cli_refuse_wrong_units_for_the_same_reason(tmp_path, capsys):
    proto = _tiny(tmp_path)
    code, _, err = _cli(["run", str(proto), "--backend", "numpy", "--set", "tau=5*mV", "--out", str(tmp_path)],
                        capsys)
    with pytest.raises(ParameterError) as info:
        b2models.run(proto, backend="numpy", out=tmp_path, tau="5*mV")
    assert code == 2 and err.strip() == f"b2models: error: {info.value}"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"backend": "gpu"}, "backend='gpu': expected one of numpy, cython, cpp, cuda"),
        ({"threads": -1}, "threads=-1: must be >= 0"),
        ({"seed": "one"}, "seed='one': expected an integer"),
        ({"jobs": 0}, "jobs=0: must be >= 1"),
    ],
)
def test_bad_run_options(tmp_path, kw, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        b2models.run(_tiny(tmp_path), out=tmp_path / "out", **{"backend": "numpy", **kw})


def test_bad_protocols_name_the_input(tmp_path, capsys):
    with pytest.raises(ProtocolError, match="unknown protocol 'nosuch'; known: spikecoding.fig2"):
        b2models.run("nosuch")
    with pytest.raises(ProtocolError, match="does not exist"):
        b2models.run(str(tmp_path / "missing.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ProtocolError, match="defines no PROTOCOL"):
        b2models.run(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ProtocolError, match="failed to import: RuntimeError: boom"):
        b2models.run(broken)
    code, _, err = _cli(["run", str(empty), "--out", str(tmp_path)], capsys)
    assert code == 2 and "defines no PROTOCOL" in err and err.count("\n") == 1


def test_load_refuses_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(RunError, match="no such run directory"):
        b2models.load(tmp_path / "nothing")
    partial = tmp_path / ".20260101-s1.partial"
    partial.mkdir()
    with pytest.raises(RunError, match="unfinished run"):
        b2models.load(partial)
    run = b2models.run(_tiny(tmp_path), backend="numpy", out=tmp_path / "r")
    (run.path / "metrics.json").write_text("{not json")
    with pytest.raises(RunError, match="corrupt JSON"):
        b2models.load(run.path).metrics


def test_listing_protocols_models_and_equations():
    table = b2models.protocols()
    assert "spikecoding.fig2" in table and "resu.t4" in table
    assert b2models.models()["spikecoding"] == "b2models.models.spikecoding"
    import importlib

    importlib.import_module("b2models.protocols.spikecoding_fig2")  # the subpackage stays callable after imports
    assert set(b2models.protocols()) == set(table)
    eqs = b2models.equations("spikecoding")
    assert eqs and all(isinstance(v, str) for v in eqs.values())
    with pytest.raises(ParameterError, match="unknown model 'nosuch'"):
        b2models.equations("nosuch")
    assert b2models.default_params("spikecoding.fig2", quick=True) != b2models.default_params("spikecoding.fig2")


PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "b2models-plugin-demo"
version = "0.1"

[project.entry-points."b2models.protocols"]
tiny = "b2plug_demo"

[tool.setuptools]
py-modules = ["b2plug_demo"]
"""


@pytest.mark.slow
def test_an_installed_package_registers_protocols_through_the_entry_point(tmp_path):
    src = tmp_path / "plugin"
    src.mkdir()
    (src / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (src / "b2plug_demo.py").write_text(TINY.replace('"NAME"', "'plugin.tiny'"))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(src)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "work"
    work.mkdir()
    listing = subprocess.run([sys.executable, "-m", "b2models.cli", "list"], capture_output=True, text=True,
                             env=env, cwd=work)
    assert listing.returncode == 0, listing.stderr
    assert "plugin.tiny" in listing.stdout and "spikecoding.fig2" in listing.stdout
    ran = subprocess.run([sys.executable, "-m", "b2models.cli", "run", "plugin.tiny", "--backend", "numpy",
                          "--set", "n=4", "--out", "res"], capture_output=True, text=True, env=env, cwd=work)
    assert ran.returncode == 0, ran.stderr
    (run_dir,) = (work / "res" / "plugin.tiny").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["n"] == 4
    code = textwrap.dedent("""
        import b2models
        r = b2models.run("plugin.tiny", backend="numpy", out="api", n=6)
        print(r.metrics["n"])
    """)
    api = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=work)
    assert api.returncode == 0 and api.stdout.strip().endswith("6"), api.stderr


SLOW_PROTOCOL = '''
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from b2models.protocol import Protocol


@dataclass
class P:
    n: int = 3


def run(ctx):
    ctx.cached_stage("checkpoint", {"n": ctx.params.n}, lambda: {"w": np.arange(ctx.params.n)}, reuse=True)
    ctx.writer.save_metrics({"half": 1})
    # a long "simulation binary", run as brian2's standalone devices run theirs
    cmd = [sys.executable, "-c", "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
           "time.sleep(120)", str(ctx.writer.partial / "child.pid")]
    subprocess.call(cmd)
    return {"done": 1}


PROTOCOL = Protocol(name="user.slow", paper="user", summary="a run that a signal ends", params=P, run=run)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


@pytest.mark.parametrize("via", ["cli", "api"])
def test_sigterm_stops_the_binary_removes_the_partial_run_and_keeps_checkpoints(tmp_path, via):
    import signal
    import time

    proto = tmp_path / "slow_protocol.py"
    proto.write_text(SLOW_PROTOCOL)
    out = tmp_path / "results"
    if via == "cli":
        cmd = [sys.executable, "-m", "b2models.cli", "run", str(proto), "--backend", "numpy", "--out", str(out)]
    else:
        code = f"import b2models; b2models.run({str(proto)!r}, backend='numpy', out={str(out)!r})"
        cmd = [sys.executable, "-c", code]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    pid_files = []
    while time.time() < deadline and not pid_files:
        pid_files = [p for p in out.glob("user.slow/.*.partial/child.pid") if p.read_text().strip()]
        time.sleep(0.2)
    assert pid_files, "the protocol never started its child process: " + (proc.stderr.read() if proc.poll() else "")
    child = int(pid_files[0].read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if via == "cli":
        assert proc.returncode == 143, err
        assert err.strip().splitlines()[-1].startswith("b2models: error: terminated by SIGTERM"), err
    else:
        assert proc.returncode != 0 and "Terminated" in err, err
    time.sleep(0.5)
    assert not _alive(child), "the running child process survived SIGTERM"
    assert not list((out / "user.slow").iterdir()), "a partial run directory was left behind"
    assert list((out / "cache" / "checkpoint").glob("*.npz")), "the finished checkpoint was removed"


def test_coerce_follows_the_set_rules():
    from brian2 import ms, mV

    from b2models.params import coerce

    assert coerce("mode", "a", "b") == "b"
    with pytest.raises(ParameterError, match="expected a string"):
        coerce("mode", "a", 3)
    assert coerce("tau", 10 * ms, 2 * ms) == 2 * ms and coerce("tau", 10 * ms, "3*ms") == 3 * ms
    with pytest.raises(ParameterError, match="wrong units"):
        coerce("tau", 10 * ms, 2 * mV)
    assert coerce("n", 3, 4.0) == 4 and isinstance(coerce("n", 3, 4.0), int)
    assert coerce("x", 1.0, 2) == 2.0 and coerce("flag", False, True) is True
    assert coerce("sizes", (4, 2), [8, 3, 1]) == (8, 3, 1)
