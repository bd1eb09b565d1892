"""Intervals and paired comparisons (results/stats.py, results/comparison.py; docs/statistics.md).

The bootstrap is pinned against a second implementation, ``scipy.stats.bootstrap`` (percentile
method, the same seed and resample count, one batch), on the same samples: one sample
(median, mean), paired samples (time ratio, mean difference) and one sample per image (the
``--repeat`` case). Closed forms: constant samples give a zero-width interval; a row compared
with itself gives ratio 1 and Δ 0, "not distinguishable".
"""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.data.cache import ImageCache
from srbench.data.datasets import load_dataset
from srbench.measure.timing import RuntimeStats
from srbench.models.specs import ModelSpec
from srbench.reporting import claims as K
from srbench.reporting.report import build_report
from srbench.results import stats as S
from srbench.results.comparison import Row, compare_rows, image_mismatch, row_intervals
from srbench.results.config import RunConfig
from srbench.results.schema import ImageResult, ModelResult, RunResult, load_results, results_json
from srbench.results.tables import results_markdown
from srbench.runner.protocol import measure_model


def _scipy_ci(data: tuple, statistic, *, paired: bool = False) -> tuple[float, float]:
    """scipy's percentile bootstrap with srbench's seed and resample count, in one batch."""
    seed_arg = "rng" if "rng" in inspect.signature(scipy.stats.bootstrap).parameters else "random_state"
    res = scipy.stats.bootstrap(
        data,
        statistic,
        n_resamples=S.RESAMPLES,
        batch=None,
        vectorized=True,
        paired=paired,
        confidence_level=S.CONFIDENCE,
        method="percentile",
        **{seed_arg: np.random.default_rng(S.SEED)},
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _times(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    # Skewed like forward times: a size-driven spread plus right-tailed noise.
    rng = np.random.default_rng(seed)
    return scale * (20.0 + 5.0 * rng.random(n) + rng.exponential(1.0, n))


@pytest.mark.parametrize("stat", ["median", "mean"])
def test_one_sample_interval_is_scipys(stat: str) -> None:
    x = _times(23, 1)
    reduction = np.median if stat == "median" else np.mean
    got = S.runtime_interval(list(x), stat)
    assert got is not None and got.over == "images" and got.n == 23
    assert (got.low, got.high) == pytest.approx(_scipy_ci((x,), reduction), rel=1e-12, abs=0)
    assert got.estimate == pytest.approx(float(reduction(x)), rel=1e-15)
    assert got.low < got.estimate < got.high


def test_quality_mean_interval_is_scipys() -> None:
    psnr = 28 + np.random.default_rng(5).normal(0, 1.5, 40)
    got = S.mean_interval(list(psnr))
    assert got is not None
    assert (got.low, got.high) == pytest.approx(_scipy_ci((psnr,), np.mean), rel=1e-12, abs=0)


def test_paired_ratio_and_difference_are_scipys() -> None:
    a = _times(30, 2)
    b = a * 1.1 + np.random.default_rng(3).normal(0, 0.5, 30)

    def ratio(x, y, axis=-1):
        return np.median(y, axis=axis) / np.median(x, axis=axis)

    def diff(x, y, axis=-1):
        return np.mean(y - x, axis=axis)

    r = S.time_ratio_interval(list(a), list(b), "median")
    assert r is not None and r.over == "images, paired"
    assert (r.low, r.high) == pytest.approx(_scipy_ci((a, b), ratio, paired=True), rel=1e-12, abs=0)
    d = S.difference_interval(list(a), list(b))
    assert d is not None
    assert (d.low, d.high) == pytest.approx(_scipy_ci((a, b), diff, paired=True), rel=1e-12, abs=0)


@pytest.mark.parametrize("lengths", [(5, 5, 5, 5), (5, 3, 4, 5)])
def test_repeats_interval_resamples_within_images_as_scipy_does(lengths: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    repeats = [list(10.0 * k + rng.exponential(0.3, r)) for k, r in enumerate(lengths, 1)]  # 4 images
    per_image = [float(np.median(r)) for r in repeats]

    def stat(*groups, axis=-1):
        return np.median(np.stack([np.median(g, axis=axis) for g in groups], axis=-1), axis=-1)

    got = S.runtime_interval(per_image, "median", repeats)
    assert got is not None and got.over == "repeats" and got.n == 4
    assert (got.low, got.high) == pytest.approx(
        _scipy_ci(tuple(np.array(r) for r in repeats), stat), rel=1e-12
    )
    # Images held fixed: the interval is much narrower than one over the images' spread.
    over_images = S.runtime_interval(per_image, "median")
    assert over_images is not None and got.high - got.low < (over_images.high - over_images.low) / 5


def test_constant_samples_give_a_zero_width_interval() -> None:
    iv = S.runtime_interval([16.1] * 8, "median")
    assert iv is not None and iv.low == iv.high == iv.estimate == 16.1 and iv.plus_minus == 0.0
    same = [12.0, 15.5, 30.25, 9.0]
    r = S.time_ratio_interval(same, same, "mean")
    assert r is not None and r.low == r.high == r.estimate == 1.0
    d = S.difference_interval(same, same)
    assert d is not None and d.low == d.high == d.estimate == 0.0


def test_no_interval_below_two_units_or_with_infinite_psnr() -> None:
    assert S.runtime_interval([16.1], "median") is None
    assert S.mean_interval([30.0, float("inf")]) is None
    assert S.time_ratio_interval([0.0, 0.0], [1.0, 2.0], "median") is None  # no finite ratio
    assert S.time_verdict(None) == S.quality_verdict(None) == S.NO_VERDICT


def test_plus_minus_covers_an_asymmetric_interval() -> None:
    iv = S.Interval(estimate=10.0, low=9.7, high=10.5, statistic="median", over="images", n=5)
    assert iv.plus_minus == pytest.approx(0.5)
    assert S.Interval.from_dict(json.loads(json.dumps(iv.to_dict()))) == iv


# --------------------------------------------------------------------------- rows


def _row(name: str, times: list[float], psnr: list[float], ssim: list[float], names: list[str] | None = None):
    names = names or [f"img{k:02d}" for k in range(len(times))]
    images = [ImageResult(n, t, p, s, p - 1.0) for n, t, p, s in zip(names, times, psnr, ssim, strict=True)]
    m = ModelResult(
        name=name,
        arch=name,
        scale=4,
        status="ok",
        psnr_y=float(np.mean(psnr)),
        ssim_y=float(np.mean(ssim)),
        psnr_rgb=float(np.mean(psnr)) - 1.0,
        runtime_ms=RuntimeStats.from_samples(times),
        images=images,
    )
    m.intervals = row_intervals(m, ntire_compat=False, forced_tiling=False)
    return m


def _run(*models: ModelResult, label: str | None = None) -> RunResult:
    config = {"profile_input": [1, 3, 256, 256], **({"label": label} if label else {})}
    return RunResult({"device": "cpu"}, config, {"name": "sample", "images": 12, "scale": 4}, list(models))


def _noisy(seed: int, n: int = 12):
    rng = np.random.default_rng(seed)
    times = list(_times(n, seed))
    psnr = list(27 + 3 * rng.random(n))
    ssim = list(0.7 + 0.2 * rng.random(n))
    return times, psnr, ssim


def test_a_row_compared_with_itself_is_not_distinguishable() -> None:
    m = _row("span", *_noisy(11))
    run = _run(m)
    c = compare_rows(Row("span", m, run), Row("span", m, run))
    assert c.time_verdict == c.psnr_verdict == c.ssim_verdict == S.NOT_DISTINGUISHABLE
    assert c.time_ratio is not None and c.time_ratio.contains(1.0) and c.time_ratio.estimate == 1.0
    assert c.delta_psnr_y is not None and c.delta_psnr_y.contains(0.0)
    assert c.delta_ssim_y is not None and c.delta_ssim_y.contains(0.0)


def test_a_clear_difference_gets_the_right_verdicts() -> None:
    times, psnr, ssim = _noisy(12)
    rng = np.random.default_rng(13)
    a = _row("a", times, psnr, ssim)
    # B: 1.5x slower per image (with noise), 0.1 dB better per image (±0.02), SSIM 0.002 worse.
    b = _row(
        "b",
        [t * 1.5 * (1 + 0.02 * rng.standard_normal()) for t in times],
        [p + 0.1 + 0.02 * rng.standard_normal() for p in psnr],
        [s - 0.002 + 0.0002 * rng.standard_normal() for s in ssim],
    )
    run = _run(a, b)
    c = compare_rows(Row("a", a, run), Row("b", b, run))
    assert (c.time_verdict, c.psnr_verdict, c.ssim_verdict) == (S.SLOWER, S.BETTER, S.WORSE)
    assert c.time_ratio is not None and c.time_ratio.low > 1.4 and c.time_ratio.high < 1.6
    assert c.delta_psnr_y is not None and c.delta_psnr_y.contains(0.1)
    back = compare_rows(Row("b", b, run), Row("a", a, run))
    assert (back.time_verdict, back.psnr_verdict, back.ssim_verdict) == (S.FASTER, S.WORSE, S.BETTER)


def test_mismatched_image_sets_are_refused_naming_the_first_missing_image() -> None:
    a = _row("a", *_noisy(1, 4), names=["0801", "0802", "0803", "0804"])
    b = _row("b", *_noisy(2, 4), names=["0801", "0802", "0809", "0804"])
    run = _run(a, b)
    assert image_mismatch(Row("a", a, run), Row("b", b, run)) == "b lacks image '0803' that a has"
    with pytest.raises(SrbenchError, match="b lacks image '0803'"):
        compare_rows(Row("a", a, run), Row("b", b, run))


# --------------------------------------------------------------------------- files, tables, CLI


def test_intervals_round_trip_and_old_files_still_load(tmp_path: Path) -> None:
    m = _row("span", *_noisy(4))
    run = _run(m)
    doc = json.loads(results_json(run))
    assert doc["models"][0]["intervals"]["runtime_ms"]["statistic"] == "median"
    (tmp_path / "new.json").write_text(json.dumps(doc))
    assert load_results(tmp_path / "new.json").models[0].intervals == m.intervals
    del doc["models"][0]["intervals"]  # a file written before intervals existed
    (tmp_path / "old.json").write_text(json.dumps(doc))
    old = load_results(tmp_path / "old.json")
    assert old.models[0].intervals is None
    md = results_markdown(old)
    assert "±" not in md and f"{m.runtime_ms.median:.2f}" in md


def test_tables_show_the_interval_beside_its_own_figure_only() -> None:
    m = _row("span", *_noisy(4))
    rt = m.intervals["runtime_ms"]
    psnr = m.intervals["psnr_y"]
    md = results_markdown(_run(m))
    assert f"{m.runtime_ms.median:.2f} ±{rt.plus_minus:.2f}" in md
    assert f"{m.psnr_y:.2f} ±{psnr.plus_minus:.2f}" in md
    assert "95 % bootstrap interval" in md
    # A time that is no longer the interval's estimate (e.g. a sweep row over runs) shows bare.
    m.runtime_ms = RuntimeStats.from_samples([1.0, 2.0])
    assert "1.50 ±" not in results_markdown(_run(m))


def _write(tmp_path: Path, name: str, run: RunResult) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(results_json(run))
    return folder


def test_diff_command_table_json_and_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t, p, s = _noisy(21)
    a_run = _write(
        tmp_path, "a", _run(_row("span", t, p, s), _row("rlfn", [x * 2 for x in t], p, s), label="A")
    )
    b_run = _write(tmp_path, "b", _run(_row("span", t, p, s), label="B"))
    assert main(["diff", str(a_run), str(b_run)]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "B span @ B" in text and "A span @ A" in text and "not distinguishable" in text
    assert "two runs: the time verdict includes any change of load" in text
    assert main(["diff", str(a_run), "--models", "span,rlfn", "--json"]) == 0
    (c,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert c["time_verdict"] == S.SLOWER and c["time_ratio"]["estimate"] == pytest.approx(2.0)
    assert c["psnr_verdict"] == S.NOT_DISTINGUISHABLE
    other = _write(tmp_path, "c", _run(_row("span", t, p, s, names=[f"x{k}" for k in range(12)])))
    assert main(["diff", str(a_run), str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srbench: error: ") and "lacks image 'img00'" in err[0]
    assert main(["diff", str(a_run)]) == 2  # one run needs --models A,B
    assert "--models span,rlfn" in capsys.readouterr().err


def test_a_measured_row_carries_its_intervals(tmp_path: Path) -> None:
    images = ImageCache.build(load_dataset("sample-mini", scale=4), tmp_path / "img")
    cfg = RunConfig(models=["bicubic"], data="sample-mini", isolate=False, warmup=0, repeat=2)
    m = measure_model(ModelSpec(name="bicubic", arch="bicubic"), images, cfg)
    assert m.status == "ok" and m.intervals is not None and m.runtime_ms is not None
    rt = m.intervals["runtime_ms"]
    # The interval is of the very figure the table shows, over each image's two forwards.
    assert (rt.statistic, rt.over, rt.n, rt.estimate) == (
        "median",
        "repeats",
        len(images),
        m.runtime_ms.median,
    )
    expected = S.runtime_interval(
        [i.runtime_ms for i in m.images], "median", [i.runtime_samples_ms for i in m.images]
    )
    assert rt == expected
    for attr in ("psnr_y", "ssim_y", "psnr_rgb"):
        assert m.intervals[attr].estimate == pytest.approx(getattr(m, attr), rel=1e-12)
        assert m.intervals[attr] == S.mean_interval([getattr(i, attr) for i in m.images])


def _reference(tmp_path: Path, value: float) -> Path:
    folder = tmp_path / f"refs{value}"
    folder.mkdir(exist_ok=True)
    claim = {
        "metric": "psnr_y_delta", "value": value, "unit": "dB", "scale": 1, "decimals": 2,
        "text": f"+{value} dB over a", "source": "test", "baseline": "a",
    }  # fmt: skip
    doc = {"schema": K.REFERENCE_SCHEMA, "model": "b", "label": "B", "scale": 4, "claims": [claim]}
    (folder / "b.json").write_text(json.dumps(doc))
    return folder


def _pair() -> tuple[ModelResult, ModelResult]:
    times, psnr, ssim = _noisy(31)
    rng = np.random.default_rng(32)
    a = _row("a", times, psnr, ssim)
    b = _row("b", times, [p + 0.1 + 0.01 * rng.standard_normal() for p in psnr], ssim)
    return a, b


def test_a_claimed_difference_gets_a_verdict_with_its_interval(tmp_path: Path) -> None:
    a, b = _pair()
    run = _run(a, b)
    measured = [("a", a, run), ("b", b, run)]
    (good,) = K.check_claims(K.load_references(_reference(tmp_path, 0.1)), measured)
    assert good.verdict == K.REPRODUCED and "better" in good.reason
    d = S.difference_interval([i.psnr_y for i in a.images], [i.psnr_y for i in b.images])
    assert d is not None and d.contains(0.1)
    assert good.measured == f"{d.estimate:+.3f} dB [{d.low:+.3f}, {d.high:+.3f}]"  # with its interval
    (bad,) = K.check_claims(K.load_references(_reference(tmp_path, 0.5)), measured)
    assert bad.verdict == K.CONTRADICTED and "outside the interval" in bad.reason
    (alone,) = K.check_claims(K.load_references(_reference(tmp_path, 0.1)), [("b", b, run)])
    assert alone.verdict == K.NOT_CHECKABLE and "baseline a not measured" in alone.reason


def test_report_compares_later_runs_with_the_first_and_rows_with_a_baseline(tmp_path: Path) -> None:
    a, b = _pair()
    first = _write(tmp_path, "first", _run(a, b, label="one"))
    slower = [replace(i, runtime_ms=i.runtime_ms * 3) for i in b.images]
    second = _write(tmp_path, "second", _run(replace(b, images=slower), label="two"))
    md = build_report([first, second], tmp_path / "r1").markdown.read_text()
    section = md.split("## Comparisons")[1].split("## Claims")[0]
    assert "| b @ two | b @ one | time (median) | ×3.000 |" in section and "| slower |" in section
    md = build_report([first], tmp_path / "r2", baseline="a").markdown.read_text()
    section = md.split("## Comparisons")[1].split("## Claims")[0]
    assert "| b | a | PSNR-Y | +0.099 dB | [+0.092, +0.105] | better |" in section
    md = build_report([first], tmp_path / "r3", baseline="zz").markdown.read_text()
    assert "--baseline 'zz' names no measured row" in md
