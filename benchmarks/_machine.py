"""The machine's limit next to each benchmark: numpy GEMM GFLOP/s and the load average.

:func:`gemm_peak` times ``A @ B`` (n×n float32 and float64, best of ``repeats``) with 1 and
with 2 BLAS threads (threadpoolctl) in a fresh subprocess whose environment lacks
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``, so that OpenBLAS picks its kernel for this CPU
by itself; the BLAS libraries numpy loaded (threadpoolctl's info: kernel, version, threading)
are recorded with the figures.  A multiply-add is 2 FLOP, so multiply-adds/s = GFLOP/s × 1e9 / 2.

    python benchmarks/_machine.py      # prints the JSON
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

#: environment variables removed for the GEMM subprocess only
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

_GEMM_CODE = r"""
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

n, repeats, threads = int(sys.argv[1]), int(sys.argv[2]), [int(t) for t in sys.argv[3].split(",")]
rng = np.random.default_rng(0)
out = {"n": n, "repeats": repeats, "gflops": {}}
for dtype in ("float32", "float64"):
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    for t in threads:
        with threadpool_limits(limits=t, user_api="blas"):
            a @ b  # warm-up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t0)
        out["gflops"][f"{dtype}_{t}thread"] = round(2 * n**3 / best / 1e9, 2)
out["blas"] = [{k: v for k, v in d.items() if k != "filepath"} for d in threadpool_info()
               if d.get("user_api") == "blas"]
out["numpy"] = np.__version__
print(json.dumps(out))
"""


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the OS does not have them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def gemm_peak(n: int = 1024, repeats: int = 5, threads=(1, 2)) -> dict:
    """GEMM GFLOP/s of numpy (float32/float64 × BLAS threads), measured in a clean subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    removed = {k: os.environ[k] for k in OPENBLAS_OVERRIDES if k in os.environ}
    proc = subprocess.run(
        [sys.executable, "-c", _GEMM_CODE, str(n), str(repeats), ",".join(map(str, threads))],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["env_removed_for_this_measurement"] = removed
    f64 = out["gflops"].get("float64_1thread")
    if f64:
        out["float64_1thread_multiply_adds_per_s"] = f64 * 1e9 / 2
    f64_2 = out["gflops"].get("float64_2thread")
    if f64_2:
        out["float64_2thread_multiply_adds_per_s"] = f64_2 * 1e9 / 2
    return out


def machine_start() -> dict:
    """What to record before a benchmark: platform, load average, then the GEMM peak."""
    info = {
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_start": load_average(),
    }
    t0 = time.perf_counter()
    info["gemm"] = gemm_peak()
    info["gemm"]["measure_s"] = round(time.perf_counter() - t0, 2)
    return info


def machine_end(info: dict) -> dict:
    """Add the load average at the end of the benchmark to ``info`` (returned)."""
    info["load_average_end"] = load_average()
    return info


def fraction_of_peak(work_per_s: float, gemm: dict, threads: int = 1) -> float | None:
    """``work_per_s`` (multiply-adds or synaptic updates per s) over the float64 GEMM multiply-adds/s."""
    key = "float64_2thread_multiply_adds_per_s" if threads >= 2 else "float64_1thread_multiply_adds_per_s"
    peak = gemm.get(key)
    return work_per_s / peak if peak else None


if __name__ == "__main__":
    print(json.dumps(machine_end(machine_start()), indent=2))


def emit_json(out: dict, path=None) -> dict:
    """Print ``out`` as JSON and, with ``path``, write it there atomically (never half-written)."""
    import json

    text = json.dumps(out, indent=2)
    if path:
        from b2models.results import atomic_write

        atomic_write(path, text + "\n")
    print(text)
    return out
