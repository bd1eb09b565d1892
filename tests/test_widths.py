"""Every console table readable at 80 and 100 columns (issue 27): rendered at both widths,
no line is wider than the console, nothing is shortened with "…", and every header word,
model name and number of the table appears whole in the output."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from srbench.commands.check import findings_tables
from srbench.commands.list_models import list_tables, model_rows
from srbench.commands.profile import breakdown_tables, profile_tables
from srbench.commands.weights import WEIGHTS_COLUMNS, weights_rows, weights_tables
from srbench.core.tables import Column, fit_tables
from srbench.ntire.editions import get_edition
from srbench.ntire.score import Entry, rich_tables, score_entries
from srbench.reporting import check as C
from srbench.results.schema import load_results
from srbench.results.tables import console_table

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "ci-cpu.json"
WIDTHS = (80, 100)


def render(tables: list, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, legacy_windows=False)
    for t in tables:
        console.print(t)
    return out.getvalue()


def assert_readable(text: str, width: int, words: list[str]) -> None:
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, text
    assert "…" not in text, text
    flat = "\n".join(lines)
    missing = [w for w in words if w not in flat]
    assert not missing, f"cut or missing at {width} columns: {missing}\n{text}"


def numbers(cells: list[str]) -> list[str]:
    """The whole numbers and model names of a table's cells (what must never be cut)."""
    return [tok for c in cells for tok in re.findall(r"[\w.,:+-]+", c) if len(tok) <= 40]


@pytest.mark.parametrize("width", WIDTHS)
def test_fit_tables_moves_columns_instead_of_cutting(width: int) -> None:
    columns = [Column("Model"), *(Column(f"Figure {i} (unit)", "right", keep=i) for i in range(9))]
    rows = [["a_long_model_name", *(f"{10**9 + i:,}" for i in range(9))]]
    tables = fit_tables("t", columns, rows, width)
    assert len(tables) > 1  # ten 13-character columns never fit 100 characters
    text = render(tables, width)
    assert_readable(text, width, rows[0] + ["Figure", "(unit)"])
    assert text.count("a_long_model_name") == len(tables)  # the key leads every table


def test_fit_tables_one_table_when_it_fits_and_note_names_what_is_left_out() -> None:
    columns = [Column("Model"), Column("A", keep=2), Column("Description", keep=1)]
    rows = [["m", "1", "x" * 90]]
    assert len(fit_tables("t", columns, rows, None)) == 1
    (table,) = fit_tables("t", columns, rows, 80, overflow="note", elsewhere="--json")
    text = render([table], 80)
    assert "x" * 20 not in text and "Description" in text and "--json" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_run_table(width: int) -> None:
    run = load_results(BASELINE)
    table = console_table(run, width=width)
    text = render([table], width)
    names = [m.name for m in run.models]
    assert_readable(text, width, names + ["PSNR-Y", "Time", "Params"])
    assert "33.69" in text or any(f"{m.psnr_y:.2f}" in text for m in run.models if m.has_quality)


@pytest.mark.parametrize("width", WIDTHS)
def test_list_table_one_line_per_model(width: int) -> None:
    rows = model_rows("*", 4)
    text = render(list_tables(rows, 4, width), width)
    cells = [r["name"] for r in rows] + [f"{r['params']:,}" for r in rows if r["params"] is not None]
    assert_readable(text, width, cells)
    for r in rows:  # each model on exactly one line
        assert sum(1 for line in text.splitlines() if f"│ {r['name']} " in line) == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_weights_list_table(width: int) -> None:
    rows = weights_rows()
    assert rows  # the registry has official checkpoints
    text = render(weights_tables(rows, width), width)
    sha = WEIGHTS_COLUMNS.index(next(c for c in WEIGHTS_COLUMNS if c.header == "sha256"))
    # the sha256 whole (64 characters), the model, file and size of every checkpoint
    assert_readable(text, width, [c for r in rows for c in (r[0], r[2], r[3], r[sha])])


def _profile_row(name: str) -> dict:
    return {
        "name": name,
        "params": 317_218,
        "flops": 19_674_859_520,
        "activations": 80_045_184,
        "convs": 39,
        "flops_lower_bound": 19_658_082_304,
        "flops_thop": 19_658_082_304,
        "flops_dispatch": 39_316_164_608,
        "unsupported_ops": {"aten::add": 9, "aten::leaky_relu_": 12, "aten::pixel_shuffle": 1},
        "breakdown": {
            "input_shape": [1, 3, 256, 256],
            "modules": [
                {
                    "name": "",
                    "depth": 0,
                    "type": "RLFN",
                    "params": 317_218,
                    "flops": 19_674_859_520,
                    "conv_macs": 19_658_082_304,
                    "activations": 80_045_184,
                    "convs": 39,
                },
                {
                    "name": "block_1.conv_distilled",
                    "depth": 2,
                    "type": "Conv2d",
                    "params": 69_230,
                    "flops": 4_260_766_208,
                    "conv_macs": 4_256_571_904,
                    "activations": 17_717_536,
                    "convs": 9,
                },
            ],
            "operators": [
                {"op": "conv", "flops": 19_658_082_304, "counted": True, "calls": 39},
                {"op": "aten::leaky_relu_", "flops": 0, "counted": False, "calls": 12},
            ],
        },
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_profile_tables(width: int) -> None:
    rows = [_profile_row("rlfn"), _profile_row("span_ch52_long_name")]
    text = render(profile_tables(rows, "1x3x256x256", 4, width), width)
    want = ["rlfn", "span_ch52_long_name", "317,218", "19,674,859,520", "80,045,184", "39,316,164,608"]
    assert_readable(text, width, want + ["FlopCounterMode", "Unsupported", "aten::leaky_relu_×12"])
    text = render(breakdown_tables(rows[0], width), width)
    assert_readable(
        text, width, ["block_1.conv_distilled", "4,256,571,904", "17,717,536", "aten::leaky_relu_"]
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_check_table(width: int) -> None:
    findings = [
        C.Finding("span_tiny", "flops", 9_833_807_872, 9_833_807_873, 1, C.CHANGED),
        C.Finding("rlfn_paper", "psnr_y[0801_long_image_name]", 28.123456, 28.120001, -0.003455, C.REGRESSED),
        C.Finding("efdn", "time_median_ms", 317.25, 380.5, 63.25, C.SLOWER),
    ]
    text = render(findings_tables(findings, "results.json vs baseline.json", width), width)
    want = ["span_tiny", "rlfn_paper", "psnr_y[0801_long_image_name]", "9,833,807,872", "9,833,807,873"]
    assert_readable(text, width, want + ["28.1235", "28.12", "+63.25", "(+19.9%)", "regressed"])


@pytest.mark.parametrize("width", WIDTHS)
def test_score_table(width: int) -> None:
    ed = get_edition("ntire2025")
    b = ed.baseline
    rows = [
        Entry(
            name=ed.baseline_row,
            psnr=dict(b.psnr),
            runtime_ms=b.runtime_ms,
            flops_g=b.flops_g,
            params_m=b.params_m,
        ),
        Entry(
            name="team24_spanf_ch32",
            psnr={"valid": 26.95, "test": 27.02},
            runtime_ms=7.9,
            flops_g=8.71,
            params_m=0.131,
        ),
    ]
    ranking = score_entries(rows, ed)
    tables = rich_tables(ranking, width)
    text = render(tables, width)
    assert_readable(
        text, width, ["team24_spanf_ch32", "26.950", "27.020", "7.900", "Score_Final", "Score_Params"]
    )
