"""score_image: the metric definitions to the last bit, exact integer PSNRs, the CUDA-path sums on CPU."""

from __future__ import annotations

import hashlib
import math
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srbench.core.errors import SrbenchError
from srbench.data.cache import ImageCache
from srbench.measure.metrics import (
    LUMA_SCALE,
    _ssim_2d,
    image_quality,
    luma_figures,
    luma_quality,
    luma_sums_device,
    psnr_from_ssd,
    rgb_to_y,
    ssim,
    ssim_separable,
    to_uint8,
    unpack_luma_sums,
)
from srbench.measure.quality import ImageScore, score_image


def _luma_int(img_hwc: np.ndarray) -> np.ndarray:
    """Exact integer BT.601 luma 255000 (Y - 16), in numpy int64 (independent of the kernels)."""
    rgb = img_hwc.astype(np.int64)
    return 65481 * rgb[..., 0] + 128553 * rgb[..., 1] + 24966 * rgb[..., 2]


def _exact_psnrs(sr_hwc: np.ndarray, hr_hwc: np.ndarray, border: int) -> tuple[float, float]:
    """(PSNR-Y, PSNR-RGB) from exact integer sums (Python ints) and one rounding of the MSE."""
    crop = (slice(border, -border or None), slice(border, -border or None))
    d_l = (_luma_int(sr_hwc) - _luma_int(hr_hwc))[crop]
    d_rgb = sr_hwc[crop].astype(np.int64) - hr_hwc[crop].astype(np.int64)
    ssd_l = sum(int(v) * int(v) for v in d_l.ravel())
    ssd_rgb = int((d_rgb * d_rgb).sum())
    n = d_l.size

    def db(ssd: int, count: int) -> float:
        return math.inf if ssd == 0 else 10.0 * math.log10(255.0**2 / (ssd / count))

    return db(ssd_l, LUMA_SCALE**2 * n), db(ssd_rgb, 3 * n)


def _reference(out: torch.Tensor, hr_hwc: np.ndarray, border: int, input_range: float) -> tuple:
    """The definitions step for step: to_uint8, the HWC bytes' SHA-256, exact PSNRs, and SSIM
    on float64 Y (rgb_to_y + the separable SSIM)."""
    sr = out[0].float()
    if input_range != 1.0:
        sr = sr / input_range
    sr_u8 = to_uint8(sr)
    hwc = sr_u8.permute(1, 2, 0).contiguous()
    sha = hashlib.sha256(hwc.numpy().tobytes()).hexdigest()
    p_y, p_rgb = _exact_psnrs(hwc.numpy(), hr_hwc, border)
    y_sr = rgb_to_y(sr_u8)
    y_hr = rgb_to_y(torch.from_numpy(hr_hwc).permute(2, 0, 1))
    crop = (slice(border, -border or None), slice(border, -border or None))
    ys, yh = y_sr[crop], y_hr[crop]
    s_y = float(ssim_separable(ys, yh)) / ((ys.shape[0] - 10) * (ys.shape[1] - 10))
    return sha, p_y, s_y, p_rgb, hwc


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
def test_equals_the_definitions(h: int, w: int, border: int, input_range: float) -> None:
    out, hr = _pair(h, w, seed=h * w, input_range=input_range)
    sha, p_y, s_y, p_rgb, u8 = _reference(out, hr, border, input_range)
    score = score_image(out.clone(), hr, crop_border=border, input_range=input_range)
    assert isinstance(score, ImageScore)
    assert torch.equal(score.sr_u8, u8) and score.sr_u8.shape == (h, w, 3)
    assert score.sr_sha256 == sha
    # Both PSNRs to the last bit (exact sums, one rounding); SSIM to float64 rounding.
    assert (score.psnr_y, score.psnr_rgb) == (p_y, p_rgb)
    assert score.ssim_y == pytest.approx(s_y, abs=1e-13)
    # One definition: image_quality gives score_image's floats, bit for bit.
    q = image_quality(u8.permute(2, 0, 1), torch.from_numpy(hr).permute(2, 0, 1), crop_border=border)
    assert (q.psnr_y, q.ssim_y, q.psnr_rgb) == (score.psnr_y, score.ssim_y, score.psnr_rgb)


