"""MATLAB-compatible bicubic ``imresize`` in torch, and the LR pipeline built on it.

Semantics follow MATLAB ``imresize(img, s)`` with its defaults (``contributions()`` in the
toolbox), as pinned in ``shared/reference/metrics.md`` §5:

* kernel: Keys cubic with a = -0.5 (width 4);
* antialiasing when downscaling (s < 1): the kernel becomes ``s*h(s*x)`` and its width ``4/s``;
* output index x (1-based) samples input coordinate ``u = x/s + 0.5*(1 - 1/s)``;
* taps: ``left = floor(u - width/2)``, ``ceil(width) + 2`` taps, weights normalised to sum 1;
* edges: out-of-range taps are mirrored symmetrically, repeating the edge pixel
  (0 -> 1, -1 -> 2, ... in 1-based indices);
* tap columns whose weights are all zero are dropped (this changes nothing numerically in the
  index/weight form used here, but is kept for fidelity with the reference);
* output size ``ceil(s * in)`` per axis;
* passes: separable, dimensions in order of increasing scale; rows (H) first on a tie.

Everything is computed in float64 on the input's device. Values are not rescaled: the result is
on whatever scale the input used. The per-axis taps are precomputed as (out, taps) index and
weight matrices and cached per (in, out, scale, antialias, device).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

_KERNEL_WIDTH = 4.0
# Below this many elements per gathered row, the resized axis is moved to the front first.
_MIN_ROW = 256


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def output_length(in_len: int, scale: float) -> int:
    """MATLAB's output size rule: ``ceil(scale * in_len)``."""
    return math.ceil(scale * in_len)


@functools.lru_cache(maxsize=64)
def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-pixel input indices (0-based, int64) and float64 weights, both (out, taps)."""
    # Built on the CPU in float64 (tiny), then moved once; the cache keys on the device.
    if scale < 1 and antialias:
        width = _KERNEL_WIDTH / scale

        def kernel(x: torch.Tensor) -> torch.Tensor:
            return scale * _cubic(scale * x)
    else:
        width = _KERNEL_WIDTH
        kernel = _cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - width / 2.0)
    n_taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(n_taps, dtype=torch.float64)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric mirroring that repeats the edge pixel: period 2*in over [1..in, in..1].
    idx0 = idx.to(torch.int64) - 1
    period = 2 * in_len
    m = torch.remainder(idx0, period)
    idx0 = torch.where(m < in_len, m, period - 1 - m)
    keep = (weights != 0).any(dim=0)
    return idx0[:, keep].contiguous().to(device), weights[:, keep].contiguous().to(device)


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """Resize float64 ``x`` along axis ``dim`` (non-negative) with the cached MATLAB taps.

    Sums over taps in tap order, as MATLAB does: ``acc += w[:, t] * x[idx[:, t]]``. The axis is
    treated as the row index of a (lead * in, trail) matrix so that each tap is one gather of
    whole rows into a reused buffer; when the rows would be short (the axis is nearly
    innermost) the axis is first moved to the front, which costs one copy but makes the
    gathers contiguous.
    """
    in_len = x.shape[dim]
    idx, w = _contributions(in_len, out_len, float(scale), antialias, x.device)
    moved = math.prod(x.shape[dim + 1 :]) < _MIN_ROW
    if moved:
        x = x.movedim(dim, 0)
    d = 0 if moved else dim
    lead_shape, trail_shape = x.shape[:d], x.shape[d + 1 :]
    n_lead, n_trail = math.prod(lead_shape), math.prod(trail_shape)
    flat = x.contiguous().view(n_lead * in_len, n_trail)
    base = torch.arange(n_lead, device=x.device)[:, None] * in_len
    acc = torch.empty(n_lead * out_len, n_trail, dtype=torch.float64, device=x.device)
    # One reused gather buffer: fresh per-tap tensors of this size cost page faults per tap.
    buf = torch.empty_like(acc)
    for t in range(idx.shape[1]):
        rows = (base + idx[:, t]).view(-1)
        w_t = w[:, t].repeat(n_lead)[:, None]
        if t == 0:
            torch.mul(torch.index_select(flat, 0, rows, out=buf), w_t, out=acc)
        else:
            acc.addcmul_(torch.index_select(flat, 0, rows, out=buf), w_t)
    out = acc.view(*lead_shape, out_len, *trail_shape)
    return out.movedim(0, dim) if moved else out


def _resize_2d(
    x: torch.Tensor,
    h_dim: int,
    w_dim: int,
    out_hw: tuple[int, int],
    scale_hw: tuple[float, float],
    antialias: bool,
) -> torch.Tensor:
    """Both passes in MATLAB's order: increasing scale; rows (H) first when the scales tie."""
    passes = [(h_dim, out_hw[0], scale_hw[0]), (w_dim, out_hw[1], scale_hw[1])]
    if scale_hw[1] < scale_hw[0]:
        passes.reverse()
    for dim, out_len, s in passes:
        x = _resize_dim(x, dim, out_len, s, antialias)
    return x


