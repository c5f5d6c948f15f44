"""The Python API: the command line's ``run``, ``list`` and ``show``, as functions.

    >>> import b2models
    >>> from brian2 import ms
    >>> run = b2models.run("spikecoding.fig2", backend="numpy", quick=True, seed=3, input_sigma=20 * ms)
    >>> run.metrics["final_error"], run.path
    >>> same = b2models.load(run.path)

Parameters are Python values with Brian2 units and are checked by the same rules as ``--set`` (the same
dimensions as the default, integers where integers are expected); a string is parsed as ``--set`` parses
it.  Bad input raises one :class:`ValueError` subclass whose message names the input
(:class:`~b2models.params.ParameterError`, :class:`~b2models.protocol.ProtocolError`,
:class:`~b2models.backend.BackendError`), exactly the line the command line prints.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Run", "RunError", "Terminated", "run", "load", "protocols", "models", "equations", "default_params",
           "execute"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, batch schedulers, a cluster's worker shutdown), handled like Ctrl-C: the exception
    unwinds the run, which stops a running simulation binary (``subprocess.call`` kills its child on any
    exception) and removes the partial results directory; finished checkpoints and cached stages stay."""


def _raise_terminated(signum, frame):
    raise Terminated()


class sigterm_as_interrupt:
    """Within the block (main thread only), SIGTERM raises :class:`Terminated`; the previous handler comes back
    afterwards unless ``restore=False``."""

    def __init__(self, restore: bool = True):
        self.restore = restore
        self.previous = None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc):
        import signal

        if self.restore and self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


class RunError(ValueError):
    """A results directory that is missing or is not a finished b2models run."""


@dataclass(frozen=True)
class Run:
    """A finished run in ``results/<protocol>/<run-id>/``: its files, read when first asked for."""

    path: Path

    def _json(self, name: str) -> dict:
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path}: no {name} (not a finished b2models run)") from None
        except json.JSONDecodeError as err:
            raise RunError(f"{self.path / name}: corrupt JSON ({err})") from None

    @property
    def config(self) -> dict:
        """Every parameter (with units), seed, backend, versions and git revision of the run."""
        return self._json("config.json")

    @property
    def metrics(self) -> dict:
        """The numbers the protocol measured."""
        return self._json("metrics.json")

    @property
    def arrays(self) -> dict:
        """The arrays behind the figures (``arrays.npz``), as a dict of NumPy arrays; empty if none."""
        import numpy as np

        p = self.path / "arrays.npz"
        if not p.exists():
            return {}
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    @property
    def figures(self) -> dict[str, Path]:
        """Figure name -> PNG path."""
        return {p.stem: p for p in sorted((self.path / "figures").glob("*.png"))}

    @property
    def log(self) -> str:
        """The run's log (``log.txt``), empty if none."""
        p = self.path / "log.txt"
        return p.read_text() if p.exists() else ""

    @property
    def protocol(self) -> str:
        """The protocol's name."""
        return self.config.get("protocol", self.path.parent.name)

    def to_nwb(self, path, **kw) -> Path:
        """Write the run's recordings to an NWB file (needs the ``nwb`` extra); see :mod:`b2models.nwb`."""
        from b2models.nwb import export_run

        return export_run(self.path, path, **kw)

    def __repr__(self):
        return f"Run({str(self.path)!r})"


