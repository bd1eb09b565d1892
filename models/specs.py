"""What ``--models`` names, as :class:`ModelSpec`: the one carrier of a model's identity.

Each comma-separated token of ``--models`` is one of (``NAME=`` in front names the row):

* a registry name: ``rlfn``, ``span`` (see ``srbench list``);
* a checkpoint path: ``my_rlfn_s_x2.pth`` (architecture and scale recognised from its keys);
* a Python file and a class or factory in it: ``mynet.py:MyNet`` (row named after it);
* an importable module and a class or factory: ``mypkg.nets:build_net``;
* an ONNX file: ``span_x4.onnx`` (row named after the file; measured on ONNX Runtime, see
  :mod:`srbench.models.onnx_file`);
* an NTIRE challenge submission: ``ntire:REPO/models/team22_SPANV2.py[:Class]`` (row
  ``22_SPANV2``; class, checkpoint in ``REPO/model_zoo`` and data range found by
  :func:`srbench.models.usercode.ntire_team`), or ``ntire:REPO#22`` (team 22 as the
  repository's ``test_demo.py`` builds it; what ``--ntire-repo REPO --teams`` expands to).

Per-model options are keyed by the row name or by the token as typed (``mynet.py:MyNet``):
``--weights NAME=PATH``, ``--model-args NAME=JSON`` (constructor keyword arguments) and
``--input-range NAME=1|255``. They are folded into the spec, which is plain picklable data,
so worker processes rebuild exactly the same model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.models.loading import detect_architecture, read_checkpoint
from srbench.models.onnx_file import OnnxFile, inspect_onnx, is_onnx_token
from srbench.models.registry import get_entry
from srbench.models.spandrel_adapter import spandrel_entry
from srbench.models.usercode import (
    TEAM_SEPARATOR,
    CodeRef,
    check_input_range,
    import_file,
    module_classes,
    ntire_team,
    ntire_team_of_repo,
    resolve_callable,
    root_classes,
    split_code_token,
)

NTIRE_PREFIX = "ntire:"


@dataclass(frozen=True)
class ModelSpec:
    """One row of a run: what to build and load.

    Attributes:
        name: the row's name.
        arch: the registered architecture, or for user code the token as typed
            (``mynet.py:MyNet``).
        weights_path: the checkpoint to load strictly (None: official weights, if any).
        code: the user's class/factory (None for registered models).
        model_args: keyword arguments for the builder/class (``--model-args``, JSON).
        input_range: explicit ``--input-range`` (None: the entry's or the model's own).
        scale: the scale the checkpoint was recognised at (None: not recognised/not a path).
        weights_key: ``--weights-key``: the checkpoint key to load (None: srbench's rule,
            the EMA copy first; see :func:`srbench.models.loading.unwrap_state_dict`).
        onnx: the ONNX file this row measures (None: a PyTorch model).
        precision: the ONNX Runtime precision variant this row measures (``--precision``).
        base_name: for a variant, the name of its fp32 row (None for fp32 rows).
    """

    name: str
    arch: str
    weights_path: Path | None = None
    code: CodeRef | None = None
    model_args: Mapping[str, Any] = field(default_factory=dict)
    input_range: float | None = None
    scale: int | None = None
    weights_key: str | None = None
    onnx: OnnxFile | None = None
    precision: str = "fp32"
    base_name: str | None = None


#: ``--weights-key`` entry that applies to every row (a KEY given without NAME=).
EVERY_ROW = "*"


def parse_model_specs(
    text: str,
    weights: Mapping[str, str] | None = None,
    *,
    model_args: Mapping[str, Mapping[str, Any]] | None = None,
    input_ranges: Mapping[str, float] | None = None,
    scale: int | None = None,
    option: str = "--models",
    weights_keys: Mapping[str, str] | None = None,
) -> list[ModelSpec]:
    """Parse ``--models`` (see the module docstring) and fold in the per-model options.

    ``weights``/``model_args``/``input_ranges`` are keyed by row name or by the token as
    typed; a key that names no model is an error. With ``scale``, a checkpoint recognised
    at another scale is refused with the command that measures that same file. ``option``
    is the option messages name (``upscale`` takes one model as ``--model``).
    """
    weights, model_args, input_ranges = dict(weights or {}), dict(model_args or {}), dict(input_ranges or {})
    weights_keys = dict(weights_keys or {})
    every_key = weights_keys.pop(EVERY_ROW, None)
    specs: list[ModelSpec] = []
    aliases: dict[str, str] = {}  # option key -> row name
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        spec, typed = _parse_token(token, scale, option)
        specs.append(spec)
        aliases[spec.name] = spec.name
        aliases.setdefault(typed, spec.name)
    if not specs:
        raise SrbenchError("the model list is empty; name at least one model (see 'srbench list')")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SrbenchError(
            f"{', '.join(dupes)} named more than once; name each row once (NAME=... names a row)"
        )
    per_row: dict[str, dict[str, Any]] = {n: {} for n in names}
    for option, values in (
        ("--weights", weights),
        ("--model-args", model_args),
        ("--input-range", input_ranges),
        ("--weights-key", weights_keys),
    ):
        for key, value in values.items():
            row = aliases.get(key)
            if row is None:
                raise SrbenchError(
                    f"{option} {key}=...: no model named {key!r} in the model list (rows: {', '.join(names)})"
                )
            per_row[row][option] = value
    out = []
    for spec in specs:
        opts = per_row[spec.name]
        if "--weights" in opts:
            spec = replace(spec, weights_path=Path(opts["--weights"]))
        if "--model-args" in opts:
            spec = replace(spec, model_args=dict(opts["--model-args"]))
        if "--input-range" in opts:
            spec = replace(spec, input_range=check_input_range(float(opts["--input-range"]), what=spec.name))
        key = opts.get("--weights-key", every_key)
        if key is not None:
            spec = replace(spec, weights_key=str(key))
        if spec.onnx is not None and spec.input_range is None:
            raise SrbenchError(
                f"ONNX file {spec.onnx.path.name} does not say its input range (no srbench metadata); "
                f"pass --input-range {spec.name}=1 if it takes [0,1] or --input-range {spec.name}=255"
            )
        out.append(spec)
    return out


def specs_from_config(config: Any) -> list[ModelSpec]:
    """The specs a :class:`~srbench.results.config.RunConfig` names (models, weights,
    model args, input ranges), checked against its scale."""
    specs = parse_model_specs(
        ",".join(config.models),
        config.weights,
        model_args=getattr(config, "model_args", None),
        input_ranges=getattr(config, "input_ranges", None),
        scale=config.scale,
        weights_keys=getattr(config, "weights_keys", None),
    )
    precisions = [p for p in getattr(config, "precisions", None) or ["fp32"] if p != "fp32"]
    return [
        *specs,
        *(replace(s, name=f"{s.name}-{p}", precision=p, base_name=s.name) for p in precisions for s in specs),
    ]


def _parse_token(token: str, scale: int | None, option: str) -> tuple[ModelSpec, str]:
    """The spec of one ``--models`` token and the token as typed without ``NAME=``."""

    name: str | None
    name, sep, rest = token.partition("=")
    if not sep:
        name, rest = None, token
    elif not name:
        raise SrbenchError(f"{option} {token!r}: empty row name before '='")
    if is_onnx_token(rest):
        info = inspect_onnx(Path(rest), name=name)
        if scale is not None and info.scale != scale:
            raise SrbenchError(
                f"ONNX file {rest} upscales x{info.scale}, not x{scale}: run with {option} {token} "
                f"--scale {info.scale}"
            )
        spec = ModelSpec(
            name=name or Path(rest).stem,
            arch=info.arch,
            input_range=info.input_range,
            scale=info.scale,
            onnx=info,
        )
        return spec, rest
    if rest.startswith(NTIRE_PREFIX):
        target = rest[len(NTIRE_PREFIX) :]
        repo, sep, team_id = target.rpartition(TEAM_SEPARATOR)
        if sep and re.fullmatch(r"-?\d+", team_id):
            team = ntire_team_of_repo(Path(repo), int(team_id), option=option)
        else:
            split = split_code_token(target)
            path, attr = split if split is not None and split[0].endswith(".py") else (target, None)
            team = ntire_team(Path(path), attr, option=option)
        return (
            ModelSpec(
                name=name or team.row,
                arch=rest,
                weights_path=team.checkpoint,
                code=team.ref,
                model_args=team.model_args,
                input_range=team.input_range,
            ),
            rest,
        )
    code = split_code_token(rest)
    if code is not None:
        target, attr = code
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise SrbenchError(f"model file {target} not found; check the path given to {option}")
            attr = attr or _only_model_class(path, option)
            ref = CodeRef(attr=attr, path=str(path.resolve()))
        else:
            if attr is None:  # pragma: no cover - split_code_token always gives attr for modules
                raise SrbenchError(f"{option} {token!r}: name the callable as module:callable")
            ref = CodeRef(attr=attr, module=target)

        resolve_callable(ref)  # import now: a bad file is a one-line error before any model runs
        typed = f"{target}:{attr}"
        return ModelSpec(name=name or attr, arch=typed, code=ref), typed
    if sep or _looks_like_checkpoint(rest):
        return _spec_from_checkpoint(name, Path(rest), token, scale, option), rest
    entry = get_entry(rest)
    return ModelSpec(name=rest, arch=entry.name), rest


def _only_model_class(path: Path, option: str) -> str:
    """The one ``nn.Module`` class of ``path`` that no other class of it uses."""

    classes = module_classes(import_file(path))
    roots = root_classes(path, classes)
    if len(roots) == 1:
        return roots[0].__name__
    if not classes:
        raise SrbenchError(f"model file {path} defines no torch.nn.Module class; name one as {path}:Class")
    pool = roots or classes
    raise SrbenchError(
        f"model file {path} defines several candidate models ({', '.join(c.__name__ for c in pool)}); "
        f"name one: {option} {path}:{pool[0].__name__}"
    )


def _looks_like_checkpoint(token: str) -> bool:
    return token.endswith((".pth", ".pt", ".safetensors", ".ckpt")) or os.sep in token


def _spec_from_checkpoint(
    name: str | None, path: Path, token: str, scale: int | None, option: str
) -> ModelSpec:

    if not path.is_file():
        raise SrbenchError(f"checkpoint {path} not found; check its path")
    if name is not None and _is_registered(name):
        return ModelSpec(name=name, arch=name, weights_path=path)
    detected = detect_architecture(read_checkpoint(path))
    if detected is None:
        detected = spandrel_entry(path)
    if detected is None:
        raise SrbenchError(
            f"{path}: no registered architecture fits this checkpoint's keys (nor spandrel's, "
            "if installed: pip install 'srbench[spandrel]'); name it as ARCH=PATH (see 'srbench list'), "
            f"or measure your own class with {option} FILE.py:Class --weights FILE.py:Class=PATH"
        )
    arch, found_scale = detected
    if scale is not None and found_scale != scale:
        # The hint keeps the user's file: the official checkpoint is a different network.
        raise SrbenchError(
            f"checkpoint {path} is '{arch}' at x{found_scale}, not x{scale}: "
            f"run with {option} {token} --scale {found_scale}"
        )
    return ModelSpec(name=name or path.stem, arch=arch, weights_path=path, scale=found_scale)


def _is_registered(name: str) -> bool:
    try:
        get_entry(name)
    except SrbenchError:
        return False
    return True


# --------------------------------------------------------------------------- per-model options


def _pairs(items: list[str], option: str, example: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        # The value may hold '=' (JSON); the name may hold ':' but not '='.
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SrbenchError(f"{option} {item!r} is not NAME=VALUE (e.g. {option} {example})")
        out.append((name, value))
    return out


def parse_model_args(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--model-args NAME=JSON`` (repeatable) → ``{NAME: kwargs}``; one-line errors."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in _pairs(items, "--model-args", "mynet='{\"feature_channels\": 32}'"):
        try:
            kwargs = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SrbenchError(
                f"--model-args {name}: {value!r} is not valid JSON ({exc.msg} at column {exc.colno}); "
                f"quote it for the shell: --model-args {name}='{{\"feature_channels\": 32}}'"
            ) from None
        if not isinstance(kwargs, dict):
            raise SrbenchError(
                f"--model-args {name}: {value!r} is a JSON {type(kwargs).__name__}, not an object of "
                f"keyword arguments; e.g. --model-args {name}='{{\"feature_channels\": 32}}'"
            )
        out[name] = kwargs
    return out


def parse_input_ranges(items: list[str]) -> dict[str, float]:
    """``--input-range NAME=1|255`` (repeatable) → ``{NAME: 1.0 | 255.0}``; one-line errors."""
    out: dict[str, float] = {}
    for name, value in _pairs(items, "--input-range", "mynet=255"):
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if number not in (1.0, 255.0):
            raise SrbenchError(
                f"--input-range {name}={value}: the range is 1 (model takes [0,1]) or 255 ([0,255])"
            )
        out[name] = number
    return out
