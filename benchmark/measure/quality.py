"""Scoring one SR output: finite check, uint8 quantisation, fingerprint and quality in one lean pass.

:func:`score_image` is what the protocol (:mod:`srbench.execution.protocol`) calls once per
image. It produces exactly the values the definitions in :mod:`srbench.measure.metrics` give
(``to_uint8``, ``rgb_to_y``, ``psnr``, ``ssim``) and the fingerprint ``ImageResult.sr_sha256``
defines (SHA-256 of the uint8 SR image as H×W×3 RGB bytes), with less work:

* the quantised image is written straight into an H×W×3 buffer, so the fingerprint hashes
  that buffer as it is: no transpose copy, and the bytes hashed are the ones the definition
  names;
* on the CPU the output is quantised a band of rows at a time: the band's float32 copy is
  gathered into H×W×3 order (it stays in cache), the band's finite check rides on that pass
  instead of a second full pass, and the rounded band is converted to uint8 contiguously;
  on CUDA the rounding and conversion write through a channels-last view;
* PSNR-RGB is an exact integer sum of squared differences: the differences of uint8 values
  are integers, their squares at most 65025 and every partial sum an integer below 2⁵³, so
  the float64 accumulation is exact in any order and the PSNR equals the float64 closed form;
* the Y images, the RGB sum and the Y differences for PSNR-Y come out of one banded pass over
  both images (the same bands and operations as :func:`~srbench.measure.metrics.rgb_to_y`,
  so every Y value is bit-identical); SSIM-Y then walks the cropped Y pair once, with the
  very function :func:`~srbench.measure.metrics.ssim` uses;
* the bands of the quantisation and of the Y pass, and SSIM's tiles, are split into
  contiguous runs across as many threads as torch was allowed on entry (at most
  ``metrics._MAX_PARTS``; :func:`~srbench.measure.metrics.run_parts`), each thread running
  its ops on one torch thread. Every value stays bit-identical to a one-thread run: the
  quantised and Y values are elementwise, the RGB partial sums exact integers, PSNR-Y's
  differences are summed by one dot product over one buffer after every run has written
  its rows, and SSIM's per-tile sums are added in tile order. The runs are joined before
  this returns: nothing keeps running into the next timed forward;
* the SHA-256 runs on a helper thread (``hashlib`` releases the GIL) while the metrics run,
  and is waited for before this returns.

On CUDA the quantised image is copied to pinned host memory with a non-blocking copy that
the hash thread waits for, the metrics run on the device (SSIM as separable convolutions
over stacked float64 moment maps: :func:`ssim_separable`, a few dozen kernels per image),
and their four sums come back to the host in one synchronisation per image.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from srbench.errors import SrbenchError
from srbench.measure.metrics import (
    _Y_BAND_ROWS,
    BT601_WEIGHTS,
    SSIM_C1,
    SSIM_C2,
    SSIM_WINDOW,
    ImageShapeError,
    _crop,
    _split,
    _ssim_2d,
    check_ssim_size,
    cpu_single_thread,
    gaussian_window_1d,
    psnr_from_ssd,
    rgb_to_y,
    run_parts,
)

#: Rows per band when quantising on the CPU (3 × rows × W float32 stays in L2 for W ≈ 2040).
_QUANT_BAND_ROWS = 16

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
    if out.device.type == "cuda":
        return _score_cuda(out, hr_t, crop_border, input_range, name)
    return _score_cpu(out, hr_t, crop_border, input_range, name)


def _not_finite(name: str) -> SrbenchError:
    return SrbenchError(f"image {name}: the model's output contains NaN or Inf")


# --------------------------------------------------------------------------- CPU


def _quantise_cpu(out: torch.Tensor, input_range: float, parts: int = 1) -> tuple[torch.Tensor, bool]:
    """(uint8 (H, W, 3), all finite) of a (3, H, W) output, one band of rows at a time.

    The bands are split into ``parts`` contiguous runs, one per thread (:func:`run_parts`);
    every value is elementwise, so the result does not depend on ``parts``.
    """
    _, h, w = out.shape
    u8 = torch.empty(h, w, 3, dtype=torch.uint8)
    band = min(_QUANT_BAND_ROWS, h)
    runs = _split(list(range(0, h, band)), parts)
    finite = run_parts(_quantise_bands, [(out, u8, run, band, input_range) for run in runs])
    return u8, all(finite)


def _quantise_bands(
    out: torch.Tensor, u8: torch.Tensor, starts: list[int], band: int, input_range: float
) -> bool:
    """Quantise the bands of ``band`` rows starting at ``starts`` into ``u8``; False at a non-finite one."""
    h, w = out.shape[-2:]
    buf = torch.empty(band, w, 3, dtype=torch.float32)
    for r0 in starts:
        rows = min(band, h - r0)
        b = buf[:rows]
        # .float() of the band (exact for float32), gathered into H×W×3 order here, where
        # it is in cache, so that the uint8 conversion below writes contiguously.
        b.copy_(out[:, r0 : r0 + rows].permute(1, 2, 0))
        # NaN propagates through max and min, ±Inf shows in them: one reduction, in cache.
        lo, hi = torch.aminmax(b)
        if not (math.isfinite(lo.item()) and math.isfinite(hi.item())):
            return False
        if input_range != 1.0:
            b.div_(input_range)
        b.clamp_(0.0, 1.0).mul_(255.0).round_()
        u8[r0 : r0 + rows].copy_(b)
    return True


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
            ssd_rgb, ssd_y, n_rgb, n_y, y_sr, y_hr = _y_and_sums(u8, hr.cpu(), border, parts)
            ssim_y = _ssim_2d(_crop(y_sr, border), _crop(y_hr, border))
        finally:
            concurrent.futures.wait([sha])  # nothing outlives the call, even on an error
        return ImageScore(
            sr_u8=u8,
            sr_sha256=sha.result(),
            psnr_y=psnr_from_ssd(ssd_y, n_y),
            ssim_y=ssim_y,
            psnr_rgb=psnr_from_ssd(ssd_rgb, n_rgb),
        )


def _y_and_sums(
    sr: torch.Tensor, hr: torch.Tensor, border: int, parts: int = 1
) -> tuple[float, float, int, int, torch.Tensor, torch.Tensor]:
    """One banded pass over two uint8 (H, W, 3) images on the CPU.

    Returns ``(ssd_rgb, ssd_y, n_rgb, n_y, y_sr, y_hr)``: the exact RGB sum of squared
    differences over the border-cropped region and its element count, the Y sum of squared
    differences (float64, summed as :func:`~srbench.measure.metrics.psnr` sums it) and its
    pixel count, and the two full (H, W) float64 Y images. The bands are split into ``parts``
    contiguous runs, one per thread; every value is bit-identical whatever ``parts`` is (the
    Y values are elementwise, the RGB partial sums exact integers, and the Y differences are
    summed once, on this thread, after every run has written its rows).
    """
    h, w, _ = sr.shape
    c0, c1 = border, h - border  # cropped rows
    wc = w - 2 * border
    y_sr = torch.empty(h, w, dtype=torch.float64)
    y_hr = torch.empty(h, w, dtype=torch.float64)
    # PSNR-Y's differences go into one contiguous buffer summed by one dot product, the
    # way metrics.psnr sums them, so PSNR-Y keeps its last bit too.
    y_diff = torch.empty((c1 - c0) * wc, dtype=torch.float64)
    band = min(_Y_BAND_ROWS, h)  # metrics.rgb_to_y's band: Y is bit-identical
    runs = _split(list(range(0, h, band)), parts)
    args = [(sr, hr, y_sr, y_hr, y_diff, border, run, band) for run in runs]
    ssd_rgb = sum(run_parts(_y_bands, args))  # integers below 2^53: exact in any order
    ssd_y = float(torch.dot(y_diff, y_diff))
    return ssd_rgb, ssd_y, 3 * (c1 - c0) * wc, (c1 - c0) * wc, y_sr, y_hr


def _y_bands(
    sr: torch.Tensor,
    hr: torch.Tensor,
    y_sr: torch.Tensor,
    y_hr: torch.Tensor,
    y_diff: torch.Tensor,
    border: int,
    starts: list[int],
    band: int,
) -> float:
    """The bands of ``band`` rows starting at ``starts`` of :func:`_y_and_sums`: writes their Y
    rows and Y differences, returns their exact RGB sum of squared differences."""
    h, w, _ = sr.shape
    wr, wg, wb = BT601_WEIGHTS
    c0, c1 = border, h - border
    wc = w - 2 * border
    rgb_a = torch.empty(3, band, w, dtype=torch.float64)
    rgb_b = torch.empty(3, band, w, dtype=torch.float64)
    d_rgb = torch.empty(3, band, wc, dtype=torch.float64)
    src_a, src_b = sr.permute(2, 0, 1), hr.permute(2, 0, 1)
    ssd_rgb = 0.0
    for r0 in starts:
        rows = min(band, h - r0)
        a, b = rgb_a[:, :rows], rgb_b[:, :rows]
        a.copy_(src_a[:, r0 : r0 + rows])
        b.copy_(src_b[:, r0 : r0 + rows])
        ya, yb = y_sr[r0 : r0 + rows], y_hr[r0 : r0 + rows]
        # The operations of metrics.rgb_to_y, in its order, on the same bands.
        torch.mul(a[0], wr, out=ya)
        ya.add_(a[1], alpha=wg).add_(a[2], alpha=wb).div_(255.0).add_(16.0)
        torch.mul(b[0], wr, out=yb)
        yb.add_(b[1], alpha=wg).add_(b[2], alpha=wb).div_(255.0).add_(16.0)
        lo, hi = max(r0, c0), min(r0 + rows, c1)
        if lo >= hi:
            continue
        k = hi - lo
        d = d_rgb[:, :k]
        rows_c, cols_c = slice(lo - r0, hi - r0), slice(border, w - border)
        torch.sub(a[:, rows_c, cols_c], b[:, rows_c, cols_c], out=d)
        flat = d.reshape(-1)
        ssd_rgb += float(torch.dot(flat, flat))  # integers below 2^53: exact
        at = (lo - c0) * wc  # this band's place in the row-major cropped difference image
        torch.sub(
            y_sr[lo:hi, border : w - border],
            y_hr[lo:hi, border : w - border],
            out=y_diff[at : at + k * wc].view(k, wc),
        )
    return ssd_rgb


# --------------------------------------------------------------------------- CUDA


def ssim_separable(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum of the 'valid' SSIM map of two float64 (H, W) images, as a 0-d tensor on their device.

    The same definition as :func:`~srbench.measure.metrics.ssim` (11×11 Gaussian, σ 1.5,
    population moments, C1, C2, 'valid' region): the four moment maps x, y, x²+y² and xy are
    stacked into one (4, 1, H, W) batch and filtered by two 1-D convolutions (11×1, then
    1×11), so a whole image costs a few dozen kernels on a GPU instead of one chain per tile.
    Divide by ``(H - 10) (W - 10)`` for the mean. Runs on any device (the tests compare it on
    the CPU with the tiled implementation); agrees with it to float64 rounding, not bit for bit.
    """
    h, w = x.shape
    n = SSIM_WINDOW
    check_ssim_size(h, w)
    g = gaussian_window_1d().to(device=x.device)
    maps = torch.stack((x, y, x * x + y * y, x * y)).unsqueeze(1)  # (4, 1, H, W)
    f = F.conv2d(F.conv2d(maps, g.view(1, 1, n, 1)), g.view(1, 1, 1, n))[:, 0]  # (4, H-10, W-10)
    mu_x, mu_y, m_sq, m_xy = f[0], f[1], f[2], f[3]
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    num = (2.0 * mu_xy + SSIM_C1) * (2.0 * (m_xy - mu_xy) + SSIM_C2)
    den = (mu_sq + SSIM_C1) * ((m_sq - mu_sq) + SSIM_C2)
    return (num / den).sum()


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
    a, b = u8_dev.permute(2, 0, 1), hr_dev.permute(2, 0, 1)
    d = _crop(a, border).to(torch.int32) - _crop(b, border).to(torch.int32)
    ssd_rgb = (d * d).sum(dtype=torch.int64)
    ya, yb = _crop(rgb_to_y(a), border), _crop(rgb_to_y(b), border)  # whole image off the CPU
    dy = (ya - yb).reshape(-1)
    ssd_y = torch.dot(dy, dy)
    ssim_sum = ssim_separable(ya, yb)
    # The one host synchronisation of the image.
    ok, rgb_sum, y_sum, s_sum = torch.stack(
        (finite.to(torch.float64), ssd_rgb.to(torch.float64), ssd_y, ssim_sum)
    ).tolist()
    if not ok:
        raise _not_finite(name)
    hc, wc = ya.shape
    return ImageScore(
        sr_u8=u8,
        sr_sha256=sha.result(),
        psnr_y=psnr_from_ssd(y_sum, hc * wc),
        ssim_y=s_sum / ((hc - SSIM_WINDOW + 1) * (wc - SSIM_WINDOW + 1)),
        psnr_rgb=psnr_from_ssd(rgb_sum, 3 * hc * wc),
    )
