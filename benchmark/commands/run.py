"""``srbench run``: measure models on a dataset and write the reports."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from srbench.backends.browser.ortweb import PROVIDERS as BROWSER_PROVIDERS
from srbench.backends.devices import parse_threads
from srbench.backends.onnxruntime.session import PROVIDERS as ORT_PROVIDERS
from srbench.backends.registry import backend_names
from srbench.commands.options import (
    add_dataset_options,
    add_device_option,
    add_dtype_option,
    add_model_options,
    add_models_option,
    add_offline_option,
    add_recount_option,
    add_scale_option,
    add_tiling_options,
    add_weights_option,
    check_tiling,
    model_tokens,
    parse_shape,
    parse_weights,
    parse_weights_keys,
    with_example,
)
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.results.config import BROWSER_WARMUP, DEFAULT_THREADS, DEFAULT_WARMUP, RunConfig
from srbench.results.schema import check_label
from srbench.results.tables import console_table, footnotes
from srbench.runner.orchestrator import default_output_dir, resume_command, run_benchmark

# ----------------------------------------------------------------- options given on the command line
# `--resume DIR` takes the stored configuration as the default for every option not given, so
# the parser must tell "given" from "left at its default": these actions record their dest.


def _mark_given(namespace: argparse.Namespace, dest: str) -> None:
    # A new set per parse (never a shared default), holding the dests given so far.
    namespace.given = {*getattr(namespace, "given", set()), dest}


class _Store(argparse._StoreAction):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


class _StoreTrue(argparse._StoreTrueAction):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


class _Append(argparse._AppendAction):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


def track_given(p: argparse.ArgumentParser) -> None:
    """Make every option added to ``p`` from now on record its dest in ``args.given`` when given."""
    p.register("action", None, _Store)
    p.register("action", "store", _Store)
    p.register("action", "store_true", _StoreTrue)
    p.register("action", "append", _Append)
    # No set_defaults(given=set()): argparse would hand every parse the same set object.


#: ``run`` option dest → the RunConfig fields it sets (when they differ from the dest).
_DEST_FIELDS = {
    "no_isolate": ("isolate",),
    "ntire_compat": ("ntire_compat", "warmup"),
    "input_range": ("input_ranges",),
    "weights_key": ("weights_keys",),
    "precision": ("precisions",),
    "ntire_repo": ("models",),
    "teams": ("models",),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="measure models on a dataset (quality, runtime, complexity, memory)",
        usage="%(prog)s --models NAMES [--data PATH] [options]",
        description="Measure models on a dataset and write results.json/.csv/.md and images.csv.",
        **with_example(
            "srbench run --models span,rlfn --data sample-mini",
            "srbench run --models span --data DIV2K --device cuda --dtype fp16 --repeat 5",
            "srbench run --models span --backend onnxruntime --output runs/ort --quiet",
        ),
    )
    track_given(p)
    what = p.add_argument_group("what to measure")
    add_models_option(what)
    add_scale_option(what)
    add_weights_option(what)
    add_model_options(what)
    what.add_argument(
        "--protocol",
        default="srbench",
        help="srbench (default: warm-up, median) or an NTIRE edition (ntire2024, ntire2025, ntire2026): "
        "both splits, the challenge's timing, --runs whole runs, gates and score against its baseline",
    )
    what.add_argument(
        "--runs",
        type=int,
        default=None,
        help="whole-run repetitions, each in fresh workers: with --protocol srbench the table gives "
        "the between-run spread beside the within-run one (default 1); with --protocol ntireYYYY "
        "the edition's (5)",
    )
    what.add_argument(
        "--ntire-compat",
        action="store_true",
        help="the challenge protocol: no warm-up, arithmetic mean time, RGB PSNR headline",
    )
    what.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"warm-up forwards before timing, in all, at least one per LR shape (default "
        f"{DEFAULT_WARMUP}; {BROWSER_WARMUP} with --backend browser; 0 with --ntire-compat)",
    )
    what.add_argument("--repeat", type=int, default=1, help="timed forwards per image; the median is kept")
    what.add_argument("--profile-input", default="1x3x256x256", help="complexity input NxCxHxW")
    add_recount_option(what)

    add_dataset_options(p.add_argument_group("data"), positional=False)

    device = p.add_argument_group("device and precision")
    add_device_option(device)
    add_dtype_option(device)
    device.add_argument(
        "--threads",
        default=str(DEFAULT_THREADS),
        metavar="N|all",
        help=f"intra-op CPU threads of torch and ONNX Runtime (default {DEFAULT_THREADS}: stable on a "
        "shared machine; 'all' for deployment-like figures on an idle one)",
    )
    device.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    device.add_argument("--compile", action="store_true", help="torch.compile (compile time reported apart)")
    device.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick its fastest kernels")
    device.add_argument("--tf32", choices=["on", "off"], default=None, help="default: PyTorch's default")
    device.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms")
    device.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_tiling_options(device)

    backend = p.add_argument_group("backend")
    backend.add_argument(
        "--backend",
        choices=list(backend_names()),
        default=None,
        help="what runs the network: torch (default) or onnxruntime (the ONNX export; srbench[onnx]); "
        "ONNX files given to --models run on onnxruntime by default",
    )
    backend.add_argument(
        "--ort-provider",
        choices=list(ORT_PROVIDERS),
        default="cpu",
        help="ONNX Runtime execution provider with --backend onnxruntime (default cpu)",
    )
    backend.add_argument(
        "--browser-provider",
        choices=list(BROWSER_PROVIDERS),
        default="wasm",
        help="ONNX Runtime Web provider with --backend browser (default wasm; webgpu/webgl when "
        "the browser offers them)",
    )
    backend.add_argument(
        "--browser-threads",
        type=int,
        default=None,
        help="WASM threads with --backend browser (default: torch's thread count)",
    )
    backend.add_argument(
        "--precision",
        default="fp32",
        help="ONNX Runtime precision variants to measure beside fp32, comma-separated: fp16, int8 "
        "(--backend onnxruntime; each variant's row carries its PSNR-Y/SSIM-Y cost and speed ratio "
        "against the fp32 row)",
    )
    backend.add_argument(
        "--calibration",
        default=None,
        help="int8 calibration images: a dataset path (as --data); default: three scikit-image "
        "photographs outside the sample set (docs/deployment.md); refused if it shares an image "
        "with the evaluated set",
    )

    execution = p.add_argument_group("execution")
    add_offline_option(execution)
    execution.add_argument("--no-isolate", action="store_true", help="measure in-process (debugging)")
    execution.add_argument(
        "--model-timeout", type=float, default=None, help="seconds per model (isolated only)"
    )
    execution.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="OUTPUT_DIR",
        help="continue the run in OUTPUT_DIR: its stored options are the default for every option "
        "not given (--models included); models already measured there are skipped",
    )
    execution.add_argument("--force", action="store_true", help="with --resume: accept a changed config")
    execution.add_argument(
        "--require-weights",
        action="store_true",
        help="exit 1 when a model that has official weights ran without them (for CI)",
    )

    output = p.add_argument_group("output")
    output.add_argument("--output", "-o", type=Path, default=None, help="results folder (default: new one)")
    output.add_argument(
        "--label",
        default=None,
        help="name of this run in tables, plots and merged reports (default: device/dtype)",
    )
    output.add_argument(
        "--save-images", action="store_true", help="keep SR outputs as PNG in OUTPUT/images/MODEL/"
    )
    output.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress (default: a bar on a terminal, else a line per model and per 10 images)",
    )
    p.set_defaults(func=run_command)


def config_from_args(args: argparse.Namespace, stored: RunConfig | None = None) -> RunConfig:
    """The :class:`RunConfig` described by parsed ``run`` arguments.

    With ``stored`` (the configuration of the run being resumed), only the options given on
    the command line (``args.given``) are taken from ``args``; every other field keeps its
    stored value.
    """
    from srbench.models.specs import parse_input_ranges, parse_model_args

    if stored is not None:
        given = getattr(args, "given", set())
        if args.models is None and getattr(args, "ntire_repo", None) is None:
            args = argparse.Namespace(**{**vars(args), "models": ",".join(stored.models)})
        fresh = config_from_args(args)
        names: set[str] = set()
        for dest in given:
            names.update(_DEST_FIELDS.get(dest, (dest,)))
        known = {f.name for f in dataclasses.fields(RunConfig)}
        return dataclasses.replace(stored, **{n: getattr(fresh, n) for n in names & known})

    check_tiling(args)
    if args.model_timeout is not None and args.model_timeout <= 0:
        raise SrbenchError("--model-timeout must be a positive number of seconds")
    if args.warmup is not None:
        warmup = args.warmup
    elif args.ntire_compat:
        warmup = 0
    else:
        warmup = BROWSER_WARMUP if args.backend == "browser" else DEFAULT_WARMUP
    tokens = model_tokens(args)
    return RunConfig(
        models=tokens,
        data=args.data,
        layout=args.layout,
        hr=str(args.hr) if args.hr is not None else None,
        lr=str(args.lr) if args.lr is not None else None,
        split=args.split,
        degradation=args.degradation,
        allow_16bit=args.allow_16bit,
        scale=args.scale,
        device=args.device,
        warmup=warmup,
        repeat=args.repeat,
        profile_input=parse_shape(args.profile_input, "--profile-input"),
        ntire_compat=args.ntire_compat,
        dtype=args.dtype,
        channels_last=args.channels_last,
        compile=args.compile,
        cudnn_benchmark=args.cudnn_benchmark,
        tf32=args.tf32,
        seed=args.seed,
        deterministic=args.deterministic,
        weights=parse_weights(args.weights),
        model_args=parse_model_args(args.model_args),
        input_ranges=parse_input_ranges(args.input_range),
        weights_keys=parse_weights_keys(args.weights_key),
        offline=args.offline,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        isolate=not args.no_isolate,
        model_timeout=args.model_timeout,
        label=check_label(args.label),
        backend=(backend := choose_backend(args.backend, tokens)),
        precisions=parse_precisions(getattr(args, "precision", "fp32"), backend, args.dtype),
        calibration=getattr(args, "calibration", None),
        ort_provider=args.ort_provider,
        recount=args.recount,
        browser_provider=args.browser_provider,
        browser_threads=args.browser_threads,
        threads=parse_threads(args.threads),
    )


def parse_precisions(text: str, backend: str, dtype: str = "fp32") -> list[str]:
    """``--precision fp16,int8`` → ``["fp32", "fp16", "int8"]`` (fp32 always first: each
    variant's cost is taken against it); variants need ``--backend onnxruntime``."""
    from srbench.backends.onnxruntime.precision import PRECISIONS

    chosen = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in chosen if p not in PRECISIONS]
    if bad:
        raise SrbenchError(f"--precision {bad[0]} is not one of {', '.join(PRECISIONS)}")
    out = ["fp32", *dict.fromkeys(p for p in chosen if p != "fp32")]
    if len(out) > 1 and backend != "onnxruntime":
        raise SrbenchError(
            f"--precision {','.join(out[1:])} makes ONNX Runtime variants; add --backend onnxruntime"
        )
    if len(out) > 1 and dtype != "fp32":
        raise SrbenchError(
            f"--precision {','.join(out[1:])} makes variants of the fp32 file; drop --dtype {dtype}"
        )
    return out


