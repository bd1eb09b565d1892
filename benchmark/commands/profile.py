"""``srbench profile``: complexity figures only (no data needed)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.table import Table

from srbench.commands.run import parse_shape, parse_weights
from srbench.console import make_console
from srbench.execution.building import build_model
from srbench.execution.config import RunConfig
from srbench.execution.specs import ModelSpec, parse_model_specs
from srbench.measure.counting import profile_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="params, FLOPs, activations and conv calls of models (no data)",
        description="Count complexity at one input shape (NTIRE: 1x3x256x256).",
    )
    p.add_argument("--models", required=True, help="comma-separated model names or checkpoint paths")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--input", default="1x3x256x256", help="input shape NxCxHxW (default NTIRE's)")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=profile_command)


def profile_specs(specs: list[ModelSpec], config: RunConfig) -> list[dict]:
    """Complexity of each spec as a JSON-ready dict (weights do not change counts)."""
    rows = []
    for spec in specs:
        entry, loaded = build_model(spec, config)
        c = profile_model(loaded.model, tuple(config.profile_input), input_range=entry.input_range)
        rows.append({"name": spec.name, "arch": spec.arch, "scale": config.scale, **asdict(c)})
    return rows


def profile_command(args: argparse.Namespace) -> int:
    weights = parse_weights(args.weights)
    config = RunConfig(scale=args.scale, profile_input=parse_shape(args.input), weights=weights, offline=True)
    specs = parse_model_specs(args.models, weights)
    rows = profile_specs(specs, config)
    if args.json:
        print(json.dumps({"schema": "srbench/1-profile", "models": rows}, indent=2))
        return 0
    table = Table(title=f"complexity at {args.input} (x{args.scale})")
    for col in (
        "Model",
        "Params",
        "FLOPs (fvcore MACs)",
        "Activations",
        "Convs",
        "FlopCounterMode",
        "Unsupported ops",
    ):
        table.add_column(col, justify="left" if col in ("Model", "Unsupported ops") else "right")
    for r in rows:
        unsupported = ", ".join(f"{k}×{v}" for k, v in r["unsupported_ops"].items())
        table.add_row(
            r["name"],
            f"{r['params']:,}",
            f"{r['flops']:,}",
            f"{r['activations']:,}",
            str(r["convs"]),
            f"{r['flops_dispatch']:,}" if r["flops_dispatch"] is not None else "—",
            unsupported or "—",
        )
    make_console().print(table)
    return 0
