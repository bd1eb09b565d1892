"""Devices, dtypes and CPU threads: resolving ``--device`` and ``--threads``, refusing a
``--dtype`` a device cannot run."""

from __future__ import annotations

import os

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
