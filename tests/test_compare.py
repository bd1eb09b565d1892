"""``srbench compare``: grids from a tiny fake run folder (no benchmark run needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data.imresize import imresize_uint8
from srbench.reporting.compare import (
    GAP,
    LABEL_HEIGHT,
    MSE_FLOOR,
    Crop,
    auto_crop,
    crop_candidates,
    default_zoom,
    grid_size,
    load_comparison,
    local_psnr,
    parse_crop,
)
from srbench.results.io import write_results
from srbench.results.schema import ImageResult, ModelResult, RunResult

# Where model "b" is made much worse than model "a" (HR pixels).
BAD_X, BAD_Y, BAD = 40, 24, 16


def _y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-swing Y, written out independently of srbench.measure.metrics."""
    rgb = img.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def _noisy(hr: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, hr.shape)
    return np.clip(hr + noise, 0, 255).round().astype(np.uint8)


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A run over a 2-image hr-only dataset with models a, b (SR saved) and c (failed)."""
    hr_dir = tmp_path / "data" / "hr"
    hr_dir.mkdir(parents=True)
    astro = skimage.data.astronaut()
    Image.fromarray(astro[60:124, 180:260]).save(hr_dir / "face.png")  # 80x64
    Image.fromarray(astro[300:348, 300:364]).save(hr_dir / "suit.png")
    hr = astro[60:124, 180:260]
    sr_a = _noisy(hr, 2.0, seed=1)
    sr_b = _noisy(hr, 2.0, seed=2)
    sr_b[BAD_Y : BAD_Y + BAD, BAD_X : BAD_X + BAD] = _noisy(hr, 25.0, seed=3)[
        BAD_Y : BAD_Y + BAD, BAD_X : BAD_X + BAD
    ]
    run_dir = tmp_path / "run"
    for name, sr in (("a", sr_a), ("b", sr_b)):
        (run_dir / "images" / name).mkdir(parents=True)
        Image.fromarray(sr).save(run_dir / "images" / name / "face.png")
    models = [
        ModelResult("a", "span", 4, "ok", images=[ImageResult("face", 1.0, psnr_y=31.25)]),
        ModelResult("b", "rlfn", 4, "ok", images=[ImageResult("face", 1.0, psnr_y=math.inf)]),
        ModelResult("c", "rlfn", 4, "error", reason="boom"),
    ]
    config = {"data": str(tmp_path / "data" / "hr"), "layout": "hr-only", "scale": 4}
    write_results(RunResult(environment={}, config=config, dataset={}, models=models), run_dir)
    return run_dir


def test_load_comparison_panels_and_psnrs(fake_run: Path) -> None:
    comp = load_comparison(fake_run, "face")
    assert [p.label for p in comp.panels] == ["HR", "bicubic", "a", "b"]
    assert comp.left_out == ["c"] and comp.skipped == []  # a failed model is never a panel
    assert [p.psnr_y for p in comp.panels[2:]] == [31.25, math.inf]
    hr = comp.hr
    assert hr.shape == (64, 80, 3)
    # Bicubic PSNR-Y against an independent computation (numpy Y, border 4 cropped).
    lr = np.asarray(imresize_uint8(hr, 0.25))
    bic = np.asarray(imresize_uint8(lr, 4))
    assert np.array_equal(comp.panels[1].image, bic)
    mse = np.mean((_y(bic) - _y(hr))[4:-4, 4:-4] ** 2)
    assert comp.panels[1].psnr_y == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)


def test_local_psnr_matches_brute_force(fake_run: Path) -> None:
    comp = load_comparison(fake_run, "face")
    others = [p.image for p in comp.models]
    ys, xs, got = local_psnr(comp.hr, others, size=12, stride=5, border=4)
    assert ys[0] == 4 and ys[-1] == 64 - 4 - 12 and xs[-1] == 80 - 4 - 12
    y_hr = _y(comp.hr)
    for k, img in enumerate(others):
        y = _y(img)
        for i, y0 in enumerate(ys):
            for j, x0 in enumerate(xs):
                mse = np.mean((y - y_hr)[y0 : y0 + 12, x0 : x0 + 12] ** 2)
                ref = 10 * math.log10(255**2 / max(mse, MSE_FLOOR))
                assert got[k, i, j] == pytest.approx(ref, abs=1e-8)


def test_auto_crop_finds_the_damaged_window(fake_run: Path) -> None:
    comp = load_comparison(fake_run, "face")
    crop = auto_crop(comp.hr, [p.image for p in comp.models], size=BAD, stride=4, border=4)
    assert crop == Crop(BAD_X, BAD_Y, BAD, BAD)


def test_cli_grid_layout(fake_run: Path) -> None:
    out = fake_run / "grid.png"
    assert main(["compare", "face", "--run", str(fake_run), "--crop", "8,4,32,24", "-o", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"))
    crop, zoom, panels = Crop(8, 4, 32, 24), default_zoom(Crop(8, 4, 32, 24)), 4
    assert zoom == 9
    width, height = grid_size(panels, crop, zoom)
    assert (width, height) == (panels * 32 * zoom + (panels - 1) * GAP, 24 * zoom + LABEL_HEIGHT)
    assert grid.shape == (height, width, 3)
    comp = load_comparison(fake_run, "face")
    for i, panel in enumerate(comp.panels):
        x0 = i * (32 * zoom + GAP)
        expected = np.repeat(np.repeat(crop.cut(panel.image), zoom, 0), zoom, 1)
        assert np.array_equal(grid[: 24 * zoom, x0 : x0 + 32 * zoom], expected), panel.label
        label = grid[24 * zoom :, x0 : x0 + 32 * zoom]
        assert (label < 128).any(), f"panel {panel.label} has no label text"
        if i < panels - 1:
            assert (grid[:, x0 + 32 * zoom : x0 + 32 * zoom + GAP] == 255).all()


def test_cli_auto_crop_default_output(fake_run: Path) -> None:
    assert main(["compare", "face", "--run", str(fake_run), "--auto-crop", "--crop-size", "16"]) == 0
    grid = Image.open(fake_run / "compare_face.png")
    assert grid.size == grid_size(4, Crop(0, 0, 16, 16), default_zoom(Crop(0, 0, 16, 16)))


def test_errors(fake_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An image of the dataset that no model saved, and a run without images at all.
    with pytest.raises(SrbenchError, match="--save-images"):
        load_comparison(fake_run, "suit")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "results.json").write_text((fake_run / "results.json").read_text())
    assert main(["compare", "face", "--run", str(bare)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--save-images" in err
    with pytest.raises(SrbenchError, match="not in run"):
        load_comparison(fake_run, "nope")
    with pytest.raises(SrbenchError, match="does not fit the 80x64"):
        parse_crop("70,0,16,16", (64, 80, 3))
    with pytest.raises(SrbenchError, match="x,y,w,h"):
        parse_crop("1,2,3", (64, 80, 3))


def test_luma_helper_agrees_with_metrics() -> None:
    # The tests' independent Y must be the metric's Y, or the checks above prove nothing.
    from srbench.measure.metrics import rgb_to_y

    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert np.allclose(_y(img), rgb_to_y(torch.tensor(img).permute(2, 0, 1)).numpy(), atol=1e-12)


def test_models_without_weights_are_left_out_and_bicubic_appears_once(fake_run: Path, capsys) -> None:
    """Issue 19 case 8: a random-init output saved under images/ (as older runs did) is not a
    panel, --auto-crop ignores it, and the run's own bicubic row is not a second bicubic panel."""
    from srbench.results.schema import load_results

    run = load_results(fake_run)
    hr = load_comparison(fake_run, "face").hr
    flat = np.full_like(hr, 128)  # "random" output: disagrees most on a flat background
    for name, arch, status, img in (
        ("rand", "span_ca", "no-weights", flat),
        ("bicubic", "bicubic", "ok", hr),
    ):
        (fake_run / "images" / name).mkdir(parents=True)
        Image.fromarray(img).save(fake_run / "images" / name / "face.png")
        run.models.append(ModelResult(name, arch, 4, status, images=[ImageResult("face", 1.0)]))
    write_results(run, fake_run)
    comp = load_comparison(fake_run, "face")
    assert [p.label for p in comp.panels] == ["HR", "bicubic", "a", "b"]
    assert comp.left_out == ["c", "rand"]
    crop = auto_crop(comp.hr, crop_candidates(comp), size=BAD, stride=4, border=4)
    assert crop == Crop(BAD_X, BAD_Y, BAD, BAD)
    assert main(["compare", "face", "--run", str(fake_run), "--auto-crop", "--crop-size", "16"]) == 0
    assert "left out (no trained weights, or failed" in capsys.readouterr().err


def test_save_images_skips_models_without_weights(tmp_path: Path, monkeypatch) -> None:
    import json

    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["run", "--models", "span_ca,bicubic", "--data", "sample-mini", "--no-isolate", "--save-images"]
    assert main([*args, "--offline", "--output", str(out)]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["bicubic"]
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    assert any("SR images not saved" in n for n in rows["span_ca"]["notes"])
