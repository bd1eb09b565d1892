"""RLFN: residual local feature network (bytedance/RLFN; NTIRE 2022 ESR winner).

One class covers the three published configurations: ``RLFN_Prune`` (the NTIRE 2022-2024
baseline, F=46, M=48, 4 blocks), the paper's RLFN (F=M=52, 6 blocks) and RLFN-S (F=M=48,
6 blocks). Module names follow the upstream state dicts (``conv_1``, ``block_k.c1_r``,
``block_k.esa.conv1``, ``conv_2``, ``upsampler.0``) so official checkpoints load strictly.

Conventions: input and output are RGB in **[0, 255]**; there is no mean shift and no clamp.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from srbench.models.registry import WeightsSpec, register_model
from srbench.models.sources import ALL_SCALES, BYTEDANCE, NTIRE2024


class ESA(nn.Module):
    """Enhanced spatial attention, the RLFN variant (no ``conv_max``/``conv3_``).

    Every convolution is an ``nn.Conv2d`` module so that module-hook complexity counters
    (the NTIRE ``get_model_activation``) see all of them.
    """

    def __init__(self, esa_channels: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, esa_channels, 1)
        self.conv_f = nn.Conv2d(esa_channels, esa_channels, 1)
        # Stride 2 with no padding: the upstream reduction step, kept exactly.
        self.conv2 = nn.Conv2d(esa_channels, esa_channels, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(esa_channels, esa_channels, 3, padding=1)
        self.conv4 = nn.Conv2d(esa_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        pooled = F.max_pool2d(c1, kernel_size=7, stride=3)
        c3 = self.conv3(pooled)
        c3 = F.interpolate(c3, size=x.shape[-2:], mode="bilinear", align_corners=False)
        mask = torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))
        return x * mask


class RLFB(nn.Module):
    """Residual local feature block: three 3x3 convs with a residual, a 1x1, then ESA."""

    def __init__(self, channels: int, mid_channels: int, esa_channels: int = 16) -> None:
        super().__init__()
        self.c1_r = nn.Conv2d(channels, mid_channels, 3, padding=1)
        self.c2_r = nn.Conv2d(mid_channels, mid_channels, 3, padding=1)
        self.c3_r = nn.Conv2d(mid_channels, channels, 3, padding=1)
        self.c5 = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(esa_channels, channels)
        # One activation module shared by the three convs, as upstream.
        self.act = nn.LeakyReLU(negative_slope=0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """RLFN with ``feature_channels`` F, ``mid_channels`` M and ``num_blocks`` N RLFBs.

    Parameter count (RGB, ESA width E=16, scale s):
    ``28F + N(18FM + 9M² + 2M + F² + 3F + 2EF + 19E² + 4E) + 9F² + F + 27s²F + 3s²``.

    Input and output are in [0, 255].
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        feature_channels: int = 46,
        mid_channels: int = 48,
        num_blocks: int = 4,
        esa_channels: int = 16,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.upscale = upscale
        self.conv_1 = nn.Conv2d(in_channels, feature_channels, 3, padding=1)
        self.num_blocks = num_blocks
        for k in range(1, num_blocks + 1):
            self.add_module(f"block_{k}", RLFB(feature_channels, mid_channels, esa_channels))
        self.conv_2 = nn.Conv2d(feature_channels, feature_channels, 3, padding=1)
        self.upsampler = nn.Sequential(
            nn.Conv2d(feature_channels, out_channels * upscale**2, 3, padding=1),
            nn.PixelShuffle(upscale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.conv_1(x)
        out = feature
        for k in range(1, self.num_blocks + 1):
            out = getattr(self, f"block_{k}")(out)
        return self.upsampler(self.conv_2(out) + feature)


# ---------------------------------------------- checkpoint conversion and registrations

_RLFN_2022 = (
    (re.compile(r"^fea_conv\."), "conv_1."),
    (re.compile(r"^B(\d+)\."), r"block_\1."),
    (re.compile(r"^LR_conv\."), "conv_2."),
)


def rename_rlfn_ntire2022_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the NTIRE 2022 RLFN names (``fea_conv``, ``B1``…``B4``, ``LR_conv``) to the
    current ones (``conv_1``, ``block_1``…, ``conv_2``); other keys pass unchanged."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for pattern, replacement in _RLFN_2022:
            key = pattern.sub(replacement, key, count=1)
        out[key] = value
    return out


@register_model(
    "rlfn",
    scales=ALL_SCALES,
    input_range=255.0,
    description="RLFN_Prune, NTIRE 2022-24 ESR baseline (F=46, M=48, 4 RLFB); [0,255] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2024_team00_rlfn_baseline_x4.pth",
            sha256="3c9be7b9d7a4bece9b68c83a56a1ffb38010f76413d5f215be6b4be842e18fb2",
            url=f"{NTIRE2024}/model_zoo/team00_rlfn.pth",
            scale=4,
            size_bytes=1294011,
            params=317218,
        ),
    ),
    converter=rename_rlfn_ntire2022_keys,
    tags=("conv", "ntire-baseline"),
)
def _build_rlfn(scale: int = 4, **kwargs: object) -> nn.Module:
    return RLFN(feature_channels=46, mid_channels=48, num_blocks=4, upscale=scale, **kwargs)


