"""Measuring each model in its own worker process.

A worker is started per model from a ``forkserver`` that has already imported torch and
srbench (so a worker starts in tens of milliseconds, not seconds). It measures the model
with :func:`~srbench.execution.protocol.measure_model` and sends progress and the final
:class:`~srbench.reporting.results.ModelResult` back over a pipe. Whatever happens in the
worker (an exception, a segfault, a kill, a hang past ``--model-timeout``) the parent gets
a result: ``status="error"`` with the reason. Peak memory is measured inside the worker,
so one model's allocations never inflate another's figure.

Ctrl-C: the workers ignore SIGINT; the parent sets a shared stop flag, the worker finishes
its current image and returns what it has (marked interrupted). A second Ctrl-C kills the
worker at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from srbench.data.cache import ImageCache
from srbench.execution.config import RunConfig
from srbench.execution.protocol import measure_model
from srbench.execution.specs import ModelSpec
from srbench.reporting.results import STATUS_ERROR, ModelResult

_CTX: Any = None


def _context() -> Any:
    global _CTX
    if _CTX is None:
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            # Preloaded once in the server; every worker forks from it with torch imported.
            # fvcore, the loaders and the flop counter are imported lazily by the protocol:
            # preloading them saves every worker ~2 s of imports.
            ctx.set_forkserver_preload(
                [
                    "srbench.execution.protocol",
                    "srbench.data.imageio",
                    "srbench.models.zoo",
                    "srbench.models.loading",
                    "srbench.execution.weights",
                    "srbench.measure.complexity_cache",
                    "fvcore.nn",
                    "thop",
                    "torch.utils.flop_counter",
                    # Counting on the meta device imports torch._dynamo (and with it sympy:
                    # 1-3 s) in every worker whose counts are not cached yet, and so does
                    # the first TorchDispatchMode (the CPU memory meter) in every worker.
                    "torch._dynamo",
                ]
            )
        else:
            ctx = mp.get_context("spawn")
        _CTX = ctx
    return _CTX


def _worker_main(
    spec: ModelSpec,
    cache_root: str,
    config: RunConfig,
    conn: Connection,
    stop: Any,
    setup: Callable[[], None] | None,
    env: dict[str, str] | None = None,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if env is not None:
        _apply_srbench_env(env)
    if setup is not None:
        setup()
    images = ImageCache.open(Path(cache_root))

    def progress(done: int, total: int) -> None:
        conn.send(("progress", done, total))

    result = measure_model(spec, images, config, progress=progress, should_stop=stop.is_set)
    conn.send(("result", result.to_dict()))
    conn.close()


def _srbench_env() -> dict[str, str]:
    # A worker forks from the forkserver, whose environment is the one it started with; the
    # parent's SRBENCH_* variables now (cache, weights folder, offline) travel explicitly.
    return {k: v for k, v in os.environ.items() if k.startswith("SRBENCH_")}


def _apply_srbench_env(env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith("SRBENCH_") and k not in env]:
        del os.environ[key]
    os.environ.update(env)


class Interrupted(Exception):
    """Raised in the parent on a second Ctrl-C: the run stops at once."""


def measure_in_worker(
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float | None = None,
    stop: Any = None,
    setup: Callable[[], None] | None = None,
    skip_main: bool = False,
) -> ModelResult:
    """Run :func:`measure_model` for ``spec`` in a fresh worker; always returns a result.

    ``setup`` (a picklable, module-level callable) runs first in the worker; tests use it
    to cap the worker's memory. ``stop`` is a ``multiprocessing`` Event from
    :func:`new_stop_event`; when set, the worker stops after its current image.
    ``skip_main``: start the worker without re-running this process's ``__main__`` script in
    it (see :func:`main_hidden`); only for callers none of whose arguments (``setup``
    included) are defined in that script.
    """
    ctx = _context()
    stop = stop if stop is not None else ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_worker_main,
        args=(spec, str(images.root), config, child, stop, setup, _srbench_env()),
        name=f"srbench-{spec.name}",
        daemon=True,
    )
    with main_hidden() if skip_main else contextlib.nullcontext():
        proc.start()
    child.close()
    deadline = time.monotonic() + timeout_s if timeout_s else None
    result: dict[str, Any] | None = None
    try:
        while result is None:
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            if parent.poll(wait):
                try:
                    msg = parent.recv()
                except EOFError:
                    break  # worker exited without a result
                if msg[0] == "progress" and progress:
                    progress(msg[1], msg[2])
                elif msg[0] == "result":
                    result = msg[1]
            elif not proc.is_alive() and not parent.poll(0):
                break
            if deadline is not None and time.monotonic() >= deadline and result is None:
                proc.kill()
                proc.join()
                return _error(
                    spec, config, f"exceeded --model-timeout {timeout_s:g} s; the worker was killed"
                )
    except KeyboardInterrupt:
        proc.kill()
        proc.join()
        raise Interrupted() from None
    proc.join(timeout=30)
    if result is not None:
        return ModelResult.from_dict(result)
    return _error(spec, config, _death_reason(proc.exitcode))


@contextlib.contextmanager
def main_hidden() -> Iterator[None]:
    """While a worker starts, multiprocessing finds no ``__main__`` to re-run in it.

    To unpickle objects defined in the parent's ``__main__``, every worker re-runs the
    parent's main script (as ``__mp_main__``) unless it was started with ``-m pkg`` (whose
    ``pkg.__main__`` multiprocessing skips). ``srbench`` itself runs as ``-m srbench``, but a
    Ray task runs in Ray's ``default_worker.py``, whose re-run imports Ray in every worker:
    ~260 ms per worker start, measured, against ~20 ms without it. Hiding ``__main__``'s
    ``__spec__`` and ``__file__`` for the duration of ``Process.start`` (which captures
    them) makes the worker leave its ``__main__`` alone; both are restored at once.
    """
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _death_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process died ({name}) without a result"
    return f"the worker process exited with code {code} without a result"


def _error(spec: ModelSpec, config: RunConfig, reason: str) -> ModelResult:
    return ModelResult(
        name=config.row_name(spec.name),
        arch=spec.arch,
        scale=config.scale,
        status=STATUS_ERROR,
        reason=reason,
        backend=config.backend,
        dtype=config.dtype,
    )


def _noop() -> None:
    pass


def _start_server() -> None:
    # ensure_running only launches the server; it preloads (torch, srbench, fvcore, dynamo:
    # 2-3 s) before it serves. A no-op child is served only after that: joining it means the
    # server is ready, so the thread ends when the preload does.
    ctx = _context()
    proc = ctx.Process(target=_noop, name="srbench-forkserver-ready", daemon=True)
    proc.start()
    proc.join()


def prestart() -> threading.Thread | None:
    """Start the forkserver (it imports torch and srbench: ~2-3 s) on a background thread
    that ends when the server is ready to fork workers.

    Called before the dataset is decoded, so that work overlaps instead of landing on the
    first model's fixed cost. Later worker starts wait for it if it is not done yet.
    """
    if _context().get_start_method() != "forkserver":
        return None
    thread = threading.Thread(target=_start_server, name="srbench-forkserver", daemon=True)
    thread.start()
    return thread


def new_stop_event() -> Any:
    """A stop flag shared with workers (set it to stop after the current image)."""
    return _context().Event()
