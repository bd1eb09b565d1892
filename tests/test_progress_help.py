"""Progress that fits the output (a bar on a terminal, lines elsewhere, none with --quiet)
and help a person can read (run's argument groups, an example in every subcommand's help)."""

from __future__ import annotations

import argparse
import io

import pytest
from rich.console import Console

from srbench.cli import build_parser, main
from srbench.commands import COMMAND_SUMMARIES
from srbench.core.progress import LineProgress, model_progress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_line_progress_every_n_images_with_elapsed_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    p = LineProgress(out, models=2, every=10, clock=clock)
    p.start_model("span", 25)
    for done in range(1, 26):
        clock.t += 2.0  # 2 s per image
        p.update(done)
    p.end_model("ok")
    lines = out.getvalue().splitlines()
    assert lines == [
        "srbench: [1/2] span: started (25 images)",
        "srbench: [1/2] span: 10/25 images, 20.0 s, ETA 30.0 s",
        "srbench: [1/2] span: 20/25 images, 40.0 s, ETA 10.0 s",
        "srbench: [1/2] span: 25/25 images, 50.0 s, ETA 0.0 s",
        "srbench: [1/2] span: ok in 50.0 s",
    ]


@pytest.mark.parametrize(("mode", "lines"), [("auto", True), ("lines", True), ("none", False)])
def test_a_non_terminal_gets_lines_and_quiet_gets_nothing(mode: str, lines: bool) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with model_progress(console, mode, 1) as (shown, _say):
        shown.start_model("rlfn", 3)
        shown.update(3)
        shown.end_model("ok")
    text = out.getvalue()
    assert ("srbench: [1/1] rlfn: 3/3 images" in text) is lines
    assert (text == "") is (not lines)


def test_a_terminal_gets_the_bar_not_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with model_progress(console, "auto", 1) as (shown, _say):
        shown.start_model("rlfn", 3)
        shown.update(3)
    text = out.getvalue()
    assert "rlfn" in text and "3/3" in text and "srbench: [1/1]" not in text


def test_run_quiet_prints_no_progress(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--models", "bicubic", "--data", "sample-mini", "--no-isolate", "--device", "cpu"]
    assert main([*args, "--output", str(tmp_path / "q"), "--quiet"]) == 0
    quiet = capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "v")]) == 0
    loud = capsys.readouterr().err
    assert "images," not in quiet and "srbench: [1/1] bicubic: started" in loud and "ETA" in loud


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_run_help_in_groups_with_three_examples(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["run"], capsys)
    heads = ["what to measure:", "data:", "device and precision:", "backend:", "execution:", "output:"]
    positions = [text.index(f"\n{h}\n") for h in heads]
    assert positions == sorted(positions)
    examples = text[text.index("Examples:") :].splitlines()[1:]
    assert len([e for e in examples if e.startswith("  srbench run ")]) == 3
    assert text.rstrip().splitlines()[-1].startswith("  srbench run ")  # the help ends with them


def _subcommands(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append([*prefix, name])
                found.extend(_subcommands(sub, [*prefix, name]))
    return found


@pytest.mark.parametrize("command", [summary[0] for summary in COMMAND_SUMMARIES.values()])
def test_every_subcommand_help_ends_with_an_example(command: str, capsys) -> None:
    for argv in [[command], *_subcommands(build_parser(command), [])[1:]]:
        if argv[0] != command:
            continue
        text = _help(argv, capsys)
        assert "Example" in text, argv
        assert text.rstrip().splitlines()[-1].startswith("  srbench "), argv


def test_sweep_progress_one_line_per_cell_with_eta() -> None:
    from srbench.core.progress import count_progress

    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=False)
    with count_progress(console, "auto", 4, "sweep", clock=clock) as (advance, _say):
        for cell in ("span fp32", "span bf16"):
            clock.t += 30.0
            advance(cell)
    assert out.getvalue().splitlines() == [
        "srbench: sweep 1/4 span fp32: 30.0 s, ETA 90.0 s",
        "srbench: sweep 2/4 span bf16: 60.0 s, ETA 60.0 s",
    ]
    quiet = Console(file=io.StringIO(), force_terminal=False)
    with count_progress(quiet, "none", 4, "sweep") as (advance, _say):
        advance("x")
    assert quiet.file.getvalue() == ""
