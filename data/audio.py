"""Auditory-style front end: sound → band-pass channels → envelopes at the network's time step.

Used for the speech experiments of Brendel et al. (2020), https://doi.org/10.1371/journal.pcbi.1007692
(Figs 5–6), whose network codes a 25-channel spectrogram-like representation of speech.  The
authors' spectrogram (``speech.mat``) is not public; this module computes a comparable one from
real recordings with a standard filterbank:

* centre frequencies equally spaced on the ERB-rate scale of Glasberg & Moore (1990),
  ``E(f) = 21.4 log10(1 + 0.00437 f)`` (https://doi.org/10.1016/0378-5955(90)90170-T), from
  ``f_min`` to ``f_max`` (defaults 100 Hz – 7 kHz);
* one Butterworth band-pass per channel (``order`` 2 → 4th-order band-pass, second-order
  sections), with band edges half-way between neighbouring centres on the ERB-rate scale;
* envelope: full-wave rectification, polyphase resampling to ``out_rate`` (default 1 kHz,
  the network's 1 ms step; the resampler's FIR is the anti-aliasing filter), then a 4th-order
  Butterworth low-pass at ``envelope_cutoff`` (default 30 Hz, zero phase);
* compression ``envelope ** compression`` (default 0.3, a loudness-like power law).

Unreadable or missing audio files raise :class:`data.registry.DataError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from .registry import DataError


def erb_rate(f):
    """ERB-rate (ERB number) of frequency ``f`` in Hz (Glasberg & Moore 1990)."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f, dtype=float))


def inverse_erb_rate(e):
    """Frequency in Hz of ERB number ``e``."""
    return (10.0 ** (np.asarray(e, dtype=float) / 21.4) - 1.0) / 0.00437


def erb_bandwidth(f):
    """Equivalent rectangular bandwidth (Hz) at ``f`` Hz: 24.7 (4.37 f/kHz + 1)."""
    return 24.7 * (0.00437 * np.asarray(f, dtype=float) + 1.0)


def erb_space(f_min: float, f_max: float, n: int) -> np.ndarray:
    """``n`` centre frequencies from ``f_min`` to ``f_max`` (both included), equally spaced in ERB-rate."""
    if n < 1:
        raise ValueError(f"n={n}: need at least one channel")
    if not 0 < f_min < f_max:
        raise ValueError(f"need 0 < f_min < f_max (got f_min={f_min}, f_max={f_max})")
    if n == 1:
        return np.array([float(f_min)])
    return inverse_erb_rate(np.linspace(erb_rate(f_min), erb_rate(f_max), n))


