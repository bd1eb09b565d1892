"""MATLAB-semantics bicubic imresize: pinned to the metrics.md §8 fingerprints and to torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from srbench.data.imresize import (
    _round_half_away_nonneg,
    imresize,
    imresize_uint8,
    modcrop,
    output_length,
)

# (image, sum of LR, sum of SR, LR[0, 0..2]) from metrics.md §8.
FINGERPRINTS = {
    "astronaut": (5_633_895, 90_160_733, [[153, 149, 157], [160, 156, 155], [132, 123, 125]]),
    "chelsea": (2_903_637, 46_458_590, [[145, 122, 107], [143, 120, 104], [145, 122, 105]]),
    "coffee": (4_437_761, 71_006_483, [[21, 13, 8], [22, 15, 9], [23, 15, 9]]),
}


def _hr(name: str) -> np.ndarray:
    return modcrop(getattr(data, name)(), 4)


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_lr_and_sr_fingerprints(name: str) -> None:
    sum_lr, sum_sr, first_pixels = FINGERPRINTS[name]
    hr = _hr(name)
    lr = imresize_uint8(hr, 1 / 4)
    assert lr.dtype == np.uint8
    assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
    assert int(lr.astype(np.int64).sum()) == sum_lr
    assert lr[0, :3].tolist() == first_pixels
    sr = imresize_uint8(lr, 4)
    assert sr.shape == hr.shape
    # Exact .5 ties at x4 up make SR order-of-operations dependent by a unit or two (§8).
    assert abs(int(sr.astype(np.int64).sum()) - sum_sr) <= 3


def test_torch_path_matches_numpy_path_and_keeps_type() -> None:
    hr = _hr("chelsea")
    lr_np = imresize_uint8(hr, 1 / 4)
    lr_t = imresize_uint8(torch.from_numpy(hr), 1 / 4)
    assert isinstance(lr_t, torch.Tensor) and lr_t.dtype == torch.uint8
    assert torch.equal(lr_t, torch.from_numpy(lr_np))
    grey = imresize_uint8(hr[..., 1], 1 / 4)
    assert grey.shape == lr_np.shape[:2]
    assert np.array_equal(grey, lr_np[..., 1])


@pytest.mark.parametrize(
    ("in_hw", "scale", "out_hw"),
    [
        ((7, 13), 0.5, (4, 7)),
        ((10, 11), 1 / 3, (4, 4)),
        ((5, 7), 1.5, (8, 11)),
        ((9, 9), 0.25, (3, 3)),
        ((3, 5), 4, (12, 20)),
    ],
)
def test_output_size_is_ceil(in_hw: tuple[int, int], scale: float, out_hw: tuple[int, int]) -> None:
    assert (output_length(in_hw[0], scale), output_length(in_hw[1], scale)) == out_hw
    out = imresize(torch.rand(2, *in_hw, dtype=torch.float64), scale)
    assert out.shape == (2, *out_hw)
    assert out.dtype == torch.float64


def test_output_size_argument_and_leading_dims() -> None:
    x = torch.rand(2, 3, 20, 30, dtype=torch.float32)
    out = imresize(x, output_size=(7, 11))
    assert out.shape == (2, 3, 7, 11)
    # Leading dims are independent images: resizing one alone gives the same values.
    assert torch.allclose(out[1, 2], imresize(x[1, 2], output_size=(7, 11)), rtol=0, atol=1e-14)


@pytest.mark.parametrize("scale", [0.25, 0.7, 3.0])
def test_constant_image_stays_constant(scale: float) -> None:
    x = torch.full((3, 17, 23), 0.3, dtype=torch.float64)
    out = imresize(x, scale)
    assert torch.allclose(out, torch.full_like(out, 0.3), rtol=0, atol=1e-14)


def test_linear_ramp_is_reproduced_by_x2_upsampling() -> None:
    # Keys cubic (a = -0.5) reproduces linear functions: away from the mirrored edges the x2
    # output at 1-based index x equals the ramp at u = x/2 + 0.25.
    h, w = 16, 20
    rows = torch.arange(1, h + 1, dtype=torch.float64)[:, None]
    cols = torch.arange(1, w + 1, dtype=torch.float64)[None, :]
    ramp = 2.0 * rows - 0.5 * cols + 3.0
    out = imresize(ramp, 2.0)
    u_r = torch.arange(1, 2 * h + 1, dtype=torch.float64)[:, None] / 2 + 0.25
    u_c = torch.arange(1, 2 * w + 1, dtype=torch.float64)[None, :] / 2 + 0.25
    expected = 2.0 * u_r - 0.5 * u_c + 3.0
    inner = (slice(6, -6), slice(6, -6))
    assert torch.allclose(out[inner], expected[inner], rtol=0, atol=1e-12)
    # At the edges mirroring breaks linearity, so the check above is not vacuous there.
    assert not torch.allclose(out, expected, rtol=0, atol=1e-3)


def test_downscale_interior_matches_torch_antialiased_bicubic() -> None:
    # metrics.md §5: F.interpolate(bicubic, antialias=True) in float64 equals MATLAB in the
    # interior; only the 1-2 outermost LR pixels differ (edge handling).
    hr = torch.from_numpy(_hr("astronaut")).permute(2, 0, 1).to(torch.float64) / 255.0
    ours = imresize(hr, 0.25)
    theirs = F.interpolate(hr[None], scale_factor=0.25, mode="bicubic", antialias=True)[0]
    assert ours.shape == theirs.shape
    assert torch.allclose(ours[:, 3:-3, 3:-3], theirs[:, 3:-3, 3:-3], rtol=0, atol=1e-12)
    assert not torch.allclose(ours, theirs, rtol=0, atol=1e-6)  # the borders do differ


def test_non_antialiased_bicubic_would_be_detected() -> None:
    hr = torch.from_numpy(_hr("astronaut")).permute(2, 0, 1).to(torch.float64) / 255.0
    ours = imresize(hr, 0.25)
    aliased = F.interpolate(hr[None], scale_factor=0.25, mode="bicubic", antialias=False)[0]
    diff = (ours - aliased).abs()
    # Plain decimation: most pixels differ by > 1/255, some by a large fraction of the range.
    assert (diff > 1 / 255).float().mean() > 0.5
    assert diff.max() > 0.3
    # Our own antialias=False path also decimates, and so departs from the default.
    assert (imresize(hr, 0.25, antialias=False) - ours).abs().max() > 0.3


def test_round_half_away_from_zero() -> None:
    x = torch.tensor([0.0, 0.5, 1.5, 2.5, 2.4999999, 254.5, 3.7], dtype=torch.float64)
    assert _round_half_away_nonneg(x).tolist() == [0.0, 1.0, 2.0, 3.0, 2.0, 255.0, 4.0]


def test_modcrop_keeps_top_left() -> None:
    img = np.arange(7 * 10 * 3, dtype=np.int64).reshape(7, 10, 3)
    out = modcrop(img, 4)
    assert out.shape == (4, 8, 3)
    assert np.array_equal(out, img[:4, :8])
    assert modcrop(img[..., 0], 3).shape == (6, 9)
    assert modcrop(img, 1).shape == img.shape


def test_bad_arguments_raise() -> None:
    x = torch.rand(4, 4)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, 0.5, output_size=(2, 2))
    with pytest.raises(ValueError, match="uint8"):
        imresize_uint8(np.zeros((4, 4, 3), dtype=np.float32), 0.5)
