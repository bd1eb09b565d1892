"""The NTIRE score: closed forms per edition, hand-made rows, the gates, and reading the
challenge's own results.txt/results.json as well as srbench results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.ntire import score
from srbench.ntire.editions import EDITIONS, get_edition
from srbench.ntire.score import Entry, load_entries, score_entries
from srbench.results.schema import ModelResult, RunResult, results_json

E2 = math.exp(2)


def _row(name: str, rt: float, fl: float, pa: float, valid: float = 27.0, test: float = 27.1) -> Entry:
    return Entry(name=name, psnr={"valid": valid, "test": test}, runtime_ms=rt, flops_g=fl, params_m=pa)


@pytest.mark.parametrize("name", sorted(EDITIONS))
def test_published_baseline_scores_e_squared_on_every_term(name: str) -> None:
    ed = EDITIONS[name]
    b = ed.baseline
    row = _row(ed.baseline_row, b.runtime_ms, b.flops_g, b.params_m, b.psnr["valid"], b.psnr["test"])
    ranking = score_entries([row], ed)  # baseline row found by its default name
    assert ranking.baseline.kind == "row"
    r = ranking.rows[0]
    assert r.is_baseline and r.eligible is True
    assert (r.score_runtime, r.score_flops, r.score_params) == (E2, E2, E2)
    assert r.score_final == pytest.approx(E2, rel=1e-15)
    assert f"{r.score_final:.4f}" == "7.3891"
    # Without the row, the published figures give the same e² to a row with those figures.
    other = _row("x", b.runtime_ms, b.flops_g, b.params_m)
    ranking = score_entries([other], ed)
    assert ranking.baseline.kind == "published" and "published figures" in ranking.baseline.source
    assert ranking.rows[0].score_final == pytest.approx(E2, rel=1e-15)


def test_hand_made_rows_2025() -> None:
    ed = get_edition("ntire2025")
    rows = [
        _row("00_EFDN_baseline", 16.69, 16.70, 0.276),
        _row("half", 16.69 / 2, 16.70 / 2, 0.276 / 2),  # every X half the baseline: exp(1)
        _row("mixed", 16.69, 0.0, 0.276 * 2),  # exp(2), exp(0), exp(4)
    ]
    by = {r.name: r for r in score_entries(rows, ed).rows}
    assert by["half"].score_final == pytest.approx(math.e, rel=1e-12)
    mixed = 0.7 * E2 + 0.15 * 1.0 + 0.15 * math.exp(4)
    assert by["mixed"].score_final == pytest.approx(mixed, rel=1e-12)
    assert by["half"].rank == {"runtime": 1, "flops": 2, "params": 1, "final": 1}
    assert by["mixed"].rank["flops"] == 1 and by["mixed"].rank["params"] == 3
    # 2026 weights 0.8/0.1/0.1 against its SPAN baseline row.
    ed26 = get_edition("ntire2026")
    r26 = score_entries([_row("00_SPAN", 7.74, 9.83, 0.151), _row("m", 7.74, 0.0, 0.302)], ed26).rows
    m = next(r for r in r26 if r.name == "m")
    assert m.score_final == pytest.approx(0.8 * E2 + 0.1 * 1.0 + 0.1 * math.exp(4), rel=1e-12)


def test_gate_26_899_is_ineligible_and_unranked() -> None:
    ed = get_edition("ntire2024")
    rows = [
        _row("00_RLFN_baseline", 13.54, 19.67, 0.317),
        _row("low_valid", 1.0, 1.0, 0.01, valid=26.899),
        _row("low_test", 1.0, 1.0, 0.01, test=26.989),
        _row("at_gate", 13.0, 19.0, 0.3, valid=26.90, test=26.99),
    ]
    by = {r.name: r for r in score_entries(rows, ed).rows}
    assert by["low_valid"].eligible is False and "26.899" in by["low_valid"].why_not[0]
    assert by["low_test"].eligible is False
    assert by["low_valid"].rank["final"] is None and by["low_valid"].score_final is not None
    assert by["at_gate"].eligible is True and by["at_gate"].rank["final"] == 1


def test_ties_share_a_rank_and_missing_test_is_unchecked() -> None:
    ed = get_edition("ntire2025")
    rows = [_row("a", 10, 10, 0.1), _row("b", 10, 10, 0.1), _row("c", 20, 10, 0.1)]
    rows.append(Entry("d", psnr={"valid": 27.0}, runtime_ms=5, flops_g=1, params_m=0.01))
    ranking = score_entries(rows, ed)
    by = {r.name: r for r in ranking.rows}
    assert by["d"].eligible is None and by["d"].rank["final"] == 1
    assert by["a"].rank["final"] == by["b"].rank["final"] == 2 and by["c"].rank["final"] == 4


def test_unknown_baseline_and_edition_are_one_line_errors() -> None:
    with pytest.raises(SrbenchError, match="--baseline 'nope'"):
        score_entries([_row("a", 1, 1, 1)], get_edition("ntire2025"), "nope")
    with pytest.raises(SrbenchError, match="ntire2024, ntire2025, ntire2026"):
        get_edition("ntire1999")


TXT = (
    "Model\tVal PSNR\tTest PSNR\tVal Time [ms]\tTest Time [ms]\tAve Time [ms]\tParams [M]\tFLOPs [G]"
    "\tActs [M]\tMem [M]\tConv\n"
    "00_EFDN_baseline\t26.93\t27.01\t18.77\t14.61\t16.69\t0.276\t16.70\t111.12\t662.89\t65\n"
    "  24_SPANF   26.95 27.02\t\t10.10  9.00   9.55 0.148  9.68  39.85  500.00    18  \n"
    "\n"
)


def test_challenge_txt_with_irregular_whitespace(tmp_path: Path) -> None:
    p = tmp_path / "results.txt"
    p.write_text(TXT)
    rows = {e.name: e for e in load_entries(p)}
    assert rows["24_SPANF"].psnr == {"valid": 26.95, "test": 27.02}
    assert rows["24_SPANF"].runtime_ms == 9.55 and rows["24_SPANF"].split_runtime_ms == {
        "valid": 10.1,
        "test": 9.0,
    }
    assert rows["24_SPANF"].params_m == 0.148 and rows["24_SPANF"].flops_g == 9.68
    # The header without test columns (the challenge's results.txt without --include_test).
    p.write_text(
        "Model  Val PSNR  Val Time [ms]  Params [M]  FLOPs [G]  Acts [M]  Mem [M]  Conv\n"
        "00_RLFN_baseline 26.96 14.94 0.317 19.67 80.05 467.70 39\n"
    )
    (e,) = load_entries(p)
    assert e.psnr == {"valid": 26.96, "test": None} and e.runtime_ms == 14.94
    p.write_text(TXT.splitlines()[0] + "\n00_X 26.9 27.0 1 2\n")
    with pytest.raises(SrbenchError, match=r"results\.txt:2: 5 fields, expected 11"):
        load_entries(p)


def test_challenge_json_with_and_without_test_keys(tmp_path: Path) -> None:
    base = {
        "valid_ave_psnr": 26.955,
        "valid_ave_runtime": 14.94,
        "valid_memory": 467.7,
        "num_parameters": 0.317218,
        "flops": 19.67485952,
        "activations": 80.045184,
        "num_conv": 39,
    }
    with_test = {**base, "test_ave_psnr": 27.069, "test_ave_runtime": 9.49}
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"00_RLFN_baseline": with_test, "01_valid_only": base}))
    rows = {e.name: e for e in load_entries(p)}
    assert rows["00_RLFN_baseline"].runtime_ms == pytest.approx((14.94 + 9.49) / 2)
    assert rows["00_RLFN_baseline"].psnr == {"valid": 26.955, "test": 27.069}
    assert rows["01_valid_only"].runtime_ms == 14.94 and rows["01_valid_only"].psnr["test"] is None
    ranking = score_entries(load_entries(p), get_edition("ntire2024"))
    by = {r.name: r for r in ranking.rows}
    assert by["00_RLFN_baseline"].score_final == pytest.approx(E2)
    assert by["01_valid_only"].eligible is None
    p.write_text(json.dumps({"x": {"psnr": 1}}))
    with pytest.raises(SrbenchError, match="no valid_ave_psnr"):
        load_entries(p)


def _srbench_run(tmp_path: Path) -> Path:
    models = [
        ModelResult("efdn", "efdn", 4, "ok", params=276192, flops=16703470848, psnr_y=30.0, psnr_rgb=28.0),
        ModelResult("spanf", "spanf", 4, "ok", params=148288, flops=9681502208, psnr_y=30.0, psnr_rgb=28.1),
    ]
    from srbench.measure.timing import RuntimeStats

    models[0].runtime_ms = RuntimeStats(20.0, 16.69, 0, 0, 0, 4)
    models[1].runtime_ms = RuntimeStats(10.0, 16.69 / 2, 0, 0, 0, 4)
    run = RunResult(environment={}, config={"ntire_compat": False}, dataset={"name": "sample"}, models=models)
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text(results_json(run))
    return out


def test_srbench_results_json_uses_its_baseline_row_and_cli_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _srbench_run(tmp_path)
    assert main(["score", str(run), "--edition", "ntire2025", "--json", "--output", str(tmp_path / "s")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["baseline"]["kind"] == "row" and doc["baseline"]["name"] == "efdn"
    by = {r["name"]: r for r in doc["rows"]}
    assert by["efdn"]["score_runtime"] == E2  # median 16.69 ms against itself
    # spanf: runtime exactly half (e), FLOPs/params ratio of the exact counts.
    expect = (
        0.7 * math.e + 0.15 * math.exp(2 * 9681502208 / 16703470848) + 0.15 * math.exp(2 * 148288 / 276192)
    )
    assert by["spanf"]["score_final"] == pytest.approx(expect, rel=1e-12)
    assert by["spanf"]["eligible"] is None  # one split: the test gate is not checked
    assert (tmp_path / "s" / "score.csv").read_text().startswith("model,eligible,")
    assert main(["score", str(run), "--edition", "ntire2025", "--markdown"]) == 0
    assert "| 1 | spanf |" in capsys.readouterr().out


def test_score_module_has_no_torch_at_import() -> None:
    # `srbench score` of text files must not need torch: the reporting module stays light.
    import subprocess
    import sys

    code = "import sys, srbench.ntire.score, srbench.commands.score; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_views_name_the_baseline_source() -> None:
    ranking = score_entries([_row("x", 1, 1, 0.1)], get_edition("ntire2026"))
    assert "published figures of NTIRE 2026" in score.caption(ranking)
    assert score.csv_text(ranking).count("\n") == 2


def test_report_with_edition_shows_the_same_ranking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _srbench_run(tmp_path)
    out = tmp_path / "rep"
    assert main(["report", str(run), "--edition", "ntire2025", "--output", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "## NTIRE 2025 Efficient SR score" in md and "| 1 | spanf |" in md
    assert json.loads((out / "score.json").read_text())["baseline"]["name"] == "efdn"


def test_undercounted_flops_are_marked_in_the_score(tmp_path: Path) -> None:
    m = ModelResult("cheat", "cheat", 4, "ok", params=100000, flops=1_590_000_000, psnr_y=30.0, psnr_rgb=27.0)
    m.flops_undercount, m.flops_lower_bound = True, 9_100_000_000
    from srbench.measure.timing import RuntimeStats

    m.runtime_ms = RuntimeStats(5.0, 5.0, 0, 0, 0, 1)
    run = RunResult(environment={}, config={}, dataset={"name": "x"}, models=[m])
    (tmp_path / "results.json").write_text(results_json(run))
    ranking = score_entries(load_entries(tmp_path / "results.json"), get_edition("ntire2026"))
    (row,) = ranking.rows
    assert row.flops_undercount and any("conv lower bound 9.10 G" in n for n in row.notes)
    assert "⚠" in score.markdown(ranking) and "undercounted" in score.markdown(ranking)
    assert "true" in score.csv_text(ranking).splitlines()[1]


def test_a_failed_default_baseline_row_falls_back_to_published_figures() -> None:
    ed = get_edition("ntire2025")
    failed = Entry("efdn", psnr={}, params_m=0.276, flops_g=16.7, error="error: too small")
    ranking = score_entries([failed, _row("x", 16.69, 16.70, 0.276)], ed)
    assert ranking.baseline.kind == "published"
    assert ranking.baseline.source.startswith("row 'efdn' unusable (error: too small), so the published")
    with pytest.raises(SrbenchError, match="cannot be used"):
        score_entries([failed], ed, "efdn")


def test_warnings_name_other_datasets_and_a_published_runtime_baseline(tmp_path: Path) -> None:
    run = _srbench_run(tmp_path)
    ed = get_edition("ntire2024")  # no rlfn row: published RTX 3090 figures
    ranking = score_entries(load_entries(run), ed)
    assert ranking.baseline.kind == "published"
    assert any("measured on valid: sample" in w for w in ranking.warnings)
    assert any("RTX 3090" in w for w in ranking.warnings)
    assert score_entries([_row("00_RLFN_baseline", 1, 1, 1)], ed).warnings == []  # challenge rows


def test_exploding_scores_print_in_scientific_notation_and_json_keeps_every_digit() -> None:
    # 301 ms against EFDN's published 16.69 ms: exp(2·301/16.69) ≈ 4.98e15, a 16-digit number.
    ed = get_edition("ntire2025")
    ranking = score_entries([_row("slow", 301.0, 16.70, 0.276)], ed)
    row = ranking.rows[0]
    cells = dict(zip(score.SCORE_COLUMNS, score._cells(row)))
    assert cells["Score_Runtime"] == f"{math.exp(2 * 301.0 / 16.69):.4g}" and "e+15" in cells["Score_Runtime"]
    assert cells["Score_FLOPs"] == "7.3891"  # ordinary scores keep 4 decimals
    assert row.score_runtime == pytest.approx(math.exp(2 * 301.0 / 16.69), rel=1e-12)
