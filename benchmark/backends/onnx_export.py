"""Exporting a model's deployed form to one self-contained ONNX file.

What :func:`export_onnx` writes (the contract ``srbench export --format onnx`` and the
``onnxruntime`` backend rely on):

* the **deployed** network: re-parameterised branches fused (SPAN's Conv3XC as one 3×3
  conv), as :func:`srbench.runner.building.build_model` builds it; a module still holding
  training branches is refused. A model may offer ``export_module()`` returning an
  equivalent that traces with dynamic shapes (``bicubic`` does);
* exported by ``torch.onnx.export(dynamo=True)`` at opset :data:`DEFAULT_OPSET` (17 or newer
  on request), weights inside the file (no ``.onnx.data`` beside it: a browser loads one URL);
* one input ``input``, float ``(1, 3, height, width)`` RGB on ``[0, input_range]``, and one
  output ``output``, ``(1, 3, scale·height, scale·width)`` on the same range, unclamped;
  height and width are dynamic (``dim_param`` ``height``/``width``);
* pixel shuffle as ``DepthToSpace`` with ``mode="CRD"`` (ONNX's default ``DCR`` orders the
  channels differently and scrambles the colours: a known converter bug); any other mode
  is refused at export;
* ``metadata_props`` with the keys of :class:`ExportMetadata` (prefix ``srbench.``); the
  exporter's per-node metadata (stack traces with local paths) is dropped, so the file's
  bytes depend only on the network, its weights and the tool versions;
* ``onnx.checker.check_model(full_check=True)`` passes.

An op that has no ONNX translation is one :class:`SrbenchError` line naming the op and the
module that calls it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srbench import __version__
from srbench.core.errors import SrbenchError
from srbench.core.extras import require, versions
from srbench.core.files import atomic_write_bytes

#: Opset written by default: the dynamo exporter's native one (17 is converted down).
DEFAULT_OPSET = 18
MIN_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"
#: The traced example's LR side (pixels). Any size works: height and width stay symbolic.
EXAMPLE_SIDE = 64
#: Prefix of srbench's ``metadata_props`` keys.
META_PREFIX = "srbench."
#: Bumped whenever the exported graph for the same network and weights changes (cache key).
EXPORT_FORMAT = 1

_PURPOSE = "ONNX export"


@dataclass(frozen=True)
class ExportMetadata:
    """What an exported file says about itself (``metadata_props``; see :meth:`to_props`).

    Attributes:
        model: the srbench model (row) name.
        arch: the registered architecture.
        scale: the upscaling factor.
        input_range: the range of input and output values: 1.0 for [0,1], 255.0 for [0,255].
        weights_sha256: sha256 of the checkpoint file the weights came from ("" without one:
            a parameter-free model or random initialisation).
        dtype: ``fp32`` or ``fp16`` (the graph's float type).
        srbench_version: the srbench version that wrote the file.
    """

    model: str
    arch: str
    scale: int
    input_range: float
    weights_sha256: str
    dtype: str = "fp32"
    srbench_version: str = __version__

    def to_props(self) -> dict[str, str]:
        """``{"srbench.model": ..., ..., "srbench.json": ...}``: the ``metadata_props`` entries.

        ONNX metadata values are strings. Each field has its own key, numbers written as JSON
        number literals (``input_range`` ``"1"`` or ``"255"``, ``scale`` ``"4"``: what ``int``,
        ``float``, ``JSON.parse`` and ``Number`` all read as the number); ``srbench.json``
        holds every field in one JSON object with numbers as JSON numbers.
        """
        fields_ = asdict(self)
        props = {
            f"{META_PREFIX}{k}": _number_text(v) if isinstance(v, int | float) else str(v)
            for k, v in fields_.items()
        }
        props[f"{META_PREFIX}json"] = json.dumps(fields_, sort_keys=True)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], *, source: str = "the file") -> ExportMetadata:
        """Inverse of :meth:`to_props`; a file without srbench's keys is a one-line error."""
        values: dict[str, Any] = {}
        typed = props.get(f"{META_PREFIX}json")
        if typed is not None:
            # Files written since issue 26: one JSON object, numbers as numbers.
            try:
                data = json.loads(typed)
                values = {f.name: data[f.name] for f in fields(cls)}
            except (ValueError, KeyError, TypeError):
                raise SrbenchError(
                    f"{source} has a broken '{META_PREFIX}json' metadata entry; export it again with "
                    "'srbench export'"
                ) from None
            props = {}  # the per-key strings repeat the same values
        for f in fields(cls) if props else ():
            key = f"{META_PREFIX}{f.name}"
            if key not in props:
                raise SrbenchError(
                    f"{source} has no '{key}' metadata: it was not written by 'srbench export'"
                )
            values[f.name] = props[key]
        values["scale"] = int(values["scale"])
        values["input_range"] = float(values["input_range"])
        return cls(**values)


def _number_text(v: float) -> str:
    """A JSON number literal: integral values without a fraction (``1.0`` → ``"1"``)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return json.dumps(v)


# --------------------------------------------------------------------------- the deployed form


def deployed_module(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The module to export for ``model``: its ``export_module()`` if it has one, in eval mode.

    Refuses a network still holding re-parameterisable training branches (``has_branches``):
    the exported file must be the deployed form.
    """
    for name, sub in model.named_modules():
        if getattr(sub, "has_branches", False):
            raise SrbenchError(
                f"module '{name or type(model).__name__}' ({type(sub).__name__}) is in its training "
                "form; export the deployed (fused) model that 'srbench run' builds"
            )
    export_fn = getattr(model, "export_module", None)
    module = export_fn() if callable(export_fn) else model
    return module.to(dtype=dtype).eval()


# --------------------------------------------------------------------------- export


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The dynamo exporter logs progress and warnings (torchvision absent, deprecations) that
    # mean nothing to srbench users; real failures still raise.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _failed_node(exc: BaseException) -> torch.fx.Node | None:
    """The FX node being translated when the exporter raised, from the traceback's frames."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        tb = cur.__traceback__
        node = None
        while tb is not None:
            candidate = tb.tb_frame.f_locals.get("node")
            if isinstance(candidate, torch.fx.Node):
                node = candidate  # keep the innermost
            tb = tb.tb_next
        if node is not None:
            return node
        cur = cur.__cause__ or cur.__context__
    return None


def _chain_text(exc: BaseException) -> str:
    parts, seen, cur = [], set(), exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {cur}")
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def _module_of(node: torch.fx.Node | None) -> str:
    """``module 'block_1.c1_r' (Conv3XC)`` for the innermost module that called ``node``."""
    stack = (node.meta.get("nn_module_stack") if node is not None else None) or {}
    if not stack:
        return "an unknown module"
    path, cls = list(stack.values())[-1]
    cls_name = getattr(cls, "__name__", str(cls)).rsplit(".", 1)[-1]
    return f"module '{path or '(root)'}' ({cls_name})"


def export_error(exc: BaseException, name: str, opset: int, advice: str) -> SrbenchError:
    """The one-line error for a failed export of model ``name``, ending with ``advice`` (what
    the command that exported can do instead)."""
    text = _chain_text(exc)
    node = _failed_node(exc)
    missing = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)'", text)
    if missing or "DispatchError" in text:
        op = missing.group(1) if missing else str(getattr(node, "target", "an operator"))
        return SrbenchError(
            f"cannot export {name} to ONNX: operator {op} in {_module_of(node)} has no ONNX mapping "
            f"at opset {opset}; {advice}"
        )
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    where = f" in {_module_of(node)}" if node is not None else ""
    return SrbenchError(f"cannot export {name} to ONNX{where}: {first[:300]}; {advice}")


def export_onnx(model: nn.Module, meta: ExportMetadata, *, opset: int = DEFAULT_OPSET, advice: str) -> bytes:
    """The ONNX file (bytes) of ``model``'s deployed form; see the module docstring.

    Args:
        model: the built, loaded model (CPU, any mode; see :func:`deployed_module`).
        meta: what the file records; ``meta.dtype`` chooses fp32 or fp16.
        opset: ONNX opset, at least :data:`MIN_OPSET`.
        advice: the end of the error when the model cannot be exported: what the calling
            command offers instead (each command has its own options).

    Raises:
        SrbenchError: the extra is missing, an op has no ONNX mapping, the model cannot be
            traced with a dynamic height and width, or a check fails.
    """
    onnx = require("onnx", purpose=_PURPOSE)
    require("onnxscript", purpose=_PURPOSE)
    if opset < MIN_OPSET:
        raise SrbenchError(f"--opset {opset} is too old; use {MIN_OPSET} or newer")
    dtype = {"fp32": torch.float32, "fp16": torch.float16}.get(meta.dtype)
    if dtype is None:
        raise SrbenchError(f"ONNX export supports fp32 and fp16, not {meta.dtype}")
    module = deployed_module(model, dtype)
    example = torch.rand(1, 3, EXAMPLE_SIDE, EXAMPLE_SIDE, dtype=dtype) * meta.input_range
    height = torch.export.Dim("height", min=2)
    width = torch.export.Dim("width", min=2)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=({2: height, 3: width},),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:
        raise export_error(exc, meta.model, opset, advice) from None
    proto = program.model_proto
    for node in proto.graph.node:
        del node.metadata_props[:]
    del proto.metadata_props[:]
    for key, value in meta.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    check_graph(proto, meta.model, advice)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise SrbenchError(f"the ONNX file of {meta.model} fails onnx.checker: {exc}") from None
    return proto.SerializeToString()


def check_graph(proto: Any, name: str, advice: str) -> None:
    """Refuse a graph the backend cannot trust: DCR pixel shuffle, static height/width
    (``advice`` ends the latter's error, as in :func:`export_error`)."""
    for node in proto.graph.node:
        if node.op_type == "DepthToSpace":
            modes = [a.s.decode() for a in node.attribute if a.name == "mode"]
            mode = modes[0] if modes else "DCR"  # ONNX's default when the attribute is absent
            if mode != "CRD":
                raise SrbenchError(
                    f"the ONNX export of {name} has DepthToSpace in {mode} mode (node {node.name}); "
                    "pixel shuffle must be CRD, or the output channels are scrambled"
                )
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(isinstance(d, str) for d in dims[2:]):
        raise SrbenchError(
            f"the ONNX export of {name} has a fixed input size {dims}: the model specialised on "
            f"its example input's height/width; {advice}"
        )


def write_onnx(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to ``path`` (folders created); an unwritable path is one line."""

    try:
        atomic_write_bytes(path, data, mkdir=True)
    except OSError as exc:
        raise SrbenchError(f"cannot write {path} ({exc.strerror or exc}); choose another -o") from None


def read_metadata(source: Path | bytes) -> ExportMetadata:
    """The :class:`ExportMetadata` recorded in an ONNX file (path or bytes)."""
    onnx = require("onnx", purpose="reading an ONNX file")
    label = str(source) if isinstance(source, Path) else "the ONNX bytes"
    try:
        if isinstance(source, Path):
            proto = onnx.load(str(source), load_external_data=False)
        else:
            proto = onnx.load_from_string(source)
    except Exception as exc:
        raise SrbenchError(f"{label} is not a readable ONNX file ({exc})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    return ExportMetadata.from_props(props, source=label)


def export_environment() -> dict[str, Any]:
    """The ``environment`` facts of a backend that runs the export: the versions of ``onnx``,
    ``onnxruntime`` and ``onnxscript`` and ONNX Runtime's available execution providers."""
    env: dict[str, Any] = dict(versions())
    try:
        import onnxruntime
    except ImportError:
        return env
    env["ort_providers"] = list(onnxruntime.get_available_providers())
    return env
