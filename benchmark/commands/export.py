"""``srbench export``: write a model's deployed form for deployment (``--format onnx``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srbench.backends.browser.ortweb import PROVIDERS as BROWSER_PROVIDERS
from srbench.commands.options import add_model_options, parse_weights_keys, with_example
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError

#: ``--format`` choices; kept here so ``srbench --help`` imports nothing heavy. Each has a
#: writer in :data:`srbench.runner.export.FORMATS`.
FORMAT_CHOICES = ("onnx", "web")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model's deployed (fused) form, e.g. to ONNX",
        description=(
            "Export the deployed form of a model (re-parameterised branches fused) with its "
            "weights. ONNX: one self-contained file, dynamic height/width, DepthToSpace in CRD "
            "mode, srbench metadata (input range, scale, architecture, weights sha256). Web: a "
            "folder with index.html (drop an image: upscaled, time per inference), the ONNX model "
            "and ONNX Runtime Web's files; serve it with 'srbench browser serve DIR'."
        ),
        **with_example("srbench export --model span --format onnx --output span_x4.onnx"),
    )
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="registered model name, checkpoint path, FILE.py:Class or module:callable",
    )
    p.add_argument("--weights", default=None, metavar="PATH", help="checkpoint (default: as 'srbench run')")
    p.add_argument("--format", choices=FORMAT_CHOICES, default="onnx", help="output format (default onnx)")
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        help="file to write (e.g. span_x4.onnx); with --format web, the folder to write",
    )
    p.add_argument(
        "--browser-provider",
        choices=list(BROWSER_PROVIDERS),
        default="wasm",
        help="with --format web: the ONNX Runtime Web provider the page uses (default wasm)",
    )
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    p.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32", help="float type of the graph")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; 17 or newer)")
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16", "int8"],
        default="fp32",
        help="--format onnx: write the fp16 or int8 (static QDQ) variant of the fp32 export",
    )
    p.add_argument(
        "--calibration",
        default=None,
        help="--precision int8: calibration images (a dataset path; default: docs/deployment.md)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--offline", action="store_true", help="never download weights")
    add_model_options(p)
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    from srbench.runner.export import FORMATS, ExportRequest, load_for_export

    if args.precision != "fp32" and (args.format != "onnx" or args.dtype != "fp32"):
        raise SrbenchError(
            f"--precision {args.precision} writes a variant of the fp32 ONNX file; use it with "
            "--format onnx and without --dtype"
        )
    if args.calibration is not None and args.precision != "int8":
        raise SrbenchError("--calibration calibrates --precision int8; add --precision int8 or drop it")
    if args.format == "web":
        from srbench.backends.browser.bundle import check_destination

        check_destination(args.output, overwrite=args.overwrite)  # before the slow export
        if args.dtype != "fp32":
            raise SrbenchError(
                f"--dtype {args.dtype} with --format web: the web page runs fp32; drop --dtype"
            )
    elif args.output.is_dir():
        raise SrbenchError(f"-o {args.output} is a folder; name the file to write (e.g. model.onnx)")
    elif args.output.exists() and not args.overwrite:
        raise SrbenchError(f"{args.output} exists; add --overwrite or choose another -o")
    fmt = FORMATS[args.format]
    fmt.check_installed()
    from srbench.models.specs import parse_input_ranges, parse_model_args

    spec, entry, model, sha = load_for_export(
        args.model,
        scale=args.scale,
        weights=args.weights,
        offline=args.offline,
        model_args=parse_model_args(args.model_args),
        input_ranges=parse_input_ranges(args.input_range),
        weights_keys=parse_weights_keys(args.weights_key),
    )
    console = make_console(stderr=True)
    console.print(f"exporting {spec.name} (x{args.scale}, {args.dtype}) to {args.format}...")
    request = ExportRequest(
        spec=spec,
        entry=entry,
        model=model,
        scale=args.scale,
        weights_sha256=sha,
        output=args.output,
        dtype=args.dtype,
        opset=args.opset,
        browser_provider=args.browser_provider,
        overwrite=args.overwrite,
        precision=args.precision,
        calibration=args.calibration,
    )
    from srbench.runner.failures import model_call

    # A model that raises while being traced/exported is one line naming it (issue 19 kind 3).
    with model_call(spec.name, f"the {args.format} export (x{args.scale}, {args.dtype})"):
        result = fmt.write(request)
    for line in result.lines:
        console.print(line)
    make_console().print(f"{result.path} ({result.size_bytes / 2**20:.2f} MB, {result.seconds:.1f} s)")
    return 0
