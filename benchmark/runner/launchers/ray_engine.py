"""The ``ray`` engine: one Ray task per cell, on an existing cluster or a local loopback-only one.

Each cell is a task requesting one whole GPU (``num_gpus=1``, with ``cpus_per_cell`` CPUs)
or, on CPU-only clusters, ``cpus_per_cell`` CPUs; Ray never places two such tasks on one
GPU. In the task, :func:`~srbench.runner.sweep.execute_cell` measures the cell in a fresh
worker process pinned to the task's GPU (``CUDA_VISIBLE_DEVICES``) and thread count, exactly
as ``srbench run`` would; the dataset is decoded once per node into a per-sweep folder under
the node's temporary directory (removed at the end).

Failures: a model fault is an ``error`` result inside the task and is never retried. A task
whose Ray worker died or whose node was lost is retried by Ray up to ``retries`` times
(``max_retries``; application exceptions are not retried), then becomes an ``error`` row
naming the infrastructure failure.

Without ``address`` a local Ray instance is started in-process with every component on
127.0.0.1 (see :func:`loopback_environment`) and shut down at the end; only that instance is
ever stopped.
"""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srbench.core.errors import SrbenchError

if TYPE_CHECKING:  # this module stays free of torch: see _ray_cell
    from srbench.runner.sweep import Cell, CellOutcome, CellRecord

#: Environment variables srbench's cells read; forwarded to the cluster's workers.
FORWARDED_ENV = ("SRBENCH_PLUGINS", "SRBENCH_WEIGHTS_DIR", "SRBENCH_OFFLINE", "SRBENCH_CACHE_DIR")


def loopback_environment() -> dict[str, str]:
    """Environment that keeps a local Ray instance on loopback (Ray 2.60, measured).

    - ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: Ray keeps node IP 127.0.0.1 and binds every
      server there instead of rewriting it to the machine's private IP (single node only);
    - ``http_proxy``/``HTTP_PROXY`` to a closed loopback port, ``no_proxy`` for loopback: the
      dashboard's cloud-metadata probe goes nowhere;
    - usage stats off, their report URL on loopback;
    - token authentication with a fresh random token in the environment (nothing written to
      the home folder), unless the caller already set ``RAY_AUTH_MODE``.
    """
    env = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "no_proxy": "127.0.0.1,localhost,::1",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
    }
    if "RAY_AUTH_MODE" not in os.environ:
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32)
    return env


