"""Bicubic upsampling as a zero-parameter model (the usual SR lower bound).

Uses srbench's MATLAB-compatible ``imresize`` (antialiasing cubic kernel, as MATLAB's
``imresize(..., 'bicubic')``), not ``F.interpolate``'s bicubic, so its PSNR matches the
figures papers quote for "Bicubic".

Conventions: RGB in [0, 1] in and out; the output is not clamped (MATLAB's double path).

:class:`BicubicPolyphase` is the same upsampling written as fixed convolutions: it is what
``srbench export`` writes for ``bicubic`` (``imresize`` builds its taps from Python integers,
so it cannot be traced with a dynamic height and width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srbench.data.imresize import _contributions, imresize
from srbench.models.registry import register_model
from srbench.models.sources import ALL_SCALES

#: Input offsets (relative to the source pixel) a x2/x3/x4 MATLAB bicubic tap can reach.
_OFFSETS = range(-2, 3)


class Bicubic(nn.Module):
    """Upsample by ``upscale`` with MATLAB bicubic; output dtype equals input dtype."""

    def __init__(self, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Imported here so that building the model does not depend on the benchmark package.

        return imresize(x, self.upscale).to(dtype=x.dtype, device=x.device)

    def export_module(self) -> BicubicPolyphase:
        """The exportable equivalent (see :class:`BicubicPolyphase`)."""
        return BicubicPolyphase(self.upscale)


def phase_taps(scale: int) -> torch.Tensor:
    """MATLAB bicubic weights of an integer ``scale`` upsampling, per output phase.

    Output pixel ``s·i + q`` (0-based, phase ``q``) is ``Σ_o taps[q, o + 2] · x[i + o]`` for
    offsets ``o`` in -2..2, with ``x`` mirrored at the borders as MATLAB does. The weights
    are read off :mod:`srbench.data.imresize`'s own contribution table at an interior pixel,
    so there is one definition of the kernel. Returns float64 ``(scale, 5)``.
    """

    length, centre = 16, 8  # any interior pixel: far enough from both borders
    idx, w = _contributions(length, length * scale, float(scale), True, torch.device("cpu"))
    taps = torch.zeros(scale, len(_OFFSETS), dtype=torch.float64)
    for q in range(scale):
        row = centre * scale + q
        for j, weight in zip(idx[row].tolist(), w[row].tolist()):
            taps[q, j - centre - _OFFSETS[0]] += weight
    return taps


class BicubicPolyphase(nn.Module):
    """MATLAB bicubic x``upscale`` (integer) as per-axis polyphase convolutions.

    Each axis: mirror 2 pixels at each border (repeating the edge pixel, as ``imresize``),
    one ``(scale, 1, 5, 1)`` convolution giving every output phase, then the phases
    interleaved. Rows first, then columns (MATLAB's order on a tie). Input ``(N, C, H, W)``
    with ``H, W >= 2``, any float dtype (computed in it); output ``(N, C, sH, sW)``.
    Equal to :class:`Bicubic` up to float rounding. The taps are a float64 buffer: cast the
    module (``.float()``) before exporting.
    """

    def __init__(self, upscale: int = 4) -> None:
        super().__init__()
        self.upscale = upscale
        self.register_buffer("taps", phase_taps(upscale).view(upscale, 1, -1, 1))

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1, H, W) -> (B, 1, s·H, W)
        x = torch.cat([x[:, :, :2].flip(2), x, x[:, :, -2:].flip(2)], dim=2)
        y = F.conv2d(x, self.taps.to(x.dtype))  # (B, s, H, W): one channel per phase
        b, s, h, w = y.shape
        return y.permute(0, 2, 1, 3).reshape(b, 1, h * s, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = self._rows(x.reshape(n * c, 1, h, w))
        y = self._rows(y.transpose(2, 3)).transpose(2, 3)
        return y.reshape(n, c, h * self.upscale, w * self.upscale)


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
