"""FDAT and GRLA: exact parameter counts, checkpoint layout, odd sizes and O(N) attention.

Counts are pinned to architectures.md §6 (FDAT) and to the documented GRLA reading
(docs/grla.md). The GRBF linear attention is checked against a second, naive O(N²)
implementation of the same formula with explicit sums over keys.
"""

from __future__ import annotations

import io
import itertools
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from srbench.core.errors import SrbenchError
from srbench.models import create_model, get_entry
from srbench.models.fdat import build_fdat
from srbench.models.grla import GRLA, GRBFLinearAttention, WindowAttention, grbf_linear_attention


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _count_on_meta(preset: str, scale: int, upsampler: str) -> int:
    # The meta device skips weight initialisation, so even fdat_xl counts in well under 1 s.
    with torch.device("meta"):
        return _count(build_fdat(preset, scale=scale, upsampler_type=upsampler))


# --- FDAT ------------------------------------------------------------------------------

# (preset, pixelshuffle, pixelshuffledirect, transpose+conv) at ×4: architectures.md §6.
_FDAT_X4 = [
    ("fdat_tiny", 1_209_615, 898_620, 1_009_347),
    ("fdat_light", 2_076_891, 1_764_168, 1_909_467),
    ("fdat_medium", 4_160_595, 3_846_144, 4_030_623),
    ("fdat_large", 10_995_171, 10_672_080, 11_121_579),
    ("fdat_xl", 22_992_411, 22_669_320, 23_118_819),
]
# nearest+conv at ×4 = body + 27C² + 30C + 3 (three C→C 3×3 convs and the C→3 conv).
_FDAT_NEAREST_X4 = {
    "fdat_tiny": 1_108_815,
    "fdat_light": 2_035_635,
    "fdat_medium": 4_186_659,
    "fdat_large": 11_474_475,
    "fdat_xl": 23_471_715,
}
# (embed C, groups G, dpg, heads h, hd) per preset, window 8, AIM ratio 8.
_FDAT_HYPER = {
    "fdat_tiny": (96, 2, 2, 3, 144),
    "fdat_light": (108, 3, 2, 4, 216),
    "fdat_medium": (120, 4, 3, 4, 240),
    "fdat_large": (180, 4, 4, 6, 360),
    "fdat_xl": (180, 6, 6, 6, 360),
}


