"""``srbench report``: merged tables, claims vs measured, plots and the HTML page."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from srbench.cli import build_parser, main
from srbench.commands.run import config_from_args
from srbench.core.errors import SrbenchError
from srbench.measure.timing import RuntimeStats
from srbench.reporting import claims as K
from srbench.reporting.plots import DPI, FIGSIZE, PlotPoint, pareto_front, scatter_figure, wrap_label
from srbench.reporting.report import build_report, labelled_models, load_runs
from srbench.results.schema import (
    ImageResult,
    ModelResult,
    RunResult,
    WeightsInfo,
    atomic_write_text,
    check_label,
    results_json,
)
from srbench.results.tables import caption

NTIRE_INPUT = [1, 3, 256, 256]


def _ok(name: str, params: int, flops: int, acts: int, convs: int, psnr: float, ms: float) -> ModelResult:
    return ModelResult(
        name=name,
        arch=name,
        scale=4,
        status="ok",
        weights=WeightsInfo(file=f"{name}.pth", sha256="ef" * 32, source="test"),
        params=params,
        flops=flops,
        activations=acts,
        convs=convs,
        complexity_input=NTIRE_INPUT,
        psnr_y=psnr,
        ssim_y=0.8,
        psnr_rgb=psnr - 1.0,
        runtime_ms=RuntimeStats.from_samples([ms, ms + 2.0]),
        images=[
            ImageResult("astronaut", ms, psnr + 0.1, 0.8, psnr - 1),
            ImageResult("chelsea", ms + 2.0, psnr),
        ],
    )


def _span_ca(convs: int = 50) -> ModelResult:
    # The CA model's measured figures (architectures.md §3), no trained weights.
    return ModelResult(
        name="span_ca",
        arch="span_ca",
        scale=4,
        status="no-weights",
        reason="no trained weights exist",
        params=151_080,
        flops=9_846_653_712,
        activations=41_681_302,
        convs=convs,
        complexity_input=NTIRE_INPUT,
        psnr_y=16.0,  # random init: must never be shown or plotted
        runtime_ms=RuntimeStats.from_samples([30.0]),
    )


def _run(device_name: str, dtype: str, slow: float) -> RunResult:
    return RunResult(
        environment={"device": "cpu", "device_name": device_name},
        config={"scale": 4, "dtype": dtype, "profile_input": NTIRE_INPUT},
        dataset={"name": "sample", "images": 2, "scale": 4},
        models=[
            _ok("rlfn", 317_218, 19_674_859_520, 80_045_184, 39, 28.70, 40.0 * slow),
            _ok("span", 150_688, 9_833_807_872, 41_680_896, 22, 28.90, 20.0 * slow),
            _span_ca(),
        ],
    )


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    paths = []
    for i, (dev, dtype, slow) in enumerate((("CPU-A", "fp32", 1.0), ("GPU-B", "bf16", 0.1))):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        atomic_write_text(folder / "results.json", results_json(_run(dev, dtype, slow)))
        paths.append(folder)
    return paths


class _Rows(HTMLParser):
    """Collects the text of every <tr> of each table, keyed by the table's id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"t{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None


# --------------------------------------------------------------------------- claims


def _ref(name: str) -> K.Reference:
    return next(r for r in K.load_references() if r.model == name)


def _verdicts(model: ModelResult, run: RunResult) -> dict[str, tuple[str, str]]:
    checks = K.check_claims(K.load_references(), [(model.name, model, run)])
    return {c.claim: (c.verdict, c.reason) for c in checks}


def test_reference_files_parse_and_pin_the_published_integers() -> None:
    refs = {r.model: r for r in K.load_references()}
    assert set(refs) == {"rlfn", "span", "efdn", "spanf", "span_ca"}
    exact = {
        r.model: {c.metric: c.value for c in r.claims if c.scale == 1 and c.decimals == 0}
        for r in refs.values()
    }
    assert exact["rlfn"] == {
        "params": 317_218,
        "flops": 19_674_859_520,
        "activations": 80_045_184,
        "convs": 39,
    }
    assert exact["span"] == {
        "params": 150_688,
        "flops": 9_833_807_872,
        "activations": 41_680_896,
        "convs": 22,
    }
    assert exact["efdn"]["params"] == 276_192 and exact["spanf"]["convs"] == 18
    for r in refs.values():
        assert all(c.source for c in r.claims)


