"""Loaders for the public data sets of :mod:`data.registry` (numpy arrays out).

Images come out as float64 in [0, 1] unless stated otherwise. Unreadable image or audio files are
skipped with a warning that names the file and counts the skips; if more than ``MAX_BAD_FRACTION`` of
the files asked for are unreadable, a :class:`DataError` is raised instead.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .registry import DataError, require

#: more unreadable files than this fraction of a request -> DataError
MAX_BAD_FRACTION = 0.05
_MAX_FILE_WARNINGS = 10


# --------------------------------------------------------------------------- helpers

def _load_all(paths: Sequence[Path], read: Callable[[Path], object], what: str) -> list:
    """``[read(p) or None for p in paths]`` with the corrupt-file policy; None marks a skipped file."""
    out, bad = [], []
    for p in paths:
        try:
            out.append(read(p))
        except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as exc:
            # PIL raises OSError/UnidentifiedImageError (an OSError)/SyntaxError/ValueError;
            # soundfile raises LibsndfileError (a RuntimeError)
            bad.append(p)
            out.append(None)
            if len(bad) <= _MAX_FILE_WARNINGS:
                warnings.warn(f"skipping unreadable {what} file {p} ({type(exc).__name__}: {exc}); "
                              f"{len(bad)} skipped so far", stacklevel=3)
    if bad:
        n = len(paths)
        if len(bad) > MAX_BAD_FRACTION * n:
            raise DataError(
                f"{len(bad)} of {n} {what} files are unreadable (more than {MAX_BAD_FRACTION:.0%}), "
                f"e.g. {bad[0]}; the data set looks corrupt - fetch it again with `b2models data fetch`"
            )
        warnings.warn(f"skipped {len(bad)} of {n} unreadable {what} files (first: {bad[0]})",
                      stacklevel=3)
    return out


def _read_image(path: Path, mode: str, size: tuple[int, int] | None = None,
                crop: float | None = None) -> np.ndarray:
    """Decode ``path`` with PIL to ``mode`` ('L' or 'RGB'), centre-crop and resize; float64 in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        im = im.convert(mode)
    if crop is not None and crop != 1.0:
        w, h = im.size
        cw, ch = max(1, round(w * crop)), max(1, round(h * crop))
        left, top = (w - cw) // 2, (h - ch) // 2
        im = im.crop((left, top, left + cw, top + ch))
    if size is not None and im.size != tuple(size):
        im = im.resize(tuple(size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.float64) / 255.0


def _check_choice(arg: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise ValueError(f"{arg}={value!r} is not valid; allowed values: {', '.join(map(repr, allowed))}")


def _loadmat(path: Path) -> dict:
    import scipy.io

    if not path.is_file():
        raise DataError(f"file {path} not found; run `b2models data fetch` for its data set")
    try:
        raw = scipy.io.loadmat(path, squeeze_me=True)
    except Exception as exc:  # scipy raises several types for bad files
        raise DataError(f"cannot read MATLAB file {path}: {exc}") from exc
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def _to_python(value):
    """Turn scipy.io structs (record arrays) and cell arrays into dicts / lists of arrays."""
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            if value.shape == ():
                return {f: _to_python(value[f].item()) for f in value.dtype.names}
            return [_to_python(v) for v in value.ravel()]
        if value.dtype == object:
            return [_to_python(v) for v in value.ravel()]
    return value


def _read_csv_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"file {path} not found; run `b2models data fetch` for its data set")
    with open(path, newline="") as fh:
        return [row for row in csv.reader(fh) if row and not row[0].lstrip().startswith("#")]


# --------------------------------------------------------------------------- Caltech faces/motorbikes

_CALTECH_SPLITS = {"learning": "LearningSet", "training": "TrainingSet", "testing": "TestingSet"}


def caltech_split_files(split: str, classes: Sequence[str] = ("Face", "Motor")) -> list[Path]:
    """Image paths of a Caltech face/motorbike split, in file order (Face first, then Motor).

    Reads ``splits/<Set>.txt`` (one ``Class/file.jpg`` per line) when present, else the folder layout of
    the original repository (``<Set>/<Class>/*.jpg``, what ``b2models data fetch`` unpacks).
    """
    _check_choice("split", split, tuple(_CALTECH_SPLITS))
    base = require("caltech_face_motor")
    set_name = _CALTECH_SPLITS[split]
    listing = base / "splits" / f"{set_name}.txt"
    if listing.is_file():
        lines = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
        paths = [base / ln for ln in lines if ln.split("/", 1)[0] in classes]
    elif (base / set_name).is_dir():
        paths = [p for c in classes for p in sorted((base / set_name / c).glob("*.jpg"))]
    else:
        raise DataError(f"split {split!r} not found: neither {listing} nor {base / set_name} exists; "
                        "run `b2models data fetch caltech_face_motor`")
    return paths


def load_caltech(split: str, size: tuple[int, int] = (250, 160), classes: Sequence[str] = ("Face", "Motor"),
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Caltech-101 Faces/Motorbikes as used by Kheradpisheh et al. (2018) (SOURCES.md: npvoid/SDNN_python).

    ``split`` is 'learning' (237+237, unsupervised STDP), 'training' (200+200, classifier) or 'testing'
    (198+198). Images are converted to grayscale and resized with PIL bilinear to ``size`` = (W, H).
    ``limit`` keeps at most that many images per class (in split order).

    Returns ``images`` float64 [n, H, W] in [0, 1], ``labels`` int64 [n] (index into ``classes``) and the
    list of file paths actually loaded (unreadable files are skipped, see module docstring).
    """
    paths = caltech_split_files(split, classes)
    if limit is not None:
        kept, count = [], dict.fromkeys(classes, 0)
        for p in paths:
            c = p.parent.name
            if count[c] < limit:
                kept.append(p)
                count[c] += 1
        paths = kept
    imgs = _load_all(paths, lambda p: _read_image(p, "L", size), "image")
    ok = [(p, im) for p, im in zip(paths, imgs) if im is not None]
    labels = np.array([classes.index(p.parent.name) for p, _ in ok], dtype=np.int64)
    w, h = size
    images = np.stack([im for _, im in ok]) if ok else np.zeros((0, h, w))
    return images, labels, [p for p, _ in ok]


# --------------------------------------------------------------------------- LFW

def lfw_people(min_images: int = 5) -> dict[str, int]:
    """People of LFW (deep-funneled) with at least ``min_images`` images -> image count,
    sorted by descending count then name. The shared copy holds the 423 people with >= 5 images."""
    base = require("lfw")
    counts = {}
    for d in base.iterdir():
        if d.is_dir():
            n = sum(1 for f in d.iterdir() if f.suffix.lower() == ".jpg")
            if n >= min_images:
                counts[d.name] = n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def load_lfw(min_images: int = 5, size: int = 64, people: Sequence[str] | None = None,
             limit_per_person: int | None = None, gray: bool = False,
             crop: float = 0.5) -> dict[str, np.ndarray]:
    """Labeled Faces in the Wild, deep-funneled (SOURCES.md: umass-vis-lfw; official lfw-deepfunneled.tgz).

    Each 250x250 RGB image is centre-cropped to the fraction ``crop`` of its side (default 0.5: the
    central 125x125 region, the face) and resized (PIL bilinear) to ``size`` x ``size``.
    ``people`` selects names (default: everyone with >= ``min_images`` images); ``limit_per_person``
    keeps the first images of each person (sorted by file name).

    Returns person -> float64 array [n, size, size, 3] in [0, 1] ([n, size, size] if ``gray``).
    """
    if not 0 < crop <= 1:
        raise ValueError(f"crop={crop!r} must be in (0, 1]")
    base = require("lfw")
    if people is None:
        people = list(lfw_people(min_images))
    else:
        missing = [p for p in people if not (base / p).is_dir()]
        if missing:
            raise ValueError(f"people not in LFW at {base}: {', '.join(missing)}")
    files = []
    for person in people:
        fs = sorted(f for f in (base / person).iterdir() if f.suffix.lower() == ".jpg")
        files += [(person, f) for f in fs[:limit_per_person]]
    mode = "L" if gray else "RGB"
    imgs = _load_all([f for _, f in files], lambda p: _read_image(p, mode, (size, size), crop), "image")
    out: dict[str, list] = {}
    for (person, _), im in zip(files, imgs):
        if im is not None:
            out.setdefault(person, []).append(im)
    return {person: np.stack(v) for person, v in out.items()}


# --------------------------------------------------------------------------- LibriSpeech

LIBRISPEECH_SUBSETS = ("test-other", "train-clean-100")


def _librispeech_dir(subset: str) -> Path:
    _check_choice("subset", subset, LIBRISPEECH_SUBSETS)
    base = require("librispeech")
    for d in (base / subset, base / f"librispeech_{subset}"):  # shared copy / Resemblyzer layout
        if d.is_dir():
            return d
    raise DataError(f"LibriSpeech subset {subset} not found at {base / subset}; "
                    "run `b2models data fetch librispeech`")


def librispeech_files(subset: str = "test-other") -> list[Path]:
    """Sorted FLAC paths of a LibriSpeech sample subset (test-other: 100 files in <speaker>/ folders,
    train-clean-100: 100 files, one per speaker, flat). File names are SPEAKER-CHAPTER-UTTERANCE.flac."""
    return sorted(_librispeech_dir(subset).rglob("*.flac"))


def librispeech_speakers(subset: str = "test-other") -> dict[int, dict]:
    """Parse SPEAKERS.TXT (``ID | SEX | SUBSET | MINUTES | NAME``) -> id -> {sex, subset, minutes, name};
    empty if the file is absent."""
    path = _librispeech_dir(subset) / "SPEAKERS.TXT"
    out: dict[int, dict] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [f.strip() for f in line.split("|", 4)]
        if len(fields) == 5 and fields[0].isdigit():
            try:
                minutes = float(fields[3])
            except ValueError:
                minutes = float("nan")
            out[int(fields[0])] = {"sex": fields[1], "subset": fields[2], "minutes": minutes,
                                   "name": fields[4]}
    return out


def load_librispeech(subset: str = "test-other", limit: int | None = None) -> list[dict]:
    """LibriSpeech samples (SOURCES.md: resemble-ai/Resemblyzer audio_data/, CC BY 4.0).

    Returns one dict per file: ``path``, ``speaker`` (int reader id), ``samplerate`` (16000 Hz),
    ``audio`` (float32 [n_samples] in [-1, 1], mono) and ``sex`` ('F'/'M' from SPEAKERS.TXT, or None).
    ``limit`` keeps the first files in sorted order.
    """
    import soundfile

    paths = librispeech_files(subset)[:limit]
    speakers = librispeech_speakers(subset)

    def read(p: Path):
        audio, sr = soundfile.read(p, dtype="float32", always_2d=False)
        if audio.ndim > 1:
            audio = audio.mean(axis=1, dtype=np.float32)
        return audio, sr

    decoded = _load_all(paths, read, "audio")
    out = []
    for p, res in zip(paths, decoded):
        if res is None:
            continue
        spk = int(p.name.split("-", 1)[0])
        out.append({"path": p, "speaker": spk, "samplerate": int(res[1]), "audio": res[0],
                    "sex": speakers.get(spk, {}).get("sex")})
    return out


# --------------------------------------------------------------------------- natural scenes

def load_panorama_mat() -> np.ndarray:
    """The natural panorama of ClarkLabCode/T4T5TrainingCode ``pano.mat`` (Meyer et al. 2014 format).

    Returns ``projection``: float64 [251, 927], linear luminance (arbitrary units, about 3e2..1.3e4);
    the 927 columns span 360 deg of azimuth (0.388 deg per pixel).
    """
    m = _loadmat(require("scenes_clark_pano") / "pano.mat")
    if "projection" not in m:
        raise DataError("pano.mat has no variable 'projection'")
    return np.asarray(m["projection"], dtype=np.float64)


def load_train400(limit: int | None = None) -> np.ndarray:
    """DnCNN Train400 (SOURCES.md: cszn/DnCNN): grayscale 180x180 crops of Berkeley images.

    Returns float64 [n, 180, 180] in [0, 1] (8-bit gamma-encoded values / 255, not linear), files in
    sorted order; ``limit`` keeps the first ones.
    """
    paths = sorted(require("scenes_train400").glob("*.png"))[:limit]
    imgs = [im for im in _load_all(paths, lambda p: _read_image(p, "L"), "image") if im is not None]
    if not imgs:
        return np.zeros((0, 180, 180))
    shapes = {im.shape for im in imgs}
    if len(shapes) != 1:
        raise DataError(f"Train400 images have different shapes {sorted(shapes)}")
    return np.stack(imgs)


# --------------------------------------------------------------------------- fly physiology

#: sample spacing of the L1/L2 flash responses (120 Hz)
L1L2_FLASH_DT = 1 / 120


def load_fly_l1l2() -> dict[str, dict]:
    """Drosophila L1/L2 calcium imaging (SOURCES.md: ClandininLab/L1L2-deblur computational-model/data).

    Returns condition -> dict, for the conditions ``L1_highLum``, ``L1_lowLum``, ``L2_highLum``,
    ``L2_lowLum`` (mean response) and ``L1_CDM_*``/``L2_CDM_*`` (mean plus per-ROI responses):

    * ``t``: float64 [63] s, sample spacing 8.33 ms (:data:`L1L2_FLASH_DT`);
    * ``mean``: float64 [2, 63] mean response (dF/F); row 0 = dark flash, row 1 = light flash (the row
      order the source notebook uses when it pairs the rows with its stimuli);
    * ``indiv`` (CDM files only): float64 [2, n_roi, 63] per-ROI responses, same row order (n_roi 33..102).

    and ``L2_natstim``: ``t`` [708] s (spacing 2.82 ms, 2 s), ``mean`` [708], ``indiv`` [52, 708]: L2
    responses to a 2 s naturalistic stimulus (timing-corrected file).
    """
    base = require("fly_l1l2")
    out: dict[str, dict] = {}
    for path in sorted(base.glob("L*_*Lum.mat")):
        m = _loadmat(path)
        d = {"t": np.asarray(m["t"], dtype=np.float64), "mean": np.asarray(m["meanResp"], dtype=np.float64)}
        if "indivResp" in m:
            parts = [np.asarray(x, dtype=np.float64) for x in np.atleast_1d(m["indivResp"])]
            d["indiv"] = np.stack(parts) if len({p.shape for p in parts}) == 1 else parts
        out[path.stem] = d
    nat = base / "L2_2s_natstim_corrected_fixedtiming.mat"
    if nat.is_file():
        m = _loadmat(nat)
        out["L2_natstim"] = {"t": np.asarray(m["t_fixed"], dtype=np.float64),
                             "mean": np.asarray(m["meanResp_fixed"], dtype=np.float64),
                             "indiv": np.asarray(m["indivResp_fixed"], dtype=np.float64)}
    if not out:
        raise DataError(f"no L1/L2 .mat files in {base}; run `b2models data fetch fly_l1l2`")
    return out


def fly_l1l2_recordings() -> dict:
    """The L1/L2 recordings of :func:`load_fly_l1l2` as :class:`~b2models.analysis.recording.Recording` objects.

    Flash conditions (``L1_highLum``, ``L1_lowLum``, ``L2_highLum``, ``L2_lowLum``): ``values`` [63, 2], column 0 the
    dark flash and column 1 the light flash (``meta['columns']``); ``L2_natstim``: ``values`` [708]. Times in
    seconds, units dF/F (calcium imaging, per the source's file names and notebook)."""
    from b2models.analysis.recording import Recording

    base = require("fly_l1l2")
    out = {}
    for name, d in load_fly_l1l2().items():
        mean = np.asarray(d["mean"], dtype=np.float64)
        if mean.ndim == 2 and mean.shape[0] == 2:
            values, columns = mean.T, ["dark flash", "light flash"]
        else:
            values, columns = mean, ["naturalistic stimulus"]
        out[name] = Recording(times=np.asarray(d["t"], dtype=np.float64), values=values, units="dF/F",
                              source=f"{base} ({name})", name=name, meta={"columns": columns})
    return out


def load_fly_t4t5() -> dict:
    """Measured T4/T5 data (SOURCES.md: ClarkLabCode/T4T5TrainingCode, intermediate_mat_files).

    From ``fly.mat`` (scipy.io.loadmat, squeeze_me=True; MATLAB structs become dicts, cell arrays lists):

    * ``filterShapesOut``: ``filterShapes`` [30 t, 3 x, 2 (T4, T5)], ``t`` [30], ``x`` [3];
    * ``movingEdgeRespsOut``: ``t`` [157], ``resps``/``sems`` [157, 4 edge types, 2 (T4, T5)];
    * ``opponencyRespsOut``: ``resps``/``sems`` [5, 2], ``indResps`` list of [n_fly, 5];
    * ``coactivationOutput``: ``resps`` [4, 4]; ``staticEdgeRespsOut``: ``bars`` [33] (responses empty).

    plus ``edge_responses`` from ``T4T5EdgeResponses.csv``: cell type (T4a, T5a, T4b, T5b) ->
    {'x': array, 'y': array} (the file's X/Y columns, series of different lengths; units not stated).
    """
    base = require("fly_t4t5")
    out = {k: _to_python(v) for k, v in _loadmat(base / "fly.mat").items()}
    rows = _read_csv_rows(base / "T4T5EdgeResponses.csv")
    names, axes, body = rows[0], rows[1], rows[2:]
    edges: dict[str, dict] = {}
    for j in range(0, len(names) - 1, 2):
        name = names[j].strip()
        cols = {}
        for k, axis in ((j, axes[j]), (j + 1, axes[j + 1])):
            cols[axis.strip().lower()] = np.array(
                [float(r[k]) for r in body if k < len(r) and r[k].strip()], dtype=np.float64)
        edges[name] = cols
    out["edge_responses"] = edges
    return out


def _connectome_edges(target: str) -> list[tuple[str, int, float]]:
    """(source type, sign, summed synapse count) of all edges onto ``target``."""
    base = require("fly_connectome")
    derived = base / "DERIVED_edges_total_counts.csv"
    if derived.is_file():
        with open(derived, newline="") as fh:
            return [(r["src"], int(float(r["sign_alpha"])), float(r["total_syn_count_summed_over_offsets"]))
                    for r in csv.DictReader(fh) if r["tar"] == target]
    try:
        graph = json.loads((base / "fib25-fib19_v2.2.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {base / 'fib25-fib19_v2.2.json'}: {exc}") from exc
    return [(e["src"], int(e["alpha"]), float(sum(c for _, c in e["offsets"])))
            for e in graph["edges"] if e["tar"] == target]


def load_connectome_inputs(target: str, include_t4t5: bool = False,
                           strip_compartment: bool = True) -> dict[str, float]:
    """Signed synapse counts onto ``target`` summed over column offsets (SOURCES.md: TuragaLab/flyvis
    fib25-fib19_v2.2; read from DERIVED_edges_total_counts.csv, else computed from the JSON).

    Returns source cell type -> sign * count (counts are averages per postsynaptic cell, hence
    fractional), sorted by descending ``|count|``. ``include_t4t5=False`` drops the lateral inputs from
    T4/T5 cells themselves; ``strip_compartment`` turns e.g. 'CT1(M10)' into 'CT1' (summing duplicates).
    """
    out: dict[str, float] = {}
    for src, sign, count in _connectome_edges(target):
        if not include_t4t5 and re.fullmatch(r"T[45][a-d]", src):
            continue
        name = re.sub(r"\(.*\)$", "", src) if strip_compartment else src
        out[name] = out.get(name, 0.0) + sign * count
    if not out:
        raise DataError(f"no connectome inputs onto {target!r}")
    return dict(sorted(out.items(), key=lambda kv: -abs(kv[1])))


def load_connectome_t4a_inputs(include_t4t5: bool = False) -> dict[str, float]:
    """Signed inputs onto T4a (see :func:`load_connectome_inputs`): Mi1 +59, Tm3 +25.7, Mi9 -23.2,
    CT1 -18.0, Mi4 -15, TmY15 -11, C3 -9.7, Mi10 -1.3, C2 -1.2 (synapses per T4a cell)."""
    return load_connectome_inputs("T4a", include_t4t5=include_t4t5)


def load_resu_t4a_weights() -> dict[str, np.ndarray]:
    """T4a input weights the ReSU paper plots (SOURCES.md: ShawnQin/ReSU figures_ReSU.ipynb).

    Returns {'L1': [3], 'L3': [3]} float64 relative weights by input column (left, centre, right);
    L1 = [0.37, 1.37, 0.34], L3 = [0.20, -0.38, -0.09].
    """
    path = require("fly_resu_weights") / "T4a_connectome_weights_figures_ReSU.csv"
    rows = _read_csv_rows(path)
    header = [h.strip() for h in rows[0]]
    try:
        cols = [header.index(c) for c in ("left", "center", "right")]
        out = {r[0].strip(): np.array([float(r[c]) for c in cols]) for r in rows[1:]}
        return {"L1": out["L1"], "L3": out["L3"]}
    except (ValueError, KeyError, IndexError) as exc:
        raise DataError(f"unexpected format of {path}: {exc}") from exc


def _param_table(name: str, filename: str, key: str) -> dict[str, dict]:
    rows = _read_csv_rows(require(name) / filename)
    header = [h.strip() for h in rows[0]]
    out = {}
    for r in rows[1:]:
        rec = {}
        for h, v in zip(header, r):
            v = v.strip()
            try:
                rec[h] = float(v) if v else float("nan")
            except ValueError:
                rec[h] = v
        out[rec[key]] = rec
    return out


def load_t4t5_input_params() -> dict[str, dict]:
    """Derived table from Ramos-Traslosheros & Silies (2021) (SOURCES.md: silieslab): cell type ->
    {center_FWHM_deg, surround_FWHM_deg, surround_rel_amplitude, tau_fast_lowpass_s, tau_slow_highpass_s,
    signed_amplitude, synapse_type, conn_col0_home .. conn_col6, conn_total}."""
    return _param_table("fly_t4t5_input_params",
                        "DERIVED_rf_temporal_params_and_T4T5_column_connectivity.csv", "cell_type")


def load_lamina_params() -> dict[str, dict]:
    """Derived literature fits (SOURCES.md: wnourse05/Motion-Vision-SNS): cell type -> {group,
    A_rel_surround, std_center_deg, std_surround_deg, polarity, tau_highpass_s, tau_lowpass_s};
    a missing value is NaN (e.g. L3 has no high-pass time constant)."""
    return _param_table("fly_lamina_params", "DERIVED_borst_params.csv", "cell_type")
