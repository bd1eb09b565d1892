"""Complexity counters pinned to closed forms and to the NTIRE anchors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srbench.measure.counting import (
    count_activations,
    count_flops_dispatch,
    count_flops_fvcore,
    count_params,
    profile_model,
)
from srbench.models import create_model

X16 = torch.zeros(1, 16, 32, 32)


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(16, 16, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=1)


def test_conv_closed_form() -> None:
    # 3x3, 16->16 on 32x32: 9*16*16*1024 MACs, bias ignored; 16*1024 outputs per call.
    conv = nn.Conv2d(16, 16, 3, padding=1).eval()
    assert count_flops_fvcore(conv, X16)[0] == 2_359_296
    assert count_activations(conv, X16) == (16_384, 1)
    assert count_params(conv) == 16 * 16 * 9 + 16
    flops, convs = count_flops_dispatch(conv, X16)
    assert (flops, convs) == (2 * 2_359_296, 1)


def test_module_called_twice_counts_twice() -> None:
    m = _Twice().eval()
    assert count_activations(m, X16) == (32_768, 2)
    assert count_flops_fvcore(m, X16)[0] == 2 * 2_359_296


def test_functional_conv_is_reported_not_hidden() -> None:
    c = profile_model(_Functional().eval(), (1, 16, 32, 32))
    assert (c.activations, c.convs) == (0, 0)  # NTIRE definition: invisible to hooks
    assert c.flops == 2_359_296  # fvcore traces it
    assert c.functional_convs == 1


def test_transposed_conv_uses_input_size() -> None:
    # k4 s2 16->16 on 32x32: true MACs 4,194,304; hook counters that use the output size
    # overcount by stride^2 (16,777,216).
    m = nn.ConvTranspose2d(16, 16, 4, 2, 1).eval()
    assert count_flops_fvcore(m, X16)[0] == 4_194_304
    assert count_activations(m, X16) == (16 * 64 * 64, 1)


def test_unsupported_ops_are_listed() -> None:
    m = nn.Sequential(nn.Conv2d(16, 16, 1), nn.SiLU(), nn.PixelShuffle(2)).eval()
    _, unsupported = count_flops_fvcore(m, X16)
    assert set(unsupported) >= {"aten::silu", "aten::pixel_shuffle"}


def test_train_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        profile_model(nn.Conv2d(3, 3, 3).train())


# Published integers (ntire-harness.md §9, §12; architectures.md §3): weight-independent.
ANCHORS = {
    "rlfn": (317_218, 19_674_859_520, 80_045_184, 39),
    "span": (150_688, 9_833_807_872, 41_680_896, 22),
    "span_tiny": (130_828, 8_535_015_424, 38_928_384, 22),
    "span_ca": (151_080, 9_846_653_712, 41_681_302, 50),
    "spanf": (148_288, 9_681_502_208, 39_845_888, 18),
    "efdn": (276_192, 16_703_470_848, 111_116_736, 65),
}


@pytest.mark.parametrize("name", sorted(ANCHORS))
def test_ntire_anchors(name: str) -> None:
    c = profile_model(create_model(name, scale=4))
    assert (c.params, c.flops, c.activations, c.convs) == ANCHORS[name]
    assert c.functional_convs == 0


def test_flop_counter_mode_is_twice_the_conv_macs() -> None:
    # RLFN: fvcore = conv MACs 19,658,082,304 + 4 bilinear resizes (16,777,216);
    # FlopCounterMode counts 2 per conv MAC and nothing for the resizes.
    c = profile_model(create_model("rlfn", scale=4))
    assert c.flops_dispatch == 2 * 19_658_082_304
    assert c.flops - c.flops_dispatch // 2 == 16_777_216
