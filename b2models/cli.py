"""The ``b2models`` command line.

    b2models list
    b2models run PROTOCOL [--backend cpp] [--set NAME=VALUE ...] [--seed N] [--quick] [--out DIR]
    b2models reproduce PAPER|PROTOCOL|--all [--quick] ...
    b2models show MODEL
    b2models export RUN_DIR --nwb FILE
    b2models data list | fetch NAME

Bad names and values give one line on stderr naming them, and exit code 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
EXIT_NO_GPU = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it


class UsageError(Exception):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        raise UsageError(message)


def _err(msg: str):
    print(f"b2models: error: {msg}", file=sys.stderr)


def _add_run_options(p):
    from b2models.backend import BACKENDS

    p.add_argument("--backend", default="cpp", choices=BACKENDS,
                   help="simulation target (default cpp = cpp_standalone)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter, with Brian2 units: --set tau=20*ms (repeatable)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--quick", action="store_true", help="short version on generated or bundled data")
    p.add_argument("--out", default="results", help="results root directory (default ./results)")
    p.add_argument("--threads", type=int, default=0, help="OpenMP threads for cpp (default 0: none)")
    p.add_argument("--resume", action="store_true", help="reuse cached expensive stages")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser():
    parser = _Parser(prog="b2models", description="Brian2 models of four papers: run, reproduce, inspect.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list protocols and models")
    p_run = sub.add_parser("run", help="run one protocol")
    p_run.add_argument("protocol")
    _add_run_options(p_run)
    p_run.add_argument("--jobs", type=int, default=1,
                       help="parallel sweep points of a sweeping protocol (joblib processes; default 1)")
    p_run.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="run the sweep points on a Dask cluster (joblib's dask backend; needs dask.distributed)")
    p_rep = sub.add_parser("reproduce", help="run the registered protocols and write a report")
    p_rep.add_argument("paper", nargs="?", default=None, help="a paper (all its protocols) or one protocol")
    p_rep.add_argument("--all", action="store_true",
                       help="every protocol of every paper (instead of PAPER; days of compute at full scale)")
    _add_run_options(p_rep)
    p_rep.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N",
                       help="repeat every protocol with these seeds; the report gives mean ± s.d.")
    p_rep.add_argument("--jobs", type=int, default=1, help="parallel runs (joblib processes; default 1)")
    p_rep.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="run the repeats on a Dask cluster (joblib's dask backend; needs dask.distributed)")
    p_exp = sub.add_parser("export", help="export a finished run's recordings (NWB)")
    p_exp.add_argument("run_dir", help="a finished run, results/<protocol>/<run-id>")
    p_exp.add_argument("--nwb", required=True, metavar="FILE", help="the NWB file to write")
    p_exp.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p_show = sub.add_parser("show", help="print a model's equations and synapse code")
    p_show.add_argument("model")
    p_data = sub.add_parser("data", help="data sets: list or fetch")
    dsub = p_data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    dsub.add_parser("list", help="which data sets are present")
    p_fetch = dsub.add_parser("fetch", help="download a data set from its original location")
    p_fetch.add_argument("name")
    p_fetch.add_argument("--dest", default=None, help="destination (default ./data/local/<folder>)")
    p_fetch.add_argument("--known-hash", default=None, metavar="ALG:HEX",
                         help="the archive's hash (sha256:HEX or md5:HEX) where the registry has none (lfw)")
    p_fetch.add_argument("--no-verify", action="store_true",
                         help="skip the hash checks (prints the archive's SHA-256 so that it can be pinned)")
    return parser


# ---------------------------------------------------------------------------------------
def cmd_list(args):
    from b2models.protocol import MODEL_MODULES, protocols

    print("protocols:")
    for name, p in protocols().items():
        print(f"  {name:24s} {p.summary}")
    print("models (b2models show NAME):")
    for name, mod in MODEL_MODULES.items():
        print(f"  {name:24s} {mod}")
    return 0


def cmd_show(args):
    from b2models.protocol import MODEL_MODULES, model_equations

    try:
        eqs = model_equations(args.model)
    except KeyError:
        raise UsageError(f"unknown model {args.model!r}; known: {', '.join(MODEL_MODULES)}") from None
    for name, text in eqs.items():
        print(f"# {name}")
        print(text.strip("\n"))
        print()
    return 0


def cmd_export(args):
    from b2models.nwb import export_run

    path = export_run(args.run_dir, args.nwb, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def cmd_data(args):
    from b2models import data

    if args.data_command == "list":
        for row in data.status():
            mark = "present" if row["present"] else "missing"
            print(f"  {row['name']:26s} {mark:8s} {row['n_files']:6d} files  {row['path']}")
            print(f"  {'':26s} {row['description']}")
        return 0
    path = data.fetch(args.name, dest=args.dest, known_hash=args.known_hash, verify=not args.no_verify)
    print(f"fetched {args.name} into {path}")
    return 0


def _prepare(args, proto):
    from b2models.api import check_options
    from b2models.params import apply_overrides, parse_assignments
    from b2models.protocol import params_with_quick

    check_options(proto, args.backend, args.threads, getattr(args, "jobs", 1), args.seed, cli=True)
    params = params_with_quick(proto, args.quick)
    return apply_overrides(params, parse_assignments(args.sets))


def _run_one(args, proto, params, echo=True, sweep_jobs=1, sweep_dask=None):
    from b2models.api import execute

    command = "b2models run " + " ".join([args.protocol if getattr(args, "protocol", None) else proto.name]
                                         + _option_words(args))
    path, metrics = execute(proto, params, seed=args.seed, backend=args.backend, quick=args.quick,
                            out=Path(args.out), threads=args.threads, resume=args.resume, jobs=sweep_jobs,
                            dask=sweep_dask, progress=False if args.no_progress else None,
                            echo=(lambda m: print(m, file=sys.stderr)) if echo else None, command=command)
    return path, metrics, command


def _option_words(args):
    words = [f"--backend {args.backend}", f"--seed {args.seed}"]
    if args.quick:
        words.append("--quick")
    words += [f"--set {s}" for s in args.sets]
    return words


def cmd_run(args):
    from b2models.protocol import resolve_protocol

    proto = resolve_protocol(args.protocol)
    params = _prepare(args, proto)
    if args.dask:
        _parallel_backend(args)  # an unreachable scheduler is reported before anything is written
    path, metrics, _ = _run_one(args, proto, params, sweep_jobs=args.jobs, sweep_dask=args.dask)
    for c in proto.claims:
        if c.key in metrics and metrics[c.key] is not None:
            print(f"  {c.label}: {c.fmt.format(metrics[c.key])}  (paper: {c.paper})")
    print(f"results: {path}")
    return 0


def _run_seed(args, proto_name, params, seed):
    """One protocol run with one seed (also in a joblib worker process)."""
    import copy

    from b2models.protocol import protocols

    a = copy.copy(args)
    a.seed = seed
    path, metrics, command = _run_one(a, protocols()[proto_name], params, echo=False)
    return str(path), metrics, command


def _format(fmt: str, v: float) -> str:
    """``fmt`` applied to ``v``; an integer format ("{:d}") gets a whole number, or 3 significant digits for a
    mean over seeds that is not one."""
    try:
        return fmt.format(v)
    except ValueError:
        return fmt.format(int(v)) if float(v).is_integer() else f"{v:.3g}"


def _summary(values, fmt):
    import numpy as np

    vals = np.array([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return None, "—"
    if len(vals) == 1:
        return float(vals[0]), _format(fmt, vals[0])
    return float(vals.mean()), f"{_format(fmt, vals.mean())} ± {_format(fmt, vals.std(ddof=1))} (n={len(vals)})"


def _parallel_backend(args):
    """joblib's local processes, or its dask backend on the cluster at --dask ADDRESS."""
    from b2models.sweep import SweepError, parallel_backend

    try:
        return parallel_backend(args.dask)
    except SweepError as err:
        raise UsageError(str(err)) from None


