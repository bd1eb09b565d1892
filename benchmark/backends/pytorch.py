"""Placing a model on a device and calling it: the ``forward(x) -> y`` every measurement times.

A :class:`Backend` is a model ready for inference. It makes the input tensor from a uint8
LR image (:meth:`Backend.to_input`) and maps it to the SR output (:meth:`Backend.forward`).
The per-model protocol (:mod:`srbench.runner.protocol`) and ``srbench upscale``
(:mod:`srbench.runner.upscale`) only ever call these two, through :func:`timed_forward` (which
adds ``--tile`` and the out-of-memory fallback), so another runtime (ONNX Runtime, a
browser) plugs in by implementing them.

:class:`TorchBackend` is the PyTorch one: ``model.to(device, dtype)``, optionally
channels-last and ``torch.compile``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from srbench.backends.base import Backend, PlacedModel, PlaceRequest, RunOptions
from srbench.backends.devices import DTYPES, available_memory, check_dtype, output_bytes, resolve_device
from srbench.backends.tiling import DEFAULT_OVERLAP, tiled_forward
from srbench.core.errors import SrbenchError
from srbench.measure.memory import KIND_CPU_COMPILED, ForwardMemory, NotMeasured, resident_tensors
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


@dataclass
class TorchBackend(PlacedModel):
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

    def resident(self) -> list[torch.Tensor]:
        return resident_tensors(self.module)


class TorchEager(Backend):
    """PyTorch eager (``--backend torch``, the reference): :class:`TorchBackend` on ``--device``
    in ``--dtype``, optionally channels-last and compiled."""

    name = "torch"

    def device(self, options: RunOptions) -> torch.device:
        return resolve_device(options.device)

    def check(self, options: RunOptions, device: torch.device) -> None:
        check_dtype(options.dtype, device)

    def memory_meter(self, options: RunOptions, device: torch.device) -> ForwardMemory | NotMeasured:
        """:class:`ForwardMemory`; none with ``--compile`` on the CPU: inductor's kernels allocate
        their buffers outside PyTorch's operators, and dynamo does not compile under a dispatch
        mode, so the live-tensor count would describe another forward than the timed one."""
        if device.type == "cpu" and options.compile:
            return NotMeasured(
                KIND_CPU_COMPILED,
                note="memory not measured: with --compile on the CPU, inductor's kernels allocate "
                "outside PyTorch's operators, where srbench's live-tensor count cannot see them",
            )
        return ForwardMemory(device)

    def place(self, request: PlaceRequest, options: RunOptions) -> TorchBackend:
        return TorchBackend.prepare(
            request.model,
            input_range=request.input_range,
            device=request.device,
            dtype=DTYPES[options.dtype],
            channels_last=options.channels_last,
            compile=options.compile,
        )

    def row_suffix(self, config: object) -> str | None:
        return None

    def caption(self, config: object) -> str:
        return ""


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


#: Output-sized float32 buffers alive at once in an untiled upscale: the model's last feature
#: map (3*scale² channels at LR size: the output's element count), the output, and the two
#: copies quantisation makes (divided/clamped, then rounded).
UNTILED_BUFFERS = 4
#: The same, tiled: per-tile features are small, but the whole output and its copies remain.
TILED_BUFFERS = 3
#: Tile side (LR pixels) used when the untiled output would not fit in memory.
AUTO_TILE = 256


def memory_tiling(
    tiling: Tiling, height: int, width: int, device: torch.device, *, name: str = "image"
) -> Tiling:
    """The tiling for an ``height``×``width`` input, chosen from its output's size before it runs.

    ``tiling`` with a ``tile`` set is returned as is. Otherwise the output is estimated
    (:func:`~srbench.backends.devices.output_bytes`): untiled, about :data:`UNTILED_BUFFERS`
    float32 outputs are alive at once; tiled, about :data:`TILED_BUFFERS` (the whole output is
    still assembled and quantised). When the untiled estimate exceeds the memory available
    (:func:`~srbench.backends.devices.available_memory`), tiles of :data:`AUTO_TILE` are used;
    when even the tiled one does not fit, a one-line :class:`SrbenchError` names the image and
    the memory it needs (the input's size is the cause, not the model).
    """
    if tiling.tile is not None:
        return tiling
    out = output_bytes(height, width, tiling.scale)
    room = available_memory(device)
    if room is None or UNTILED_BUFFERS * out <= room:
        return tiling
    s = tiling.scale
    if TILED_BUFFERS * out > room:
        raise SrbenchError(
            f"image {name} ({width}x{height}) upscaled x{s} is {width * s}x{height * s}: its float32 "
            f"output alone is {out / 1e9:.2f} GB and about {TILED_BUFFERS * out / 1e9:.1f} GB are needed "
            f"even tiled, with {room / 1e9:.2f} GB available on {device}; use a crop or a smaller image, "
            "or free memory"
        )
    return Tiling(scale=s, tile=max(AUTO_TILE, tiling.overlap + 8), overlap=tiling.overlap)


def timed_forward(
    forward: Forward,
    x: torch.Tensor,
    timer: ForwardTimer,
    tiling: Tiling,
    repeat: int = 1,
    *,
    remeasure: bool = False,
) -> tuple[torch.Tensor, float, bool]:
    """``(output, ms, tiled)``: untiled unless ``tiling.tile`` is set or out of memory.

    ``ms`` is the median of ``repeat`` timed calls (:meth:`ForwardTimer.time_repeated`; with
    ``remeasure`` disturbed calls are run again within its budget and left out of the median).
    On out-of-memory the image is retried tiled, halving the tile until it fits (down to
    just above twice the overlap); such times are not comparable with untiled ones.
    """

    def tiled(tile: int) -> Callable[[], torch.Tensor]:
        return lambda: tiled_forward(forward, x, scale=tiling.scale, tile=tile, overlap=tiling.overlap)

    if tiling.tile is not None:
        out, ms = timer.time_repeated(tiled(tiling.tile), repeat, remeasure=remeasure)
        return out, ms, True
    try:
        out, ms = timer.time_repeated(lambda: forward(x), repeat, remeasure=remeasure)
        return out, ms, False
    except Exception as exc:
        if not _is_oom(exc):
            raise
    _free_memory(timer.device)
    tile = max(x.shape[-2], x.shape[-1]) // 2
    floor = 2 * tiling.overlap + 8
    while True:
        try:
            out, ms = timer.time_repeated(tiled(max(tile, floor)), repeat, remeasure=remeasure)
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
