"""Bicubic upsampling as a zero-parameter model (the usual SR lower bound).

Uses srbench's MATLAB-compatible ``imresize`` (antialiasing cubic kernel, as MATLAB's
``imresize(..., 'bicubic')``), not ``F.interpolate``'s bicubic, so its PSNR matches the
figures papers quote for "Bicubic".

Conventions: RGB in [0, 1] in and out; the output is not clamped (MATLAB's double path).
"""

from __future__ import annotations

import torch
from torch import nn

from srbench.models.registry import register_model
from srbench.models.sources import ALL_SCALES


class Bicubic(nn.Module):
    """Upsample by ``upscale`` with MATLAB bicubic; output dtype equals input dtype."""

    def __init__(self, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Imported here so that building the model does not depend on the benchmark package.
        from srbench.data.imresize import imresize

        return imresize(x, self.upscale).to(dtype=x.dtype, device=x.device)


# ---------------------------------------------- registration


@register_model(
    "bicubic",
    scales=ALL_SCALES,
    input_range=1.0,
    description="MATLAB-style bicubic upsampling (zero parameters; the quality floor)",
    tags=("conv", "parameter-free"),
)
def _build_bicubic(scale: int = 4) -> nn.Module:
    return Bicubic(upscale=scale)
