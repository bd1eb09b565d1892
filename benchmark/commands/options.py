"""Options shared by several commands, each declared once.

A message that tells the user to pass an option must be printed only by commands that accept
it (``tests/test_options.py`` walks every such hint). Declaring shared options here, with one
name, one default and one help text, keeps the commands in step: ``run``, ``upscale``, ``profile``
and ``data check/prepare`` all take their dataset, model and tiling options from this module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from srbench.core.errors import SrbenchError

#: Dataset layouts, splits and LR kinds (mirrors :mod:`srbench.data.datasets`, which is not
#: imported here so that ``srbench --help`` stays light).
LAYOUT_CHOICES = ("sample", "div2k", "ntire-esr", "benchmark", "paired", "hr-only")
SPLIT_CHOICES = ("train", "valid", "test")
DEGRADATION_CHOICES = ("bicubic", "unknown")
DTYPE_CHOICES = ("fp32", "fp16", "bf16")
#: ``--tile-overlap`` default in LR pixels (== :data:`srbench.backends.tiling.DEFAULT_OVERLAP`).
DEFAULT_TILE_OVERLAP = 32


def add_scale_option(p: argparse.ArgumentParser) -> None:
    """``--scale`` (default 4)."""
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")


def add_allow_16bit_option(p: argparse.ArgumentParser) -> None:
    """``--allow-16bit``: read 16-bit images as their high byte (v >> 8)."""
    p.add_argument(
        "--allow-16bit",
        action="store_true",
        help="accept 16-bit images, keeping the high byte (v >> 8): the numbers of the 8-bit copy",
    )


def add_dtype_option(p: argparse.ArgumentParser) -> None:
    """``--dtype fp32|fp16|bf16``."""
    p.add_argument("--dtype", choices=list(DTYPE_CHOICES), default="fp32", help="model precision")


def add_weights_option(p: argparse.ArgumentParser) -> None:
    """``--weights NAME=PATH`` (repeatable)."""
    p.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="checkpoint for a model (repeatable); else SRBENCH_WEIGHTS_DIR, then the cache",
    )


def add_device_option(p: argparse.ArgumentParser) -> None:
    """``--device``."""
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")


def add_offline_option(p: argparse.ArgumentParser) -> None:
    """``--offline``."""
    p.add_argument("--offline", action="store_true", help="never download weights")


def add_protocol_options(p: argparse.ArgumentParser) -> None:
    """``--scale``, ``--device``, ``--weights``, ``--offline``: every command that runs models."""
    add_scale_option(p)
    add_device_option(p)
    add_weights_option(p)
    add_offline_option(p)
    add_model_options(p)


class ExampleFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an ``Example:`` epilog keeps its lines as written
    (one command a line); the description is still wrapped to the terminal."""

    def add_text(self, text: str | None) -> None:
        if text and text.startswith("Example"):
            self._add_item(lambda t: t + "\n", [text])
        else:
            super().add_text(text)


def with_example(*lines: str) -> dict:
    """``add_parser`` keywords ending a subcommand's help with its example(s)."""
    return {
        "epilog": "Example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(f"  {x}" for x in lines),
        "formatter_class": ExampleFormatter,
    }


def add_models_option(p: argparse.ArgumentParser) -> None:
    """``--models`` (optional when ``--ntire-repo``/``--teams`` name the rows) and the NTIRE options."""
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated: registry names, checkpoint paths, FILE.py:Class, module:callable, "
        "ntire:REPO/models/teamNN_Name.py (NAME=... names a row)",
    )
    p.add_argument(
        "--ntire-repo",
        type=Path,
        default=None,
        metavar="PATH",
        help="NTIRE challenge repository (models/teamNN_Name.py, model_zoo/teamNN_*.pth)",
    )
    p.add_argument("--teams", default=None, help="with --ntire-repo: team ids and ranges (0,1-10,15) or all")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model-args`` and ``--input-range``: per-model options for user code (and any model)."""
    p.add_argument(
        "--model-args",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="constructor keyword arguments as a JSON object, e.g. mynet='{\"feature_channels\": 32}'",
    )
    p.add_argument(
        "--input-range",
        action="append",
        default=[],
        metavar="NAME=1|255",
        help="value range the model takes and returns (default: its declared one, else 1)",
    )
    p.add_argument(
        "--weights-key",
        action="append",
        default=[],
        metavar="[NAME=]KEY",
        help="the checkpoint key whose weights to load (e.g. params, state_dict; nested: model/ema); "
        "default: the EMA copy when there is one. Without NAME=: every model",
    )


def model_tokens(args: argparse.Namespace) -> list[str]:
    """``--models`` tokens plus one ``ntire:REPO#ID`` token per ``--teams`` id of ``--ntire-repo``."""
    from srbench.models.usercode import ntire_team_tokens, parse_teams

    tokens = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    repo, teams = getattr(args, "ntire_repo", None), getattr(args, "teams", None)
    if (repo is None) != (teams is None):
        raise SrbenchError("--ntire-repo and --teams go together, e.g. --ntire-repo PATH --teams 0,22,38")
    if repo is not None:
        tokens += ntire_team_tokens(repo, parse_teams(teams, repo))
    if not tokens:
        raise SrbenchError(
            "name the models: --models rlfn,span (see 'srbench list') or --ntire-repo PATH --teams N"
        )
    return tokens


