"""``python -m srbench.selfcheck.gpu_check --output DIR``: the CUDA paths end to end (``nox -s gpu``).

A prepared check for a machine with one NVIDIA GPU, meant to finish in under 5 minutes. It
runs, in one process, and writes to ``DIR/gpu_check.json`` (with the environment: GPU model,
driver, CUDA, cuDNN, torch, TF32 flags, NVML facts):

1. **metrics**: every image of the sample set upscaled by ``span`` on the GPU, then scored
   by :func:`~srbench.measure.quality.score_image` on the GPU (separable SSIM, one sync) and
   on the CPU (the tiled path) from the same output: PSNR-Y / PSNR-RGB must agree to 1e-6 dB,
   SSIM-Y to 1e-6, and the fingerprints exactly;
2. **models**: ``span``, ``rlfn`` and ``span_ca`` measured by the runner (CUDA events, peak
   memory as ``cuda_forward_peak``, NVML energy when the counter exists) on the sample set
   and on DIV2K-sized synthetic images: median and p90 forward ms, memory MB, J/image, and
   the loop / forward ratio (goal <= 1.05 at DIV2K size);
3. **variants**: ``span`` with fp16, bf16, channels-last and TF32 on: median ms and the
   PSNR-Y change against fp32 (the half-precision paths must run and stay within 0.1 dB).

Each check records ``passed``; the exit code is 0 when all pass, 1 otherwise, and 2 (one
line on stderr) when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from srbench.backends.pytorch import to_model_input
from srbench.core.console import make_console
from srbench.core.files import atomic_write_text
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.measure.energy import EnergyMeter
from srbench.measure.quality import score_image
from srbench.models.registry import create_model
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.results.environment import collect_environment
from srbench.results.schema import json_safe
from srbench.runner.protocol import measure_model
from srbench.selfcheck.bench import write_div2k_like

#: Models of the runner check (the GPU figures of docs/performance.md).
MODELS = ("span", "rlfn", "span_ca")
METRIC_TOL = 1e-6
HALF_PSNR_TOL_DB = 0.1
GOAL_LOOP_RATIO = 1.05


def no_cuda_message() -> str | None:
    """The one-line reason this machine cannot run the check, or None when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
    return (
        f"srbench gpu_check: no CUDA device (torch {torch.__version__}, {build}); "
        "run it on a machine with an NVIDIA GPU and a CUDA build of torch"
    )


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def metrics_check(device: Any, images: Any) -> dict[str, Any]:
    """CPU vs device scores of the same SR outputs (see the module docstring, item 1)."""
    import torch

    model = create_model("span").to(device)
    worst = {"psnr_y": 0.0, "ssim_y": 0.0, "psnr_rgb": 0.0}
    per_image = []
    fingerprints_equal = True
    with torch.inference_mode():
        for name, lr, hr in images:
            out = model(to_model_input(lr, 1.0, device, torch.float32))
            on_cpu = score_image(out.cpu(), hr, crop_border=4, name=name)
            on_dev = score_image(out.clone(), hr, crop_border=4, name=name)
            diffs = {k: abs(getattr(on_cpu, k) - getattr(on_dev, k)) for k in worst}
            for k, v in diffs.items():
                worst[k] = max(worst[k], v)
            fingerprints_equal &= on_cpu.sr_sha256 == on_dev.sr_sha256
            per_image.append({"name": name, "cpu": _figures(on_cpu), "device": _figures(on_dev), **diffs})
    return {
        "passed": fingerprints_equal and max(worst.values()) <= METRIC_TOL,
        "tolerance": METRIC_TOL,
        "max_abs_diff": worst,
        "fingerprints_equal": fingerprints_equal,
        "images": per_image,
    }


def _figures(score: Any) -> dict[str, Any]:
    names = ("psnr_y", "ssim_y", "psnr_rgb", "sr_sha256")
    return {k: getattr(score, k) for k in names}


def _measure(name: str, images: Any, device: Any, **config: Any) -> dict[str, Any]:

    cfg = RunConfig(models=[name], device=str(device), isolate=False, **config)
    t0 = time.perf_counter()
    r = measure_model(ModelSpec(name, name), images, cfg)
    wall = time.perf_counter() - t0
    times = [i.runtime_ms for i in r.images if i.runtime_ms is not None]
    forwards_s = sum(times) / 1e3
    return {
        "status": r.status,
        "reason": r.reason,
        "median_ms": statistics.median(times) if times else None,
        "p90_ms": _p90(times) if times else None,
        "memory_mb": r.memory_mb,
        "memory_kind": r.memory_kind,
        "energy_j_per_image": r.energy_j_per_image,
        "psnr_y": r.psnr_y,
        "loop_over_forwards": r.phases_s.get("loop", math.nan) / forwards_s if forwards_s else None,
        "phases_s": dict(r.phases_s),
        "wall_s": wall,
        "images": len(r.images),
    }


