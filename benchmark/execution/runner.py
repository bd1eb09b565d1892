"""Measuring models on a dataset: the protocol behind ``srbench run``.

Per model (:func:`measure_model`):

1. build the registered architecture, resolve and strictly load its weights (or mark the
   model ``no-weights``: efficiency figures only);
2. count complexity on the CPU copy at ``profile_input`` (:mod:`.counting`);
3. reset the peak-memory counter, move the model to the device (dtype, channels-last,
   ``torch.compile`` as configured);
4. warm up with ``warmup`` forwards on the first image (excluded from every figure);
5. for each image: copy LR to the device (not timed), time the forward
   (:mod:`.timing`), bring the output to [0,1] fp32, quantise to uint8, compute PSNR-Y,
   SSIM-Y and PSNR-RGB against the HR on the device (:mod:`.metrics`);
6. read the peak memory (:mod:`.memory`) and summarise.

The dataset is decoded once per run into an :class:`ImageCache` shared by all models.
"""

from __future__ import annotations

import gc
import hashlib
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srbench.data.cache import ImageCache
from srbench.errors import SrbenchError
from srbench.execution.building import build_model
from srbench.execution.config import DTYPES, RunConfig
from srbench.execution.devices import apply_backend_settings, check_config, resolve_device
from srbench.execution.specs import ModelSpec
from srbench.execution.tiling import tiled_forward
from srbench.measure.counting import profile_model
from srbench.measure.energy import EnergyMeter, mean_energy
from srbench.measure.memory import PeakMemory
from srbench.measure.metrics import image_quality, to_uint8
from srbench.measure.timing import ForwardTimer, RuntimeStats
from srbench.reporting.results import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    ImageResult,
    ModelResult,
)


