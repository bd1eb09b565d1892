"""Merged reports of one or more runs: ``report.md``, ``report.html`` and the plots.

Runs (e.g. several machines or dtypes) are merged row by row. A run is named by its label
(``srbench run --label``, or ``srbench report --label`` to rename) or else by its
``device/dtype``. With one run, or several unlabelled runs on the same device and dtype with
distinct models, rows are named by model; otherwise ``model @ run name`` (``#k`` appended
when two runs share a name).
Every file is written atomically into the output folder.

Comparisons (``## Comparisons``; docs/statistics.md): with ``--baseline ROW`` every other row
measured on the same images against that row; else, with several runs, each row of a later
run against the row of the same model in the first run. Each is a paired comparison
(:func:`srbench.results.comparison.compare_rows`): time ratio, ΔPSNR-Y and ΔSSIM-Y with their
95 % intervals and verdicts. Rows on other images are listed as not compared, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from srbench.core.errors import SrbenchError
from srbench.reporting import html
from srbench.reporting.claims import (
    CONTRADICTED,
    REPRODUCED,
    ClaimCheck,
    check_claims,
    load_references,
    unmeasured,
)
from srbench.reporting.plots import plot_points, write_plots
from srbench.results.comparison import (  # run_tag re-exported: the report names runs by it
    Row,
    RowComparison,
    compare_rows,
    comparison_lines,
    image_mismatch,
    run_tag,
)
from srbench.results.hardware import mixed_hardware
from srbench.results.schema import (
    ModelResult,
    RunResult,
    atomic_write_bytes,
    atomic_write_text,
    load_results,
)
from srbench.results.stats import headline_time_stat
from srbench.results.tables import (
    UNDERCOUNT_MARK,
    caption,
    footnotes,
    headline,
    memory_kinds_note,
    precision_ladder_markdown,
    results_markdown,
)

#: One measured model of the report: (row label, model, the run it came from).
Labelled = tuple[str, ModelResult, RunResult]


@dataclass(frozen=True)
class LoadedRun:
    """A run in the report: its results, where it was read from and its ``device/dtype`` tag."""

    run: RunResult
    source: Path
    tag: str

    @property
    def folder(self) -> Path:
        """The run folder (holding results.json and, maybe, images/)."""
        return self.source.parent


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`build_report`; ``plots`` keyed by file name."""

    markdown: Path
    html: Path
    plots: dict[str, Path]


