"""The browser as a measured backend (``srbench run --backend browser``).

:class:`BrowserModel` is a :class:`srbench.backends.pytorch.Backend` over a
:class:`~srbench.backends.browser.driver.BrowserSession`: the run's ONNX export loaded by ONNX Runtime
Web in headless Chromium. Inputs are made exactly as for PyTorch (uint8 → float32 NCHW
on the model's range, on the CPU), outputs come back as float32 and every metric is
computed in Python by the same code as for every other backend.

It times itself (``self_timed``): the time of an image is the in-page
``performance.now()`` difference around ``session.run`` (median of ``--repeat`` runs),
never the Python-side round trip. See :mod:`srbench.backends.browser.driver` for what that covers.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from srbench.backends.base import Backend, PlacedModel, PlaceRequest, RunOptions, refuse_torch_only_flags
from srbench.backends.browser.browser import find_chromium, import_playwright
from srbench.backends.browser.driver import BrowserSession
from srbench.backends.browser.ortweb import PROVIDERS, find_ort_web
from srbench.backends.devices import resolve_device
from srbench.backends.onnx_export import export_environment
from srbench.backends.onnxruntime.session import Deployment, deploy
from srbench.backends.pytorch import to_model_input
from srbench.core.errors import SrbenchError
from srbench.core.extras import EXTRA_PACKAGES, require
from srbench.measure.memory import NotMeasured


def check_browser_ready(provider: str) -> None:
    """Chromium, Playwright and ORT-Web (with ``provider``'s files) are all there; else one
    :class:`SrbenchError` line naming what is missing and the exact install command."""
    import_playwright()
    find_chromium()
    find_ort_web(provider)


@dataclass
class BrowserModel(PlacedModel):
    """The placed model (see the module docstring); :meth:`close` ends the browser and the server."""

    session: BrowserSession
    input_range: float
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    #: The protocol takes this backend's own times (:meth:`timed`) instead of timing forward().
    self_timed: ClassVar[bool] = True

    @classmethod
    def open(cls, model: Path, *, provider: str, threads: int, input_range: float) -> BrowserModel:
        """Start the browser on ONNX file ``model`` (raises :class:`SrbenchError` in one line)."""
        session = BrowserSession(model, provider, threads=threads)
        session.__enter__()
        return cls(session, input_range)

    @property
    def provider_name(self) -> str:
        """The provider that actually ran (``wasm``; ``webgpu+wasm`` when nodes fell back)."""
        assert self.session.info is not None
        return self.session.info.provider

    @property
    def backend_info(self) -> dict[str, Any]:
        """``ModelResult.backend_info``: browser, ORT-Web, provider requested and used, fallback."""
        assert self.session.info is not None
        return self.session.info.to_dict()

    def to_input(self, lr: np.ndarray) -> torch.Tensor:
        return to_model_input(lr, self.input_range, self.device, self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.session.run(x.numpy())
        return torch.from_numpy(out)

    def timed(self, x: torch.Tensor, repeat: int = 1) -> tuple[torch.Tensor, float]:
        """The output and the median in-page time (ms) of ``repeat`` runs."""
        out, times = self.session.run(x.numpy(), repeat=repeat)
        if not times:
            raise SrbenchError("the browser page returned no time")
        return torch.from_numpy(out), statistics.median(times)

    def close(self) -> None:
        self.session.close()


class Browser(Backend):
    """ONNX Runtime Web in headless Chromium (``--browser-provider`` wasm or webgpu)."""

    name = "browser"
    exported = True
    timed_call = "session.run"

    def device(self, options: RunOptions) -> torch.device:
        """The CPU: the browser runs the model in its own process, inputs and outputs live here."""
        if options.device != "auto" and resolve_device(options.device).type != "cpu":
            raise SrbenchError(
                f"--device {options.device} with --backend browser: the browser picks its own device "
                "(--browser-provider); drop --device"
            )
        return torch.device("cpu")

    def check(self, options: RunOptions, device: torch.device) -> None:
        """fp32, untiled, and Chromium, Playwright and ORT-Web installed (else one line naming
        what is missing and the exact install command)."""
        for module in EXTRA_PACKAGES:
            require(module, purpose=f"--backend {options.backend}")
        refuse_torch_only_flags(options)
        provider = options.browser_provider  # type: ignore[attr-defined]
        threads = options.browser_threads  # type: ignore[attr-defined]
        if provider not in PROVIDERS:
            raise SrbenchError(f"--browser-provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        if options.dtype != "fp32":
            raise SrbenchError(
                f"--dtype {options.dtype} with --backend browser: the browser runs fp32; drop --dtype"
            )
        if options.tile is not None:
            raise SrbenchError("--tile with --backend browser: the browser runs whole images; drop --tile")
        if threads is not None and threads < 1:
            raise SrbenchError("--browser-threads must be >= 1")
        check_browser_ready(provider)

    def memory_meter(self, options: RunOptions, device: torch.device) -> NotMeasured:
        return NotMeasured("browser_not_measured")  # the renderer process is not srbench's

    def deploy(self, model: nn.Module, metadata: Any) -> Deployment:
        return deploy(model, metadata)

    def place(self, request: PlaceRequest, options: RunOptions) -> BrowserModel:
        threads = options.browser_threads  # type: ignore[attr-defined]
        return BrowserModel.open(
            request.deployment.export.path,
            provider=options.browser_provider,  # type: ignore[attr-defined]
            threads=threads or torch.get_num_threads(),
            input_range=request.input_range,
        )

    def provider(self, config: Mapping[str, Any]) -> str | None:
        return config.get("browser_provider", "wasm")

    def default_provider(self) -> str | None:
        return "wasm"

    def environment(self) -> dict[str, Any]:
        return export_environment()
