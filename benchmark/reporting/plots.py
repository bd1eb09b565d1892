"""Quality-vs-cost scatter plots (matplotlib, no pyplot state, Agg rendering).

Two plots, each written as PNG and SVG: PSNR-Y (dB) against the median forward time (ms)
and against FLOPs (G, fvcore MACs). Marker area is proportional to the parameter count.
The Pareto front joins the points no other point beats on both axes (higher PSNR, lower
cost are better). Only models measured with trained weights are plotted; random-init
PSNR means nothing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from srbench.reporting.results import ModelResult, atomic_write_bytes

#: Figure size in inches and resolution of the PNG: 8 x 5.5 in at 100 dpi = 800 x 550 px.
FIGSIZE = (8.0, 5.5)
DPI = 100
#: Marker area (pt²) of the largest model; the others scale by params / max params.
MAX_AREA = 600.0
MIN_AREA = 25.0


@dataclass(frozen=True)
class PlotPoint:
    """One model on the plots: PSNR-Y in dB, median time in ms, FLOPs and params as counted."""

    label: str
    psnr_y: float
    runtime_ms: float | None
    flops: int | None
    params: int | None


def plot_points(models: Sequence[tuple[str, ModelResult]]) -> tuple[list[PlotPoint], list[str]]:
    """Points for the models with quality, and one note per model left out (and why)."""
    points, notes = [], []
    for label, m in models:
        psnr = float(m.psnr_y) if m.has_quality and m.psnr_y is not None else None
        if psnr is None or not math.isfinite(psnr):
            why = (m.reason or m.status) if m.status != "ok" else "no finite PSNR-Y"
            notes.append(f"{label}: not plotted ({why})")
            continue
        rt = m.runtime_ms.median if m.runtime_ms else None
        points.append(PlotPoint(label, psnr, rt, m.flops, m.params))
    return points, notes


def pareto_front(costs: Sequence[float], qualities: Sequence[float]) -> list[int]:
    """Indices of the Pareto-optimal points (lower cost and higher quality are better),
    ordered by increasing cost. A point is kept when every cheaper-or-equal point has
    strictly lower quality; of exact duplicates, the first is kept."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -qualities[i], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if qualities[i] > best:
            front.append(i)
            best = qualities[i]
    return front


def scatter_figure(points: Sequence[PlotPoint], axis: str, title: str) -> Figure | None:
    """PSNR-Y against ``axis`` ("runtime" in ms or "flops" in G); None if no point has it."""
    xs, pts = [], []
    for p in points:
        x = p.runtime_ms if axis == "runtime" else (p.flops / 1e9 if p.flops is not None else None)
        if x is not None:
            xs.append(float(x))
            pts.append(p)
    if not pts:
        return None
    ys = [p.psnr_y for p in pts]
    max_params = max((p.params or 0) for p in pts) or 1
    sizes = [max(MIN_AREA, MAX_AREA * (p.params or 0) / max_params) for p in pts]
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(xs, ys, s=sizes, alpha=0.6, color="tab:blue", edgecolors="black", linewidths=0.6, zorder=3)
    front = pareto_front(xs, ys)
    # Dashed line through the front, and a red ring on each front point so a front of one
    # point is still visible.
    ax.plot(
        [xs[i] for i in front],
        [ys[i] for i in front],
        "--o",
        color="tab:red",
        markerfacecolor="none",
        markersize=4,
        linewidth=1.2,
        label="Pareto front",
        zorder=4,
    )
    for x, y, p in zip(xs, ys, pts):
        ax.annotate(p.label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if min(xs) > 0 and max(xs) / min(xs) > 30:  # several devices merged: spread over decades
        ax.set_xscale("log")
    ax.set_xlabel("Time (ms, median forward)" if axis == "runtime" else "FLOPs (G, fvcore MACs)")
    ax.set_ylabel("PSNR-Y (dB)")
    ax.set_title(title + " — marker area ∝ params", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.2, y=0.15)  # room for the labels right of the outermost points
    ax.legend(loc="best", fontsize=8)
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure rendered as ``fmt`` ("png" or "svg"); SVG without a date so reruns diff cleanly."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "srbench"}):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def write_plots(points: Sequence[PlotPoint], out_dir: Path) -> dict[str, Path]:
    """Write ``psnr_vs_runtime.{png,svg}`` and ``psnr_vs_flops.{png,svg}`` atomically; returns
    ``{"psnr_vs_runtime.png": path, ...}`` for the plots that had points."""
    written: dict[str, Path] = {}
    for stem, axis, title in (
        ("psnr_vs_runtime", "runtime", "PSNR-Y vs runtime"),
        ("psnr_vs_flops", "flops", "PSNR-Y vs FLOPs"),
    ):
        fig = scatter_figure(points, axis, title)
        if fig is None:
            continue
        for fmt in ("png", "svg"):
            path = Path(out_dir) / f"{stem}.{fmt}"
            atomic_write_bytes(path, figure_bytes(fig, fmt))
            written[path.name] = path
    return written
