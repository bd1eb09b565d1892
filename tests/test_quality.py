"""score_image: bit-identical to the metric definitions, exact PSNR-RGB, the CUDA-path SSIM on CPU."""

from __future__ import annotations

import hashlib
import math
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srbench.data.cache import ImageCache
from srbench.errors import SrbenchError
from srbench.measure.metrics import _ssim_2d, cpu_single_thread, psnr, rgb_to_y, ssim, to_uint8
from srbench.measure.quality import ImageScore, psnr_from_ssd, score_image, ssim_separable


def _previous(out: torch.Tensor, hr_hwc: np.ndarray, border: int, input_range: float) -> tuple:
    """The protocol's post-processing before score_image, step for step (the reference)."""
    sr = out[0].float()
    if input_range != 1.0:
        sr = sr / input_range
    sr_u8 = to_uint8(sr)
    sha = hashlib.sha256(sr_u8.permute(1, 2, 0).contiguous().numpy().tobytes()).hexdigest()
    hr = torch.from_numpy(hr_hwc).permute(2, 0, 1).contiguous()
    with cpu_single_thread(hr.device):  # as image_quality ran them
        y_sr, y_hr = rgb_to_y(sr_u8), rgb_to_y(hr)
        return (
            sha,
            psnr(y_sr, y_hr, crop_border=border),
            ssim(y_sr, y_hr, crop_border=border),
            psnr(sr_u8, hr, crop_border=border),
            sr_u8.permute(1, 2, 0),
        )


def _pair(h: int, w: int, seed: int, input_range: float = 1.0) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # A float output around HR, with values outside [0, 1] and exact .5 ties after x255.
    noise = torch.from_numpy(rng.normal(0.0, 0.03, (1, 3, h, w))).float()
    out = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255.0 + noise
    out[0, 0, 0, : min(w, 4)] = torch.tensor([-0.2, 1.3, 0.5 / 255, 2.5 / 255][: min(w, 4)])
    return (out * input_range).contiguous(), hr


@pytest.mark.parametrize(
    ("h", "w", "border", "input_range"),
    [(19, 19, 4, 1.0), (45, 77, 2, 255.0), (101, 150, 4, 1.0), (70, 64, 0, 1.0), (97, 131, 3, 255.0)],
)
def test_bit_identical_to_the_previous_post_processing(
    h: int, w: int, border: int, input_range: float
) -> None:
    out, hr = _pair(h, w, seed=h * w, input_range=input_range)
    sha, p_y, s_y, p_rgb, u8 = _previous(out, hr, border, input_range)
    score = score_image(out.clone(), hr, crop_border=border, input_range=input_range)
    assert isinstance(score, ImageScore)
    assert torch.equal(score.sr_u8, u8) and score.sr_u8.shape == (h, w, 3)
    assert score.sr_sha256 == sha
    # The same floats to the last bit (not approximately): the regression baseline depends on it.
    assert (score.psnr_y, score.ssim_y, score.psnr_rgb) == (p_y, s_y, p_rgb)


def test_bit_identical_across_band_boundaries() -> None:
    # Taller than several quantisation (16) and Y (32) bands, with a partial last band.
    out, hr = _pair(150, 90, seed=7)
    sha, p_y, s_y, p_rgb, _ = _previous(out, hr, 4, 1.0)
    score = score_image(out, hr, crop_border=4)
    assert (score.sr_sha256, score.psnr_y, score.ssim_y, score.psnr_rgb) == (sha, p_y, s_y, p_rgb)


def test_matches_skimage() -> None:
    out, hr = _pair(96, 120, seed=3)
    score = score_image(out, hr, crop_border=4)
    sr = score.sr_u8.numpy()
    y_sr = rgb_to_y(torch.from_numpy(sr).permute(2, 0, 1)).numpy()[4:-4, 4:-4]
    y_hr = rgb_to_y(torch.from_numpy(hr).permute(2, 0, 1)).numpy()[4:-4, 4:-4]
    ref_ssim = structural_similarity(
        y_hr, y_sr, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert score.ssim_y == pytest.approx(ref_ssim, abs=1e-6)
    assert score.psnr_y == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-6)
    ref_rgb = peak_signal_noise_ratio(hr[4:-4, 4:-4], sr[4:-4, 4:-4], data_range=255)
    assert score.psnr_rgb == pytest.approx(ref_rgb, abs=1e-6)