def to_model_input(
    lr: np.ndarray, input_range: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    # uint8 HWC -> float (1,C,H,W) on the model's scale. Divided by 255/input_range in
    # float32, exactly as the NTIRE harness's uint2tensor4 does: multiplying by the
    # reciprocal differs in the last bit for some values and so flips a few rounded pixels.
    t = torch.from_numpy(lr).permute(2, 0, 1).unsqueeze(0)
    t = t.to(device=device, non_blocking=True).to(torch.float32)
    if input_range != 255.0:
        t = t / (255.0 / input_range)
    # The HWC permute leaves channels-last strides; without .contiguous() every model would
    # silently run channels-last convolutions, and --channels-last would change nothing.
    return t.to(dtype).contiguous()


# --------------------------------------------------------------------------- measuring

ProgressFn = Callable[[int, int], None]


def measure_model(
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    *,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelResult:
    """Measure one model on ``images`` per the module protocol; never raises for model faults.

    Errors raised while building, loading or running the model become a result with
    ``status="error"`` and the reason, so the run goes on with the next model.
    """
    result = ModelResult(name=spec.name, arch=spec.arch, scale=config.scale, status=STATUS_ERROR)
    try:
        _measure_into(result, spec, images, config, progress, should_stop)
    except SrbenchError as exc:
        result.status, result.reason = STATUS_ERROR, str(exc)
    except Exception as exc:  # a broken model must not take the run down
        result.status, result.reason = STATUS_ERROR, f"{type(exc).__name__}: {exc}"
    return result


def _measure_into(
    result: ModelResult,
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    progress: ProgressFn | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    device = resolve_device(config.device)
    check_config(config, device)
    apply_backend_settings(config, device)
    dtype = DTYPES[config.dtype]
    phases = result.phases_s

    t0 = time.perf_counter()
    entry, loaded = build_model(spec, config)
    phases["build_and_load"] = time.perf_counter() - t0
    result.input_range = entry.input_range
    result.weights = loaded.weights
    result.reason = loaded.reason

    complexity = profile_model(loaded.model, tuple(config.profile_input), input_range=entry.input_range)
    phases["count"] = complexity.seconds
    result.params, result.flops = complexity.params, complexity.flops
    result.activations, result.convs = complexity.activations, complexity.convs
    result.complexity_input = list(complexity.input_shape)
    result.unsupported_ops = complexity.unsupported_ops
    result.flops_dispatch = complexity.flops_dispatch
    result.functional_convs = complexity.functional_convs
    result.flops_lower_bound = complexity.flops_lower_bound
    result.flops_undercount = complexity.flops_undercount
    result.flops_thop = complexity.flops_thop
    if complexity.flops_note:
        result.notes.append(complexity.flops_note)
    if complexity.functional_convs:
        result.notes.append(
            f"{complexity.functional_convs} functional convolution call(s) are invisible to the "
            "NTIRE activation/conv counters"
        )

    memory = PeakMemory(device)
    memory.start()
    model = loaded.model.to(device=device, dtype=dtype)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward: Callable[[torch.Tensor], torch.Tensor] = model
    if config.compile:
        forward = torch.compile(model)

    timer = ForwardTimer(device)
    energy = EnergyMeter.for_device(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        x = to_model_input(images.first_lr(), entry.input_range, device, dtype)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # --compile compiles on the first call: that call is never timed, even with --warmup 0.
        for i in range(max(config.warmup, 1 if config.compile else 0)):
            _, ms = timer.time(lambda: forward(x))
            if i == 0 and config.compile:
                phases["compile"] = ms / 1e3
        del x
    phases["warmup"] = time.perf_counter() - t0

    quality = loaded.reason is None
    t0 = time.perf_counter()
    total = len(images)
    with torch.inference_mode():
        for done, (name, lr, hr) in enumerate(images, start=1):
            x = to_model_input(lr, entry.input_range, device, dtype)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            energy.begin()
            out, ms, tiled = timed_forward(forward, x, timer, config)
            joules = energy.end(config.repeat)
            sr = check_output(out, x, config.scale, name).float()
            if entry.input_range != 1.0:
                sr = sr / entry.input_range
            sr_u8 = to_uint8(sr)
            img = ImageResult(
                name=name, runtime_ms=ms, tiled=tiled, energy_j=joules, sr_sha256=_fingerprint(sr_u8)
            )
            if config.save_images:
                _save_sr(Path(config.save_images) / spec.name / f"{name}.png", sr_u8)
            if quality:
                hr_t = torch.from_numpy(hr).permute(2, 0, 1).to(device)
                q = image_quality(sr_u8, hr_t, crop_border=config.scale)
                img.psnr_y, img.ssim_y, img.psnr_rgb = q.psnr_y, q.ssim_y, q.psnr_rgb
            result.images.append(img)
            if progress:
                progress(done, total)
            if should_stop and should_stop():
                result.notes.append(f"interrupted after {done} of {total} images")
                break
    phases["loop"] = time.perf_counter() - t0
    result.memory_mb = memory.stop()
    result.memory_kind = memory.kind
    _summarise(result, quality, forced_tiling=config.tile is not None)
    result.energy_j_per_image = mean_energy(i.energy_j for i in result.images)


def _fingerprint(sr_u8: torch.Tensor) -> str:
    """SHA-256 of the uint8 SR image as H×W×3 RGB bytes (see ``ImageResult.sr_sha256``)."""
    return hashlib.sha256(sr_u8.permute(1, 2, 0).contiguous().cpu().numpy().tobytes()).hexdigest()


def _save_sr(path: Path, sr_u8: torch.Tensor) -> None:
    from srbench.data.imageio import write_png_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png_atomic(path, sr_u8.permute(1, 2, 0).cpu().numpy())


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    # The CPU allocator raises a plain RuntimeError when it cannot allocate.
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower()
    )


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def timed_forward(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, timer: ForwardTimer, config: RunConfig
) -> tuple[torch.Tensor, float, bool]:
    """``(output, ms, tiled)``: untiled unless ``--tile`` or out of memory.

    On out-of-memory the image is retried tiled, halving the tile until it fits (down to
    just above twice the overlap); such times are not comparable with untiled ones.
    """

    def tiled(tile: int) -> Callable[[], torch.Tensor]:
        return lambda: tiled_forward(forward, x, scale=config.scale, tile=tile, overlap=config.tile_overlap)

    if config.tile is not None:
        out, ms = timer.time_repeated(tiled(config.tile), config.repeat)
        return out, ms, True
    try:
        out, ms = timer.time_repeated(lambda: forward(x), config.repeat)
        return out, ms, False
    except Exception as exc:
        if not _is_oom(exc):
            raise
    _free_memory(timer.device)
    tile = max(x.shape[-2], x.shape[-1]) // 2
    floor = 2 * config.tile_overlap + 8
    while True:
        try:
            out, ms = timer.time_repeated(tiled(max(tile, floor)), config.repeat)
            return out, ms, True
        except Exception as exc:
            if not _is_oom(exc) or tile <= floor:
                raise
        _free_memory(timer.device)
        tile //= 2


def check_output(out: torch.Tensor, x: torch.Tensor, scale: int, name: str) -> torch.Tensor:
    expected = (x.shape[0], 3, x.shape[-2] * scale, x.shape[-1] * scale)
    if tuple(out.shape) != expected:
        raise SrbenchError(
            f"image {name}: output shape {tuple(out.shape)} is not {expected} "
            f"(input {tuple(x.shape)} x{scale}); the model does not upscale by --scale {scale}"
        )
    if not torch.isfinite(out).all():
        raise SrbenchError(f"image {name}: the model's output contains NaN or Inf")
    return out[0]


def _summarise(result: ModelResult, quality: bool, *, forced_tiling: bool) -> None:
    # Images tiled after running out of memory are timed differently: excluded, and said so.
    # With --tile every image is tiled the same way, so all are comparable and kept.
    fallback = [] if forced_tiling else [i.name for i in result.images if i.tiled]
    times = [i.runtime_ms for i in result.images if i.runtime_ms is not None and i.name not in fallback]
    result.runtime_ms = RuntimeStats.from_samples(times) if times else None
    if fallback:
        result.notes.append(
            f"{len(fallback)} image(s) ran out of memory and were tiled ({', '.join(fallback[:5])}); "
            "their times are excluded from runtime_ms"
        )
    if quality and result.images:
        result.psnr_y = _mean(i.psnr_y for i in result.images)
        result.ssim_y = _mean(i.ssim_y for i in result.images)
        result.psnr_rgb = _mean(i.psnr_rgb for i in result.images)
        result.status = STATUS_OK
    else:
        result.status = STATUS_NO_WEIGHTS


def _mean(values: Any) -> float:
    vals = [float(v) for v in values]
    # Identical SR and HR give +inf PSNR; the mean is then +inf, as in BasicSR.
    return math.inf if any(math.isinf(v) for v in vals) else statistics.fmean(vals)
