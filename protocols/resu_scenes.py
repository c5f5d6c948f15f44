"""Protocol ``resu.scenes``: first-layer ReSU filters learned from natural scenes scanned at constant velocity
(paper Fig 4).

Qin S, Pughe-Sanford JL, Genkin A, Tan PD, Chklovskii DB et al. (2025), "A Network of Biologically
Inspired Rectified Spectral Units (ReSUs) Learns Hierarchical Features Without Error Backpropagation",
arXiv:2512.23146.

A single "pixel" looks at a natural image that translates horizontally at constant velocity; its input is
the local contrast c = (blurred − local mean) / local mean, sampled every ``dt_ms``.  The past–future CCA of
that time series (analysis/cca.py) gives the first filter ψ1 (L3-like: low-pass, one lobe) and the second
filter ψ2 (L1/L2-like: a smoothed temporal derivative, two lobes); the ON/OFF rectified projections on ψ2 are
the L1/L2-like units (models/resu.py).

Images: the ClarkLab panorama (927 px = 360°, linear luminance, periodic in azimuth) and the DnCNN Train400
crops (gamma-encoded 8-bit: linearised with γ = 2.2, assumed to have the panorama's 0.388°/px); ``--quick``
uses scikit-image's bundled images (camera, grass, gravel, brick, moon, coffee, astronaut, chelsea; needs
scikit-image).  Deviations: the blur (photoreceptor acceptance angle, Gaussian FWHM ``blur_deg``) and
local-mean (FWHM ``mean_deg``) widths, velocity and sample time are our choices (the paper's values were not
available to us); every row of every image is one trajectory; the filters' signs follow the convention of
analysis/cca.py, fixed before any comparison — ψ positive for a recent light increment (so the ON half of ψ2
is the L1 → Mi1 ON unit) — where the authors' notebooks keep the raw singular vectors' signs and negate the
L3 projection by hand for their Fig 4 (L3, like Mi9 after it, is an OFF cell: shown light-referred here).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from b2models.analysis import cca
from b2models.protocol import Claim, Protocol

PANORAMA_DEG_PER_PX = 360.0 / 927
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
SKIMAGE_IMAGES = ("camera", "grass", "gravel", "brick", "moon", "coffee", "astronaut", "chelsea")


# ---------------------------------------------------------------------------------------------
# stimuli: contrast images and constant-velocity scans (pure numpy; shared with resu.t4)
# ---------------------------------------------------------------------------------------------
def contrast_image(img, blur_px: float, mean_px: float, periodic: bool = False, eps: float = 1e-3):
    """Local contrast (blurred − local mean) / local mean of a luminance image (rows × columns)."""
    from scipy.ndimage import gaussian_filter

    img = np.asarray(img, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"a grayscale image (H, W) is needed, got shape {img.shape}")
    if blur_px < 0 or mean_px <= 0:
        raise ValueError(f"blur_px must be >= 0 and mean_px > 0 (got {blur_px}, {mean_px})")
    mode = ("nearest", "wrap") if periodic else "reflect"
    blurred = gaussian_filter(img, blur_px, mode=mode) if blur_px > 0 else img
    local = gaussian_filter(img, mean_px, mode=mode)
    local = np.maximum(local, eps * max(float(img.mean()), 1e-12))
    return (blurred - local) / local


def scan_rows(image, speed_px: float, n_samples: int | None = None, periodic: bool = False,
              start: float = 0.0, offsets=(0.0,)) -> np.ndarray:
    """Time series seen by pixels at column offsets ``offsets`` while the image moves at ``speed_px``
    columns per sample (positive: the image content moves towards higher columns, i.e. a pixel at
    offset d sees what a pixel at offset 0 saw d/speed samples earlier).

    Returns (H, T, len(offsets)); linear interpolation, periodic images wrap around.
    """
    img = np.asarray(image, dtype=float)
    _H, W = img.shape
    if speed_px == 0:
        raise ValueError("speed_px must be non-zero")
    offsets = np.asarray(offsets, dtype=float)
    spread = float(offsets.max() - offsets.min())
    if n_samples is None:
        n_samples = int(W // abs(speed_px)) if periodic else int((W - 1 - spread) // abs(speed_px)) + 1
    if n_samples < 2 or (not periodic and spread >= W - 1):
        raise ValueError(f"image of width {W} too narrow for speed {speed_px} px/sample")
    t = np.arange(n_samples)
    # image content at column x moves to x + v t: the pixel at column p sees the content at p − v t
    if periodic:
        pos = (start + offsets[None, :] - speed_px * t[:, None]) % W
    else:
        x0 = (W - 1 - offsets.max()) if speed_px > 0 else -offsets.min()
        pos = np.clip(x0 + offsets[None, :] - speed_px * t[:, None], 0, W - 1)
    i0 = np.floor(pos).astype(int)
    frac = pos - i0
    i1 = (i0 + 1) % W if periodic else np.minimum(i0 + 1, W - 1)
    return img[:, i0] * (1 - frac) + img[:, i1] * frac


@dataclass
class SceneParams:
    m: int = 30  # past length (samples)
    h: int = 30  # future length (samples)
    dt_ms: float = 10.0  # sample time
    velocity_deg_s: float = 30.0  # scan velocity
    blur_deg: float = 5.0  # photoreceptor acceptance angle (Gaussian FWHM)
    mean_deg: float = 20.0  # local-mean window (Gaussian FWHM)
    noise_var: float = 1.0  # white (photoreceptor) noise added to the contrast, in units of its variance
    rank: int = 4
    reg: float = 1e-6
    train400_limit: int = 400  # Train400 images used (0: none)
    row_step: int = 2  # use every k-th image row
    use_panorama: bool = True
    skimage_images: tuple = SKIMAGE_IMAGES  # --quick and fallback images
    lobe_threshold: float = 0.2  # major lobes only (natural images leave small tails)

    @property
    def speed_px(self) -> float:
        return self.velocity_deg_s * self.dt_ms * 1e-3 / PANORAMA_DEG_PER_PX

    def validate(self):
        if self.m < 2 or self.h < 1 or not 2 <= self.rank <= min(self.m, self.h):
            raise ValueError(f"need m >= 2, h >= 1, 2 <= rank <= min(m, h) (m={self.m}, h={self.h})")
        if self.dt_ms <= 0 or self.velocity_deg_s == 0 or self.row_step < 1 or self.noise_var < 0:
            raise ValueError("dt_ms > 0, velocity_deg_s != 0, row_step >= 1, noise_var >= 0 are required")


def quick_params(p: SceneParams) -> SceneParams:
    return dataclasses.replace(p, use_panorama=False, train400_limit=0, row_step=4)


def load_skimage_images(names) -> list[np.ndarray]:
    """Grayscale linear-luminance images from scikit-image's bundled data (γ = 2.2 linearisation)."""
    try:
        import skimage.color
        import skimage.data
    except ImportError as err:
        raise RuntimeError("the --quick natural images need scikit-image: pip install scikit-image") from err
    out = []
    for name in names:
        img = getattr(skimage.data, name)()
        if img.ndim == 3:
            img = skimage.color.rgb2gray(img[..., :3])
        img = np.asarray(img, dtype=float)
        if img.max() > 1.0:
            img = img / 255.0
        out.append(img**2.2 + 1e-3)
    return out


