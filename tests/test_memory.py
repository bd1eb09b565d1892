"""Peak memory on CPU: a known allocation is measured, freed memory does not hide peaks."""

from __future__ import annotations

import sys

import pytest
import torch

from srbench.measure.memory import MIB, PeakMemory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")


def test_known_allocation_is_measured() -> None:
    big = torch.ones(60_000_000)  # 240 MB allocated and freed before the pass
    del big
    meter = PeakMemory(torch.device("cpu"))
    meter.start()
    live = torch.ones(25_000_000)  # 100,000,000 bytes touched during the pass
    peak = meter.stop()
    del live
    assert meter.kind == "cpu_peak_rss_delta"
    expected = 100_000_000 / MIB
    assert peak is not None and 0.97 * expected <= peak <= 1.05 * expected


def test_empty_pass_is_near_zero() -> None:
    meter = PeakMemory(torch.device("cpu"))
    meter.start()
    assert meter.stop() < 2.0
