"""Image-quality metrics: PSNR and SSIM on BT.601 Y (the reference convention) and PSNR on RGB.

The definitions of PSNR-Y, SSIM-Y and PSNR-RGB (quantisation, BT.601 Y, border crop, window,
constants) are written once, in ``docs/metrics.md`` (BasicSR's convention, which the RDN/RCAN
MATLAB scripts and SwinIR share; ``shared/reference/metrics.md`` §7); this module implements
them. ``crop_border`` is the number of pixels removed from every side (srbench passes the SR
scale); PSNR is in dB (``math.inf`` for identical images), SSIM unitless, both in float64; for
(C, H, W) input SSIM is the mean of the per-channel scores.

For uint8 RGB pairs (what srbench scores) the Y metrics are computed on the exact integer luma
``I = 255000 (Y - 16) = 65481 R + 128553 G + 24966 B`` (:func:`luma_quality`): PSNR-Y's MSE is
the exact mean of the squared Y differences rounded once, and SSIM-Y is the SSIM of Y with
float64 rounding only in the filter sums. The figures therefore agree with float64 Y
computations (scikit-image, BasicSR) to about 1e-13 dB and 1e-15, and are identical on every
device and thread count for PSNR.

A dataset score is the mean of per-image values, never a PSNR of a pooled MSE.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from srbench.core.errors import SrbenchError

_T = TypeVar("_T")
_R = TypeVar("_R")

#: BT.601 studio-swing luma weights for R, G, B values in [0, 1] (they sum to 219).
BT601_WEIGHTS: tuple[float, float, float] = (65.481, 128.553, 24.966)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2

# Rows per band in rgb_to_y's uint8 -> float64 conversion on the CPU.
_Y_BAND_ROWS = 32
# At most this many threads split the CPU metric work (see cpu_single_thread and run_parts);
# the split never exceeds torch's thread count, so a run given one thread scores on one.
_MAX_PARTS = 4


class ImageShapeError(SrbenchError, ValueError):
    """Two images that must be compared pixel for pixel have different or invalid shapes."""


@dataclass(frozen=True)
class ImageQuality:
    """Quality of one SR image against its HR reference.

    ``psnr_y``: dB, BT.601 Y (float, unrounded), peak 255, border cropped.
    ``ssim_y``: unitless in [-1, 1], same Y and crop, Gaussian 11x11 / sigma 1.5 window.
    ``psnr_rgb``: dB, uint8 RGB with all three channels in one MSE (NTIRE ESR), same crop.
    """

    psnr_y: float
    ssim_y: float
    psnr_rgb: float


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise a float image in [0, 1] to uint8 the way SR test scripts do.

    ``x`` is (3, H, W) or (1, 3, H, W). The values are clamped to [0, 1], multiplied by 255 and
    rounded half to even (``torch.round``, like numpy's ``round`` in BasicSR's ``tensor2img``).
    Returns a uint8 (3, H, W) tensor on ``x``'s device.
    """
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] != 3:
        raise ImageShapeError(
            f"to_uint8: expected a (3, H, W) or (1, 3, H, W) image, got shape {tuple(x.shape)}"
        )
    return torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-swing luma of an RGB image on the 0-255 scale, as unrounded float64.

    ``img`` is (3, H, W), RGB order, uint8 or float with values in 0..255. Returns (H, W) float64
    ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``, in [16, 235] for in-range input.
    """
    if img.dim() != 3 or img.shape[0] != 3:
        raise ImageShapeError(f"rgb_to_y: expected a (3, H, W) RGB image, got shape {tuple(img.shape)}")
    _, h, w = img.shape
    wr, wg, wb = BT601_WEIGHTS
    out = torch.empty(h, w, dtype=torch.float64, device=img.device)
    # On the CPU, convert a band of rows at a time so the float64 copy of the three channels
    # stays in cache; converting the whole image first is several times slower.
    band = _Y_BAND_ROWS if img.device.type == "cpu" else h
    buf = torch.empty(3, min(band, h), w, dtype=torch.float64, device=img.device)
    for r0 in range(0, h, band):
        rows = min(band, h - r0)
        rgb = buf[:, :rows]
        rgb.copy_(img[:, r0 : r0 + rows])
        y = out[r0 : r0 + rows]
        torch.mul(rgb[0], wr, out=y)
        y.add_(rgb[1], alpha=wg).add_(rgb[2], alpha=wb).div_(255.0).add_(16.0)
    return out


def _crop(img: torch.Tensor, crop_border: int) -> torch.Tensor:
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    h, w = img.shape[-2], img.shape[-1]
    if 2 * crop_border >= min(h, w):
        raise ImageShapeError(f"crop_border={crop_border} leaves no pixels of a {h}x{w} image; lower it")
    if crop_border == 0:
        return img
    return img[..., crop_border:-crop_border, crop_border:-crop_border]


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ImageShapeError(
            f"{what}: images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.dim() not in (2, 3):
        raise ImageShapeError(f"{what}: expected (H, W) or (C, H, W) images, got shape {tuple(a.shape)}")


def psnr(a: torch.Tensor, b: torch.Tensor, *, crop_border: int, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB.

    ``a`` and ``b`` are (H, W) or (C, H, W) on the 0-255 scale (any dtype). ``crop_border``
    pixels are removed from each side; the MSE is taken in float64 over all remaining pixels
    and channels; PSNR = ``10 log10(peak^2 / MSE)``; ``math.inf`` when MSE == 0.
    """
    _check_pair(a, b, "psnr")
    diff = (_crop(a, crop_border).to(torch.float64) - _crop(b, crop_border).to(torch.float64)).reshape(-1)
    # A dot product avoids a second image-sized temporary (the square) before the mean.
    return psnr_from_ssd(float(torch.dot(diff, diff)), diff.numel(), peak)


