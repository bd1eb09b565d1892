"""Backends as one interface: a backend defined outside the package (tests/jit_backend, one
folder) plus one register_backend line is measured end to end; nothing outside backends/
branches on a backend's name."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from srbench.backends.registry import backend_names, get_backend, register_backend, unregister_backend
from srbench.cli import main
from srbench.core.errors import SrbenchError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def jit_backend() -> Iterator[None]:
    from jit_backend import JitTrace

    register_backend(JitTrace())  # the one registry line
    try:
        yield
    finally:
        unregister_backend("jit")


NET = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))
"""


@pytest.fixture
def tiny(tmp_path: Path) -> list[str]:
    """A user model file and its checkpoint (shape-generic, so a trace serves every image)."""
    (tmp_path / "net.py").write_text(NET)
    gen = torch.Generator().manual_seed(0)
    state = {
        "conv.weight": torch.randn(48, 3, 3, 3, generator=gen) * 0.1,
        "conv.bias": torch.full((48,), 0.3),
    }
    torch.save(state, tmp_path / "tiny.pth")
    return ["--models", f"tiny={tmp_path / 'net.py'}:Tiny", "--weights", f"tiny={tmp_path / 'tiny.pth'}"]


def _run(out: Path, model: list[str], *extra: str) -> dict:
    args = ["run", *model, "--data", "sample-mini", "--no-isolate", "--output", str(out)]
    assert main([*args, *extra]) == 0
    return json.loads((out / "results.json").read_text())


def test_a_backend_defined_in_one_folder_is_measured_end_to_end(
    jit_backend: None, tiny: list[str], tmp_path: Path
) -> None:
    torch_run = _run(tmp_path / "torch", tiny)
    jit_run = _run(tmp_path / "jit", tiny, "--backend", "jit")
    (ref,) = torch_run["models"]
    (row,) = jit_run["models"]
    got = (row["name"], row["backend"], row["provider"], row["status"])
    assert got == ("tiny@jit", "jit", "torchscript", "ok")
    # The same network through TorchScript: the same pixels, so the same exact metrics.
    psnr = [i["psnr_y"] for i in row["images"]]
    assert len(psnr) == 4 and None not in psnr
    assert psnr == [i["psnr_y"] for i in ref["images"]]
    assert row["runtime_ms"]["median"] > 0 and row["memory_mb"] is not None
    assert jit_run["config"]["backend"] == "jit"


def test_an_unknown_backend_is_one_line() -> None:
    with pytest.raises(SrbenchError, match=r"--backend 'nope' is not one of torch, onnxruntime, browser"):
        get_backend("nope")


def _backend_name_comparisons(path: Path) -> list[str]:
    names = set(backend_names())
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            consts = [c for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            if any(c.value in names for c in consts):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_nothing_outside_the_backends_branches_on_a_backend_name() -> None:
    rooms = [ROOT / "benchmark" / r for r in ("runner", "ntire", "results", "reporting", "measure", "data")]
    found = [
        hit
        for room in rooms
        for path in sorted(room.rglob("*.py"))
        for hit in _backend_name_comparisons(path)
    ]
    assert found == []


def test_the_name_check_sees_a_branch(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text('if config.backend == "onnxruntime":\n    pass\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _backend_name_comparisons(tmp_path / "x.py") == ["x.py:1"]
    finally:
        ROOT = saved


def test_a_dtype_the_model_does_not_run_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torch import nn

    from srbench.models.registry import register_model, unregister_model

    built = []

    @register_model("fp32_only", scales=(4,), input_range=1.0, description="t", dtypes=("fp32",))
    def _build(scale: int = 4) -> nn.Module:
        built.append(scale)
        return nn.Sequential(nn.Conv2d(3, 48, 3, padding=1), nn.PixelShuffle(4))

    try:
        out = tmp_path / "out"
        code = main(
            ["run", "--models", "fp32_only", "--dtype", "bf16", "--data", "sample-mini", "--output", str(out)]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1
        assert err[0] == "srbench: error: model 'fp32_only' does not run --dtype bf16; choose one of fp32"
        assert built == [] and not out.exists()
    finally:
        unregister_model("fp32_only")
