"""``srbench check``: compare a run with a baseline; exit 1 on any regression.

``--update`` is the only way the baseline is written: it replaces the baseline with the
run (atomically), after printing what changed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from srbench.commands.options import with_example
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError
from srbench.core.tables import Column, fit_tables
from srbench.reporting import check as C
from srbench.results.schema import RunResult, atomic_write_text, load_results, results_json

_STYLE = {
    C.CHANGED: "red",
    C.SLOWER: "red",
    C.REGRESSED: "red",
    C.REMOVED: "red",
    C.ADDED: "cyan",
    C.IMPROVED: "green",
    C.FASTER: "green",
    C.NOTE: "yellow",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="compare a results.json with a baseline; exit 1 on regressions",
        description=(
            "Exact match for params/FLOPs/activations/convs/weights, PSNR/SSIM within tolerance, "
            "runtime only with --time-tol. A model missing from RESULTS fails; a new one is info."
        ),
        **with_example("srbench check srbench-runs/latest --baseline results/baselines/ci-cpu.json"),
    )
    p.add_argument("results", metavar="RESULTS", help="results.json or a run folder")
    p.add_argument("--baseline", required=True, metavar="BASELINE", help="baseline results.json")
    p.add_argument("--psnr-tol", type=float, default=0.001, metavar="DB", help="absolute dB (default 0.001)")
    p.add_argument("--ssim-tol", type=float, default=1e-5, help="absolute SSIM (default 1e-5)")
    p.add_argument(
        "--time-tol",
        type=float,
        default=None,
        metavar="RATIO",
        help="fail when median time > (1 + RATIO) x baseline; not checked unless given",
    )
    p.add_argument("--per-image", action="store_true", help="also compare PSNR/SSIM image by image")
    p.add_argument("--all", action="store_true", help="list passing checks too")
    p.add_argument("--update", action="store_true", help="rewrite BASELINE from RESULTS (on purpose)")
    p.set_defaults(func=check_command)


def _fmt(v: C.Value) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if len(v) == 64 and all(ch in "0123456789abcdef" for ch in v):
        return v[:12] + "…"  # a sha256: the prefix tells two checkpoints apart
    return v


def _delta(f: C.Finding) -> str:
    if f.delta is None:
        return ""
    text = f"{f.delta:+,}" if isinstance(f.delta, int) else f"{f.delta:+.6g}"
    if f.metric == "time_median_ms" and isinstance(f.baseline, float) and f.baseline > 0:
        text += f" ({f.delta / f.baseline:+.1%})"
    return text


#: ``srbench check``'s columns; at a narrow width the verdict and delta move to a
#: continuation table (keyed by the model) rather than being shortened.
FINDING_COLUMNS = (
    Column("Model"),
    Column("Metric", keep=6),
    Column("Baseline", "right", keep=5),
    Column("Now", "right", keep=4),
    Column("Delta", "right", keep=2),
    Column("Verdict", keep=3),
)


def findings_tables(findings: list[C.Finding], title: str, width: int | None = None) -> list[Table]:
    """The diff table(s): model, metric, baseline, now, delta, verdict, fitting ``width``."""
    cells = [[f.model, f.metric, _fmt(f.baseline), _fmt(f.now), _delta(f), f.verdict] for f in findings]
    styles = [_STYLE.get(f.verdict) for f in findings]
    # fit_tables writes cells as Text: "psnr_y[astronaut]" is not read as a style tag.
    return fit_tables(title, FINDING_COLUMNS, cells, width, styles=styles)


def check_command(args: argparse.Namespace) -> int:
    tol = C.Tolerances(psnr_db=args.psnr_tol, ssim=args.ssim_tol, time_ratio=args.time_tol)
    run = load_results(args.results)
    baseline_path = Path(args.baseline)
    if baseline_path.is_dir():
        baseline_path = baseline_path / "results.json"
    console = make_console()
    if args.update and not baseline_path.exists():
        _write_baseline(baseline_path, run)
        console.print(
            f"created baseline {baseline_path} from {args.results} ({len(run.models)} models)", markup=False
        )
        return 0
    if not baseline_path.exists():
        raise SrbenchError(
            f"--baseline {baseline_path} not found; create it on purpose with "
            f"'srbench check {args.results} --baseline {baseline_path} --update'"
        )
    baseline = load_results(baseline_path)
    findings = C.compare_runs(baseline, run, tol, per_image=args.per_image)
    shown = findings if args.all else [f for f in findings if f.verdict != C.OK]
    failed = C.failures(findings)
    n_ok = sum(f.verdict == C.OK for f in findings)
    if shown:
        for table in findings_tables(shown, escape(f"{args.results} vs {baseline_path}"), console.width):
            console.print(table)
    time_note = f"time tol {tol.time_ratio:g}" if tol.time_ratio is not None else "runtime not checked"
    console.print(
        f"{len(findings)} checks: {n_ok} ok, {len(failed)} failing "
        f"(psnr tol {tol.psnr_db:g} dB, ssim tol {tol.ssim:g}, {time_note})"
    )
    if args.update:
        _write_baseline(baseline_path, run)
        changed = sum(f.verdict != C.OK for f in findings)
        console.print(f"updated baseline {baseline_path}: {changed} differences above accepted", markup=False)
        return 0
    if failed:
        console.print(f"[red]FAIL[/red]: {len(failed)} regressions against {escape(str(baseline_path))}")
        return 1
    console.print(f"[green]PASS[/green]: matches {escape(str(baseline_path))}")
    return 0


def _write_baseline(path: Path, run: RunResult) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, results_json(run))
    except OSError as exc:
        raise SrbenchError(
            f"cannot write --baseline {path} ({exc.strerror or exc}); choose a writable path"
        ) from None
