"""Download a public data set from its pinned original location, verify it and move it into place.

Downloads go through :mod:`pooch` (``http(s)://``; ``file://`` is read directly, for local mirrors and
tests). Two kinds of data set (see :class:`b2models.data.Dataset`):

* **file list** (all data sets taken from GitHub): every file listed in ``data/registry-files/<name>.txt`` is
  downloaded from its URL, pinned to a commit, and checked against its SHA-256. Files listed twice with
  the same hash (the Caltech training split is a subset of the learning split) are downloaded once.
* **archive** (LFW): the archive is downloaded, checked against the registered hash, and the folder
  ``Dataset.archive_subdir`` is extracted.

**Verification policy.** A file or archive whose hash does not match raises one :class:`DataError` that
names the file, the expected and the actual hash. Where the registry has no SHA-256 for an archive
(``Dataset.sha256_checked_offline`` is False: LFW, whose archive is not in ``../shared/data``),
:func:`fetch` refuses to download it unless the caller passes ``known_hash`` (``"sha256:HEX"``, or any
algorithm pooch knows, e.g. the MD5 the LFW page publishes, ``Dataset.published_hash``) or
``verify=False``. ``verify=False`` skips all hash checks (for any data set) and warns with the SHA-256 of
an unchecked archive, so that it can be pinned next time. ``known_hash`` applies to archives only.

**Nothing half-written.** Everything is downloaded into a staging directory next to the destination
(``.<folder>.*.partial``, plus ``.<folder>.*.download`` for an archive); only when every file has been
verified is the staging directory renamed into place. A destination that existed before is replaced only
then and survives any failure unchanged; on failure the staging directories are removed.

``url`` replaces the registered location: for an archive, the archive's URL; for a file list, the base
URL of a mirror that holds the data set folder's layout (each file is fetched from ``url/PATH``). The
registered hashes still apply.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath

from .registry import ENV_VAR, DataError, Dataset, FileEntry, file_entries, get

_CHUNK = 1 << 20
#: download attempts after the first one (pooch retries network errors and hash mismatches)
_RETRIES = 2
#: files of a file list downloaded at the same time
_WORKERS = 8


class _Downloader:
    """Pooch downloader: ``file://`` copied directly, ``http(s)://`` through pooch's HTTP downloader.

    Records the hash (``alg``, default SHA-256) of the last downloaded file before pooch checks it, so that
    a mismatch can be reported with the actual hash.
    """

    def __init__(self, timeout: float, progressbar: bool, alg: str = "sha256"):
        self.timeout = timeout
        self.progressbar = progressbar
        self.alg = alg.lower()
        self.last_hash: str | None = None

    def __call__(self, url, output_file, pooch_obj, check_only=False):
        import pooch

        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme == "file":
            if check_only:
                return Path(_file_path(url)).is_file()
            with open(_file_path(url), "rb") as src, open(output_file, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
        elif scheme in ("http", "https"):
            result = pooch.HTTPDownloader(progressbar=self.progressbar, timeout=self.timeout)(
                url, output_file, pooch_obj, check_only=check_only)
            if check_only:
                return result
        else:
            raise DataError(f"cannot download {url}: only http://, https:// and file:// URLs are supported")
        self.last_hash = f"{self.alg}:{pooch.file_hash(str(output_file), alg=self.alg)}"
        return None


def _file_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.request.url2pathname(parts.path)


@contextlib.contextmanager
def _quiet_pooch():
    """Silence pooch's per-file INFO messages (a progress bar replaces them)."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _download_error(url: str, exc: BaseException) -> DataError:
    reason = " ".join(str(getattr(exc, "reason", None) or exc).split())  # one line
    return DataError(
        f"could not download {url}: {reason}. You can download it by hand, unpack it and point "
        f"{ENV_VAR} at the directory that holds the data set folders."
    )


def _mismatch(what: str, url: str, expected: str, actual: str | None, dest: Path) -> DataError:
    return DataError(
        f"checksum mismatch for {what} downloaded from {url}: expected {expected}, got {actual or 'unknown'}; "
        f"nothing was kept and {dest} was not changed"
    )


