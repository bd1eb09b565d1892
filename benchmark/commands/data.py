"""``srbench data``: check, prepare and download SR datasets.

* ``srbench data check [PATH | --data PATH]``: every problem, one line each; exit 1 if any, 0 if clean.
* ``srbench data prepare PATH``: write the generated-LR cache of an HR-only folder.
* ``srbench data download NAME [--scale 4] [--dest datasets]``: fetch, verify and extract.
* ``srbench data list``: the datasets ``download`` knows.

PATH, ``--hr``/``--lr``, ``--layout``, ``--split`` and ``--degradation`` mean what they mean for
:func:`srbench.data.datasets.load_dataset`; no PATH is the built-in sample set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from srbench.commands.options import add_dataset_options, add_scale_option, dataset_path, with_example
from srbench.data.datasets import Dataset, resolve_dataset
from srbench.data.remote import MIRROR_ENV, fetch_dataset, remote_datasets


def _dataset_options(p: argparse.ArgumentParser, *, path_required: bool) -> None:
    add_dataset_options(p, positional=True, path_required=path_required)
    add_scale_option(p)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "data",
        help="check, prepare and download SR datasets",
        **with_example("srbench data check ~/datasets/DIV2K --decode"),
    )
    data_sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    data_sub.required = True

    check = data_sub.add_parser(
        "check",
        help="report every problem in a dataset (exit 1 if any)",
        **with_example("srbench data check ~/datasets/DIV2K --decode"),
    )
    _dataset_options(check, path_required=False)
    check.add_argument(
        "--decode",
        action="store_true",
        help="decode every image (slower; finds damage the default header and truncation checks miss)",
    )
    check.set_defaults(func=check_command)

    prepare = data_sub.add_parser(
        "prepare",
        help="write the generated-LR cache of an HR-only dataset",
        **with_example("srbench data prepare ~/datasets/Set14 --layout hr-only"),
    )
    _dataset_options(prepare, path_required=False)
    prepare.set_defaults(func=prepare_command)

    names = sorted(remote_datasets())
    download = data_sub.add_parser(
        "download",
        help=f"download, verify and extract a dataset ({MIRROR_ENV} replaces the base URL)",
        **with_example("srbench data download benchmark --scale 4"),
    )
    download.add_argument("name", choices=names, help="dataset to fetch")
    download.add_argument("--scale", type=int, default=4, help="LR scale to fetch (default 4)")
    download.add_argument(
        "--dest", type=Path, default=Path("datasets"), help="where to put it (default ./datasets)"
    )
    download.add_argument(
        "--keep-archives", action="store_true", help="keep the zip/tar files after extraction"
    )
    download.add_argument("--no-progress", action="store_true", help="no progress bar")
    download.set_defaults(func=download_command)

    listing = data_sub.add_parser(
        "list", help="datasets 'srbench data download' knows", **with_example("srbench data list")
    )
    listing.set_defaults(func=list_command)


def _resolve(args: argparse.Namespace, *, cache_lr: bool = True) -> Dataset:
    return resolve_dataset(
        dataset_path(args),
        scale=args.scale,
        layout=args.layout,
        hr=args.hr,
        lr=args.lr,
        allow_16bit=args.allow_16bit,
        split=args.split,
        degradation=args.degradation,
        cache_lr=cache_lr,
    )


def _where(args: argparse.Namespace) -> str:
    path = dataset_path(args)
    if path is not None:
        return str(path)
    if args.hr is not None:
        return f"{args.hr}" + (f" + {args.lr}" if args.lr is not None else "")
    return "the sample set"


def check_command(args: argparse.Namespace) -> int:
    """Print the dataset report; 0 when clean, 1 when there are problems."""
    dataset = _resolve(args)
    problems = dataset.check(decode=args.decode)
    head = (
        f"{_where(args)}: {dataset.name}, layout {dataset.layout}, {len(dataset)} pairs at x{dataset.scale}"
    )
    if not problems:
        print(f"{head}: no problems")
        return 0
    noun = "problem" if len(problems) == 1 else "problems"
    print(f"{head}: {len(problems)} {noun}")
    for problem in problems:
        print(f"  {problem.message}")
    return 1


def prepare_command(args: argparse.Namespace) -> int:
    """Check the dataset, then write every missing generated LR to its cache."""
    dataset = _resolve(args)
    problems = dataset.check()
    if problems:
        for problem in problems:
            print(f"  {problem.message}")
        print(f"{_where(args)}: {len(problems)} problems; fix them before preparing")
        return 1
    cached = [s.lr_cache for s in dataset.sources if s.lr_path is None and s.lr_cache is not None]
    if not cached:
        print(f"{_where(args)}: layout {dataset.layout} has its LR images already; nothing to prepare")
        return 0
    written = dataset.prepare()
    folder = cached[0].parent
    print(f"{dataset.name}: wrote {written} LR images to {folder} ({len(cached) - written} already cached)")
    return 0


def download_command(args: argparse.Namespace) -> int:
    """Fetch a known dataset under ``--dest`` and say how to use it."""
    data_path = fetch_dataset(
        args.name,
        args.dest,
        scale=args.scale,
        progress=not args.no_progress,
        keep_archives=args.keep_archives,
    )
    print(f"{args.name} ready in {data_path}; use: srbench run --data {data_path} --scale {args.scale}")
    return 0


def list_command(args: argparse.Namespace) -> int:
    """One line per downloadable dataset."""
    for key, entry in sorted(remote_datasets().items()):
        scales = ",".join(f"x{s}" for s in entry.scales) or "all scales"
        print(f"{key}: {entry.description} [{scales}] from {entry.base_url}")
    return 0
