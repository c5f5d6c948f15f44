"""Auditory front end (data/audio.py) and the speech protocol of Brendel et al. 2020 (Figs 5–6)."""

import dataclasses

import numpy as np
import pytest
from brian2 import second

from b2models.data.audio import Filterbank, erb_bandwidth, erb_rate, erb_space, harmonic_complex, read_audio
from b2models.data.registry import DataError


def test_erb_rate_matches_glasberg_moore_values():
    # E(1 kHz) = 21.4 log10(5.37) = 15.62; inverse and bandwidth at 1 kHz = 24.7 * 5.37 = 132.6 Hz
    assert erb_rate(1000.0) == pytest.approx(15.622, abs=1e-3)
    assert erb_bandwidth(1000.0) == pytest.approx(132.639, abs=1e-3)


def test_filterbank_centres_are_erb_spaced_from_fmin_to_fmax():
    fb = Filterbank(n_channels=25, f_min=100.0, f_max=7000.0)
    c = fb.centres
    assert len(c) == 25
    assert c[0] == pytest.approx(100.0) and c[-1] == pytest.approx(7000.0)
    steps = np.diff(erb_rate(c))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)
    assert steps[0] == pytest.approx((erb_rate(7000.0) - erb_rate(100.0)) / 24)
    # every centre lies inside its own band, bands tile the range without gaps
    assert np.all((fb.edges[:, 0] < c) & (c < fb.edges[:, 1]))
    np.testing.assert_allclose(fb.edges[1:, 0], fb.edges[:-1, 1])


@pytest.mark.parametrize("channel", [0, 6, 12, 18, 24])
def test_pure_tone_lands_in_its_channel(channel):
    fb = Filterbank()
    f = fb.centres[channel]
    t = np.arange(int(0.5 * fb.samplerate)) / fb.samplerate
    env = fb.envelopes(0.5 * np.sin(2 * np.pi * f * t))
    assert env.shape == (500, 25)
    steady = env[100:400].mean(axis=0)
    assert int(np.argmax(steady)) == channel, f"tone at {f:.0f} Hz peaks in channel {np.argmax(steady)}"
    assert np.all(env >= 0)


def test_harmonic_complex_excites_its_harmonics_channels():
    fb = Filterbank()
    s = harmonic_complex(0.5, 1500.0, 4)
    steady = fb.envelopes(s)[100:400].mean(axis=0)
    expected = {int(np.argmin(np.abs(fb.centres - 1500.0 * k))) for k in range(1, 5)}
    top = set(np.argsort(steady)[-4:].tolist())
    assert len(top & expected) >= 3, f"strongest channels {sorted(top)}, harmonics in {sorted(expected)}"


def test_bad_filterbank_parameters_are_refused():
    with pytest.raises(ValueError, match="Nyquist"):
        Filterbank(f_max=9000.0)
    with pytest.raises(ValueError, match="f_min"):
        erb_space(500.0, 100.0, 5)
    with pytest.raises(ValueError, match="mono"):
        Filterbank().envelopes(np.zeros((10, 2)))


def test_missing_and_corrupt_audio_files_name_the_file(tmp_path):
    missing = tmp_path / "nosuch.flac"
    with pytest.raises(DataError, match="nosuch.flac"):
        read_audio(missing)
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC" + b"\x00garbage" * 20)
    with pytest.raises(DataError, match="broken.flac"):
        read_audio(bad)


def test_command_from_signal_inverts_the_leaky_integrator():
    from b2models.data.signals import leaky_integrate
    from b2models.protocols.spikecoding_speech import command_from_signal

    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((200, 3))).cumsum(axis=0)
    c = command_from_signal(x, 0.01, 0.001)
    np.testing.assert_allclose(leaky_integrate(c, 0.01, 0.001, x0=x[0]), x, rtol=1e-10, atol=1e-10)


