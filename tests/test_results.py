"""Results files: the srbench/1 contract, atomic writes, CSV/Markdown views."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from srbench.core.errors import SrbenchError
from srbench.measure.timing import RuntimeStats
from srbench.results import schema as R
from srbench.results.io import write_results
from srbench.results.schema import ImageResult, ModelResult, RunResult, WeightsInfo, load_results
from srbench.results.tables import results_markdown


def _run() -> RunResult:
    ok = ModelResult(
        name="span",
        arch="span",
        scale=4,
        status="ok",
        weights=WeightsInfo(file="w.pth", sha256="ab" * 32, source="SRBENCH_WEIGHTS_DIR"),
        params=150_688,
        flops=9_833_807_872,
        activations=41_680_896,
        convs=22,
        psnr_y=30.123456789,
        ssim_y=0.85,
        psnr_rgb=28.5,
        runtime_ms=RuntimeStats.from_samples([10.0, 12.0]),
        memory_mb=12.5,
        memory_kind="cpu_forward_peak",
        images=[ImageResult("a", 10.0, 30.0, 0.8, 28.0), ImageResult("b", 12.0, math_inf(), 1.0, 29.0)],
    )
    bare = ModelResult(
        name="span_ca",
        arch="span_ca",
        scale=4,
        status="no-weights",
        reason="no trained weights exist",
        params=151_080,
        psnr_y=17.0,  # must never be shown: status is not ok
    )
    return RunResult(
        environment={"device": "cpu"}, config={"scale": 4}, dataset={"name": "sample"}, models=[ok, bare]
    )


def math_inf() -> float:
    return float("inf")


def test_json_round_trip_and_schema(tmp_path: Path) -> None:
    run = _run()
    write_results(run, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema"] == "srbench/1"
    assert data["config_hash"] == run.config_hash
    m = data["models"][0]
    for key in (
        "name",
        "weights",
        "params",
        "flops",
        "activations",
        "convs",
        "psnr_y",
        "ssim_y",
        "psnr_rgb",
        "runtime_ms",
        "memory_mb",
        "memory_kind",
        "status",
        "images",
    ):
        assert key in m
    assert set(m["runtime_ms"]) >= {"mean", "median", "std", "min", "max"}
    assert m["images"][1]["psnr_y"] == "inf"  # JSON has no inf literal
    back = load_results(tmp_path)
    assert back.models[0].flops == 9_833_807_872
    assert back.models[0].runtime_ms == run.models[0].runtime_ms
    assert back.models[0].weights == run.models[0].weights
    assert back.models[0].images[1].psnr_y == float("inf")  # read back as a float


def test_config_hash_ignores_model_list_only() -> None:
    a = RunResult({}, {"scale": 4, "models": ["a"]}, {})
    b = RunResult({}, {"scale": 4, "models": ["b"]}, {})
    c = RunResult({}, {"scale": 2, "models": ["a"]}, {})
    assert a.config_hash == b.config_hash != c.config_hash


def test_csv_has_exact_integers(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(R.results_csv(_run()))))
    assert rows[0]["flops"] == "9833807872"
    assert float(rows[0]["psnr_y_db"]) == 30.123456789
    assert rows[1]["psnr_y_db"] == "17.0"  # CSV keeps raw values; status says what they mean
    assert rows[1]["status"] == "no-weights"


def test_markdown_hides_quality_without_weights() -> None:
    md = results_markdown(_run())
    span_ca = next(line for line in md.splitlines() if line.startswith("| span_ca"))
    assert "17.00" not in span_ca and "—" in span_ca
    assert "| span | 30.12 | 0.8500 | 11.00 | 0.151 | 9.83 | 41.68 | 12.50 | 22 |" in md
    assert "no trained weights exist" in md


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        R.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # temp file removed


def test_disk_full_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(SrbenchError, match="cannot write results"):
        write_results(_run(), tmp_path)


def test_wrong_schema_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(SrbenchError, match="not an srbench results file"):
        load_results(tmp_path)
