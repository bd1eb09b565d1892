"""Background load on purpose, bounded: busy processes for the bench's stability figures and
for the tests that prove a disturbed forward or an honest model under load is handled.

:func:`busy_processes` starts ``n`` Python processes that spin on the CPU, each optionally
pinned to a set of CPUs (``os.sched_setaffinity``), and stops them when the block ends,
whatever happens inside it. Each one also stops itself after ``seconds``, so a crashed
caller cannot leave them running.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

_SPIN = """
import os, sys, time
cpus = {cpus!r}
if cpus is not None:
    os.sched_setaffinity(0, cpus)
sys.stdout.write("busy\\n")
sys.stdout.flush()
end = time.monotonic() + {seconds!r}
x = 0
while time.monotonic() < end:
    for _ in range(10000):
        x += 1
"""


@contextlib.contextmanager
def busy_processes(n: int, *, seconds: float = 120.0, cpus: set[int] | None = None) -> Iterator[list[int]]:
    """``n`` spinning processes (their pids) for the duration of the block, each pinned to
    ``cpus`` when given, each ending by itself after ``seconds`` at the latest. The block
    starts once every process is spinning (it has written its first line)."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _SPIN.format(cpus=cpus, seconds=float(seconds))],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        for p in procs:
            assert p.stdout is not None
            p.stdout.readline()  # spinning from here
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=10)
            if p.stdout is not None:
                p.stdout.close()


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """This process (its calling thread and the threads it starts) on ``cpus`` inside the
    block; the previous affinity mask after it."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
