"""Where a sweep's cells run: :class:`LocalEngine` (this machine) or :class:`RayEngine` (a Ray cluster).

An engine has a ``name`` and ``run(cells, finished)``: it measures every cell (each with
:func:`srbench.runner.sweep.execute_cell`) and calls ``finished(record)`` on the calling
thread for each as it completes, a :class:`~srbench.runner.sweep.CellRecord` (an ``error``
record when the cell could not be measured). On Ctrl-C (``KeyboardInterrupt`` in ``run``) it
cancels the cells not yet finished, drops those cut short, and re-raises.
"""

from typing import Any

__all__ = ["LocalEngine"]


def __getattr__(name: str) -> Any:
    # Imported on first use: a Ray worker imports this package for ray_engine._ray_cell and
    # must not import torch (through local -> sweep) before that task starts the forkserver.
    if name == "LocalEngine":
        from srbench.runner.launchers.local import LocalEngine

        return LocalEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
