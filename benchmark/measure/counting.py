"""Complexity counting: params, FLOPs, activations and conv calls.

Definitions (all taken on one input, by default ``1x3x256x256`` as NTIRE does, in eval mode,
under ``torch.no_grad``; the input is seeded uniform noise in ``[0, input_range)``, never
uninitialised memory):

``params``
    Sum of ``numel()`` over **all** parameters of the module (trainable or not; buffers are
    not parameters). Reparameterised models must be fused before counting.
``flops``
    fvcore's ``FlopCountAnalysis(...).total()``: one FLOP is one multiply-add (a MAC), as
    NTIRE reports them. Convolutions ignore bias; matmul/linear/einsum/bmm, norms,
    nearest (1 per output element) and bilinear (4 per output element) upsampling and
    adaptive average pooling are counted. Element-wise ops, activations, softmax,
    max-pooling and pixel-shuffle count 0: they are listed in ``unsupported_ops``
    (op name -> number of calls) instead of being silently dropped.
``activations``
    Sum of output elements of every ``nn.Conv2d`` / ``nn.ConvTranspose2d`` *call* (the
    NTIRE ``get_model_activation`` definition). Attention maps, linear layers and
    functional convolutions are not activations under this definition.
``convs``
    Number of ``nn.Conv2d`` / ``nn.ConvTranspose2d`` calls (a module called twice counts
    twice).
``flops_dispatch``
    A second count from ``torch.utils.flop_counter.FlopCounterMode``, which counts
    2 FLOPs per MAC for convolution/mm/bmm/addmm/SDPA and nothing else. It is reported
    separately, never mixed with ``flops``.
``functional_convs``
    Convolution calls seen at the dispatcher (``aten.convolution``) that the module hooks
    did not see, e.g. ``F.conv2d`` on the forward path. Non-zero means the NTIRE-style
    ``activations``/``convs`` undercount this model.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

#: The NTIRE complexity input: batch 1, RGB, 256x256 LR.
NTIRE_INPUT_SHAPE: tuple[int, int, int, int] = (1, 3, 256, 256)

_CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass(frozen=True)
class Complexity:
    """Weight-independent complexity figures of one model at one input shape.

    Units: ``params`` parameters, ``flops`` multiply-adds (fvcore), ``activations``
    elements, ``convs`` calls, ``flops_dispatch`` FLOPs (2 per MAC), ``seconds`` wall time
    spent counting.
    """

    input_shape: tuple[int, ...]
    params: int
    flops: int
    activations: int
    convs: int
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    flops_dispatch: int | None = None
    functional_convs: int = 0
    seconds: float = 0.0


def count_params(model: nn.Module) -> int:
    """Sum of ``numel()`` over all parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_activations(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """``(activations, convs)`` of one forward: conv output elements and conv calls."""
    totals = [0, 0]

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        totals[0] += output.numel()
        totals[1] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _CONV_TYPES)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return totals[0], totals[1]


@contextlib.contextmanager
def _quiet_fvcore() -> Iterator[None]:
    # fvcore logs one warning per unsupported op and per uncalled module, and its import
    # raises TorchScript deprecation warnings on recent torch; the report keeps the list.
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def count_flops_fvcore(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """fvcore total (MACs) and its unsupported ops ``{op: calls}``."""
    with _quiet_fvcore():
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        with torch.no_grad():
            total = int(analysis.total())
        unsupported = {str(k): int(v) for k, v in sorted(analysis.unsupported_ops().items())}
    return total, unsupported


class _ConvCallCounter(TorchDispatchMode):
    """Counts ``aten.convolution`` calls at the dispatcher, functional ones included."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        # conv2d/conv_transpose2d decompose to aten.convolution before reaching this mode.
        if func.overloadpacket is torch.ops.aten.convolution:
            self.calls += 1
        return func(*args, **(kwargs or {}))


def count_flops_dispatch(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """``(FlopCounterMode total, aten.convolution calls)`` of one forward."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    convs = _ConvCallCounter()
    with torch.no_grad(), counter, convs:
        model(x)
    return int(counter.get_total_flops()), convs.calls


def counting_input(
    shape: tuple[int, ...] = NTIRE_INPUT_SHAPE,
    *,
    input_range: float = 1.0,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> torch.Tensor:
    """The defined counting input: uniform noise in ``[0, input_range)`` from a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) * input_range).to(device)


def profile_model(
    model: nn.Module,
    input_shape: tuple[int, ...] = NTIRE_INPUT_SHAPE,
    *,
    input_range: float = 1.0,
    dispatch: bool = True,
) -> Complexity:
    """All complexity figures of ``model`` (must be in eval mode) at ``input_shape``."""
    if model.training:
        raise ValueError("profile_model needs a model in eval mode (train graphs count ~4x more)")
    start = time.perf_counter()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = counting_input(input_shape, input_range=input_range, device=device)
    params = count_params(model)
    flops, unsupported = count_flops_fvcore(model, x)
    # Shape-only counts need no arithmetic: run them on the meta device (no real forward),
    # falling back to the real input for models that look at values (e.g. .item()).
    try:
        meta_model, meta_x = copy.deepcopy(model).to("meta"), x.to("meta")
        activations, convs = count_activations(meta_model, meta_x)
        counted_on = (meta_model, meta_x)
    except Exception:
        activations, convs = count_activations(model, x)
        counted_on = (model, x)
    flops_dispatch = None
    functional = 0
    if dispatch:
        try:
            flops_dispatch, dispatch_convs = count_flops_dispatch(*counted_on)
        except Exception:
            flops_dispatch, dispatch_convs = count_flops_dispatch(model, x)
        functional = max(0, dispatch_convs - convs)
    return Complexity(
        input_shape=tuple(input_shape),
        params=params,
        flops=flops,
        activations=activations,
        convs=convs,
        unsupported_ops=unsupported,
        flops_dispatch=flops_dispatch,
        functional_convs=functional,
        seconds=time.perf_counter() - start,
    )
