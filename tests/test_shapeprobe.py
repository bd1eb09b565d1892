"""Warm-up that cannot be gamed: a model whose forward time drops sharply only on shapes it
has seen before is flagged; honest models are not."""

from __future__ import annotations

from pathlib import Path

import pytest
import srbench_test_models
import torch
from torch import nn

from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.measure.shapeprobe import GAP_MS, RATIO, probe_shape_caching
from srbench.measure.timing import ForwardTimer
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.run.isolation import measure_in_worker
from srbench.run.protocol import measure_model

CPU = ForwardTimer(torch.device("cpu"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageCache:
    return ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path_factory.mktemp("images"))


def test_probe_flags_a_per_shape_cache_and_not_a_plain_model() -> None:
    x = torch.rand(1, 3, 24, 24)
    cached = srbench_test_models._ShapeCache(4).eval()
    cached(x)  # "pre-warmed" for the data set's own shape, as a gaming entry would be
    _, seen = CPU.time(lambda: cached(x))  # what the timed loop would read
    probe = probe_shape_caching(cached, x, CPU, seen)
    assert probe.flagged and probe.shapes == [[23, 23], [21, 21]]
    assert all(f >= RATIO * r and f - r >= GAP_MS for f, r in zip(probe.first_ms, probe.seen_ms, strict=True))
    assert "warm-up gaming suspected" in (probe.note() or "")
    plain = nn.Sequential(nn.Conv2d(3, 48, 3, padding=1), nn.PixelShuffle(4)).eval()
    plain(x)
    _, seen = CPU.time(lambda: plain(x))
    honest = probe_shape_caching(plain, x, CPU, seen)
    # One shape without the drop decides the verdict: the probe stops there.
    assert not honest.flagged and honest.note() is None and len(honest.first_ms) == 1


class _ScriptedTimer:
    """A ForwardTimer whose readings are given: the probe's decisions, without timing."""

    def __init__(self, readings_ms: list[float]) -> None:
        self.readings = list(readings_ms)

    def time(self, fn):  # type: ignore[no-untyped-def]
        return fn(), self.readings.pop(0)


@pytest.mark.parametrize(
    ("readings", "probed", "flagged"),
    [
        ([5.0], 1, False),  # honest: the first shape shows no drop, the second is never run
        ([100.0, 5.0], 2, False),  # one spike on one shape does not flag
        ([100.0, 90.0], 2, True),  # the drop on every shape flags
    ],
)
def test_probe_stops_at_the_first_shape_without_a_drop(
    readings: list[float], probed: int, flagged: bool
) -> None:
    timer = _ScriptedTimer(readings)
    probe = probe_shape_caching(nn.Identity(), torch.rand(1, 3, 24, 24), timer, 5.0)  # type: ignore[arg-type]
    assert len(probe.first_ms) == len(probe.seen_ms) == len(probe.shapes) == probed
    assert timer.readings == []  # one forward per probed shape, no more
    assert probe.flagged is flagged


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
