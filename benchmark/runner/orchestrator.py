"""A whole run: data once, each model measured in turn, results saved after every model.

:func:`run_benchmark` loads and checks the dataset before any model runs, decodes it once
into an :class:`~srbench.data.cache.ImageCache`, measures each model, and rewrites
``results.json``/``.csv``/``.md`` atomically after each one, so an interruption keeps every
model finished so far.
"""

from __future__ import annotations

import datetime as _dt
import shlex
import shutil
import signal
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from srbench.backends.devices import resolve_threads, usable_cores
from srbench.backends.onnxruntime.precision import check_calibration
from srbench.core.errors import SrbenchError
from srbench.core.progress import ProgressMode, model_progress
from srbench.data.cache import ImageCache
from srbench.data.datasets import dataset_options, load_dataset
from srbench.measure.spread import run_spread
from srbench.models.registry import get_entry
from srbench.models.specs import ModelSpec, specs_from_config
from srbench.results.config import RunConfig, hashed_config
from srbench.results.environment import (
    busy_notes,
    collect_environment,
    load_average,
    oversubscription_notes,
    thread_facts,
)
from srbench.results.io import write_results
from srbench.results.schema import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    ModelResult,
    RunResult,
    load_results,
)
from srbench.runner.building import build_model
from srbench.runner.checks import check_config, run_device
from srbench.runner.forkserver import prestart
from srbench.runner.identity import data_digest, identity_changes, row_identity, stamp
from srbench.runner.isolation import Interrupted, measure_in_worker, new_stop_event
from srbench.runner.protocol import measure_model

#: Measures one model; replaced by the worker-process version when isolating.
MeasureFn = Callable[..., ModelResult]


