"""Tiled inference for images that do not fit in memory.

The LR image is cut into ``tile``×``tile`` windows that overlap by ``overlap`` pixels on each
interior side. Each window is upscaled on its own; of its output only the central part is
kept: the ``overlap // 2`` LR pixels (×scale in SR) nearest an interior edge are dropped,
and the kept parts tile the output exactly once ("crop and stitch", a hard blend). Image
borders keep their full window, so the model sees the same zero padding there as untiled.

Tolerance: where a model's receptive field radius (in LR pixels) is at most
``overlap // 2``, every output pixel is computed from the same inputs as untiled, so the
result equals the untiled output up to float reassociation (≤ 1e-4 on [0,1] for the
shipped convolutional models; after uint8 quantisation, at most 1 grey level on a few
pixels). Models with global context (RLFN/EFDN's ESA pooling, channel attention, window
attention near the tile edge) differ more near seams; the difference is measured in
``tests/test_tiling.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: Default overlap in LR pixels: covers the receptive field of SPAN (20 stacked 3x3
#: convolutions: radius 20 < 32/2 + margin) and RLFN's local path.
DEFAULT_OVERLAP = 32


def _windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Per window along one axis: ``(start, end, keep_start, keep_end)`` in LR pixels.

    Consecutive windows overlap by at least ``overlap``; each keeps the part of its span
    up to the middle of its overlaps with its neighbours, so kept parts partition the axis.
    """
    if size <= tile:
        return [(0, size, 0, size)]
    starts = list(range(0, size - tile, tile - overlap)) + [size - tile]
    ends = [s + tile for s in starts]
    cuts = [0] + [(starts[k + 1] + ends[k]) // 2 for k in range(len(starts) - 1)] + [size]
    return [(starts[k], ends[k], cuts[k], cuts[k + 1]) for k in range(len(starts))]


def tiled_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
) -> torch.Tensor:
    """Upscale ``x`` (N,C,H,W) by ``scale`` with ``forward`` applied tile by tile.

    ``tile`` and ``overlap`` are in LR pixels; ``tile`` must exceed ``overlap``.
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    n, _, h, w = x.shape
    s = scale
    out: torch.Tensor | None = None
    for y0, y1, ky0, ky1 in _windows(h, tile, overlap):
        for x0, x1, kx0, kx1 in _windows(w, tile, overlap):
            patch = forward(x[..., y0:y1, x0:x1])
            if out is None:
                out = patch.new_zeros((n, patch.shape[1], h * s, w * s))
            out[..., ky0 * s : ky1 * s, kx0 * s : kx1 * s] = patch[
                ..., (ky0 - y0) * s : (ky1 - y0) * s, (kx0 - x0) * s : (kx1 - x0) * s
            ]
    assert out is not None
    return out