def _retrieve(pup, fname: str, url: str, expected: str | None, timeout: float, progressbar: bool,
              dest: Path) -> None:
    """``pup.fetch(fname)`` (downloaded unless present, checked against ``expected``) with pooch's errors
    turned into one :class:`DataError`. Safe to call from several threads for different files."""
    import requests

    alg = expected.split(":", 1)[0] if expected else "sha256"
    downloader = _Downloader(timeout, progressbar, alg)
    try:
        pup.fetch(fname, downloader=downloader)
    except DataError:
        raise
    except ValueError as exc:
        if expected is not None and downloader.last_hash is not None and downloader.last_hash != expected:
            raise _mismatch(fname, url, expected, downloader.last_hash, dest) from None
        raise _download_error(url, exc) from exc
    except (OSError, requests.RequestException) as exc:
        raise _download_error(url, exc) from exc


def _fetch_files(ds: Dataset, entries: list[FileEntry], staging: Path, mirror: str | None, verify: bool,
                 timeout: float, progressbar: bool, dest: Path) -> None:
    """Download every listed file into ``staging``, ``_WORKERS`` at a time, each verified before it is
    kept. Files listed more than once with the same hash are downloaded once and copied."""
    import pooch
    from tqdm import tqdm

    urls = {e.path: (f"{mirror.rstrip('/')}/{urllib.parse.quote(e.path)}" if mirror else e.url) for e in entries}
    expected = {e.path: (e.hash if verify else None) for e in entries}
    pup = pooch.create(path=staging, base_url="", registry=expected, urls=urls, retry_if_failed=_RETRIES)
    first: dict[str, FileEntry] = {}  # content (hash, or path when unverified) -> entry downloaded for it
    for e in entries:
        first.setdefault(e.hash if verify else e.path, e)
        (staging / e.path).parent.mkdir(parents=True, exist_ok=True)
    unique = list(first.values())
    with tqdm(total=len(entries), desc=ds.name, unit="file", disable=not progressbar, leave=False) as bar:
        pool = ThreadPoolExecutor(max_workers=min(_WORKERS, len(unique)))
        try:
            jobs = [pool.submit(_retrieve, pup, e.path, urls[e.path], expected[e.path], timeout, False, dest)
                    for e in unique]
            for job in as_completed(jobs):
                job.result()  # the first failure stops the fetch
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for e in entries:
            source = first[e.hash if verify else e.path]
            if source is not e:
                shutil.copyfile(staging / source.path, staging / e.path)
                _retrieve(pup, e.path, urls[e.path], expected[e.path], timeout, False, dest)  # re-checks the copy
                bar.update()


def _relative_member(member: str, pattern: tuple[str, ...]) -> PurePosixPath | None:
    """Path of archive member ``member`` below the folder ``pattern`` (None if outside it)."""
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if parts and parts[0] == "/":
        return None
    if len(parts) <= len(pattern):
        return None
    if not all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pattern)):
        return None
    rest = parts[len(pattern):]
    if any(p in ("", ".", "..") for p in rest):
        return None  # refuse anything that could escape the destination
    return PurePosixPath(*rest)