@register_model(
    "rlfn_paper",
    scales=ALL_SCALES,
    input_range=255.0,
    description="RLFN from the paper (F=M=52, 6 RLFB); [0,255] I/O",
    weights=(
        WeightsSpec(
            file_name="bytedance_rlfn_x2.pth",
            sha256="eafe5d5feeb122022453595c06d79160facdc157ae88deb02a44c50f5eba2d41",
            url=f"{BYTEDANCE}/model_zoo/rlfn_x2.pth",
            scale=2,
            size_bytes=2145309,
            params=526856,
        ),
        WeightsSpec(
            file_name="bytedance_rlfn_x4.pth",
            sha256="8c7edb57dfc89048bafba29d591d4c27d4099964b4a9e22df23d6dc257a637c0",
            url=f"{BYTEDANCE}/model_zoo/rlfn_x4.pth",
            scale=4,
            size_bytes=2212893,
            params=543740,
        ),
    ),
    converter=rename_rlfn_ntire2022_keys,
    tags=("conv",),
)
def _build_rlfn_paper(scale: int = 4, **kwargs: object) -> nn.Module:
    return RLFN(feature_channels=52, mid_channels=52, num_blocks=6, upscale=scale, **kwargs)


@register_model(
    "rlfn_s",
    scales=ALL_SCALES,
    input_range=255.0,
    description="RLFN-S from the paper (F=M=48, 6 RLFB); [0,255] I/O",
    weights=(
        WeightsSpec(
            file_name="bytedance_rlfn_s_x2.pth",
            sha256="f5175f499f869c1b884c2552a1bcd6abd07ab352e3d8c8c9abe31b1deb60fe45",
            url=f"{BYTEDANCE}/model_zoo/rlfn_s_x2.pth",
            scale=2,
            size_bytes=1855005,
            params=454620,
        ),
        WeightsSpec(
            file_name="bytedance_rlfn_s_x4.pth",
            sha256="f769c5a88433786b2db0c2b24da6ca6c92a24c62344b9354a390f8a74388e89d",
            url=f"{BYTEDANCE}/model_zoo/rlfn_s_x4.pth",
            scale=4,
            size_bytes=1919005,
            params=470208,
        ),
    ),
    converter=rename_rlfn_ntire2022_keys,
    tags=("conv",),
)
def _build_rlfn_s(scale: int = 4, **kwargs: object) -> nn.Module:
    return RLFN(feature_channels=48, mid_channels=48, num_blocks=6, upscale=scale, **kwargs)
