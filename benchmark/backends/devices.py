"""Devices and dtypes: resolving ``--device`` and refusing a ``--dtype`` a device cannot run."""

from __future__ import annotations

import torch

from srbench.core.errors import SrbenchError

#: ``--dtype`` values and the torch dtype each one names.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; refuse CUDA where there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SrbenchError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SrbenchError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SrbenchError(f"--device {name}: only cpu and cuda are supported")
    return device


def check_dtype(dtype: str, device: torch.device) -> None:
    """Refuse a ``--dtype`` that is unknown or cannot run on ``device``."""
    if dtype not in DTYPES:
        raise SrbenchError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device.type != "cuda" and dtype == "fp16":
        raise SrbenchError("--dtype fp16 needs a CUDA device; use --dtype bf16 or fp32 on CPU")
