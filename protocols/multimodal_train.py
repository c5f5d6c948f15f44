"""Protocol ``multimodal.train``: a deep LCA hierarchy and a feed-forward autoencoder learn faces + names.

Kim E, Hannan D, Kenyon G (2018), "Deep Sparse Coding for Invariant Multimodal Halle Berry Neurons",
CVPR 2018, arXiv:1711.07998.

Data (:mod:`data.multimodal`): LFW faces of the ``n_people`` most frequent people, split per person by
image (``test_fraction``), each paired with the person's rendered name.  The model sees faces as
``face_size``² grayscale images (block-averaged from the 64×64 crops) and names block-averaged by
``name_pool`` (128×16 → 64×8 at 2); every image is made zero-mean and scaled to unit L2 norm.

LCA hierarchy (:mod:`models.lca`, residual form, dense dictionaries; ``--set vision=conv`` makes V1
convolutional: ``conv_kernels`` shared kernels of ``conv_kernel_size``² with stride ``conv_stride`` and
padding ``conv_pad``, V2 coding its dense potential u): vision V1→V2→V3 and text T1→T2, a
joint layer P1 coding the dense potentials of V3 and T2 together, top-down feedback on (``feedback``).
All dictionaries start from data (:func:`models.lca.greedy_data_init`: atoms drawn from each layer's
inputs for random training pairs, bottom-up). Training: ``epochs`` passes over the shuffled training
pairs, ``n_iter`` LCA iterations per pair, dictionary update at the end of each presentation (η =
``eta``); presentations run ``chunk`` at a time in one compiled network. After training (frozen
dictionaries) the network codes: face-only training faces (to select neurons), face-only test faces,
name-only names (one per person) and face+name test pairs; the P1 codes, the V1/T1 codes and the
dictionaries are kept.

FFA (:mod:`models.ffa`): same layer widths, trained on the same pairs for ``ffa_epochs``; the joint
embeddings of the same presentations and the names it reconstructs from faces alone are kept.  Its L1
weight is chosen on the training pairs so that ``ffa_target_active`` of the joint units are active
(default 0.478, the paper's FFA; :func:`models.ffa.fit_to_active_fraction`, at most ``ffa_search_fits``
fits, stopping within ``ffa_target_tol``); with ``ffa_target_active=0`` the given ``ffa_l1`` is used.  A
fixed weight does not carry over between data sets: 1e-4 silences every joint unit at ``scale=data``.

Sparsity of the joint layer: P1's λ is ``lam_hidden`` (as V2, V3, T2) unless ``lam_p1`` > 0 gives its own.
With ``p1_target_active`` > 0 it is chosen on training pairs instead (:func:`calibrate_p1_lam`: a fixed subset of
``P1_CALIBRATION_PAIRS`` training face + name pairs coded by the NumPy reference of the hierarchy with the current
dictionaries, λ searched until that fraction of P1 units is active) before every epoch and once more after the
last, and applied to the compiled network as a run argument (no rebuild).  The paper's joint layer is 20.2 %
active (``--set p1_target_active=0.202``); the chosen λ values are logged and kept in the metrics
(``lca_p1_lam``, ``lca_p1_calibration``), beside P1's active fraction on all training and test pairs.  At their
defaults (0) neither option enters the cache key, so stages cached before them stay valid.

The LCA stage is cached (``results/cache/multimodal_train``, keyed by every parameter but the FFA's) and
the FFA stage apart from it (``results/cache/multimodal_ffa``, keyed by the data, the widths, the FFA's
parameters and the seed), so that the FFA can be changed without retraining the LCA; both are read by
``multimodal.analyse`` with the same parameters.

Scale (deviation from the paper: 3 epochs over ~5,800 faces, convolutional layers, 400 iterations, P1 =
512): the default CPU configuration is the 20 most frequent people (train ≤ 10, test ≤ 4 images each),
32×32 gray faces, 64×8 names, layers V 128-128-128, T 128-128, P1 256, 100 iterations per input (dt/τ =
0.1), 1 epoch; ``--quick``: 10 people, 8 training faces each, 16×16 faces, 32×4 names, layers of
48/48/64, 60 iterations, 1 epoch (LFW is needed in both; no packaged alternative exists). Measured on
the shared 2-core machine (cpp): default 956 s in all (build 150 s, 200 training presentations 229 s),
``--quick`` 96 s with a compiled binary (381 s including the first compile).  Convolutional V1 for the
CPU (``--set vision=conv``): 16 kernels 8×8, stride 4, padding 4 on the 32×32 faces → 16×9×9 = 1296 code
units (1.3× overcomplete), kernels started from face patches (:func:`models.lca_conv.patch_kernels`).
``--set scale=data`` selects :data:`DATA_SIZE`: the paper's data scale (all 423 LFW people with ≥ 5 images,
5,985 images split per person by image, a 512-unit P1, 2 epochs) at the CPU layer sizes.  Training writes a
checkpoint every ``checkpoint_every`` presentations (dictionaries, presentation order, position, random
state), and ``--resume`` continues an interrupted run from the last one; a progress bar shows the ETA.
``--set scale=paper`` selects :data:`PAPER_SIZE` (for a GPU; not run here): all people, 64×64 RGB faces,
128×16 names, conv V1 of 64 kernels 7×7 stride 2, dense V2/V3/T1/T2 of 512, P1 512, 400 iterations,
3 epochs.  Before training, every run logs its estimated LCA time per backend (:func:`estimate_time`: the
multiply-adds per iteration of its layers at the rates measured on cpp, :data:`MEASURED_DENSE_MACS_PER_S`;
backends without a measurement say so): at ``scale=paper`` 90.6 M per iteration, of which V2 on the 65,536
conv V1 units 67.1 M, ≈ 8.3 s per presentation on cpp, ≈ 33 h for the 14,400 training presentations.  On
``cuda`` the dictionaries are Brian2 synapses (``engine='auto'`` resolves to ``'synapses'``; the kernel engine
is C++ for cpp_standalone only) and the hierarchy is generated with :func:`cuda_codegen_prefs`; compiled with
nvcc (sm_90) at ``--quick`` sizes with the conv V1, not run (no GPU here).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
from brian2 import Quantity, ms

from b2models.analysis import multimodal as mm
from b2models.backend import Session
from b2models.data.multimodal import load_multimodal
from b2models.models.lca import LayerSpec, LCAHierarchy, LCAParams, greedy_data_init, top_down
from b2models.protocol import Claim, Protocol


@dataclass
class MultimodalParams:
    n_people: int = 20  # most frequent LFW people
    max_train: int = 10  # training faces per person (cap)
    max_test: int = 4  # test faces per person (cap)
    test_fraction: float = 0.2
    face_size: int = 32  # model input: face_size² gray (from the 64×64 crops)
    name_pool: int = 2  # names block-averaged by this factor (128×16 → 64×8)
    v_atoms: tuple = (128, 128, 128)  # V1, V2, V3
    t_atoms: tuple = (128, 128)  # T1, T2
    p_atoms: int = 256  # joint layer P1
    lam_input: float = 0.05  # λ of V1 and T1 (inputs have unit norm)
    lam_hidden: float = 0.05  # λ of V2, V3, T2 (and of P1 unless lam_p1 or p1_target_active says otherwise)
    lam_p1: float = 0.0  # λ of the joint layer P1; 0: lam_hidden
    p1_target_active: float = 0.0  # > 0: P1's λ chosen on training pairs for this active fraction (paper: 0.202),
    #                                before each epoch and after the last one (:func:`calibrate_p1_lam`); 0: off
    n_iter: int = 100
    tau: Quantity = field(default_factory=lambda: 10 * ms)
    dt: Quantity = field(default_factory=lambda: 1 * ms)
    eta: float = 0.1
    epochs: int = 1
    chunk: int = 50  # presentations per binary run
    feedback: bool = True
    ffa_epochs: int = 60
    ffa_l1: float = 1e-4  # L1 weight of the FFA joint layer, used as given when ffa_target_active = 0
    ffa_lr: float = 1e-3
    ffa_target_active: float = 0.478  # FFA: L1 chosen so that this fraction of joint units is active on the
    #                                   training pairs (the paper's FFA: 47.8 %); 0: ffa_l1 as given
    ffa_target_tol: float = 0.02  # FFA search: stop when the active fraction is this close to the target
    ffa_search_fits: int = 8  # FFA search: at most this many fits (bisection in log L1 on [1e-9, 1e-4])
    top_people: int = 10  # people analysed for invariant neurons
    vision: str = "dense"  # V1: 'dense' (v_atoms[0] atoms) or 'conv' (shared kernels, conv_* below)
    conv_kernels: int = 16  # conv V1: number of kernels M
    conv_kernel_size: int = 8  # conv V1: kernel size K (face_channels × K × K)
    conv_stride: int = 4  # conv V1: stride s
    conv_pad: int = 4  # conv V1: zero padding on each side
    face_channels: int = 1  # 1: gray faces, 3: RGB (channel-major)
    scale: str = "cpu"  # 'cpu' (the values above), 'data' (DATA_SIZE: the paper's data, CPU layers), 'paper'
    checkpoint_every: int = 1000  # training presentations between checkpoints (rounded up to whole chunks)

    def validate(self):
        if self.vision not in VISION_KINDS:
            raise ValueError(f"vision={self.vision!r}: expected one of {VISION_KINDS}")
        if self.scale not in SCALES:
            raise ValueError(f"scale={self.scale!r}: expected one of {SCALES}")
        if self.face_channels not in (1, 3):
            raise ValueError(f"face_channels={self.face_channels} must be 1 (gray) or 3 (RGB)")
        if self.scale in ("paper", "data"):
            return self.effective().validate()
        if self.n_people < 2 or self.max_train < 1 or self.max_test < 1:
            raise ValueError(f"need n_people >= 2, max_train >= 1, max_test >= 1 "
                             f"(got {self.n_people}, {self.max_train}, {self.max_test})")
        if 64 % self.face_size or self.face_size < 4:
            raise ValueError(f"face_size={self.face_size} must divide 64 (e.g. 16, 32, 64)")
        if self.name_pool not in (1, 2, 4):
            raise ValueError(f"name_pool={self.name_pool} must be 1, 2 or 4")
        if len(self.v_atoms) < 1 or len(self.t_atoms) < 1 or self.p_atoms < 1:
            raise ValueError("need at least one vision and one text layer and p_atoms >= 1")
        if min(self.v_atoms + self.t_atoms) < 1:
            raise ValueError(f"v_atoms={self.v_atoms}, t_atoms={self.t_atoms}: every layer needs >= 1 atom")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every={self.checkpoint_every} must be >= 1 (training presentations)")
        if self.epochs < 1 or self.chunk < 1 or self.ffa_epochs < 0:
            raise ValueError(f"epochs={self.epochs}, chunk={self.chunk} must be >= 1, ffa_epochs >= 0")
        if not 0 <= self.ffa_target_active < 1:
            raise ValueError(f"ffa_target_active={self.ffa_target_active} must be in [0, 1) (0: ffa_l1 as given)")
        if self.ffa_target_tol <= 0 or self.ffa_search_fits < 1:
            raise ValueError(f"ffa_target_tol={self.ffa_target_tol} must be > 0 and "
                             f"ffa_search_fits={self.ffa_search_fits} >= 1")
        if self.ffa_l1 < 0 or self.ffa_lr <= 0:
            raise ValueError(f"ffa_l1={self.ffa_l1} must be >= 0 and ffa_lr={self.ffa_lr} > 0")
        if min(self.lam_input, self.lam_hidden) < 0:
            raise ValueError("lam_input and lam_hidden must be >= 0")
        if not 0 <= self.lam_p1 < 1:
            raise ValueError(f"lam_p1={self.lam_p1} must be in [0, 1) (0: lam_hidden)")
        if not 0 <= self.p1_target_active < 1:
            raise ValueError(f"p1_target_active={self.p1_target_active} must be in [0, 1) (0: off)")
        if self.lam_p1 > 0 and self.p1_target_active > 0:
            raise ValueError(f"lam_p1={self.lam_p1} and p1_target_active={self.p1_target_active}: give one of them "
                             "(p1_target_active chooses P1's λ itself)")
        if self.top_people < 1:
            raise ValueError(f"top_people={self.top_people} must be >= 1")
        self.lca_params().validate()
        self.layers()  # conv geometry: one clear error naming the parameter

    def effective(self) -> MultimodalParams:
        """The parameters actually used: with ``scale='paper'`` the values of :data:`PAPER_SIZE`, with
        ``scale='data'`` those of :data:`DATA_SIZE`."""
        if self.scale == "paper":
            return dataclasses.replace(self, **PAPER_SIZE, scale="cpu")
        if self.scale == "data":
            return dataclasses.replace(self, **DATA_SIZE, scale="cpu")
        return self

    def lca_params(self) -> LCAParams:
        return LCAParams(tau=self.tau, dt=self.dt, n_iter=self.n_iter, eta=self.eta, feedback=self.feedback)

    def layers(self) -> list:
        L = []
        prev = "face"
        for k, m in enumerate(self.v_atoms):
            if k == 0 and self.vision == "conv":
                conv = {"kind": "conv", "kernel_size": self.conv_kernel_size, "stride": self.conv_stride,
                        "pad": self.conv_pad, "in_shape": (self.face_channels, self.face_size, self.face_size)}
                try:
                    L.append(LayerSpec("V1", self.conv_kernels, (prev,), self.lam_input, **conv))
                except ValueError as err:  # name the protocol's parameters
                    msg = str(err)
                    for field_name in ("kernel_size", "stride", "pad"):
                        msg = msg.replace(f"{field_name}=", f"conv_{field_name}=")
                    raise ValueError(msg.replace("n_kernels=", "conv_kernels=")) from None
            else:
                L.append(LayerSpec(f"V{k + 1}", m, (prev,), self.lam_input if k == 0 else self.lam_hidden))
            prev = f"V{k + 1}"
        top_v = prev
        prev = "name"
        for k, m in enumerate(self.t_atoms):
            L.append(LayerSpec(f"T{k + 1}", m, (prev,), self.lam_input if k == 0 else self.lam_hidden))
            prev = f"T{k + 1}"
        L.append(LayerSpec("P1", self.p_atoms, (top_v, prev), self.p1_lam()))
        return L

    def p1_lam(self) -> float:
        """λ of P1 as built: ``lam_p1`` if given, else ``lam_hidden`` (with ``p1_target_active`` the start of the
        search; the chosen λ is applied at run time)."""
        return self.lam_p1 if self.lam_p1 > 0 else self.lam_hidden


VISION_KINDS = ("dense", "conv")
SCALES = ("cpu", "data", "paper")

#: the paper-size configuration (``--set scale=paper``; for a GPU, not run here): all 423 people, 64×64
#: RGB faces, 128×16 names, conv V1 of 64 kernels 7×7 stride 2 (the paper's first vision layer), joint
#: layer of 512, 400 iterations, 3 epochs.  Only the first layer can be convolutional here, so V2, V3,
#: T1 and T2 are dense (the paper's are convolutional).
PAPER_SIZE = dict(n_people=423, max_train=10_000, max_test=10_000, face_size=64, face_channels=3, name_pool=1,
                  vision="conv", conv_kernels=64, conv_kernel_size=7, conv_stride=2, conv_pad=3,
                  v_atoms=(64, 512, 512), t_atoms=(512, 512), p_atoms=512, n_iter=400, epochs=3, chunk=100)


#: the paper's data at the CPU layer sizes: every LFW person with >= 5 images (423 people, 5,985 images, split per
#: person by image), a joint layer of 512 units and 2 epochs; the rest as the CPU defaults
DATA_SIZE = dict(n_people=423, max_train=10_000, max_test=10_000, p_atoms=512, epochs=2)


#: Measured speed of the LCA products with Φ on cpp, as dense-equivalent multiply-adds per second: a layer's
#: 2 · inputs · atoms (Φa and ΦᵀE as if every atom were active) per iteration, divided by the measured time per
#: iteration.  Measured by ``benchmarks/bench_lca.py`` (``benchmarks/results/bench_lca.json``, one thread, the
#: shared 2-core machine at load 6–8), so they include the sparsity of the benchmark's codes (conv 6 % of the
#: units active, dense layers ~2 %) and, for the dense layers, learning:
#:
#: * ``conv``: ``conv_reference_engines`` (64 kernels 3×7×7 stride 2 on 64×64×3, the paper's V1): 19,267,584
#:   per iteration in 2.165 ms (kernel engine) and 24.48 ms (synapses engine);
#: * ``dense``: ``hierarchy_engines_p512`` (V 128-128-128, T 128-128, P1 512 on 32×32 faces and 64×8 names,
#:   100 iterations, learning on): 753,664 per iteration at 50.87 presentations/s (kernel engine) and 2.44
#:   (synapses engine).
#:
#: numpy, cython and cuda have no measurement at these layer sizes.
MEASURED_DENSE_MACS_PER_S = {
    "cpp": {"conv": 19_267_584 / 2.1654e-3, "dense": 753_664 * 100 * 50.867},
    "cpp, engine=synapses": {"conv": 19_267_584 / 24.479e-3, "dense": 753_664 * 100 * 2.4445},
}
NOT_MEASURED = ("numpy", "cython", "cuda")


def lca_work(p: MultimodalParams) -> dict:
    """Dense-equivalent multiply-adds per LCA iteration of every layer: 2 · inputs · atoms (Φa and ΦᵀE; for a
    conv layer 2 · kernels · C·K² · output positions), as ``benchmarks/bench_lca.py`` counts them."""
    from b2models.models.lca import check_architecture

    p = p.effective()
    name_px = (128 // p.name_pool) * (16 // p.name_pool)
    n_in = check_architecture(p.layers(), {"face": p.face_channels * p.face_size ** 2, "name": name_px})
    work = {}
    for L in p.layers():
        if L.is_conv:
            cp = L.conv_params()
            C, K = cp.in_shape[0], cp.kernel_size
            work[L.name] = ("conv", 2 * int(np.prod(cp.out_shape)) * C * K * K)
        else:
            work[L.name] = ("dense", 2 * n_in[L.name] * L.n_atoms)
    return work


def estimate_time(p: MultimodalParams, n_train: int, n_test: int, n_people: int) -> dict:
    """Estimated LCA time (s) per backend: presentations × iterations × Σ_layers work / measured rate.

    Presentations: ``epochs · n_train`` training pairs, then the frozen coding passes of :func:`_lca_stage`
    (face-only and face + name training faces, face-only and face + name test faces, one name per person:
    ``2 n_train + 2 n_test + n_people``), all at the rate measured with learning on.  The rates are those of
    :data:`MEASURED_DENSE_MACS_PER_S`, taken to hold at other layer sizes (large dictionaries that leave the
    cache and codes less sparse than the benchmark's make it slower).  Backends without a measurement
    map to ``None``.  The autoencoder is not included."""
    p = p.effective()
    work = lca_work(p)
    n_code = 2 * n_train + 2 * n_test + n_people
    out = {"macs_per_iteration": {k: w for k, (_, w) in work.items()}, "train_presentations": p.epochs * n_train,
           "code_presentations": n_code, "n_iter": p.n_iter, "backends": {}}
    for backend, rate in MEASURED_DENSE_MACS_PER_S.items():
        s_per_pres = p.n_iter * sum(w / rate[kind] for kind, w in work.values())
        out["backends"][backend] = {"s_per_presentation": s_per_pres, "train_s": s_per_pres * p.epochs * n_train,
                                    "code_s": s_per_pres * n_code}
    for backend in NOT_MEASURED:
        out["backends"][backend] = None
    return out


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def estimate_text(est: dict) -> str:
    """One log line per backend for :func:`estimate_time`."""
    work = est["macs_per_iteration"]
    lines = [f"estimated LCA time: {sum(work.values()) / 1e6:.1f} M multiply-adds per iteration (dense-equivalent; "
             + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in work.items()) + f") × {est['n_iter']} iterations × "
             f"{est['train_presentations']:,} training + {est['code_presentations']:,} coding presentations, "
             "at the rates measured on cpp (benchmarks/results/bench_lca.json):"]
    for backend, b in est["backends"].items():
        if b is None:
            lines.append(f"  {backend}: not measured here")
        else:
            lines.append(f"  {backend}: {b['s_per_presentation']:.3g} s per presentation, training "
                         f"{_hours(b['train_s'])}, coding {_hours(b['code_s'])}")
    return "\n".join(lines)


def quick_params(p: MultimodalParams) -> MultimodalParams:
    return dataclasses.replace(p, n_people=10, max_train=8, max_test=4, face_size=16, name_pool=4,
                               v_atoms=(48, 48, 48), t_atoms=(48, 48), p_atoms=64, n_iter=60, epochs=1,
                               chunk=40, ffa_epochs=40)


# ----------------------------------------------------------------------------------------
# data preparation
# ----------------------------------------------------------------------------------------
def _pool(img, f):
    if f == 1:
        return img
    H, W = img.shape[-2:]
    return img.reshape(*img.shape[:-2], H // f, f, W // f, f).mean(axis=(-3, -1))


def unit_norm(X) -> np.ndarray:
    """Each row zero-mean, unit L2 norm."""
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    X = X - X.mean(axis=1, keepdims=True)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def prepare(p: MultimodalParams) -> dict:
    d = load_multimodal(n_people=p.n_people, size=64, test_fraction=p.test_fraction, max_train=p.max_train,
                        max_test=p.max_test)
    f = 64 // p.face_size

    def faces(X):
        if p.face_channels == 3:  # (n, H, W, 3) → channel-major (n, 3, H, W)
            return unit_norm(_pool(np.moveaxis(X, -1, 1), f))
        return unit_norm(_pool(X.mean(axis=-1), f))

    names_img = _pool(d.names, p.name_pool)
    return {"people": d.people, "face_train": faces(d.faces_train), "y_train": d.labels_train,
            "face_test": faces(d.faces_test), "y_test": d.labels_test, "names": unit_norm(names_img),
            "names_img": names_img, "name_shape": names_img.shape[1:],
            "face_img_test": _pool(d.faces_test.mean(axis=-1), f)}


# ----------------------------------------------------------------------------------------
# the training stage (shared with multimodal.analyse)
# ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def cuda_codegen_prefs(backend: str):
    """Code-generation preferences the hierarchy needs on ``cuda``: brian2cuda 1.0b1 does not declare the loop
    invariants that Brian2 hoists out of an EventMonitor kernel (measured: nvcc stops at ``_lio_1`` undefined in
    the monitor of a = (u − λ)·[u > λ], λ shared), so that optimisation is off while the network is generated;
    with it off the whole hierarchy, conv V1 included, compiles for sm_90.  Other backends: unchanged."""
    if backend != "cuda":
        yield
        return
    import brian2

    old = brian2.prefs.codegen.loop_invariant_optimisations
    brian2.prefs.codegen.loop_invariant_optimisations = False
    try:
        yield
    finally:
        brian2.prefs.codegen.loop_invariant_optimisations = old


#: P1's λ search (``p1_target_active``): training pairs it codes, tolerance on the active fraction, most probes
P1_CALIBRATION_PAIRS = 600
P1_TARGET_TOL = 0.005
P1_MAX_PROBES = 16


def calibrate_p1_lam(layers, phi: dict, inputs: dict, target: float, n_iter: int, dt_over_tau: float,
                     fb_gain: float = 1.0, lam0: float = 0.05, tol: float = P1_TARGET_TOL,
                     max_probes: int = P1_MAX_PROBES) -> tuple[float, float, list]:
    """λ of the layer P1 for which ``target`` of its units are active, on average over ``inputs`` (training
    face + name pairs), with the dictionaries ``phi`` fixed.  The whole hierarchy is coded by
    :func:`models.lca.hierarchy_reference` (the network's update, feedback included, so the layers below see
    P1's sparsity too).  Search: the first probe at ``lam0``; while no probe is below the target, λ doubles;
    then bisection between the largest λ above and the smallest below; stop within ``tol`` or after
    ``max_probes``.  Returns the probe closest to the target (λ, its active fraction) and every probe."""
    from b2models.models.lca import hierarchy_reference

    if not 0 < target < 1:
        raise ValueError(f"target={target}: the active fraction must be in (0, 1)")
    if lam0 <= 0 or tol <= 0 or max_probes < 1:
        raise ValueError(f"lam0={lam0} and tol={tol} must be > 0, max_probes={max_probes} >= 1")
    if "P1" not in {L.name for L in layers}:
        raise ValueError("the hierarchy has no layer P1")

    def active(lam):
        trial = [dataclasses.replace(L, lam=lam) if L.name == "P1" else L for L in layers]
        a = hierarchy_reference(trial, phi, inputs, n_iter, dt_over_tau, fb_gain=fb_gain)["P1"]["a"]
        return float(np.mean(a > 0))

    lo, hi, lam, probes = 0.0, None, float(lam0), []
    for _ in range(max_probes):
        act = active(lam)
        probes.append((lam, act))
        if abs(act - target) <= tol:
            break
        if act > target:
            lo = lam
        else:
            hi = lam
        lam = 2 * lam if hi is None else (lo + hi) / 2
    best = min(probes, key=lambda pr: abs(pr[1] - target))
    return best[0], best[1], probes


class _RunArgSession:
    """The session of the hierarchy with run arguments of its own added to every run: P1's λ, chosen during
    training, is applied to the compiled network without rebuilding it."""

    def __init__(self, session):
        self._session, self.extra = session, {}

    def __getattr__(self, name):
        return getattr(self._session, name)

    def run(self, run_args=None, seed=None, report=None):
        return self._session.run({**(run_args or {}), **self.extra}, seed=seed, report=report)


def _set_p1_lam(net, lam: float):
    """Run P1 of ``net`` (built on a :class:`_RunArgSession`) with threshold ``lam`` from now on."""
    net.session.extra[net.A["P1"].state("lambda_", use_units=True)] = float(lam)
    net.layers = [dataclasses.replace(L, lam=float(lam)) if L.name == "P1" else L for L in net.layers]


def _calibrate_p1(ctx, p, D, net, lam0: float, when: str) -> tuple[float, float, int]:
    """Choose P1's λ on a fixed subset of the training pairs with the current dictionaries, apply it, log it."""
    n_train = len(D["y_train"])
    sub = np.sort(np.random.default_rng([ctx.seed, 202]).choice(n_train, min(n_train, P1_CALIBRATION_PAIRS),
                                                                 replace=False))
    inputs = {"face": D["face_train"][sub], "name": D["names"][D["y_train"][sub]]}
    t0 = time.perf_counter()
    lam, act, probes = calibrate_p1_lam(net.layers, net.phi, inputs, p.p1_target_active, p.n_iter,
                                        float(p.dt / p.tau), fb_gain=1.0 if p.feedback else 0.0, lam0=lam0)
    _set_p1_lam(net, lam)
    ctx.log(f"P1 λ {when}: {lam:.5g} gives {act:.3f} active P1 units on {len(sub)} training pairs (target "
            f"{p.p1_target_active}; {len(probes)} probes, {time.perf_counter() - t0:.1f} s)")
    return lam, act, len(probes)


def _lca_stage(ctx, p, D, arrays):
    layers = p.layers()
    dims = {"face": D["face_train"].shape[1], "name": D["names"].shape[1]}
    rng = np.random.default_rng(ctx.seed)
    # what shapes the generated code (η and the feedback switch are run arguments)
    key = ([dataclasses.astuple(L) for L in layers], dims, p.chunk, p.n_iter, str(p.tau), str(p.dt))
    with cuda_codegen_prefs(ctx.backend), Session(ctx.backend, "multimodal_lca", key=key, threads=ctx.threads) as s:
        t0 = time.perf_counter()
        if p.p1_target_active > 0:  # P1's λ is chosen during training and set at run time
            s = _RunArgSession(s)
        net = LCAHierarchy(p.lca_params(), layers, dims, p.chunk, s, seed=ctx.seed, record_u=False)
        arrays["lca_build_s"] = time.perf_counter() - t0
        n_train = len(D["y_train"])
        pick = rng.choice(n_train, min(n_train, 2 * max(L.n_atoms for L in layers)), replace=False)
        init = {"face": D["face_train"][pick], "name": D["names"][D["y_train"][pick]]}
        net.phi.update(greedy_data_init(layers, init, p.n_iter, float(p.dt / p.tau), rng))
        ctx.log(f"LCA hierarchy built in {arrays['lca_build_s']:.1f} s ({ctx.backend})")
        err_hist, train_s, p1_hist = _train_with_checkpoints(ctx, p, D, net, rng)
        arrays["lca_train_s"] = train_s
        arrays["lca_p1_lam"] = float(net.spec["P1"].lam)
        if p1_hist:  # rows: epochs trained so far (p.epochs: after training), λ, active fraction on the subset, probes
            arrays["lca_p1_calibration"] = np.array(p1_hist, dtype=float).reshape(-1, 4)
        arrays["lca_train_presentations"] = p.epochs * n_train
        arrays["lca_v1_error_by_epoch"] = np.array(err_hist)
        t0 = time.perf_counter()
        conds = {
            "face_train": {"face": D["face_train"]},
            "both_train": {"face": D["face_train"], "name": D["names"][D["y_train"]]},  # the paper's selection set
            "face_test": {"face": D["face_test"]},
            "name": {"name": D["names"]},
            "both_test": {"face": D["face_test"], "name": D["names"][D["y_test"]]},
        }
        for cname, inp in conds.items():
            o = net.present(inp, learn=False, seed=ctx.seed * 104729 + len(cname))
            for Lname in ("P1", "V1", "T1"):
                arrays[f"lca_{Lname}_{cname}"] = o[Lname]["a"]
        arrays["lca_test_s"] = time.perf_counter() - t0
        for Lname, phi in net.phi.items():
            arrays[f"lca_phi_{Lname}"] = phi
    # names from faces alone: the P1 code reconstructed down the text path (P1 → T2 → T1 → pixels)
    path = ["P1"] + [f"T{k}" for k in range(len(p.t_atoms), 0, -1)]
    phis = {k[len("lca_phi_"):]: v for k, v in arrays.items() if k.startswith("lca_phi_")}
    arrays["lca_name_from_face"] = top_down(phis, layers, arrays["lca_P1_face_test"], path,
                                            part_offset=p.v_atoms[-1], part_size=p.t_atoms[-1])


#: the autoencoder's parameters: they have their own cached stage (``multimodal_ffa``) and do not enter the key
#: of the LCA stage
FFA_FIELDS = ("ffa_epochs", "ffa_l1", "ffa_lr", "ffa_target_active", "ffa_target_tol", "ffa_search_fits")
#: the autoencoder fields that the LCA stage's key held when both models were one stage, at the values the key
#: keeps for them (their old defaults), so that LCA stages cached then are found again
_LCA_KEY_FFA_VALUES = {"ffa_epochs": 60, "ffa_l1": 1e-4, "ffa_lr": 1e-3}


#: P1 options added later: at their defaults (0: off) they are left out of the LCA stage's key, so that stages
#: cached before them are found again
_LCA_KEY_OPTIONAL = {"lam_p1": 0.0, "p1_target_active": 0.0}


def lca_stage_config(ctx, p: MultimodalParams) -> dict:
    """Cache key of the LCA stage: the effective parameters without the autoencoder's, the seed, the backend."""
    from b2models.params import jsonable

    params = jsonable(p)
    for name in FFA_FIELDS:
        if name in _LCA_KEY_FFA_VALUES:
            params[name] = _LCA_KEY_FFA_VALUES[name]
        else:
            params.pop(name)
    for name, default in _LCA_KEY_OPTIONAL.items():
        if params.get(name) == default:
            params.pop(name)
    return {"params": params, "seed": ctx.seed, "backend": ctx.backend}


def ffa_stage_config(ctx, p: MultimodalParams) -> dict:
    """Cache key of the autoencoder stage: its data, its layer widths, its own parameters and the seed."""
    data = ("n_people", "max_train", "max_test", "test_fraction", "face_size", "name_pool", "face_channels")
    return {"data": {k: getattr(p, k) for k in data},
            "widths": {"vision": list(p.v_atoms), "text": list(p.t_atoms), "joint": p.p_atoms},
            "ffa": {k: getattr(p, k) for k in FFA_FIELDS}, "seed": ctx.seed}


def _checkpoint_path(ctx, p):
    if ctx.cache is None:
        return None
    return ctx.cache.path("multimodal_train_checkpoint", lca_stage_config(ctx, p))


def _train_with_checkpoints(ctx, p, D, net, rng) -> tuple[list, float, list]:
    """``p.epochs`` passes over the shuffled training pairs, in blocks of whole chunks; after each block the
    dictionaries, the epoch's presentation order, the position, the random state and the errors so far are
    written (atomically) to a checkpoint, which ``--resume`` continues from.  The LCA dynamics are
    deterministic, so a resumed run learns exactly what an uninterrupted one does.  With ``p1_target_active``
    P1's λ is chosen (:func:`calibrate_p1_lam`) before every epoch and after the last one, and kept in the
    checkpoint.  Returns the V1 reconstruction error per epoch, the training time (of this and earlier,
    interrupted runs) and the λ choices (epochs trained so far, λ, active fraction, probes)."""
    import json

    from b2models.results import atomic_write, npz_bytes

    n_train = len(D["y_train"])
    block = -(-p.checkpoint_every // p.chunk) * p.chunk
    ckpt = _checkpoint_path(ctx, p)
    ep0, start, order, err_hist, err_sum, spent = 0, 0, None, [], 0.0, 0.0
    target = p.p1_target_active
    p1_hist = []
    if ctx.resume and ckpt is not None and ckpt.exists():
        try:
            with np.load(ckpt, allow_pickle=False) as z:
                c = {k: z[k] for k in z.files}
            phi = {k[len("phi_"):]: c[k] for k in c if k.startswith("phi_")}
            if set(phi) != set(net.phi):
                raise ValueError(f"layers {sorted(phi)} instead of {sorted(net.phi)}")
            net.phi.update(phi)
            ep0, start, order = int(c["epoch"]), int(c["start"]), c["order"]
            err_hist, err_sum, spent = list(c["err_hist"]), float(c["err_sum"]), float(c["train_s"])
            rng.bit_generator.state = json.loads(str(c["rng_state"]))
            if target > 0:
                p1_hist = [tuple(r) for r in np.asarray(c["p1_hist"], dtype=float).reshape(-1, 4)]
                _set_p1_lam(net, float(c["p1_lam"]))
            ctx.log(f"--resume: training continues from epoch {ep0 + 1}, presentation {start} ({ckpt})")
        except Exception as err:  # unreadable or foreign: start over, say so
            ctx.log(f"--resume: checkpoint {ckpt} cannot be used ({err}); training starts from the beginning")
            ep0, start, order, err_hist, err_sum, spent = 0, 0, None, [], 0.0, 0.0
            p1_hist = []
            if target > 0:
                _set_p1_lam(net, p.p1_lam())
    bar = ctx.progress(total=p.epochs * n_train, initial=min(ep0, p.epochs) * n_train + start,
                       desc="LCA training presentations", unit="pres")
    t0 = time.perf_counter()
    try:
        for ep in range(ep0, p.epochs):
            if order is None or start == 0:
                order = rng.permutation(n_train)
            if target > 0 and start == 0:
                lam, act, n_probes = _calibrate_p1(ctx, p, D, net, net.spec["P1"].lam, f"before epoch {ep + 1}")
                p1_hist.append((ep, lam, act, n_probes))
            for s0 in range(start, n_train, block):
                idx = order[s0:s0 + block]
                out = net.present({"face": D["face_train"][idx], "name": D["names"][D["y_train"][idx]]},
                                  learn=True, seed=ctx.seed * 7919 + ep)
                err_sum += float(np.sum((D["face_train"][idx] - net.reconstruct("V1", out["V1"]["a"])) ** 2))
                bar.update(len(idx))
                nxt = (ep, s0 + len(idx)) if s0 + len(idx) < n_train else (ep + 1, 0)
                if nxt[1] == 0:
                    err_hist.append(err_sum / n_train)
                    ctx.log(f"LCA epoch {ep + 1}/{p.epochs}: V1 relative reconstruction error {err_hist[-1]:.3f}, "
                            f"P1 active (last block) {np.mean(out['P1']['a'] > 0):.3f}")
                    err_sum = 0.0
                if ckpt is not None:
                    state = {f"phi_{k}": v for k, v in net.phi.items()}
                    state.update(epoch=nxt[0], start=nxt[1], order=order, err_hist=np.array(err_hist),
                                 err_sum=err_sum, train_s=spent + time.perf_counter() - t0,
                                 rng_state=np.array(json.dumps(rng.bit_generator.state)))
                    if target > 0:
                        state.update(p1_lam=net.spec["P1"].lam, p1_hist=np.array(p1_hist, dtype=float))
                    atomic_write(ckpt, npz_bytes(state))
            start = 0
    finally:
        bar.close()
    train_s = spent + time.perf_counter() - t0
    if target > 0:  # the trained dictionaries: the λ the network codes with from here on
        lam, act, n_probes = _calibrate_p1(ctx, p, D, net, net.spec["P1"].lam, "after training")
        p1_hist.append((p.epochs, lam, act, n_probes))
    return err_hist, train_s, p1_hist


def _ffa_stage(ctx, p, D) -> dict:
    """Train the autoencoder on the training pairs and encode the same presentations as the LCA stage.  With
    ``ffa_target_active`` > 0 its L1 weight is chosen on the training pairs (:func:`models.ffa.fit_to_active_fraction`),
    else ``ffa_l1`` is used."""
    from b2models.models.ffa import FFA, FFAParams, active_fraction, fit_to_active_fraction

    fp = FFAParams(vision=tuple(p.v_atoms), text=tuple(p.t_atoms), joint=p.p_atoms, l1=p.ffa_l1,
                   learning_rate=p.ffa_lr, epochs=p.ffa_epochs)
    arrays = {"ffa_available": True}
    faces, names = D["face_train"], D["names"][D["y_train"]]
    t0 = time.perf_counter()
    if p.ffa_target_active > 0 and p.ffa_epochs > 0:
        ffa, l1, loss, search = fit_to_active_fraction(fp, faces, names, p.ffa_target_active, tol=p.ffa_target_tol,
                                                       max_fits=p.ffa_search_fits, seed=ctx.seed, log=ctx.log)
        arrays["ffa_l1_search"] = np.array(search, dtype=float).reshape(-1, 2)
    else:
        ffa, l1 = FFA(fp, faces.shape[1], names.shape[1], seed=ctx.seed), p.ffa_l1
        loss = ffa.fit(faces, names)
    arrays["ffa_train_s"] = time.perf_counter() - t0
    arrays["ffa_l1"] = float(l1)
    arrays["ffa_loss"] = np.array(loss)
    arrays["ffa_P1_face_train"] = ffa.encode(faces=D["face_train"])
    arrays["ffa_P1_both_train"] = ffa.encode(faces=faces, names=names)
    arrays["ffa_P1_face_test"] = ffa.encode(faces=D["face_test"])
    arrays["ffa_P1_name"] = ffa.encode(names=D["names"])
    arrays["ffa_P1_both_test"] = ffa.encode(faces=D["face_test"], names=D["names"][D["y_test"]])
    arrays["ffa_name_from_face"] = ffa.reconstruct(faces=D["face_test"])[1]
    arrays["ffa_active_fraction_train"] = active_fraction(arrays["ffa_P1_both_train"])
    ctx.log(f"FFA trained {p.ffa_epochs} epochs with l1={l1:.3g} in {arrays['ffa_train_s']:.1f} s"
            + (f", final loss {loss[-1]:.4g}" if loss else "")
            + f"; {arrays['ffa_active_fraction_train']:.3f} of its joint units active on the training pairs")
    return arrays


def ffa_stage(ctx, p: MultimodalParams, lca: dict, reuse: bool = False) -> dict:
    """The autoencoder's arrays: cached on their own (``multimodal_ffa``), so that changing only the autoencoder's
    parameters does not retrain the LCA.  It is trained on the data stored by the LCA stage (read again if that
    stage predates stored faces)."""
    from b2models.models.ffa import keras_available

    ok, why = keras_available()
    if not ok:
        ctx.log(f"FFA baseline skipped: {why}")
        return {"ffa_available": False}

    def compute():
        D = lca if all(k in lca for k in ("face_train", "face_test", "names", "y_train", "y_test")) else prepare(p)
        return _ffa_stage(ctx, p, D)

    return ctx.cached_stage("multimodal_ffa", ffa_stage_config(ctx, p), compute, "autoencoder stage", reuse=reuse)


def train_stage(ctx, p: MultimodalParams, reuse: bool = False) -> dict:
    """Train both models, or reuse the cached results of the same parameters, seed and backend
    (with ``--resume``, or always when ``reuse``): the LCA stage and the autoencoder stage are cached apart."""
    p.validate()
    p = p.effective()
    lca = ctx.cached_stage("multimodal_train", lca_stage_config(ctx, p), lambda: _train(ctx, p), "LCA training stage",
                           reuse=reuse)
    # LCA stages cached when both models were one stage also hold an autoencoder (of the old defaults): drop it
    arrays = {k: v for k, v in lca.items() if not k.startswith("ffa_")}
    ckpt = _checkpoint_path(ctx, p)
    if ckpt is not None and ckpt.exists():  # the stage is cached: its training checkpoint is no longer needed
        ckpt.unlink()
    arrays.update(ffa_stage(ctx, p, arrays, reuse=reuse))
    return arrays


def _train(ctx, p: MultimodalParams) -> dict:
    D = prepare(p)
    ctx.log(f"data: {len(D['people'])} people, {len(D['y_train'])} training / {len(D['y_test'])} test faces, "
            f"faces {D['face_train'].shape[1]} px, names {D['names'].shape[1]} px")
    ctx.log(estimate_text(estimate_time(p, len(D["y_train"]), len(D["y_test"]), len(D["people"]))))
    arrays = {"y_train": D["y_train"], "y_test": D["y_test"], "names": D["names"],
              "names_img": D["names_img"], "face_img_test": D["face_img_test"],
              "face_train": D["face_train"], "face_test": D["face_test"], "people": np.array(D["people"])}
    _lca_stage(ctx, p, D, arrays)
    return {k: np.asarray(v) for k, v in arrays.items() if v is not None}


def basic_metrics(a) -> dict:
    """Numbers of the training run itself."""
    m = {
        "lca_build_s": float(a["lca_build_s"]),
        "lca_train_s": float(a["lca_train_s"]),
        "lca_train_presentations": int(a["lca_train_presentations"]),
        "lca_images_per_s_training": float(a["lca_train_presentations"] / a["lca_train_s"]),
        "lca_v1_error_first_epoch": float(a["lca_v1_error_by_epoch"][0]),
        "lca_v1_error_last_epoch": float(a["lca_v1_error_by_epoch"][-1]),
        "lca_active_fraction_both": mm.active_fraction(a["lca_P1_both_test"]),
    }
    m.update(lca_p1_metrics(a))
    if bool(a["ffa_available"]):
        m["ffa_train_s"] = float(a["ffa_train_s"])
        m["ffa_final_loss"] = float(a["ffa_loss"][-1]) if np.size(a["ffa_loss"]) else None
        m["ffa_active_fraction_both"] = mm.active_fraction(a["ffa_P1_both_test"])
        m.update(ffa_metrics(a))
    return m


def lca_p1_metrics(a, p: MultimodalParams | None = None) -> dict:
    """P1's λ (chosen or given), the λ search if there was one, and P1's active fraction on the training pairs
    (face + name, every training pair) and on the test pairs."""
    m = {}
    if "lca_p1_lam" in a:
        m["lca_p1_lam"] = float(a["lca_p1_lam"])
    elif p is not None:  # a stage cached before the λ was stored: the λ it was built with
        m["lca_p1_lam"] = float(p.effective().p1_lam())
    if "lca_p1_calibration" in a:
        rows = np.asarray(a["lca_p1_calibration"], dtype=float).reshape(-1, 4)
        m["lca_p1_calibration"] = [{"epochs_trained": int(r[0]), "lam": float(r[1]), "active_subset": float(r[2]),
                                    "probes": int(r[3])} for r in rows]
        m["lca_p1_active_fraction_calibration"] = float(rows[-1, 2])
    if "lca_P1_both_train" in a:
        m["lca_p1_active_fraction_train"] = mm.active_fraction(a["lca_P1_both_train"])
    m["lca_p1_active_fraction_test"] = mm.active_fraction(a["lca_P1_both_test"])
    return m


def ffa_metrics(a) -> dict:
    """How the autoencoder's L1 weight was set: the weight, its active fraction on the training pairs, the search."""
    m = {"ffa_l1": float(a["ffa_l1"]), "ffa_active_fraction_train": float(a["ffa_active_fraction_train"]),
         "ffa_ever_active_units_train": float(np.mean(np.any(a["ffa_P1_both_train"] > 0, axis=0)))}
    if "ffa_l1_search" in a:
        m["ffa_l1_search"] = [[float(x), float(y)] for x, y in np.asarray(a["ffa_l1_search"]).reshape(-1, 2)]
    return m


def run(ctx) -> dict:
    p: MultimodalParams = ctx.params
    p.validate()
    p = p.effective()
    vis = (f"conv V1 {p.conv_kernels}×{p.face_channels}×{p.conv_kernel_size}² stride {p.conv_stride}, V2.. "
           f"{p.v_atoms[1:]}") if p.vision == "conv" else f"V{p.v_atoms}"
    ctx.log(f"multimodal.train: {p.n_people} people, layers {vis} T{p.t_atoms} P1 {p.p_atoms}, "
            f"{p.n_iter} iterations, {p.epochs} epochs, feedback={p.feedback}, backend={ctx.backend}")
    a = train_stage(ctx, p)
    metrics = basic_metrics(a)
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**{k: v for k, v in a.items() if k.startswith(("lca_phi", "lca_v1", "ffa_loss"))})
    _figures(ctx, p, a)
    return metrics


def _figures(ctx, p, a):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phi = a["lca_phi_V1"]
    s = p.face_size
    if phi.ndim == 4:  # conv kernels (M, C, K, K)
        atoms = [np.moveaxis(k, 0, -1) if k.shape[0] == 3 else k[0] for k in phi]
        atoms = [(k - k.min()) / max(np.ptp(k), 1e-12) for k in atoms]
        title = f"V1 kernels ({min(64, len(atoms))} of {len(atoms)})"
    else:
        atoms = [phi[:, k].reshape(s, s) for k in range(phi.shape[1])]
        title = "V1 dictionary (first 64 atoms)"
    rows = min(8, -(-len(atoms) // 8))
    fig, axes = plt.subplots(rows, 8, figsize=(8, rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < min(64, len(atoms)):
            ax.imshow(atoms[k], cmap="gray")
    fig.suptitle(title)
    ctx.writer.save_figure(fig, "multimodal_V1_atoms")
    phiT = a["lca_phi_T1"]
    H, W = a["names_img"].shape[1:]
    fig, axes = plt.subplots(8, 2, figsize=(8, 6))
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < phiT.shape[1]:
            ax.imshow(phiT[:, k].reshape(H, W), cmap="gray")
    fig.suptitle("T1 dictionary (first 16 atoms)")
    ctx.writer.save_figure(fig, "multimodal_T1_atoms")
    if bool(a["ffa_available"]) and a["ffa_loss"].size:
        fig, ax = plt.subplots(1, 2, figsize=(8, 3))
        ax[0].plot(np.arange(1, len(a["lca_v1_error_by_epoch"]) + 1), a["lca_v1_error_by_epoch"], "o-k")
        ax[0].set_xlabel("epoch")
        ax[0].set_ylabel("LCA V1 ‖x − Φa‖²/‖x‖²")
        ax[1].plot(a["ffa_loss"], "k")
        ax[1].set_xlabel("epoch")
        ax[1].set_ylabel("FFA loss")
        fig.tight_layout()
        ctx.writer.save_figure(fig, "multimodal_training")


PROTOCOL = Protocol(
    name="multimodal.train",
    paper="multimodal",
    summary="deep LCA hierarchy with feedback and a feed-forward autoencoder learn LFW faces + names "
            "(Kim et al. 2018)",
    params=MultimodalParams,
    quick=quick_params,
    run=run,
    claims=[
        Claim("lca_v1_error_last_epoch", "LCA V1 relative reconstruction error, last epoch", "—", "< first epoch",
              None),
        Claim("lca_active_fraction_both", "LCA P1 active fraction (face + name)", "20.2% (joint layer)", "—",
              None, "{:.3f}"),
    ],
    data=["lfw"],
    backends=("numpy", "cython", "cpp", "cuda"),
    figures=["multimodal_V1_atoms", "multimodal_T1_atoms", "multimodal_training"],
)
