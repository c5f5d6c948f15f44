"""Parameter parsing with units, JSON form, atomic result directories, stage cache."""

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from brian2 import Hz, Quantity, ms, mV, second

from b2models.params import ParameterError, apply_overrides, jsonable, parse_assignments, parse_value
from b2models.results import RunWriter, StageCache, atomic_write


@dataclass
class P:
    tau: Quantity = field(default_factory=lambda: 20 * ms)
    rate: Quantity = field(default_factory=lambda: 5 * Hz)
    gain: float = 1.5
    n: int = 3
    flag: bool = False
    name: str = "a"

    def validate(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


def test_parse_value_units_and_arithmetic():
    assert parse_value("20*ms") == 20 * ms
    assert parse_value("1/(50*ms)") == 20 * Hz
    assert parse_value("2e-3") == pytest.approx(0.002)
    assert parse_value("sqrt(4)*mV") == 2 * mV


def test_apply_overrides_converts_and_checks():
    p = apply_overrides(P(), parse_assignments(["tau=0.03*second", "rate=7/second", "gain=2", "n=4",
                                                 "flag=yes", "name=b"]))
    assert p.tau == 30 * ms and p.rate == 7 * Hz and p.gain == 2.0 and p.n == 4 and p.flag is True
    assert p.name == "b"
    assert P().tau == 20 * ms, "the defaults must not change"
    with pytest.raises(ParameterError, match="wrong units, tau expects s"):
        apply_overrides(P(), {"tau": "3*mV"})
    with pytest.raises(ParameterError, match="unknown parameter; valid names: flag, gain, n, name, rate, tau"):
        apply_overrides(P(), {"taus": "3*ms"})
    with pytest.raises(ParameterError, match="n must be >= 1"):
        apply_overrides(P(), {"n": "0"})
    with pytest.raises(ParameterError, match="wrong units, gain expects 1"):
        apply_overrides(P(), {"gain": "2*ms"})


@dataclass
class T:
    sizes: tuple = (128, 64)
    taus: tuple = field(default_factory=lambda: (10 * ms, 20 * ms))


def test_tuple_parameters_from_text():
    assert apply_overrides(T(), {"sizes": "256,32,8"}).sizes == (256, 32, 8)
    t = apply_overrides(T(), {"sizes": "(16)", "taus": "(5*ms, 1*second)"})
    assert t.sizes == (16,) and isinstance(t.sizes[0], int)
    assert t.taus == (5 * ms, 1 * second)
    with pytest.raises(ParameterError, match=r"item 1 \('2.5'\).*expected an integer"):
        apply_overrides(T(), {"sizes": "4,2.5"})
    with pytest.raises(ParameterError, match="item 0.*wrong units"):
        apply_overrides(T(), {"taus": "5*mV"})
    with pytest.raises(ParameterError, match="expected comma-separated values, e.g. 128,64"):
        apply_overrides(T(), {"sizes": " ( ) "})


def test_jsonable_keeps_units():
    d = jsonable(P())
    assert d["tau"]["unit"] == "s" and d["tau"]["value"] == pytest.approx(0.02)
    assert d["rate"]["unit"] == "Hz" or d["rate"]["unit"] == "s^-1"
    assert d["n"] == 3 and d["flag"] is False
    json.dumps(d)
    assert jsonable(np.float64(2.0)) == 2.0 and jsonable(np.arange(2)) == [0, 1]
    assert jsonable(3 * second)["text"] == "3. s"


def test_run_writer_publishes_only_complete_runs(tmp_path):
    with RunWriter("proto", out_root=tmp_path, run_id="r1") as w:
        w.save_config({"a": 1})
        w.save_metrics({"x": 1.0})
        w.save_arrays(v=np.arange(3))
        assert not w.path.exists(), "the final directory appears only at the end"
    assert (tmp_path / "proto" / "r1" / "metrics.json").exists()
    assert json.loads((w.path / "config.json").read_text()) == {"a": 1}
    with pytest.raises(RuntimeError):
        with RunWriter("proto", out_root=tmp_path, run_id="r2") as w2:
            w2.save_metrics({"x": 2})
            raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "proto").iterdir()) == ["r1"]
    with RunWriter("proto", out_root=tmp_path, run_id="r1") as w3:
        pass
    assert w3.path.name == "r1-2", "an existing run is never overwritten"


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    atomic_write(target, "old")

    import os

    def broken_replace(a, b):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"], "no temporary file left behind"


def test_stage_cache_roundtrip_and_corruption(tmp_path):
    cache = StageCache(tmp_path)
    cfg = {"a": 1, "tau": 20 * ms}
    assert cache.load("w", cfg) is None
    cache.save("w", cfg, {"W": np.ones((2, 2))})
    np.testing.assert_array_equal(cache.load("w", cfg)["W"], np.ones((2, 2)))
    assert cache.load("w", {"a": 2, "tau": 20 * ms}) is None
    cache.path("w", cfg).write_bytes(b"garbage")
    assert cache.load("w", cfg) is None
