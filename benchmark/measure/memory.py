"""Peak memory of one model's measured pass.

Definition of ``memory_mb`` (MB = 2**20 bytes), by ``memory_kind``:

``cuda_max_allocated``
    ``torch.cuda.max_memory_allocated(device)`` read after the model's image loop, with
    ``torch.cuda.reset_peak_memory_stats(device)`` called right before the model is moved
    to the device. It counts every tensor the caching allocator handed out (weights,
    inputs, outputs, intermediates, cuDNN workspaces), not the allocator's reserve.
``cpu_peak_rss_delta``
    The process's peak resident set size (``VmHWM``) during the pass minus its resident
    size (``VmRSS``) when the pass started. The peak is reset first by writing ``5`` to
    ``/proc/self/clear_refs`` (Linux). Measured inside the model's worker process, so
    another model's allocations never inflate it. So that freed memory really leaves the
    resident set (else glibc keeps it in the heap and later peaks hide in it), the start
    calls ``malloc_trim(0)`` and pins glibc's mmap threshold at 64 KiB: every tensor of
    64 KiB or more gets its own mapping and is returned to the kernel when freed.
``unavailable``
    Neither applies (non-Linux CPU); ``memory_mb`` is ``None``.
"""

from __future__ import annotations

import ctypes
import gc
from dataclasses import dataclass
from pathlib import Path

import torch

MIB = 2**20

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


_M_MMAP_THRESHOLD = -3  # mallopt parameter number (glibc malloc.h)


def _tighten_glibc_heap() -> None:
    # Not glibc (musl, macOS): nothing to do; the figure is then an upper bound.
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_cpu_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class PeakMemory:
    """Measures peak memory between :meth:`start` and :meth:`stop` on ``device``."""

    device: torch.device
    kind: str = "unavailable"
    _baseline_kib: int = 0

    def start(self) -> None:
        """Reset the peak counters and record the baseline."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda_max_allocated"
            return
        gc.collect()
        _tighten_glibc_heap()
        rss = _status_kib("VmRSS")
        if rss is not None and _reset_cpu_peak():
            self._baseline_kib = rss
            self.kind = "cpu_peak_rss_delta"
        else:
            self.kind = "unavailable"

    def stop(self) -> float | None:
        """Peak MB (2**20 bytes) since :meth:`start`, per :attr:`kind`."""
        if self.kind == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / MIB
        if self.kind == "cpu_peak_rss_delta":
            peak = _status_kib("VmHWM")
            if peak is None:
                return None
            return max(0, peak - self._baseline_kib) * 1024 / MIB
        return None
