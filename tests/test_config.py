"""The run configuration's sections, what ``config_hash`` covers, and ``run --resume DIR`` alone."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from srbench.cli import main
from srbench.results.config import FIELD_SECTIONS, HASHED_SECTIONS, SECTIONS, RunConfig, hashed_keys
from srbench.results.schema import RunResult, load_results
from srbench.runner.orchestrator import resume_command

#: Where the results schema (and the sentence on what config_hash covers) is documented.
SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"
BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "ci-cpu.json"
FAST = ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--no-isolate", "--warmup", "0"]


def _other_value(value: Any) -> Any:
    """A value of the same kind that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):
        return [*value, 1]
    if isinstance(value, dict):
        return {**value, "x": "y"}
    return "changed" if value != "changed" else "other"


def test_every_field_has_one_section() -> None:
    assert set(FIELD_SECTIONS) == {f.name for f in dataclasses.fields(RunConfig)}
    assert set(FIELD_SECTIONS.values()) <= set(SECTIONS)
    assert set(HASHED_SECTIONS) == {"protocol", "data"}


@pytest.mark.parametrize("key", sorted(FIELD_SECTIONS))
def test_hash_changes_exactly_for_hashed_sections(key: str) -> None:
    """Changing any one field moves config_hash iff its section is hashed: the definition is
    the declaration, with no list of names to forget."""
    base = RunConfig()
    changed = dataclasses.replace(base, **{key: _other_value(getattr(base, key))})
    dataset = {"name": "sample-mini", "images": 4}
    h0 = RunResult({}, base.to_dict(), dataset).config_hash
    h1 = RunResult({}, changed.to_dict(), dataset).config_hash
    assert (h0 != h1) == (FIELD_SECTIONS[key] in HASHED_SECTIONS)


def test_hash_covers_the_dataset_and_unknown_keys() -> None:
    cfg = RunConfig().to_dict()
    a = RunResult({}, cfg, {"name": "x", "images": 4}).config_hash
    assert a != RunResult({}, cfg, {"name": "x", "images": 5}).config_hash
    # A key this version does not know (a newer srbench's protocol option) is hashed.
    assert a != RunResult({}, {**cfg, "backend": "onnx"}, {"name": "x", "images": 4}).config_hash


def test_schema_doc_states_what_config_hash_covers() -> None:
    sentence = next(
        line for line in SCHEMA.read_text().replace("\n", " ").split(". ") if "`config_hash` covers" in line
    )
    covered, _, left_out = sentence.partition("leaves out")
    named = re.findall(r"`(\w+)`", covered)
    assert named[:3] == ["config_hash", "protocol", "data"]
    assert named[3:-1] == hashed_keys() and named[-1] == "dataset"
    not_hashed = [k for k, s in FIELD_SECTIONS.items() if s not in HASHED_SECTIONS]
    assert re.findall(r"`(\w+)`", left_out) == ["execution", "output", *not_hashed]


def test_committed_baseline_reads_back() -> None:
    run = load_results(BASELINE)
    cfg = RunConfig.from_dict(run.config)
    assert cfg.models[0] == "bicubic" and cfg.profile_input == [1, 3, 64, 64] and cfg.data == "sample-mini"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- run --resume DIR alone


@pytest.fixture
def finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run of bicubic and span_tiny at x2 whose span_tiny row was lost (as if interrupted)."""
    monkeypatch.setenv("SRBENCH_OFFLINE", "1")
    out = tmp_path / "run dir"
    assert main(["run", "--models", "bicubic,span_tiny", "--scale", "2", "--output", str(out), *FAST]) == 0
    data = json.loads((out / "results.json").read_text())
    data["models"] = [m for m in data["models"] if m["name"] == "bicubic"]
    (out / "results.json").write_text(json.dumps(data))
    return out


def test_resume_alone_continues_with_the_stored_configuration(
    finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = load_results(finished)
    capsys.readouterr()
    argv = shlex.split(resume_command(finished))
    assert argv[:2] == ["srbench", "run"]
    assert main(argv[1:]) == 0
    err = capsys.readouterr().err
    assert "bicubic: already measured" in err
    after = load_results(finished)
    assert [m.name for m in after.models] == ["bicubic", "span_tiny"]
    assert after.config == before.config and after.config_hash == before.config_hash
    assert after.models[1].scale == 2 and after.models[0].images == before.models[0].images


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--scale", "4"], "scale: stored 2, now 4"),
        (["--profile-input", "1x3x32x32"], "profile_input: stored [1, 3, 64, 64], now [1, 3, 32, 32]"),
        (["--warmup", "2"], "warmup: stored 0, now 2"),
    ],
)
def test_resume_difference_names_key_and_both_values(
    finished: Path, option: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["run", "--resume", str(finished), *option]) == 2
    err = capsys.readouterr().err
    assert named in err and "--force" in err and "Traceback" not in err


def test_models_required_without_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--data", "sample-mini"]) == 2
    assert "name the models: --models" in capsys.readouterr().err


def test_resume_command_quotes_the_folder() -> None:
    assert resume_command(Path("my runs/a")) == "srbench run --resume 'my runs/a'"


def test_given_options_are_recorded_per_parse() -> None:
    from srbench.cli import build_parser

    first = build_parser("run").parse_args(["run", "--scale", "2", "--channels-last", "--weights", "a=b"])
    assert first.given == {"scale", "channels_last", "weights"}
    second = build_parser("run").parse_args(["run", "--resume", "x"])
    assert second.given == {"resume"}
    parser = build_parser("run")
    parser.parse_args(["run", "--seed", "3"])
    assert getattr(parser.parse_args(["run"]), "given", set()) == set()