def cmd_reproduce(args):
    from joblib import Parallel, delayed

    from b2models.protocol import protocols
    from b2models.results import RunWriter, atomic_write, json_dumps

    table = protocols()
    papers = sorted({p.paper for p in table.values()})
    if args.paper is not None and args.paper not in papers and args.paper not in table:
        raise UsageError(f"unknown paper or protocol {args.paper!r}; papers: {', '.join(papers)}")
    if args.paper is None and not args.all:
        raise UsageError(f"reproduce: name a paper ({', '.join(papers)}) or a protocol, or give --all to run every "
                         "protocol of every paper")
    if args.paper is not None and args.all:
        raise UsageError(f"reproduce: give either {args.paper!r} or --all, not both")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be >= 1")
    seeds = args.seeds or [args.seed]
    chosen = [p for p in table.values() if args.paper in (None, p.paper, p.name)]
    prepared = [(p, _prepare(args, p)) for p in chosen]  # all bad input is caught before any run
    lines = ["# b2models reproduction report", "",
             f"Backend `{args.backend}`, seeds {', '.join(map(str, seeds))}, "
             f"{'quick' if args.quick else 'full-scale'} runs.", ""]
    report = RunWriter("reproduce", out_root=Path(args.out), run_id=time.strftime("%Y%m%d-%H%M%S"))
    summary = {}
    with report:
        for proto, params in prepared:
            print(f"{proto.name}: {len(seeds)} run(s) ...", file=sys.stderr)
            with _parallel_backend(args):
                runs = Parallel(n_jobs=min(args.jobs, len(seeds)) if not args.dask else -1)(
                    delayed(_run_seed)(args, proto.name, params, s) for s in seeds
                )
            command = runs[0][2].replace(f"--seed {seeds[0]}", "--seed N" if len(seeds) > 1 else f"--seed {seeds[0]}")
            lines += [f"## {proto.name}", "", proto.summary, "", f"Command: `{command}`"
                      + (f" for N in {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""), "",
                      "Results: " + ", ".join(f"`{r[0]}`" for r in runs), "",
                      "| quantity | paper | target | measured | reached |", "|---|---|---|---|---|"]
            summary[proto.name] = {"runs": [r[0] for r in runs], "metrics": [r[1] for r in runs]}
            for c in proto.claims:
                mean, text = _summary([r[1].get(c.key) for r in runs], c.fmt)
                reached = "—" if (c.check is None or mean is None) else ("yes" if c.check(mean) else "no")
                lines.append(f"| {c.label} | {c.paper} | {c.target} | {text} | {reached} |")
            lines.append("")
            for fig in proto.figures:
                src = Path(runs[0][0]) / "figures" / f"{fig}.png"
                if src.exists():
                    dst = report.partial / "figures" / f"{proto.name}_{fig}.png"
                    shutil.copyfile(src, dst)
                    lines += [f"![{proto.name} {fig} (seed {seeds[0]})](figures/{dst.name})", ""]
        atomic_write(report.partial / "REPORT.md", "\n".join(lines) + "\n")
        atomic_write(report.partial / "metrics.json", json_dumps(summary))
    print(f"report: {report.path / 'REPORT.md'}")
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "reproduce": cmd_reproduce, "show": cmd_show, "data": cmd_data,
            "export": cmd_export}


def main(argv=None) -> int:
    from b2models.api import RunError
    from b2models.backend import BackendError, NoGPUError
    from b2models.params import ParameterError
    from b2models.protocol import ProtocolError
    from b2models.sweep import SweepError

    try:
        from b2models import data as _data

        data_error = _data.DataError
    except Exception:  # pragma: no cover
        data_error = ()
    from b2models.api import Terminated, sigterm_as_interrupt

    parser = build_parser()
    sigterm_as_interrupt(restore=False).__enter__()  # for the whole command
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as err:
        _err(str(err))
        return EXIT_USAGE
    except (ParameterError, ProtocolError, RunError) as err:
        _err(str(err))
        return EXIT_USAGE
    except SweepError as err:
        _err(str(err))
        return 1
    except NoGPUError as err:
        _err(str(err))
        return EXIT_NO_GPU
    except BackendError as err:
        _err(str(err))
        return EXIT_USAGE
    except data_error as err:
        _err(str(err))
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except Terminated:
        _err("terminated by SIGTERM; no partial results were kept (finished checkpoints and cached stages stay)")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        _err("interrupted; no partial results were kept")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
