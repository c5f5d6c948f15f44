"""What a protocol is, what it receives, and the registry of protocols and models."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

#: Modules that define a module-level ``PROTOCOL``; order = order in ``b2models list``.
PROTOCOL_MODULES = [
    "b2models.protocols.spikecoding_fig2",
    "b2models.protocols.spikecoding_fig3",
    "b2models.protocols.spikecoding_speech",
    "b2models.protocols.spikecoding_fig4",
    "b2models.protocols.spikecoding_fig7",
    "b2models.protocols.spikecoding_fig8",
    "b2models.protocols.resu_ou",
    "b2models.protocols.resu_mou",
    "b2models.protocols.resu_gp",
    "b2models.protocols.resu_ganglion",
    "b2models.protocols.resu_scenes",
    "b2models.protocols.resu_t4",
    "b2models.protocols.resu_t4ab",
    "b2models.protocols.resu_compare",
    "b2models.protocols.resu_online",
    "b2models.protocols.resu_switch",
    "b2models.protocols.recollection_features",
    "b2models.protocols.recollection_naming",
    "b2models.protocols.recollection_cv",
    "b2models.protocols.recollection_fewshot",
    "b2models.protocols.recollection_fewshot_nested",
    "b2models.protocols.recollection_oneshot",
    "b2models.protocols.recollection_recall",
    "b2models.protocols.multimodal_train",
    "b2models.protocols.multimodal_analyse",
    "b2models.protocols.multimodal_toy",
]

#: ``b2models show NAME`` -> module whose upper-case string constants are equations.
MODEL_MODULES = {
    "spikecoding": "b2models.models.spikecoding",
    "spikecoding_ei": "b2models.models.spikecoding_ei",
    "spikecoding_robust": "b2models.models.spikecoding_robust",
    "resu": "b2models.models.resu",
    "resu_online": "b2models.models.resu_online",
    "sdnn": "b2models.models.sdnn",
    "recollection": "b2models.models.recollection",
    "lca": "b2models.models.lca",
}


@dataclass
class Claim:
    """A number from the paper beside the measured one, for ``b2models reproduce``."""

    key: str  # key in metrics.json
    label: str
    paper: str  # the paper's (or the authors' code's) value, as text
    target: str = ""  # what counts as reproduced, as text
    check: Callable[[Any], bool] | None = None  # measured value -> reproduced?
    fmt: str = "{:.4g}"


@dataclass
class Protocol:
    """One experiment: its name, its parameters and the function that runs it.

    ``params()`` returns the full-scale parameter dataclass and ``quick(params)`` its short version; ``run(ctx)``
    gets a :class:`Context` and returns the metrics it saved.  ``claims`` pair metrics with the paper's values
    for ``b2models reproduce``; ``data`` names the data sets a full-scale run reads; ``figures`` the figures
    it writes.  A module (or ``.py`` file) that defines ``PROTOCOL = Protocol(...)`` can be run by name, path or
    module (see :func:`resolve_protocol`)."""

    name: str
    paper: str  # short paper id, e.g. "spikecoding"
    summary: str
    params: Callable[[], Any]  # -> default parameter dataclass (full scale)
    run: Callable[["Context"], dict]
    quick: Callable[[Any], Any] = lambda p: p  # full-scale params -> --quick params
    claims: list[Claim] = field(default_factory=list)
    data: list[str] = field(default_factory=list)  # data sets used when not --quick
    backends: tuple = ("numpy", "cython", "cpp", "cuda")
    figures: list[str] = field(default_factory=list)  # names of the figures it writes


@dataclass
class Context:
    """Everything a protocol run gets: parameters, seed, backend, output writer."""

    params: Any
    seed: int
    backend: str
    quick: bool
    writer: Any  # b2models.results.RunWriter
    threads: int = 0
    resume: bool = False
    cache: Any = None  # b2models.results.StageCache
    show_progress: bool | None = None  # None: only on a terminal
    jobs: int = 1  # parallel sweep points (joblib processes), for protocols that sweep
    dask: str | None = None  # Dask scheduler address for sweeps (joblib's dask backend)

    def sweep(self, run_point, points, **kw):
        """:func:`b2models.sweep.sweep` with this run's ``jobs`` and ``dask``."""
        from b2models.sweep import sweep

        return sweep(run_point, points, jobs=self.jobs, dask_address=self.dask, **kw)

    def cached_stage(self, name: str, config: dict, compute: Callable[[], dict], what: str = "stage",
                     reuse: bool = False) -> dict:
        """Arrays of an expensive stage: reused from the stage cache when its config matches, with ``--resume``
        or always when ``reuse`` (a stage that later protocols take as their input), else computed by
        ``compute()`` and stored (when a cache is set)."""
        if (reuse or self.resume) and self.cache is not None:
            arrays = self.cache.load(name, config)
            if arrays is not None:
                how = "" if reuse else "--resume: "
                self.log(f"{how}reusing the cached {what} {self.cache.path(name, config)}")
                return arrays
        arrays = compute()
        if self.cache is not None:
            self.log(f"{what} cached in {self.cache.save(name, config, arrays)}")
        return arrays

    def log(self, msg: str):
        self.writer.log(msg)

    def progress(self, iterable=None, **kw):
        from tqdm.auto import tqdm

        kw.setdefault("disable", None if self.show_progress is None else not self.show_progress)
        kw.setdefault("leave", False)
        kw.setdefault("dynamic_ncols", True)
        return tqdm(iterable, **kw)


