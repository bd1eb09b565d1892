"""What a backend is: the one interface every backend implements.

A **backend** (:class:`Backend`) is what runs a model's network: PyTorch eager, ONNX Runtime,
a browser. It owns its options: it says which device a run's inputs live on
(:meth:`Backend.device`), refuses option combinations it cannot run, each once and in one
line (:meth:`Backend.check`), brings its memory meter (:meth:`Backend.memory_meter`) and
places a built model (:meth:`Backend.place`), returning a :class:`PlacedModel`: the
``forward(x) -> y`` the protocol times. An exported backend (``exported = True``) runs
srbench's ONNX export of the model (:meth:`Backend.deploy`), and its outputs are compared with
PyTorch's (``backend_agreement``).

The run, the sweep and the challenge protocol only ever call these methods: none of them
branches on a backend's name. Adding a backend is a folder under ``backends/`` and one line in
:mod:`srbench.backends.registry` (or :func:`srbench.backends.registry.register_backend` from
outside the package).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from srbench.core.errors import SrbenchError


class RunOptions(Protocol):
    """The run options a backend reads (the run configuration provides them by attribute)."""

    backend: str
    device: str
    dtype: str
    scale: int
    tile: int | None
    compile: bool
    channels_last: bool
    cudnn_benchmark: bool
    tf32: str | None
    deterministic: bool


class PlacedModel:
    """A model placed for inference: what the protocol, ``upscale`` and the agreement check call.

    Attributes every placed model sets: ``device`` (where inputs live and forwards are timed),
    ``input_range`` (the model's value scale, 1 or 255) and ``provider_name`` (what actually
    ran it, recorded as the row's ``provider``). The defaults below are those of a plain
    forward: timed by srbench around :meth:`forward`, no extra facts, nothing to close.
    """

    device: torch.device
    input_range: float
    #: True when the backend times itself (:meth:`timed`) instead of srbench's timer around
    #: :meth:`forward` (the browser: the in-page ``performance.now()`` around ``session.run``).
    self_timed: ClassVar[bool] = False

    @property
    def provider_name(self) -> str:
        return str(self.device)

    @property
    def backend_info(self) -> dict[str, Any] | None:
        """Facts recorded in the row's ``backend_info`` (None: nothing beyond the provider)."""
        return None

    def to_input(self, lr: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, 3) RGB → the model's (1, 3, H, W) input on :attr:`device`."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) → (N, 3, h*scale, w*scale), both on ``[0, input_range]``."""
        raise NotImplementedError

    def timed(self, x: torch.Tensor, repeat: int = 1) -> tuple[torch.Tensor, float]:
        """The output and the backend's own time in ms (only where :attr:`self_timed`)."""
        raise NotImplementedError

    def resident(self) -> list[torch.Tensor]:
        """The tensors the placed model keeps alive between forwards (its weights), counted by
        the CPU memory pass; empty when they live outside PyTorch (an ONNX Runtime session)."""
        return []

    def close(self) -> None:
        """Release what the placed model holds (a browser and its server); idempotent."""


@dataclass
class PlaceRequest:
    """What :meth:`Backend.place` places.

    ``model`` is the built ``nn.Module`` (fp32, on the CPU or the run's device),
    ``input_range`` its value scale, ``device`` the run's device (:meth:`Backend.device`),
    ``deployment`` what :meth:`Backend.deploy` returned (exported backends, else None),
    ``lr_shapes`` the (H, W, 3) shapes of the run's LR images (engines that plan per shape).
    """

    model: nn.Module
    input_range: float
    scale: int
    device: torch.device
    deployment: Any = None
    lr_shapes: tuple[tuple[int, ...], ...] = ()


class Backend(ABC):
    """A backend (see the module docstring). Subclasses set :attr:`name` and implement the
    abstract methods; the others have the defaults of a backend with nothing to add."""

    #: ``--backend`` value.
    name: ClassVar[str]
    #: Runs srbench's ONNX export of the model (and so is compared with PyTorch).
    exported: ClassVar[bool] = False
    #: What one timed call is, for the table caption (``forward``, ``session.run``).
    timed_call: ClassVar[str] = "forward"

    @abstractmethod
    def device(self, options: RunOptions) -> torch.device:
        """The device a run's inputs live on and its forwards are timed on (raises
        :class:`SrbenchError` in one line when the options contradict each other)."""

    @abstractmethod
    def check(self, options: RunOptions, device: torch.device) -> None:
        """Refuse, in one :class:`SrbenchError` line each, options this backend cannot run."""

    @abstractmethod
    def place(self, request: PlaceRequest, options: RunOptions) -> PlacedModel:
        """The model ready to call (:class:`PlacedModel`)."""

    def memory_meter(self, options: RunOptions, device: torch.device) -> Any:
        """The meter of this backend's memory (``start()``/``stop() -> MB``, or the torch
        :class:`~srbench.measure.memory.ForwardMemory`), or a :class:`~srbench.measure.memory.NotMeasured`."""
        raise NotImplementedError

    def deploy(self, model: nn.Module, metadata: Any) -> Any:
        """Exported backends: the deployed file (export or cache hit); others: None."""
        return None

    def provider(self, config: Mapping[str, Any]) -> str | None:
        """The provider option a recorded ``config`` names (None: the backend has none)."""
        return None

    def default_provider(self) -> str | None:
        """The provider a row name leaves out (``model@onnxruntime`` is the CPU provider)."""
        return None

    def environment(self) -> dict[str, Any]:
        """Versions and facts for the results file's ``environment`` block."""
        return {}

    def row_suffix(self, config: Mapping[str, Any]) -> str | None:
        """What the row name carries after ``@`` (None: the plain model name)."""
        provider = self.provider(config)
        if provider is None or provider == self.default_provider():
            return self.name
        return f"{self.name}-{provider}"

    def caption(self, config: Mapping[str, Any]) -> str:
        """What the table caption says after the device (empty for the reference backend)."""
        provider = self.provider(config)
        return f" via {self.name}" + (f" ({provider} provider)" if provider else "")


#: Options that change what PyTorch runs and mean nothing to a backend that runs something else.
TORCH_ONLY_FLAGS = (
    ("--compile", "compile"),
    ("--channels-last", "channels_last"),
    ("--cudnn-benchmark", "cudnn_benchmark"),
    ("--tf32", "tf32"),
    ("--deterministic", "deterministic"),
)


def refuse_torch_only_flags(options: RunOptions) -> None:
    """One line for the first PyTorch-only option given to another backend."""
    for flag, attr in TORCH_ONLY_FLAGS:
        value = getattr(options, attr)
        if value is not None and value is not False:
            raise SrbenchError(
                f"{flag} applies to --backend torch only; drop it with --backend {options.backend}"
            )
