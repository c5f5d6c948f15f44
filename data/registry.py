"""Registry of the public data sets used by b2models and resolution of where they live.

Data are never part of the project. They are looked for, in this order:

1. ``$B2MODELS_DATA`` (if set, it must exist and it is the only place searched);
2. ``./data/local`` relative to the current working directory (where ``b2models data fetch`` puts data);
3. ``../shared/data`` relative to the project root (the read-only copy next to the checkout).

:func:`root` returns the first of these that exists. :func:`require` looks a data set up in that root
and, when ``$B2MODELS_DATA`` is not set, also in the later places, so that fetching one data set into
``./data/local`` does not hide the others in the shared copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "B2MODELS_DATA"
#: the project root (the directory that holds setup.cfg)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class DataError(Exception):
    """A data set or data file is missing, unreadable or corrupt."""


@dataclass(frozen=True)
class Dataset:
    """One public data set.

    ``folder`` is relative to :func:`root`. ``url`` is the original public download location (an archive)
    and ``archive_subdir`` the folder inside that archive that becomes ``folder``; its first component
    may be ``*`` to stand for the single top-level folder of a GitHub archive (``REPO-BRANCH``).
    ``archive_subdir=None`` marks a data set that cannot be fetched automatically (a table derived by
    hand from the source; ``url`` then names that source). ``files`` lists files (relative to
    ``folder``) that must exist for the data set to count as present; empty means "folder is not empty".
    """

    name: str
    folder: str
    description: str
    url: str
    archive_subdir: str | None
    citation: str
    files: tuple[str, ...] = ()

    @property
    def fetchable(self) -> bool:
        return self.archive_subdir is not None

    def present_in(self, base: Path) -> bool:
        """Whether the data set is complete under the data root ``base``."""
        d = Path(base) / self.folder
        if self.files:
            return all((d / f).is_file() for f in self.files)
        return d.is_dir() and any(not p.name.startswith(".") for p in d.iterdir())


def _gh(repo: str, branch: str | None = None) -> str:
    """Archive URL of a GitHub repository; ``branch=None`` means the default branch (``HEAD``)."""
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    return f"https://github.com/{repo}/archive/{ref}.zip"


_ALL = [
    Dataset(
        "caltech_face_motor", "caltech_face_motor",
        "Caltech-101 Faces and Motorbikes, 435 + 435 grayscale JPEGs, Learning/Training/Testing splits",
        _gh("npvoid/SDNN_python", "master"), "*/datasets",
        "Fei-Fei, Fergus & Perona (2004), Caltech-101; split of Kheradpisheh et al. (2018), "
        "Neural Networks 99:56-67; copy from github.com/npvoid/SDNN_python",
    ),
    Dataset(
        "lfw", "lfw",
        "Labeled Faces in the Wild, deep-funneled, 250x250 RGB, one folder per person",
        "http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz", "lfw-deepfunneled",
        "Huang, Ramesh, Berg & Learned-Miller (2007), UMass TR 07-49; deep funneling: Huang et al. (2012)",
    ),
    Dataset(
        "librispeech", "speech/librispeech",
        "LibriSpeech samples (test-other: 100 FLAC, 10 speakers; train-clean-100: 100 FLAC), 16 kHz mono",
        _gh("resemble-ai/Resemblyzer", "master"), "*/audio_data",
        "Panayotov et al. (2015), LibriSpeech, ICASSP (CC BY 4.0); samples from github.com/resemble-ai/Resemblyzer",
    ),
    Dataset(
        "scenes_clark_pano", "scenes/ClarkLab_T4T5TrainingCode",
        "one natural panorama pano.mat, variable 'projection' 251x927 linear luminance (927 px = 360 deg)",
        _gh("ClarkLabCode/T4T5TrainingCode"), "*/generate_figures/intermediate_mat_files",
        "Meyer et al. (2014) panorama format; github.com/ClarkLabCode/T4T5TrainingCode",
        files=("pano.mat",),
    ),
    Dataset(
        "scenes_train400", "scenes/DnCNN_Train400",
        "400 grayscale 180x180 crops of Berkeley natural images (8-bit, gamma-encoded)",
        _gh("cszn/DnCNN", "master"), "*/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400",
        "Zhang et al. (2017), DnCNN, IEEE TIP 26:3142; images from BSDS (Martin et al. 2001)",
    ),
    Dataset(
        "fly_l1l2", "fly/ClandininLab_L1L2-deblur",
        "Drosophila L1/L2 calcium responses to light/dark flashes (63 samples, 8.33 ms) and L2 to a "
        "2 s naturalistic stimulus",
        _gh("ClandininLab/L1L2-deblur"), "*/computational-model/data",
        "Clandinin lab, github.com/ClandininLab/L1L2-deblur",
    ),
    Dataset(
        "fly_t4t5", "fly/ClarkLab_T4T5TrainingCode",
        "measured T4/T5 data: fly.mat (filters, moving-edge responses, opponency), T4T5EdgeResponses.csv",
        _gh("ClarkLabCode/T4T5TrainingCode"), "*/generate_figures/intermediate_mat_files",
        "Clark lab, github.com/ClarkLabCode/T4T5TrainingCode",
        files=("fly.mat", "T4T5EdgeResponses.csv"),
    ),
    Dataset(
        "fly_connectome", "fly/flyvis_connectome",
        "fib25-fib19 v2.2 optic-lobe connectome: 65 cell types, 605 signed edges with synapse counts",
        _gh("TuragaLab/flyvis", "main"), "*/flyvis/connectome",
        "Lappalainen et al. (2024), Nature 634:1132 (flyvis, MIT); Takemura et al. (2013, 2015, 2017)",
        files=("fib25-fib19_v2.2.json",),
    ),
    Dataset(
        "fly_resu_weights", "fly",
        "T4a input weights plotted in the ReSU paper (L1/L3 x left/centre/right)",
        "https://github.com/ShawnQin/ReSU/blob/main/figures_ReSU.ipynb", None,
        "ReSU figure code, github.com/ShawnQin/ReSU (values hard-coded in figures_ReSU.ipynb)",
        files=("T4a_connectome_weights_figures_ReSU.csv",),
    ),
    Dataset(
        "scenes_clark_tonemapped", "scenes/ClarkLab_TimeReversalSymmetry",
        "a second panorama, 927x251 tone-mapped 8-bit JPEG (not linear)",
        _gh("ClarkLabCode/TimeReversalSymmetry"), "*/figure_scripts",
        "Clark lab, github.com/ClarkLabCode/TimeReversalSymmetry (GPL-3.0)",
        files=("0051_120518-142858_tonemapped.jpg",),
    ),
    Dataset(
        "fly_filter_resolution", "fly/ClarkLab_FilterResolution",
        "ArcLight voltage recordings under binary flicker (cell type not stated in the source)",
        _gh("ClarkLabCode/FilterResolution"), "*",
        "Clark lab, github.com/ClarkLabCode/FilterResolution",
        files=("ArcLight2dScanROI.mat", "ArcLightLineScanData.mat"),
    ),
    Dataset(
        "fly_t4t5_input_params", "fly/silieslab_RamosTraslosheros2021_params",
        "derived table: T4/T5 input synapse counts per column, RF widths and time constants per cell type",
        "https://github.com/silieslab/RamosTraslosheros_Silies_2020", None,
        "Ramos-Traslosheros & Silies (2021), Nat Neurosci 24:1165 (BSD-3)",
        files=("DERIVED_rf_temporal_params_and_T4T5_column_connectivity.csv",),
    ),
    Dataset(
        "fly_lamina_params", "fly/Nourse_MotionVisionSNS_literature_params",
        "derived table: literature fit parameters for L1-L5 and medulla neurons",
        "https://github.com/wnourse05/Motion-Vision-SNS", None,
        "Nourse et al., github.com/wnourse05/Motion-Vision-SNS (Apache-2.0), after Borst lab fits",
        files=("DERIVED_borst_params.csv",),
    ),
]

#: name -> :class:`Dataset`
DATASETS: dict[str, Dataset] = {d.name: d for d in _ALL}


def _shared_dir() -> Path:
    return (PROJECT_ROOT / ".." / "shared" / "data").resolve()


def _local_dir() -> Path:
    return Path.cwd() / "data" / "local"


def _env_dir() -> Path | None:
    value = os.environ.get(ENV_VAR, "")
    if not value:
        return None
    p = Path(value).expanduser()
    if not p.is_dir():
        raise DataError(f"{ENV_VAR} is set to {value!r}, but that directory does not exist")
    return p


def root() -> Path:
    """The data root: ``$B2MODELS_DATA``, else ``./data/local``, else ``<project>/../shared/data``."""
    env = _env_dir()
    if env is not None:
        return env
    for p in (_local_dir(), _shared_dir()):
        if p.is_dir():
            return p
    raise DataError(
        "no data directory found; tried "
        f"${ENV_VAR} (not set), {_local_dir()} and {_shared_dir()}. "
        f"Run `b2models data fetch NAME` or set {ENV_VAR} to a directory holding the data sets."
    )


def search_roots() -> list[Path]:
    """All data roots searched by :func:`require`, in order (raises :class:`DataError` if none)."""
    env = _env_dir()
    if env is not None:
        return [env]
    roots = [p for p in (_local_dir(), _shared_dir()) if p.is_dir()]
    if not roots:
        root()  # raises with the message naming all places
    return roots


def get(name: str) -> Dataset:
    """The :class:`Dataset` called ``name`` (DataError listing the known names otherwise)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}") from None


