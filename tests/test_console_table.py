"""The console table fits the terminal (issue 19 case 10): rendered at 80 and 100 columns, no
header and no model name is cut or ambiguous; the units and dropped columns are in the caption."""

from __future__ import annotations

import pytest
from rich.console import Console

from srbench.measure.timing import RuntimeStats
from srbench.results.schema import ModelResult, RunResult
from srbench.results.tables import console_table


def _run(energy: bool = False) -> RunResult:
    rt = RuntimeStats(mean=123.456, median=120.5, std=3.2, min=118.0, max=130.25, n=4)
    models = []
    for name, params in (
        ("rlfn", 317_218),
        ("span", 150_688),
        ("span_ca", 151_000),
        ("fdat_light", 1_234_567),
    ):
        models.append(
            ModelResult(
                name=name, arch=name, scale=4, status="ok", psnr_y=28.123456, ssim_y=0.812345,
                psnr_rgb=26.98765, runtime_ms=rt, params=params, flops=19_674_859_520,
                activations=80_045_184, memory_mb=1234.56, convs=39,
                energy_j_per_image=1.234 if energy else None,
            )
        )  # fmt: skip
    env = {"device": "cpu", "device_name": "AMD EPYC 7B13 64-Core Processor"}
    config = {"profile_input": [1, 3, 256, 256]}
    dataset = {"name": "sample", "images": 4, "scale": 4}
    return RunResult(environment=env, config=config, dataset=dataset, models=models)


def _render(run: RunResult, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(console_table(run, width=width))
    return console.export_text()


@pytest.mark.parametrize("energy", [False, True])
@pytest.mark.parametrize("width", [80, 100])
def test_table_fits_and_cuts_nothing(width: int, energy: bool) -> None:
    run = _run(energy)
    text = _render(run, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    body = [line for line in lines if "│" in line or "┃" in line]
    cells = [c.strip() for line in body for c in line.replace("┃", "│").split("│")]
    for m in run.models:
        assert m.name in cells, m.name  # whole, in a cell of its own
    header = next(line for line in lines if "┃" in line)
    headers = [h.strip() for h in header.split("┃") if h.strip()]
    assert len(headers) == len(set(headers)), headers
    assert {"Model", "PSNR-Y", "Time", "Params", "FLOPs"} <= set(headers)  # the headline survives
    # Units said once, in the caption; anything not shown is named with where to find it.
    flat = " ".join(text.split())
    assert "units: PSNR-Y dB" in flat and "Time ms, median" in flat
    shown = set(headers)
    for name in ("Convs", "Memory", "Activations", "PSNR-RGB", "SSIM-Y"):
        if name not in shown:
            assert "see results.csv/results.md" in flat


def test_wide_terminal_keeps_every_column_with_units_in_headers() -> None:
    text = _render(_run(), 200)
    for header in ("PSNR-Y (dB)", "SSIM-Y", "PSNR-RGB (dB)", "Time (ms, median)", "Memory (MB)", "Convs"):
        assert header in text
    assert "units:" not in text and "not shown" not in text
