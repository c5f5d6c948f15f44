"""Speed of learning in the Fig 2 network (Brendel et al. 2020), per backend, as JSON.

For each backend the network is built once (build time reported separately) and then
learns for ``--seconds`` of input in chunks of ``--chunk`` (one binary re-run per chunk on
cpp).  Reported per backend: wall time per 1 ms step (everything: input generation,
run_args, binary, reading results back), binary time per step (cpp only), simulated
seconds per wall second.  A baseline runs in the same process: a NumPy per-step loop of
the same algorithm as the authors' MATLAB learning code (one spike per step, recurrent
input one step later), timed over the same input.

    python benchmarks/bench_spikecoding.py [--seconds 200] [--chunk 10] [--backends cython cpp]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np


def reference_loop(c, x, F, Om, p, rng):
    """The authors' per-step learning loop in NumPy (baseline for timing only)."""
    N = F.shape[1]
    lam_dt = float(p.lambda_ * p.dt)
    dt = float(p.dt)
    V = np.zeros(N)
    r = np.zeros(N)
    k_prev = -1
    eye = np.eye(N)
    n_spikes = 0
    for n in range(len(c)):
        V = (1 - lam_dt) * V + dt * (F.T @ c[n]) + p.noise_per_step * rng.standard_normal(N)
        if k_prev >= 0:
            V += Om[:, k_prev]
        m = V - p.T - p.threshold_jitter * rng.standard_normal(N)
        k = int(np.argmax(m))
        if m[k] >= 0:
            F[:, k] += p.eps_F * (p.alpha * x[n] - F[:, k])
            Om[:, k] -= p.eps_Omega * (p.beta * (V + p.mu * r) + Om[:, k] + p.mu * eye[:, k])
            r[k] += 1
            k_prev = k
            n_spikes += 1
        else:
            k_prev = -1
        r *= 1 - lam_dt
    return n_spikes


def bench_backend(backend, p, seconds, chunk_steps, seed=1):
    from b2models.backend import Session
    from b2models.data.signals import SmoothedNoise
    from b2models.models.spikecoding import SpikeCodingNetwork

    gen = SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt),
                        float(p.dt), seed=seed)
    n_chunks = max(1, int(round(seconds / (chunk_steps * float(p.dt)))))
    with Session(backend, "bench_spikecoding", key=(chunk_steps,)) as s:
        t0 = time.perf_counter()
        net = SpikeCodingNetwork(p, s, chunk_steps, plastic=True, seed=seed)
        build_s = time.perf_counter() - t0
        c, x = gen.next(chunk_steps)
        net.run_chunk(c, x, learning=True, seed=0)  # warm-up (first run loads everything)
        binary_s = 0.0
        spikes = 0
        t0 = time.perf_counter()
        for k in range(n_chunks):
            c, x = gen.next(chunk_steps)
            res = net.run_chunk(c, x, learning=True, seed=k + 1)
            spikes += len(res.spike_i)
            if s.last_run.binary_s is not None:
                binary_s += s.last_run.binary_s
        wall = time.perf_counter() - t0
    steps = n_chunks * chunk_steps
    out = {
        "build_s": round(build_s, 3),
        "simulated_s": steps * float(p.dt),
        "wall_s": round(wall, 3),
        "us_per_step_wall": round(1e6 * wall / steps, 3),
        "simulated_s_per_wall_s": round(steps * float(p.dt) / wall, 2),
        "mean_rate_hz": round(spikes / p.N / (steps * float(p.dt)), 2),
    }
    if binary_s:
        out["us_per_step_binary"] = round(1e6 * binary_s / steps, 3)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=200.0, help="simulated learning time per backend")
    ap.add_argument("--chunk", type=float, default=10.0, help="seconds per binary run")
    ap.add_argument("--baseline-seconds", type=float, default=20.0, help="simulated time for the NumPy loop")
    ap.add_argument("--backends", nargs="+", default=["cython", "cpp"])
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.chunk <= 0 or args.baseline_seconds <= 0:
        ap.error("--seconds, --chunk and --baseline-seconds must be positive")

    import brian2

    from b2models.data.signals import SmoothedNoise
    from b2models.models.spikecoding import SpikeCodingParams, initial_weights

    p = SpikeCodingParams()
    chunk_steps = int(round(args.chunk / float(p.dt)))
    result = {
        "benchmark": "spikecoding.fig2 learning (N=20, J=2, dt=1 ms)",
        "machine": {"python": platform.python_version(), "brian2": brian2.__version__,
                    "processor": platform.processor() or platform.machine()},
        "chunk_s": args.chunk,
        "backends": {},
    }
    gen = SmoothedNoise(p.J, 30, p.input_amplitude, 0.05, 0.001, seed=1)
    n = int(args.baseline_seconds / float(p.dt))
    c, x = gen.next(n)
    F, Om = initial_weights(p, np.random.default_rng(1))
    t0 = time.perf_counter()
    reference_loop(c, x, F, Om, p, np.random.default_rng(2))
    wall = time.perf_counter() - t0
    result["baseline_numpy_loop"] = {"simulated_s": args.baseline_seconds,
                                     "us_per_step_wall": round(1e6 * wall / n, 3)}
    for backend in args.backends:
        print(f"benchmarking {backend} ...", file=sys.stderr)
        result["backends"][backend] = bench_backend(backend, p, args.seconds, chunk_steps)
    base = result["baseline_numpy_loop"]["us_per_step_wall"]
    result["speedup_vs_numpy_loop"] = {
        b: round(base / r["us_per_step_wall"], 2) for b, r in result["backends"].items()
    }
    if "cpp" in result["backends"] and "cython" in result["backends"]:
        result["cpp_over_cython_speedup"] = round(
            result["backends"]["cython"]["us_per_step_wall"] / result["backends"]["cpp"]["us_per_step_wall"], 2)
    result["authors_matlab_us_per_step_reported"] = 45.0
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
