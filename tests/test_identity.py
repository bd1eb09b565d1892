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


def test_truncated_png_refused_although_user_code_allows_truncation(
    tmp_path: Path, capsys, restore_pil
) -> None:
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
    with pytest.raises(SrbenchError, match=r"t\.png"):
        read_image(src)
    with imageio.srbench_pil_settings():
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False and Image.MAX_IMAGE_PIXELS == imageio.MAX_IMAGE_PIXELS
        with imageio.srbench_pil_settings():  # nested: still srbench's
            pass
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True and Image.MAX_IMAGE_PIXELS is None
    assert imageio.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # Pillow's documented default


# --------------------------------------------------------------------------- 2. EMA weights

from srbench.models.loading import read_checkpoint_file  # noqa: E402


def _pair_state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"conv.weight": torch.randn(3, 3, 1, 1, generator=g), "conv.bias": torch.randn(3, generator=g)}


@pytest.mark.parametrize(
    ("raw", "ema"),
    [
        ("state_dict", "state_dict_ema"),  # timm
        ("model", "model_ema"),  # DeiT
        ("model", "ema"),
        ("net_g", "net_g_ema"),  # BasicSR training state
        ("params", "params_ema"),  # BasicSR release
        ("generator", "generator_ema"),  # sibling: a spelling no list names
    ],
)
def test_the_ema_copy_is_loaded_and_its_key_recorded(tmp_path: Path, raw: str, ema: str) -> None:
    raw_state, ema_state = _pair_state(1), _pair_state(2)
    optimizer = {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"lr": 1e-3}]}
    path = tmp_path / "ckpt.pth"
    # The raw copy first in the file, beside an optimizer state and an epoch counter.
    torch.save({raw: raw_state, ema: ema_state, "optimizer": optimizer, "epoch": 7}, path)
    loaded = read_checkpoint_file(path)
    assert loaded.key == ema and raw in loaded.others
    assert all(torch.equal(loaded.state[k], ema_state[k]) for k in ema_state)
    forced = read_checkpoint_file(path, key=raw)
    assert forced.key == raw and all(torch.equal(forced.state[k], raw_state[k]) for k in raw_state)


def test_nested_wrappers_and_a_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "nested.pth"
    torch.save({"checkpoint": {"state_dict": _pair_state(1), "state_dict_ema": _pair_state(2)}}, path)
    loaded = read_checkpoint_file(path)
    assert loaded.key == "checkpoint/state_dict_ema"
    assert torch.equal(loaded.state["conv.bias"], _pair_state(2)["conv.bias"])
    assert read_checkpoint_file(path, key="checkpoint/state_dict").key == "checkpoint/state_dict"
    expected = r"no weights under key 'params' \(keys holding weights: checkpoint\)"
    with pytest.raises(SrbenchError, match=expected):
        read_checkpoint_file(path, key="params")


UP_MODEL = """
from torch import nn
import torch.nn.functional as F


class Up(nn.Module):
    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=self.scale, mode="nearest")
"""


