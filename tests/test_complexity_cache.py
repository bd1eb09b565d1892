"""The complexity cache: hits skip every counter, any change to what counts depend on misses."""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from srbench.commands.profile import profile_specs
from srbench.data.cache import ImageCache
from srbench.errors import SrbenchError
from srbench.execution.config import RunConfig
from srbench.execution.protocol import measure_model
from srbench.execution.specs import ModelSpec
from srbench.measure import complexity_cache, counting
from srbench.measure.complexity_cache import (
    cache_dir,
    cached_profile,
    from_json,
    structure_hash,
    to_json,
)
from srbench.measure.counting import Complexity, profile_model
from srbench.models.registry import create_model, get_entry

SHAPE = (1, 3, 16, 16)


def _span() -> nn.Module:
    return create_model("span", scale=4)


def _profile(model: nn.Module, **kw: object) -> tuple[Complexity, bool]:
    args = {"arch": "span", "build_args": {}, "scale": 4, "input_range": 1.0, **kw}
    return cached_profile(model, SHAPE, **args)  # type: ignore[arg-type]


@pytest.fixture
def fvcore_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the fvcore counter (the expensive traced forward)."""
    calls: list[int] = []
    real = counting.fvcore_analysis

    def counted(model: nn.Module, x: torch.Tensor):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(model, x)

    monkeypatch.setattr(counting, "fvcore_analysis", counted)
    return calls


def _no_fvcore(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise AssertionError("fvcore was called although the counts are cached")

    monkeypatch.setattr(counting, "fvcore_analysis", boom)


def test_second_profile_hits_the_cache_and_equals_fresh_counts(
    monkeypatch: pytest.MonkeyPatch, fvcore_calls: list[int]
) -> None:
    fresh = profile_model(_span(), SHAPE)  # an independent count (not through the cache)
    first, hit = _profile(_span())
    assert not hit and fvcore_calls == [1, 1]
    assert len(list(cache_dir().glob("*.json"))) == 1
    _no_fvcore(monkeypatch)
    second, hit = _profile(_span())
    assert hit
    for c in (first, second):
        assert dataclasses.replace(c, seconds=0.0) == dataclasses.replace(fresh, seconds=0.0)
    assert isinstance(second.input_shape, tuple) and second.flops == fresh.flops > 0


def test_recount_bypasses_and_rewrites(fvcore_calls: list[int]) -> None:
    _profile(_span())
    _, hit = _profile(_span(), recount=True)
    assert not hit and fvcore_calls == [1, 1]
    _, hit = _profile(_span())
    assert hit and fvcore_calls == [1, 1]


def test_changed_structure_misses(fvcore_calls: list[int]) -> None:
    _profile(_span())
    wider = create_model("span_tiny", scale=4)
    assert structure_hash(wider) != structure_hash(_span())
    _, hit = _profile(wider)
    assert not hit and fvcore_calls == [1, 1]
    # Same class and shapes, one extra submodule: still a different structure.
    extended = _span()
    extended.add_module("extra", nn.Identity())
    _, hit = _profile(extended)
    assert not hit


def test_weights_do_not_change_the_key() -> None:
    a, b = _span(), _span()
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)
    assert structure_hash(a) == structure_hash(b)


@pytest.mark.parametrize(
    "change",
    [
        {"scale": 2},
        {"input_range": 255.0},
        {"build_args": {"feature_channels": 48}},
        {"arch": "span_other"},
    ],
)
def test_each_key_part_misses(change: dict, fvcore_calls: list[int]) -> None:
    _profile(_span())
    _, hit = _profile(_span(), **change)
    assert not hit and len(fvcore_calls) == 2


def test_changed_versions_miss(monkeypatch: pytest.MonkeyPatch, fvcore_calls: list[int]) -> None:
    _profile(_span())
    real = complexity_cache._versions()
    for part in ("torch", "fvcore", "srbench"):
        monkeypatch.setattr(complexity_cache, "_versions", lambda part=part: {**real, part: "9.9.9"})
        _, hit = _profile(_span())
        assert not hit, part
    assert len(fvcore_calls) == 4


def test_corrupt_entry_is_a_miss_and_is_rewritten(fvcore_calls: list[int]) -> None:
    _profile(_span())
    (entry,) = cache_dir().glob("*.json")
    entry.write_text("{not json")
    _, hit = _profile(_span())
    assert not hit
    assert json.loads(entry.read_text())["complexity"]["flops"] > 0


def test_every_field_round_trips() -> None:
    # Non-default values in every field, whatever fields the record has today.
    samples = {int: 7, float: 2.5, str: "x"}
    values = {}
    for f in dataclasses.fields(Complexity):
        if f.name == "input_shape":
            values[f.name] = (1, 3, 8, 8)
        elif f.name == "unsupported_ops":
            values[f.name] = {"aten::silu_": 3}
        else:
            kind = type(getattr(Complexity((1,), 1, 1, 1, 1), f.name))
            values[f.name] = samples.get(kind, 11)
    record = Complexity(**values)
    back = from_json(json.loads(json.dumps(to_json(record))))
    assert back == record
    assert {f.name: type(getattr(back, f.name)) for f in dataclasses.fields(Complexity)} == {
        f.name: type(getattr(record, f.name)) for f in dataclasses.fields(Complexity)
    }


def test_profile_command_rows_use_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = [ModelSpec("span", "span")]
    (first,) = profile_specs(specs, scale=4, input_shape=list(SHAPE))
    assert first["from_cache"] is False
    _no_fvcore(monkeypatch)
    (second,) = profile_specs(specs, scale=4, input_shape=list(SHAPE))
    assert second["from_cache"] is True
    assert {k: v for k, v in second.items() if k not in ("seconds", "from_cache")} == {
        k: v for k, v in first.items() if k not in ("seconds", "from_cache")
    }
    # --recount counts afresh: fvcore runs (and here fails, reported as the model's failure).
    with pytest.raises(SrbenchError, match="fvcore was called"):
        profile_specs(specs, scale=4, input_shape=list(SHAPE), recount=True)


def test_runner_counts_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    pair = types.SimpleNamespace(name="img", lr=hr[::4, ::4].copy(), hr=hr)
    images = ImageCache.build([pair], tmp_path / "c")
    config = RunConfig(models=["span"], device="cpu", warmup=0, profile_input=list(SHAPE), isolate=False)
    first = measure_model(ModelSpec("span", "span"), images, config)
    assert first.status != "error", first.reason
    _no_fvcore(monkeypatch)
    second = measure_model(ModelSpec("span", "span"), images, config)
    assert second.status != "error", second.reason
    assert (second.params, second.flops, second.activations, second.convs) == (
        first.params,
        first.flops,
        first.activations,
        first.convs,
    )
    assert second.unsupported_ops == first.unsupported_ops
    assert second.flops_dispatch == first.flops_dispatch
    assert get_entry("span").input_range == 1.0
