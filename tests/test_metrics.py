"""PSNR / SSIM / Y: closed-form vectors and image vectors from metrics.md §8, and skimage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srbench.core.errors import SrbenchError
from srbench.data.imresize import imresize_uint8, modcrop
from srbench.measure.metrics import (
    ImageQuality,
    image_quality,
    psnr,
    rgb_to_y,
    ssim,
    to_uint8,
)


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------- closed-form vectors (§8)


def test_v1_constant_images() -> None:
    hr = torch.full((3, 32, 32), 100, dtype=torch.uint8)
    sr = torch.full((3, 32, 32), 110, dtype=torch.uint8)
    y_hr, y_sr = rgb_to_y(hr), rgb_to_y(sr)
    assert y_hr[0, 0].item() == pytest.approx(16 + 219 * 100 / 255, abs=1e-12)
    assert y_sr[0, 0].item() == pytest.approx(110.470588, abs=1e-6)
    q = image_quality(sr, hr, crop_border=4)
    assert q.psnr_y == pytest.approx(29.452725, abs=1e-6)
    assert q.ssim_y == pytest.approx(0.996735, abs=1e-6)
    assert q.psnr_rgb == pytest.approx(28.130804, abs=1e-6)
    assert ssim(sr, hr, crop_border=4) == pytest.approx(0.995476, abs=1e-6)
    # The closed forms themselves (sigma = 0 in every window).
    c1 = (0.01 * 255) ** 2
    y1, y2 = 16 + 219 * 100 / 255, 16 + 219 * 110 / 255
    assert q.ssim_y == pytest.approx((2 * y1 * y2 + c1) / (y1**2 + y2**2 + c1), abs=1e-12)
    assert q.psnr_y == pytest.approx(20 * math.log10(255 / (10 * 219 / 255)), abs=1e-10)


def _v2() -> tuple[torch.Tensor, torch.Tensor]:
    i, j, c = np.meshgrid(np.arange(48), np.arange(64), np.arange(3), indexing="ij")
    hr = ((3 * i + 5 * j + 40 * c) % 256).astype(np.uint8)
    sr = np.clip(hr.astype(np.int64) + (7 * i + 11 * j + c) % 9 - 4, 0, 255).astype(np.uint8)
    return _chw(sr), _chw(hr)


def test_v2_ramps_with_bounded_noise() -> None:
    sr, hr = _v2()
    assert int(hr.sum()) == 1_191_168 and int(sr.sum()) == 1_191_172
    q = image_quality(sr, hr, crop_border=4)
    assert q.psnr_y == pytest.approx(43.207191, abs=1e-6)
    assert q.ssim_y == pytest.approx(0.987100, abs=1e-6)
    assert q.psnr_rgb == pytest.approx(39.930373, abs=1e-6)
    assert ssim(sr, hr, crop_border=4) == pytest.approx(0.976040, abs=1e-6)


def test_v3_identical_images() -> None:
    sr, _ = _v2()
    q = image_quality(sr, sr.clone(), crop_border=4)
    assert q.psnr_y == math.inf and q.psnr_rgb == math.inf
    assert q.ssim_y == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- image vectors (§8)

# BasicSR Y crop 4 (PSNR, SSIM) and RGB crop 4 (PSNR, mean per-channel SSIM).
IMAGE_VECTORS = {
    "astronaut": ((26.843902, 0.842936), (25.343157, 0.814418)),
    "chelsea": ((31.475760, 0.806411), (30.051598, 0.781132)),
    "coffee": ((27.292111, 0.764936), (25.799534, 0.736889)),
}


@pytest.mark.parametrize("name", sorted(IMAGE_VECTORS))
def test_image_vectors(name: str) -> None:
    (psnr_y, ssim_y), (psnr_rgb, ssim_rgb) = IMAGE_VECTORS[name]
    hr = modcrop(getattr(data, name)(), 4)
    sr = imresize_uint8(imresize_uint8(hr, 1 / 4), 4)
    q = image_quality(_chw(sr), _chw(hr), crop_border=4)
    assert isinstance(q, ImageQuality)
    # metrics.md §7 tolerances: 1e-5 dB, 1e-6 (plus the 6-d.p. rounding of the table).
    assert q.psnr_y == pytest.approx(psnr_y, abs=1e-5)
    assert q.ssim_y == pytest.approx(ssim_y, abs=1.5e-6)
    assert q.psnr_rgb == pytest.approx(psnr_rgb, abs=1e-5)
    assert ssim(_chw(sr), _chw(hr), crop_border=4) == pytest.approx(ssim_rgb, abs=1.5e-6)


# ---------------------------------------------------------------- second implementation


@pytest.mark.parametrize(
    ("h", "w", "crop"), [(19, 19, 4), (45, 77, 2), (101, 150, 4), (70, 64, 0), (58, 40, 0)]
)
def test_matches_skimage_on_random_images(h: int, w: int, crop: int) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(np.int64) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    q = image_quality(_chw(sr), _chw(hr), crop_border=crop)
    y_sr = rgb_to_y(_chw(sr)).numpy()
    y_hr = rgb_to_y(_chw(hr)).numpy()
    if crop:
        y_sr, y_hr = y_sr[crop:-crop, crop:-crop], y_hr[crop:-crop, crop:-crop]
    ref_ssim = structural_similarity(
        y_hr, y_sr, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert q.ssim_y == pytest.approx(ref_ssim, abs=1e-6)
    assert q.psnr_y == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-6)
    # Y from skimage's own BT.601 conversion agrees with ours.
    from skimage.color import rgb2ycbcr

    assert np.allclose(rgb2ycbcr(hr)[..., 0], rgb_to_y(_chw(hr)).numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("h", "w"),
    # One tile and one column chunk (11x11), a partial last tile and a padded last chunk
    # (107 x 79 output), an exact number of tiles and chunks (48 x 32 output), a wide strip.
    [(11, 11), (117, 89), (58, 42), (30, 700)],
)
def test_ssim_equals_skimage_to_float_rounding(h: int, w: int) -> None:
    # The banded-matrix filters add the same 11 products as a direct convolution, only in
    # another order: the mean SSIM agrees with scikit-image's to float64 rounding.
    rng = np.random.default_rng(h * w)
    x = rng.uniform(16, 235, (h, w))
    y = np.clip(x + rng.normal(0, 12, (h, w)), 16, 235)
    ours = ssim(torch.from_numpy(x), torch.from_numpy(y), crop_border=0)
    ref = structural_similarity(
        y, x, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ours - ref) <= 1e-12
    assert ours < 0.99  # a real difference


def test_psnr_formula_and_crop() -> None:
    a = torch.zeros(10, 12, dtype=torch.float64)
    b = a.clone()
    b[0, :] = 200.0  # only in the border: cropped away
    b[5, 5] = 12.0  # MSE = 144 / (6 * 8) over the 6x8 interior
    assert psnr(a, b, crop_border=2) == pytest.approx(10 * math.log10(255**2 / 3.0), abs=1e-12)
    assert psnr(a, b, crop_border=2, peak=1.0) == pytest.approx(10 * math.log10(1 / 3.0), abs=1e-12)
    assert psnr(a, b, crop_border=0) < psnr(a, b, crop_border=2)


# ---------------------------------------------------------------- quantisation and errors


def test_to_uint8_rounds_half_to_even_and_clamps() -> None:
    vals = torch.tensor(
        [-0.5, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 254.5 / 255, 1.0, 1.7], dtype=torch.float64
    )
    # Precondition: these are exact ties after x255 in float64, so the rounding rule decides.
    assert (vals[2:6] * 255).tolist() == [0.5, 1.5, 2.5, 254.5]
    x = vals.view(1, 1, 8).expand(3, 1, 8)
    out = to_uint8(x)
    assert out.dtype == torch.uint8 and out.shape == (3, 1, 8)
    assert out[0, 0].tolist() == [0, 0, 0, 2, 2, 254, 255, 255]
    assert torch.equal(to_uint8(x[None]), out)  # (1, 3, H, W) accepted


def test_image_quality_rejects_shape_mismatch() -> None:
    a = torch.zeros(3, 32, 32, dtype=torch.uint8)
    b = torch.zeros(3, 32, 36, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"\(3, 32, 32\).*\(3, 32, 36\)") as info:
        image_quality(a, b, crop_border=4)
    assert isinstance(info.value, SrbenchError)
    with pytest.raises(ValueError, match="uint8"):
        image_quality(a.float(), a.float(), crop_border=4)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[0], a[0], crop_border=11)
    with pytest.raises(ValueError, match="crop_border=16"):
        psnr(a, a, crop_border=16)
