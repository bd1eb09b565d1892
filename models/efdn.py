"""EFDN: edge-enhanced feature distillation network, deployed form (NTIRE 2025 baseline).

The re-parameterised ("EDBB_deploy") form the NTIRE checkpoint uses: each edge-enhanced
diverse branch block is already folded into one 3x3 ``rep_conv``. Keys: ``head``,
``cells.{0..3}.{conv1.conv1x1, conv1.act, conv2.rep_conv, conv2.act, conv3.rep_conv,
conv3.act, fuse, att.*, branch.{0..3}}``, ``local_fuse.{0,1,2}``, ``tail.0`` (142 tensors,
276,192 parameters at 48 channels, x4).

Conventions: RGB in [0, 1]; the output is clamped to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srbench.models.registry import WeightsSpec, register_model
from srbench.models.sources import ALL_SCALES, NTIRE2025


class EfdnESA(nn.Module):
    """RFDN-style enhanced spatial attention at ``channels // 4`` width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        pooled = F.max_pool2d(self.conv2(c1_), kernel_size=7, stride=3)
        c3 = F.relu(self.conv3(F.relu(self.conv_max(pooled))))
        c3 = self.conv3_(c3)
        c3 = F.interpolate(c3, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class ConvPReLU(nn.Module):
    """A convolution followed by a per-channel PReLU, under a configurable conv name
    (``conv1x1`` for the 1x1 stage, ``rep_conv`` for the folded 3x3 EDBBs)."""

    def __init__(self, channels: int, kernel_size: int, conv_name: str) -> None:
        super().__init__()
        self.conv_name = conv_name
        self.add_module(conv_name, nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2))
        self.act = nn.PReLU(num_parameters=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(getattr(self, self.conv_name)(x))


class Cell(nn.Module):
    """EFDN cell: 1x1 → 3x3 → 3x3 chain, four 1x1 distillation branches (of x and the
    three stage outputs), a 1x1 fuse, ESA, and a residual."""

    def __init__(self, channels: int = 48) -> None:
        super().__init__()
        self.conv1 = ConvPReLU(channels, 1, "conv1x1")
        self.conv2 = ConvPReLU(channels, 3, "rep_conv")
        self.conv3 = ConvPReLU(channels, 3, "rep_conv")
        self.fuse = nn.Conv2d(channels * 2, channels, 1)
        self.att = EfdnESA(channels)
        self.branch = nn.ModuleList([nn.Conv2d(channels, channels // 2, 1) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(x)
        out2 = self.conv2(out1)
        out3 = self.conv3(out2)
        stages = (x, out1, out2, out3)
        distilled = torch.cat([branch(s) for branch, s in zip(self.branch, stages)], dim=1)
        return self.att(self.fuse(distilled)) + x


class EFDN(nn.Module):
    """EFDN with 4 cells at ``n_feats`` channels. Input in [0, 1], output clamped to [0, 1]."""

    def __init__(
        self, scale: int = 4, in_channels: int = 3, n_feats: int = 48, out_channels: int = 3
    ) -> None:
        super().__init__()
        self.upscale = scale
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.cells = nn.ModuleList([Cell(n_feats) for _ in range(4)])
        self.local_fuse = nn.ModuleList([nn.Conv2d(n_feats * 2, n_feats, 1) for _ in range(3)])
        self.tail = nn.Sequential(
            nn.Conv2d(n_feats, out_channels * scale**2, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        o1 = self.cells[0](head)
        o2 = self.cells[1](o1)
        f2 = self.local_fuse[0](torch.cat([o1, o2], dim=1))
        o3 = self.cells[2](f2)
        f3 = self.local_fuse[1](torch.cat([o2, o3], dim=1))
        o4 = self.cells[3](f3)
        # Upstream fuses o2 (not o3) with o4 here; kept as-is so the checkpoint reproduces.
        f4 = self.local_fuse[2](torch.cat([o2, o4], dim=1))
        return self.tail(f4 + head).clamp(0, 1)


# ---------------------------------------------- registration


@register_model(
    "efdn",
    scales=ALL_SCALES,
    input_range=1.0,
    description="EFDN deployed form, NTIRE 2025 ESR baseline (48 ch, 4 cells); [0,1] I/O, clamped",
    weights=(
        WeightsSpec(
            file_name="ntire2025_team00_efdn_baseline_x4.pth",
            sha256="71069f10ef234cd123f45ac8e69099f0a1fdc0c16afcfe2189e50071d47ce477",
            url=f"{NTIRE2025}/model_zoo/team00_EFDN.pth",
            scale=4,
            size_bytes=1153119,
            params=276192,
        ),
    ),
    tags=("conv", "ntire-baseline"),
)
def _build_efdn(scale: int = 4, **kwargs: object) -> nn.Module:
    return EFDN(scale=scale, **kwargs)
