"""Memory and timing meters stay out of each other's way.

The CPU memory figure is the live-tensor peak of one untimed pass after warm-up and before the
timed loop: exact on known allocations and a closed-form network, independent of the process's
history; no allocator setting is ever changed; no timed forward runs with the meter active; the
figure does not include srbench's metrics.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch

from srbench.backends import pytorch as backend_mod
from srbench.data.cache import ImageCache
from srbench.measure import memory as memory_mod
from srbench.measure.memory import KIND_CPU, ForwardMemory, resident_tensors
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.runner.isolation import measure_in_worker
from srbench.runner.protocol import measure_model

Pair = namedtuple("Pair", "name lr hr")


def _cpu_peak(run, resident=()) -> int:  # type: ignore[no-untyped-def]
    meter = ForwardMemory(torch.device("cpu"))
    meter.measure_pass(run, resident=resident)
    assert meter.kind == KIND_CPU and meter.peak_bytes is not None
    return meter.peak_bytes


def test_known_allocation_is_measured_exactly() -> None:
    weights = torch.zeros(250_000)  # 1,000,000 bytes alive before the pass
    big = torch.ones(60_000_000)  # 240 MB allocated and freed before the pass: no trace
    del big
    peak = _cpu_peak(lambda: torch.ones(25_000_000), resident=[weights, weights[:10]])
    assert peak == 100_000_000 + 1_000_000  # the view of the weights is not counted twice


def test_empty_pass_reads_the_weights_only() -> None:
    assert _cpu_peak(lambda: None) == 0
    weights = torch.zeros(1000, dtype=torch.float64)
    assert _cpu_peak(lambda: None, resident=[weights]) == 8000


def test_two_convolutions_match_the_closed_form() -> None:
    """x (1,3,H,W) -> conv 3->8 -> ReLU -> conv 8->3: the peak is the weights, the input, and
    the larger of (conv1 out + ReLU out) and (ReLU out + conv2 out), all float32."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1)
    )
    h, w = 24, 40
    x0 = torch.rand(1, 3, h, w)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            x = x0.clone()
            return net(x)

    hw4 = h * w * 4
    weights = (8 * 3 * 9 + 8 + 3 * 8 * 9 + 3) * 4
    expected = weights + 3 * hw4 + max(8 * hw4 + 8 * hw4, 8 * hw4 + 3 * hw4)
    assert _cpu_peak(run, resident=resident_tensors(net)) == expected


def test_cpu_peak_does_not_depend_on_the_process_history() -> None:
    """The same pass reads the same bytes after the heap has grown, fragmented and shrunk
    (the RSS meter this replaced moved by 15-28 % with what ran before it)."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.GELU(), torch.nn.Conv2d(16, 3, 3)
    )

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return net(torch.rand(1, 3, 50, 70))

    first = _cpu_peak(run, resident=resident_tensors(net))
    junk = [torch.empty(int(n)) for n in np.random.default_rng(0).integers(1_000, 3_000_000, 200)]
    del junk[::2]
    second = _cpu_peak(run, resident=resident_tensors(net))
    del junk
    assert first == second > 0


def test_resident_tensors_count_parameters_and_buffers_once() -> None:
    conv = torch.nn.Conv2d(3, 8, 3)  # 8*3*3*3 + 8 = 224 float32
    bn = torch.nn.BatchNorm2d(8)  # weight, bias, running mean/var (8 each) + num_batches_tracked
    model = torch.nn.Sequential(conv, bn, conv)  # conv shared: counted once
    assert _cpu_peak(lambda: None, resident=resident_tensors(model)) == 224 * 4 + 32 * 4 + 8


class _Libc:
    """Records every libc function the meter calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return lambda *a: self.calls.append(name) or 0


def test_no_allocator_setting_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = _Libc()
    monkeypatch.setattr(memory_mod.ctypes, "CDLL", lambda name: libc)
    ForwardMemory(torch.device("cpu")).measure_pass(lambda: torch.ones(1000))
    assert libc.calls == []  # the CPU meter counts tensors: nothing of libc's is touched
    meter = memory_mod.SessionRssGrowth()
    meter.start()
    meter.stop()
    # ONNX Runtime's meter: malloc_trim is a one-off call; mallopt (a process-wide setting) never.
    assert "mallopt" not in libc.calls


def _shapes_cache(root: Path, sizes: tuple[tuple[int, int], ...] | None = None) -> ImageCache:
    rng = np.random.default_rng(0)
    sizes = sizes or ((20, 24), (16, 16), (20, 24), (12, 20))  # three distinct LR shapes
    pairs = [
        Pair(
            f"img{i}",
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            rng.integers(0, 256, (4 * h, 4 * w, 3), dtype=np.uint8),
        )
        for i, (h, w) in enumerate(sizes)
    ]
    return ImageCache.build(pairs, root)


