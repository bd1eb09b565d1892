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
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from srbench.data.cache import ImageCache
from srbench.data.datasets import dataset_options, load_dataset
from srbench.errors import SrbenchError
from srbench.execution.building import build_model
from srbench.execution.config import RunConfig, hashed_config
from srbench.execution.devices import check_config, run_device
from srbench.execution.forkserver import prestart
from srbench.execution.isolation import Interrupted, measure_in_worker, new_stop_event
from srbench.execution.protocol import measure_model
from srbench.execution.specs import ModelSpec, specs_from_config
from srbench.models.registry import get_entry
from srbench.reporting.environment import busy_notes, collect_environment, load_average
from srbench.reporting.results import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    ModelResult,
    RunResult,
    load_results,
    write_results,
)

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


def validate_checkpoints(specs: list[ModelSpec], config: RunConfig) -> None:
    """Load every checkpoint the user named, and check every model's scale, before any model runs.

    User code (``FILE.py:Class``) is built here too, except the teams of ``--ntire-repo
    --teams`` (``ntire:REPO#ID``), built only in their own workers. A truncated file, another
    architecture's checkpoint, one for another scale, or a class that will not build is bad
    input: a one-line error (exit 2) now beats an error row after an hour of benchmarking.
    """
    for spec in specs:
        if spec.code is not None and spec.code.ntire and spec.arch.startswith("ntire:") and "#" in spec.arch:
            # A team of a --ntire-repo/--teams run is built only in its own worker: one team's
            # code (an import that fails, a constructor that crashes the process) never stops
            # the others; its row says what went wrong.
            continue
        if spec.weights_path is not None or spec.code is not None:
            build_model(spec, scale=config.scale, offline=config.offline)
        else:
            # An unsupported --scale is bad input too, not an error row per model.
            get_entry(spec.arch).check_scale(config.scale)


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


#: Execution-section entries keyed by model name: what defines each row (compared per row on resume).
PER_MODEL_KEYS = ("weights", "model_args", "input_ranges")


def run_benchmark(
    config: RunConfig,
    out_dir: Path,
    *,
    console: Console | None = None,
    resume: bool = False,
    force: bool = False,
    measure: MeasureFn | None = None,
) -> tuple[RunResult, bool]:
    """Run every model of ``config``; results land in ``out_dir`` after each model.

    Returns the run and whether it was interrupted (Ctrl-C). With ``resume``, models already
    measured in ``out_dir`` under the same config hash are kept and skipped.
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
    if resume:
        run = _resume_base(out_dir, run, force)
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
        with Progress(
            TextColumn("[bold]{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            for spec in todo:
                task = bar.add_task(spec.name, total=len(dataset))

                def advance(done: int, _total: int, task: int = task) -> None:
                    bar.update(task, completed=done)

                result = measure(spec, images, config, progress=advance, should_stop=stop.is_set)
                if stop.requested:
                    result.status = STATUS_ERROR
                    result.reason = f"interrupted (Ctrl-C); measure it with: {resume_command(out_dir)}"
                run.upsert(result)
                write_results(run, out_dir)
                if result.status == STATUS_ERROR and not stop.requested:
                    bar.console.print(f"[red]{result.name}: error: {result.reason}")
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
    run.environment["load_average"]["after"] = load_average()
    run.notes = busy_notes(run.environment)
    write_results(run, out_dir)
    return run, stop.requested


def _isolated_measure(config: RunConfig, stop: StopFlag) -> MeasureFn:
    def measure(spec: ModelSpec, images: ImageCache, cfg: RunConfig, **kw: Any) -> ModelResult:
        return measure_in_worker(
            spec, images, cfg, progress=kw.get("progress"), timeout_s=config.model_timeout, stop=stop.event
        )

    return measure
