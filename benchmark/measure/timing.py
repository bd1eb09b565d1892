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

**Disturbed forwards** (CPU; README "Runtime", docs/runtime.md). Around every timed CPU
forward the timer also reads the process's CPU time (``time.process_time_ns``: user + system,
all threads) and its involuntary context switches (``getrusage(RUSAGE_SELF).ru_nivcsw``).
The forward's *CPU share* is ``cpu_time / (wall_time × threads)``, ``threads`` being the
intra-op threads it ran with. A forward is **disturbed** when its share is below
:data:`DISTURBED_SHARE` and the time it lost, ``wall − cpu / threads``, is at least
:data:`DISTURBED_MIN_MS`: it was runnable but another process had the core (or it waited
for I/O). With ``remeasure=True`` (the timed loop) :meth:`ForwardTimer.time_repeated` runs
the forward again until ``repeat`` undisturbed forwards are in, or :func:`forward_budget`
forwards have run; the per-image figure is the median of the undisturbed ones (the shortest
forward when none was undisturbed, and the image is then marked: :func:`image_time`). On CUDA a
:class:`GpuWatch` (NVML, when present) reads, around each forward, the other processes on
the device and the clock throttle reasons; a forward with either is disturbed alike.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

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


#: A CPU forward whose CPU share (process CPU time / (wall × threads)) is below this ...
DISTURBED_SHARE = 0.9
#: ... and that lost at least this many milliseconds (wall − cpu / threads) is disturbed.
#: The floor keeps sub-millisecond forwards, whose share is dominated by the clock reads and
#: the scheduler's tick, from being flagged for nothing a reader could see.
DISTURBED_MIN_MS = 0.5


def forward_budget(repeat: int) -> int:
    """The most forwards :meth:`ForwardTimer.time_repeated` runs for ``repeat`` undisturbed
    ones: ``repeat + max(repeat, 2)`` (3 for one, 2R from two up), so a steadily loaded
    machine costs at most about twice the planned forwards."""
    return repeat + max(repeat, 2)


@dataclass(frozen=True)
class ForwardSample:
    """One timed forward: ``ms`` wall (CUDA: event) milliseconds; on the CPU ``cpu_share``
    (process CPU time / (wall × threads), 0-1 and a little above with spinning threads) and
    ``nivcsw`` (involuntary context switches of the process during it; None where the OS
    does not count them); ``disturbed`` per the module rule; ``why`` says what disturbed it."""

    ms: float
    cpu_share: float | None = None
    nivcsw: int | None = None
    disturbed: bool = False
    why: str | None = None
    #: Process CPU time (ms, all threads) during the forward; None on CUDA.
    cpu_ms: float | None = None

    @property
    def cost_ms(self) -> float:
        """What the forward cost the machine, as far as a timer can tell: CPU time on the
        CPU (a preemption does not add to it), else the wall/event time."""
        return self.cpu_ms if self.cpu_ms is not None else self.ms


def is_disturbed(wall_ms: float, cpu_ms: float, threads: int) -> bool:
    """The module rule: CPU share below :data:`DISTURBED_SHARE` and at least
    :data:`DISTURBED_MIN_MS` lost (``wall_ms``, ``cpu_ms`` in ms; ``threads`` >= 1)."""
    if wall_ms <= 0:
        return False
    share = cpu_ms / (wall_ms * threads)
    return share < DISTURBED_SHARE and wall_ms - cpu_ms / threads >= DISTURBED_MIN_MS


def _nivcsw() -> int | None:
    try:
        return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    except (OSError, AttributeError):  # pragma: no cover - not Linux/macOS
        return None


class GpuWatch:
    """What can disturb a CUDA forward, read through NVML (``pynvml``) around it: compute
    processes on the device other than this one (a lone process counts as this one: NVML
    gives host pids, which differ from ``os.getpid()`` in a container), and clock throttle
    reasons other than idle and the application clock setting (thermal, power cap, HW
    slowdown, ...).

    ``nvml`` is the ``pynvml`` module (or a stand-in with the same functions: tests);
    :meth:`for_device` returns None without NVML. Every NVML error makes the watch say
    nothing rather than fail a measurement."""

    def __init__(self, nvml: Any, handle: Any, pid: int | None = None) -> None:
        self.nvml, self.handle, self.pid = nvml, handle, pid if pid is not None else os.getpid()
        # Throttle reasons that say the clocks were lowered by something other than idling
        # (idle before the kernel starts is not a disturbance) or the user's clock setting.
        benign = 0
        for name in ("nvmlClocksThrottleReasonGpuIdle", "nvmlClocksThrottleReasonApplicationsClocksSetting"):
            benign |= int(getattr(nvml, name, 0))
        self._benign = benign

    @classmethod
    def for_device(cls, index: int) -> GpuWatch | None:
        """The watch of CUDA device ``index``, or None (no pynvml, or NVML fails)."""
        try:
            import pynvml

            pynvml.nvmlInit()
            return cls(pynvml, pynvml.nvmlDeviceGetHandleByIndex(index))
        except Exception:
            return None

    def read(self) -> str | None:
        """What disturbs the device now (one phrase), or None."""
        why = []
        try:
            pids = {int(p.pid) for p in self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)}
            # NVML lists host pids: in a container srbench's own differs from os.getpid(),
            # so a lone process on the device is taken to be srbench itself.
            others = sorted(pids - {self.pid}) if len(pids) > 1 or self.pid in pids else []
            if others:
                why.append(f"other processes on the GPU (pid {', '.join(map(str, others[:3]))})")
        except Exception:
            pass
        try:
            reasons = int(self.nvml.nvmlDeviceGetCurrentClocksThrottleReasons(self.handle)) & ~self._benign
            if reasons:
                why.append(f"clocks throttled (NVML reasons 0x{reasons:x})")
        except Exception:
            pass
        return "; ".join(why) or None


