"""Input policy per command (issue 19 cases 1 and 9), one test per line of the policy.

``run`` (datasets): EXIF orientation ignored, colour profile ignored (stored values),
alpha dropped with a warning, 16-bit refused unless ``--allow-16bit`` (then the high byte).
``upscale``: EXIF orientation applied, ICC profile carried to the output, alpha kept,
16-bit refused unless ``--allow-16bit`` (then exactly the output of the 8-bit high-byte copy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from srbench.cli import main
from srbench.data.datasets import load_dataset
from srbench.data.imageio import read_image


def _picture(h: int = 12, w: int = 20) -> np.ndarray:
    """A picture with no symmetry, so any rotation or flip shows."""
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save_oriented(path: Path, upright: np.ndarray, fmt: str) -> None:
    """Store ``upright`` rotated as a camera would, with EXIF orientation 6 ("rotate 90 CW to view")."""
    stored = np.rot90(upright, k=1)  # 90° counter-clockwise: viewing rotates it back clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    extra = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    Image.fromarray(np.ascontiguousarray(stored)).save(path, format=fmt, exif=exif, **extra)


def _upscale(tmp_path: Path, src: Path, *extra: str) -> np.ndarray:
    out = tmp_path / f"{src.stem}_out.png"
    assert main(["upscale", str(src), "--model", "bicubic", "-o", str(out), "--overwrite", *extra]) == 0
    return np.asarray(Image.open(out))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_upscale_applies_exif_orientation(tmp_path: Path, fmt: str) -> None:
    upright = _picture()
    src = tmp_path / f"photo.{fmt.lower()}"
    _save_oriented(src, upright, fmt)
    with Image.open(src) as img:  # Pillow's own view of how it displays: the reference
        from PIL import ImageOps

        shown = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    assert shown.shape[:2] == upright.shape[:2]
    out = _upscale(tmp_path, src)
    assert out.shape[:2] == (upright.shape[0] * 4, upright.shape[1] * 4)  # upright, not sideways
    # Equal to upscaling the displayed picture stored without any tag.
    plain = tmp_path / "plain.png"
    Image.fromarray(shown).save(plain)
    np.testing.assert_array_equal(out, _upscale(tmp_path, plain))


def test_datasets_ignore_exif_orientation(tmp_path: Path) -> None:
    upright = _picture(16, 24)
    (tmp_path / "photos").mkdir()
    _save_oriented(tmp_path / "photos" / "a.png", upright, "PNG")
    stored = np.rot90(upright, k=1)
    np.testing.assert_array_equal(read_image(tmp_path / "photos" / "a.png"), stored)
    pair = load_dataset(tmp_path / "photos", cache_lr=False).load("a")
    assert pair.hr.shape[:2] == stored.shape[:2]  # the stored grid, as every SR benchmark reads it


def test_upscale_keeps_the_colour_profile_and_datasets_read_stored_values(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    img = _picture()
    src = tmp_path / "tagged.png"
    Image.fromarray(img).save(src, icc_profile=icc)
    out = tmp_path / "tagged_out.png"
    assert main(["upscale", str(src), "--model", "bicubic", "-o", str(out)]) == 0
    with Image.open(out) as o:
        assert o.info.get("icc_profile") == icc
    np.testing.assert_array_equal(read_image(src), img)  # values as stored, no conversion


def test_upscale_keeps_alpha_and_datasets_drop_it(tmp_path: Path) -> None:
    rgba = np.dstack([_picture(), np.full((12, 20), 128, np.uint8)])
    src = tmp_path / "a.png"
    Image.fromarray(rgba).save(src)
    assert _upscale(tmp_path, src).shape == (48, 80, 4)
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        assert read_image(src).shape == (12, 20, 3)


def _write_16bit_grey(path: Path, values: np.ndarray) -> None:
    Image.fromarray(values.astype(np.uint16)).save(path)  # mode I;16 PNG


def test_16bit_refused_by_default_and_equal_to_the_8bit_copy_with_allow_16bit(tmp_path: Path, capsys) -> None:
    """Issue 19 case 1: the hint names --allow-16bit, and run/upscale accept it."""
    rng = np.random.default_rng(5)
    hr16 = rng.integers(0, 65536, (24, 32), dtype=np.uint32)
    (tmp_path / "hr16").mkdir()
    (tmp_path / "hr8").mkdir()
    for i in range(2):
        v = np.roll(hr16, i, axis=1)
        _write_16bit_grey(tmp_path / "hr16" / f"{i}.png", v)
        Image.fromarray((v >> 8).astype(np.uint8)).save(tmp_path / "hr8" / f"{i}.png")
    base = ["run", "--models", "bicubic", "--layout", "hr-only", "--no-isolate"]
    assert main([*base, "--data", str(tmp_path / "hr16"), "--output", str(tmp_path / "r0")]) == 2
    assert "--allow-16bit" in capsys.readouterr().err
    args16 = [*base, "--data", str(tmp_path / "hr16"), "--allow-16bit", "--output", str(tmp_path / "r16")]
    assert main(args16) == 0
    assert main([*base, "--data", str(tmp_path / "hr8"), "--output", str(tmp_path / "r8")]) == 0
    m16 = json.loads((tmp_path / "r16" / "results.json").read_text())["models"][0]
    m8 = json.loads((tmp_path / "r8" / "results.json").read_text())["models"][0]
    assert [i["sr_sha256"] for i in m16["images"]] == [i["sr_sha256"] for i in m8["images"]]
    assert (m16["psnr_y"], m16["ssim_y"], m16["psnr_rgb"]) == (m8["psnr_y"], m8["ssim_y"], m8["psnr_rgb"])
    # upscale: refused without the option (naming it), the 8-bit copy's output with it.
    src16 = tmp_path / "hr16" / "0.png"
    assert main(["upscale", str(src16), "--model", "bicubic", "-o", str(tmp_path / "x.png")]) == 2
    assert "--allow-16bit" in capsys.readouterr().err
    out16 = _upscale(tmp_path, src16, "--allow-16bit")
    np.testing.assert_array_equal(out16, _upscale(tmp_path, tmp_path / "hr8" / "0.png"))
