"""Intervals of a result row and paired comparisons of two rows (definitions: docs/statistics.md).

:func:`row_intervals` gives a measured row its 95 % intervals (headline time, PSNR-Y, SSIM-Y,
PSNR-RGB), computed once from the row's per-image figures when the run assembles the row.
:func:`compare_rows` confronts a row B with a baseline row A measured on the same images:
time ratio B / A, ΔPSNR-Y and ΔSSIM-Y (B − A), each with its paired interval and a verdict.
The numbers come from :mod:`srbench.results.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.results.schema import ImageResult, ModelResult, RunResult
from srbench.results.stats import (
    NO_VERDICT,
    Interval,
    difference_interval,
    headline_time_stat,
    mean_interval,
    quality_verdict,
    runtime_interval,
    time_ratio_interval,
    time_verdict,
)

#: Quality figures that carry an interval: (ModelResult/ImageResult attribute, label).
QUALITY_FIGURES = (("psnr_y", "PSNR-Y"), ("ssim_y", "SSIM-Y"), ("psnr_rgb", "PSNR-RGB"))


def timed_images(m: ModelResult, *, forced_tiling: bool) -> list[ImageResult]:
    """The images the headline time is computed from: timed ones, without those tiled only
    because the device ran out of memory (timed differently), unless ``--tile`` tiled them all."""
    return [i for i in m.images if i.runtime_ms is not None and (forced_tiling or not i.tiled)]


def _repeats(images: Sequence[ImageResult]) -> list[list[float]] | None:
    """Each image's ``--repeat`` samples, or None unless every image has more than one."""
    samples = [i.runtime_samples_ms for i in images]
    if not samples or any(s is None or len(s) < 2 for s in samples):
        return None
    return [list(s) for s in samples if s is not None]


def row_intervals(m: ModelResult, *, ntire_compat: bool, forced_tiling: bool) -> dict[str, Interval] | None:
    """The 95 % intervals of a measured row, keyed ``runtime_ms`` (the headline statistic:
    :func:`~srbench.results.stats.headline_time_stat`), ``psnr_y``, ``ssim_y``, ``psnr_rgb``
    (only with quality figures). A figure with no interval (one image, +inf PSNR) is left out;
    None when no figure has one."""
    out: dict[str, Interval] = {}
    timed = timed_images(m, forced_tiling=forced_tiling)
    times = [float(i.runtime_ms) for i in timed if i.runtime_ms is not None]
    rt = runtime_interval(times, headline_time_stat(ntire_compat), _repeats(timed))
    if rt is not None:
        out["runtime_ms"] = rt
    if m.psnr_y is not None:
        for attr, _ in QUALITY_FIGURES:
            values = [getattr(i, attr) for i in m.images]
            if values and all(v is not None for v in values):
                q = mean_interval([float(v) for v in values])
                if q is not None:
                    out[attr] = q
    return out or None


def run_tag(run: RunResult) -> str:
    """A run's name: its ``--label``, else ``device/dtype`` (the device's name, GPU or CPU
    model, and ``config.dtype``)."""
    if run.config.get("label"):
        return str(run.config["label"])
    env = run.environment
    device = env.get("device_name") or env.get("device") or "?"
    return f"{device}/{run.config.get('dtype', 'fp32')}"


# --------------------------------------------------------------------------- paired comparisons


@dataclass(frozen=True)
class Row:
    """One side of a comparison: its label, the measured row and the run it came from."""

    label: str
    model: ModelResult
    run: RunResult


