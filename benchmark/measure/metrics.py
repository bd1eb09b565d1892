"""Image-quality metrics: PSNR and SSIM on BT.601 Y (the reference convention) and PSNR on RGB.

Definitions (``shared/reference/metrics.md`` §7; BasicSR's convention, which the RDN/RCAN
MATLAB scripts and SwinIR share):

* Inputs are uint8 RGB images. A float SR output in [0, 1] becomes uint8 by clamping to [0, 1],
  multiplying by 255 and rounding half to even (:func:`to_uint8`).
* Y is BT.601 studio-swing luma on the 0-255 scale, as an *unrounded* float64:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in 0..255, so Y is in
  [16, 235] (:func:`rgb_to_y`).
* ``crop_border`` pixels (srbench passes the SR scale) are removed from every side before any
  metric is computed.
* PSNR = ``10 log10(peak^2 / MSE)`` in dB with peak 255 and a float64 MSE over all remaining
  pixels and channels; ``math.inf`` when the images are identical.
* SSIM (Wang et al., ``ssim_index.m``): 11x11 Gaussian window with sigma 1.5 normalised to sum 1,
  population (co)variances ``E[xy] - E[x]E[y]``, ``C1 = (0.01*255)^2``, ``C2 = (0.03*255)^2``,
  the SSIM map taken over the 'valid' region (no padding) and averaged. For (C, H, W) input the
  score is the mean of the per-channel scores. Unitless; computed in float64.
* PSNR-RGB is the NTIRE ESR convention: uint8 RGB, all three channels in one MSE, same crop.

A dataset score is the mean of per-image values, never a PSNR of a pooled MSE.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch

from srbench.errors import SrbenchError

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
# Output rows per tile of the SSIM filter (see _ssim_2d); tuned on a 2-core CPU.
_TILE_ROWS = 24
# Output columns per chunk of SSIM's horizontal filter (one batched banded product; see _ssim_2d).
_CHUNK_COLS = 16
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
    ``count`` values; ``math.inf`` when ``ssd`` is 0."""
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


@functools.lru_cache(maxsize=8)
def _band(tile: int, device: torch.device) -> torch.Tensor:
    """((tile + 10), tile) matrix M with M[j + k, j] = g[k]: a 'valid' 11-tap filter as matmul."""
    g = gaussian_window_1d()
    n = g.numel()
    m = torch.zeros(tile + n - 1, tile, dtype=torch.float64)
    for j in range(tile):
        m[j : j + n, j] = g
    return m.to(device)


