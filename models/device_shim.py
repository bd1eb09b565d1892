"""Run team code that assumes CUDA on a machine without it, while srbench builds the model.

Many challenge files move themselves to the GPU in their constructor (``self.cuda()``, a
warm-up forward on ``torch.rand(..., device='cuda')``), as the SPAN family's do. Counting
complexity needs no GPU, and the challenge's own script runs on a CPU once its device strings
point there. :func:`cuda_to` does the same for the code that runs inside it: ``.cuda()`` of
modules and tensors, ``.to('cuda')``/``.to(torch.device('cuda'))`` and the ``device=`` of
tensor factories are sent to ``device``. It is active only while the model is imported,
built, loaded and finished (never while it is timed), only when CUDA is not available, and
:attr:`Shim.used` tells whether the code called CUDA at all (the row then says
``device_shim: true``).

Code that needs a compiled CUDA extension cannot run this way; its import fails and the row
says so in one line (:func:`srbench.models.usercode.import_failure`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: Tensor factories whose ``device=`` is redirected.
FACTORIES: tuple[str, ...] = (
    "tensor",
    "as_tensor",
    "zeros",
    "ones",
    "empty",
    "full",
    "rand",
    "randn",
    "randint",
    "arange",
    "linspace",
    "eye",
    "zeros_like",
    "ones_like",
    "rand_like",
    "randn_like",
    "empty_like",
    "full_like",
)


@dataclass
class Shim:
    """Whether the code inside :func:`cuda_to` asked for CUDA (``used``), and where it went."""

    device: torch.device
    used: bool = False


def _is_cuda(value: Any) -> bool:
    if isinstance(value, torch.device):
        return value.type == "cuda"
    return isinstance(value, str) and value.split(":")[0] == "cuda"


@contextlib.contextmanager
def cuda_to(device: torch.device | str = "cpu", *, active: bool | None = None) -> Iterator[Shim]:
    """Redirect CUDA requests to ``device`` inside the block (see the module docstring).

    ``active`` None: only when ``torch.cuda.is_available()`` is False (on a GPU machine the
    team code runs as written). Not thread-safe: it patches ``torch`` for the block's duration.
    """
    shim = Shim(torch.device(device))
    if active is None:
        active = not torch.cuda.is_available()
    if not active:
        yield shim
        return

    def fix(value: Any) -> Any:
        if _is_cuda(value):
            shim.used = True
            return shim.device
        return value

    def redirect_to(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def to(self: Any, *args: Any, **kwargs: Any) -> Any:
            return original(self, *[fix(a) for a in args], **{k: fix(v) for k, v in kwargs.items()})

        return to

    def to_device(self: Any, *args: Any, **kwargs: Any) -> Any:
        shim.used = True
        return self.to(shim.device)

    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def make(*args: Any, **kwargs: Any) -> Any:
            if "device" in kwargs:
                kwargs["device"] = fix(kwargs["device"])
            return original(*args, **kwargs)

        return make

    saved: list[tuple[Any, str, Any]] = [
        (nn.Module, "to", nn.Module.to),
        (nn.Module, "cuda", nn.Module.cuda),
        (torch.Tensor, "to", torch.Tensor.to),
        (torch.Tensor, "cuda", torch.Tensor.cuda),
        (torch.cuda, "synchronize", torch.cuda.synchronize),
        (torch.cuda, "empty_cache", torch.cuda.empty_cache),
        (torch.cuda, "current_device", torch.cuda.current_device),
        *[(torch, name, getattr(torch, name)) for name in FACTORIES if hasattr(torch, name)],
    ]
    try:
        nn.Module.to = redirect_to(nn.Module.to)  # type: ignore[method-assign]
        nn.Module.cuda = to_device  # type: ignore[method-assign,assignment]
        torch.Tensor.to = redirect_to(torch.Tensor.to)  # type: ignore[method-assign]
        torch.Tensor.cuda = to_device  # type: ignore[method-assign,assignment]
        torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
        torch.cuda.empty_cache = lambda: None
        torch.cuda.current_device = lambda: 0
        for name in FACTORIES:
            if hasattr(torch, name):
                setattr(torch, name, factory(getattr(torch, name)))
        yield shim
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
