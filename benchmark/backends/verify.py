"""A quick numerical check of an exported file against the PyTorch model it came from."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from srbench.backends.onnx_export import ExportMetadata, deployed_module
from srbench.backends.onnxruntime.session import OrtBackend


def verify_against_torch(path: Path, model: nn.Module, meta: ExportMetadata, *, side: int = 64) -> float:
    """Max |ONNX Runtime (CPU) − PyTorch| on a fixed random ``1×3×side×side`` input.

    In the model's own output units (``[0, input_range]``), fp32 on the CPU (fp32 files only:
    the CPU provider runs no fp16).
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, side, side, generator=generator) * meta.input_range
    backend = OrtBackend(path, provider="cpu", dtype="fp32", scale=meta.scale)
    with torch.inference_mode():
        ref = deployed_module(model, torch.float32)(x).float()
        out = backend(x.contiguous())
    return float((out - ref).abs().max())
