"""The ``local`` engine: cells on this machine, one at a time per device, devices in parallel.

Each device gets one thread that takes the next cell and measures it in a fresh worker
process (:func:`~srbench.runner.isolation.measure_in_worker`, as ``srbench run``), so
two cells never share a device: timing needs the device to itself. The dataset is decoded
once under ``cache_root`` and reused by every cell.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from srbench.runner.isolation import new_stop_event
from srbench.runner.sweep import Cell, CellRecord, cell_record, error_record, execute_cell


class LocalEngine:
    """Runs cells on ``devices`` (``None``: each cell's own ``--device``), one cell per device at a time."""

    name = "local"

    def __init__(self, devices: Sequence[str | None], cache_root: Path, *, setup: Any = None) -> None:
        self.devices = list(devices) or [None]
        self.cache_root = Path(cache_root)
        self.setup = setup

    @property
    def slots(self) -> int:
        """How many cells run at once (one per device)."""
        return len(self.devices)

    def shutdown(self) -> None:
        """Remove the decoded-image cache."""
        import shutil

        shutil.rmtree(self.cache_root, ignore_errors=True)

    def run(self, cells: Sequence[Cell], finished: Callable[[CellRecord], None]) -> None:

        todo: queue.Queue[Cell] = queue.Queue()
        for cell in cells:
            todo.put(cell)
        done: queue.Queue[CellRecord] = queue.Queue()
        stop = new_stop_event()
        halt = threading.Event()

        def work(device: str | None) -> None:
            while not halt.is_set():
                try:
                    cell = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome = execute_cell(
                        cell, cache_root=self.cache_root, device=device, stop=stop, setup=self.setup
                    )
                    record = cell_record(cell, outcome)
                except Exception as exc:  # e.g. the data cannot be decoded: an error row, not a crash
                    record = error_record(cell, f"{type(exc).__name__}: {exc}", node="local")
                if not halt.is_set():  # a cell cut short by Ctrl-C is not a finished cell
                    done.put(record)

        threads = [
            threading.Thread(target=work, args=(d,), name=f"srbench-sweep-{d or 'default'}", daemon=True)
            for d in self.devices
        ]
        for t in threads:
            t.start()
        try:
            received = 0
            while received < len(cells):
                try:
                    record = done.get(timeout=0.2)
                except queue.Empty:
                    if not any(t.is_alive() for t in threads) and done.empty():
                        break
                    continue
                received += 1
                finished(record)
        except KeyboardInterrupt:
            halt.set()
            stop.set()  # running workers stop after their current image
            for t in threads:
                t.join(timeout=60)
            raise
