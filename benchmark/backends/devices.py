"""Devices, dtypes and CPU threads: resolving ``--device`` and ``--threads``, refusing a
``--dtype`` a device cannot run."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from srbench.core.errors import SrbenchError

#: ``--dtype`` values and the torch dtype each one names.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; refuse CUDA where there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SrbenchError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SrbenchError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SrbenchError(f"--device {name}: only cpu and cuda are supported")
    return device


def check_dtype(dtype: str, device: torch.device) -> None:
    """Refuse a ``--dtype`` that is unknown or cannot run on ``device``."""
    if dtype not in DTYPES:
        raise SrbenchError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device.type != "cuda" and dtype == "fp16":
        raise SrbenchError("--dtype fp16 needs a CUDA device; use --dtype bf16 or fp32 on CPU")


# --------------------------------------------------------------------------- memory available


def _meminfo_available() -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit (``memory.max - memory.current``)."""
    try:
        rel = next(
            line.split(":", 2)[2]
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
        root = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text()))
    except (OSError, ValueError, StopIteration):
        return None


def _address_space_room() -> int | None:
    """Bytes left under ``RLIMIT_AS`` (``ulimit -v``) given this process's virtual size."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft in (resource.RLIM_INFINITY, -1):
            return None
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, ImportError):
        pass
    return None


def available_memory(device: torch.device) -> int | None:
    """Bytes a new allocation on ``device`` can take now; None when unknown.

    CUDA: free device memory (``torch.cuda.mem_get_info``). CPU: the smallest of Linux's
    ``MemAvailable``, the room under the cgroup v2 memory limit and the room under
    ``RLIMIT_AS``. An estimate: other processes allocate too.
    """
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None
    known = [v for v in (_meminfo_available(), _cgroup_room(), _address_space_room()) if v is not None]
    return min(known) if known else None


def output_bytes(height: int, width: int, scale: int, itemsize: int = 4) -> int:
    """Bytes of one (1, 3, height*scale, width*scale) output of ``itemsize``-byte floats."""
    return 3 * height * scale * width * scale * itemsize


def usable_cores() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` where the
    affinity mask is not available)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_threads(value: int | str) -> int | str:
    """``--threads``: a positive integer or ``all`` (as given: an int or ``"all"``); anything
    else is a one-line error."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise SrbenchError(f"--threads {value!r} is not a positive integer or 'all' (e.g. --threads 1)")
    return n


def resolve_threads(value: int | str) -> int:
    """The intra-op thread count ``--threads value`` means: ``all`` is :func:`usable_cores`."""
    parsed = parse_threads(value)
    return usable_cores() if parsed == "all" else int(parsed)


def apply_threads(value: int | str) -> int:
    """Set torch's intra-op threads to ``--threads value`` (ONNX Runtime sessions and the
    browser's WASM threads read torch's count); return the count."""
    n = resolve_threads(value)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
