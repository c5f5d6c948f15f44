"""Back-to-back timing of variants of the Fig 2 learning network on cpp (JSON on stdout and ``--out``).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020), PLoS Comput Biol 16(3): e1007692,
https://doi.org/10.1371/journal.pcbi.1007692.

A variant sets the build switch ``ONE_SPIKE_ARBITER`` of ``models.spikecoding`` and options of
``SpikeCodingNetwork`` (``cache_inputs``).  (``results/spikecoding_fig2_variants.json`` also holds a "clock"
variant measured when the session's seed holder still sat on Brian2's default clock; the session now puts it
on the network's finest clock, so that variant no longer exists.)  Each round
builds every variant in turn (the compiled binary is reused after the first round) and times ``--chunks``
chunks of ``--chunk`` seconds of learning after one untimed chunk; the variants alternate within a round so
that a change of the machine's load hits all of them alike.  Reported per variant: the median over rounds
of the per-round wall, binary and network-loop (inside the binary) µs per step and of the binary's CPU time
per step (user + system time of the child process: less sensitive than wall time to other jobs on a shared
machine), the spike count (which must not depend on the variant: the same seed and input), and the load
average at start and end.

    python benchmarks/ab_spikecoding.py [--variants pairwise arbiter] [--rounds 3] [--chunks 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

#: variant name -> (module switches, network options)
VARIANTS = {
    "pairwise": ({"ONE_SPIKE_ARBITER": False}, {}),
    "pairwise+cache": ({"ONE_SPIKE_ARBITER": False}, {"cache_inputs": True}),
    "arbiter": ({"ONE_SPIKE_ARBITER": True}, {}),
}


def time_variant(name, p, steps, chunks, seed=1):
    import brian2

    from b2models.backend import Session
    from b2models.data.signals import SmoothedNoise
    from b2models.models import spikecoding as sc

    switches, options = VARIANTS[name]
    saved = {k: getattr(sc, k) for k in switches}
    for k, v in switches.items():
        setattr(sc, k, v)
    try:
        gen = SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt),
                            float(p.dt), seed=seed)
        with Session("cpp", "ab_spikecoding", key=(steps, name)) as s:
            net = sc.SpikeCodingNetwork(p, s, steps, plastic=True, seed=seed, **options)
            c, x = gen.next(steps)
            net.run_chunk(c, x, learning=True, seed=0)
            wall = binary = cpu = loop = 0.0
            spikes = 0
            for k in range(chunks):
                c, x = gen.next(steps)
                t0, c0 = time.perf_counter(), _child_cpu_s()
                res = net.run_chunk(c, x, learning=True, seed=k + 1)
                wall += time.perf_counter() - t0
                cpu += _child_cpu_s() - c0
                binary += s.last_run.binary_s
                loop += brian2.get_device()._last_run_time  # the network loop inside the binary
                spikes += len(res.spike_i)
    finally:
        for k, v in saved.items():
            setattr(sc, k, v)
    n = steps * chunks
    return {"us_per_step_wall": 1e6 * wall / n, "us_per_step_binary": 1e6 * binary / n,
            "us_per_step_binary_cpu": 1e6 * cpu / n, "us_per_step_loop": 1e6 * loop / n, "spikes": spikes}


def _child_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes (the binary runs as one)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["pairwise", "arbiter"], choices=sorted(VARIANTS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=5)
    ap.add_argument("--chunk", type=float, default=20.0, help="seconds per binary run")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.chunks < 1 or args.chunk <= 0:
        ap.error("--rounds and --chunks must be >= 1, --chunk positive")

    import numpy as np

    from b2models.models.spikecoding import SpikeCodingParams

    p = SpikeCodingParams()
    steps = int(round(args.chunk / float(p.dt)))
    out = {"command": "python " + " ".join(["benchmarks/ab_spikecoding.py", *(sys.argv[1:] if argv is None else argv)]),
           "load_average_start": [round(x, 2) for x in os.getloadavg()], "rounds": [], "variants": {}}
    for r in range(args.rounds):
        row = {}
        for name in args.variants:
            print(f"round {r}: {name}", file=sys.stderr, flush=True)
            row[name] = time_variant(name, p, steps, args.chunks)
        out["rounds"].append(row)
    for name in args.variants:
        rs = [row[name] for row in out["rounds"]]
        out["variants"][name] = {
            "switches": VARIANTS[name][0], "options": VARIANTS[name][1],
            "us_per_step_wall_median": round(float(np.median([x["us_per_step_wall"] for x in rs])), 3),
            "us_per_step_binary_median": round(float(np.median([x["us_per_step_binary"] for x in rs])), 3),
            "us_per_step_binary_cpu_median": round(float(np.median([x["us_per_step_binary_cpu"] for x in rs])), 3),
            "us_per_step_loop_median": round(float(np.median([x["us_per_step_loop"] for x in rs])), 3),
            "spikes_per_round": sorted({x["spikes"] for x in rs}),
        }
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    from _machine import emit_json

    return emit_json(out, args.out)


if __name__ == "__main__":
    main()
