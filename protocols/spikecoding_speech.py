"""Protocol ``spikecoding.speech``: a network learns to code real speech (Brendel et al. 2020, Figs 5–6).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

Input: LibriSpeech recordings (Panayotov et al. 2015, https://doi.org/10.1109/ICASSP.2015.7178964;
samples listed in ``../shared/data/SOURCES.md``) through the 25-channel ERB-spaced Butterworth
filterbank of :mod:`data.audio` (100 Hz – 7 kHz, envelopes low-passed at 30 Hz, power-law
compressed, sampled every 1 ms).  The envelopes, scaled by one global gain so that the RMS of |x|
is ``signal_rms``, are the signal x.  The network's step ``dt`` must divide 1 ms (1, 0.1 or the
authors' 0.05 ms): every envelope sample is held for 1 ms / dt steps with the command
c_k = λ(x_k − A x_{k−1})/(1 − A), A = (1 − λdt)^(1 ms/dt), so that the network's leaky integral of c
passes through every envelope sample exactly (between samples x rises like a leaky integrator, close
to the authors' linear interpolation of their 200 Hz spectrogram).  Filtered spike trains are read
at the end of every 1 ms sample (exact, :func:`sampled_filtered_trains`), so coding errors are
computed on the same 1 kHz grid at every dt.  100 neurons learn with the recurrent rule (Eq 6) and
the feedforward rule for correlated inputs (presynaptic term P x, see :mod:`models.spikecoding`;
P from the learning speech, shrunk towards its mean diagonal by ``shrinkage``).  ``ff_rule=authors_online``
replaces that feedforward rule by the authors' online form (:mod:`models.spikecoding`): the presynaptic
term is the input current c/λ low-passed at 0.5 ms, decorrelated by a running (5 s) estimate of its
covariance; its scale s = tr C_u / J, the running mean and the running average U = C_u F₀ start at their
values over the learning speech (the authors warm them up with 10 s of frozen learning); the running
averages go on through the whole learning and retraining (one continuous run, so the authors' 0.25 s
wait at the start of each 2.5 s segment has nothing to wait for).

Recordings: learning uses ``train-clean-100`` (one file per speaker; the last
``n_fit_files`` files are kept out of learning and serve only to fit the linear decoder);
held-out speech is ``test-other`` (10 other speakers, first ``n_test_files`` files).  Coding error
Σvar(x − x̂)/Σvar(x) with the decoder fitted on the fit files is reported for a piece of the
learning speech ("train") and for the held-out speakers, with the mean rate, before and during
learning; the drift is the held-out error at the end over its lowest snapshot.

Held feedforward norms (``hold_ff_norm=true``; a diagnostic, off by default): after every chunk of the learning
pass each neuron's feedforward vector F_i is rescaled to its norm at the start of learning, so Eq 7 can turn F_i
but not shrink it.  It tests whether the drift of the held-out error follows the shrinking ‖F_i‖ against the fixed
thresholds.

Threshold homeostasis (``threshold_homeostasis=true``; off by default, fixed thresholds as in the
model of the paper's equations; the authors' speech code adapts them): as in the authors' code, after every 2.5 s window
a neuron's threshold rises by ε_Ω if it fired more than 8 Hz (20 spikes) and falls by ε_Ω if it fired
less than 0.4 Hz (no spike) in that window (their step equals their recurrent learning rate); here
the net change of a chunk's windows is applied after the chunk.

New sound (Figs 5 D–F, 6 iii).  ``new_sound=two_channels`` (default) is built as the authors built
theirs, directly in channel space: energy in two channels only (the authors' channels 19 and 21 of
25; the suite uses the same positions, 0-based 18 and 20 (3.1 and 4.1 kHz), because both layouts
are 25 channels ordered by frequency and the authors chose theirs by position), each at
``new_sound_level`` × the channel's 99th percentile over the learning speech, every other channel
(including the one between them) silent, on for 2 s between 0.5 s of silence with onsets smoothed
twice by the authors' kernel (exp(−t/5 ms) * exp(−t/15 ms)).  Retraining, as in the authors' code,
is on speech in which a 0.2 s block of the new sound (all other channels silent) replaces the
speech every 0.5 s, for ``retrain_duration``; the decoder is refitted on the same mixture.
``new_sound=tone_complex`` keeps the earlier sound: a 3 + 6 kHz harmonic complex sent through the
filterbank, retrained with 0.3 s bursts added to the speech every 1 s.  The speech-trained network
(and its speech decoder) codes the new sound before retraining, the retrained one after.

Excitation-inhibition balance per neuron during the new sound, two ways.  Unclamped (all neurons
firing): E_i = F_i·x against the lateral input R_i = Σ_{k≠i} Ω_ik r_k; reported are the mean
correlation of E_i with −R_i and the fraction var(V_i)/var(E_i) of the feedforward fluctuations
left in V_i = E_i + Σ_k Ω_ik r_k (all recurrent input, reset included; 0: perfectly balanced).
Clamped, Fig 6 Aiii (before retraining) and Biii (after), as the authors measure it
(``clampall.m``): each neuron in turn is kept from firing (threshold 10³) while the network codes
the sound, and its E_i and I_i = Σ_{k≠i} Ω_ik r_k are recorded; reported are the mean corr(E_i, −I_i)
and the mean var(E_i + I_i)/var(E_i), over the ``n_clamped`` neurons the sound drives most
(largest var(F_i·x); all 100 by default, as the authors).

Feedforward weights and decoders: for each neuron the peak channel of F_i; "inhibitory flanks"
counts neurons whose F_i is negative somewhere within 2–4 channels of the peak on both sides where
such channels exist; widths are the number of channels above half the peak value.

Deviations from the paper: LibriSpeech samples instead of the authors' (unpublished) speech set,
a standard ERB filterbank instead of their spectrogram; dt = 1 ms by default (authors: 0.05 ms,
``--set dt=0.05*ms``), λ = 10 Hz (authors: 8 Hz, ``--set lambda_=8*Hz``); the membrane noise is
set per step (``noise_per_step``), so at a finer dt the same value means more noise per unit time
(scale it by √(dt/1 ms) to keep it); learning is far shorter (one pass over ~20 min of speech
instead of hours).  Learning length and rates were chosen from measurements at dt = 1 ms: with 4× the
default rates (ε_F = 1e-3, ε_Ω = 1e-2) and two passes, the held-out error reached 0.025 after 90 s
of learning and then rose again to 0.098 at 2,340 s while the rate fell from 6.5 to 2.5 Hz; the
default (one pass at ε_F = 2.5e-4, ε_Ω = 2.5e-3) drifts much less.

Figures: ``speech5A_coding`` (x, x̂ and spikes for held-out speech before/after learning),
``speech5B_weights`` (F, decoders, example profiles), ``speech_learning`` (error and rate over
learning, train vs held-out), ``speech5D_new_sound`` (the new sound: x, x̂, spikes, E/I currents
before and after retraining), ``speech6_clamped_currents`` (Fig 6 Aiii/Biii: currents of the clamped
neurons, mean positive and negative parts, before and after retraining).

``--quick`` uses 8 learning files, 2 fit files and 2 held-out files (about 2 min of real speech)
and shorter learning, 20 clamped neurons.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
from brian2 import Hz, Quantity, second

from b2models.analysis import coding
from b2models.backend import Session
from b2models.data.audio import Filterbank, harmonic_complex, read_audio
from b2models.data.loaders import librispeech_files
from b2models.models.spikecoding import (
    AUTHORS_FF_TAU,
    FF_RULES,
    SpikeCodingNetwork,
    SpikeCodingParams,
    authors_ff_initial_state,
    decorrelated_hebbian_signal,
    hebbian_precision,
)
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol
from b2models.protocols.spikecoding_fig2 import RUN_ARG_FIELDS, snapshot_chunks

SAMPLERATE = 16000
ENVELOPE_DT = 1e-3  # s: the filterbank's envelopes are sampled at 1 kHz; the network's dt must divide this step
NEW_SOUNDS = ("two_channels", "tone_complex")
CLAMPED_THRESHOLD = 1e3  # a clamped neuron's threshold: it never fires, its currents are recorded (Fig 6 iii)


@dataclass
class SpeechParams(SpikeCodingParams):
    N: int = 100
    J: int = 25
    lambda_: Quantity = field(default_factory=lambda: 10 * Hz)
    init: str = "authors_code"
    alpha: float = 0.03  # feedforward gain: 0.18 × 5/30 keeps |F| as in Fig 2 for the larger signal
    eps_F: float = 2.5e-4
    eps_Omega: float = 2.5e-3
    signal_rms: float = 30.0  # RMS of |x| over the learning speech (sets the rate: ≈ λ|x|/|D| spikes/s)
    shrinkage: float = 0.1  # of the second-moment matrix for P
    n_learn_files: int = 0  # train-clean-100 files to learn from (0: all but the fit files)
    n_fit_files: int = 5  # train-clean-100 files (the last ones) used only to fit the decoder
    n_test_files: int = 20  # test-other files (held-out speakers)
    epochs: float = 1.0  # passes over the learning speech
    chunk: Quantity = field(default_factory=lambda: 10 * second)
    n_snapshots: int = 6
    eval_duration: Quantity = field(default_factory=lambda: 60 * second)  # per evaluation set (at most)
    discard: Quantity = field(default_factory=lambda: 0.3 * second)
    new_sound: str = "two_channels"  # 'two_channels' (the authors' construction) or 'tone_complex'
    new_sound_channels: tuple = (18, 20)  # filterbank channels (0-based) of the two-channel sound
    new_sound_level: float = 1.0  # two-channel sound: × the 99th percentile of the learning speech in each channel
    tone_f0: float = 3000.0  # Hz (tone_complex)
    tone_harmonics: int = 2  # 3 and 6 kHz (tone_complex)
    tone_level: float = 1.0  # tone RMS / speech RMS (waveforms; tone_complex)
    retrain_duration: Quantity = field(default_factory=lambda: 300 * second)
    threshold_homeostasis: bool = False  # the authors' speech code: thresholds keep each rate in a band
    homeostasis_window: Quantity = field(default_factory=lambda: 2.5 * second)  # rate measured per window
    homeostasis_low_hz: float = 0.4  # below: threshold − ε_Ω (authors: no spike in 2.5 s)
    homeostasis_high_hz: float = 8.0  # above: threshold + ε_Ω (authors: more than 20 spikes in 2.5 s)
    n_clamped: int = 100  # neurons clamped one at a time for the E/I currents of Fig 6 iii (most driven first)
    ff_rule: str = "paper"  # feedforward rule: 'paper' (Eq 7 with P x) or 'authors_online' (the authors' code)
    hold_ff_norm: bool = False  # diagnostic: rescale each F_i to its starting norm after every learning chunk

    def validate(self):
        super().validate()
        if self.J < 1 or self.n_fit_files < 1 or self.n_test_files < 1 or self.n_learn_files < 0:
            raise ValueError("n_fit_files and n_test_files must be >= 1, n_learn_files >= 0")
        if self.epochs <= 0 or self.signal_rms <= 0 or self.tone_level <= 0 or self.new_sound_level <= 0:
            raise ValueError("epochs, signal_rms, tone_level and new_sound_level must be positive")
        ratio = ENVELOPE_DT / float(self.dt)
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError(f"dt={self.dt}: the envelopes are sampled every {ENVELOPE_DT * 1e3:g} ms, so dt must "
                             f"divide {ENVELOPE_DT * 1e3:g} ms (e.g. 1*ms, 0.1*ms, 0.05*ms)")
        for name in ("chunk", "homeostasis_window"):
            n = float(getattr(self, name)) / ENVELOPE_DT
            if abs(n - round(n)) > 1e-6 or round(n) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is not a whole number of {ENVELOPE_DT * 1e3:g} ms")
        if self.threshold_homeostasis:
            w = float(self.chunk) / float(self.homeostasis_window)
            if abs(w - round(w)) > 1e-6 or round(w) < 1:
                raise ValueError(f"chunk={self.chunk} is not a whole number of homeostasis_window="
                                 f"{self.homeostasis_window}")
            if not 0 <= self.homeostasis_low_hz < self.homeostasis_high_hz:
                raise ValueError("need 0 <= homeostasis_low_hz < homeostasis_high_hz")
        if float(self.eval_duration) <= float(self.discard):
            raise ValueError("eval_duration must be longer than discard")
        if self.new_sound not in NEW_SOUNDS:
            raise ValueError(f"new_sound={self.new_sound!r}: expected one of {NEW_SOUNDS}")
        ch = tuple(self.new_sound_channels)
        if len(ch) != 2 or ch[0] == ch[1] or not all(isinstance(c, (int, np.integer)) and 0 <= c < self.J
                                                       for c in ch):
            raise ValueError(f"new_sound_channels={self.new_sound_channels}: expected two different channel "
                             f"indices in [0, {self.J})")
        if self.n_clamped < 0:
            raise ValueError("n_clamped must be >= 0")
        if self.ff_rule not in FF_RULES:
            raise ValueError(f"ff_rule={self.ff_rule!r}: expected one of {FF_RULES}")


def steps_per_sample(p: SpeechParams) -> int:
    """Network steps per envelope sample (1 at dt = 1 ms, 20 at the authors' 0.05 ms)."""
    return int(round(ENVELOPE_DT / float(p.dt)))


def quick_params(p: SpeechParams) -> SpeechParams:
    """8 learning files (~100 s of speech), two passes at 4× the full run's learning rates."""
    return dataclasses.replace(p, n_learn_files=8, n_fit_files=2, n_test_files=2, epochs=2.0, chunk=5 * second,
                               n_snapshots=4, eval_duration=20 * second, retrain_duration=40 * second,
                               eps_F=1e-3, eps_Omega=1e-2, n_clamped=20)


# ------------------------------------------------------------------------------ input
def command_from_signal(x, lam_dt: float, dt: float) -> np.ndarray:
    """c with x[n] = (1 − λdt) x[n−1] + dt c[n] (x[−1] taken as x[0]: c[0] = λ x[0])."""
    return command_from_samples(x, lam_dt, dt, 1)


def command_from_samples(x, lam_dt: float, dt: float, steps: int, x_prev=None) -> np.ndarray:
    """Command c_k, held for ``steps`` network steps per sample, whose discrete leaky integral
    (x ← (1 − λdt) x + dt c every step) equals x_k at the end of every sample::

        x_k = A x_{k−1} + c_k (1 − A)/λ,   A = (1 − λdt)^steps

    (``x_prev``: the sample before x[0]; default x[0], so that c[0] = λ x[0]).  With steps = 1 this is
    :func:`command_from_signal`.
    """
    x = np.asarray(x, dtype=float)
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    prev0 = x[:1] if x_prev is None else np.asarray(x_prev, dtype=float).reshape(1, -1)
    prev = np.concatenate([prev0, x[:-1]])
    A = (1.0 - lam_dt) ** steps
    return (x - A * prev) * (lam_dt / dt) / (1.0 - A)


def lowpassed_current(x, p: SpeechParams, block: int = 100_000, every: int = 1) -> np.ndarray:
    """The authors' rule's presynaptic current u_f (c/λ low-passed with τ_f = 0.5 ms) at the end of every
    envelope sample of x (T×J), for x presented in one piece; every ``every``-th sample is returned."""
    from scipy.signal import lfilter

    x = np.asarray(x)
    R = steps_per_sample(p)
    lam_dt, dt = float(p.lambda_ * p.dt), float(p.dt)
    a = float(np.exp(-dt / float(AUTHORS_FF_TAU))) ** R  # per sample: the current is held for R steps
    zi = np.zeros((1, x.shape[1]))
    prev, out = None, []
    for k in range(0, len(x), block):
        xb = x[k:k + block].astype(float)
        u = command_from_samples(xb, lam_dt, dt, R, x_prev=prev) / float(p.lambda_)
        u_f, zi = lfilter([1.0 - a], [1.0, -a], u, axis=0, zi=zi)
        prev = xb[-1:]
        out.append(u_f[(-k) % every::every])
    return np.concatenate(out)


def sampled_filtered_trains(spike_i, spike_step, n_neurons: int, n_samples: int, lam_dt: float,
                            steps: int) -> np.ndarray:
    """Filtered spike trains r (r ← (1 − λdt) r + o every step) read at the last step of every sample of
    ``steps`` steps: (n_samples, n_neurons), exact, without the (n_samples·steps, N) matrix of counts.
    With steps = 1 this equals ``coding.filtered_spike_trains(coding.spike_counts(...), lam_dt)``."""
    from scipy.signal import lfilter

    if not 0 < lam_dt < 1:
        raise ValueError(f"lam_dt must be in (0, 1), got {lam_dt}")
    spike_i = np.asarray(spike_i, dtype=np.int64)
    spike_step = np.asarray(spike_step, dtype=np.int64)
    if spike_step.size and (spike_step.min() < 0 or spike_step.max() >= n_samples * steps):
        raise ValueError(f"time step out of range [0, {n_samples * steps})")
    a = 1.0 - lam_dt
    W = np.zeros((n_samples, n_neurons))
    np.add.at(W, (spike_step // steps, spike_i), a ** (steps - 1 - spike_step % steps))
    return lfilter([1.0], [1.0, -(a ** steps)], W, axis=0)


def smoothing_kernel(dt: float = ENVELOPE_DT) -> np.ndarray:
    """The authors' smoothing of their new stimulus: exp(−t/5 ms) * exp(−t/15 ms), unit sum (100 ms long)."""
    t = np.arange(int(round(0.1 / dt))) * dt
    k = np.convolve(np.exp(-t / 0.005), np.exp(-t / 0.015))[: len(t)]
    return k / k.sum()


def smooth_onsets(m, dt: float = ENVELOPE_DT) -> np.ndarray:
    """A 0/1 on-off pattern smoothed twice by :func:`smoothing_kernel` (causal), as the authors smooth theirs."""
    k = smoothing_kernel(dt)
    m = np.asarray(m, dtype=float)
    for _ in range(2):
        m = np.convolve(m, k)[: len(m)]
    return m


def two_channel_sound(J: int, channels, levels, dt: float = ENVELOPE_DT, on_s=(0.5, 2.5),
                      total_s: float = 3.0) -> np.ndarray:
    """The new sound built as the authors built theirs, directly in channel space: energy in two channels
    only (``levels`` each), on from ``on_s[0]`` to ``on_s[1]`` with smoothed onsets, every other channel
    silent.  (T, J) at ``dt``."""
    n = int(round(total_s / dt))
    m = np.zeros(n)
    m[int(round(on_s[0] / dt)):int(round(on_s[1] / dt))] = 1.0
    m = smooth_onsets(m, dt)
    x = np.zeros((n, J))
    for ch, lev in zip(channels, np.broadcast_to(levels, (len(channels),))):
        x[:, ch] = lev * m
    return x


def two_channel_mixture(x_speech, channels, levels, period_s=0.5, burst_s=0.2, start_s=0.05,
                        dt: float = ENVELOPE_DT) -> np.ndarray:
    """The authors' retraining input: speech in which every ``period_s`` a ``burst_s`` block is replaced by
    the two-channel sound (all other channels silent); block edges smoothed as in :func:`smooth_onsets`."""
    x = np.asarray(x_speech, dtype=float)
    n = len(x)
    m = np.zeros(n)
    period, burst = int(round(period_s / dt)), int(round(burst_s / dt))
    for s0 in range(int(round(start_s / dt)), n, period):
        m[s0:s0 + burst] = 1.0
    m = smooth_onsets(m, dt)[:, None]
    sound = np.zeros_like(x)
    for ch, lev in zip(channels, np.broadcast_to(levels, (len(channels),))):
        sound[:, ch] = lev
    return (1.0 - m) * x + m * sound


def tone_bursts(n_samples: int, p: SpeechParams, rms: float, period_s=1.0, burst_s=0.3, seed=0) -> np.ndarray:
    """Ramped tone-complex bursts of burst_s every period_s (random phase of the grid), RMS ``rms`` while on."""
    burst = harmonic_complex(burst_s, p.tone_f0, p.tone_harmonics, SAMPLERATE, ramp_s=0.02)
    burst *= rms / np.sqrt(np.mean(harmonic_complex(1.0, p.tone_f0, p.tone_harmonics, SAMPLERATE) ** 2))
    out = np.zeros(n_samples)
    period = int(period_s * SAMPLERATE)
    start = int(np.random.default_rng(seed).integers(period))
    for s in range(start, n_samples - len(burst), period):
        out[s:s + len(burst)] += burst
    return out


def _features(files, fb: Filterbank, tone_rms: float | None = None, p=None, seed=0):
    """Envelopes of the recordings, concatenated (float32), and the mean-square waveform amplitude."""
    envs, ms_sum, n_sum = [], 0.0, 0
    for k, f in enumerate(files):
        a = read_audio(f, SAMPLERATE)
        ms_sum += float(np.sum(a**2))
        n_sum += len(a)
        if tone_rms is not None:
            a = a + tone_bursts(len(a), p, tone_rms, seed=seed + k)
        envs.append(fb.envelopes(a).astype(np.float32))
    return np.concatenate(envs), np.sqrt(ms_sum / n_sum)


# ------------------------------------------------------------------------------ measures
def ei_balance(F, Omega, x, r):
    """Feedforward E_i = F_i·x against the lateral input R_i = Σ_{k≠i} Ω_ik r_k of every neuron.

    Returns the mean over neurons of corr(E_i, −R_i) (1: lateral input mirrors the feedforward input)
    and of var(E_i + Σ_k Ω_ik r_k) / var(E_i), the fraction of the feedforward fluctuations left in the
    membrane potential once all recurrent input, the neuron's own reset included, is added (0: fully
    balanced).
    """
    E = np.asarray(x) @ np.asarray(F)  # (T, N)
    Om = np.array(Omega, dtype=float)
    V = E + np.asarray(r) @ Om.T
    np.fill_diagonal(Om, 0.0)
    R = np.asarray(r) @ Om.T
    vE, vR = E.var(axis=0), R.var(axis=0)
    ok = (vE > 1e-12) & (vR > 1e-12)
    if not ok.any():
        return float("nan"), float("nan")
    Ec, Rc = E[:, ok] - E[:, ok].mean(0), R[:, ok] - R[:, ok].mean(0)
    corr = -np.sum(Ec * Rc, axis=0) / np.sqrt(vE[ok] * vR[ok]) / len(E)
    unexplained = V[:, ok].var(axis=0) / vE[ok]
    return float(np.mean(corr)), float(np.mean(unexplained))


def profile_stats(F, D):
    """Inhibitory-flank fraction of the feedforward weights, median half-max widths of F and D (channels)."""
    F = np.asarray(F)
    D = np.asarray(D)
    J, N = F.shape

    def width(w):
        k = int(np.argmax(w))
        return int(np.sum(w >= 0.5 * w[k])) if w[k] > 0 else 0

    flanks = 0
    counted = 0
    for i in range(N):
        w = F[:, i]
        k = int(np.argmax(w))
        if w[k] <= 0:
            continue
        counted += 1
        sides = []
        for lo, hi in ((k - 4, k - 2), (k + 2, k + 4)):
            idx = [j for j in range(lo, hi + 1) if 0 <= j < J]
            if idx:
                sides.append(np.min(w[idx]) < 0)
        flanks += bool(sides) and all(sides)
    return {
        "flank_fraction": flanks / counted if counted else float("nan"),
        "F_halfmax_width": float(np.median([width(F[:, i]) for i in range(N)])),
        "D_halfmax_width": float(np.median([width(D[:, i]) for i in range(N)])),
    }


# ------------------------------------------------------------------------------ running
class _Coder:
    """Drives the chunked network with envelope-rate signals: spikes (network steps) and filtered trains
    read at every envelope sample."""

    def __init__(self, net: SpikeCodingNetwork, p: SpeechParams, seed: int):
        self.net, self.p, self.seed = net, p, seed
        self.R = steps_per_sample(p)
        self.lam_dt = float(p.lambda_ * p.dt)
        self.n_runs = 0

    def run(self, c, x_hebb, learning: bool):
        """Present c (and the Hebbian term) sample by sample, chunk after chunk, from the current state;
        returns spike indices and network steps (0 = first step of the input)."""
        net = self.net
        L = net.input_rows
        n = len(c)
        n_chunks = int(np.ceil(n / L))
        pad = n_chunks * L - n
        if pad:
            c = np.concatenate([c, np.repeat(c[-1:], pad, axis=0)])
            x_hebb = np.concatenate([x_hebb, np.repeat(x_hebb[-1:], pad, axis=0)])
        si, st = [], []
        for k in range(n_chunks):
            res = net.run_chunk(c[k * L:(k + 1) * L], x_hebb[k * L:(k + 1) * L], learning=learning,
                                seed=self.seed * 1_000_003 + self.n_runs)
            self.n_runs += 1
            keep = res.spike_step < (n - k * L) * self.R
            si.append(res.spike_i[keep])
            st.append(res.spike_step[keep] + k * L * self.R)
        return np.concatenate(si), np.concatenate(st)

    def code(self, x, T=None):
        """Frozen-network coding of x (envelope samples) from rest; thresholds ``T`` for this run only."""
        net = self.net
        saved = net.state()
        net.set_state(V=np.zeros(self.p.N), r=np.zeros(self.p.N))
        if T is not None:
            net.set_state(T=T)
        c = command_from_samples(x, self.lam_dt, float(self.p.dt), self.R)
        si, st = self.run(c, x, learning=False)
        r = sampled_filtered_trains(si, st, self.p.N, len(x), self.lam_dt, self.R)
        net.set_state(V=saved["V"], r=saved["r"], T=saved["T"] if net.per_neuron_threshold else None)
        return r, si, st

    def evaluate(self, fit_x, sets: dict):
        d = int(round(float(self.p.discard) / ENVELOPE_DT))
        r_fit, _, _ = self.code(fit_x)
        D = coding.optimal_decoder(r_fit[d:], fit_x[d:])
        out = {"decoder": D}
        for name, x in sets.items():
            r, si, st = self.code(x)
            xh = r @ D.T
            out[f"{name}_error"] = coding.coding_error(x[d:], xh[d:])
            out[f"{name}_rate_hz"] = coding.mean_rate(int(np.sum(st >= d * self.R)), self.p.N,
                                                      (len(x) - d) * ENVELOPE_DT)
            out[f"{name}_coded"] = (r, xh, si, st)
        return out


def homeostatic_step(spike_i, spike_step, T, p: SpeechParams, n_steps: int) -> np.ndarray:
    """The authors' threshold homeostasis, window by window: + ε_Ω for a neuron above ``homeostasis_high_hz``,
    − ε_Ω below ``homeostasis_low_hz`` (their step equals their recurrent learning rate); the net change over
    the chunk's windows is applied after the chunk."""
    win = int(round(float(p.homeostasis_window / p.dt)))
    n_win = n_steps // win
    counts = np.zeros((n_win, p.N))
    keep = spike_step < n_win * win
    np.add.at(counts, (spike_step[keep] // win, spike_i[keep]), 1.0)
    w_s = win * float(p.dt)
    up = (counts > p.homeostasis_high_hz * w_s).sum(axis=0)
    down = (counts < p.homeostasis_low_hz * w_s).sum(axis=0)
    return np.asarray(T, dtype=float) + p.eps_Omega * (up - down)


def clamped_currents(coder: _Coder, x, neurons, d: int) -> dict:
    """Fig 6 iii as the authors measure it: each neuron in turn is clamped (kept from firing) while the
    network codes x; its feedforward current E_i = F_i·x and lateral current I_i = Σ_{k≠i} Ω_ik r_k are
    recorded.  Returns the per-neuron traces and, over t ≥ d, the mean corr(E_i, −I_i) and the mean
    var(E_i + I_i)/var(E_i) (the fraction of the feedforward fluctuations left in the clamped neuron's
    potential; 0: balanced)."""
    net = coder.net
    F, Om = net.F.copy(), net.Omega.copy()
    np.fill_diagonal(Om, 0.0)
    T0 = net.T.copy()
    E_all, I_all = [], []
    for i in neurons:
        T = T0.copy()
        T[i] = CLAMPED_THRESHOLD
        r, _, _ = coder.code(x, T=T)
        E_all.append(x @ F[:, i])
        I_all.append(r @ Om[i])
    if not E_all:
        return {"E": np.zeros((len(x), 0), np.float32), "I": np.zeros((len(x), 0), np.float32),
                "corr": float("nan"), "unexplained": float("nan")}
    E, I_ = np.array(E_all).T, np.array(I_all).T  # (time, neurons)
    Ed, Id = E[d:], I_[d:]
    vE, vI = Ed.var(axis=0), Id.var(axis=0)
    ok = (vE > 1e-12) & (vI > 1e-12)
    if ok.any():
        Ec, Ic = Ed[:, ok] - Ed[:, ok].mean(0), Id[:, ok] - Id[:, ok].mean(0)
        corr = float(np.mean(-np.sum(Ec * Ic, axis=0) / np.sqrt(vE[ok] * vI[ok]) / len(Ed)))
    else:
        corr = float("nan")
    okE = vE > 1e-12
    left = float(np.mean((Ed + Id)[:, okE].var(axis=0) / vE[okE])) if okE.any() else float("nan")
    return {"E": E.astype(np.float32), "I": I_.astype(np.float32), "corr": corr, "unexplained": left,
            "unexplained_pooled": pooled_unexplained(E, I_, d)}


def pooled_unexplained(E, lateral, d: int = 0) -> float:
    """Σ_i var(E_i + I_i) / Σ_i var(E_i) over t ≥ d (secondary to the mean of the per-neuron ratios: neurons
    the sound hardly drives, var(E_i) ≈ 0, cannot dominate it)."""
    E, L = np.asarray(E, dtype=float)[d:], np.asarray(lateral, dtype=float)[d:]
    vE = E.var(axis=0).sum()
    return float((E + L).var(axis=0).sum() / vE) if vE > 0 else float("nan")


def _speech_files(p: SpeechParams):
    train_files = librispeech_files("train-clean-100")
    test_files = librispeech_files("test-other")[: p.n_test_files]
    if len(train_files) <= p.n_fit_files:
        raise ValueError(f"n_fit_files={p.n_fit_files}: only {len(train_files)} train-clean-100 files present")
    fit_files = train_files[-p.n_fit_files:]
    learn_files = train_files[: -p.n_fit_files]
    if p.n_learn_files:
        learn_files = learn_files[: p.n_learn_files]
    return learn_files, fit_files, test_files


def hold_norms(F, norms) -> np.ndarray:
    """F (J × N) with every column i rescaled to ``norms[i]`` (a zero column stays zero)."""
    F = np.asarray(F, dtype=float)
    now = np.linalg.norm(F, axis=0)
    return F * np.divide(np.asarray(norms, dtype=float), now, out=np.zeros_like(now), where=now > 0)


def _learn(ctx, p: SpeechParams) -> dict:
    dt = float(p.dt)
    R = steps_per_sample(p)
    fb = Filterbank(n_channels=p.J, samplerate=SAMPLERATE, out_rate=int(round(1 / ENVELOPE_DT)))
    learn_files, fit_files, test_files = _speech_files(p)
    ctx.log(f"filterbank: {len(learn_files)} learning, {len(fit_files)} decoder-fit, {len(test_files)} held-out "
            f"files; centres {fb.centres[0]:.0f}-{fb.centres[-1]:.0f} Hz; {R} network steps per envelope sample")
    env_learn, speech_rms = _features(learn_files, fb)
    gain = p.signal_rms / float(np.sqrt(np.mean(np.sum(env_learn.astype(float) ** 2, axis=1))))
    x_learn = env_learn * np.float32(gain)
    n_eval = int(round(float(p.eval_duration) / ENVELOPE_DT))
    x_fit = (_features(fit_files, fb)[0][:n_eval] * gain).astype(float)
    x_test = (_features(test_files, fb)[0][:n_eval] * gain).astype(float)
    x_train_eval = x_learn[:n_eval].astype(float)
    P = hebbian_precision(x_learn[:: 4].astype(float), p.shrinkage)
    ctx.log(f"learning speech {len(x_learn) * ENVELOPE_DT:.1f} s, fit {len(x_fit) * ENVELOPE_DT:.1f} s, "
            f"held-out {len(x_test) * ENVELOPE_DT:.1f} s; gain {gain:.3g}, "
            f"condition number of P {np.linalg.cond(P):.3g}")

    channels = tuple(int(c) for c in p.new_sound_channels)
    q99 = np.percentile(x_learn[:, list(channels)].astype(float), 99, axis=0)
    levels = p.new_sound_level * q99
    ch_mean = x_learn.astype(float).mean(axis=0)
    if p.new_sound == "two_channels":
        x_new = two_channel_sound(p.J, channels, levels)
        ctx.log(f"new sound: channels {channels} ({fb.centres[channels[0]]:.0f}, {fb.centres[channels[1]]:.0f} Hz) "
                f"at {levels[0]:.2f}, {levels[1]:.2f} (speech there: mean {ch_mean[channels[0]]:.2f}, "
                f"{ch_mean[channels[1]]:.2f}; all channels {ch_mean.mean():.2f})")
    else:
        # 0.5 s silence, 2 s harmonic complex at the speech's RMS × tone_level, 0.5 s silence
        tone = harmonic_complex(2.0, p.tone_f0, p.tone_harmonics, SAMPLERATE)
        tone *= p.tone_level * speech_rms / np.sqrt(np.mean(tone**2))
        pad = np.zeros(SAMPLERATE // 2)
        x_new = fb.envelopes(np.concatenate([pad, tone, pad])) * gain

    L = int(round(float(p.chunk) / ENVELOPE_DT))  # envelope samples per chunk
    n_per_epoch = len(x_learn) // L
    n_chunks = max(1, int(round(p.epochs * n_per_epoch)))
    snaps = set(int(s) for s in snapshot_chunks(n_chunks, p.n_snapshots)[1:])
    model_key = jsonable({f.name: getattr(p, f.name) for f in dataclasses.fields(SpikeCodingParams)
                          if f.name not in RUN_ARG_FIELDS})
    hist = {k: [] for k in ("t", "train_error", "test_error", "train_rate_hz", "test_rate_hz", "F_norm",
                            "decoder_norm", "omega_self")}
    learn_rate, learn_T = [], []
    out = {"centres_hz": fb.centres, "gain": gain, "P": P, "new_sound_levels": levels}
    lam_dt = float(p.lambda_ * p.dt)
    key = (model_key, L, R, "T_i", "cached_inputs") + ((("ff_rule", p.ff_rule),) if p.ff_rule != "paper" else ())
    with Session(ctx.backend, "spikecoding_speech", key=key, threads=ctx.threads) as session:
        net = SpikeCodingNetwork(p, session, L * R, plastic=True, seed=ctx.seed, name="sc", steps_per_input=R,
                                 per_neuron_threshold=True, cache_inputs=True, ff_rule=p.ff_rule)
        ctx.log(f"built in {session.build_s:.1f} s ({session.directory}); feedforward rule {p.ff_rule!r}")
        if p.ff_rule == "authors_online":
            st = authors_ff_initial_state(lowpassed_current(x_learn, p, every=4), net.F)
            net.ff_scale = st["scale"]
            net.set_state(u_bar=st["u_bar"], U=st["U"])
            out["ff_scale"] = st["scale"]
            ctx.log(f"authors' online rule: scale s = tr C_u / J = {st['scale']:.4g}, condition number of C_u "
                    f"{np.linalg.cond(st['C']):.3g}")
        coder = _Coder(net, p, ctx.seed)
        out["F_initial"], out["Omega_initial"] = net.F.copy(), net.Omega.copy()
        F_norm0 = np.linalg.norm(net.F, axis=0)

        def snapshot(k):
            ev = coder.evaluate(x_fit, {"train": x_train_eval, "test": x_test})
            hist["t"].append(k * L * ENVELOPE_DT)
            for key in ("train_error", "test_error", "train_rate_hz", "test_rate_hz"):
                hist[key].append(ev[key])
            # scale of the code: mean norm of feedforward vectors and decoders, mean self-reset Ω_ii
            hist["F_norm"].append(float(np.mean(np.linalg.norm(net.F, axis=0))))
            hist["decoder_norm"].append(float(np.mean(np.linalg.norm(ev["decoder"], axis=0))))
            hist["omega_self"].append(float(np.mean(np.diag(net.Omega))))
            ctx.log(f"t={k * L * ENVELOPE_DT:8.1f} s  error train {ev['train_error']:.4f} held-out "
                    f"{ev['test_error']:.4f}  rate train {ev['train_rate_hz']:.2f} held-out "
                    f"{ev['test_rate_hz']:.2f} Hz  (thresholds {net.T.min():.3f}-{net.T.max():.3f}, "
                    f"|F| {hist['F_norm'][-1]:.3f}, |D| {hist['decoder_norm'][-1]:.3f}, "
                    f"Ω_ii {hist['omega_self'][-1]:.3f})")
            return ev

        def learn_chunk(x, x_prev):
            c = command_from_samples(x, lam_dt, dt, R, x_prev=x_prev)
            si, st = coder.run(c, decorrelated_hebbian_signal(x, P) if p.ff_rule == "paper" else x, learning=True)
            learn_rate.append(coding.mean_rate(len(si), p.N, len(x) * ENVELOPE_DT))
            if p.threshold_homeostasis:
                net.set_state(T=homeostatic_step(si, st, net.T, p, len(x) * R))
            if p.hold_ff_norm:
                net.set_state(F=hold_norms(net.F, F_norm0))
            learn_T.append(float(net.T.mean()))

        ev0 = snapshot(0)
        net.set_state(V=np.zeros(p.N), r=np.zeros(p.N))
        bar = ctx.progress(total=n_chunks, desc="learning speech", unit="chunk")
        x_prev = None
        ev = ev0
        wall0 = time.perf_counter()
        for k in range(1, n_chunks + 1):
            j = (k - 1) % n_per_epoch
            x = x_learn[j * L:(j + 1) * L].astype(float)
            learn_chunk(x, None if j == 0 else x_prev)
            x_prev = x[-1:]
            bar.update(1)
            if k in snaps:
                ev = snapshot(k)
        bar.close()
        out["learning_wall_s"] = time.perf_counter() - wall0
        out.update({f"history_{k}": np.array(v) for k, v in hist.items()})
        out["learn_chunk_rate_hz"] = np.array(learn_rate)
        out["learn_chunk_mean_threshold"] = np.array(learn_T)
        out["F"], out["Omega"], out["decoder"], out["T_learned"] = (net.F.copy(), net.Omega.copy(), ev["decoder"],
                                                                    net.T.copy())
        for key, e in (("before", ev0), ("after", ev)):
            r, xh, si, st = e["test_coded"]
            out[f"test_xhat_{key}"] = xh.astype(np.float32)
            out[f"test_spike_i_{key}"], out[f"test_spike_step_{key}"] = si, st
        out["test_x"] = x_test.astype(np.float32)

        # the new sound, coded by the speech network with its speech decoder
        d = int(round(float(p.discard) / ENVELOPE_DT))
        r, si, st = coder.code(x_new)
        out.update(_tone_measures("before", p, net, x_new, r, si, st, ev["decoder"], d))
        weights = {"before": net.state()}

        # retraining on speech mixed with the new sound
        n_re = int(round(float(p.retrain_duration) / ENVELOPE_DT))
        files, total = [], 0
        for f in learn_files:
            files.append(f)
            total += int(read_audio(f).size * 1000 / SAMPLERATE)  # samples at 1 kHz
            if total >= n_re:
                break
        if p.new_sound == "two_channels":
            x_mix = two_channel_mixture(_features(files, fb)[0][:n_re] * gain, channels, levels)
            x_mix_fit = two_channel_mixture(_features(fit_files, fb)[0][:n_eval] * gain, channels, levels)
        else:
            x_mix = _features(files, fb, tone_rms=p.tone_level * speech_rms, p=p, seed=ctx.seed)[0][:n_re] * gain
            x_mix_fit = _features(fit_files, fb, tone_rms=p.tone_level * speech_rms, p=p, seed=ctx.seed + 1000)[0]
            x_mix_fit = x_mix_fit[:n_eval].astype(float) * gain
        n_re_chunks = len(x_mix) // L
        x_prev = None
        for k in range(n_re_chunks):
            x = x_mix[k * L:(k + 1) * L].astype(float)
            learn_chunk(x, x_prev)
            x_prev = x[-1:]
        ev_re = coder.evaluate(x_mix_fit, {"test": x_test, "tone": x_new})
        r, si, st = ev_re["tone_coded"][0], ev_re["tone_coded"][2], ev_re["tone_coded"][3]
        out.update(_tone_measures("after", p, net, x_new, r, si, st, ev_re["decoder"], d))
        weights["after"] = net.state()
        out["retrained_test_error"] = ev_re["test_error"]
        out["retrained_test_rate_hz"] = ev_re["test_rate_hz"]
        out["retrained_seconds"] = n_re_chunks * L * ENVELOPE_DT
        out["tone_x"] = x_new.astype(np.float32)
        out["F_retrained"], out["Omega_retrained"] = net.F.copy(), net.Omega.copy()
        out["learned_seconds"] = n_chunks * L * ENVELOPE_DT
        out["learning_speech_seconds"] = len(x_learn) * ENVELOPE_DT
        out["build_s"] = session.build_s
    # Fig 6 Aiii / Biii: one frozen network whose chunk is exactly the new sound (no padded steps)
    t0 = time.perf_counter()
    with Session(ctx.backend, "spikecoding_speech_clamp", key=(model_key, len(x_new), R, "T_i", "cached_inputs"),
                 threads=ctx.threads) as session:
        net = SpikeCodingNetwork(p, session, len(x_new) * R, plastic=False, seed=ctx.seed, name="sc",
                                 steps_per_input=R, per_neuron_threshold=True, cache_inputs=True)
        coder = _Coder(net, p, ctx.seed + 7919)
        for key in ("before", "after"):
            w = weights[key]
            net.set_state(F=w["F"], Omega=w["Omega"], T=w["T"])
            E_drive = (x_new[d:] @ w["F"]).var(axis=0)
            clamp = np.argsort(-E_drive, kind="stable")[: min(p.n_clamped, p.N)]
            cl = clamped_currents(coder, x_new, clamp, d)
            out.update({f"clamped_neurons_{key}": clamp, f"clamped_E_{key}": cl["E"], f"clamped_I_{key}": cl["I"],
                        f"clamped_corr_{key}": cl["corr"], f"clamped_unexplained_{key}": cl["unexplained"],
                        f"clamped_unexplained_pooled_{key}": cl["unexplained_pooled"]})
    ctx.log(f"clamped {len(clamp)} neurons one at a time, before and after retraining, in "
            f"{time.perf_counter() - t0:.1f} s")
    return out


def _tone_measures(key, p, net, x, r, si, st, D, d):
    xh = r @ D.T
    R = steps_per_sample(p)
    corr, unexplained = ei_balance(net.F, net.Omega, x[d:], r[d:])
    on = slice(int(0.5 / ENVELOPE_DT), int(2.5 / ENVELOPE_DT))
    return {
        f"tone_error_{key}": coding.coding_error(x[d:], xh[d:]),
        f"tone_rate_hz_{key}": coding.mean_rate(int(np.sum(st >= d * R)), p.N, (len(x) - d) * ENVELOPE_DT),
        f"tone_on_rate_hz_{key}": coding.mean_rate(int(np.sum((st >= on.start * R) & (st < on.stop * R))), p.N,
                                                   (on.stop - on.start) * ENVELOPE_DT),
        f"tone_ei_corr_{key}": corr,
        f"tone_ei_unexplained_{key}": unexplained,
        f"tone_xhat_{key}": xh.astype(np.float32),
        f"tone_spike_i_{key}": si,
        f"tone_spike_step_{key}": st,
    }


def run(ctx) -> dict:
    p: SpeechParams = ctx.params
    p.validate()
    ctx.log(f"spikecoding.speech: N={p.N}, J={p.J} channels, λ={p.lambda_}, {p.epochs:g} epochs, "
            f"backend={ctx.backend}, seed={ctx.seed}")
    stage = {"params": p, "seed": ctx.seed, "backend": ctx.backend}
    a = ctx.cached_stage("spikecoding_speech", stage, lambda: _learn(ctx, p), "learning run")
    h = {k: a[f"history_{k}"] for k in ("t", "train_error", "test_error", "train_rate_hz", "test_rate_hz")}
    prof = profile_stats(a["F"], a["decoder"])
    m = {
        "initial_train_error": float(h["train_error"][0]),
        "initial_test_error": float(h["test_error"][0]),
        "final_train_error": float(h["train_error"][-1]),
        "final_test_error": float(h["test_error"][-1]),
        "initial_test_rate_hz": float(h["test_rate_hz"][0]),
        "final_train_rate_hz": float(h["train_rate_hz"][-1]),
        "final_test_rate_hz": float(h["test_rate_hz"][-1]),
        **prof,
        "decoder_broader": prof["D_halfmax_width"] - prof["F_halfmax_width"],
    }
    for key in ("before", "after"):
        for q in ("tone_error", "tone_rate_hz", "tone_on_rate_hz", "tone_ei_corr", "tone_ei_unexplained"):
            m[f"{q}_{key}"] = float(a[f"{q}_{key}"])
    m["test_error_after_over_before"] = m["final_test_error"] / m["initial_test_error"]
    m["tone_error_after_over_before"] = m["tone_error_after"] / m["tone_error_before"]
    m["tone_ei_unexplained_after_over_before"] = m["tone_ei_unexplained_after"] / m["tone_ei_unexplained_before"]
    m["tone_on_rate_after_over_before"] = m["tone_on_rate_hz_after"] / m["tone_on_rate_hz_before"]
    m["tone_error_before_over_after"] = m["tone_error_before"] / m["tone_error_after"]
    # Fig 6 Aiii / Biii: E and I currents of clamped neurons during the new sound, before / after retraining
    for key in ("before", "after"):
        m[f"clamped_ei_corr_{key}"] = float(a[f"clamped_corr_{key}"])
        m[f"clamped_ei_unexplained_{key}"] = float(a[f"clamped_unexplained_{key}"])
        m[f"clamped_ei_unexplained_pooled_{key}"] = pooled_unexplained(a[f"clamped_E_{key}"], a[f"clamped_I_{key}"],
                                                                       int(round(float(p.discard) / ENVELOPE_DT)))
    m["clamped_ei_unexplained_after_over_before"] = (m["clamped_ei_unexplained_after"]
                                                     / m["clamped_ei_unexplained_before"])
    # drift over learning: the held-out error at its lowest snapshot against the end of learning
    k_min = int(np.argmin(h["test_error"][1:])) + 1 if len(h["test_error"]) > 1 else 0
    m.update(min_test_error=float(h["test_error"][k_min]), t_min_test_error_s=float(h["t"][k_min]),
             rate_at_min_test_error_hz=float(h["test_rate_hz"][k_min]))
    m["test_error_final_over_min"] = m["final_test_error"] / m["min_test_error"]
    m["ff_rule"] = p.ff_rule
    if "ff_scale" in a:
        m["ff_scale"] = float(a["ff_scale"])
    fn = np.asarray(a["history_F_norm"], dtype=float)
    m.update(F_norm_initial=float(fn[0]), F_norm_final=float(fn[-1]))
    lr = np.asarray(a["learn_chunk_rate_hz"])
    m.update(learn_first_chunk_rate_hz=float(lr[0]), learn_max_chunk_rate_hz=float(lr.max()),
             learn_max_spikes_per_step=float(lr.max() * p.N * float(p.dt)),
             learning_wall_s=float(a["learning_wall_s"]),
             final_mean_threshold=float(np.mean(a["T_learned"])))
    m.update(retrained_test_error=float(a["retrained_test_error"]),
             retrained_test_rate_hz=float(a["retrained_test_rate_hz"]),
             learned_seconds=float(a["learned_seconds"]), learning_speech_seconds=float(a["learning_speech_seconds"]),
             retrained_seconds=float(a["retrained_seconds"]), build_s=float(a["build_s"]))
    for k, v in m.items():
        if isinstance(v, float) and not np.isfinite(v):
            m[k] = None
    ctx.writer.save_metrics(m)
    ctx.writer.save_arrays(**a, **recorded(p, a))
    _figures(ctx, p, a, m)
    return m


def recorded(p, a: dict) -> dict:
    """The speech test segment and the new sound, before and after learning, under the recording convention
    (:func:`b2models.results.spike_arrays`): spikes, the readout x̂ and the input x, times in seconds."""
    from b2models.results import spike_arrays, trace_arrays

    dt = float(p.dt)
    x = a["test_x"]
    out = trace_arrays("speech_test", np.arange(len(x)) * ENVELOPE_DT, x, "1", "the speech test input x (channels)",
                       kind="stimulus")
    for key in ("before", "after"):
        for what in ("test", "tone"):
            i, steps = a.get(f"{what}_spike_i_{key}"), a.get(f"{what}_spike_step_{key}")
            if i is not None and steps is not None:
                out.update(spike_arrays(f"{what}_{key}", i, np.asarray(steps) * dt, p.N,
                                        model="b2models.models.spikecoding", resolution=dt))
        xh = a.get(f"test_xhat_{key}")
        if xh is not None:
            out.update(trace_arrays(f"readout_test_{key}", np.arange(len(xh)) * ENVELOPE_DT, xh, "1",
                                    f"the readout x̂ of the speech test segment, {key} learning"))
    return out


def _figures(ctx, p, a, m):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dt, de = float(p.dt), ENVELOPE_DT  # spikes are in network steps, signals in envelope samples
    spp = steps_per_sample(p)
    n_show = min(len(a["test_x"]), int(4.0 / de))
    ext = [0, n_show * de, 0.5, p.J + 0.5]
    vmax = float(np.percentile(a["test_x"][:n_show], 99))
    fig, axes = plt.subplots(5, 1, figsize=(10, 10), sharex=True)
    axes[0].imshow(a["test_x"][:n_show].T, aspect="auto", origin="lower", extent=ext, vmin=0, vmax=vmax)
    axes[0].set_title("held-out speech x (channels)")
    for row, key in ((1, "before"), (3, "after")):
        axes[row].imshow(a[f"test_xhat_{key}"][:n_show].T, aspect="auto", origin="lower", extent=ext, vmin=0,
                         vmax=vmax)
        err = m["initial_test_error" if key == "before" else "final_test_error"]
        axes[row].set_title(f"x̂ {key} learning (error {err:.3f})")
        si, st = a[f"test_spike_i_{key}"], a[f"test_spike_step_{key}"]
        sel = st < n_show * spp
        axes[row + 1].plot(st[sel] * dt, si[sel], "|k", ms=2)
        axes[row + 1].set_ylabel("neuron")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "speech5A_coding")

    F, D = a["F"], a["decoder"]
    order = np.argsort(np.argmax(F, axis=0))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    lim = np.abs(F).max()
    axes[0].imshow(F[:, order], aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[0].set_title("feedforward weights F (neurons by peak channel)")
    axes[0].set_ylabel("channel")
    lim = np.abs(D).max()
    axes[1].imshow(D[:, order], aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title("decoders D")
    for i in order[:: max(1, p.N // 4)][:4]:
        line, = axes[2].plot(F[:, i] / np.abs(F[:, i]).max(), lw=1.5)
        axes[2].plot(D[:, i] / np.abs(D[:, i]).max(), "--", color=line.get_color(), lw=1)
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].set_xlabel("channel")
    axes[2].set_title("F (solid) and D (dashed), normalised")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "speech5B_weights")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    t = np.maximum(a["history_t"], float(p.chunk) / 2)
    for key, lab in (("train", "learning speakers"), ("test", "held-out speakers")):
        axes[0].plot(t, a[f"history_{key}_error"], "o-", ms=3, label=lab)
        axes[1].plot(t, a[f"history_{key}_rate_hz"], "o-", ms=3, label=lab)
    for ax, lab in zip(axes, ("coding error", "mean rate (Hz)")):
        ax.set_xscale("log")
        ax.set_xlabel("learning time (s)")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "speech_learning")

    fig, axes = plt.subplots(4, 2, figsize=(11, 9), sharex=True)
    x = a["tone_x"]
    ext = [0, len(x) * de, 0.5, p.J + 0.5]
    vmax = float(np.max(x))
    for col, key in enumerate(("before", "after")):
        axes[0, col].imshow(x.T, aspect="auto", origin="lower", extent=ext, vmin=0, vmax=vmax)
        axes[0, col].set_title(f"new sound x ({key} retraining)")
        axes[1, col].imshow(a[f"tone_xhat_{key}"].T, aspect="auto", origin="lower", extent=ext, vmin=0, vmax=vmax)
        axes[1, col].set_title(f"x̂: error {m[f'tone_error_{key}']:.3f}, rate {m[f'tone_rate_hz_{key}']:.1f} Hz")
        si, st = a[f"tone_spike_i_{key}"], a[f"tone_spike_step_{key}"]
        axes[2, col].plot(st * dt, si, "|k", ms=2)
        axes[2, col].set_ylabel("neuron")
        F = a["F_retrained"] if key == "after" else a["F"]
        Om = np.array(a["Omega_retrained"] if key == "after" else a["Omega"])
        np.fill_diagonal(Om, 0)
        r = sampled_filtered_trains(si, st, p.N, len(x), float(p.lambda_ * p.dt), spp)
        E, R = x @ F, r @ Om.T
        i = int(np.argmax(np.bincount(si, minlength=p.N))) if len(si) else 0
        tt = np.arange(len(x)) * de
        axes[3, col].plot(tt, E[:, i], "r", lw=1, label="E = F·x")
        axes[3, col].plot(tt, R[:, i], "b", lw=1, label="lateral Ω·r")
        axes[3, col].plot(tt, E[:, i] + R[:, i], "k", lw=1, label="sum")
        axes[3, col].set_title(f"currents of neuron {i}; balance corr {m[f'tone_ei_corr_{key}']:.2f}")
        axes[3, col].set_xlabel("time (s)")
        axes[3, col].legend(fontsize=6)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "speech5D_new_sound")

    # Fig 6 Aiii / Biii: currents of clamped neurons during the new sound, before / after retraining
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    for ax, key, lab in ((axes[0], "before", "Aiii: before retraining"), (axes[1], "after", "Biii: after retraining")):
        Ec, Ic = np.asarray(a[f"clamped_E_{key}"], float), np.asarray(a[f"clamped_I_{key}"], float)
        if Ec.size == 0:
            continue
        tt = np.arange(len(Ec)) * de
        ax.plot(tt, Ec + Ic, color="0.75", lw=0.5)
        ax.plot(tt, np.mean(np.maximum(Ec, 0) + np.maximum(Ic, 0), axis=1), "r", lw=1.5, label="positive parts")
        ax.plot(tt, np.mean(np.minimum(Ec, 0) + np.minimum(Ic, 0), axis=1), "b", lw=1.5, label="negative parts")
        ax.set_title(f"{lab}: corr(E, −I) {m[f'clamped_ei_corr_{key}']:.2f}, "
                     f"var(E+I)/var(E) {m[f'clamped_ei_unexplained_{key}']:.2f}", fontsize=8)
        ax.set_xlabel("time (s)")
        ax.legend(fontsize=6)
    axes[0].set_ylabel("current into clamped neurons")
    fig.tight_layout()
    ctx.writer.save_figure(fig, "speech6_clamped_currents")


PROTOCOL = Protocol(
    name="spikecoding.speech",
    paper="spikecoding",
    summary="100 neurons learn to code 25-channel speech envelopes (LibriSpeech), then a new sound "
            "(Brendel et al. 2020, Figs 5-6)",
    params=SpeechParams,
    quick=quick_params,
    run=run,
    data=["librispeech"],
    claims=[
        Claim("test_error_after_over_before", "held-out coding error after / before learning",
              "high precision after learning (Fig 5)", "< 0.25", lambda v: v is not None and v < 0.25, "{:.3f}"),
        Claim("final_test_error", "coding error on held-out speakers after learning", "high precision",
              "≤ 0.025", lambda v: v is not None and v <= 0.025, "{:.4f}"),
        Claim("test_error_final_over_min", "held-out error at the end of learning / its lowest value (drift)",
              "no drift", "≤ 1.1", lambda v: v is not None and v <= 1.1, "{:.2f}"),
        Claim("final_train_error", "coding error on learning speakers after learning", "—", "", None),
        Claim("final_test_rate_hz", "mean rate on held-out speech (Hz)", "≈ 4", "2–8", lambda v: v is not None
              and 2 <= v <= 8, "{:.2f}"),
        Claim("flank_fraction", "fraction of neurons with inhibitory flanks beside the excitatory peak of F",
              "excitatory subfields with inhibitory flanks", "> 0.5", lambda v: v is not None and v > 0.5,
              "{:.2f}"),
        Claim("decoder_broader", "median half-max width of decoders − of feedforward weights (channels)",
              "decoders broader", "> 0", lambda v: v is not None and v > 0, "{:.1f}"),
        Claim("tone_error_after_over_before", "new sound: coding error after / before retraining",
              "poor before, precise after (Fig 5 D–F)", "< 0.8", lambda v: v is not None and v < 0.8, "{:.2f}"),
        Claim("tone_error_before_over_after", "new sound: coding error before / after retraining",
              "poor before, precise after (Fig 5 D–F)", "≥ 2", lambda v: v is not None and v >= 2, "{:.2f}"),
        Claim("clamped_ei_unexplained_before", "Fig 6 Aiii: new sound before retraining, clamped neurons, "
              "var(E + I)/var(E)", "E not balanced by I", "", None, "{:.2f}"),
        Claim("clamped_ei_unexplained_after", "Fig 6 Biii: new sound after retraining, clamped neurons, "
              "var(E + I)/var(E)", "E balanced by I", "", None, "{:.2f}"),
        Claim("clamped_ei_unexplained_after_over_before", "Fig 6 Aiii → Biii: var(E + I)/var(E) of clamped "
              "neurons after / before retraining", "balance restored", "< 0.5",
              lambda v: v is not None and v < 0.5, "{:.2f}"),
        Claim("clamped_ei_unexplained_pooled_before", "Fig 6 Aiii (secondary): Σ var(E + I) / Σ var(E) over the "
              "clamped neurons, before retraining", "E not balanced by I", "", None, "{:.2f}"),
        Claim("clamped_ei_unexplained_pooled_after", "Fig 6 Biii (secondary): Σ var(E + I) / Σ var(E) over the "
              "clamped neurons, after retraining", "E balanced by I", "", None, "{:.2f}"),
        Claim("clamped_ei_corr_before", "Fig 6 Aiii: corr(E, −I) of clamped neurons before retraining", "—", "",
              None, "{:.2f}"),
        Claim("clamped_ei_corr_after", "Fig 6 Biii: corr(E, −I) of clamped neurons after retraining", "—", "",
              None, "{:.2f}"),
        Claim("tone_ei_unexplained_after_over_before",
              "new sound: var(V)/var(E) after / before retraining (EI balance)", "balance restored (Fig 6 iii)",
              "< 0.5", lambda v: v is not None and v < 0.5, "{:.2f}"),
        Claim("tone_on_rate_after_over_before", "new sound: population rate after / before retraining",
              "sparse after retraining", "< 1", lambda v: v is not None and v < 1, "{:.2f}"),
        Claim("tone_ei_corr_before", "new sound: corr(E, −lateral) before retraining", "—", "", None, "{:.2f}"),
        Claim("tone_ei_corr_after", "new sound: corr(E, −lateral) after retraining", "—", "", None, "{:.2f}"),
    ],
    figures=["speech5A_coding", "speech5B_weights", "speech_learning", "speech5D_new_sound",
             "speech6_clamped_currents"],
)
