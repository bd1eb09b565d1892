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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srbench.backends.browser.driver import BrowserSession
from srbench.core.errors import SrbenchError


def check_browser_ready(provider: str) -> None:
    """Chromium, Playwright and ORT-Web (with ``provider``'s files) are all there; else one
    :class:`SrbenchError` line naming what is missing and the exact install command."""
    from srbench.backends.browser.browser import find_chromium, import_playwright
    from srbench.backends.browser.ortweb import find_ort_web

    import_playwright()
    find_chromium()
    find_ort_web(provider)


@dataclass
class BrowserModel:
    """The backend (see the module docstring); :meth:`close` ends the browser and the server."""

    session: BrowserSession
    input_range: float
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    #: The protocol takes this backend's own times (:meth:`timed`) instead of timing forward().
    self_timed: bool = True

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
        from srbench.backends.pytorch import to_model_input

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