def add_recount_option(p: argparse.ArgumentParser) -> None:
    """``--recount``: count complexity afresh instead of reading the complexity cache."""
    p.add_argument(
        "--recount",
        action="store_true",
        help="count complexity afresh instead of reading the complexity cache ($SRBENCH_CACHE_DIR)",
    )


def add_tiling_options(p: argparse.ArgumentParser) -> None:
    """``--tile`` and ``--tile-overlap`` (LR pixels), shared by ``run`` and ``upscale``."""
    p.add_argument(
        "--tile", type=int, default=None, help="tile every image (LR pixels); default: only on OOM"
    )
    p.add_argument("--tile-overlap", type=int, default=DEFAULT_TILE_OVERLAP, help="tile overlap (LR pixels)")


def add_dataset_options(p: argparse.ArgumentParser, *, positional: bool, path_required: bool = False) -> None:
    """Where the data is: ``--data PATH`` (or a positional PATH), ``--layout``, ``--hr``/``--lr``,
    ``--split``, ``--degradation``, ``--allow-16bit``; every dataset message names these.

    With ``positional`` the path may also be given without ``--data`` (``srbench data check
    PATH``); both land in ``args.data``.
    """
    if positional:
        p.add_argument(
            "path",
            nargs=None if path_required else "?",
            type=Path,
            default=None,
            help="dataset folder" + ("" if path_required else " (default: the built-in sample set)"),
        )
    p.add_argument(
        "--data",
        default=None,
        help="dataset folder, or sample / sample-mini (default: the embedded sample set)",
    )
    p.add_argument(
        "--layout", choices=LAYOUT_CHOICES, default=None, help="force a layout instead of detecting it"
    )
    p.add_argument(
        "--hr", type=Path, default=None, help="HR folder (with --lr: a paired dataset; alone: HR-only)"
    )
    p.add_argument("--lr", type=Path, default=None, help="LR folder paired with --hr")
    p.add_argument(
        "--split", choices=SPLIT_CHOICES, default="valid", help="DIV2K / NTIRE split (default valid)"
    )
    p.add_argument(
        "--degradation",
        choices=DEGRADATION_CHOICES,
        default="bicubic",
        help="DIV2K LR kind (default bicubic)",
    )
    add_allow_16bit_option(p)


def dataset_path(args: argparse.Namespace) -> str | None:
    """The dataset path given as ``--data`` or positionally (both at once is an error)."""
    positional = getattr(args, "path", None)
    if positional is not None and args.data is not None:
        raise SrbenchError(f"give the dataset once: PATH ({positional}) or --data ({args.data}), not both")
    return str(positional) if positional is not None else args.data


def check_tiling(args: argparse.Namespace) -> None:
    """Refuse a tile no larger than its overlap."""
    if args.tile is not None and args.tile <= args.tile_overlap:
        raise SrbenchError(f"--tile {args.tile} must be larger than --tile-overlap {args.tile_overlap}")


def parse_weights_keys(items: list[str]) -> dict[str, str]:
    """``--weights-key [NAME=]KEY`` (repeatable) as a dict; a bare KEY is stored under ``*``
    (every model). A malformed item is a one-line error."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, key = item.rpartition("=")
        if (sep and not name) or not key:
            raise SrbenchError(
                f"--weights-key {item!r} is not [NAME=]KEY "
                "(e.g. --weights-key params or --weights-key span=params)"
            )
        out[name if sep else "*"] = key
    return out


def parse_weights(items: list[str]) -> dict[str, str]:
    """``--weights NAME=PATH`` (repeatable) as a dict; a malformed item is a one-line error."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SrbenchError(f"--weights {item!r} is not NAME=PATH (e.g. --weights span=span_x4.pth)")
        if not Path(path).is_file():
            raise SrbenchError(f"--weights {name}={path}: file not found")
        out[name] = path
    return out


def parse_shape(text: str, option: str) -> list[int]:
    """``1x3x256x256`` → ``[1, 3, 256, 256]``; ``option`` names the option in the error."""
    try:
        shape = [int(v) for v in text.lower().split("x")]
    except ValueError:
        shape = []
    if len(shape) != 4 or min(shape) < 1:
        raise SrbenchError(f"{option} {text!r} is not NxCxHxW (e.g. 1x3x256x256)")
    return shape
