"""Forward-pass timing.

What ``runtime_ms`` is (one ``model(x)`` call, input already on the device, under
``torch.inference_mode()``; the per-image median of ``--repeat`` calls; the summary over images)
is defined once in ``docs/metrics.md``, "Time (ms, median)". How this module takes it:

* CUDA: a pair of ``torch.cuda.Event(enable_timing=True)`` recorded on the current stream
  immediately before and after the forward, then ``torch.cuda.synchronize()`` and
  ``start.elapsed_time(end)``. Only GPU work between the two events is timed.
* CPU: ``time.perf_counter_ns()`` immediately before and after the forward.

Python's cyclic garbage collector is paused during each timed call (:func:`gc_paused`, as
``timeit`` does): a collection the forward's allocations would trigger runs after the timer
stops instead. With srbench, torch and numba loaded a full collection scans ~265k objects,
≈0.1 s on a 2-core CPU, i.e. a fifth of span's forward on a DIV2K image; the protocol also
freezes the objects that exist when a model's measurement starts (:func:`gc_frozen`), so the
collections that do run between forwards scan only what the measurement made.

:class:`RuntimeStats` holds the summary over images (mean, median, population std, min, max,
p50/p90/p99 by :func:`percentile`, linear interpolation between the closest ranks, numpy's
default, and the coefficient of variation std / mean), as ``docs/metrics.md`` defines them.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class RuntimeStats:
    """Summary of per-image forward times, in milliseconds.

    ``std`` is the population standard deviation (divisor n); ``n`` the number of images;
    ``p50``/``p90``/``p99`` percentiles (:func:`percentile`); ``cv`` = std / mean
    (dimensionless). The last four are ``None`` when read from a file written before them.
    """

    mean: float
    median: float
    std: float
    min: float
    max: float
    n: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    cv: float | None = None

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
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            cv=coefficient_of_variation(values),
        )

    def to_dict(self) -> dict[str, float | None]:
        """JSON form: ``{"mean", "median", "std", "min", "max", "n", "p50", "p90", "p99", "cv"}``."""
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``: linear interpolation between the closest
    ranks (rank ``(n - 1) * q / 100`` of the sorted values; numpy's default method)."""
    if not values or not 0 <= q <= 100:
        raise ValueError("percentile needs values and 0 <= q <= 100")
    ordered = sorted(float(v) for v in values)
    rank = (len(ordered) - 1) * q / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection inside the block (restored after it, even on error).

    The collector's counters keep running, so a collection that came due inside runs at the
    next allocation after the block: outside the timed region, not skipped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def gc_frozen() -> Iterator[None]:
    """Objects alive on entry are left out of every collection inside the block (``gc.freeze``),
    and given back to the collector on exit (``gc.unfreeze``). Both are O(1) list moves; the
    frozen objects are the interpreter's, torch's and the model's, none of them garbage."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class ForwardTimer:
    """Times single forward calls on one device (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        #: The individual times (ms) of the last :meth:`time_repeated` call.
        self.last_samples_ms: list[float] = []
        self._cuda = self.device.type == "cuda"
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Run ``fn()`` once; return its output and the elapsed milliseconds."""
        if self._cuda:
            with gc_paused():
                self._start.record()
                out = fn()
                self._end.record()
                torch.cuda.synchronize(self.device)
            return out, float(self._start.elapsed_time(self._end))
        with gc_paused():
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
        self.last_samples_ms = times
        return out, statistics.median(times)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population std / mean of ``values`` (0 for a single value, nan for mean 0)."""
    mean = statistics.fmean(values)
    if mean == 0:
        return math.nan
    return (statistics.pstdev(values) if len(values) > 1 else 0.0) / mean
