"""Datasets: the sample set, every layout, LR generation and caching, checks, prefetch, CLI."""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data.datasets import CacheWarning, check_dataset, load_dataset, prefetch
from srbench.data.imageio import read_image, write_png_atomic
from srbench.data.imresize import imresize_uint8, modcrop

H, W = 26, 37  # not multiples of 4: HR is mod-cropped to 24x36, LR is 6x9


def _hr(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _lr(hr: np.ndarray, scale: int = 4) -> np.ndarray:
    return np.asarray(imresize_uint8(np.ascontiguousarray(modcrop(hr, scale)), 1 / scale))


def _write_pairs(
    hr_dir: Path, lr_dir: Path | None, stems: list[str], *, lr_suffix: str = "x4", scale: int = 4
) -> dict[str, np.ndarray]:
    """HR PNGs in hr_dir and their MATLAB-bicubic LR in lr_dir; returns the HR arrays by stem."""
    out = {}
    for i, stem in enumerate(stems):
        hr = _hr(i + 1)
        write_png_atomic(hr_dir / f"{stem}.png", hr)
        if lr_dir is not None:
            write_png_atomic(lr_dir / f"{stem}{lr_suffix}.png", _lr(hr, scale))
        out[stem] = hr
    return out


def _assert_pairs(dataset, hrs: dict[str, np.ndarray], scale: int = 4) -> None:
    pairs = list(dataset)
    assert [p.name for p in pairs] == dataset.names()
    assert sorted(p.name for p in pairs) == sorted(hrs)
    for pair in pairs:
        expected_hr = modcrop(hrs[pair.name], scale)
        np.testing.assert_array_equal(pair.hr, expected_hr)
        np.testing.assert_array_equal(pair.lr, _lr(hrs[pair.name], scale))
        assert pair.hr.shape == (pair.lr.shape[0] * scale, pair.lr.shape[1] * scale, 3)


# --------------------------------------------------------------------------- sample set


def test_sample_set_is_the_four_skimage_photographs() -> None:
    ds = load_dataset(None)
    assert ds.names() == ["astronaut", "chelsea", "coffee", "rocket"]
    assert len(ds) == 4
    assert ds.describe() == {
        "name": "sample",
        "layout": "sample",
        "scale": 4,
        "images": 4,
        "root": None,
        "lr": "generated",
    }
    pairs = {p.name: p for p in ds}
    # HR mod-cropped to 4: chelsea 300x451 -> 300x448, rocket 427x640 -> 424x640.
    assert {n: p.hr.shape for n, p in pairs.items()} == {
        "astronaut": (512, 512, 3),
        "chelsea": (300, 448, 3),
        "coffee": (400, 600, 3),
        "rocket": (424, 640, 3),
    }
    # metrics.md §8 fingerprints of the MATLAB-bicubic LR.
    assert int(pairs["astronaut"].lr.sum(dtype=np.int64)) == 5_633_895
    assert int(pairs["chelsea"].lr.sum(dtype=np.int64)) == 2_903_637
    assert int(pairs["coffee"].lr.sum(dtype=np.int64)) == 4_437_761
    assert pairs["astronaut"].lr[0, :3].tolist() == [[153, 149, 157], [160, 156, 155], [132, 123, 125]]
    assert pairs["rocket"].lr.shape == (106, 160, 3)


# --------------------------------------------------------------------------- layouts


def test_div2k_layout_detected_from_parent_root_or_hr_folder(tmp_path: Path) -> None:
    root = tmp_path / "DIV2K"
    hrs = _write_pairs(root / "DIV2K_valid_HR", root / "DIV2K_valid_LR_bicubic" / "X4", ["0802", "0801"])
    for data in (root, tmp_path, root / "DIV2K_valid_HR"):
        ds = load_dataset(data)
        assert (ds.layout, ds.name, ds.names()) == ("div2k", "DIV2K_valid", ["0801", "0802"])
    _assert_pairs(load_dataset(root), hrs)
    assert load_dataset(root).describe()["lr"] == "files"


def test_div2k_train_split_scale2_and_unknown_degradation(tmp_path: Path) -> None:
    hrs = _write_pairs(
        tmp_path / "DIV2K_train_HR",
        tmp_path / "DIV2K_train_LR_bicubic" / "X2",
        ["0001"],
        lr_suffix="x2",
        scale=2,
    )
    ds = load_dataset(tmp_path, split="train", scale=2)
    assert (ds.layout, ds.name, ds.names()) == ("div2k", "DIV2K_train", ["0001"])
    _assert_pairs(ds, hrs, scale=2)
    # The unknown-degradation LR is any image of the right size; here a plain crop.
    unknown = tmp_path / "DIV2K_train_LR_unknown" / "X4"
    write_png_atomic(unknown / "0001x4.png", modcrop(hrs["0001"], 4)[::4, ::4].copy())
    ds = load_dataset(tmp_path, split="train", degradation="unknown")
    assert (ds.layout, ds.name) == ("div2k", "DIV2K_train_unknown")
    np.testing.assert_array_equal(next(iter(ds)).lr, modcrop(hrs["0001"], 4)[::4, ::4])


def test_ntire_esr_layout_sorts_lsdir_first_like_the_challenge(tmp_path: Path) -> None:
    hrs = _write_pairs(
        tmp_path / "DIV2K_LSDIR_valid_HR", tmp_path / "DIV2K_LSDIR_valid_LR", ["0801", "0000001", "0900"]
    )
    ds = load_dataset(tmp_path)
    assert (ds.layout, ds.name) == ("ntire-esr", "DIV2K_LSDIR_valid")
    assert ds.names() == ["0000001", "0801", "0900"]
    _assert_pairs(ds, hrs)
    test_hrs = _write_pairs(tmp_path / "DIV2K_LSDIR_test_HR", tmp_path / "DIV2K_LSDIR_test_LR", ["0901"])
    ds = load_dataset(tmp_path, split="test")
    assert (ds.name, ds.names()) == ("DIV2K_LSDIR_test", ["0901"])
    _assert_pairs(ds, test_hrs)


def test_ntire_2022_flat_div2k_lr_folder(tmp_path: Path) -> None:
    hrs = _write_pairs(tmp_path / "DIV2K_valid_HR", tmp_path / "DIV2K_valid_LR", ["0801"])
    ds = load_dataset(tmp_path)
    assert (ds.layout, ds.name) == ("ntire-esr", "DIV2K_valid")
    _assert_pairs(ds, hrs)


def test_benchmark_layouts_edsr_and_basicsr_styles(tmp_path: Path) -> None:
    edsr = tmp_path / "benchmark" / "Set5"
    hrs = _write_pairs(edsr / "HR", edsr / "LR_bicubic" / "X4", ["baby", "bird"])
    ds = load_dataset(edsr)
    assert (ds.layout, ds.name, ds.names()) == ("benchmark", "Set5", ["baby", "bird"])
    _assert_pairs(ds, hrs)
    basicsr = tmp_path / "benchmark" / "Urban100"
    hrs = _write_pairs(basicsr / "GTmod12", basicsr / "LRbicx4", ["img_001"], lr_suffix="")
    ds = load_dataset(basicsr)
    assert (ds.layout, ds.name) == ("benchmark", "Urban100")
    _assert_pairs(ds, hrs)
    assert load_dataset(edsr / "HR").layout == "benchmark"  # the HR folder alone finds its LR
    with pytest.raises(SrbenchError, match=r"several benchmark sets \(Set5, Urban100\)"):
        load_dataset(tmp_path / "benchmark")


def test_paired_folders_explicit_and_detected(tmp_path: Path) -> None:
    hrs = _write_pairs(tmp_path / "set" / "HR", tmp_path / "set" / "LR", ["a", "b"], lr_suffix="")
    ds = load_dataset(hr=tmp_path / "set" / "HR", lr=tmp_path / "set" / "LR")
    assert (ds.layout, ds.name) == ("paired", "set")
    _assert_pairs(ds, hrs)
    ds = load_dataset(tmp_path / "set")
    assert ds.layout == "paired"
    _assert_pairs(ds, hrs)


def test_forced_layout_overrides_detection(tmp_path: Path) -> None:
    hrs = _write_pairs(tmp_path / "DIV2K_valid_HR", tmp_path / "DIV2K_valid_LR_bicubic" / "X4", ["0801"])
    ds = load_dataset(tmp_path / "DIV2K_valid_HR", layout="hr-only", cache_lr=False)
    assert (ds.layout, ds.name) == ("hr-only", "DIV2K_valid_HR")
    _assert_pairs(ds, hrs)
    with pytest.raises(SrbenchError, match="--layout benchmark"):
        load_dataset(tmp_path / "DIV2K_valid_HR", layout="benchmark")
    with pytest.raises(SrbenchError, match="--layout 'nope' is not known"):
        load_dataset(tmp_path, layout="nope")


# --------------------------------------------------------------------------- HR-only + cache


def test_hr_only_generates_lr_and_caches_it_beside_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SRBENCH_CACHE_DIR", raising=False)  # the default: beside the HR folder
    hrs = _write_pairs(tmp_path / "photos", None, ["a", "b"])
    ds = load_dataset(tmp_path / "photos")
    assert (ds.layout, ds.name, ds.describe()["lr"]) == ("hr-only", "photos", "generated")
    cache = tmp_path / "photos_LR_srbench" / "X4"
    assert not cache.exists()
    _assert_pairs(ds, hrs)  # generates and writes the cache while iterating
    assert sorted(p.name for p in cache.iterdir()) == [
        "ax4.png",
        "ax4.png.srbench.json",
        "bx4.png",
        "bx4.png.srbench.json",
    ]
    np.testing.assert_array_equal(read_image(cache / "ax4.png"), _lr(hrs["a"]))
    # A later run reads the cache instead of recomputing: alter one cached file and see it.
    altered = np.zeros((6, 9, 3), dtype=np.uint8)
    write_png_atomic(cache / "ax4.png", altered)
    again = {p.name: p for p in load_dataset(tmp_path / "photos")}
    np.testing.assert_array_equal(again["a"].lr, altered)
    np.testing.assert_array_equal(again["b"].lr, _lr(hrs["b"]))
    # Modification times mean nothing to the cache: an old mtime on the cached LR keeps it.
    os.utime(cache / "ax4.png", (1, 1))
    np.testing.assert_array_equal(load_dataset(tmp_path / "photos").load("a").lr, altered)


def test_hr_only_cache_is_keyed_by_content_not_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRBENCH_CACHE_DIR", raising=False)  # the default: beside the HR folder
    """Issue 19 case 2: an HR replaced by different content with an OLDER mtime (as ``cp -p``,
    ``rsync -a`` or an unpacked release leave it) must not be served its stale cached LR."""
    hrs = _write_pairs(tmp_path / "photos", None, ["a"])
    hr_path = tmp_path / "photos" / "a.png"
    _assert_pairs(load_dataset(tmp_path / "photos"), hrs)  # cold cache written
    cached = tmp_path / "photos_LR_srbench" / "X4" / "ax4.png"
    np.testing.assert_array_equal(read_image(cached), _lr(hrs["a"]))
    new_hr = _hr(99)  # same size, different picture
    write_png_atomic(hr_path, new_hr)
    os.utime(hr_path, (1, 1))  # older than the cached LR
    with pytest.warns(CacheWarning, match=r"ax4\.png was made from different content.*regenerating"):
        pair = load_dataset(tmp_path / "photos").load("a")
    np.testing.assert_array_equal(pair.lr, _lr(new_hr))
    np.testing.assert_array_equal(read_image(cached), _lr(new_hr))  # the cache itself is fixed
    # A cache made by an older srbench (no record beside it) is regenerated, not trusted.
    write_png_atomic(cached, np.zeros((6, 9, 3), dtype=np.uint8))
    (cached.parent / "ax4.png.srbench.json").unlink()
    with pytest.warns(CacheWarning, match="no content record"):
        np.testing.assert_array_equal(load_dataset(tmp_path / "photos").load("a").lr, _lr(new_hr))
    # Once regenerated it is used silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_dataset(tmp_path / "photos").load("a").lr, _lr(new_hr))


def test_hr_only_cache_lr_false_writes_nothing_and_env_moves_the_cache(tmp_path: Path, monkeypatch) -> None:
    hrs = _write_pairs(tmp_path / "photos", None, ["a"])
    _assert_pairs(load_dataset(tmp_path / "photos", cache_lr=False), hrs)
    assert not (tmp_path / "photos_LR_srbench").exists()
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    _assert_pairs(load_dataset(tmp_path / "photos"), hrs)
    written = list((tmp_path / "cache" / "lr").glob("photos-*/X4/ax4.png"))
    assert len(written) == 1 and not (tmp_path / "photos_LR_srbench").exists()


def test_data_prepare_writes_the_cache_once(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRBENCH_CACHE_DIR", raising=False)  # the default: beside the HR folder
    hrs = _write_pairs(tmp_path / "photos", None, ["a", "b", "c"])
    assert main(["data", "prepare", str(tmp_path / "photos")]) == 0
    assert "wrote 3 LR images" in capsys.readouterr().out
    cache = tmp_path / "photos_LR_srbench" / "X4"
    for stem, hr in hrs.items():
        np.testing.assert_array_equal(read_image(cache / f"{stem}x4.png"), _lr(hr))
    assert main(["data", "prepare", str(tmp_path / "photos")]) == 0
    assert "wrote 0 LR images" in capsys.readouterr().out


# --------------------------------------------------------------------------- problems


def _div2k_with(tmp_path: Path, stems: list[str]) -> tuple[Path, Path]:
    hr_dir, lr_dir = tmp_path / "DIV2K_valid_HR", tmp_path / "DIV2K_valid_LR_bicubic" / "X4"
    _write_pairs(hr_dir, lr_dir, stems)
    return hr_dir, lr_dir


def test_missing_lr_is_named_with_the_expected_path(tmp_path: Path) -> None:
    _, lr_dir = _div2k_with(tmp_path, ["0801", "0802"])
    (lr_dir / "0802x4.png").unlink()
    with pytest.raises(SrbenchError) as caught:
        load_dataset(tmp_path)
    message = str(caught.value)
    assert "has 1 problem: " in message
    assert "HR DIV2K_valid_HR/0802.png has no LR (expected DIV2K_valid_LR_bicubic/X4/0802x4.png)" in message
    assert f"run 'srbench data check {tmp_path} --scale 4'" in message


def test_hr_without_lr_is_still_checked_for_readability(tmp_path: Path) -> None:
    hr_dir, _ = _div2k_with(tmp_path, ["0801"])
    (hr_dir / "0802.png").write_bytes(b"not an image")
    problems = check_dataset(tmp_path)
    assert [(p.kind, p.path.name) for p in problems] == [
        ("missing-lr", "0802.png"),
        ("unreadable", "0802.png"),
    ]


def test_size_mismatch_names_both_files_and_sizes(tmp_path: Path) -> None:
    _, lr_dir = _div2k_with(tmp_path, ["0801"])
    write_png_atomic(lr_dir / "0801x4.png", np.zeros((5, 5, 3), dtype=np.uint8))
    problems = check_dataset(tmp_path)
    assert [p.kind for p in problems] == ["size"]
    assert problems[0].message == (
        "LR DIV2K_valid_LR_bicubic/X4/0801x4.png is 5x5 but HR DIV2K_valid_HR/0801.png "
        "(37x26, 36x24 after mod-crop) needs 9x6 at x4"
    )


def test_duplicate_stems_empty_folder_and_missing_lr_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_png_atomic(photos / "a.png", _hr(1))
    Image.fromarray(_hr(2)).save(photos / "a.jpg")
    problems = check_dataset(photos)
    assert [p.kind for p in problems] == ["duplicate"]
    assert "has duplicate stem 'a': a.jpg, a.png" in problems[0].message
    (tmp_path / "empty").mkdir()
    problems = check_dataset(tmp_path / "empty", layout="hr-only")
    assert [p.kind for p in problems] == ["empty"]
    assert "holds no images" in problems[0].message
    hr_only = tmp_path / "d"
    write_png_atomic(hr_only / "DIV2K_valid_HR" / "0801.png", _hr(1))
    with pytest.raises(
        SrbenchError, match=r"LR folder DIV2K_valid_LR_bicubic/X4 does not exist; download it"
    ):
        load_dataset(hr_only)


def test_unreadable_16bit_and_truncated_files(tmp_path: Path) -> None:
    hr_dir, lr_dir = _div2k_with(tmp_path, ["0801", "0802", "0803"])
    (lr_dir / "0801x4.png").write_bytes(b"garbage, not a PNG")
    Image.fromarray(_hr(9)[..., 0].astype(np.uint16) * 257).save(hr_dir / "0802.png")  # 16-bit grey
    good = (hr_dir / "0803.png").read_bytes()
    (hr_dir / "0803.png").write_bytes(good[: len(good) // 2])
    problems = check_dataset(tmp_path)
    # The truncated 0803 is caught by default (its IEND chunk is missing; issue 26 item 13).
    assert [p.kind for p in problems] == ["unreadable", "bit-depth", "unreadable"]
    assert problems[0].message.startswith("LR DIV2K_valid_LR_bicubic/X4/0801x4.png is not a readable image")
    assert problems[1].message.startswith("HR DIV2K_valid_HR/0802.png is 16-bit; srbench reads 8-bit images")
    assert "HR DIV2K_valid_HR/0803.png is not a readable image (truncated PNG" in problems[2].message
    decoded = check_dataset(tmp_path, decode=True)
    assert [p.kind for p in decoded] == ["unreadable", "bit-depth", "unreadable"]
    assert [p.kind for p in check_dataset(tmp_path, allow_16bit=True)] == ["unreadable", "unreadable"]


def test_all_problems_are_collected_into_one_error(tmp_path: Path) -> None:
    _, lr_dir = _div2k_with(tmp_path, ["0801", "0802", "0803", "0804", "0805"])
    for stem in ("0801", "0802", "0803", "0804", "0805"):
        (lr_dir / f"{stem}x4.png").unlink()
    write_png_atomic(lr_dir / "0809x4.png", np.zeros((6, 9, 3), dtype=np.uint8))  # keeps the folder non-empty
    with pytest.raises(SrbenchError) as caught:
        load_dataset(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"dataset {tmp_path} has 5 problems: HR DIV2K_valid_HR/0801.png has no LR")
    assert "0803.png has no LR" in message and "0804.png" not in message
    assert "; and 2 more; run 'srbench data check" in message
    assert "\n" not in message


def test_missing_path_and_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SrbenchError, match=r"dataset path .*nowhere does not exist"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(SrbenchError, match="--scale must be a positive integer"):
        load_dataset(None, scale=0)
    with pytest.raises(SrbenchError, match="either --data or --hr/--lr"):
        load_dataset(tmp_path, hr=tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(SrbenchError, match="cannot tell the dataset layout"):
        load_dataset(tmp_path / "junk")


def test_hr_smaller_than_the_scale_is_a_problem(tmp_path: Path) -> None:
    write_png_atomic(tmp_path / "tiny" / "t.png", _hr(1, 3, 30))
    problems = check_dataset(tmp_path / "tiny")
    assert [p.message for p in problems] == ["HR t.png is 30x3, smaller than the scale x4"]


# --------------------------------------------------------------------------- CLI


def test_data_check_cli_reports_every_problem(tmp_path: Path, capsys) -> None:
    _, lr_dir = _div2k_with(tmp_path, ["0801", "0802", "0803"])
    assert main(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "DIV2K_valid, layout div2k, 3 pairs at x4: no problems" in out
    (lr_dir / "0802x4.png").unlink()
    write_png_atomic(lr_dir / "0803x4.png", np.zeros((4, 4, 3), dtype=np.uint8))
    assert main(["data", "check", str(tmp_path), "--scale", "4", "--layout", "div2k"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].endswith(": 2 problems")
    assert lines[1].strip() == (
        "HR DIV2K_valid_HR/0802.png has no LR (expected DIV2K_valid_LR_bicubic/X4/0802x4.png)"
    )
    assert lines[2].strip().startswith("LR DIV2K_valid_LR_bicubic/X4/0803x4.png is 4x4 but HR")
    assert len(lines) == 3
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- prefetch


def test_prefetch_keeps_order_and_bounds_memory() -> None:
    produced = []

    def source():
        for i in range(10):
            produced.append(i)
            yield i

    it = prefetch(source(), n=2)
    assert next(it) == 0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and len(produced) < 4:
        time.sleep(0.01)
    time.sleep(0.05)
    # 1 held by us + 2 queued + 1 produced and blocked on the full queue: never the whole source.
    assert len(produced) == 4
    assert [0, *it] == list(range(10))


def test_prefetch_reraises_and_stops_when_closed() -> None:
    def failing():
        yield 1
        raise SrbenchError("decode failed for x.png")

    it = prefetch(failing(), n=2)
    assert next(it) == 1
    with pytest.raises(SrbenchError, match="decode failed"):
        next(it)
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    it = prefetch(endless(), n=1)
    assert next(it) == 0
    it.close()  # joins the producer
    assert threading.active_count() == before
    assert len(produced) <= 3


def test_dataset_prefetch_matches_plain_iteration(tmp_path: Path) -> None:
    hrs = _write_pairs(
        tmp_path / "DIV2K_valid_HR", tmp_path / "DIV2K_valid_LR_bicubic" / "X4", ["0801", "0802"]
    )
    ds = load_dataset(tmp_path)
    for a, b in zip(ds.prefetch(2), ds, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.lr, b.lr)
        np.testing.assert_array_equal(a.hr, modcrop(hrs[a.name], 4))