def scene_sets(p: SceneParams, quick: bool, log=print) -> dict[str, tuple[list, bool, float]]:
    """name -> (list of luminance images, periodic, deg per px)."""
    sets = {}
    if not quick:
        from b2models.data import load_panorama_mat, load_train400

        if p.use_panorama:
            sets["panorama"] = ([load_panorama_mat()], True, PANORAMA_DEG_PER_PX)
        if p.train400_limit > 0:
            imgs = load_train400(limit=p.train400_limit)
            sets["train400"] = ([im**2.2 + 1e-3 for im in imgs], False, PANORAMA_DEG_PER_PX)
    if quick or not sets:
        sets["skimage"] = (load_skimage_images(p.skimage_images), False, PANORAMA_DEG_PER_PX)
    for k, (imgs, _, _) in sets.items():
        log(f"scene set {k}: {len(imgs)} images")
    return sets


def scene_trajectories(images, periodic: bool, deg_per_px: float, p: SceneParams, offsets=(0.0,),
                       speed_sign: float = 1.0) -> np.ndarray:
    """Contrast time series (n_rows_total, T, len(offsets)) of all images (equal T within a set: the
    series are cut to the shortest image's length)."""
    blur = p.blur_deg * FWHM_TO_SIGMA / deg_per_px
    mean = p.mean_deg * FWHM_TO_SIGMA / deg_per_px
    speed = speed_sign * p.velocity_deg_s * p.dt_ms * 1e-3 / deg_per_px
    series = []
    for img in images:
        c = contrast_image(img, blur, mean, periodic=periodic)[:: p.row_step]
        series.append(scan_rows(c, speed, periodic=periodic, offsets=offsets))
    T = min(s.shape[1] for s in series)
    return np.concatenate([s[:, :T] for s in series])


def filter_shape_metrics(psi, threshold=0.1) -> dict:
    psi = np.asarray(psi, dtype=float)
    return {
        "lobes": cca.count_lobes(psi, threshold),
        "dc_fraction": float(abs(psi.sum()) / np.abs(psi).sum()),  # 1: one-signed (low-pass), 0: zero-sum
        "peak_lag": int(np.argmax(np.abs(psi))),
        "sum": float(psi.sum()),
    }


