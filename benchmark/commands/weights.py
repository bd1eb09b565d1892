"""``srbench weights``: list official checkpoints and where they are, fetch them."""

from __future__ import annotations

import argparse

from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.models.registry import all_entries, get_entry
from srbench.models.weights import fetch_weights, resolve_weights


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list or fetch official checkpoints")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.required = True
    ls = wsub.add_parser("list", help="model, file, size, sha256 and where it was found")
    ls.set_defaults(func=list_command)
    fetch = wsub.add_parser("fetch", help="download official weights into the cache (sha256-verified)")
    fetch.add_argument("name", help="a model name, or 'all'")
    fetch.add_argument("--scale", type=int, default=None, help="only this scale (default: every scale)")
    fetch.set_defaults(func=fetch_command)


def list_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    table = Table(title="official checkpoints")
    for col in ("Model", "Scale", "File", "Size (bytes)", "sha256", "Found"):
        # A sha256 is only useful whole (to verify a file): it keeps its 64 characters and the
        # file and path columns fold instead.
        table.add_column(
            col,
            justify="right" if col in ("Scale", "Size (bytes)") else "left",
            min_width=64 if col == "sha256" else None,
            no_wrap=col == "sha256",
            overflow="fold",
        )
    for entry in all_entries():
        for spec in entry.weights:
            found = resolve_weights(entry, spec.scale)
            where = f"{found.source}: {found.path}" if found else "missing (srbench weights fetch)"
            size = f"{spec.size_bytes:,}" if spec.size_bytes else "?"
            table.add_row(entry.name, f"x{spec.scale}", spec.file_name, size, spec.sha256, where)
    make_console().print(table)
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
