"""The regression check catches a one-grey-level change on one pixel of one model's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from srbench.cli import main
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.models.bicubic import Bicubic
from srbench.models.registry import register_model, unregister_model
from srbench.models.specs import ModelSpec
from srbench.reporting.check import compare_runs, failures
from srbench.results.config import RunConfig
from srbench.results.environment import collect_environment
from srbench.results.io import write_results
from srbench.results.schema import RunResult
from srbench.runner.protocol import measure_model


class _OnePixelOff(Bicubic):
    """MATLAB bicubic, then one grey level added to one pixel of the red channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x).clone()
        y[..., 0, 40, 40] += 1.0 / 255.0
        return y


@pytest.fixture
def one_pixel_model() -> str:
    register_model(
        "test_bicubic_1px",
        scales=(4,),
        input_range=1.0,
        description="test-only",
        tags=("test-only",),
    )(lambda scale=4: _OnePixelOff(scale))
    yield "test_bicubic_1px"
    unregister_model("test_bicubic_1px")


def _run(arch: str, images: ImageCache) -> RunResult:
    cfg = RunConfig(models=["bicubic"], data="sample-mini", isolate=False, warmup=0)
    result = measure_model(ModelSpec(name="bicubic", arch=arch), images, cfg)
    assert result.status == "ok", result.reason
    return RunResult(
        environment=collect_environment(torch.device("cpu")),
        config=cfg.to_dict(),
        dataset={"name": "sample-mini", "images": len(images)},
        models=[result],
    )


def test_one_grey_level_on_one_pixel_fails_the_check(tmp_path: Path, one_pixel_model: str) -> None:
    images = ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path / "img")
    base, now = _run("bicubic", images), _run(one_pixel_model, images)
    # The change is far below every PSNR/SSIM tolerance...
    assert abs(base.models[0].psnr_y - now.models[0].psnr_y) < 1e-3
    # ...but every image's output fingerprint differs, and nothing else fails.
    failed = failures(compare_runs(base, now, per_image=True))
    assert sorted(f.metric for f in failed) == sorted(f"sr_sha256[{n}]" for n in images.names)
    assert failures(compare_runs(base, base, per_image=True)) == []
    # And through the CLI: exit 1.
    write_results(base, tmp_path / "base")
    write_results(now, tmp_path / "now")
    assert (
        main(
            [
                "check",
                str(tmp_path / "now" / "results.json"),
                "--baseline",
                str(tmp_path / "base" / "results.json"),
            ]
        )
        == 1
    )
    assert (
        main(
            [
                "check",
                str(tmp_path / "base" / "results.json"),
                "--baseline",
                str(tmp_path / "base" / "results.json"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    ("key", "other"),
    [
        ("device_name", "another CPU"),
        # VMs often name every CPU alike: its kernel ISA (AVX2 vs AVX512) picks other kernels.
        ("cpu_capability", "ANOTHER_ISA"),
    ],
)
def test_other_platform_skips_output_comparison(
    tmp_path: Path, one_pixel_model: str, key: str, other: str
) -> None:
    images = ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path / "img")
    base, now = _run("bicubic", images), _run(one_pixel_model, images)
    assert base.environment[key] == now.environment[key]  # recorded by every run
    now.environment[key] = other
    findings = compare_runs(base, now, per_image=True)
    assert failures(findings) == []
    assert any(f.metric == "sr_sha256" and f.verdict == "note" for f in findings)


def test_committed_baseline_is_a_valid_fixture() -> None:
    path = Path(__file__).parent.parent / "results" / "baselines" / "ci-cpu.json"
    data = json.loads(path.read_text())
    assert data["schema"] == "srbench/1" and data["dataset"]["name"] == "sample-mini"
    names = {m["name"]: m for m in data["models"]}
    for name in ("rlfn", "span", "span_tiny", "spanf", "efdn", "rlfn_paper", "rlfn_s"):
        assert names[name]["status"] == "ok" and names[name]["weights"] is not None
    for name in ("span_ca", "fdat_tiny", "grla"):
        assert names[name]["status"] == "no-weights" and names[name]["params"] > 0
    assert all(i["sr_sha256"] for m in data["models"] for i in m["images"])
