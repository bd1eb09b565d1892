"""ONNX files as models (``srbench run --models FILE.onnx``) and srbench's ONNX graph counter.

The counter is pinned two ways: on hand-built graphs against closed forms, and on srbench's
own exports of the zoo against fvcore's integers on the PyTorch networks (a second,
independent implementation). The by-path row is pinned to the registry row of the same
network: a stripped, renamed SPAN export must measure as the registry's SPAN does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx
from onnx import TensorProto, helper, numpy_helper

from srbench.backends.onnx_export import ExportMetadata, export_onnx
from srbench.backends.onnxruntime.session import static_forward
from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.measure.counting import profile_model
from srbench.measure.onnx_counting import count_onnx
from srbench.models.onnx_file import inspect_onnx
from srbench.models.specs import ModelSpec, parse_model_specs
from srbench.runner.building import build_model

#: The zoo models whose ONNX counts must equal fvcore's (the issue's list).
PINNED = ("rlfn", "span", "span_ca", "efdn", "spanf")
RUN_FAST = ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--no-isolate"]


def _export(name: str) -> tuple[bytes, torch.nn.Module, float]:
    entry, loaded = build_model(ModelSpec(name, name), scale=4, offline=True)
    meta = ExportMetadata(name, entry.name, 4, entry.input_range, "")
    data = export_onnx(loaded.model, meta, advice="test")
    return data, loaded.model, entry.input_range


# --------------------------------------------------------------------------- the counter


def _init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_counter_closed_forms_on_a_hand_built_graph() -> None:
    # input 1x3xHxW -> Conv 3->8 k3 (bias) -> ConvTranspose 8->4 k2 s2 -> Resize x2 linear
    # -> ReduceMean over H,W (global average pool) -> Flatten -> Gemm 4->5 -> MatMul 5->6.
    h, w = 10, 12
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c1", "w2"], ["c2"], strides=[2, 2]),
        helper.make_node("Resize", ["c2", "", "scales"], ["r"], mode="linear"),
        helper.make_node("ReduceMean", ["r", "axes"], ["m"], keepdims=1),
        helper.make_node("Sigmoid", ["m"], ["s"]),
        helper.make_node("Flatten", ["s"], ["f"]),
        helper.make_node("Gemm", ["f", "w3"], ["g"], transB=1),
        helper.make_node("MatMul", ["g", "w4"], ["output"]),
    ]
    inits = [
        _init("w1", (8, 3, 3, 3)),
        _init("b1", (8,)),
        _init("w2", (8, 4, 2, 2)),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        _init("w3", (5, 4)),
        _init("w4", (5, 6)),
        numpy_helper.from_array(np.float32(0.5)[()], "unused_scalar"),
    ]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    proto = helper.make_model(
        helper.make_graph(nodes, "toy", [x], [y], inits), opset_imports=[helper.make_opsetid("", 18)]
    )
    c = count_onnx(proto, (1, 3, h, w))
    conv = 1 * (8 * 3 * 3 * 3) * (h * w)  # weight elements x output H*W
    convt = 1 * (8 * 4 * 2 * 2) * (h * w)  # transposed: the input H*W
    resize = 4 * (4 * (4 * h) * (4 * w))  # linear: 4 per output element
    pool = 4 * (2 * h) * (2 * w) * 2 * 2  # 1 per input element of the mean over H, W
    assert pool == 4 * (4 * h) * (4 * w)
    gemm, matmul = 1 * 4 * 5, 1 * 5 * 6
    assert c.flops == conv + convt + resize + pool + gemm + matmul
    assert c.convs == 2
    assert c.activations == 8 * h * w + 4 * (2 * h) * (2 * w)
    assert c.params == 8 * 27 + 8 + 8 * 4 * 4 + 20 + 30
    assert c.constants == 4 + 2 + 1  # scales, axes, the scalar
    assert c.unsupported_ops == {"Sigmoid": 1}  # Flatten only moves data: not listed
    assert not c.probed


def test_a_weight_used_twice_counts_once_and_is_reported_shared() -> None:
    # One tensor in two slots (a shared module, or identical initializers an exporter merged)
    # counts once, as PyTorch counts a module called twice; the extra use is reported.
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["a", "slope"], ["b"]),
        helper.make_node("Conv", ["b", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "slope"], ["output"]),
    ]
    inits = [_init("w", (3, 3, 3, 3)), _init("slope", (3, 1, 1))]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
    c = count_onnx(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits)), (1, 3, 8, 8))
    assert (c.params, c.shared_params, c.constants) == (81 + 3, 81 + 3, 0)
    assert (c.convs, c.flops) == (2, 2 * 81 * 64)


def test_counter_refuses_a_shape_the_file_cannot_take() -> None:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 64, 64])
    proto = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y])
    )
    with pytest.raises(SrbenchError, match="fixed at"):
        count_onnx(proto, (1, 3, 256, 256))


@pytest.mark.slow
@pytest.mark.parametrize("name", PINNED)
def test_onnx_counts_equal_fvcore_on_srbench_exports(name: str) -> None:
    _, loaded = build_model(ModelSpec(name, name), scale=4, offline=True)
    if loaded.weights is None and name == "efdn":
        # At random init efdn holds equal tensors, which the exporter stores once.
        pytest.skip("efdn needs its official checkpoint: set SRBENCH_WEIGHTS_DIR=../shared/weights")
    data, model, input_range = _export(name)
    c = profile_model(model, input_range=input_range, thop=False, dispatch=False)
    o = count_onnx(onnx.load_from_string(data))
    assert (o.params, o.flops, o.activations, o.convs) == (c.params, c.flops, c.activations, c.convs)
    if name == "rlfn":
        assert o.flops == 19_674_859_520  # the pin at 1x3x256x256
    # Every op fvcore could not count has an ONNX counterpart listed as uncounted too.
    assert sum(o.unsupported_ops.values()) >= len(c.unsupported_ops)


# --------------------------------------------------------------------------- files as models


def _third_party(data: bytes, path: Path) -> Path:
    """srbench's export made to look like someone else's: no srbench metadata, renamed I/O."""
    proto = onnx.load_from_string(data)
    del proto.metadata_props[:]
    old_in, old_out = proto.graph.input[0].name, proto.graph.output[0].name
    for node in proto.graph.node:
        node.input[:] = ["lr_image" if i == old_in else i for i in node.input]
        node.output[:] = ["sr_image" if o == old_out else o for o in node.output]
    proto.graph.input[0].name, proto.graph.output[0].name = "lr_image", "sr_image"
    proto.graph.name = "vendor_span"
    onnx.save(proto, str(path))
    return path


def _tiny_upscaler(path: Path, *, static: bool = False, scale: int = 2) -> Path:
    """A one-conv x``scale`` network as ONNX (Conv 3->3·s² then DepthToSpace CRD)."""
    side: list = [16, 16] if static else ["h", "w"]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(
        rng.standard_normal((3 * scale * scale, 3, 3, 3)).astype(np.float32) * 0.1, "w"
    )
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("DepthToSpace", ["c"], ["y"], blocksize=scale, mode="CRD"),
    ]
    proto = helper.make_model(
        helper.make_graph(nodes, "tiny", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.save(proto, str(path))
    return path


def test_inspect_reads_scale_range_and_static_size(tmp_path: Path) -> None:
    info = inspect_onnx(_tiny_upscaler(tmp_path / "t.onnx", scale=3))
    assert (info.scale, info.static_hw, info.input_range, info.input_name) == (3, None, None, "x")
    static = inspect_onnx(_tiny_upscaler(tmp_path / "s.onnx", static=True))
    assert (static.scale, static.static_hw) == (2, (16, 16))
    assert static.arch.endswith("/tiny")


def test_static_forward_equals_the_untiled_output() -> None:
    # A local network (nearest upsampling) through the static-size tiler: same pixels as untiled,
    # every call at exactly the fixed size.
    fixed = (16, 16)
    sizes = []

    def run(x: torch.Tensor) -> torch.Tensor:
        sizes.append(tuple(x.shape[2:]))
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    x = torch.rand(1, 3, 37, 10)
    out = static_forward(run, x, fixed, 2)
    assert torch.equal(out, torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    assert set(sizes) == {fixed}


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("srbench: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_wrong_files_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    two_in = tmp_path / "two_inputs.onnx"
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    onnx.save(
        helper.make_model(helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "g", [a, b], [y])),
        str(two_in),
    )
    bad_op = tmp_path / "bad_op.onnx"
    node = helper.make_node("NoSuchOp", ["a"], ["y"], domain="vendor.ops")
    proto = helper.make_model(
        helper.make_graph([node], "g", [a], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("vendor.ops", 1)],
    )
    onnx.save(proto, str(bad_op))
    checker = tmp_path / "checker.onnx"
    proto = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["a"], ["missing"])], "g", [a], [y])
    )
    onnx.save(proto, str(checker))
    cases = {
        broken: "not a readable ONNX file",
        two_in: "not an image-to-image network",
        bad_op: "cannot run it",
        checker: "fails onnx.checker",
    }
    for path, reason in cases.items():
        code = main(["run", "--models", str(path), *RUN_FAST, "-o", str(tmp_path / "out")])
        line = _one_error_line(capsys.readouterr().err)
        assert code == 2 and str(path) in line and reason in line, line


def test_input_range_backend_and_scale_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _tiny_upscaler(tmp_path / "tiny_x2.onnx")
    base = ["run", "--models", str(path), *RUN_FAST, "-o", str(tmp_path / "out")]
    assert main([*base, "--scale", "2"]) == 2
    assert "--input-range tiny_x2=1" in _one_error_line(capsys.readouterr().err)
    assert main([*base, "--input-range", "tiny_x2=1"]) == 2  # default --scale 4
    assert "run with --models" in _one_error_line(capsys.readouterr().err)
    assert main([*base, "--scale", "2", "--input-range", "tiny_x2=1", "--backend", "torch"]) == 2
    assert "drop --backend torch" in _one_error_line(capsys.readouterr().err)
    mixed = ["run", "--models", f"{path},bicubic", *RUN_FAST, "--scale", "2", "--input-range", "tiny_x2=1"]
    assert main([*mixed, "-o", str(tmp_path / "o2")]) == 2
    assert "--backend onnxruntime" in _one_error_line(capsys.readouterr().err)


def test_static_file_runs_through_the_tiler(tmp_path: Path) -> None:
    path = _tiny_upscaler(tmp_path / "static.onnx", static=True)
    out = tmp_path / "run"
    args = [
        "run",
        "--models",
        f"st={path}",
        *RUN_FAST,
        "--scale",
        "2",
        "--input-range",
        "st=1",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    row = json.loads((out / "results.json").read_text())["models"][0]
    assert row["status"] == "ok", row
    assert row["backend"] == "onnxruntime" and row["deployed"]["static_input_hw"] == [16, 16]
    assert any("static input 1x3x16x16" in n for n in row["notes"]), row["notes"]
    # Counted at the only size the graph takes, and the row says so.
    assert row["complexity_input"] == [1, 3, 16, 16]
    assert row["flops"] == 12 * 27 * 16 * 16
    assert any("counted at the file's fixed input" in n for n in row["notes"]), row["notes"]


@pytest.mark.slow
def test_third_party_span_measures_as_the_registry_row(tmp_path: Path) -> None:
    from tests_support import require_weights

    require_weights()
    _, loaded = build_model(ModelSpec("span", "span"), scale=4, offline=True)
    meta = ExportMetadata("span", "span", 4, 1.0, loaded.weights.sha256)
    path = _third_party(export_onnx(loaded.model, meta, advice="test"), tmp_path / "span_x4.onnx")
    (spec,) = parse_model_specs(f"{path}", input_ranges={"span_x4": 1.0}, scale=4)
    assert spec.onnx is not None and spec.onnx.input_name == "lr_image" and spec.onnx.input_range is None
    ref_out, file_out = tmp_path / "ref", tmp_path / "file"
    assert main(["run", "--models", "span", "--backend", "onnxruntime", *RUN_FAST, "-o", str(ref_out)]) == 0
    args = ["run", "--models", str(path), "--input-range", "span_x4=1", *RUN_FAST, "-o", str(file_out)]
    assert main(args) == 0
    ref = json.loads((ref_out / "results.json").read_text())["models"][0]
    row = json.loads((file_out / "results.json").read_text())["models"][0]
    for key in ("params", "flops", "activations", "convs"):
        assert row[key] == ref[key], key
    assert abs(row["psnr_y"] - ref["psnr_y"]) <= 1e-4
    assert row["arch"].endswith("/vendor_span") and row["deployed"]["source"] == "file"
    assert row["weights"]["source"] == "onnx file"
