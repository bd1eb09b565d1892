"""The spandrel fallback: a checkpoint our registry does not know, measured like any model.

spandrel itself needs torchvision (a CUDA torch), so it is an optional extra; the wrapping
logic is tested here against a stand-in module with spandrel's interface, and against the
real package when it is installed.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.models.registry import unregister_model
from srbench.models.specs import parse_model_specs
from srbench.results.config import RunConfig
from srbench.runner.protocol import measure_model


class _Community(nn.Module):
    """An architecture srbench does not register: conv + pixel shuffle, x2."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x))


@pytest.fixture
def fake_spandrel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = _Community()
    ckpt = tmp_path / "community_x2.pth"
    torch.save({"params": net.state_dict()}, ckpt)

    class UnsupportedModelError(Exception):
        pass

    class ModelLoader:
        def __init__(self, device: str) -> None:
            self.device = device

        def load_from_file(self, path: str) -> object:
            state = torch.load(path, map_location="cpu", weights_only=True)["params"]
            if "body.weight" not in state:
                raise UnsupportedModelError(path)
            model = _Community()
            model.load_state_dict(state)
            arch = types.SimpleNamespace(id="Community")
            return types.SimpleNamespace(
                model=model, scale=2, input_channels=3, output_channels=3, architecture=arch
            )

    module = types.ModuleType("spandrel")
    module.ModelLoader = ModelLoader
    module.UnsupportedModelError = UnsupportedModelError
    monkeypatch.setitem(sys.modules, "spandrel", module)
    yield ckpt
    unregister_model("spandrel-community")


def test_unknown_checkpoint_goes_through_spandrel(fake_spandrel: Path, tmp_path: Path) -> None:
    specs = parse_model_specs(str(fake_spandrel))
    assert [(s.name, s.arch) for s in specs] == [("community_x2", "spandrel-community")]
    images = ImageCache.build(load_dataset("sample-mini", scale=2), tmp_path / "img")
    result = measure_model(specs[0], images, RunConfig(scale=2, isolate=False, profile_input=[1, 3, 32, 32]))
    assert result.status == "ok", result.reason
    assert result.params == 3 * 12 * 9 + 12 and result.convs == 1
    assert result.weights is not None and result.weights.file == "community_x2.pth"
    assert result.psnr_y is not None and len(result.images) == 4


def test_without_spandrel_unknown_checkpoint_is_one_line_error(tmp_path: Path, monkeypatch) -> None:
    from srbench.core.errors import SrbenchError

    monkeypatch.setitem(sys.modules, "spandrel", None)  # import fails as if not installed
    ckpt = tmp_path / "odd.pth"
    torch.save({"x.weight": torch.zeros(1)}, ckpt)
    with pytest.raises(SrbenchError, match="spandrel"):
        parse_model_specs(str(ckpt))


def test_real_spandrel_agrees_with_our_span(tmp_path: Path) -> None:
    pytest.importorskip("spandrel", reason="optional extra srbench[spandrel] not installed")
    from srbench.models import create_model
    from srbench.models.spandrel_adapter import spandrel_entry

    torch.manual_seed(0)
    ours = create_model("span", 4, deploy=False)  # full training layout: spandrel detects it
    ckpt = tmp_path / "span_full.pth"
    torch.save(ours.state_dict(), ckpt)
    name, scale = spandrel_entry(ckpt)
    try:
        from srbench.models import get_entry

        theirs = get_entry(name).build(scale=scale)
        x = torch.rand(1, 3, 24, 20)
        with torch.no_grad():
            assert torch.allclose(theirs(x), ours.eval()(x), atol=1e-5)
    finally:
        unregister_model(name)