def models_check(device: Any, sets: dict[str, Any]) -> dict[str, Any]:
    """The runner on each model and image set (item 2)."""
    out: dict[str, Any] = {}
    for set_name, images in sets.items():
        out[set_name] = {name: _measure(name, images, device) for name in MODELS}
    rows = [m for s in out.values() for m in s.values()]
    ok = all(m["status"] != "error" for m in rows)
    ok &= all(m["memory_kind"] == "cuda_forward_peak" and (m["memory_mb"] or 0) > 0 for m in rows)
    div2k = out.get("div2k", {})
    ratios = [m["loop_over_forwards"] for m in div2k.values() if m["loop_over_forwards"] is not None]
    return {
        "passed": ok,
        "loop_over_forwards_div2k_worst": max(ratios) if ratios else None,
        "goal_loop_over_forwards": GOAL_LOOP_RATIO,
        "sets": out,
    }


def variants_check(device: Any, images: Any) -> dict[str, Any]:
    """span in fp16, bf16, channels-last and TF32 against fp32 (item 3)."""
    import torch

    variants = {
        "fp32": {},
        "fp16": {"dtype": "fp16"},
        "bf16": {"dtype": "bf16"},
        "channels_last": {"channels_last": True},
        "tf32": {"tf32": "on"},
    }
    out = {name: _measure("span", images, device, **cfg) for name, cfg in variants.items()}
    ref = out["fp32"]["psnr_y"]
    ok = all(v["status"] != "error" for v in out.values())
    for v in out.values():
        v["psnr_y_minus_fp32"] = None if v["psnr_y"] is None or ref is None else v["psnr_y"] - ref
        ok &= v["psnr_y_minus_fp32"] is not None and abs(v["psnr_y_minus_fp32"]) <= HALF_PSNR_TOL_DB
    tf32_flags = {
        "matmul": torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None,
        "cudnn": torch.backends.cudnn.allow_tf32 if device.type == "cuda" else None,
    }
    return {
        "passed": ok,
        "psnr_tolerance_db": HALF_PSNR_TOL_DB,
        "tf32_flags_after": tf32_flags,
        "variants": out,
    }


def run_checks(
    device: Any, out_dir: Path, *, div2k_images: int = 3, data: str | None = None
) -> dict[str, Any]:
    """Every check on ``device``; writes and returns the ``gpu_check.json`` document.

    ``div2k_images`` synthetic 2040x1356 HR images form the DIV2K-sized set (0: none);
    ``data`` replaces the embedded sample set (e.g. ``"sample-mini"``).
    Other devices than CUDA run the same code (the tests use the CPU with tiny settings);
    the CUDA-only figures are then null.
    """
    import torch

    started = time.perf_counter()
    checks: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="srbench-gpu-check-") as tmp:
        root = Path(tmp)
        sample = ImageCache.build(load_dataset(data, scale=4), root / "sample")
        sets = {"sample": sample}
        if div2k_images:
            hr_dir = write_div2k_like(root / "div2k", div2k_images)
            sets["div2k"] = ImageCache.build(load_dataset(hr_dir, scale=4), root / "div2k-cache")
        for key, fn in (
            ("metrics", lambda: metrics_check(device, sample)),
            ("models", lambda: models_check(device, sets)),
            ("variants", lambda: variants_check(device, sample)),
        ):
            t0 = time.perf_counter()
            try:
                checks[key] = fn()
            except Exception as exc:  # one failing check must not hide the others' figures
                checks[key] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"}
            seconds[key] = time.perf_counter() - t0
    energy = EnergyMeter.for_device(device)
    doc = {
        "schema": "srbench-gpu-check/1",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": collect_environment(device),
        "energy_counter": energy.available,
        "cuda_events": device.type == "cuda",
        "seconds": time.perf_counter() - started,
        "check_seconds": seconds,
        "passed": all(c.get("passed") for c in checks.values()),
        "checks": checks,
    }
    if device.type == "cuda":
        doc["max_memory_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    atomic_write_text(out_dir / "gpu_check.json", json.dumps(json_safe(doc), indent=2) + "\n", mkdir=True)
    return doc


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``python -m srbench.selfcheck.gpu_check``)."""
    parser = argparse.ArgumentParser(
        prog="python -m srbench.selfcheck.gpu_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for gpu_check.json")
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    parser.add_argument("--div2k-images", type=int, default=3, help="DIV2K-sized images (default 3)")
    args = parser.parse_args(argv)
    reason = no_cuda_message()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 2
    import torch

    device = torch.device(args.device)
    console = make_console(stderr=True)
    with console.status("gpu_check: metrics, models, variants …"):
        doc = run_checks(device, args.output, div2k_images=args.div2k_images)
    for key, check in doc["checks"].items():
        mark = "pass" if check.get("passed") else f"FAIL {check.get('error', '')}"
        console.print(f"gpu_check {key}: {mark}")
    console.print(f"gpu_check: {doc['seconds']:.0f} s; figures in {args.output / 'gpu_check.json'}")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