def test_fingerprint_is_the_hwc_bytes() -> None:
    out, _ = _pair(40, 52, seed=11)
    score = score_image(out, None, crop_border=4)
    assert score.psnr_y is None and score.ssim_y is None and score.psnr_rgb is None
    # Independent of torch: numpy's own HWC layout of the quantised image.
    planes = np.round(np.clip(out[0].numpy(), 0, 1) * np.float32(255)).astype(np.uint8)
    hwc = np.ascontiguousarray(planes.transpose(1, 2, 0))
    assert score.sr_sha256 == hashlib.sha256(hwc.tobytes()).hexdigest()


# ------------------------------------------------------------------ exact integer PSNR-RGB


def test_psnr_rgb_is_the_integer_closed_form() -> None:
    # A full-size pair with a large, known integer SSD: every pixel of channel c differs by c + 1
    # inside the crop, so SSD = n_pix * (1 + 4 + 9).
    h, w, border = 1356, 2040, 4
    hr = np.full((h, w, 3), 100, dtype=np.uint8)
    sr = hr.copy()
    sr[border:-border, border:-border] += np.array([1, 2, 3], dtype=np.uint8)
    sr[0, :] = 255  # inside the border: never counted
    out = torch.from_numpy(sr).permute(2, 0, 1)[None].float() / 255.0
    score = score_image(out, hr, crop_border=border)
    n_pix = (h - 2 * border) * (w - 2 * border)
    ssd = n_pix * 14
    assert score.psnr_rgb == 10.0 * math.log10(255.0**2 / (ssd / (3 * n_pix)))
    assert score.psnr_rgb == pytest.approx(10 * math.log10(255**2 * 3 / 14), abs=1e-12)


def test_psnr_from_ssd() -> None:
    assert psnr_from_ssd(0.0, 10) == math.inf
    assert psnr_from_ssd(30.0, 10) == pytest.approx(10 * math.log10(255**2 / 3), abs=1e-12)


def test_identical_images_give_inf_and_ssim_one() -> None:
    _, hr = _pair(48, 48, seed=5)
    out = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255.0
    score = score_image(out, hr, crop_border=4)
    assert score.psnr_y == math.inf and score.psnr_rgb == math.inf
    assert score.ssim_y == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------ the CUDA-path SSIM


@pytest.mark.parametrize(("h", "w"), [(11, 11), (30, 47), (61, 40), (128, 96)])
def test_separable_ssim_equals_the_tiled_one_on_cpu(h: int, w: int) -> None:
    rng = np.random.default_rng(h + w)
    x = torch.from_numpy(rng.uniform(16, 235, (h, w)))
    y = (x + torch.from_numpy(rng.normal(0, 8, (h, w)))).clamp(16, 235)
    mean = float(ssim_separable(x, y)) / ((h - 10) * (w - 10))
    assert mean == pytest.approx(_ssim_2d(x, y), abs=1e-12)
    assert mean < 0.999  # a real difference, not two trivially perfect scores


def test_separable_ssim_rejects_small_images() -> None:
    with pytest.raises(SrbenchError, match="at least 11x11"):
        ssim_separable(torch.zeros(10, 20, dtype=torch.float64), torch.zeros(10, 20, dtype=torch.float64))


# ------------------------------------------------------------------ bad outputs


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_output_is_an_error_naming_the_image(bad: float) -> None:
    out, hr = _pair(50, 40, seed=2)
    out[0, 1, 49, 39] = bad  # the last pixel: the last, partial band
    with pytest.raises(SrbenchError, match="image zebra: the model's output contains NaN or Inf"):
        score_image(out, hr, crop_border=4, name="zebra")


def test_shape_mismatch_names_both_shapes() -> None:
    out, hr = _pair(40, 40, seed=1)
    with pytest.raises(SrbenchError, match=r"\(40, 40, 3\).*\(40, 36, 3\)"):
        score_image(out, hr[:, :36], crop_border=4, name="a")
    with pytest.raises(SrbenchError, match="crop_border=20"):
        score_image(out, hr, crop_border=20)


def test_prefetched_yields_the_cache_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pairs = [
        types.SimpleNamespace(name=f"im{i}", lr=rng.integers(0, 256, (4, 5, 3), dtype=np.uint8), hr=None)
        for i in range(3)
    ]
    for p in pairs:
        p.hr = np.repeat(np.repeat(p.lr, 2, 0), 2, 1)
    cache = ImageCache.build(pairs, tmp_path / "c")
    got = list(cache.prefetched())
    assert [g[0] for g in got] == ["im0", "im1", "im2"]
    for (name, lr, hr), (name2, lr2, hr2) in zip(got, cache):
        assert name == name2 and np.array_equal(lr, lr2) and np.array_equal(hr, hr2)


