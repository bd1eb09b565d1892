"""Confidence intervals and paired comparisons of run figures (definitions: docs/statistics.md).

Every interval here is a seeded **percentile bootstrap**: ``RESAMPLES`` resamples drawn with
replacement by ``numpy.random.default_rng(SEED)``, the statistic recomputed on each, and the
interval the 2.5th and 97.5th percentiles of those recomputed values (linear interpolation
between closest ranks, numpy's default). The draws follow the order ``scipy.stats.bootstrap``
uses (one ``(RESAMPLES, n)`` block of indices per sample, samples in order), so scipy with the
same seed, ``method="percentile"`` and ``batch=None`` gives the same end points
(``tests/test_stats.py`` pins it). Results are reproducible bit for bit: the same figures
always give the same interval.

What is resampled (:func:`runtime_interval`):

* runtime, one forward per image (``--repeat 1``): the images (the headline statistic,
  median or mean under ``--ntire-compat``, over a resample of the per-image times);
* runtime with ``--repeat R > 1``: the R forwards of each image, images held fixed (each
  image's time is the median of a resample of its own R forwards, then the headline
  statistic over the images): the interval then says how much the machine moved the figure
  on *these* images, not how much another image set would;
* quality means (PSNR-Y, SSIM-Y, PSNR-RGB): the images (mean over a resample).

Paired comparisons (:func:`srbench.results.comparison.compare_rows`) of a row B against a
baseline row A measured on the same images draw one set of image indices for both rows, so that
an image hard for both counts once: time ratio = stat(B) / stat(A) on the same resampled
images (with repeats in both rows: each row's repeats resampled within each image, images
fixed); ΔPSNR-Y, ΔSSIM-Y = mean over the resampled images of B − A. Verdicts: the interval
on one side of 1 (ratio) or 0 (Δ) is ``faster``/``slower`` or ``better``/``worse``;
containing it, ``not distinguishable``.

A figure with fewer than two resampling units (one image, one forward) has no interval
(None): a bootstrap of one value would claim zero uncertainty. Pure numpy; no scipy at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Two-sided confidence level of every interval.
CONFIDENCE = 0.95
#: Bootstrap resamples (scipy.stats.bootstrap's default).
RESAMPLES = 9999
#: The generator seed: every interval is reproducible from the figures alone.
SEED = 0
METHOD = "percentile"

#: Verdicts of :func:`time_verdict` and :func:`quality_verdict`.
FASTER, SLOWER = "faster", "slower"
BETTER, WORSE = "better", "worse"
NOT_DISTINGUISHABLE = "not distinguishable"
#: The verdict when there is no interval (fewer than two images, a missing figure).
NO_VERDICT = "n/a"

#: Statistic names stored in :attr:`Interval.statistic`, with the numpy reduction computing them.
_REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {"median": np.median, "mean": np.mean}


def headline_time_stat(ntire_compat: bool) -> str:
    """The runtime statistic a run's tables lead with: ``"mean"`` under ``--ntire-compat``
    (the challenge's arithmetic mean), else ``"median"``. The one place this is decided."""
    return "mean" if ntire_compat else "median"


@dataclass(frozen=True)
class Interval:
    """A figure and its two-sided percentile-bootstrap interval (see the module docstring).

    ``estimate``: the figure itself (statistic of the full samples), in the figure's unit
    (ms, dB, SSIM, or a dimensionless ratio); ``low <= high`` the interval's ends in the same
    unit (``low <= estimate <= high`` is usual but not guaranteed by the percentile method);
    ``statistic``: what was computed (``median``, ``mean``, ``ratio of medians``, ``mean
    difference``, ...); ``over``: what was resampled (``images``, ``repeats``, ``images,
    paired``, ``repeats, paired images``); ``n``: how many images.
    """

    estimate: float
    low: float
    high: float
    statistic: str
    over: str
    n: int
    confidence: float = CONFIDENCE
    method: str = METHOD
    resamples: int = RESAMPLES
    seed: int = SEED

    def contains(self, value: float) -> bool:
        """True when ``low <= value <= high``."""
        return self.low <= value <= self.high

    @property
    def plus_minus(self) -> float:
        """The compact half-width tables print after the figure (``16.1 ±0.4``): the larger of
        the two distances from the estimate to an end, so ``estimate ± plus_minus`` covers
        the whole (possibly asymmetric) interval."""
        return max(self.estimate - self.low, self.high - self.estimate, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: every field by name."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interval:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (forward compatibility)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


# --------------------------------------------------------------------------- the bootstrap


def _percentile_ends(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def bootstrap(
    samples: Sequence[Sequence[float]],
    statistic: Callable[..., np.ndarray],
    *,
    paired: bool = False,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """``(low, high)`` of the percentile-bootstrap interval of ``statistic(*samples)``.

    ``samples``: one or more 1-D float sequences. Unpaired (``paired=False``), each is
    resampled on its own: for each sample in order, a ``(resamples, len)`` block of indices
    drawn uniformly with replacement (``Generator.integers``). Paired, all samples have one
    length n and share one ``(resamples, n)`` block of indices. ``statistic(*resampled,
    axis=-1)`` receives ``(resamples, len)`` float64 arrays and returns ``resamples`` values.
    Raises ValueError for an empty sample or paired samples of different lengths.
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    if not arrays or any(a.ndim != 1 or a.size == 0 for a in arrays):
        raise ValueError("bootstrap needs one or more non-empty 1-D samples")
    rng = np.random.default_rng(seed)
    if paired:
        n = arrays[0].size
        if any(a.size != n for a in arrays):
            raise ValueError("paired samples must have the same length")
        index = rng.integers(0, n, (resamples, n))
        drawn = [a[index] for a in arrays]
    else:
        drawn = [a[rng.integers(0, a.size, (resamples, a.size))] for a in arrays]
    values = np.asarray(statistic(*drawn, axis=-1), dtype=np.float64)
    return _percentile_ends(values, confidence)


def interval(
    samples: Sequence[Sequence[float]],
    statistic: Callable[..., np.ndarray],
    *,
    name: str,
    over: str,
    n: int,
    paired: bool = False,
) -> Interval | None:
    """:func:`bootstrap` with its estimate (``statistic`` of the full samples) as an
    :class:`Interval`; None when any sample has fewer than two values or a value is not
    finite (PSNR of an identical image is +inf: no mean interval exists)."""
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    if not arrays or any(a.size < 2 for a in arrays) or not all(np.isfinite(a).all() for a in arrays):
        return None
    estimate = float(statistic(*(a[np.newaxis, :] for a in arrays), axis=-1)[0])
    low, high = bootstrap(arrays, statistic, paired=paired)
    return Interval(estimate=estimate, low=low, high=high, statistic=name, over=over, n=n)


def _reduction(stat: str) -> Callable[..., np.ndarray]:
    try:
        return _REDUCTIONS[stat]
    except KeyError:
        raise ValueError(f"unknown statistic {stat!r}; use one of {sorted(_REDUCTIONS)}") from None


def _of_repeats(outer: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``outer`` over images of each image's median over its (resampled) repeats."""

    def statistic(*per_image: np.ndarray, axis: int = -1) -> np.ndarray:
        if len({r.shape for r in per_image}) == 1:  # the usual case: one median call, not n
            medians = np.median(np.stack(per_image, axis=0), axis=axis).T
        else:
            medians = np.stack([np.median(r, axis=axis) for r in per_image], axis=-1)
        return outer(medians, axis=-1)

    return statistic


def runtime_interval(
    times_ms: Sequence[float], stat: str, repeats_ms: Sequence[Sequence[float]] | None = None
) -> Interval | None:
    """The interval of a row's headline time (``stat``: ``"median"`` or ``"mean"``).

    ``times_ms``: the per-image times (ms) the headline is computed from. ``repeats_ms``: with
    ``--repeat R > 1``, each of those images' R forward times (ms), in the same order (each
    image's time is their median); then the repeats are resampled within each image, images
    fixed, else the images are resampled. None below two resampling units.
    """
    outer = _reduction(stat)
    if repeats_ms is not None and all(len(r) > 1 for r in repeats_ms) and len(repeats_ms) == len(times_ms):
        return interval(repeats_ms, _of_repeats(outer), name=stat, over="repeats", n=len(repeats_ms))
    return interval([times_ms], outer, name=stat, over="images", n=len(times_ms))


def mean_interval(values: Sequence[float]) -> Interval | None:
    """The interval of a mean over images (quality figures); None below two images."""
    return interval([values], np.mean, name="mean", over="images", n=len(values))


# --------------------------------------------------------------------------- paired comparisons


def _ratio(outer: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def statistic(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return outer(b, axis=axis) / outer(a, axis=axis)

    return statistic


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(b - a, axis=axis)


def time_ratio_interval(
    a_ms: Sequence[float],
    b_ms: Sequence[float],
    stat: str,
    a_repeats: Sequence[Sequence[float]] | None = None,
    b_repeats: Sequence[Sequence[float]] | None = None,
) -> Interval | None:
    """Time ratio B / A (``stat`` of B's per-image times over ``stat`` of A's) with its
    interval. ``a_ms``, ``b_ms``: per-image times (ms) of the same images in the same order.
    Without repeats in both rows the images are resampled once for both (paired); with
    ``--repeat > 1`` in both, each row's repeats are resampled within each image (images
    fixed, independently for A and B). Below 1: B is faster. None below two units, or for a
    time of 0 in A."""
    if len(a_ms) != len(b_ms):
        raise ValueError("time_ratio_interval needs the same images in both rows")
    outer = _reduction(stat)
    name = f"ratio of {stat}s"
    n = len(a_ms)
    with_repeats = (
        a_repeats is not None
        and b_repeats is not None
        and len(a_repeats) == len(b_repeats) == n
        and all(len(r) > 1 for r in (*a_repeats, *b_repeats))
    )
    if with_repeats:
        assert a_repeats is not None and b_repeats is not None
        inner = _of_repeats(outer)

        def statistic(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
            return inner(*groups[n:], axis=axis) / inner(*groups[:n], axis=axis)

        samples, over, paired = [*a_repeats, *b_repeats], "repeats", False
    else:
        statistic, samples, over, paired = _ratio(outer), [a_ms, b_ms], "images, paired", True
    with np.errstate(divide="ignore", invalid="ignore"):  # a 0 ms time: no finite ratio, None below
        result = interval(samples, statistic, name=name, over=over, n=n, paired=paired)
    if result is None or not all(math.isfinite(v) for v in (result.estimate, result.low, result.high)):
        return None
    return result


def difference_interval(a: Sequence[float], b: Sequence[float]) -> Interval | None:
    """Mean over images of B − A (same images, same order) with its paired interval; None
    below two images or with a non-finite value (an identical image's +inf PSNR)."""
    if len(a) != len(b):
        raise ValueError("difference_interval needs the same images in both rows")
    return interval(
        [a, b], _mean_difference, name="mean difference", over="images, paired", n=len(a), paired=True
    )


def time_verdict(ratio: Interval | None) -> str:
    """``faster`` (whole interval below 1), ``slower`` (above 1), ``not distinguishable``
    (it contains 1), or ``n/a`` without an interval."""
    if ratio is None:
        return NO_VERDICT
    if ratio.high < 1:
        return FASTER
    if ratio.low > 1:
        return SLOWER
    return NOT_DISTINGUISHABLE


def quality_verdict(delta: Interval | None) -> str:
    """``better`` (whole interval above 0), ``worse`` (below 0), ``not distinguishable``
    (it contains 0), or ``n/a`` without an interval."""
    if delta is None:
        return NO_VERDICT
    if delta.low > 0:
        return BETTER
    if delta.high < 0:
        return WORSE
    return NOT_DISTINGUISHABLE
