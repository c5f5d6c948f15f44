"""Time per simulated second of the Brendel et al. 2020 Fig 4 E–I network (models.spikecoding_ei).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

Builds the 300 E / 75 I network (authors' values, learning on) once per backend, runs
``--repeats`` chunks of ``--chunk`` seconds of smoothed-noise input and prints JSON: build
time, wall time per simulated second (median over repeats, the first run excluded as
warm-up), the binary's own time for standalone targets, spike rates, and the ratios
between backends measured in this run.  Run one at a time on a shared machine::

    .venv/bin/python benchmarks/bench_spikecoding_ei.py --backends cython cpp

``--sizes`` scales the network (total neurons, E:I = 4:1, all-to-all as at full size, so
10,000 neurons hold 10⁸ synapses) to find where the cuda backend overtakes cpp::

    .venv/bin/python benchmarks/bench_spikecoding_ei.py --backends cpp cuda --sizes 375 2500 10000 \
        --out benchmarks/results/spikecoding_ei_scaling.json

Without a GPU the cuda entry records that the code was generated and compiled but not run.

cpp is timed once per ``--threads`` value (OpenMP threads, 0 = no OpenMP)::

    .venv/bin/python benchmarks/bench_spikecoding_ei.py --backends cpp --threads 0 1 2 \
        --out benchmarks/results/spikecoding_ei.json

Each entry reports the work done as synaptic updates per wall second (``work_per_s``, counting
rule in the JSON: :data:`WORK_RULE`) beside a numpy GEMM measured in the same run
(``benchmarks/_machine.py``) and its fraction of the float64 GEMM multiply-adds/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from brian2 import second

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import fraction_of_peak, machine_end, machine_start  # noqa: E402

#: how ``work_per_s`` is counted (what the generated code touches; learning on)
WORK_RULE = (
    "synaptic updates: every step the J*N_E input->E synapses are all read twice, once for each "
    "summed variable (I_ff and its positive part I_ff_exc): 2*J*N_E per step.  Every E spike touches "
    "its N_E-1 E->E synapses (Eq 6 + input) and N_I E->I synapses (input) on_pre, and its J input "
    "synapses on_post (Eq 7): N_E-1+N_I+J.  Every I spike touches its N_E I->E and N_I I->I synapses "
    "on_pre (Eq 6 + input) and its N_E E->I synapses on_post (Eq 7): 2*N_E+N_I.  Not counted: the "
    "one-spike rule's candidate->arbiter synapse (1 per candidate event, not recorded).  "
    "work = steps*2*J*N_E + spikes_E*(N_E-1+N_I+J) + spikes_I*(2*N_E+N_I)."
)


def synaptic_updates(steps: int, spikes_E: int, spikes_I: int, N_E: int, N_I: int, J: int) -> int:
    """Synaptic updates of ``steps`` steps with the given spike counts (see :data:`WORK_RULE`)."""
    return steps * 2 * J * N_E + spikes_E * (N_E - 1 + N_I + J) + spikes_I * (2 * N_E + N_I)


def bench(backend: str, p, chunk_s: float, repeats: int, threads: int) -> dict:
    from b2models.backend import Session, describe
    from b2models.data.signals import SmoothedNoise
    from b2models.models.spikecoding_ei import EINetwork

    L = round(chunk_s / float(p.dt))
    src = SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt),
                        float(p.dt), seed=0)
    t0 = time.perf_counter()
    threads = threads if backend == "cpp" else 0
    with Session(backend, f"bench_ei_{backend}", key=(repr(p), L, threads), threads=threads) as s:
        net = EINetwork(p, s, L, plastic=True, seed=0)
        build_s = time.perf_counter() - t0
        walls, bins, rates, works = [], [], [], []
        for k in range(repeats + 1):
            c, _ = src.next(L)
            t1 = time.perf_counter()
            res = net.run_chunk(c, learning=True, seed=k)
            wall = time.perf_counter() - t1
            if k == 0:
                continue  # warm-up (runtime targets compile or load code on the first run)
            walls.append(wall)
            if s.last_run.binary_s is not None:
                bins.append(s.last_run.binary_s)
            rates.append((len(res.spike_i_E) / p.N_E / chunk_s, len(res.spike_i_I) / p.N_I / chunk_s))
            works.append(synaptic_updates(L, len(res.spike_i_E), len(res.spike_i_I), p.N_E, p.N_I, p.J))
    out = {
        "backend": backend,
        "build_s": build_s,
        "wall_s_per_sim_s": float(np.median(walls)) / chunk_s,
        "binary_s_per_sim_s": float(np.median(bins)) / chunk_s if bins else None,
        "us_per_step": 1e6 * float(np.median(walls)) / L,
        "rate_E_hz": float(np.mean([r[0] for r in rates])),
        "rate_I_hz": float(np.mean([r[1] for r in rates])),
        "repeats": repeats,
        "openmp_threads": threads,
        "synaptic_updates_per_sim_s": float(np.mean(works)) / chunk_s,
        # work per wall second: mean work per run over the median wall time per run
        "work_per_s": float(np.mean(works)) / float(np.median(walls)),
    }
    if bins:
        out["work_per_s_binary"] = float(np.mean(works)) / float(np.median(bins))
    out["versions"] = describe()
    return out


def measure(backend: str, p, chunk_s: float, repeats: int, threads: int) -> dict:
    """:func:`bench`, or for cuda without a GPU a record that the code compiled but could not run."""
    from b2models.backend import NoGPUError

    try:
        return bench(backend, p, chunk_s, repeats, threads)
    except NoGPUError as e:
        return {"backend": backend, "compiled": True, "ran": False, "reason": str(e)}


def main(argv=None):
    from b2models.models.spikecoding_ei import EIParams
    from b2models.results import atomic_write

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["cython", "cpp"])
    ap.add_argument("--chunk", type=float, default=1.0, help="seconds simulated per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[0],
                    help="OpenMP threads for cpp, one timing each (0 = no OpenMP)")
    ap.add_argument("--N_E", type=int, default=300)
    ap.add_argument("--N_I", type=int, default=75)
    ap.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                    help="total neuron counts to sweep (E:I = 4:1); overrides --N_E/--N_I")
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)
    if min(args.threads) < 0:
        ap.error("--threads: values must be >= 0")
    if args.sizes and min(args.sizes) < 5:
        ap.error(f"--sizes: every size must be >= 5 neurons (got {args.sizes})")
    shapes = [(n - n // 5, n // 5) for n in args.sizes] if args.sizes else [(args.N_E, args.N_I)]
    machine = machine_start()
    gemm = machine["gemm"]
    runs = []
    for N_E, N_I in shapes:
        p = EIParams(N_E=N_E, N_I=N_I)
        p.validate()
        results = {}
        cpp_threads = {}
        for backend in args.backends:
            if backend != "cpp":
                print(f"benchmarking {backend}, {N_E} E / {N_I} I ...", file=sys.stderr, flush=True)
                results[backend] = measure(backend, p, args.chunk, args.repeats, 0)
                continue
            for t in args.threads:
                print(f"benchmarking cpp ({t} OpenMP threads), {N_E} E / {N_I} I ...", file=sys.stderr, flush=True)
                cpp_threads[str(t)] = measure("cpp", p, args.chunk, args.repeats, t)
            # "cpp" keeps its old meaning: the first --threads value (0 by default)
            results["cpp"] = cpp_threads[str(args.threads[0])]
        entries = dict(results)
        entries.update({f"cpp_{t}threads": r for t, r in cpp_threads.items()})
        fractions = {name: fraction_of_peak(r["work_per_s"], gemm, r.get("openmp_threads", 0))
                     for name, r in entries.items() if "work_per_s" in r}
        ratios = {}
        timed = [b for b in results if "wall_s_per_sim_s" in results[b]]
        for a in timed:
            for b in timed:
                if a < b:
                    ratios[f"{a}/{b}"] = results[a]["wall_s_per_sim_s"] / results[b]["wall_s_per_sim_s"]
        run = {"network": {"N_E": p.N_E, "N_I": p.N_I, "J": p.J, "dt_ms": float(p.dt / (0.001 * second))},
               "results": results, "wall_ratios": ratios, "fraction_of_gemm_peak": fractions}
        if cpp_threads:
            run["cpp_threads"] = cpp_threads
            run["wall_s_per_sim_s_by_threads"] = {t: r.get("wall_s_per_sim_s") for t, r in cpp_threads.items()}
        runs.append(run)
    out = runs[0] if len(runs) == 1 else {"sizes": runs}
    out = {"command": "python " + " ".join([sys.argv[0] if argv is None else "benchmarks/bench_spikecoding_ei.py",
                                            *(sys.argv[1:] if argv is None else argv)]),
           **out,
           "work_rule": WORK_RULE,
           "fraction_of_gemm_peak_rule": (
               "work_per_s / float64 numpy GEMM multiply-adds per s (GFLOP/s * 1e9 / 2), with 1 BLAS thread "
               "for cpp at 0 or 1 OpenMP threads and other backends, with 2 BLAS threads for cpp at 2 threads"),
           "quoted_not_measured_here": {
               "target": "the EI network (300 E / 75 I) time per simulated second reported for 1 and 2 threads"},
           "machine": machine_end(machine)}
    text = json.dumps(out, indent=2)
    if args.out:
        atomic_write(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
