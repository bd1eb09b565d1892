"""Run-to-run spread (``run --runs N``) against the within-run interval.

One function, :func:`run_spread`, holds the comparison, so a better within-run interval
(a bootstrap, say) replaces :func:`median_interval` without touching its callers.

Definitions (docs/runtime.md, "Runs"):

* each run's figure is its median per-image time (``runtime_ms.median``);
* the **between-run spread** is the range of those medians (``max − min``, and as a
  percentage of their median);
* the **within-run interval** is the distribution-free 95 % interval of the first run's
  median over its images (:func:`median_interval`: order statistics ``x_(j)`` and
  ``x_(n−j+1)`` with ``j`` the largest rank whose binomial tail ``P(Bin(n, 1/2) < j)`` is at
  most 2.5 %; the whole range below 6 images, where no such ``j`` exists);
* a run whose median falls outside that interval means the machine changed between runs
  more than the images vary within one: ``exceeds`` is then True and the table warns.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

#: Two-sided level of :func:`median_interval`.
CONFIDENCE = 0.95


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The distribution-free ``confidence`` interval of the median of ``values`` (at least one):
    ``(x_(j), x_(n−j+1))`` of the sorted values, ``j`` the largest rank (1-based) with
    ``P(Bin(n, 1/2) <= j − 1) <= (1 − confidence) / 2``; ``(min, max)`` when no rank qualifies."""
    if not values:
        raise ValueError("median_interval needs at least one value")
    xs = sorted(float(v) for v in values)
    n = len(xs)
    alpha = (1 - confidence) / 2
    j, tail = 0, 0.0
    for k in range(n):  # tail = P(Bin(n, 1/2) <= k)
        tail += math.comb(n, k) / 2**n
        if tail > alpha:
            break
        j = k + 1
    if j == 0:
        return xs[0], xs[-1]
    return xs[j - 1], xs[n - j]


def run_spread(run_medians_ms: Sequence[float], first_run_images_ms: Sequence[float]) -> dict[str, Any]:
    """The ``runs`` block of a model row: ``medians_ms`` (each run's median, in order),
    ``median_ms`` (their median), ``min_ms``/``max_ms``, ``between_pct`` (range / median ×
    100), ``within_interval_ms`` (:func:`median_interval` of the first run's per-image times)
    and ``exceeds`` (some run's median lies outside that interval)."""
    medians = [float(v) for v in run_medians_ms]
    centre = statistics.median(medians)
    lo, hi = median_interval(first_run_images_ms)
    return {
        "medians_ms": medians,
        "median_ms": centre,
        "min_ms": min(medians),
        "max_ms": max(medians),
        "between_pct": (max(medians) - min(medians)) / centre * 100 if centre else math.nan,
        "within_interval_ms": [lo, hi],
        "exceeds": min(medians) < lo or max(medians) > hi,
    }
