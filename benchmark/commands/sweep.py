"""``srbench sweep``: a grid of ``srbench run`` cells on this machine or a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from srbench.core.errors import SrbenchError

#: Sweep options that take comma lists (or TOML/YAML lists in a sweep file).
_AXES = ("models", "data", "backend", "dtype")


def register(sub: argparse._SubParsersAction) -> None:
    from srbench.commands.options import (
        DEGRADATION_CHOICES,
        SPLIT_CHOICES,
        add_allow_16bit_option,
        add_protocol_options,
        add_tiling_options,
        with_example,
    )

    p = sub.add_parser(
        "sweep",
        help="measure a grid (models x data x backends x dtypes x runs) locally or on Ray",
        description=(
            "Measure every cell of models x data x backends x dtypes x runs, each cell one "
            "'srbench run' measurement of one model, and merge them into one results.json. "
            "A sweep file (--file, TOML or YAML) may hold any of these options; the command "
            "line overrides it."
        ),
        **with_example("srbench sweep --models span,rlfn --dtype fp32,bf16 --runs 3"),
    )
    p.add_argument("--file", "-f", type=Path, default=None, help="sweep file (.toml, .yaml)")
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress (default: a bar on a terminal, else a line per finished cell)",
    )
    p.add_argument("--models", default=None, help="comma-separated models (as 'srbench run --models')")
    p.add_argument("--data", default=None, help="comma-separated datasets/splits (default: the sample set)")
    p.add_argument("--backend", default=None, help="comma-separated backends (default: run's default)")
    p.add_argument("--dtype", default=None, help="comma-separated dtypes: fp32, bf16, fp16 (default fp32)")
    p.add_argument("--runs", type=int, default=None, help="measurements of every cell (default 1)")
    p.add_argument("--engine", choices=["local", "ray"], default=None, help="where cells run (default local)")
    p.add_argument(
        "--devices",
        default=None,
        help="local engine: comma-separated devices, one cell per device at a time (e.g. cuda:0,cuda:1)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="ray engine: cluster address (default: start a local loopback instance)",
    )
    p.add_argument(
        "--cpus-per-cell",
        type=int,
        default=None,
        help="ray engine: CPUs (and torch threads) per cell; default: all of a local instance, else 1",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=None,
        help="ray engine: reruns of a cell whose worker died or node was lost (default 2; not model errors)",
    )
    p.add_argument("--output", "-o", type=Path, default=None, help="results folder (default: new one)")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="OUTPUT_DIR",
        help="skip cells already measured there",
    )
    # srbench run's protocol options, same names and meanings (defaults come from 'run').
    add_protocol_options(p)
    add_tiling_options(p)
    for flag in ("--scale", "--device", "--tile-overlap", "--offline"):
        p.set_defaults(**{flag.lstrip("-").replace("-", "_"): None})
    p.add_argument("--layout", default=None, help="force a dataset layout instead of auto-detection")
    add_allow_16bit_option(p)
    p.set_defaults(allow_16bit=None)  # None: not given, so a sweep file's value stands
    # The rest of run's dataset and backend options, so every message a cell can print names
    # an option this command takes (None: not given; run's default or the sweep file's value).
    p.add_argument("--hr", type=Path, default=None, help="HR folder (as 'srbench run')")
    p.add_argument("--lr", type=Path, default=None, help="LR folder paired with --hr (as 'srbench run')")
    p.add_argument("--split", choices=SPLIT_CHOICES, default=None, help="DIV2K / NTIRE split")
    p.add_argument("--degradation", choices=DEGRADATION_CHOICES, default=None, help="DIV2K LR kind")
    p.add_argument("--ort-provider", default=None, help="ONNX Runtime provider for onnxruntime cells")
    p.add_argument("--browser-provider", default=None, help="ONNX Runtime Web provider for browser cells")
    p.add_argument("--browser-threads", type=int, default=None, help="WASM threads for browser cells")
    p.add_argument("--label", default=None, help="the sweep's name in reports and plots")
    p.add_argument("--warmup", type=int, default=None, help="warm-up forwards (as 'srbench run')")
    p.add_argument("--repeat", type=int, default=None, help="timed forwards per image (median kept)")
    p.add_argument("--profile-input", default=None, help="complexity input NxCxHxW")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--model-timeout", type=float, default=None, help="seconds per cell")
    for flag in (
        "--ntire-compat",
        "--channels-last",
        "--compile",
        "--cudnn-benchmark",
        "--deterministic",
    ):
        p.add_argument(flag, action="store_true", default=None, help="as 'srbench run'")
    p.add_argument("--tf32", choices=["on", "off"], default=None)
    p.set_defaults(func=sweep_command)


def _run_defaults() -> argparse.Namespace:
    # srbench run's own defaults, read from its parser, so a sweep cell is configured exactly
    # as 'srbench run' would configure that model (options other helpers add included).
    from srbench.commands import run as run_cmd

    sub = argparse.ArgumentParser().add_subparsers()
    run_cmd.register(sub)
    return sub.choices["run"].parse_args(["--models", "placeholder"])


def sweep_options(args: argparse.Namespace) -> dict[str, Any]:
    """Sweep-file values overridden by every option given on the command line (``None``: not given)."""
    from srbench.runner.sweep import read_sweep_file

    merged: dict[str, Any] = read_sweep_file(args.file) if args.file else {}
    for key, value in vars(args).items():
        if key in ("func", "command", "debug", "file", "weights", "quiet") or value is None:
            continue
        merged[key] = value
    if args.weights:
        merged["weights"] = list(args.weights)
    return merged


def build_sweep_plan(options: dict[str, Any]) -> Any:
    """The :class:`~srbench.runner.sweep.SweepPlan` of merged options (one-line errors)."""
    from srbench.backends.devices import DTYPES
    from srbench.backends.registry import backend_names
    from srbench.commands.run import choose_backend, config_from_args
    from srbench.data.datasets import dataset_options, load_dataset
    from srbench.models.specs import parse_model_specs
    from srbench.runner.orchestrator import validate_checkpoints
    from srbench.runner.sweep import SWEEP_KEYS, build_plan, split_list

    defaults = _run_defaults()
    engine_keys = SWEEP_KEYS | {"output", "resume", "force"}
    ns = argparse.Namespace(**vars(defaults))
    for key, value in options.items():
        if key in engine_keys:
            continue
        if not hasattr(defaults, key):
            raise SrbenchError(
                f"sweep: unknown option {key!r}; see 'srbench sweep --help' and 'srbench run --help'"
            )
        if key == "profile_input" and isinstance(value, list):
            value = "x".join(str(v) for v in value)
        if key == "weights" and isinstance(value, dict):
            value = [f"{k}={v}" for k, v in value.items()]
        setattr(ns, key, value)
    models = split_list(options.get("models"))
    if not models:
        raise SrbenchError("sweep: name the models with --models (or 'models' in the sweep file)")
    data: list[str | None] = list(split_list(options.get("data"))) or [defaults.data]
    dtypes = split_list(options.get("dtype")) or [defaults.dtype]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise SrbenchError(f"--dtype {','.join(bad)}: each dtype must be one of {', '.join(DTYPES)}")
    # As in 'srbench run': torch, or onnxruntime when every model is an ONNX file.
    backends = split_list(options.get("backend")) or [choose_backend(defaults.backend, list(models))]
    bad = [b for b in backends if b not in backend_names()]
    if bad:
        known = ", ".join(backend_names())
        raise SrbenchError(f"--backend {','.join(bad)}: each backend must be one of {known}")
    runs = 1 if options.get("runs") is None else int(options["runs"])
    ns.models = ",".join(models)

    def table_config(d: str | None, backend: str, dtype: str) -> Any:
        table = argparse.Namespace(**vars(ns))
        table.data, table.dtype, table.backend = d, dtype, backend
        return config_from_args(table)

    def describe_data(config: Any) -> dict[str, Any]:
        options = dataset_options(config.to_dict())
        return load_dataset(config.data, scale=config.scale, layout=config.layout, **options).describe()

    first = table_config(data[0], backends[0], dtypes[0])
    specs = parse_model_specs(",".join(models), first.weights)
    validate_checkpoints(specs, first, dtypes=dtypes)
    return build_plan(specs, data, backends, dtypes, runs, table_config, describe_data)


def make_engine(options: dict[str, Any], out_dir: Path, plan: Any) -> Any:
    """The engine the options name: ``local`` (with ``devices``) or ``ray``."""
    from srbench.runner.sweep import split_list

    engine = options.get("engine") or "local"
    if engine == "local":
        for key in ("address", "cpus_per_cell", "retries"):
            if options.get(key) is not None:
                raise SrbenchError(f"--{key.replace('_', '-')} applies to --engine ray only; drop it")
        from srbench.runner.launchers.local import LocalEngine

        devices = split_list(options.get("devices"))
        if devices:
            from srbench.backends.devices import resolve_device

            # cpu and cpu:0 are one device, as are cuda and cuda:0.
            resolved = [
                "cpu" if (t := resolve_device(d)).type == "cpu" else f"{t.type}:{t.index or 0}"
                for d in devices
            ]
            same = sorted({r for r in resolved if resolved.count(r) > 1})
            if same:
                # Timing needs the device to itself: never two cells on one device.
                raise SrbenchError(f"--devices names {', '.join(same)} more than once; list each device once")
        return LocalEngine(devices or [None], out_dir / ".images")
    if engine == "ray":
        if options.get("devices"):
            raise SrbenchError("--devices applies to --engine local; Ray places cells on GPUs itself")
        from srbench.runner.launchers.ray_engine import RayEngine

        device = str(plan.base.device)
        gpu = True if device.startswith("cuda") else False if device == "cpu" else None
        return RayEngine(
            address=options.get("address"),
            cpus_per_cell=int(options["cpus_per_cell"]) if options.get("cpus_per_cell") else None,
            gpu=gpu,
            retries=int(options["retries"]) if options.get("retries") is not None else 2,
        )
    raise SrbenchError(f"--engine {engine!r}: use local or ray")


def sweep_command(args: argparse.Namespace) -> int:
    from srbench.core.console import make_console
    from srbench.results.tables import console_table, footnotes
    from srbench.runner.orchestrator import default_output_dir
    from srbench.runner.sweep import run_sweep

    options = sweep_options(args)
    resume = options.get("resume")
    output = options.get("output")
    if resume and output and Path(output) != Path(resume):
        raise SrbenchError("--resume names the output folder itself; drop --output")
    if resume and not (Path(resume) / "cells").is_dir():
        raise SrbenchError(
            f"--resume {resume}: no cells/ folder there; pass a folder written by 'srbench sweep'"
        )
    out_dir = Path(resume or output or default_output_dir())
    plan = build_sweep_plan(options)
    engine = make_engine(options, out_dir, plan)
    console = make_console(stderr=True)
    try:
        if hasattr(engine, "start"):
            engine.start()
        summary = run_sweep(
            plan,
            out_dir,
            engine,
            resume=resume is not None,
            console=console,
            progress="none" if args.quiet else "auto",
        )
    finally:
        if hasattr(engine, "shutdown"):
            engine.shutdown()
    out = make_console()
    out.print(console_table(summary.run, width=out.width))
    for note in footnotes(summary.run):
        console.print(f"[dim]{note}", markup=True)
    for warning in summary.warnings:
        console.print(f"[yellow]warning: {warning}", markup=True)
    console.print(
        f"sweep: {summary.measured} cells measured, {summary.skipped} skipped, {summary.failed} failed "
        f"in {summary.wall_s:.1f} s on {engine.name}",
        markup=False,
    )
    console.print(f"results: {out_dir}", markup=False)
    if summary.interrupted:
        console.print(f"interrupted: resume with 'srbench sweep ... --resume {out_dir}'", markup=False)
        return 130
    return 1 if summary.failed else 0
