"""Bicubic upsampling as a zero-parameter model (the usual SR lower bound).

Uses srbench's MATLAB-compatible ``imresize`` (antialiasing cubic kernel, as MATLAB's
``imresize(..., 'bicubic')``), not ``F.interpolate``'s bicubic, so its PSNR matches the
figures papers quote for "Bicubic".

Conventions: RGB in [0, 1] in and out; the output is not clamped (MATLAB's double path).
"""

from __future__ import annotations

import torch
from torch import nn


class Bicubic(nn.Module):
    """Upsample by ``upscale`` with MATLAB bicubic; output dtype equals input dtype."""

    def __init__(self, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Imported here so that building the model does not depend on the benchmark package.
        from srbench.data.imresize import imresize

        return imresize(x, self.upscale).to(dtype=x.dtype, device=x.device)
