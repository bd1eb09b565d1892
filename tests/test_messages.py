"""Messages name the real cause and the real fix (issue 19 case 7)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from srbench.cli import main


def _err_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("srbench: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_list_with_a_pattern_that_matches_nothing_fails(capsys) -> None:
    assert main(["list", "zzz*"]) == 2
    line = _err_line(capsys.readouterr().err)
    assert "'zzz*'" in line and "srbench list" in line


def _run_offline_without_weights(
    tmp_path: Path, monkeypatch, weights_dir: str, *extra: str
) -> tuple[int, dict]:
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", weights_dir)
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = [
        "run",
        "--models",
        "span",
        "--data",
        "sample-mini",
        "--offline",
        "--no-isolate",
        "--output",
        str(out),
    ]
    code = main([*args, *extra])
    return code, json.loads((out / "results.json").read_text())["models"][0]


def test_offline_missing_weights_says_what_where_and_flags_a_mistyped_dir(
    tmp_path: Path, monkeypatch
) -> None:
    code, row = _run_offline_without_weights(tmp_path, monkeypatch, str(tmp_path / "weigths-typo"))
    assert code == 0 and row["status"] == "no-weights"
    reason = row["reason"]
    assert "ntire2024_team38_span_ch28_slim_x4.pth" in reason  # what was looked for
    assert f"SRBENCH_WEIGHTS_DIR={tmp_path / 'weigths-typo'} does not exist" in reason  # where, flagged
    assert str(tmp_path / "cache" / "weights") in reason
    assert "--offline" in reason and "srbench weights fetch span" in reason  # the next command
    assert "no official x4 weights" not in reason  # span has official x4 weights


def test_require_weights_fails_a_run_missing_official_weights(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code, row = _run_offline_without_weights(
        tmp_path, monkeypatch, str(tmp_path / "empty"), "--require-weights"
    )
    assert row["status"] == "no-weights" and code == 1
    assert "--require-weights: span" in capsys.readouterr().err


def test_weights_download_failure_names_the_weights_mirror(tmp_path: Path, monkeypatch, capsys) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SRBENCH_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SRBENCH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("SRBENCH_OFFLINE", raising=False)
    extra = ["--no-progress"] if _fetch_has("--no-progress") else []
    assert main(["weights", "fetch", "span", *extra]) == 2
    line = _err_line(capsys.readouterr().err)
    assert "SRBENCH_WEIGHTS_MIRROR" in line and "SRBENCH_DATA_MIRROR" not in line


def _fetch_has(option: str) -> bool:
    import argparse

    from srbench.cli import build_parser

    parser = build_parser("weights")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    weights = sub.choices["weights"]
    inner = next(a for a in weights._actions if isinstance(a, argparse._SubParsersAction))
    return option in {o for a in inner.choices["fetch"]._actions for o in a.option_strings}


@pytest.mark.parametrize("option", ["--data"])
def test_data_check_accepts_the_option_its_hints_name(tmp_path: Path, option: str, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["data", "check", option, str(tmp_path / "empty")]) in (1, 2)
    assert "unrecognized arguments" not in capsys.readouterr().err
