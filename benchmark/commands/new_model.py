"""``srbench new-model NAME``: write a minimal, documented model file and a test for it.

The model file is one self-contained architecture module, laid out as srbench's own
(``models/span_ca.py``): the ``nn.Module``, its declared input range, and a
``register_model`` builder. It works three ways without editing srbench:

* ``srbench run --models NAME.py:ClassName --weights NAME.py:ClassName=ckpt.pth``;
* ``SRBENCH_PLUGINS=NAME.py srbench run --models NAME`` (the registration runs on import);
* copied into ``models/`` and listed in ``models/zoo.py``: a registered architecture.

The test pins the template's params and FLOPs to closed forms at 1x3x16x16, checks every
scale's output shape, a strict state-dict round trip and ``srbench profile`` on the file.
When the architecture changes, the closed forms in the test must change with it.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
from pathlib import Path

from srbench.commands.options import with_example
from srbench.core.errors import SrbenchError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

MODEL_TEMPLATE = '''"""{name}: a minimal efficient SR network (written by ``srbench new-model {name}``).

Architecture, for an input of shape (N, 3, H, W) on [0, 1] (``input_range = 1.0``):

1. ``head``: 3x3 conv 3 -> C feature channels, then ReLU;
2. ``tail``: 3x3 conv C -> 3*s*s, then ``PixelShuffle(s)`` -> (N, 3, s*H, s*W);
3. plus the nearest-neighbour upsample of the input (a global skip: a zero ``tail``
   returns the nearest upsample, so training starts from a sensible output).

Params: 27*C + C (head) + 9*C*3*s*s + 3*s*s (tail). fvcore FLOPs (MACs, bias ignored) at
H x W: (27*C + 27*C*s*s) * H*W for the convs plus 3*s*s*H*W for nearest upsampling.

Use it without editing srbench:

    srbench profile --models {name}.py:{cls}
    srbench run --models rlfn,{name}.py:{cls} --weights {name}.py:{cls}={name}_x4.pth
    SRBENCH_PLUGINS={name}.py srbench run --models {name}

or copy it into srbench's ``models/`` folder and add ``{name}`` to the imports in
``models/zoo.py``: the registration below then makes it a built-in model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srbench.models.registry import list_models, register_model


class {cls}(nn.Module):
    """{name}: head conv, pixel-shuffle tail, nearest-upsample skip (see the module docstring).

    Args:
        upscale: the upscaling factor s (srbench passes ``--scale`` here).
        feature_channels: C, the width of the feature map.
    """

    #: The value range the network takes and returns: 1.0 for [0, 1], 255.0 for [0, 255].
    #: srbench reads this attribute (``--input-range NAME=...`` overrides it).
    input_range = 1.0

    def __init__(self, upscale: int = 4, feature_channels: int = 16) -> None:
        super().__init__()
        self.upscale = upscale
        self.head = nn.Conv2d(3, feature_channels, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.tail = nn.Conv2d(feature_channels, 3 * upscale * upscale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 3, s*H, s*W), both on the ``input_range`` scale."""
        skip = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return self.shuffle(self.tail(self.act(self.head(x)))) + skip


# Registered under "{name}" on import (guarded: a file imported as a plugin and again by
# path registers once). Official checkpoints, if you publish some, go in ``weights=`` as
# ``WeightsSpec`` entries (file name, sha256, URL, scale); see models/span.py.
if "{name}" not in list_models("{name}", include_test_only=True):

    @register_model(
        "{name}",
        scales=(2, 3, 4),
        input_range={cls}.input_range,
        description="{name}: head conv + pixel-shuffle tail + nearest skip (template)",
        tags=("conv",),
    )
    def build_{name}(scale: int = 4, **kwargs: object) -> nn.Module:
        return {cls}(upscale=scale, **kwargs)
'''

TEST_TEMPLATE = '''"""Tests for {name}.py (written by ``srbench new-model {name}``).

Run them with ``python -m pytest {test}``. The closed forms below follow the architecture
in {name}.py's docstring; change them together.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from srbench.cli import main
from srbench.measure.counting import count_params, profile_model
from srbench.models.usercode import import_file

MODEL_FILE = Path(__file__).with_name("{name}.py")
module = import_file(MODEL_FILE)


def closed_form_params(c: int, s: int) -> int:
    return 27 * c + c + 9 * c * 3 * s * s + 3 * s * s


def closed_form_flops(c: int, s: int, h: int, w: int) -> int:
    return (27 * c + 27 * c * s * s) * h * w + 3 * s * s * h * w


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape_params_and_flops(scale: int) -> None:
    model = module.{cls}(upscale=scale, feature_channels=16).eval()
    x = torch.rand(1, 3, 16, 16)
    assert model(x).shape == (1, 3, 16 * scale, 16 * scale)
    assert count_params(model) == closed_form_params(16, scale)
    assert profile_model(model, (1, 3, 16, 16)).flops == closed_form_flops(16, scale, 16, 16)


def test_zero_tail_is_nearest_upsampling() -> None:
    model = module.{cls}(upscale=4).eval()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)
    x = torch.rand(1, 3, 8, 8)
    expected = x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    assert torch.equal(model(x), expected)


