"""Downloads against a throwaway loopback HTTP server: verify, resume, atomicity, extraction."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import srbench.data.remote as dl
from srbench.cli import main
from srbench.core.download import DownloadWarning, download, extract_archive
from srbench.core.errors import SrbenchError
from srbench.data.datasets import load_dataset
from srbench.data.imresize import imresize_uint8
from srbench.data.remote import fetch_dataset

# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.modes[path]`` picks a misbehaviour:

    ``ok`` honours Range; ``truncate`` announces the full length but always stops at the
    file's half-way byte; ``drop_once`` does that on the first request only; ``norange``
    ignores Range and always sends the whole file.
    """

    server: _Server

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        return None

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        self.server.log.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404, "Not Found")
            return
        mode = self.server.modes.get(self.path, "ok")
        hits = self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "norange":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        stop = len(data)
        if mode == "truncate" or (mode == "drop_once" and hits == 1):
            stop = max(start, len(data) // 2)
        self.wfile.write(data[start:stop])
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    modes: dict[str, str]
    hits: dict[str, int]
    log: list[tuple[str, str | None]]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.modes, srv.hits, srv.log = {}, {}, {}, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _url(srv: _Server, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob(n: int = 300_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8).tobytes()


# --------------------------------------------------------------------------- download()


def test_good_file_downloads_verifies_and_is_skipped_next_time(server: _Server, tmp_path: Path) -> None:
    data = _blob()
    server.files["/a.bin"] = data
    dest = tmp_path / "d" / "a.bin"
    assert download(_url(server, "/a.bin"), dest, sha256=_sha(data), progress=True) == dest
    assert dest.read_bytes() == data
    assert len(server.log) == 1
    download(_url(server, "/a.bin"), dest, sha256=_sha(data), progress=False)
    assert len(server.log) == 1  # verified on disk: no request


def test_truncated_transfer_fails_and_leaves_nothing_at_dest(server: _Server, tmp_path: Path) -> None:
    data = _blob()
    server.files["/t.bin"] = data
    server.modes["/t.bin"] = "truncate"
    dest = tmp_path / "t.bin"
    with pytest.raises(SrbenchError) as caught:
        download(_url(server, "/t.bin"), dest, sha256=_sha(data), progress=False)
    message = str(caught.value)
    assert message.startswith(f"download of {_url(server, '/t.bin')} failed")
    assert "run the command again" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no partial file, no pooch temporary left behind


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_downloaded_file_follows_the_umask(server: _Server, tmp_path: Path, umask: int) -> None:
    data = _blob(seed=9)
    server.files["/u.bin"] = data
    old = os.umask(umask)
    try:
        dest = download(_url(server, "/u.bin"), tmp_path / "u.bin", sha256=_sha(data), progress=False)
    finally:
        os.umask(old)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask


def test_wrong_checksum_deletes_everything(server: _Server, tmp_path: Path) -> None:
    server.files["/w.bin"] = _blob()
    dest = tmp_path / "w.bin"
    with pytest.raises(
        SrbenchError, match=r"checksum mismatch for http://127\.0\.0\.1:\d+/w\.bin: expected sha256 0{64}"
    ):
        download(_url(server, "/w.bin"), dest, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_404_is_one_line_naming_the_url(server: _Server, tmp_path: Path) -> None:
    url = _url(server, "/missing.zip")
    with pytest.raises(SrbenchError) as caught:
        download(url, tmp_path / "m.zip", sha256=None, progress=False)
    assert str(caught.value).startswith(f"cannot download {url}: HTTP 404")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_without_checksum_size_is_checked_with_a_warning(server: _Server, tmp_path: Path) -> None:
    data = _blob(seed=5)
    server.files["/s.bin"] = data
    with pytest.warns(DownloadWarning, match="verified by size only"):
        download(_url(server, "/s.bin"), tmp_path / "s.bin", sha256=None, progress=False)
    assert (tmp_path / "s.bin").read_bytes() == data
    with pytest.raises(SrbenchError, match=f"size mismatch .*expected 7 bytes, got {len(data)}"):
        download(_url(server, "/s.bin"), tmp_path / "s2.bin", sha256=None, size=7, progress=False)
    assert not (tmp_path / "s2.bin").exists()


def test_existing_dest_that_fails_verification_is_replaced(server: _Server, tmp_path: Path) -> None:
    data = _blob(seed=6)
    server.files["/e.bin"] = data
    dest = tmp_path / "e.bin"
    dest.write_bytes(b"old and wrong")
    download(_url(server, "/e.bin"), dest, sha256=_sha(data), progress=False)
    assert dest.read_bytes() == data


# --------------------------------------------------------------------------- archives


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_extract_zip_and_tar_gz_with_subdir(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip({"top/X4/a.txt": b"A", "top/X4/sub/b.txt": b"B", "top/other.txt": b"O"}))
    out = extract_archive(archive, tmp_path / "dest" / "X4", subdir="top/X4")
    assert (out / "a.txt").read_bytes() == b"A" and (out / "sub" / "b.txt").read_bytes() == b"B"
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["X4"]  # no temp folder left
    tgz = tmp_path / "b.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("bench/Set5/HR/baby.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"xyz"))
    extract_archive(tgz, tmp_path / "bench")
    assert (tmp_path / "bench" / "bench" / "Set5" / "HR" / "baby.txt").read_bytes() == b"xyz"


def test_extract_refuses_path_traversal_and_links(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip({"ok.txt": b"fine", "../escaped.txt": b"bad"}))
    with pytest.raises(SrbenchError, match=r"unsafe member '\.\./escaped\.txt'"):
        extract_archive(evil, tmp_path / "out" / "dest")
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no partial dataset, no temp folder
    tar_path = tmp_path / "abs.tar"
    with tarfile.open(tar_path, "w") as tf:
        info = tarfile.TarInfo("/etc/evil")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(SrbenchError, match="unsafe member"):
        extract_archive(tar_path, tmp_path / "t")
    link_tar = tmp_path / "link.tar"
    with tarfile.open(link_tar, "w") as tf:
        info = tarfile.TarInfo("data/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(SrbenchError, match="link or special file"):
        extract_archive(link_tar, tmp_path / "l")
    assert not (tmp_path / "t").exists() and not (tmp_path / "l").exists()


def test_extract_corrupt_archive_or_missing_subdir(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_zip({"x/a.txt": b"a" * 1000})[:-30])
    with pytest.raises(SrbenchError, match=r"bad\.zip"):
        extract_archive(bad, tmp_path / "o1")
    good = tmp_path / "good.zip"
    good.write_bytes(_zip({"x/a.txt": b"a"}))
    with pytest.raises(SrbenchError, match=r"has no folder 'y' \(it holds: x\)"):
        extract_archive(good, tmp_path / "o2", subdir="y")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "good.zip"]


# --------------------------------------------------------------------------- datasets


def _div2k_zips(stems: list[str]) -> dict[str, bytes]:
    """Miniature DIV2K_valid_HR.zip and DIV2K_valid_LR_bicubic_X4.zip, laid out as the real ones."""
    hr_members, lr_members = {}, {}
    for i, stem in enumerate(stems):
        hr = np.random.default_rng(i).integers(0, 256, size=(24, 36, 3), dtype=np.uint8)
        for members, name, img in (
            (hr_members, f"DIV2K_valid_HR/{stem}.png", hr),
            (lr_members, f"DIV2K_valid_LR_bicubic/X4/{stem}x4.png", imresize_uint8(hr, 0.25)),
        ):
            buf = io.BytesIO()
            Image.fromarray(np.asarray(img)).save(buf, format="PNG")
            members[name] = buf.getvalue()
    return {"DIV2K_valid_HR.zip": _zip(hr_members), "DIV2K_valid_LR_bicubic_X4.zip": _zip(lr_members)}


@pytest.fixture
def div2k_mirror(server: _Server, monkeypatch) -> dict[str, bytes]:
    """Serve mini DIV2K zips, point SRBENCH_DATA_MIRROR at them and use their checksums."""
    zips = _div2k_zips(["0801", "0802"])
    for name, data in zips.items():
        server.files[f"/mirror/{name}"] = data
    monkeypatch.setenv("SRBENCH_DATA_MIRROR", _url(server, "/mirror/"))
    real = dl.remote_datasets()

    def patched() -> dict:
        entry = real["div2k-valid"]
        files = tuple(
            dataclasses.replace(f, sha256=_sha(zips[f.name]), size=len(zips[f.name])) if f.name in zips else f
            for f in entry.files
        )
        return {**real, "div2k-valid": dataclasses.replace(entry, files=files)}

    monkeypatch.setattr(dl, "remote_datasets", patched)
    return zips


def test_catalogue_holds_div2k_checksums() -> None:
    entry = dl.remote_datasets()["div2k-valid"]
    by_name = {f.name: f for f in entry.files}
    assert entry.scales == (2, 3, 4)
    assert by_name["DIV2K_valid_HR.zip"].size == 448_993_893
    assert by_name["DIV2K_valid_LR_bicubic_X4.zip"].sha256 == (
        "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553"
    )
    assert (
        entry.url(by_name["DIV2K_valid_HR.zip"])
        == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"
    )


def test_fetch_div2k_from_mirror_then_load_it(server: _Server, div2k_mirror, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    data_path = fetch_dataset("div2k-valid", dest, scale=4, progress=False)
    assert sorted(p for p, _ in server.log) == [
        "/mirror/DIV2K_valid_HR.zip",
        "/mirror/DIV2K_valid_LR_bicubic_X4.zip",
    ]
    assert sorted(p.name for p in dest.iterdir()) == [
        "DIV2K_valid_HR",
        "DIV2K_valid_LR_bicubic",
    ]  # archives gone
    ds = load_dataset(data_path)
    assert (ds.layout, ds.names()) == ("div2k", ["0801", "0802"])
    assert all(p.lr.shape == (6, 9, 3) for p in ds)
    fetch_dataset("div2k-valid", dest, scale=4, progress=False)
    assert len(server.log) == 2  # already extracted: nothing fetched


def test_fetch_truncated_archive_leaves_no_partial_dataset(
    server: _Server, div2k_mirror, tmp_path: Path
) -> None:
    server.modes["/mirror/DIV2K_valid_HR.zip"] = "truncate"
    dest = tmp_path / "data"
    with pytest.raises(SrbenchError, match="run the command again"):
        fetch_dataset("div2k-valid", dest, scale=4, progress=False)
    assert not (dest / "DIV2K_valid_HR").exists()
    assert not any((dest / ".srbench-downloads").iterdir())  # no partial archive either


def test_data_download_cli(server: _Server, div2k_mirror, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "data"
    assert (
        main(["data", "download", "div2k-valid", "--scale", "4", "--dest", str(dest), "--no-progress"]) == 0
    )
    assert f"srbench run --data {dest}" in capsys.readouterr().out
    assert main(["data", "check", str(dest)]) == 0
    assert main(["data", "download", "div2k-valid", "--scale", "8", "--dest", str(dest)]) == 2
    assert "for --scale 2, 3, 4 only" in capsys.readouterr().err
