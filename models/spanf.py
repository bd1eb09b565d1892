"""SPAN-F (XiaomiMM, NTIRE 2025 ESR team24): a five-block SPAN with a nearest-style path.

Differences from SPAN: no mean shift; a grouped 3x3 ``conv_near`` (3→3s², no bias) whose
output joins the concatenation; ``block_1`` maps 3→C with no attention and no residual;
``conv_2`` is a Conv3XC straight to 3s² channels followed by PixelShuffle (no separate
upsampler conv). Keys: ``conv_near``, ``block_{1..5}.c{1,2,3}_r.eval_conv``, ``conv_cat``,
``conv_2.eval_conv`` (35 tensors). Parameters ``128C² + 523C + 480`` at x4 (148,288 at C=32).

Conventions: RGB in [0, 1] in and out, no clamp.
"""

from __future__ import annotations

import torch
from torch import nn

from srbench.models.registry import WeightsSpec, register_model
from srbench.models.sources import ALL_SCALES, NTIRE2025
from srbench.models.span import Conv3XC, convert_span_full_to_fused


class SPABF(nn.Module):
    """SPAN-F block: SPAB returning one tensor; attention and residual only when the
    input and output widths agree (``block_1`` is a plain three-conv stack)."""

    def __init__(self, in_channels: int, out_channels: int, *, deploy: bool = True) -> None:
        super().__init__()
        self.gated = in_channels == out_channels
        self.c1_r = Conv3XC(in_channels, out_channels, 2, deploy=deploy)
        self.c2_r = Conv3XC(out_channels, out_channels, 2, deploy=deploy)
        self.c3_r = Conv3XC(out_channels, out_channels, 2, deploy=deploy)
        self.act1 = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out3 = self.c3_r(self.act1(self.c2_r(self.act1(self.c1_r(x)))))
        if not self.gated:
            return out3
        return (out3 + x) * (torch.sigmoid(out3) - 0.5)


class SPANF(nn.Module):
    """SPAN-F with ``feature_channels`` C and 5 blocks. Input and output in [0, 1]."""

    num_blocks = 5

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 32,
        upscale: int = 4,
        *,
        deploy: bool = True,
    ) -> None:
        super().__init__()
        c = feature_channels
        self.upscale = upscale
        near = num_in_ch * upscale**2
        self.conv_near = nn.Conv2d(num_in_ch, near, 3, padding=1, groups=num_in_ch, bias=False)
        self.block_1 = SPABF(num_in_ch, c, deploy=deploy)
        for k in range(2, self.num_blocks + 1):
            self.add_module(f"block_{k}", SPABF(c, c, deploy=deploy))
        self.conv_cat = nn.Conv2d(near + 2 * c, c, 1)
        # Upstream sizes conv_2 by the *input* channels times s² and pixel-shuffles it.
        self.conv_2 = Conv3XC(c, num_out_ch * upscale**2, 2, deploy=deploy)
        self.depth_to_space = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        near = self.conv_near(x)
        b1 = self.block_1(x)
        out = b1
        for k in range(2, self.num_blocks + 1):
            out = getattr(self, f"block_{k}")(out)
        out = self.conv_cat(torch.cat([near, out, b1], dim=1))
        return self.depth_to_space(self.conv_2(out))


# ---------------------------------------------- registration


@register_model(
    "spanf",
    scales=ALL_SCALES,
    input_range=1.0,
    description="SPAN-F ch32, 5 blocks (XiaomiMM, NTIRE 2025 team24); [0,1] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2025_team24_spanf_ch32_x4.pth",
            sha256="1508c566008654646bea1edff537c83dd7a6fe8f6ffda3f25f9eb7ba09cbbcd3",
            url=f"{NTIRE2025}/model_zoo/team24_spanf.pth",
            scale=4,
            size_bytes=606629,
            params=148288,
        ),
    ),
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)
def _build_spanf(scale: int = 4, deploy: bool = True, **kwargs: object) -> nn.Module:
    return SPANF(3, 3, feature_channels=32, upscale=scale, deploy=deploy, **kwargs)
