"""``srbench score``: the NTIRE Efficient SR score and ranking of results files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from srbench.commands.options import with_example


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="rank results by an NTIRE Efficient SR edition's score (eligibility gates, Score_Final)",
        description=(
            "Score and rank srbench results.json files, 'srbench run --protocol' folders and the "
            "challenge's own results.json/results.txt against an edition's baseline."
        ),
        **with_example("srbench score srbench-runs/latest --edition ntire2025"),
    )
    p.add_argument("inputs", nargs="+", metavar="RESULTS", help="results.json, results.txt or run folders")
    p.add_argument(
        "--edition",
        default=None,
        help="ntire2024, ntire2025 or ntire2026 (default: the edition a --protocol run "
        "recorded in its challenge.json, else the newest)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="ROW",
        help="the input row used as the baseline (default: the edition's, e.g. 00_EFDN_baseline or efdn; "
        "else the edition's published figures)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (schema srbench/score-1)")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--output", "-o", type=Path, default=None, help="also write score.json/.md/.csv here")
    p.set_defaults(func=score_command)


def score_command(args: argparse.Namespace) -> int:
    from srbench.core.console import make_console
    from srbench.ntire import score
    from srbench.ntire.editions import get_edition

    entries = score.load_all(args.inputs)
    # A --protocol run is scored under the edition it was run for (its challenge.json says which).
    edition = get_edition(score.recorded_edition(entries, args.edition))
    ranking = score.score_entries(entries, edition, args.baseline, inputs=[str(i) for i in args.inputs])
    if args.output is not None:
        paths = score.write_ranking(ranking, args.output)
        make_console(stderr=True).print(f"wrote {paths['json']}, {paths['md'].name}, {paths['csv'].name}")
    if args.json:
        print(json.dumps(ranking.to_dict(), indent=2))
    elif args.markdown:
        print(score.markdown(ranking), end="")
    elif args.csv:
        print(score.csv_text(ranking), end="")
    else:
        console = make_console()
        for table in score.rich_tables(ranking, console.width):
            console.print(table)
        for note in score.footnotes(ranking):
            console.print(f"[dim]{note}", markup=True, highlight=False)
    return 0
