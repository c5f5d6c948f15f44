"""Registry of the public data sets used by b2models and resolution of where they live.

Data are never part of the project. They are looked for, in this order:

1. ``$B2MODELS_DATA`` (if set, it must exist and it is the only place searched);
2. ``./data/local`` relative to the current working directory (where ``b2models data fetch`` puts data);
3. ``../shared/data`` relative to the project root (the read-only copy next to the checkout).

:func:`root` returns the first of these that exists. :func:`require` looks a data set up in that root
and, when ``$B2MODELS_DATA`` is not set, also in the later places, so that fetching one data set into
``./data/local`` does not hide the others in the shared copy.

Every download location is pinned: GitHub files by the full SHA-1 of a commit (never a branch), the one
third-party archive (LFW) by its fixed release file name. Data sets taken from GitHub are fetched file by
file; their per-file SHA-256 lists live in ``data/registry-files/<name>.txt`` (pooch's registry format) and were
computed from the copy in ``../shared/data``, which is byte-identical to the pinned originals (text files
were compared with the originals; binary files could not be compared offline, ``Dataset.hash_note`` says
which). The LFW archive's SHA-256 could not be computed offline: its entry has ``sha256=None`` and
``sha256_checked_offline=False``, and :func:`b2models.data.fetch` refuses it unless a hash is given or
verification is switched off.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import quote

ENV_VAR = "B2MODELS_DATA"
#: the project root (the directory that holds setup.cfg)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class DataError(Exception):
    """A data set or data file is missing, unreadable or corrupt."""


@dataclass(frozen=True)
class Dataset:
    """One public data set.

    ``folder`` is relative to :func:`root`. A data set is fetched in one of two ways (see
    :mod:`b2models.data.fetch`):

    * **file list** (``registry_file`` set): a text file in ``data/registry-files/`` in pooch's registry format,
      one line per file, ``PATH sha256:HEX [URL]``, with ``PATH`` relative to ``folder``. A line without
      ``URL`` is downloaded from ``base_url + PATH``. Every URL is pinned to a commit.
    * **archive** (``archive_subdir`` set): ``url`` is one archive, ``archive_subdir`` the folder inside it
      that becomes ``folder`` (its first component may be ``*`` for the single top-level folder of an
      archive) and ``sha256`` the archive's SHA-256, or None where it is not known (then
      ``sha256_checked_offline`` is False, ``hash_note`` says why and ``published_hash`` gives a weaker
      hash published by the data set's authors, if any).

    Neither set marks a table derived by hand from the source (``url`` then names that source at a fixed
    commit); it cannot be fetched. ``url`` is the pinned public source in every case.

    ``sha256_checked_offline`` records whether the SHA-256 values were computed offline from a local copy
    that is byte-identical to the pinned original (None for derived tables); ``hash_note`` says where
    they come from and which files could not be compared with the original. ``files`` lists files
    (relative to ``folder``) that must exist for the data set to count as present; empty means "folder
    is not empty".
    """

    name: str
    folder: str
    description: str
    url: str
    citation: str
    files: tuple[str, ...] = ()
    registry_file: str | None = None
    base_url: str | None = None
    archive_subdir: str | None = None
    sha256: str | None = None
    sha256_checked_offline: bool | None = None
    hash_note: str = ""
    published_hash: str | None = None

    @property
    def kind(self) -> str:
        """``"files"`` (per-file list), ``"archive"`` or ``"derived"`` (not fetchable)."""
        if self.registry_file is not None:
            return "files"
        if self.archive_subdir is not None:
            return "archive"
        return "derived"

    @property
    def fetchable(self) -> bool:
        return self.kind != "derived"

    @property
    def registry_path(self) -> Path | None:
        """The per-file list (``data/registry-files/<registry_file>`` unless ``registry_file`` is absolute)."""
        if self.registry_file is None:
            return None
        return REGISTRY_DIR / self.registry_file

    def present_in(self, base: Path) -> bool:
        """Whether the data set is complete under the data root ``base``."""
        d = Path(base) / self.folder
        if self.files:
            return all((d / f).is_file() for f in self.files)
        return d.is_dir() and any(not p.name.startswith(".") for p in d.iterdir())


class FileEntry(NamedTuple):
    """One line of a per-file registry: ``path`` (relative to the data set folder), ``hash``
    (``sha256:HEX``) and the pinned download ``url``."""

    path: str
    hash: str
    url: str


#: folder of the per-file registries (package data)
REGISTRY_DIR = Path(__file__).resolve().parent / "registry-files"
_RAW = "https://raw.githubusercontent.com"
_GH = "https://github.com"

# Commits the sources are pinned to (full SHA-1 of a commit of each repository).
_SDNN = "812c0ef20d63b89868e603aa00a174245c43e5d1"  # npvoid/SDNN_python
_RESEMBLYZER = "4596465caf9328c9dedfe80c2a4468255ba8428d"  # resemble-ai/Resemblyzer (test-other samples)
_T4T5 = "abc86145a1729be8071e4402ac4a6d100fdf0468"  # ClarkLabCode/T4T5TrainingCode
_DNCNN = "d24c9ee9ecd6d20494affe90feb70ba10016e6ab"  # cszn/DnCNN (commit adding test_301..400)
_L1L2 = "7fa5829e37d566e02beaaa87efd6a0f1de4e48c0"  # ClandininLab/L1L2-deblur
_FLYVIS = "a76037e6309277b18d3c4e86c01a05860d69eadf"  # TuragaLab/flyvis
_RESU = "e8fdf1cdeced93222c82def05c2398872b125f7b"  # ShawnQin/ReSU
_TRS = "b32666c07fa14aa52501f0bde231b9066a5d4c1c"  # ClarkLabCode/TimeReversalSymmetry
_FILTRES = "c3f2f10b90853073d199e463bd87004f1fc581db"  # ClarkLabCode/FilterResolution
_SILIES = "a8c8d4284f8f746f721733ae0cd1989d6aab1d11"  # silieslab/RamosTraslosheros_Silies_2020
_NOURSE = "64e813f79f74ccd4cf4f7a677b55a976c3c068a5"  # wnourse05/Motion-Vision-SNS
_LFW_SITE = "0062b802377ff7f32775f12fefbee29fa0c741bf"  # umass-vis-lfw/umass-vis-lfw.github.io

_FROM_SHARED = ("SHA-256 of each file computed from the byte-identical copy in ../shared/data (copied unchanged "
                "from the pinned commit)")
_BINARY = "binary files, which could not be compared with the originals offline"


def _files(name, folder, description, url, citation, *, base_url=None, files=(), note=""):
    """A data set fetched file by file from the list ``data/registry-files/<name>.txt``."""
    return Dataset(name, folder, description, url, citation, files=files, registry_file=f"{name}.txt",
                   base_url=base_url, sha256_checked_offline=True, hash_note=f"{_FROM_SHARED}; {note}")


def _derived(name, folder, description, url, citation, files):
    """A table derived by hand from ``url``; it cannot be fetched."""
    return Dataset(name, folder, description, url, citation, files=files)


_ALL = [
    _files(
        "caltech_face_motor", "caltech_face_motor",
        "Caltech-101 Faces and Motorbikes, 435 + 435 grayscale JPEGs, Learning/Training/Testing splits",
        f"{_GH}/npvoid/SDNN_python/tree/{_SDNN}/datasets",
        "Fei-Fei, Fergus & Perona (2004), Caltech-101; split of Kheradpisheh et al. (2018), "
        "Neural Networks 99:56-67; copy from github.com/npvoid/SDNN_python",
        base_url=f"{_RAW}/npvoid/SDNN_python/{_SDNN}/datasets/",
        note=f"all {_BINARY} (JPEG)",
    ),
    Dataset(
        "lfw", "lfw",
        "Labeled Faces in the Wild, deep-funneled, 250x250 RGB, one folder per person",
        "http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
        "Huang, Ramesh, Berg & Learned-Miller (2007), UMass TR 07-49; deep funneling: Huang et al. (2012)",
        archive_subdir="lfw-deepfunneled",
        sha256=None,
        sha256_checked_offline=False,
        published_hash="md5:68331da3eb755a505a502b5aacb3c201",
        hash_note=(
            "the SHA-256 of the archive could not be computed offline: ../shared/data/lfw holds only 5,985 of "
            "its 13,233 images (the 423 people with at least 5 images), not the archive. The LFW home page "
            f"({_GH}/umass-vis-lfw/umass-vis-lfw.github.io/blob/{_LFW_SITE}/index.html) publishes only an MD5 "
            "(68331da3eb755a505a502b5aacb3c201). The archive is LFW's one release of the deep-funneled images "
            "(2012); its file name carries no version"
        ),
    ),
    _files(
        "librispeech", "speech/librispeech",
        "LibriSpeech samples (test-other: 100 FLAC, 10 speakers; train-clean-100: 100 FLAC), 16 kHz mono",
        f"{_GH}/resemble-ai/Resemblyzer/tree/{_RESEMBLYZER}/audio_data",
        "Panayotov et al. (2015), LibriSpeech, ICASSP (CC BY 4.0); samples from github.com/resemble-ai/Resemblyzer",
        note=f"FLAC files are {_BINARY}; SPEAKERS.TXT and LICENSE.TXT were not compared with the originals "
             "either. test-other and train-clean-100 are pinned to the commits that added them (see the list)",
    ),
    _files(
        "scenes_clark_pano", "scenes/ClarkLab_T4T5TrainingCode",
        "one natural panorama pano.mat, variable 'projection' 251x927 linear luminance (927 px = 360 deg)",
        f"{_GH}/ClarkLabCode/T4T5TrainingCode/tree/{_T4T5}/generate_figures/intermediate_mat_files",
        "Meyer et al. (2014) panorama format; github.com/ClarkLabCode/T4T5TrainingCode",
        base_url=f"{_RAW}/ClarkLabCode/T4T5TrainingCode/{_T4T5}/generate_figures/intermediate_mat_files/",
        files=("pano.mat",),
        note=f"pano.mat is one of the {_BINARY}",
    ),
    _files(
        "scenes_train400", "scenes/DnCNN_Train400",
        "400 grayscale 180x180 crops of Berkeley natural images (8-bit, gamma-encoded)",
        f"{_GH}/cszn/DnCNN/tree/{_DNCNN}/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400",
        "Zhang et al. (2017), DnCNN, IEEE TIP 26:3142; images from BSDS (Martin et al. 2001)",
        note=f"all {_BINARY} (PNG); each image is pinned to the commit that added it (four commits of 100)",
    ),
    _files(
        "fly_l1l2", "fly/ClandininLab_L1L2-deblur",
        "Drosophila L1/L2 calcium responses to light/dark flashes (63 samples, 8.33 ms) and L2 to a "
        "2 s naturalistic stimulus",
        f"{_GH}/ClandininLab/L1L2-deblur/tree/{_L1L2}/computational-model/data",
        "Clandinin lab, github.com/ClandininLab/L1L2-deblur",
        note=f"all {_BINARY} (.mat, .fig); each file is pinned to a commit that holds it (see the list)",
    ),
    _files(
        "fly_t4t5", "fly/ClarkLab_T4T5TrainingCode",
        "measured T4/T5 data: fly.mat (filters, moving-edge responses, opponency), T4T5EdgeResponses.csv",
        f"{_GH}/ClarkLabCode/T4T5TrainingCode/tree/{_T4T5}/generate_figures/intermediate_mat_files",
        "Clark lab, github.com/ClarkLabCode/T4T5TrainingCode",
        base_url=f"{_RAW}/ClarkLabCode/T4T5TrainingCode/{_T4T5}/generate_figures/intermediate_mat_files/",
        files=("fly.mat", "T4T5EdgeResponses.csv"),
        note="T4T5EdgeResponses.csv (text) was compared with the file at the commit; fly.mat is one of the "
             f"{_BINARY}",
    ),
    _files(
        "fly_connectome", "fly/flyvis_connectome",
        "fib25-fib19 v2.2 optic-lobe connectome: 65 cell types, 605 signed edges with synapse counts",
        f"{_GH}/TuragaLab/flyvis/tree/{_FLYVIS}/flyvis/connectome",
        "Lappalainen et al. (2024), Nature 634:1132 (flyvis, MIT); Takemura et al. (2013, 2015, 2017)",
        base_url=f"{_RAW}/TuragaLab/flyvis/{_FLYVIS}/flyvis/connectome/",
        files=("fib25-fib19_v2.2.json",),
        note="fib25-fib19_v2.2.json (text) was compared with the file at the commit",
    ),
    _derived(
        "fly_resu_weights", "fly",
        "T4a input weights plotted in the ReSU paper (L1/L3 x left/centre/right)",
        f"{_GH}/ShawnQin/ReSU/blob/{_RESU}/figures_ReSU.ipynb",
        "ReSU figure code, github.com/ShawnQin/ReSU (values hard-coded in figures_ReSU.ipynb)",
        files=("T4a_connectome_weights_figures_ReSU.csv",),
    ),
    _files(
        "scenes_clark_tonemapped", "scenes/ClarkLab_TimeReversalSymmetry",
        "a second panorama, 927x251 tone-mapped 8-bit JPEG (not linear)",
        f"{_GH}/ClarkLabCode/TimeReversalSymmetry/tree/{_TRS}/figure_scripts",
        "Clark lab, github.com/ClarkLabCode/TimeReversalSymmetry (GPL-3.0)",
        base_url=f"{_RAW}/ClarkLabCode/TimeReversalSymmetry/{_TRS}/figure_scripts/",
        files=("0051_120518-142858_tonemapped.jpg",),
        note=f"the JPEG is one of the {_BINARY}",
    ),
    _files(
        "fly_filter_resolution", "fly/ClarkLab_FilterResolution",
        "ArcLight voltage recordings under binary flicker (cell type not stated in the source)",
        f"{_GH}/ClarkLabCode/FilterResolution/tree/{_FILTRES}",
        "Clark lab, github.com/ClarkLabCode/FilterResolution",
        base_url=f"{_RAW}/ClarkLabCode/FilterResolution/{_FILTRES}/",
        files=("ArcLight2dScanROI.mat", "ArcLightLineScanData.mat"),
        note=f"both .mat files are {_BINARY}",
    ),
    _derived(
        "fly_t4t5_input_params", "fly/silieslab_RamosTraslosheros2021_params",
        "derived table: T4/T5 input synapse counts per column, RF widths and time constants per cell type",
        f"{_GH}/silieslab/RamosTraslosheros_Silies_2020/blob/{_SILIES}/neuronparams.py",
        "Ramos-Traslosheros & Silies (2021), Nat Neurosci 24:1165 (BSD-3)",
        files=("DERIVED_rf_temporal_params_and_T4T5_column_connectivity.csv",),
    ),
    _derived(
        "fly_lamina_params", "fly/Nourse_MotionVisionSNS_literature_params",
        "derived table: literature fit parameters for L1-L5 and medulla neurons",
        f"{_GH}/wnourse05/Motion-Vision-SNS/blob/{_NOURSE}/Receptive%20Field%20Reconstruction/borst_data.p",
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


_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def file_entries(name: str | Dataset) -> list[FileEntry]:
    """The per-file list of data set ``name`` (``data/registry-files/<name>.txt``, pooch's registry format), in
    file order, each with its pinned download URL. :class:`DataError` if the data set has no such list or
    the list is malformed (a path that could leave the data set folder, a hash that is not SHA-256, a line
    without URL in a data set without ``base_url``)."""
    import pooch

    ds = name if isinstance(name, Dataset) else get(name)
    path = ds.registry_path
    if path is None:
        raise DataError(f"data set {ds.name} is not fetched file by file (it has no file list)")
    pup = pooch.create(path=PROJECT_ROOT, base_url=ds.base_url or "", registry={})
    try:
        pup.load_registry(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the file list {path}: {exc}") from exc
    entries = []
    for rel, hash_ in pup.registry.items():
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
            raise DataError(f"{path}: path {rel!r} would leave the data set folder")
        if not _SHA256.fullmatch(hash_):
            raise DataError(f"{path}: {rel} has hash {hash_!r}, expected sha256:<64 hex digits>")
        url = pup.urls.get(rel) or (ds.base_url + quote(rel) if ds.base_url else "")
        if not url:
            raise DataError(f"{path}: {rel} has no URL and data set {ds.name} has no base_url")
        entries.append(FileEntry(rel, hash_, url))
    if not entries:
        raise DataError(f"the file list {path} lists no files")
    return entries


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
