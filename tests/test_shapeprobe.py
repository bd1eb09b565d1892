"""Warm-up that cannot be gamed: a model whose forward time drops sharply only on shapes it
has seen before is flagged; honest models are not."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import srbench_test_models
import torch
from torch import nn

from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.measure.shapeprobe import GAP_MS, RATIO, SPREAD_K, drop_margin, probe_shape_caching
from srbench.measure.timing import ForwardSample, ForwardTimer
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.runner.isolation import measure_in_worker
from srbench.runner.protocol import measure_model
from srbench.selfcheck.load import busy_processes

CPU = ForwardTimer(torch.device("cpu"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageCache:
    return ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path_factory.mktemp("images"))


@pytest.fixture
def one_thread():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # srbench's default --threads
    yield
    torch.set_num_threads(before)


def test_probe_flags_a_per_shape_cache_and_not_a_plain_model_under_load(one_thread: None) -> None:
    # Two spinning processes on this 2-core machine (plus whatever else runs): forwards are
    # preempted all the time. The verdicts must not change: the probe compares CPU time.
    x = torch.rand(1, 3, 24, 24)
    timer = ForwardTimer(torch.device("cpu"), threads=1)
    with busy_processes(2, seconds=90):
        for _ in range(3):
            cached = srbench_test_models._ShapeCache(4).eval()
            cached(x)  # "pre-warmed" for the data set's own shape, as a gaming entry would be
            _, seen = timer.time(lambda cached=cached: cached(x))  # what the timed loop would read
            probe = probe_shape_caching(cached, x, timer, seen, [timer.last.cost_ms])
            assert probe.flagged, probe
            assert probe.shapes == [[23, 23], [21, 21]] and probe.drops == [True, True]
            for first, after, margin in zip(
                probe.first_cost_ms, probe.after_cost_ms, probe.margin_ms, strict=True
            ):
                assert first >= RATIO * after and first - after >= margin >= GAP_MS
            assert "warm-up gaming suspected" in (probe.note() or "")
            plain = nn.Sequential(nn.Conv2d(3, 48, 3, padding=1), nn.PixelShuffle(4)).eval()
            plain(x)
            _, seen = timer.time(lambda plain=plain: plain(x))
            honest = probe_shape_caching(plain, x, timer, seen, [timer.last.cost_ms])
            # One shape without the drop decides the verdict: the probe stops there.
            assert not honest.flagged and honest.note() is None and len(honest.first_ms) == 1, honest


class _ScriptedTimer:
    """A CPU ForwardTimer whose forwards' costs (CPU ms) are given: the probe's decisions,
    without timing. A cost of None is a disturbed forward with a tenfold wall time."""

    def __init__(self, costs_ms: list[float], device: str = "cpu") -> None:
        self.costs = list(costs_ms)
        self.device = torch.device(device)
        self.last: ForwardSample | None = None

    def time(self, fn):  # type: ignore[no-untyped-def]
        cost = self.costs.pop(0)
        if self.device.type == "cuda":  # event time, disturbed when negative
            self.last = ForwardSample(abs(cost), disturbed=cost < 0)
        else:
            self.last = ForwardSample(cost * 10, cpu_share=0.1, disturbed=True, cpu_ms=cost)
        return fn(), self.last.ms


@pytest.mark.parametrize(
    ("costs", "seen", "probed", "flagged"),
    [
        ([5.0], 1.0, 1, False),  # honest: the first shape shows no drop, nothing else runs
        ([4.0], 0.1, 1, False),  # 40x the seen cost but less than GAP_MS more: no drop
        ([100.0, 90.0, 95.0, 99.0], 1.0, 1, False),  # confirmation: the shape stays slow, honest
        ([100.0, 1.0, 1.0, 1.0, 5.0], 1.0, 2, False),  # one shape drops, the next does not
        ([100.0, 1.0, 1.0, 1.0, 90.0, 1.0, 1.2, 1.1], 1.0, 2, True),  # the drop on both shapes
        # a noisy confirmation widens the margin: 4 x (40 - 1) > 100 - median: no drop
        ([100.0, 1.0, 40.0, 1.0], 1.0, 1, False),
    ],
)
def test_probe_rule(costs: list[float], seen: float, probed: int, flagged: bool) -> None:
    timer = _ScriptedTimer(costs)
    probe = probe_shape_caching(nn.Identity(), torch.rand(1, 3, 24, 24), timer, 1.0, [seen])  # type: ignore[arg-type]
    assert len(probe.first_ms) == len(probe.shapes) == len(probe.drops) == probed
    assert timer.costs == []  # no forward beyond what the verdict needs
    assert probe.flagged is flagged
    # Every forward here was disturbed (CPU share 0.1): CPU time judges it all the same.
    assert probe.passed_over == []


def test_on_cuda_a_disturbed_first_forward_is_passed_over() -> None:
    # Event times: a first forward NVML saw disturbed (negative here) cannot be judged.
    timer = _ScriptedTimer([-100.0, 100.0, 1.0, 1.0, 1.0, 90.0, 1.0, 1.0, 1.0], device="cuda")
    probe = probe_shape_caching(nn.Identity(), torch.rand(1, 3, 24, 24), timer, 1.0, [1.0])  # type: ignore[arg-type]
    assert probe.passed_over == [[23, 23]] and probe.shapes == [[21, 21], [19, 19]] and probe.flagged
    timer = _ScriptedTimer([-100.0] * 4, device="cuda")
    probe = probe_shape_caching(nn.Identity(), torch.rand(1, 3, 24, 24), timer, 1.0, [1.0])  # type: ignore[arg-type]
    assert not probe.flagged and probe.skipped == "every probed shape's first forward was disturbed"


def test_drop_margin_is_the_spread_or_the_floor() -> None:
    assert drop_margin([1.0, 1.1], [1.0]) == GAP_MS
    assert drop_margin([1.0, 11.0], [2.0]) == pytest.approx(SPREAD_K * 10.0)


def test_tiny_inputs_are_skipped_not_flagged() -> None:
    probe = probe_shape_caching(nn.Identity(), torch.rand(1, 3, 5, 5), CPU, 1.0)
    assert probe.skipped and not probe.flagged and probe.first_ms == []


def test_measure_model_notes_the_flag(images: ImageCache) -> None:
    config = RunConfig(profile_input=[1, 3, 32, 32])
    flagged = measure_model(ModelSpec("test_shapecache", "test_shapecache"), images, config)
    assert flagged.status != "error", flagged.reason
    assert flagged.shape_probe is not None and flagged.shape_probe["flagged"] is True
    assert any("warm-up gaming suspected" in n for n in flagged.notes)
    plain = measure_model(ModelSpec("bicubic", "bicubic"), images, config)
    assert plain.shape_probe is not None and plain.shape_probe["flagged"] is False
    assert not any("gaming" in n for n in plain.notes)
    skipped = measure_model(
        ModelSpec("bicubic", "bicubic"),
        images,
        RunConfig(profile_input=[1, 3, 32, 32], tile=20, tile_overlap=4),
    )
    assert skipped.shape_probe is not None and skipped.shape_probe["skipped"] == "--tile"


@pytest.mark.slow
def test_flag_survives_a_worker_process(images: ImageCache) -> None:
    spec = ModelSpec("test_shapecache", "test_shapecache")
    result = measure_in_worker(
        spec, images, RunConfig(profile_input=[1, 3, 32, 32]), setup=srbench_test_models.register
    )
    assert result.shape_probe is not None and result.shape_probe["flagged"] is True


def test_shape_probe_round_trips_through_results_json(tmp_path: Path) -> None:
    from srbench.results.schema import ModelResult

    m = ModelResult("m", "m", 4, "ok", shape_probe={"shapes": [[23, 23]], "flagged": True})
    assert ModelResult.from_dict(m.to_dict()).shape_probe == m.shape_probe


def test_probe_uses_the_smallest_croppable_image(tmp_path: Path) -> None:
    # The embedded sample: astronaut (128x128 LR) first, chelsea (75x112) the smallest. The
    # probe's new shape is chelsea's, 1 pixel smaller, against chelsea's own timed forward.
    images = ImageCache.build(load_dataset(None, scale=4), tmp_path / "sample")
    result = measure_model(ModelSpec("bicubic", "bicubic"), images, RunConfig(profile_input=[1, 3, 32, 32]))
    probe = result.shape_probe
    assert probe is not None and not probe["skipped"], probe
    assert probe["shapes"][0] == [74, 111]
    chelsea = next(i for i in result.images if i.name == "chelsea")
    assert probe["seen_ms"][0] == chelsea.runtime_ms
    # Its cost is the median CPU time (share x wall x threads) of chelsea's own timed forwards.
    walls = chelsea.runtime_samples_ms or [chelsea.runtime_ms]
    costs = [v * ms * torch.get_num_threads() for v, ms in zip(chelsea.runtime_cpu_share, walls, strict=True)]
    assert probe["seen_cost_ms"] == pytest.approx(statistics.median(costs))


def test_no_croppable_image_skips_the_probe(tmp_path: Path) -> None:
    import types

    import numpy as np

    rng = np.random.default_rng(0)
    pairs = []
    for i in range(2):
        lr = rng.integers(0, 256, (6, 7), dtype=np.uint8)[..., None].repeat(3, axis=2)
        pairs.append(types.SimpleNamespace(name=f"im{i}", lr=lr, hr=np.repeat(np.repeat(lr, 4, 0), 4, 1)))
    images = ImageCache.build(pairs, tmp_path / "tiny")
    result = measure_model(ModelSpec("bicubic", "bicubic"), images, RunConfig(profile_input=[1, 3, 32, 32]))
    assert result.shape_probe is not None and result.shape_probe["skipped"] == "input 6x7 too small to crop"
