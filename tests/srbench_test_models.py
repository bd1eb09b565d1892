"""Test-only models that misbehave on purpose (imported by workers via SRBENCH_PLUGINS).

Each is a nearest-neighbour x`scale` upsampler with one parameter, plus its fault.
"""

from __future__ import annotations

import os
import signal
import time

import torch
import torch.nn.functional as F
from torch import nn

from srbench.models.registry import list_models, register_model


class _Nearest(nn.Module):
    def __init__(self, scale: int, fault: str) -> None:
        super().__init__()
        self.scale = scale
        self.fault = fault
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fault == "raise" and x.shape[-1] != 256:  # profiling (256x256) still works
            raise RuntimeError("deliberate failure in forward")
        if self.fault == "segfault" and x.shape[-1] != 256:
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.fault == "hang" and x.shape[-1] != 256:
            time.sleep(3600)
        if self.fault == "slow":
            time.sleep(0.4)
        if self.fault == "memhog":
            # An intermediate of 256 channels: memory grows with the input area.
            x = x.repeat(1, 256, 1, 1).reshape(x.shape[0], 256, 3, *x.shape[-2:]).mean(1)
        y = F.interpolate(x, scale_factor=self.scale, mode="nearest") * self.gain
        if self.fault == "nan":
            y = y * float("nan")
        if self.fault == "wrongsize":
            y = y[..., :-1]
        return y


class _ShapeCache(nn.Module):
    """Nearest x`scale` that does heavy, deterministic work the first time it sees an input
    shape and nothing on later calls: the per-shape warm-up the shape probe must flag."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.gain = nn.Parameter(torch.ones(1))
        self.seen: set[tuple[int, ...]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) not in self.seen:
            self.seen.add(tuple(x.shape))
            a = torch.full((256, 256), 1e-3)
            for _ in range(30):  # ~1 GFLOP: a few hundred ms on a CPU core
                a = (a @ a).clamp_(max=1e-3)
        return F.interpolate(x, scale_factor=self.scale, mode="nearest") * self.gain


if "test_shapecache" not in list_models(include_test_only=True):
    register_model(
        "test_shapecache",
        scales=(2, 3, 4),
        input_range=1.0,
        description="test-only: heavy work on the first forward of each shape",
        has_trained_weights=False,
        tags=("test-only",),
    )(lambda scale=4: _ShapeCache(scale))


FAULTS = ("raise", "segfault", "hang", "slow", "memhog", "nan", "wrongsize")

if "test_raise" not in list_models(include_test_only=True):
    for _fault in FAULTS:

        def _build(scale: int = 4, _fault: str = _fault) -> nn.Module:
            return _Nearest(scale, _fault)

        register_model(
            f"test_{_fault}",
            scales=(2, 3, 4),
            input_range=1.0,
            description=f"test-only: {_fault}",
            has_trained_weights=False,
            tags=("test-only",),
        )(_build)


def register() -> None:
    """Picklable no-op whose import registers the models above (``setup`` for workers)."""


def _kill_measuring_workers_parent_once() -> None:
    """Kill the process that started this worker's forkserver (a Ray worker), once per marker.

    The sweep tests set ``SRBENCH_TEST_KILL_MARKER``: the first cell to create that file
    (O_EXCL, so exactly one) SIGKILLs its Ray worker, an infrastructure failure Ray retries.
    """
    marker = os.environ.get("SRBENCH_TEST_KILL_MARKER")
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    forkserver = os.getppid()
    with open(f"/proc/{forkserver}/cmdline", "rb") as fh:
        in_worker = b"forkserver" in fh.read()
    if not in_worker:
        # Built outside a measuring worker (the sweep's identity of each cell builds every
        # network once in its own process): nothing here is a Ray worker to kill.
        os.close(fd)
        os.unlink(marker)
        return
    with open(f"/proc/{forkserver}/stat") as fh:
        ray_worker = int(fh.read().rsplit(")", 1)[1].split()[1])
    os.write(fd, str(ray_worker).encode())
    os.close(fd)
    os.kill(ray_worker, signal.SIGKILL)
    os._exit(1)


if "test_killonce" not in list_models(include_test_only=True):

    def _build_killonce(scale: int = 4) -> nn.Module:
        _kill_measuring_workers_parent_once()
        return _Nearest(scale, "none")

    register_model(
        "test_killonce",
        scales=(2, 3, 4),
        input_range=1.0,
        description="test-only: kills its Ray worker the first time it is built",
        has_trained_weights=False,
        tags=("test-only",),
    )(_build_killonce)