def _ssim_2d(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean SSIM over the 'valid' map of two float64 (H, W) images (0-255 scale).

    The image is processed in tiles of output rows so that the moment maps of one tile stay in
    cache from construction through the SSIM map (whole-image float64 temporaries would make
    this memory-bound). The SSIM map only needs sigma_x^2 + sigma_y^2, so four maps suffice:
    x, y, x^2 + y^2 and xy. The separable Gaussian is applied as banded matrix products, so
    every filtered value is a dot product of the 11 taps with 11 inputs plus exact zeros:
    vertically (down each column of a tile) one product per moment map, then horizontally
    (along each row) one batched product over chunks of ``_CHUNK_COLS`` output columns, the
    chunks being overlapping windows of the same buffer (no copy). The result matches a
    direct 'valid' 2-D convolution (scikit-image's) to float64 rounding, about 1e-15.

    On the CPU the tiles are split into contiguous runs across up to ``_MAX_PARTS`` threads
    (:func:`cpu_single_thread`), each on one torch thread with its own buffers; the per-tile
    sums are then added in tile order on the calling thread, so the score is bit-identical
    whatever the number of threads.
    """
    h, w = x.shape
    n = SSIM_WINDOW
    check_ssim_size(h, w)
    ho = h - n + 1
    br = min(_TILE_ROWS, ho)
    starts = list(range(0, ho, br))
    with cpu_single_thread(x.device) as parts:
        runs = _split(starts, parts)
        sums = run_parts(_ssim_tile_sums, [(x, y, run, br) for run in runs])
    total = 0.0
    for run_sums in sums:
        for s in run_sums:  # tile order, whatever thread computed it
            total += s
    return total / (ho * (w - n + 1))


def _ssim_tile_sums(x: torch.Tensor, y: torch.Tensor, starts: list[int], br: int) -> list[float]:
    """SSIM-map sums of the tiles of ``br`` output rows starting at ``starts`` (see _ssim_2d)."""
    h, w = x.shape
    n = SSIM_WINDOW
    ho, wo = h - n + 1, w - n + 1
    dev = x.device
    c = min(_CHUNK_COLS, wo)
    chunks = -(-wo // c)
    rem = wo - (chunks - 1) * c  # valid columns of the last chunk
    wp = chunks * c + n - 1  # padded width: the last chunk reads zeros past the image
    band_v = _band(br, dev).T  # (br, br + 10): the vertical filter by left multiplication
    band_h = _band(c, dev).expand(chunks, c + n - 1, c)  # the horizontal filter, per chunk
    # Buffers are reused across tiles (fresh allocations of this size cost page faults on
    # every tile); zeros so that padding columns and the unused rows of a last, partial tile
    # hold finite values (their outputs are discarded).
    sq = torch.empty(br + n - 1, w, dtype=torch.float64, device=dev)
    xy = torch.empty(br + n - 1, w, dtype=torch.float64, device=dev)
    vert = torch.zeros(4, br, wp, dtype=torch.float64, device=dev)
    # Overlapping windows of the vertically filtered maps: chunk i reads columns [i c, i c + c + 10).
    windows = vert.as_strided((chunks, 4 * br, c + n - 1), (c, wp, 1))
    filt = torch.empty(chunks, 4 * br, c, dtype=torch.float64, device=dev)
    tmp = torch.empty(chunks, br, c, dtype=torch.float64, device=dev)
    c1 = torch.tensor(SSIM_C1, dtype=torch.float64, device=dev)
    c2 = torch.tensor(SSIM_C2, dtype=torch.float64, device=dev)

    @functools.cache
    def views(k: int) -> tuple:
        # The views a tile of k output rows works on (built once per k: every tile but a
        # last, partial one has k = br).
        f = filt.view(chunks, 4, br, c)[:, :, :k]  # (chunks, moment, row, column)
        return (
            sq[: k + n - 1],
            xy[: k + n - 1],
            band_v[:k, : k + n - 1],
            [vert[m, :k, :w] for m in range(4)],
            [f[:, m] for m in range(4)],
            tmp[:, :k],
            f[-1, 3, :, rem:] if rem < c else None,  # the SSIM map's columns past the image
        )

    out = []
    for r0 in starts:
        k = min(br, ho - r0)  # output rows of this tile
        sq_t, xy_t, bv, vert_m, (mu_x, mu_y, m_sq, m_xy), mu_xy, past = views(k)
        xs, ys = x[r0 : r0 + k + n - 1], y[r0 : r0 + k + n - 1]
        torch.mul(xs, xs, out=sq_t)
        sq_t.addcmul_(ys, ys)
        torch.mul(xs, ys, out=xy_t)
        for src, dst in zip((xs, ys, sq_t, xy_t), vert_m):
            torch.mm(bv, src, out=dst)
        torch.bmm(windows, band_h, out=filt)
        # SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
        # computed in place in the filtered maps (in cache) with one temporary.
        torch.mul(mu_x, mu_y, out=mu_xy)
        mu_sq = mu_x.mul_(mu_x).addcmul_(mu_y, mu_y)
        num = torch.add(c2, m_xy.sub_(mu_xy), alpha=2.0, out=m_xy)
        num.mul_(torch.add(c1, mu_xy, alpha=2.0, out=mu_xy))
        den = m_sq.sub_(mu_sq).add_(SSIM_C2)
        den.mul_(mu_sq.add_(SSIM_C1))
        ssim_map = num.div_(den)
        if past is not None:
            past.zero_()
        out.append(ssim_map.sum())
    # One transfer for all the tile sums (one host synchronisation on a GPU, not one per tile).
    return torch.stack(out).tolist() if out else []


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
    a :class:`SrbenchError`) naming both shapes when they differ.
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
    with cpu_single_thread(sr.device):
        sr, hr = sr.contiguous(), hr.contiguous()
        y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
        return ImageQuality(
            psnr_y=psnr(y_sr, y_hr, crop_border=crop_border),
            ssim_y=ssim(y_sr, y_hr, crop_border=crop_border),
            psnr_rgb=psnr(sr, hr, crop_border=crop_border),
        )


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
