"""SPAN with CBAM-style channel attention (the seed repository's "SPAN-Updated").

From irfan38431/e-Swift-Parameter-free-Attention-Network-SPAN- at commit f4ebe67
(``updated_SPAN.py``): SPAN30 plus seven channel-attention modules ``ca1`` ... ``ca7``.
No trained weights exist for it anywhere. At C=28, x4 it has 151,080 parameters and the
NTIRE hook counter sees 50 conv calls (each CA runs ``fc1``/``fc2`` twice: avg and max).

Conventions: as SPAN, RGB in [0, 1] in and out; a 1-channel input is repeated to RGB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srbench.models.registry import register_model
from srbench.models.sources import ALL_SCALES
from srbench.models.span import SPAN, convert_span_full_to_fused


class ChannelAttention(nn.Module):
    """CBAM channel attention: ``x · sigmoid(MLP(avgpool x) + MLP(maxpool x))``.

    The shared MLP is two bias-free 1x1 ``nn.Conv2d`` (``fc1`` C→⌊C/reduction⌋, ReLU,
    ``fc2`` back to C); modules rather than functional calls so hook counters see both
    calls of each.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def _mlp(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self._mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self._mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)


class SPANCA(SPAN):
    """SPAN30 with channel attention after ``conv_1`` (ca1), blocks 1-5 (ca2-ca6) and
    ``conv_2`` (ca7); none after block 6. Keys are SPAN's plus ``caN.fc1/fc2.weight``.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 28,
        upscale: int = 4,
        *,
        deploy: bool = True,
        reduction: int = 16,
    ) -> None:
        super().__init__(num_in_ch, num_out_ch, feature_channels, upscale, deploy=deploy)
        for k in range(1, 8):
            self.add_module(f"ca{k}", ChannelAttention(feature_channels, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.in_channels == 3:
            x = x.repeat(1, 3, 1, 1)
        feature = self.ca1(self.conv_1(self.normalise(x)))
        out, _, _ = self.block_1(feature)
        b1 = self.ca2(out)
        out = b1
        for k in range(2, self.num_blocks):
            out, _, _ = getattr(self, f"block_{k}")(out)
            out = getattr(self, f"ca{k + 1}")(out)
        b6, b6_out1, _ = getattr(self, f"block_{self.num_blocks}")(out)
        cat = torch.cat([feature, self.ca7(self.conv_2(b6)), b1, b6_out1], dim=1)
        return self.upsampler(self.conv_cat(cat))


# ---------------------------------------------- registration


@register_model(
    "span_ca",
    scales=ALL_SCALES,
    input_range=1.0,
    description="SPAN ch28 + 7 CBAM channel-attention modules (seed 'SPAN-Updated'; no trained weights)",
    converter=convert_span_full_to_fused,
    has_trained_weights=False,
    tags=("conv", "reparameterised", "untrained"),
)
def _build_span_ca(scale: int = 4, deploy: bool = True, **kwargs: object) -> nn.Module:
    return SPANCA(3, 3, feature_channels=28, upscale=scale, deploy=deploy, **kwargs)
