"""Precision variants (``--precision fp16,int8``) and their calibration set.

The calibration-overlap check is pinned on a real case of one photograph under two names
(scikit-image's ``cat`` is ``chelsea``, which the sample set evaluates); the variant rows'
costs are pinned to their own per-image figures and to the fp32 row of the same run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx
import skimage.data
from test_onnx_models import RUN_FAST, _tiny_upscaler

from srbench.backends.onnxruntime.precision import (
    DEFAULT_CALIBRATION_NAME,
    _from_pairs,
    check_no_overlap,
    default_calibration,
    evaluated_hashes,
)
from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.data.imresize import imresize_uint8, modcrop


@pytest.fixture(scope="module")
def sample_images(tmp_path_factory: pytest.TempPathFactory) -> ImageCache:
    """The built-in sample set at x4, decoded (the evaluated set of most tests)."""
    return ImageCache.build(load_dataset(None, scale=4), tmp_path_factory.mktemp("sample"))


def test_default_calibration_shares_no_image_with_the_sample_set(sample_images: ImageCache) -> None:
    cal = default_calibration(4)
    assert cal.name == DEFAULT_CALIBRATION_NAME and len(cal.lr) == 3
    check_no_overlap(cal, evaluated_hashes(sample_images), "--precision int8")
    assert default_calibration(4).sha256 == cal.sha256  # deterministic: the row's hash means something


def test_a_calibration_image_under_another_name_is_refused(sample_images: ImageCache) -> None:
    # skimage's cat() is the chelsea photograph the sample set evaluates: same pixels, other name.
    cat = modcrop(np.asarray(skimage.data.cat()), 4)
    cal = _from_pairs("cats", [(cat, np.asarray(imresize_uint8(cat, 1 / 4)))])
    with pytest.raises(SrbenchError, match="shares 2 image array"):
        check_no_overlap(cal, evaluated_hashes(sample_images), "--calibration cats")


def test_run_refuses_an_overlapping_calibration_before_any_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.asarray(skimage.data.coffee())).save(folder / "coffee.png")
    path = _tiny_upscaler(tmp_path / "tiny.onnx")
    out = tmp_path / "run"
    args = [
        *("run", "--models", str(path), "--scale", "2", "--input-range", "tiny=1", "--precision", "int8"),
        *("--data", str(folder), "--calibration", str(folder), "--no-isolate", "-o", str(out)),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("srbench: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"--calibration {folder}" in lines[0] and "shares" in lines[0], lines[0]
    assert not (out / "results.json").exists() or not json.loads((out / "results.json").read_text())["models"]


def test_precision_needs_onnxruntime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--models", "bicubic", "--precision", "int8", *RUN_FAST, "-o", str(tmp_path)]) == 2
    assert "add --backend onnxruntime" in capsys.readouterr().err


@pytest.mark.slow
def test_variant_rows_carry_their_cost_against_fp32(tmp_path: Path) -> None:
    path = _tiny_upscaler(tmp_path / "tiny.onnx")
    out = tmp_path / "run"
    args = ["run", "--models", str(path), "--scale", "2", "--input-range", "tiny=1", *RUN_FAST]
    assert main([*args, "--precision", "fp16,int8", "-o", str(out)]) == 0
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    assert list(rows) == ["tiny@onnxruntime", "tiny-fp16@onnxruntime", "tiny-int8@onnxruntime"]
    base = rows["tiny@onnxruntime"]
    assert "precision_cost" not in base
    for precision in ("fp16", "int8"):
        row = rows[f"tiny-{precision}@onnxruntime"]
        cost, deployed = row["precision_cost"], row["deployed"]
        assert cost["reference"] == "tiny@onnxruntime" and cost["images"] == len(base["images"]) == 4
        by_name = {i["name"]: i for i in base["images"]}
        for key in ("psnr_y", "ssim_y"):
            diffs = [i[key] - by_name[i["name"]][key] for i in row["images"]]
            assert cost[f"{key}_delta"] == pytest.approx(statistics.fmean(diffs), abs=1e-12)
        assert cost["speed_ratio"] == pytest.approx(
            base["runtime_ms"]["median"] / row["runtime_ms"]["median"]
        )
        assert cost["size_ratio"] == pytest.approx(deployed["size_bytes"] / base["deployed"]["size_bytes"])
        assert deployed["precision"]["precision"] == precision
        assert deployed["precision"]["base_sha256"] == base["deployed"]["sha256"]
        assert row["backend_agreement"]["reference"].startswith("the fp32 ONNX file")
        # The variant's file is what ran: its metadata says so.
        props = {p.key: p.value for p in onnx.load(_variant(deployed)).metadata_props}
        assert props["srbench.precision"] == precision
    fp16 = rows["tiny-fp16@onnxruntime"]
    assert abs(fp16["precision_cost"]["psnr_y_delta"]) < 0.05  # one conv in fp16: a rounding
    assert fp16["backend_agreement"]["max_abs_diff"] < 3e-2
    int8 = rows["tiny-int8@onnxruntime"]["deployed"]["precision"]
    assert int8["calibration"] == default_calibration(2).describe()
    assert int8["calibration"]["name"] == DEFAULT_CALIBRATION_NAME and int8["calibration"]["size"] == 3


def _variant(deployed: dict) -> str:
    from srbench.backends.onnxruntime.session import onnx_cache_dir

    return str(onnx_cache_dir() / "variants" / deployed["file"])


@pytest.mark.slow
def test_export_int8_writes_a_calibrated_qdq_file(tmp_path: Path) -> None:
    out = tmp_path / "bicubic_int8.onnx"
    assert main(["export", "--model", "bicubic", "--precision", "int8", "-o", str(out)]) == 0
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["srbench.precision"] == "int8"
    assert json.loads(props["srbench.calibration"]) == default_calibration(4).describe()
    assert props["srbench.model"] == "bicubic"  # srbench's own metadata survives quantisation


def test_report_shows_the_precision_ladder() -> None:
    from srbench.measure.timing import RuntimeStats
    from srbench.results.schema import ModelResult
    from srbench.results.tables import precision_ladder_markdown

    base = ModelResult(name="span@onnxruntime", arch="span", scale=4, status="ok", psnr_y=30.0)
    base.runtime_ms = RuntimeStats.from_samples([10.0, 10.0, 10.0])
    base.deployed = {"size_bytes": 2 * 2**20}
    variant = ModelResult(name="span-int8@onnxruntime", arch="span", scale=4, status="ok", psnr_y=29.5)
    variant.runtime_ms = RuntimeStats.from_samples([8.0, 8.0, 8.0])
    variant.deployed = {"size_bytes": 2**20, "precision": {"precision": "int8"}}
    variant.precision_cost = {
        "reference": base.name,
        "images": 3,
        "psnr_y_delta": -0.5,
        "ssim_y_delta": -0.01,
        "speed_ratio": 1.25,
        "size_ratio": 0.5,
    }
    assert precision_ladder_markdown([base]) is None
    table = precision_ladder_markdown([base, variant])
    assert table is not None
    rows = [ln for ln in table.splitlines() if ln.startswith("| span")]
    assert rows[0].split(" | ")[:3] == ["| span@onnxruntime", "fp32", "30.00"]
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    assert cells == [
        "span-int8@onnxruntime",
        "int8",
        "29.50",
        "-0.500",
        "-0.0100",
        "8.00",
        "1.25",
        "1.000",
        "0.50",
    ]
