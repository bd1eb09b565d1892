"""``--backend onnxruntime``: srbench's ONNX export of the model in an ONNX Runtime session on
``--ort-provider`` (see :mod:`srbench.backends.onnxruntime.session` for what is timed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from srbench.backends.base import Backend, PlaceRequest, RunOptions, refuse_torch_only_flags
from srbench.backends.devices import resolve_device
from srbench.backends.onnx_export import export_environment
from srbench.backends.onnxruntime.session import (
    PROVIDERS,
    Deployment,
    DeviceUsedMemory,
    OrtModel,
    check_provider,
    deploy,
    max_lr_hw,
    place,
)
from srbench.core.errors import SrbenchError
from srbench.core.extras import EXTRA_PACKAGES, require
from srbench.measure.memory import SessionRssGrowth


class OnnxRuntime(Backend):
    """ONNX Runtime on ``--ort-provider`` (``cpu``, ``cuda``, ``tensorrt``)."""

    name = "onnxruntime"
    exported = True
    timed_call = "session.run"

    def device(self, options: RunOptions) -> torch.device:
        """The provider's device (CPU for ``cpu``, CUDA for ``cuda``/``tensorrt``); an explicit
        ``--device`` that contradicts the provider is refused."""
        provider = options.ort_provider  # type: ignore[attr-defined]
        if provider not in PROVIDERS:
            raise SrbenchError(f"--ort-provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        device = torch.device("cpu" if provider == "cpu" else "cuda")
        if options.device != "auto":
            asked = resolve_device(options.device)
            if asked.type != device.type:
                raise SrbenchError(
                    f"--device {options.device} contradicts --ort-provider {provider} "
                    f"(it runs on {device.type}); drop --device or choose another provider"
                )
            return asked
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SrbenchError(
                f"--ort-provider {provider} needs a CUDA device and none is available; use --ort-provider cpu"
            )
        return device

    def check(self, options: RunOptions, device: torch.device) -> None:
        for module in EXTRA_PACKAGES:
            require(module, purpose=f"--backend {options.backend}")
        refuse_torch_only_flags(options)
        check_provider(options.ort_provider, options.dtype)  # type: ignore[attr-defined]

    def memory_meter(self, options: RunOptions, device: torch.device) -> DeviceUsedMemory | SessionRssGrowth:
        """The device's used-memory delta on a GPU (PyTorch's counters cannot see ORT's arena),
        else the process's peak-RSS growth over the session's life (the arena keeps what it
        allocates, so a pass after warm-up would see nothing); both start before the session."""
        return DeviceUsedMemory(device) if device.type == "cuda" else SessionRssGrowth()

    def deploy(self, model: nn.Module, metadata: Any) -> Deployment:
        return deploy(model, metadata)

    def place(self, request: PlaceRequest, options: RunOptions) -> OrtModel:
        """The session on ``--ort-provider``. Its input dtype: fp32 for a precision variant
        (fp16 and int8 files keep fp32 input and output), a user's file's own, else ``--dtype``."""
        provider = options.ort_provider  # type: ignore[attr-defined]
        deployment: Deployment = request.deployment
        if deployment.variant is not None:
            dtype, max_hw = "fp32", None
        else:
            dtype = deployment.input_dtype or options.dtype
            max_hw = max_lr_hw(request.lr_shapes) if provider == "tensorrt" else None
        return place(
            deployment,
            provider=provider,
            dtype=dtype,
            scale=request.scale,
            input_range=request.input_range,
            device=request.device,
            max_hw=max_hw,
        )

    def provider(self, config: Mapping[str, Any]) -> str | None:
        return config.get("ort_provider", "cpu")

    def default_provider(self) -> str | None:
        return "cpu"

    def environment(self) -> dict[str, Any]:
        return export_environment()