def run(ctx) -> dict:
    p: SceneParams = ctx.params
    p.validate()
    rng = np.random.default_rng(ctx.seed)
    sets = scene_sets(p, ctx.quick, ctx.log)
    metrics: dict = {"speed_px_per_sample": p.speed_px, "dt_ms": p.dt_ms}
    arrays: dict = {}
    results = {}
    for name, (imgs, periodic, dpp) in ctx.progress(sets.items(), desc="scene sets"):
        X = scene_trajectories(imgs, periodic, dpp, p)
        if p.noise_var > 0:
            X = X + np.sqrt(p.noise_var * X.var()) * rng.standard_normal(X.shape)
        res = cca.past_future_cca(X, p.m, p.h, rank=p.rank, reg=p.reg)
        results[name] = res
        f1 = filter_shape_metrics(res.past_filters[0], p.lobe_threshold)
        f2 = filter_shape_metrics(res.past_filters[1], p.lobe_threshold)
        metrics.update({f"{name}_rho": res.rho.tolist(), f"{name}_mi_nats": res.mutual_information,
                        f"{name}_n_trajectories": int(X.shape[0]), f"{name}_samples_per_trajectory": int(X.shape[1]),
                        f"{name}_psi1_lobes": f1["lobes"], f"{name}_psi1_dc_fraction": f1["dc_fraction"],
                        f"{name}_psi2_lobes": f2["lobes"], f"{name}_psi2_dc_fraction": f2["dc_fraction"],
                        f"{name}_psi1_peak_lag": f1["peak_lag"], f"{name}_psi2_peak_lag": f2["peak_lag"]})
        arrays[f"{name}_filters"] = res.past_filters
        arrays[f"{name}_rho"] = res.rho
        ctx.log(f"{name}: {X.shape[0]} trajectories × {X.shape[1]} samples; ρ={np.round(res.rho, 3)}; "
                f"ψ1 lobes {f1['lobes']} (DC {f1['dc_fraction']:.2f}), ψ2 lobes {f2['lobes']} "
                f"(DC {f2['dc_fraction']:.2f})")
    names = list(results)
    main = names[0]
    metrics["main_set"] = main
    metrics["psi1_lobes"] = metrics[f"{main}_psi1_lobes"]
    metrics["psi1_dc_fraction"] = metrics[f"{main}_psi1_dc_fraction"]
    metrics["psi2_lobes"] = metrics[f"{main}_psi2_lobes"]
    metrics["psi2_dc_fraction"] = metrics[f"{main}_psi2_dc_fraction"]
    if len(names) > 1:  # do independent image sets give the same filters?
        a, b = results[names[0]], results[names[1]]
        metrics["cross_set_cosine"] = [float(a.past_filters[k] @ b.past_filters[k] /
                                             np.linalg.norm(a.past_filters[k]) / np.linalg.norm(b.past_filters[k]))
                                       for k in range(2)]
    ctx.writer.save_metrics(metrics)
    ctx.writer.save_arrays(**arrays)
    _figure(ctx, p, results)
    return metrics


def _figure(ctx, p, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lags = np.arange(p.m) * p.dt_ms
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for i, (name, res) in enumerate(results.items()):
        for k, ax in enumerate(axes[:2]):
            f = res.past_filters[k]
            ax.plot(-lags, f / np.abs(f).max(), color=f"C{i}", label=name)
        axes[2].plot(np.arange(1, len(res.rho) + 1), res.rho, "o-", color=f"C{i}", label=name)
    axes[0].set_title("ψ1 (L3-like, low-pass)")
    axes[1].set_title("ψ2 (L1/L2-like, smoothed derivative)")
    for ax in axes[:2]:
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_xlabel("lag (ms)")
    axes[2].set_xlabel("canonical pair k")
    axes[2].set_ylabel("ρ_k")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    ctx.writer.save_figure(fig, "scenes_filters")


PROTOCOL = Protocol(
    name="resu.scenes",
    paper="resu",
    summary="First-layer ReSU filters from natural scenes at constant velocity: L3-like low-pass ψ1, "
            "L1/L2-like derivative ψ2 (Qin et al. 2025, Fig 4)",
    params=SceneParams,
    quick=quick_params,
    run=run,
    data=["scenes_clark_pano", "scenes_train400"],
    claims=[
        Claim("psi1_lobes", "lobes of ψ1 (L3-like)", "1 (low-pass)", "1", lambda v: v == 1, "{:d}"),
        Claim("psi1_dc_fraction", "|Σψ1| / Σ|ψ1|", "low-pass (one-signed)", "≥ 0.9", lambda v: v >= 0.9, "{:.2f}"),
        Claim("psi2_lobes", "lobes of ψ2 (L1/L2-like)", "2 (smoothed derivative)", "2", lambda v: v == 2, "{:d}"),
        Claim("psi2_dc_fraction", "|Σψ2| / Σ|ψ2|", "≈ 0 (derivative)", "≤ 0.3", lambda v: v <= 0.3, "{:.2f}"),
    ],
    figures=["scenes_filters"],
)