def _identity_and_zero(tmp_path: Path, raw: str, ema: str) -> Path:
    """A checkpoint whose EMA copy is the identity 1x1 conv and whose raw copy is all zeros."""
    identity = {"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)}
    zeros = {k: torch.zeros_like(v) for k, v in identity.items()}
    path = tmp_path / "up.pth"
    torch.save({raw: zeros, ema: identity}, path)
    return path


def test_run_loads_the_ema_copy_records_the_key_and_weights_key_chooses(tmp_path: Path, capsys) -> None:
    model = tmp_path / "upnet.py"
    model.write_text(UP_MODEL)
    ckpt = _identity_and_zero(tmp_path, "model", "model_ema")
    data = _hr_only(tmp_path / "data")
    base = ["run", "--models", f"{model}:Up", "--weights", f"Up={ckpt}", "--data", str(data)]
    base += ["--layout", "hr-only", *FAST, "--no-isolate"]
    rows = {}
    for label, extra in (("default", []), ("raw", ["--weights-key", "Up=model"])):
        code, _, err = _run([*base, *extra, "--output", str(tmp_path / label)], capsys)
        assert code == 0, err
        (rows[label],) = json.loads((tmp_path / label / "results.json").read_text())["models"]
    assert rows["default"]["weights"]["key"] == "model_ema"
    assert rows["raw"]["weights"]["key"] == "model"
    # Identity weights give nearest upsampling; zero weights a black image: far lower PSNR.
    assert rows["default"]["psnr_y"] > rows["raw"]["psnr_y"] + 3


def test_upscale_takes_weights_key_too(tmp_path: Path, capsys) -> None:
    """Sibling instance: another command, a bare KEY (every model), BasicSR's net_g names."""
    model = tmp_path / "upnet.py"
    model.write_text(UP_MODEL)
    ckpt = _identity_and_zero(tmp_path, "net_g", "net_g_ema")
    src = tmp_path / "in.png"
    pixels = _rgb(8, 8, 4)
    write_png_atomic(src, pixels)
    outputs = {}
    for label, extra in (("default", []), ("raw", ["--weights-key", "net_g"])):
        out = tmp_path / f"{label}.png"
        args = ["upscale", str(src), "--model", f"{model}:Up", "--weights", f"Up={ckpt}", "-o", str(out)]
        code, _, err = _run([*args, *extra], capsys)
        assert code == 0, err
        outputs[label] = np.asarray(Image.open(out))
    assert np.array_equal(outputs["default"], np.repeat(np.repeat(pixels, 4, axis=0), 4, axis=1))
    assert not outputs["raw"].any()


# --------------------------------------------------------------------------- 1. sibling modules


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


NET = """
from torch import nn
from blocks import Block


class {cls}(nn.Module):
    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.body = Block()
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.body(x))
"""

BLOCK_A = """
from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)

    def forward(self, x):
        return self.conv(x)
"""

BLOCK_B = """
from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.mix = nn.Conv2d(48, 48, 1)

    def forward(self, x):
        return self.mix(self.conv(x))
"""


def test_profile_gives_each_file_its_own_sibling_modules(tmp_path: Path, capsys) -> None:
    a = _write(tmp_path / "A" / "net.py", NET.format(cls="NetA"))
    _write(tmp_path / "A" / "blocks.py", BLOCK_A)
    b = _write(tmp_path / "B" / "net.py", NET.format(cls="NetB"))
    _write(tmp_path / "B" / "blocks.py", BLOCK_B)
    args = ["profile", "--models", f"a={a}:NetA,b={b}:NetB", "--input", "1x3x16x16", "--json"]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    # a: conv 3->48 3x3 = 3*48*9 + 48; b: the same plus conv 48->48 1x1 = 48*48 + 48.
    assert rows["a"]["params"] == 1_344
    assert rows["b"]["params"] == 1_344 + 2_352
    assert "blocks" not in sys.modules  # nothing left for srbench or the next file to find


NET_OPS = """
from torch import nn
import torch.nn.functional as F
from {module} import act


class Net(nn.Module):
    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return F.interpolate(act(self.conv(x)), scale_factor=self.scale, mode="nearest")
"""


@pytest.mark.parametrize("module", ["ops", "layers.ops"], ids=["module", "package"])
def test_run_same_shapes_other_forward_measures_each_own_code(tmp_path: Path, capsys, module: str) -> None:
    """Same checkpoint, same shapes, siblings that differ only in what ``act`` computes."""
    for folder, body in (("A", "return x"), ("B", "return 1 - x")):
        _write(tmp_path / folder / "net.py", NET_OPS.format(module=module))
        sibling = tmp_path / folder / (module.replace(".", "/") + ".py")
        _write(sibling, f"def act(x):\n    {body}\n")
        if "." in module:
            _write(sibling.parent / "__init__.py", "")
    ckpt = tmp_path / "id.pth"
    torch.save({"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)}, ckpt)
    a, b = tmp_path / "A" / "net.py", tmp_path / "B" / "net.py"
    args = ["run", "--models", f"a={a}:Net,b={b}:Net", "--weights", f"a={ckpt}", "--weights", f"b={ckpt}"]
    args += ["--data", str(_hr_only(tmp_path / "data")), "--layout", "hr-only", *FAST, "--no-isolate"]
    code, _, err = _run([*args, "--output", str(tmp_path / "o")], capsys)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads((tmp_path / "o" / "results.json").read_text())["models"]}
    # a upsamples by nearest neighbour; b returns its complement: other images, another PSNR.
    assert rows["a"]["psnr_y"] != pytest.approx(rows["b"]["psnr_y"], abs=0.1)
    for img_a, img_b in zip(rows["a"]["images"], rows["b"]["images"]):
        assert img_a["sr_sha256"] != img_b["sr_sha256"]
    assert module.split(".")[0] not in sys.modules


# --------------------------------------------------------------------------- 3. the ONNX export cache

from srbench.backends.onnx_export import ExportMetadata  # noqa: E402
from srbench.models.usercode import import_file  # noqa: E402


def test_onnx_export_key_follows_the_models_code(tmp_path: Path) -> None:
    """Same class name, same weights and shapes, another forward: another export."""
    from srbench.backends.onnxruntime.session import cache_key

    models = []
    for folder, body in (("A", "return x"), ("B", "return 1 - x")):
        path = _write(tmp_path / folder / "net.py", NET_OPS.format(module="ops"))
        _write(tmp_path / folder / "ops.py", f"def act(x):\n    {body}\n")
        net = import_file(path).Net()
        net.load_state_dict({"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)})
        models.append(net)
    meta = ExportMetadata(model="net", arch="Net", scale=4, input_range=1.0, weights_sha256="0" * 64)
    assert cache_key(models[0], meta, 17) != cache_key(models[1], meta, 17)
    assert cache_key(models[0], meta, 17) == cache_key(models[0], meta, 17)


# --------------------------------------------------------------------------- 4. resume


def test_run_resume_measures_again_a_checkpoint_overwritten_in_place(tmp_path: Path, capsys) -> None:
    model = _write(tmp_path / "upnet.py", UP_MODEL)
    ckpt = tmp_path / "net_g_latest.pth"  # BasicSR overwrites this file as training goes on
    identity = {"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)}
    torch.save(identity, ckpt)
    out = tmp_path / "o"
    args = [
        "run",
        "--models",
        f"{model}:Up",
        "--weights",
        f"Up={ckpt}",
        "--data",
        str(_hr_only(tmp_path / "d")),
    ]
    args += ["--layout", "hr-only", *FAST, "--no-isolate", "--output", str(out)]
    code, _, err = _run(args, capsys)
    assert code == 0, err
    (first,) = json.loads((out / "results.json").read_text())["models"]
    assert first["identity"]["weights_sha256"] == first["weights"]["sha256"]

    # Unchanged: the row is kept as it was.
    code, _, err = _run(["run", "--resume", str(out)], capsys)
    assert code == 0 and "already measured" in err and "measured again" not in err, err

    torch.save({k: v * 0.5 for k, v in identity.items()}, ckpt)
    code, _, err = _run(["run", "--resume", str(out)], capsys)
    assert code == 0, err
    (line,) = [x for x in err.splitlines() if "measured again" in x]
    assert line.startswith("Up: measured again: its checkpoint's content changed (sha256 ")
    (again,) = json.loads((out / "results.json").read_text())["models"]
    assert again["weights"]["sha256"] != first["weights"]["sha256"]
    assert again["psnr_y"] != pytest.approx(first["psnr_y"], abs=0.1)


def test_run_resume_measures_again_after_the_code_or_the_data_changed(tmp_path: Path, capsys) -> None:
    """Sibling instance: the model's code edited in place, then an image replaced in place."""
    model = _write(tmp_path / "upnet.py", UP_MODEL)
    ckpt = tmp_path / "w.pth"
    torch.save({"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)}, ckpt)
    data = _hr_only(tmp_path / "d")
    out = tmp_path / "o"
    args = ["run", "--models", f"{model}:Up", "--weights", f"Up={ckpt}", "--data", str(data)]
    args += ["--layout", "hr-only", *FAST, "--output", str(out)]  # workers: each imports the file afresh
    code, _, err = _run(args, capsys)
    assert code == 0, err
    from srbench.models import usercode

    model.write_text(UP_MODEL.replace('mode="nearest"', 'mode="bilinear"'))
    usercode._FILE_MODULES.clear()  # a new srbench process would import the edited file
    code, _, err = _run(["run", "--resume", str(out)], capsys)
    assert code == 0 and "Up: measured again: the model's code changed" in err, err

    write_png_atomic(data / "img0.png", _rgb(32, 32, 99))
    code, _, err = _run(["run", "--resume", str(out)], capsys)
    assert code == 0 and "Up: measured again: the data's content changed" in err, err


def test_sweep_resume_measures_again_a_checkpoint_overwritten_in_place(tmp_path: Path, capsys) -> None:
    """Sibling instance: another command (sweep), a registered architecture's checkpoint token."""
    model = _write(tmp_path / "upnet.py", UP_MODEL)
    ckpt = tmp_path / "net_g_latest.pth"
    identity = {"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)}
    torch.save(identity, ckpt)
    out = tmp_path / "s"
    args = [
        "sweep",
        "--models",
        f"{model}:Up",
        "--weights",
        f"Up={ckpt}",
        "--data",
        str(_hr_only(tmp_path / "d")),
    ]
    args += ["--layout", "hr-only", *FAST, "--warmup", "1", "--output", str(out)]
    code, _, err = _run(args, capsys)
    assert code == 0, err
    code, _, err = _run([*args, "--resume", str(out)], capsys)
    assert code == 0 and "measured again" not in err and "1 of 1 cells already measured" in err, err
    torch.save({k: v * 0.5 for k, v in identity.items()}, ckpt)
    code, _, err = _run([*args, "--resume", str(out)], capsys)
    assert code == 0, err
    assert "measured again: its checkpoint's content changed (sha256 " in err, err
    (row,) = json.loads((out / "results.json").read_text())["models"]
    assert row["identity"]["weights_sha256"] == row["weights"]["sha256"]


def test_onnx_export_cache_exports_an_edited_forward_again(tmp_path: Path, monkeypatch) -> None:
    """End to end: the cache hits for the same code and misses after ``forward`` changed."""
    pytest.importorskip("onnxruntime")
    from srbench.backends.onnxruntime.session import cached_export

    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    meta = ExportMetadata(model="net", arch="Net", scale=4, input_range=1.0, weights_sha256="0" * 64)
    exports = []
    for folder, body in (("A", "return x"), ("A", "return x"), ("B", "return 1 - x")):
        path = _write(tmp_path / folder / "net.py", NET_OPS.format(module="ops"))
        _write(tmp_path / folder / "ops.py", f"def act(x):\n    {body}\n")
        net = import_file(path).Net()
        net.load_state_dict({"conv.weight": torch.eye(3).reshape(3, 3, 1, 1), "conv.bias": torch.zeros(3)})
        exports.append(cached_export(net.eval(), meta))
    assert [e.cached for e in exports] == [False, True, False]
    assert exports[0].path == exports[1].path != exports[2].path
    assert exports[0].sha256 != exports[2].sha256


def test_export_loads_the_key_weights_key_names(tmp_path: Path) -> None:
    """Sibling instance: export's loading (the network it would export) honours --weights-key."""
    from srbench.runner.export import load_for_export

    model = _write(tmp_path / "upnet.py", UP_MODEL)
    ckpt = _identity_and_zero(tmp_path, "state_dict", "state_dict_ema")
    token = f"{model}:Up"
    for keys, expected in (
        (None, torch.eye(3).reshape(3, 3, 1, 1)),
        ({"*": "state_dict"}, torch.zeros(3, 3, 1, 1)),
    ):
        _, _, net, sha = load_for_export(token, scale=4, weights=str(ckpt), offline=True, weights_keys=keys)
        assert torch.equal(net.conv.weight.detach(), expected) and len(sha) == 64