def test_ei_balance_measure():
    from b2models.protocols.spikecoding_speech import ei_balance

    rng = np.random.default_rng(1)
    F = rng.standard_normal((3, 2))
    x = rng.standard_normal((500, 3))
    Om = np.array([[0.0, 1.0], [1.0, 0.0]])
    # lateral input that exactly cancels the feedforward drive: r_k = −(F·x)_{other neuron}
    E = x @ F
    r = -E[:, ::-1]
    corr, unexplained = ei_balance(F, Om, x, r)
    assert corr == pytest.approx(1.0) and unexplained == pytest.approx(0.0, abs=1e-12)
    corr, _ = ei_balance(F, Om, x, rng.standard_normal((500, 2)))
    assert abs(corr) < 0.2


@pytest.mark.standalone
def test_short_speech_learning_lowers_coding_error(tmp_path, have_compiler):
    """~25 s of real speech (2 recordings), the quick network (100 neurons), one pass on cpp: held-out error
    falls by more than half."""
    from b2models.protocol import Context
    from b2models.protocols.spikecoding_speech import PROTOCOL, quick_params
    from b2models.results import RunWriter

    p = dataclasses.replace(quick_params(PROTOCOL.params()), n_learn_files=2, n_fit_files=1, n_test_files=1,
                            epochs=1.0, n_snapshots=2, eval_duration=8 * second, retrain_duration=5 * second)
    with RunWriter(PROTOCOL.name, out_root=tmp_path) as w:
        m = PROTOCOL.run(Context(params=p, seed=2, backend="cpp", quick=True, writer=w, show_progress=False))
    assert m["final_test_error"] < 0.5 * m["initial_test_error"], (
        f"held-out coding error went from {m['initial_test_error']:.3f} to {m['final_test_error']:.3f}: check that "
        "the feedforward rule receives P x and the command c = dx/dt + λx"
    )
    assert m["final_train_error"] < m["initial_train_error"]
    assert sorted(f.name for f in (w.path / "figures").iterdir()) == sorted(f"{n}.png" for n in PROTOCOL.figures)


# ----------------------------------------------------------------------------- authors' time step, new sound
def test_command_held_per_sample_reaches_every_sample_exactly():
    """c held for R steps per sample: the network's step-by-step leaky integral hits x at every sample end."""
    from b2models.protocols.spikecoding_speech import command_from_samples

    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal((50, 2))).cumsum(axis=0)
    lam_dt, dt, R = 8 * 5e-5, 5e-5, 20
    c = command_from_samples(x, lam_dt, dt, R, x_prev=np.zeros(2))
    v, reached = np.zeros(2), []
    for k in range(len(x)):
        for _ in range(R):
            v = (1 - lam_dt) * v + dt * c[k]
        reached.append(v.copy())
    np.testing.assert_allclose(np.array(reached), x, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="steps"):
        command_from_samples(x, lam_dt, dt, 0)


def test_sampled_filtered_trains_equal_the_dense_filter_read_at_sample_ends():
    from b2models.analysis import coding
    from b2models.protocols.spikecoding_speech import sampled_filtered_trains

    rng = np.random.default_rng(4)
    R, K, N, lam_dt = 20, 30, 4, 10 * 5e-5
    st = np.sort(rng.choice(R * K, 40, replace=False))
    si = rng.integers(0, N, 40)
    dense = coding.filtered_spike_trains(coding.spike_counts(si, st, N, R * K), lam_dt)
    np.testing.assert_allclose(sampled_filtered_trains(si, st, N, K, lam_dt, R), dense[R - 1::R], rtol=1e-12)
    np.testing.assert_allclose(sampled_filtered_trains(si, st, N, R * K, lam_dt, 1), dense, rtol=1e-12)
    with pytest.raises(ValueError, match="out of range"):
        sampled_filtered_trains(si, st + R * K, N, K, lam_dt, R)


