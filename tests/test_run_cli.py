"""The main job end to end: `srbench run --models rlfn,span,span_ca` on the sample set.

Quality numbers are pinned to a second implementation (scikit-image metrics on the same
model outputs); complexity numbers to the NTIRE integers.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srbench.cli import main
from srbench.data.datasets import load_dataset
from srbench.models import get_entry
from srbench.models.loading import load_weights, read_checkpoint


@pytest.fixture(scope="module")
def main_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests_support import require_weights

    require_weights()
    out = tmp_path_factory.mktemp("run")
    code = main(["run", "--models", "rlfn,span,span_ca", "--output", str(out), "--no-isolate"])
    assert code == 0
    return out


def _skimage_quality(sr: np.ndarray, hr: np.ndarray, crop: int) -> tuple[float, float, float]:
    ys = rgb2ycbcr(sr)[crop:-crop, crop:-crop, 0]
    yh = rgb2ycbcr(hr)[crop:-crop, crop:-crop, 0]
    psnr_y = peak_signal_noise_ratio(yh, ys, data_range=255)
    ssim_y = structural_similarity(
        yh, ys, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    psnr_rgb = peak_signal_noise_ratio(hr[crop:-crop, crop:-crop], sr[crop:-crop, crop:-crop], data_range=255)
    return psnr_y, ssim_y, psnr_rgb


def test_results_files_and_exact_complexity(main_run: Path) -> None:
    data = json.loads((main_run / "results.json").read_text())
    assert data["schema"] == "srbench/1"
    assert data["dataset"]["images"] == 4
    models = {m["name"]: m for m in data["models"]}
    assert [m["name"] for m in data["models"]] == ["rlfn", "span", "span_ca"]
    assert (models["rlfn"]["params"], models["rlfn"]["flops"], models["rlfn"]["activations"]) == (
        317_218,
        19_674_859_520,
        80_045_184,
    )
    assert (models["span"]["params"], models["span"]["flops"], models["span"]["convs"]) == (
        150_688,
        9_833_807_872,
        22,
    )
    assert models["span_ca"]["params"] == 151_080 and models["span_ca"]["convs"] == 50
    assert models["rlfn"]["status"] == models["span"]["status"] == "ok"
    assert models["span_ca"]["status"] == "no-weights" and models["span_ca"]["psnr_y"] is None
    assert models["span"]["weights"]["sha256"] == get_entry("span").weights_for(4).sha256
    for m in models.values():
        assert len(m["images"]) == 4 and m["runtime_ms"]["n"] == 4
        assert m["memory_kind"] == "cpu_forward_peak" and m["memory_mb"] > 0
    rows = list(csv.DictReader((main_run / "results.csv").open()))
    assert [r["model"] for r in rows] == ["rlfn", "span", "span_ca"]
    md = (main_run / "results.md").read_text()
    assert "| span_ca | — | — |" in md


@pytest.mark.parametrize("name", ["rlfn", "span"])
def test_quality_equals_skimage_on_the_same_outputs(main_run: Path, name: str) -> None:
    from tests_support import require_weights

    weights = require_weights()
    entry = get_entry(name)
    model = entry.build(scale=4)
    spec = entry.weights_for(4)
    load_weights(model, entry, read_checkpoint(weights / spec.file_name), source=spec.file_name)
    data = json.loads((main_run / "results.json").read_text())
    images = {i["name"]: i for i in next(m for m in data["models"] if m["name"] == name)["images"]}
    for pair in load_dataset(None, scale=4):
        x = torch.from_numpy(pair.lr).permute(2, 0, 1)[None].float() / (255 / entry.input_range)
        with torch.inference_mode():
            y = model(x)[0] / entry.input_range
        # BasicSR's tensor2img: clamp, x255 and round half-to-even in float32.
        sr = np.round(y.clamp(0, 1).permute(1, 2, 0).numpy() * np.float32(255)).astype(np.uint8)
        psnr_y, ssim_y, psnr_rgb = _skimage_quality(sr, pair.hr, 4)
        got = images[pair.name]
        assert got["psnr_y"] == pytest.approx(psnr_y, abs=1e-6)
        assert got["ssim_y"] == pytest.approx(ssim_y, abs=1e-6)
        assert got["psnr_rgb"] == pytest.approx(psnr_rgb, abs=1e-6)


def test_profile_json_matches_anchors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--models", "rlfn,span", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert (rows["rlfn"]["flops"], rows["rlfn"]["convs"]) == (19_674_859_520, 39)
    assert (rows["span"]["activations"], rows["span"]["params"]) == (41_680_896, 150_688)


def test_list_shows_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "span*"]) == 0
    out = capsys.readouterr().out
    assert "span_tiny" in out and "rlfn" not in out.split("srbench models")[1].split("\n", 1)[1]
