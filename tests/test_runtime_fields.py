"""runtime_ms statistics, first_forward_ms, --repeat samples and the busy-machine warning in a run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from srbench.cli import main
from srbench.measure.timing import forward_budget
from srbench.results.environment import busy_notes
from srbench.results.schema import load_results
from srbench.results.tables import footnotes

FAST = ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--no-isolate"]


def test_repeat_samples_first_forward_and_load_average(tmp_path: Path) -> None:
    assert (
        main(["run", "--models", "bicubic", "--repeat", "3", "--warmup", "0", "-o", str(tmp_path), *FAST])
        == 0
    )
    data = json.loads((tmp_path / "results.json").read_text())
    m = data["models"][0]
    for img in m["images"]:
        # Three undisturbed forwards, or more when some were disturbed (re-measured within
        # the budget of 3 + 3): the figure is the median of the undisturbed ones.
        samples, flags = img["runtime_samples_ms"], img["runtime_disturbed"]
        assert 3 <= len(samples) == len(flags) <= forward_budget(3)
        kept = [s for s, bad in zip(samples, flags, strict=True) if not bad]
        assert img["runtime_ms"] == (float(np.median(kept)) if kept else min(samples))
    # --warmup 0: the first timed forward is the cold one.
    assert m["first_forward_ms"] == m["images"][0]["runtime_samples_ms"][0]
    rt = m["runtime_ms"]
    times = [i["runtime_ms"] for i in m["images"]]
    assert rt["p90"] == pytest.approx(np.percentile(times, 90)) and rt["cv"] == pytest.approx(
        np.std(times) / np.mean(times)
    )
    load = data["environment"]["load_average"]
    assert len(load["before"]) == 3 and len(load["after"]) == 3
    assert isinstance(data["notes"], list)
    row = next(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert float(row["time_p90_ms"]) == rt["p90"] and float(row["first_forward_ms"]) == m["first_forward_ms"]


def test_single_repeat_keeps_no_samples_and_warm_up_is_apart(tmp_path: Path) -> None:
    assert main(["run", "--models", "bicubic", "--warmup", "1", "-o", str(tmp_path), *FAST]) == 0
    run = load_results(tmp_path)
    m = run.models[0]
    # One forward per image unless it was disturbed and measured again.
    assert all(i.runtime_samples_ms is None or i.runtime_disturbed[0] for i in m.images)
    assert all(len(i.runtime_disturbed) == len(i.runtime_samples_ms or [0]) for i in m.images)
    assert m.first_forward_ms is not None and m.runtime_ms is not None and m.runtime_ms.n == 4


def test_busy_machine_is_a_note_in_json_and_table(tmp_path: Path) -> None:
    quiet = {"cpu_count": 4, "load_average": {"before": [0.5, 0.4, 0.3], "after": [2.0, 1.0, 0.5]}}
    assert busy_notes(quiet) == []
    before = {"cpu_count": 4, "load_average": {"before": [3.0, 2.0, 1.0], "after": [2.0, 1.0, 0.5]}}
    after = {"cpu_count": 4, "load_average": {"before": [0.1, 0.1, 0.1], "after": [6.5, 3.0, 1.0]}}
    assert "load average 3.0 before" in busy_notes(before)[0]
    assert "6.5 after" in busy_notes(after)[0]
    assert main(["run", "--models", "bicubic", "--warmup", "0", "-o", str(tmp_path), *FAST]) == 0
    run = load_results(tmp_path)
    run.environment = {**run.environment, **before}
    run.notes = busy_notes(run.environment)
    assert footnotes(run)[0] == run.notes[0]


def test_busy_note_compares_time_per_pixel() -> None:
    from srbench.results.schema import ImageResult, ModelResult
    from srbench.runner.protocol import BUSY_CV, _runtime_summary

    def summary(times: list[float]) -> list[str]:
        m = ModelResult(name="m", arch="m", scale=4, status="ok")
        m.images = [ImageResult(name=f"i{k}", runtime_ms=t) for k, t in enumerate(times)]
        _runtime_summary(m, {"i0": 100, "i1": 400, "i2": 900}, forced_tiling=False)
        return m.notes

    # Times proportional to the pixel count: raw CV is large, per-pixel CV is 0: no note.
    assert summary([1.0, 4.0, 9.0]) == []
    noisy = summary([1.0, 4.0, 9.0 * (1 + 4 * BUSY_CV)])
    assert len(noisy) == 1 and "probably busy" in noisy[0]
