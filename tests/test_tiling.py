"""Tiled inference: window partition, exactness on local models, degenerate sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from srbench.backends.tiling import _windows, tiled_forward

SCALE = 3


class LocalConvNet(nn.Module):
    """``depth`` 3x3 convolutions (receptive-field radius ``depth`` LR pixels) + PixelShuffle."""

    def __init__(self, depth: int, scale: int = SCALE, channels: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.mark.parametrize(
    ("size", "tile", "overlap"),
    [
        (100, 32, 8),
        (101, 32, 8),
        (97, 40, 16),
        (33, 32, 8),
        (64, 33, 32),
        (7, 32, 8),
        (32, 32, 8),
        (250, 64, 31),
    ],
)
def test_windows_partition_each_axis(size: int, tile: int, overlap: int) -> None:
    wins = _windows(size, tile, overlap)
    covered = np.zeros(size, dtype=int)
    for k, (start, end, keep0, keep1) in enumerate(wins):
        assert 0 <= start <= keep0 < keep1 <= end <= size
        assert end - start == min(tile, size)
        covered[keep0:keep1] += 1
        if k > 0:
            # The kept part stays overlap//2 away from an interior window edge ...
            assert keep0 - start >= overlap // 2
            # ... and consecutive windows overlap by at least `overlap`.
            assert wins[k - 1][1] - start >= overlap
        if k < len(wins) - 1:
            assert end - keep1 >= overlap // 2
    assert (covered == 1).all(), "every LR row/column must be kept by exactly one window"


def test_every_output_pixel_written_exactly_once() -> None:
    # Count writes by replaying the 2-D window product over the SR grid.
    h, w, tile, overlap = 45, 71, 24, 8
    count = np.zeros((h * SCALE, w * SCALE), dtype=int)
    for _, _, ky0, ky1 in _windows(h, tile, overlap):
        for _, _, kx0, kx1 in _windows(w, tile, overlap):
            count[ky0 * SCALE : ky1 * SCALE, kx0 * SCALE : kx1 * SCALE] += 1
    assert (count == 1).all()


def test_tiles_land_at_their_own_position() -> None:
    # Input channels hold each pixel's own row/column (+1, so that an unwritten zero shows);
    # a nearest-neighbour "model" copies them, so the output must be the coordinate grid.
    h, w = 37, 53
    rows = torch.arange(1, h + 1, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(1, w + 1, dtype=torch.float32)[None, :].expand(h, w)
    x = torch.stack([rows, cols, rows * 0])[None]
    out = tiled_forward(
        lambda t: nn.functional.interpolate(t, scale_factor=SCALE, mode="nearest"),
        x,
        scale=SCALE,
        tile=16,
        overlap=6,
    )
    expected = nn.functional.interpolate(x, scale_factor=SCALE, mode="nearest")
    assert torch.equal(out, expected)


@pytest.mark.parametrize(("h", "w"), [(40, 56), (41, 57), (29, 64)])
def test_local_model_tiled_equals_untiled_everywhere(h: int, w: int) -> None:
    # Receptive-field radius 5 < overlap//2 = 8: every kept pixel sees the same inputs.
    torch.manual_seed(0)
    model = LocalConvNet(depth=5).eval()
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        full = model(x)
        tiled = tiled_forward(model, x, scale=SCALE, tile=24, overlap=16)
    assert tiled.shape == full.shape == (1, 3, h * SCALE, w * SCALE)
    assert (tiled - full).abs().max().item() <= 1e-5


def test_too_small_overlap_is_visible() -> None:
    # Negative control: radius 8 > overlap//2 = 2 makes the seams differ, so the test above
    # would notice a stitching that ignored the overlap.
    torch.manual_seed(0)
    model = LocalConvNet(depth=8).eval()
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        diff = (tiled_forward(model, x, scale=SCALE, tile=20, overlap=4) - model(x)).abs().max().item()
    assert diff > 1e-4


@pytest.mark.parametrize("tile", [64, 100])
def test_tile_at_least_image_is_one_plain_forward(tile: int) -> None:
    torch.manual_seed(0)
    model = LocalConvNet(depth=3).eval()
    x = torch.rand(1, 3, 64, 50)
    calls: list[tuple[int, ...]] = []

    def forward(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return model(t)

    with torch.no_grad():
        out = tiled_forward(forward, x, scale=SCALE, tile=tile, overlap=32)
        assert torch.equal(out, model(x))
    assert calls == [(1, 3, 64, 50)]


def test_tile_must_exceed_overlap() -> None:
    with pytest.raises(ValueError, match="larger than overlap"):
        tiled_forward(lambda t: t, torch.zeros(1, 3, 8, 8), scale=1, tile=16, overlap=16)
