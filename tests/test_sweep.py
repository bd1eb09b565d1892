"""srbench sweep: the grid, sweep files, merging, hardware warnings and the local engine."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import srbench_test_models

from srbench.cli import main
from srbench.commands.sweep import build_sweep_plan
from srbench.core.errors import SrbenchError
from srbench.measure.timing import RuntimeStats
from srbench.reporting.report import build_report
from srbench.results.hardware import mixed_hardware
from srbench.results.io import write_results
from srbench.results.schema import ModelResult, load_results
from srbench.runner.launchers.local import LocalEngine
from srbench.runner.sweep import CellOutcome, cell_record, merged_run, read_sweep_file, run_sweep

FAST = {"data": "sample-mini", "profile_input": "1x3x64x64", "warmup": 1}


def _plan(**options):
    return build_sweep_plan({**FAST, **options})


def test_grid_is_models_x_data_x_dtypes_x_runs_run_major() -> None:
    plan = _plan(models="bicubic,test_raise", dtype="fp32,bf16", runs=3)
    assert len(plan.cells) == 2 * 2 * 3
    # Run-major: every cell of run 1 before any of run 2.
    assert [c.run for c in plan.cells] == [1] * 4 + [2] * 4 + [3] * 4
    assert [(c.spec.name, c.dtype) for c in plan.cells[:4]] == [
        ("bicubic", "fp32"),
        ("test_raise", "fp32"),
        ("bicubic", "bf16"),
        ("test_raise", "bf16"),
    ]
    keys = [c.key for c in plan.cells]
    assert len(set(keys)) == len(keys)
    # Keys depend on the config, not on the plan object: the same grid gives the same keys.
    assert keys == [c.key for c in _plan(models="bicubic,test_raise", dtype="fp32,bf16", runs=3).cells]
    assert keys[0] != _plan(models="bicubic", dtype="fp32", runs=1, warmup=2).cells[0].key
    assert plan.cells[0].config.models == ["bicubic"] and plan.cells[2].config.dtype == "bf16"
    assert plan.row_label(plan.cells[2]) == "bicubic @ bf16"
    assert _plan(models="bicubic").row_label(_plan(models="bicubic").cells[0]) == "bicubic"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"models": "bicubic", "dtype": "fp8"}, "--dtype fp8"),
        ({"models": "bicubic", "runs": 0}, "--runs must be at least 1"),
        ({"models": "bicubic,bicubic"}, "more than once"),
        ({"models": "bicubic", "warmpu": 3}, "unknown option 'warmpu'"),
        ({"models": "bicubic", "data": "/nonexistent/folder"}, "/nonexistent/folder"),
        ({"models": ""}, "name the models"),
    ],
)
def test_bad_sweep_options_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(SrbenchError, match=message.replace("(", r"\(")):
        build_sweep_plan({**FAST, **options})


def test_sweep_files_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('models = ["bicubic", "test_raise"]\ndtype = "fp32,bf16"\nruns = 5\n[run]\nwarmup = 0\n')
    doc = read_sweep_file(toml)
    assert doc == {"models": ["bicubic", "test_raise"], "dtype": "fp32,bf16", "runs": 5, "warmup": 0}
    plan = build_sweep_plan({**FAST, **doc})
    assert len(plan.cells) == 20 and plan.base.warmup == 0
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("models: [bicubic]\nprofile-input: [1, 3, 64, 64]\n")
    pytest.importorskip("yaml")
    assert read_sweep_file(yaml_file) == {"models": ["bicubic"], "profile_input": [1, 3, 64, 64]}
    assert build_sweep_plan({**read_sweep_file(yaml_file), "data": "sample-mini"}).base.profile_input == [
        1,
        3,
        64,
        64,
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [\n")
    with pytest.raises(SrbenchError, match="does not parse"):
        read_sweep_file(bad)


def _outcome(cell, median: float, device_name: str = "GPU A", driver: str = "550") -> CellOutcome:
    result = ModelResult(
        name=cell.spec.name,
        arch=cell.spec.arch,
        scale=4,
        status="ok",
        psnr_y=30.0,
        flops=10,
        params=5,
        runtime_ms=RuntimeStats(mean=median + 1, median=median, std=0.5, min=median - 1, max=median + 2, n=4),
    )
    env = {"device_name": device_name, "gpu": {"driver": driver}}
    return CellOutcome(
        cell.key, result.to_dict(), env, cell.config.to_dict(), "n1", "h1", "cuda:0", None, 1.0
    )


def test_merged_row_of_several_runs_summarises_the_runs_headline_times() -> None:
    plan = _plan(models="bicubic", runs=3)
    medians = [10.0, 12.0, 17.0]
    records = {c.key: cell_record(c, _outcome(c, m)) for c, m in zip(plan.cells, medians)}
    run = merged_run(plan, records, {"engine": "test"})
    (row,) = run.models
    assert row.name == "bicubic" and row.psnr_y == 30.0
    assert row.runtime_ms.n == 3
    assert row.runtime_ms.median == 12.0
    assert row.runtime_ms.mean == pytest.approx(13.0)
    assert row.runtime_ms.std == pytest.approx(statistics.pstdev(medians))
    assert (row.runtime_ms.min, row.runtime_ms.max) == (10.0, 17.0)
    assert [r["run"] for r in row.cell["runs"]] == [1, 2, 3]
    assert all(r["node"] == "n1" and r["device"] == "cuda:0" for r in row.cell["runs"])
    assert mixed_hardware(run) == []
    # One run: the row is that run's result unchanged.
    one = merged_run(plan, {plan.cells[0].key: records[plan.cells[0].key]}, {})
    assert one.models[0].runtime_ms.median == 10.0 and one.models[0].runtime_ms.n == 4


def test_rows_of_one_table_on_different_gpus_or_drivers_warn(tmp_path: Path) -> None:
    plan = _plan(models="bicubic,test_raise", runs=2)
    kinds = [("GPU A", "550"), ("GPU A", "550"), ("GPU A", "550"), ("GPU A", "560")]
    records = {c.key: cell_record(c, _outcome(c, 5.0, *k)) for c, k in zip(plan.cells, kinds)}
    run = merged_run(plan, records, {})
    (warning,) = mixed_hardware(run)
    assert "GPU A (driver 550)" in warning and "GPU A (driver 560)" in warning
    write_results(run, tmp_path / "sweep")
    files = build_report([tmp_path / "sweep"], tmp_path / "report")
    assert "driver 560" in files.markdown.read_text()
    # The merged file is a normal srbench/1 results file, cell facts included.
    again = load_results(tmp_path / "sweep")
    assert again.models[1].cell["runs"][1]["driver"] == "560"


@pytest.mark.slow
def test_local_sweep_merges_errors_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(models="bicubic,test_raise", dtype="fp32,bf16", runs=2)
    out = tmp_path / "sweep"
    engine = LocalEngine([None], out / ".images", setup=srbench_test_models.register)
    summary = run_sweep(plan, out, engine)
    assert (summary.measured, summary.failed, summary.interrupted) == (8, 4, False)
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert set(cells) == {c.key for c in plan.cells}
    run = load_results(out)
    assert [m.name for m in run.models] == [
        "bicubic @ fp32",
        "test_raise @ fp32",
        "bicubic @ bf16",
        "test_raise @ bf16",
    ]
    assert run.config["dtype"] == "fp32,bf16"
    raise_row = run.models[1]
    assert raise_row.status == "error" and "deliberate failure" in raise_row.reason
    row = run.models[0]
    per_run = [
        cells[c.key]["models"][0]["runtime_ms"]["median"] for c in plan.cells if c.spec.name == "bicubic"
    ]
    per_run = per_run[:1] + per_run[2:3]  # the fp32 cells: runs 1 and 2
    assert row.runtime_ms.n == 2 and row.runtime_ms.median == pytest.approx(statistics.median(per_run))
    assert row.cell["device"] == "cpu" and row.cell["node"]
    before = {
        k: (out / "cells" / f"{k}.json").read_bytes()
        for k in cells
        if cells[k]["models"][0]["status"] == "ok"
    }
    assert len(before) == 4

    again = run_sweep(plan, out, engine, resume=True)
    assert (again.skipped, again.measured, again.failed) == (4, 4, 4)
    assert all((out / "cells" / f"{k}.json").read_bytes() == v for k, v in before.items())
    engine.shutdown()
    assert not (out / ".images").exists()


@pytest.mark.slow
def test_sweep_cell_equals_srbench_run(tmp_path: Path) -> None:
    common = ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--warmup", "1"]
    assert main(["sweep", "--models", "bicubic", *common, "-o", str(tmp_path / "s")]) == 0
    assert main(["run", "--models", "bicubic", *common, "-o", str(tmp_path / "r")]) == 0
    swept, ran = load_results(tmp_path / "s"), load_results(tmp_path / "r")
    assert swept.config_hash == ran.config_hash
    (s,), (r,) = swept.models, ran.models
    assert (s.psnr_y, s.ssim_y, s.psnr_rgb, s.flops, s.params, s.activations, s.convs) == (
        r.psnr_y,
        r.ssim_y,
        r.psnr_rgb,
        r.flops,
        r.params,
        r.activations,
        r.convs,
    )
    assert [i.sr_sha256 for i in s.images] == [i.sr_sha256 for i in r.images]
    assert s.cell["runs"][0]["device"] == "cpu"


@pytest.mark.slow
def test_ctrl_c_keeps_finished_cells_and_resume_measures_the_rest(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "SRBENCH_PLUGINS": "srbench_test_models"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tests), env.get("PYTHONPATH")]))
    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "srbench", "sweep", "--models", "bicubic,test_slow", "--runs", "2"]
    args += ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--warmup", "1"]
    proc = subprocess.Popen([*args, "-o", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    cells = out / "cells"
    # The first cell (bicubic, run 1) finishes in a second; test_slow then takes ~3 s.
    while proc.poll() is None and not (cells.is_dir() and any(cells.glob("*.json"))):
        time.sleep(0.05)  # polling for the file, not waiting on a guess
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    kept = sorted(p.name for p in cells.glob("*.json"))
    assert 1 <= len(kept) < 4
    assert len(load_results(out).models) >= 1  # the merged file holds what finished
    resumed = subprocess.run([*args, "--resume", str(out)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} of 4 cells already measured" in resumed.stderr
    assert len(list(cells.glob("*.json"))) == 4


def test_score_reads_a_merged_sweep_and_shows_the_run_spread(tmp_path: Path, capsys) -> None:
    plan = _plan(models="bicubic,test_raise", runs=3)
    medians = [10.0, 4.0, 12.0, 4.0, 17.0, 4.0]  # run-major: bicubic, test_raise per run
    records = {c.key: cell_record(c, _outcome(c, m)) for c, m in zip(plan.cells, medians)}
    write_results(merged_run(plan, records, {}), tmp_path / "sweep")
    assert main(["score", str(tmp_path / "sweep"), "--markdown", "--baseline", "test_raise"]) == 0
    out = capsys.readouterr().out
    # bicubic: median of the runs' medians 12.000, population std over the runs.
    assert f"12.000 ± {statistics.pstdev([10.0, 12.0, 17.0]):.3f}" in out
    assert "4.000 ± 0.000" in out


def test_dataset_is_decoded_once_per_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srbench.data.cache import ImageCache
    from srbench.runner.sweep import node_images

    builds = []
    real_build = ImageCache.build.__func__

    def counting_build(cls, dataset, root=None):
        builds.append(root)
        return real_build(cls, dataset, root)

    monkeypatch.setattr(ImageCache, "build", classmethod(counting_build))
    plan = _plan(models="bicubic,test_raise", dtype="fp32,bf16")
    caches = [node_images(c.config, tmp_path / "node") for c in plan.cells]
    assert len(builds) == 1  # four cells, one decode
    assert len({c.root for c in caches}) == 1 and len(caches[0]) == 4
    assert [p.name for p in (tmp_path / "node").iterdir() if p.is_dir()] == [caches[0].root.name]


def test_local_devices_must_differ() -> None:
    from srbench.commands.sweep import make_engine

    plan = _plan(models="bicubic")
    with pytest.raises(SrbenchError, match="more than once"):
        make_engine({"devices": "cpu,cpu:0"}, Path("unused"), plan)
    with pytest.raises(SrbenchError, match="--engine ray only"):
        make_engine({"retries": 3}, Path("unused"), plan)


def test_ray_task_module_and_forkserver_start_import_no_torch() -> None:
    # A Ray cell starts the forkserver before torch is imported in the Ray worker, so that
    # the server's imports and the worker's overlap: what the worker imports to find the task
    # function, and the server start itself, must not pull torch in.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import srbench.runner.launchers.ray_engine as r\n"
        "from srbench.runner.forkserver import prestart\n"
        "assert callable(r._ray_cell)\n"
        "print(sorted(m for m in ('torch', 'numpy', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