def choose_backend(backend: str | None, tokens: list[str]) -> str:
    """``--backend`` as given, else ``onnxruntime`` when every model is an ONNX file, else torch.

    Raises:
        SrbenchError: an ONNX file with ``--backend torch``, or ONNX files mixed with PyTorch
            models without ``--backend``.
    """
    from srbench.models.onnx_file import is_onnx_token

    onnx = [t for t in tokens if is_onnx_token(t.partition("=")[2] or t)]
    if not onnx:
        return backend or "torch"
    if backend == "torch":
        raise SrbenchError(
            f"{onnx[0]} is an ONNX file: it runs on --backend onnxruntime (or browser), not torch; "
            "drop --backend torch"
        )
    if backend is None and len(onnx) < len(tokens):
        raise SrbenchError(
            "--models mixes ONNX files and PyTorch models; add --backend onnxruntime to run all of them "
            "on ONNX Runtime (the PyTorch ones exported), or measure them in two runs"
        )
    return backend or "onnxruntime"


def run_command(args: argparse.Namespace) -> int:
    if args.protocol != "srbench":
        return challenge_command(args)
    if args.runs is not None and args.runs < 1:
        raise SrbenchError(f"--runs {args.runs} must be >= 1 (e.g. --runs 3)")
    if args.runs is not None and args.runs > 1 and args.resume:
        raise SrbenchError("--runs with --resume: resume one run at a time; drop --runs")
    if args.resume and args.output and args.output != args.resume:
        raise SrbenchError("--resume names the output folder itself; drop --output")
    stored = None
    if args.resume:
        from srbench.results.schema import load_results

        if not (args.resume / "results.json").is_file():
            raise SrbenchError(
                f"--resume {args.resume}: no results.json there; pass a folder written by 'srbench run'"
            )
        stored = RunConfig.from_dict(load_results(args.resume).config)
    config = config_from_args(args, stored)
    out_dir = args.resume or args.output or default_output_dir()
    if args.save_images:
        config.save_images = str(out_dir / "images")
    console = make_console(stderr=True)
    progress = "none" if args.quiet else "auto"
    if args.runs is not None and args.runs > 1:
        run, interrupted = repeated_runs(config, out_dir, args.runs, console, progress)
    else:
        run, interrupted = run_benchmark(
            config,
            out_dir,
            console=console,
            resume=args.resume is not None,
            force=args.force,
            progress=progress,
        )
    out = make_console()
    out.print(console_table(run, width=out.width))
    for note in footnotes(run):
        console.print(f"[dim]{note}")
    failed = [{"name": m.name, "error": m.reason or "error"} for m in run.models if m.status == "error"]
    if failed and getattr(args, "ntire_repo", None) is not None:
        from srbench.commands.profile import failure_table, missing_packages_line

        console.print(failure_table(failed))
        missing_packages_line(failed, args.ntire_repo, console)
    console.print(f"results: {out_dir}")
    if interrupted:
        console.print(f"interrupted: resume with: {resume_command(out_dir)}", highlight=False)
        return 130
    if args.require_weights and (lacking := models_lacking_official_weights(run.models)):
        console.print(
            f"--require-weights: {', '.join(lacking)} ran without the official weights they have "
            "(each row's reason says where srbench looked and what to run)",
            soft_wrap=True,
        )
        return 1
    return 1 if any(m.status == "error" for m in run.models) else 0


