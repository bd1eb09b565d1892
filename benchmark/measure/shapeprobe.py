"""Detecting warm-up that only pays off on shapes a model has seen before.

The NTIRE challenge times every forward cold (no warm-up), so a model that precomputes or
warms itself up for the exact image sizes of the validation and test sets (in its
constructor, say) looks faster than it is, while any other size pays the full cost. The
probe measures exactly that, after the timed loop:

For each of :data:`PROBE_CROPS` new shapes (an LR image cropped by ``d`` pixels in height
and width, shapes no timed image had unless the data set holds such sizes; the protocol
takes the smallest image that can be cropped, so the probe costs the cheapest forward there
is), it times the first forward at that shape (``first_ms``) and compares it with the timed
loop's forward of that image itself (``seen_ms``: the same picture, ``d`` pixels larger, at
a shape the model has seen). A model is flagged when, on **every** probed shape,
``first_ms >= RATIO * seen_ms`` and ``first_ms - seen_ms >= GAP_MS``: its forward time
drops sharply once a shape has been seen. Requiring every shape keeps one load spike on a
busy machine from flagging an honest model; an honest model (after srbench's warm-up) runs
a new shape at its usual speed on CPU and on CUDA with ``cudnn.benchmark`` off. The probe
stops at the first shape that does not show the drop (the verdict is then known: not
flagged), so an honest model costs one forward.

Not probed (``skipped`` says why): ``--compile`` (a new shape recompiles by design),
``--cudnn-benchmark`` (cuDNN autotunes each new shape by design), ``--tile``, and inputs too
small to crop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from srbench.measure.timing import ForwardTimer

#: Pixels cropped from the first image's LR height and width, one probed shape each.
PROBE_CROPS: tuple[int, ...] = (1, 3)
#: A drop of at least this factor between the first and later forwards at a new shape ...
RATIO = 10.0
#: ... and of at least this many milliseconds.
GAP_MS = 20.0


@dataclass
class ShapeProbe:
    """What :func:`probe_shape_caching` measured (ms); ``flagged`` per the module rule.

    ``seen_ms[i]`` is the reference ``first_ms[i]`` was compared with (the same for every
    shape: the probed image's timed forward)."""

    shapes: list[list[int]] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    seen_ms: list[float] = field(default_factory=list)
    flagged: bool = False
    skipped: str | None = None

    def note(self) -> str | None:
        """The results note of a flagged model, else None."""
        if not self.flagged:
            return None
        pairs = ", ".join(
            f"{h}x{w}: {f:.1f} ms first, against {r:.1f} ms at the seen shape"
            for (h, w), f, r in zip(self.shapes, self.first_ms, self.seen_ms, strict=True)
        )
        return (
            "warm-up gaming suspected: the forward time drops sharply only on shapes already seen "
            f"({pairs}); cold-start (NTIRE-style) times of the data set's own sizes understate "
            "this model's cost"
        )


def croppable(shape: tuple[int, ...]) -> bool:
    """Whether an LR image of ``shape`` (H, W, ...) leaves at least 4 pixels a side after the
    largest crop."""
    return min(shape[0], shape[1]) - max(PROBE_CROPS) >= 4


def probe_shape_caching(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, timer: ForwardTimer, seen_ms: float
) -> ShapeProbe:
    """Run the probe on ``forward`` from ``x`` (an image's model input, (1, C, H, W)), whose
    timed forward took ``seen_ms`` (ms) in the timed loop."""
    probe = ShapeProbe()
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if not croppable((h, w)):
        probe.skipped = f"input {h}x{w} too small to crop"
        return probe
    with torch.inference_mode():
        for d in PROBE_CROPS:
            # Keep the input's memory format (a channels-last run probes channels-last).
            fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
            y = x[..., : h - d, : w - d].contiguous(memory_format=fmt or torch.contiguous_format)
            _, first = timer.time(lambda y=y: forward(y))
            probe.shapes.append([h - d, w - d])
            probe.first_ms.append(first)
            probe.seen_ms.append(seen_ms)
            if not _drops(first, seen_ms):
                break  # one shape without the drop decides: not flagged
    probe.flagged = all(_drops(f, r) for f, r in zip(probe.first_ms, probe.seen_ms, strict=True))
    return probe


def _drops(first_ms: float, seen_ms: float) -> bool:
    return first_ms >= RATIO * seen_ms and first_ms - seen_ms >= GAP_MS
