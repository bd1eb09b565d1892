"""Forward-pass timing.

Definition of ``runtime_ms``: the wall time of one ``model(x)`` call in milliseconds, with
the input already on the device and under ``torch.inference_mode()``.

* CUDA: a pair of ``torch.cuda.Event(enable_timing=True)`` recorded on the current stream
  immediately before and after the forward, then ``torch.cuda.synchronize()`` and
  ``start.elapsed_time(end)``. Only GPU work between the two events is timed.
* CPU: ``time.perf_counter_ns()`` immediately before and after the forward.

With ``repeat > 1`` the forward runs R times on the same input and the per-image figure is
the median of the R times. Summary statistics (:class:`RuntimeStats`) are over images.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class RuntimeStats:
    """Summary of per-image forward times, in milliseconds.

    ``std`` is the population standard deviation (divisor n); ``n`` the number of images.
    """

    mean: float
    median: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> RuntimeStats:
        """Summarise ``samples_ms`` (at least one value)."""
        if not samples_ms:
            raise ValueError("RuntimeStats needs at least one sample")
        values = [float(v) for v in samples_ms]
        return cls(
            mean=statistics.fmean(values),
            median=statistics.median(values),
            std=statistics.pstdev(values) if len(values) > 1 else 0.0,
            min=min(values),
            max=max(values),
            n=len(values),
        )

    def to_dict(self) -> dict[str, float]:
        """JSON form: ``{"mean", "median", "std", "min", "max", "n"}``."""
        return asdict(self)


class ForwardTimer:
    """Times single forward calls on one device (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Run ``fn()`` once; return its output and the elapsed milliseconds."""
        if self._cuda:
            self._start.record()
            out = fn()
            self._end.record()
            torch.cuda.synchronize(self.device)
            return out, float(self._start.elapsed_time(self._end))
        t0 = time.perf_counter_ns()
        out = fn()
        t1 = time.perf_counter_ns()
        return out, (t1 - t0) / 1e6

    def time_repeated(self, fn: Callable[[], torch.Tensor], repeat: int) -> tuple[torch.Tensor, float]:
        """Run ``fn()`` ``repeat`` times; return the last output and the median time (ms)."""
        if repeat < 1:
            raise ValueError("repeat must be >= 1")
        times = []
        out = None
        for _ in range(repeat):
            out, ms = self.time(fn)
            times.append(ms)
        assert out is not None
        return out, statistics.median(times)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population std / mean of ``values`` (0 for a single value, nan for mean 0)."""
    mean = statistics.fmean(values)
    if mean == 0:
        return math.nan
    return (statistics.pstdev(values) if len(values) > 1 else 0.0) / mean
