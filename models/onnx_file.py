"""An ONNX file as a model (``srbench run --models span_x4.onnx`` or ``NAME=PATH.onnx``).

User documentation: docs/deployment.md ("An ONNX file is a model").

:func:`inspect_onnx` reads what srbench needs to measure a file someone else made, and refuses
a file it cannot measure with one line naming the file and the reason:

* the file must load and pass ``onnx.checker.check_model``, and ONNX Runtime's CPU provider
  must be able to create a session for it (every op has a kernel);
* it must be image-to-image: one float input ``(1, 3, H, W)`` and one float output
  ``(1, 3, s·H, s·W)`` for one integer scale ``s``;
* the **scale** is the output/input height ratio from ONNX shape inference at a fixed input
  size, or, when the shapes stay symbolic, from one ONNX Runtime forward of zeros;
* the **input range** (1 for [0,1], 255 for [0,255]) is read from srbench's own metadata
  (``srbench.input_range``, written by ``srbench export``) when present; otherwise it must be
  given as ``--input-range NAME=1|255``: srbench never guesses it;
* a **static** input (``1x3x64x64``, common in mobile exports) is recorded; the backend then
  runs every image through the tiler at that size
  (``srbench.backends.onnxruntime.session.static_forward``).

The producer (``producer_name producer_version``) and the graph's name describe the
architecture in the results row (``arch``: ``onnx:<producer>/<graph>``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srbench.core.errors import SrbenchError
from srbench.core.extras import require

#: ``metadata_props`` keys ``srbench export`` writes (srbench.backends.onnx_export.ExportMetadata).
META_INPUT_RANGE = "srbench.input_range"
META_SCALE = "srbench.scale"
META_MODEL = "srbench.model"
#: LR side of the probe forward used when shape inference leaves the output symbolic.
PROBE_SIDE = 64
_ELEM_DTYPES = {1: "fp32", 10: "fp16"}


@dataclass(frozen=True)
class OnnxFile:
    """What srbench knows about one ONNX file (see the module docstring).

    Attributes:
        path: the file (resolved).
        sha256: sha256 of its bytes (its identity in results and caches).
        size_bytes: its size in bytes.
        producer: ``producer_name producer_version`` ("" when the file does not say).
        graph_name: the graph's name.
        input_name / output_name: the graph's input and output names.
        dtype: the input's float type, ``fp32`` or ``fp16``.
        static_hw: ``(H, W)`` when the input has a fixed height and width, else None.
        scale: the upscaling factor.
        input_range: from srbench's metadata (None: the file does not say).
        opset: the default-domain opset.
        srbench_model: the model name in srbench's metadata ("" when absent).
    """

    path: Path
    sha256: str
    size_bytes: int
    producer: str
    graph_name: str
    input_name: str
    output_name: str
    dtype: str
    static_hw: tuple[int, int] | None
    scale: int
    input_range: float | None
    opset: int
    srbench_model: str = ""

    @property
    def arch(self) -> str:
        """The architecture as a results row shows it: ``onnx:<producer>/<graph name>``."""
        return f"onnx:{self.producer or 'unknown producer'}/{self.graph_name or 'unnamed graph'}"


def _refuse(path: Path, reason: str) -> SrbenchError:
    return SrbenchError(f"ONNX file {path}: {reason}")


def _dims(value: Any) -> list[int | str | None]:
    tt = value.type.tensor_type
    if not tt.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]


def _inferred_output_hw(proto: Any, hw: tuple[int, int]) -> tuple[int, int] | None:
    """The output's (H, W) from shape inference with the input fixed at ``1x3xHxW``."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, *hw)):
        dim.ClearField("dim_param")
        dim.dim_value = value
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception:
        return None
    out = _dims(inferred.graph.output[0])
    if len(out) == 4 and all(isinstance(d, int) and d > 0 for d in out[2:]):
        return int(out[2]), int(out[3])  # type: ignore[arg-type]
    return None


