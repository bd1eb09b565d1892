"""Complexity of an ONNX graph: params, MACs, activations and conv count, read from the file.

srbench's own counter for models that arrive as ONNX files (``srbench run --models
FILE.onnx``), written to give, on a graph exported from a PyTorch network, the integers
:mod:`srbench.measure.counting` gives on the network itself (fvcore's MACs and the NTIRE
activation/conv definitions; pinned in ``tests/test_onnx_models.py`` on srbench's exports of
rlfn, span, span_ca, efdn and spanf). All figures are at one input shape, by default the
NTIRE ``1x3x256x256``; the definitions are in docs/deployment.md ("Counting an ONNX file").

Shapes come from ONNX shape inference with the input's height and width fixed
(``data_prop`` on, so ``Shape``-computed ``Resize`` sizes resolve); a value it cannot resolve
is read from one ONNX Runtime forward of the zero input at that shape.

``flops`` (multiply-adds, one per MAC as NTIRE reports them)
    ``Conv``/``ConvInteger``: batch × elements of the weight × output H·W (bias ignored);
    ``ConvTranspose``: the same with the *input* H·W; ``MatMul``/``MatMulInteger``:
    elements of the first operand × last dimension of the second; ``Gemm``: M·K·N;
    ``BatchNormalization``: 2 per input element; ``LayerNormalization``,
    ``GroupNormalization``, ``InstanceNormalization``: 5 per input element;
    ``Resize``: 1 per output element (``nearest``), 4 (``linear``);
    ``GlobalAveragePool`` and ``ReduceMean`` over exactly the H and W axes of a 4-D tensor
    (how global average pooling is exported): 1 per input element. Every other op counts 0 and, unless it only
    moves or describes data (:data:`FREE_OPS`), is listed in ``unsupported_ops``
    (op type -> number of nodes), as fvcore lists the aten ops it cannot count.
``activations``
    Sum of the output elements of every ``Conv``/``ConvTranspose``/``ConvInteger`` node.
``convs``
    Number of those nodes.
``params``
    Elements of the distinct initializers that fill a parameter slot (a tensor used by several
    slots counts once, as PyTorch counts a shared module once): the weight and bias of
    ``Conv``/``ConvTranspose``/``Gemm``, an initializer operand of
    ``MatMul``, the scale and bias of the normalisations and the slope of ``PRelu``, followed back through
    ``DequantizeLinear`` and ``Cast`` (int8 and fp16 variants hold their weights behind
    them). Every other initializer element (scalars, mean-shift buffers, shape constants,
    quantisation scales) is counted in ``constants``; ``shared_params`` is the elements of
    the extra uses of tensors that fill several slots (shared modules, or identical
    initializers an exporter merged: untrained weights can lose parameters that way).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srbench.core.errors import SrbenchError
from srbench.measure.counting import NTIRE_INPUT_SHAPE

#: Ops that only move, reshape or describe data: they cost 0 and are not listed as uncounted.
FREE_OPS = frozenset(
    {
        "Shape",
        "Size",
        "Constant",
        "ConstantOfShape",
        "Identity",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "Expand",
        "Range",
        "Cast",
    }
)
_CONV_OPS = frozenset({"Conv", "ConvInteger", "ConvTranspose"})
#: The input slots of each op that hold parameters (weights, biases, scales, slopes).
_PARAM_SLOTS = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "ConvInteger": (1,),
    "Gemm": (1, 2),
    "MatMul": (0, 1),
    "MatMulInteger": (0, 1),
    "BatchNormalization": (1, 2),
    "LayerNormalization": (1, 2),
    "GroupNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "PRelu": (1,),
}
_FLOAT_TYPES = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass(frozen=True)
class OnnxComplexity:
    """Complexity of one ONNX graph at ``input_shape`` (see the module docstring).

    Units: ``params``/``constants``/``shared_params`` tensor elements, ``flops``
    multiply-adds, ``activations`` elements, ``convs`` nodes, ``seconds`` wall time spent
    counting. ``probed`` is True when some shape came from an ONNX Runtime forward instead of shape inference.
    """

    input_shape: tuple[int, ...]
    params: int
    flops: int
    activations: int
    convs: int
    constants: int = 0
    shared_params: int = 0
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    probed: bool = False
    seconds: float = 0.0


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def fixed_input(proto: Any, shape: tuple[int, ...]) -> Any:
    """A copy of ``proto`` whose first input has the concrete ``shape`` (symbolic dims set)."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != len(shape):
        raise SrbenchError(f"the graph's input has rank {len(dims)}, not {len(shape)} (N, C, H, W)")
    for dim, value in zip(dims, shape):
        if dim.HasField("dim_value") and dim.dim_value != value:
            raise SrbenchError(
                f"the graph's input is fixed at {[d.dim_value or d.dim_param for d in dims]}, "
                f"cannot count it at {list(shape)}"
            )
        dim.ClearField("dim_param")
        dim.dim_value = value
    return fixed


