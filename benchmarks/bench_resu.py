"""Timings of the ReSU analyses (JSON on stdout): the GP analyses (resu.gp) and natural-scene filters
(resu.scenes) at full scale, and one Brian2 run of the two-layer network.

    .venv/bin/python benchmarks/bench_resu.py [--quick] [--backend numpy]

Reference (issue 7): the authors' notebooks take 18.9 CPU-minutes for the GP analyses and 4.5 for the
natural-scene filters on this machine kind.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _time_protocol(module, quick: bool, backend: str) -> dict:
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
        return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backend", default="numpy")
    args = ap.parse_args()
    from b2models.protocols import resu_gp, resu_scenes, resu_t4

    out = {"quick": args.quick, "backend": args.backend, "cores": os.cpu_count(),
           "reference_cpu_s": {"resu.gp": 18.9 * 60, "resu.scenes": 4.5 * 60}}
    for name, mod in (("resu.gp", resu_gp), ("resu.scenes", resu_scenes), ("resu.t4", resu_t4)):
        out[name] = _time_protocol(mod, args.quick, args.backend)
        ref = out["reference_cpu_s"].get(name)
        if ref:
            out[name]["speedup_vs_reference_cpu"] = ref / out[name]["cpu_s"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
