"""NWB export of a run's recordings (round trip through pynwb, nwbinspector) and recordings read back in."""

import json

import numpy as np
import pytest

import b2models
from b2models.analysis.recording import Recording
from b2models.cli import main

pynwb = pytest.importorskip("pynwb", reason="the nwb extra (pynwb) is not installed")

RECORDING_PROTOCOL = '''
from dataclasses import dataclass

import numpy as np

from b2models.protocol import Protocol
from b2models.results import spike_arrays, trace_arrays


@dataclass
class P:
    n: int = 5
    record: bool = True


def run(ctx):
    rng = np.random.default_rng(ctx.seed)
    arrays = {"other": np.arange(3)}
    if ctx.params.record:
        i = rng.integers(0, ctx.params.n - 1, 40)  # the last neuron stays silent
        t = np.round(rng.uniform(0, 1, 40), 4)
        arrays.update(spike_arrays("E", i, t, ctx.params.n, model="b2models.models.spikecoding", resolution=1e-4))
        arrays.update(spike_arrays("I", [0, 1, 1], [0.1, 0.2, 0.3], 2, model="b2models.models.spikecoding_ei",
                                   resolution=1e-4))
        tt = np.arange(100) * 1e-3
        arrays.update(trace_arrays("v", tt, rng.normal(size=(100, 3)) * 1e-3, "V", "membrane potential"))
        arrays.update(trace_arrays("signal", tt, np.sin(tt), "1", "the input", kind="stimulus"))
    ctx.writer.save_arrays(**arrays)
    ctx.writer.save_metrics({"ok": 1})
    return {"ok": 1}


PROTOCOL = Protocol(name="user.recording", paper="spikecoding", summary="records spikes and traces", params=P,
                    run=run)
'''


@pytest.fixture
def recorded_run(tmp_path):
    proto = tmp_path / "rec_protocol.py"
    proto.write_text(RECORDING_PROTOCOL)
    return proto, b2models.run(proto, backend="numpy", out=tmp_path / "results", seed=3)


def test_round_trip_spikes_traces_stimulus_and_metadata(recorded_run, tmp_path):
    _, run = recorded_run
    path = run.to_nwb(tmp_path / "run.nwb")
    a = run.arrays
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        assert len(units) == 5 + 2, "one row per neuron, silent ones included"
        for pop in ("E", "I"):
            i, t, n = a[f"spikes.{pop}.i"], a[f"spikes.{pop}.t"], int(a[f"spikes.{pop}.n"])
            rows = units[units.population == pop]
            assert sorted(rows.neuron_index) == list(range(n))
            for _, row in rows.iterrows():
                np.testing.assert_array_equal(np.sort(row.spike_times), np.sort(t[i == row.neuron_index]))
        assert len(units[(units.population == "E") & (units.neuron_index == 4)].spike_times.iloc[0]) == 0
        assert set(units.model) == {"b2models.models.spikecoding", "b2models.models.spikecoding_ei"}
        assert nwb.units.resolution == pytest.approx(1e-4)
        v = nwb.processing["model"]["v"]
        np.testing.assert_array_equal(v.data[:], a["trace.v.data"])
        times = v.starting_time + np.arange(len(v.data)) / v.rate if v.timestamps is None else v.timestamps[:]
        np.testing.assert_allclose(times, a["trace.v.t"], rtol=0, atol=1e-12)
        assert v.unit == "V"
        s = nwb.stimulus["signal"]
        np.testing.assert_array_equal(s.data[:], a["stimulus.signal.data"])
        notes = json.loads(nwb.notes)
        assert notes["seed"] == 3 and notes["backend"] == "numpy" and notes["params"]["n"] == 5
        assert "spikecoding" in notes["equations"] and notes["versions"]["b2models"] == b2models.__version__
        assert nwb.session_id == run.path.name


def test_nwbinspector_reports_no_error(recorded_run, tmp_path):
    nwbinspector = pytest.importorskip("nwbinspector", reason="nwbinspector is not installed")
    from nwbinspector import Importance

    _, run = recorded_run
    path = run.to_nwb(tmp_path / "run.nwb")
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(path)))
    bad = [m for m in messages if m.importance in (Importance.CRITICAL, Importance.ERROR)]
    assert not bad, "\n".join(f"{m.importance.name}: {m.check_function_name}: {m.message}" for m in bad)