def repeated_runs(
    config: RunConfig, out_dir: Path, runs: int, console: Any, progress: str = "auto"
) -> tuple[Any, bool]:
    """``--runs N``: N whole runs (fresh workers each) in ``OUT/runs/run-K``, combined into
    ``OUT`` (:func:`srbench.runner.orchestrator.combine_runs`)."""
    from srbench.results.io import write_results
    from srbench.runner.orchestrator import combine_runs

    done = []
    interrupted = False
    for k in range(1, runs + 1):
        console.print(f"run {k} of {runs}")
        run, interrupted = run_benchmark(
            config, out_dir / "runs" / f"run-{k}", console=console, progress=progress
        )
        done.append(run)
        if interrupted:
            break
    combined = combine_runs(done)
    write_results(combined, out_dir)
    return combined, interrupted


def models_lacking_official_weights(models: list) -> list[str]:
    """Names of ``no-weights`` rows whose architecture has official weights at their scale."""
    from srbench.models.registry import get_entry

    lacking = []
    for m in models:
        if m.status != "no-weights":
            continue
        try:
            entry = get_entry(m.arch)
        except SrbenchError:
            continue  # a user architecture: no official weights to require
        if entry.weights_for(m.scale) is not None:
            lacking.append(m.name)
    return lacking