def test_span_ca_claims_verdicts() -> None:
    run = _run("CPU-A", "fp32", 1.0)
    v = _verdicts(_span_ca(), run)
    assert v["0.151 M params"][0] == K.REPRODUCED  # 151,080 -> 0.151
    assert v["41.68 M activations"][0] == K.REPRODUCED  # 41,681,302 -> 41.68
    assert v["22 convs"][0] == K.CONTRADICTED  # measured 50
    assert v["10.23 G FLOPs"][0] == K.CONTRADICTED  # 9.85 G
    psnr_verdict, psnr_reason = v["27.01 dB PSNR-RGB on DIV2K_LSDIR_valid"]
    assert psnr_verdict == K.NOT_CHECKABLE
    assert "no-weights: no trained weights exist" in psnr_reason and "sample" in psnr_reason
    time_verdict, time_reason = next(val for key, val in v.items() if key.startswith("20.15 ms"))
    assert time_verdict == K.NOT_CHECKABLE and "GPU" in time_reason
    assert _verdicts(_span_ca(convs=22), run)["22 convs"][0] == K.REPRODUCED


def test_claim_precision_is_the_printed_figure() -> None:
    claim = next(c for c in _ref("span_ca").claims if c.metric == "params")
    assert K.matches(claim, 151_080) and K.matches(claim, 150_500)  # both print as 0.151
    assert not K.matches(claim, 151_500) and not K.matches(claim, 150_499)
    exact = next(c for c in _ref("rlfn").claims if c.metric == "flops")
    assert K.matches(exact, 19_674_859_520) and not K.matches(exact, 19_674_859_521)


def test_quality_and_runtime_claims_need_matching_data_and_device() -> None:
    rlfn = _ok("rlfn", 317_218, 19_674_859_520, 80_045_184, 39, 30.0, 13.60)
    rlfn.weights = WeightsInfo("ntire2024_team00_rlfn_baseline_x4.pth", "00" * 32, "test")
    rlfn.psnr_rgb = 26.9549  # prints as 26.95: contradicts 26.96
    run = RunResult(
        environment={"device": "cuda", "device_name": "NVIDIA GeForce RTX 3090"},
        config={"profile_input": NTIRE_INPUT},
        dataset={"name": "DIV2K_LSDIR_valid", "images": 200, "scale": 4},
        models=[rlfn],
    )
    v = _verdicts(rlfn, run)
    assert v["26.96 dB PSNR-RGB on DIV2K_LSDIR_valid"][0] == K.CONTRADICTED
    rlfn.psnr_rgb = 26.9551
    assert _verdicts(rlfn, run)["26.96 dB PSNR-RGB on DIV2K_LSDIR_valid"][0] == K.REPRODUCED
    assert v["27.07 dB PSNR-RGB on DIV2K_LSDIR_test"][0] == K.NOT_CHECKABLE  # other split
    # The 13.54 ms claim is a valid+test mean: one split cannot test it even on a 3090.
    assert "valid+test" in v["13.54 ms on RTX 3090"][1]
    run.dataset = {"name": "DIV2K_LSDIR_valid+test", "images": 400}
    assert _verdicts(rlfn, run)["13.54 ms on RTX 3090"][0] == K.REPRODUCED  # mean 14.6 within 10%
    run.environment = {"device": "cpu", "device_name": "Some CPU"}
    verdict, reason = _verdicts(rlfn, run)["13.54 ms on RTX 3090"]
    assert verdict == K.NOT_CHECKABLE and "Some CPU" in reason
    rlfn.weights = WeightsInfo("bytedance_rlfn_x4.pth", "11" * 32, "test")
    assert "bytedance_rlfn_x4.pth" in _verdicts(rlfn, run)["26.96 dB PSNR-RGB on DIV2K_LSDIR_valid"][1]


def test_bad_reference_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(
        '{"schema": "srbench/reference-1", "model": "a", "claims": [{"metric": "nope"}]}'
    )
    with pytest.raises(SrbenchError, match=r"x\.json"):
        K.load_references(tmp_path)


# --------------------------------------------------------------------------- plots


