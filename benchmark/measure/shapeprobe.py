"""Detecting warm-up that only pays off on shapes a model has seen before.

The NTIRE challenge times every forward cold (no warm-up), so a model that precomputes or
warms itself up for the exact image sizes of the validation and test sets (in its
constructor, say) looks faster than it is, while any other size pays the full cost. The
probe measures exactly that, after the timed loop, on the smallest LR image that can be
cropped (the cheapest forward there is).

**What is compared: cost, not wall time.** A forward's *cost* is the process CPU time it
took (all threads; :attr:`srbench.measure.timing.ForwardSample.cost_ms`) on the CPU, and its
event time on CUDA. Another process taking the core lengthens a forward's wall time but not
its CPU time, so on a loaded machine an honest forward that waited 80 ms for the core still
costs what it costs; a model doing hidden work on a shape's first call costs more, load or
not. On CUDA a forward NVML saw disturbed (another process, throttled clocks) is not used.

**The rule.** For the new shapes of :data:`PROBE_CROPS` in order (the LR image cropped by
``d`` pixels in height and width), the probe times the first forward at that shape
(``first_ms``, ``first_cost_ms``) and compares its cost with the cost of the same image's
timed forward(s) at its own, seen shape (``seen_cost_ms``, the median):

1. no drop: ``first_cost < RATIO × seen_cost`` or ``first_cost − seen_cost < GAP_MS``. An
   honest model (after srbench's warm-up) runs a new shape at its usual cost: the probe
   stops here, one forward, and the model is not flagged;
2. otherwise the probe confirms: :data:`AFTER_REPEATS` more forwards at the now-seen new
   shape (``after_cost_ms``: their median; their spread and the seen ones' give the margin).
   The shape shows the drop when ``first_cost >= RATIO × after_cost`` and
   ``first_cost − after_cost >= max(GAP_MS, SPREAD_K × spread)``, spread being the range
   (max − min) of the after and seen costs: the margin grows with the noise measured right
   then, instead of being a constant loose enough for every machine.

A model is **flagged** when :data:`PROBED_SHAPES` shapes were judged and every one showed
the drop. Shapes whose first forward cannot be judged (CUDA: disturbed) are passed over,
up to the end of :data:`PROBE_CROPS`; with fewer judged shapes the model is not flagged and
``skipped`` says why.

Not probed (``skipped`` says why): ``--compile`` (a new shape recompiles by design),
``--cudnn-benchmark`` (cuDNN autotunes each new shape by design), ``--tile``, and inputs too
small to crop.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from srbench.measure.timing import ForwardSample, ForwardTimer

#: Pixels cropped from the LR height and width, one candidate new shape each, tried in order.
PROBE_CROPS: tuple[int, ...] = (1, 3, 5, 7)
#: Shapes that must show the drop for a flag.
PROBED_SHAPES = 2
#: Forwards at a new shape after its first, to confirm a drop.
AFTER_REPEATS = 3
#: A drop of at least this factor between a new shape's first forward and later ones ...
RATIO = 10.0
#: ... and of at least this much cost (ms): above what a new shape costs an honest
#: model on the CPU (oneDNN creates its primitives per shape: 0.1-1 ms of CPU for the
#: small convolution models measured, docs/runtime.md) ...
GAP_MS = 5.0
#: ... and of this many times the spread of the costs measured around it.
SPREAD_K = 4.0


@dataclass
class ShapeProbe:
    """What :func:`probe_shape_caching` measured (ms); ``flagged`` per the module rule.

    Per judged shape: ``shapes`` (H, W), ``first_ms`` (wall), ``first_cost_ms``,
    ``after_cost_ms`` (None when the first showed no drop and no confirmation ran),
    ``margin_ms`` (the margin the drop had to clear; None likewise) and ``drops``.
    ``seen_ms`` is the probed image's timed forward (wall) and ``seen_cost_ms`` its cost, the
    same for every shape. ``passed_over``: shapes whose first forward could not be judged.
    ``basis``: ``"cpu"`` (CPU time) or ``"wall"`` (CUDA event time)."""

    shapes: list[list[int]] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    seen_ms: list[float] = field(default_factory=list)
    first_cost_ms: list[float] = field(default_factory=list)
    seen_cost_ms: float | None = None
    after_cost_ms: list[float | None] = field(default_factory=list)
    margin_ms: list[float | None] = field(default_factory=list)
    drops: list[bool] = field(default_factory=list)
    passed_over: list[list[int]] = field(default_factory=list)
    basis: str = "cpu"
    flagged: bool = False
    skipped: str | None = None

    def note(self) -> str | None:
        """The results note of a flagged model, else None."""
        if not self.flagged:
            return None
        pairs = ", ".join(
            f"{h}x{w}: {f:.1f} ms first, against {a:.1f} ms once seen"
            for (h, w), f, a in zip(self.shapes, self.first_cost_ms, self.after_cost_ms, strict=True)
        )
        cost = "CPU time" if self.basis == "cpu" else "time"
        return (
            f"warm-up gaming suspected: the forward's {cost} drops sharply only on shapes already seen "
            f"({pairs}); cold-start (NTIRE-style) times of the data set's own sizes understate "
            "this model's cost"
        )


def croppable(shape: tuple[int, ...]) -> bool:
    """Whether an LR image of ``shape`` (H, W, ...) leaves at least 4 pixels a side after the
    largest crop."""
    return min(shape[0], shape[1]) - max(PROBE_CROPS) >= 4


def probe_shape_caching(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    timer: ForwardTimer,
    seen_ms: float,
    seen_costs_ms: Sequence[float] | None = None,
) -> ShapeProbe:
    """Run the probe on ``forward`` from ``x`` (an image's model input, (1, C, H, W)), whose
    timed forward took ``seen_ms`` (ms, wall) in the timed loop and cost ``seen_costs_ms``
    (ms per timed forward, :attr:`ForwardSample.cost_ms`; None: one forward at ``x`` is
    timed now for it)."""
    probe = ShapeProbe(basis="wall" if timer.device.type == "cuda" else "cpu")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if not croppable((h, w)):
        probe.skipped = f"input {h}x{w} too small to crop"
        return probe
    # Keep the input's memory format (a channels-last run probes channels-last).
    fmt = (
        torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    )

    def run(y: torch.Tensor) -> ForwardSample:
        timer.time(lambda: forward(y))
        assert timer.last is not None
        return timer.last

    with torch.inference_mode():
        if seen_costs_ms is None:
            seen_costs_ms = [run(x).cost_ms]
        seen = statistics.median(seen_costs_ms)
        probe.seen_cost_ms = seen
        for d in PROBE_CROPS:
            if len(probe.shapes) == PROBED_SHAPES:
                break
            y = x[..., : h - d, : w - d].contiguous(memory_format=fmt)
            first = run(y)
            if probe.basis == "wall" and first.disturbed:
                probe.passed_over.append([h - d, w - d])
                continue
            probe.shapes.append([h - d, w - d])
            probe.first_ms.append(first.ms)
            probe.seen_ms.append(seen_ms)
            probe.first_cost_ms.append(first.cost_ms)
            if first.cost_ms < RATIO * seen or first.cost_ms - seen < GAP_MS:
                probe.after_cost_ms.append(None)
                probe.margin_ms.append(None)
                probe.drops.append(False)
                break  # one shape without the drop decides: not flagged
            after = [s.cost_ms for s in (run(y) for _ in range(AFTER_REPEATS)) if not _unusable(s, probe)]
            if not after:  # every confirming forward disturbed (CUDA): cannot judge this shape
                for key in ("shapes", "first_ms", "seen_ms", "first_cost_ms"):
                    getattr(probe, key).pop()
                probe.passed_over.append([h - d, w - d])
                continue
            median = statistics.median(after)
            margin = drop_margin(after, seen_costs_ms)
            probe.after_cost_ms.append(median)
            probe.margin_ms.append(margin)
            drop = first.cost_ms >= RATIO * median and first.cost_ms - median >= margin
            probe.drops.append(drop)
            if not drop:
                break
    probe.flagged = len(probe.drops) == PROBED_SHAPES and all(probe.drops)
    if not probe.drops and probe.passed_over:
        probe.skipped = "every probed shape's first forward was disturbed"
    return probe


def drop_margin(after_ms: Sequence[float], seen_ms: Sequence[float]) -> float:
    """``max(GAP_MS, SPREAD_K × (max − min))`` of the costs ``after_ms`` and ``seen_ms`` (ms):
    the least a first forward must exceed the later ones by to count as a drop."""
    costs = [*after_ms, *seen_ms]
    return max(GAP_MS, SPREAD_K * (max(costs) - min(costs)))


def _unusable(sample: ForwardSample, probe: ShapeProbe) -> bool:
    # A CPU forward's cost (CPU time) survives a preemption; an event time does not.
    return probe.basis == "wall" and sample.disturbed
