"""Timings of the ReSU model (JSON on stdout and ``--out``): the Brian2 two-layer network of ``resu.t4`` per
backend, with its work per second beside a numpy GEMM measured in the same run, and the whole protocols.

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), arXiv:2512.23146,
https://doi.org/10.48550/arXiv.2512.23146.

* ``network``: the ``resu.t4`` test network (``models.resu.ReSUNetwork``: 40 conditions × 3 pixels, layer 1
  with ψ1 and ψ2, 40 T4 units, ``test_steps`` samples), built once per backend and run ``--repeats`` times
  with new random filters each run (as the protocol replaces θ₂ per run).  cpp once per ``--threads`` value
  (OpenMP threads; 0 = no OpenMP); on cpp also the binary's CPU time per run (user + system time of the child
  process, less sensitive than wall time to other jobs on a shared machine).  Work = multiply-adds of the
  summed synaptic variables (:data:`WORK_RULE`), compared with the float64 GEMM multiply-adds/s
  (``benchmarks/_machine.py``).  One more cpp row
  (``cpp_0threads_default_clock_at_dt``) builds the same network with Brian2's default clock at the network's
  dt, for comparison (see :func:`bench_network`).
* ``protocols``: wall and CPU seconds of ``resu.gp``, ``resu.scenes`` and ``resu.t4`` end to end
  (``--protocol-backend``; the first two are numpy/BLAS analyses with no Brian2 network).

    python benchmarks/bench_resu.py [--backends numpy cpp] [--threads 0 1 2] [--repeats 5] [--quick]
        [--no-protocols] [--out benchmarks/results/resu.json]

Reference (quoted, not measured here): the authors' notebooks take 18.9 CPU-minutes for the GP analyses and
4.5 for the natural-scene filters on this machine kind.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import fraction_of_peak, machine_end, machine_start  # noqa: E402

#: how ``work_per_s`` of the network is counted (what the generated code computes every step)
WORK_RULE = (
    "multiply-adds of the summed synaptic variables, every step (all of them run every step, no events): "
    "layer 1 u = sum_k psi_f[k] x_(t-k), P*m1*F synapses; layer-1 output -> tap 0, 6*U synapses; tap chain "
    "tap k-1 -> tap k, 6*U*(m2-1) synapses; layer 2 v = sum w*y, 6*U*m2 synapses.  "
    "work = steps*(P*m1*F + 12*U*m2).  Not counted: the per-neuron updates (delay line, rectification, "
    "register shift) and the monitors."
)


def network_work_per_step(n_pix: int, m1: int, n_filt: int, n_t4: int, m2: int) -> int:
    """Multiply-adds per step of the two-layer network (see :data:`WORK_RULE`)."""
    return n_pix * m1 * n_filt + 6 * n_t4 + 6 * n_t4 * (m2 - 1) + 6 * n_t4 * m2


def _child_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def bench_network(backend: str, threads: int, repeats: int, steps: int, seed: int = 1,
                  default_clock_at_dt: bool = False) -> dict:
    """Build the ``resu.t4`` test network once, run it ``repeats`` + 1 times (first run excluded).

    ``default_clock_at_dt``: Brian2's default clock takes the network's dt while the code is generated (a
    standalone network loop turns at its finest clock, and the session's seed holder sits on the default
    clock, 0.1 ms, i.e. 100 turns per 10 ms step); a variant of the build for comparison only."""
    from brian2 import defaultclock, ms

    from b2models.backend import Session
    from b2models.models import resu
    from b2models.protocols import resu_t4

    p = resu_t4.T4Params()
    conds = resu_t4.conditions(p)
    rng = np.random.default_rng(seed)
    stim = resu_t4.test_stimulus(p, conds, 1.0)[:steps]
    if stim.shape[0] < steps:  # longer than the protocol's trials: repeat the stimulus
        stim = np.resize(stim, (steps, stim.shape[1]))
    n_pix = stim.shape[1]
    triples = np.arange(n_pix).reshape(-1, 3)
    rp = resu.ReSUParams(dt=p.dt_ms * ms, m1=p.m, m2=p.m2)
    key = ("bench", p.m, p.m2, n_pix, steps, default_clock_at_dt)
    with Session(backend, "bench_resu", key=key, threads=threads if backend == "cpp" else 0) as s:
        t0 = time.perf_counter()
        dt0 = defaultclock.dt
        if default_clock_at_dt:
            defaultclock.dt = rp.dt
        try:
            net = resu.ReSUNetwork(rp, s, n_pix, steps, rng.standard_normal((2, p.m)),
                                   rng.standard_normal(6 * p.m2), triples, monitor_layer1=False)
        finally:
            defaultclock.dt = dt0
        build_s = time.perf_counter() - t0
        walls, binaries, cpus = [], [], []
        for k in range(repeats + 1):
            t0, c0 = time.perf_counter(), _child_cpu_s()
            net.run(stim, psi1=rng.standard_normal((2, p.m)), psi2=rng.standard_normal(6 * p.m2), seed=k)
            if k:  # the first run loads everything
                walls.append(time.perf_counter() - t0)
                cpus.append(_child_cpu_s() - c0)
                if s.last_run.binary_s is not None:
                    binaries.append(s.last_run.binary_s)
    work = steps * network_work_per_step(n_pix, p.m, 2, len(triples), p.m2)
    wall = float(np.median(walls))
    out = {"build_s": round(build_s, 2), "steps_per_run": steps, "pixels": n_pix, "t4_units": len(triples),
           "runs_timed": repeats, "wall_s_per_run_median": round(wall, 4),
           "wall_s_per_run_all": [round(w, 4) for w in walls],
           "us_per_step_wall": round(1e6 * wall / steps, 3), "multiply_adds_per_run": work,
           "work_per_s": round(work / wall)}
    if backend in ("cpp", "cuda"):  # CPU time of the binary: less sensitive to other jobs than wall time
        out["binary_cpu_s_per_run_median"] = round(float(np.median(cpus)), 4)
        out["us_per_step_binary_cpu"] = round(1e6 * float(np.median(cpus)) / steps, 3)
        out["work_per_s_binary_cpu"] = round(work / float(np.median(cpus)))
    if binaries:
        b = float(np.median(binaries))
        out["binary_s_per_run_median"] = round(b, 4)
        out["us_per_step_binary"] = round(1e6 * b / steps, 3)
        out["work_per_s_binary"] = round(work / b)
    if backend == "cpp":
        out["openmp_threads"] = threads
    return out


def time_protocol(module, quick: bool, backend: str) -> dict:
    from b2models.protocol import Context, params_with_quick
    from b2models.results import RunWriter

    proto = module.PROTOCOL
    with tempfile.TemporaryDirectory() as out:
        w = RunWriter(proto.name, out_root=out)
        t0, c0 = time.perf_counter(), _cpu_s()
        with w:
            ctx = Context(params=params_with_quick(proto, quick), seed=1, backend=backend, quick=quick,
                          writer=w, show_progress=False)
            proto.run(ctx)
        return {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(_cpu_s() - c0, 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["numpy", "cpp"], help="backends of the network timing")
    ap.add_argument("--threads", type=int, nargs="+", default=[0, 1, 2], help="OpenMP threads for cpp")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per backend (after one untimed)")
    ap.add_argument("--steps", type=int, default=0, help="steps per network run (0: the protocol's test_steps)")
    ap.add_argument("--quick", action="store_true", help="quick settings of the protocols")
    ap.add_argument("--protocol-backend", default="numpy")
    ap.add_argument("--no-protocols", action="store_true", help="time the network only")
    ap.add_argument("--no-clock-variant", action="store_true",
                    help="skip the cpp build with the default clock at the network's dt (comparison row)")
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.steps < 0 or min(args.threads) < 0:
        ap.error("--repeats must be >= 1, --steps and --threads >= 0")

    import brian2

    from b2models.protocols import resu_t4

    steps = args.steps or resu_t4.T4Params().test_steps
    machine = machine_start()
    out = {"benchmark": "resu: resu.t4 test network per backend; resu.gp, resu.scenes, resu.t4 end to end",
           "command": "python " + " ".join(["benchmarks/bench_resu.py", *(sys.argv[1:] if argv is None else argv)]),
           "machine": {"python": platform.python_version(), "brian2": brian2.__version__},
           "work_rule": WORK_RULE, "network": {}}
    for backend in args.backends:
        for t in (args.threads if backend == "cpp" else [0]):
            name = f"cpp_{t}threads" if backend == "cpp" else backend
            print(f"network: {name} ...", file=sys.stderr, flush=True)
            out["network"][name] = bench_network(backend, t, args.repeats, steps)
    if "cpp" in args.backends and not args.no_clock_variant:
        print("network: cpp_0threads_default_clock_at_dt ...", file=sys.stderr, flush=True)
        out["network"]["cpp_0threads_default_clock_at_dt"] = bench_network("cpp", 0, args.repeats, steps,
                                                                           default_clock_at_dt=True)
    gemm = machine["gemm"]
    out["fraction_of_gemm_peak"] = {name: fraction_of_peak(r["work_per_s"], gemm, r.get("openmp_threads", 0))
                                    for name, r in out["network"].items()}
    out["fraction_of_gemm_peak_rule"] = (
        "work_per_s (wall, median run) / float64 numpy GEMM multiply-adds per s (GFLOP/s * 1e9 / 2), 1 BLAS "
        "thread except for cpp with 2 OpenMP threads (2 BLAS threads)")
    if not args.no_protocols:
        from b2models.protocols import resu_gp, resu_scenes

        out["protocols"] = {"quick": args.quick, "backend": args.protocol_backend,
                            "cpu_s_includes": "this process and its waited-for children"}
        ref = {"resu.gp": 18.9 * 60, "resu.scenes": 4.5 * 60}
        out["quoted_not_measured_here"] = {"authors_notebooks_cpu_s": ref}
        for name, mod in (("resu.gp", resu_gp), ("resu.scenes", resu_scenes), ("resu.t4", resu_t4)):
            print(f"protocol {name} ...", file=sys.stderr, flush=True)
            r = time_protocol(mod, args.quick, args.protocol_backend)
            if name in ref and not args.quick:
                r["authors_cpu_s_over_ours"] = round(ref[name] / r["cpu_s"], 2)
            out["protocols"][name] = r
    out["machine"].update(machine_end(machine))
    from _machine import emit_json

    return emit_json(out, args.out)


if __name__ == "__main__":
    main()
