"""Devices: resolving ``--device``, refusing impossible combinations, process-wide backend flags."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from srbench.errors import SrbenchError
from srbench.execution.config import DTYPES, RunConfig


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


def check_config(config: RunConfig, device: torch.device) -> None:
    """Refuse option combinations that cannot run on ``device``, with one line each."""
    check_dtype(config.dtype, device)
    if device.type != "cuda":
        if config.cudnn_benchmark:
            raise SrbenchError("--cudnn-benchmark needs a CUDA device; drop it on CPU")
        if config.tf32 is not None:
            raise SrbenchError("--tf32 needs a CUDA device; drop it on CPU")
    if config.warmup < 0 or config.repeat < 1:
        raise SrbenchError("--warmup must be >= 0 and --repeat >= 1")


def apply_backend_settings(config: RunConfig, device: torch.device) -> None:
    """Seeds, determinism, cuDNN benchmark and TF32 flags as configured (process-wide)."""
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        if config.tf32 is not None:
            on = config.tf32 == "on"
            torch.backends.cuda.matmul.allow_tf32 = on
            torch.backends.cudnn.allow_tf32 = on
