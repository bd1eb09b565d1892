"""``srbench run --protocol ntireYYYY``: splits, whole-run repetitions, aggregation, score."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.measure.timing import RuntimeStats
from srbench.ntire.challenge import aggregate, challenge_results_txt, resolve_split_data
from srbench.ntire.editions import get_edition
from srbench.ntire.score import load_entries
from srbench.results.schema import ImageResult, ModelResult, RunResult, load_results

ED = get_edition("ntire2026")


def _images(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:32, 0:32]
    for i in range(n):
        img = np.stack(
            [
                128 + 90 * np.sin(xx / 5 + i + seed),
                128 + 90 * np.cos(yy / 6 + i),
                128 + 40 * np.sin((xx + yy) / 7),
            ],
            -1,
        )
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def test_split_data_from_pairs_and_from_the_edition_layout(tmp_path: Path) -> None:
    assert resolve_split_data(ED, "valid=a,test=b") == {"valid": "a", "test": "b"}
    assert resolve_split_data(ED, "test=b, valid=a") == {"valid": "a", "test": "b"}
    with pytest.raises(SrbenchError, match="names no test split"):
        resolve_split_data(ED, "valid=a")
    with pytest.raises(SrbenchError, match="not SPLIT=PATH"):
        resolve_split_data(ED, "train=a,test=b")
    with pytest.raises(SrbenchError, match="needs --data"):
        resolve_split_data(ED, None)
    for split in ED.splits:
        (tmp_path / f"DIV2K_LSDIR_{split}_HR").mkdir()
    got = resolve_split_data(ED, str(tmp_path))
    assert got == {s: str(tmp_path / f"DIV2K_LSDIR_{s}_HR") for s in ED.splits}
    with pytest.raises(SrbenchError, match="no DIV2K_LSDIR_valid_HR"):
        resolve_split_data(ED, str(tmp_path / "DIV2K_LSDIR_valid_HR"))


def _run(times: dict[str, list[float]], psnr: float) -> RunResult:
    models = []
    for name, ts in times.items():
        m = ModelResult(
            name, name, 4, "ok", params=1000, flops=10**9, activations=10**6, convs=3, psnr_y=psnr
        )
        m.psnr_rgb = psnr
        m.runtime_ms = RuntimeStats.from_samples(ts)
        m.images = [ImageResult(f"{i}", t) for i, t in enumerate(ts)]
        m.memory_mb = 1.0
        models.append(m)
    return RunResult(environment={}, config={}, dataset={"name": "x"}, models=models)


def test_aggregate_is_the_mean_over_runs_of_the_mean_of_split_means() -> None:
    runs = [
        {"valid": _run({"span": [10, 2, 3]}, 27.0), "test": _run({"span": [4, 4]}, 27.1)},
        {"valid": _run({"span": [6, 3, 3]}, 27.0), "test": _run({"span": [2, 2]}, 27.1)},
    ]
    doc = aggregate(ED, {"valid": "v", "test": "t"}, runs, ["span"], 2)
    (row,) = doc["models"]
    per_run = [(5 + 4) / 2, (4 + 2) / 2]  # valid mean (first image included), test mean
    assert row["runtime_runs_ms"] == per_run
    assert row["runtime_ms"] == statistics.fmean(per_run) == 3.75
    assert row["runtime_spread_ms"] == {"mean": 3.75, "std": 0.75, "min": 3.0, "max": 4.5, "n": 2}
    assert row["split_runtime_ms"] == {"valid": 4.5, "test": 3.0}
    assert row["first_image_ms"] == {"valid": 8.0, "test": 3.0}
    assert row["psnr"] == {"valid": 27.0, "test": 27.1}
    txt = challenge_results_txt(doc)
    assert txt.splitlines()[1].split("\t") == [
        "span", "27.00", "27.10", "4.50", "3.00", "3.75", "0.001", "1.00", "1.00", "1.00", "3",
    ]  # fmt: skip


def test_a_model_failing_in_any_run_is_an_error_row() -> None:
    bad = _run({"span": [1.0]}, 27.0)
    bad.models[0].status, bad.models[0].reason, bad.models[0].runtime_ms = "error", "boom", None
    runs = [{"valid": _run({"span": [1.0]}, 27.0), "test": bad}]
    (row,) = aggregate(ED, {"valid": "v", "test": "t"}, runs, ["span"], 1)["models"]
    assert row["error"] == "error on the test split: boom" and "runtime_ms" not in row


def _e2e(tmp_path: Path, isolate: bool) -> Path:
    valid = _images(tmp_path / "valid", 3, 0)
    test = _images(tmp_path / "test", 2, 1)
    out = tmp_path / "out"
    argv = ["run", "--protocol", "ntire2026", "--models", "bicubic", "--data", f"valid={valid},test={test}"]
    argv += ["--runs", "2", "--output", str(out), "--profile-input", "1x3x32x32", "--offline"]
    assert main(argv + ([] if isolate else ["--no-isolate"])) == 0
    return out


def _check_e2e(out: Path) -> None:
    doc = json.loads((out / "challenge.json").read_text())
    assert doc["runs_completed"] == 2 and doc["splits"] == ["valid", "test"]
    rows = {m["name"]: m for m in doc["models"]}
    assert list(rows) == ["span", "bicubic"]  # the edition's baseline was added, first
    # The aggregate is recomputed from the per-run, per-split srbench results files.
    per_run = []
    for k in (1, 2):
        means = [
            load_results(out / f"run{k}" / s).model("bicubic").runtime_ms.mean for s in ("valid", "test")
        ]
        per_run.append((means[0] + means[1]) / 2)
        for s in ("valid", "test"):
            cfg = load_results(out / f"run{k}" / s).config
            assert cfg["warmup"] == 0 and cfg["ntire_compat"] is True
    assert rows["bicubic"]["runtime_runs_ms"] == per_run
    assert rows["bicubic"]["runtime_ms"] == pytest.approx(statistics.fmean(per_run), rel=1e-12)
    assert rows["bicubic"]["psnr"]["valid"] > 30 and rows["bicubic"]["psnr"]["test"] > 30
    score = json.loads((out / "score.json").read_text())
    assert score["baseline"] == {**score["baseline"], "name": "span", "kind": "row"}
    srows = {r["name"]: r for r in score["rows"]}
    assert srows["span"]["score_final"] == pytest.approx(math.exp(2), rel=1e-12)
    assert srows["bicubic"]["eligible"] is True and srows["bicubic"]["score_params"] == 1.0  # exp(0)
    # The challenge-style results.txt reads back through the challenge importer.
    txt = {e.name: e for e in load_entries(out / "results.txt")}
    assert txt["bicubic"].runtime_ms == pytest.approx(rows["bicubic"]["runtime_ms"], abs=0.005)


@pytest.mark.slow
def test_protocol_ntire2026_end_to_end_in_process(tmp_path: Path) -> None:
    _check_e2e(_e2e(tmp_path, isolate=False))


@pytest.mark.slow
def test_protocol_ntire2026_end_to_end_fresh_workers(tmp_path: Path) -> None:
    _check_e2e(_e2e(tmp_path, isolate=True))


def test_bad_runs_and_unknown_protocols_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--models", "bicubic", "--runs", "0"]) == 2
    assert "--runs 0 must be >= 1" in capsys.readouterr().err
    assert main(["run", "--models", "bicubic", "--protocol", "ntire1999", "--data", "valid=a,test=b"]) == 2
    assert (
        "--protocol 'ntire1999' is not known; use one of ntire2024, ntire2025, ntire2026"
        in capsys.readouterr().err
    )


def test_edition_layout_paths_load_as_the_ntire_layout_per_split(tmp_path: Path) -> None:
    from srbench.data.datasets import load_dataset
    from srbench.data.imresize import imresize_uint8

    for split, n in (("valid", 2), ("test", 1)):
        hr_dir = _images(tmp_path / f"DIV2K_LSDIR_{split}_HR", n, 0)
        lr_dir = tmp_path / f"DIV2K_LSDIR_{split}_LR"
        lr_dir.mkdir()
        for p in hr_dir.iterdir():
            lr = imresize_uint8(np.asarray(Image.open(p)), 0.25)
            Image.fromarray(lr).save(lr_dir / f"{p.stem}x4.png")
    paths = resolve_split_data(ED, str(tmp_path))
    for split, n in (("valid", 2), ("test", 1)):
        ds = load_dataset(paths[split], scale=4)
        assert ds.layout == "ntire-esr" and len(ds) == n and ds.name == f"DIV2K_LSDIR_{split}"