# ------------------------------------------------------------------ split across threads


@pytest.fixture
def parts_knob(monkeypatch: pytest.MonkeyPatch):
    """Set how many threads the CPU metric work is split across (1 = today's single thread)."""
    import srbench.measure.metrics as metrics

    previous = torch.get_num_threads()

    def use(parts: int) -> None:
        monkeypatch.setattr(metrics, "_MAX_PARTS", parts)
        # The split width is torch's thread count on entry, capped by the knob.
        torch.set_num_threads(max(parts, previous))

    yield use
    torch.set_num_threads(previous)


def test_split_across_threads_is_bit_identical(parts_knob, monkeypatch: pytest.MonkeyPatch) -> None:
    # 125 rows: 8 quantisation bands and 4 Y bands (partial last ones); cropped 117x89, so
    # 107 SSIM output rows in 5 tiles (an odd count, the last partial) and 79 output columns
    # (a padded last chunk). 2 and 3 parts cut the bands and tiles into unequal runs.
    import srbench.measure.metrics as metrics

    on_pool: list[int] = []  # parts run on pool threads, per score_image call
    real = metrics._in_modes

    def counted(*a):  # type: ignore[no-untyped-def]
        on_pool[-1] += 1
        return real(*a)

    monkeypatch.setattr(metrics, "_in_modes", counted)
    out, hr = _pair(125, 97, seed=13)
    scores = {}
    for parts in (1, 2, 3):
        parts_knob(parts)
        on_pool.append(0)
        s = score_image(out, hr, crop_border=4)
        # The split really happened: parts - 1 runs of each banded stage went to the pool.
        assert (on_pool[-1] > 0) == (parts > 1)
        y_sr = rgb_to_y(s.sr_u8.permute(2, 0, 1))[4:-4, 4:-4]
        y_hr = rgb_to_y(torch.from_numpy(hr).permute(2, 0, 1))[4:-4, 4:-4]
        scores[parts] = (s.sr_sha256, s.psnr_y, s.ssim_y, s.psnr_rgb, ssim(y_sr, y_hr, crop_border=0))
        assert torch.equal(s.sr_u8, score_image(out, hr, crop_border=4).sr_u8)
    assert scores[1] == scores[2] == scores[3]
    assert scores[1][2] == scores[1][4]  # score_image's SSIM is metrics.ssim, bit for bit
    assert scores[1][2] < 0.999  # a real difference, not two perfect scores


def test_split_runs_cover_the_items_in_order() -> None:
    from srbench.measure.metrics import _split

    items = list(range(7))
    for parts in (1, 2, 3, 7, 9):
        runs = _split(items, parts)
        assert [i for run in runs for i in run] == items
        assert len(runs) == min(parts, 7) and all(runs)
        assert max(map(len, runs)) - min(map(len, runs)) <= 1


def test_run_parts_returns_only_when_every_part_has_finished(parts_knob) -> None:
    # A part that fails on the calling thread must not leave another still running.
    import threading
    import time

    from srbench.measure.metrics import run_parts

    parts_knob(2)
    started, finished = threading.Event(), threading.Event()

    def part(i: int) -> int:
        if i == 0:
            started.wait(timeout=5)
            raise RuntimeError("boom")
        started.set()
        time.sleep(0.05)  # still busy when part 0 raises
        finished.set()
        return i

    with pytest.raises(RuntimeError, match="boom"):
        run_parts(part, [(0,), (1,)])
    assert finished.is_set()
    assert run_parts(lambda i: i * i, [(i,) for i in range(3)]) == [0, 1, 4]


def test_split_runs_inside_inference_mode(parts_knob) -> None:
    # The runner scores inside torch.inference_mode: the pool threads write into buffers the
    # calling thread created there (inference tensors), which they may only do in that mode too.
    out, hr = _pair(125, 97, seed=17)
    parts_knob(1)
    expected = score_image(out, hr, crop_border=4)
    parts_knob(2)
    with torch.inference_mode():
        got = score_image(out.clone(), hr, crop_border=4)
    assert (got.sr_sha256, got.psnr_y, got.ssim_y, got.psnr_rgb) == (
        expected.sr_sha256,
        expected.psnr_y,
        expected.ssim_y,
        expected.psnr_rgb,
    )
