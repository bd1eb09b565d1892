"""``srbench compare``: a labelled crop grid (HR, bicubic, each model) of one image of a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from srbench.commands.options import with_example
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.reporting.compare import (
    DEFAULT_CROP_SIZE,
    DEFAULT_STRIDE,
    Crop,
    auto_crop,
    crop_candidates,
    default_zoom,
    load_comparison,
    parse_crop,
    render_grid,
    write_grid,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="crop grid of HR, bicubic and each model's SR for one image of a run",
        description=(
            "Write one PNG grid comparing a run's saved SR images (srbench run --save-images) "
            "with HR and bicubic, labelled with each image's PSNR-Y."
        ),
        **with_example("srbench compare 0801 --run srbench-runs/latest --auto-crop"),
    )
    p.add_argument("image", metavar="IMAGE_NAME", help="image name as in results.json (e.g. 0801)")
    p.add_argument("--run", required=True, type=Path, metavar="RUN_DIR", help="folder of an srbench run")
    p.add_argument("--crop", default=None, metavar="x,y,w,h", help="window in HR pixels")
    p.add_argument(
        "--auto-crop",
        action="store_true",
        help=f"pick the {DEFAULT_CROP_SIZE}x{DEFAULT_CROP_SIZE} window where the models differ most",
    )
    p.add_argument("--crop-size", type=int, default=DEFAULT_CROP_SIZE, help="--auto-crop window (HR px)")
    p.add_argument("--zoom", type=int, default=None, help="panel magnification (default: ~288 px panels)")
    p.add_argument("--output", "-o", type=Path, default=None, help="PNG (default RUN_DIR/compare_NAME.png)")
    p.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    if args.crop and args.auto_crop:
        raise SrbenchError("give either --crop or --auto-crop, not both")
    if args.crop_size < 1:
        raise SrbenchError(f"--crop-size {args.crop_size} must be a positive number of HR pixels")
    comparison = load_comparison(args.run, args.image)
    hr = comparison.hr
    if args.crop:
        crop = parse_crop(args.crop, hr.shape)
    elif args.auto_crop:
        crop = auto_crop(
            hr,
            crop_candidates(comparison),
            size=args.crop_size,
            stride=DEFAULT_STRIDE,
            border=comparison.scale,
        )
    else:
        # No crop asked for: a centred window of the default size.
        w, h = min(args.crop_size, hr.shape[1]), min(args.crop_size, hr.shape[0])
        crop = Crop((hr.shape[1] - w) // 2, (hr.shape[0] - h) // 2, w, h)
    zoom = args.zoom if args.zoom is not None else default_zoom(crop)
    grid = render_grid(comparison.panels, crop, zoom=zoom)
    out = args.output or args.run / f"compare_{args.image}.png"
    if out.suffix.lower() != ".png":
        raise SrbenchError(f"--output {out}: the grid is written as PNG; name the file .png")
    write_grid(out, grid)
    console = make_console(stderr=True)
    if comparison.left_out:
        console.print(
            f"[dim]left out (no trained weights, or failed: their output is not a result): "
            f"{', '.join(comparison.left_out)}",
            soft_wrap=True,
        )
    if comparison.skipped:
        console.print(
            f"[dim]no saved SR of {args.image} for: {', '.join(comparison.skipped)} (skipped)", soft_wrap=True
        )
    console.print(
        f"crop {crop} (x,y,w,h HR px), zoom {zoom}x, {len(comparison.panels)} panels -> {out}", soft_wrap=True
    )
    return 0
