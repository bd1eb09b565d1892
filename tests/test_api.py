"""The Python API (docs/api.md): the page's example runs as written; the root loads the API
lazily; images.csv holds results.json's per-image figures; ``srbench list --json``."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import srbench
from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.results.schema import IMAGES_CSV_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"


def test_the_documented_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", API_DOC.read_text(encoding="utf-8"), re.S)
    exec(compile(block, str(API_DOC), "exec"), {"__name__": "api_doc"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("bicubic ok PSNR-Y ") and printed[0].endswith(" ms")
    assert printed[1] == "0 0"  # bicubic: no parameters, no MACs


def test_every_documented_name_is_the_library_object() -> None:
    from srbench.models.registry import register_model
    from srbench.results.config import RunConfig
    from srbench.results.schema import load_results

    assert srbench.RunConfig is RunConfig
    assert srbench.load_results is load_results
    assert srbench.register_model is register_model
    for name in srbench.API:
        assert f"srbench.{name}" in API_DOC.read_text(encoding="utf-8") or name == "RunResult"
    # srbench.run is the API function; the room that runs measurements is srbench.runner.
    assert srbench.run is srbench.api.run and srbench.runner.orchestrator.run_benchmark
    with pytest.raises(AttributeError):
        srbench.no_such_name  # noqa: B018


def test_import_srbench_imports_no_torch(tmp_path: Path) -> None:
    code = "import sys, srbench; assert 'torch' not in sys.modules; srbench.RunConfig; "
    code += "assert srbench.run.__module__ == 'srbench.api'; "
    code += "print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert done.stdout.strip() == "True"  # the first API access loads it, not the import


def test_run_refuses_an_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(SrbenchError, match=r"unknown option.*repeats"):
        srbench.run(["bicubic"], "sample-mini", output=tmp_path, repeats=3)


def test_images_csv_holds_the_per_image_figures_of_results_json(tmp_path: Path) -> None:
    run = srbench.run("bicubic", "sample-mini", output=tmp_path, device="cpu", isolate=False, repeat=2)
    data = json.loads((tmp_path / "results.json").read_text())
    with open(tmp_path / "images.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == IMAGES_CSV_COLUMNS
        rows = list(reader)
    expected = [(m["name"], im) for m in data["models"] for im in m["images"]]
    assert len(rows) == len(expected) == len(run.models[0].images) > 0
    for row, (model, im) in zip(rows, expected, strict=True):
        assert (row["model"], row["image"]) == (model, im["name"])
        # float(repr(x)) == x: the CSV keeps every bit of the JSON's figures
        assert float(row["psnr_y_db"]) == im["psnr_y"]
        assert float(row["ssim_y"]) == im["ssim_y"]
        assert float(row["psnr_rgb_db"]) == im["psnr_rgb"]
        assert float(row["time_ms"]) == im["runtime_ms"]
        assert row["tiled"] == str(im["tiled"]).lower()


def test_images_csv_leaves_quality_empty_without_trained_weights() -> None:
    from srbench.results.schema import ImageResult, ModelResult, RunResult, images_csv

    m = ModelResult(name="net", arch="net", scale=4, status="no-weights")
    m.images = [ImageResult(name="a", runtime_ms=1.5, psnr_y=12.0, ssim_y=0.1, psnr_rgb=11.0)]
    text = images_csv(RunResult(environment={}, config={}, dataset={}, models=[m]))
    assert text.splitlines()[1] == "net,a,,,,1.5,false"


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "span*", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "srbench/1-models"
    by = {m["name"]: m for m in doc["models"]}
    assert by["span"]["params"] == 150_688  # the NTIRE 2024 team 38 SPAN, x4
    assert by["span"]["scales"] == [2, 3, 4] and by["span"]["origin"] == "builtin"
    assert all(name.startswith("span") for name in by)
