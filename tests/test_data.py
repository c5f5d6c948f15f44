"""Tests of the data package: root resolution, registry, fetch (offline: file:// and 127.0.0.1), loaders."""

import dataclasses
import functools
import hashlib
import http.server
import importlib
import io
import re
import tarfile
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from b2models import data
from b2models.data import registry

SHARED = registry._shared_dir()
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"public data sets not available at {SHARED} (../shared/data)")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No $B2MODELS_DATA and a cwd without ./data/local, so the shared copy is the root."""
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def _jpeg_bytes(w=24, h=16, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").save(buf, "JPEG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- root / registry

def test_root_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    assert data.root() == tmp_path


def test_root_env_var_missing_path(monkeypatch, tmp_path):
    missing = tmp_path / "nope"
    monkeypatch.setenv(registry.ENV_VAR, str(missing))
    with pytest.raises(data.DataError, match="nope"):
        data.root()


def test_root_local_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "local").mkdir(parents=True)
    assert data.root() == tmp_path / "data" / "local"


def test_root_nothing_found_names_all_places(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_shared_dir", lambda: tmp_path / "no_shared")
    with pytest.raises(data.DataError) as err:
        data.root()
    msg = str(err.value)
    assert registry.ENV_VAR in msg and "data/local" in msg and "no_shared" in msg


@needs_shared
def test_root_falls_back_to_shared():
    assert data.root() == SHARED


def test_require_missing_names_path_and_fetch_command(monkeypatch, tmp_path):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    with pytest.raises(data.DataError) as err:
        data.require("caltech_face_motor")
    msg = str(err.value)
    assert "b2models data fetch caltech_face_motor" in msg
    assert str(tmp_path / "caltech_face_motor") in msg


def test_require_unknown_name():
    with pytest.raises(data.DataError, match="known data sets: .*lfw"):
        data.require("no_such_set")


def test_registry_entries():
    required = {"caltech_face_motor", "lfw", "librispeech", "scenes_clark_pano", "scenes_train400",
                "fly_l1l2", "fly_t4t5", "fly_connectome", "fly_resu_weights"}
    assert required <= set(data.DATASETS)
    for name, ds in data.DATASETS.items():
        assert ds.name == name
        assert ds.url.startswith(("http://", "https://"))
        assert not Path(ds.folder).is_absolute()
        assert ds.kind in ("files", "archive", "derived")
        assert ds.fetchable == (ds.kind != "derived")
        if ds.kind == "files":
            assert ds.sha256_checked_offline is True and ds.hash_note
        if ds.kind == "derived":
            assert ds.registry_file is None and ds.sha256 is None
    lfw = data.DATASETS["lfw"]
    assert lfw.url == "http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz"
    assert lfw.kind == "archive" and lfw.sha256 is None and lfw.sha256_checked_offline is False
    assert lfw.published_hash == "md5:68331da3eb755a505a502b5aacb3c201" and "offline" in lfw.hash_note
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.DATASETS["lfw"].folder = "x"


_COMMIT = r"[0-9a-f]{40}"
_PINNED = (re.compile(rf"https://raw\.githubusercontent\.com/[^/]+/[^/]+/{_COMMIT}/"),
           re.compile(rf"https://github\.com/[^/]+/[^/]+/(blob|tree|archive)/{_COMMIT}(/|\.zip$|$)"))


def _all_urls():
    for ds in data.DATASETS.values():
        yield ds.name, ds.url
        if ds.base_url:
            yield ds.name, ds.base_url
        if ds.kind == "files":
            for e in registry.file_entries(ds):
                yield ds.name, e.url


def test_registry_urls_are_pinned_never_a_branch():
    n = 0
    for name, url in _all_urls():
        n += 1
        parts = url.split("/")
        for moving in ("HEAD", "master", "main", "heads"):
            assert moving not in parts, (name, url)
        assert "refs/" not in url, (name, url)
        if "github" in url:
            assert any(p.match(url) for p in _PINNED), (name, url)
    assert n > 1270 + 400 + 203


def test_registry_files_are_package_data_and_consistent():
    from configparser import ConfigParser

    cfg = ConfigParser()
    cfg.read(registry.PROJECT_ROOT / "setup.cfg")
    assert "registry-files/*.txt" in cfg["options.package_data"]["b2models.data"]
    lists = {ds.registry_path for ds in data.DATASETS.values() if ds.kind == "files"}
    assert lists == set(registry.REGISTRY_DIR.glob("*.txt"))
    for ds in data.DATASETS.values():
        if ds.kind == "files":
            entries = registry.file_entries(ds)
            paths = [e.path for e in entries]
            assert len(paths) == len(set(paths)), ds.name
            assert set(ds.files) <= set(paths), ds.name
    assert len(registry.file_entries("caltech_face_motor")) == 474 + 400 + 396
    assert len(registry.file_entries("scenes_train400")) == 400


def test_file_entries_rejects_bad_lists(monkeypatch, tmp_path):
    bad = {"escape": "../x.bin sha256:" + "0" * 64, "md5": "x.bin md5:" + "0" * 32, "empty": "# nothing"}
    for kind, line in bad.items():
        reg = tmp_path / f"{kind}.txt"
        reg.write_text(line + "\n")
        ds = dataclasses.replace(data.DATASETS["fly_t4t5"], registry_file=str(reg))
        with pytest.raises(data.DataError, match="leave the data set folder|expected sha256|lists no files"):
            registry.file_entries(ds)
    with pytest.raises(data.DataError, match="no file list"):
        registry.file_entries("lfw")


def _shared_name(ds, path):
    """Where a listed file lies in the shared copy (Caltech stores each image once as <Class>/<file>)."""
    if ds.name == "caltech_face_motor":
        return path.split("/", 1)[1]
    return path


@needs_shared
def test_registry_hashes_match_shared_copy():
    checked = 0
    for ds in data.DATASETS.values():
        if ds.kind != "files":
            continue
        base = SHARED / ds.folder
        if not base.is_dir():
            continue
        listed = set()
        for e in registry.file_entries(ds):
            name = _shared_name(ds, e.path)
            listed.add(name)
            got = hashlib.sha256((base / name).read_bytes()).hexdigest()
            assert e.hash == f"sha256:{got}", (ds.name, e.path)
            checked += 1
        # every original file of the shared folder is listed (derived tables and licence copies are not)
        present = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
        present = {p for p in present if not p.startswith(("splits/", "DERIVED_")) and p != "LICENSE_repo.txt"}
        assert present == listed, ds.name
    assert checked >= 1270 + 203 + 400


def test_status_lists_all_names_missing(monkeypatch, tmp_path):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    rows = data.status()
    assert [r["name"] for r in rows] == list(data.DATASETS)
    assert not any(r["present"] for r in rows)
    assert set(rows[0]) == {"name", "present", "path", "n_files", "description"}


@needs_shared
def test_status_marks_shared_present():
    rows = {r["name"]: r for r in data.status()}
    for name in ("caltech_face_motor", "lfw", "librispeech", "scenes_clark_pano", "scenes_train400",
                 "fly_l1l2", "fly_t4t5", "fly_connectome", "fly_resu_weights"):
        assert rows[name]["present"], name
        assert rows[name]["n_files"] > 0
        assert rows[name]["path"].startswith(str(SHARED))
    assert rows["lfw"]["n_files"] == 5985


@needs_shared
def test_require_searches_shared_behind_local(monkeypatch, tmp_path):
    (Path.cwd() / "data" / "local").mkdir(parents=True)  # an empty local root does not hide the shared copy
    assert data.root() == Path.cwd() / "data" / "local"
    assert data.require("lfw") == SHARED / "lfw"


# ----------------------------------------------------------------------------- Caltech

@needs_shared
def test_caltech_testing_shapes_and_labels():
    x, y, paths = data.load_caltech("testing", limit=3)
    assert x.shape == (6, 160, 250) and x.dtype == np.float64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
    assert list(y) == [0, 0, 0, 1, 1, 1]
    assert [p.parent.name for p in paths] == ["Face"] * 3 + ["Motor"] * 3


@needs_shared
def test_caltech_split_counts():
    counts = {s: data.caltech_split_files(s) for s in ("learning", "training", "testing")}
    assert {s: len(v) for s, v in counts.items()} == {"learning": 474, "training": 400, "testing": 396}
    for s, n in (("learning", 237), ("training", 200), ("testing", 198)):
        assert sum(p.parent.name == "Face" for p in counts[s]) == n
    assert set(counts["training"]) <= set(counts["learning"])
    assert not set(counts["testing"]) & set(counts["learning"])


def test_caltech_bad_split():
    with pytest.raises(ValueError, match=r"split=.*'learning'.*'training'.*'testing'"):
        data.load_caltech("validation")


def _caltech_root(base, n_good, n_bad):
    d = base / "caltech_face_motor"
    lines = []
    for i in range(n_good):
        cls = "Face" if i % 2 == 0 else "Motor"
        (d / cls).mkdir(parents=True, exist_ok=True)
        (d / cls / f"good_{i:03d}.jpg").write_bytes(_jpeg_bytes(seed=i))
        lines.append(f"{cls}/good_{i:03d}.jpg")
    for i in range(n_bad):
        (d / "Face").mkdir(parents=True, exist_ok=True)
        (d / "Face" / f"bad_{i:03d}.jpg").write_bytes(b"this is not a jpeg" * (i + 1))
        lines.append(f"Face/bad_{i:03d}.jpg")
    (d / "splits").mkdir(parents=True, exist_ok=True)
    (d / "splits" / "TestingSet.txt").write_text("\n".join(lines) + "\n")
    return d


def test_corrupt_file_skipped_with_warning(monkeypatch, tmp_path):
    root = tmp_path / "root"
    _caltech_root(root, n_good=25, n_bad=1)
    monkeypatch.setenv(registry.ENV_VAR, str(root))
    with pytest.warns(UserWarning) as rec:
        x, y, paths = data.load_caltech("testing")
    msgs = [str(w.message) for w in rec]
    assert any("bad_000.jpg" in m and "1 skipped" in m for m in msgs)
    assert any("skipped 1 of 26" in m for m in msgs)
    assert x.shape == (25, 160, 250) and len(paths) == 25
    assert sorted(set(y.tolist())) == [0, 1]


def test_too_many_corrupt_files_raise(monkeypatch, tmp_path):
    root = tmp_path / "root"
    _caltech_root(root, n_good=6, n_bad=6)
    monkeypatch.setenv(registry.ENV_VAR, str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(data.DataError, match="6 of 12 image files are unreadable"):
            data.load_caltech("testing")


def test_caltech_missing_listed_file_counts_as_bad(monkeypatch, tmp_path):
    root = tmp_path / "root"
    d = _caltech_root(root, n_good=4, n_bad=0)
    (d / "splits" / "TestingSet.txt").write_text("Face/good_000.jpg\nFace/gone.jpg\n")
    monkeypatch.setenv(registry.ENV_VAR, str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(data.DataError, match="gone.jpg"):
            data.load_caltech("testing")


# ----------------------------------------------------------------------------- LFW / speech / scenes

@needs_shared
def test_lfw_two_people():
    people = data.lfw_people(5)
    assert len(people) == 423 and people["George_W_Bush"] == 530 and people["Halle_Berry"] == 16
    assert min(people.values()) >= 5
    faces = data.load_lfw(people=["Halle_Berry", "Colin_Powell"], limit_per_person=3)
    assert set(faces) == {"Halle_Berry", "Colin_Powell"}
    for arr in faces.values():
        assert arr.shape == (3, 64, 64, 3) and arr.dtype == np.float64
        assert 0.0 <= arr.min() and arr.max() <= 1.0
    gray = data.load_lfw(people=["Halle_Berry"], limit_per_person=2, size=32, gray=True, crop=1.0)
    assert gray["Halle_Berry"].shape == (2, 32, 32)
    with pytest.raises(ValueError, match="Nobody_Here"):
        data.load_lfw(people=["Nobody_Here"])


@needs_shared
def test_librispeech_one_file():
    files = data.librispeech_files("test-other")
    assert len(files) == 100 and len(data.librispeech_files("train-clean-100")) == 100
    (rec,) = data.load_librispeech("test-other", limit=1)
    assert rec["samplerate"] == 16000
    assert rec["audio"].dtype == np.float32 and rec["audio"].ndim == 1 and rec["audio"].size > 16000
    assert np.abs(rec["audio"]).max() <= 1.0
    assert rec["speaker"] == int(rec["path"].name.split("-")[0])
    assert rec["sex"] in ("F", "M")
    with pytest.raises(ValueError, match="subset"):
        data.librispeech_files("dev-clean")


@needs_shared
def test_panorama_and_train400():
    pano = data.load_panorama_mat()
    assert pano.shape == (251, 927) and pano.dtype == np.float64 and pano.min() > 0
    imgs = data.load_train400(limit=3)
    assert imgs.shape == (3, 180, 180) and 0.0 <= imgs.min() and imgs.max() <= 1.0


# ----------------------------------------------------------------------------- fly

@needs_shared
def test_connectome_t4a_inputs():
    w = data.load_connectome_t4a_inputs()
    expected = {"Mi1": 59.0, "Tm3": 25.7, "Mi9": -23.2, "CT1": -18.0, "Mi4": -15.0, "C3": -9.7}
    for cell, value in expected.items():
        assert w[cell] == pytest.approx(value, abs=0.06), cell
    assert list(w)[:4] == ["Mi1", "Tm3", "Mi9", "CT1"]
    assert "T4a" not in w and "T4a" in data.load_connectome_t4a_inputs(include_t4t5=True)


@needs_shared
def test_connectome_json_fallback_matches_derived_csv(monkeypatch, tmp_path):
    """Without the derived CSV the counts are computed from the original flyvis JSON."""
    d = tmp_path / "root" / "fly" / "flyvis_connectome"
    d.mkdir(parents=True)
    (d / "fib25-fib19_v2.2.json").symlink_to(SHARED / "fly" / "flyvis_connectome" / "fib25-fib19_v2.2.json")
    from_csv = data.load_connectome_t4a_inputs()
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "root"))
    from_json = data.load_connectome_t4a_inputs()
    assert from_json.keys() == from_csv.keys()
    for k in from_csv:
        assert from_json[k] == pytest.approx(from_csv[k], abs=1e-3)


@needs_shared
def test_resu_weights():
    w = data.load_resu_t4a_weights()
    np.testing.assert_allclose(w["L1"], [0.37, 1.37, 0.34])
    np.testing.assert_allclose(w["L3"], [0.20, -0.38, -0.09])


@needs_shared
def test_fly_l1l2_and_t4t5():
    l1l2 = data.load_fly_l1l2()
    flash = l1l2["L1_highLum"]
    assert flash["mean"].shape == (2, 63)
    assert np.diff(flash["t"]) == pytest.approx(data.L1L2_FLASH_DT, rel=1e-6)
    assert l1l2["L1_CDM_highLum"]["indiv"].shape == (2, 56, 63)
    assert l1l2["L2_natstim"]["indiv"].shape == (52, 708)
    t4t5 = data.load_fly_t4t5()
    assert not any(k.startswith("__") for k in t4t5)
    assert t4t5["filterShapesOut"]["filterShapes"].shape == (30, 3, 2)
    edge = t4t5["edge_responses"]
    assert set(edge) == {"T4a", "T5a", "T4b", "T5b"}
    assert all(len(v["x"]) == len(v["y"]) > 10 for v in edge.values())


# ----------------------------------------------------------------------------- fetch (offline)

_fetch_module = importlib.import_module("b2models.data.fetch")


@pytest.fixture(autouse=True)
def _no_retries(monkeypatch):
    """A failed download is not retried in tests (pooch would wait between attempts)."""
    monkeypatch.setattr(_fetch_module, "_RETRIES", 0)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _sha256(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def _fake_file_list(monkeypatch, tmp_path, files, mirror, base_url, name="fly_t4t5", corrupt=(), required=()):
    """Register data set ``name`` as a file list of ``files`` (path -> bytes) served from ``mirror``."""
    lines = ["# test list: PATH sha256:HEX"]
    for rel, payload in files.items():
        lines.append(f"{rel} {_sha256(payload)}")
        target = mirror / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload[::-1] + b"!" if rel in corrupt else payload)
    reg = tmp_path / f"{name}_list.txt"
    reg.write_text("\n".join(lines) + "\n")
    ds = dataclasses.replace(data.DATASETS[name], registry_file=str(reg), base_url=base_url.rstrip("/") + "/",
                             files=tuple(required))
    monkeypatch.setitem(registry.DATASETS, name, ds)
    return ds


_FILES = {"one.txt": b"first file\n", "b/two.bin": bytes(range(256)) * 4, "b/c/three.bin": b"\x00\x01" * 500,
          "copy_of_one.txt": b"first file\n"}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_fetch_file_list_over_http(monkeypatch, tmp_path, http_root):
    www, base = http_root
    _fake_file_list(monkeypatch, tmp_path, _FILES, www / "mirror", f"{base}/mirror", required=("one.txt",))
    dest = tmp_path / "root" / "t4t5"
    got = data.fetch("fly_t4t5", dest=dest)
    assert got == dest
    assert _tree(dest) == _FILES
    assert [p.name for p in dest.parent.iterdir()] == ["t4t5"]  # no staging leftovers


def test_fetch_file_list_default_dest_replaces_old_copy(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    _fake_file_list(monkeypatch, tmp_path, _FILES, mirror, mirror.as_uri())
    default = Path.cwd() / "data" / "local" / data.DATASETS["fly_t4t5"].folder
    default.mkdir(parents=True)
    (default / "old.txt").write_text("old copy")
    assert data.fetch("fly_t4t5") == default
    assert _tree(default) == _FILES
    assert [p.name for p in default.parent.iterdir()] == [default.name]


@pytest.mark.parametrize("transport", ["file", "http"])
def test_fetch_checksum_mismatch_one_error_nothing_changed(monkeypatch, tmp_path, http_root, transport):
    www, base = http_root
    mirror = www / "mirror" if transport == "http" else tmp_path / "mirror"
    base_url = f"{base}/mirror" if transport == "http" else mirror.as_uri()
    _fake_file_list(monkeypatch, tmp_path, _FILES, mirror, base_url, corrupt=("b/two.bin",))
    dest = tmp_path / "root" / "t4t5"
    dest.mkdir(parents=True)
    (dest / "keep.txt").write_text("precious")
    expected = _sha256(_FILES["b/two.bin"])
    actual = _sha256((mirror / "b" / "two.bin").read_bytes())
    with pytest.raises(data.DataError) as info:
        data.fetch("fly_t4t5", dest=dest)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("checksum mismatch for b/two.bin downloaded from ")
    assert f"expected {expected}, got {actual}" in msg
    assert _tree(dest) == {"keep.txt": b"precious"}
    assert [p.name for p in dest.parent.iterdir()] == ["t4t5"]  # no staging dir, no partial files


def test_fetch_file_list_missing_file_leaves_destination_untouched(monkeypatch, tmp_path, http_root):
    www, base = http_root
    _fake_file_list(monkeypatch, tmp_path, _FILES, www / "mirror", f"{base}/mirror")
    (www / "mirror" / "b" / "c" / "three.bin").unlink()
    dest = tmp_path / "root" / "t4t5"
    dest.mkdir(parents=True)
    (dest / "keep.txt").write_text("precious")
    with pytest.raises(data.DataError, match=r"could not download http://127\.0\.0\.1.*three\.bin.*404.*by hand"):
        data.fetch("fly_t4t5", dest=dest)
    assert _tree(dest) == {"keep.txt": b"precious"}
    assert [p.name for p in dest.parent.iterdir()] == ["t4t5"]


def test_fetch_file_list_verify_false_and_known_hash(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    _fake_file_list(monkeypatch, tmp_path, {"a.bin": b"abc"}, mirror, mirror.as_uri(), corrupt=("a.bin",))
    with pytest.raises(data.DataError, match="known_hash applies to archives only"):
        data.fetch("fly_t4t5", dest=tmp_path / "x", known_hash=_sha256(b"abc"))
    assert not (tmp_path / "x").exists()
    with pytest.warns(UserWarning, match="1 files of data set fly_t4t5 were not checked"):
        dest = data.fetch("fly_t4t5", dest=tmp_path / "x", verify=False)  # the override takes what is there
    assert (dest / "a.bin").read_bytes() == (mirror / "a.bin").read_bytes()


def test_fetch_caltech_repository_layout_loads(monkeypatch, tmp_path):
    files = {"TestingSet/Face/image_0002.jpg": _jpeg_bytes(seed=1),
             "TestingSet/Motor/motor_0002.jpg": _jpeg_bytes(seed=2)}
    mirror = tmp_path / "mirror"
    _fake_file_list(monkeypatch, tmp_path, files, mirror, mirror.as_uri(), name="caltech_face_motor")
    root = tmp_path / "root"
    dest = data.fetch("caltech_face_motor", dest=root / "caltech_face_motor")
    assert _tree(dest) == files
    monkeypatch.setenv(registry.ENV_VAR, str(root))
    x, y, _ = data.load_caltech("testing")  # the repository layout (no splits/*.txt) is understood
    assert x.shape == (2, 160, 250) and list(y) == [0, 1]


@needs_shared
@pytest.mark.parametrize("name", ["fly_t4t5", "scenes_clark_tonemapped", "fly_connectome"])
def test_fetch_real_list_from_shared_mirror(monkeypatch, tmp_path, name):
    ds = data.DATASETS[name]
    if not (SHARED / ds.folder).is_dir():
        pytest.skip(f"{SHARED / ds.folder} not available")
    root = tmp_path / "root"
    dest = data.fetch(name, dest=root / ds.folder, url=(SHARED / ds.folder).as_uri())
    for e in registry.file_entries(ds):
        assert (dest / e.path).read_bytes() == (SHARED / ds.folder / e.path).read_bytes()
    monkeypatch.setenv(registry.ENV_VAR, str(root))
    assert data.require(name) == dest


def _make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def _make_tgz(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return path


def test_fetch_archive_without_known_hash_refused(tmp_path):
    dest = tmp_path / "root" / "lfw"
    with pytest.raises(data.DataError, match=r"SHA-256 of http://vis-www\.cs\.umass\.edu/lfw/lfw-deepfunneled\.tgz "
                       r".*not in the registry.*known_hash='sha256:HEX'.*md5:68331da3eb755a505a502b5aacb3c201"
                       r".*verify=False"):
        data.fetch("lfw", dest=dest)
    assert not (tmp_path / "root").exists()


def test_fetch_tgz_default_dest_and_replace(tmp_path):
    archive = _make_tgz(tmp_path / "lfw.tgz", {
        "lfw-deepfunneled/Ann_Smith/Ann_Smith_0001.jpg": _jpeg_bytes(seed=3),
        "lfw-deepfunneled/Bob_Jones/Bob_Jones_0001.jpg": _jpeg_bytes(seed=4),
        "pairs.txt": b"not wanted",
    })
    default = Path.cwd() / "data" / "local" / "lfw"
    default.mkdir(parents=True)
    (default / "old.txt").write_text("old copy")
    dest = data.fetch("lfw", url=archive.as_uri(), known_hash=_sha256(archive.read_bytes()))
    assert dest == default
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["Ann_Smith/Ann_Smith_0001.jpg", "Bob_Jones/Bob_Jones_0001.jpg"]
    assert [p.name for p in default.parent.iterdir()] == ["lfw"]


def test_fetch_archive_over_http_with_md5(tmp_path, http_root):
    www, base = http_root
    archive = _make_tgz(www / "lfw-deepfunneled.tgz", {"lfw-deepfunneled/Ann_Smith/Ann_Smith_0001.jpg": b"jpg"})
    md5 = "md5:" + hashlib.md5(archive.read_bytes()).hexdigest()
    dest = data.fetch("lfw", dest=tmp_path / "root" / "lfw", url=f"{base}/lfw-deepfunneled.tgz", known_hash=md5)
    assert _tree(dest) == {"Ann_Smith/Ann_Smith_0001.jpg": b"jpg"}


def test_fetch_archive_checksum_mismatch(tmp_path):
    archive = _make_tgz(tmp_path / "lfw-deepfunneled.tgz", {"lfw-deepfunneled/A/A_0001.jpg": b"x"})
    dest = tmp_path / "root" / "lfw"
    dest.mkdir(parents=True)
    (dest / "keep.txt").write_text("precious")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(data.DataError) as info:
        data.fetch("lfw", dest=dest, url=archive.as_uri(), known_hash=wrong)
    msg = str(info.value)
    assert msg.startswith("checksum mismatch for lfw-deepfunneled.tgz downloaded from file://")
    assert f"expected {wrong}, got {_sha256(archive.read_bytes())}" in msg and "\n" not in msg
    assert _tree(dest) == {"keep.txt": b"precious"}
    assert [p.name for p in dest.parent.iterdir()] == ["lfw"]


def test_fetch_zip_verify_false_warns_and_extracts_only_subdir(tmp_path):
    archive = _make_zip(tmp_path / "lfw.zip", {
        "lfw-deepfunneled/Ann_Smith/Ann_Smith_0001.jpg": b"a",
        "other/x.txt": b"not wanted",
        "lfw-deepfunneled/../../escape.txt": b"must not be written",
    })
    root = tmp_path / "root"
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.warns(UserWarning, match=rf"not checked.*SHA-256 is {sha}"):
        dest = data.fetch("lfw", dest=root / "lfw", url=archive.as_uri(), verify=False)
    assert _tree(dest) == {"Ann_Smith/Ann_Smith_0001.jpg": b"a"}
    assert not list(tmp_path.rglob("escape.txt"))
    assert [p.name for p in root.iterdir()] == ["lfw"]


def test_fetch_unknown_name():
    with pytest.raises(data.DataError, match="known data sets: .*caltech_face_motor"):
        data.fetch("imagenet")


@pytest.mark.parametrize("kind", ["unreachable", "corrupt", "empty_subdir"])
def test_fetch_failure_leaves_destination_untouched(tmp_path, kind):
    dest = tmp_path / "root" / "lfw"
    dest.mkdir(parents=True)
    (dest / "keep.txt").write_text("precious")
    if kind == "unreachable":
        path, match = tmp_path / "does_not_exist.tgz", "does_not_exist.tgz.*by hand.*B2MODELS_DATA"
    elif kind == "corrupt":
        path = tmp_path / "bad.tgz"
        path.write_bytes(b"\x1f\x8b garbage that is no archive")
        match = "neither a zip nor a tar|corrupt"
    else:
        path, match = _make_zip(tmp_path / "wrong.zip", {"elsewhere/a.jpg": b"x"}), "no files under 'lfw-deepfunneled'"
    known = _sha256(path.read_bytes()) if path.exists() else "sha256:" + "1" * 64
    with pytest.raises(data.DataError, match=match):
        data.fetch("lfw", dest=dest, url=path.as_uri(), known_hash=known)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert (dest / "keep.txt").read_text() == "precious"
    assert [p.name for p in dest.parent.iterdir()] == ["lfw"]  # temp files cleaned up


def test_fetch_derived_table_refused(tmp_path):
    with pytest.raises(data.DataError, match="cannot be fetched automatically"):
        data.fetch("fly_resu_weights", dest=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_fetch_refuses_lfw_without_a_hash_in_one_line(tmp_path, capsys):
    from b2models.cli import main

    code = main(["data", "fetch", "lfw", "--dest", str(tmp_path / "lfw")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "--known-hash ALG:HEX or --no-verify" in err and "md5:68331da3eb755a505a502b5aacb3c201" in err, err
    left = [q.name for q in tmp_path.iterdir() if q.name == "lfw" or q.name.startswith(".lfw")]
    assert not left, f"a refused fetch must leave nothing behind: {left}"