def imresize(
    img: torch.Tensor,
    scale: float | None = None,
    *,
    output_size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Bicubic resize with MATLAB ``imresize`` semantics (see module docstring).

    Args:
        img: float tensor shaped (..., H, W); any leading dims; values on any scale.
        scale: one scale factor for both axes; output size is ``ceil(scale * in)``.
        output_size: (H', W') instead of ``scale``; the per-axis scales are then
            ``H'/H`` and ``W'/W`` as in MATLAB.
        antialias: widen the kernel when downscaling (MATLAB's default ``true``).

    Returns:
        float64 tensor (..., H', W') on ``img``'s device.
    """
    if img.dim() < 2:
        raise ValueError(f"imresize: expected a tensor shaped (..., H, W), got shape {tuple(img.shape)}")
    if (scale is None) == (output_size is None):
        raise ValueError("imresize: give exactly one of scale= or output_size=")
    in_h, in_w = int(img.shape[-2]), int(img.shape[-1])
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"imresize: scale must be > 0, got {scale}")
        scale_h = scale_w = float(scale)
        out_h, out_w = output_length(in_h, scale_h), output_length(in_w, scale_w)
    else:
        out_h, out_w = (int(v) for v in output_size)  # type: ignore[union-attr]
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"imresize: output_size must be positive, got {output_size}")
        scale_h, scale_w = out_h / in_h, out_w / in_w
    x = _resize_2d(
        img.to(torch.float64), img.dim() - 2, img.dim() - 1, (out_h, out_w), (scale_h, scale_w), antialias
    )
    return x.contiguous()


def _round_half_away_nonneg(x: torch.Tensor) -> torch.Tensor:
    """Round non-negative values to nearest, ties up (= half away from zero, as MATLAB uint8)."""
    fl = torch.floor(x)
    # x - floor(x) is exact in float64, so ties are detected exactly (unlike floor(x + 0.5)).
    return fl + (x - fl >= 0.5).to(x.dtype)


def imresize_uint8(img: np.ndarray | torch.Tensor, scale: float) -> np.ndarray | torch.Tensor:
    """The srbench LR/SR pipeline on uint8 images (metrics.md §8).

    ``uint8(round(255 * clip(imresize(img / 255, scale), 0, 1)))`` in float64, where ``round``
    rounds half AWAY from zero as MATLAB does when casting to uint8 (exact ties do occur, e.g.
    at x2). ``img`` is uint8 HWC RGB or HW grey, as a numpy array (a numpy array is returned)
    or a torch tensor (a tensor on the same device is returned).
    """
    is_numpy = isinstance(img, np.ndarray)
    t = torch.from_numpy(np.require(img, requirements=["C", "W"])) if is_numpy else img
    if t.dtype != torch.uint8 or t.dim() not in (2, 3):
        raise ValueError(
            f"imresize_uint8: expected a uint8 HWC or HW image, got dtype {t.dtype} shape {tuple(t.shape)}"
        )
    # Resize in the HWC layout as given (axes 0 and 1): no channel transposes are needed.
    x = t.to(torch.float64).div_(255.0)
    h, w = int(t.shape[0]), int(t.shape[1])
    out_hw = (output_length(h, scale), output_length(w, scale))
    out = _resize_2d(x, 0, 1, out_hw, (float(scale), float(scale)), True)
    out = _round_half_away_nonneg(out.mul_(255.0).clamp_(0.0, 255.0)).to(torch.uint8).contiguous()
    return out.numpy() if is_numpy else out


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Keep the top-left ``H - H % scale`` rows and ``W - W % scale`` columns.

    For numpy images laid out HWC or HW (the first two axes are height and width); returns a
    view, not a copy.
    """
    if scale < 1:
        raise ValueError(f"modcrop: scale must be a positive integer, got {scale}")
    h, w = img.shape[0], img.shape[1]
    return img[: h - h % scale, : w - w % scale, ...]
