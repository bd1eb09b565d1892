"""Where a sweep's cells run: :class:`LocalEngine` (this machine) or :class:`RayEngine` (a Ray cluster).

An engine has a ``name`` and ``run(cells, finished)``: it measures every cell (each with
:func:`srbench.execution.sweep.execute_cell`) and calls ``finished(record)`` on the calling
thread for each as it completes, a :class:`~srbench.execution.sweep.CellRecord` (an ``error``
record when the cell could not be measured). On Ctrl-C (``KeyboardInterrupt`` in ``run``) it
cancels the cells not yet finished, drops those cut short, and re-raises.
"""

from srbench.execution.engines.local import LocalEngine

__all__ = ["LocalEngine"]
