"""Peak memory of a model's forward, measured apart from its timing and from srbench's metrics.

``memory_mb`` (MB = 2**20 bytes) and each ``memory_kind`` (:data:`KIND_CUDA`, :data:`KIND_CPU`,
:data:`KIND_ORT_CPU`, :data:`KIND_CPU_COMPILED`, :data:`KIND_NONE`) are defined once in
``docs/metrics.md``, "Memory (MB)"; the kinds are not comparable with each other. This module
implements them: :class:`LiveTensorBytes` (a ``TorchDispatchMode``) is the CPU kind's live-tensor
count, read after every operator so that it sees an operator's output while its inputs are
still alive; the CUDA kind resets and reads the allocator's peak outside the timed region.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode

MIB = 2**20

KIND_CUDA = "cuda_forward_peak"
KIND_CPU = "cpu_forward_peak"
KIND_ORT_CPU = "ort_cpu_rss_growth"
KIND_CPU_COMPILED = "cpu_compiled_not_measured"
KIND_NONE = "unavailable"

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")

#: True only while :meth:`ForwardMemory.measure_pass` runs its forward (tests read it).
_active = False


def meter_active() -> bool:
    """True while the CPU memory pass is running (never during a timed forward)."""
    return _active


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim_heap() -> None:
    # A one-off call, not a setting: glibc hands freed heap pages back to the kernel, so the
    # pass's own allocations fault in fresh pages and show in VmHWM. Not glibc (musl, macOS):
    # nothing to do; the figure is then a lower bound.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_cpu_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def resident_tensors(module: nn.Module) -> list[torch.Tensor]:
    """``module``'s parameters and buffers: what is alive before any forward."""
    return [*module.parameters(), *module.buffers()]


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of live CPU tensor storage while the mode is active (``cpu_forward_peak``).

    A storage is counted from the operator that allocates it (one that returns a storage
    none of its inputs has: not a view, an in-place or an ``out=`` result) until it is
    freed, at its current size (an in-place resize or an ``out=`` result that grows it is
    followed); views and in-place results of storages made before the mode (other than
    ``resident``) are not counted. Storages are held by weak reference, so tracking keeps nothing alive.
    After each operator the live total is compared with the peak. ``resident`` tensors (the
    weights) are alive from the start. :attr:`live` and :attr:`peak` are bytes (int).
    Python overhead per operator: for untimed passes only.
    """

    def __init__(self, resident: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        # Storage pointer -> (weak reference, bytes). A pointer is reused only after its
        # storage is freed, and freed entries are dropped before anything new is added.
        self._tracked: dict[int, tuple[Any, int]] = {}
        # The resident storages outlive the pass (the caller holds them) and no operator
        # allocates them: their bytes are counted once here and never swept.
        seen: set[int] = set()
        self.live = 0
        for t in resident:
            if t.device.type != "cpu" or t.is_mkldnn:
                continue
            storage = t.untyped_storage()
            if storage.data_ptr() not in seen:  # shared weights count once
                seen.add(storage.data_ptr())
                self.live += storage.nbytes()
        self.peak = self.live

    def _track(self, t: torch.Tensor, inputs: set[int]) -> None:
        if t.device.type != "cpu" or t.is_mkldnn:  # an opaque MKL-DNN tensor has no storage
            return
        storage = t.untyped_storage()
        key = storage._cdata  # the StorageImpl's address, as StorageWeakRef.cdata
        nbytes = storage.nbytes()
        known = self._tracked.get(key)
        if known is not None:
            if nbytes != known[1]:  # resized in place (resize_, a growing out= result)
                self.live += nbytes - known[1]
                self._tracked[key] = (known[0], nbytes)
            return
        if key in inputs:
            return  # a view or an in-place result of a storage made before the pass
        self._tracked[key] = (StorageWeakRef(storage), nbytes)
        self.live += nbytes

    def _sweep(self) -> None:
        dead = [key for key, (ref, _) in self._tracked.items() if ref.expired()]
        for key in dead:
            self.live -= self._tracked.pop(key)[1]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self._sweep()  # what Python freed since the last operator
        out = func(*args, **(kwargs or {}))
        # An output whose storage is an input's is a view, an in-place or an out= result: it
        # allocates nothing (unless it grew, which _track follows). Any other output storage
        # is new, whatever the schema allows (`to` and `contiguous` may alias, yet copy).
        # Only an operator whose schema lets a result alias an input needs the comparison
        # (most do not: their results are new by contract, and the check costs time).
        schema = getattr(func, "_schema", None)
        may_alias = schema is None or any(r.alias_info is not None for r in schema.returns)
        inputs = (
            {
                t.untyped_storage()._cdata
                for t in pytree.tree_leaves((args, kwargs))
                if isinstance(t, torch.Tensor) and t.device.type == "cpu" and not t.is_mkldnn
            }
            if may_alias
            else set()
        )
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t, inputs)
        self.peak = max(self.peak, self.live)
        return out


@dataclass
class ForwardMemory:
    """The ``memory_mb`` meter of one model on ``device`` (see the module docstring).

    CUDA: call :meth:`before_forward`/:meth:`after_forward` around each image's forward(s),
    outside the timed region. CPU: call :meth:`measure_pass` once, before the timed loop (the
    protocol makes it a warm-up call).
    """

    device: torch.device
    peak_bytes: int | None = None
    kind: str = KIND_NONE

    @property
    def per_forward(self) -> bool:
        """True when the figure is read around the timed forwards (CUDA)."""
        return self.device.type == "cuda"

    def before_forward(self) -> None:
        """CUDA: reset the peak counter (no-op elsewhere)."""
        if self.per_forward:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def after_forward(self) -> None:
        """CUDA: read the peak since :meth:`before_forward` and keep the maximum."""
        if self.per_forward:
            torch.cuda.synchronize(self.device)
            peak = int(torch.cuda.max_memory_allocated(self.device))
            self.peak_bytes = peak if self.peak_bytes is None else max(self.peak_bytes, peak)
            self.kind = KIND_CUDA

    def measure_pass(self, run: Callable[[], object], *, resident: Iterable[torch.Tensor] = ()) -> None:
        """CPU: run ``run()`` (make the input, forward, return the output) under
        :class:`LiveTensorBytes` and keep its peak (``memory_kind: cpu_forward_peak``).

        ``resident`` are the tensors alive before the pass that belong to the figure: the
        placed model's parameters and buffers (counted once each, views included).
        """
        global _active
        tracker = LiveTensorBytes(resident)
        _active = True
        try:
            with tracker:
                out = run()
                del out
        finally:
            _active = False
        self.peak_bytes = tracker.peak
        self.kind = KIND_CPU

    def megabytes(self) -> float | None:
        """The figure in MB (2**20 bytes), or None when not measured."""
        return None if self.peak_bytes is None else self.peak_bytes / MIB


@dataclass
class SessionRssGrowth:
    """``memory_kind: ort_cpu_rss_growth`` (see the module docstring): :meth:`start` before the
    session exists, :meth:`stop` after warm-up; ``memory_mb`` None where ``/proc`` is missing."""

    kind: str = KIND_ORT_CPU
    _rss_kib: int | None = None

    def start(self) -> None:
        """Trim the heap, record ``VmRSS`` and reset the peak (``VmHWM``)."""
        gc.collect()
        _trim_heap()
        rss = _status_kib("VmRSS")
        self._rss_kib = rss if rss is not None and _reset_cpu_peak() else None

    def stop(self) -> float | None:
        """MB (2**20 bytes) the peak resident set rose above ``VmRSS`` at :meth:`start`."""
        peak = _status_kib("VmHWM")
        if self._rss_kib is None or peak is None:
            self.kind = KIND_NONE
            return None
        return max(0, peak - self._rss_kib) * 1024 / MIB


@dataclass
class NotMeasured:
    """A memory meter for a backend whose memory srbench cannot see (the browser runs the
    model in its own renderer process; compiled CPU kernels): ``memory_mb`` stays null,
    ``memory_kind`` says why, and ``note`` (if any) goes into the model's notes."""

    kind: str
    note: str | None = None

    def start(self) -> None:
        pass

    def stop(self) -> float | None:
        return None