def test_non_contiguous_and_channels_last_outputs() -> None:
    out, hr = _pair(60, 50, seed=8)
    expected = score_image(out, hr, crop_border=4)
    for variant in (out.to(memory_format=torch.channels_last), out.double(), out.half().float()):
        got = score_image(variant, hr, crop_border=4)
        ref = _reference(variant, hr, 4, 1.0)
        assert got.sr_sha256 == ref[0] and (got.psnr_y, got.psnr_rgb) == (ref[1], ref[3])
    cl = score_image(out.to(memory_format=torch.channels_last), hr, crop_border=4)
    assert (cl.sr_sha256, cl.psnr_y, cl.ssim_y) == (expected.sr_sha256, expected.psnr_y, expected.ssim_y)


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
    # Integers: one correctly rounded quotient, even where float64 would round the sum first.
    big = 2**60 + 1
    assert psnr_from_ssd(big, 3 * 2**60) == 10 * math.log10(255**2 / (big / (3 * 2**60)))


@pytest.mark.parametrize("width", [2101, 4200])
def test_psnr_y_is_exact_past_one_luma_chunk(width: int) -> None:
    # Black against white: every |dI| is the largest there is (219 x 255000), so a row of more
    # than 2048 squares would overflow int64; the per-chunk sums keep PSNR-Y exact, on the CPU
    # kernel and on the device path (run here on CPU tensors).
    h, border = 24, 4
    sr = torch.zeros(h, width, 3, dtype=torch.uint8)
    hr = torch.full((h, width, 3), 255, dtype=torch.uint8)
    n = (h - 2 * border) * (width - 2 * border)
    expected = psnr_from_ssd(n * (219 * LUMA_SCALE) ** 2, LUMA_SCALE**2 * n)
    assert expected == pytest.approx(20 * math.log10(255 / 219), abs=1e-12)
    q = luma_quality(sr, hr, crop_border=border)
    assert q.psnr_y == expected
    assert q.psnr_rgb == psnr_from_ssd(3 * n * 255**2, 3 * n)
    dev = luma_figures(
        *unpack_luma_sums(luma_sums_device(sr, hr, border)), h - 2 * border, width - 2 * border
    )
    assert (dev.psnr_y, dev.psnr_rgb) == (q.psnr_y, q.psnr_rgb)
    assert dev.ssim_y == pytest.approx(q.ssim_y, abs=1e-13)


@pytest.mark.parametrize(("h", "w", "border"), [(19, 19, 4), (64, 97, 4), (131, 70, 3)])
def test_device_path_on_cpu_matches_the_kernel(h: int, w: int, border: int) -> None:
    # luma_sums_device is the CUDA path's arithmetic; on CPU tensors it must give the kernel's
    # exact PSNRs and its SSIM to float64 rounding.
    out, hr = _pair(h, w, seed=h + w)
    u8 = score_image(out, None, crop_border=border).sr_u8
    hr_t = torch.from_numpy(hr)
    q = luma_quality(u8, hr_t, crop_border=border)
    packed = luma_sums_device(u8, hr_t, border)
    assert packed.dtype == torch.int64 and packed.dim() == 1  # one tensor: one transfer
    dev = luma_figures(*unpack_luma_sums(packed), h - 2 * border, w - 2 * border)
    assert (dev.psnr_y, dev.psnr_rgb) == (q.psnr_y, q.psnr_rgb)
    assert dev.ssim_y == pytest.approx(q.ssim_y, abs=1e-13)
    assert q.ssim_y < 0.999


def test_identical_images_give_inf_and_ssim_one() -> None:
    _, hr = _pair(48, 48, seed=5)
    out = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255.0
    score = score_image(out, hr, crop_border=4)
    assert score.psnr_y == math.inf and score.psnr_rgb == math.inf
    assert score.ssim_y == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------ the CUDA-path SSIM


@pytest.mark.parametrize(("h", "w"), [(11, 11), (30, 47), (61, 40), (128, 96)])
def test_separable_ssim_equals_the_kernel_on_cpu(h: int, w: int) -> None:
    rng = np.random.default_rng(h + w)
    x = torch.from_numpy(rng.uniform(16, 235, (h, w)))
    y = (x + torch.from_numpy(rng.normal(0, 8, (h, w)))).clamp(16, 235)
    mean = float(ssim_separable(x, y)) / ((h - 10) * (w - 10))
    assert mean == pytest.approx(_ssim_2d(x, y), abs=1e-12)
    assert mean < 0.999  # a real difference, not two trivially perfect scores


