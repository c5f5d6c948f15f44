"""Result directories that are complete or absent, never half-written.

A run writes into ``results/<protocol>/.<run-id>.partial/`` and the directory is
renamed to ``results/<protocol>/<run-id>/`` only when the protocol finished.  An
exception or Ctrl-C removes the partial directory.  Single files written outside a
run directory (caches, reports) go through :func:`atomic_write`.

Layout of a finished run::

    config.json    every parameter with units, seed, backend, package versions, git revision
    metrics.json   the numbers the protocol measured
    arrays.npz     the arrays behind the figures
    figures/*.png
    log.txt
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def atomic_write(path, data: bytes | str):
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


def json_dumps(obj) -> str:
    from b2models.params import jsonable

    return json.dumps(jsonable(obj), indent=2, sort_keys=False, default=str) + "\n"


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return (rev or "unknown") + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def config_hash(config) -> str:
    return hashlib.sha1(json_dumps(config).encode()).hexdigest()[:16]


class RunWriter:
    """Collects one protocol run's outputs and publishes them atomically."""

    def __init__(self, protocol: str, out_root="results", run_id: str | None = None, echo=None):
        self.protocol = protocol
        base = Path(out_root) / protocol.replace("/", "_")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_id = run_id or stamp
        final = base / run_id
        n = 1
        while final.exists():
            n += 1
            final = base / f"{run_id}-{n}"
        self.final = final
        self.partial = base / f".{final.name}.partial"
        self.echo = echo
        self._log = []
        self.metrics: dict = {}

    # -- context ------------------------------------------------------------------------
    def __enter__(self):
        if self.partial.exists():
            shutil.rmtree(self.partial)
        (self.partial / "figures").mkdir(parents=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._flush_log()
            os.replace(self.partial, self.final)
        else:
            shutil.rmtree(self.partial, ignore_errors=True)
        return False

    @property
    def path(self) -> Path:
        """Where the finished run will be."""
        return self.final

    # -- content --------------------------------------------------------------------------
    def log(self, message: str):
        line = f"[{_dt.datetime.now().strftime('%H:%M:%S')}] {message}"
        self._log.append(line)
        if self.echo:
            self.echo(message)

    def _flush_log(self):
        atomic_write(self.partial / "log.txt", "\n".join(self._log) + "\n")

    def save_config(self, config: dict):
        atomic_write(self.partial / "config.json", json_dumps(config))

    def save_metrics(self, metrics: dict):
        self.metrics.update(metrics)
        atomic_write(self.partial / "metrics.json", json_dumps(self.metrics))

    def save_arrays(self, **arrays):
        atomic_write(self.partial / "arrays.npz", npz_bytes(arrays))

    def save_figure(self, fig, name: str) -> Path:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        rel = Path("figures") / f"{name}.png"
        atomic_write(self.partial / rel, buf.getvalue())
        return self.final / rel


# --------------------------------------------------------------------------------------
# recordings in arrays.npz: one naming convention for every protocol (read by b2models.nwb)
# --------------------------------------------------------------------------------------
#: ``spikes.<population>.i`` (neuron index, int), ``spikes.<population>.t`` (spike time in seconds),
#: ``spikes.<population>.n`` (population size, so silent neurons are kept), ``spikes.<population>.model``,
#: optionally ``spikes.<population>.resolution`` (s, the time step);
#: ``trace.<name>.t`` (s), ``trace.<name>.data`` (time first), ``trace.<name>.unit``, ``trace.<name>.description``;
#: the same under ``stimulus.<name>.*`` for what drove the network.
RECORDING_PREFIXES = ("spikes.", "trace.", "stimulus.")


def _check_name(kind: str, name: str):
    if not name or "." in name or not all(ch.isalnum() or ch in "_-" for ch in name):
        raise ValueError(f"{kind} name {name!r}: use letters, digits, '_' or '-' (no dots)")


def spike_arrays(population: str, i, t, n: int, model: str = "", resolution: float | None = None) -> dict:
    """Spike trains of one population under the recording convention (``t`` in seconds; ``resolution``, the
    smallest possible difference of two spike times in seconds, is the simulation's time step)."""
    _check_name("population", population)
    i = np.asarray(i, dtype=np.int64)
    t = np.asarray(t, dtype=float)
    if i.shape != t.shape or i.ndim != 1:
        raise ValueError(f"spikes of {population}: i and t must be 1-D and equally long, got {i.shape}, {t.shape}")
    if len(i) and (i.min() < 0 or i.max() >= n):
        raise ValueError(f"spikes of {population}: neuron indices outside 0..{n - 1}")
    p = f"spikes.{population}."
    out = {p + "i": i, p + "t": t, p + "n": np.int64(n), p + "model": np.str_(model)}
    if resolution is not None:
        if not resolution > 0:
            raise ValueError(f"spikes of {population}: resolution must be a positive time in seconds")
        out[p + "resolution"] = np.float64(resolution)
    return out


def trace_arrays(name: str, t, data, unit: str, description: str = "", kind: str = "trace") -> dict:
    """A recorded state variable (``kind='trace'``) or the stimulus (``kind='stimulus'``): time in seconds
    first, ``data`` with time along its first axis, ``unit`` as text (``'mV'``, ``'1'``)."""
    _check_name(kind, name)
    if kind not in ("trace", "stimulus"):
        raise ValueError(f"kind {kind!r}: expected 'trace' or 'stimulus'")
    t = np.asarray(t, dtype=float)
    data = np.asarray(data)
    if t.ndim != 1 or data.shape[:1] != t.shape:
        raise ValueError(f"{kind} {name}: data's first axis ({data.shape}) must match the times ({t.shape})")
    p = f"{kind}.{name}."
    return {p + "t": t, p + "data": data, p + "unit": np.str_(unit), p + "description": np.str_(description)}


def recordings(arrays: dict) -> dict:
    """The recordings in a run's arrays: ``{"spikes": {pop: {...}}, "trace": {...}, "stimulus": {...}}``."""
    out = {"spikes": {}, "trace": {}, "stimulus": {}}
    for key, value in arrays.items():
        if not key.startswith(RECORDING_PREFIXES):
            continue
        kind, name, field = key.split(".", 2)
        out[kind].setdefault(name, {})[field] = value.item() if np.ndim(value) == 0 else value
    return out


class StageCache:
    """Cache for expensive stages (learned weights, features), keyed by a config hash."""

    def __init__(self, root="results/cache"):
        self.root = Path(root)

    def path(self, stage: str, config) -> Path:
        return self.root / stage / f"{config_hash(config)}.npz"

    def load(self, stage: str, config):
        p = self.path(stage, config)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # corrupt cache entry: ignore it, it will be rewritten
            return None

    def save(self, stage: str, config, arrays: dict) -> Path:
        p = self.path(stage, config)
        atomic_write(p, npz_bytes(arrays))
        atomic_write(p.with_suffix(".json"), json_dumps(config))
        return p
