"""GPU energy through NVML (``nvidia-ml-py``, imported as ``pynvml``).

NVML keeps a per-GPU cumulative energy counter, ``nvmlDeviceGetTotalEnergyConsumption``, in
**millijoules** since the driver was loaded (Volta and newer). :class:`EnergyMeter` reads it
before and after each image's timed forward(s) and reports **joules per forward**:
``(end_mJ - begin_mJ) / 1000 / forwards``. The readings sit outside the CUDA events that
time the forward, and the device is synchronised before each reading so that energy of
earlier queued work is not attributed to the forward, nor the forward's own tail lost.

The counter is the whole board's energy (idle power included) and NVML refreshes it every
few tens of milliseconds on most boards, so a forward much shorter than that reads as a
multiple of the refresh step; the per-image figure is meaningful as a mean over a dataset.

Robustness: no GPU, no ``pynvml``, no NVML library, a GPU without the counter, or any NVML
error all give an unavailable meter whose readings are ``None``; measuring never fails
because of it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import torch


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def nvml_index(device: torch.device) -> int:
    """The NVML index of CUDA ``device`` (CUDA_VISIBLE_DEVICES and CUDA ordering respected)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    try:
        # CUDA may number GPUs differently from NVML (fastest-first ordering, a
        # CUDA_VISIBLE_DEVICES subset); torch knows the mapping.
        return int(torch.cuda._get_nvml_device_index(index))
    except Exception:
        return int(index)


def energy_counter_supported(nvml: Any, handle: Any) -> bool:
    """True when ``handle``'s GPU answers ``nvmlDeviceGetTotalEnergyConsumption``."""
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception:
        return False
    return True


class EnergyMeter:
    """Joules per forward from NVML's energy counter (see the module docstring).

    Use :meth:`for_device` in the protocol; ``EnergyMeter(index)`` opens NVML GPU ``index``
    directly. An unavailable meter (CPU, no NVML, no counter) returns ``None`` everywhere.
    """

    def __init__(self, index: int | None, *, synchronize: Callable[[], None] | None = None) -> None:
        self._nvml: Any = None
        self._handle: Any = None
        self._synchronize = synchronize
        self._begin_mj: int | None = None
        if index is None:
            return
        nvml = _import_nvml()
        if nvml is None:
            return
        try:
            nvml.nvmlInit()
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:
            return
        if energy_counter_supported(nvml, handle):
            self._nvml, self._handle = nvml, handle

    @classmethod
    def for_device(cls, device: torch.device | str) -> EnergyMeter:
        """A meter for ``device``; unavailable unless it is a CUDA GPU with the counter."""
        device = torch.device(device)
        if device.type != "cuda" or not torch.cuda.is_available():
            return cls(None)
        return cls(nvml_index(device), synchronize=lambda: torch.cuda.synchronize(device))

    @property
    def available(self) -> bool:
        """True when readings are real."""
        return self._handle is not None

    def read_mj(self) -> int | None:
        """The counter in millijoules, or None (unavailable, or NVML failed this time)."""
        if self._handle is None:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:
            return None

    def _read_synced(self) -> int | None:
        if self._handle is None:
            return None
        if self._synchronize is not None:
            self._synchronize()
        return self.read_mj()

    def begin(self) -> None:
        """Read the counter before the timed forward(s)."""
        self._begin_mj = self._read_synced()

    def end(self, forwards: int = 1) -> float | None:
        """Joules per forward since :meth:`begin`; None when unavailable or inconsistent.

        ``forwards`` is how many forwards ran between the readings (``--repeat``).
        """
        start, self._begin_mj = self._begin_mj, None
        stop = self._read_synced()
        if start is None or stop is None or stop < start or forwards < 1:
            # stop < start: the counter restarted (driver reload); the interval is unknown.
            return None
        return (stop - start) / 1000.0 / forwards


def mean_energy(values: Iterable[float | None]) -> float | None:
    """Mean of the per-image joules, or None when any image has no reading."""
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return None
    return statistics.fmean(float(v) for v in vals)  # type: ignore[arg-type]
