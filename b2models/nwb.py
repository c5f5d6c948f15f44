"""Export a finished run to Neurodata Without Borders (NWB 2), and read recordings back from NWB files.

Needs the optional extra ``nwb`` (``pip install 'b2models[nwb]'``: pynwb, nwbinspector).

What goes where (the recordings follow the convention of :func:`b2models.results.spike_arrays` and
:func:`b2models.results.trace_arrays` in ``arrays.npz``):

* every recorded spike train -> one row of the ``units`` table, with the columns ``population``, ``model`` and
  ``neuron_index`` (silent neurons get a row with no spikes);
* recorded state variables -> ``TimeSeries`` in the processing module ``model`` with their units;
* the stimulus -> ``TimeSeries`` in ``stimulus``;
* the run's protocol, parameters (with units), seed, backend, package versions, git revision and the model
  equations -> ``notes`` as JSON, plus ``session_id`` (the run id) and ``experiment_description``.

Open the file with ``pynwb.NWBHDF5IO(path).read()``, with any NWB viewer (e.g. NWB Widgets, neurosift), or in
MATLAB with MatNWB.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from b2models import __version__
from b2models.api import RunError, load

#: which models' equations go with the protocols of a paper
PAPER_MODELS = {
    "spikecoding": ("spikecoding", "spikecoding_ei", "spikecoding_robust"),
    "resu": ("resu", "resu_online"),
    "recollection": ("sdnn", "recollection"),
    "multimodal": ("lca",),
}


class NoRecordingsError(RunError):
    """A run whose arrays hold no spikes, traces or stimulus under the recording convention."""


def _require_pynwb():
    try:
        import pynwb  # noqa: F401
    except ImportError:
        raise RunError("NWB export needs pynwb: pip install 'b2models[nwb]'") from None


def _unit_text(unit) -> str:
    unit = str(unit)
    return "n.a." if unit in ("", "1") else unit


def _timing(t) -> dict:
    """``starting_time`` and ``rate`` for regularly sampled times (NWB's preferred form), else ``timestamps``."""
    t = np.asarray(t, dtype=float)
    if len(t) > 1:
        step = np.diff(t)
        if np.allclose(step, step[0], rtol=1e-9, atol=0) and step[0] > 0:
            return {"starting_time": float(t[0]), "rate": 1.0 / float(step[0])}
    return {"timestamps": t}


def export_run(run_dir, path, overwrite: bool = False) -> Path:
    """Write the recordings and metadata of the run in ``run_dir`` to the NWB file ``path``.

    The file appears complete or not at all (written to a temporary name, then renamed).  Raises
    :class:`NoRecordingsError` if the run recorded nothing, :class:`~b2models.api.RunError` for a directory that is
    not a finished run or an existing ``path`` without ``overwrite``."""
    _require_pynwb()
    import datetime as dt
    import uuid

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    from b2models.protocol import MODEL_MODULES, model_equations
    from b2models.results import recordings

    run = load(run_dir)
    path = Path(path)
    if path.exists() and not overwrite:
        raise RunError(f"{path} exists; choose another file or remove it first")
    rec = recordings(run.arrays)
    if not any(rec.values()):
        raise NoRecordingsError(f"{run.path}: the run recorded no spikes, traces or stimulus to export "
                                "(arrays.npz has no spikes.*, trace.* or stimulus.* entries)")
    config = run.config
    equations = {}
    for model in PAPER_MODELS.get(config.get("paper", ""), ()):
        if model in MODEL_MODULES:
            equations[model] = model_equations(model)
    start = dt.datetime.fromtimestamp((run.path / "config.json").stat().st_mtime, tz=dt.timezone.utc)
    nwb = NWBFile(
        session_description=f"b2models run of protocol {config.get('protocol', run.protocol)}",
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        session_id=run.path.name,
        experiment_description=config.get("command", ""),
        notes=json.dumps({k: config.get(k) for k in ("protocol", "paper", "seed", "backend", "quick", "threads",
                                                     "params", "versions", "git_revision", "command")}
                         | {"equations": equations}, default=str),
        subject=Subject(subject_id=f"b2models-{config.get('protocol', run.protocol)}-seed{config.get('seed')}",
                        description="a simulated network, not an animal (its 'birth' is the run's start): see notes "
                                    "for its model and parameters",
                        sex="U", date_of_birth=start),
        keywords=["b2models", "simulation", str(config.get("paper", ""))],
        source_script=f"b2models {__version__}: {config.get('command', '')}",
        source_script_file_name="b2models",
    )
    if rec["spikes"]:
        from pynwb.misc import Units

        steps = {float(s["resolution"]) for s in rec["spikes"].values() if "resolution" in s}
        nwb.units = Units(name="units", description="spike trains of the simulated populations",
                          resolution=steps.pop() if len(steps) == 1 else None)
        nwb.add_unit_column("population", "the model population the neuron belongs to")
        nwb.add_unit_column("model", "the b2models model module that simulated it")
        nwb.add_unit_column("neuron_index", "the neuron's index within its population")
        for pop, s in sorted(rec["spikes"].items()):
            i, t, n = np.asarray(s["i"]), np.asarray(s["t"], dtype=float), int(s["n"])
            order = np.argsort(i, kind="stable")
            i, t = i[order], t[order]
            bounds = np.searchsorted(i, np.arange(n + 1))
            for k in range(n):
                nwb.add_unit(spike_times=np.sort(t[bounds[k]:bounds[k + 1]]), population=pop,
                             model=str(s.get("model", "")), neuron_index=k)
    if rec["trace"]:
        module = nwb.create_processing_module("model", "state variables recorded from the simulated network")
        for name, tr in sorted(rec["trace"].items()):
            module.add(TimeSeries(name=name, data=np.asarray(tr["data"]), **_timing(tr["t"]),
                                  unit=_unit_text(tr.get("unit", "")),
                                  description=str(tr.get("description", "")) or f"recorded {name}"))
    for name, st in sorted(rec["stimulus"].items()):
        nwb.add_stimulus(TimeSeries(name=name, data=np.asarray(st["data"]), **_timing(st["t"]),
                                    unit=_unit_text(st.get("unit", "")),
                                    description=str(st.get("description", "")) or f"stimulus {name}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial.nwb")
    os.close(fd)
    try:
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_recording(path, name: str):
    """A :class:`~b2models.analysis.recording.Recording` from the ``TimeSeries`` called ``name`` in an NWB file
    (searched in acquisition, stimulus and every processing module)."""
    _require_pynwb()
    from pynwb import NWBHDF5IO

    from b2models.analysis.recording import Recording

    path = Path(path)
    if not path.is_file():
        raise RunError(f"NWB file {path} does not exist")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        places = [nwb.acquisition, nwb.stimulus] + [m.data_interfaces for m in nwb.processing.values()]
        for place in places:
            if name in place:
                ts = place[name]
                data = np.asarray(ts.data[:])
                times = np.asarray(ts.timestamps[:]) if ts.timestamps is not None else (
                    (ts.starting_time or 0.0) + np.arange(len(data)) / ts.rate)
                unit = "1" if ts.unit == "n.a." else ts.unit
                return Recording(times=times, values=data * ts.conversion, units=unit,
                                 source=f"{path}:{name}", name=name)
        found = sorted({k for place in places for k in place})
    raise RunError(f"{path}: no TimeSeries named {name!r}; found: {', '.join(found) or 'none'}")