def load(path) -> Run:
    """Open a finished run directory (as written by ``b2models run`` or :func:`run`)."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory")
    if not (path / "config.json").exists() or not (path / "metrics.json").exists():
        if path.name.endswith(".partial"):
            raise RunError(f"{path}: an unfinished run (a .partial directory), not a result")
        raise RunError(f"{path}: not a finished b2models run (needs config.json and metrics.json)")
    return Run(path.resolve())


def protocols() -> dict:
    """Every registered protocol (the suite's and those of installed plug-in packages), by name."""
    from b2models.protocol import protocols as _protocols

    return _protocols()


def models() -> dict[str, str]:
    """Model name (as in ``b2models show NAME``) -> the module that builds it."""
    from b2models.protocol import MODEL_MODULES

    return dict(MODEL_MODULES)


def equations(model: str) -> dict[str, str]:
    """A model's equations and synapse code: its module's upper-case string constants, by name."""
    from b2models.params import ParameterError
    from b2models.protocol import MODEL_MODULES, model_equations

    try:
        return model_equations(model)
    except KeyError:
        raise ParameterError(f"unknown model {model!r}; known: {', '.join(MODEL_MODULES)}") from None


def default_params(protocol, quick: bool = False):
    """The parameter dataclass a protocol runs with (full scale, or its ``--quick`` version)."""
    from b2models.protocol import params_with_quick, resolve_protocol

    return params_with_quick(resolve_protocol(protocol), quick)


def check_options(proto, backend: str, threads: int = 0, jobs: int = 1, seed: int = 1, cli: bool = False):
    """The run options' checks, shared by the command line and :func:`run` (ParameterError naming the option
    as the caller wrote it: ``--threads -1`` on the command line, ``threads=-1`` in Python)."""
    import numbers

    from b2models.backend import BACKENDS
    from b2models.params import ParameterError

    def opt(name, value):
        return f"--{name} {value}" if cli else f"{name}={value!r}"

    if backend not in BACKENDS:
        raise ParameterError(f"{opt('backend', backend)}: expected one of {', '.join(BACKENDS)}")
    if backend not in proto.backends:
        raise ParameterError(f"{opt('backend', backend)}: protocol {proto.name} supports {', '.join(proto.backends)}")
    for name, value, low in (("threads", threads, 0), ("jobs", jobs, 1), ("seed", seed, None)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ParameterError(f"{opt(name, value)}: expected an integer")
        if low is not None and value < low:
            raise ParameterError(f"{opt(name, value)}: must be >= {low}")


def execute(proto, params, *, seed: int, backend: str, quick: bool, out, threads: int = 0, resume: bool = False,
            jobs: int = 1, dask: str | None = None, progress: bool | None = None, echo=None,
            command: str = "") -> tuple[Path, dict]:
    """Run ``proto`` with the checked ``params``; the finished run's path and metrics.

    The results directory appears complete or not at all (see :mod:`b2models.results`)."""
    from b2models import __version__
    from b2models.backend import describe
    from b2models.protocol import Context
    from b2models.results import RunWriter, StageCache, git_revision

    out = Path(out)
    writer = RunWriter(proto.name, out_root=out, run_id=time.strftime("%Y%m%d-%H%M%S") + f"-s{seed}", echo=echo)
    with writer:
        writer.save_config({
            "protocol": proto.name, "paper": proto.paper, "command": command, "seed": seed,
            "backend": backend, "quick": quick, "threads": threads,
            "params": params, "versions": {"b2models": __version__, **describe()},
            "git_revision": git_revision(),
        })
        ctx = Context(params=params, seed=seed, backend=backend, quick=quick, writer=writer,
                      threads=threads, resume=resume, cache=StageCache(out / "cache"),
                      show_progress=progress, jobs=jobs, dask=dask)
        t0 = time.perf_counter()
        metrics = proto.run(ctx)
        writer.save_metrics({"wall_s": time.perf_counter() - t0})
    return writer.path, metrics


def run(name_or_protocol, *, backend: str = "cpp", seed: int = 1, quick: bool = False, out=None,
        threads: int = 0, resume: bool = False, jobs: int = 1, dask: str | None = None,
        progress: bool | None = None, verbose: bool = False, **params: Any) -> Run:
    """Run a protocol, as ``b2models run`` does, and return the finished :class:`Run`.

    Parameters
    ----------
    name_or_protocol
        A registered name (``"spikecoding.fig2"``), a path to a ``.py`` file that defines ``PROTOCOL``, an
        importable module name or a module object that defines it, or a :class:`~b2models.protocol.Protocol`.
    backend
        ``numpy``, ``cython``, ``cpp`` (cpp_standalone) or ``cuda`` (brian2cuda).
    seed
        Random seed.
    quick
        The protocol's short version, on generated or bundled data.
    out
        Results root (default ``./results``); the run goes to ``out/<protocol>/<run-id>/``.
    threads, resume, jobs, dask
        As the command-line options ``--threads``, ``--resume``, ``--jobs`` and ``--dask``.
    progress
        Progress bars: None (only on a terminal), True or False.
    verbose
        Echo the run's log lines on stderr.
    **params
        Parameter overrides with Brian2 units (``input_sigma=20*ms``), checked as ``--set`` checks them.
    """
    from b2models.params import apply_values
    from b2models.protocol import params_with_quick, resolve_protocol

    proto = resolve_protocol(name_or_protocol)
    check_options(proto, backend, threads, jobs, seed)
    values = apply_values(params_with_quick(proto, quick), params)
    if dask:
        from b2models.params import ParameterError
        from b2models.sweep import SweepError, parallel_backend

        try:
            parallel_backend(dask)
        except SweepError as err:
            raise ParameterError(str(err)) from None
    words = [repr(proto.name), f"backend={backend!r}", f"seed={seed}"] + (["quick=True"] if quick else [])
    words += [f"{k}={v!r}" for k, v in params.items()]
    with sigterm_as_interrupt():
        path, _ = execute(proto, values, seed=seed, backend=backend, quick=quick,
                          out=Path("results") if out is None else Path(out), threads=threads, resume=resume,
                          jobs=jobs, dask=dask, progress=progress,
                          echo=(lambda m: print(m, file=sys.stderr)) if verbose else None,
                          command="b2models.run(" + ", ".join(words) + ")")
    return load(path)