def test_pareto_front_closed_form() -> None:
    # (cost, quality): B dominates A? No: A cheaper. C is dominated by B (costlier, worse).
    costs = [1.0, 2.0, 3.0, 4.0, 2.0]
    quals = [27.0, 28.0, 27.5, 29.0, 28.0]
    assert pareto_front(costs, quals) == [0, 1, 3]  # index 4 duplicates 1; 2 is dominated
    assert pareto_front([], []) == []


# --------------------------------------------------------------------------- whole report


def test_labels_name_device_and_dtype_only_when_runs_differ(two_runs: list[Path]) -> None:
    runs = load_runs(two_runs)
    labels = [label for label, _, _ in labelled_models(runs)]
    assert "rlfn @ CPU-A/fp32" in labels and "span @ GPU-B/bf16" in labels
    single = [label for label, _, _ in labelled_models(load_runs(two_runs[:1]))]
    assert single == ["rlfn", "span", "span_ca"]
    same = [r.tag for r in load_runs([two_runs[0], two_runs[0]])]
    assert same == ["CPU-A/fp32 #1", "CPU-A/fp32 #2"]


def test_report_on_two_runs_writes_everything(two_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", *map(str, two_runs), "--output", str(out)]) == 0

    md = (out / "report.md").read_text()
    for label in ("rlfn @ CPU-A/fp32", "rlfn @ GPU-B/bf16", "span @ CPU-A/fp32", "span @ GPU-B/bf16"):
        assert f"| {label} | " in md
    assert "CPU-A" in md and "GPU-B" in md  # devices in the captions
    assert "Val PSNR-Y (dB)" in md and "Params (M)" in md
    assert "| span_ca @ CPU-A/fp32 | — |" in md  # random-init PSNR never shown
    claim_rows = [line for line in md.splitlines() if line.startswith("| span_ca @ CPU-A/fp32 | 22 convs")]
    assert len(claim_rows) == 1 and "**contradicted**" in claim_rows[0]
    params_row = next(line for line in md.splitlines() if "| span_ca @ GPU-B/bf16 | 0.151 M params" in line)
    assert "**reproduced**" in params_row and "151,080" in params_row

    w, h = round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI)
    for stem in ("psnr_vs_runtime", "psnr_vs_flops"):
        with Image.open(out / f"{stem}.png") as img:
            img.load()
            assert img.size == (w, h)
        svg = (out / f"{stem}.svg").read_text()
        assert "<svg" in svg and "@ CPU-A/fp32" in svg and "rlfn" in svg  # labelled points
        assert "span_ca" not in svg  # no quality: left out of the plots
    assert "span_ca @ CPU-A/fp32: not plotted" in md

    page = (out / "report.html").read_text()
    parser = _Rows()
    parser.feed(page)
    results = parser.tables["results"]
    assert results[0][0] == "Model" and len(results) == 1 + 6
    rlfn_b = next(r for r in results if r[0] == "rlfn @ GPU-B/bf16")
    assert rlfn_b[2] == "28.70" and rlfn_b[5] == "5.00" and rlfn_b[10] == "39"  # median of 4, 6 ms
    claims = {(r[0], r[1]): r[3] for r in parser.tables["claims"][1:]}
    assert claims[("span_ca @ CPU-A/fp32", "22 convs")] == K.CONTRADICTED
    assert claims[("span @ CPU-A/fp32", "150,688 params")] == K.REPRODUCED
    assert len(parser.tables["images"]) == 1 + 2 * 2 * 2  # 2 runs x 2 measured models x 2 images
    assert page.count("data:image/png;base64,") == 2
    assert "<script>" in page and "<link" not in page  # self-contained
    assert not list(out.glob(".*.tmp"))


def test_report_embeds_comparison_grids(two_runs: list[Path], tmp_path: Path) -> None:
    images = two_runs[0] / "images"
    images.mkdir()
    Image.new("RGB", (8, 4), (255, 0, 0)).save(images / "compare_astronaut.png")
    files = build_report([two_runs[0]])
    assert files.html == two_runs[0] / "report" / "report.html"  # default output
    page = files.html.read_text()
    assert "compare_astronaut.png" in page and page.count("data:image/png;base64,") == 3


