"""ONNX export (``srbench export --format onnx``) and the onnxruntime backend.

The exported files are pinned to PyTorch itself (a second implementation of the same
network): on a real image the ONNX Runtime output must equal PyTorch's within the fp32
tolerance, and the graph must carry the properties the browser and other runtimes rely on
(DepthToSpace in CRD mode, symbolic height/width, one file, srbench metadata).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx
from torch import nn

from srbench.backends.onnx_export import (
    ExportMetadata,
    check_graph,
    read_metadata,
)
from srbench.backends.onnxruntime.session import OrtBackend, cached_export
from srbench.backends.pytorch import to_model_input
from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data.datasets import load_dataset
from srbench.models.bicubic import Bicubic, BicubicPolyphase
from srbench.models.registry import register_model, unregister_model
from srbench.models.specs import ModelSpec
from srbench.runner.building import build_model

#: The models the issue names; all but bicubic need their official checkpoints.
EXPORTED = ("span", "span_tiny", "spanf", "rlfn", "efdn", "bicubic")
#: fp32 tolerance on |ONNX Runtime - PyTorch| in [0, 1] output units.
FP32_TOL = 1e-3


@contextlib.contextmanager
def _cache_env(path: Path) -> Iterator[Path]:
    """SRBENCH_CACHE_DIR=path inside the block (conftest gives every test its own otherwise)."""
    old = os.environ.get("SRBENCH_CACHE_DIR")
    os.environ["SRBENCH_CACHE_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("SRBENCH_CACHE_DIR", None)
        else:
            os.environ["SRBENCH_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for this module's exports and runs: each model is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


def _built(name: str) -> tuple[nn.Module, ExportMetadata]:
    if name != "bicubic":
        from tests_support import require_weights

        require_weights()
    entry, loaded = build_model(ModelSpec(name, name), scale=4, offline=True)
    assert loaded.reason is None, loaded.reason
    sha = loaded.weights.sha256 if loaded.weights else ""
    return loaded.model, ExportMetadata(name, entry.name, 4, entry.input_range, sha)


@pytest.fixture(scope="module")
def exported(cache_dir: Path) -> dict[str, Any]:
    """name -> (cached .onnx, the PyTorch model, its metadata), exported lazily into cache_dir."""
    return {"": cache_dir}


def _get(exported: dict, name: str) -> tuple[Path, nn.Module, ExportMetadata]:
    if name not in exported:
        model, meta = _built(name)
        with _cache_env(exported[""]):
            exported[name] = (cached_export(model, meta).path, model, meta)
    return exported[name]


# --------------------------------------------------------------------------- the graph


def test_bicubic_polyphase_equals_matlab_imresize() -> None:
    # The export form of bicubic against imresize (the MATLAB reference implementation).
    gen = torch.Generator().manual_seed(1)
    for scale in (2, 3, 4):
        for shape in [(1, 3, 2, 2), (1, 3, 7, 11), (2, 3, 16, 5)]:
            x = torch.rand(*shape, generator=gen, dtype=torch.float64)
            diff = (BicubicPolyphase(scale)(x) - Bicubic(scale)(x)).abs().max().item()
            assert diff < 1e-13, (scale, shape, diff)


@pytest.mark.slow
def test_span_graph_crd_single_file_metadata(exported: dict, tmp_path: Path) -> None:
    path, _, meta = _get(exported, "span")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    d2s = [n for n in proto.graph.node if n.op_type == "DepthToSpace"]
    assert len(d2s) == 1
    attrs = {a.name: a for a in d2s[0].attribute}
    assert attrs["mode"].s == b"CRD" and attrs["blocksize"].i == 4
    assert proto.opset_import[0].version >= 17
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, "height", "width"]
    # One self-contained file: no tensor refers to external data.
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert list(path.parent.glob("*.data")) == []
    # Metadata round trip, with the official checkpoint's sha256.
    from srbench.models.registry import get_entry

    back = read_metadata(path)
    assert back == meta
    assert back.weights_sha256 == get_entry("span").weights_for(4).sha256
    assert (back.scale, back.input_range, back.arch) == (4, 1.0, "span")


def test_dcr_depth_to_space_is_refused() -> None:
    # ONNX's default DepthToSpace mode (DCR) scrambles pixel-shuffle channels.
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 48, "height", "width"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, None, None])
    for mode in ("DCR", None):
        kwargs = {"blocksize": 4} if mode is None else {"blocksize": 4, "mode": mode}
        node = helper.make_node("DepthToSpace", ["input"], ["output"], name="d2s", **kwargs)
        proto = helper.make_model(helper.make_graph([node], "g", [x], [y]))
        with pytest.raises(SrbenchError, match="DCR mode"):
            check_graph(proto, "toy", "advice")


def test_depth_to_space_crd_is_pixel_shuffle() -> None:
    # The property the mode check protects, checked numerically on ONNX Runtime itself.
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 12, 3, 5])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 6, 10])
    t = torch.rand(1, 12, 3, 5)
    for mode, same in (("CRD", True), ("DCR", False)):
        node = helper.make_node("DepthToSpace", ["input"], ["output"], blocksize=2, mode=mode)
        graph = helper.make_graph([node], "g", [x], [y])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        out = torch.from_numpy(sess.run(None, {"input": t.numpy()})[0])
        assert torch.equal(out, nn.functional.pixel_shuffle(t, 2)) is same


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
def test_export_matches_pytorch_on_a_real_image(exported: dict, name: str) -> None:
    path, model, meta = _get(exported, name)
    dataset = load_dataset("sample-mini", scale=4)
    pair = next(iter(dataset))
    x = to_model_input(pair.lr, meta.input_range, torch.device("cpu"), torch.float32)
    backend = OrtBackend(path, provider="cpu", scale=4)
    with torch.inference_mode():
        ref = model(x) / meta.input_range
        out = backend(x) / meta.input_range
    assert out.shape == ref.shape == (1, 3, *pair.hr.shape[:2])
    diff = (out.clamp(0, 1) - ref.clamp(0, 1)).abs().max().item()
    assert diff <= FP32_TOL, diff
    # Another size runs through the same file: height and width are dynamic.
    with torch.inference_mode():
        y = backend(x[..., :20, :14].contiguous())
    assert y.shape == (1, 3, 80, 56)


# --------------------------------------------------------------------------- errors


class _NoOnnx(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.i0(x)  # Bessel I0: no ONNX translation exists


class _Unexportable(nn.Module):
    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=scale, mode="nearest")
        self.tail = nn.Sequential(nn.Identity(), _NoOnnx())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.up(x))


@pytest.fixture
def unexportable() -> Iterator[str]:
    name = "test_noonnx"
    register_model(name, scales=(4,), input_range=1.0, description="test-only", tags=("test-only",))(
        lambda scale=4: _Unexportable(scale)
    )
    yield name
    unregister_model(name)


def test_unsupported_op_is_one_line_naming_op_and_module(
    unexportable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.onnx"
    code = main(["export", "--model", unexportable, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("srbench: error:")]
    assert len(lines) == 1 and lines[0].startswith("srbench: error: cannot export test_noonnx"), err
    assert "bessel_i0" in lines[0] and "module 'tail.1' (_NoOnnx)" in lines[0], err
    # The advice fits the command: export has no --backend, so it names the run that has one.
    assert lines[0].endswith("srbench run --backend torch measures it in PyTorch"), err
    assert err.strip().endswith(lines[0])  # the error is the last thing printed
    assert not out.exists()


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    # A None entry in sys.modules makes `import onnx` raise ImportError, as on a bare install.
    monkeypatch.setitem(sys.modules, "onnx", None)
    code = main(["export", "--model", "bicubic", "-o", str(tmp_path / "b.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "srbench: error: onnx is not installed; ONNX export needs the optional extra: "
        "pip install 'srbench[onnx]'"
    )


@pytest.mark.slow
def test_export_cli_opset17_bicubic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bicubic.onnx"
    assert main(["export", "--model", "bicubic", "-o", str(out), "--opset", "17"]) == 0
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 17
    assert read_metadata(out).weights_sha256 == ""
    assert main(["export", "--model", "bicubic", "-o", str(out)]) == 2  # exists: no overwrite
    assert "--overwrite" in capsys.readouterr().err


# --------------------------------------------------------------------------- srbench run

RUN_FAST = ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--no-isolate"]


@pytest.fixture(scope="module")
def runs(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A torch run and an onnxruntime run of the six models on sample-mini."""
    from tests_support import require_weights

    require_weights()
    models = ",".join(EXPORTED)
    out = {}
    with _cache_env(cache_dir):
        for backend in ("torch", "onnxruntime"):
            folder = tmp_path_factory.mktemp(backend)
            args = ["run", "--models", models, "--backend", backend, "--output", str(folder), *RUN_FAST]
            assert main(args) == 0
            out[backend] = folder
    return out


