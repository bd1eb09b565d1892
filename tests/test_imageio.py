"""Image reading/writing: uint8 RGB out of every format, bit depths, alpha, EXIF, bad files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srbench.core.errors import SrbenchError
from srbench.data.imageio import ImageWarning, probe_image, read_image, write_png_atomic


def _rgb(h: int = 12, w: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _png16(path: Path, samples: np.ndarray) -> None:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit RGB): grey HxW or RGB HxWx3."""
    h, w = samples.shape[:2]
    colour_type = 2 if samples.ndim == 3 else 0
    big_endian = samples.astype(">u2")
    raw = b"".join(b"\x00" + big_endian[i].tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_png_round_trip_is_exact_and_atomic(tmp_path: Path) -> None:
    img = _rgb()
    out = write_png_atomic(tmp_path / "sub" / "a.png", img)
    got = read_image(out)
    assert got.dtype == np.uint8 and got.shape == (12, 20, 3)
    np.testing.assert_array_equal(got, img)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.png"]  # no temp file left


def test_write_png_atomic_keeps_old_file_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.png"
    old = _rgb(seed=1)
    write_png_atomic(target, old)

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_png_atomic(target, _rgb(seed=2))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(target), old)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


@pytest.mark.parametrize(("suffix", "kwargs"), [(".bmp", {}), (".tif", {}), (".webp", {"lossless": True})])
def test_lossless_formats_read_exactly(tmp_path: Path, suffix: str, kwargs: dict) -> None:
    img = _rgb(seed=3)
    path = tmp_path / f"x{suffix}"
    Image.fromarray(img).save(path, **kwargs)
    np.testing.assert_array_equal(read_image(path), img)


def test_jpeg_reads_as_uint8_rgb_close_to_source(tmp_path: Path) -> None:
    img = np.full((16, 16, 3), (200, 40, 90), dtype=np.uint8)
    path = tmp_path / "x.jpg"
    Image.fromarray(img).save(path, quality=95)
    got = read_image(path)
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - img.astype(int)).max() <= 4


def test_greyscale_expands_to_three_equal_channels(tmp_path: Path) -> None:
    grey = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    path = tmp_path / "g.png"
    Image.fromarray(grey, mode="L").save(path)
    got = read_image(path)
    assert got.shape == (6, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], grey)


def test_palette_image_is_looked_up(tmp_path: Path) -> None:
    img = Image.new("P", (4, 2))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    img.putdata([0, 1, 1, 0, 1, 1, 1, 0])
    path = tmp_path / "p.png"
    img.save(path)
    got = read_image(path)
    np.testing.assert_array_equal(got[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(got[0, 1], [200, 100, 50])
    np.testing.assert_array_equal(got[1, 3], [10, 20, 30])


def test_alpha_is_dropped_with_a_warning_not_composited(tmp_path: Path) -> None:
    rgba = np.zeros((5, 7, 4), dtype=np.uint8)
    rgba[..., :3] = _rgb(5, 7, seed=4)
    rgba[..., 3] = 0  # fully transparent: compositing on white/black would change the colours
    path = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    with pytest.warns(ImageWarning, match="alpha channel dropped"):
        got = read_image(path)
    np.testing.assert_array_equal(got, rgba[..., :3])


def test_16bit_grey_refused_or_narrowed_to_high_byte(tmp_path: Path) -> None:
    values = np.array([[0, 255, 256, 65535], [1000, 32768, 40000, 513]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    _png16(path, values)
    with pytest.raises(SrbenchError, match=r"g16\.png is 16-bit.*--allow-16bit"):
        read_image(path)
    got = read_image(path, allow_16bit=True)
    expected = (values >> 8).astype(np.uint8)  # [[0, 0, 1, 255], [3, 128, 156, 2]]
    assert expected.tolist() == [[0, 0, 1, 255], [3, 128, 156, 2]]
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], expected)


def test_16bit_rgb_refused_or_narrowed_to_high_byte(tmp_path: Path) -> None:
    values = (np.arange(2 * 3 * 3, dtype=np.uint32).reshape(2, 3, 3) * 3001 + 257).astype(np.uint16)
    path = tmp_path / "c16.png"
    _png16(path, values)
    assert probe_image(path).bits == 16
    with pytest.raises(SrbenchError, match="16-bit"):
        read_image(path)
    np.testing.assert_array_equal(read_image(path, allow_16bit=True), (values >> 8).astype(np.uint8))


def test_exif_orientation_is_ignored(tmp_path: Path) -> None:
    img = _rgb(8, 16, seed=5)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a viewer would show 16x8
    path = tmp_path / "r.jpg"
    Image.fromarray(img).save(path, exif=exif, quality=100)
    assert read_image(path).shape == (8, 16, 3)


def test_probe_reads_size_and_depth_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    write_png_atomic(path, _rgb(12, 20))
    info = probe_image(path)
    assert (info.width, info.height, info.bits, info.size_text) == (20, 12, 8, "20x12")


def test_corrupt_missing_and_truncated_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(SrbenchError, match=r"cannot read image .*bad\.png"):
        read_image(bad)
    with pytest.raises(SrbenchError, match=r"cannot read image .*bad\.png"):
        probe_image(bad)
    with pytest.raises(SrbenchError, match=r"nope\.png does not exist"):
        read_image(tmp_path / "nope.png")
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64, seed=6)).save(buf, format="PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert probe_image(cut).width == 64  # the header alone is intact
    with pytest.raises(SrbenchError, match=r"cut\.png") as caught:
        read_image(cut)
    assert "\n" not in str(caught.value)  # one line, as the CLI prints it
