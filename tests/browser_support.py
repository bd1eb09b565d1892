"""Fixtures for the tests that need a real browser (``@pytest.mark.browser``).

They skip with the reason when Chromium, Playwright or ONNX Runtime Web is missing, unless
``SRBENCH_REQUIRE_BROWSER=1`` (the ``browser`` nox session sets it): then a missing piece
fails the test, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os

import pytest

from srbench.core.errors import SrbenchError


def missing(what: str, exc: SrbenchError) -> None:
    """Skip (or fail under SRBENCH_REQUIRE_BROWSER=1) because ``what`` is missing."""
    message = f"{what} not available: {exc}"
    if os.environ.get("SRBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def chromium_or_skip() -> None:
    """Skip unless Chromium and Playwright are both there."""
    from srbench.backends.browser.browser import find_chromium, import_playwright

    try:
        find_chromium()
        import_playwright()
    except SrbenchError as exc:
        missing("browser", exc)


def ort_web_or_skip(provider: str = "wasm") -> None:
    """Skip unless the browser and ONNX Runtime Web (srbench browser setup) are there."""
    from srbench.backends.browser.ortweb import find_ort_web

    chromium_or_skip()
    try:
        find_ort_web(provider)
    except SrbenchError as exc:
        missing("ONNX Runtime Web", exc)


def tiny_sr_onnx(
    path, *, scale: int = 2, seed: int = 0, conv_dtype: str = "float", tail_op: str | None = None
):
    """A small SR graph written with onnx.helper (no exporter involved): Conv 3→3·s² (3×3,
    pad 1, bias) then DepthToSpace(CRD), optionally followed by a unary ``tail_op``.

    Returns ``(weight, bias)`` as float64 NumPy arrays for an independent reference.
    ``conv_dtype="double"`` builds a float64 graph (ORT's CPU provider has no float64 Conv).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c_out = 3 * scale * scale
    weight = rng.normal(0, 0.2, (c_out, 3, 3, 3))
    bias = rng.normal(0, 0.1, (c_out,))
    np_dtype, elem = (
        (np.float64, TensorProto.DOUBLE) if conv_dtype == "double" else (np.float32, TensorProto.FLOAT)
    )
    inits = [
        numpy_helper.from_array(weight.astype(np_dtype), "w"),
        numpy_helper.from_array(bias.astype(np_dtype), "b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["feat"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("DepthToSpace", ["feat"], ["up"], blocksize=scale, mode="CRD", name="shuffle"),
    ]
    last = "up"
    if tail_op:
        nodes.append(helper.make_node(tail_op, ["up"], ["output"], name="tail"))
        last = "output"
    else:
        nodes[-1].output[0] = "output"
        last = "output"
    graph = helper.make_graph(
        nodes,
        "tiny_sr",
        [helper.make_tensor_value_info("input", elem, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info(last, elem, [1, 3, None, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # ORT-Web 1.30 reads IR <= 13; onnx 1.23 writes 14 by default
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weight, bias
