"""Measuring each model in its own worker process.

A worker is started per model from a ``forkserver`` that has already imported torch and
srbench (:mod:`srbench.runner.forkserver`; a worker starts in tens of milliseconds, not
seconds). It measures the model
with :func:`~srbench.runner.protocol.measure_model` and sends progress and the final
:class:`~srbench.results.schema.ModelResult` back over a pipe. Whatever happens in the
worker (an exception, a segfault, a kill, a hang past ``--model-timeout``) the parent gets
a result: ``status="error"`` with the reason. Peak memory is measured inside the worker,
so one model's allocations never inflate another's figure.

Ctrl-C: the workers ignore SIGINT; the parent sets a shared stop flag, the worker finishes
its current image and returns what it has (marked interrupted). A second Ctrl-C kills the
worker at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from srbench.data.cache import ImageCache
from srbench.models.specs import ModelSpec
from srbench.results.config import RunConfig
from srbench.results.schema import STATUS_ERROR, ModelResult
from srbench.runner.forkserver import context, ensure_server, main_hidden
from srbench.runner.protocol import measure_model


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
    it (see :func:`~srbench.runner.forkserver.main_hidden`); only for callers none of
    whose arguments (``setup`` included) are defined in that script.
    """
    ctx = context()
    stop = stop if stop is not None else ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_worker_main,
        args=(spec, str(images.root), config, child, stop, setup, _srbench_env()),
        name=f"srbench-{spec.name}",
        daemon=True,
    )
    ensure_server()  # started with the current folder off its import path
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


def new_stop_event() -> Any:
    """A stop flag shared with workers (set it to stop after the current image)."""
    return context().Event()