def _fdat_formula(preset: str, scale: int, upsampler: str) -> int:
    """The §6 closed form, extended to ×2/×3 from the upsampler layer lists."""
    c, g, dpg, h, hd = _FDAT_HYPER[preset]
    w, a = 8, 8
    spatial = 4 * c * c + 2 * c * (c // a) + 2 * c * hd + 9 * hd + 15 * c + h * w**4
    channel = spatial - h * w**4 + h
    body = g * (dpg * (spatial + channel) + 9 * c * c) + 28 * c + 9 * c * c
    mid = 64
    if upsampler == "pixelshuffle":
        stages = [4] * int(math.log2(scale)) if scale in (2, 4) else [9]
        up = 9 * c * mid + mid + sum(9 * mid * f * mid + f * mid for f in stages) + 9 * mid * 3 + 3
    elif upsampler == "pixelshuffledirect":
        up = 9 * c * 3 * scale**2 + 3 * scale**2
    elif upsampler == "transpose+conv":
        k = {2: 16, 3: 9}
        up = (k[scale] * c * 3 + 3) if scale in k else (16 * c * c + c + 16 * c * 3 + 3)
        up += 9 * 3 * 3 + 3
    else:  # nearest+conv
        n_mid = 3 if scale == 4 else 2
        up = n_mid * (9 * c * c + c) + 9 * c * 3 + 3
    return body + up


@pytest.mark.parametrize(("preset", "pixelshuffle", "direct", "transpose"), _FDAT_X4)
def test_fdat_x4_counts_match_reference(preset: str, pixelshuffle: int, direct: int, transpose: int) -> None:
    assert _count_on_meta(preset, 4, "pixelshuffle") == pixelshuffle
    assert _count_on_meta(preset, 4, "pixelshuffledirect") == direct
    assert _count_on_meta(preset, 4, "transpose+conv") == transpose
    assert _count_on_meta(preset, 4, "nearest+conv") == _FDAT_NEAREST_X4[preset]


@pytest.mark.parametrize(
    "upsampler", ["pixelshuffle", "pixelshuffledirect", "transpose+conv", "nearest+conv"]
)
@pytest.mark.parametrize("scale", [2, 3])
def test_fdat_counts_follow_closed_form(upsampler: str, scale: int) -> None:
    # ×4 is pinned to the reference above; ×2/×3 change only the upsampler's layer list.
    assert _count_on_meta("fdat_tiny", scale, upsampler) == _fdat_formula("fdat_tiny", scale, upsampler)


def _upstream_fdat_tiny_keys() -> dict[str, tuple[int, ...]]:
    """fdat_tiny ×4 pixelshuffle key → shape, written out from the §6 key list."""
    c, hd, h = 96, 144, 3
    keys: dict[str, tuple[int, ...]] = {"conv_first.weight": (c, 3, 3, 3), "conv_first.bias": (c,)}
    for g in range(2):
        for b in range(4):
            p = f"groups.{g}.blocks.{b}."
            for n in ("n1", "n2"):
                keys[p + n + ".weight"] = (c,)
                keys[p + n + ".bias"] = (c,)
            keys[p + "attn.qkv.weight"] = (3 * c, c)
            keys[p + "attn.proj.weight"] = (c, c)
            keys[p + "attn.proj.bias"] = (c,)
            if b % 2 == 0:
                keys[p + "attn.bias"] = (h, 64, 64)
            else:
                keys[p + "attn.temp"] = (h, 1, 1)
            keys[p + "conv.0.weight"] = (c, 1, 3, 3)
            keys[p + "inter.sg.0.weight"] = (1, c, 1, 1)
            keys[p + "inter.cg.1.weight"] = (c // 8, c, 1, 1)
            keys[p + "inter.cg.3.weight"] = (c, c // 8, 1, 1)
            keys[p + "ffn.fc1.weight"] = (hd, c)
            keys[p + "ffn.smix.weight"] = (hd, 1, 3, 3)
            keys[p + "ffn.fc2.weight"] = (c, hd)
        keys[f"groups.{g}.conv.weight"] = (c, c, 3, 3)
    keys["conv_after.weight"] = (c, c, 3, 3)
    for i, (co, ci) in {0: (64, c), 2: (256, 64), 4: (256, 64), 6: (3, 64)}.items():
        keys[f"upsampler.{i}.weight"] = (co, ci, 3, 3)
        keys[f"upsampler.{i}.bias"] = (co,)
    keys["upsampler.MetaUpsample"] = (7,)
    return keys


def test_fdat_state_dict_has_upstream_keys_and_shapes() -> None:
    sd = build_fdat("fdat_tiny", 4).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == _upstream_fdat_tiny_keys()


@pytest.mark.parametrize(
    ("upsampler", "scale", "mode_index"),
    [("pixelshuffle", 4, 2), ("pixelshuffledirect", 3, 1), ("nearest+conv", 2, 3), ("transpose+conv", 4, 5)],
)
def test_fdat_meta_upsample_buffer(upsampler: str, scale: int, mode_index: int) -> None:
    sd = build_fdat("fdat_tiny", scale, upsampler).state_dict()
    meta = sd["upsampler.MetaUpsample"]
    assert meta.dtype == torch.uint8
    assert meta.tolist() == [3, mode_index, scale, 96, 3, 64, 4]


def test_fdat_strict_round_trip_and_odd_size() -> None:
    torch.manual_seed(0)
    src = build_fdat("fdat_tiny", 4).eval()
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    dst = build_fdat("fdat_tiny", 4).eval()
    dst.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    assert all(torch.equal(src_sd[k], dst_sd[k]) for k in src_sd)
    with torch.no_grad():
        y = dst(torch.rand(1, 3, 45, 67))
    assert y.shape == (1, 3, 180, 268)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("scale", [2, 3])
def test_fdat_other_scales_odd_size(scale: int) -> None:
    model = create_model("fdat_tiny", scale)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 45, 67))
    assert y.shape == (1, 3, 45 * scale, 67 * scale)


def test_fdat_bad_upsampler_raises() -> None:
    with pytest.raises(SrbenchError, match="upsampler_type 'dysample'"):
        create_model("fdat_tiny", 4, upsampler_type="dysample")
    with pytest.raises(SrbenchError, match="upsampler_type"):
        create_model("fdat_tiny", 4, upsampler_type="bilinear")


# --- GRLA ------------------------------------------------------------------------------

# The tail conv 55→3s² costs 55·9·3s² + 3s², so ×4−×2 = 17,856 and ×4−×3 = 10,416: the
# paper's 885K−867K and 885K−874K.
_GRLA = {2: 867_153, 3: 874_593, 4: 885_009}


@pytest.mark.parametrize(("scale", "expected"), sorted(_GRLA.items()))
def test_grla_counts(scale: int, expected: int) -> None:
    with torch.device("meta"):
        model = GRLA(scale)
    assert _count(model) == expected
    # Truncated to thousands these are the paper's Table 3 figures.
    assert expected // 1000 == {2: 867, 3: 874, 4: 885}[scale]


def test_grla_aggregation_is_61k() -> None:
    with torch.device("meta"):
        model = GRLA(4)
    # Five 1×1 convs fusing 2..6 MPB outputs: 55²·(2+3+4+5+6) + 5·55 (paper Table 7: +61K).
    assert _count(model.aggregate) == 55 * 55 * 20 + 5 * 55 == 60_775


def test_grla_strict_round_trip_and_odd_size() -> None:
    torch.manual_seed(0)
    src = create_model("grla", 4)
    dst = create_model("grla", 4)
    dst.load_state_dict(src.state_dict(), strict=True)
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    assert all(torch.equal(src_sd[k], dst_sd[k]) for k in src_sd)
    with torch.no_grad():
        y = dst(torch.rand(1, 3, 45, 67))
    assert y.shape == (1, 3, 180, 268)
    assert torch.isfinite(y).all()


def test_window_attention_masks_padding() -> None:
    # A 17×17 map pads to 32×32. Column 16 (rows 0..15) shares its window with padding
    # only, so its output must equal attending over that 16×1 strip alone: padded pixels
    # never act as keys (with a qkv bias, unmasked zero pixels would change the result).
    torch.manual_seed(0)
    attn = WindowAttention(dim=10, window_size=16, num_heads=2).eval()
    x = torch.randn(1, 17, 17, 10)
    with torch.no_grad():
        full = attn(x)
        strip = attn(x[:, :16, 16:17].contiguous())
        corner = attn(x[:, :16, :16].contiguous())
    assert full.shape == x.shape
    torch.testing.assert_close(full[:, :16, 16:17], strip, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(full[:, :16, :16], corner, rtol=1e-5, atol=1e-6)


def _naive_grbf(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: float) -> torch.Tensor:
    """αᵢ = Σⱼ wᵢⱼVⱼ / Σⱼ wᵢⱼ, wᵢⱼ = exp(−γ‖Kⱼ‖²)(1 + 2γ Q̂ᵢ·K̂ⱼ), with explicit loops over j."""
    out = torch.zeros_like(v)
    n = q.shape[-2]
    for i in range(n):
        qi = q[..., i, :] / q[..., i, :].norm(dim=-1, keepdim=True)
        num = torch.zeros_like(v[..., 0, :])
        den = torch.zeros_like(v[..., 0, :1])
        for j in range(n):
            kj = k[..., j, :]
            phi = torch.exp(-gamma * (kj * kj).sum(dim=-1, keepdim=True))
            cos = (qi * kj / kj.norm(dim=-1, keepdim=True)).sum(dim=-1, keepdim=True)
            w = phi * (1.0 + 2.0 * gamma * cos)
            num = num + w * v[..., j, :]
            den = den + w
        out[..., i, :] = num / den
    return out


def test_grbf_linear_attention_matches_naive_quadratic() -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 24, 4, dtype=torch.float64) for _ in range(3))
    k = k * 1.5  # spread ‖K‖ so φ varies strongly between tokens
    fast = grbf_linear_attention(q, k, v, gamma=0.5)
    ref = _naive_grbf(q, k, v, gamma=0.5)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


