"""Sweeps: a grid of cells, each one ``srbench run`` measurement of one model, merged into one run.

A sweep is the grid models × data × backends × dtypes × runs. Each **cell** is measured by
:func:`execute_cell` exactly as ``srbench run`` measures a model: the same
:class:`~srbench.results.config.RunConfig`, the same worker-process isolation
(:func:`~srbench.runner.isolation.measure_in_worker`) and the same
:class:`~srbench.results.schema.ModelResult`. An engine (:mod:`srbench.runner.launchers`)
decides where cells run: ``local`` (one cell at a time per device) or ``ray`` (one Ray task
per cell). Whatever the engine, the driver (:func:`run_sweep`):

- writes each finished cell atomically to ``OUT/cells/<key>.json``, itself a complete
  one-model ``srbench/1`` results file (the node's environment, the cell's config, the dataset);
- rewrites the merged ``OUT/results.json`` (+ ``.csv``, ``.md``) after every cell, so the merged
  file is always a normal ``srbench/1`` run that ``report``, ``check`` and ``score`` read as is;
- with ``--resume`` skips cells whose ``cells/<key>.json`` holds a finished result (``ok`` or
  ``no-weights``): the key is a hash of the cell's config hash, model, weights path and run index.

Merged rows (:func:`merge_cells`): one per (model, data, backend, dtype). A row of one run is
that run's result unchanged. A row of several runs keeps the first finished run's figures and
fingerprints, and its ``runtime_ms`` summarises the runs: each statistic is taken over the
per-run headline times (each run's median; its mean under ``--ntire-compat``), so ``std`` is
the run-to-run spread and ``n`` the number of runs. ``row.cell`` names the node and device of
every run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import functools
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srbench.backends.devices import resolve_device, resolve_threads
from srbench.core.errors import SrbenchError
from srbench.core.progress import ProgressMode, count_progress
from srbench.data.cache import ImageCache
from srbench.data.datasets import dataset_options, load_dataset
from srbench.measure.timing import RuntimeStats
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.results.environment import collect_environment
from srbench.results.hardware import mixed_hardware
from srbench.results.io import write_results
from srbench.results.schema import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    ModelResult,
    RunResult,
    atomic_write_text,
    load_results,
    results_json,
)
from srbench.runner.identity import RowIdentity, data_digest, identity_changes, row_identity, stamp
from srbench.runner.isolation import measure_in_worker
from srbench.runner.orchestrator import prepare_output_dir

#: Statuses of a finished cell: ``--resume`` skips these and re-measures errors.
FINISHED = (STATUS_OK, STATUS_NO_WEIGHTS)

#: Label of the backend axis when this srbench's ``run`` has no ``--backend`` option.
DEFAULT_BACKEND = "torch"


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Cell:
    """One measurement: one model under one table's config, run number ``run`` (1-based).

    ``config`` is the ``srbench run`` config of the cell (``models == [spec.name]``); its
    ``device`` is the sweep's ``--device`` (engines may place the cell on a concrete device).
    ``dataset`` is the dataset's ``describe()`` block, part of the key.
    """

    spec: ModelSpec
    config: RunConfig
    data: str
    backend: str
    dtype: str
    run: int
    dataset: dict[str, Any]

    @property
    def table(self) -> tuple[str, str, str]:
        """``(data, backend, dtype)``: the cells of one table share protocol and data."""
        return (self.data, self.backend, self.dtype)

    @functools.cached_property
    def key(self) -> str:
        """16 hex digits: sha256 of the cell's config hash, model, architecture, weights and run."""
        config_hash = RunResult({}, self.config.to_dict(), self.dataset).config_hash
        blob = json.dumps(
            {
                "config_hash": config_hash,
                "model": self.spec.name,
                "arch": self.spec.arch,
                "weights": str(self.spec.weights_path) if self.spec.weights_path else None,
                "run": self.run,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """``span fp32 sample-mini run 2`` (for progress lines)."""
        parts = [self.spec.name, self.data, self.dtype]
        if self.backend != DEFAULT_BACKEND:
            parts.insert(2, self.backend)
        return " ".join(parts) + f" run {self.run}"


@dataclass
class SweepPlan:
    """The grid: axes in the order given, every cell in measurement order, the engine options.

    Cells are ordered run-major (every cell of run 1, then of run 2, ...), so an interrupted
    sweep has a complete first run of every model before any model's second run.
    """

    models: list[ModelSpec]
    data: list[str]
    backends: list[str]
    dtypes: list[str]
    runs: int
    base: RunConfig
    cells: list[Cell] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def varying(self) -> list[str]:
        """The axes with more than one value (they label merged rows)."""
        axes = {"data": self.data, "backend": self.backends, "dtype": self.dtypes}
        return [k for k, v in axes.items() if len(v) > 1]

    def row_label(self, cell: Cell) -> str:
        """A merged row's name: the model, plus ``@ data/backend/dtype`` for the axes that vary."""
        values = {"data": cell.data, "backend": cell.backend, "dtype": cell.dtype}
        tags = [values[k] for k in self.varying()]
        return f"{cell.spec.name} @ {'/'.join(tags)}" if tags else cell.spec.name


def split_list(value: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` → ``["a", "b"]`` (blanks dropped, order kept, duplicates refused)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    out = [v.strip() for v in items if v.strip()]
    dupes = sorted({v for v in out if out.count(v) > 1})
    if dupes:
        raise SrbenchError(f"sweep: {', '.join(dupes)} named more than once in one axis; name each once")
    return out


def build_plan(
    models: Sequence[ModelSpec],
    data: Sequence[str | None],
    backends: Sequence[str],
    dtypes: Sequence[str],
    runs: int,
    table_config: Callable[[str | None, str, str], RunConfig],
    describe_data: Callable[[RunConfig], dict[str, Any]],
) -> SweepPlan:
    """Every cell of the grid.

    ``table_config(data, backend, dtype)`` returns that table's ``srbench run`` config (it
    validates the options); ``describe_data(config)`` loads the dataset once (no decoding)
    and returns its ``describe()`` block, so a bad ``--data`` fails before any cell runs.
    """
    if runs < 1:
        raise SrbenchError("--runs must be at least 1")
    if not models:
        raise SrbenchError("sweep: --models is empty; name at least one model (see 'srbench list')")
    tables = {}
    datasets: dict[str, dict[str, Any]] = {}
    for d in data:
        for b in backends:
            for t in dtypes:
                config = table_config(d, b, t)
                label = d or "sample"
                if label not in datasets:
                    datasets[label] = describe_data(config)
                tables[(label, b, t)] = config
    plan = SweepPlan(
        models=list(models),
        data=[d or "sample" for d in data],
        backends=list(backends),
        dtypes=list(dtypes),
        runs=runs,
        base=next(iter(tables.values())),
        datasets=datasets,
    )
    for r in range(1, runs + 1):
        for (label, b, t), config in tables.items():
            for spec in models:
                cfg = dataclasses.replace(config, models=[spec.name])
                plan.cells.append(Cell(spec, cfg, label, b, t, r, datasets[label]))
    return plan


# --------------------------------------------------------------------------- sweep files

#: Keys of a sweep file that are not ``srbench run`` options.
SWEEP_KEYS = frozenset(
    {
        "models",
        "data",
        "backend",
        "dtype",
        "runs",
        "engine",
        "address",
        "devices",
        "cpus_per_cell",
        "retries",
    }
)


def read_sweep_file(path: Path) -> dict[str, Any]:
    """A TOML (``.toml``) or YAML (``.yaml``/``.yml``, needs pyyaml) sweep file as a flat dict.

    Keys are the sweep's options and ``srbench run``'s options with ``_`` for ``-``
    (``profile_input = "1x3x64x64"``); lists may be TOML/YAML lists or comma strings. A
    ``[run]`` table (or ``run:`` mapping) may hold the run options instead of the top level.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SrbenchError(f"sweep file {path}: cannot read it ({exc.strerror or exc})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            doc = tomllib.loads(text.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise SrbenchError(
                    f"sweep file {path}: reading YAML needs pyyaml (pip install pyyaml) or use TOML"
                ) from None
            doc = yaml.safe_load(text) or {}
        else:
            raise SrbenchError(f"sweep file {path}: name it .toml, .yaml or .yml")
    except SrbenchError:
        raise
    except Exception as exc:  # tomllib/yaml parse errors: one line with the parser's reason
        reason = str(exc).splitlines()[0]
        raise SrbenchError(f"sweep file {path} does not parse ({reason}); fix the syntax") from None
    if not isinstance(doc, dict):
        raise SrbenchError(f"sweep file {path}: the top level must be a table of options")
    nested = doc.pop("run", None)
    if isinstance(nested, dict):
        doc.update(nested)
    return {str(k).replace("-", "_"): v for k, v in doc.items()}


# --------------------------------------------------------------------------- one cell, on a node


@dataclass
class CellOutcome:
    """What a node sends back for one cell: the result, where it ran, what it ran on."""

    key: str
    result: dict[str, Any]
    environment: dict[str, Any]
    config: dict[str, Any]
    node: str
    hostname: str
    device: str
    torch_threads: int | None
    seconds: float


def node_images(config: RunConfig, cache_root: Path) -> Any:
    """The dataset of ``config`` decoded once per node under ``cache_root`` (an ImageCache).

    The folder is named by a hash of the data argument, layout, scale and the dataset's
    ``describe()`` block; the first cell on a node decodes it under an exclusive file lock and
    every later cell (any worker, any engine) reopens it.
    """

    dataset = load_dataset(
        config.data, scale=config.scale, layout=config.layout, **dataset_options(config.to_dict())
    )
    ident = json.dumps(
        {
            "data": config.data,
            "layout": config.layout,
            "scale": config.scale,
            "dataset": dataset.describe(),
        },
        sort_keys=True,
    )
    folder = cache_root / hashlib.sha256(ident.encode()).hexdigest()[:16]
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (folder / "names.txt").is_file():
                return ImageCache.open(folder)
            partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache_root))
            ImageCache.build(dataset, partial)
            os.replace(partial, folder)  # complete or absent, never half-written
            return ImageCache.open(folder)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cell_setup(threads: int | None, visible_gpu: str | None, plugin_setup: Any = None) -> None:
    # Runs first in the measuring worker, before torch touches CUDA: pins the worker to the
    # GPU the engine assigned and its thread count (Ray sets OMP_NUM_THREADS per task, and a
    # reused Ray worker's forkserver keeps the first task's environment).
    if visible_gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpu
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if plugin_setup is not None:
        plugin_setup()


def execute_cell(
    cell: Cell,
    *,
    cache_root: Path,
    device: str | None = None,
    visible_gpu: str | None = None,
    threads: int | None = None,
    node: str | None = None,
    stop: Any = None,
    setup: Any = None,
    skip_main: bool = False,
) -> CellOutcome:
    """Measure one cell on this node, isolated exactly as ``srbench run`` isolates a model.

    ``device`` overrides the cell's ``--device`` (the engine's placement); ``visible_gpu``
    restricts the measuring worker to that physical GPU (then ``device`` is ``cuda:0``);
    ``threads`` sets the worker's torch thread count (``None``: the cell config's ``--threads``);
    ``node`` names the node in the row (default: the host name); ``skip_main``: the
    measuring worker does not re-run this process's ``__main__`` script (a Ray worker's,
    see :func:`~srbench.runner.forkserver.main_hidden`).
    Never raises for a model fault: that is an ``error`` result, as in ``run``.
    """

    started = time.perf_counter()
    config = dataclasses.replace(cell.config, device=device) if device else cell.config
    if threads is not None:  # the engine's CPUs per cell: the worker's protocol sets them
        config = dataclasses.replace(config, threads=threads)
    images = node_images(config, cache_root)
    wants_setup = threads is not None or visible_gpu is not None or setup is not None
    worker_setup = functools.partial(_cell_setup, threads, visible_gpu, setup) if wants_setup else None
    if visible_gpu is not None:
        # The driver's process must not see other GPUs either when it describes the device.
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpu
    env = collect_environment(resolve_device(config.device))
    env["torch_threads"] = threads if threads is not None else resolve_threads(config.threads)
    result = measure_in_worker(
        cell.spec,
        images,
        config,
        timeout_s=config.model_timeout,
        stop=stop,
        setup=worker_setup,
        skip_main=skip_main,
    )
    return CellOutcome(
        key=cell.key,
        result=result.to_dict(),
        environment=env,
        config=config.to_dict(),
        node=node or socket.gethostname(),
        hostname=socket.gethostname(),
        device=str(resolve_device(config.device)),
        torch_threads=env.get("torch_threads"),
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- merging


@dataclass
class CellRecord:
    """A finished (or failed) cell as the driver keeps it: the one-model run and the cell facts."""

    cell: Cell
    run: RunResult
    info: dict[str, Any]

    @property
    def result(self) -> ModelResult:
        return self.run.models[0]


def cell_record(cell: Cell, outcome: CellOutcome, *, attempts_allowed: int = 0) -> CellRecord:
    """The per-cell ``srbench/1`` run of ``outcome`` plus the row facts (node, device, GPU, driver)."""
    result = ModelResult.from_dict(outcome.result)
    env = outcome.environment
    gpu = env.get("gpu") or {}
    info = {
        "key": cell.key,
        "model": cell.spec.name,
        "data": cell.data,
        "backend": cell.backend,
        "dtype": cell.dtype,
        "run": cell.run,
        "status": result.status,
        "node": outcome.node,
        "hostname": outcome.hostname,
        "device": outcome.device,
        "device_name": env.get("device_name"),
        "driver": gpu.get("driver"),
        "torch_threads": outcome.torch_threads,
        "seconds": outcome.seconds,
        "retries_allowed": attempts_allowed,
    }
    run = RunResult(
        environment=env,
        config=outcome.config,
        dataset=cell.dataset,
        models=[result],
        created=_now(),
    )
    return CellRecord(cell, run, info)


def error_record(cell: Cell, reason: str, *, node: str = "?") -> CellRecord:
    """A cell that produced no result (infrastructure failure, interruption): an ``error`` row."""
    result = ModelResult(
        name=cell.spec.name,
        arch=cell.spec.arch,
        scale=cell.config.scale,
        status=STATUS_ERROR,
        reason=reason,
    )
    outcome = CellOutcome(cell.key, result.to_dict(), {}, cell.config.to_dict(), node, "?", "?", None, 0.0)
    return cell_record(cell, outcome)


def headline_time(result: ModelResult, ntire_compat: bool) -> float | None:
    """A run's headline forward time (ms): its median, or its mean under ``--ntire-compat``."""
    if result.runtime_ms is None:
        return None
    return result.runtime_ms.mean if ntire_compat else result.runtime_ms.median


def merge_rows(plan: SweepPlan, records: dict[str, CellRecord]) -> list[ModelResult]:
    """One :class:`ModelResult` per (model, data, backend, dtype) with a finished cell (module docstring)."""
    groups: dict[tuple[str, str, str, str], list[CellRecord]] = {}
    for cell in plan.cells:
        rec = records.get(cell.key)
        if rec is not None:
            groups.setdefault((cell.spec.name, *cell.table), []).append(rec)
    order = {(c.spec.name, *c.table): i for i, c in enumerate(plan.cells) if c.run == 1}
    rows = []
    for group_key in sorted(groups, key=lambda k: order.get(k, len(order))):
        group = sorted(groups[group_key], key=lambda r: r.cell.run)
        rows.append(_merge_group(plan, group))
    return rows


def _merge_group(plan: SweepPlan, group: list[CellRecord]) -> ModelResult:
    ntire = bool(group[0].cell.config.ntire_compat)
    finished = [r for r in group if r.result.status in FINISHED]
    base_rec = finished[0] if finished else group[0]
    row = dataclasses.replace(base_rec.result, notes=list(base_rec.result.notes))
    row.name = plan.row_label(base_rec.cell)
    runs = []
    for r in group:
        entry = {k: r.info[k] for k in ("run", "key", "status", "node", "hostname", "device")}
        entry.update(device_name=r.info["device_name"], driver=r.info["driver"])
        entry["runtime_ms"] = headline_time(r.result, ntire)
        if r.result.status == STATUS_ERROR:
            entry["reason"] = r.result.reason
        runs.append(entry)
    times = [t for r in finished if (t := headline_time(r.result, ntire)) is not None]
    if len(finished) > 1 and times:
        row.runtime_ms = RuntimeStats.from_samples(times)
        if row.intervals:  # the first run's runtime interval (over its images) is not this figure's
            row.intervals = {k: v for k, v in row.intervals.items() if k != "runtime_ms"} or None
        stat = "mean" if ntire else "median"
        row.notes.append(
            f"runtime over {len(times)} runs (each run's {stat}): mean {row.runtime_ms.mean:.3f} ms "
            f"± {row.runtime_ms.std:.3f} (std), range {row.runtime_ms.min:.3f}–{row.runtime_ms.max:.3f}"
        )
        differing = [
            r.cell.run
            for r in finished[1:]
            if (r.result.psnr_y, r.result.flops, r.result.params)
            != (base_rec.result.psnr_y, base_rec.result.flops, base_rec.result.params)
        ]
        if differing:
            row.notes.append(
                f"runs {', '.join(map(str, differing))} differ from run {base_rec.cell.run} in PSNR or counts"
            )
    failed = [r for r in group if r.result.status == STATUS_ERROR]
    if failed and finished:
        row.notes.append(
            f"{len(failed)} of {len(group)} runs failed (run {failed[0].cell.run}: {failed[0].result.reason})"
        )
    row.cell = {
        "model": base_rec.cell.spec.name,
        "data": base_rec.cell.data,
        "backend": base_rec.cell.backend,
        "dtype": base_rec.cell.dtype,
        "node": base_rec.info["node"],
        "hostname": base_rec.info["hostname"],
        "device": base_rec.info["device"],
        "device_name": base_rec.info["device_name"],
        "driver": base_rec.info["driver"],
        "runs": runs,
    }
    return row


def merged_run(plan: SweepPlan, records: dict[str, CellRecord], sweep_info: dict[str, Any]) -> RunResult:
    """The sweep as one ``srbench/1`` run.

    ``config`` is the first table's ``srbench run`` config with every model; a key that varies
    across the grid (``data``, ``dtype``, ``backend``) holds its values comma-joined, and each
    row's ``cell`` names its own. With one table and one run the file equals what
    ``srbench run`` writes for the same models, config hash included. ``environment`` is
    that of the first finished cell, plus ``sweep`` (engine, cells, nodes, wall time).
    """
    config = plan.base.to_dict()
    config["models"] = [s.name for s in plan.models]
    if len(plan.data) > 1:
        config["data"] = ",".join(plan.data)
    if len(plan.dtypes) > 1:
        config["dtype"] = ",".join(plan.dtypes)
    if len(plan.backends) > 1 and "backend" in config:
        config["backend"] = ",".join(plan.backends)
    done = [records[c.key] for c in plan.cells if c.key in records]
    env_src = next((r for r in done if r.run.environment), None)
    environment = dict(env_src.run.environment) if env_src else {}
    nodes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in done:
        if r.info["hostname"] == "?":
            continue
        ident = (r.info["node"], r.info["device"], r.info["device_name"], r.info["driver"])
        nodes.setdefault(
            ident, {k: r.info[k] for k in ("node", "hostname", "device", "device_name", "driver")}
        )
    environment["sweep"] = {**sweep_info, "cells_done": len(done), "nodes": list(nodes.values())}
    if len(plan.datasets) == 1:
        dataset = next(iter(plan.datasets.values()))
    else:
        dataset = {"name": ",".join(plan.datasets), "tables": plan.datasets}
        dataset["images"] = sum(int(d.get("images") or 0) for d in plan.datasets.values())
        dataset["scale"] = plan.base.scale
    return RunResult(environment, config, dataset, merge_rows(plan, records), created=_now())


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- the driver


class SweepStore:
    """The sweep's output folder: ``cells/<key>.json`` per cell and the merged results files."""

    def __init__(self, out_dir: Path, plan: SweepPlan, sweep_info: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.cells_dir = self.out_dir / "cells"
        self.plan = plan
        self.info = sweep_info
        self.records: dict[str, CellRecord] = {}
        self._lock = threading.Lock()

    def prepare(self) -> None:

        prepare_output_dir(self.out_dir)
        self.cells_dir.mkdir(exist_ok=True)

    def load_finished(
        self, identities: dict[str, RowIdentity] | None = None, say: Callable[[str], None] | None = None
    ) -> list[Cell]:
        """Cells already finished in this folder (``--resume``), loaded into the store.

        With ``identities`` (cell key → what it would be measured from now), a finished cell
        whose stored identity differs is left to measure again, and ``say`` gets one line
        saying what changed."""
        found = []
        for cell in self.plan.cells:
            path = self.cells_dir / f"{cell.key}.json"
            if not path.is_file():
                continue
            run = load_results(path)
            data = json.loads(path.read_text()).get("cell") or {}
            if not run.models or run.models[0].status not in FINISHED:
                continue
            now = (identities or {}).get(cell.key)
            changes = identity_changes(run.models[0].identity, now) if now is not None else []
            if changes:
                if say is not None:
                    say(f"{cell.describe()}: measured again: {'; '.join(changes)}")
                continue
            self.records[cell.key] = CellRecord(cell, run, data)
            found.append(cell)
        return found

    def add(self, record: CellRecord) -> None:
        """Save one cell and rewrite the merged results (atomically, one writer at a time)."""
        with self._lock:
            self.records[record.cell.key] = record
            doc = json.loads(results_json(record.run))
            doc["cell"] = record.info
            atomic_write_text(self.cells_dir / f"{record.cell.key}.json", json.dumps(doc, indent=2) + "\n")
            self.write()

    def write(self) -> RunResult:
        """Rewrite ``results.json``/``.csv``/``.md`` from every cell so far."""
        run = merged_run(self.plan, self.records, self.info)
        write_results(run, self.out_dir)
        return run


#: ``engine.run(cells, on_outcome, on_failure, stop)``; see :mod:`srbench.runner.launchers`.
EngineRun = Callable[..., None]


@dataclass
class SweepSummary:
    """What :func:`run_sweep` returns: the merged run, counts, timing and whether it was interrupted."""

    run: RunResult
    measured: int
    skipped: int
    failed: int
    wall_s: float
    interrupted: bool
    warnings: list[str]


def run_sweep(
    plan: SweepPlan,
    out_dir: Path,
    engine: Any,
    *,
    resume: bool = False,
    console: Any = None,
    progress: ProgressMode = "auto",
) -> SweepSummary:
    """Measure every cell of ``plan`` on ``engine``; merged results land in ``out_dir`` as cells finish.

    Ctrl-C cancels the cells not yet finished (the engine's job) and keeps every finished one;
    rerun with ``--resume`` to measure the rest. ``progress``: a bar on a terminal, else a line
    per finished cell with the elapsed time and an ETA (``"auto"``), ``"lines"``, ``"none"``.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    info = {"engine": engine.name, "cells": len(plan.cells), "runs": plan.runs}
    store = SweepStore(out_dir, plan, info)
    store.prepare()
    identities = cell_identities(plan)
    skipped = store.load_finished(identities, console.print) if resume else []
    done_keys = {c.key for c in skipped}
    todo = [c for c in plan.cells if c.key not in done_keys]
    if skipped:
        console.print(
            f"resume: {len(skipped)} of {len(plan.cells)} cells already measured in {out_dir}, skipped"
        )
    failed = 0
    started = time.perf_counter()
    interrupted = False
    with count_progress(console, progress, len(todo), "sweep") as (advance, say):

        def finished(record: CellRecord) -> None:
            nonlocal failed
            stamp(record.result, identities[record.cell.key])
            store.info["wall_s"] = time.perf_counter() - started
            store.add(record)
            if record.result.status == STATUS_ERROR:
                failed += 1
                say(f"[red]{record.cell.describe()}: error: {record.result.reason}", markup=True)
            advance(f"{record.cell.describe()} on {record.info['node']}")

        try:
            engine.run(todo, finished)
        except KeyboardInterrupt:
            interrupted = True
    info["wall_s"] = time.perf_counter() - started
    run = store.write()
    warnings = mixed_hardware(run)
    measured = sum(1 for c in todo if c.key in store.records)
    return SweepSummary(run, measured, len(skipped), failed, info["wall_s"], interrupted, warnings)


def cell_identities(plan: SweepPlan) -> dict[str, RowIdentity]:
    """Cell key → :class:`~srbench.runner.identity.RowIdentity` of what the cell is measured from
    now (each dataset hashed once, each model built once per scale)."""
    data: dict[str, str] = {}
    rows: dict[tuple[str, str, int], RowIdentity] = {}
    out = {}
    for cell in plan.cells:
        c = cell.config
        if cell.data not in data:
            dataset = load_dataset(c.data, scale=c.scale, layout=c.layout, **dataset_options(c.to_dict()))
            data[cell.data] = data_digest(dataset)
        key = (cell.spec.name, cell.data, c.scale)
        if key not in rows:
            rows[key] = row_identity(cell.spec, c.scale, data[cell.data])
        out[cell.key] = rows[key]
    return out