def default_output_dir(base: Path = Path("srbench-runs")) -> Path:
    """A new timestamped folder under ``base`` (suffixed when the name is taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = base / stamp
    n = 1
    while candidate.exists():
        candidate = base / f"{stamp}-{n}"
        n += 1
    return candidate


def prepare_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it is writable before any model runs."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".srbench-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SrbenchError(
            f"output folder {out_dir} is not writable ({exc.strerror or exc}); choose another with --output"
        ) from None


def validate_checkpoints(
    specs: list[ModelSpec], config: RunConfig, *, dtypes: Sequence[str] | None = None
) -> None:
    """Load every checkpoint the user named, and check every model's scale and dtype, before any
    model runs.

    User code (``FILE.py:Class``) is built here too, except the teams of ``--ntire-repo
    --teams`` (``ntire:REPO#ID``), built only in their own workers. A truncated file, another
    architecture's checkpoint, one for another scale, or a class that will not build is bad
    input: a one-line error (exit 2) now beats an error row after an hour of benchmarking.
    ``dtypes`` (a sweep's grid) replaces ``config.dtype`` as the dtypes every model must run.
    """
    for spec in specs:
        if spec.onnx is not None:
            continue  # checked (checker, ONNX Runtime session, scale) when its token was parsed
        if spec.code is not None and spec.code.ntire and spec.arch.startswith("ntire:") and "#" in spec.arch:
            # A team of a --ntire-repo/--teams run is built only in its own worker: one team's
            # code (an import that fails, a constructor that crashes the process) never stops
            # the others; its row says what went wrong.
            continue
        if spec.weights_path is not None or spec.code is not None:
            entry, _ = build_model(spec, scale=config.scale, offline=config.offline)
        else:
            # An unsupported --scale is bad input too, not an error row per model.
            entry = get_entry(spec.arch)
            entry.check_scale(config.scale)
        for dtype in dtypes or (config.dtype,):
            entry.check_dtype(dtype)


class StopFlag:
    """First Ctrl-C: stop after the current image; second: stop at once (KeyboardInterrupt)."""

    def __init__(self, event: Any = None) -> None:
        self.event = event
        self.requested = False

    def is_set(self) -> bool:
        return self.requested

    def handle(self, _signum: int, _frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.event is not None:
            self.event.set()
        sys.stderr.write("\nsrbench: stopping after the current image (Ctrl-C again to quit now)\n")


def resume_command(out_dir: Path) -> str:
    """The exact command that continues the run in ``out_dir`` (its stored options are the defaults)."""
    return f"srbench run --resume {shlex.quote(str(out_dir))}"


def config_differences(previous: RunResult, now: RunResult) -> list[str]:
    """``key: stored VALUE, now VALUE`` for each hashed config key and dataset fact that differ."""
    old, new = hashed_config(previous.config), hashed_config(now.config)
    out = [
        f"{k}: stored {old.get(k)!r}, now {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    out += [
        f"dataset.{k}: stored {previous.dataset.get(k)!r}, now {now.dataset.get(k)!r}"
        for k in sorted(set(previous.dataset) | set(now.dataset))
        if previous.dataset.get(k) != now.dataset.get(k)
    ]
    return out


def _resume_base(out_dir: Path, run: RunResult, force: bool) -> RunResult:
    previous = load_results(out_dir)
    if previous.config_hash != run.config_hash and not force:
        changed = config_differences(previous, run)
        raise SrbenchError(
            f"--resume {out_dir}: that run used another configuration ({'; '.join(changed)}); "
            "drop the options that differ (the stored ones are the default) or add --force"
        )

    # A row whose checkpoint, constructor arguments or input range changed is measured again.
    def row_entries(config: dict[str, Any], row: str) -> tuple[Any, ...]:
        name = row.split("@", 1)[0]  # model@backend rows share the model's entries
        return tuple((config.get(key) or {}).get(name) for key in PER_MODEL_KEYS)

    run.models = [
        m
        for m in previous.models
        if m.status in (STATUS_OK, STATUS_NO_WEIGHTS)
        and row_entries(previous.config, m.name) == row_entries(run.config, m.name)
    ]
    return run


def _same_content(
    models: list[ModelResult], identities: dict[str, Any], console: Console
) -> list[ModelResult]:
    """The stored rows whose weights, code and data are what they were measured from; the
    others are dropped (measured again) with one line each saying what changed."""
    kept = []
    for m in models:
        now = identities.get(m.name)
        changes = identity_changes(m.identity, now) if now is not None else []
        if changes:
            console.print(f"{m.name}: measured again: {'; '.join(changes)}", highlight=False)
        else:
            kept.append(m)
    return kept


#: Execution-section entries keyed by model name: what defines each row (compared per row on resume).
PER_MODEL_KEYS = ("weights", "model_args", "input_ranges", "weights_keys")


def run_benchmark(
    config: RunConfig,
    out_dir: Path,
    *,
    console: Console | None = None,
    resume: bool = False,
    force: bool = False,
    measure: MeasureFn | None = None,
    progress: ProgressMode = "auto",
) -> tuple[RunResult, bool]:
    """Run every model of ``config``; results land in ``out_dir`` after each model.

    Returns the run and whether it was interrupted (Ctrl-C). With ``resume``, models already
    measured in ``out_dir`` under the same config hash are kept and skipped. ``progress``:
    a bar on a terminal, else one line per model and per 10 images on ``console``
    (``"auto"``), or ``"bar"``, ``"lines"``, ``"none"`` (:mod:`srbench.core.progress`).
    """
    console = console or Console(stderr=True)
    device = run_device(config)
    check_config(config, device)
    specs: list[ModelSpec] = specs_from_config(config)
    validate_checkpoints(specs, config)
    if config.isolate and measure is None:
        prestart()  # overlaps the worker server's imports with decoding the data
    dataset = load_dataset(
        config.data, scale=config.scale, layout=config.layout, **dataset_options(config.to_dict())
    )
    load_before = load_average()
    run = RunResult(
        environment=collect_environment(device, backend=config.backend),
        config=config.to_dict(),
        dataset=dataset.describe(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    run.environment["load_average"] = {"before": load_before, "after": None}
    data_sha256 = data_digest(dataset)
    identities = {config.row_name(s.name): row_identity(s, config.scale, data_sha256) for s in specs}
    # The workers (and an in-process run) set torch's threads from config.threads.
    threads = resolve_threads(config.threads)
    run.environment["torch_threads"] = threads
    run.environment["threads"] = thread_facts(config.threads, threads, usable_cores())
    if resume:
        run = _resume_base(out_dir, run, force)
        run.models = _same_content(run.models, identities, console)
    prepare_output_dir(out_dir)
    # Rows are named per backend (span, span@onnxruntime): match them by row name.
    done = {m.name for m in run.models}
    todo = [s for s in specs if config.row_name(s.name) not in done]
    for name in sorted(done & {config.row_name(s.name) for s in specs}):
        console.print(f"{name}: already measured in {out_dir}, skipped")

    stop = StopFlag(new_stop_event() if config.isolate else None)
    if measure is None:
        measure = _isolated_measure(config, stop) if config.isolate else measure_model
    previous_handler = signal.signal(signal.SIGINT, stop.handle)
    cache_dir = out_dir / ".images"
    try:
        images = ImageCache.build(dataset, cache_dir) if todo else None
        if images is not None and any(s.precision == "int8" for s in todo):
            check_calibration(config.calibration, config.scale, images)  # bad input: before any model
        with model_progress(console, progress, len(todo)) as (shown, say):
            for spec in todo:
                shown.start_model(spec.name, len(dataset))
                result = measure(
                    spec,
                    images,
                    config,
                    progress=lambda done, _total: shown.update(done),
                    should_stop=stop.is_set,
                )
                stamp(result, identities[config.row_name(spec.name)])
                if stop.requested:
                    result.status = STATUS_ERROR
                    result.reason = f"interrupted (Ctrl-C); measure it with: {resume_command(out_dir)}"
                run.upsert(result)
                write_results(run, out_dir)
                shown.end_model(result.status)
                if result.status == STATUS_ERROR and not stop.requested:
                    say(f"[red]{result.name}: error: {result.reason}")
                if stop.requested:
                    break
        if not todo:
            write_results(run, out_dir)
    except (KeyboardInterrupt, Interrupted):
        stop.requested = True
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        shutil.rmtree(cache_dir, ignore_errors=True)
    # Keep the requested order in the report.
    order = {config.row_name(s.name): i for i, s in enumerate(specs)}
    run.models.sort(key=lambda m: order.get(m.name, len(order)))
    attach_precision_costs(run.models, specs, config)
    run.environment["load_average"]["after"] = load_average()
    run.notes = busy_notes(run.environment) + oversubscription_notes(
        run.environment,
        sum(m.disturbed_forwards or 0 for m in run.models),
        sum(m.timed_forwards or 0 for m in run.models),
    )
    write_results(run, out_dir)
    return run, stop.requested


def attach_precision_costs(models: list[ModelResult], specs: list[ModelSpec], config: RunConfig) -> None:
    """Set ``precision_cost`` on every precision variant's row (see :class:`ModelResult`) from
    its fp32 row in the same run, on the images both measured; rows whose fp32 row is missing
    or failed get none."""
    rows = {m.name: m for m in models}
    for spec in specs:
        if spec.base_name is None:
            continue
        variant = rows.get(config.row_name(spec.name))
        base = rows.get(config.row_name(spec.base_name))
        if variant is None or base is None or variant.status == STATUS_ERROR or base.status == STATUS_ERROR:
            continue
        variant.precision_cost = precision_cost(base, variant)


def precision_cost(base: ModelResult, variant: ModelResult) -> dict[str, Any]:
    """The cost of ``variant`` against ``base`` (fp32) on the images both measured."""
    b = {i.name: i for i in base.images}
    pairs = [(b[i.name], i) for i in variant.images if i.name in b]

    def delta(attr: str) -> float | None:
        diffs = [
            getattr(v, attr) - getattr(f, attr)
            for f, v in pairs
            if getattr(v, attr) is not None and getattr(f, attr) is not None
        ]
        return statistics.fmean(diffs) if diffs else None

    speed = None
    if base.runtime_ms is not None and variant.runtime_ms is not None and variant.runtime_ms.median:
        speed = base.runtime_ms.median / variant.runtime_ms.median
    sizes = (base.deployed or {}).get("size_bytes"), (variant.deployed or {}).get("size_bytes")
    return {
        "reference": base.name,
        "images": len(pairs),
        "psnr_y_delta": delta("psnr_y"),
        "ssim_y_delta": delta("ssim_y"),
        "speed_ratio": speed,
        "size_ratio": sizes[1] / sizes[0] if all(sizes) else None,
    }


def _isolated_measure(config: RunConfig, stop: StopFlag) -> MeasureFn:
    def measure(spec: ModelSpec, images: ImageCache, cfg: RunConfig, **kw: Any) -> ModelResult:
        return measure_in_worker(
            spec, images, cfg, progress=kw.get("progress"), timeout_s=config.model_timeout, stop=stop.event
        )

    return measure


def combine_runs(runs: list[RunResult]) -> RunResult:
    """``run --runs N``: one document of N whole runs of the same configuration.

    The rows are the first run's (its images, figures and notes); each row measured in more
    than one run gains ``runs`` (:func:`srbench.measure.spread.run_spread`: every run's
    median, the between-run spread, the first run's within-run interval) and a note when the
    between-run spread exceeds that interval. The environment's load average spans all runs.
    """

    first = runs[0]
    combined = RunResult(
        environment=dict(first.environment),
        config=dict(first.config),
        dataset=first.dataset,
        models=list(first.models),
        created=first.created,
        notes=list(first.notes),
    )
    loads = [r.environment.get("load_average") or {} for r in runs]
    combined.environment["load_average"] = {"before": loads[0].get("before"), "after": loads[-1].get("after")}
    combined.environment["runs"] = len(runs)
    for m in combined.models:
        rows = [r.model(m.name) for r in runs]
        medians = [row.runtime_ms.median for row in rows if row is not None and row.runtime_ms is not None]
        times = [i.runtime_ms for i in m.images if i.runtime_ms is not None and not i.tiled]
        if len(medians) < 2 or not times:
            continue
        m.runs = run_spread(medians, times)
        if m.runs["exceeds"]:
            lo, hi = m.runs["within_interval_ms"]
            m.notes.append(
                f"between-run spread exceeds the within-run interval: run medians "
                f"{m.runs['min_ms']:.2f}-{m.runs['max_ms']:.2f} ms over {len(medians)} runs, outside the "
                f"first run's 95 % interval {lo:.2f}-{hi:.2f} ms: the machine changed under the run"
            )
    for r in runs[1:]:
        combined.notes.extend(n for n in r.notes if n not in combined.notes)
    return combined
