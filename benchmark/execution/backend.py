"""Placing a model on a device and calling it: the ``forward(x) -> y`` every measurement times.

A :class:`Backend` is a model ready for inference. It makes the input tensor from a uint8
LR image (:meth:`Backend.to_input`) and maps it to the SR output (:meth:`Backend.forward`).
The per-model protocol (:mod:`srbench.execution.protocol`) and ``srbench upscale``
(:mod:`srbench.upscale`) only ever call these two, through :func:`timed_forward` (which
adds ``--tile`` and the out-of-memory fallback), so another runtime (ONNX Runtime, a
browser) plugs in by implementing them.

:class:`TorchBackend` is the PyTorch one: ``model.to(device, dtype)``, optionally
channels-last and ``torch.compile``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from srbench.errors import SrbenchError
from srbench.execution.tiling import DEFAULT_OVERLAP, tiled_forward
from srbench.measure.timing import ForwardTimer

Forward = Callable[[torch.Tensor], torch.Tensor]


def to_model_input(
    lr: np.ndarray, input_range: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """uint8 (H, W, 3) RGB → ``dtype`` (1, 3, H, W) on ``device``, on the model's ``[0, input_range]``."""
    # Divided by 255/input_range in float32, exactly as the NTIRE harness's uint2tensor4
    # does: multiplying by the reciprocal differs in the last bit for some values and so
    # flips a few rounded pixels.
    t = torch.from_numpy(lr).permute(2, 0, 1).unsqueeze(0)
    t = t.to(device=device, non_blocking=True).to(torch.float32)
    if input_range != 255.0:
        t = t / (255.0 / input_range)
    # The HWC permute leaves channels-last strides; without .contiguous() every model would
    # silently run channels-last convolutions, and --channels-last would change nothing.
    return t.to(dtype).contiguous()


class Backend(Protocol):
    """A model placed for inference (see the module docstring).

    ``device`` is where inputs live and where forwards are timed (:class:`ForwardTimer`);
    ``input_range`` is the model's value scale (1 or 255).
    """

    device: torch.device
    input_range: float

    def to_input(self, lr: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, 3) RGB → the model's (1, 3, H, W) input on :attr:`device`."""
        ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) → (N, 3, h*scale, w*scale), both on ``[0, input_range]``."""
        ...


@dataclass
class TorchBackend:
    """A PyTorch module on ``device`` in ``dtype`` (optionally channels-last, compiled).

    Build it with :meth:`prepare`. ``forward`` is the (possibly compiled) module itself.
    """

    module: nn.Module
    input_range: float
    device: torch.device
    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    compiled: Forward | None = None  # torch.compile(module), when compiled

    @classmethod
    def prepare(
        cls,
        model: nn.Module,
        *,
        input_range: float,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        compile: bool = False,
    ) -> TorchBackend:
        """Move ``model`` (eval mode) to ``device``/``dtype``; ``compile`` wraps it in ``torch.compile``
        (compiled on the first call, which the protocol never times)."""
        # Two positional calls, not .to(device=..., dtype=...): models that override
        # ``to(self, device)`` (some challenge entries) accept only the device.
        moved = model.eval().to(device)
        module = moved if isinstance(moved, nn.Module) else model  # an override may return None
        if dtype != torch.float32:
            module = module.to(dtype)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        compiled: Forward | None = torch.compile(module) if compile else None
        return cls(module, input_range, torch.device(device), dtype, channels_last, compiled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not `compiled or module`: truth-testing a module calls its __len__ (containers).
        return self.module(x) if self.compiled is None else self.compiled(x)

    def to_input(self, lr: np.ndarray) -> torch.Tensor:
        x = to_model_input(lr, self.input_range, self.device, self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


@dataclass(frozen=True)
class Tiling:
    """How forwards are tiled: ``tile`` LR pixels (None: untiled unless out of memory),
    ``overlap`` LR pixels, and the model's ``scale``."""

    scale: int
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    # The CPU allocator raises a plain RuntimeError when it cannot allocate.
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower()
    )


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def timed_forward(
    forward: Forward, x: torch.Tensor, timer: ForwardTimer, tiling: Tiling, repeat: int = 1
) -> tuple[torch.Tensor, float, bool]:
    """``(output, ms, tiled)``: untiled unless ``tiling.tile`` is set or out of memory.

    ``ms`` is the median of ``repeat`` timed calls (:meth:`ForwardTimer.time_repeated`).
    On out-of-memory the image is retried tiled, halving the tile until it fits (down to
    just above twice the overlap); such times are not comparable with untiled ones.
    """

    def tiled(tile: int) -> Callable[[], torch.Tensor]:
        return lambda: tiled_forward(forward, x, scale=tiling.scale, tile=tile, overlap=tiling.overlap)

    if tiling.tile is not None:
        out, ms = timer.time_repeated(tiled(tiling.tile), repeat)
        return out, ms, True
    try:
        out, ms = timer.time_repeated(lambda: forward(x), repeat)
        return out, ms, False
    except Exception as exc:
        if not _is_oom(exc):
            raise
    _free_memory(timer.device)
    tile = max(x.shape[-2], x.shape[-1]) // 2
    floor = 2 * tiling.overlap + 8
    while True:
        try:
            out, ms = timer.time_repeated(tiled(max(tile, floor)), repeat)
            return out, ms, True
        except Exception as exc:
            if not _is_oom(exc) or tile <= floor:
                raise
        _free_memory(timer.device)
        tile //= 2


def check_output(
    out: torch.Tensor, x: torch.Tensor, scale: int, name: str, *, finite: bool = True
) -> torch.Tensor:
    """``out[0]`` after checking its shape is ``x``'s × ``scale`` and, with ``finite``, that
    every value is finite (the protocol leaves that to :func:`srbench.measure.quality.score_image`,
    which checks it during quantisation instead of in a second pass).

    Raises :class:`SrbenchError` naming the image otherwise.
    """
    expected = (x.shape[0], 3, x.shape[-2] * scale, x.shape[-1] * scale)
    if tuple(out.shape) != expected:
        raise SrbenchError(
            f"image {name}: output shape {tuple(out.shape)} is not {expected} "
            f"(input {tuple(x.shape)} x{scale}); the model does not upscale by --scale {scale}"
        )
    if finite and not torch.isfinite(out).all():
        raise SrbenchError(f"image {name}: the model's output contains NaN or Inf")
    return out[0]


def to_unit_range(
    out: torch.Tensor, x: torch.Tensor, scale: int, name: str, input_range: float
) -> torch.Tensor:
    """The checked output (:func:`check_output`) as float32 (3, H, W) on [0, 1] (not clamped)."""
    sr = check_output(out, x, scale, name).float()
    if input_range != 1.0:
        sr = sr / input_range
    return sr