def test_two_channel_sound_and_mixture_drive_only_their_channels():
    from b2models.protocols.spikecoding_speech import two_channel_mixture, two_channel_sound

    x = two_channel_sound(25, (18, 20), np.array([3.0, 4.0]))
    assert x.shape == (3000, 25)
    assert np.all(x[:, [j for j in range(25) if j not in (18, 20)]] == 0)
    assert x[1500, 18] == pytest.approx(3.0, rel=1e-3) and x[1500, 20] == pytest.approx(4.0, rel=1e-3)
    assert x[:500].max() == 0 and x[-1, 18] < 0.01, "silent before the onset, decayed after the offset"
    speech = np.full((1000, 25), 2.0)
    mix = two_channel_mixture(speech, (18, 20), np.array([3.0, 4.0]))
    mid = 50 + 150  # inside the first 0.2 s block (starts at 50 ms), after the smoothed onset
    assert mix[mid, 0] == pytest.approx(0.0, abs=0.05) and mix[mid, 18] == pytest.approx(3.0, abs=0.05)
    assert np.all(mix[:50] == 2.0), "speech untouched before the first block"


def test_authors_threshold_homeostasis_step():
    from b2models.protocols.spikecoding_speech import SpeechParams, homeostatic_step

    p = SpeechParams(N=3, chunk=5 * second, threshold_homeostasis=True)
    win = int(round(float(p.homeostasis_window / p.dt)))  # 2500 steps
    # neuron 0: 30 spikes in window 1 (> 8 Hz), none in window 2; neuron 1: 5 spikes in each; neuron 2: silent
    st = np.concatenate([np.arange(30) * 10, np.arange(5) * 100, win + np.arange(5) * 100])
    si = np.concatenate([np.zeros(30, int), np.ones(10, int)])
    T = homeostatic_step(si, st, np.full(3, 0.5), p, 2 * win)
    np.testing.assert_allclose(T, [0.5 + p.eps_Omega - p.eps_Omega, 0.5, 0.5 - 2 * p.eps_Omega])


def test_speech_time_step_and_new_sound_options_are_checked():
    from brian2 import ms

    from b2models.protocols.spikecoding_speech import SpeechParams, steps_per_sample

    assert steps_per_sample(SpeechParams(dt=0.05 * ms)) == 20
    SpeechParams(dt=0.05 * ms).validate()
    SpeechParams(dt=0.1 * ms).validate()
    with pytest.raises(ValueError, match="dt must divide"):
        SpeechParams(dt=0.3 * ms).validate()
    with pytest.raises(ValueError, match="new_sound"):
        SpeechParams(new_sound="whistle").validate()
    with pytest.raises(ValueError, match="new_sound_channels"):
        SpeechParams(new_sound_channels=(18, 25)).validate()
    with pytest.raises(ValueError, match="homeostasis_window"):
        SpeechParams(threshold_homeostasis=True, chunk=10 * second, homeostasis_window=3 * second).validate()


def test_pooled_unexplained_fraction():
    from b2models.protocols.spikecoding_speech import pooled_unexplained

    E = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    assert pooled_unexplained(E, -E) == pytest.approx(0.0)
    assert pooled_unexplained(E, np.zeros_like(E)) == pytest.approx(1.0)
    # neuron 1's lateral input doubles its feedforward fluctuation: (1.25 + 4 × 0.25) / (1.25 + 0.25)
    assert pooled_unexplained(E, np.column_stack([np.zeros(4), E[:, 1]])) == pytest.approx(2.25 / 1.5)
    assert pooled_unexplained(E, -E, d=2) == pytest.approx(0.0)


def test_hold_norms_rescales_each_feedforward_vector_to_its_norm():
    from b2models.protocols.spikecoding_speech import hold_norms

    rng = np.random.default_rng(0)
    F = rng.standard_normal((5, 4))
    F[:, 2] = 0.0  # a zero column stays zero
    target = np.array([1.0, 0.5, 2.0, 3.0])
    G = hold_norms(0.3 * F, target)
    np.testing.assert_allclose(np.linalg.norm(G, axis=0), [1.0, 0.5, 0.0, 3.0])
    cos = np.sum(G * F, axis=0)[[0, 1, 3]] / (np.linalg.norm(G, axis=0) * np.linalg.norm(F, axis=0))[[0, 1, 3]]
    np.testing.assert_allclose(cos, 1.0)  # directions unchanged