def _logged_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    warmup: int,
    sizes: tuple[tuple[int, int], ...] | None = None,
    measured: bool = True,
    **options: object,
) -> tuple[list[tuple[tuple[int, ...], bool]], object]:
    images = _shapes_cache(tmp_path / "cache", sizes)
    log: list[tuple[tuple[int, ...], bool]] = []
    real = backend_mod.TorchBackend.forward

    def logged(self, x):  # type: ignore[no-untyped-def]
        log.append((tuple(x.shape[-2:]), memory_mod.meter_active()))
        return real(self, x)

    monkeypatch.setattr(backend_mod.TorchBackend, "forward", logged)
    config = RunConfig(device="cpu", warmup=warmup, profile_input=[1, 3, 8, 8], isolate=False, **options)
    result = measure_model(ModelSpec("bicubic", "bicubic"), images, config)
    assert result.status == "ok", result.reason
    if measured:
        assert result.memory_kind == KIND_CPU and result.memory_mb is not None and result.memory_mb > 0
    assert result.first_forward_ms is not None and result.first_forward_ms > 0
    assert "memory" in result.phases_s and "shape_probe" in result.phases_s
    return log, result


SHAPES = [(20, 24), (16, 16), (20, 24), (12, 20)]  # LR shapes of _shapes_cache; (20, 24) largest


def test_timed_forwards_run_without_the_meter_and_after_a_warm_up_per_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, result = _logged_run(tmp_path, monkeypatch, warmup=4)
    assert result.warmup_calls == 4  # type: ignore[attr-defined]
    # Warm-up: 4 calls in all, one on each other new shape and the rest (2) on the first
    # image; the second call on the first image (the largest shape) is the memory pass,
    # before any metric runs; then 4 timed; then the shape probe's forward(s).
    warm = [((20, 24), False), ((20, 24), True), ((16, 16), False), ((12, 20), False)]
    assert log[: len(warm)] == warm
    timed = _timed(result)
    assert [s for s, _ in log[len(warm) : len(warm) + len(timed)]] == timed
    assert not any(active for _, active in log[len(warm) :])


def _timed(result, shapes=None) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """The LR shape of every timed forward, in order: one per image, more when a disturbed
    forward was measured again (each image's ``runtime_disturbed`` lists its forwards)."""
    return [s for img, s in zip(result.images, shapes or SHAPES, strict=True) for _ in img.runtime_disturbed]


def test_a_single_cold_warm_up_call_is_never_the_memory_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for warmup in (1, 3):  # fewer calls than shapes still warms every shape once
        log, result = _logged_run(tmp_path / str(warmup), monkeypatch, warmup=warmup)
        assert result.warmup_calls == 3  # type: ignore[attr-defined]  # one per shape
        # The one call on the first (largest) image is the cold, timed-apart first forward:
        # the memory pass runs on its own after the warm-up, before the timed loop.
        warm = [((20, 24), False), ((16, 16), False), ((12, 20), False), ((20, 24), True)]
        assert log[: len(warm)] == warm
        timed = _timed(result)
        assert [s for s, _ in log[len(warm) : len(warm) + len(timed)]] == timed
        assert not any(active for _, active in log[len(warm) :])


@pytest.mark.slow
def test_memory_with_and_without_quality_metrics_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, official_weights: Path
) -> None:
    """span with its weights (metrics computed per image) and without (no metrics), each in
    its own worker as ``srbench run`` measures: the forward's memory is the same network's,
    so the figures agree (the issue asks for 15 %; the live-tensor meter gives equality; the
    RSS meter it replaced read 26.9-32.0 MB against 25.0 MB here)."""
    rng = np.random.default_rng(1)
    pairs = [
        Pair(
            f"p{i}",
            rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
            rng.integers(0, 256, (384, 512, 3), dtype=np.uint8),
        )
        for i in range(2)
    ]
    images = ImageCache.build(pairs, tmp_path / "cache")
    config = RunConfig(device="cpu", warmup=1, profile_input=[1, 3, 8, 8], offline=True)
    with_metrics = measure_in_worker(ModelSpec("span", "span"), images, config)
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "no-cache"))
    without = measure_in_worker(ModelSpec("span", "span"), images, config)
    assert with_metrics.status == "ok" and without.status == "no-weights", without.reason
    assert with_metrics.memory_mb is not None and without.memory_mb is not None
    assert with_metrics.memory_mb == without.memory_mb