#: Entry-point group through which a separately installed package adds protocols: each entry point names a
#: module that defines ``PROTOCOL`` (``my_pkg.my_protocol``) or a :class:`Protocol` object (``my_pkg:PROTOCOL``).
ENTRY_POINT_GROUP = "b2models.protocols"


class ProtocolError(ValueError):
    """A protocol name, file or module that cannot be used (one line, names it)."""


def protocol_of(obj, source: str | None = None) -> Protocol:
    """The :class:`Protocol` of a module (its ``PROTOCOL``), or ``obj`` itself if it is one."""
    if isinstance(obj, Protocol):
        return obj
    source = source or getattr(obj, "__name__", repr(obj))
    proto = getattr(obj, "PROTOCOL", None)
    if proto is None:
        raise ProtocolError(f"{source} defines no PROTOCOL (a b2models.protocol.Protocol)")
    if not isinstance(proto, Protocol):
        raise ProtocolError(f"{source}: PROTOCOL is a {type(proto).__name__}, not a b2models.protocol.Protocol")
    return proto


def _entry_point_protocols(known: dict) -> dict[str, Protocol]:
    import warnings
    from importlib.metadata import entry_points

    out = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            proto = protocol_of(ep.load(), source=f"entry point {ep.name} = {ep.value}")
        except Exception as err:  # a broken plug-in must not break the suite's own protocols
            warnings.warn(f"b2models: skipping protocol entry point {ep.name} = {ep.value}: {err}", stacklevel=2)
            continue
        if proto.name in known or proto.name in out:
            warnings.warn(f"b2models: entry point {ep.name} = {ep.value} reuses the protocol name {proto.name!r}; "
                          "skipped", stacklevel=2)
            continue
        out[proto.name] = proto
    return out


def protocols(plugins: bool = True) -> dict[str, Protocol]:
    """Every registered protocol by name: the suite's own, then those of installed packages that declare the
    entry-point group ``b2models.protocols``."""
    out = {}
    for mod in PROTOCOL_MODULES:
        p = importlib.import_module(mod).PROTOCOL
        out[p.name] = p
    if plugins:
        out.update(_entry_point_protocols(out))
    return out


def load_protocol_file(path) -> Protocol:
    """Import a Python file that defines ``PROTOCOL`` (a user's own protocol) and return its protocol."""
    import importlib.util
    import re
    import sys
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"protocol file {path} does not exist")
    if path.suffix != ".py":
        raise ProtocolError(f"protocol file {path}: expected a Python file ending in .py")
    name = "b2models_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise ProtocolError(f"protocol file {path} failed to import: {type(err).__name__}: {err}") from err
    try:  # joblib workers cannot import a file outside sys.path: send its functions by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except Exception:  # pragma: no cover - cloudpickle comes with joblib
        pass
    return protocol_of(module, source=str(path))


def resolve_protocol(spec) -> Protocol:
    """A protocol from a registered name, a path to a ``.py`` file, an importable module name, a module
    object or a :class:`Protocol`."""
    import types
    from pathlib import Path

    if isinstance(spec, Protocol):
        return spec
    if isinstance(spec, types.ModuleType):
        return protocol_of(spec)
    if isinstance(spec, Path):
        return load_protocol_file(spec)
    if not isinstance(spec, str):
        raise ProtocolError(f"protocol {spec!r}: expected a name, a .py file, a module or a Protocol")
    if spec.endswith(".py") or "/" in spec or "\\" in spec:  # a file: no need to import the registry
        return load_protocol_file(spec)
    table = protocols()
    if spec in table:
        return table[spec]
    if all(part.isidentifier() for part in spec.split(".")):
        try:
            module = importlib.import_module(spec)
        except ImportError:
            module = None
        if module is not None:
            return protocol_of(module, source=spec)
    raise ProtocolError(f"unknown protocol {spec!r}; known: {', '.join(table)} "
                        "(or give a .py file or an importable module that defines PROTOCOL)")


def model_equations(name: str) -> dict[str, str]:
    """Upper-case string constants of a model module: its equations and rule code."""
    if name not in MODEL_MODULES:
        raise KeyError(name)
    mod = importlib.import_module(MODEL_MODULES[name])
    return {
        k: v for k, v in vars(mod).items() if k.isupper() and isinstance(v, str) and not k.startswith("_")
    }


def params_with_quick(proto: Protocol, quick: bool):
    p = proto.params()
    return proto.quick(p) if quick else p


def as_dict(params) -> dict:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