def locate(name: str) -> Path | None:
    """The data set's directory if it is present in one of the search roots, else None."""
    ds = get(name)
    for base in search_roots():
        if ds.present_in(base):
            return base / ds.folder
    return None


def require(name: str) -> Path:
    """The directory of data set ``name``; :class:`DataError` with the fetch command if it is missing."""
    ds = get(name)
    found = locate(name)
    if found is not None:
        return found
    where = root() / ds.folder
    if ds.files:
        where = ", ".join(str(where / f) for f in ds.files)
    hint = f"run `b2models data fetch {name}` (or set {ENV_VAR})"
    if not ds.fetchable:
        hint += f"; this table is derived from {ds.url} and cannot be fetched automatically"
    raise DataError(f"data set {name} not found at {where}; {hint}")


def _count_files(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(1 for _, _, files in os.walk(path) for f in files if not f.startswith("."))


def status() -> list[dict]:
    """One dict per data set: name, present, path, n_files, description (for ``b2models data list``).

    For data sets defined by a list of files inside a shared folder, ``n_files`` counts those files.
    """
    try:
        default_root = root()
    except DataError:
        default_root = None
    rows = []
    for ds in DATASETS.values():
        try:
            found = locate(ds.name)
        except DataError:
            found = None
        path = found if found is not None else (default_root / ds.folder if default_root else None)
        if found is None:
            n = 0
        elif ds.files:
            n = sum((found / f).is_file() for f in ds.files)
        else:
            n = _count_files(found)
        rows.append({
            "name": ds.name,
            "present": found is not None,
            "path": str(path) if path is not None else None,
            "n_files": n,
            "description": ds.description,
        })
    return rows
