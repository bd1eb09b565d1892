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
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from srbench.results.schema import ModelResult, atomic_write_bytes

#: Figure size in inches and resolution of the PNG: 7 x 4.8 in at 300 dpi = 2100 x 1440 px,
#: print resolution at a column-and-a-half width (the SVG is vector anyway).
FIGSIZE = (7.0, 4.8)
DPI = 300
#: Marker area (pt²) of the largest model; the others scale by params / max params.
MAX_AREA = 600.0
MIN_AREA = 25.0
#: Point labels: font size (pt) and the widest line before wrapping (characters).
LABEL_FONTSIZE = 7
LABEL_WRAP = 26
#: Where a label may sit relative to its point, in order of preference: (dx, dy) offset in
#: points and the text's alignment. Beside the point first, then further out.
_NEAR = 5.0
_PLACEMENTS = [
    ((f * dx, f * dy), ha, va)
    for f in (1.0, 2.6, 4.2)
    for (dx, dy), ha, va in (
        ((_NEAR, _NEAR), "left", "bottom"),
        ((-_NEAR, _NEAR), "right", "bottom"),
        ((_NEAR, -_NEAR), "left", "top"),
        ((-_NEAR, -_NEAR), "right", "top"),
        ((_NEAR * 1.4, 0.0), "left", "center"),
        ((-_NEAR * 1.4, 0.0), "right", "center"),
        ((0.0, _NEAR * 1.4), "center", "bottom"),
        ((0.0, -_NEAR * 1.4), "center", "top"),
    )
]


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
    if min(xs) > 0 and max(xs) / min(xs) > 30:  # several devices merged: spread over decades
        ax.set_xscale("log")
    ax.set_xlabel("Time (ms, median forward)" if axis == "runtime" else "FLOPs (G, fvcore MACs)")
    ax.set_ylabel("PSNR-Y (dB)")
    ax.set_title(title + " — marker area ∝ params", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.12, y=0.12)
    # A fixed corner: "best" would move whenever a label moves. Points rarely sit there
    # (slow and poor), and the labels are placed around the legend anyway.
    ax.legend(loc="lower right", fontsize=8)
    place_labels(ax, xs, ys, [wrap_label(p.label) for p in pts], sizes)
    return fig


def wrap_label(label: str) -> str:
    """A point label over lines of at most :data:`LABEL_WRAP` characters where it can break:
    a merged row ``model @ run`` puts the run on its own line."""
    lines = []
    for i, part in enumerate(label.split(" @ ")):
        part = part if i == 0 else "@ " + part
        lines += textwrap.wrap(part, LABEL_WRAP, break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(lines)


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Bbox, frame: Bbox) -> float:
    """Area of ``box`` outside ``frame`` (display units²)."""
    return box.width * box.height - _overlap(box, frame)


def place_labels(
    ax: Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], sizes: Sequence[float]
) -> list[Annotation]:
    """Annotate each point with its label where it overlaps least: inside the axes, clear of
    the other labels, the markers and the legend.

    Greedy, point by point from the top of the plot down: each label takes the first of
    :data:`_PLACEMENTS` with no overlap, or else the one with the least overlapping area.
    Deterministic (same inputs, same picture). Returns the annotations.
    """
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()  # fixes the constrained layout and the axes limits
    frame = ax.get_window_extent(renderer)
    px_per_pt = fig.dpi / 72.0
    obstacles: list[Bbox] = []
    for x, y, s in zip(xs, ys, sizes):
        cx, cy = ax.transData.transform((x, y))
        r = math.sqrt(s) / 2 * px_per_pt  # scatter size is the marker area in pt²
        obstacles.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
    legend = ax.get_legend()
    if legend is not None:
        obstacles.append(legend.get_window_extent(renderer))
    placed: list[Annotation] = []
    order = sorted(range(len(xs)), key=lambda i: (-ys[i], xs[i]))
    for i in order:
        best: tuple[float, Annotation] | None = None
        for offset, ha, va in _PLACEMENTS:
            ann = ax.annotate(
                labels[i],
                (xs[i], ys[i]),
                textcoords="offset points",
                xytext=offset,
                ha=ha,
                va=va,
                fontsize=LABEL_FONTSIZE,
                annotation_clip=False,
            )
            ann.set_in_layout(False)  # placed inside the axes: the layout must not move for it
            box = ann.get_window_extent(renderer)
            cost = _outside(box, frame) * 10 + sum(_overlap(box, o) for o in obstacles)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann)
            else:
                ann.remove()
            if cost == 0:
                break
        assert best is not None
        obstacles.append(best[1].get_window_extent(renderer))
        placed.append(best[1])
    return placed


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