def load_runs(inputs: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[LoadedRun]:
    """Read each run folder or results.json; tags made unique with ``#k`` when they repeat.

    ``labels`` (one per input) rename the runs, replacing the label they were run with.
    """
    if not inputs:
        raise SrbenchError("srbench report needs at least one run folder or results.json")
    if labels and len(labels) != len(inputs):
        raise SrbenchError(
            f"srbench report got {len(labels)} --label for {len(inputs)} runs; give one --label per run, "
            "in the order of the runs"
        )
    loaded = []
    for i, item in enumerate(inputs):
        p = Path(item)
        source = p / "results.json" if p.is_dir() else p
        run = load_results(source)
        if labels:
            run.config = {**run.config, "label": labels[i]}
        loaded.append((run, source))
    tags = [run_tag(r) for r, _ in loaded]
    out = []
    for i, ((run, source), tag) in enumerate(zip(loaded, tags)):
        if tags.count(tag) > 1:
            tag = f"{tag} #{tags[:i].count(tag) + 1}"
        out.append(LoadedRun(run, source, tag))
    return out


def labelled_models(runs: Sequence[LoadedRun]) -> list[Labelled]:
    """Every model of every run with its row label (see the module docstring)."""
    names = [m.name for r in runs for m in r.run.models]
    same_setup = len({run_tag(r.run) for r in runs}) == 1
    labelled = any(r.run.config.get("label") for r in runs)
    plain = len(runs) == 1 or (same_setup and not labelled and len(names) == len(set(names)))
    return [(m.name if plain else f"{m.name} @ {r.tag}", m, r.run) for r in runs for m in r.run.models]


def _run_line(r: LoadedRun, *, markdown: bool = False) -> str:
    """A run's caption; its tag in front unless the caption already starts with the label."""
    if r.run.config.get("label"):
        return caption(r.run)
    return f"`{r.tag}`: {caption(r.run)}" if markdown else f"{r.tag}: {caption(r.run)}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def results_section(runs: Sequence[LoadedRun]) -> str:
    """The seed-chart table(s): one per headline convention (NTIRE-compat runs apart)."""
    labels = labelled_models(runs)
    groups: dict[bool, list[LoadedRun]] = {}
    for r in runs:
        groups.setdefault(bool(r.run.config.get("ntire_compat")), []).append(r)
    parts = []
    for group in groups.values():
        ids = {id(r.run) for r in group}
        models = [replace(m, name=label) for label, m, run in labels if id(run) in ids]
        first = group[0].run
        # The runs' own notes (a busy machine's load warning, ...) stay with the table, as in
        # results.md and report.html.
        notes = [f"{r.tag}: {n}" if len(runs) > 1 else n for r in group for n in r.run.notes]
        merged = RunResult(first.environment, first.config, first.dataset, models, first.created, notes=notes)
        if len(runs) == 1:
            title = None  # the run's own caption
        else:
            devices = ", ".join(dict.fromkeys(r.tag for r in group))
            title = f"{len(group)} runs: {devices}; rows are model @ run (captions under Runs)"
        parts.append(results_markdown(merged, title=title))
    return "\n".join(parts)


def claims_markdown(checks: Sequence[ClaimCheck], missing: Sequence[str]) -> str:
    """The claims-vs-measured table (Markdown)."""
    lines = []
    if checks:
        header = ["Model", "Claim", "Measured", "Verdict", "Why", "Source"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for c in checks:
            cells = [c.row, c.claim, c.measured, f"**{c.verdict}**", c.reason or "", c.source]
            lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    else:
        lines.append("No measured model has published claims in the reference folder.")
    if missing:
        lines += ["", "Not measured in these runs: " + "; ".join(missing) + "."]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Comparisons:
    """The report's paired comparisons, the pairs left out (``B vs A: why``) and a note on
    the baseline (e.g. a ``--baseline`` that names no row)."""

    done: list[RowComparison]
    skipped: list[str]
    note: str | None = None


def comparisons(runs: Sequence[LoadedRun], baseline: str | None = None) -> Comparisons:
    """The pairs the report compares (see the module docstring), each compared."""
    labels = labelled_models(runs)
    rows = [Row(label, m, run) for label, m, run in labels if m.status != "error"]
    pairs: list[tuple[Row, Row]] = []
    note = None
    if baseline is not None:
        base = next((r for r in rows if r.label == baseline), None)
        if base is None:
            have = ", ".join(r.label for r in rows) or "none"
            note = f"--baseline {baseline!r} names no measured row here (rows: {have}): no comparison"
        else:
            pairs = [(base, r) for r in rows if r is not base]
    elif len(runs) > 1:
        first = {r.model.name: r for r in rows if r.run is runs[0].run}
        pairs = [(first[r.model.name], r) for r in rows if r.run is not runs[0].run and r.model.name in first]
    done, skipped = [], []
    for a, b in pairs:
        why = image_mismatch(a, b)
        stat_a, stat_b = (headline_time_stat(bool(x.run.config.get("ntire_compat"))) for x in (a, b))
        if why is None and stat_a != stat_b:
            why = f"{a.label} leads with the {stat_a} time, {b.label} with the {stat_b}"
        if why:
            skipped.append(f"{b.label} vs {a.label}: {why}")
        else:
            done.append(compare_rows(a, b))
    return Comparisons(done, skipped, note)


def comparisons_markdown(c: Comparisons) -> str:
    """The ``## Comparisons`` body: one table row per (pair, figure)."""
    lines = []
    if c.note:
        lines += [c.note, ""]
    if c.done:
        lines += [
            "B against baseline A on the same images: time ratio B/A, Δ = B − A; 95 % paired-bootstrap "
            "intervals (definitions: docs/statistics.md).",
            "",
        ]
        header = ["B", "A", "Figure", "B vs A", "95 % interval", "Verdict"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for comp in c.done:
            for figure, value, span, verdict in comparison_lines(comp):
                cells = [comp.b, comp.a, figure, value, span, verdict]
                lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
        notes = [f"{comp.b} vs {comp.a}: {n}" for comp in c.done for n in comp.notes]
        if notes:
            lines.append("")
            lines += [f"- {n}" for n in notes]
    elif not c.note:
        lines.append("Nothing to compare: one run and no --baseline row.")
    if c.skipped:
        lines += ["", "Not compared (not measured on the same images): " + "; ".join(c.skipped) + "."]
    return "\n".join(lines) + "\n"


def comparison_grids(runs: Sequence[LoadedRun]) -> list[Path]:
    """``compare_*.png`` files under each run folder's ``images/``, in name order."""
    grids: list[Path] = []
    for r in runs:
        images = r.folder / "images"
        if images.is_dir():
            grids += sorted(images.rglob("compare_*.png"))
    return grids


def report_markdown(
    runs: Sequence[LoadedRun],
    checks: Sequence[ClaimCheck],
    missing: Sequence[str],
    plot_notes: list[str],
    plots: dict[str, Path],
    compared: Comparisons | None = None,
) -> str:
    """The whole ``report.md``."""
    out = ["# srbench report", "", "## Runs", ""]
    for r in runs:
        out.append(f"- {_run_line(r, markdown=True)} ({r.source}; config {r.run.config_hash})")
    warnings = [w for r in runs for w in mixed_hardware(r.run)]
    if warnings:
        out.append("")
        out += [f"> **Warning:** {w}" for w in warnings]
    out += ["", "## Results", "", results_section(runs)]
    if compared is not None:
        out += ["## Comparisons", "", comparisons_markdown(compared)]
    ladders = [(r, precision_ladder_markdown(r.run.models)) for r in runs]
    if any(table for _, table in ladders):
        out += ["## Precision ladder", ""]
        out.append(
            "Each variant against the fp32 row of its run on the same images (docs/deployment.md); "
            "the rows ran one after the other, so the time ratio carries the machine's load."
        )
        out.append("")
        for r, table in ladders:
            if table:
                out += [f"`{r.tag}`", "", table]
    out += ["## Claims vs measured", ""]
    out.append(claims_markdown(checks, missing))
    out += ["## Plots", ""]
    for stem, title in (("psnr_vs_runtime", "PSNR-Y vs runtime"), ("psnr_vs_flops", "PSNR-Y vs FLOPs")):
        if f"{stem}.png" in plots:
            out.append(f"![{title}]({stem}.png) ([SVG]({stem}.svg))")
            out.append("")
    if not plots:
        out.append("No model was measured with trained weights: nothing to plot.")
        out.append("")
    out += [f"- {n}" for n in plot_notes]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML


def _results_rows(labels: Sequence[Labelled]) -> list[tuple[list[html.Cell | str], str | None]]:
    rows: list[tuple[list[html.Cell | str], str | None]] = []
    for label, m, run in labels:
        _, attr = headline(run)
        q = m.has_quality
        stat = headline_time_stat(bool(run.config.get("ntire_compat")))
        rt = getattr(m.runtime_ms, stat) if m.runtime_ms else None
        cells: list[html.Cell | str] = [
            label,
            m.status,
            html.num(getattr(m, attr) if q else None),
            html.num(m.ssim_y if q else None, digits=4),
            html.num(m.psnr_rgb if q else None),
            html.num(rt),
            html.num(m.params, 1e6, 3),
            _flops_html(m),
            html.num(m.activations, 1e6, 2),
            html.num(m.memory_mb),
            html.num(m.convs, digits=0),
        ]
        rows.append((cells, "error" if m.status == "error" else None))
    return rows


def _flops_html(m: ModelResult) -> html.Cell:
    cell = html.num(m.flops, 1e9, 2)
    if m.flops_undercount:  # the same mark as every other table: fvcore is below the conv floor
        cell = html.Cell(cell.text + UNDERCOUNT_MARK, cell.sort, cell.cls)
    return cell


_RESULTS_HEADERS = [
    "Model",
    "Status",
    "Val PSNR (dB, headline)",
    "Val SSIM-Y",
    "Val PSNR-RGB (dB)",
    "Val Time (ms)",
    "Params (M)",
    "FLOPs (G)",
    "Activations (M)",
    "Memory (MB)",
    "Convs",
]


def _claims_rows(checks: Sequence[ClaimCheck]) -> list[tuple[list[html.Cell | str], str | None]]:
    cls = {REPRODUCED: "reproduced", CONTRADICTED: "contradicted"}
    return [
        (
            [
                c.row,
                html.Cell(c.claim, c.claim_value),
                html.Cell(c.measured, c.measured_value, "num"),
                html.Cell(c.verdict, None, cls.get(c.verdict, "unchecked")),
                c.reason,
                c.source,
            ],
            None,
        )
        for c in checks
    ]


def _image_rows(labels: Sequence[Labelled]) -> list[tuple[list[html.Cell | str], str | None]]:
    rows: list[tuple[list[html.Cell | str], str | None]] = []
    for label, m, _ in labels:
        q = m.has_quality
        for i in m.images:
            psnr_y = float(i.psnr_y) if q and i.psnr_y is not None else None
            psnr_rgb = float(i.psnr_rgb) if q and i.psnr_rgb is not None else None
            cells: list[html.Cell | str] = [
                label,
                i.name,
                html.num(i.runtime_ms),
                html.num(psnr_y),
                html.num(i.ssim_y if q else None, digits=4),
                html.num(psnr_rgb),
                "yes" if i.tiled else "no",
            ]
            rows.append((cells, None))
    return rows


def report_html(
    runs: Sequence[LoadedRun],
    checks: Sequence[ClaimCheck],
    missing: Sequence[str],
    plot_notes: list[str],
    plots: dict[str, Path],
    grids: Sequence[Path],
    compared: Comparisons | None = None,
) -> str:
    """The whole ``report.html`` (self-contained: images inline as base64 PNG)."""
    labels = labelled_models(runs)
    body = ["<h2>Runs</h2>", html.notes([f"{_run_line(r)} ({r.source})" for r in runs])]
    body.append("<h2>Results</h2>")
    body.append(
        html.table(
            _RESULTS_HEADERS,
            _results_rows(labels),
            caption="Headline PSNR: Y, or RGB for runs of 'srbench run --ntire-compat' (time: the mean)",
            table_id="results",
        )
    )
    tagged = len(runs) > 1
    notes = [f"{r.tag}: {n}" if tagged else n for r in runs for n in footnotes(r.run)]
    # Across runs too: a PyTorch run beside an ONNX Runtime run mixes memory definitions.
    mixed = memory_kinds_note([replace(m, name=label) for label, m, _ in labels]) if tagged else None
    body.append(html.notes([mixed, *notes] if mixed else notes))
    if compared is not None and (compared.done or compared.note or compared.skipped):
        body.append("<h2>Comparisons</h2>")
        if compared.done:
            headers = ["B", "A", "Figure", "B vs A", "95 % interval", "Verdict"]
            rows: list[tuple[list[html.Cell | str], str | None]] = [
                ([comp.b, comp.a, *line], None) for comp in compared.done for line in comparison_lines(comp)
            ]
            body.append(
                html.table(
                    headers,
                    rows,
                    caption="B against baseline A on the same images: time ratio B/A, Δ = B − A; "
                    "95 % paired-bootstrap intervals (docs/statistics.md)",
                    table_id="comparisons",
                )
            )
        extra = [f"{comp.b} vs {comp.a}: {n}" for comp in compared.done for n in comp.notes]
        if compared.skipped:
            extra.append("Not compared (not measured on the same images): " + "; ".join(compared.skipped))
        body.append(html.notes([x for x in (compared.note, *extra) if x]))
    body.append("<h2>Claims vs measured</h2>")
    if checks:
        headers = ["Model", "Claim", "Measured", "Verdict", "Why", "Source"]
        body.append(html.table(headers, _claims_rows(checks), table_id="claims"))
    else:
        body.append("<p>No measured model has published claims in the reference folder.</p>")
    if missing:
        body.append(html.notes(["Not measured in these runs: " + "; ".join(missing)]))
    body.append("<h2>Plots</h2>")
    for name in ("psnr_vs_runtime.png", "psnr_vs_flops.png"):
        if name in plots:
            body.append(f"<p>{html.png_img(plots[name].read_bytes(), name, cls='plot')}</p>")
    if not plots:
        body.append("<p>No model was measured with trained weights: nothing to plot.</p>")
    body.append(html.notes(plot_notes))
    body.append("<h2>Per-image results</h2>")
    image_headers = ["Model", "Image", "Time (ms)", "PSNR-Y (dB)", "SSIM-Y", "PSNR-RGB (dB)", "Tiled"]
    body.append(html.table(image_headers, _image_rows(labels), table_id="images"))
    if grids:
        body.append("<h2>Comparison grids</h2>")
        for g in grids:
            body.append(
                f"<figure>{html.png_img(g.read_bytes(), g.name)}<figcaption>{g}</figcaption></figure>"
            )
    return html.page("srbench report", body)


# --------------------------------------------------------------------------- entry point


def default_output(runs: Sequence[LoadedRun]) -> Path:
    """``report/`` inside the first run's folder."""
    return runs[0].folder / "report"


def build_report(
    inputs: Sequence[str | Path],
    out_dir: Path | None = None,
    *,
    reference_dir: Path | None = None,
    labels: Sequence[str] | None = None,
    baseline: str | None = None,
) -> ReportFiles:
    """Load ``inputs`` (renamed by ``labels``, one per input), check the published claims,
    compare rows (against ``baseline``, a row label, or the first run; module docstring),
    write plots, report.md and report.html."""
    runs = load_runs(inputs, labels)
    compared = comparisons(runs, baseline)
    out = Path(out_dir) if out_dir is not None else default_output(runs)
    labels = labelled_models(runs)
    measured = [(label, m, run) for label, m, run in labels]
    references = load_references(reference_dir)
    checks = check_claims(references, measured)
    missing = unmeasured(references, measured)
    points, plot_notes = plot_points([(label, m) for label, m, _ in labels])
    grids = comparison_grids(runs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        plots = write_plots(points, out)
        md_path, html_path = out / "report.md", out / "report.html"
        atomic_write_text(md_path, report_markdown(runs, checks, missing, plot_notes, plots, compared))
        atomic_write_bytes(
            html_path, report_html(runs, checks, missing, plot_notes, plots, grids, compared).encode()
        )
    except OSError as exc:
        raise SrbenchError(
            f"cannot write the report to {out} ({exc.strerror or exc}); "
            "choose a writable folder with --output"
        ) from None
    return ReportFiles(md_path, html_path, plots)
