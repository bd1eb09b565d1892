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
``cpu_forward_rss``
    One extra, untimed forward, right after warm-up and before the timed loop (so before
    srbench's metrics have run in the process), on the dataset's largest LR image
    (most pixels; tiled exactly as the timed forwards were): the bytes of the model's
    parameters and buffers plus the growth of the process's peak resident set (``VmHWM``)
    during that pass over its resident size (``VmRSS``) just before it. The pass creates the
    input, runs the forward and holds the output; the peak is reset first by writing ``5`` to
    ``/proc/self/clear_refs`` (Linux), and freed heap memory is returned to the kernel with
    glibc's one-off ``malloc_trim(0)`` so that earlier peaks do not hide this one. No
    allocator setting is changed, and nothing is measured while forwards are timed. Measured
    in the model's worker process, so another model's allocations never inflate it.
``ort_cpu_rss_growth``
    ONNX Runtime on the CPU: the growth of the process's peak resident set (``VmHWM``, reset
    when the meter starts) from just before the session is created to the end of warm-up:
    the session's weights, its CPU arena at its peak over every image shape, and the
    provider's workspaces. ORT's arena keeps what it allocates, so a pass after warm-up would
    see nothing; this is the whole session's footprint instead, read before any metric runs.
``unavailable``
    Neither applies (non-Linux CPU); ``memory_mb`` is ``None``.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MIB = 2**20

KIND_CUDA = "cuda_forward_peak"
KIND_CPU = "cpu_forward_rss"
KIND_ORT_CPU = "ort_cpu_rss_growth"
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


def resident_bytes(module: nn.Module) -> int:
    """Bytes of ``module``'s parameters and buffers (each tensor counted once)."""
    seen: set[int] = set()
    total = 0
    for t in [*module.parameters(), *module.buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


@dataclass
class ForwardMemory:
    """The ``memory_mb`` meter of one model on ``device`` (see the module docstring).

    CUDA: call :meth:`before_forward`/:meth:`after_forward` around each image's forward(s),
    outside the timed region. CPU: call :meth:`measure_pass` once, after warm-up and before
    the timed loop.
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

    def measure_pass(self, run: Callable[[], object], *, weights_bytes: int) -> None:
        """CPU: run ``run()`` (make the input, forward, return the output) under the RSS meter.

        ``weights_bytes`` (:func:`resident_bytes` of the placed model) is added: the weights
        were resident before the pass began.
        """
        global _active
        gc.collect()
        _trim_heap()
        rss = _status_kib("VmRSS")
        if rss is None or not _reset_cpu_peak():
            self.kind = KIND_NONE
            return
        _active = True
        try:
            out = run()
            peak = _status_kib("VmHWM")
            del out
        finally:
            _active = False
        if peak is None:
            return
        self.peak_bytes = weights_bytes + max(0, peak - rss) * 1024
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
