"""Every file srbench writes follows the user's umask (issue 19 case 4) and is written atomically.

The reference is what a plain ``open(path, "w")`` gives under the same umask (0o666 & ~umask):
0644 under 022, 0664 under 002. ``tempfile.mkstemp`` (the old helper) gave 0600 whatever the umask.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from srbench.cli import main
from srbench.core.download import extract_archive
from srbench.core.files import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    current_umask,
    file_sha256,
    read_stamp,
    stamp_matches,
    write_stamp,
)
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.data.imageio import write_png_atomic


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _plain_open_mode(folder: Path) -> int:
    """The mode ``open(path, 'w')`` gives here: the independent reference."""
    ref = folder / "plain-open-reference"
    ref.write_text("x")
    mode = _mode(ref)
    ref.unlink()
    return mode


def test_atomic_helpers_follow_the_umask(tmp_path: Path, umask: int) -> None:
    want = {0o022: 0o644, 0o002: 0o664}[umask]
    assert _plain_open_mode(tmp_path) == want
    assert current_umask() == umask
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "sub" / "b.txt", "é", mkdir=True)
    with atomic_open(tmp_path / "c.npy") as fh:
        np.save(fh, np.arange(3))
    write_png_atomic(tmp_path / "d.png", np.zeros((2, 3, 3), np.uint8))
    for name in ("a.bin", "sub/b.txt", "c.npy", "d.png"):
        assert _mode(tmp_path / name) == want, name
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "é"
    assert np.load(tmp_path / "c.npy").tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "c.npy", "d.png", "sub"]  # no temp left


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_stamps_key_by_content(tmp_path: Path) -> None:
    src, cached = tmp_path / "src.bin", tmp_path / "cached.bin"
    src.write_bytes(b"abc")
    cached.write_bytes(b"derived")
    # Published SHA-256 of "abc" (FIPS 180-2 example).
    assert file_sha256(src) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    key = {"source_sha256": file_sha256(src), "version": 1}
    assert not stamp_matches(cached, key) and read_stamp(cached) is None
    write_stamp(cached, key)
    assert stamp_matches(cached, key)
    assert not stamp_matches(cached, {**key, "version": 2})
    (tmp_path / "cached.bin.srbench.json").write_text("{not json")
    assert read_stamp(cached) is None and not stamp_matches(cached, key)


def test_lr_cache_decoded_cache_and_extracted_dataset_follow_the_umask(
    tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SRBENCH_CACHE_DIR", raising=False)  # the LR cache's default: beside the HR folder
    want_file = {0o022: 0o644, 0o002: 0o664}[umask]
    want_dir = want_file | 0o111
    hr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    write_png_atomic(tmp_path / "photos" / "a.png", hr)
    dataset = load_dataset(tmp_path / "photos")
    pairs = list(dataset)
    lr_dir = tmp_path / "photos_LR_srbench" / "X4"
    assert _mode(lr_dir / "ax4.png") == want_file
    assert _mode(lr_dir / "ax4.png.srbench.json") == want_file
    cache = ImageCache.build(pairs, tmp_path / "decoded")
    for f in (tmp_path / "decoded").iterdir():
        assert _mode(f) == want_file, f.name
    assert len(cache) == 1
    # A downloaded dataset unpacked by srbench: its folder was a 0700 mkdtemp before.
    with tarfile.open(tmp_path / "set.tar", "w") as tf:
        tf.add(tmp_path / "photos", arcname="photos")
    out = extract_archive(tmp_path / "set.tar", tmp_path / "unpacked")
    assert _mode(out) == want_dir
    assert _mode(out / "photos" / "a.png") == want_file


@pytest.mark.slow
def test_every_command_output_follows_umask_002(tmp_path: Path) -> None:
    """results.*, saved SR images, report files and plots, compare grids, upscale outputs."""
    old = os.umask(0o002)
    try:
        run = tmp_path / "run"
        args = ["run", "--models", "bicubic", "--data", "sample-mini", "--no-isolate", "--save-images"]
        assert main([*args, "--output", str(run)]) == 0
        assert main(["report", str(run), "--output", str(tmp_path / "report")]) == 0
        assert main(["compare", "astronaut", "--run", str(run)]) == 0
        write_png_atomic(tmp_path / "in.png", np.full((8, 8, 3), 100, np.uint8))
        up = ["upscale", str(tmp_path / "in.png"), "--model", "bicubic", "-o", str(tmp_path / "up")]
        assert main(up) == 0
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "in.png"]
        names = {p.name for p in written}
        assert {"results.json", "results.csv", "results.md", "report.md", "report.html"} <= names
        assert any(p.suffix == ".svg" for p in written) and any(p.parent.name == "bicubic" for p in written)
        assert any(p.name.endswith("_x4_bicubic.png") for p in written) and "compare_astronaut.png" in names
        wrong = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in written if _mode(p) != 0o664}
        assert wrong == {}
    finally:
        os.umask(old)


def test_weights_hash_memo_sees_new_content_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    """The in-process sha256 memo of checkpoints is not keyed by mtime/size alone (issue 19 kind 2)."""
    import hashlib

    from srbench.models.weights import sha256_file

    path = tmp_path / "w.pth"
    path.write_bytes(b"A" * 64)
    first = sha256_file(path)
    stat = path.stat()
    replacement = tmp_path / "new.pth"
    replacement.write_bytes(b"B" * 64)  # same size
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, as cp -p leaves it
    os.replace(replacement, path)
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size
    assert sha256_file(path) == hashlib.sha256(b"B" * 64).hexdigest() != first
