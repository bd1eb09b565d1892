"""``srbench weights``: list official checkpoints and where they are, fetch them."""

from __future__ import annotations

import argparse

from srbench.commands.options import with_example
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.core.tables import Column, fit_tables
from srbench.models.registry import all_entries, get_entry
from srbench.models.weights import fetch_weights, resolve_weights


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights",
        help="list or fetch official checkpoints",
        **with_example("srbench weights fetch span"),
    )
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.required = True
    ls = wsub.add_parser(
        "list",
        help="model, file, size, sha256 and where it was found",
        **with_example("srbench weights list"),
    )
    ls.set_defaults(func=list_command)
    fetch = wsub.add_parser(
        "fetch",
        help="download official weights into the cache (sha256-verified)",
        **with_example("srbench weights fetch all --scale 4"),
    )
    fetch.add_argument("name", help="a model name, or 'all'")
    fetch.add_argument("--scale", type=int, default=None, help="only this scale (default: every scale)")
    fetch.set_defaults(func=fetch_command)


#: ``srbench weights list``'s columns; at a narrow width the sha256 (kept whole: it is only
#: useful to verify a file) moves to a second table first, then where the file was found.
WEIGHTS_COLUMNS = (
    Column("Model"),
    Column("Scale", "right", keep=6),
    Column("File", keep=5),
    Column("Size (bytes)", "right", keep=4),
    Column("sha256", keep=1),
    Column("Found", keep=2, wrap=True),
)


def weights_rows() -> list[list[str]]:
    """One row of cells per official checkpoint, in :data:`WEIGHTS_COLUMNS` order."""
    rows = []
    for entry in all_entries():
        for spec in entry.weights:
            found = resolve_weights(entry, spec.scale)
            where = f"{found.source}: {found.path}" if found else "missing (srbench weights fetch)"
            size = f"{spec.size_bytes:,}" if spec.size_bytes else "?"
            rows.append([entry.name, f"x{spec.scale}", spec.file_name, size, spec.sha256, where])
    return rows


def weights_tables(rows: list[list[str]], width: int | None) -> list:
    """``srbench weights list`` as rich tables fitting ``width`` (nothing shortened)."""
    return fit_tables("official checkpoints", WEIGHTS_COLUMNS, rows, width)


def list_command(args: argparse.Namespace) -> int:
    console = make_console()
    for table in weights_tables(weights_rows(), console.width):
        console.print(table)
    return 0


def fetch_command(args: argparse.Namespace) -> int:
    entries = all_entries() if args.name == "all" else [get_entry(args.name)]
    console = make_console(stderr=True)
    todo = [(e, s.scale) for e in entries for s in e.weights if args.scale in (None, s.scale)]
    if not todo:
        scale = f" at x{args.scale}" if args.scale else ""
        raise SrbenchError(
            f"'{args.name}' has no official checkpoint{scale} to fetch; see 'srbench weights list'"
        )
    for entry, scale in todo:
        found = resolve_weights(entry, scale) or fetch_weights(entry, scale)
        console.print(f"{entry.name} x{scale}: {found.path} ({found.source}, sha256 {found.sha256[:12]}…)")
    return 0
