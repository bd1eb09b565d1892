"""``srbench report``: merge runs into report.md, report.html and PSNR-vs-cost plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from srbench.commands.options import with_example
from srbench.core.console import make_console
from srbench.reporting.report import build_report
from srbench.results.schema import check_label


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="merge runs into report.md/report.html with plots and claims vs measured",
        description=(
            "Merge one or more runs (several machines or dtypes) into one report. Published "
            "claims come from the references shipped with srbench (or --reference DIR)."
        ),
        **with_example("srbench report runs/cpu runs/gpu --output report"),
    )
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR_OR_JSON", help="run folders or results.json files")
    p.add_argument("--output", type=Path, default=None, help="output folder (default: FIRST_RUN/report)")
    p.add_argument("--reference", type=Path, default=None, metavar="DIR", help="folder of claim JSON files")
    p.add_argument(
        "--label",
        action="append",
        default=None,
        help="name of each run (repeat once per run, in order); default: its srbench run --label "
        "or device/dtype",
    )
    p.add_argument(
        "--edition",
        default=None,
        help="also rank the models by an NTIRE edition's score (ntire2024, ntire2025, ntire2026), "
        "as 'srbench score' does; written to report.md and score.json/.md/.csv",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="ROW",
        help="the row every other row is compared with under Comparisons (default: each row of a "
        "later run against the same model in the first run); with --edition also the score's baseline row",
    )
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    labels = [check_label(x) for x in args.label] if args.label else None
    files = build_report(
        args.inputs, args.output, reference_dir=args.reference, labels=labels, baseline=args.baseline
    )
    console = make_console()
    console.print(f"wrote {files.markdown}", markup=False)
    console.print(f"wrote {files.html}", markup=False)
    for path in files.plots.values():
        console.print(f"wrote {path}", markup=False)
    if args.edition is not None:
        _score_section(args, files.markdown, console)
    return 0


def _score_section(args: argparse.Namespace, report_md: Path, console: Console) -> None:
    """The NTIRE ranking of the same inputs: printed, appended to report.md, score.* beside it."""
    from srbench.core.files import atomic_write_text
    from srbench.ntire import score
    from srbench.ntire.editions import get_edition

    edition = get_edition(args.edition)
    entries = score.load_all(args.inputs)
    ranking = score.score_entries(entries, edition, args.baseline, inputs=[str(i) for i in args.inputs])
    for table in score.rich_tables(ranking, console.width):
        console.print(table)
    section = f"\n## {edition.title} score\n\n" + score.markdown(ranking)
    atomic_write_text(report_md, report_md.read_text().rstrip("\n") + "\n" + section)
    paths = score.write_ranking(ranking, report_md.parent)
    console.print(f"wrote {paths['json']}", markup=False)
