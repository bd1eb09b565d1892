"""Convolutional model zoo: exact parameter/key counts, fusion, I/O conventions, quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from srbench.models.loading import load_weights, read_checkpoint
from srbench.models.registry import create_model, get_entry
from srbench.models.span import SPAN, Conv3XC
from srbench.models.span_ca import SPANCA


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def span_fused(c: int, s: int) -> int:
    """architectures.md §2: fused SPAN parameter count."""
    return 175 * c * c + (48 + 27 * s * s) * c + 3 * s * s


def span_full(c: int, s: int) -> int:
    """architectures.md §2: official (training-form) SPAN count, eval_conv included."""
    return 956 * c * c + (277 + 27 * s * s) * c + 24 + 3 * s * s


def rlfn_formula(f: int, m: int, n: int, s: int, e: int = 16) -> int:
    """architectures.md §1: RLFN parameter count."""
    block = 18 * f * m + 9 * m * m + 2 * m + f * f + 3 * f + 2 * e * f + 19 * e * e + 4 * e
    return 28 * f + n * block + 9 * f * f + f + 27 * s * s * f + 3 * s * s


# Published tables first; the closed forms are checked against them below.
EXPECTED_PARAMS = {
    ("rlfn", 2): 302_278,
    ("rlfn", 3): 308_503,
    ("rlfn", 4): 317_218,
    ("rlfn_paper", 2): 526_856,
    ("rlfn_paper", 3): 533_891,
    ("rlfn_paper", 4): 543_740,
    ("rlfn_s", 2): 454_620,
    ("rlfn_s", 3): 461_115,
    ("rlfn_s", 4): 470_208,
    ("span", 2): 141_580,
    ("span", 3): span_fused(28, 3),
    ("span", 4): 150_688,
    ("span_tiny", 2): span_fused(26, 2),
    ("span_tiny", 3): span_fused(26, 3),
    ("span_tiny", 4): 130_828,
    ("span_ch48", 2): 410_700,
    ("span_ch48", 3): span_fused(48, 3),
    ("span_ch48", 4): 426_288,
    ("span_ch52", 2): 481_324,
    ("span_ch52", 3): span_fused(52, 3),
    ("span_ch52", 4): 498_208,
    # Seven CA modules of 2·28·⌊28/16⌋ = 56 weights each on top of SPAN ch28.
    ("span_ca", 2): 141_580 + 7 * 56,
    ("span_ca", 3): span_fused(28, 3) + 7 * 56,
    ("span_ca", 4): 151_080,
    # SPAN-F: 128C² + 523C + 480 at x4; the scale-dependent layers (conv_near 27s²,
    # conv_cat 3s²·C, conv_2 27s²C + 3s²) give 132,448 + 990 s² at C=32.
    ("spanf", 2): 132_448 + 990 * 4,
    ("spanf", 3): 132_448 + 990 * 9,
    ("spanf", 4): 148_288,
    # EFDN: only the tail (48→3s², 3x3) depends on the scale: 255,408 + 1,299 s².
    ("efdn", 2): 255_408 + 1_299 * 4,
    ("efdn", 3): 255_408 + 1_299 * 9,
    ("efdn", 4): 276_192,
    ("bicubic", 2): 0,
    ("bicubic", 3): 0,
    ("bicubic", 4): 0,
}


@pytest.mark.parametrize(("name", "scale"), sorted(EXPECTED_PARAMS))
def test_parameter_counts(name: str, scale: int) -> None:
    assert n_params(create_model(name, scale)) == EXPECTED_PARAMS[(name, scale)]


def test_closed_forms_agree_with_published_tables() -> None:
    assert rlfn_formula(46, 48, 4, 4) == 317_218
    assert rlfn_formula(52, 52, 6, 2) == 526_856
    assert rlfn_formula(48, 48, 6, 3) == 461_115
    assert span_fused(28, 4) == 150_688
    assert span_fused(48, 2) == 410_700
    assert span_full(28, 4) == 769_428
    assert 128 * 32 * 32 + 523 * 32 + 480 == 148_288


@pytest.mark.parametrize(("channels", "expected"), [(28, 769_428), (48, 2_236_728), (52, 2_621_964)])
def test_span_training_form_parameter_count(channels: int, expected: int) -> None:
    model = SPAN(3, 3, feature_channels=channels, upscale=4, deploy=False)
    assert n_params(model) == expected
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected - span_fused(channels, 4) + (4 * channels * channels + channels) + (
        48 * channels * 9 + 48
    )  # everything but the 20 eval_convs (conv_cat and the upsampler stay trainable)


@pytest.mark.parametrize(
    ("name", "n_keys"),
    [("rlfn", 78), ("rlfn_paper", 114), ("rlfn_s", 114), ("span", 44), ("span_tiny", 44)]
    + [("span_ca", 58), ("spanf", 35), ("efdn", 142), ("bicubic", 0)],
)
def test_state_dict_key_counts(name: str, n_keys: int) -> None:
    state = create_model(name, 4).state_dict()
    assert len(state) == n_keys
    assert all(not k.endswith("mean") for k in state)  # SPAN's mean is not persistent


def test_span_training_form_has_204_tensors_and_official_names() -> None:
    state = create_model("span", 4, deploy=False).state_dict()
    assert len(state) == 204
    assert {"conv_1.sk.weight", "block_3.c2_r.conv.1.weight", "conv_2.eval_conv.bias"} <= state.keys()
    assert tuple(state["block_1.c1_r.conv.0.weight"].shape) == (56, 28, 1, 1)
    assert tuple(state["block_1.c1_r.conv.1.weight"].shape) == (56, 56, 3, 3)


def test_rlfn_prune_shapes_match_reference() -> None:
    state = create_model("rlfn", 4).state_dict()
    expected = {
        "conv_1.weight": (46, 3, 3, 3),
        "block_1.c1_r.weight": (48, 46, 3, 3),
        "block_4.c3_r.weight": (46, 48, 3, 3),
        "block_2.c5.weight": (46, 46, 1, 1),
        "block_3.esa.conv1.weight": (16, 46, 1, 1),
        "block_3.esa.conv2.weight": (16, 16, 3, 3),
        "block_1.esa.conv4.weight": (46, 16, 1, 1),
        "conv_2.weight": (46, 46, 3, 3),
        "upsampler.0.weight": (48, 46, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key


def count_conv_calls(model: nn.Module, x: torch.Tensor) -> int:
    """The NTIRE ``num_conv``: calls to nn.Conv2d modules in one forward."""
    calls = []
    handles = [
        m.register_forward_hook(lambda *_: calls.append(1))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return len(calls)


@pytest.mark.parametrize(
    ("name", "convs"),
    [("rlfn", 39), ("span", 22), ("span_tiny", 22), ("span_ca", 50), ("spanf", 18), ("efdn", 65)],
)
def test_ntire_conv_call_counts(name: str, convs: int) -> None:
    assert count_conv_calls(create_model(name, 4), torch.rand(1, 3, 32, 32)) == convs


def test_training_form_span_runs_22_convs_in_eval_and_82_in_train() -> None:
    model = create_model("span", 4, deploy=False)
    x = torch.rand(1, 3, 24, 24)
    assert count_conv_calls(model, x) == 22
    assert count_conv_calls(model.train(), x) == 82


def randomise_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial random weights, biases included (zero biases would hide bias bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def test_conv3xc_fused_matches_branches_everywhere() -> None:
    block = randomise_(Conv3XC(5, 7, 2, deploy=False)).train()
    x = torch.randn(2, 5, 9, 11)
    with torch.no_grad():
        reference = block(x)
        block.eval()
        fused = block(x)
    assert fused.shape == reference.shape == (2, 7, 9, 11)
    # Borders included: the padded-border bias term must be part of the fused bias.
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(fused[..., 0, :], reference[..., 0, :], atol=1e-5, rtol=0)


def test_span_fused_forward_matches_training_forward() -> None:
    model = randomise_(SPAN(3, 3, feature_channels=8, upscale=3, deploy=False), seed=1)
    x = torch.rand(1, 3, 13, 17)
    with torch.no_grad():
        reference = model.train()(x)
        fused = model.eval()(x)
    scale = reference.abs().max()
    assert (fused - reference).abs().max() / scale < 1e-5


def test_span_fuses_once_not_in_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    model = randomise_(SPAN(3, 3, feature_channels=8, upscale=2, deploy=False)).eval()
    before = model.conv_1.eval_conv.weight.clone()

    def fail(self: Conv3XC) -> None:
        raise AssertionError("fuse() called during forward")

    monkeypatch.setattr(Conv3XC, "fuse", fail)
    with torch.no_grad():
        model(torch.rand(1, 3, 16, 16))
    assert torch.equal(model.conv_1.eval_conv.weight, before)
    assert isinstance(model.conv_1.eval_conv, nn.Conv2d)


def test_span_eval_conv_is_not_trainable_like_upstream() -> None:
    model = create_model("span", 4)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    # ptflops/calflops count only requires_grad params: 15,308 for the slim file (ntire-harness §11).
    assert n_params(model) - frozen == 15_308


def test_span_ca_reuses_span_blocks_and_accepts_grey_input() -> None:
    model = create_model("span_ca", 4)
    assert isinstance(model, SPANCA) and isinstance(model, SPAN)
    assert tuple(model.state_dict()["ca7.fc1.weight"].shape) == (1, 28, 1, 1)
    assert tuple(model.state_dict()["ca1.fc2.weight"].shape) == (28, 1, 1, 1)
    with torch.no_grad():
        grey = torch.rand(1, 1, 20, 20)
        torch.testing.assert_close(model(grey), model(grey.repeat(1, 3, 1, 1)))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(
    "name", ["rlfn", "rlfn_paper", "rlfn_s", "span", "span_tiny", "span_ca", "spanf", "efdn", "bicubic"]
)
def test_output_is_scale_times_odd_input(name: str, scale: int) -> None:
    # 45x67 at x4 as in the brief; smaller odd sizes (still >= 15, ESA's minimum) elsewhere.
    h, w = (45, 67) if scale == 4 else (17, 23)
    model = create_model(name, scale)
    with torch.no_grad():
        out = model(torch.rand(1, 3, h, w))
    assert out.shape == (1, 3, h * scale, w * scale)
    assert out.dtype == torch.float32


def test_efdn_clamps_and_span_does_not_denormalise() -> None:
    efdn = randomise_(create_model("efdn", 4))
    with torch.no_grad():
        out = efdn(torch.rand(1, 3, 20, 20))
    assert out.min() >= 0 and out.max() <= 1
    # A SPAN with zeroed weights except the upsampler bias outputs that bias: no mean added back.
    span = create_model("span", 2)
    with torch.no_grad():
        for p in span.parameters():
            p.zero_()
        span.upsampler[0].bias.fill_(0.25)
        assert torch.allclose(span(torch.rand(1, 3, 8, 8)), torch.full((1, 3, 16, 16), 0.25))


def test_input_ranges_registered() -> None:
    assert {get_entry(n).input_range for n in ("rlfn", "rlfn_paper", "rlfn_s")} == {255.0}
    assert {get_entry(n).input_range for n in ("span", "span_ca", "spanf", "efdn", "bicubic")} == {1.0}
    assert get_entry("span_ca").has_trained_weights is False


# ----------------------------------------------------------------------------- quality smoke


def _psnr_rgb(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    a = sr[border:-border, border:-border].astype(np.float64)
    b = hr[border:-border, border:-border].astype(np.float64)
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def _smoke_psnrs(model: nn.Module, input_range: float) -> list[float]:
    """architectures.md §1 protocol: mod-4 crop, PIL bicubic x1/4, RGB PSNR border 4."""
    import skimage.data

    values = []
    for image in ("astronaut", "chelsea", "coffee"):
        hr = getattr(skimage.data, image)()
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        lr = np.asarray(Image.fromarray(hr).resize((hr.shape[1] // 4, hr.shape[0] // 4), Image.BICUBIC))
        x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255.0 * input_range
        with torch.inference_mode():
            y = model(x) / input_range
        sr = (y[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
        values.append(round(_psnr_rgb(sr, hr), 2))
    return values


@pytest.mark.weights
@pytest.mark.parametrize(
    ("name", "file_name", "expected"),
    [
        ("span", "ntire2024_team38_span_ch28_slim_x4.pth", [28.39, 30.94, 27.85]),
        ("rlfn", "ntire2024_team00_rlfn_baseline_x4.pth", [28.67, 31.00, 27.96]),
        pytest.param("rlfn_paper", "bytedance_rlfn_x4.pth", [28.74, 31.05, 28.06], marks=pytest.mark.slow),
    ],
)
def test_quality_smoke_with_official_weights(
    official_weights, name: str, file_name: str, expected: list[float]
) -> None:
    path = official_weights / file_name
    if not path.is_file():
        pytest.skip(f"{file_name} not in SRBENCH_WEIGHTS_DIR")
    entry = get_entry(name)
    model = entry.build(4)
    load_weights(model, entry, read_checkpoint(path), source=str(path))
    assert _smoke_psnrs(model, entry.input_range) == expected


def test_bicubic_smoke_values() -> None:
    # No weights needed: pins MATLAB bicubic and the [0,1] convention (architectures.md §1).
    entry = get_entry("bicubic")
    assert _smoke_psnrs(entry.build(4), entry.input_range) == [25.34, 30.05, 25.80]
