"""A run's device and the option combinations it can run: one line refusing each impossible one,
and the process-wide backend flags (seeds, determinism, cuDNN, TF32)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from srbench.backends.devices import apply_threads, parse_threads
from srbench.backends.registry import get_backend
from srbench.core.errors import SrbenchError
from srbench.results.config import RunConfig


def run_device(config: RunConfig) -> torch.device:
    """The device a run's inputs live on and its forwards are timed on: the backend's
    (:meth:`srbench.backends.base.Backend.device`)."""
    return get_backend(config.backend).device(config)


def check_config(config: RunConfig, device: torch.device) -> None:
    """Refuse option combinations that cannot run on ``device``, with one line each: the
    backend's own (:meth:`srbench.backends.base.Backend.check`), then the run's."""
    get_backend(config.backend).check(config, device)
    if device.type != "cuda":
        if config.cudnn_benchmark:
            raise SrbenchError("--cudnn-benchmark needs a CUDA device; drop it on CPU")
        if config.tf32 is not None:
            raise SrbenchError("--tf32 needs a CUDA device; drop it on CPU")
    if config.warmup < 0 or config.repeat < 1:
        raise SrbenchError("--warmup must be >= 0 and --repeat >= 1")
    parse_threads(config.threads)


def apply_backend_settings(config: RunConfig, device: torch.device) -> None:
    """Threads, seeds, determinism, cuDNN benchmark and TF32 flags as configured (process-wide)."""
    apply_threads(config.threads)
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