def _rows(folder: Path) -> dict:
    import json

    data = json.loads((folder / "results.json").read_text())
    return data, {m["name"]: m for m in data["models"]}


@pytest.mark.slow
def test_onnxruntime_rows_match_pytorch(runs: dict[str, Path]) -> None:
    torch_run, torch_rows = _rows(runs["torch"])
    ort_run, ort_rows = _rows(runs["onnxruntime"])
    assert list(ort_rows) == [f"{m}@onnxruntime" for m in EXPORTED]
    assert ort_run["environment"]["onnxruntime"] == __import__("onnxruntime").__version__
    assert ort_run["environment"]["onnx"] == onnx.__version__
    assert "onnxruntime" not in torch_run["environment"]
    for name in EXPORTED:
        t, o = torch_rows[name], ort_rows[f"{name}@onnxruntime"]
        assert (t["backend"], t["provider"], t["dtype"]) == ("torch", "cpu", "fp32")
        assert "backend_agreement" not in t and "deployed" not in t
        assert (o["backend"], o["provider"], o["dtype"]) == ("onnxruntime", "CPUExecutionProvider", "fp32")
        assert o["status"] == "ok", o["reason"]
        # Complexity is the network's, whatever runs it.
        assert (o["params"], o["flops"], o["convs"]) == (t["params"], t["flops"], t["convs"])
        assert abs(o["psnr_y"] - t["psnr_y"]) <= 0.01, name
        for ti, oi in zip(t["images"], o["images"]):
            assert abs(oi["psnr_y"] - ti["psnr_y"]) <= 0.01, (name, ti["name"])
        a = o["backend_agreement"]
        assert a["images"] == [i["name"] for i in t["images"][:2]]
        assert a["within_tolerance"] is True and 0 <= a["max_abs_diff"] <= 1e-3, (name, a)
        assert a["max_abs_diff_u8"] <= 1
        assert a["psnr_vs_torch_db"] == "inf" or a["psnr_vs_torch_db"] > 60
        assert o["deployed"]["format"] == "onnx" and o["deployed"]["opset"] >= 17
        # CPU: the session's footprint (weights, arena peak) from before it exists to the end of
        # warm-up; the torch row keeps its forward pass. Both are read before any metric runs.
        assert t["memory_kind"] == "cpu_forward_peak" and t["memory_mb"] > 0
        assert o["memory_kind"] == "ort_cpu_rss_growth" and o["memory_mb"] > 0
        assert o["runtime_ms"]["n"] == 4