def test_report_without_quality_has_no_plots(tmp_path: Path) -> None:
    run = RunResult({"device": "cpu"}, {"profile_input": NTIRE_INPUT}, {"name": "sample"}, [_span_ca()])
    atomic_write_text(tmp_path / "results.json", results_json(run))
    files = build_report([tmp_path / "results.json"], tmp_path / "out")
    assert files.plots == {}
    assert "nothing to plot" in files.markdown.read_text()


def test_report_missing_input_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_plots_are_print_resolution_with_labels_that_do_not_collide() -> None:
    # span and spanf nearly coincide (the collision seen in real reports); merged labels are long.
    long = "AMD EPYC 7B13 64-Core Processor/fp32"
    points = [
        PlotPoint(f"span @ {long}", 26.94, 20.1, 9_833_807_872, 150_688),
        PlotPoint(f"spanf @ {long}", 26.93, 19.0, 9_000_000_000, 140_000),
        PlotPoint(f"rlfn @ {long}", 26.96, 40.0, 19_674_859_520, 317_218),
        PlotPoint(f"span_tiny @ {long}", 26.80, 15.0, 8_000_000_000, 130_000),
        PlotPoint("span @ NVIDIA H200/bf16", 26.94, 0.9, 9_833_807_872, 150_688),
        PlotPoint("spanf @ NVIDIA H200/bf16", 26.93, 0.85, 9_000_000_000, 140_000),
    ]
    assert DPI >= 300
    for axis in ("runtime", "flops"):
        fig = scatter_figure(points, axis, "t")
        assert fig is not None
        renderer = fig.canvas.get_renderer()
        fig.canvas.draw()
        ax = fig.axes[0]
        frame = ax.get_window_extent(renderer)
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        assert sorted(t.get_text().split("\n")[0] for t in ax.texts) == sorted(
            p.label.split(" @ ")[0] for p in points
        )
        for i, a in enumerate(boxes):
            assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), (axis, a, b)
    assert wrap_label(f"span @ {long}") == "span\n@ AMD EPYC 7B13 64-Core\nProcessor/fp32"


def test_labels_name_runs_everywhere(two_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", *map(str, two_runs), "--output", str(out), "--label", "a", "--label", "b"]) == 0
    md = (out / "report.md").read_text()
    assert "| rlfn @ a | " in md and "| span @ b | " in md and "on CPU-A;" in md  # device stays in captions
    assert (
        "rlfn" in (out / "psnr_vs_runtime.svg").read_text()
        and "@ b" in (out / "psnr_vs_runtime.svg").read_text()
    )
    with pytest.raises(SrbenchError, match="one --label per run"):
        load_runs(two_runs, ["only-one"])
    # A label recorded by srbench run names the run; it never changes the config hash.
    run = _run("CPU-A", "fp32", 1.0)
    labelled = RunResult(run.environment, {**run.config, "label": "laptop"}, run.dataset, run.models)
    assert labelled.config_hash == run.config_hash
    assert caption(labelled).startswith("laptop: ")
    with pytest.raises(SrbenchError, match="--label"):
        check_label("two\nlines")
    args = build_parser("run").parse_args(["run", "--models", "span", "--label", " laptop "])
    assert config_from_args(args).label == "laptop"


def test_report_says_when_the_memory_column_mixes_definitions(tmp_path: Path) -> None:
    """A PyTorch run (live-tensor peak) beside an ONNX Runtime run (session RSS growth): the
    memory figures follow definitions that are not comparable, and the report says so."""
    paths = []
    for i, kind in enumerate(("cpu_forward_peak", "ort_cpu_rss_growth")):
        run = _run(f"CPU-{i}", "fp32", 1.0)
        for m in run.models:
            m.memory_mb, m.memory_kind = 20.0 + i, kind
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        atomic_write_text(folder / "results.json", results_json(run))
        paths.append(folder)
    out = tmp_path / "report"
    assert main(["report", *map(str, paths), "--output", str(out)]) == 0
    for text in ((out / "report.md").read_text(), (out / "report.html").read_text()):
        assert "Memory (MB) mixes definitions that are not comparable" in text
        assert "cpu_forward_peak: rlfn @ CPU-0" in text and "ort_cpu_rss_growth: rlfn @ CPU-1" in text
    # One definition throughout: no such line.
    single = tmp_path / "single"
    assert main(["report", str(paths[0]), "--output", str(single)]) == 0
    assert "mixes definitions" not in (single / "report.md").read_text()
