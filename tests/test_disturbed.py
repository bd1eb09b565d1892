"""Disturbed forwards: the rule against its closed form, a worker preempted on purpose is
flagged, re-measuring stays within its budget, the row counts what was disturbed; NVML facts
through a stand-in; thread control applied, recorded and hashed; --runs spread."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest
import torch

from srbench.backends.devices import apply_threads, parse_threads, resolve_threads, usable_cores
from srbench.core.errors import SrbenchError
from srbench.measure.spread import median_interval, run_spread
from srbench.measure.timing import (
    DISTURBED_MIN_MS,
    DISTURBED_SHARE,
    ForwardSample,
    ForwardTimer,
    GpuWatch,
    forward_budget,
    image_time,
    is_disturbed,
)
from srbench.results.config import RunConfig, config_hash, hashed_config
from srbench.results.environment import oversubscription_notes
from srbench.results.schema import ImageResult, ModelResult, RunResult
from srbench.results.tables import caption
from srbench.runner.protocol import disturbance_summary
from srbench.selfcheck.load import busy_processes, pinned


@pytest.fixture
def one_thread():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _work() -> torch.Tensor:
    # ~50-100 ms of one core: many scheduler slices, so a competitor on the core shows.
    a = torch.full((256, 256), 1e-3)
    for _ in range(60):
        a = (a @ a).clamp_(max=1e-3)
    return a


def test_the_rule_is_its_definition() -> None:
    # share = cpu / (wall * threads); disturbed below DISTURBED_SHARE with >= DISTURBED_MIN_MS lost.
    assert not is_disturbed(100.0, 95.0, 1)
    assert is_disturbed(100.0, 50.0, 1)
    assert is_disturbed(100.0, 150.0, 2)  # two threads, 75 % of their time
    assert not is_disturbed(100.0, 190.0, 2)
    # Lost time below the floor is never a disturbance, whatever the share.
    assert not is_disturbed(DISTURBED_MIN_MS * 0.99, 0.0, 1)
    assert is_disturbed(DISTURBED_MIN_MS, 0.0, 1)
    assert not is_disturbed(0.0, 0.0, 1)


def test_a_forward_preempted_on_purpose_is_flagged(one_thread: None) -> None:
    # This thread and a spinning process pinned to the same CPU: the forward gets about half
    # of the core, whatever else the machine runs; the timer must say so.
    cpu = min(os.sched_getaffinity(0))
    timer = ForwardTimer(torch.device("cpu"), threads=1)
    with pinned({cpu}), busy_processes(1, cpus={cpu}, seconds=60):
        timer.time(_work)
        sample = timer.last
        _, ms = timer.time_repeated(_work, 2, remeasure=True)
        samples = timer.last_samples
    assert sample is not None and sample.disturbed, sample
    assert sample.cpu_share is not None and sample.cpu_share < DISTURBED_SHARE
    assert sample.cpu_ms is not None and sample.cpu_ms < sample.ms
    assert sample.nivcsw is not None and sample.nivcsw > 0  # the scheduler took the core away
    # Re-measured within the budget, every try kept with its flag; none clean: the shortest.
    assert 2 <= len(samples) <= forward_budget(2)
    if all(s.disturbed for s in samples):
        assert len(samples) == forward_budget(2) and ms == image_time(samples)


class _Scripted(ForwardTimer):
    """A CPU timer whose forwards are given: (ms, disturbed) each."""

    def __init__(self, script: list[tuple[float, bool]]) -> None:
        super().__init__(torch.device("cpu"), threads=1)
        self.script = list(script)

    def time(self, fn):  # type: ignore[no-untyped-def]
        ms, bad = self.script.pop(0)
        self.last = ForwardSample(ms, cpu_share=0.5 if bad else 1.0, disturbed=bad, cpu_ms=ms)
        return fn(), ms


@pytest.mark.parametrize(
    ("script", "repeat", "runs", "median"),
    [
        ([(5.0, False)], 1, 1, 5.0),  # clean: one forward
        ([(50.0, True), (5.0, False)], 1, 2, 5.0),  # disturbed, measured again
        ([(60.0, True), (50.0, True), (70.0, True)], 1, 3, 50.0),  # budget 3: the shortest
        ([(1.0, False), (90.0, True), (3.0, False)], 2, 3, 2.0),  # median of the clean ones
    ],
)
def test_remeasure_budget_and_median(
    script: list[tuple[float, bool]], repeat: int, runs: int, median: float
) -> None:
    timer = _Scripted(script + [(999.0, False)] * 5)
    _, ms = timer.time_repeated(lambda: torch.zeros(1), repeat, remeasure=True)
    assert len(timer.last_samples) == runs and ms == median
    assert [s.ms for s in timer.last_samples] == [v for v, _ in script]


def test_without_remeasure_the_repeat_is_exact() -> None:
    timer = _Scripted([(50.0, True), (1.0, False), (3.0, False)])
    _, ms = timer.time_repeated(lambda: torch.zeros(1), 3)
    assert len(timer.last_samples) == 3 and ms == 3.0  # median of all three, as before


def test_the_row_counts_disturbed_forwards() -> None:
    m = ModelResult("m", "m", 4, "ok")
    m.images = [
        ImageResult("a", 1.0, runtime_disturbed=[True, False], runtime_samples_ms=[4.0, 1.0]),
        ImageResult("b", 1.0, runtime_disturbed=[True, True, True], runtime_samples_ms=[8.0, 6.0, 9.0]),
        ImageResult("c", 1.0, runtime_disturbed=[False]),
    ]
    m.images[0].runtime_cpu_share = [0.25, 1.0]  # CPU time per thread: 1.0, 1.0 -> 1.0
    m.images[1].runtime_cpu_share = [0.25, 0.5, 0.2]  # 2.0, 3.0, 1.8 -> 2.0
    m.images[2].runtime_cpu_share = [0.5]  # 0.5
    disturbance_summary(m)
    assert (m.disturbed_forwards, m.timed_forwards, m.disturbed_images) == (4, 6, 1)
    assert m.cpu_time_ms == pytest.approx(1.0)  # median of 1.0, 2.0, 0.5
    assert any("4 of 6 timed forwards were disturbed" in n for n in m.notes)
    back = ModelResult.from_dict(m.to_dict())
    assert back.images[1].runtime_disturbed == [True, True, True] and back.disturbed_forwards == 4


def test_gpu_watch_reads_other_processes_and_throttling() -> None:
    fake = types.SimpleNamespace(
        nvmlClocksThrottleReasonGpuIdle=0x1,
        nvmlClocksThrottleReasonApplicationsClocksSetting=0x2,
        procs=[types.SimpleNamespace(pid=42)],
        reasons=0x1,
    )
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: fake.procs
    fake.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: fake.reasons
    watch = GpuWatch(fake, handle=None, pid=42)
    assert watch.read() is None  # only itself, idle: undisturbed
    fake.procs = [types.SimpleNamespace(pid=42), types.SimpleNamespace(pid=7)]
    assert "other processes on the GPU (pid 7)" in (watch.read() or "")
    fake.procs = [types.SimpleNamespace(pid=9042)]  # srbench itself, seen by its host pid
    assert watch.read() is None
    fake.procs = [types.SimpleNamespace(pid=9042), types.SimpleNamespace(pid=7)]
    assert "pid 7, 9042" in (watch.read() or "")
    fake.procs, fake.reasons = [], 0x1 | 0x20  # + SW thermal slowdown
    assert "0x20" in (watch.read() or "")

    def broken(h):  # type: ignore[no-untyped-def]
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    fake.nvmlDeviceGetComputeRunningProcesses = fake.nvmlDeviceGetCurrentClocksThrottleReasons = broken
    assert watch.read() is None  # NVML failing says nothing, never raises


# --------------------------------------------------------------------------- threads


def test_threads_parse_and_resolve() -> None:
    assert parse_threads("all") == "all" and parse_threads("3") == 3 and parse_threads(2) == 2
    assert resolve_threads("all") == usable_cores() == len(os.sched_getaffinity(0))
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(SrbenchError, match="--threads"):
            parse_threads(bad)


def test_threads_are_applied() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        assert apply_threads("all") == usable_cores() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_config_hash_covers_threads() -> None:
    ds = {"name": "sample-mini"}
    one, every = RunConfig(threads=1).to_dict(), RunConfig(threads="all").to_dict()
    assert config_hash(one, ds) != config_hash(every, ds)
    assert RunConfig().threads == 1
    # A file written before --threads ran with torch's default, every core: it hashes so.
    old = {k: v for k, v in every.items() if k != "threads"}
    assert hashed_config(old)["threads"] == "all" and config_hash(old, ds) == config_hash(every, ds)
    assert RunConfig.from_dict(old).threads == "all"


def test_measure_model_runs_with_the_configured_threads(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from srbench.data.cache import ImageCache
    from srbench.data.datasets import load_dataset
    from srbench.models.specs import ModelSpec
    from srbench.runner import protocol

    seen: list[int] = []
    real = protocol.timed_loop

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(protocol, "timed_loop", spy)
    images = ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path / "c")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = protocol.measure_model(
            ModelSpec("bicubic", "bicubic"), images, RunConfig(models=["bicubic"], isolate=False, threads=1)
        )
    finally:
        torch.set_num_threads(before)
    assert result.status != "error", result.reason
    assert seen == [1]
    # Every timed forward carries its flag and CPU share; the row counts them.
    assert all(i.runtime_disturbed and i.runtime_cpu_share for i in result.images)
    assert result.timed_forwards == sum(len(i.runtime_disturbed or []) for i in result.images)


def test_run_records_threads_and_says_them_in_the_caption(tmp_path: Path) -> None:
    from srbench.runner.orchestrator import run_benchmark

    def fake(spec, images, config, **kw):  # type: ignore[no-untyped-def]
        return ModelResult(spec.name, spec.arch, 4, "no-weights")

    config = RunConfig(models=["bicubic"], data="sample-mini", threads="all")
    run, _ = run_benchmark(config, tmp_path / "out", measure=fake)
    facts = run.environment["threads"]
    assert facts["requested"] == "all" and facts["used"] == usable_cores() == run.environment["torch_threads"]
    assert f"{usable_cores()} CPU thread(s) (--threads all)" in caption(run)


def test_oversubscription_is_said() -> None:
    env = {"threads": {"used": 4, "usable_cores": 2, "load_before": 0.1}}
    notes = oversubscription_notes(env, 0, 10)
    assert "4 threads on 2 usable core(s)" in notes[0] and env["threads"]["oversubscribed"]
    env = {"threads": {"used": 2, "usable_cores": 2, "load_before": 1.5}}
    assert "load average 1.50" in oversubscription_notes(env, 0, 10)[0]
    env = {"threads": {"used": 1, "usable_cores": 2, "load_before": 0.2}}
    assert oversubscription_notes(env, 2, 10) == [] and not env["threads"]["oversubscribed"]
    notes = oversubscription_notes(env, 6, 10)
    assert "6 of 10 timed forwards were disturbed" in notes[0] and env["threads"]["oversubscribed"]


# --------------------------------------------------------------------------- --runs


@pytest.mark.parametrize("n", [1, 5, 6, 9, 20, 57])
def test_median_interval_against_scipy(n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    import numpy as np

    xs = sorted(np.random.default_rng(n).gamma(2.0, 3.0, n))
    lo, hi = median_interval(xs)
    # Independent: the largest j with binom.cdf(j - 1, n, 1/2) <= 2.5 %.
    js = [j for j in range(1, n + 1) if stats.binom.cdf(j - 1, n, 0.5) <= 0.025]
    j = max(js) if js else None
    assert (lo, hi) == ((xs[j - 1], xs[n - j]) if j else (xs[0], xs[-1]))


def test_run_spread_warns_only_outside_the_interval() -> None:
    within = [float(v) for v in range(1, 21)]  # interval of the median: x_(6)..x_(15) = 6..15
    assert median_interval(within) == (6.0, 15.0)
    calm = run_spread([10.0, 11.0, 9.5], within)
    assert not calm["exceeds"] and calm["median_ms"] == 10.0 and calm["min_ms"] == 9.5
    assert calm["between_pct"] == pytest.approx(15.0)
    assert run_spread([10.0, 16.0], within)["exceeds"]


def test_combine_runs_keeps_each_runs_median_and_warns() -> None:
    from srbench.measure.timing import RuntimeStats
    from srbench.runner.orchestrator import combine_runs

    def run(median: float) -> RunResult:
        m = ModelResult("m", "m", 4, "ok", runtime_ms=RuntimeStats.from_samples([median] * 3))
        m.images = [ImageResult(f"i{k}", median + k * 0.01) for k in range(8)]
        return RunResult(
            environment={"load_average": {"before": [1.0], "after": [2.0]}}, config={}, dataset={}, models=[m]
        )

    combined = combine_runs([run(10.0), run(10.0), run(30.0)])
    m = combined.models[0]
    assert m.runs is not None and m.runs["medians_ms"] == [10.0, 10.0, 30.0] and m.runs["exceeds"]
    assert any("between-run spread exceeds the within-run interval" in n for n in m.notes)
    assert combined.environment["runs"] == 3


def test_plain_run_with_runs_and_threads_from_the_command_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from srbench.cli import main

    fast = ["--data", "sample-mini", "--profile-input", "1x3x64x64", "--no-isolate", "--warmup", "1"]
    out = tmp_path / "out"
    assert main(["run", "--models", "bicubic", "--runs", "2", "--threads", "1", "-o", str(out), *fast]) == 0
    run = RunResult.from_dict(__import__("json").loads((out / "results.json").read_text()))
    m = run.models[0]
    assert m.runs is not None and len(m.runs["medians_ms"]) == 2
    assert (out / "runs" / "run-1" / "results.json").is_file() and (out / "runs" / "run-2").is_dir()
    assert run.config["threads"] == 1 and run.environment["torch_threads"] == 1
    assert main(["run", "--models", "bicubic", "--threads", "0", *fast]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("srbench: error: --threads '0' is not a positive integer or 'all'")
