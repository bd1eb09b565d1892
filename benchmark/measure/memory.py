"""Peak memory of a model's forward, measured apart from its timing and from srbench's metrics.

Definition of ``memory_mb`` (MB = 2**20 bytes), by ``memory_kind``:

``cuda_forward_peak``
    The largest ``torch.cuda.max_memory_allocated(device)`` over the model's measured
    forwards, each read right after its forward with ``torch.cuda.reset_peak_memory_stats``
    called right before it. At the reset the weights and the input are already allocated, so
    the figure counts the weights, the input, the output, every intermediate and cuDNN
    workspace of one forward (of ``--repeat`` forwards of one image), and nothing srbench
    allocates for its metrics (those tensors are freed before the next reset). Not the
    allocator's reserve. The reset and the read sit outside the timed region.
``cpu_forward_peak``
    One untimed forward before the timed loop (the protocol runs it as the last warm-up call
    at its shape, or right after warm-up; with ``--warmup 0``, after the timed loop, whose
    first forward must stay cold), on the dataset's largest LR image (most pixels;
    tiled exactly as the timed forwards were): the largest number of bytes held at once by
    the tensors alive during that pass (:class:`LiveTensorBytes`, a ``TorchDispatchMode``).
    The model's parameters and buffers are alive throughout; every storage an operator
    allocates during the pass (the input, each activation, the output, weights a forward
    derives, e.g. a reparameterised kernel) counts from that operator until it is freed,
    once however many views share it, at its current size. Views and in-place results
    allocate nothing; the uint8 LR array the input is converted from is the harness's and
    is not counted. The peak is taken after every operator, so it sees an operator's output
    while its inputs are still alive. It depends only on the model, its weights' dtype and
    the input shape: not on what the process did before (heap history, srbench's metrics,
    another model), so the same network reads the same figure with or without quality
    metrics. Not counted: scratch memory a kernel allocates and frees inside one operator
    (oneDNN workspaces). CUDA's kind counts such workspaces and rounds to the allocator's
    blocks: the two kinds are not comparable.
``ort_cpu_rss_growth``
    ONNX Runtime on the CPU: the growth of the process's peak resident set (``VmHWM``, reset
    when the meter starts) from just before the session is created to the end of warm-up:
    the session's weights, its CPU arena at its peak over every image shape, and the
    provider's workspaces. ORT's arena keeps what it allocates, so a pass after warm-up would
    see nothing; this is the whole session's footprint instead, read before any metric runs.
``cpu_compiled_not_measured``
    ``--compile`` on the CPU: ``memory_mb`` is ``None``. Inductor's generated kernels
    allocate their buffers outside PyTorch's operators, where the live-tensor count cannot
    see them (and dynamo does not compile under a dispatch mode), so the count would
    describe the eager model, not the timed compiled one.
``unavailable``
    Nothing was measured (ONNX Runtime on the CPU without Linux's ``/proc``); ``memory_mb``
    is ``None``.
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
