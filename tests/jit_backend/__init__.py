"""A backend defined outside srbench: the model traced with ``torch.jit.trace`` and run as
TorchScript. It exists to show (tests/test_backends.py) that a backend is this one folder plus
one ``register_backend`` line, with no edit anywhere else."""

from __future__ import annotations

import numpy as np
import torch

from srbench.backends.base import Backend, PlacedModel, PlaceRequest, RunOptions
from srbench.backends.devices import resolve_device
from srbench.backends.pytorch import to_model_input
from srbench.core.errors import SrbenchError
from srbench.measure.memory import ForwardMemory, resident_tensors


class Traced(PlacedModel):
    """The traced module on the CPU, fp32."""

    def __init__(self, module: torch.jit.ScriptModule, input_range: float, device: torch.device) -> None:
        self.module, self.input_range, self.device = module, input_range, device

    @property
    def provider_name(self) -> str:
        return "torchscript"

    def to_input(self, lr: np.ndarray) -> torch.Tensor:
        return to_model_input(lr, self.input_range, self.device, torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def resident(self) -> list[torch.Tensor]:
        return resident_tensors(self.module)


class JitTrace(Backend):
    """``--backend jit``: ``torch.jit.trace`` on a 1x3x32x32 example, fp32, CPU only."""

    name = "jit"

    def device(self, options: RunOptions) -> torch.device:
        return resolve_device("cpu" if options.device == "auto" else options.device)

    def check(self, options: RunOptions, device: torch.device) -> None:
        if device.type != "cpu" or options.dtype != "fp32":
            raise SrbenchError("--backend jit runs fp32 on the CPU only; drop --device/--dtype")

    def memory_meter(self, options: RunOptions, device: torch.device) -> ForwardMemory:
        return ForwardMemory(device)

    def place(self, request: PlaceRequest, options: RunOptions) -> Traced:
        model = request.model.eval().to(request.device)
        example = torch.rand(1, 3, 32, 32, device=request.device) * request.input_range
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        return Traced(traced, request.input_range, request.device)
