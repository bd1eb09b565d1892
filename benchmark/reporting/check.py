"""Regression checks: compare a run against a committed baseline run.

Conventions (what ``srbench check`` enforces):

* ``params``, ``flops``, ``activations``, ``convs`` and the weights' sha256 must be equal
  exactly: they are deterministic integers, so any change is a change of the model or of
  the counter.
* ``psnr_y``, ``psnr_rgb`` (dB, absolute) and ``ssim_y`` (absolute) may move by at most
  their tolerance, in either direction: srbench reproduces figures, so an unexplained gain
  is as suspicious as a loss. With ``per_image`` the same holds image by image.
* Runtime is checked only when a ratio tolerance is given: the median forward time may
  grow to at most ``(1 + time_ratio)`` × the baseline's. Absolute times are not stable
  across machines, so the default is not to compare them at all. Getting faster passes.
* A model's status going down (ok → no-weights → error) is a regression; going up is info.
* A model in the baseline but missing from the run is a failure (``removed``): a check
  that silently stops covering a model would pass forever. A new model is info (``added``).
* A metric the baseline has but the run lacks is a failure (``changed``); one the run has
  but the baseline lacks is info (``added``).
* Outputs: each image's ``sr_sha256`` (the quantised SR image's fingerprint) must be equal
  when both runs come from the same platform (device name, the CPU's ISA as torch
  dispatches it, torch version, thread count, dtype): then float kernels are the same and
  a one-grey-level change on one pixel is a failure, which no PSNR tolerance can see.
  Across platforms float rounding legitimately differs, so outputs are not compared there
  and a note says so.

Everything here is a pure function of two :class:`RunResult` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from srbench.core.errors import SrbenchError
from srbench.results.schema import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    ImageResult,
    ModelResult,
    RunResult,
)

#: Verdicts. Those in :data:`FAILING` make ``srbench check`` exit 1.
OK = "ok"
CHANGED = "changed"  # outside tolerance (or not equal, for exact metrics)
SLOWER = "slower"  # median time grew beyond 1 + time tolerance
FASTER = "faster"  # median time fell beyond 1 - time tolerance (info)
REGRESSED = "regressed"  # status got worse
IMPROVED = "improved"  # status got better (info)
ADDED = "added"  # model/image/metric only in the new run (info)
REMOVED = "removed"  # model/image only in the baseline
NOTE = "note"  # run-level difference worth knowing (config, dataset); info

FAILING = frozenset({CHANGED, SLOWER, REGRESSED, REMOVED})

#: Metrics compared with ``==``.
EXACT_METRICS = ("params", "flops", "activations", "convs")
#: Quality metrics and which tolerance applies to each.
QUALITY_METRICS = (("psnr_y", "psnr_db"), ("ssim_y", "ssim"), ("psnr_rgb", "psnr_db"))

_STATUS_RANK = {STATUS_ERROR: 0, STATUS_NO_WEIGHTS: 1, STATUS_OK: 2}
# Tolerance comparisons allow this much float noise on top of the tolerance itself, so a
# delta of exactly the tolerance (e.g. 0.001 dB) is not failed by a rounding error.
_EPS = 1e-12

Value = int | float | str | None


@dataclass(frozen=True)
class Tolerances:
    """Allowed movement: ``psnr_db`` in dB (absolute), ``ssim`` absolute, ``time_ratio``
    relative growth of the median time (``None``: runtime not checked)."""

    psnr_db: float = 0.001
    ssim: float = 1e-5
    time_ratio: float | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("--psnr-tol", self.psnr_db),
            ("--ssim-tol", self.ssim),
            ("--time-tol", self.time_ratio),
        ):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise SrbenchError(f"{name} {value} must be a finite number >= 0")


@dataclass(frozen=True)
class Finding:
    """One comparison. ``metric`` is a field name, ``field[image]`` for per-image figures,
    or ``model``/``image`` for presence. ``delta`` is ``now - baseline`` in the metric's
    unit (ms for time, dB for PSNR), ``None`` when not numeric."""

    model: str
    metric: str
    baseline: Value
    now: Value
    delta: float | int | None
    verdict: str

    @property
    def failed(self) -> bool:
        """True when this finding makes the check fail."""
        return self.verdict in FAILING


def _num(v: Value) -> float | int | None:
    # results.json writes +inf (identical images) as the string "inf".
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return v


def _delta(base: float | int, now: float | int) -> float | int:
    if base == now:  # also inf == inf, whose difference would be nan
        return 0 if isinstance(base, int) and isinstance(now, int) else 0.0
    return now - base


def _presence(model: str, metric: str, base: Value, now: Value) -> Finding | None:
    """Finding for a metric missing on one side, or None when both are present."""
    if base is None and now is None:
        return None
    if base is None:
        return Finding(model, metric, None, now, None, ADDED)
    if now is None:
        return Finding(model, metric, base, None, None, CHANGED)
    return None


def compare_exact(model: str, metric: str, base: Value, now: Value) -> Finding | None:
    """Equality check (integers, hashes); None when neither side has the metric."""
    missing = _presence(model, metric, base, now)
    if missing or base is None:
        return missing
    delta = now - base if isinstance(base, int) and isinstance(now, int) else None
    return Finding(model, metric, base, now, delta, OK if base == now else CHANGED)


def compare_tol(model: str, metric: str, base: Value, now: Value, tol: float) -> Finding | None:
    """``|now - base| <= tol`` check; None when neither side has the metric."""
    b, n = _num(base), _num(now)
    missing = _presence(model, metric, b, n)
    if missing or b is None or n is None:
        return missing
    d = _delta(b, n)
    ok = not math.isnan(d) and abs(d) <= tol + _EPS
    return Finding(model, metric, b, n, d, OK if ok else CHANGED)


def compare_time(model: str, base: ModelResult, now: ModelResult, ratio_tol: float) -> Finding | None:
    """Median forward time: fail when ``now / base > 1 + ratio_tol``."""
    b = base.runtime_ms.median if base.runtime_ms else None
    n = now.runtime_ms.median if now.runtime_ms else None
    metric = "time_median_ms"
    missing = _presence(model, metric, b, n)
    if missing or b is None or n is None:
        return missing
    ratio = n / b if b > 0 else math.inf
    if ratio > 1 + ratio_tol + _EPS:
        verdict = SLOWER
    elif ratio < 1 - ratio_tol - _EPS:
        verdict = FASTER
    else:
        verdict = OK
    return Finding(model, metric, b, n, n - b, verdict)


def compare_status(model: str, base: str, now: str) -> Finding:
    """Status transition; lower rank (ok > no-weights > error) is a regression."""
    rb, rn = _STATUS_RANK.get(base, -1), _STATUS_RANK.get(now, -1)
    verdict = OK if base == now else REGRESSED if rn < rb else IMPROVED if rn > rb else CHANGED
    return Finding(model, "status", base, now, None, verdict)


def _images(m: ModelResult) -> dict[str, ImageResult]:
    return {i.name: i for i in m.images}


def compare_images(base: ModelResult, now: ModelResult, tol: Tolerances) -> list[Finding]:
    """Per-image quality (matched by image name); images on one side only are reported."""
    out: list[Finding] = []
    bi, ni = _images(base), _images(now)
    for name in bi.keys() - ni.keys():
        out.append(Finding(base.name, f"image[{name}]", name, None, None, REMOVED))
    for name in ni.keys() - bi.keys():
        out.append(Finding(base.name, f"image[{name}]", None, name, None, ADDED))
    for name in sorted(bi.keys() & ni.keys()):
        for attr, which in QUALITY_METRICS:
            f = compare_tol(
                base.name,
                f"{attr}[{name}]",
                getattr(bi[name], attr),
                getattr(ni[name], attr),
                getattr(tol, which),
            )
            if f:
                out.append(f)
    return sorted(out, key=lambda f: f.metric)


def compare_outputs(base: ModelResult, now: ModelResult) -> list[Finding]:
    """Per-image output fingerprints (exact), for images with a fingerprint on both sides."""
    bi, ni = _images(base), _images(now)
    out = []
    for name in sorted(bi.keys() & ni.keys()):
        b, n = bi[name].sr_sha256, ni[name].sr_sha256
        if b is not None and n is not None and b != n:
            out.append(Finding(base.name, f"sr_sha256[{name}]", b[:12], n[:12], None, CHANGED))
    return out


#: Environment/config keys that must agree for bit-identical outputs to be expected.
PLATFORM_KEYS = (
    ("environment", "device_name"),
    # A VM may name different CPUs alike; the ISA torch dispatches to (AVX2, AVX512, ...)
    # picks different kernels. Absent from runs before it was recorded: not compared then.
    ("environment", "cpu_capability"),
    ("environment", "torch"),
    ("environment", "torch_threads"),
    ("config", "dtype"),
    # ONNX Runtime runs: another ORT version has other kernels (absent from torch runs; the
    # provider is part of each row's name).
    ("environment", "onnxruntime"),
)


def same_platform(a: RunResult, b: RunResult) -> bool:
    """True when ``a`` and ``b`` ran on the same device, torch, thread count and dtype."""
    return not platform_differences(a, b)


def platform_differences(a: RunResult, b: RunResult) -> list[tuple[str, object, object]]:
    """``(part.key, a's value, b's value)`` for each :data:`PLATFORM_KEYS` entry that differs."""
    out = []
    for part, key in PLATFORM_KEYS:
        va, vb = getattr(a, part).get(key), getattr(b, part).get(key)
        if va != vb:
            out.append((f"{part}.{key}", va, vb))
    return out


def compare_model(
    base: ModelResult, now: ModelResult, tol: Tolerances, *, per_image: bool, outputs: bool = False
) -> list[Finding]:
    """Every check of one model present in both runs, in a stable order.

    ``outputs`` compares per-image output fingerprints exactly (same platform only).
    """
    name = base.name
    out: list[Finding] = [compare_status(name, base.status, now.status)]
    for metric in EXACT_METRICS:
        f = compare_exact(name, metric, getattr(base, metric), getattr(now, metric))
        if f:
            out.append(f)
    f = compare_exact(
        name,
        "weights_sha256",
        base.weights.sha256 if base.weights else None,
        now.weights.sha256 if now.weights else None,
    )
    if f:
        out.append(f)
    # Quality of a model without trained weights means nothing; only compare it when both
    # sides were measured with weights (a lost status is already a regression above).
    if base.has_quality or now.has_quality:
        for attr, which in QUALITY_METRICS:
            bq = getattr(base, attr) if base.has_quality else None
            nq = getattr(now, attr) if now.has_quality else None
            f = compare_tol(name, attr, bq, nq, getattr(tol, which))
            if f:
                out.append(f)
        if per_image and base.has_quality and now.has_quality:
            out.extend(compare_images(base, now, tol))
    if outputs:
        out.extend(compare_outputs(base, now))
    if tol.time_ratio is not None:
        f = compare_time(name, base, now, tol.time_ratio)
        if f:
            out.append(f)
    return out


def _run_notes(baseline: RunResult, now: RunResult) -> list[Finding]:
    """Differences of protocol or data: info, since the per-model checks decide."""
    out = []
    if baseline.config_hash != now.config_hash:
        out.append(Finding("(run)", "config_hash", baseline.config_hash, now.config_hash, None, NOTE))
    for key in ("name", "images", "scale"):
        b, n = baseline.dataset.get(key), now.dataset.get(key)
        if b != n:
            out.append(Finding("(run)", f"dataset.{key}", b, n, None, NOTE))
    return out


def compare_runs(
    baseline: RunResult, now: RunResult, tol: Tolerances | None = None, *, per_image: bool = False
) -> list[Finding]:
    """All findings of ``now`` against ``baseline``: run notes, then models in baseline order,
    then models only in ``now``."""
    tol = tol or Tolerances()
    out = _run_notes(baseline, now)
    differs = platform_differences(baseline, now)
    outputs = not differs
    if differs:
        # Name every key that makes it another platform, with both values (issue 26).
        keys = ", ".join(f"{k} {vb!r} -> {vn!r}" for k, vb, vn in differs)
        out.append(Finding("(run)", "sr_sha256", f"other platform ({keys})", "not compared", None, NOTE))
    for base in baseline.models:
        cur = now.model(base.name)
        if cur is None:
            out.append(Finding(base.name, "model", base.status, None, None, REMOVED))
        else:
            out.extend(compare_model(base, cur, tol, per_image=per_image, outputs=outputs))
    for cur in now.models:
        if baseline.model(cur.name) is None:
            out.append(Finding(cur.name, "model", None, cur.status, None, ADDED))
    return out


def failures(findings: list[Finding]) -> list[Finding]:
    """The findings that fail the check."""
    return [f for f in findings if f.failed]