def challenge_command(args: argparse.Namespace) -> int:
    """``run --protocol ntireYYYY``: see :mod:`srbench.ntire.challenge`."""
    from srbench.ntire.challenge import resolve_split_data, run_challenge
    from srbench.ntire.editions import get_edition
    from srbench.ntire.score import footnotes as score_footnotes
    from srbench.ntire.score import rich_tables

    edition = get_edition(args.protocol, option="--protocol")
    if args.resume is not None:
        raise SrbenchError(f"--resume is not available with --protocol {edition.name}; start a new run")
    split_data = resolve_split_data(edition, args.data)
    data, args.data = args.data, None  # each split's path is set per split
    config = config_from_args(args)
    args.data = data
    out_dir = args.output or default_output_dir()
    console = make_console(stderr=True)
    runs = args.runs if args.runs is not None else edition.runs
    progress = "none" if args.quiet else "auto"
    result = run_challenge(config, edition, split_data, runs, out_dir, console=console, progress=progress)
    if result.ranking is not None:
        out = make_console()
        for table in rich_tables(result.ranking, out.width):
            out.print(table)
        for note in score_footnotes(result.ranking):
            console.print(f"[dim]{note}", highlight=False)
        for m in result.document["models"]:
            spread = m.get("runtime_spread_ms")
            if spread:
                console.print(
                    f"{m['name']}: runtime {spread['mean']:.3f} ms over {spread['n']} run(s) "
                    f"(std {spread['std']:.3f}, min {spread['min']:.3f}, max {spread['max']:.3f})",
                    highlight=False,
                )
    console.print(f"results: {out_dir}")
    if result.interrupted:
        return 130
    return 1 if any(m.get("error") for m in result.document["models"]) else 0
