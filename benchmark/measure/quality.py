"""Scoring one SR output: finite check, uint8 quantisation, fingerprint and quality in one lean pass.

:func:`score_image` is what the protocol (:mod:`srbench.runner.protocol`) calls once per
image. It produces exactly the values the definitions in :mod:`srbench.measure.metrics` give
(``to_uint8``, then :func:`~srbench.measure.metrics.luma_quality`, which
:func:`~srbench.measure.metrics.image_quality` also is) and the fingerprint
``ImageResult.sr_sha256`` defines (SHA-256 of the uint8 SR image as H×W×3 RGB bytes), with
little work:

* on the CPU a compiled kernel (:func:`srbench.measure.kernels.quantise_rows`) checks that
  every value is finite and quantises the (3, H, W) output straight into an H×W×3 uint8
  buffer, a row at a time; the fingerprint hashes that buffer as it is (no transpose copy);
  on CUDA the rounding and conversion write through a channels-last view;
* the three metrics come from one walk over the rows of the uint8 pair
  (:func:`~srbench.measure.metrics.luma_quality`): exact integer sums for both PSNRs, SSIM
  from an 11-row ring of exact integer moment maps;
* on the CPU the rows are split into contiguous runs across as many threads as torch was
  allowed on entry (at most ``metrics._MAX_PARTS``; :func:`~srbench.measure.metrics.run_parts`).
  Every value is the same whatever the split: quantisation is elementwise, the PSNR sums are
  exact integers and the SSIM row sums are added with ``math.fsum``. The runs are joined
  before this returns: nothing keeps running into the next timed forward;
* the SHA-256 runs on a helper thread (``hashlib`` releases the GIL) while the metrics run,
  and is waited for before this returns.

On CUDA the quantised image is copied to pinned host memory with a non-blocking copy that
the hash thread waits for, the metrics run on the device (SSIM as separable convolutions
over stacked float64 moment maps, a few dozen kernels per image), and their sums come back
to the host in one transfer per image.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from srbench.core.errors import SrbenchError

# Imported here, not where first used: loading the compiled kernels (about 0.4 s) belongs to
# the import of the protocol (preloaded by the worker server), never to a measured loop.
from srbench.measure import kernels
from srbench.measure.metrics import (
    SSIM_WINDOW,
    ImageShapeError,
    _crop,
    _row_runs,
    check_ssim_size,
    cpu_single_thread,
    luma_figures,
    luma_quality,
    luma_sums_device,
    run_parts,
    unpack_luma_sums,
)

_HASHER: concurrent.futures.ThreadPoolExecutor | None = None


def _hasher() -> concurrent.futures.ThreadPoolExecutor:
    global _HASHER
    if _HASHER is None:
        _HASHER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="srbench-sha256")
    return _HASHER


@dataclass(frozen=True)
class ImageScore:
    """What srbench records for one SR output.

    ``sr_u8``: the quantised output, uint8 (H, W, 3) RGB on the CPU (what ``--save-images``
    writes). ``sr_sha256``: lowercase hex SHA-256 of ``sr_u8``'s bytes in row-major order.
    ``psnr_y`` (dB), ``ssim_y`` (unitless) and ``psnr_rgb`` (dB) as defined in
    :mod:`srbench.measure.metrics`, border ``crop_border`` removed; ``None`` when no HR was
    given (a model without trained weights).
    """

    sr_u8: torch.Tensor
    sr_sha256: str
    psnr_y: float | None = None
    ssim_y: float | None = None
    psnr_rgb: float | None = None


def score_image(
    out: torch.Tensor,
    hr: torch.Tensor | np.ndarray | None,
    *,
    crop_border: int,
    input_range: float = 1.0,
    name: str = "image",
) -> ImageScore:
    """Quantise, fingerprint and score one model output against its HR image.

    ``out`` is the model's (1, 3, H, W) or (3, H, W) output on any device and float dtype, on
    the model's scale (``input_range``: 1.0 for [0, 1], 255.0 for [0, 255]); it is divided by
    ``input_range``, clamped to [0, 1], ×255 and rounded half to even, exactly as
    :func:`~srbench.measure.metrics.to_uint8` after ``out.float() / input_range``. On CUDA
    ``out`` is overwritten (quantised in place) when it is float32. ``hr`` is the uint8
    (H, W, 3) RGB reference (numpy or a tensor on any device; already mod-cropped), or None
    for no quality figures. ``crop_border`` pixels (the scale) are removed from every side for
    all three metrics.

    Raises :class:`SrbenchError` naming ``name`` when the output holds NaN or Inf, and
    :class:`ImageShapeError` when the shapes disagree.
    """
    if out.dim() == 4 and out.shape[0] == 1:
        out = out[0]
    if out.dim() != 3 or out.shape[0] != 3:
        raise ImageShapeError(f"image {name}: expected a (1, 3, H, W) output, got shape {tuple(out.shape)}")
    h, w = out.shape[-2:]
    hr_t = None
    if hr is not None:
        hr_t = torch.from_numpy(hr) if isinstance(hr, np.ndarray) else hr
        if tuple(hr_t.shape) != (h, w, 3) or hr_t.dtype != torch.uint8:
            raise ImageShapeError(
                f"image {name}: the HR reference must be uint8 ({h}, {w}, 3) like the SR output, got "
                f"{hr_t.dtype} {tuple(hr_t.shape)}; check the scale and the HR mod-crop"
            )
        _crop(out, crop_border)  # rejects a border that leaves nothing, before any work
        try:
            check_ssim_size(h - 2 * crop_border, w - 2 * crop_border)
        except ImageShapeError:
            side = SSIM_WINDOW + 2 * crop_border
            raise ImageShapeError(
                f"image {name}: HR {w}x{h} leaves {w - 2 * crop_border}x{h - 2 * crop_border} after the "
                f"{crop_border}-pixel border crop, smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window; "
                f"HR images must be at least {side}x{side} here: remove it ('srbench data check' lists them)"
            ) from None
    if out.device.type == "cuda":
        return _score_cuda(out, hr_t, crop_border, input_range, name)
    return _score_cpu(out, hr_t, crop_border, input_range, name)


def _not_finite(name: str) -> SrbenchError:
    return SrbenchError(f"image {name}: the model's output contains NaN or Inf")


# --------------------------------------------------------------------------- CPU


def _quantise_cpu(out: torch.Tensor, input_range: float, parts: int = 1) -> tuple[torch.Tensor, bool]:
    """(uint8 (H, W, 3), all finite) of a (3, H, W) output, quantised as ``to_uint8(out.float()
    / input_range)``; the rows are split into ``parts`` contiguous runs, one per thread."""
    src = out.detach().float()
    if input_range != 1.0:
        src = src / input_range  # torch's division, as the definition does it
    src = src.contiguous()
    _, h, w = src.shape
    u8 = torch.empty(h, w, 3, dtype=torch.uint8)
    a, b = src.numpy(), u8.numpy()
    finite = run_parts(kernels.quantise_rows, [(a, b, r0, r1) for r0, r1 in _row_runs(h, parts)])
    return u8, all(finite)


def _hash(u8: torch.Tensor) -> str:
    return hashlib.sha256(u8.numpy()).hexdigest()


def _score_cpu(
    out: torch.Tensor, hr: torch.Tensor | None, border: int, input_range: float, name: str
) -> ImageScore:
    with cpu_single_thread(out.device) as parts:
        u8, finite = _quantise_cpu(out, input_range, parts)
        if not finite:
            raise _not_finite(name)
        sha = _hasher().submit(_hash, u8)  # overlaps the metrics
        try:
            if hr is None:
                return ImageScore(sr_u8=u8, sr_sha256=sha.result())
            q = luma_quality(u8, hr.cpu(), crop_border=border)
        finally:
            concurrent.futures.wait([sha])  # nothing outlives the call, even on an error
        return ImageScore(
            sr_u8=u8, sr_sha256=sha.result(), psnr_y=q.psnr_y, ssim_y=q.ssim_y, psnr_rgb=q.psnr_rgb
        )


# --------------------------------------------------------------------------- CUDA


def _score_cuda(
    out: torch.Tensor, hr: torch.Tensor | None, border: int, input_range: float, name: str
) -> ImageScore:
    dev = out.device
    _, h, w = out.shape
    sr = out if out.dtype == torch.float32 else out.float()
    finite = torch.isfinite(sr).all()
    if input_range != 1.0:
        sr.div_(input_range)
    sr.clamp_(0.0, 1.0).mul_(255.0).round_()
    u8_dev = torch.empty(h, w, 3, dtype=torch.uint8, device=dev)
    u8_dev.permute(2, 0, 1).copy_(sr)
    u8 = torch.empty(h, w, 3, dtype=torch.uint8, pin_memory=True)
    u8.copy_(u8_dev, non_blocking=True)
    copied = torch.cuda.Event()
    copied.record()

    def fingerprint() -> str:
        copied.synchronize()
        return _hash(u8)

    sha = _hasher().submit(fingerprint)  # hashes while the device computes the metrics
    if hr is None:
        if not bool(finite):
            raise _not_finite(name)
        return ImageScore(sr_u8=u8, sr_sha256=sha.result())
    hr_dev = hr.to(dev, non_blocking=True)
    packed = luma_sums_device(u8_dev, hr_dev, border)
    # The one transfer (and host synchronisation) of the image's figures.
    values = torch.cat((finite.to(torch.int64).view(1), packed)).cpu()
    if not bool(values[0]):
        raise _not_finite(name)
    q = luma_figures(*unpack_luma_sums(values[1:]), h - 2 * border, w - 2 * border)
    return ImageScore(sr_u8=u8, sr_sha256=sha.result(), psnr_y=q.psnr_y, ssim_y=q.ssim_y, psnr_rgb=q.psnr_rgb)
