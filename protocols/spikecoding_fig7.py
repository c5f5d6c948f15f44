"""Protocol ``spikecoding.fig7``: robustness of learned spike-coding networks (Brendel et al. 2020, Fig 7).

Brendel W, Bourdoukan R, Vertechi P, Machens CK, Denève S (2020). Learning to represent
signals spike by spike. PLoS Comput Biol 16(3): e1007692.
https://doi.org/10.1371/journal.pcbi.1007692

The authors published no code for this figure; this protocol is our construction of its
panels.  Two networks (``network``):

* ``ei`` (``--set network=ei``; the paper's robustness figure uses its E–I network): the Fig 4 model of
  :mod:`models.spikecoding_ei` (authors' values, 2-D input, ``ei_N_E`` E and ``ei_N_E``/4 I cells, learning
  rates ``ei_eps_scale`` × the authors' for ``ei_duration``), with synaptic delays on every connection between
  cells, a one-spike arbiter that obeys them (``ei_arbiter="delayed"``: with a delay no cell is stopped by
  another cell's spike of the same step; ``"instant"``: the undelayed arbiter) and the membrane noise as a run
  argument.  **B**: a random ``ei_removed`` share of every connection type between cells (E → E, E → I, I → E,
  I → I; the I resets kept) is removed before learning and stays 0; the claim reads the smallest kept fraction
  whose error stays below 2× the intact network's.  **C**: noise × delay (``ei_noise_levels`` per 0.1 ms step ×
  ``ei_delays``), with the error before learning.  **A** (``ei_sizes``, optional).  Beside every point: Poisson
  populations of N_E cells with rectified-linear tuning to the learned F at ``poisson_rates`` (5 and 10 Hz) and
  at the network's own E rate, read out with the same optimal decoder.
* ``single`` (default, so that earlier commands and sweeps keep their meaning): the Fig 2 network of
  :mod:`models.spikecoding_robust` (2-D smoothed-noise input, learning with Eqs 6 and 7 from the paper's
  Fig 2 start), panels A–D as below:

* **A** coding error after learning against network size N (``sizes``), beside a Poisson
  population of the same size and the same mean rate: inhomogeneous Poisson cells with
  rectified-linear tuning to the learned feedforward vectors, ν_i(t) = a [F_i · x(t)]₊, the
  gain a set so that the population's mean rate equals that of the learned network, read out
  with the same optimal linear decoder (fitted on one segment, tested on another).
* **B** coding error after learning against the fraction of lateral recurrent connections
  removed (at random, per seed) before learning (``removed``; removed connections stay 0).
* **C** coding error after learning against the s.d. of an injected white-noise current
  (``noise_levels``, per 1 ms step, in units of V; threshold 0.5), present during learning
  and testing, for several lateral synaptic delays (``delays``) with exponential PSCs of time
  constant ``psc_taus`` (0: the instantaneous jump of Fig 2).
* **D** the PSC time courses (delayed exponentials of unit charge) used in C.

Each point is a fresh network learned from its own seed (``n_seeds`` per point, mean ± s.d.).
Learning uses ``eps_scale`` × the Fig 2 learning rates for ``duration``; the error is
Σvar(x − x̂)/Σvar(x) on held-out input (decoder fitted on one ``test`` segment, measured on
another, as in ``spikecoding.fig2``).  Points are run through :func:`b2models.sweep.sweep`
(``--jobs N`` local processes or ``--dask ADDRESS``); one network is compiled per worker and
(N, delay, PSC) and re-run with run arguments for every point.

Deliberate deviations and choices (the paper gives no protocol details for Fig 7): learning
is far shorter than Fig 2's 14,000 s and uses faster rates (defaults: 1000 s at ×5; ``--quick``:
200 s at ×10), so absolute errors are above the converged ones; the Poisson reference is a
rectified-linear rate code with the learned F (our choice of an "equally rated" population:
same number of cells, same mean rate per cell; the network's rate per cell falls as 1/N, so
the Poisson population of every size emits the same number of spikes as the network).

Panel C also measures, for every point, the same network before learning (with the paper's
start there are no lateral connections, so the delay does not matter there) and the
equally-rated Poisson population of panel A built on the learned F; both are references for
the learned code.

Delays: Eq 6 acts on a delayed lateral synapse when the spike arrives at the postsynaptic
cell (:mod:`models.spikecoding_robust`, ``lateral_rule``).  Measured with ``--quick`` (seed 1,
5 seeds per point): with 1 / 2 / 4 ms delays and 2 ms PSCs the error after learning rises
with the delay (0.009 / 0.017 / 0.045 without noise) but stays below the error before
learning (0.20–0.21) and that of the Poisson population (0.18–0.23) at every noise level, by
at least 15× / 9× / 3×.  With Eq 6 at the presynaptic spike (``--set lateral_rule=spike``)
learning with a 2 or 4 ms delay drives every cell to the one-spike-per-step ceiling (50 Hz at
dt = 1 ms) and the code fails (error 1.00 in 5 of 5 seeds); with 1 ms it still learns
(0.0078 ± 0.0006).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, ms, second

from b2models.analysis import coding
from b2models.backend import Session
from b2models.data.signals import SmoothedNoise
from b2models.models.spikecoding_robust import RobustNetwork, RobustParams
from b2models.params import jsonable
from b2models.protocol import Claim, Protocol

PANELS = ("A", "B", "C")
#: which network the sweep learns: the paper's E–I network of Fig 4 (``ei``) or the Fig 2 network (``single``)
NETWORKS = ("ei", "single")


@dataclass
class Fig7Params(RobustParams):
    """Network (Fig 2 values) plus the sweep."""

    duration: Quantity = field(default_factory=lambda: 1000 * second)  # learning per point
    chunk: Quantity = field(default_factory=lambda: 20 * second)  # one re-run of the binary
    test: Quantity = field(default_factory=lambda: 20 * second)  # decoder fit segment, and test segment
    discard: Quantity = field(default_factory=lambda: 0.2 * second)  # transient dropped at test start
    eps_scale: float = 5.0  # learning rates × this (Fig 2's ε_Ω = 1e-3, ε_F = 1e-4)
    decoder_ridge: float = 1e-3  # ridge of the optimal decoder, relative to mean(diag(rᵀr))
    n_seeds: int = 5  # networks per point
    # sweep values as comma-separated lists (settable with --set sizes=10,20,40)
    sizes: str = "5,10,20,40,80"  # A: network sizes N
    removed: str = "0,0.2,0.4,0.6,0.8"  # B: fraction of lateral connections removed
    noise_levels: str = "0,0.003,0.01,0.03,0.06"  # C: noise s.d. per step
    delays: str = "0,1,2,4"  # C/D: lateral synaptic delays (ms)
    psc_taus: str = "0,2,2,2"  # C/D: PSC time constant for each delay (ms; 0: jump)
    panels: str = "ABC"  # which panels to run
    network: str = "single"  # 'single': the Fig 2 network; 'ei': the paper's E–I network (Fig 4 model)
    # the E–I network's sweep (network='ei'); its model parameters are EIParams' (Fig 4, authors' code)
    ei_N_E: int = 80  # E cells (N_I = ei_N_E / 4)
    ei_duration: Quantity = field(default_factory=lambda: 40 * second)  # learning per point
    ei_chunk: Quantity = field(default_factory=lambda: 1 * second)  # one re-run of the binary
    ei_test: Quantity = field(default_factory=lambda: 2 * second)  # decoder fit segment, and test segment
    ei_eps_scale: float = 200.0  # × the authors' EI learning rates (ε_F = 1e-5, ε_Ω = 1e-4), as Figs 4/8 --quick
    ei_sizes: str = "20,40,80"  # A: E cells ("": panel A not run for the E–I network)
    ei_removed: str = "0,0.4,0.6,0.8,0.9"  # B: fraction of connections between cells removed before learning
    ei_removed_types: str = "EE,EI,IE,II"  # B: which connection types lose that fraction (post-pre: IE = I → E)
    ei_noise_levels: str = "0,0.002,0.006,0.02"  # C: membrane noise s.d. per 0.1 ms step (authors: 0.002)
    ei_delays: str = "0,1,2"  # C: synaptic delays (ms) of every connection between cells
    ei_arbiter: str = "delayed"  # one-spike arbiter with delays: 'delayed' (obeys them) or 'instant'
    poisson_rates: str = "5,10"  # Hz: rate-matched Poisson populations beside the network (and one at its rate)

    def validate(self):
        if self.network not in NETWORKS:
            raise ValueError(f"network={self.network!r}: expected one of {NETWORKS}")
        if self.network == "ei":
            self.validate_ei()
            return
        super().validate()
        if float(self.chunk) <= 0 or float(self.duration) < float(self.chunk):
            raise ValueError(f"need 0 < chunk <= duration (chunk={self.chunk}, duration={self.duration})")
        for name in ("chunk", "test"):
            steps = float(getattr(self, name) / self.dt)
            if abs(steps - round(steps)) > 1e-6:
                raise ValueError(f"{name}={getattr(self, name)} is not a whole number of steps dt={self.dt}")
        if float(self.discard) >= float(self.test):
            raise ValueError(f"discard={self.discard} must be shorter than test={self.test}")
        if self.n_seeds < 1 or self.eps_scale <= 0:
            raise ValueError(f"n_seeds >= 1 and eps_scale > 0 are required ({self.n_seeds}, {self.eps_scale})")
        if self.decoder_ridge < 0:
            raise ValueError(f"decoder_ridge={self.decoder_ridge} must be >= 0")
        if not self.panels or set(self.panels) - set(PANELS):
            raise ValueError(f"panels={self.panels!r}: letters from {''.join(PANELS)}")
        sizes, removed, noise = self.grid("sizes"), self.grid("removed"), self.grid("noise_levels")
        delays, taus = self.grid("delays"), self.grid("psc_taus")
        if any(int(n) != n or n < 2 for n in sizes):
            raise ValueError(f"sizes={self.sizes!r}: whole numbers >= 2")
        if any(not 0 <= f < 1 for f in removed):
            raise ValueError(f"removed={self.removed!r}: fractions in [0, 1)")
        if any(v < 0 for v in noise):
            raise ValueError(f"noise_levels={self.noise_levels!r}: must be >= 0")
        if len(delays) != len(taus):
            raise ValueError(f"delays={self.delays!r} and psc_taus={self.psc_taus!r} need the same length")
        for d, tau in zip(delays, taus):
            dataclasses.replace(self, delay=d * ms, epsc_tau=tau * ms).check_network()

    def validate_ei(self):
        from b2models.models.spikecoding_ei import ARBITERS

        for name in ("ei_chunk", "ei_test"):
            q = getattr(self, name)
            if float(q) <= 0:
                raise ValueError(f"{name}={q} must be positive")
        if float(self.discard) >= float(self.ei_test):
            raise ValueError(f"discard={self.discard} must be shorter than ei_test={self.ei_test}")
        if float(self.ei_duration) < float(self.ei_chunk):
            raise ValueError(f"ei_duration={self.ei_duration} must be at least one ei_chunk ({self.ei_chunk})")
        if self.n_seeds < 1 or self.ei_eps_scale <= 0:
            raise ValueError(f"n_seeds >= 1 and ei_eps_scale > 0 are required ({self.n_seeds}, {self.ei_eps_scale})")
        if self.ei_arbiter not in ARBITERS:
            raise ValueError(f"ei_arbiter={self.ei_arbiter!r}: expected one of {ARBITERS}")
        if not self.panels or set(self.panels) - set(PANELS):
            raise ValueError(f"panels={self.panels!r}: letters from {''.join(PANELS)}")
        sizes = self.grid("ei_sizes") if str(self.ei_sizes).strip() else ()
        if any(int(n) != n or n < 4 or int(n) % 4 for n in sizes) or self.ei_N_E % 4:
            raise ValueError(f"ei_sizes={self.ei_sizes!r}, ei_N_E={self.ei_N_E}: multiples of 4 (N_I = N_E / 4)")
        if any(not 0 <= f < 1 for f in self.grid("ei_removed")):
            raise ValueError(f"ei_removed={self.ei_removed!r}: fractions in [0, 1)")
        removed_types(self.ei_removed_types)
        if any(v < 0 for v in self.grid("ei_noise_levels")):
            raise ValueError(f"ei_noise_levels={self.ei_noise_levels!r}: must be >= 0")
        if any(r <= 0 for r in self.grid("poisson_rates")):
            raise ValueError(f"poisson_rates={self.poisson_rates!r}: rates in Hz, > 0")
        for d in self.grid("ei_delays"):
            ei_params(self, self.ei_N_E, d).validate()
        ei_params(self, self.ei_N_E, 0.0).validate()
        if abs(float(self.ei_chunk / ei_params(self, 4, 0.0).dt) - round(float(self.ei_chunk / ei_params(
                self, 4, 0.0).dt))) > 1e-6:
            raise ValueError(f"ei_chunk={self.ei_chunk} is not a whole number of steps")

    def grid(self, name: str) -> tuple:
        """The values of a comma-separated sweep field as floats."""
        text = getattr(self, name)
        try:
            vals = tuple(float(v) for v in str(text).split(",") if v.strip())
        except ValueError:
            raise ValueError(f"{name}={text!r}: expected comma-separated numbers") from None
        if not vals:
            raise ValueError(f"{name}={text!r}: needs at least one value")
        return vals

    def check_network(self):
        RobustParams.validate(self)


def quick_params(p: Fig7Params) -> Fig7Params:
    """Small sweeps.  Fig 2 network (``network=single``): 200 s of learning at ×10 rates, 5 seeds, 4 points
    per curve (4 delays in C).  E–I network: 40 E / 10 I cells, 20 s of learning at ×200 rates, panels B and C
    only (removed 0 / 60 / 80 / 90 %; delays 0 / 1 / 2 ms × noise 0 / 0.002 / 0.01 per step), 5 seeds."""
    return dataclasses.replace(
        p, duration=200 * second, chunk=20 * second, test=20 * second, eps_scale=10.0, sizes="5,10,20,40",
        removed="0,0.3,0.6,0.9", noise_levels="0,0.01,0.03,0.06", delays="0,1,2,4", psc_taus="0,2,2,2",
        ei_N_E=40, ei_duration=20 * second, ei_chunk=1 * second, ei_test=2 * second, ei_sizes="",
        ei_removed="0,0.6,0.8,0.9", ei_noise_levels="0,0.002,0.01", ei_delays="0,1,2",
    )


# ----------------------------------------------------------------------------------------
# the E–I network (network='ei')
# ----------------------------------------------------------------------------------------
def ei_params(p: Fig7Params, n_e: int, delay_ms: float):
    """EIParams for one build: the Fig 4 model (authors' values), 2-D input, the sweep's size and delay."""
    from b2models.models.spikecoding_ei import EIParams

    return EIParams(N_E=int(n_e), N_I=int(n_e) // 4, J=2, n_record=0, delay=delay_ms * ms, arbiter=p.ei_arbiter,
                    noise_run_arg=True, eps_F=1e-5 * p.ei_eps_scale, eps_Omega=1e-4 * p.ei_eps_scale)


def ei_points(p: Fig7Params, seed: int) -> list[dict]:
    """Every (panel, value, seed) point of the E–I sweep; its build key is (N_E, delay)."""
    from b2models.models.spikecoding_ei import EIParams

    noise0 = EIParams().noise_per_step
    seeds = [seed * 1000 + k for k in range(p.n_seeds)]
    pts = []
    if "A" in p.panels and str(p.ei_sizes).strip():
        pts += [dict(panel="A", N=int(n), removed=0.0, noise=noise0, delay=0.0, tau=0.0, seed=s)
                for n in p.grid("ei_sizes") for s in seeds]
    if "B" in p.panels:
        pts += [dict(panel="B", N=p.ei_N_E, removed=float(f), noise=noise0, delay=0.0, tau=0.0, seed=s)
                for f in p.grid("ei_removed") for s in seeds]
    if "C" in p.panels:
        pts += [dict(panel="C", N=p.ei_N_E, removed=0.0, noise=float(lv), delay=float(d), tau=0.0, seed=s)
                for d in p.grid("ei_delays") for lv in p.grid("ei_noise_levels") for s in seeds]
    return pts


class _SweepNetwork:
    """A session and a compiled network for one build key, as a context manager for the sweep; subclasses
    give ``session_name``, ``L`` (steps per chunk), ``code_key()`` and ``network(session)``."""

    session_name = ""

    def __enter__(self):
        self.session = Session(self.backend, self.session_name, key=(self.code_key(), self.L), threads=self.threads)
        self.session.open()
        try:
            self.net = self.network(self.session)
        except BaseException:
            self.session.close()
            raise
        return self

    def __exit__(self, *exc):
        self.session.close()
        return False


class _Builder:
    """Picklable ``build(key)`` for the sweep workers: ``built`` (a :class:`_SweepNetwork` class) of the key."""

    def __init__(self, p, backend, threads, built=None):
        self.p, self.backend, self.threads = p, backend, threads
        self.built = built

    def __call__(self, key):
        return (self.built or _Built)(self.p, self.backend, self.threads, key)


class _BuiltEI(_SweepNetwork):
    """A session and a compiled plastic E–I network for one build key (N_E, delay)."""

    session_name = "spikecoding_fig7_ei"

    def __init__(self, p: Fig7Params, backend: str, threads: int, key):
        self.p = p
        self.q = ei_params(p, key[0], key[1])
        self.backend, self.threads = backend, threads
        self.L = round(float(p.ei_chunk / self.q.dt))

    def code_key(self):
        from b2models.models.spikecoding_ei import EIParams

        return jsonable({f.name: getattr(self.q, f.name) for f in dataclasses.fields(EIParams)
                         if f.name not in ("eps_F", "eps_Omega", "noise_per_step")})

    def network(self, session):
        from b2models.models.spikecoding_ei import EINetwork

        return EINetwork(self.q, session, self.L, plastic=True, name="ei7")


def ei_build_key(pt: dict):
    return (pt["N"], pt["delay"])


#: connection types of the E–I network by weight matrix (post × pre): W_IE holds the I → E connections
REMOVABLE_TYPES = ("EE", "EI", "IE", "II")


def removed_types(text: str) -> tuple:
    """The connection types named in ``ei_removed_types`` (comma-separated, from :data:`REMOVABLE_TYPES`)."""
    types = tuple(t.strip().upper() for t in str(text).split(",") if t.strip())
    bad = [t for t in types if t not in REMOVABLE_TYPES]
    if not types or bad or len(set(types)) != len(types):
        raise ValueError(f"ei_removed_types={text!r}: a comma-separated subset of {','.join(REMOVABLE_TYPES)} "
                         "(W_post-pre: IE = the I → E connections), each at most once")
    return types


def random_removal_masks(net, fraction: float, rng: np.random.Generator, types=REMOVABLE_TYPES) -> dict:
    """Presence masks that remove ``fraction`` of the connections between cells at random, in every
    connection type of ``types`` (default all: E → E, E → I, I → E, I → I); the I cells' self-connections
    (their reset) are kept.  The random draws do not depend on ``types`` (a type left out keeps all its
    connections), so removing one type removes exactly that type's share of the all-types draw."""
    masks = {}
    for key in ("W_EE", "W_EI", "W_IE", "W_II"):
        shape = net.shapes[key]
        M = (rng.random(shape) >= fraction).astype(float)
        if key[2:] not in types:
            M = np.ones(shape)
        if key == "W_II":
            np.fill_diagonal(M, 1.0)
        if key == "W_EE":
            np.fill_diagonal(M, 0.0)  # no E autapse synapse (the fixed autapse is the reset)
        masks[key] = M
    return masks


def connections_between_cells(net) -> int:
    """Number of connections between different cells (E → E off-diagonal, E → I, I → E, I → I off-diagonal)."""
    n_e, n_i = net.shapes["W_EI"][1], net.shapes["W_EI"][0]
    return n_e * (n_e - 1) + 2 * n_e * n_i + n_i * (n_i - 1)


class _RunPointEI:
    """Learn a fresh E–I network for one point, then test it (E readout) beside Poisson populations."""

    def __init__(self, p: Fig7Params):
        self.p = p

    def __call__(self, built: _BuiltEI, pt: dict) -> dict:
        from b2models.models.spikecoding_ei import initial_weights

        p, q, net, L = self.p, built.q, built.net, built.L
        dt = float(q.dt)
        lam_dt = float(q.lambda_ * q.dt)
        seed = int(pt["seed"])
        rng = np.random.default_rng([seed, 7])
        net.set_masks(**{k: np.ones(v.shape) for k, v in net.masks.items()})
        net.set_weights(**initial_weights(q, np.random.default_rng(seed)))
        net.set_dynamic_state(V_E=0, r_E=0, V_I=0, r_I=0, xbar=0)
        kept = 1.0
        if pt["removed"] > 0:
            masks = random_removal_masks(net, pt["removed"], rng, removed_types(p.ei_removed_types))
            net.set_masks(**masks)
            present = sum(float(masks[k].sum()) for k in masks) - q.N_I  # minus the I resets
            kept = present / connections_between_cells(net)
        net.noise_sd = pt["noise"]
        sig = float(q.input_sigma / q.dt)
        train = SmoothedNoise(q.J, sig, q.input_amplitude, lam_dt, dt, seed=[seed, 1])
        held = SmoothedNoise(q.J, sig, q.input_amplitude, lam_dt, dt, seed=[seed, 2])
        out = dict(pt)
        out["kept_fraction"] = kept
        if pt["panel"] == "C":
            before = SmoothedNoise(q.J, sig, q.input_amplitude, lam_dt, dt, seed=[seed, 3])
            state = net.state()
            out["error_before"], out["rate_before_hz"], *_ = self._test(net, q, before, seed * 100_003 - 10_000)
            net.set_dynamic_state(**{k: state[k] for k in ("V_E", "r_E", "V_I", "r_I", "xbar")})
        n_chunks = int(np.floor(float(p.ei_duration / p.ei_chunk)))
        for k in range(n_chunks):
            c, _ = train.next(L)
            net.run_chunk(c, learning=True, seed=seed * 100_003 + k)
        out["error"], out["rate_hz"], out["rate_I_hz"], x_fit, x_ev = self._test(net, q, held,
                                                                                 seed * 100_003 + n_chunks)
        F = net.weights["F"]
        prng = np.random.default_rng([seed, 8])
        out["poisson_error"], _ = poisson_population_error(F, x_fit, x_ev, out["rate_hz"], dt, lam_dt, prng)
        for r in p.grid("poisson_rates"):
            out[f"poisson{r:g}_error"], _ = poisson_population_error(F, x_fit, x_ev, r, dt, lam_dt, prng)
        stray = 0.0
        for key, M in net.masks.items():
            stray = max(stray, float(np.abs(net.weights[key][M == 0]).max(initial=0.0)))
        out["max_removed_weight"] = stray
        return out

    def _test(self, net, q, held: SmoothedNoise, seed: int):
        """Frozen weights: the E decoder fitted on one held-out segment; (error, E rate, I rate) on the next."""
        p = self.p
        lam_dt = float(q.lambda_ * q.dt)
        L = net.chunk_steps
        n_test = int(np.ceil(float(p.ei_test / p.ei_chunk) - 1e-9)) * L
        d = round(float(p.discard / q.dt))  # transient dropped at the start of each segment
        seg = []
        for part in range(2):
            c, x = held.next(n_test)
            r0 = net.r_E.copy()
            si, st, n_i = [], [], 0
            for k in range(n_test // L):
                res = net.run_chunk(c[k * L:(k + 1) * L], learning=False, seed=seed + 1000 * (part + 1) + k)
                si.append(res.spike_i_E)
                st.append(res.spike_step_E + k * L)
                n_i += int(np.sum(res.spike_step_I + k * L >= d))
            si, st = np.concatenate(si), np.concatenate(st)
            r = coding.filtered_spike_trains(coding.spike_counts(si, st, q.N_E, n_test), lam_dt, r0=r0)
            seg.append((r[d:], x[d:], int(np.sum(st >= d)), n_i))
        (r_fit, x_fit, _, _), (r_ev, x_ev, n_sp, n_sp_i) = seg
        D = coding.optimal_decoder(r_fit, x_fit, ridge=p.decoder_ridge * float(np.mean(np.sum(r_fit**2, axis=0))))
        err = coding.coding_error(x_ev, r_ev @ D.T)
        T = len(x_ev) * float(q.dt)
        return err, coding.mean_rate(n_sp, q.N_E, T), coding.mean_rate(n_sp_i, q.N_I, T), x_fit, x_ev


def summarise_ei(p: Fig7Params, results: list[dict]) -> dict:
    """Means ± s.d. over seeds per point, and the statistics the claims read."""
    m = {"n_points": len(results), "n_seeds": p.n_seeds, "network": "ei", "ei_arbiter": p.ei_arbiter}
    rates = p.grid("poisson_rates")
    if any(r["panel"] == "A" for r in results):
        N, e, s, _ = curve(results, "A", "N")
        for k, n in enumerate(N):
            m[f"A_error_NE{int(n)}"], m[f"A_error_sd_NE{int(n)}"] = e[k], s[k]
            m[f"A_rate_hz_NE{int(n)}"] = curve(results, "A", "N", "rate_hz")[1][k]
            for r in rates:
                m[f"A_poisson{r:g}_error_NE{int(n)}"] = curve(results, "A", "N", f"poisson{r:g}_error")[1][k]
        m["A_slope_network"] = loglog_slope(N, e)
    if any(r["panel"] == "B" for r in results):
        f, e, s, _ = curve(results, "B", "removed")
        _, kept, _, _ = curve(results, "B", "removed", "kept_fraction")
        _, rate, _, _ = curve(results, "B", "removed", "rate_hz")
        base = e[f == 0][0] if (f == 0).any() else float("nan")
        for k, fv in enumerate(f):
            tag = f"removed{fv:g}"
            m[f"B_error_{tag}"], m[f"B_error_sd_{tag}"] = e[k], s[k]
            m[f"B_kept_fraction_{tag}"] = kept[k]
            m[f"B_rate_hz_{tag}"] = rate[k]
            m[f"B_error_ratio_{tag}"] = e[k] / base
        # the smallest kept fraction down to which (every larger one included) the error stays < 2× intact
        ok = [(k_, r_) for k_, r_ in zip(kept, e / base)]
        ok.sort(key=lambda t: -t[0])
        min_kept = 1.0
        for k_, r_ in ok:
            if not r_ < 2.0:
                break
            min_kept = k_
        m["B_min_kept_fraction_within_2x"] = float(min_kept)
        m["B_max_removed_weight"] = max(r["max_removed_weight"] for r in results if r["panel"] == "B")
    if any(r["panel"] == "C" for r in results):
        ratios = []
        for d in p.grid("ei_delays"):
            lvl, e, s, _ = curve(results, "C", "noise", where=lambda r, d=d: r["delay"] == d)
            tag = f"d{d:g}ms"
            for key in ("rate_hz", "rate_I_hz", "error_before", "poisson_error") + tuple(
                    f"poisson{r:g}_error" for r in rates):
                _, v, vs, _ = curve(results, "C", "noise", key, where=lambda r, d=d: r["delay"] == d)
                for k, lv in enumerate(lvl):
                    m[f"C_{key}_{tag}_noise{lv:g}"] = v[k]
            for k, lv in enumerate(lvl):
                m[f"C_error_{tag}_noise{lv:g}"], m[f"C_error_sd_{tag}_noise{lv:g}"] = e[k], s[k]
            best = int(np.nanargmin(e))
            m[f"C_best_noise_{tag}"] = float(lvl[best])
            zero = e[lvl == 0][0] if (lvl == 0).any() else float("nan")
            noisy = e[lvl > 0]
            m[f"C_best_noisy_over_noiseless_{tag}"] = float(np.nanmin(noisy) / zero) if noisy.size else float("nan")
            if d > 0:
                ratios.append(m[f"C_best_noisy_over_noiseless_{tag}"])
            for r in rates:
                ref = m[f"C_poisson{r:g}_error_{tag}_noise{lvl[best]:g}"]
                m[f"C_best_over_poisson{r:g}_{tag}"] = float(e[best] / ref)
        ratios = [r for r in ratios if np.isfinite(r)]
        m["C_noise_helps_min_ratio_delayed"] = float(min(ratios)) if ratios else float("nan")
    return m


# ----------------------------------------------------------------------------------------
# sweep points
# ----------------------------------------------------------------------------------------
def points(p: Fig7Params, seed: int) -> list[dict]:
    """Every (panel, value, seed) point; each carries its build key (N, delay, PSC τ)."""
    base_N = p.N
    pts = []
    seeds = [seed * 1000 + k for k in range(p.n_seeds)]
    if "A" in p.panels:
        pts += [dict(panel="A", N=int(n), removed=0.0, noise=p.noise_per_step, delay=0.0, tau=0.0, seed=s)
                for n in p.grid("sizes") for s in seeds]
    if "B" in p.panels:
        pts += [dict(panel="B", N=base_N, removed=float(f), noise=p.noise_per_step, delay=0.0, tau=0.0, seed=s)
                for f in p.grid("removed") for s in seeds]
    if "C" in p.panels:
        pts += [dict(panel="C", N=base_N, removed=0.0, noise=float(s_), delay=float(d), tau=float(tau), seed=s)
                for d, tau in zip(p.grid("delays"), p.grid("psc_taus")) for s_ in p.grid("noise_levels")
                for s in seeds]
    return pts


def build_key(pt: dict):
    return (pt["N"], pt["delay"], pt["tau"])


class _Built(_SweepNetwork):
    """A session and a compiled network of the Fig 2 kind for one build key (N, delay, tau)."""

    session_name = "spikecoding_fig7"

    def __init__(self, p: Fig7Params, backend: str, threads: int, key):
        N, delay, tau = key
        self.p = dataclasses.replace(p, N=N, delay=delay * ms, epsc_tau=tau * ms)
        self.q = RobustParams(**{f.name: getattr(self.p, f.name) for f in dataclasses.fields(RobustParams)})
        self.backend, self.threads = backend, threads
        self.L = round(float(p.chunk / p.dt))

    def code_key(self):
        return jsonable({f.name: getattr(self.q, f.name) for f in dataclasses.fields(RobustParams)
                         if f.name not in ("eps_Omega", "eps_F", "init", "noise_per_step")})

    def network(self, session):
        return RobustNetwork(self.q, session, self.L, name="rob")


def _present(net: RobustNetwork, c, x, learning: bool, seed: int):
    L = net.chunk_steps
    n = len(c)
    if n % L:
        raise ValueError(f"input of {n} steps is not a whole number of chunks of {L}")
    si, st = [], []
    for k in range(n // L):
        res = net.run_chunk(c[k * L:(k + 1) * L], x[k * L:(k + 1) * L], learning=learning, seed=seed + k)
        si.append(res.spike_i)
        st.append(res.spike_step + k * L)
    return np.concatenate(si), np.concatenate(st)


def poisson_population_error(F, x_fit, x_ev, mean_rate_hz: float, dt: float, lam_dt: float,
                             rng: np.random.Generator) -> tuple[float, float]:
    """Coding error of Poisson cells with rates a [F_iᵀ x]₊ and the given mean rate (optimal decoder).

    Returns (error, realised mean rate in Hz).  ``F`` is J × N, ``x_fit``/``x_ev`` are (T, J).
    """
    F = np.asarray(F, dtype=float)
    drive_fit = np.maximum(x_fit @ F, 0.0)
    drive_ev = np.maximum(x_ev @ F, 0.0)
    m = drive_fit.mean()
    if m <= 0 or mean_rate_hz <= 0:
        return float("nan"), 0.0
    a = mean_rate_hz / m
    rs, n_sp = [], 0
    for drive in (drive_fit, drive_ev):
        p_spk = np.clip(a * drive * dt, 0.0, 1.0)
        o = (rng.random(p_spk.shape) < p_spk).astype(float)
        n_sp = o.sum()
        rs.append(coding.filtered_spike_trains(o, lam_dt))
    D = coding.optimal_decoder(rs[0], x_fit)
    err = coding.coding_error(x_ev, rs[1] @ D.T)
    return err, float(n_sp / F.shape[1] / (len(x_ev) * dt))


class _RunPoint:
    """Picklable ``run_point(built, point)``: learn a fresh network, then test it."""

    def __init__(self, p: Fig7Params):
        self.p = p

    def __call__(self, built: _Built, pt: dict) -> dict:
        p = built.p
        net = built.net
        L = built.L
        dt = float(p.dt)
        lam_dt = float(p.lambda_ * p.dt)
        seed = int(pt["seed"])
        net.reset_state(seed)
        rng = np.random.default_rng([seed, 7])
        if pt["removed"] > 0:
            off = ~np.eye(p.N, dtype=bool)
            alive = np.ones((p.N, p.N))
            alive[off] = (rng.random(int(off.sum())) >= pt["removed"]).astype(float)
            net.set_alive(alive)
        net.noise_sd = pt["noise"]
        net.eps_Omega, net.eps_F = p.eps_Omega * self.p.eps_scale, p.eps_F * self.p.eps_scale
        sigma_steps = float(p.input_sigma / p.dt)
        train = SmoothedNoise(p.J, sigma_steps, p.input_amplitude, lam_dt, dt, seed=[seed, 1])
        held = SmoothedNoise(p.J, sigma_steps, p.input_amplitude, lam_dt, dt, seed=[seed, 2])
        n_chunks = int(np.floor(float(p.duration / p.chunk)))
        out = dict(pt)
        if pt["panel"] == "C":
            # the same network (delay, PSC, noise) before learning, on its own held-out input
            state = (net.V.copy(), net.r.copy(), net.I_rec.copy())
            before = SmoothedNoise(p.J, sigma_steps, p.input_amplitude, lam_dt, dt, seed=[seed, 3])
            out["error_before"], out["rate_before_hz"], _, _ = self._test(net, p, before, seed * 100_003 - 10_000)
            net.V, net.r, net.I_rec = state
        for k in range(n_chunks):
            c, x = train.next(L)
            net.run_chunk(c, x, learning=True, seed=seed * 100_003 + k)
        out["error"], out["rate_hz"], x_fit, x_ev = self._test(net, p, held, seed * 100_003 + n_chunks)
        if pt["panel"] in ("A", "C"):
            out["poisson_error"], out["poisson_rate_hz"] = poisson_population_error(
                net.F, x_fit, x_ev, out["rate_hz"], dt, lam_dt, np.random.default_rng([seed, 8]))
        out["lateral_alive"] = float(net.alive[~np.eye(p.N, dtype=bool)].mean()) if p.N > 1 else 1.0
        out["max_removed_weight"] = float(np.abs(net.Omega[net.alive == 0]).max()) if (net.alive == 0).any() else 0.0
        return out

    def _test(self, net: RobustNetwork, p: Fig7Params, held: SmoothedNoise, seed: int):
        """Frozen weights: decoder fitted on one held-out segment, (error, rate in Hz) on the next."""
        lam_dt = float(p.lambda_ * p.dt)
        n_test = int(np.ceil(float(p.test / p.chunk) - 1e-9)) * net.chunk_steps
        d = round(float(p.discard / p.dt))
        seg = []
        for part in range(2):
            c, x = held.next(n_test)
            r0 = net.r.copy()
            si, st = _present(net, c, x, learning=False, seed=seed + 1000 * (part + 1))
            r = coding.filtered_spike_trains(coding.spike_counts(si, st, p.N, n_test), lam_dt, r0=r0)
            seg.append((r[d:], x[d:], int(np.sum(st >= d))))
        (r_fit, x_fit, _), (r_ev, x_ev, n_sp) = seg
        D = coding.optimal_decoder(r_fit, x_fit, ridge=p.decoder_ridge * float(np.mean(np.sum(r_fit**2, axis=0))))
        err = coding.coding_error(x_ev, r_ev @ D.T)
        return err, coding.mean_rate(n_sp, p.N, len(x_ev) * float(p.dt)), x_fit, x_ev


# ----------------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------------
def curve(results: list[dict], panel: str, x_key: str, y_key: str = "error", where=None):
    """(x values, mean, s.d., n) of ``y_key`` over seeds for every ``x_key`` value of one panel."""
    rows = [r for r in results if r["panel"] == panel and (where is None or where(r))]
    xs = sorted({r[x_key] for r in rows})
    mean, sd, n = [], [], []
    for xv in xs:
        ys = np.array([r[y_key] for r in rows if r[x_key] == xv], dtype=float)
        ys = ys[np.isfinite(ys)]
        mean.append(ys.mean() if ys.size else np.nan)
        sd.append(ys.std(ddof=1) if ys.size > 1 else np.nan)
        n.append(ys.size)
    return np.array(xs, dtype=float), np.array(mean), np.array(sd), np.array(n)


def _delay_is(d, tau):
    return lambda r: (r["delay"], r["tau"]) == (d, tau)


def loglog_slope(x, y) -> float:
    ok = np.isfinite(y) & (y > 0) & (x > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def summarise(p: Fig7Params, results: list[dict]) -> dict:
    m = {"n_points": len(results), "n_seeds": p.n_seeds}
    if "A" in p.panels:
        N, e, s, _ = curve(results, "A", "N")
        _, pe, ps, _ = curve(results, "A", "N", "poisson_error")
        _, rate, _, _ = curve(results, "A", "N", "rate_hz")
        for k, n in enumerate(N):
            n = int(n)
            m[f"A_error_N{n}"], m[f"A_error_sd_N{n}"] = e[k], s[k]
            m[f"A_poisson_error_N{n}"], m[f"A_poisson_error_sd_N{n}"] = pe[k], ps[k]
            m[f"A_rate_hz_N{n}"] = rate[k]
        m["A_slope_network"] = loglog_slope(N, e)
        m["A_slope_poisson"] = loglog_slope(N, pe)
        m["A_poisson_over_network_largest_N"] = float(pe[-1] / e[-1])
        m["A_network_better_at_all_N"] = bool(np.all(e < pe))
    if "B" in p.panels:
        f, e, s, _ = curve(results, "B", "removed")
        for k, fv in enumerate(f):
            m[f"B_error_removed{fv:g}"], m[f"B_error_sd_removed{fv:g}"] = e[k], s[k]
        m["B_error_ratio_max_removed"] = float(e[-1] / e[0])
        m["B_max_removed_weight"] = max(r["max_removed_weight"] for r in results if r["panel"] == "B")
    if "C" in p.panels:
        ratios_delayed = []
        for d, tau in zip(p.grid("delays"), p.grid("psc_taus")):
            lvl, e, s, _ = curve(results, "C", "noise", where=_delay_is(d, tau))
            tag = f"d{d:g}ms_tau{tau:g}ms"
            _, rate, _, _ = curve(results, "C", "noise", "rate_hz", where=_delay_is(d, tau))
            _, eb, sb, _ = curve(results, "C", "noise", "error_before", where=_delay_is(d, tau))
            _, ep, sp, _ = curve(results, "C", "noise", "poisson_error", where=_delay_is(d, tau))
            _, rate_sd = curve(results, "C", "noise", "rate_hz", where=_delay_is(d, tau))[1:3]
            for k, lv in enumerate(lvl):
                m[f"C_error_{tag}_noise{lv:g}"], m[f"C_error_sd_{tag}_noise{lv:g}"] = e[k], s[k]
                m[f"C_rate_hz_{tag}_noise{lv:g}"], m[f"C_rate_hz_sd_{tag}_noise{lv:g}"] = rate[k], rate_sd[k]
                m[f"C_error_before_{tag}_noise{lv:g}"], m[f"C_error_before_sd_{tag}_noise{lv:g}"] = eb[k], sb[k]
                m[f"C_poisson_error_{tag}_noise{lv:g}"], m[f"C_poisson_error_sd_{tag}_noise{lv:g}"] = ep[k], sp[k]
            best = int(np.nanargmin(e))
            m[f"C_best_noise_{tag}"] = float(lvl[best])
            m[f"C_best_error_{tag}"] = float(e[best])
            # the paper's reading (the mean curve's lowest noisy point against noise 0), and a paired
            # secondary count: seeds whose best noisy error is below their own noiseless error (same input)
            if lvl.size > 1 and lvl[0] == 0:
                m[f"C_best_noisy_over_noiseless_{tag}"] = float(np.nanmin(e[1:]) / e[0])
                paired = seeds_below_noiseless(
                    [r for r in results if r["panel"] == "C" and (r["delay"], r["tau"]) == (d, tau)])
                for lv, (below, total, median) in paired.items():
                    m[f"C_seeds_below_noiseless_{tag}_noise{lv:g}"] = below
                    m[f"C_seeds_paired_{tag}_noise{lv:g}"] = total
                    m[f"C_median_paired_ratio_{tag}_noise{lv:g}"] = median
                if d > 0:
                    ratios_delayed.append(m[f"C_best_noisy_over_noiseless_{tag}"])
            m[f"C_worst_after_over_before_{tag}"] = float(np.nanmax(e / eb))
            m[f"C_worst_after_over_poisson_{tag}"] = float(np.nanmax(e / ep))
            m[f"C_max_rate_hz_{tag}"] = float(np.nanmax(rate))
        m["C_rate_ceiling_hz"] = 1.0 / (p.N * float(p.dt)) if p.one_spike_per_step else float("nan")
        delays, taus = p.grid("delays"), p.grid("psc_taus")
        d0 = f"d{delays[0]:g}ms_tau{taus[0]:g}ms"
        dl = f"d{delays[-1]:g}ms_tau{taus[-1]:g}ms"
        lv0 = min(p.grid("noise_levels"))
        lv1 = max(p.grid("noise_levels"))
        m["C_error_ratio_max_noise_no_delay"] = m[f"C_error_{d0}_noise{lv1:g}"] / m[f"C_error_{d0}_noise{lv0:g}"]
        m["C_error_ratio_longest_delay_no_noise"] = m[f"C_error_{dl}_noise{lv0:g}"] / m[f"C_error_{d0}_noise{lv0:g}"]
        m["C_longest_delay_after_over_before"] = m[f"C_worst_after_over_before_{dl}"]
        m["C_longest_delay_after_over_poisson"] = m[f"C_worst_after_over_poisson_{dl}"]
        m["C_longest_delay_max_rate_over_ceiling"] = m[f"C_max_rate_hz_{dl}"] / m["C_rate_ceiling_hz"]
        if ratios_delayed:
            m["C_noise_helps_min_ratio_delayed"] = float(min(ratios_delayed))
    return m


def seeds_below_noiseless(rows: list[dict]) -> dict:
    """Per noise level > 0: (seeds whose error is below their own noiseless error, seeds with both, median of
    error / noiseless error over those seeds).

    Every seed learns from the same input at every noise level, so the comparison is paired per seed.  Each
    level is counted on its own: the best of several noisy levels against one noiseless point would be below it
    by chance alone in k / (k + 1) of the seeds for k levels."""
    by_seed: dict = {}
    for r in rows:
        if np.isfinite(r["error"]):
            by_seed.setdefault(r["seed"], {})[r["noise"]] = r["error"]
    levels = sorted({lv for errs in by_seed.values() for lv in errs if lv > 0})
    out = {}
    for lv in levels:
        ratios = [errs[lv] / errs[0.0] for errs in by_seed.values() if lv in errs and 0.0 in errs and errs[0.0] > 0]
        out[lv] = (int(sum(r < 1 for r in ratios)), len(ratios), float(np.median(ratios)) if ratios else float("nan"))
    return out


def run_ei(ctx, p: Fig7Params) -> dict:
    pts = ei_points(p, ctx.seed)
    ctx.log(f"spikecoding.fig7 (E–I network, arbiter={p.ei_arbiter}): panels {p.panels}, {len(pts)} points "
            f"({p.n_seeds} seeds each), {float(p.ei_duration):g} s of learning per point at x{p.ei_eps_scale:g} "
            f"rates, backend={ctx.backend}, jobs={ctx.jobs}")
    bar = ctx.progress(total=len(pts), desc="fig7 points", unit="pt")
    results = ctx.sweep(_RunPointEI(p), pts, build=_Builder(p, ctx.backend, ctx.threads, _BuiltEI), key=ei_build_key,
                        progress=bar.update)
    bar.close()
    metrics = summarise_ei(p, results)
    for key in sorted(metrics):
        if key.startswith(("B_", "C_best", "C_noise", "A_slope")) and "_sd_" not in key:
            ctx.log(f"{key} = {metrics[key]}")
    cols = ("panel", "N", "removed", "noise", "delay", "seed", "error", "rate_hz", "rate_I_hz", "kept_fraction",
            "poisson_error") + tuple(f"poisson{r:g}_error" for r in p.grid("poisson_rates"))
    arrays = {f"points_{c}": np.array([r.get(c, np.nan) for r in results], dtype=object if c == "panel" else float)
              for c in cols}
    arrays["points_panel"] = arrays["points_panel"].astype(str)
    arrays["points_error_before"] = np.array([r.get("error_before", np.nan) for r in results], dtype=float)
    ctx.writer.save_arrays(**arrays)
    ctx.writer.save_metrics(metrics)
    _figures_ei(ctx, p, results)
    return metrics


def _figures_ei(ctx, p: Fig7Params, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = p.grid("poisson_rates")
    if "B" in p.panels:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        rows = [r for r in results if r["panel"] == "B"]
        f, e, s, _ = curve(results, "B", "removed")
        _, kept, _, _ = curve(results, "B", "removed", "kept_fraction")
        ax.errorbar(100 * kept, e, yerr=s, fmt="o-", color="k", capsize=2, label="E–I network")
        for k, r in enumerate(rates):
            _, pe, _, _ = curve(results, "B", "removed", f"poisson{r:g}_error")
            ax.plot(100 * kept, pe, "--", color=f"C{k + 3}", label=f"Poisson, {r:g} Hz")
        ax.set_yscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("connections between cells kept (%)")
        ax.set_ylabel("E coding error after learning")
        ax.set_title(f"B (N_E = {p.ei_N_E}, {p.n_seeds} seeds, {len(rows)} points)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig7B_removed")
    if "C" in p.panels:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for k, d in enumerate(p.grid("ei_delays")):
            lvl, e, s, _ = curve(results, "C", "noise", where=lambda r, d=d: r["delay"] == d)
            ax.errorbar(lvl, e, yerr=s, fmt="o-", color=f"C{k}", capsize=2, label=f"delay {d:g} ms")
        for k, r in enumerate(rates):
            _, pe, _, _ = curve(results, "C", "noise", f"poisson{r:g}_error")
            ax.plot(lvl, pe, "--", color="0.5", lw=0.8 + k)
            ax.text(lvl[-1], pe[-1], f" Poisson {r:g} Hz", fontsize=6, va="center")
        ax.set_yscale("log")
        ax.set_xlabel("membrane noise s.d. per 0.1 ms step (threshold 0.5)")
        ax.set_ylabel("E coding error after learning")
        ax.set_title(f"C: noise × delay (E–I network, arbiter {p.ei_arbiter}, {p.n_seeds} seeds)", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig7CD_noise_delay")


def run(ctx) -> dict:
    p: Fig7Params = ctx.params
    p.validate()
    if p.network == "ei":
        return run_ei(ctx, p)
    pts = points(p, ctx.seed)
    ctx.log(f"spikecoding.fig7: panels {p.panels}, {len(pts)} points ({p.n_seeds} seeds each), "
            f"{float(p.duration):g} s of learning per point at x{p.eps_scale:g} rates, backend={ctx.backend}, "
            f"jobs={ctx.jobs}{', dask ' + ctx.dask if ctx.dask else ''}")
    bar = ctx.progress(total=len(pts), desc="fig7 points", unit="pt")
    results = ctx.sweep(_RunPoint(p), pts, build=_Builder(p, ctx.backend, ctx.threads), key=build_key,
                        progress=bar.update)
    bar.close()
    metrics = summarise(p, results)
    for key in sorted(metrics):
        if key.startswith(("A_slope", "A_poisson_over", "B_error_ratio", "C_best", "C_error_ratio", "C_worst",
                           "C_longest")):
            ctx.log(f"{key} = {metrics[key]}")
    cols = ("panel", "N", "removed", "noise", "delay", "tau", "seed", "error", "rate_hz")
    arrays = {f"points_{c}": np.array([r[c] for r in results], dtype=object if c == "panel" else float)
              for c in cols}
    arrays["points_panel"] = arrays["points_panel"].astype(str)
    for c in ("poisson_error", "error_before", "rate_before_hz"):
        arrays[f"points_{c}"] = np.array([r.get(c, np.nan) for r in results], dtype=float)
    ctx.writer.save_arrays(**arrays)
    ctx.writer.save_metrics(metrics)
    _figures(ctx, p, results)
    return metrics


def psc_kernel(t_ms, delay_ms: float, tau_ms: float, dt_ms: float):
    """Unit-charge PSC: an exponential of time constant τ starting after the delay (a one-step pulse for τ = 0)."""
    t = np.asarray(t_ms, dtype=float) - delay_ms
    if tau_ms == 0:
        return np.where((t >= 0) & (t < dt_ms), 1.0 / dt_ms, 0.0)
    return np.where(t >= 0, np.exp(-np.clip(t, 0, None) / tau_ms) / tau_ms, 0.0)


def _figures(ctx, p: Fig7Params, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "A" in p.panels:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        for key, label, color in (("error", "learned network", "k"), ("poisson_error", "Poisson, same rate", "C3")):
            N, e, s, _ = curve(results, "A", "N", key)
            ax.errorbar(N, e, yerr=s, fmt="o-", color=color, capsize=2, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([int(n) for n in p.grid("sizes")], [str(int(n)) for n in p.grid("sizes")])
        ax.minorticks_off()
        ax.set_xlabel("network size N")
        ax.set_ylabel("coding error")
        ax.legend(fontsize=8)
        ax.set_title(f"A (mean ± s.d., {p.n_seeds} seeds)")
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig7A_size")
    if "B" in p.panels:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        f, e, s, _ = curve(results, "B", "removed")
        ax.errorbar(100 * f, e, yerr=s, fmt="o-", color="k", capsize=2)
        ax.set_yscale("log")
        ax.set_xlabel("lateral connections removed before learning (%)")
        ax.set_ylabel("coding error after learning")
        ax.set_title(f"B (N = {p.N}, {p.n_seeds} seeds)")
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig7B_removed")
    if "C" in p.panels:
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.5))
        for k, (d, tau) in enumerate(zip(p.grid("delays"), p.grid("psc_taus"))):
            lvl, e, s, _ = curve(results, "C", "noise", where=_delay_is(d, tau))
            label = f"delay {d:g} ms, " + (f"PSC τ {tau:g} ms" if tau else "jump")
            axes[0].errorbar(lvl, e, yerr=s, fmt="o-", color=f"C{k}", capsize=2, label=label)
            _, eb, _, _ = curve(results, "C", "noise", "error_before", where=_delay_is(d, tau))
            _, ep, _, _ = curve(results, "C", "noise", "poisson_error", where=_delay_is(d, tau))
            axes[0].plot(lvl, eb, ":", color=f"C{k}", lw=1)
            axes[0].plot(lvl, ep, "--", color=f"C{k}", lw=1)
            t = np.arange(0, 20, 0.05)
            axes[1].plot(t, psc_kernel(t, d, tau, float(p.dt / ms)), color=f"C{k}", label=label)
        axes[0].set_yscale("log")
        axes[0].set_xlabel("noise s.d. per step (threshold 0.5)")
        axes[0].set_ylabel("coding error after learning")
        axes[0].set_title("C (dotted: before learning; dashed: Poisson, same rate)", fontsize=8)
        axes[0].legend(fontsize=7)
        axes[1].set_xlabel("time after the presynaptic spike (ms)")
        axes[1].set_ylabel("PSC (unit charge, 1/ms)")
        axes[1].set_title("D: lateral PSC time courses")
        fig.tight_layout()
        ctx.writer.save_figure(fig, "fig7CD_noise_delay")


PROTOCOL = Protocol(
    name="spikecoding.fig7",
    paper="spikecoding",
    summary="robustness of learned networks: error vs size (vs Poisson), removed connections, noise and "
            "delays (Brendel et al. 2020, Fig 7)",
    params=Fig7Params,
    quick=quick_params,
    run=run,
    claims=[
        Claim("B_min_kept_fraction_within_2x", "E–I network: smallest fraction of connections kept (all larger "
              "ones too) with the error < 2× the intact network's", "only keeping < 20 % of the connections "
              "hurts (Fig 7B)", "≤ 0.2", lambda v: v is not None and v <= 0.2, "{:.2f}"),
        Claim("B_error_ratio_removed0.9", "E–I network: error with 90 % of the connections removed / intact",
              "hurts (Fig 7B)", "—", None, "{:.2f}"),
        Claim("C_noise_helps_min_ratio_delayed", "lowest (best noisy error / noiseless error) over the "
              "delays > 0 (mean over seeds)", "noise lowers the error with delays (Fig 7C)", "< 1",
              lambda v: v is not None and v < 1, "{:.3f}"),
        Claim("C_best_noisy_over_noiseless_d0ms", "no delay: best noisy error / noiseless error",
              "noise does not help without delay", "≥ 1", None, "{:.3f}"),
        Claim("C_best_over_poisson5_d2ms", "E–I network, 2 ms delay: best error / Poisson population at 5 Hz",
              "better than a rate-matched Poisson code (Fig 7C)", "< 1", lambda v: v is not None and v < 1,
              "{:.3f}"),
        Claim("A_slope_network", "log-log slope of error vs N, learned network",
              "falls faster with N than a Poisson population (Fig 7A)", "< Poisson slope", None, "{:.2f}"),
        Claim("A_slope_poisson", "log-log slope of error vs N, Poisson population of equal rate",
              "≈ −1 (rate code)", "—", None, "{:.2f}"),
        Claim("A_network_better_at_all_N", "learned network beats the equally-rated Poisson population at every N",
              "yes", "yes", lambda v: bool(v), "{}"),
        Claim("B_error_ratio_max_removed", "error with the largest fraction of connections removed / with none",
              "graceful degradation (Fig 7B)", "—", None, "{:.2f}"),
        Claim("C_error_ratio_max_noise_no_delay", "error at the strongest noise / without noise (no delay)",
              "error grows with noise (Fig 7C)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("C_error_ratio_longest_delay_no_noise", "error with the longest delay / without delay (no noise)",
              "delays degrade the code (Fig 7C–D)", "> 1", lambda v: v > 1, "{:.2f}"),
        Claim("C_longest_delay_after_over_before", "longest delay: error after / before learning (worst noise level)",
              "networks learning with delays still learn a good code (Fig 7C)", "< 0.5", lambda v: v < 0.5,
              "{:.3f}"),
        Claim("C_longest_delay_after_over_poisson",
              "longest delay: error after learning / equally-rated Poisson population (worst noise level)",
              "far below a rate code (Fig 7C)", "< 0.5", lambda v: v < 0.5, "{:.3f}"),
        Claim("C_longest_delay_max_rate_over_ceiling",
              "longest delay: highest mean rate / one-spike-per-step ceiling", "—", "< 1",
              lambda v: v < 1, "{:.2f}"),
    ],
    figures=["fig7A_size", "fig7B_removed", "fig7CD_noise_delay"],
)
