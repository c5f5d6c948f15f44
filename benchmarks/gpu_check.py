"""The prepared GPU check: every model on ``cuda`` against ``cpp`` on the same seed, then the scaling benchmarks.

Run it as one command on a machine with an NVIDIA GPU (brian2cuda from the ``cuda`` extra, nvcc on the path)::

    .venv/bin/python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json

1. **Equivalence**: each protocol that supports ``cuda`` runs at ``--quick`` size on ``cpp`` and on ``cuda``
   with seed 1; the JSON keeps both runs' claim metrics (coding error, rates, accuracy, DSI, filter
   correlations, ...) side by side with their relative difference, and each run's wall time.  Random number
   streams differ between the targets, so spiking models agree statistically, not spike for spike: the JSON
   gives the numbers and leaves the verdict to their size.
2. **Scaling**: ``bench_spikecoding_ei.py`` (E–I network up to 10,000 neurons, 10⁸ synapses) and
   ``bench_sdnn.py`` on cuda, each in its own process with its own time limit.

Everything runs under one time budget (``--budget-s``, default 460 s so that the whole check, start-up
included, fits in 8 minutes); steps that would start after the budget is spent are recorded as skipped.  The
JSON is written atomically after every step, so an interrupted check keeps what it measured.  Without a usable
GPU the script stops at once with one line naming the reason and exit code 3, and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXIT_NO_GPU = 3

#: quick protocols checked on cuda, in order of their cost (a protocol without cuda support is skipped)
PROTOCOLS = ("spikecoding.fig2", "resu.t4", "spikecoding.fig4", "spikecoding.speech", "recollection.features")

#: scaling benchmarks: (name, argv after the script, time limit in s)
SCALING = (
    ("spikecoding_ei", ["bench_spikecoding_ei.py", "--backends", "cpp", "cuda", "--sizes", "375", "2500", "10000",
                        "--repeats", "2", "--chunk", "0.5"], 200),
    ("sdnn", ["bench_sdnn.py", "--backend", "cuda", "--chunk", "50", "--learn-images", "20"], 150),
)


def _nvidia_smi() -> dict:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        name, mem, driver = [x.strip() for x in out.stdout.strip().splitlines()[0].split(",")]
        return {"name": name, "memory": mem, "driver": driver}
    except Exception as err:  # the check runs without it
        return {"nvidia_smi": f"unavailable ({type(err).__name__})"}


def _write(path: Path, report: dict):
    from b2models.results import atomic_write, json_dumps

    atomic_write(path, json_dumps(report))


def _relative(a, b):
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return None
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def check_protocol(name: str, out: Path) -> dict:
    import b2models

    proto = b2models.protocols()[name]
    if "cuda" not in proto.backends:
        return {"skipped": f"{name} does not support cuda (backends: {', '.join(proto.backends)})"}
    entry = {}
    for backend in ("cpp", "cuda"):
        t0 = time.perf_counter()
        try:
            run = b2models.run(name, backend=backend, seed=1, quick=True, out=out, progress=False)
            entry[backend] = {"wall_s": time.perf_counter() - t0, "path": str(run.path),
                              "metrics": {c.key: run.metrics.get(c.key) for c in proto.claims}}
        except Exception as err:
            entry[backend] = {"wall_s": time.perf_counter() - t0, "error": f"{type(err).__name__}: {err}"[:2000]}
    if "metrics" in entry.get("cpp", {}) and "metrics" in entry.get("cuda", {}):
        entry["relative_difference"] = {k: _relative(entry["cpp"]["metrics"][k], entry["cuda"]["metrics"][k])
                                        for k in entry["cpp"]["metrics"]}
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build and run every model on cuda against cpp; time the scaling.")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    ap.add_argument("--budget-s", type=float, default=460.0, help="time budget for all steps (s)")
    ap.add_argument("--protocols", nargs="*", default=list(PROTOCOLS), help="protocols to check (quick size)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling benchmarks")
    args = ap.parse_args(argv)
    if args.budget_s <= 0:
        ap.error(f"--budget-s {args.budget_s:g}: must be > 0")

    from b2models.backend import describe, gpu_available

    ok, why = gpu_available()
    if not ok:
        print(f"gpu_check: no GPU: {why}; nothing was run", file=sys.stderr)
        return EXIT_NO_GPU
    try:
        import brian2cuda  # noqa: F401
    except ImportError:
        print("gpu_check: brian2cuda is not installed (pip install -e '.[cuda]'); nothing was run", file=sys.stderr)
        return EXIT_NO_GPU

    t_start = time.perf_counter()
    out = Path(args.out)
    report = {"script": "benchmarks/gpu_check.py", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "gpu": {"driver_says": why, **_nvidia_smi()}, "versions": describe(), "budget_s": args.budget_s,
              "protocols": {}, "scaling": {}}
    work = out.parent / "gpu_check_runs"

    def left() -> float:
        return args.budget_s - (time.perf_counter() - t_start)

    for name in args.protocols:
        if left() <= 0:
            report["protocols"][name] = {"skipped": "time budget spent"}
        else:
            print(f"gpu_check: {name} on cpp and cuda ...", file=sys.stderr)
            report["protocols"][name] = check_protocol(name, work)
        report["elapsed_s"] = time.perf_counter() - t_start
        _write(out, report)
    for name, cmd, limit in ([] if args.no_scaling else SCALING):
        limit = min(limit, left())
        if limit <= 10:
            report["scaling"][name] = {"skipped": "time budget spent"}
            continue
        print(f"gpu_check: scaling benchmark {name} (limit {limit:.0f} s) ...", file=sys.stderr)
        target = work / f"{name}.json"
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / cmd[0]), *cmd[1:], "--out", str(target)],
                                  capture_output=True, text=True, timeout=limit, cwd=ROOT,
                                  env={**os.environ, "MPLBACKEND": "Agg"})
            entry = {"returncode": proc.returncode, "wall_s": time.perf_counter() - t0}
            if target.exists():
                entry["result"] = json.loads(target.read_text())
            if proc.returncode != 0:
                entry["stderr_tail"] = proc.stderr[-2000:]
        except subprocess.TimeoutExpired:
            entry = {"timeout_s": limit, "wall_s": time.perf_counter() - t0}
        report["scaling"][name] = entry
        report["elapsed_s"] = time.perf_counter() - t_start
        _write(out, report)
    report["elapsed_s"] = time.perf_counter() - t_start
    _write(out, report)
    print(f"gpu_check: {report['elapsed_s']:.0f} s; results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
