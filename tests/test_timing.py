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


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_percentiles_match_numpy(n: int) -> None:
    samples = list(np.random.default_rng(n).gamma(2.0, 3.0, n))
    s = RuntimeStats.from_samples(samples)
    for q, got in ((50, s.p50), (90, s.p90), (99, s.p99)):
        assert got == pytest.approx(np.percentile(samples, q), rel=1e-12)
    assert s.p50 == pytest.approx(s.median)
    assert s.cv == pytest.approx(np.std(samples) / np.mean(samples))
    assert s.min <= s.p50 <= s.p90 <= s.p99 <= s.max


def test_old_runtime_dict_still_reads() -> None:
    old = {"mean": 1.0, "median": 1.0, "std": 0.0, "min": 1.0, "max": 1.0, "n": 1}
    assert RuntimeStats(**old).p90 is None


def test_repeat_keeps_every_sample() -> None:
    timer = ForwardTimer(torch.device("cpu"))
    _, ms = timer.time_repeated(lambda: torch.zeros(1), 5)
    assert len(timer.last_samples_ms) == 5 and ms == float(np.median(timer.last_samples_ms))


def test_no_garbage_collection_inside_a_timed_forward() -> None:
    # A forward whose allocations make collections come due (thresholds of 1): none may run
    # inside the timed call (a full one costs ~0.1 s with torch loaded); the one that came
    # due runs after the timer stops, at the next allocation, not never.
    import gc

    events: list[bool] = []
    inside = [False]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            events.append(inside[0])

    def forward() -> torch.Tensor:
        inside[0] = True
        for _ in range(200):
            cycle: list = []
            cycle.append(cycle)  # cyclic garbage: only the collector frees it
        inside[0] = False
        return torch.zeros(1)

    old = gc.get_threshold()
    gc.callbacks.append(on_gc)
    try:
        gc.set_threshold(1, 1, 1)
        ForwardTimer(torch.device("cpu")).time(forward)
        assert gc.isenabled()
        [[] for _ in range(10)]  # allocations after the call: the deferred collection runs
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(on_gc)
    assert events and not any(events)


def test_a_model_measurement_freezes_the_heap_and_gives_it_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import gc

    from srbench.data.cache import ImageCache
    from srbench.data.datasets import load_dataset
    from srbench.models.specs import ModelSpec
    from srbench.results.config import RunConfig
    from srbench.runner import protocol

    seen: list[int] = []
    real = protocol.timed_loop

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.get_freeze_count())
        return real(*args, **kwargs)

    monkeypatch.setattr(protocol, "timed_loop", spy)
    images = ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path / "c")
    before = gc.get_freeze_count()
    result = protocol.measure_model(
        ModelSpec("bicubic", "bicubic"), images, RunConfig(models=["bicubic"], device="cpu", isolate=False)
    )
    assert result.status != "error", result.reason
    # Frozen during the loop (everything alive, the model and its warm-up included), all of
    # it given back to the collector afterwards.
    assert seen and seen[0] > before
    assert gc.get_freeze_count() == before