class _LargestOutput(TorchDispatchMode):
    """Records the largest numel of any tensor produced by an aten op."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _largest_and_flops(fn, x: torch.Tensor) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        with _LargestOutput() as rec:
            fn(x)
        with FlopCounterMode(display=False) as flops:
            fn(x)
    return rec.largest, flops.get_total_flops()


def test_grbf_attention_memory_and_flops_are_linear_in_pixels() -> None:
    torch.manual_seed(0)
    module = GRBFLinearAttention(dim=55, num_heads=11).eval()
    sizes = [64, 128, 256]
    stats = [_largest_and_flops(module, torch.randn(1, s * s, 55)) for s in sizes]
    for (mem_a, flop_a), (mem_b, flop_b) in itertools.pairwise(stats):
        # Doubling the side quadruples N: linear cost grows 4×, an N×N map would grow 16×.
        assert 3.9 <= mem_b / mem_a <= 4.1
        assert 3.9 <= flop_b / flop_a <= 4.1


def test_quadratic_control_is_detected() -> None:
    # The same probes on materialised softmax attention grow 16×, so the test above can fail.
    def full_attention(x: torch.Tensor) -> torch.Tensor:
        return (x @ x.transpose(-2, -1)).softmax(dim=-1) @ x

    (mem_a, flop_a), (mem_b, flop_b) = (
        _largest_and_flops(full_attention, torch.randn(1, s * s, 8)) for s in (16, 32)
    )
    assert mem_b / mem_a == pytest.approx(16.0)
    assert flop_b / flop_a == pytest.approx(16.0)


@pytest.mark.parametrize("scale", [2, 3])
def test_grla_other_scales_odd_size(scale: int) -> None:
    model = create_model("grla", scale)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 21, 19))
    assert y.shape == (1, 3, 21 * scale, 19 * scale)


# --- registry --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fdat_tiny", "fdat_light", "fdat_medium", "fdat_large", "fdat_xl", "grla"])
def test_registry_entries(name: str) -> None:
    entry = get_entry(name)
    assert entry.scales == (2, 3, 4)
    assert entry.input_range == 1.0
    assert entry.has_trained_weights is False
    assert entry.weights == ()
    assert entry.tags == ("attention",)


def test_registry_fdat_upsampler_kwarg() -> None:
    with torch.device("meta"):
        model = create_model("fdat_medium", 4, upsampler_type="transpose+conv")
    assert _count(model) == 4_030_623