def test_memory_pass_in_the_warm_up_reads_what_a_pass_of_its_own_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, in_warmup = _logged_run(tmp_path / "a", monkeypatch, warmup=4)
    _, own_pass = _logged_run(tmp_path / "b", monkeypatch, warmup=1)
    assert in_warmup.memory_mb == own_pass.memory_mb  # type: ignore[attr-defined]


def test_views_and_in_place_results_of_older_tensors_are_not_new_memory() -> None:
    before = torch.zeros(1_000_000)  # 4 MB made before the pass, not resident

    def run() -> torch.Tensor:
        before.add_(1.0)  # in place: no new storage
        return before[:10]  # a view: no new storage

    assert _cpu_peak(run) == 0


def test_a_storage_that_grows_in_the_pass_counts_at_its_new_size() -> None:
    def run() -> torch.Tensor:
        out = torch.empty(0)  # allocated in the pass, 0 bytes
        torch.cat([torch.ones(1000)] * 2, out=out)  # grows to 2000 float32
        return out

    # ones(1000), one tensor listed twice (4,000 B), alive while cat grows out to 8,000 B
    assert _cpu_peak(run) == 4_000 + 8_000


LARGEST_THIRD = ((12, 16), (16, 16), (20, 24), (12, 20))  # four shapes; the largest is image 2


def test_the_memory_pass_is_the_only_call_at_the_largest_shape_when_it_is_not_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, result = _logged_run(tmp_path, monkeypatch, warmup=2, sizes=LARGEST_THIRD)
    assert result.warmup_calls == 4  # type: ignore[attr-defined]  # --warmup 2, but four shapes
    # --warmup 2 with four shapes: one call per shape, the largest shape's call metered.
    warm = [((12, 16), False), ((16, 16), False), ((20, 24), True), ((12, 20), False)]
    assert log[: len(warm)] == warm
    timed = _timed(result, list(LARGEST_THIRD))
    assert [s for s, _ in log[len(warm) : len(warm) + len(timed)]] == timed


def test_a_failing_memory_pass_on_a_later_image_leaves_memory_unmeasured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(self, run, *, resident=()):  # type: ignore[no-untyped-def]
        raise RuntimeError("this shape cannot run")

    monkeypatch.setattr(memory_mod.ForwardMemory, "measure_pass", fails)
    _, result = _logged_run(tmp_path, monkeypatch, warmup=2, sizes=LARGEST_THIRD, measured=False)
    # The model is still measured (the timed loop meets that image itself); memory is not.
    assert result.memory_mb is None and result.memory_kind == "unavailable"  # type: ignore[attr-defined]
    assert len(result.images) == 4  # type: ignore[attr-defined]


def test_warm_up_forwards_are_tiled_as_the_timed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, result = _logged_run(tmp_path, monkeypatch, warmup=3, tile=8, tile_overlap=2)
    # Every forward, warm-up, memory pass and timed, sees tiles of at most 8 + 2 * 2 pixels.
    assert log and all(max(shape) <= 12 for shape, _ in log)
    assert all(i.tiled for i in result.images)  # type: ignore[attr-defined]


def test_without_warm_up_the_memory_pass_follows_the_timed_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--warmup 0 (--ntire-compat): the first timed forward is the model's first call, cold;
    the memory pass comes after the loop and reads what it reads anywhere else."""
    log, result = _logged_run(tmp_path / "cold", monkeypatch, warmup=0)
    timed = _timed(result)
    assert log[: len(timed) + 1] == [(s, False) for s in timed] + [((20, 24), True)]
    assert result.warmup_calls == 0  # type: ignore[attr-defined]
    image = result.images[0]  # type: ignore[attr-defined]
    first = (image.runtime_samples_ms or [image.runtime_ms])[0]  # its first forward, re-measured or not
    assert result.first_forward_ms == first  # type: ignore[attr-defined]
    _, warm = _logged_run(tmp_path / "warm", monkeypatch, warmup=4)
    assert result.memory_mb == warm.memory_mb  # type: ignore[attr-defined]


def test_the_input_the_harness_converts_is_counted() -> None:
    """uint8 LR -> float32 input through the protocol's own conversion: `to` and `contiguous`
    may return their input by schema, yet here they copy; the copy is the model's input and
    counts. Peak at the convolution: weights + input + output (the uint8 array does not)."""
    from srbench.backends.pytorch import to_model_input

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1)).eval()
    lr = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return net(to_model_input(lr, 1.0, torch.device("cpu"), torch.float32))

    weights, hw = (8 * 3 * 9 + 8) * 4, 24 * 40
    assert _cpu_peak(run, resident=resident_tensors(net)) == weights + 3 * hw * 4 + 8 * hw * 4
