"""RuntimeStats and the forward timer, against a second implementation (numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srbench.measure.timing import ForwardTimer, RuntimeStats, coefficient_of_variation


def test_stats_match_numpy() -> None:
    samples = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    s = RuntimeStats.from_samples(samples)
    assert s.mean == pytest.approx(np.mean(samples))
    assert s.median == pytest.approx(np.median(samples))
    assert s.std == pytest.approx(np.std(samples))  # population std (ddof=0)
    assert (s.min, s.max, s.n) == (1.0, 9.0, 8)


def test_single_sample_and_empty() -> None:
    assert RuntimeStats.from_samples([2.5]).std == 0.0
    with pytest.raises(ValueError):
        RuntimeStats.from_samples([])


def test_cv() -> None:
    assert coefficient_of_variation([2.0, 2.0]) == 0.0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(0.5)


def test_timer_returns_output_and_counts_calls() -> None:
    calls = []
    timer = ForwardTimer(torch.device("cpu"))

    def fn() -> torch.Tensor:
        calls.append(1)
        return torch.ones(2)

    out, ms = timer.time_repeated(fn, 5)
    assert len(calls) == 5 and out.sum().item() == 2.0 and ms >= 0.0
    with pytest.raises(ValueError):
        timer.time_repeated(fn, 0)
