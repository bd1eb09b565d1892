"""The NVML energy meter, against a fake ``pynvml`` (these tests run on CPU)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from srbench.data.cache import ImageCache
from srbench.measure.energy import EnergyMeter, mean_energy
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.results.schema import ModelResult, RunResult
from srbench.results.tables import console_table
from srbench.runner import protocol
from srbench.runner.protocol import measure_model


class _NotSupported(Exception):
    """Stands in for ``pynvml.NVMLError_NotSupported``."""


def _fake_nvml(readings_mj: list[int] | None, *, step_mj: int | None = None) -> types.ModuleType:
    """A module with the four NVML calls the meter uses.

    The energy counter returns ``readings_mj`` in order, or grows by ``step_mj`` per read;
    ``readings_mj=None`` and no step: the GPU does not support the counter.
    """
    fake = types.ModuleType("pynvml")
    fake.calls = []  # type: ignore[attr-defined]
    state = {"next": 0}

    def nvmlInit() -> None:
        fake.calls.append("init")  # type: ignore[attr-defined]

    def nvmlDeviceGetHandleByIndex(index: int) -> tuple[str, int]:
        return ("gpu", index)

    def nvmlDeviceGetTotalEnergyConsumption(handle: tuple[str, int]) -> int:
        if step_mj is not None:
            state["next"] += step_mj
            return state["next"]
        if readings_mj is None:
            raise _NotSupported("Not Supported")
        return readings_mj.pop(0)

    fake.nvmlInit = nvmlInit  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = nvmlDeviceGetHandleByIndex  # type: ignore[attr-defined]
    fake.nvmlDeviceGetTotalEnergyConsumption = nvmlDeviceGetTotalEnergyConsumption  # type: ignore[attr-defined]
    return fake


def test_energy_is_the_counter_difference_in_joules(monkeypatch: pytest.MonkeyPatch) -> None:
    # probe at open, then begin/end pairs: 5000 -> 8250 mJ is 3.25 J; 10 J over 4 forwards is 2.5 J.
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([1000, 5000, 8250, 10_000, 20_000]))
    meter = EnergyMeter(0)
    assert meter.available
    meter.begin()
    assert meter.end() == pytest.approx(3.25)
    meter.begin()
    assert meter.end(forwards=4) == pytest.approx(2.5)


def test_counter_restart_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # A driver reload resets the counter: the interval is unknown, never negative.
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([1000, 9000, 200]))
    meter = EnergyMeter(0)
    meter.begin()
    assert meter.end() is None


def test_missing_nvml_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    meter = EnergyMeter(0)
    assert not meter.available
    meter.begin()
    assert meter.end() is None
    assert meter.read_mj() is None


def test_unsupported_counter_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(None))
    meter = EnergyMeter(0)
    assert not meter.available
    meter.begin()
    assert meter.end() is None


def test_cpu_device_never_touches_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml(None, step_mj=100)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = EnergyMeter.for_device(torch.device("cpu"))
    assert not meter.available
    assert fake.calls == []  # type: ignore[attr-defined]


def test_mean_energy() -> None:
    assert mean_energy([1.0, 2.0, 4.5]) == pytest.approx(2.5)
    assert mean_energy([1.0, None]) is None
    assert mean_energy([]) is None


@pytest.fixture
def tiny_images(tmp_path: Path) -> ImageCache:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    lr = hr[::4, ::4].copy()
    pair = types.SimpleNamespace(name="img", lr=lr, hr=hr)
    return ImageCache.build([pair], tmp_path / "cache")


def test_runner_records_energy_per_image_and_mean(
    monkeypatch: pytest.MonkeyPatch, tiny_images: ImageCache
) -> None:
    # Every counter read adds 1500 mJ: begin -> end spans one step, 1.5 J for the image's forwards.
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(None, step_mj=1500))
    monkeypatch.setattr(protocol.EnergyMeter, "for_device", classmethod(lambda cls, device: cls(0)))
    config = RunConfig(models=["bicubic"], device="cpu", warmup=0, repeat=2, profile_input=[1, 3, 8, 8])
    result = measure_model(ModelSpec("bicubic", "bicubic"), tiny_images, config)
    assert result.status != "error", result.reason
    # Per forward run: 2, or more when one was disturbed and measured again (the JSON says).
    forwards = len(result.images[0].runtime_disturbed or [])
    assert forwards >= 2
    assert [i.energy_j for i in result.images] == [pytest.approx(1.5 / forwards)]
    assert result.energy_j_per_image == pytest.approx(1.5 / forwards)


def test_cpu_run_has_no_energy_and_no_column(tiny_images: ImageCache) -> None:
    config = RunConfig(models=["bicubic"], device="cpu", warmup=0, profile_input=[1, 3, 8, 8])
    result = measure_model(ModelSpec("bicubic", "bicubic"), tiny_images, config)
    assert result.status != "error", result.reason
    assert result.images[0].energy_j is None
    assert result.energy_j_per_image is None
    run = RunResult(environment={}, config=config.to_dict(), dataset={}, models=[result])
    titles = [str(c.header) for c in console_table(run).columns]
    assert "Energy (J/img)" not in titles
    with_energy = ModelResult(name="g", arch="g", scale=4, status="ok", energy_j_per_image=0.125)
    run.models.append(with_energy)
    table = console_table(run)
    titles = [str(c.header) for c in table.columns]
    assert titles[-1] == "Energy (J/img)"
    assert list(table.columns[-1].cells) == ["—", "0.125"]
