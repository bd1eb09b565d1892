"""The server measuring workers fork from, and how a worker starts from it (standard library only).

A worker is forked per model from a ``multiprocessing`` forkserver that has already imported
torch and srbench (tens of milliseconds per worker instead of seconds). This module imports
nothing heavy, so a process can start the server (:func:`prestart`) before it imports torch
itself: a Ray task does, so that the server's imports and its own overlap.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: Imported once in the server; every worker forks from it with these already imported.
#: fvcore, the loaders and the flop counter are imported lazily by the protocol: preloading
#: them saves every worker ~2 s of imports. Counting on the meta device imports
#: torch._dynamo (and with it sympy: 1-3 s) in every worker whose counts are not cached yet,
#: and so does the first TorchDispatchMode (the CPU memory meter) in every worker: ~1 s.
PRELOAD = [
    "srbench.runner.protocol",
    "srbench.data.imageio",
    "srbench.models.zoo",
    "srbench.models.loading",
    "srbench.models.weights",
    "srbench.measure.complexity_cache",
    "fvcore.nn",
    "thop",
    "torch.utils.flop_counter",
    "torch._dynamo",
]

_CTX: Any = None
_SERVER: threading.Thread | None = None
_LOCK = threading.Lock()
_HIDDEN = 0
_SAVED: dict[str, Any] = {}


def context() -> Any:
    """The ``forkserver`` context with :data:`PRELOAD` (``spawn`` where there is no forkserver)."""
    global _CTX
    if _CTX is None:
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
        else:
            ctx = mp.get_context("spawn")
        _CTX = ctx
    return _CTX


@contextlib.contextmanager
def main_hidden() -> Iterator[None]:
    """While a worker starts, multiprocessing finds no ``__main__`` to re-run in it.

    To unpickle objects defined in the parent's ``__main__``, every worker re-runs the
    parent's main script (as ``__mp_main__``) unless it was started with ``-m pkg`` (whose
    ``pkg.__main__`` multiprocessing skips). ``srbench`` itself runs as ``-m srbench``, but a
    Ray task runs in Ray's ``default_worker.py``, whose re-run imports Ray in every worker:
    ~260 ms per worker start, measured, against ~20 ms without it. Hiding ``__main__``'s
    ``__spec__`` and ``__file__`` while ``Process.start`` captures them makes the worker
    leave its ``__main__`` alone. Threads may overlap: the first to enter hides, the last to
    leave restores.
    """
    global _HIDDEN
    main = sys.modules["__main__"]
    with _LOCK:
        if _HIDDEN == 0:
            _SAVED.clear()
            _SAVED.update({k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__})
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        _HIDDEN += 1
    try:
        yield
    finally:
        with _LOCK:
            _HIDDEN -= 1
            if _HIDDEN == 0:
                main.__dict__.pop("__spec__", None)
                main.__dict__.update(_SAVED)


def ensure_server() -> None:
    """Start the forkserver if it is not running, with the current folder off its import path.

    The server runs as ``python -c ...``, which puts the current folder first on
    ``sys.path``, and Python 3.11's forkserver never applies the parent's path: a folder
    named ``srbench`` (a checkout, say) or ``torch`` where the user runs srbench would then
    shadow the installed package in every worker (measured: every model failed with an
    ``ImportError`` naming ``srbench``). ``PYTHONSAFEPATH`` (Python 3.11+) keeps it off; it
    is set only while the server process is created. A no-op when it is already running.
    """
    if context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    with _LOCK:
        previous = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            forkserver.ensure_running()
        finally:
            if previous is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = previous


def _noop() -> None:
    pass


def _start_server(skip_main: bool) -> None:
    # ensure_running only launches the server; it preloads (torch, srbench, fvcore, dynamo:
    # 2-3 s) before it serves. A no-op child is served only after that: joining it means the
    # server is ready, so the thread ends when the preload does.
    ensure_server()
    proc = context().Process(target=_noop, name="srbench-forkserver-ready", daemon=True)
    with main_hidden() if skip_main else contextlib.nullcontext():
        proc.start()
    proc.join()


def prestart(*, skip_main: bool = False) -> threading.Thread | None:
    """Start the forkserver (it imports torch and srbench: ~2-3 s) on a background thread
    that ends when the server is ready to fork workers; once per process (later calls return
    the same thread).

    Called before the dataset is decoded (and, in a Ray task, before the task imports torch),
    so that work overlaps instead of landing on the first model's fixed cost. Later worker
    starts wait for the server if it is not ready yet. ``skip_main`` as in
    :func:`~srbench.runner.isolation.measure_in_worker`.
    """
    global _SERVER
    if context().get_start_method() != "forkserver":
        return None
    with _LOCK:
        if _SERVER is None:
            _SERVER = threading.Thread(
                target=_start_server, args=(skip_main,), name="srbench-forkserver", daemon=True
            )
            _SERVER.start()
    return _SERVER