def psnr_from_ssd(ssd: float, count: int, peak: float = 255.0) -> float:
    """``10 log10(peak² / (ssd / count))`` in dB from a sum of squared differences over
    ``count`` values; ``math.inf`` when ``ssd`` is 0. With integer ``ssd`` and ``count`` the
    MSE is their exact quotient rounded once (Python's integer true division)."""
    mse = ssd / count
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def check_ssim_size(h: int, w: int) -> None:
    """Raise :class:`ImageShapeError` unless an (h, w) image holds one SSIM window."""
    n = SSIM_WINDOW
    if h < n or w < n:
        raise ImageShapeError(f"ssim: images must be at least {n}x{n} after cropping, got {h}x{w}")


def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian (float64); its outer product is MATLAB ``fspecial('gaussian')``."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _row_runs(rows: int, parts: int) -> list[tuple[int, int]]:
    """``[0, rows)`` cut into at most ``parts`` non-empty contiguous ``(start, stop)`` runs, in order."""
    return [(run[0], run[-1] + 1) for run in _split(list(range(rows)), parts)]


def _window() -> np.ndarray:
    return gaussian_window_1d().numpy()


def _ssim_2d(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean SSIM over the 'valid' map of two float64 (H, W) images (0-255 scale).

    On the CPU the map is computed row by row by a compiled kernel
    (:func:`srbench.measure.kernels.ssim_rows`: an 11-row ring of the moment maps x, y,
    x**2 + y**2 and xy, the separable window applied vertically then horizontally), its rows
    split into contiguous runs across up to ``_MAX_PARTS`` threads (:func:`cpu_single_thread`);
    the row sums are added with :func:`math.fsum` (correctly rounded), so the score does not
    depend on the number of threads. Elsewhere :func:`ssim_separable`. Both agree with a direct
    'valid' 2-D convolution (scikit-image's) to float64 rounding, about 1e-15.
    """
    h, w = x.shape
    check_ssim_size(h, w)
    count = (h - SSIM_WINDOW + 1) * (w - SSIM_WINDOW + 1)
    if x.device.type != "cpu":
        return float(ssim_separable(x, y)) / count
    from srbench.measure import kernels

    xs = x.detach().contiguous().numpy()
    ys = y.detach().contiguous().numpy()
    rows = np.empty(h - SSIM_WINDOW + 1)
    g = _window()
    with cpu_single_thread(x.device) as parts:
        run_parts(
            kernels.ssim_rows,
            [(xs, ys, a, b, g, SSIM_C1, SSIM_C2, rows) for a, b in _row_runs(rows.size, parts)],
        )
    return math.fsum(rows.tolist()) / count


def ssim_separable(
    x: torch.Tensor, y: torch.Tensor, *, offset: float = 0.0, c1: float = SSIM_C1, c2: float = SSIM_C2
) -> torch.Tensor:
    """Sum of the 'valid' SSIM map of two float64 (H, W) images, as a 0-d tensor on their device.

    The definition of :func:`ssim` (11x11 Gaussian, sigma 1.5, population moments, C1, C2,
    'valid' region): the four moment maps x, y, x**2 + y**2 and xy are stacked into one
    (4, 1, H, W) batch and filtered by two 1-D convolutions (11x1, then 1x11), so a whole image
    costs a few dozen kernels on a GPU. ``offset`` is added to the filtered means in the
    luminance term and ``c1``/``c2`` replace C1/C2: the integer-luma form of :func:`luma_quality`
    (offset 16 x 255000, constants x 255000**2). Divide by ``(H - 10) (W - 10)`` for the mean.
    Runs on any device (the tests compare it on the CPU with the compiled kernel); agrees with
    it to float64 rounding, not bit for bit.
    """
    import torch.nn.functional as F

    h, w = x.shape
    n = SSIM_WINDOW
    check_ssim_size(h, w)
    g = gaussian_window_1d().to(device=x.device)
    maps = torch.stack((x, y, x * x + y * y, x * y)).unsqueeze(1)  # (4, 1, H, W)
    f = F.conv2d(F.conv2d(maps, g.view(1, 1, n, 1)), g.view(1, 1, 1, n))[:, 0]  # (4, H-10, W-10)
    mu_x, mu_y, m_sq, m_xy = f[0], f[1], f[2], f[3]
    lx, ly = mu_x + offset, mu_y + offset
    num = (2.0 * lx * ly + c1) * (2.0 * (m_xy - mu_x * mu_y) + c2)
    den = (lx * lx + ly * ly + c1) * ((m_sq - (mu_x * mu_x + mu_y * mu_y)) + c2)
    return (num / den).sum()


def ssim(a: torch.Tensor, b: torch.Tensor, *, crop_border: int) -> float:
    """Structural similarity (unitless) on the 0-255 scale, float64.

    ``a`` and ``b`` are (H, W) or (C, H, W). ``crop_border`` pixels are removed from each side;
    then SSIM uses an 11x11 Gaussian window (sigma 1.5, normalised), population moments,
    ``C1 = (0.01*255)^2``, ``C2 = (0.03*255)^2`` and the mean over the 'valid' map (no padding).
    For (C, H, W) input the per-channel scores are averaged.
    """
    _check_pair(a, b, "ssim")
    a = _crop(a, crop_border).to(torch.float64)
    b = _crop(b, crop_border).to(torch.float64)
    if a.dim() == 2:
        return _ssim_2d(a, b)
    scores = [_ssim_2d(a[c], b[c]) for c in range(a.shape[0])]
    return sum(scores) / len(scores)


def image_quality(sr: torch.Tensor, hr: torch.Tensor, *, crop_border: int) -> ImageQuality:
    """PSNR-Y, SSIM-Y (reference convention) and PSNR-RGB (NTIRE ESR) of ``sr`` against ``hr``.

    Both are uint8 (3, H, W) RGB tensors of identical shape (HR already mod-cropped, SR already
    quantised with :func:`to_uint8`). ``crop_border`` (normally the scale) pixels are removed
    from each side for all three metrics. Raises :class:`ImageShapeError` (a ``ValueError`` and
    a :class:`SrbenchError`) naming both shapes when they differ. The values are
    :func:`luma_quality`'s, to the last bit.
    """
    if sr.shape != hr.shape or sr.dim() != 3 or sr.shape[0] != 3:
        raise ImageShapeError(
            f"image_quality: SR and HR must both be uint8 (3, H, W) RGB of the same shape, got "
            f"SR {tuple(sr.shape)} and HR {tuple(hr.shape)}; check the scale and the HR mod-crop"
        )
    if sr.dtype != torch.uint8 or hr.dtype != torch.uint8:
        raise ImageShapeError(
            f"image_quality: SR and HR must be uint8, got {sr.dtype} and {hr.dtype}; "
            "quantise SR with to_uint8"
        )
    return luma_quality(sr.permute(1, 2, 0), hr.permute(1, 2, 0), crop_border=crop_border)


#: I = 255000 (Y - 16) = 65481 R + 128553 G + 24966 B: BT.601 luma as an exact integer.
LUMA_SCALE = 255000
LUMA_INT_WEIGHTS = (65481.0, 128553.0, 24966.0)  # 1000 x BT601_WEIGHTS
#: Columns per exact partial sum of squared luma differences: |dI| <= 219 x 255000, so 2048
#: squares sum to at most 6.4e18, below 2**63.
LUMA_CHUNK = 2048
#: SSIM on I: the luma offset (16 x 255000) for the luminance term, C1 and C2 x 255000**2.
_LUMA_SSIM = (16.0 * LUMA_SCALE, SSIM_C1 * float(LUMA_SCALE) ** 2, SSIM_C2 * float(LUMA_SCALE) ** 2)


def luma_quality(sr: torch.Tensor, hr: torch.Tensor, *, crop_border: int) -> ImageQuality:
    """PSNR-Y, SSIM-Y and PSNR-RGB of two uint8 (H, W, 3) RGB images (CPU or CUDA tensors).

    The definitions of the module docstring, computed on the exact integer luma
    ``I = 65481 R + 128553 G + 24966 B = 255000 (Y - 16)`` instead of a rounded float Y:

    * PSNR-Y: the squared differences of I are exact integers and their sum is taken exactly,
      so the MSE of Y, ``sum dI**2 / (255000**2 N)``, is rounded once (to the nearest float64)
      before ``10 log10(255**2 / MSE)``: the same value on every device and thread count.
    * PSNR-RGB: likewise an exact integer sum over R, G and B.
    * SSIM-Y: the moment maps of I are exact integers below 2**53 in float64; the filtered
      means get the offset 16 x 255000 in the luminance term and C1, C2 are scaled by
      255000**2, which leaves the SSIM of Y unchanged (Y = 16 + I / 255000); float64 rounding
      enters only in the filter sums and the map, so the score agrees with a float64
      computation on Y (scikit-image's, BasicSR's) to about 1e-15.

    On the CPU one compiled kernel walks the rows once (:func:`srbench.measure.kernels.
    luma_ssim_rows`), its rows split across threads (:func:`cpu_single_thread`); on CUDA
    whole-image ops with one transfer back. Raises :class:`ImageShapeError` when the shapes
    disagree or the crop leaves less than one SSIM window.
    """
    if sr.shape != hr.shape or sr.dim() != 3 or sr.shape[-1] != 3:
        raise ImageShapeError(
            f"luma_quality: SR and HR must both be uint8 (H, W, 3) RGB of the same shape, got "
            f"SR {tuple(sr.shape)} and HR {tuple(hr.shape)}"
        )
    h, w, _ = sr.shape
    _crop(sr.permute(2, 0, 1), crop_border)  # rejects a border that leaves nothing
    hc, wc = h - 2 * crop_border, w - 2 * crop_border
    check_ssim_size(hc, wc)
    if sr.device.type == "cpu":
        ssd_rgb, ssd_luma, ssim_sum = _luma_sums_cpu(sr, hr, crop_border)
    else:
        packed = luma_sums_device(sr, hr, crop_border)
        ssd_rgb, ssd_luma, ssim_sum = unpack_luma_sums(packed.cpu())
    return luma_figures(ssd_rgb, ssd_luma, ssim_sum, hc, wc)


def luma_figures(ssd_rgb: int, ssd_luma: int, ssim_sum: float, hc: int, wc: int) -> ImageQuality:
    """:class:`ImageQuality` from the exact integer sums of squared RGB and luma (I)
    differences and the SSIM map's sum over a cropped (hc, wc) pair."""
    n = hc * wc
    return ImageQuality(
        psnr_y=psnr_from_ssd(ssd_luma, LUMA_SCALE * LUMA_SCALE * n),
        ssim_y=ssim_sum / ((hc - SSIM_WINDOW + 1) * (wc - SSIM_WINDOW + 1)),
        psnr_rgb=psnr_from_ssd(ssd_rgb, 3 * n),
    )


def _luma_sums_cpu(sr: torch.Tensor, hr: torch.Tensor, border: int) -> tuple[int, int, float]:
    from srbench.measure import kernels

    a = np.ascontiguousarray(sr.detach().numpy())
    b = np.ascontiguousarray(hr.detach().numpy())
    h, w, _ = a.shape
    hc, wc = h - 2 * border, w - 2 * border
    ho = hc - SSIM_WINDOW + 1
    ssim_rows = np.empty(ho)
    ssd_luma = np.zeros((hc, -(-wc // LUMA_CHUNK)), dtype=np.int64)
    ssd_rgb = np.zeros(hc, dtype=np.int64)
    g = _window()
    with cpu_single_thread(sr.device) as parts:
        runs = _row_runs(ho, parts)
        run_parts(
            kernels.luma_ssim_rows,
            [(a, b, border, r0, r1, g, *_LUMA_SSIM, ssim_rows, ssd_luma, ssd_rgb) for r0, r1 in runs],
        )
    # Python integers: the sums are exact whatever their size.
    return sum(ssd_rgb.tolist()), sum(ssd_luma.ravel().tolist()), math.fsum(ssim_rows.tolist())


def luma_sums_device(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """:func:`luma_quality`'s sums off the CPU, packed into one int64 tensor on the device (so
    that one transfer brings them back; :func:`unpack_luma_sums`): the RGB sum, the SSIM sum's
    float64 bits, then the luma sums per row and per ``LUMA_CHUNK`` columns."""
    a, b = _crop(sr.permute(2, 0, 1), border), _crop(hr.permute(2, 0, 1), border)
    d = a.to(torch.int32) - b.to(torch.int32)
    ssd_rgb = (d * d).sum(dtype=torch.int64)
    weights = torch.tensor(LUMA_INT_WEIGHTS, dtype=torch.float64, device=sr.device)
    # Integer weights and values: every product and sum is an exact float64 integer.
    ia = a.permute(1, 2, 0).to(torch.float64) @ weights
    ib = b.permute(1, 2, 0).to(torch.float64) @ weights
    dl = (ia - ib).to(torch.int64)
    hc, wc = dl.shape
    pad = -wc % LUMA_CHUNK
    per_chunk = _pad_right(dl * dl, pad).view(hc, -1, LUMA_CHUNK).sum(dim=2)  # each below 2**63
    offset, c1, c2 = _LUMA_SSIM
    ssim_sum = ssim_separable(ia, ib, offset=offset, c1=c1, c2=c2)
    return torch.cat((ssd_rgb.view(1), ssim_sum.view(1).view(torch.int64), per_chunk.reshape(-1)))


def _pad_right(x: torch.Tensor, right: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, right)) if right else x


def unpack_luma_sums(packed: torch.Tensor) -> tuple[int, int, float]:
    """(exact RGB sum, exact luma sum, SSIM sum) from :func:`luma_sums_device`'s tensor on the CPU."""
    values = packed.tolist()
    return values[0], sum(values[2:]), float(packed[1:2].view(torch.float64))


_state = threading.local()
_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


@contextlib.contextmanager
def cpu_single_thread(device: torch.device) -> Iterator[int]:
    """Run the enclosed CPU metric work on one torch thread per Python thread (restored afterwards).

    Yields how many parts the work may be split into (:func:`run_parts`): torch's thread count
    on entry (the cores the caller allowed), at most ``_MAX_PARTS``; 1 off the CPU, where this
    is a no-op. Nested uses yield the outermost one's count.
    """
    # The metrics are long chains of small, memory-bound ops on cache-sized bands. Across
    # two OpenMP threads each op pays a fork/join, and on a machine with any other load
    # the waits dominate: measured 0.52 s on 1 thread vs 0.80 s on 2 for a 2040x1356 pair
    # (rgb_to_y alone 0.06 s vs 2.4 s) on a loaded 2-core CPU. So each op runs on one
    # thread, and the cores are used instead by splitting independent bands of rows across
    # Python threads (run_parts), which also keeps every float sum in one fixed order.
    outer = getattr(_state, "parts", None)
    if device.type != "cpu" or outer is not None:
        yield 1 if device.type != "cpu" else outer
        return
    previous = torch.get_num_threads()
    _state.parts = max(1, min(previous, _MAX_PARTS))
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield _state.parts
    finally:
        _state.parts = None
        if previous != 1:
            torch.set_num_threads(previous)


def _split(items: list[_T], parts: int) -> list[list[_T]]:
    """``items`` cut into at most ``parts`` non-empty contiguous runs of near-equal length, in order."""
    parts = max(1, min(parts, len(items)))
    bounds = [len(items) * p // parts for p in range(parts + 1)]
    return [items[bounds[p] : bounds[p + 1]] for p in range(parts)]


def _in_modes(modes: tuple[bool, bool], fn: Callable[..., _R], args: tuple) -> _R:
    # A pool thread's OpenMP and MKL thread counts are its own: 1, so its ops run (and
    # reduce) exactly as on the calling thread inside cpu_single_thread. Set inside the work
    # item, not by a pool initializer: a thread the pool starts for a submit whose item an
    # earlier thread already took could run an initializer after run_parts returned, i.e.
    # during the next timed forward (torch.set_num_threads also resizes shared pools).
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    inference, grad = modes
    with torch.inference_mode(inference), torch.set_grad_enabled(grad):
        return fn(*args)


def run_parts(fn: Callable[..., _R], args: list[tuple]) -> list[_R]:
    """``[fn(*a) for a in args]``, the first on this thread and the others on pool threads.

    For CPU metric work inside :func:`cpu_single_thread` (torch ops release the GIL, so the
    parts run on separate cores). Every part runs on one torch thread; the results come back
    in the order of ``args``. All parts have finished when this returns or raises: no work
    outlives the call (the pool threads are idle until the next one).
    """
    if len(args) == 1:
        return [fn(*args[0])]
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(
                max_workers=_MAX_PARTS - 1,
                thread_name_prefix="srbench-metrics",
            )
    # Autograd modes are per thread: a pool thread takes the caller's, so that it may write
    # into the caller's buffers (inference tensors inside torch.inference_mode) as it would.
    modes = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())
    futures = [_POOL.submit(_in_modes, modes, fn, a) for a in args[1:]]
    try:
        first = fn(*args[0])
    finally:
        concurrent.futures.wait(futures)
    return [first, *(f.result() for f in futures)]
