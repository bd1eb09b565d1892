"""Compiled CPU kernels of the quality metrics: quantisation, and SSIM/PSNR sums row by row.

The definitions live in :mod:`srbench.measure.metrics`; these are their CPU implementation,
compiled by numba with explicit signatures (so compilation, or loading the compiled code from
numba's on-disk cache, keyed by the SHA-256 of this file, happens when this module is
imported, never inside a measurement), and
``nogil`` so that :func:`~srbench.measure.metrics.run_parts` can split the rows of one image
across threads. Every kernel works on a contiguous run of rows and writes per-row results; the
caller combines the rows in a fixed order, so no value depends on how many threads ran.

Why compiled: the metrics are a dozen passes over a 2040x1356 image. As chains of torch ops each
pass goes through memory (or through cache-sized bands with one op call per band), which cost
88 ms per DIV2K pair on a 2-core CPU; one kernel that walks the rows once, keeping an 11-row ring
of the moment maps in cache, costs about a fifth of that.

The luma is handled as the exact integer ``I = 65481 R + 128553 G + 24966 B`` (R, G, B in
0..255), i.e. ``I = 255000 (Y - 16)`` for BT.601 studio-swing Y: every value, square and
product of it is an integer below 2**53, so the moment maps x, y, x**2 + y**2 and xy are exact
in float64, as are the PSNR differences; only the Gaussian filter sums and the SSIM map round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

from srbench.measure.metrics import LUMA_CHUNK, LUMA_INT_WEIGHTS

# Integer BT.601 luma weights, as int64 (globals are compile-time constants to numba).
_WR, _WG, _WB = (int(v) for v in LUMA_INT_WEIGHTS)

_OPTS = {"nogil": True, "error_model": "numpy", "boundscheck": False}


def _kernel(signature: str) -> Callable[[Callable], Any]:
    """``numba.njit(signature, nogil, ...)`` with numba's on-disk cache of the machine code (keyed
    by the SHA-256 of this file's source) where it has somewhere writable to keep it: beside
    this file, ``NUMBA_CACHE_DIR`` or the user's cache folder. Where it has none (a read-only
    install without a home folder) numba refuses ``cache=True`` at compile time; the kernels
    are then compiled without it, once per process (the worker server's, which its workers
    inherit), instead of failing every run."""

    def wrap(fn: Callable) -> Any:
        try:
            return nb.njit(signature, cache=True, **_OPTS)(fn)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            return nb.njit(signature, cache=False, **_OPTS)(fn)

    return wrap


@_kernel("boolean(float32[:, :, ::1], uint8[:, :, ::1], int64, int64)")
def quantise_rows(out: np.ndarray, u8: np.ndarray, r0: int, r1: int) -> bool:
    """Rows ``[r0, r1)`` of a (3, H, W) float32 image in [0, 1] into ``u8`` (H, W, 3) uint8.

    Each value is clamped to [0, 1], multiplied by 255 and rounded half to even, all in float32:
    the operations and rounding of :func:`srbench.measure.metrics.to_uint8`. Returns False
    (leaving the rows partly written) when a value in these rows is NaN or +-Inf.
    """
    lo, hi, peak = np.float32(0.0), np.float32(1.0), np.float32(255.0)
    w = out.shape[2]
    for r in range(r0, r1):
        p0, p1, p2 = out[0, r], out[1, r], out[2, r]
        bad = False
        for j in range(w):
            a, b, c = p0[j], p1[j], p2[j]
            # x - x is 0 for a finite x and NaN for NaN or +-Inf.
            bad |= not ((a - a) + (b - b) + (c - c) == np.float32(0.0))
        if bad:
            return False
        row = u8[r]
        for j in range(w):
            row[j, 0] = np.uint8(np.rint(min(max(p0[j], lo), hi) * peak))
            row[j, 1] = np.uint8(np.rint(min(max(p1[j], lo), hi) * peak))
            row[j, 2] = np.uint8(np.rint(min(max(p2[j], lo), hi) * peak))
    return True


@nb.njit(inline="always")
def _moments(x: np.ndarray, y: np.ndarray, ring: np.ndarray, slot: int, wc: int) -> None:
    rx, ry, rs, rp = ring[0, slot], ring[1, slot], ring[2, slot], ring[3, slot]
    for j in range(wc):
        a, b = x[j], y[j]
        rx[j] = a
        ry[j] = b
        rs[j] = a * a + b * b
        rp[j] = a * b


@nb.njit(inline="always")
def _ssim_row_sum(
    ring: np.ndarray,
    o: int,
    g: np.ndarray,
    v: np.ndarray,
    f: np.ndarray,
    smap: np.ndarray,
    offset: float,
    c1: float,
    c2: float,
) -> float:
    """Sum of output row ``o`` of the 'valid' SSIM map, from the ring's 11 rows o..o+10.

    The window is symmetric (g[k] == g[10 - k]), so each tap pair is added before its one
    multiplication. ``offset`` is added to the filtered means for the luminance term (the
    luma offset; 0 for plain images); the variances and covariance do not depend on it.
    """
    wc = ring.shape[2]
    wo = wc - 10
    g0, g1, g2, g3, g4, g5 = g[0], g[1], g[2], g[3], g[4], g[5]
    for m in range(4):
        rm = ring[m]
        r0, r1, r2, r3 = rm[o % 11], rm[(o + 1) % 11], rm[(o + 2) % 11], rm[(o + 3) % 11]
        r4, r5, r6, r7 = rm[(o + 4) % 11], rm[(o + 5) % 11], rm[(o + 6) % 11], rm[(o + 7) % 11]
        r8, r9, r10 = rm[(o + 8) % 11], rm[(o + 9) % 11], rm[(o + 10) % 11]
        vm = v[m]
        for j in range(wc):  # vertical 11-tap filter
            vm[j] = (
                (
                    ((g0 * (r0[j] + r10[j]) + g1 * (r1[j] + r9[j])) + g2 * (r2[j] + r8[j]))
                    + g3 * (r3[j] + r7[j])
                )
                + g4 * (r4[j] + r6[j])
            ) + g5 * r5[j]
        fm = f[m]
        for j in range(wo):  # horizontal 11-tap filter
            fm[j] = (
                (
                    (
                        (g0 * (vm[j] + vm[j + 10]) + g1 * (vm[j + 1] + vm[j + 9]))
                        + g2 * (vm[j + 2] + vm[j + 8])
                    )
                    + g3 * (vm[j + 3] + vm[j + 7])
                )
                + g4 * (vm[j + 4] + vm[j + 6])
            ) + g5 * vm[j + 5]
    mx, my, ms, mp = f[0], f[1], f[2], f[3]
    for j in range(wo):
        ux, uy = mx[j], my[j]
        lx, ly = offset + ux, offset + uy
        num = (2.0 * lx * ly + c1) * (2.0 * (mp[j] - ux * uy) + c2)
        den = (lx * lx + ly * ly + c1) * ((ms[j] - (ux * ux + uy * uy)) + c2)
        smap[j] = num / den
    # Four interleaved partial sums (a fixed order; one chain would wait on every addition).
    t0 = t1 = t2 = t3 = 0.0
    n4 = wo - wo % 4
    for j in range(0, n4, 4):
        t0 += smap[j]
        t1 += smap[j + 1]
        t2 += smap[j + 2]
        t3 += smap[j + 3]
    for j in range(n4, wo):
        t0 += smap[j]
    return (t0 + t1) + (t2 + t3)


@_kernel(
    "void(uint8[:, :, ::1], uint8[:, :, ::1], int64, int64, int64, float64[::1], float64, float64, float64,"
    " float64[::1], int64[:, ::1], int64[::1])"
)
def luma_ssim_rows(
    sr: np.ndarray,
    hr: np.ndarray,
    border: int,
    a: int,
    b: int,
    g: np.ndarray,
    offset: float,
    c1: float,
    c2: float,
    ssim_rows: np.ndarray,
    ssd_luma_rows: np.ndarray,
    ssd_rgb_rows: np.ndarray,
) -> None:
    """SSIM and PSNR sums of two uint8 (H, W, 3) RGB images, ``border`` cropped, on their luma.

    Writes, for the output rows ``[a, b)`` of the 'valid' SSIM map of the cropped (Hc, Wc) luma
    pair (Ho = Hc - 10 rows in all), ``ssim_rows[o]``: the sum of map row ``o``, computed on
    the integer luma I with ``offset``, ``c1``, ``c2`` already scaled to it. For the cropped
    rows this call owns (``[a, b)``, and ``[Ho, Hc)`` too when ``b == Ho``), the exact integer
    sums of squared differences of I (``ssd_luma_rows[r, k]``: columns ``[k LUMA_CHUNK,
    (k + 1) LUMA_CHUNK)`` of row ``r``, each below 2**63) and of R, G, B together
    (``ssd_rgb_rows[r]``).
    """
    h, w, _ = sr.shape
    hc, wc = h - 2 * border, w - 2 * border
    ho = hc - 10
    ring = np.empty((4, 11, wc))
    v, f, smap = np.empty((4, wc)), np.empty((4, wc - 10)), np.empty(wc - 10)
    for r in range(a, b + 10):
        own = r < b or (b == ho and r < hc)
        ps, ph = sr[border + r], hr[border + r]
        rx, ry, rs, rp = ring[0, r % 11], ring[1, r % 11], ring[2, r % 11], ring[3, r % 11]
        drgb = 0
        # One pass over the row's bytes: the luma of both images, both sums of squared
        # differences (int64) and the moment maps (float64, exact: integers below 2**53).
        for k in range(ssd_luma_rows.shape[1]):
            dl = 0
            for j in range(k * LUMA_CHUNK, min(wc, (k + 1) * LUMA_CHUNK)):
                c = border + j
                r0, g0, b0 = np.int64(ps[c, 0]), np.int64(ps[c, 1]), np.int64(ps[c, 2])
                r1, g1, b1 = np.int64(ph[c, 0]), np.int64(ph[c, 1]), np.int64(ph[c, 2])
                ix = _WR * r0 + _WG * g0 + _WB * b0
                iy = _WR * r1 + _WG * g1 + _WB * b1
                d = ix - iy
                dl += d * d
                dr, dg, db = r0 - r1, g0 - g1, b0 - b1
                drgb += dr * dr + dg * dg + db * db
                x, y = np.float64(ix), np.float64(iy)
                rx[j] = x
                ry[j] = y
                rs[j] = x * x + y * y
                rp[j] = x * y
            if own:
                ssd_luma_rows[r, k] = dl
        if own:
            ssd_rgb_rows[r] = drgb
        if r >= a + 10:
            ssim_rows[r - 10] = _ssim_row_sum(ring, r - 10, g, v, f, smap, offset, c1, c2)


@_kernel("void(float64[:, ::1], float64[:, ::1], int64, int64, float64[::1], float64, float64, float64[::1])")
def ssim_rows(
    x: np.ndarray, y: np.ndarray, a: int, b: int, g: np.ndarray, c1: float, c2: float, out: np.ndarray
) -> None:
    """``out[o]`` = the sum of row ``o`` of the 'valid' SSIM map of two float64 (H, W) images,
    for the output rows ``[a, b)`` (H - 10 rows in all)."""
    wc = x.shape[1]
    ring = np.empty((4, 11, wc))
    v, f, smap = np.empty((4, wc)), np.empty((4, wc - 10)), np.empty(wc - 10)
    for r in range(a, b + 10):
        _moments(x[r], y[r], ring, r % 11, wc)
        if r >= a + 10:
            out[r - 10] = _ssim_row_sum(ring, r - 10, g, v, f, smap, 0.0, c1, c2)


# Each kernel has exactly the signature above: a call with other types raises TypeError instead
# of compiling a new specialisation (seconds of LLVM) in the middle of a measurement.
for _kernel in (quantise_rows, luma_ssim_rows, ssim_rows):
    _kernel.disable_compile()
