"""``python -m srbench.selfcheck.bench --output DIR [--quick]``: how fast and how faithful srbench is.

Measures, side by side in one process (the ``nox -s bench`` session), the figures below, each
with its goal, prints them as a table with a pass/short mark and writes them to
``DIR/bench.json`` together with the environment. These are figures, not tests: nothing here
fails the build, and timings depend on the machine (record it; compare like with like).

1. **Harness overhead** (ratio): wall time of the runner's measured per-image loop
   (``phases_s["loop"]``: read from the image cache, host-to-device copy, forward, metrics,
   bookkeeping) over the sum of the timed forwards, per model, on the sample set and on a
   DIV2K-sized set (synthetic 2040x1356 HR images whose LR the hr-only layout generates). The
   figure is the worst of the models. Goal <= 1.15 on the sample set, <= 1.10 at DIV2K size.
   **Fixed cost per model** (seconds): wall time of one isolated measurement
   (:func:`~srbench.runner.isolation.measure_in_worker`: worker start, build, weight load,
   counting, warm-up, memory pass, shape probe, loop, result transfer) minus its loop phase,
   once counted afresh (``--recount``, what a first run pays; goal <= 1.5 s) and once with
   the counts cached (goal <= 0.5 s); the median of 3 runs per model (2 with ``--quick``).
   **Post-processing** (ratio): :func:`~srbench.measure.quality.score_image` on one 2040x1356
   output over the plain definitions (finite check, ``to_uint8``, transposed hash, float64 Y
   by ``rgb_to_y`` with ``psnr``/``ssim`` on it, ``psnr`` on RGB), and whether both agree
   (same fingerprint, figures within 1e-12).
2. **Metrics** (ratio): PSNR + SSIM of one 2040x1356 Y pair (border-cropped float64), srbench
   over scikit-image (``structural_similarity(gaussian_weights=True, sigma=1.5,
   use_sample_covariance=False, data_range=255)`` + ``peak_signal_noise_ratio``). Goal <= 0.5;
   the largest absolute difference of the two results, goal <= 1e-6.
3. **LR generation** (ratio): x4 MATLAB-bicubic ``imresize_uint8`` of a 2040x1356 image over
   scikit-image ``rescale(0.25, anti_aliasing=True)``. Goal <= 1.0.
4. **Timer fidelity** (ratio): srbench's median forward time of ``span`` on a fixed
   1x3x256x256 input (:class:`~srbench.measure.timing.ForwardTimer`) over
   ``torch.utils.benchmark.Timer.blocked_autorange`` median, same process and threads. Goal
   within 5 %. The coefficient of variation of srbench's median over several runs is reported.
5. **SPAN fusion** (ratio): forward time of the training form (branches run) over the fused
   form, and of fusing inside every forward (what the upstream eval path does) over fused.
6. **Counting cost** (seconds): :func:`~srbench.measure.counting.profile_model` per model.
7. **Meter independence** (``meters.timing_ratio``): the median forward time of ``span``
   measured with the memory meter on over the same with it off
   (:func:`~srbench.runner.protocol.measure_model` ``measure_memory``), interleaved
   rounds on the sample set (on/off and off/on alternately; 9 rounds, 3 with ``--quick``), the
   median of the per-round ratios. Goal 0.97-1.03.
8. **ONNX counts** (``onnx.count_equal``): srbench's ONNX graph counter on srbench's export
   of every zoo model against fvcore/NTIRE counters on the network (:func:`onnx_count_figures`).
9. **Precision ladder** (``fp16|int8.<model>.psnr_cost`` dB, ``.speed_ratio`` x) for span and
   rlfn on the DIV2K-sized set, interleaved timing (:func:`int8_figures`); recorded, no goal.

8. **Stability under load** (issue 25). Two busy processes (:mod:`srbench.selfcheck.load`,
   started and stopped here, each ending by itself after at most 20 minutes) load the 2-core
   machine while ``srbench run --models rlfn,span`` runs with default settings, in fresh
   processes, 5 times (2 with ``--quick``); the same runs on the machine without the bench's
   load give the quiet reference (3 runs; 1 with ``--quick``).
   ``stability.rank``: span's median below rlfn's in every loaded run, and the worst
   deviation of a loaded run's median from that model's median over the loaded runs (goal:
   5 of 5 ordered, deviation <= 15 %). ``stability.quiet_vs_loaded``: the worst
   ``|loaded / quiet − 1|`` over the models of the medians over runs (goal <= 25 %);
   ``stability.quiet_vs_loaded.cpu`` the same on ``cpu_time_ms`` (no goal: a figure).
   ``probe.false_flags``: under the same load, 10 measurements (3 with ``--quick``) of the
   plain models span and rlfn and of a per-shape-cache model on sample-mini
   (:func:`~srbench.runner.protocol.measure_model`, default settings): the warm-up-gaming
   notes of the plain models (goal 0) and the flags of the cheat (goal all).

Every time is a median of several runs unless the label says otherwise; ``torch`` threads are
left as configured (``torch.get_num_threads()`` is recorded), except in section 8, which
runs srbench's defaults (``--threads 1``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from srbench.backends.devices import resolve_device
from srbench.backends.onnx_export import INPUT_NAME, ExportMetadata, export_onnx
from srbench.backends.onnxruntime import precision as prec
from srbench.backends.onnxruntime.session import OrtBackend, cached_export, onnx_cache_dir
from srbench.backends.pytorch import to_model_input
from srbench.core.errors import SrbenchError
from srbench.core.extras import EXTRA_PACKAGES, require
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.data.imageio import write_png_atomic
from srbench.data.imresize import imresize_uint8
from srbench.measure.counting import NTIRE_INPUT_SHAPE, counting_input, profile_model
from srbench.measure.metrics import psnr, rgb_to_y, ssim, to_uint8
from srbench.measure.onnx_counting import count_onnx
from srbench.measure.quality import score_image
from srbench.measure.timing import ForwardTimer, coefficient_of_variation
from srbench.models.registry import create_model, get_entry, list_models, register_model, unregister_model
from srbench.models.span import Conv3XC
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.results.environment import collect_environment
from srbench.results.schema import ModelResult, atomic_write_text, json_safe, load_results
from srbench.runner.building import build_model
from srbench.runner.forkserver import prestart
from srbench.runner.isolation import measure_in_worker
from srbench.runner.protocol import measure_model
from srbench.selfcheck.load import busy_processes

SCHEMA = "srbench-bench/1"
#: DIV2K validation HR size (0801.png and most others): width x height.
DIV2K_SIZE = (2040, 1356)
OVERHEAD_MODELS = ("rlfn", "span", "span_ca")
FIXED_COST_MODELS = ("rlfn", "span")
#: Counting-cost models; the attention ones only when registered.
COUNTING_MODELS = ("rlfn", "span", "span_ca", "fdat_tiny", "grla")

GOAL_OVERHEAD = 1.15
GOAL_OVERHEAD_DIV2K = 1.10
GOAL_FIXED_S = 1.5
GOAL_FIXED_CACHED_S = 0.5
GOAL_METRICS_RATIO = 0.5
GOAL_METRICS_DIFF = 1e-6
GOAL_RESIZE_RATIO = 1.0
GOAL_TIMER_REL = 0.05
GOAL_SWEEP_RATIO = 1.2

#: The simulated organiser sweep: 20 cheap registered entries (tests/srbench_sweep_models.py) x 5 runs.
SWEEP_ENTRIES, SWEEP_RUNS = 20, 5


@dataclass
class Figure:
    """One measured figure.

    ``value`` is in ``unit`` (``"x"`` for ratios, ``"s"``, ``"ms"``, ``""`` for plain numbers);
    ``goal`` is a readable bound (``"<= 1.15"``) and ``passed`` whether ``value`` meets it
    (None when the figure has no goal). ``details`` holds the raw measurements behind it.
    """

    key: str
    label: str
    value: float | None
    unit: str
    goal: str | None = None
    passed: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _at_most(key: str, label: str, value: float, unit: str, limit: float, **details: Any) -> Figure:
    return Figure(
        key, label, value, unit, f"<= {limit:g}{unit if unit != 'x' else ''}", value <= limit, details
    )


def _info(key: str, label: str, value: float | None, unit: str, **details: Any) -> Figure:
    return Figure(key, label, value, unit, None, None, details)


def _median_time(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn()`` over ``runs`` calls, in seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --------------------------------------------------------------------------- data


def synthetic_hr(seed: int, size: tuple[int, int] = DIV2K_SIZE) -> np.ndarray:
    """A deterministic uint8 HxWx3 photo-like image: a smooth random field plus fine grain.

    ``size`` is (width, height). Smooth regions and edges keep the SR networks and the
    metrics on realistic paths; the content does not otherwise matter for timing.
    """
    width, height = size
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 24 + 2, width // 24 + 2, generator=gen) * 255.0
    field_ = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    grain = torch.randn(1, 3, height, width, generator=gen) * 6.0
    img = (field_ + grain).clamp_(0, 255).round_().to(torch.uint8)
    return img[0].permute(1, 2, 0).contiguous().numpy()


def write_div2k_like(folder: Path, count: int) -> Path:
    """``count`` synthetic DIV2K-sized HR PNGs in ``folder/HR`` (an hr-only layout)."""
    hr_dir = folder / "HR"
    for i in range(count):
        write_png_atomic(hr_dir / f"{801 + i:04d}.png", synthetic_hr(seed=801 + i))
    return hr_dir


# --------------------------------------------------------------------------- 1. overhead


def _run_config(device: str, models: tuple[str, ...], *, isolate: bool) -> RunConfig:
    return RunConfig(models=list(models), device=device, isolate=isolate)


def _forward_s(result: ModelResult) -> float:
    return sum(i.runtime_ms or 0.0 for i in result.images) / 1e3


def overhead_figure(
    key: str, label: str, images: ImageCache, device: str, goal: float = GOAL_OVERHEAD
) -> Figure:
    """Worst per-model ratio of loop wall time to summed forward time on ``images``."""
    config = _run_config(device, OVERHEAD_MODELS, isolate=False)
    per_model: dict[str, dict[str, Any]] = {}
    for name in OVERHEAD_MODELS:
        result = measure_model(ModelSpec(name, name), images, config)
        if result.status == "error":
            raise RuntimeError(f"bench: {name} failed: {result.reason}")
        loop, fwd = result.phases_s["loop"], _forward_s(result)
        per_model[name] = {
            "loop_s": loop,
            "forwards_s": fwd,
            "ratio": loop / fwd,
            "metrics_in_loop": result.status == "ok",
            "images": len(result.images),
        }
    worst = max(per_model, key=lambda n: per_model[n]["ratio"])
    return _at_most(
        key,
        f"{label} (worst: {worst})",
        per_model[worst]["ratio"],
        "x",
        goal,
        models=per_model,
    )


def fixed_cost_figures(images: ImageCache, device: str, repeats: int = 3) -> list[Figure]:
    """Worst per-model isolated wall time minus the loop phase, in seconds, counted afresh
    (``fixed_cost``: a first run, ``--recount``) and with the counts cached (``fixed_cost.cached``).

    Each model is measured ``repeats`` times per mode; its figure is the median run's (all the
    runs' fixed costs are in the details), so that one run slowed by another process on a
    shared machine does not stand for the harness."""
    import dataclasses

    config = _run_config(device, FIXED_COST_MODELS, isolate=True)
    # `srbench run` starts the worker server while it decodes the data (forkserver.prestart);
    # its one-off start is reported apart, not charged to the first model.
    t0 = time.perf_counter()
    server = prestart()
    if server is not None:
        server.join()
    server_s = time.perf_counter() - t0
    figures = []
    for key, label, recount, goal in (
        ("fixed_cost", "counted afresh (a first run)", True, GOAL_FIXED_S),
        ("fixed_cost.cached", "counts cached", False, GOAL_FIXED_CACHED_S),
    ):
        per_model: dict[str, dict[str, Any]] = {}
        run_config = dataclasses.replace(config, recount=recount)
        for name in FIXED_COST_MODELS:
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                # skip_main: a worker of `python -m srbench.selfcheck.bench` would otherwise re-import
                # this module as its __mp_main__ (≈36 ms measured), which `srbench run`'s
                # workers do not pay (they re-run only the console script's two imports).
                result = measure_in_worker(ModelSpec(name, name), images, run_config, skip_main=True)
                wall = time.perf_counter() - t0
                if result.status == "error":
                    raise RuntimeError(f"bench: {name} failed in its worker: {result.reason}")
                phases = dict(result.phases_s)
                runs.append(
                    {
                        "wall_s": wall,
                        "fixed_s": wall - phases["loop"],
                        "phases_s": phases,
                        # Worker start, imports not preloaded, result transfer: what the phases do not cover.
                        "outside_phases_s": wall - sum(phases.values()),
                    }
                )
            runs.sort(key=lambda r: r["fixed_s"])
            per_model[name] = {**runs[len(runs) // 2], "fixed_s_runs": [r["fixed_s"] for r in runs]}
        worst = max(per_model, key=lambda n: per_model[n]["fixed_s"])
        figures.append(
            _at_most(
                key,
                f"Fixed cost per model, isolated worker, {label}, median of {repeats} (worst: {worst}; "
                f"forkserver start {server_s:.1f} s once per run, overlapped with decoding)",
                per_model[worst]["fixed_s"],
                "s",
                goal,
                models=per_model,
                forkserver_start_s=server_s,
            )
        )
    return figures


def postproc_figure(runs: int) -> Figure:
    """Per-image post-processing of one 2040x1356 output: score_image / the plain definitions.

    The plain steps: finite check, ``to_uint8``, SHA-256 of a transposed copy, float64 Y
    (``rgb_to_y``) and ``psnr``/``ssim`` on it, ``psnr`` on RGB. ``agree`` says whether both
    give the same fingerprint and the same three figures to 1e-12 (PSNR in dB).
    """
    import hashlib

    hr = synthetic_hr(seed=1)
    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(1, 3, hr.shape[0], hr.shape[1], generator=gen) * 0.02
    out = (torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255.0 + noise).contiguous()
    hr_chw = torch.from_numpy(hr).permute(2, 0, 1)

    def plain() -> tuple:
        if not torch.isfinite(out).all():
            raise RuntimeError("not finite")
        sr_u8 = to_uint8(out[0].float())
        sha = hashlib.sha256(sr_u8.permute(1, 2, 0).contiguous().numpy().tobytes()).hexdigest()
        y_sr, y_hr = rgb_to_y(sr_u8), rgb_to_y(hr_chw)
        return (
            sha,
            psnr(y_sr, y_hr, crop_border=4),
            ssim(y_sr, y_hr, crop_border=4),
            psnr(sr_u8, hr_chw, crop_border=4),
        )

    def lean() -> tuple:
        s = score_image(out, hr, crop_border=4)
        return s.sr_sha256, s.psnr_y, s.ssim_y, s.psnr_rgb

    a, b = plain(), lean()  # also warms both up
    diff = max(abs(x - y) for x, y in zip(a[1:], b[1:]))
    agree = a[0] == b[0] and diff <= 1e-12
    t_plain, t_lean = _median_time(plain, runs), _median_time(lean, runs)
    return _info(
        "postproc.time_ratio",
        f"Per-image post-processing ({DIV2K_SIZE[0]}x{DIV2K_SIZE[1]}), score_image / plain definitions "
        f"({t_lean * 1e3:.0f} vs {t_plain * 1e3:.0f} ms; agree to 1e-12: {agree})",
        t_lean / t_plain,
        "x",
        score_image_ms=t_lean * 1e3,
        plain_ms=t_plain * 1e3,
        max_abs_diff=diff,
        agree=agree,
        runs=runs,
    )


# --------------------------------------------------------------------------- 2-3. metrics, resize


def metrics_figures(runs: int) -> list[Figure]:
    """srbench PSNR+SSIM vs scikit-image on one DIV2K-sized Y pair (border 4 cropped)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    hr = torch.from_numpy(synthetic_hr(seed=1)).permute(2, 0, 1)
    gen = torch.Generator().manual_seed(2)
    noisy = (hr.double() + torch.randn(hr.shape, generator=gen, dtype=torch.float64) * 5.0).clamp(0, 255)
    sr = noisy.round().to(torch.uint8)
    border = 4
    y_sr = rgb_to_y(sr)[border:-border, border:-border].contiguous()
    y_hr = rgb_to_y(hr)[border:-border, border:-border].contiguous()
    y_sr_np, y_hr_np = y_sr.numpy(), y_hr.numpy()

    def ours() -> tuple[float, float]:
        return psnr(y_sr, y_hr, crop_border=0), ssim(y_sr, y_hr, crop_border=0)

    def theirs() -> tuple[float, float]:
        p = peak_signal_noise_ratio(y_hr_np, y_sr_np, data_range=255)
        s = structural_similarity(
            y_hr_np,
            y_sr_np,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        return float(p), float(s)

    (p_ours, s_ours), (p_ref, s_ref) = ours(), theirs()  # also warms both up
    t_ours, t_ref = _median_time(ours, runs), _median_time(theirs, runs)
    diff = max(abs(p_ours - p_ref), abs(s_ours - s_ref))
    shape = f"{y_sr.shape[1]}x{y_sr.shape[0]}"
    return [
        _at_most(
            "metrics.time_ratio",
            f"PSNR-Y + SSIM-Y time, srbench / scikit-image ({shape} float64 Y)",
            t_ours / t_ref,
            "x",
            GOAL_METRICS_RATIO,
            srbench_s=t_ours,
            skimage_s=t_ref,
            runs=runs,
        ),
        _at_most(
            "metrics.max_abs_diff",
            "PSNR-Y / SSIM-Y max |srbench - scikit-image|",
            diff,
            "",
            GOAL_METRICS_DIFF,
            psnr_srbench=p_ours,
            psnr_skimage=p_ref,
            ssim_srbench=s_ours,
            ssim_skimage=s_ref,
        ),
    ]


def resize_figure(runs: int) -> Figure:
    """x4 MATLAB-bicubic downscale of a DIV2K-sized image vs scikit-image ``rescale``."""
    from skimage.transform import rescale

    hr = synthetic_hr(seed=3)
    imresize_uint8(hr, 0.25)  # warm the tap cache, as a dataset of equal sizes would
    t_ours = _median_time(lambda: imresize_uint8(hr, 0.25), runs)
    t_ref = _median_time(lambda: rescale(hr, 0.25, anti_aliasing=True, channel_axis=-1), runs)
    return _at_most(
        "resize.time_ratio",
        "x4 bicubic LR generation time, srbench imresize / scikit-image rescale "
        f"({DIV2K_SIZE[0]}x{DIV2K_SIZE[1]})",
        t_ours / t_ref,
        "x",
        GOAL_RESIZE_RATIO,
        srbench_s=t_ours,
        skimage_s=t_ref,
        runs=runs,
    )


# --------------------------------------------------------------------------- 4-5. timing


def _forward_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def fn() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return fn


def timer_figures(device: torch.device, *, forwards: int, rounds: int, min_run_time: float) -> list[Figure]:
    """srbench ForwardTimer median vs torch.utils.benchmark on span at 1x3x256x256.

    The two alternate in ``rounds`` rounds (srbench: median of ``forwards`` forwards; torch:
    ``blocked_autorange(min_run_time)``) so that a slow drift of the machine affects both
    alike; each side's figure is the median of its round medians.
    """
    from torch.utils.benchmark import Timer

    model = create_model("span").to(device)
    x = counting_input(NTIRE_INPUT_SHAPE, device=device)
    fn = _forward_fn(model, x)
    timer = ForwardTimer(device)
    for _ in range(3):
        timer.time(fn)
    # torch's Timer defaults to one thread; give it the threads srbench runs with.
    reference = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    ours_ms: list[float] = []
    ref_ms: list[float] = []
    for _ in range(rounds):
        ours_ms.append(timer.time_repeated(fn, forwards)[1])
        ref_ms.append(reference.blocked_autorange(min_run_time=min_run_time).median * 1e3)
    ours, ref = statistics.median(ours_ms), statistics.median(ref_ms)
    rel = ours / ref - 1.0
    return [
        Figure(
            "timer.relative_difference",
            "span forward median (1x3x256x256), srbench ForwardTimer / torch.utils.benchmark - 1",
            rel,
            "",
            f"within ±{GOAL_TIMER_REL:g}",
            abs(rel) <= GOAL_TIMER_REL,
            {
                "srbench_ms": ours,
                "torch_benchmark_ms": ref,
                "srbench_rounds_ms": ours_ms,
                "torch_rounds_ms": ref_ms,
            },
        ),
        _info(
            "timer.cv",
            f"span median run-to-run coefficient of variation ({rounds} runs of {forwards} forwards)",
            coefficient_of_variation(ours_ms),
            "",
            run_medians_ms=ours_ms,
        ),
    ]


def fusion_figures(device: torch.device, forwards: int) -> list[Figure]:
    """SPAN forward time, training form and fuse-every-forward, over the fused form."""

    fused = create_model("span").to(device)
    branches = create_model("span", deploy=False).to(device).train()  # train(): branches run
    refuse = create_model("span", deploy=False).to(device).eval()
    convs = [m for m in refuse.modules() if isinstance(m, Conv3XC)]

    def fuse_then_forward(x: torch.Tensor) -> torch.Tensor:
        for m in convs:
            m.fuse()
        return refuse(x)

    x = counting_input(NTIRE_INPUT_SHAPE, device=device)
    timer = ForwardTimer(device)
    ms: dict[str, float] = {}
    with torch.inference_mode():
        for name, fn in (("fused", fused), ("branches", branches), ("fuse_every_forward", fuse_then_forward)):
            timer.time(lambda fn=fn: fn(x))
            ms[name] = timer.time_repeated(lambda fn=fn: fn(x), forwards)[1]
    return [
        _info(
            "fusion.branches_over_fused",
            "SPAN training form (branches) / fused forward time",
            ms["branches"] / ms["fused"],
            "x",
            **ms,
        ),
        _info(
            "fusion.refuse_over_fused",
            "SPAN fusing inside every forward (upstream eval) / fused forward time",
            ms["fuse_every_forward"] / ms["fused"],
            "x",
            **ms,
        ),
    ]


#: Models whose ONNX Runtime / PyTorch CPU latency ratio is a figure.
ORT_MODELS = ("span", "rlfn")


def ort_figures(*, forwards: int, rounds: int) -> list[Figure]:
    """ONNX Runtime (CPU provider) / PyTorch CPU forward median at 1x3x256x256, per model.

    Both run the same fp32 network (random init: latency does not depend on the weights)
    with the same threads, timed by :class:`ForwardTimer` exactly as ``srbench run`` times
    them (ORT: one ``session.run``, see :mod:`srbench.backends.onnxruntime.session`). They alternate in
    ``rounds`` rounds of ``forwards`` forwards; each side's figure is the median of its round
    medians. Also records max |ORT - PyTorch| on that input (model output units).
    """
    try:
        for module in EXTRA_PACKAGES:
            require(module, purpose="the ORT bench figure")
    except SrbenchError as exc:
        return [
            _info(f"ort.{m}.ratio", f"{m} ORT/torch CPU latency (skipped: {exc})", None, "x")
            for m in ORT_MODELS
        ]
    cpu = torch.device("cpu")
    figures = []
    for name in ORT_MODELS:
        entry = get_entry(name)
        torch.manual_seed(0)
        model = create_model(name).eval()
        meta = ExportMetadata(name, name, 4, entry.input_range, "")
        export = cached_export(model, meta)
        session = OrtBackend(export.path, provider="cpu", scale=4)
        x = counting_input(NTIRE_INPUT_SHAPE, input_range=entry.input_range, device=cpu)
        timer = ForwardTimer(cpu)
        torch_fn = _forward_fn(model, x)

        def ort_fn(session: OrtBackend = session, x: torch.Tensor = x) -> torch.Tensor:
            return session(x)

        for _ in range(3):
            timer.time(torch_fn)
            timer.time(ort_fn)
        torch_ms: list[float] = []
        ort_ms: list[float] = []
        for _ in range(rounds):
            torch_ms.append(timer.time_repeated(torch_fn, forwards)[1])
            ort_ms.append(timer.time_repeated(ort_fn, forwards)[1])
        t, o = statistics.median(torch_ms), statistics.median(ort_ms)
        diff = float((ort_fn() - torch_fn()).abs().max())
        figures.append(
            _info(
                f"ort.{name}.ratio",
                f"{name} 1x3x256x256 CPU: ONNX Runtime / PyTorch forward median ({session.threads} threads)",
                o / t,
                "x",
                torch_ms=t,
                ort_ms=o,
                torch_rounds_ms=torch_ms,
                ort_rounds_ms=ort_ms,
                max_abs_diff=diff,
                onnx_cached=export.cached,
            )
        )
    return figures


# --------------------------------------------------------------------------- ONNX files, int8

#: Zoo models whose fvcore count takes minutes on a 2-core CPU: full runs only.
SLOW_COUNT_MODELS = ("fdat_large", "fdat_medium", "fdat_xl", "fdat_light", "fdat_tiny", "grla")
#: The models of the int8 figures (DIV2K-sized images, official weights).
INT8_MODELS = ("span", "rlfn")


def onnx_count_figures(models: list[str]) -> list[Figure]:
    """``onnx.count_equal``: srbench's ONNX graph counter on srbench's own export of each zoo
    model (official weights when on disk, else random init) against fvcore and the NTIRE
    activation/conv counters on the PyTorch module the exporter traced (``export_module()``
    when the model has one, e.g. bicubic's polyphase form), at 1x3x256x256. The value is the share of
    exported models whose params, FLOPs, activations and convs all equal; every model is listed
    in the details (equal, both counts, or why it could not be exported)."""
    try:
        import onnx

    except ImportError as exc:
        return [_info("onnx.count_equal", f"ONNX counts = fvcore counts (skipped: {exc})", None, "")]
    per_model: dict[str, Any] = {}
    for name in models:
        # Official weights when on disk (counts do not depend on them, but exporters merge
        # bitwise-identical untrained tensors: see docs/deployment.md), else random init.
        torch.manual_seed(0)
        entry, loaded = build_model(ModelSpec(name, name), scale=4, offline=True)
        model = loaded.model
        try:
            data = export_onnx(model, ExportMetadata(name, name, 4, entry.input_range, ""), advice="bench")
        except SrbenchError as exc:
            per_model[name] = {"exported": False, "reason": str(exc)}
            continue
        # The file holds the module the exporter traced: export_module() when a model has one.
        export_fn = getattr(model, "export_module", None)
        traced = export_fn().eval() if callable(export_fn) else model
        c = profile_model(traced, input_range=entry.input_range, thop=False, dispatch=False)
        o = count_onnx(onnx.load_from_string(data))
        theirs = [c.params, c.flops, c.activations, c.convs]
        ours = [o.params, o.flops, o.activations, o.convs]
        per_model[name] = {"exported": True, "equal": theirs == ours, "fvcore": theirs, "onnx": ours}
    exported = [m for m, d in per_model.items() if d["exported"]]
    equal = [m for m in exported if per_model[m]["equal"]]
    value = len(equal) / len(exported) if exported else None
    not_equal = sorted(set(exported) - set(equal))
    label = (
        f"ONNX counts = fvcore counts (params, FLOPs, activations, convs), {len(equal)} of "
        f"{len(exported)} exported zoo models" + (f"; differ: {', '.join(not_equal)}" if not_equal else "")
    )
    return [
        Figure(
            "onnx.count_equal",
            label,
            value,
            "",
            "= 1 (all)",
            value == 1.0 if value is not None else None,
            {"models": per_model},
        )
    ]


def int8_figures(images: ImageCache, *, rounds: int, timed_images: int = 2) -> list[Figure]:
    """``int8.<model>.psnr_cost``/``speed_ratio`` (and the same for ``fp16``) on ``images``
    (DIV2K-sized): the precision ladder of :data:`INT8_MODELS` on ONNX Runtime's CPU provider.

    The fp32 export of each model (official weights) and its fp16 and int8 variants
    (:mod:`srbench.backends.onnxruntime.precision`; int8 on the default calibration set, checked
    not to overlap ``images``) run with the same threads. ``psnr_cost``: mean over all images of
    PSNR-Y(variant) − PSNR-Y(fp32) (dB, :func:`~srbench.measure.quality.score_image`, border 4).
    ``speed_ratio``: fp32 time / variant time (> 1: the variant is faster), the median of
    per-round ratios over ``rounds`` interleaved rounds (the order of the three rotates each
    round) of one timed forward each on the first ``timed_images`` images. Recorded, no goal.
    """
    variants = ("fp16", "int8")
    skip = None
    try:
        import onnxruntime  # noqa: F401  (the onnx extra)
    except ImportError as exc:
        skip = f"skipped: {exc}"
    if skip is None and not os.environ.get("SRBENCH_WEIGHTS_DIR"):
        skip = "skipped: SRBENCH_WEIGHTS_DIR is not set (a PSNR cost needs trained weights)"
    if skip is not None:
        return [
            _info(f"{v}.{m}.{k}", f"{m} {v} {k} ({skip})", None, "")
            for v in variants
            for m in INT8_MODELS
            for k in ("psnr_cost", "speed_ratio")
        ]

    cpu = torch.device("cpu")
    calibration = prec.check_calibration(None, 4, images)
    figures = []
    for name in INT8_MODELS:
        entry, loaded = build_model(ModelSpec(name, name), scale=4, offline=True)
        sha = loaded.weights.sha256 if loaded.weights else ""
        export = cached_export(loaded.model, ExportMetadata(name, name, 4, entry.input_range, sha))
        files, records = {"fp32": export.path}, {}
        for v in variants:
            files[v], _sha, _cached, records[v] = prec.make_variant(
                export.path,
                export.sha256,
                v,
                cache_dir=onnx_cache_dir(),
                input_name=INPUT_NAME,
                input_range=entry.input_range,
                calibration=calibration,
            )
        sessions = {p: OrtBackend(f, provider="cpu", scale=4) for p, f in files.items()}
        psnr_y: dict[str, list[float]] = {p: [] for p in sessions}
        ssim_y: dict[str, list[float]] = {p: [] for p in sessions}
        inputs = []
        for _name, lr, hr in images:
            x = to_model_input(lr, entry.input_range, cpu, torch.float32)
            if len(inputs) < timed_images:
                inputs.append(x)
            for p, session in sessions.items():
                with torch.inference_mode():
                    out = session(x) / entry.input_range
                score = score_image(out, hr, crop_border=4)
                psnr_y[p].append(score.psnr_y)
                ssim_y[p].append(score.ssim_y)
        timer = ForwardTimer(cpu)
        names = list(sessions)
        times: dict[str, list[float]] = {p: [] for p in names}
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            ms = dict.fromkeys(order, 0.0)
            for x in inputs:
                for p in order:
                    ms[p] += timer.time(lambda s=sessions[p], x=x: s(x))[1]
            for p in order:
                times[p].append(ms[p])
        for v in variants:
            ratios = [f / t for f, t in zip(times["fp32"], times[v])]
            common = {"model": name, "images": len(psnr_y["fp32"]), "method": records[v].method}
            if v == "int8":
                common["calibration"] = calibration.describe()
            figures.append(
                _info(
                    f"{v}.{name}.psnr_cost",
                    f"{name} {v} − fp32 PSNR-Y on {len(psnr_y['fp32'])} DIV2K-sized images (dB)",
                    statistics.fmean(psnr_y[v]) - statistics.fmean(psnr_y["fp32"]),
                    "dB",
                    ssim_y_cost=statistics.fmean(ssim_y[v]) - statistics.fmean(ssim_y["fp32"]),
                    psnr_y_fp32=statistics.fmean(psnr_y["fp32"]),
                    psnr_y_variant=statistics.fmean(psnr_y[v]),
                    size_ratio=records[v].size_bytes / records[v].base_size_bytes,
                    **common,
                )
            )
            figures.append(
                _info(
                    f"{v}.{name}.speed_ratio",
                    f"{name} fp32 / {v} time, CPU provider ({sessions['fp32'].threads} threads), "
                    f"{rounds} interleaved rounds on {len(inputs)} images",
                    statistics.median(ratios),
                    "x",
                    round_ratios=ratios,
                    fp32_round_ms=times["fp32"],
                    variant_round_ms=times[v],
                    **common,
                )
            )
    return figures


GOAL_METER_RATIO = (0.97, 1.03)


def meters_figure(images: ImageCache, device: str, rounds: int) -> Figure:
    """``meters.timing_ratio``: median forward time with the memory meter on / off (span)."""
    config = _run_config(device, ("span",), isolate=False)
    ratios, on_ms, off_ms = [], [], []
    for i in range(rounds):
        medians = {}
        # ABBA order: whatever the first measurement of a round gains or loses (a cooler
        # cache, a neighbour's burst) falls on each side equally often.
        for memory in (True, False) if i % 2 == 0 else (False, True):
            result = measure_model(ModelSpec("span", "span"), images, config, measure_memory=memory)
            if result.runtime_ms is None:
                raise RuntimeError(f"bench: span failed: {result.reason}")
            medians[memory] = result.runtime_ms.median
        on_ms.append(medians[True])
        off_ms.append(medians[False])
        ratios.append(medians[True] / medians[False])
    value = statistics.median(ratios)
    lo, hi = GOAL_METER_RATIO
    return Figure(
        "meters.timing_ratio",
        f"Meter independence: span median forward, memory meter on / off ({rounds} rounds)",
        value,
        "x",
        f"{lo:g}-{hi:g}",
        lo <= value <= hi,
        {"ratios": ratios, "on_ms": on_ms, "off_ms": off_ms},
    )


STABILITY_MODELS = ("rlfn", "span")
GOAL_STABILITY_DEVIATION = 0.15
GOAL_QUIET_VS_LOADED = 0.25
#: Each busy process ends by itself after this many seconds, whatever happens to the bench.
LOAD_SECONDS = 1200.0


def _cli_run(out: Path, models: tuple[str, ...]) -> dict[str, float]:
    """``srbench run --models ...`` with default settings in a fresh process; each model's
    median (ms), and under ``"cpu:NAME"`` its ``cpu_time_ms`` when recorded."""

    cmd = [sys.executable, "-m", "srbench", "run", "--models", ",".join(models), "--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"bench: {' '.join(cmd)} failed: {proc.stderr[-500:]}")
    run = load_results(out)
    medians = {m.name: m.runtime_ms.median for m in run.models if m.runtime_ms is not None}
    if set(medians) != set(models):
        raise RuntimeError(f"bench: {' '.join(cmd)} measured only {sorted(medians)}")
    cpu = {f"cpu:{m.name}": m.cpu_time_ms for m in run.models if m.cpu_time_ms is not None}
    return {**medians, **cpu}


def stability_figures(root: Path, *, loaded_runs: int, quiet_runs: int) -> list[Figure]:
    """``stability.rank`` and ``stability.quiet_vs_loaded`` (module docstring, section 8)."""
    quiet = [_cli_run(root / f"quiet-{k}", STABILITY_MODELS) for k in range(quiet_runs)]
    with busy_processes(2, seconds=LOAD_SECONDS):
        loaded = [_cli_run(root / f"loaded-{k}", STABILITY_MODELS) for k in range(loaded_runs)]
    ordered = sum(run["span"] < run["rlfn"] for run in loaded)
    centre = {m: statistics.median(run[m] for run in loaded) for m in STABILITY_MODELS}
    deviation = max(abs(run[m] / centre[m] - 1) for run in loaded for m in STABILITY_MODELS)
    quiet_centre = {m: statistics.median(run[m] for run in quiet) for m in STABILITY_MODELS}
    shift = {m: centre[m] / quiet_centre[m] - 1 for m in STABILITY_MODELS}
    worst_shift = max(abs(v) for v in shift.values())
    # The same comparison on CPU time per thread (cpu_time_ms), which a preemption does not add to.
    cpu_keys = [f"cpu:{m}" for m in STABILITY_MODELS if all(f"cpu:{m}" in r for r in [*loaded, *quiet])]
    cpu_shift = {}
    for k in cpu_keys:
        cpu_shift[k] = statistics.median(r[k] for r in loaded) / statistics.median(r[k] for r in quiet) - 1
    details = {
        "loaded_ms": loaded,
        "quiet_ms": quiet,
        "loaded_median_ms": centre,
        "quiet_median_ms": quiet_centre,
    }
    return [
        Figure(
            "stability.rank",
            f"Under load: span below rlfn in {ordered} of {loaded_runs} runs; worst deviation of a "
            "run's median from the models' median over runs",
            deviation,
            "x",
            f"{loaded_runs} of {loaded_runs} ordered, <= {GOAL_STABILITY_DEVIATION:g}",
            ordered == loaded_runs and deviation <= GOAL_STABILITY_DEVIATION,
            {**details, "ordered": ordered},
        ),
        _at_most(
            "stability.quiet_vs_loaded",
            "Median over runs, |loaded / quiet - 1|, worst model",
            worst_shift,
            "x",
            GOAL_QUIET_VS_LOADED,
            shift=shift,
            **details,
        ),
        _info(
            "stability.quiet_vs_loaded.cpu",
            "Same on cpu_time_ms (CPU time per thread), |loaded / quiet - 1|, worst model",
            max((abs(v) for v in cpu_shift.values()), default=None),
            "x",
            shift=cpu_shift,
        ),
    ]


def probe_figure(images: ImageCache, runs: int) -> Figure:
    """``probe.false_flags``: warm-up-gaming notes of plain models under load (module docstring, 8)."""

    register_model(
        "bench_shapecache",
        scales=(4,),
        input_range=1.0,
        description="bench-only: heavy work on the first forward of each shape",
        has_trained_weights=False,
        tags=("test-only",),
    )(lambda scale=4: _ShapeCache(scale))
    false_flags, cheat_flags = 0, 0
    try:
        with busy_processes(2, seconds=LOAD_SECONDS):
            for _ in range(runs):
                for name in STABILITY_MODELS:
                    result = measure_model(ModelSpec(name, name), images, RunConfig(isolate=False))
                    false_flags += any("warm-up gaming" in n for n in result.notes)
                result = measure_model(
                    ModelSpec("bench_shapecache", "bench_shapecache"), images, RunConfig(isolate=False)
                )
                cheat_flags += bool(result.shape_probe and result.shape_probe.get("flagged"))
    finally:
        unregister_model("bench_shapecache")
    plain = runs * len(STABILITY_MODELS)
    return Figure(
        "probe.false_flags",
        f"Shape probe under load: warm-up-gaming notes on {plain} plain measurements "
        f"(cheat flagged {cheat_flags} of {runs})",
        float(false_flags),
        "",
        f"0, cheat {runs} of {runs}",
        false_flags == 0 and cheat_flags == runs,
        {"plain_measurements": plain, "cheat_flagged": cheat_flags, "cheat_runs": runs},
    )


class _ShapeCache(torch.nn.Module):
    """Nearest x``scale`` that does ~1 GFLOP the first time it sees an input shape and nothing
    later: the per-shape warm-up the shape probe must flag."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.gain = torch.nn.Parameter(torch.ones(1))
        self.seen: set[tuple[int, ...]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) not in self.seen:
            self.seen.add(tuple(x.shape))
            a = torch.full((256, 256), 1e-3)
            for _ in range(30):
                a = (a @ a).clamp_(max=1e-3)
        return F.interpolate(x, scale_factor=self.scale, mode="nearest") * self.gain


def cli_start_figure(runs: int) -> Figure:
    """Wall time of ``python -m srbench --help`` in a fresh interpreter (median of ``runs``).

    The dispatcher imports no command module for ``--help``, so neither torch nor matplotlib
    loads; the figure includes the interpreter's own start.
    """
    cmd = [sys.executable, "-m", "srbench", "--help"]
    seconds = _median_time(lambda: subprocess.run(cmd, capture_output=True, check=True), runs)
    return _at_most("cli.help", "`srbench --help` wall time, fresh interpreter", seconds, " s", 1.0)


def counting_figures(models: tuple[str, ...] = COUNTING_MODELS) -> list[Figure]:
    """Seconds :func:`profile_model` takes per model (CPU, 1x3x256x256); unregistered skipped."""
    registered = set(list_models())
    figures = []
    for name in models:
        if name not in registered:
            continue
        c = profile_model(create_model(name), NTIRE_INPUT_SHAPE, input_range=get_entry(name).input_range)
        figures.append(
            _info(
                f"counting.{name}",
                f"Counting cost, {name} (params, fvcore FLOPs, activations, dispatch count)",
                c.seconds,
                "s",
                flops=c.flops,
                params=c.params,
            )
        )
    return figures


# --------------------------------------------------------------------------- report


def sweep_figures(*, entries: int = SWEEP_ENTRIES, runs: int = SWEEP_RUNS) -> list[Figure]:
    """Sweep wall time on a fresh local Ray instance / the same cells by ``srbench run``, one after another.

    The cells: ``entries`` simulated team entries (``test_entryNN`` from
    ``tests/srbench_sweep_models.py``, registered through ``SRBENCH_PLUGINS``) x ``runs`` runs
    on ``sample-mini``, CPU, complexity at 1x3x64x64. Sequential: ``runs`` ``srbench run``
    commands, each measuring every entry. Sweep: one ``srbench sweep --engine ray`` command
    (Ray start and shutdown included). Both are timed as whole commands, wall clock.
    ``per_cell_overhead_ms`` = (sweep − sequential) / cells.
    """
    import importlib.util

    key, label = "sweep.ray_ratio", f"Sweep on Ray / sequential srbench run ({entries} entries x {runs} runs)"
    plugin_dir = Path(__file__).resolve().parent.parent / "tests"
    if not (plugin_dir / "srbench_sweep_models.py").is_file():
        return [
            _info(key, label, None, "x", skipped="tests/srbench_sweep_models.py not found (not a checkout)")
        ]
    if importlib.util.find_spec("ray") is None:
        return [_info(key, label, None, "x", skipped="Ray not installed: pip install 'srbench[ray]'")]
    models = ",".join(f"test_entry{i:02d}" for i in range(1, entries + 1))
    env = dict(os.environ)
    env["SRBENCH_PLUGINS"] = "srbench_sweep_models"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))
    common = ["--models", models, "--data", "sample-mini", "--device", "cpu", "--profile-input", "1x3x64x64"]

    def srbench(*args: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "srbench", *args], env=env, check=True, capture_output=True)
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="srbench-sweep-bench-") as tmp:
        sequential = sum(srbench("run", *common, "--output", f"{tmp}/run{r}") for r in range(runs))
        sweep = srbench("sweep", *common, "--runs", str(runs), "--engine", "ray", "--output", f"{tmp}/sweep")
        doc = json.loads(Path(tmp, "sweep", "results.json").read_text())
    cells = entries * runs
    return [
        _at_most(
            key,
            label,
            sweep / sequential,
            "x",
            GOAL_SWEEP_RATIO,
            sweep_s=sweep,
            sequential_s=sequential,
            cells=cells,
            sweep_cells_s=doc["environment"]["sweep"].get("wall_s"),
            per_cell_overhead_ms=1e3 * (sweep - sequential) / cells,
            sweep_per_cell_ms=1e3 * sweep / cells,
        )
    ]


def _fmt(f: Figure) -> str:
    if f.value is None or (isinstance(f.value, float) and math.isnan(f.value)):
        return "—"
    v = f.value
    if f.unit == "x":
        return f"{v:.3f}x"
    if f.unit == "s":
        return f"{v:.2f} s"
    if abs(v) < 1e-3 and v != 0:
        return f"{v:.1e}"
    return f"{v:+.4f}" if f.key.startswith("timer.relative") else f"{v:.4f}"


def figures_table(figures: list[Figure], title: str) -> Table:
    """The figures as a rich table: label, value, goal and a pass/short mark."""
    table = Table(title=title)
    for col, justify in (("Figure", "left"), ("Value", "right"), ("Goal", "right"), ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for f in figures:
        mark = "" if f.passed is None else ("[green]pass" if f.passed else "[red]short")
        table.add_row(f.label, _fmt(f), f.goal or "—", mark)
    return table


def run_bench(
    out_dir: Path,
    *,
    quick: bool = False,
    device: str = "auto",
    div2k_images: int | None = None,
    only: str | None = None,
) -> dict[str, Any]:
    """Measure every figure (with ``only``: the sections whose name contains it), print the
    table and write ``out_dir/bench.json``; returns its dict."""
    console = Console(stderr=True)
    dev = resolve_device(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_div2k = div2k_images or (2 if quick else 10)
    runs = 2 if quick else 3
    started = time.perf_counter()
    load_before = os.getloadavg()
    sections: dict[str, float] = {}
    figures: list[Figure] = []

    def section(name: str, make: Callable[[], list[Figure]]) -> None:
        if only and only not in name:
            return
        console.print(f"[bold]bench:[/] {name} …")
        t0 = time.perf_counter()
        figures.extend(make())
        sections[name] = time.perf_counter() - t0

    if not os.environ.get("SRBENCH_WEIGHTS_DIR"):
        console.print(
            "[yellow]bench: SRBENCH_WEIGHTS_DIR is not set: models run without weights, so the "
            "overhead loop skips the metrics (set it to ../shared/weights)"
        )
    with tempfile.TemporaryDirectory(prefix="srbench-bench-") as tmp:
        root = Path(tmp)
        sample = ImageCache.build(load_dataset(None, scale=4), root / "sample-cache")
        section(
            "overhead, sample set",
            lambda: [
                overhead_figure(
                    "overhead.sample",
                    f"Harness overhead, loop / forwards, sample set ({len(sample)} images)",
                    sample,
                    str(dev),
                )
            ],
        )

        built: dict[str, ImageCache] = {}

        def div2k_images() -> ImageCache:
            if "div2k" not in built:
                hr_dir = write_div2k_like(root / "div2k", n_div2k)
                built["div2k"] = ImageCache.build(load_dataset(hr_dir, scale=4), root / "div2k-cache")
            return built["div2k"]

        def div2k() -> list[Figure]:
            images = div2k_images()
            label = (
                f"Harness overhead, loop / forwards, DIV2K-sized set "
                f"({n_div2k} synthetic {DIV2K_SIZE[0]}x{DIV2K_SIZE[1]} HR)"
            )
            return [overhead_figure("overhead.div2k", label, images, str(dev), GOAL_OVERHEAD_DIV2K)]

        section("overhead, DIV2K-sized set", div2k)
        section("fixed cost", lambda: fixed_cost_figures(sample, str(dev), 2 if quick else 3))
        section("meters", lambda: [meters_figure(sample, str(dev), 3 if quick else 9)])
        section("precision variants (CPU)", lambda: int8_figures(div2k_images(), rounds=3 if quick else 7))
        if dev.type == "cpu":  # the load and the defaults under test are CPU ones
            section(
                "stability under load",
                lambda: stability_figures(
                    root / "stability", loaded_runs=2 if quick else 5, quiet_runs=1 if quick else 3
                ),
            )
            mini = ImageCache.build(load_dataset("sample-mini", scale=4), root / "mini-cache")
            section("shape probe under load", lambda: [probe_figure(mini, 3 if quick else 10)])
    section("metrics", lambda: metrics_figures(runs))
    section("post-processing", lambda: [postproc_figure(runs + 2)])
    section("LR generation", lambda: [resize_figure(runs)])
    section(
        "timer fidelity",
        lambda: timer_figures(
            dev, forwards=5 if quick else 10, rounds=3 if quick else 5, min_run_time=0.5 if quick else 1.5
        ),
    )
    section("SPAN fusion", lambda: fusion_figures(dev, 3 if quick else 5))
    section(
        "ONNX Runtime vs PyTorch (CPU)",
        lambda: ort_figures(forwards=5 if quick else 10, rounds=3 if quick else 5),
    )
    section("CLI start", lambda: [cli_start_figure(5)])
    # The attention models take minutes to count on a 2-core CPU: full runs only.
    section("counting cost", lambda: counting_figures(COUNTING_MODELS[:3] if quick else COUNTING_MODELS))
    onnx_models = [m for m in list_models() if not quick or m not in SLOW_COUNT_MODELS]
    section("ONNX counts", lambda: onnx_count_figures(onnx_models))
    section("sweep", lambda: sweep_figures(entries=3, runs=2) if quick else sweep_figures())

    total = time.perf_counter() - started
    doc = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "only": only,
        "environment": collect_environment(dev),
        "seconds": total,
        # Other processes skew every time here: the 1/5/15-minute load averages say how busy it was.
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "section_seconds": sections,
        "figures": [asdict(f) for f in figures],
    }
    atomic_write_text(out_dir / "bench.json", json.dumps(json_safe(doc), indent=2) + "\n")
    env = doc["environment"]
    title = (
        f"srbench bench on {env.get('device_name')} ({env.get('torch_threads')} threads, "
        f"torch {env.get('torch')}){' — quick' if quick else ''}"
    )
    Console().print(figures_table(figures, title))
    console.print(f"bench: {total:.0f} s; figures in {out_dir / 'bench.json'}")
    return doc


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``python -m srbench.selfcheck.bench``)."""
    parser = argparse.ArgumentParser(
        prog="python -m srbench.selfcheck.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for bench.json")
    parser.add_argument("--quick", action="store_true", help="fewer images and repetitions (smoke run)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    parser.add_argument(
        "--div2k-images", type=int, default=None, help="DIV2K-sized images (default 10; 2 with --quick)"
    )
    parser.add_argument(
        "--only", default=None, help="only the sections whose name contains this (e.g. 'under load')"
    )
    args = parser.parse_args(argv)
    if args.div2k_images is not None and args.div2k_images < 1:
        parser.error("--div2k-images must be >= 1")
    run_bench(
        args.output, quick=args.quick, device=args.device, div2k_images=args.div2k_images, only=args.only
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
