"""``srbench report``: merge runs into report.md, report.html and PSNR-vs-cost plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from srbench.console import make_console
from srbench.reporting.report import build_report
from srbench.reporting.results import check_label


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="merge runs into report.md/report.html with plots and claims vs measured",
        description=(
            "Merge one or more runs (several machines or dtypes) into one report. Published "
            "claims come from the references shipped with srbench (or --reference DIR)."
        ),
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
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    labels = [check_label(x) for x in args.label] if args.label else None
    files = build_report(args.inputs, args.output, reference_dir=args.reference, labels=labels)
    console = make_console()
    console.print(f"wrote {files.markdown}", markup=False)
    console.print(f"wrote {files.html}", markup=False)
    for path in files.plots.values():
        console.print(f"wrote {path}", markup=False)
    return 0