def test_state_dict_loads_strictly(tmp_path: Path) -> None:
    trained = module.{cls}(upscale=4)
    path = tmp_path / "{name}_x4.pth"
    torch.save(trained.state_dict(), path)
    fresh = module.{cls}(upscale=4)
    fresh.load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))


def test_srbench_profiles_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--models", f"{{MODEL_FILE}}:{cls}", "--input", "1x3x16x16", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    assert row["params"] == closed_form_params(16, 4)
    assert row["flops"] == closed_form_flops(16, 4, 16, 16)
'''


def class_name(name: str) -> str:
    """``my_net`` → ``MyNet``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def check_name(name: str) -> None:
    """Refuse a NAME that is not a lowercase identifier or is already a registered model."""
    from srbench.models.registry import list_models

    if not _NAME.match(name) or keyword.iskeyword(name):
        raise SrbenchError(
            f"new-model {name!r}: the name must be a lowercase Python identifier (letters, digits, "
            "underscores, starting with a letter), e.g. srbench new-model my_net"
        )
    if name in list_models(name, include_test_only=True):
        raise SrbenchError(
            f"new-model {name}: a model named {name!r} is already registered; choose another name"
        )


def write_model_files(name: str, folder: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``folder/NAME.py`` and ``folder/test_NAME.py``; returns both paths.

    Raises :class:`SrbenchError` for a bad name or an existing file without ``force``.
    """
    from srbench.core.files import atomic_write_text

    model_path, test_path = folder / f"{name}.py", folder / f"test_{name}.py"
    existing = [str(p) for p in (model_path, test_path) if p.exists()]
    if existing and not force:
        raise SrbenchError(f"{', '.join(existing)} already exist(s); pass --force to replace, or --dir DIR")
    check_name(name)
    cls = class_name(name)
    atomic_write_text(model_path, MODEL_TEMPLATE.format(name=name, cls=cls), mkdir=True)
    atomic_write_text(test_path, TEST_TEMPLATE.format(name=name, cls=cls, test=test_path.name), mkdir=True)
    return model_path, test_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "new-model",
        help="write a minimal documented model file and its test (a new architecture in one file)",
        description=(
            "Write NAME.py (an nn.Module with its input range and registry entry) and test_NAME.py "
            "(closed-form params/FLOPs, shapes, strict loading). Measure it at once with "
            "'srbench run --models NAME.py:ClassName'."
        ),
        **with_example("srbench new-model my_net && pytest test_my_net.py"),
    )
    p.add_argument("name", help="model name: a lowercase identifier, e.g. my_net")
    p.add_argument("--dir", type=Path, default=Path("."), help="folder to write into (default: here)")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=new_model_command)


def new_model_command(args: argparse.Namespace) -> int:
    from srbench.core.console import make_console

    model_path, test_path = write_model_files(args.name, args.dir, force=args.force)
    cls = class_name(args.name)
    console = make_console()
    console.print(f"wrote {model_path} and {test_path}", markup=False)
    profile = f"srbench profile --models {model_path}:{cls}"
    if importlib.util.find_spec("pytest") is not None:
        console.print(f"next: python -m pytest {test_path}", markup=False)
        console.print(f"      {profile}", markup=False)
    else:
        # The quick-start install has no pytest: name the command that gets it, then the test.
        console.print(f"next: {profile}", markup=False)
        console.print(
            f"      to run {test_path.name}: python -m pip install pytest, then python -m pytest {test_path}",
            markup=False,
        )
    return 0
