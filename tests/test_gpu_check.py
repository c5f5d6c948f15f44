"""The prepared GPU check stops at once, with one line and exit code 3, where no GPU can be used."""

import subprocess
import sys
from pathlib import Path

import pytest

from b2models.backend import gpu_available

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_without_a_gpu_stops_at_once_and_writes_nothing(tmp_path):
    ok, why = gpu_available()
    if ok:
        pytest.skip("a GPU is present: run benchmarks/gpu_check.py itself")
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip() == f"gpu_check: no GPU: {why}; nothing was run"
    assert not out.exists() and not list(tmp_path.iterdir())


def test_gpu_check_refuses_a_bad_budget(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--budget-s", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--budget-s 0: must be > 0" in proc.stderr