@dataclass
class Filterbank:
    """ERB-spaced Butterworth band-pass filterbank with envelope extraction (see module docstring)."""

    n_channels: int = 25
    f_min: float = 100.0  # Hz, centre of the lowest channel
    f_max: float = 7000.0  # Hz, centre of the highest channel
    samplerate: int = 16000  # Hz, of the sound
    order: int = 2  # Butterworth order of each band-pass (the band-pass has twice this order)
    out_rate: int = 1000  # Hz, envelope sampling rate (1 / network time step)
    envelope_cutoff: float = 30.0  # Hz, envelope low-pass
    compression: float = 0.3  # envelope ** compression

    def __post_init__(self):
        if self.n_channels < 1:
            raise ValueError(f"n_channels={self.n_channels} must be >= 1")
        if self.f_max >= self.samplerate / 2:
            raise ValueError(f"f_max={self.f_max} Hz must be below the Nyquist frequency {self.samplerate / 2} Hz")
        if not 0 < self.envelope_cutoff < self.out_rate / 2:
            raise ValueError(f"envelope_cutoff={self.envelope_cutoff} must be in (0, out_rate/2={self.out_rate / 2})")
        if self.out_rate > self.samplerate or self.out_rate < 1:
            raise ValueError(f"out_rate={self.out_rate} must be in [1, samplerate={self.samplerate}]")
        if not 0 < self.compression <= 1:
            raise ValueError(f"compression={self.compression} must be in (0, 1]")
        self.centres = erb_space(self.f_min, self.f_max, self.n_channels)
        self.edges = self._band_edges()
        from scipy.signal import butter

        nyq = self.samplerate / 2
        self._sos = [butter(self.order, [lo / nyq, hi / nyq], btype="bandpass", output="sos")
                     for lo, hi in self.edges]
        self._lp = butter(4, self.envelope_cutoff / (self.out_rate / 2), btype="low", output="sos")

    def _band_edges(self) -> np.ndarray:
        e = erb_rate(self.centres)
        if self.n_channels > 1:
            half = np.diff(e) / 2
            lo = e - np.concatenate([[half[0]], half])
            hi = e + np.concatenate([half, [half[-1]]])
        else:
            lo, hi = e - 0.5, e + 0.5
        edges = np.stack([inverse_erb_rate(lo), inverse_erb_rate(hi)], axis=1)
        edges[:, 0] = np.maximum(edges[:, 0], 1.0)
        edges[:, 1] = np.minimum(edges[:, 1], 0.999 * self.samplerate / 2)
        return edges

    def bands(self, sound) -> np.ndarray:
        """Band-passed sound, (n_samples, n_channels) at the sound's rate."""
        from scipy.signal import sosfilt

        sound = self._check(sound)
        return np.stack([sosfilt(sos, sound) for sos in self._sos], axis=1)

    def envelopes(self, sound) -> np.ndarray:
        """Compressed envelopes, (n_frames, n_channels) at ``out_rate``; never negative."""
        from scipy.signal import resample_poly, sosfilt, sosfiltfilt

        sound = self._check(sound)
        g = gcd(int(self.out_rate), int(self.samplerate))
        up, down = int(self.out_rate) // g, int(self.samplerate) // g
        out = []
        for sos in self._sos:
            env = resample_poly(np.abs(sosfilt(sos, sound)), up, down)
            if len(env) > 3 * 13:  # sosfiltfilt's padding needs a few samples
                env = sosfiltfilt(self._lp, env)
            out.append(np.maximum(env, 0.0) ** self.compression)
        return np.stack(out, axis=1)

    def _check(self, sound) -> np.ndarray:
        sound = np.asarray(sound, dtype=float)
        if sound.ndim != 1:
            raise ValueError(f"sound must be 1-D (mono), got shape {sound.shape}")
        if not np.all(np.isfinite(sound)):
            raise ValueError("sound contains NaN or infinite samples")
        return sound


def read_audio(path, samplerate: int | None = None) -> np.ndarray:
    """Mono float64 samples of an audio file; :class:`DataError` naming the file if it is missing,
    unreadable, empty or at another sampling rate than ``samplerate``."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file {path} not found; run `b2models data fetch librispeech`")
    try:
        audio, sr = soundfile.read(path, dtype="float64", always_2d=False)
    except Exception as exc:  # soundfile raises LibsndfileError (RuntimeError) and others for bad files
        raise DataError(f"cannot read audio file {path} ({type(exc).__name__}: {exc}); "
                        "fetch it again with `b2models data fetch librispeech`") from exc
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise DataError(f"audio file {path} holds no samples")
    if samplerate is not None and sr != samplerate:
        raise DataError(f"audio file {path} is sampled at {sr} Hz, expected {samplerate} Hz")
    return audio


def harmonic_complex(duration_s: float, f0: float, n_harmonics: int, samplerate: int = 16000,
                     ramp_s: float = 0.02) -> np.ndarray:
    """A harmonic tone complex (equal-amplitude harmonics 1..n of ``f0``, cosine phase) with raised-cosine
    on/off ramps; peak amplitude 1."""
    if duration_s <= 0 or f0 <= 0 or n_harmonics < 1:
        raise ValueError("duration_s, f0 and n_harmonics must be positive")
    if n_harmonics * f0 >= samplerate / 2:
        raise ValueError(f"highest harmonic {n_harmonics * f0} Hz is not below Nyquist ({samplerate / 2} Hz)")
    t = np.arange(int(round(duration_s * samplerate))) / samplerate
    s = sum(np.cos(2 * np.pi * k * f0 * t) for k in range(1, n_harmonics + 1))
    n_ramp = min(int(ramp_s * samplerate), len(t) // 2)
    if n_ramp > 0:
        ramp = 0.5 * (1 - np.cos(np.pi * np.arange(n_ramp) / n_ramp))
        s[:n_ramp] *= ramp
        s[len(s) - n_ramp:] *= ramp[::-1]
    return s / np.max(np.abs(s))