class ForwardTimer:
    """Times single forward calls on one device (see the module docstring).

    ``threads``: the intra-op threads the forwards run with (the CPU share's divisor);
    default ``torch.get_num_threads()`` when the timer is made. ``gpu_watch``: on CUDA, a
    :class:`GpuWatch` (default: NVML's for the device, if any)."""

    def __init__(
        self, device: torch.device, *, threads: int | None = None, gpu_watch: GpuWatch | None = None
    ) -> None:
        self.device = torch.device(device)
        self.threads = max(1, threads if threads is not None else torch.get_num_threads())
        #: Every forward of the last :meth:`time_repeated` call, in order (retries included).
        self.last_samples: list[ForwardSample] = []
        #: The last single forward :meth:`time` ran.
        self.last: ForwardSample | None = None
        self._cuda = self.device.type == "cuda"
        self.gpu_watch = gpu_watch
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            if gpu_watch is None:
                index = self.device.index if self.device.index is not None else torch.cuda.current_device()
                self.gpu_watch = GpuWatch.for_device(index)

    @property
    def last_samples_ms(self) -> list[float]:
        """The times (ms) of :attr:`last_samples`."""
        return [s.ms for s in self.last_samples]

    def time(self, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Run ``fn()`` once; return its output and the elapsed milliseconds (the full record
        is :attr:`last`)."""
        if self._cuda:
            before = self.gpu_watch.read() if self.gpu_watch is not None else None
            with gc_paused():
                self._start.record()
                out = fn()
                self._end.record()
                torch.cuda.synchronize(self.device)
            ms = float(self._start.elapsed_time(self._end))
            after = self.gpu_watch.read() if self.gpu_watch is not None else None
            why = before or after
            self.last = ForwardSample(ms, disturbed=why is not None, why=why)
            return out, ms
        with gc_paused():
            switches0 = _nivcsw()
            c0 = time.process_time_ns()
            t0 = time.perf_counter_ns()
            out = fn()
            t1 = time.perf_counter_ns()
            c1 = time.process_time_ns()
            switches1 = _nivcsw()
        ms, cpu_ms = (t1 - t0) / 1e6, (c1 - c0) / 1e6
        disturbed = is_disturbed(ms, cpu_ms, self.threads)
        self.last = ForwardSample(
            ms,
            cpu_share=cpu_ms / (ms * self.threads) if ms > 0 else None,
            nivcsw=None if switches0 is None or switches1 is None else switches1 - switches0,
            disturbed=disturbed,
            why=f"preempted: CPU share below {DISTURBED_SHARE:.0%}" if disturbed else None,
            cpu_ms=cpu_ms,
        )
        return out, ms

    def time_repeated(
        self, fn: Callable[[], torch.Tensor], repeat: int, *, remeasure: bool = False
    ) -> tuple[torch.Tensor, float]:
        """Run ``fn()`` ``repeat`` times; return the last output and the median time (ms).

        With ``remeasure`` a disturbed forward does not count towards ``repeat``: forwards
        run until ``repeat`` undisturbed ones are in or :func:`forward_budget` ran, and the
        median is over the undisturbed ones (:func:`image_time`). Every forward is in
        :attr:`last_samples`."""
        if repeat < 1:
            raise ValueError("repeat must be >= 1")
        budget = forward_budget(repeat) if remeasure else repeat
        samples: list[ForwardSample] = []
        out = None
        while len(samples) < budget:
            out, _ = self.time(fn)
            assert self.last is not None
            samples.append(self.last)
            counted = sum(not s.disturbed for s in samples) if remeasure else len(samples)
            if counted >= repeat:
                break
        assert out is not None
        self.last_samples = samples
        return out, image_time(samples) if remeasure else statistics.median(s.ms for s in samples)


def image_time(samples: Sequence[ForwardSample]) -> float:
    """An image's figure (ms) from its forwards: the median time of the undisturbed
    ``samples``; when every one was disturbed, the shortest (a preemption only adds time, so
    the shortest is the least disturbed reading; the image is reported as disturbed)."""
    kept = [s.ms for s in samples if not s.disturbed]
    return statistics.median(kept) if kept else min(s.ms for s in samples)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population std / mean of ``values`` (0 for a single value, nan for mean 0)."""
    mean = statistics.fmean(values)
    if mean == 0:
        return math.nan
    return (statistics.pstdev(values) if len(values) > 1 else 0.0) / mean
