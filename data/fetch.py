"""Download a public data set from its original location and unpack the part b2models uses.

The archive is downloaded with :mod:`urllib` (``http(s)://`` or ``file://``), the folder
``Dataset.archive_subdir`` is extracted into a temporary directory next to the destination and that
directory is then renamed into place. A destination that existed before is replaced only after the new
copy is complete; on any failure it is left as it was.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from .registry import ENV_VAR, DataError, get

_CHUNK = 1 << 20


def _download(url: str, target: Path, timeout: float) -> None:
    """Stream ``url`` into the file ``target`` with a tqdm progress bar."""
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(target, "wb") as out:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total = int(total) if total and str(total).isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                      disable=None, leave=False) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"could not download {url}: {reason}. You can download it by hand, unpack it and point "
            f"{ENV_VAR} at the directory that holds the data set folders."
        ) from exc


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


def fetch(name: str, dest: str | os.PathLike | None = None, url: str | None = None,
          timeout: float = 60.0) -> Path:
    """Download data set ``name`` and unpack it into ``dest`` (default ``./data/local/<folder>``).

    ``url`` overrides the registered download location (any URL urllib opens, e.g. ``file://``).
    Returns the destination directory. Raises :class:`DataError` for an unknown name, a data set that
    cannot be fetched automatically, a failed download or a bad archive; in all these cases nothing
    that existed before is changed.
    """
    ds = get(name)
    if not ds.fetchable:
        raise DataError(
            f"data set {name} is a table derived by hand from {ds.url} and cannot be fetched "
            f"automatically; copy {', '.join(ds.files)} into a folder and point {ENV_VAR} at it"
        )
    url = url or ds.url
    dest = Path(dest) if dest is not None else Path.cwd() / "data" / "local" / ds.folder
    dest = dest.absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".download", dir=dest.parent)
    os.close(fd)
    archive = Path(tmp_name)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    backup = None
    try:
        _download(url, archive, timeout)
        _extract(archive, ds.archive_subdir, staging, url)
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
            raise DataError(f"could not move the unpacked data into {dest}: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if backup is not None and backup.exists():
            shutil.rmtree(backup, ignore_errors=True)
    return dest