def _write(stream, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        shutil.copyfileobj(stream, out, _CHUNK)


def _extract(archive: Path, subdir: str, into: Path, url: str) -> int:
    """Extract the files below ``subdir`` of ``archive`` into ``into``; return how many."""
    pattern = tuple(p for p in PurePosixPath(subdir).parts if p not in ("", "."))
    n = 0
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = None if info.is_dir() else _relative_member(info.filename, pattern)
                    if rel is not None:
                        with zf.open(info) as src:
                            _write(src, into / rel)
                        n += 1
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for info in tf:
                    rel = _relative_member(info.name, pattern) if info.isfile() else None
                    if rel is not None:
                        src = tf.extractfile(info)
                        if src is not None:
                            with src:
                                _write(src, into / rel)
                            n += 1
        else:
            raise DataError(f"{url} is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"the archive downloaded from {url} is corrupt or unreadable: {exc}") from exc
    if n == 0:
        raise DataError(f"the archive {url} contains no files under {subdir!r}")
    return n


def _apply_umask(top: Path) -> None:
    """Give ``top`` and everything below it the usual permissions (temporary files are created private)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(top, 0o777 & ~mask)
    for folder, dirs, files in os.walk(top):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o666 & ~mask)


def _fetch_archive(ds: Dataset, url: str, expected: str | None, staging: Path, workdir: Path, timeout: float,
                   progressbar: bool, dest: Path) -> None:
    """Download the archive into ``workdir``, verify it and extract ``archive_subdir`` into ``staging``."""
    import pooch

    fname = PurePosixPath(urllib.parse.urlsplit(url).path).name or "archive"
    if expected is not None:
        expected = (expected if ":" in expected else f"sha256:{expected}").lower()
    pup = pooch.create(path=workdir, base_url="", registry={fname: expected}, urls={fname: url},
                       retry_if_failed=_RETRIES)
    _retrieve(pup, fname, url, expected, timeout, progressbar, dest)
    archive = workdir / fname
    if expected is None:
        sha = pooch.file_hash(str(archive), alg="sha256")
        warnings.warn(f"{fname} from {url} was not checked against a known hash (verify=False); its SHA-256 is "
                      f"{sha} - pass known_hash='sha256:{sha}' to pin it", stacklevel=3)
    _extract(archive, ds.archive_subdir, staging, url)


def fetch(name: str, dest: str | os.PathLike | None = None, url: str | None = None, timeout: float = 60.0,
          known_hash: str | None = None, verify: bool = True, progressbar: bool | None = None) -> Path:
    """Download data set ``name``, verify it and move it into ``dest`` (default ``./data/local/<folder>``).

    ``url`` overrides the registered location (an archive's URL, or the base URL of a mirror of a file
    list's folder; ``http(s)://`` or ``file://``). ``known_hash`` (``"sha256:HEX"``, or another algorithm
    pooch knows, e.g. ``"md5:HEX"``) is the hash of an archive data set, required where the registry has
    none (LFW). ``verify=False`` skips all hash checks. ``progressbar`` (default: when stderr is a
    terminal) shows a tqdm progress bar.

    Returns the destination directory. Raises :class:`DataError` for an unknown name, a data set that
    cannot be fetched automatically, an archive without a known hash, a failed download, a checksum
    mismatch (naming the file, the expected and the actual hash) or a bad archive; in all these cases
    nothing that existed before is changed and nothing is left behind.
    """
    ds = get(name)
    if not ds.fetchable:
        raise DataError(
            f"data set {name} is a table derived by hand from {ds.url} and cannot be fetched "
            f"automatically; copy {', '.join(ds.files)} into a folder and point {ENV_VAR} at it"
        )
    if ds.kind == "files":
        if known_hash is not None:
            raise DataError(f"known_hash applies to archives only; data set {name} is checked file by file "
                            f"against {ds.registry_path}")
        entries = file_entries(ds)
        expected = None
    else:
        entries = []
        expected = (known_hash or ds.sha256) if verify else None
        if verify and expected is None:
            also = f" or known_hash='{ds.published_hash}' (published by its authors)" if ds.published_hash else ""
            raise DataError(
                f"the SHA-256 of {url or ds.url} (data set {name}) is not in the registry (it could not be "
                f"computed offline); pass known_hash='sha256:HEX'{also}, or verify=False to download it unchecked "
                f"(command line: --known-hash ALG:HEX or --no-verify)"
            )
    if progressbar is None:
        progressbar = bool(getattr(sys.stderr, "isatty", lambda: False)())

    dest = Path(dest) if dest is not None else Path.cwd() / "data" / "local" / ds.folder
    dest = dest.absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    workdir = None
    backup = None
    try:
        with _quiet_pooch():
            if ds.kind == "files":
                _fetch_files(ds, entries, staging, url, verify, timeout, progressbar, dest)
                if not verify:
                    warnings.warn(f"the {len(entries)} files of data set {name} were not checked against their "
                                  "SHA-256 (verify=False)", stacklevel=2)
            else:
                workdir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".download", dir=dest.parent))
                _fetch_archive(ds, url or ds.url, expected, staging, workdir, timeout, progressbar, dest)
        missing = [f for f in ds.files if not (staging / f).is_file()]
        if missing:
            raise DataError(f"the download of data set {name} lacks {', '.join(missing)}")
        _apply_umask(staging)
        if dest.exists() or dest.is_symlink():
            backup = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            backup.rmdir()
            os.replace(dest, backup)
        try:
            os.replace(staging, dest)
        except OSError as exc:
            if backup is not None:
                os.replace(backup, dest)
                backup = None
            raise DataError(f"could not move the downloaded data into {dest}: {exc}") from exc
    finally:
        for tmp in (staging, workdir, backup):
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest
