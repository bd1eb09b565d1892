"""Issue 26, "silent wrong numbers": a number belongs to the code, weights and data it names.

Each kind has the issue's case and a sibling instance (other names, another command):

1. user model files never share sibling modules (``from blocks import Block`` in two folders);
2. the EMA copy of a checkpoint is loaded under every common naming, the row names the key,
   and ``--weights-key`` chooses another;
3. the ONNX export cache is keyed by the model's source as well as its weights;
4. ``run --resume``/``sweep --resume`` re-measure a row whose checkpoint or code changed;
5. Pillow globals set by user code do not change how srbench decodes images.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data import imageio
from srbench.data.imageio import read_image, write_png_atomic

FAST = ["--profile-input", "1x3x32x32"]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    """The one ``srbench: error:`` line of ``err`` (progress lines may come before it)."""
    lines = [line for line in err.strip().splitlines() if line.startswith("srbench: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _hr_only(root: Path, n: int = 2, side: int = 32) -> Path:
    """A folder of ``n`` HR PNGs (``--layout hr-only``: LR made by bicubic)."""
    for i in range(n):
        write_png_atomic(root / f"img{i}.png", _rgb(side, side, i))
    return root


# --------------------------------------------------------------------------- 5. PIL globals

#: A model file that changes Pillow's globals at import, as training repos' data utilities do.
PIL_USER = """
from PIL import Image, ImageFile
from torch import nn
import torch.nn.functional as F

ImageFile.LOAD_TRUNCATED_IMAGES = True
Image.MAX_IMAGE_PIXELS = None


class Up(nn.Module):
    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=self.scale, mode="nearest")
"""


@pytest.fixture
def restore_pil():
    saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    yield
    ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_png_refused_although_user_code_allows_truncation(tmp_path: Path, capsys, restore_pil) -> None:
    data = _hr_only(tmp_path / "data", n=2, side=64)
    _truncate(data / "img1.png")
    model = tmp_path / "pilnet.py"
    model.write_text(PIL_USER)
    args = ["run", "--models", f"{model}:Up", "--data", str(data), "--layout", "hr-only", *FAST]
    code, _, err = _run([*args, "--no-isolate", "--output", str(tmp_path / "o")], capsys)
    line = _one_line_error(err)
    assert code == 2 and "img1.png" in line
    # The user's own setting is theirs again once srbench has decoded.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True and Image.MAX_IMAGE_PIXELS is None


def test_upscale_refuses_a_truncated_input_although_user_code_allows_it(
    tmp_path: Path, capsys, restore_pil
) -> None:
    """Sibling instance: another command (upscale) and a JPEG."""
    model = tmp_path / "pilnet.py"
    model.write_text(PIL_USER)
    src = tmp_path / "in.jpg"
    Image.fromarray(_rgb(64, 64, 3)).save(src, quality=95)
    _truncate(src)
    ckpt = tmp_path / "up.pth"
    torch.save({"conv.weight": torch.ones(3, 3, 1, 1), "conv.bias": torch.zeros(3)}, ckpt)
    args = ["upscale", str(src), "--model", f"{model}:Up", "--weights", f"Up={ckpt}"]
    args += ["--output", str(tmp_path / "out")]
    code, _, err = _run(args, capsys)
    line = _one_line_error(err)
    assert code == 2 and "in.jpg" in line


def test_srbench_pil_settings_force_and_restore(tmp_path: Path, restore_pil) -> None:
    src = tmp_path / "t.png"
    write_png_atomic(src, _rgb(64, 64, 5))
    _truncate(src)
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    Image.MAX_IMAGE_PIXELS = None
    with pytest.raises(SrbenchError, match="t.png"):
        read_image(src)
    with imageio.srbench_pil_settings():
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False and Image.MAX_IMAGE_PIXELS == imageio.MAX_IMAGE_PIXELS
        with imageio.srbench_pil_settings():  # nested: still srbench's
            pass
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True and Image.MAX_IMAGE_PIXELS is None
    assert imageio.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # Pillow's documented default
