"""``srbench list``: registered models, their scales, params, whether weights are found, and
where each came from (``builtin``, ``plugin MODULE``, ``entry point NAME (DIST)``, ...)."""

from __future__ import annotations

import argparse

from rich.table import Table

from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.measure.counting import count_params
from srbench.models.registry import get_entry, list_models
from srbench.models.weights import resolve_weights


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="registered models, scales, params, weights found or not")
    p.add_argument("pattern", nargs="?", default="*", help="shell wildcard, e.g. 'span*'")
    p.add_argument("--scale", type=int, default=4, help="scale for params and weights (default 4)")
    p.set_defaults(func=list_command)


def list_command(args: argparse.Namespace) -> int:
    table = Table(title=f"srbench models (params at x{args.scale})")
    for col in ("Model", "Scales", "Input", "Params", "Weights", "From", "Description"):
        table.add_column(col, justify="right" if col == "Params" else "left")
    names = list_models(args.pattern)
    if not names:
        raise SrbenchError(
            f"no registered model matches {args.pattern!r}; run 'srbench list' to see them all "
            "(patterns are shell wildcards, e.g. 'span*')"
        )
    for name in names:
        entry = get_entry(name)
        if args.scale in entry.scales:
            params = f"{count_params(entry.build(scale=args.scale)):,}"
            found = resolve_weights(entry, args.scale)
            if found is not None:
                weights = f"{found.path.name} ({found.source})"
            elif entry.weights_for(args.scale) is not None:
                weights = f"missing: {entry.weights_for(args.scale).file_name}"
            else:
                weights = "none official" if entry.has_trained_weights else "none exist"
        else:
            params, weights = "—", "—"
        rng = "[0,255]" if entry.input_range == 255.0 else "[0,1]"
        scales = ",".join(f"x{s}" for s in entry.scales)
        table.add_row(name, scales, rng, params, weights, entry.origin, entry.description)
    make_console().print(table)
    return 0