def inspect_onnx(path: Path, *, name: str | None = None) -> OnnxFile:
    """Read and check ``path`` (see the module docstring); ``name`` is the row's, for messages.

    Raises:
        SrbenchError: one line naming the file and why it cannot be measured (missing,
            unreadable, fails onnx.checker, an op ONNX Runtime cannot run, not
            image-to-image, no integer scale), or that the onnx extra is missing.
    """

    onnx = require("onnx", purpose="measuring an ONNX file")
    ort = require("onnxruntime", purpose="measuring an ONNX file")
    if not path.is_file():
        raise SrbenchError(f"ONNX file {path} not found; check the path")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:
        raise _refuse(path, f"not a readable ONNX file ({str(exc).splitlines()[0][:200]})") from None
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise _refuse(path, f"fails onnx.checker ({first.strip()[:200]})") from None
    inits = {i.name for i in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in inits]
    outputs = list(proto.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise _refuse(
            path,
            f"not an image-to-image network: {len(inputs)} input(s) and {len(outputs)} output(s), "
            "srbench measures one (1, 3, H, W) image in and one out",
        )
    x, y = inputs[0], outputs[0]
    elem = x.type.tensor_type.elem_type
    in_dims, out_dims = _dims(x), _dims(y)
    if (
        elem not in _ELEM_DTYPES
        or y.type.tensor_type.elem_type not in _ELEM_DTYPES
        or len(in_dims) != 4
        or (out_dims and len(out_dims) != 4)
        or (in_dims[1] not in (3, None) and not isinstance(in_dims[1], str))
        or (in_dims[0] not in (1, None) and not isinstance(in_dims[0], str))
    ):
        raise _refuse(
            path,
            f"not an image-to-image network: input {x.name!r} is {in_dims} and output {y.name!r} is "
            f"{out_dims or 'of unknown shape'}; srbench measures float (1, 3, H, W) -> (1, 3, sH, sW)",
        )
    static_hw = None
    if isinstance(in_dims[2], int) and isinstance(in_dims[3], int) and in_dims[2] > 0 and in_dims[3] > 0:
        static_hw = (int(in_dims[2]), int(in_dims[3]))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise _refuse(path, f"ONNX Runtime {ort.__version__} cannot run it ({first.strip()[:240]})") from None
    probe_hw = static_hw or (PROBE_SIDE, PROBE_SIDE)
    out_hw = _inferred_output_hw(proto, probe_hw)
    if out_hw is None:
        dtype = np.float16 if elem == 10 else np.float32
        try:
            out = session.run(None, {x.name: np.zeros((1, 3, *probe_hw), dtype)})[0]
        except Exception as exc:
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise _refuse(
                path, f"a probe forward at 1x3x{probe_hw[0]}x{probe_hw[1]} failed ({first[:200]})"
            ) from None
        if out.ndim != 4 or out.shape[1] != 3:
            raise _refuse(path, f"not an image-to-image network: output shape {list(out.shape)}")
        out_hw = (int(out.shape[2]), int(out.shape[3]))
    sh, sw = out_hw[0] / probe_hw[0], out_hw[1] / probe_hw[1]
    if sh != sw or sh < 1 or sh != int(sh):
        raise _refuse(
            path,
            f"not an upscaler: a {probe_hw[0]}x{probe_hw[1]} input gives {out_hw[0]}x{out_hw[1]} "
            "(no single integer scale)",
        )
    props = {p.key: p.value for p in proto.metadata_props}
    input_range = float(props[META_INPUT_RANGE]) if META_INPUT_RANGE in props else None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    producer = " ".join(p for p in (proto.producer_name, proto.producer_version) if p)
    return OnnxFile(
        path=path.resolve(),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        producer=producer,
        graph_name=proto.graph.name,
        input_name=x.name,
        output_name=y.name,
        dtype=_ELEM_DTYPES[elem],
        static_hw=static_hw,
        scale=int(sh),
        input_range=input_range,
        opset=int(opset),
        srbench_model=props.get(META_MODEL, ""),
    )


def is_onnx_token(token: str) -> bool:
    """True when a ``--models`` token (after ``NAME=``) names an ONNX file."""
    return token.lower().endswith(".onnx")