def test_integer_luma_form_of_ssim_is_ssim_on_y() -> None:
    # SSIM of Y = 16 + I / 255000 equals SSIM of I with the offset and the scaled constants.
    _, hr = _pair(40, 52, seed=21)
    _, sr = _pair(40, 52, seed=22)
    i_sr, i_hr = (torch.from_numpy(_luma_int(a)).double() for a in (sr, hr))
    y_sr, y_hr = (16 + i / LUMA_SCALE for i in (i_sr, i_hr))
    s = float(LUMA_SCALE)
    on_i = ssim_separable(
        i_sr, i_hr, offset=16 * s, c1=(0.01 * 255) ** 2 * s * s, c2=(0.03 * 255) ** 2 * s * s
    )
    assert float(on_i) == pytest.approx(float(ssim_separable(y_sr, y_hr)), rel=1e-13)


def test_separable_ssim_rejects_small_images() -> None:
    with pytest.raises(SrbenchError, match="at least 11x11"):
        ssim_separable(torch.zeros(10, 20, dtype=torch.float64), torch.zeros(10, 20, dtype=torch.float64))


# ------------------------------------------------------------------ bad outputs


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_output_is_an_error_naming_the_image(bad: float) -> None:
    out, hr = _pair(50, 40, seed=2)
    out[0, 1, 49, 39] = bad  # the last pixel of the last row
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
    # 125 rows, cropped 117x89: 107 SSIM output rows, which 2 and 3 parts cut into unequal
    # runs (each run also reads the 10 rows past its end and owns the last rows' PSNR sums).
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
        # The split really happened: parts - 1 runs of each stage went to the pool.
        assert (on_pool[-1] > 0) == (parts > 1)
        y_sr = rgb_to_y(s.sr_u8.permute(2, 0, 1))[4:-4, 4:-4]
        y_hr = rgb_to_y(torch.from_numpy(hr).permute(2, 0, 1))[4:-4, 4:-4]
        scores[parts] = (s.sr_sha256, s.psnr_y, s.ssim_y, s.psnr_rgb, ssim(y_sr, y_hr, crop_border=0))
        assert torch.equal(s.sr_u8, score_image(out, hr, crop_border=4).sr_u8)
    assert scores[1] == scores[2] == scores[3]
    assert scores[1][2] == pytest.approx(scores[1][4], abs=1e-13)  # metrics.ssim on Y
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


def test_kernels_never_compile_during_a_run() -> None:
    # Compiled once, at import, for one signature each; other argument types are refused
    # rather than compiled (seconds of LLVM) inside a measured loop.
    from srbench.measure import kernels

    for kernel in (kernels.quantise_rows, kernels.luma_ssim_rows, kernels.ssim_rows):
        assert len(kernel.signatures) == 1
    with pytest.raises(TypeError):
        kernels.quantise_rows(np.zeros((3, 4, 4)), np.zeros((4, 4, 3), dtype=np.uint8), 0, 4)
    assert len(kernels.quantise_rows.signatures) == 1


def test_kernels_compile_without_a_writable_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where numba finds nowhere to keep its cache it refuses cache=True; the kernels must then
    # compile without it (once per process) rather than make every run fail at import.
    import importlib
    import sys

    from numba.core import caching

    import srbench.measure

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    monkeypatch.delitem(sys.modules, "srbench.measure.kernels")  # restored afterwards
    monkeypatch.setattr(srbench.measure, "kernels", srbench.measure.kernels)
    fresh = importlib.import_module("srbench.measure.kernels")
    assert fresh.quantise_rows._cache.__class__.__name__ == "NullCache"
    u8 = np.zeros((2, 3, 3), dtype=np.uint8)
    assert fresh.quantise_rows(np.full((3, 2, 3), 0.5, dtype=np.float32), u8, 0, 2)
    assert (u8 == 128).all()  # 0.5 x 255 = 127.5, rounded half to even