def test_cli_export_and_its_errors(recorded_run, tmp_path, capsys):
    proto, run = recorded_run
    target = tmp_path / "cli.nwb"
    assert main(["export", str(run.path), "--nwb", str(target)]) == 0 and target.exists()
    capsys.readouterr()
    assert main(["export", str(run.path), "--nwb", str(target)]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
    silent = b2models.run(proto, backend="numpy", out=tmp_path / "results", record=False)
    assert main(["export", str(silent.path), "--nwb", str(tmp_path / "none.nwb")]) == 2
    err = capsys.readouterr().err
    assert "recorded no spikes, traces or stimulus" in err and err.count("\n") == 1
    assert not (tmp_path / "none.nwb").exists() and not list(tmp_path.glob(".none*"))
    assert main(["export", str(tmp_path / "nothing"), "--nwb", str(tmp_path / "x.nwb")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_recordings_come_back_in_through_the_recording_type(recorded_run, tmp_path):
    from b2models.nwb import read_recording

    _, run = recorded_run
    path = run.to_nwb(tmp_path / "run.nwb")
    rec = read_recording(path, "v")
    np.testing.assert_array_equal(rec.values, run.arrays["trace.v.data"])
    assert rec.units == "V" and rec.source.endswith(":v") and rec.dt == pytest.approx(1e-3)
    assert read_recording(path, "signal").units == "1"
    with pytest.raises(b2models.RunError, match="no TimeSeries named 'w'; found: signal, v"):
        read_recording(path, "w")
    rec.to_csv(tmp_path / "v.csv")
    back = Recording.from_csv(tmp_path / "v.csv")
    np.testing.assert_allclose(back.values, rec.values) and np.testing.assert_allclose(back.times, rec.times)
    assert back.units == "V"


def test_recording_refuses_mismatched_input():
    with pytest.raises(ValueError, match="first axis"):
        Recording(times=np.arange(3.0), values=np.zeros(4))
    with pytest.raises(ValueError, match="increase strictly"):
        Recording(times=np.array([0.0, 0.0, 1.0]), values=np.zeros(3))


def test_fig2_keeps_its_recordings_under_the_convention():
    from b2models.protocols.spikecoding_fig2 import Fig2Params, recorded
    from b2models.results import recordings

    p = Fig2Params()
    T = 50
    a = {"example_x": np.zeros((T, p.J))}
    for key in ("before", "after"):
        a[f"example_xhat_{key}"] = np.ones((T, p.J))
        a[f"example_spike_i_{key}"] = np.array([0, p.N - 1])
        a[f"example_spike_step_{key}"] = np.array([3, 10])
    rec = recordings(recorded(p, a))
    assert set(rec["spikes"]) == {"coding_before", "coding_after"}
    np.testing.assert_allclose(rec["spikes"]["coding_after"]["t"], np.array([3, 10]) * float(p.dt))
    assert rec["spikes"]["coding_after"]["n"] == p.N and set(rec["trace"]) == {"readout_before", "readout_after"}
    assert rec["stimulus"]["signal"]["data"].shape == (T, p.J)


def test_comparison_functions_take_recordings():
    from b2models.analysis.recording import correlate, on_recording_times, pearson

    t = np.linspace(0, 1, 101)
    rec = Recording(times=t[::10], values=np.sin(2 * np.pi * t[::10]), units="mV", name="cell")
    model_t = np.linspace(0, 1, 1001)
    assert correlate(rec, model_t, 3 * np.sin(2 * np.pi * model_t) + 1) == pytest.approx(1.0, abs=1e-4)
    assert correlate(rec, model_t, -np.sin(2 * np.pi * model_t)) == pytest.approx(-1.0, abs=1e-4)
    np.testing.assert_allclose(on_recording_times(rec, model_t, np.stack([model_t, 2 * model_t], 1))[:, 1],
                               2 * rec.times)
    with pytest.raises(ValueError, match="beyond the model's"):
        on_recording_times(rec, model_t[:500], model_t[:500])
    assert np.isnan(pearson(np.ones(5), np.arange(5)))


def test_fly_recordings_come_as_recordings():
    from b2models.data import DataError, fly_l1l2_recordings

    try:
        recs = fly_l1l2_recordings()
    except DataError as err:
        pytest.skip(str(err))
    l1 = recs["L1_highLum"]
    assert l1.values.shape == (63, 2) and l1.units == "dF/F" and l1.meta["columns"] == ["dark flash", "light flash"]
    assert l1.dt == pytest.approx(8.33e-3, rel=0.01)


def test_fig4_and_speech_keep_their_recordings_under_the_convention():
    from b2models.protocols import spikecoding_fig4 as fig4
    from b2models.protocols import spikecoding_speech as speech
    from b2models.results import recordings

    p = fig4.Fig4Params()
    T = 40
    ev = {"x": np.zeros((T, p.J)), "xhat_E": np.ones((T, p.J)), "xhat_I": np.ones((T, p.J)),
          "spikes_E": (np.array([0, 2]), np.array([1, 5])), "spikes_I": (np.array([1]), np.array([7]))}
    rec = recordings(fig4.recorded(p, {"before": ev, "after": ev}))
    assert set(rec["spikes"]) == {"E_before", "I_before", "E_after", "I_after"}
    assert rec["spikes"]["I_after"]["n"] == p.N_I
    np.testing.assert_allclose(rec["spikes"]["E_before"]["t"], np.array([1, 5]) * float(p.dt))
    ps = speech.SpeechParams()
    a = {"test_x": np.zeros((T, 3)), "test_spike_i_before": np.array([3]), "test_spike_step_before": np.array([9]),
         "test_xhat_before": np.zeros((T, 3)), "tone_spike_i_after": np.array([1]),
         "tone_spike_step_after": np.array([2])}
    rec = recordings(speech.recorded(ps, a))
    assert set(rec["spikes"]) == {"test_before", "tone_after"} and set(rec["stimulus"]) == {"speech_test"}
