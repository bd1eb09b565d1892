"""Human-readable views of a run: the rich console table and the Markdown table.

Both round for reading only (PSNR 2 decimals, SSIM 4, times 2, params 3 in M, FLOPs and
activations 2 in G/M, memory 2 in MB); the JSON and CSV files keep full precision.
A figure with a 95 % interval (``ModelResult.intervals``, docs/statistics.md) is followed by
``±h`` at the figure's precision, ``h`` the larger distance from the figure to an end of the
interval (:attr:`srbench.results.stats.Interval.plus_minus`); the JSON keeps both ends.
A model without trained weights shows "—" in the quality columns with the reason in a
footnote: random-init PSNR is never printed as if it meant something.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table

from srbench.backends.registry import get_backend
from srbench.core.errors import SrbenchError
from srbench.results.schema import ModelResult, RunResult
from srbench.results.stats import headline_time_stat

DASH = "—"


def _fmt(v: float | int | None, scale: float, digits: int) -> str:
    return DASH if v is None else f"{v / scale:.{digits}f}"


def headline(run: RunResult) -> tuple[str, str]:
    """``(label, attribute)`` of the headline PSNR: Y by default, RGB under ``--ntire-compat``."""
    if run.config.get("ntire_compat"):
        return "PSNR-RGB", "psnr_rgb"
    return "PSNR-Y", "psnr_y"


def _time_stat(run: RunResult) -> str:
    return headline_time_stat(bool(run.config.get("ntire_compat")))


def with_interval(m: ModelResult, key: str, value: float | None, scale: float, digits: int) -> str:
    """``value`` as :func:`_fmt` prints it, then `` ±h`` when the row has an interval for
    ``key`` whose estimate is this very figure (a stale interval, e.g. a sweep row whose time
    is over runs, is never shown beside another figure)."""
    text = _fmt(value, scale, digits)
    iv = (m.intervals or {}).get(key)
    if value is None or iv is None or not math.isclose(iv.estimate, value, rel_tol=1e-9, abs_tol=1e-12):
        return text
    return f"{text} ±{iv.plus_minus / scale:.{digits}f}"


def _has_intervals(run: RunResult) -> bool:
    return any(m.intervals for m in run.models)


def _time(m: ModelResult, stat: str) -> float | None:
    return getattr(m.runtime_ms, stat) if m.runtime_ms else None


def _quality(m: ModelResult, attr: str) -> float | None:
    return getattr(m, attr) if m.has_quality else None


def _q(m: ModelResult, attr: str, digits: int) -> str:
    return with_interval(m, attr, _quality(m, attr), 1, digits)


def _t(m: ModelResult, stat: str) -> str:
    return with_interval(m, "runtime_ms", _time(m, stat), 1, 2)


#: Appended to the FLOPs of a model whose fvcore count is below its conv lower bound.
UNDERCOUNT_MARK = " ⚠"


def flops_cell(m: ModelResult) -> str:
    """FLOPs in G (2 decimals), marked when the count is below the conv lower bound."""
    return _fmt(m.flops, 1e9, 2) + (UNDERCOUNT_MARK if m.flops_undercount else "")


def memory_kinds_note(models: Sequence[ModelResult]) -> str | None:
    """One line when the rows' memory figures follow different definitions (``memory_kind``:
    e.g. PyTorch's live-tensor peak beside ONNX Runtime's RSS growth), which are not
    comparable; None when they share one."""
    by_kind: dict[str, list[str]] = {}
    for m in models:
        if m.memory_mb is not None and m.memory_kind:
            by_kind.setdefault(m.memory_kind, []).append(m.name)
    if len(by_kind) <= 1:
        return None
    parts = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(by_kind.items()))
    return f"Memory (MB) mixes definitions that are not comparable ({parts}); see docs/metrics.md"


def footnotes(run: RunResult) -> list[str]:
    """The run's notes (busy machine), a line when the memory column mixes definitions, then
    one line per model whose quality or figures are missing, saying why, and each model's
    notes."""
    notes = list(run.notes)
    mixed = memory_kinds_note(run.models)
    if mixed:
        notes.append(mixed)
    for m in run.models:
        if m.status != "ok" and m.reason:
            notes.append(f"{m.name}: {m.status}: {m.reason}")
        notes.extend(f"{m.name}: {n}" for n in m.notes)
    return notes


def backend_caption(config: dict[str, Any]) -> tuple[str, str]:
    """What the caption says of the backend (`` via onnxruntime (cpu provider)``) and what one
    timed call is (``forward``, ``session.run``); a backend this install does not know (a
    results file from a plug-in) is named as recorded."""
    name = config.get("backend", "torch")
    try:
        kind = get_backend(name)
    except SrbenchError:
        return f" via {name}", "call"
    return kind.caption(config), kind.timed_call


def caption(run: RunResult) -> str:
    """One line naming the dataset, device and conventions of the table."""
    env = run.environment
    ds = run.dataset
    label, _ = headline(run)
    device = env.get("device_name") or env.get("device", "?")
    crop = "border = scale"
    named = f"{run.config['label']}: " if run.config.get("label") else ""
    via, timed = backend_caption(run.config)
    facts = env.get("threads") if isinstance(env.get("threads"), dict) else {}
    used = facts.get("used", env.get("torch_threads"))
    requested = facts.get("requested")
    threads = (
        f"; {used} CPU thread(s)"
        + (f" (--threads {requested})" if requested is not None and str(requested) != str(used) else "")
        if used is not None
        else ""
    )
    return (
        f"{named}{ds.get('name', '?')} ({ds.get('images', '?')} images, x{ds.get('scale', '?')}) "
        f"on {device}{via}; "
        f"{label} with {crop}; time = {_time_stat(run)} {timed} ms of undisturbed forwards{threads}; "
        f"FLOPs = fvcore MACs at {'x'.join(map(str, run.config.get('profile_input', [1, 3, 256, 256])))}"
        + ("; ± = 95 % bootstrap interval" if _has_intervals(run) else "")
    )


#: Columns :func:`console_table` drops first when the terminal is too narrow (the files keep them).
DROP_ORDER = ("Convs", "Memory", "Activations", "PSNR-RGB", "Energy", "SSIM-Y")


def _columns(run: RunResult) -> list[tuple[str, str, str, Callable[[ModelResult], str]]]:
    """``(short header, long header, unit, cell)`` of every console column, in order."""
    stat = _time_stat(run)
    columns: list[tuple[str, str, str, Callable[[ModelResult], str]]] = [
        ("Model", "Model", "", lambda m: m.name),
        ("PSNR-Y", "PSNR-Y (dB)", "dB", lambda m: _q(m, "psnr_y", 2)),
        ("SSIM-Y", "SSIM-Y", "", lambda m: _q(m, "ssim_y", 4)),
        ("PSNR-RGB", "PSNR-RGB (dB)", "dB", lambda m: _q(m, "psnr_rgb", 2)),
        ("Time", f"Time (ms, {stat})", f"ms, {stat}", lambda m: _t(m, stat)),
        ("Params", "Params (M)", "M", lambda m: _fmt(m.params, 1e6, 3)),
        ("FLOPs", "FLOPs (G)", "G", flops_cell),
        ("Activations", "Activations (M)", "M", lambda m: _fmt(m.activations, 1e6, 2)),
        ("Memory", "Memory (MB)", "MB", lambda m: _fmt(m.memory_mb, 1, 2)),
        ("Convs", "Convs", "", lambda m: DASH if m.convs is None else str(m.convs)),
    ]
    if any(m.energy_j_per_image is not None for m in run.models):
        # Only GPUs with an NVML energy counter have this figure; CPU runs never show it.
        columns.append(("Energy", "Energy (J/img)", "J/img", lambda m: _fmt(m.energy_j_per_image, 1, 3)))
    return columns


def _table_width(widths: list[int]) -> int:
    # rich's default box: one space of padding each side of a cell, one rule between and around.
    return sum(w + 2 for w in widths) + len(widths) + 1


def console_table(run: RunResult, width: int | None = None) -> Table:
    """The run as a rich table that fits ``width`` columns without cutting anything.

    No header and no model name is ever shortened with "…": when the full headers (units
    in them) do not fit, the headers become single words with the units in the caption; when
    that is still too wide, columns are dropped in :data:`DROP_ORDER` and the caption says
    they are in results.csv/results.md. ``width=None``: the full table.
    """
    columns = _columns(run)
    rows = [[fn(m) for *_, fn in columns] for m in run.models]

    def widths(headers: list[str], keep: list[int]) -> list[int]:
        return [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in keep]

    everything = list(range(len(columns)))
    long_headers = [c[1] for c in columns]
    short_headers = [c[0] for c in columns]
    headers, keep, dropped = long_headers, everything, []
    if width is not None and _table_width(widths(long_headers, everything)) > width:
        headers = short_headers
        for name in DROP_ORDER:
            if _table_width(widths(headers, keep)) <= width:
                break
            index = next((i for i in keep if columns[i][0] == name), None)
            if index is not None:
                keep = [i for i in keep if i != index]
                dropped.append(columns[index][1])
    title = f"srbench results: {run.config['label']}" if run.config.get("label") else "srbench results"
    text = caption(run)
    if headers is short_headers:
        units = ", ".join(f"{columns[i][0]} {columns[i][2]}" for i in keep if columns[i][2])
        text += f"; units: {units}"
    if dropped:
        text += f"; not shown at this width (see results.csv/results.md): {', '.join(dropped)}"
    table = Table(title=title, caption=text, caption_justify="left")
    for i, w in zip(keep, widths(headers, keep), strict=True):
        # no_wrap + min_width: rich never folds or ellipsises a header or a model name.
        table.add_column(
            headers[i], justify="left" if i == 0 else "right", no_wrap=True, min_width=w, overflow="fold"
        )
    for m, r in zip(run.models, rows, strict=True):
        style = "red" if m.status == "error" else None
        table.add_row(*(r[i] for i in keep), style=style)
    return table


def results_markdown(run: RunResult, *, title: str | None = None) -> str:
    """The seed chart's layout plus SSIM, with a caption and footnotes.

    ``title`` replaces the caption line (a merged report names several devices).
    """
    label, attr = headline(run)
    stat = _time_stat(run)
    header = [
        "Model",
        f"Val {label} (dB)",
        "Val SSIM-Y",
        f"Val Time (ms, {stat})",
        "Params (M)",
        "FLOPs (G)",
        "Activations (M)",
        "Memory (MB)",
        "Convs",
    ]
    top = caption(run) if title is None else title
    lines = [f"**{top}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in run.models:
        row = [
            m.name,
            _q(m, attr, 2),
            _q(m, "ssim_y", 4),
            _t(m, stat),
            _fmt(m.params, 1e6, 3),
            flops_cell(m),
            _fmt(m.activations, 1e6, 2),
            _fmt(m.memory_mb, 1, 2),
            DASH if m.convs is None else str(m.convs),
        ]
        lines.append("| " + " | ".join(row) + " |")
    notes = footnotes(run)
    if notes:
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
    return "\n".join(lines) + "\n"


def precision_ladder_markdown(models: Sequence[ModelResult]) -> str | None:
    """The precision ladder (Markdown): each fp32 row that has variants, then its variants with
    their ``precision_cost`` (docs/deployment.md); None when no row is a variant."""
    variants = [m for m in models if m.precision_cost]
    if not variants:
        return None
    by_name = {m.name: m for m in models}
    header = ["Model", "Precision", "PSNR-Y (dB)", "Δ PSNR-Y (dB)", "Δ SSIM-Y", "Time (ms, median)"]
    header += ["fp32 time / time", "File (MB)", "File / fp32"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    done: set[str] = set()
    for v in variants:
        base = by_name.get(v.precision_cost["reference"])
        if base is not None and base.name not in done:
            done.add(base.name)
            size = (base.deployed or {}).get("size_bytes")
            row = [base.name, "fp32", _fmt(base.psnr_y, 1, 2), DASH, DASH, _fmt(_time(base, "median"), 1, 2)]
            row += ["1", _fmt(size, 2**20, 3), "1"]
            lines.append("| " + " | ".join(row) + " |")
        c = v.precision_cost
        precision = ((v.deployed or {}).get("precision") or {}).get("precision", "?")
        delta_psnr = DASH if c["psnr_y_delta"] is None else f"{c['psnr_y_delta']:+.3f}"
        delta_ssim = DASH if c["ssim_y_delta"] is None else f"{c['ssim_y_delta']:+.4f}"
        row = [
            v.name,
            precision,
            _fmt(v.psnr_y, 1, 2),
            delta_psnr,
            delta_ssim,
            _fmt(_time(v, "median"), 1, 2),
        ]
        row += [_fmt(c["speed_ratio"], 1, 2), _fmt((v.deployed or {}).get("size_bytes"), 2**20, 3)]
        row += [_fmt(c["size_ratio"], 1, 2)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
