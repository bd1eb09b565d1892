"""``srbench upscale``: files, alpha, grey, overwrite refusal, input ranges and tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data.imresize import imresize_uint8
from srbench.measure.metrics import psnr, rgb_to_y
from srbench.models.registry import create_model, get_entry
from srbench.runner.upscale import (
    SourceImage,
    Upscaler,
    collect_inputs,
    load_upscaler,
    plan_outputs,
    read_source,
)


@pytest.fixture(autouse=True)
def _no_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests default to no official weights (CI sets SRBENCH_WEIGHTS_DIR for the gated ones),
    # and never read the user's weights cache.
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def astronaut() -> np.ndarray:
    """A 64x48 (WxH) crop of skimage's astronaut: face and background."""
    return np.ascontiguousarray(skimage.data.astronaut()[100:148, 150:214])


def _save(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    img = Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)
    img.save(path)
    return path


def _bicubic() -> Upscaler:
    return Upscaler("bicubic", create_model("bicubic"), input_range=1.0, scale=4)


# --------------------------------------------------------------------------- CLI files


def test_cli_bicubic_writes_named_png_matching_imresize(tmp_path: Path, astronaut: np.ndarray) -> None:
    src = _save(tmp_path / "face.png", astronaut)
    assert main(["upscale", str(src), "--model", "bicubic", "--device", "cpu"]) == 0
    out = tmp_path / "face_x4_bicubic.png"
    img = Image.open(out)
    assert (img.mode, img.size) == ("RGB", (256, 192))
    # The float32 model path and the float64 uint8 pipeline round differently on near-ties only.
    ref = np.asarray(imresize_uint8(astronaut, 4)).astype(int)
    diff = np.abs(np.asarray(img).astype(int) - ref)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_cli_refuses_overwrite_then_overwrites(
    tmp_path: Path, astronaut: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _save(tmp_path / "face.png", astronaut)
    out = tmp_path / "face_x4_bicubic.png"
    out.write_bytes(b"keep me")
    assert main(["upscale", str(src), "--model", "bicubic", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    assert main(["upscale", str(src), "--model", "bicubic", "--device", "cpu", "--overwrite"]) == 0
    assert Image.open(out).size == (256, 192)


def test_cli_refuses_model_without_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, astronaut: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SRBENCH_WEIGHTS_DIR", raising=False)
    src = _save(tmp_path / "face.png", astronaut)
    assert main(["upscale", str(src), "--model", "span", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--weights span=PATH" in err and "random weights" in err
    assert not (tmp_path / "face_x4_span.png").exists()
    # No trained weights exist anywhere for span_ca: a different message, same refusal.
    with pytest.raises(SrbenchError, match="no trained weights anywhere"):
        load_upscaler("span_ca", device="cpu")


def test_folder_input_skips_own_outputs_and_o_folder(tmp_path: Path, astronaut: np.ndarray) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _save(folder / "a.png", astronaut)
    _save(folder / "b.png", astronaut[:32, :40])
    (folder / "notes.txt").write_text("not an image")
    assert main(["upscale", str(folder), "--model", "bicubic", "--device", "cpu"]) == 0
    assert sorted(p.name for p in folder.glob("*_x4_bicubic.png")) == ["a_x4_bicubic.png", "b_x4_bicubic.png"]
    # A second pass over the same folder sees only the two originals, not the results.
    assert [p.name for p in collect_inputs([folder], scale=4, model="bicubic")] == ["a.png", "b.png"]
    out = tmp_path / "out"
    assert main(["upscale", str(folder), "-m", "bicubic", "--device", "cpu", "-o", str(out)]) == 0
    assert Image.open(out / "b_x4_bicubic.png").size == (160, 128)


def test_output_plan_errors(tmp_path: Path) -> None:
    a, b = tmp_path / "x" / "a.png", tmp_path / "y" / "a.png"
    with pytest.raises(SrbenchError, match="several images"):
        plan_outputs(
            [a, b], output=tmp_path / "o.png", scale=4, model="m", overwrite=False, single_file=False
        )
    with pytest.raises(SrbenchError, match="both be written"):
        plan_outputs([a, b], output=tmp_path / "o", scale=4, model="m", overwrite=False, single_file=False)
    with pytest.raises(SrbenchError, match="PNG only"):
        plan_outputs([a], output=tmp_path / "o.jpg", scale=4, model="m", overwrite=False, single_file=True)
    plan = plan_outputs([a], output=tmp_path / "o.png", scale=4, model="m", overwrite=False, single_file=True)
    assert plan == [(a, tmp_path / "o.png")]


# --------------------------------------------------------------------------- alpha and grey


def test_rgba_keeps_alpha_upscaled_with_bicubic(tmp_path: Path, astronaut: np.ndarray) -> None:
    h, w = astronaut.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = np.where((yy - 24) ** 2 + (xx - 32) ** 2 < 300, 255, 40).astype(np.uint8)
    src = _save(tmp_path / "rgba.png", np.dstack([astronaut, alpha]))
    rgb_only = _save(tmp_path / "rgb.png", astronaut)
    assert main(["upscale", str(src), str(rgb_only), "-m", "bicubic", "--device", "cpu"]) == 0
    out = Image.open(tmp_path / "rgba_x4_bicubic.png")
    assert out.mode == "RGBA" and out.size == (4 * w, 4 * h)
    arr = np.asarray(out)
    assert np.array_equal(arr[..., 3], imresize_uint8(alpha, 4))
    # Colour is the same as for the image without alpha: alpha never reaches the model.
    assert np.array_equal(arr[..., :3], np.asarray(Image.open(tmp_path / "rgb_x4_bicubic.png")))


def test_grey_in_grey_out(tmp_path: Path, astronaut: np.ndarray) -> None:
    grey = np.array(Image.fromarray(astronaut).convert("L"))
    src = _save(tmp_path / "g.png", grey)
    assert main(["upscale", str(src), "-m", "bicubic", "--device", "cpu"]) == 0
    out = Image.open(tmp_path / "g_x4_bicubic.png")
    assert out.mode == "L" and out.size == (256, 192)
    diff = np.abs(np.asarray(out).astype(int) - np.asarray(imresize_uint8(grey, 4)).astype(int))
    assert diff.max() <= 1


def test_grey_with_alpha_stays_la(tmp_path: Path, astronaut: np.ndarray) -> None:
    la = np.dstack([astronaut[..., 1], astronaut[..., 0]])
    src = _save(tmp_path / "la.png", la, mode="LA")
    source = read_source(src)
    assert source.grey and source.alpha is not None
    out, _, _ = _bicubic().upscale(source)
    assert out.shape == (192, 256, 2)
    assert np.array_equal(out[..., 1], imresize_uint8(la[..., 1], 4))


def test_grey_uses_luma_of_model_output() -> None:
    # A model that outputs pure red: luma must give 0.299*255 = 76.245 -> 76, not 255 or 0.
    class Red(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 3, x.shape[2] * 2, x.shape[3] * 2, dtype=x.dtype)
            out[:, 0] = 1.0
            return out

    up = Upscaler("red", Red(), input_range=1.0, scale=2)
    src = SourceImage(rgb=np.full((5, 7, 3), 9, np.uint8), grey=True)
    out, _, _ = up.upscale(src)
    assert out.shape == (10, 14) and (out == 76).all()


# --------------------------------------------------------------------------- models, ranges, tiling


def test_input_range_round_trip(astronaut: np.ndarray) -> None:
    # Bicubic is linear: fed on the 0-255 scale (input_range 255) it must give the same uint8
    # image as on [0, 1]; a missing lr/255*range or out/range would saturate or darken it.
    model = create_model("bicubic")
    src = SourceImage(rgb=astronaut)
    a, _, _ = Upscaler("b1", model, input_range=1.0, scale=4).upscale(src)
    b, _, _ = Upscaler("b255", model, input_range=255.0, scale=4).upscale(src)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("name", ["span", "rlfn"])
def test_random_init_models_upscale_like_a_direct_forward(name: str, astronaut: np.ndarray) -> None:
    # Test-only path: a random-init model through Upscaler (the CLI refuses it).
    torch.manual_seed(0)
    entry = get_entry(name)
    model = create_model(name)
    out, ms, tiled = Upscaler(name, model, input_range=entry.input_range, scale=4).upscale(
        SourceImage(rgb=astronaut)
    )
    assert out.shape == (192, 256, 3) and out.dtype == np.uint8 and not tiled and ms > 0
    x = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / (255.0 / entry.input_range)
    with torch.no_grad():
        ref = torch.round((model(x)[0] / entry.input_range).clamp(0, 1) * 255).to(torch.uint8)
    assert np.array_equal(out, ref.permute(1, 2, 0).numpy())


def _tiled_vs_untiled(model: torch.nn.Module, input_range: float, rgb: np.ndarray) -> tuple[float, float]:
    """Max |tiled - untiled| on [0,1] and PSNR (dB) of tiled against untiled, tile 48 / overlap 32."""
    plain = Upscaler("m", model, input_range=input_range, scale=4)
    tiled = Upscaler("m", model, input_range=input_range, scale=4, tile=48, tile_overlap=32)
    a, _, was_tiled_a = plain.upscale_rgb(rgb)
    b, _, was_tiled_b = tiled.upscale_rgb(rgb)
    assert (was_tiled_a, was_tiled_b) == (False, True)
    mse = float(((a - b) ** 2).mean())
    return float((a - b).abs().max()), (np.inf if mse == 0 else 10 * np.log10(1 / mse))


@pytest.fixture
def lr_56x64() -> np.ndarray:
    """56x64 (HxW) LR: 2x2 windows of 48 with overlap 32."""
    return np.ascontiguousarray(skimage.data.astronaut()[::4, ::4][8:64, 16:80])


def test_span_tiled_matches_untiled(lr_56x64: np.ndarray) -> None:
    # SPAN is purely local and its receptive field fits in overlap//2: equal to float noise
    # everywhere (measured 2.4e-5 with random weights, whose outputs span about +-30).
    torch.manual_seed(0)
    max_diff, _ = _tiled_vs_untiled(create_model("span"), 1.0, lr_56x64)
    assert max_diff <= 1e-4


def test_rlfn_tiled_close_to_untiled(lr_56x64: np.ndarray) -> None:
    # RLFN's ESA branch (stride-2 conv, 7x7/3 max-pool, bilinear upsampling) sees the tile,
    # not the image: tiles differ slightly everywhere (random init: max 5e-3 measured). A
    # misplaced tile would differ by the image's contrast (~0.5).
    torch.manual_seed(0)
    max_diff, db = _tiled_vs_untiled(create_model("rlfn"), 255.0, lr_56x64)
    assert 0 < max_diff <= 2e-2 and db > 45


@pytest.mark.weights
@pytest.mark.parametrize("name", ["span", "rlfn"])
def test_official_weights_beat_bicubic(
    name: str, official_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(official_weights))
    hr = np.ascontiguousarray(skimage.data.astronaut()[128:320, 128:384])  # 256x192
    lr = np.asarray(imresize_uint8(hr, 0.25))
    src = _save(tmp_path / "lr.png", lr)
    assert main(["upscale", str(src), "-m", name, "--device", "cpu"]) == 0
    sr = np.asarray(Image.open(tmp_path / f"lr_x4_{name}.png"))

    def psnr_y(img: np.ndarray) -> float:
        y = rgb_to_y(torch.tensor(img).permute(2, 0, 1))
        return psnr(y, rgb_to_y(torch.tensor(hr).permute(2, 0, 1)), crop_border=4)

    gain = psnr_y(sr) - psnr_y(np.asarray(imresize_uint8(lr, 4)))
    assert gain > 0.5, f"{name} is only {gain:.2f} dB above bicubic"


@pytest.mark.weights
@pytest.mark.slow
def test_official_span_tiled_matches_untiled(
    official_weights: Path, monkeypatch: pytest.MonkeyPatch, lr_56x64: np.ndarray
) -> None:
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(official_weights))
    up = load_upscaler("span", device="cpu")
    max_diff, _ = _tiled_vs_untiled(up.model, up.input_range, lr_56x64)
    assert max_diff <= 1e-4
