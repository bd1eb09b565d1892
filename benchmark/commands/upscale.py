"""``srbench upscale``: upscale image files or folders with one model, PNG out."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from srbench.commands.options import (
    add_allow_16bit_option,
    add_dtype_option,
    add_protocol_options,
    add_tiling_options,
    check_tiling,
    parse_weights,
    parse_weights_keys,
    with_example,
)
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.runner.upscale import (
    UpscaleResult,
    collect_inputs,
    load_upscaler,
    plan_outputs,
    resolve_spec,
    upscale_file,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images or folders with a model (PNG out)",
        description=(
            "Upscale images with a trained model. Output: <stem>_x<scale>_<model>.png beside the "
            "input (or in -o). Alpha is upscaled with bicubic and kept; grey stays grey."
        ),
        **with_example("srbench upscale photo.png --model span"),
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="registered model name, checkpoint path, FILE.py:Class or module:callable",
    )
    add_protocol_options(p)
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        help="output folder, or a .png file name for a single input (default: beside the input)",
    )
    add_tiling_options(p)
    add_dtype_option(p)
    add_allow_16bit_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=upscale_command)


def _report(console: Console, r: UpscaleResult) -> None:
    (w, h), (ow, oh) = r.size_in, r.size_out
    tiled = " (tiled)" if r.tiled else ""
    console.print(
        f"{r.input} -> {r.output}  {w}x{h} -> {ow}x{oh}  "
        f"forward {r.forward_ms:.1f} ms{tiled}, total {r.total_s:.2f} s",
        soft_wrap=True,
    )


def upscale_command(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise SrbenchError(f"--scale {args.scale} must be a positive integer")
    check_tiling(args)
    weights = parse_weights(args.weights)
    # Output names use the model's display name: the registry name, NAME of NAME=PATH, or a
    # checkpoint's stem.
    from srbench.models.specs import parse_input_ranges, parse_model_args

    spec = resolve_spec(
        args.model,
        weights,
        model_args=parse_model_args(args.model_args),
        input_ranges=parse_input_ranges(args.input_range),
        scale=args.scale,
        weights_keys=parse_weights_keys(args.weights_key),
    )
    model_name = spec.name
    inputs = collect_inputs(args.inputs, scale=args.scale, model=model_name)
    single_file = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    # Every output is checked before the model is even built: no half-done folders.
    plan = plan_outputs(
        inputs,
        output=args.output,
        scale=args.scale,
        model=model_name,
        overwrite=args.overwrite,
        single_file=single_file,
    )
    upscaler = load_upscaler(
        spec,
        scale=args.scale,
        device=args.device,
        dtype=args.dtype,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        weights=weights,
        offline=args.offline,
    )
    console = make_console(stderr=True)
    console.print(f"upscaling {len(plan)} image(s) x{args.scale} with {upscaler.name} on {upscaler.device}")
    if len(plan) == 1:
        _report(console, upscale_file(upscaler, *plan[0], allow_16bit=args.allow_16bit))
        return 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(upscaler.name, total=len(plan))
        for src, dst in plan:
            _report(progress.console, upscale_file(upscaler, src, dst, allow_16bit=args.allow_16bit))
            progress.advance(task)
    return 0