def import_ray() -> Any:
    """``import ray``, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise SrbenchError(
            "--engine ray needs Ray: pip install 'srbench[ray]' (or use --engine local)"
        ) from None
    return ray


def _ray_cell(cell_pickle: bytes, sweep_id: str, threads: int | None, use_gpu: bool) -> CellOutcome:
    # Runs inside a Ray worker. The worker's first cell starts the forkserver (torch, srbench,
    # fvcore, dynamo: ~2.7 s) before anything here imports torch: this module and the
    # pickled cell (whose config imports torch) come in only after, so the server's imports
    # and the worker's own (~1.5 s), and the data's decoding, run side by side. A Ray
    # worker's __main__ is Ray's default_worker.py: neither the server's first child nor the
    # measuring workers re-run it (skip_main).
    import ray

    from srbench.runner.forkserver import prestart

    prestart(skip_main=True)
    cell: Cell = pickle.loads(cell_pickle)
    from srbench.runner.sweep import execute_cell

    ctx = ray.get_runtime_context()
    # The cache folder is per sweep and per node: every cell of the sweep on this node
    # shares one decoded copy of its dataset.
    cache_root = Path(tempfile.gettempdir()) / f"srbench-sweep-{sweep_id}"
    device = visible = None
    if use_gpu:
        gpu_ids = ray.get_gpu_ids()
        if not gpu_ids:
            raise RuntimeError("Ray assigned this GPU cell no GPU")
        visible, device = str(gpu_ids[0]), "cuda:0"
    return execute_cell(
        cell,
        cache_root=cache_root,
        device=device,
        visible_gpu=visible,
        threads=threads,
        node=ctx.get_node_id(),
        # Re-running default_worker.py in each measuring worker imported Ray there (~260 ms
        # a cell); nothing a cell sends is defined in it.
        skip_main=True,
    )


def _remove_cache(sweep_id: str) -> None:
    shutil.rmtree(Path(tempfile.gettempdir()) / f"srbench-sweep-{sweep_id}", ignore_errors=True)


class RayEngine:
    """Submits cells to Ray; see the module docstring.

    ``address``: an existing cluster (``host:port`` or ``ray://...``); ``None`` starts a local
    loopback-only instance with ``num_cpus`` CPUs (default: this machine's) and ``num_gpus``.
    ``gpu``: ``True`` one GPU per cell, ``False`` CPUs only, ``None`` GPUs when the cluster
    has any. ``cpus_per_cell`` CPUs per task, also the cell's torch thread count on CPU;
    default: every CPU of a local instance (the thread count of ``srbench run`` on this
    machine, whose float reductions, and so some models' outputs, depend on it), else 1.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        cpus_per_cell: int | None = None,
        gpu: bool | None = None,
        retries: int = 2,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        temp_dir: Path | None = None,
    ) -> None:
        if cpus_per_cell is not None and cpus_per_cell < 1:
            raise SrbenchError("--cpus-per-cell must be at least 1")
        if retries < 0:
            raise SrbenchError("--retries must be 0 or more")
        self.address = address
        self.cpus_per_cell = cpus_per_cell
        self.gpu = gpu
        self.retries = retries
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.temp_dir = temp_dir
        self.sweep_id = uuid.uuid4().hex[:12]
        self._started_here = False
        self._own_temp: Path | None = None
        self._ray: Any = None
        self.use_gpu = False
        self.slots = 1

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to ``address`` or start the local loopback instance, then check resources."""
        if self.address is None:
            os.environ.update(loopback_environment())  # before import ray: Ray reads it at import
        ray = import_ray()
        self._ray = ray
        env_vars = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        if self.address is None:
            if self.cpus_per_cell is None:
                self.cpus_per_cell = self.num_cpus or os.cpu_count() or 1
            temp = self.temp_dir
            if temp is None:
                # Short: Ray's Unix socket paths under it must stay below ~107 characters.
                temp = self._own_temp = Path(tempfile.mkdtemp(prefix="srbr-", dir="/tmp"))
            ray.init(
                num_cpus=self.num_cpus or os.cpu_count() or 1,
                num_gpus=self.num_gpus,
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                _temp_dir=str(temp),
                object_store_memory=256 * 2**20,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started_here = True
        else:
            if self.cpus_per_cell is None:
                self.cpus_per_cell = 1
            try:
                ray.init(
                    address=self.address,
                    runtime_env={"env_vars": env_vars} if env_vars else None,
                    log_to_driver=False,
                )
            except Exception as exc:
                raise SrbenchError(
                    f"--address {self.address}: cannot connect to the Ray cluster ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); check it with 'ray status --address "
                    f"{self.address}'"
                ) from None
        self.check_resources()

    def check_resources(self) -> None:
        """Decide GPU or CPU cells from the cluster's resources; refuse requests it can never meet."""
        # A task asking for a GPU on a cluster without one waits forever, without an error.
        resources = self._ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 0))
        where = self.address or "the local Ray instance"
        if self.gpu is None:
            self.use_gpu = gpus > 0
        elif self.gpu and gpus < 1:
            raise SrbenchError(
                f"{where} has no GPU, so GPU cells would wait forever; run on CPUs with --device cpu "
                "--cpus-per-cell N"
            )
        else:
            self.use_gpu = self.gpu
        if cpus < self.cpus_per_cell:
            raise SrbenchError(
                f"{where} has {cpus} CPU(s) but each cell asks for --cpus-per-cell {self.cpus_per_cell}; "
                f"use --cpus-per-cell {max(cpus, 1)}"
            )
        self.slots = max(
            1, min(gpus if self.use_gpu else cpus // self.cpus_per_cell, cpus // self.cpus_per_cell)
        )

    def shutdown(self) -> None:
        """Remove the per-sweep caches and stop the local instance if this engine started it."""
        ray = self._ray
        if ray is None:
            return
        try:
            if ray.is_initialized():
                self._clean_nodes()
        finally:
            if self._started_here and ray.is_initialized():
                ray.shutdown()
            _remove_cache(self.sweep_id)
            if self._own_temp is not None:
                shutil.rmtree(self._own_temp, ignore_errors=True)

    def _clean_nodes(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self._ray
        remove = ray.remote(num_cpus=0)(_remove_cache)
        refs = [
            remove.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(self.sweep_id)
            for n in ray.nodes()
            if n.get("Alive")
        ]
        ray.wait(refs, num_returns=len(refs), timeout=30)

    # -- running --------------------------------------------------------------------------

    def run(self, cells: Sequence[Cell], finished: Callable[[CellRecord], None]) -> None:
        if self._ray is None:
            self.start()
        ray = self._ray
        options: dict[str, Any] = {
            "num_cpus": self.cpus_per_cell,
            "max_retries": self.retries,
            "retry_exceptions": False,
        }
        if self.use_gpu:
            # A fresh Ray worker per GPU cell: a reused one keeps the CUDA context (and its
            # forkserver the CUDA_VISIBLE_DEVICES) of the GPU its first cell ran on.
            options.update(num_gpus=1, max_calls=1)
        task = ray.remote(_ray_cell).options(**options)
        threads = None if self.use_gpu else self.cpus_per_cell
        pending = {task.remote(pickle.dumps(c), self.sweep_id, threads, self.use_gpu): c for c in cells}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    cell = pending.pop(ref)
                    finished(self._record(ref, cell))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _record(self, ref: Any, cell: Cell) -> CellRecord:
        from srbench.runner.sweep import cell_record, error_record

        ray = self._ray
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # An exception in srbench's own code on the node (e.g. the data is not there): a
            # fault of the cell, not of the infrastructure, so not retried.
            cause = getattr(exc, "cause", None) or exc
            return error_record(cell, f"{type(cause).__name__}: {str(cause).splitlines()[0]}")
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return error_record(
                cell,
                f"infrastructure failure after {self.retries} retries ({type(exc).__name__}: {first})",
            )
        return cell_record(cell, outcome, attempts_allowed=self.retries)