@dataclass(frozen=True)
class RowComparison:
    """Row B against baseline row A on the same ``images``: ``time_ratio`` (B / A, headline
    statistic ``stat``), ``delta_psnr_y`` and ``delta_ssim_y`` (B − A, dB and SSIM), each an
    :class:`Interval` or None (no figure, fewer than two images), with its verdict. ``notes``
    say why a figure is missing."""

    a: str
    b: str
    images: int
    stat: str
    time_ratio: Interval | None
    delta_psnr_y: Interval | None
    delta_ssim_y: Interval | None
    time_verdict: str
    psnr_verdict: str
    ssim_verdict: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``srbench diff --json``): intervals as their dicts, or null."""

        def iv(x: Interval | None) -> dict[str, Any] | None:
            return x.to_dict() if x is not None else None

        return {
            "a": self.a,
            "b": self.b,
            "images": self.images,
            "stat": self.stat,
            "time_ratio": iv(self.time_ratio),
            "time_verdict": self.time_verdict,
            "delta_psnr_y": iv(self.delta_psnr_y),
            "psnr_verdict": self.psnr_verdict,
            "delta_ssim_y": iv(self.delta_ssim_y),
            "ssim_verdict": self.ssim_verdict,
            "notes": list(self.notes),
        }


def image_mismatch(a: Row, b: Row) -> str | None:
    """Why rows ``a`` and ``b`` were not measured on the same images (None when they were):
    another scale, or the first image one row has and the other lacks."""
    if a.model.scale != b.model.scale:
        return f"{a.label} is x{a.model.scale} and {b.label} is x{b.model.scale}"
    names_a = [i.name for i in a.model.images]
    names_b = [i.name for i in b.model.images]
    set_a, set_b = set(names_a), set(names_b)
    for name in names_a:
        if name not in set_b:
            return f"{b.label} lacks image {name!r} that {a.label} has"
    for name in names_b:
        if name not in set_a:
            return f"{a.label} lacks image {name!r} that {b.label} has"
    if not names_a:
        return f"{a.label} and {b.label} have no per-image results"
    return None


def _forced(run: RunResult) -> bool:
    return run.config.get("tile") is not None


def _stat(a: Row, b: Row) -> str:
    stat_a = headline_time_stat(bool(a.run.config.get("ntire_compat")))
    stat_b = headline_time_stat(bool(b.run.config.get("ntire_compat")))
    if stat_a != stat_b:
        raise SrbenchError(
            f"{a.label} leads with the {stat_a} time and {b.label} with the {stat_b} "
            "(srbench run --ntire-compat in one run only); compare runs made with the same protocol"
        )
    return stat_a


def compare_rows(a: Row, b: Row) -> RowComparison:
    """Row ``b`` against baseline row ``a`` (see :class:`RowComparison`).

    Raises :class:`SrbenchError` (one line) when the rows were not measured on the same
    images (:func:`image_mismatch`) or under different headline statistics. Times are paired
    on the images both rows timed (an image tiled after running out of memory in either row
    is left out, and a note says so); quality only when both rows have it (trained weights).
    """
    mismatch = image_mismatch(a, b)
    if mismatch:
        raise SrbenchError(
            f"cannot compare {a.label} with {b.label}: {mismatch}; compare rows measured on the same images"
        )
    stat = _stat(a, b)
    notes: list[str] = []
    by_b = {i.name: i for i in b.model.images}
    timed_a = {i.name for i in timed_images(a.model, forced_tiling=_forced(a.run))}
    timed_b = {i.name for i in timed_images(b.model, forced_tiling=_forced(b.run))}
    pairs = [(i, by_b[i.name]) for i in a.model.images if i.name in timed_a and i.name in timed_b]
    left_out = len(a.model.images) - len(pairs)
    if left_out:
        notes.append(
            f"{left_out} image(s) untimed, or tiled after running out of memory, in a row: not in the ratio"
        )
    ratio = None
    if pairs:
        ratio = time_ratio_interval(
            [float(x.runtime_ms) for x, _ in pairs],  # type: ignore[arg-type]
            [float(y.runtime_ms) for _, y in pairs],  # type: ignore[arg-type]
            stat,
            _repeats([x for x, _ in pairs]),
            _repeats([y for _, y in pairs]),
        )
    if ratio is None:
        notes.append("time ratio: fewer than two timed images (or a 0 ms time): no interval")
    elif a.run is not b.run:
        # The paired interval holds each run's own noise; a load that changed between the runs
        # moves every image together and shows up as a real difference (docs/statistics.md).
        busy = [r.label for r in (a, b) if r.run.notes]
        notes.append(
            "two runs: the time verdict includes any change of load or machine between them"
            + (f"; the run of {' and '.join(busy)} noted a busy machine" if busy else "")
        )
    deltas: dict[str, Interval | None] = {"psnr_y": None, "ssim_y": None}
    if a.model.has_quality and b.model.has_quality:
        for attr in deltas:
            xs = [getattr(i, attr) for i in a.model.images]
            ys = [getattr(by_b[i.name], attr) for i in a.model.images]
            if all(v is not None for v in (*xs, *ys)):
                deltas[attr] = difference_interval([float(v) for v in xs], [float(v) for v in ys])
        if deltas["psnr_y"] is None:
            notes.append("ΔPSNR-Y: fewer than two images, or an infinite PSNR (identical image): no interval")
    else:
        lacking = [r.label for r in (a, b) if not r.model.has_quality]
        notes.append(
            f"no quality comparison: no quality figures in {' and '.join(lacking)} (no trained weights?)"
        )
    return RowComparison(
        a=a.label,
        b=b.label,
        images=len(a.model.images),
        stat=stat,
        time_ratio=ratio,
        delta_psnr_y=deltas["psnr_y"],
        delta_ssim_y=deltas["ssim_y"],
        time_verdict=time_verdict(ratio),
        psnr_verdict=quality_verdict(deltas["psnr_y"]) if deltas["psnr_y"] else NO_VERDICT,
        ssim_verdict=quality_verdict(deltas["ssim_y"]) if deltas["ssim_y"] else NO_VERDICT,
        notes=notes,
    )


# --------------------------------------------------------------------------- text


def _times(v: float) -> str:
    # Three decimals near 1, where verdicts are close; fewer for ratios far from it.
    return f"×{v:.3f}" if v < 10 else f"×{v:.1f}" if v < 100 else f"×{v:.0f}"


def format_ratio(x: Interval | None) -> tuple[str, str]:
    """``("×1.234", "[×1.101, ×1.372]")`` of a time ratio (3 decimals below 10, 1 below 100,
    else none), or dashes."""
    if x is None:
        return "—", "—"
    return _times(x.estimate), f"[{_times(x.low)}, {_times(x.high)}]"


def format_delta(x: Interval | None, digits: int, unit: str = "") -> tuple[str, str]:
    """``("+0.052 dB", "[+0.021, +0.080]")`` of a difference, or dashes."""
    if x is None:
        return "—", "—"
    tail = f" {unit}" if unit else ""
    return f"{x.estimate:+.{digits}f}{tail}", f"[{x.low:+.{digits}f}, {x.high:+.{digits}f}]"


def comparison_lines(c: RowComparison) -> list[tuple[str, str, str, str]]:
    """``(figure, B vs A, 95 % interval, verdict)`` rows of one comparison, for the tables."""
    return [
        (f"time ({c.stat})", *format_ratio(c.time_ratio), c.time_verdict),
        ("PSNR-Y", *format_delta(c.delta_psnr_y, 3, "dB"), c.psnr_verdict),
        ("SSIM-Y", *format_delta(c.delta_ssim_y, 4), c.ssim_verdict),
    ]