def _inferred_shapes(proto: Any) -> dict[str, tuple[int, ...] | None]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    shapes: dict[str, tuple[int, ...] | None] = {}
    graph = inferred.graph
    for v in [*graph.input, *graph.value_info, *graph.output]:
        tt = v.type.tensor_type
        if not tt.HasField("shape"):
            shapes[v.name] = None
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        shapes[v.name] = None if any(d is None for d in dims) else tuple(int(d) for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return shapes


def _probe_shapes(proto: Any, names: list[str], shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The shapes of ``names`` from one ONNX Runtime forward of zeros at ``shape``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    have = {o.name for o in probe.graph.output}
    for name in names:
        if name not in have:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    elem = proto.graph.input[0].type.tensor_type.elem_type
    dtype = np.float16 if elem == 10 else np.float32
    feed = {session.get_inputs()[0].name: np.zeros(shape, dtype)}
    outs = session.run(names, feed)
    return {n: tuple(int(d) for d in o.shape) for n, o in zip(names, outs)}


def onnx_numpy(tensor: Any) -> np.ndarray:
    """An initializer's values as a NumPy array."""
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _elements(shape: tuple[int, ...] | None) -> int:
    return math.prod(shape) if shape is not None else 0


def _node_macs(node: Any, shape: Any, axes_of: Any) -> int | None:
    """Multiply-adds of one node (None: an op this counter does not count)."""
    op = node.op_type
    if op in ("Conv", "ConvInteger"):
        x, w, y = shape(node.input[0]), shape(node.input[1]), shape(node.output[0])
        return x[0] * math.prod(w) * math.prod(y[2:])
    if op == "ConvTranspose":
        x, w = shape(node.input[0]), shape(node.input[1])
        return x[0] * math.prod(w) * math.prod(x[2:])
    if op in ("MatMul", "MatMulInteger"):
        a, b = shape(node.input[0]), shape(node.input[1])
        return math.prod(a) * b[-1]
    if op == "Gemm":
        a, b = shape(node.input[0]), shape(node.input[1])
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return m * k * n
    if op == "BatchNormalization":
        return 2 * math.prod(shape(node.input[0]))
    if op in ("LayerNormalization", "GroupNormalization", "InstanceNormalization"):
        return 5 * math.prod(shape(node.input[0]))
    if op == "Resize":
        mode = _attr(node, "mode", "nearest")
        per = {"nearest": 1, "linear": 4}.get(mode)
        return None if per is None else per * math.prod(shape(node.output[0]))
    if op == "GlobalAveragePool":
        return math.prod(shape(node.input[0]))
    if op == "ReduceMean":
        # Global average pooling as an exporter writes it (torch's adaptive_avg_pool2d to 1x1):
        # the mean over exactly the spatial axes of a 4-D tensor. Other means count 0.
        x = shape(node.input[0])
        axes = axes_of(node)
        if len(x) == 4 and axes is not None and sorted(a % 4 for a in axes) == [2, 3]:
            return math.prod(x)
        return None
    return None


_COUNTED = frozenset(
    {
        "Conv",
        "ConvInteger",
        "ConvTranspose",
        "MatMul",
        "MatMulInteger",
        "Gemm",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "InstanceNormalization",
        "Resize",
        "GlobalAveragePool",
        "ReduceMean",
    }
)


def _shape_inputs(node: Any) -> list[str]:
    """The values whose shapes :func:`_node_macs` (and the activation count) reads."""
    if node.op_type in _CONV_OPS:
        return [node.input[0], node.input[1], node.output[0]]
    if node.op_type in ("MatMul", "MatMulInteger", "Gemm"):
        return [node.input[0], node.input[1]]
    if node.op_type == "Resize":
        return [node.output[0]]
    return [node.input[0]]


def count_params(proto: Any) -> tuple[int, int, int]:
    """``(params, constants, shared)``: elements of the distinct tensors in parameter slots,
    all other initializer elements, and the elements of the extra uses of tensors that fill
    several slots.

    A tensor used by several slots counts once, as PyTorch counts a module called twice (a
    CBAM-style attention applies one MLP to two poolings). Exporters also merge bitwise-identical
    initializers: an untrained network whose PReLU slopes all hold their initial 0.25 reaches
    the file as one tensor, and then counts fewer parameters than PyTorch; ``shared`` shows both.
    """
    inits = {i.name: i for i in proto.graph.initializer}
    producers = {out: n for n in proto.graph.node for out in n.output}
    uses: Counter[str] = Counter()

    def source(name: str) -> str | None:
        # Follow DequantizeLinear (int8 weights) and Cast (fp16 weights) back to the tensor.
        seen = 0
        while name not in inits and seen < 4:
            node = producers.get(name)
            if node is None or node.op_type not in ("DequantizeLinear", "Cast"):
                return None
            name, seen = node.input[0], seen + 1
        return name if name in inits else None

    for node in proto.graph.node:
        for slot in _PARAM_SLOTS.get(node.op_type, ()):
            if slot < len(node.input) and node.input[slot]:
                found = source(node.input[slot])
                if found is not None:
                    uses[found] += 1
    size = {n: _elements(tuple(inits[n].dims)) for n in uses}
    params = sum(size.values())
    extra = sum(size[n] * (k - 1) for n, k in uses.items())
    total = sum(_elements(tuple(i.dims)) for i in proto.graph.initializer)
    return params, total - params, extra


def count_onnx(proto: Any, input_shape: tuple[int, ...] = NTIRE_INPUT_SHAPE) -> OnnxComplexity:
    """All complexity figures of the ONNX graph ``proto`` (a ``ModelProto``) at ``input_shape``.

    Raises:
        SrbenchError: the input cannot take ``input_shape`` (a fixed size or another rank),
            or a shape needed for a count is unknown even after the probe forward.
    """
    start = time.perf_counter()
    fixed = fixed_input(proto, tuple(input_shape))
    shapes = _inferred_shapes(fixed)
    nodes = list(fixed.graph.node)
    needed = [v for n in nodes if n.op_type in _COUNTED for v in _shape_inputs(n)]
    missing = sorted({v for v in needed if shapes.get(v) is None})
    probed = False
    if missing:
        shapes.update(_probe_shapes(fixed, missing, tuple(input_shape)))
        probed = True

    def shape(name: str) -> tuple[int, ...]:
        found = shapes.get(name)
        if found is None:
            raise SrbenchError(f"the shape of ONNX value {name!r} is unknown; cannot count this graph")
        return found

    constants = {i.name: i for i in fixed.graph.initializer}

    def axes_of(node: Any) -> list[int] | None:
        # ReduceMean's axes: an attribute before opset 18, a constant input since.
        if len(node.input) > 1 and node.input[1]:
            init = constants.get(node.input[1])
            return None if init is None else [int(a) for a in onnx_numpy(init).ravel()]
        return _attr(node, "axes")

    flops = activations = convs = 0
    uncounted: Counter[str] = Counter()
    for node in nodes:
        macs = _node_macs(node, shape, axes_of) if node.op_type in _COUNTED else None
        if macs is None:
            if node.op_type not in FREE_OPS:
                uncounted[node.op_type] += 1
            continue
        flops += macs
        if node.op_type in _CONV_OPS:
            activations += math.prod(shape(node.output[0]))
            convs += 1
    params, constants, shared = count_params(proto)
    return OnnxComplexity(
        input_shape=tuple(input_shape),
        params=params,
        flops=int(flops),
        activations=int(activations),
        convs=convs,
        constants=constants,
        shared_params=shared,
        unsupported_ops=dict(sorted(uncounted.items())),
        probed=probed,
        seconds=time.perf_counter() - start,
    )
