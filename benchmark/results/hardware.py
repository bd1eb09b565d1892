"""Hardware consistency of merged rows (``srbench sweep``): timing compares only on identical devices."""

from __future__ import annotations

from typing import Any

from srbench.results.schema import RunResult


def mixed_hardware(run: RunResult) -> list[str]:
    """Warnings for tables whose rows ran on different GPU/CPU models or driver versions.

    Timing is comparable only on identical hardware: rows of one table (same data, backend
    and dtype) that name more than one ``device_name`` or ``driver`` in their runs get a line.
    """
    tables: dict[tuple[Any, ...], set[tuple[Any, Any]]] = {}
    for m in run.models:
        if not m.cell:
            continue
        table = (m.cell.get("data"), m.cell.get("backend"), m.cell.get("dtype"))
        for r in m.cell.get("runs") or [m.cell]:
            if r.get("device_name") is not None:
                tables.setdefault(table, set()).add((r.get("device_name"), r.get("driver")))
    warnings = []
    for (data, backend, dtype), kinds in tables.items():
        if len(kinds) > 1:
            names = "; ".join(f"{n} (driver {d})" if d else str(n) for n, d in sorted(kinds, key=str))
            warnings.append(
                f"rows of table {data}/{backend}/{dtype} were measured on different hardware: {names}; "
                "their times are not comparable"
            )
    return warnings
