"""The prepared GPU check: a clear one-line refusal without CUDA, and its code paths on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srbench.selfcheck import gpu_check

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@needs_no_cuda
def test_without_cuda_it_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "srbench.selfcheck.gpu_check", "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("srbench gpu_check: no CUDA device (torch ")
    assert not (tmp_path / "out").exists()  # nothing half-done left behind


@pytest.mark.slow
def test_checks_run_on_cpu(tmp_path: Path, official_weights: Path) -> None:
    # The same code on the CPU with tiny settings: every check runs and passes (CPU vs CPU
    # metrics are identical), CUDA-only figures are null, the JSON is complete.
    doc = gpu_check.run_checks(torch.device("cpu"), tmp_path, div2k_images=0, data="sample-mini")
    assert json.loads((tmp_path / "gpu_check.json").read_text())["checks"].keys() == doc["checks"].keys()
    assert doc["checks"]["metrics"]["passed"], doc["checks"]["metrics"]
    assert doc["checks"]["metrics"]["max_abs_diff"] == {"psnr_y": 0.0, "ssim_y": 0.0, "psnr_rgb": 0.0}
    variants = doc["checks"]["variants"]
    assert "error" not in variants, variants
    assert variants["variants"]["channels_last"]["status"] == "ok"
    models = doc["checks"]["models"]
    assert "error" not in models, models
    assert set(models["sets"]["sample"]) == {"span", "rlfn", "span_ca"}
    assert doc["cuda_events"] is False
