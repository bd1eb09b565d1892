"""Complexity counting: params, FLOPs, activations and conv calls.

Each figure (``params``, ``flops``, ``activations``, ``convs``, ``flops_dispatch``,
``functional_convs``, ``flops_lower_bound``, ``flops_undercount``, ``flops_thop``,
``unsupported_ops``) is defined once in ``docs/metrics.md`` ("Params (M)" to "FLOPs that cannot
be gamed"). All are taken on one input, by default ``1x3x256x256`` as NTIRE does
(:data:`NTIRE_INPUT_SHAPE`), in eval mode, under ``torch.no_grad``; the input is seeded uniform
noise in ``[0, input_range)``, never uninitialised memory. Reparameterised models must be fused
before counting.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
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
    flops_lower_bound: int | None = None
    flops_undercount: bool = False
    flops_note: str | None = None
    flops_thop: int | None = None
    #: True when the conv counts changed with the input's values (a second, differently seeded
    #: input gave other activations/convs): data-dependent routing or sampling (mixtures of
    #: experts, token selection). The figures are those at srbench's seeded input.
    value_dependent: bool = False


#: The note of a :attr:`Complexity.value_dependent` count.
VALUE_DEPENDENT_NOTE = (
    "counts depend on the input's values (data-dependent routing or sampling): these are at "
    "srbench's seeded input (seed 0); the challenge's script counts at an unseeded random or "
    "uninitialised input, so its figures change from run to run"
)


def count_params(model: nn.Module) -> int:
    """Sum of ``numel()`` over all parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def conv_macs(module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> int:
    """Multiply-adds of one conv call, bias ignored: batch x ``weight.numel()`` x the output
    H·W (the input H·W for a transposed conv), exactly fvcore's ``conv_flop_count``."""
    spatial = (x if isinstance(module, nn.ConvTranspose2d) else output).shape[2:]
    return int(x.shape[0]) * int(module.weight.numel()) * math.prod(int(v) for v in spatial)


@dataclass
class ConvCalls:
    """What the ``nn.Conv2d``/``nn.ConvTranspose2d`` hooks saw in one forward: output elements
    (``activations``), calls (``convs``) and multiply-adds (``macs``), in total and per module
    name (``per_module[name] = [activations, convs, macs]``)."""

    activations: int = 0
    convs: int = 0
    macs: int = 0
    per_module: dict[str, list[int]] = field(default_factory=dict)


def count_conv_calls(model: nn.Module, x: torch.Tensor) -> ConvCalls:
    """Hook every conv module for one forward of ``x`` (see :class:`ConvCalls`)."""
    calls = ConvCalls()

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            macs = conv_macs(module, inputs[0], output)
            calls.activations += output.numel()
            calls.convs += 1
            calls.macs += macs
            row = calls.per_module.setdefault(name, [0, 0, 0])
            row[0] += output.numel()
            row[1] += 1
            row[2] += macs

        return hook

    handles = [
        m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if isinstance(m, _CONV_TYPES)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def count_activations(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """``(activations, convs)`` of one forward: conv output elements and conv calls."""
    calls = count_conv_calls(model, x)
    return calls.activations, calls.convs


def count_flops_thop(model: nn.Module, x: torch.Tensor) -> int:
    """thop's MAC count of one forward (on a copy: thop adds buffers to every module it hooks)."""
    copy_ = copy.deepcopy(model)
    with _quiet_fvcore(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        import thop  # its import warns about distutils on recent Pythons

        macs, _params = thop.profile(copy_, inputs=(x,), verbose=False)
    return int(macs)


def undercount_note(fvcore_total: int, fvcore_conv: int, lower_bound: int) -> str | None:
    """The note for a FLOPs count below the conv lower bound, or None when it is not below."""
    if fvcore_total < lower_bound:
        return (
            f"fvcore counts {fvcore_total:,} MACs, {lower_bound - fvcore_total:,} below the "
            f"{lower_bound:,} MACs of the conv calls that ran (flops_lower_bound): its trace dropped "
            "convolutions (results leaving torch or feeding an op the trace cannot see)"
        )
    if fvcore_conv < lower_bound:
        return (
            f"fvcore's convolutions total {fvcore_conv:,} MACs, {lower_bound - fvcore_conv:,} below the "
            f"{lower_bound:,} MACs of the conv calls that ran: its trace dropped convolutions "
            "(other counted ops hide the gap in the total)"
        )
    return None


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


def fvcore_analysis(model: nn.Module, x: torch.Tensor):  # type: ignore[no-untyped-def]
    """fvcore's ``FlopCountAnalysis`` of ``model`` at ``x`` with its warnings silenced."""
    with _quiet_fvcore():
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
    return analysis


def count_flops_fvcore(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """fvcore total (MACs) and its unsupported ops ``{op: calls}``."""
    total, unsupported, _ = _fvcore_counts(model, x)
    return total, unsupported


def _fvcore_counts(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int], int]:
    """``(total, unsupported ops, conv MACs)`` from one fvcore trace."""
    analysis = fvcore_analysis(model, x)
    with _quiet_fvcore(), torch.no_grad():
        total = int(analysis.total())
        unsupported = {str(k): int(v) for k, v in sorted(analysis.unsupported_ops().items())}
        conv = int(analysis.by_operator().get("conv", 0))
    return total, unsupported, conv


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
    thop: bool = True,
) -> Complexity:
    """All complexity figures of ``model`` (must be in eval mode) at ``input_shape``."""
    if model.training:
        raise ValueError("profile_model needs a model in eval mode (train graphs count ~4x more)")
    start = time.perf_counter()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = counting_input(input_shape, input_range=input_range, device=device)
    # Counted on a copy, so the model the protocol times is left as it was (a network that
    # fuses its branches on its first forward still fuses on its first timed one); a model
    # that cannot be copied (weight_norm's computed weights) is counted in place.
    try:
        model = copy.deepcopy(model)
    except Exception:
        pass
    # The challenge's script counts after the model has run (inference, then activations,
    # FLOPs and params, in that order): one forward first, so that a network that fuses or
    # prunes its weights on its first call is counted as it runs.
    with torch.no_grad():
        model(x)
    flops, unsupported, fvcore_conv = _fvcore_counts(model, x)
    params = count_params(model)
    # Shape-only counts need no arithmetic: run them on the meta device (no real forward),
    # falling back to the real input for models that look at values (e.g. .item(), NumPy).
    value_dependent = False
    try:
        meta_model: nn.Module | None = copy.deepcopy(model).to("meta")
    except Exception:
        meta_model = None  # cannot be copied (weight_norm): counted on the real input
    try:
        if meta_model is None:
            raise RuntimeError("no meta copy")
        calls = count_conv_calls(meta_model, x.to("meta"))
        counted_on = (meta_model, x.to("meta"))
    except Exception:
        calls = count_conv_calls(model, x)
        counted_on = (model, x)
        if meta_model is not None:
            # The meta device could not run it: it looks at values. Do the counts depend on them?
            other_x = counting_input(input_shape, input_range=input_range, device=device, seed=1)
            other = count_conv_calls(model, other_x)
            value_dependent = (other.activations, other.convs) != (calls.activations, calls.convs)
    activations, convs = calls.activations, calls.convs
    note = undercount_note(flops, fvcore_conv, calls.macs)
    flops_thop = None
    if thop:
        # thop copies the model; a model that cannot be copied (weight_norm) has no thop
        # figure rather than no row.
        for args in (counted_on, (model, x)):
            try:
                flops_thop = count_flops_thop(*args)
                break
            except Exception:
                continue
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
        flops_lower_bound=calls.macs,
        flops_undercount=note is not None,
        flops_note=note,
        flops_thop=flops_thop,
        value_dependent=value_dependent,
    )


@dataclass
class ModuleCounts:
    """One module of a breakdown: its name (``""`` is the whole model), nesting depth and the
    figures of everything inside it: params, fvcore MACs, conv MACs seen by hooks,
    conv output elements and conv calls."""

    name: str
    depth: int
    type: str
    params: int
    flops: int
    conv_macs: int
    activations: int
    convs: int


@dataclass
class OperatorCounts:
    """One operator of a breakdown: fvcore's MACs for it, or (``counted`` False) an op fvcore
    cannot count, with its number of calls."""

    op: str
    flops: int
    counted: bool = True
    calls: int | None = None


@dataclass
class Breakdown:
    """Where a model's complexity comes from: per module (to ``depth``) and per operator.

    ``modules[0]`` is the whole model, whose figures equal :func:`profile_model`'s.
    """

    input_shape: tuple[int, ...]
    modules: list[ModuleCounts]
    operators: list[OperatorCounts]


def complexity_breakdown(
    model: nn.Module,
    input_shape: tuple[int, ...] = NTIRE_INPUT_SHAPE,
    *,
    input_range: float = 1.0,
    depth: int = 2,
) -> Breakdown:
    """Per-module (down to ``depth`` levels) and per-operator complexity (see :class:`Breakdown`)."""
    if model.training:
        raise ValueError("complexity_breakdown needs a model in eval mode")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = counting_input(input_shape, input_range=input_range, device=device)
    analysis = fvcore_analysis(model, x)
    with _quiet_fvcore(), torch.no_grad():
        by_module = {k: int(v) for k, v in analysis.by_module().items()}
        by_op = {str(k): int(v) for k, v in analysis.by_operator().items()}
        unsupported = {str(k): int(v) for k, v in analysis.unsupported_ops().items()}
    calls = count_conv_calls(model, x)
    conv_totals: dict[str, list[int]] = {}
    for name, (acts, n, macs) in calls.per_module.items():
        parts = name.split(".") if name else []
        for i in range(len(parts) + 1):
            row = conv_totals.setdefault(".".join(parts[:i]), [0, 0, 0])
            row[0] += acts
            row[1] += n
            row[2] += macs
    modules = []
    for name, module in model.named_modules():
        level = 0 if not name else name.count(".") + 1
        if level > depth:
            continue
        acts, n, macs = conv_totals.get(name, [0, 0, 0])
        modules.append(
            ModuleCounts(
                name=name,
                depth=level,
                type=type(module).__name__,
                params=count_params(module),
                flops=by_module.get(name, 0),
                conv_macs=macs,
                activations=acts,
                convs=n,
            )
        )
    operators = [OperatorCounts(op, v) for op, v in sorted(by_op.items(), key=lambda kv: -kv[1])]
    operators += [OperatorCounts(op, 0, False, c) for op, c in sorted(unsupported.items())]
    return Breakdown(tuple(input_shape), modules, operators)
