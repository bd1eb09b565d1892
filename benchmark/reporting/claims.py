"""Published claims as data (``srbench/reporting/references/*.json``) and their check against a run.

A reference file (schema ``srbench/reference-1``) holds the claims made for one registered
model::

    {"schema": "srbench/reference-1", "model": "span_ca", "label": "...", "scale": 4,
     "weights_file": "checkpoint the quality/runtime claims were made with, or null",
     "claims": [{"metric": "params", "value": 0.151, "unit": "M", "scale": 1000000,
                 "decimals": 3, "text": "0.151 M params", "source": "...",
                 "conditions": {"input": [1, 3, 256, 256]}, "note": "...",
                 "rel_tol": null, "unverifiable": null}]}

A claim's precision is ``value`` printed with ``decimals`` digits in units of ``scale``
(0.151 M = params / 1e6 to 3 decimals; exact integers use scale 1, decimals 0). The
measured figure is rounded half-up on its decimal form (:func:`rounded`). Verdicts:

* ``reproduced``: the measured figure, rounded the same way, equals the claim. Runtime
  claims may carry ``rel_tol`` instead (|measured/claim - 1| <= rel_tol), since no GPU
  timing reproduces to the printed digit.
* ``contradicted``: it does not.
* ``not checkable here``: the run cannot test it, with the reason (other dataset, device,
  input size or checkpoint; no trained weights; the claim names no device; ...).

Conditions: ``input`` (profile input NxCxHxW), ``dataset`` (the run's dataset name),
``images`` (its image count), ``device`` (case-insensitive substring of the device name).

Claimed differences (``psnr_y_delta``, ``ssim_y_delta``, ``psnr_rgb_delta``; e.g. "+0.07 dB
over SPAN") name the model they are over in ``baseline`` (a registry name). They are checked
against that model measured in the same run on the same images: the measured figure is the
mean per-image difference with its 95 % paired-bootstrap interval
(:func:`srbench.results.comparison.compare_rows`, docs/statistics.md), shown as
``+0.052 dB [+0.021, +0.080]``, and the reason gives the comparison's verdict (better, worse,
not distinguishable). ``reproduced``: the claim as printed (its value ± half a unit of its last
digit) overlaps the interval; ``contradicted``: it lies wholly outside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.results.comparison import format_delta
from srbench.results.schema import ModelResult, RunResult
from srbench.results.stats import Interval, difference_interval, quality_verdict

REFERENCE_SCHEMA = "srbench/reference-1"

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
NOT_CHECKABLE = "not checkable here"

#: Metrics a claim may name, and whether they need trained weights to mean anything.
COMPLEXITY_METRICS = ("params", "flops", "activations", "convs")
QUALITY_METRICS = ("psnr_y", "ssim_y", "psnr_rgb")
RUNTIME_METRICS = ("runtime_mean_ms", "runtime_median_ms")
#: Claimed differences over the claim's ``baseline`` model (B − A, mean over images).
DELTA_METRICS = ("psnr_y_delta", "ssim_y_delta", "psnr_rgb_delta")
METRICS = COMPLEXITY_METRICS + QUALITY_METRICS + RUNTIME_METRICS + DELTA_METRICS
CONDITIONS = frozenset({"input", "dataset", "images", "device"})
_DOC = "the srbench/reference-1 format in benchmark/claims.py"


@dataclass(frozen=True)
class Claim:
    """One published figure: ``value`` in units of ``scale`` (1e6 for "M"), ``decimals``
    digits as printed; see the module docstring for the other fields."""

    metric: str
    value: float
    scale: float
    decimals: int
    text: str
    source: str
    unit: str = ""
    conditions: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    rel_tol: float | None = None
    unverifiable: str | None = None
    #: Delta metrics only: the registry name of the model the difference is claimed over.
    baseline: str | None = None


@dataclass(frozen=True)
class Reference:
    """The claims of one reference file, for registered model ``model``."""

    model: str
    label: str
    scale: int
    weights_file: str | None
    claims: list[Claim]
    path: Path


@dataclass(frozen=True)
class ClaimCheck:
    """A claim confronted with one measured model (``row``: the report's row label)."""

    row: str
    reference: str
    claim: str
    source: str
    measured: str
    verdict: str
    reason: str
    note: str | None = None
    #: The claimed and measured figures in the claim's units (value / scale, unrounded), the
    #: numbers the shown texts start with: sort keys, since "9,833,807,872" is no number to a
    #: parser. None when there is no figure (measured "—").
    claim_value: float | None = None
    measured_value: float | None = None


def default_reference_dir() -> Path:
    """The references shipped inside the package (``srbench/reporting/references``).

    They are package data, so ``srbench report`` shows the verdicts from any folder and
    after a non-editable install; ``--references DIR`` points at a folder of one's own.
    """
    return Path(__file__).resolve().parent / "references"


def load_reference(path: Path) -> Reference:
    """Parse one reference file; any structural problem is a one-line :class:`SrbenchError`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SrbenchError(f"reference {path} is not readable JSON ({exc}); fix or remove it") from None
    if not isinstance(doc, dict) or doc.get("schema") != REFERENCE_SCHEMA:
        raise SrbenchError(f'reference {path} lacks "schema": {REFERENCE_SCHEMA!r}; fix or remove it')
    try:
        claims = [Claim(**c) for c in doc["claims"]]
        ref = Reference(
            model=doc["model"],
            label=doc.get("label", doc["model"]),
            scale=int(doc.get("scale", 4)),
            weights_file=doc.get("weights_file"),
            claims=claims,
            path=Path(path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SrbenchError(
            f"reference {path} has a malformed entry ({exc}); see benchmark/claims.py"
        ) from None
    for c in claims:
        if (c.metric in DELTA_METRICS) != (c.baseline is not None):
            raise SrbenchError(
                f"reference {path}: claim {c.text!r}: a baseline model goes with a delta metric "
                f"({', '.join(DELTA_METRICS)}) and only with one; see benchmark/reporting/claims.py"
            )
        unknown = set(c.conditions) - CONDITIONS
        if c.metric not in METRICS or unknown:
            what = f"metric {c.metric!r}" if c.metric not in METRICS else f"conditions {sorted(unknown)}"
            raise SrbenchError(
                f"reference {path}: unknown {what} in claim {c.text!r}; see benchmark/claims.py"
            )
    return ref


def load_references(folder: Path | None = None) -> list[Reference]:
    """Every ``*.json`` in ``folder`` (default :func:`default_reference_dir`), sorted by name;
    an absent folder gives no references."""
    folder = default_reference_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    return [load_reference(p) for p in sorted(folder.glob("*.json"))]


def measured_value(metric: str, m: ModelResult) -> float | int | None:
    """The measured figure a claim's ``metric`` names (quality only with trained weights)."""
    if metric in RUNTIME_METRICS:
        stat = metric.split("_")[1]
        return getattr(m.runtime_ms, stat) if m.runtime_ms else None
    if metric in QUALITY_METRICS and not m.has_quality:
        return None
    value = getattr(m, metric)
    return float(value) if isinstance(value, str) else value  # "inf" in JSON


def _shape(v: Any) -> str:
    return "x".join(map(str, v)) if v else "?"


def _condition_reasons(claim: Claim, ref: Reference, m: ModelResult, run: RunResult) -> list[str]:
    """Why this run cannot test ``claim`` (empty when it can)."""
    reasons = []
    if m.scale != ref.scale:
        reasons.append(f"claimed at x{ref.scale}, measured at x{m.scale}")
    cond = claim.conditions
    if "input" in cond:
        got = m.complexity_input or run.config.get("profile_input")
        if got is not None and list(got) != list(cond["input"]):
            reasons.append(f"counted at {_shape(cond['input'])}, measured at {_shape(got)}")
    if claim.metric in COMPLEXITY_METRICS:
        return reasons  # weights, data and device do not change counts
    if ref.weights_file and m.weights and m.weights.file != ref.weights_file:
        reasons.append(f"claimed for {ref.weights_file}, measured with {m.weights.file}")
    if "dataset" in cond and run.dataset.get("name") != cond["dataset"]:
        reasons.append(f"claimed on {cond['dataset']}, this run is on {run.dataset.get('name', '?')}")
    elif "images" in cond and run.dataset.get("images") != cond["images"]:
        reasons.append(f"claimed over {cond['images']} images, this run has {run.dataset.get('images', '?')}")
    if "device" in cond:
        device = str(run.environment.get("device_name") or run.environment.get("device") or "?")
        if cond["device"].lower() not in device.lower():
            reasons.append(f"timed on {cond['device']}, measured on {device}")
    return reasons


def format_measured(claim: Claim, value: float | int | None) -> str:
    """``value`` at the claim's precision, with the exact figure when that was rounded."""
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    shown = f"{rounded(value, claim.scale, claim.decimals)}" + (f" {claim.unit}" if claim.unit else "")
    if claim.scale != 1 and isinstance(value, int):
        shown += f" ({value:,})"
    elif claim.scale == 1 and claim.decimals == 0 and isinstance(value, int):
        shown = f"{value:,}"
    return shown


def matches(claim: Claim, value: float | int) -> bool:
    """True when ``value`` reproduces ``claim`` (see the module docstring)."""
    if claim.rel_tol is not None:
        return claim.value != 0 and abs(value / claim.value - 1) <= claim.rel_tol
    return rounded(value, claim.scale, claim.decimals) == rounded(claim.value, 1, claim.decimals)


def rounded(value: float | int, scale: float, decimals: int) -> Decimal:
    """``value / scale`` rounded half-up to ``decimals`` digits, on the decimal figure as
    printed (``repr``), as a person rounds: 150,500 params is 0.151 M, 26.955 dB is 26.96."""
    exact = Decimal(repr(value)) / Decimal(repr(scale))
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def check_claim(claim: Claim, ref: Reference, m: ModelResult, run: RunResult) -> tuple[str, str, str]:
    """``(verdict, measured text, reason)`` of one claim against one measured model."""
    value = measured_value(claim.metric, m)
    measured = format_measured(claim, value)
    reasons = [claim.unverifiable] if claim.unverifiable else []
    reasons += _condition_reasons(claim, ref, m, run)
    if value is None:
        why = f": {m.reason}" if m.reason else ""
        if m.status != "ok":
            reasons.append(f"model status {m.status}{why}")
        else:
            reasons.append(f"{claim.metric} not measured")
    if reasons:
        return NOT_CHECKABLE, measured, "; ".join(reasons)
    if matches(claim, value):
        return REPRODUCED, measured, ""
    how = f"outside ±{claim.rel_tol:.0%}" if claim.rel_tol is not None else f"at {claim.decimals} decimals"
    return CONTRADICTED, measured, f"measured {measured} ≠ claimed {claim.text} ({how})"


def delta_interval(claim: Claim, m: ModelResult, base: ModelResult) -> tuple[Interval | None, str]:
    """The measured difference ``m`` − ``base`` of a delta claim's figure, with its paired
    interval, or None and why not (no quality figures, other images, an infinite PSNR)."""
    attr = claim.metric.removesuffix("_delta")
    for row in (m, base):
        if not row.has_quality:
            return None, f"{row.name} has no quality figures (status {row.status})"
    by_name = {i.name: getattr(i, attr) for i in base.images}
    names = [i.name for i in m.images]
    if set(names) != set(by_name) or not names:
        return None, f"{m.name} and {base.name} were not measured on the same images"
    xs = [by_name[n] for n in names]
    ys = [getattr(i, attr) for i in m.images]
    if any(v is None for v in (*xs, *ys)):
        return None, f"{attr} missing for an image"
    delta = difference_interval([float(v) for v in xs], [float(v) for v in ys])
    if delta is None:
        return None, "fewer than two images, or an infinite PSNR: no interval"
    return delta, ""


def check_delta_claim(
    claim: Claim, ref: Reference, m: ModelResult, run: RunResult, base: ModelResult | None
) -> tuple[str, str, str, float | None]:
    """``(verdict, measured text, reason, measured difference)`` of a delta claim against
    ``m`` and its baseline row ``base`` from the same run (None when the run lacks it)."""
    reasons = [claim.unverifiable] if claim.unverifiable else []
    reasons += _condition_reasons(claim, ref, m, run)
    delta = None
    if base is None:
        reasons.append(f"baseline {claim.baseline} not measured in the same run")
    else:
        delta, why = delta_interval(claim, m, base)
        if why:
            reasons.append(why)
    digits = claim.decimals + 1
    unit = claim.unit
    shown = "—" if delta is None else " ".join(format_delta(delta, digits, unit))
    value = None if delta is None else delta.estimate
    if reasons or delta is None:
        return NOT_CHECKABLE, shown, "; ".join(reasons), value
    half = 0.5 * 10.0**-claim.decimals * claim.scale
    lo, hi = claim.value * claim.scale - half, claim.value * claim.scale + half
    verdict = quality_verdict(delta)
    why = f"over {base.name if base else '?'} on {delta.n} images: {verdict}"
    if hi < delta.low or lo > delta.high:
        return CONTRADICTED, shown, f"{why}; claimed {claim.text} is outside the interval", value
    return REPRODUCED, shown, why, value


def check_claims(
    references: list[Reference], measured: list[tuple[str, ModelResult, RunResult]]
) -> list[ClaimCheck]:
    """Every claim of every reference against each measured ``(row label, model, run)`` whose
    registry name is the reference's model (by name, not architecture: ``span_tiny`` shares
    SPAN's code but not its figures); references no run measured are skipped (see
    :func:`unmeasured`)."""
    out = []
    for ref in references:
        for row, m, run in measured:
            if ref.model != m.name:
                continue
            for claim in ref.claims:
                if claim.metric in DELTA_METRICS:
                    base = next((b for _, b, r in measured if r is run and b.name == claim.baseline), None)
                    verdict, shown, reason, value = check_delta_claim(claim, ref, m, run, base)
                else:
                    verdict, shown, reason = check_claim(claim, ref, m, run)
                    value = measured_value(claim.metric, m)
                out.append(
                    ClaimCheck(
                        row,
                        ref.label,
                        claim.text,
                        claim.source,
                        shown,
                        verdict,
                        reason,
                        claim.note,
                        claim_value=float(claim.value),
                        measured_value=None if value is None else float(value) / claim.scale,
                    )
                )
    return out


def unmeasured(references: list[Reference], measured: list[tuple[str, ModelResult, RunResult]]) -> list[str]:
    """Labels of references whose model no run measured."""
    names = {m.name for _, m, _ in measured}
    return [f"{r.label} ({r.model})" for r in references if r.model not in names]
