"""Every timing option of ``srbench run`` does what it says (CPU, tiny models, tiny data).

A test-only model counts its forwards and records the dtype, memory format and
determinism flag it ran under; it is a learned 3x3 conv + pixel-shuffle residual on a
nearest-neighbour upsampling, given a checkpoint so that quality is measured.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srbench.cli import main
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.data.imageio import write_png_atomic
from srbench.measure.shapeprobe import AFTER_REPEATS
from srbench.measure.timing import forward_budget
from srbench.models.registry import register_model, unregister_model
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.runner.protocol import measure_model

MODEL = "test_probe"
PLAIN = "test_plain"
#: A tiny complexity input, so counting stays fast; the probe ignores calls of this size.
PROFILE = [1, 3, 8, 8]
N_IMAGES = 2


class _Probe(nn.Module):
    """x4 nearest upsampling plus a learned residual; logs every forward on dataset images."""

    log: ClassVar[list[dict[str, object]]] = []

    def __init__(self, scale: int = 4, *, record: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.record = record
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.record and list(x.shape) != PROFILE:
            _Probe.log.append(
                {
                    "dtype": x.dtype,
                    "channels_last": x.stride(1) == 1,
                    "deterministic": torch.are_deterministic_algorithms_enabled(),
                }
            )
        up = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return up + F.pixel_shuffle(self.conv(x), self.scale)


@pytest.fixture(scope="module", autouse=True)
def _models() -> Iterator[None]:
    for name, record in ((MODEL, True), (PLAIN, False)):
        register_model(
            name, scales=(4,), input_range=1.0, description="test-only probe", tags=("test-only",)
        )(lambda scale=4, record=record: _Probe(scale, record=record))
    yield
    unregister_model(MODEL)
    unregister_model(PLAIN)


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    _Probe.log.clear()
    yield
    # --deterministic is process-wide; never let it leak into other tests.
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gen = torch.Generator().manual_seed(0)
    model = _Probe()
    with torch.no_grad():
        model.conv.weight.copy_(torch.randn(model.conv.weight.shape, generator=gen) * 0.02)
        model.conv.bias.zero_()
    path = tmp_path_factory.mktemp("ckpt") / "probe.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An hr-only folder of two smooth 48x40 images (LR generated, 12x10)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:40, 0:48]
    for i in range(N_IMAGES):
        base = 128 + 90 * np.sin(xx / (5 + i)) * np.cos(yy / 7)
        img = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 3, (40, 48, 3))
        write_png_atomic(root / "HR" / f"{i}.png", np.clip(np.round(img), 0, 255).astype(np.uint8))
    return root / "HR"


@pytest.fixture(scope="module")
def images(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageCache:
    return ImageCache.build(load_dataset(data_dir, scale=4), tmp_path_factory.mktemp("cache"))


def _measure(images: ImageCache, checkpoint: Path, name: str = MODEL, **options: object):
    config = RunConfig(models=[name], device="cpu", profile_input=list(PROFILE), isolate=False, **options)
    result = measure_model(ModelSpec(name, name, checkpoint), images, config)
    assert result.status == "ok", result.reason
    return result


def _untimed_extra(model: dict, warmup: int) -> int:
    """Forwards besides the warm-up and the timed ones: the CPU memory pass when it is not a
    warm-up call (with one shape: unless ``warmup`` >= 2) and the shape probe's (one per
    judged or passed-over shape, plus its confirmations)."""
    probe = model.get("shape_probe") or {}
    confirmations = sum(a is not None for a in probe.get("after_cost_ms") or []) * AFTER_REPEATS
    shapes = len(probe.get("shapes") or []) + len(probe.get("passed_over") or [])
    return (1 if warmup <= 1 else 0) + shapes + confirmations


@pytest.mark.parametrize(("warmup", "repeat"), [(0, 1), (3, 1), (2, 3)])
def test_warmup_and_repeat_count_forwards(
    images: ImageCache, checkpoint: Path, warmup: int, repeat: int
) -> None:
    result = _measure(images, checkpoint, warmup=warmup, repeat=repeat)
    # `repeat` undisturbed forwards per image, more when some were disturbed (within the
    # budget); the JSON records every one.
    timed = sum(len(i.runtime_disturbed or []) for i in result.images)
    assert N_IMAGES * repeat <= timed <= N_IMAGES * forward_budget(repeat)
    assert len(_Probe.log) == warmup + timed + _untimed_extra(result.to_dict(), warmup)
    assert result.runtime_ms is not None and result.runtime_ms.n == N_IMAGES


def test_bf16_on_cpu_runs_at_that_dtype(images: ImageCache, checkpoint: Path) -> None:
    fp32 = _measure(images, checkpoint, warmup=0)
    _Probe.log.clear()
    bf16 = _measure(images, checkpoint, warmup=0, dtype="bf16")
    assert {e["dtype"] for e in _Probe.log} == {torch.bfloat16}
    # Quality is measured on the bf16 output (cast back to fp32): close to fp32, not equal.
    assert bf16.psnr_y != fp32.psnr_y
    assert bf16.psnr_y == pytest.approx(fp32.psnr_y, abs=1.0)
    assert 0.5 < bf16.ssim_y <= 1.0


def test_channels_last_runs_channels_last(images: ImageCache, checkpoint: Path) -> None:
    default = _measure(images, checkpoint, warmup=1)
    assert not any(e["channels_last"] for e in _Probe.log)
    _Probe.log.clear()
    cl = _measure(images, checkpoint, warmup=1, channels_last=True)
    assert _Probe.log and all(e["channels_last"] for e in _Probe.log)
    assert cl.psnr_y == pytest.approx(default.psnr_y, abs=0.01)


def test_deterministic_runs_are_identical(images: ImageCache, checkpoint: Path) -> None:
    first = _measure(images, checkpoint, warmup=0, deterministic=True)
    second = _measure(images, checkpoint, warmup=0, deterministic=True)
    assert all(e["deterministic"] for e in _Probe.log)
    quality = [(i.psnr_y, i.ssim_y, i.psnr_rgb) for i in first.images]
    assert quality == [(i.psnr_y, i.ssim_y, i.psnr_rgb) for i in second.images]
    assert all(np.isfinite(q).all() for q in quality)


@pytest.mark.slow
def test_compile_time_is_reported_apart(images: ImageCache, checkpoint: Path) -> None:
    try:
        torch.compile(nn.Conv2d(3, 3, 1))(torch.zeros(1, 3, 4, 4))
    except Exception as exc:  # no C++ compiler or an unsupported platform
        pytest.skip(f"torch.compile does not work here: {type(exc).__name__}: {exc}")
    eager = _measure(images, checkpoint, name=PLAIN, warmup=0)
    # --warmup 0: the compiling call must still happen outside the timed loop.
    compiled = _measure(images, checkpoint, name=PLAIN, warmup=0, compile=True)
    assert compiled.phases_s["compile"] > 0
    # CPU memory is not counted for compiled kernels (they allocate outside the operators).
    assert compiled.memory_mb is None and compiled.memory_kind == "cpu_compiled_not_measured"
    assert any(n.startswith("memory not measured: with --compile") for n in compiled.notes)
    assert eager.memory_kind == "cpu_forward_peak" and eager.memory_mb
    assert compiled.runtime_ms is not None and compiled.runtime_ms.n == N_IMAGES
    assert "compile" not in eager.phases_s
    assert compiled.psnr_y == pytest.approx(eager.psnr_y, abs=0.01)


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--dtype", "fp16"], "--dtype fp16"),
        (["--cudnn-benchmark"], "--cudnn-benchmark"),
        (["--tf32", "on"], "--tf32"),
    ],
)
def test_cuda_only_options_refused_on_cpu(
    option: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["run", "--models", "bicubic", "--device", "cpu", "--output", str(out), *option])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("srbench: error: ") and named in lines[0] and "CUDA" in lines[0]
    assert not (out / "results.json").exists()


def _cli_run(data_dir: Path, checkpoint: Path, out: Path, *options: str) -> dict:
    argv = ["run", "--models", MODEL, "--data", str(data_dir), "--device", "cpu", "--no-isolate"]
    argv += ["--weights", f"{MODEL}={checkpoint}", "--profile-input", "1x3x8x8", "--output", str(out)]
    assert main([*argv, *options]) == 0
    return json.loads((out / "results.json").read_text())


def test_every_option_is_recorded(data_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    doc = _cli_run(
        data_dir,
        checkpoint,
        tmp_path / "out",
        *("--warmup", "1", "--repeat", "2", "--dtype", "bf16", "--channels-last"),
        *("--deterministic", "--seed", "7"),
    )
    config = doc["config"]
    expected = {
        "warmup": 1,
        "repeat": 2,
        "dtype": "bf16",
        "channels_last": True,
        "compile": False,
        "cudnn_benchmark": False,
        "tf32": None,
        "deterministic": True,
        "seed": 7,
        "ntire_compat": False,
        "profile_input": PROFILE,
        "device": "cpu",
        "isolate": False,
    }
    assert {k: config[k] for k in expected} == expected
    assert len(_Probe.log) == 1 + N_IMAGES * 2 + _untimed_extra(doc["models"][0], 1)
    assert doc["models"][0]["status"] == "ok"


def test_ntire_compat(data_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    doc = _cli_run(data_dir, checkpoint, out, "--ntire-compat")
    assert doc["config"]["ntire_compat"] is True
    assert doc["config"]["warmup"] == 0
    assert len(_Probe.log) == N_IMAGES + _untimed_extra(doc["models"][0], 0)  # no warm-up forward at all
    model = doc["models"][0]
    md = (out / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert "Val PSNR-RGB (dB)" in header and "Time (ms, mean)" in header
    row = next(line for line in md.splitlines() if line.startswith(f"| {MODEL} "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # A figure may carry its 95 % interval (docs/statistics.md): "22.95 ±0.11".
    assert cells[1].split(" ±")[0] == f"{model['psnr_rgb']:.2f}"
    assert cells[3].split(" ±")[0] == f"{model['runtime_ms']['mean']:.2f}"
