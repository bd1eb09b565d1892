"""Human-readable views of a run: the rich console table and the Markdown table.

Both round for reading only (PSNR 2 decimals, SSIM 4, times 2, params 3 in M, FLOPs and
activations 2 in G/M, memory 2 in MB); the JSON and CSV files keep full precision.
A model without trained weights shows "—" in the quality columns with the reason in a
footnote: random-init PSNR is never printed as if it meant something.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.table import Table

from srbench.results.schema import ModelResult, RunResult

DASH = "—"


def _fmt(v: float | int | None, scale: float, digits: int) -> str:
    return DASH if v is None else f"{v / scale:.{digits}f}"


def headline(run: RunResult) -> tuple[str, str]:
    """``(label, attribute)`` of the headline PSNR: Y by default, RGB under ``--ntire-compat``."""
    if run.config.get("ntire_compat"):
        return "PSNR-RGB", "psnr_rgb"
    return "PSNR-Y", "psnr_y"


def _time_stat(run: RunResult) -> str:
    return "mean" if run.config.get("ntire_compat") else "median"


def _time(m: ModelResult, stat: str) -> float | None:
    return getattr(m.runtime_ms, stat) if m.runtime_ms else None


def _quality(m: ModelResult, attr: str) -> float | None:
    return getattr(m, attr) if m.has_quality else None


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
    return f"Memory (MB) mixes definitions that are not comparable ({parts}); see README, Memory (MB)"


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


def caption(run: RunResult) -> str:
    """One line naming the dataset, device and conventions of the table."""
    env = run.environment
    ds = run.dataset
    label, _ = headline(run)
    device = env.get("device_name") or env.get("device", "?")
    crop = "border = scale"
    named = f"{run.config['label']}: " if run.config.get("label") else ""
    backend = run.config.get("backend", "torch")
    # A deployment backend's time is one session.run (README: "Deployment").
    provider = run.config.get("browser_provider" if backend == "browser" else "ort_provider")
    via = "" if backend == "torch" else f" via {backend} ({provider} provider)"
    timed = "forward" if backend == "torch" else "session.run"
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
    )


#: Columns :func:`console_table` drops first when the terminal is too narrow (the files keep them).
DROP_ORDER = ("Convs", "Memory", "Activations", "PSNR-RGB", "Energy", "SSIM-Y")


def _columns(run: RunResult) -> list[tuple[str, str, str, Callable[[ModelResult], str]]]:
    """``(short header, long header, unit, cell)`` of every console column, in order."""
    stat = _time_stat(run)
    columns: list[tuple[str, str, str, Callable[[ModelResult], str]]] = [
        ("Model", "Model", "", lambda m: m.name),
        ("PSNR-Y", "PSNR-Y (dB)", "dB", lambda m: _fmt(_quality(m, "psnr_y"), 1, 2)),
        ("SSIM-Y", "SSIM-Y", "", lambda m: _fmt(_quality(m, "ssim_y"), 1, 4)),
        ("PSNR-RGB", "PSNR-RGB (dB)", "dB", lambda m: _fmt(_quality(m, "psnr_rgb"), 1, 2)),
        ("Time", f"Time (ms, {stat})", f"ms, {stat}", lambda m: _fmt(_time(m, stat), 1, 2)),
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
            _fmt(_quality(m, attr), 1, 2),
            _fmt(_quality(m, "ssim_y"), 1, 4),
            _fmt(_time(m, stat), 1, 2),
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
