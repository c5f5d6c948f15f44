"""A recording: sampled responses with their times, units and source — the one type in which recorded data
(the fly recordings the ReSU comparisons use, or a user's own, e.g. read from NWB with
:func:`b2models.nwb.read_recording`) reach the comparison functions.

Pure arrays: units are text (``'mV'``, ``'dF/F'``, ``'1'``), times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Recording:
    """Responses ``values`` sampled at ``times`` (seconds; time along the first axis of ``values``)."""

    times: np.ndarray
    values: np.ndarray
    units: str = "1"
    source: str = ""
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        t = np.asarray(self.times, dtype=float)
        v = np.asarray(self.values, dtype=float)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "values", v)
        what = self.name or self.source or "recording"
        if t.ndim != 1 or v.shape[:1] != t.shape:
            raise ValueError(f"{what}: values' first axis {v.shape} must match the times {t.shape}")
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise ValueError(f"{what}: times must increase strictly")
        if not isinstance(self.units, str):
            raise ValueError(f"{what}: units must be text, e.g. 'mV' or '1', got {self.units!r}")

    @property
    def dt(self) -> float:
        """The median sampling interval (s)."""
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else float("nan")

    def to_csv(self, path) -> None:
        """Time in the first column, one column per trace; the header names them with the units."""
        cols = self.values.reshape(len(self.times), -1)
        head = ",".join(["time_s"] + [f"{self.name or 'value'}_{k}[{self.units}]" for k in range(cols.shape[1])])
        np.savetxt(path, np.column_stack([self.times, cols]), delimiter=",", header=head, comments="")

    @classmethod
    def from_csv(cls, path, units: str | None = None, name: str = "") -> "Recording":
        """Read :meth:`to_csv`'s layout (or any CSV with time in seconds in the first column and a header)."""
        import re

        with open(path) as fh:
            header = fh.readline().strip().split(",")
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        if table.shape[1] < 2:
            raise ValueError(f"{path}: expected a time column and at least one response column")
        if units is None:
            m = re.search(r"\[(.*)\]$", header[1]) if len(header) > 1 else None
            units = m.group(1) if m else "1"
        values = table[:, 1] if table.shape[1] == 2 else table[:, 1:]
        return cls(times=table[:, 0], values=values, units=units, source=str(path), name=name)


def pearson(a, b) -> float:
    """Pearson correlation of two equally long vectors (flattened); NaN if either is constant."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"need two equal-length vectors of >= 3 values, got {a.shape} and {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a @ a) * (b @ b))
    if den == 0:
        return float("nan")
    return float(a @ b / den)


def on_recording_times(recording: Recording, model_times, model_values) -> np.ndarray:
    """A model trace (``model_values`` at ``model_times``, seconds, time first) linearly interpolated at the
    recording's sample times; recording times outside the model's range are an error, not extrapolated."""
    t = np.asarray(model_times, dtype=float)
    y = np.asarray(model_values, dtype=float)
    if t.ndim != 1 or y.shape[:1] != t.shape:
        raise ValueError(f"model values' first axis {y.shape} must match the model times {t.shape}")
    rt = recording.times
    if rt[0] < t[0] - 1e-12 or rt[-1] > t[-1] + 1e-12:
        raise ValueError(f"{recording.name or 'recording'} spans {rt[0]:g}..{rt[-1]:g} s, beyond the model's "
                         f"{t[0]:g}..{t[-1]:g} s")
    flat = y.reshape(len(t), -1)
    out = np.stack([np.interp(rt, t, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(rt),) + y.shape[1:])


def correlate(recording: Recording, model_times, model_values) -> float:
    """Pearson r between a recording and a model trace sampled at the recording's times (all columns)."""
    return pearson(recording.values, on_recording_times(recording, model_times, model_values))