@pytest.mark.slow
def test_second_run_reuses_the_cached_file(
    runs: dict[str, Path], cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first = _rows(runs["onnxruntime"])
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(cache_dir))  # the cache the runs above filled

    def no_export(*_a: object, **_k: object) -> bytes:
        raise AssertionError("exported again instead of reusing the cached file")

    monkeypatch.setattr("srbench.backends.onnxruntime.session.export_onnx", no_export)
    out = tmp_path / "again"
    assert main(["run", "--models", "span", "--backend", "onnxruntime", "--output", str(out), *RUN_FAST]) == 0
    _, again = _rows(out)
    row = again["span@onnxruntime"]
    assert row["deployed"]["cached"] is True
    assert row["deployed"]["sha256"] == first["span@onnxruntime"]["deployed"]["sha256"]
    assert "export" in row["phases_s"] and row["phases_s"]["export"] < 5


@pytest.mark.slow
def test_report_check_and_score_side_by_side(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert main(["report", str(runs["torch"]), str(runs["onnxruntime"]), "--output", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "| span |" in md and "| span@onnxruntime |" in md
    # A run checked against itself passes, fingerprints included (same platform).
    assert (
        main(["check", str(runs["onnxruntime"] / "results.json"), "--baseline", str(runs["onnxruntime"])])
        == 0
    )
    capsys.readouterr()
    assert main(["score", str(runs["torch"]), str(runs["onnxruntime"]), "--edition", "ntire2025"]) == 0
    out = capsys.readouterr().out
    assert "span@onnxruntime" in out and "rlfn@onnxruntime" in out


def test_drifted_backend_row_is_flagged_not_ranked() -> None:
    from srbench.ntire.score import entries_from_run
    from srbench.results.schema import BackendAgreement, ModelResult, RunResult
    from srbench.results.tables import footnotes, results_markdown

    agreement = BackendAgreement("torch fp32 on cpu", ["a"], 0.02, 5, 41.0, 1e-3, False)
    row = ModelResult(
        name="span@onnxruntime",
        arch="span",
        scale=4,
        status="ok",
        psnr_y=30.0,
        ssim_y=0.9,
        psnr_rgb=28.0,
        backend="onnxruntime",
        backend_agreement=agreement,
        notes=["output drifts from PyTorch: ..."],
    )
    assert row.drifted and not row.has_quality
    run = RunResult(environment={}, config={}, dataset={"name": "x"}, models=[row])
    assert "| span@onnxruntime | — | — |" in results_markdown(run)
    assert any("drifts" in n for n in footnotes(run))
    entry = entries_from_run(run.to_dict(), "r")[0]
    assert entry.error and "drifts" in entry.error
    back = RunResult.from_dict(run.to_dict()).models[0]
    assert back.backend_agreement == agreement and back.drifted


def test_onnxruntime_option_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    base = ["run", "--models", "bicubic", "--backend", "onnxruntime", "--output", str(tmp_path), *RUN_FAST]
    cases = [
        (["--compile"], "--compile applies to --backend torch only"),
        (["--dtype", "fp16"], "--dtype fp16 with --ort-provider cpu"),
        (["--dtype", "bf16"], "--dtype bf16 with --ort-provider cpu"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--ort-provider", "cuda"], "--ort-provider cuda needs a CUDA device"))
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("srbench: error: ") and message in err and "\n" not in err, err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "srbench: error: onnxruntime is not installed; --backend onnxruntime needs the optional "
        "extra: pip install 'srbench[onnx]'"
    )
