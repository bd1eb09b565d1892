"""A run's device and the option combinations it can run: one line refusing each impossible one,
and the process-wide backend flags (seeds, determinism, cuDNN, TF32)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from srbench.backends.devices import apply_threads, check_dtype, parse_threads, resolve_device
from srbench.core.errors import SrbenchError
from srbench.results.config import BACKENDS, BROWSER_PROVIDERS, ORT_PROVIDERS, RunConfig


def run_device(config: RunConfig) -> torch.device:
    """The device a run's inputs live on and its forwards are timed on.

    ``--backend torch``: ``--device`` (:func:`resolve_device`). ``--backend onnxruntime``:
    the execution provider's device (CPU for ``cpu``, CUDA for ``cuda``/``tensorrt``); an
    explicit ``--device`` that contradicts the provider is refused.
    """
    if config.backend == "torch":
        return resolve_device(config.device)
    if config.backend not in BACKENDS:
        raise SrbenchError(f"--backend {config.backend!r} is not one of {', '.join(BACKENDS)}")
    if config.backend == "browser":
        # The browser runs the model in its own process; inputs and outputs live on the CPU.
        if config.device != "auto" and resolve_device(config.device).type != "cpu":
            raise SrbenchError(
                f"--device {config.device} with --backend browser: the browser picks its own device "
                "(--browser-provider); drop --device"
            )
        return torch.device("cpu")
    if config.ort_provider not in ORT_PROVIDERS:
        raise SrbenchError(f"--ort-provider {config.ort_provider!r} is not one of {', '.join(ORT_PROVIDERS)}")
    device = torch.device("cpu" if config.ort_provider == "cpu" else "cuda")
    if config.device != "auto":
        asked = resolve_device(config.device)
        if asked.type != device.type:
            raise SrbenchError(
                f"--device {config.device} contradicts --ort-provider {config.ort_provider} "
                f"(it runs on {device.type}); drop --device or choose another provider"
            )
        device = asked
    elif device.type == "cuda" and not torch.cuda.is_available():
        raise SrbenchError(
            f"--ort-provider {config.ort_provider} needs a CUDA device and none is available; "
            "use --ort-provider cpu"
        )
    return device


def check_config(config: RunConfig, device: torch.device) -> None:
    """Refuse option combinations that cannot run on ``device``, with one line each."""
    if config.backend != "torch":
        _check_ort_config(config)
    else:
        check_dtype(config.dtype, device)
    if device.type != "cuda":
        if config.cudnn_benchmark:
            raise SrbenchError("--cudnn-benchmark needs a CUDA device; drop it on CPU")
        if config.tf32 is not None:
            raise SrbenchError("--tf32 needs a CUDA device; drop it on CPU")
    if config.warmup < 0 or config.repeat < 1:
        raise SrbenchError("--warmup must be >= 0 and --repeat >= 1")
    parse_threads(config.threads)


def _check_ort_config(config: RunConfig) -> None:
    """Options that only mean something to PyTorch are refused with a deployment backend
    (``onnxruntime``, ``browser``)."""
    from srbench.backends.onnxruntime.session import check_provider
    from srbench.core.extras import EXTRA_PACKAGES, require

    for module in EXTRA_PACKAGES:
        require(module, purpose=f"--backend {config.backend}")
    torch_only = [
        ("--compile", config.compile),
        ("--channels-last", config.channels_last),
        ("--cudnn-benchmark", config.cudnn_benchmark),
        ("--tf32", config.tf32 is not None),
        ("--deterministic", config.deterministic),
    ]
    for flag, given in torch_only:
        if given:
            raise SrbenchError(
                f"{flag} applies to --backend torch only; drop it with --backend {config.backend}"
            )
    if config.backend == "browser":
        _check_browser_config(config)
    else:
        check_provider(config.ort_provider, config.dtype)


def _check_browser_config(config: RunConfig) -> None:
    """``--backend browser``: fp32, untiled, and Chromium, Playwright and ORT-Web installed
    (else one line naming what is missing and the exact install command)."""
    from srbench.backends.browser.backend import check_browser_ready

    if config.browser_provider not in BROWSER_PROVIDERS:
        raise SrbenchError(
            f"--browser-provider {config.browser_provider!r} is not one of {', '.join(BROWSER_PROVIDERS)}"
        )
    if config.dtype != "fp32":
        raise SrbenchError(
            f"--dtype {config.dtype} with --backend browser: the browser runs fp32; drop --dtype"
        )
    if config.tile is not None:
        raise SrbenchError("--tile with --backend browser: the browser runs whole images; drop --tile")
    if config.browser_threads is not None and config.browser_threads < 1:
        raise SrbenchError("--browser-threads must be >= 1")
    check_browser_ready(config.browser_provider)


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
