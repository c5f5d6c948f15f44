"""Where the time of one Fig 2 learning step goes in the generated cpp_standalone code (JSON on stdout).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020), PLoS Comput Biol 16(3): e1007692,
https://doi.org/10.1371/journal.pcbi.1007692.

Builds ``models.spikecoding.SpikeCodingNetwork`` (the Fig 2 network, learning on) on cpp with Brian2's
profiling switched on (``Network.run(..., profile=True)``: the generated main loop times every code object
with a clock read before and after each call), runs ``--chunks`` chunks of ``--chunk`` seconds, and reports
per code object its ns per step (from ``profiling_info.txt`` of the last run), beside the binary's network
loop time per step (``last_run_info.txt``) and the binary time per step of the same runs.  The profiled
binary is slower than the plain one (two clock reads per code object and step); the loop time less the sum
over code objects is the main loop itself (clock advance, scheduling, the timers); the binary time less the
loop time is the binary's start-up, loading of the run arguments and writing of the results.

    python benchmarks/profile_spikecoding.py [--chunk 20] [--chunks 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=float, default=20.0, help="seconds per binary run")
    ap.add_argument("--chunks", type=int, default=3, help="timed runs (after one untimed)")
    ap.add_argument("--variant", default="current", help="'current' or a variant of ab_spikecoding.py")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.chunk <= 0 or args.chunks < 1:
        ap.error("--chunk must be positive and --chunks >= 1")

    import brian2

    from b2models.backend import Session
    from b2models.data.signals import SmoothedNoise
    from b2models.models import spikecoding as sc
    from b2models.models.spikecoding import SpikeCodingParams

    switches, options = ({}, {})
    if args.variant != "current":
        from ab_spikecoding import VARIANTS

        if args.variant not in VARIANTS:
            ap.error(f"--variant: expected 'current' or one of {sorted(VARIANTS)}")
        switches, options = VARIANTS[args.variant]
    saved = {k: getattr(sc, k) for k in switches}
    for k, v in switches.items():
        setattr(sc, k, v)

    run = brian2.Network.run

    def profiled_run(self, duration, *a, **kw):
        kw["profile"] = True
        return run(self, duration, *a, **kw)

    brian2.Network.run = profiled_run
    p = SpikeCodingParams()
    steps = int(round(args.chunk / float(p.dt)))
    gen = SmoothedNoise(p.J, float(p.input_sigma / p.dt), p.input_amplitude, float(p.lambda_ * p.dt), float(p.dt),
                        seed=1)
    try:
        with Session("cpp", "profile_spikecoding", key=(steps, "profile", args.variant)) as s:
            net = sc.SpikeCodingNetwork(p, s, steps, plastic=True, seed=1, **options)
            c, x = gen.next(steps)
            net.run_chunk(c, x, learning=True, seed=0)
            binary, spikes, walls, loops = [], 0, [], []
            for k in range(args.chunks):
                c, x = gen.next(steps)
                t0 = time.perf_counter()
                res = net.run_chunk(c, x, learning=True, seed=k + 1)
                walls.append(time.perf_counter() - t0)
                binary.append(s.last_run.binary_s)
                loops.append(brian2.get_device()._last_run_time)  # the network loop inside the binary
                spikes += len(res.spike_i)
            results = next(Path(s.directory).glob("results_*/profiling_info.txt"))
            prof = {}
            for line in results.read_text().splitlines():
                name, val = line.split()
                prof[name] = float(val)
    finally:
        brian2.Network.run = run
        for k, v in saved.items():
            setattr(sc, k, v)
    per_step = {k: round(1e9 * v / steps, 1) for k, v in sorted(prof.items(), key=lambda kv: -kv[1])}
    b = sorted(binary)[len(binary) // 2]
    out = {
        "what": "Fig 2 learning step, cpp, 0 OpenMP threads, Brian2 profiling on (profile=True)",
        "variant": args.variant, "switches": switches, "options": options,
        "command": "python " + " ".join(["benchmarks/profile_spikecoding.py", *(sys.argv[1:] if argv is None
                                                                                else argv)]),
        "steps_per_run": steps, "runs_timed": args.chunks,
        "spikes_per_step": round(spikes / (steps * args.chunks), 4),
        "code_objects_per_step": len(prof),
        "ns_per_step_by_code_object_last_run": per_step,
        "ns_per_step_sum_of_code_objects": round(sum(per_step.values()), 1),
        "ns_per_step_binary_median_profiled": round(1e9 * b / steps, 1),
        "ns_per_step_wall_median_profiled": round(1e9 * sorted(walls)[len(walls) // 2] / steps, 1),
    }
    out["ns_per_step_network_loop_median_profiled"] = round(1e9 * sorted(loops)[len(loops) // 2] / steps, 1)
    out["ns_per_step_loop_outside_code_objects"] = round(out["ns_per_step_network_loop_median_profiled"]
                                                         - out["ns_per_step_sum_of_code_objects"], 1)
    out["ns_per_step_binary_outside_loop"] = round(out["ns_per_step_binary_median_profiled"]
                                                   - out["ns_per_step_network_loop_median_profiled"], 1)
    from _machine import emit_json

    return emit_json(out, args.out)


if __name__ == "__main__":
    main()
