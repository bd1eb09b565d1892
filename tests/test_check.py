"""``srbench check``: exact complexity, toleranced quality, opt-in runtime, baseline updates."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.measure.timing import RuntimeStats
from srbench.reporting import check as C
from srbench.results.schema import (
    ImageResult,
    ModelResult,
    RunResult,
    WeightsInfo,
    atomic_write_text,
    load_results,
    results_json,
)


def _model(name: str, params: int, flops: int, acts: int, convs: int, psnr: float) -> ModelResult:
    return ModelResult(
        name=name,
        arch=name,
        scale=4,
        status="ok",
        weights=WeightsInfo(file=f"{name}.pth", sha256="cd" * 32, source="SRBENCH_WEIGHTS_DIR"),
        params=params,
        flops=flops,
        activations=acts,
        convs=convs,
        complexity_input=[1, 3, 256, 256],
        psnr_y=psnr,
        ssim_y=0.85,
        psnr_rgb=psnr - 1.5,
        runtime_ms=RuntimeStats.from_samples([10.0, 12.0, 14.0]),
        images=[
            ImageResult("astronaut", 10.0, psnr - 0.5, 0.84, psnr - 2.0),
            ImageResult("chelsea", 12.0, psnr + 0.5, 0.86, psnr - 1.0),
        ],
    )


def _run() -> RunResult:
    return RunResult(
        environment={"device": "cpu", "device_name": "Test CPU"},
        config={"scale": 4, "dtype": "fp32"},
        dataset={"name": "sample", "images": 2, "scale": 4},
        models=[
            _model("rlfn", 317_218, 19_674_859_520, 80_045_184, 39, 28.5),
            _model("span", 150_688, 9_833_807_872, 41_680_896, 22, 28.9),
        ],
        created="2026-01-01T00:00:00+00:00",
    )


def _write(path: Path, run: RunResult) -> Path:
    atomic_write_text(path, results_json(run))
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    base = _write(tmp_path / "baseline.json", _run())
    now = _write(tmp_path / "results.json", _run())
    return now, base


def _check(now: Path, base: Path, *extra: str) -> int:
    return main(["check", str(now), "--baseline", str(base), *extra])


# --------------------------------------------------------------------------- pure functions


def test_identical_runs_have_only_ok_findings() -> None:
    findings = C.compare_runs(_run(), _run(), per_image=True, tol=C.Tolerances(time_ratio=0.0))
    assert findings and all(f.verdict == C.OK for f in findings)
    # status, 4 exact, weights, 3 quality, 2 images x 3 quality, time, per model
    assert len(findings) == 2 * (1 + 4 + 1 + 3 + 6 + 1)


def test_flops_off_by_one_is_a_changed_finding() -> None:
    now = _run()
    now.models[1].flops += 1
    bad = C.failures(C.compare_runs(_run(), now))
    assert bad == [C.Finding("span", "flops", 9_833_807_872, 9_833_807_873, 1, C.CHANGED)]


def test_psnr_tolerance_boundary() -> None:
    now = _run()
    now.models[0].psnr_y += 0.001  # exactly the default tolerance: allowed
    assert not C.failures(C.compare_runs(_run(), now))
    now.models[0].psnr_y += 0.0005
    (f,) = C.failures(C.compare_runs(_run(), now))
    assert (f.model, f.metric, f.verdict) == ("rlfn", "psnr_y", C.CHANGED)
    assert f.delta == pytest.approx(0.0015)
    # A gain is as suspicious as a loss for a reproduction harness.
    now.models[0].psnr_y = 28.5 - 0.002
    assert [f.metric for f in C.failures(C.compare_runs(_run(), now))] == ["psnr_y"]


def test_status_ok_to_error_regresses_and_error_to_ok_improves() -> None:
    now = _run()
    now.models[0].status = "error"
    now.models[0].reason = "boom"
    fs = C.compare_runs(_run(), now)
    status = next(f for f in fs if f.metric == "status")
    assert (status.baseline, status.now, status.verdict) == ("ok", "error", C.REGRESSED)
    assert status.failed
    back = next(f for f in C.compare_runs(now, _run()) if f.metric == "status" and f.model == "rlfn")
    assert back.verdict == C.IMPROVED and not back.failed


def test_inf_psnr_strings_compare_equal() -> None:
    base, now = _run(), _run()
    for r in (base, now):
        r.models[0].images[0].psnr_y = "inf"  # as results.json stores +inf
    fs = C.compare_runs(base, now, per_image=True)
    f = next(f for f in fs if f.metric == "psnr_y[astronaut]")
    assert f.verdict == C.OK and f.delta == 0.0


def test_negative_tolerance_is_a_user_error() -> None:
    with pytest.raises(SrbenchError, match="--psnr-tol"):
        C.Tolerances(psnr_db=-1.0)


# --------------------------------------------------------------------------- CLI


def test_cli_identical_passes(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    now, base = files
    before = base.read_bytes()
    assert _check(now, base) == 0
    assert "PASS" in capsys.readouterr().out
    assert base.read_bytes() == before  # never written without --update


def test_cli_flops_plus_one_fails(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    now, base = files
    run = load_results(now)
    run.models[0].flops += 1
    _write(now, run)
    assert _check(now, base) == 1
    out = capsys.readouterr().out
    assert "flops" in out and "FAIL" in out


def test_cli_psnr_beyond_tolerance_fails(files: tuple[Path, Path]) -> None:
    now, base = files
    run = load_results(now)
    run.models[1].psnr_y += 0.01
    _write(now, run)
    assert _check(now, base) == 1
    assert _check(now, base, "--psnr-tol", "0.02") == 0


def test_cli_per_image_change_caught_only_with_per_image(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    now, base = files
    run = load_results(now)
    # Opposite moves on two images keep the mean (the model-level figure) unchanged.
    run.models[0].images[0].psnr_y += 0.05
    run.models[0].images[1].psnr_y -= 0.05
    _write(now, run)
    assert _check(now, base) == 0
    capsys.readouterr()
    assert _check(now, base, "--per-image") == 1
    assert "psnr_y[astronaut]" in capsys.readouterr().out  # not eaten as rich markup
    fs = C.compare_runs(load_results(base), run, per_image=True)
    assert sorted(f.metric for f in C.failures(fs)) == ["psnr_y[astronaut]", "psnr_y[chelsea]"]


def test_cli_runtime_ignored_unless_time_tol(files: tuple[Path, Path]) -> None:
    now, base = files
    run = load_results(now)
    run.models[0].runtime_ms = RuntimeStats.from_samples([20.0, 24.0, 28.0])  # median 12 -> 24 ms
    _write(now, run)
    assert _check(now, base) == 0
    assert _check(now, base, "--time-tol", "0.25") == 1
    assert _check(now, base, "--time-tol", "1.0") == 0  # ratio 2.0 = 1 + 1.0: allowed
    (f,) = C.failures(C.compare_runs(load_results(base), run, C.Tolerances(time_ratio=0.25)))
    assert (f.metric, f.baseline, f.now, f.verdict) == ("time_median_ms", 12.0, 24.0, C.SLOWER)


def test_cli_added_model_is_info_removed_model_fails(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    now, base = files
    run = load_results(now)
    extra = copy.deepcopy(run.models[1])
    extra.name = "span_tiny"
    run.models.append(extra)
    _write(now, run)
    assert _check(now, base) == 0
    assert "added" in capsys.readouterr().out

    run.models = [m for m in run.models if m.name != "rlfn"]
    _write(now, run)
    assert _check(now, base) == 1
    assert "removed" in capsys.readouterr().out
    verdicts = {(f.model, f.verdict) for f in C.compare_runs(load_results(base), run) if f.metric == "model"}
    assert verdicts == {("rlfn", C.REMOVED), ("span_tiny", C.ADDED)}


def test_cli_update_rewrites_baseline_then_passes(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    now, base = files
    run = load_results(now)
    run.models[0].convs = 40
    _write(now, run)
    assert _check(now, base) == 1
    capsys.readouterr()
    assert _check(now, base, "--update") == 0
    out = capsys.readouterr().out
    assert "convs" in out and "updated baseline" in out
    assert json.loads(base.read_text())["models"][0]["convs"] == 40
    assert not list(base.parent.glob(".*.tmp"))  # atomic write left no temporary
    assert _check(now, base) == 0


def test_cli_update_creates_missing_baseline(files: tuple[Path, Path]) -> None:
    now, _ = files
    fresh = now.parent / "baselines" / "new.json"
    assert _check(now, fresh) == 2  # missing baseline without --update: user error
    assert not fresh.exists()
    assert _check(now, fresh, "--update") == 0
    assert _check(now, fresh) == 0


def test_cli_unreadable_files_are_one_line_errors(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    now, base = files
    bad = now.parent / "bad.json"
    bad.write_text("{not json")
    assert _check(bad, base) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("srbench: error:") and "bad.json" in err and "\n" not in err
    assert _check(now.parent / "missing.json", base) == 2
    assert "missing.json" in capsys.readouterr().err
