"""Packaging: the wheel installs one top-level name, ``b2models``, and the CLI works from an empty directory."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import b2models

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_defined_once_and_citation_agrees():
    from importlib.metadata import version

    assert version("b2models") == b2models.__version__
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", cff, re.M).group(1) == b2models.__version__, \
        "CITATION.cff's version differs from b2models/_version.py"
    setup = (ROOT / "setup.cfg").read_text()
    assert "version = attr: b2models._version.__version__" in setup


def test_license_file_matches_setup_cfg():
    setup = (ROOT / "setup.cfg").read_text()
    assert "license = MIT" in setup
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "brian2cuda" in text and "GPL-3.0" in text


def test_importing_b2models_does_not_import_brian2_or_the_protocols():
    code = ("import sys, b2models; bad = [m for m in ('brian2', 'matplotlib', 'b2models.protocols.spikecoding_fig2') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def _source_copy(dest: Path) -> Path:
    """The tracked files only (what a clean clone has), so that the build sees no local state."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout: cannot list the tracked files to build from")
    for name in filter(None, files.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.mark.slow
def test_wheel_installs_only_b2models_and_runs_from_an_empty_directory(tmp_path):
    src = _source_copy(tmp_path / "src")
    wheel_dir = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(wheel_dir), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheel_dir.glob("b2models-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"b2models", f"b2models-{b2models.__version__}.dist-info"}, tops
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("models/spikecoding.py", "protocols/spikecoding_fig2.py", "analysis/cca.py", "data/loaders.py"):
        assert f"b2models/{module}" in names, f"b2models/{module} missing from the wheel"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    before = set(os.listdir(site))
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    added = set(os.listdir(site)) - before
    assert added == {"b2models", f"b2models-{b2models.__version__}.dist-info"}, added
    # the dependencies come from this environment's site-packages, as a plain path: its .pth files (among them
    # the editable install's finder) are not processed, so only the wheel provides b2models
    deps = Path(sysconfig.get_paths()["purelib"])
    (site / "deps.pth").write_text(f"{deps}\n")
    if (deps / "distutils-precedence.pth").exists():  # setuptools' distutils for brian2 on Python >= 3.12
        shutil.copy2(deps / "distutils-precedence.pth", site / "distutils-precedence.pth")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "B2MODELS_DATA")}
    check = ("import importlib, b2models, b2models.models.spikecoding as m; print(m.__file__)\n"
             "for name in ('models', 'data', 'protocols', 'analysis'):\n"
             "    try:\n        importlib.import_module(name)\n    except ModuleNotFoundError:\n        pass\n"
             "    else:\n        raise SystemExit('top-level ' + name + ' importable')\n")
    out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=empty, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip().startswith(str(site)), f"b2models came from {out.stdout.strip()}, not the wheel"

    ran = subprocess.run([str(venv / "bin" / "b2models"), "run", "spikecoding.fig2", "--quick", "--backend", "numpy",
                          "--no-progress"], capture_output=True, text=True, cwd=empty, env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (run_dir,) = (empty / "results" / "spikecoding.fig2").iterdir()
    assert (run_dir / "metrics.json").exists() and (run_dir / "figures").is_dir()
