"""Progress of a run that fits where the output goes.

On a terminal: rich's bar, one per model. Elsewhere (a log file, CI, ``nohup``), a bar
would print nothing useful until the end, so :class:`LineProgress` writes plain lines to
stderr: one when a model starts, one every ``every`` images with the elapsed time and an
ETA, one when it ends. ``--quiet`` (``mode="none"``) writes nothing.

The ETA is the model's elapsed time per finished image times the images left (the first
image includes the model's warm-up, so early ETAs run high).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: ``auto``: a bar on a terminal, else lines; ``bar``; ``lines``; ``none``.
ProgressMode = Literal["auto", "bar", "lines", "none"]
PROGRESS_MODES = ("auto", "bar", "lines", "none")
#: Images between two progress lines when the output is not a terminal.
LINE_EVERY = 10


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


class LineProgress:
    """Plain progress lines, ``srbench: [2/11] span: 20/100 images, 12.3 s, ETA 49.2 s``."""

    def __init__(self, stream: TextIO, models: int, every: int = LINE_EVERY, clock=time.monotonic) -> None:
        self.stream, self.models, self.every, self.clock = stream, models, max(1, every), clock
        self.index = 0
        self.name, self.total, self.start = "", 0, 0.0

    def _line(self, text: str) -> None:
        self.stream.write(f"srbench: [{self.index}/{self.models}] {self.name}: {text}\n")
        self.stream.flush()

    def start_model(self, name: str, total: int) -> None:
        self.index += 1
        self.name, self.total, self.start = name, total, self.clock()
        self._line(f"started ({total} images)")

    def update(self, done: int) -> None:
        if done <= 0 or (done % self.every and done != self.total):
            return
        elapsed = self.clock() - self.start
        eta = elapsed / done * (self.total - done)
        self._line(f"{done}/{self.total} images, {_seconds(elapsed)}, ETA {_seconds(eta)}")

    def end_model(self, status: str) -> None:
        self._line(f"{status} in {_seconds(self.clock() - self.start)}")


class _BarProgress:
    def __init__(self, bar: Progress) -> None:
        self.bar, self.task = bar, None

    def start_model(self, name: str, total: int) -> None:
        self.task = self.bar.add_task(name, total=total)

    def update(self, done: int) -> None:
        self.bar.update(self.task, completed=done)

    def end_model(self, status: str) -> None:
        pass


class _NoProgress:
    def start_model(self, name: str, total: int) -> None:
        pass

    def update(self, done: int) -> None:
        pass

    def end_model(self, status: str) -> None:
        pass


@contextmanager
def model_progress(console: Console, mode: ProgressMode, models: int) -> Iterator[tuple[object, Callable]]:
    """``(progress, print)``: ``progress`` has ``start_model(name, total)``, ``update(done)``
    and ``end_model(status)``; ``print`` writes a message without breaking the bar."""
    if mode == "auto":
        mode = "bar" if console.is_terminal else "lines"
    if mode == "bar":
        with Progress(
            TextColumn("[bold]{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            yield _BarProgress(bar), bar.console.print
    elif mode == "lines":
        yield LineProgress(console.file, models), console.print
    else:
        yield _NoProgress(), console.print


@contextmanager
def count_progress(
    console: Console, mode: ProgressMode, total: int, label: str, clock: Callable[[], float] = time.monotonic
) -> Iterator[tuple[Callable[[str], None], Callable]]:
    """``(advance, print)`` for work counted in units finishing in any order (a sweep's cells):
    ``advance(description)`` after each. A bar on a terminal; elsewhere one line per unit,
    ``srbench: sweep 3/12 span fp32 ...: 41.0 s, ETA 123.0 s`` (the mean time per unit so
    far times the units left)."""
    if mode == "auto":
        mode = "bar" if console.is_terminal else "lines"
    if mode == "bar":
        with Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        ) as bar:
            task = bar.add_task("", total=total)
            yield (lambda text: bar.update(task, advance=1, description=text)), bar.console.print
        return
    start, done = clock(), 0

    def advance(text: str) -> None:
        nonlocal done
        done += 1
        if mode == "lines":
            elapsed = clock() - start
            eta = elapsed / done * (total - done)
            console.file.write(
                f"srbench: {label} {done}/{total} {text}: {_seconds(elapsed)}, ETA {_seconds(eta)}\n"
            )
            console.file.flush()

    yield advance, console.print
