"""``srbench diff``: paired comparisons of rows measured on the same images (docs/statistics.md).

``srbench diff RUN_A RUN_B`` compares every model of RUN_B with the same model of RUN_A
(``--models`` keeps only those named); ``srbench diff RUN --models a,b[,c...]`` compares b
(and c, ...) with a inside one run, e.g. ``span`` with ``span@onnxruntime``. Each comparison
is B against baseline A: time ratio B / A, ΔPSNR-Y and ΔSSIM-Y (B − A), each with its 95 %
paired-bootstrap interval and a verdict. Rows measured on different images are refused in
one line naming the first missing image.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from srbench.commands.options import with_example
from srbench.core.errors import SrbenchError
from srbench.results.comparison import Row, RowComparison, compare_rows, comparison_lines, run_tag
from srbench.results.schema import RunResult, load_results
from srbench.results.stats import CONFIDENCE

#: Column widths of the text table (figure, B vs A, interval, verdict): 2 + 15 + 12 + 22 + 19
#: plus three separating spaces = 73 columns, inside an 80-column terminal.
_WIDTHS = (15, 12, 22)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="paired comparison of two rows on the same images: time ratio, ΔPSNR-Y, ΔSSIM-Y, verdicts",
        description=(
            "Compare rows measured on the same images: RUN_B's models against the same models "
            "of RUN_A, or, in one run, the models after the first of --models against the first. "
            "Each figure gets a 95 %% paired-bootstrap interval and a verdict (faster/slower, "
            "better/worse, or not distinguishable); see docs/statistics.md."
        ),
        **with_example(
            "srbench diff runs/before runs/after --models span", "srbench diff runs/one --models rlfn,span"
        ),
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="one or two run folders or results.json files")
    p.add_argument(
        "--models",
        default=None,
        metavar="A,B",
        help="one run: the baseline row then the rows compared with it; two runs: the models to compare",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=diff_command)


@dataclass(frozen=True)
class LoadedRun:
    """A compared run: its results, the path it was read from and its name (label or
    device/dtype, ``#2`` appended when both runs share one)."""

    run: RunResult
    source: Path
    tag: str


def load_runs(paths: list[Path]) -> list[LoadedRun]:
    """Read each run folder or results.json (one-line error when one is missing or not srbench's)."""
    loaded = []
    for p in paths:
        source = p / "results.json" if p.is_dir() else p
        loaded.append((load_results(source), source))
    tags = [run_tag(r) for r, _ in loaded]
    return [
        LoadedRun(run, source, f"{tag} #{i + 1}" if tags.count(tag) > 1 else tag)
        for i, ((run, source), tag) in enumerate(zip(loaded, tags, strict=True))
    ]


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _row(r: LoadedRun, name: str, label: str) -> Row:
    m = r.run.model(name)
    if m is None:
        have = ", ".join(x.name for x in r.run.models) or "none"
        raise SrbenchError(f"--models: {name!r} is not in {r.source} (its rows: {have})")
    return Row(label, m, r.run)


def plan(runs: list[LoadedRun], models: list[str]) -> list[tuple[Row, Row]]:
    """The ``(baseline A, row B)`` pairs ``srbench diff`` compares (see the module docstring)."""
    if len(runs) == 1:
        if len(models) < 2:
            raise SrbenchError(
                "srbench diff with one run compares rows inside it: name the baseline first, "
                "e.g. srbench diff RUN --models span,rlfn"
            )
        (r,) = runs
        base = _row(r, models[0], models[0])
        return [(base, _row(r, name, name)) for name in models[1:]]
    if len(runs) != 2:
        raise SrbenchError(
            f"srbench diff takes one or two runs, got {len(runs)}; e.g. srbench diff RUN_A RUN_B"
        )
    a, b = runs
    names = models or [m.name for m in a.run.models if b.run.model(m.name) is not None]
    if not names:
        raise SrbenchError(
            f"{a.source} and {b.source} share no model name; compare inside one run with "
            "srbench diff RUN --models A,B"
        )
    return [(_row(a, n, f"{n} @ {a.tag}"), _row(b, n, f"{n} @ {b.tag}")) for n in names]


def table_text(comparisons: list[RowComparison]) -> str:
    """The comparisons as plain text, at most 80 columns for row labels up to 78 characters
    (notes are wrapped)."""
    w1, w2, w3 = _WIDTHS
    level = round(CONFIDENCE * 100)
    out = [
        "B against baseline A: time ratio B/A; Δ = B − A",
        f"{level} % paired-bootstrap intervals; definitions: docs/statistics.md",
    ]
    for c in comparisons:
        out += ["", f"B {c.b}", f"A {c.a}  ({c.images} images)"]
        out.append(f"  {'figure':<{w1}} {'B vs A':<{w2}} {f'{level} % interval':<{w3}} verdict")
        for figure, value, span, verdict in comparison_lines(c):
            out.append(f"  {figure:<{w1}} {value:<{w2}} {span:<{w3}} {verdict}")
        for n in c.notes:  # wrapped: the table fits 80 columns, notes included
            out += textwrap.wrap(n, 80, initial_indent="  note: ", subsequent_indent="        ")
    return "\n".join(out) + "\n"


def diff_command(args: argparse.Namespace) -> int:
    runs = load_runs([Path(p) for p in args.runs])
    comparisons = [compare_rows(a, b) for a, b in plan(runs, _names(args.models))]
    if args.json:
        doc = {"schema": "srbench/1-diff", "comparisons": [c.to_dict() for c in comparisons]}
        print(json.dumps(doc, indent=2))
    else:
        print(table_text(comparisons), end="")
    return 0
