"""``srbench list``: registered models, their scales, params, whether weights are found, and
where each came from (``builtin``, ``plugin MODULE``, ``entry point NAME (DIST)``, ...)."""

from __future__ import annotations

import argparse
import json

from srbench.commands.options import with_example
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.core.tables import Column, fit_tables
from srbench.measure.counting import count_params
from srbench.models.registry import get_entry, list_models
from srbench.models.weights import resolve_weights


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="registered models, scales, params, weights found or not",
        **with_example("srbench list 'span*' --scale 4"),
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell wildcard, e.g. 'span*'")
    p.add_argument("--scale", type=int, default=4, help="scale for params and weights (default 4)")
    p.add_argument("--json", action="store_true", help="print the models as JSON (every field, no table)")
    p.set_defaults(func=list_command)


#: ``srbench list``'s columns (the first is the key); at a narrow width the lowest ``keep``
#: are left out, the caption pointing at ``srbench list --json``, so every model is one line.
LIST_COLUMNS = (
    Column("Model"),
    Column("Scales", keep=5),
    Column("Input", keep=3),
    Column("Params", "right", keep=6),
    Column("Weights", keep=4),
    Column("From", keep=2),
    Column("Description", keep=1),
)


def model_rows(pattern: str, scale: int) -> list[dict]:
    """One dict per registered model matching ``pattern`` (``list --json``'s ``models``):
    name, scales, input range, params at ``scale`` (None when the model lacks it), weights
    found (``found``: file name and source, or None; ``official``: the file expected),
    origin and description."""
    names = list_models(pattern)
    if not names:
        raise SrbenchError(
            f"no registered model matches {pattern!r}; run 'srbench list' to see them all "
            "(patterns are shell wildcards, e.g. 'span*')"
        )
    out = []
    for name in names:
        entry = get_entry(name)
        row: dict = {
            "name": name,
            "scales": list(entry.scales),
            "input_range": 255 if entry.input_range == 255.0 else 1,
            "params": None,
            "weights": None,
            "weights_source": None,
            "official_weights": None,
            "has_trained_weights": entry.has_trained_weights,
            "origin": entry.origin,
            "description": entry.description,
        }
        if scale in entry.scales:
            row["params"] = count_params(entry.build(scale=scale))
            found = resolve_weights(entry, scale)
            if found is not None:
                row["weights"], row["weights_source"] = str(found.path), found.source
            official = entry.weights_for(scale)
            row["official_weights"] = official.file_name if official is not None else None
        out.append(row)
    return out


def _weights_cell(row: dict) -> str:
    if row["params"] is None:
        return "—"
    # Where the file was found, not its name (that is in 'srbench weights list' and --json):
    # the cell stays short enough for one line per model at 80 columns.
    if row["weights"] is not None:
        return f"found ({row['weights_source']})"
    if row["official_weights"] is not None:
        return "missing (srbench weights fetch)"
    return "none official" if row["has_trained_weights"] else "none exist"


def list_tables(rows: list[dict], scale: int, width: int | None) -> list:
    """``srbench list`` as rich tables fitting ``width`` (one line per model)."""
    cells = [
        [
            r["name"],
            ",".join(f"x{s}" for s in r["scales"]),
            "[0,255]" if r["input_range"] == 255 else "[0,1]",
            "—" if r["params"] is None else f"{r['params']:,}",
            _weights_cell(r),
            r["origin"],
            r["description"],
        ]
        for r in rows
    ]
    return fit_tables(
        f"srbench models (params at x{scale})",
        LIST_COLUMNS,
        cells,
        width,
        overflow="note",
        elsewhere="srbench list --json",
    )


def list_command(args: argparse.Namespace) -> int:
    rows = model_rows(args.pattern, args.scale)
    if args.json:
        print(json.dumps({"schema": "srbench/1-models", "scale": args.scale, "models": rows}, indent=2))
        return 0
    console = make_console()
    for table in list_tables(rows, args.scale, console.width):
        console.print(table)
    return 0
