"""``srbench profile``: complexity figures only (no data needed)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import asdict
from typing import Any

from rich.table import Table

from srbench.commands.options import (
    add_model_options,
    add_models_option,
    add_recount_option,
    add_scale_option,
    add_weights_option,
    model_tokens,
    parse_shape,
    parse_weights,
    parse_weights_keys,
    with_example,
)
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError, cause
from srbench.core.tables import Column, fit_tables
from srbench.measure.counting import complexity_breakdown
from srbench.models.specs import ModelSpec
from srbench.runner.building import build_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="params, FLOPs, activations and conv calls of models (no data)",
        description="Count complexity at one input shape (NTIRE: 1x3x256x256).",
        **with_example("srbench profile --models span,rlfn --breakdown"),
    )
    add_models_option(p)
    add_scale_option(p)
    p.add_argument(
        "--input",
        "--profile-input",  # run's name for the same shape, so either spelling works here
        dest="input",
        default="1x3x256x256",
        help="input shape NxCxHxW (default NTIRE's)",
    )
    add_weights_option(p)
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also print where the counts come from: per module (to --depth) and per operator",
    )
    p.add_argument("--depth", type=int, default=2, help="module nesting shown by --breakdown (default 2)")
    add_recount_option(p)
    p.set_defaults(func=profile_command)


def profile_specs(
    specs: list[ModelSpec],
    *,
    scale: int,
    input_shape: list[int],
    breakdown_depth: int | None = None,
    recount: bool = False,
    progress: bool = False,
) -> list[dict]:
    """Complexity of each spec at ``input_shape`` as a JSON-ready dict (weights do not change
    counts, so none is downloaded); with ``breakdown_depth`` also its per-module/per-operator
    breakdown under ``"breakdown"``.

    Counts come from the complexity cache when present (``"from_cache": true``), else are
    counted and cached; ``recount`` counts afresh. ``progress`` shows a bar on stderr naming
    the model being counted (an attention model takes tens of seconds on a CPU).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    rows = []
    bar = Progress(
        TextColumn("counting {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=make_console(stderr=True),
        transient=True,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("", total=len(specs))
        for spec in specs:
            bar.update(task, description=spec.name)
            # Team code may print: stdout carries only srbench's table/JSON, so the model's own
            # output goes to stderr. An NTIRE team's failure is its row's error, not the
            # command's (one team never stops a folder); anything else stays a one-line error.
            lenient = spec.code is not None and spec.code.ntire
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    row = _profile_one(spec, scale, input_shape, breakdown_depth, recount)
            except SrbenchError as exc:
                if not lenient:
                    raise
                row = {"name": spec.name, "arch": spec.arch, "scale": scale, "error": str(exc)}
            except Exception as exc:  # the team's code raised while building or counting
                if not lenient:
                    raise
                row = {
                    "name": spec.name,
                    "arch": spec.arch,
                    "scale": scale,
                    "error": f"{type(exc).__name__}: {cause(exc)}",
                }
            rows.append(row)
            bar.advance(task)
    return rows


def _profile_one(
    spec: Any, scale: int, input_shape: list[int], breakdown_depth: int | None, recount: bool
) -> dict[str, Any]:
    """One row of :func:`profile_specs` (raises for a model that cannot be built or counted)."""
    import torch

    from srbench.measure.complexity_cache import build_arguments, cached_profile
    from srbench.runner.failures import model_call
    from srbench.runner.protocol import count_onnx_file

    if spec.onnx is not None:
        c = count_onnx_file(spec.onnx.path, tuple(input_shape), static_hw=spec.onnx.static_hw)
        return {"name": spec.name, "arch": spec.arch, "scale": scale, **asdict(c), "from_cache": False}
    entry, loaded = build_model(spec, scale=scale, offline=True)
    shape = tuple(input_shape)
    n, ch = shape[0], shape[1]

    def probe(side: int, model=loaded.model, n=n, ch=ch) -> object:
        with torch.inference_mode():
            return model(torch.zeros(n, ch, side, side))

    what = "the profile input " + "x".join(map(str, shape))
    side_fix = "pass a larger --input (NxCxHxW)"
    with model_call(spec.name, what, size=(shape[3], shape[2]), probe=probe, fix=side_fix):
        c, hit = cached_profile(
            loaded.model,
            shape,
            arch=spec.arch,
            build_args=build_arguments(entry, spec),
            scale=scale,
            input_range=entry.input_range,
            recount=recount,
        )
        row = {"name": spec.name, "arch": spec.arch, "scale": scale, **asdict(c), "from_cache": hit}
        row["device_shim"] = loaded.device_shim
        row["notes"] = list(loaded.notes)
        if breakdown_depth is not None:
            b = complexity_breakdown(
                loaded.model, shape, input_range=entry.input_range, depth=breakdown_depth
            )
            row["breakdown"] = asdict(b)
    return row


def _flag(r: dict) -> str:
    return " ⚠" if r.get("flops_undercount") else ""


#: The per-module breakdown's columns (``--breakdown``); the narrow-width order: last ones first.
MODULE_COLUMNS = (
    Column("Module"),
    Column("Type", keep=2),
    Column("Params", "right", keep=6),
    Column("FLOPs (fvcore)", "right", keep=5),
    Column("Conv MACs (hooks)", "right", keep=3),
    Column("Activations", "right", keep=4),
    Column("Convs", "right", keep=1),
)
OPERATOR_COLUMNS = (
    Column("Operator"),
    Column("FLOPs", "right", keep=3),
    Column("Share", "right", keep=2),
    Column("Calls", "right", keep=1),
)


def breakdown_tables(row: dict, width: int | None = None) -> list[Table]:
    """The per-module and per-operator tables of one profiled model (``row["breakdown"]``),
    each fitting ``width`` (columns that do not fit move to a continuation table)."""
    b = row["breakdown"]
    shape = "x".join(map(str, b["input_shape"]))
    cells, styles = [], []
    for m in b["modules"]:
        name = "  " * max(m["depth"] - 1, 0) + (m["name"] or f"{row['name']} (total)")
        cells.append(
            [
                name,
                m["type"],
                f"{m['params']:,}",
                f"{m['flops']:,}" + (_flag(row) if not m["name"] else ""),
                f"{m['conv_macs']:,}",
                f"{m['activations']:,}",
                str(m["convs"]),
            ]
        )
        styles.append("bold" if not m["name"] else None)
    title = f"{row['name']}: per module at {shape} (totals in the first row)"
    tables = fit_tables(title, MODULE_COLUMNS, cells, width, styles=styles)
    total = sum(o["flops"] for o in b["operators"])
    cells, styles = [], []
    for o in b["operators"]:
        if o["counted"]:
            share = f"{100 * o['flops'] / total:.2f} %" if total else "—"
            cells.append([o["op"], f"{o['flops']:,}", share, "—"])
            styles.append(None)
        else:
            cells.append([o["op"], "not counted", "—", str(o["calls"])])
            styles.append("dim")
    cells.append(["total", f"{total:,}" + _flag(row), "100 %" if total else "—", ""])
    styles.append("bold")
    title = f"{row['name']}: per operator (fvcore; 1 FLOP = 1 MAC)"
    return tables + fit_tables(title, OPERATOR_COLUMNS, cells, width, styles=styles)


#: ``srbench profile``'s columns (the first is the key; the lowest ``keep`` moves to a
#: continuation table first when the console is narrow).
PROFILE_COLUMNS = (
    Column("Model"),
    Column("Params", "right", keep=9),
    Column("FLOPs (fvcore MACs)", "right", keep=8),
    Column("Activations", "right", keep=7),
    Column("Convs", "right", keep=6),
    Column("Conv MAC floor", "right", keep=4),
    Column("thop MACs", "right", keep=3),
    Column("FlopCounterMode", "right", keep=2),
    Column("Unsupported ops", keep=1, wrap=True),
)


def profile_tables(rows: list[dict], input_shape: str, scale: int, width: int | None) -> list[Table]:
    """``srbench profile``'s table(s) for the rows of :func:`profile_specs`, fitting ``width``."""
    cells = []
    for r in rows:
        unsupported = ", ".join(f"{k}×{v}" for k, v in r["unsupported_ops"].items())
        cells.append(
            [
                r["name"],
                f"{r['params']:,}",
                f"{r['flops']:,}" + _flag(r),
                f"{r['activations']:,}",
                str(r["convs"]),
                _num(r.get("flops_lower_bound")),
                _num(r.get("flops_thop")),
                _num(r["flops_dispatch"]),
                unsupported or "—",
            ]
        )
    return fit_tables(f"complexity at {input_shape} (x{scale})", PROFILE_COLUMNS, cells, width)


def profile_command(args: argparse.Namespace) -> int:
    from srbench.models.specs import parse_input_ranges, parse_model_args, parse_model_specs

    specs = parse_model_specs(
        ",".join(model_tokens(args)),
        parse_weights(args.weights),
        model_args=parse_model_args(args.model_args),
        input_ranges=parse_input_ranges(args.input_range),
        scale=args.scale,
        weights_keys=parse_weights_keys(args.weights_key),
    )
    if args.depth < 0:
        raise SrbenchError(f"--depth {args.depth} must be 0 or more")
    rows = profile_specs(
        specs,
        scale=args.scale,
        input_shape=parse_shape(args.input, "--input"),
        breakdown_depth=args.depth if args.breakdown else None,
        recount=args.recount,
        progress=True,
    )
    if args.json:
        print(json.dumps({"schema": "srbench/1-profile", "models": rows}, indent=2))
        return 1 if any("error" in r for r in rows) else 0
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    console = make_console()
    for table in profile_tables(rows, args.input, args.scale, console.width):
        console.print(table)
    for r in rows:
        if r.get("flops_note"):
            console.print(f"[yellow]{r['name']}: ⚠ {r['flops_note']}", highlight=False)
        for t in breakdown_tables(r, console.width) if "breakdown" in r else []:
            console.print(t)
    if failed:
        console.print(failure_table(failed))
        if getattr(args, "ntire_repo", None) is not None:
            missing_packages_line(failed, args.ntire_repo, console)
    return 1 if failed else 0


def failure_table(rows: list[dict]) -> Table:
    """The rows that could not be counted, each with whose fault it is
    (:func:`srbench.models.usercode.classify_failure`) and the reason."""
    from srbench.models.usercode import classify_failure

    table = Table(title=f"{len(rows)} model(s) not counted")
    for col in ("Model", "Whose", "Reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], classify_failure(r["error"]), r["error"])
    return table


def _num(v: int | None) -> str:
    return "—" if v is None else f"{v:,}"


def missing_packages_line(failed: list[dict], repo: Any, console: Any) -> None:
    """One line for the whole folder naming every third-party package its teams lack."""
    import re

    from srbench.models.usercode import FAULT_PACKAGE, classify_failure

    needs: dict[str, list[str]] = {}
    for row in failed:
        if classify_failure(row["error"]) == FAULT_PACKAGE:
            match = re.search(r"package '([^']+)'", row["error"])
            if match:
                needs.setdefault(match[1], []).append(row["name"])
    if needs:
        teams = "; ".join(f"{pkg}: {', '.join(rows)}" for pkg, rows in sorted(needs.items()))
        console.print(
            f"{repo}: teams need packages that are not installed ({teams}); "
            f"install them: pip install {' '.join(sorted(needs))}",
            soft_wrap=True,
            highlight=False,
        )
