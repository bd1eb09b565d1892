"""``srbench run --protocol ntireYYYY``: the NTIRE Efficient SR challenge protocol, end to end.

A layer above :func:`~srbench.runner.orchestrator.run_benchmark`; the per-model
measurement is srbench's own, under the challenge's conventions (``ntire_compat``: no
warm-up, arithmetic-mean time with the cold first image included, PSNR-RGB with border 4
as the headline). Per edition (:mod:`srbench.ntire.editions`):

1. the edition's baseline model is added to the models when missing, so the score is
   against a baseline measured in the same run, on the same machine;
2. every split (``valid`` and ``test``) is measured, each by one ``run_benchmark`` call
   (every model in a fresh worker process), into ``OUT/run{k}/{split}/results.json``;
3. that whole run is repeated ``runs`` times (the edition's default: 5, as the organisers
   do), each repetition in fresh workers again;
4. per model and run, runtime = (valid mean + test mean) / 2, the challenge's "Ave Time";
   the reported runtime is the mean over runs, with the runs' population std, min and max;
   PSNR-RGB per split is the mean over runs (identical across runs on a deterministic
   model); params/FLOPs/activations/convs are the exact counts;
5. ``OUT/challenge.json`` (schema ``srbench/ntire-1``), the challenge-style
   ``OUT/results.txt``, and the ranking (``OUT/score.json``/``.md``/``.csv``) are written.

Differences from the challenge script, on purpose: each split starts in a fresh worker
(the challenge runs test right after valid in one process, so its test split starts warm),
peak memory is reset per split, weights load strictly.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from srbench.core.errors import SrbenchError
from srbench.core.files import atomic_write_text
from srbench.core.progress import ProgressMode
from srbench.ntire.editions import Edition
from srbench.ntire.score import (
    CHALLENGE_SCHEMA,
    Ranking,
    entries_from_challenge_run,
    score_entries,
    write_ranking,
)
from srbench.results.config import RunConfig
from srbench.results.schema import ModelResult, RunResult
from srbench.runner.orchestrator import run_benchmark


@dataclass(frozen=True)
class ChallengeRun:
    """The outcome of :func:`run_challenge`: the aggregate document, the ranking, and whether
    the run was interrupted."""

    document: dict[str, Any]
    ranking: Ranking | None
    interrupted: bool


def resolve_split_data(edition: Edition, data: str | None) -> dict[str, str]:
    """``{split: dataset path}`` from ``--data``.

    ``valid=PATH,test=PATH`` names each split's folder (any layout srbench reads); a plain
    PATH is the edition's layout root, holding ``DIV2K_LSDIR_valid_HR``/``_LR`` and
    ``DIV2K_LSDIR_test_HR``/``_LR``. Every split of the edition must be given.
    """
    if not data:
        raise SrbenchError(
            f"--protocol {edition.name} needs --data: either valid=PATH,test=PATH or the folder holding "
            + " and ".join(hr for hr, _ in edition.layout.values())
        )
    if "=" in data:
        out: dict[str, str] = {}
        for item in data.split(","):
            split, sep, path = item.partition("=")
            split = split.strip()
            if not sep or not path or split not in edition.splits:
                raise SrbenchError(
                    f"--data {item!r} is not SPLIT=PATH with SPLIT one of {', '.join(edition.splits)} "
                    f"(e.g. --data valid=data/valid,test=data/test)"
                )
            out[split] = path.strip()
        missing = [s for s in edition.splits if s not in out]
        if missing:
            raise SrbenchError(
                f"--data names no {', '.join(missing)} split; {edition.name} runs "
                f"{', '.join(edition.splits)} (e.g. --data valid=PATH,test=PATH)"
            )
        return {s: out[s] for s in edition.splits}
    root = Path(data)
    out = {}
    for split in edition.splits:
        hr, lr = edition.layout[split]
        if not (root / hr).is_dir():
            raise SrbenchError(
                f"--data {root}: no {hr}/ folder (the {edition.name} layout: {hr}/ and {lr}/ per split); "
                "point --data at the folder holding them or pass --data valid=PATH,test=PATH"
            )
        out[split] = str(root / hr)
    return out


def challenge_config(base: RunConfig, edition: Edition, data: str) -> RunConfig:
    """The per-split :class:`RunConfig`: the challenge's conventions on top of ``base``."""
    return replace(base, data=data, scale=edition.scale, warmup=0, ntire_compat=True, repeat=1)


def run_challenge(
    base: RunConfig,
    edition: Edition,
    split_data: dict[str, str],
    runs: int,
    out_dir: Path,
    *,
    console: Console | None = None,
    progress: ProgressMode = "auto",
) -> ChallengeRun:
    """Measure ``base.models`` (plus the baseline) per the module protocol into ``out_dir``;
    ``progress`` as :func:`~srbench.runner.orchestrator.run_benchmark`'s."""
    if runs < 1:
        raise SrbenchError(f"--runs {runs} must be 1 or more")
    console = console or Console(stderr=True)
    models = list(base.models)
    if edition.baseline_model not in models:
        models.insert(0, edition.baseline_model)
        console.print(f"{edition.name}: added the baseline {edition.baseline_model} (scored against it)")
    base = replace(base, models=models)
    measured: list[dict[str, RunResult]] = []
    interrupted = False
    for k in range(1, runs + 1):
        per_split: dict[str, RunResult] = {}
        for split, data in split_data.items():
            console.print(f"[bold]{edition.name}: run {k}/{runs}, {split} split ({data})")
            cfg = challenge_config(base, edition, data)
            run, stopped = run_benchmark(cfg, out_dir / f"run{k}" / split, console=console, progress=progress)
            per_split[split] = run
            if stopped:
                interrupted = True
                break
        if interrupted:
            break
        measured.append(per_split)
    document = aggregate(edition, split_data, measured, models, runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "challenge.json", json.dumps(document, indent=2) + "\n")
    atomic_write_text(out_dir / "results.txt", challenge_results_txt(document))
    ranking = None
    if measured:
        entries = entries_from_challenge_run(document, str(out_dir / "challenge.json"))
        ranking = score_entries(entries, edition, inputs=[str(out_dir / "challenge.json")])
        write_ranking(ranking, out_dir)
    return ChallengeRun(document, ranking, interrupted)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def aggregate(
    edition: Edition,
    split_data: dict[str, str],
    measured: list[dict[str, RunResult]],
    models: list[str],
    runs: int,
) -> dict[str, Any]:
    """The ``srbench/ntire-1`` document: one row per model over the completed runs."""
    splits = list(split_data)
    rows = []
    for name in models:
        results: list[dict[str, ModelResult]] = []
        error = None
        for per_split in measured:
            got = {s: per_split[s].model(name) for s in splits}
            for s, m in got.items():
                if m is None or m.status == "error" or m.runtime_ms is None:
                    reason = "not measured" if m is None else (m.reason or "no runtime")
                    error = error or f"error on the {s} split: {reason}"
            results.append(got)  # type: ignore[arg-type]
        row: dict[str, Any] = {"name": name, "error": error, "notes": []}
        first = next((r[s] for r in results for s in splits if r.get(s) is not None), None)
        if first is not None:
            for key in ("params", "flops", "activations", "convs", "flops_lower_bound", "flops_thop"):
                row[key] = getattr(first, key)
            row["flops_undercount"] = first.flops_undercount
            row["notes"] = list(dict.fromkeys(n for r in results for s in splits if r[s] for n in r[s].notes))
        if error is None and results:
            split_means = {s: [r[s].runtime_ms.mean for r in results] for s in splits}  # type: ignore[union-attr]
            split_medians = {s: [r[s].runtime_ms.median for r in results] for s in splits}  # type: ignore[union-attr]
            per_run = [statistics.fmean(r[s].runtime_ms.mean for s in splits) for r in results]  # type: ignore[union-attr]
            psnr = {
                s: (
                    statistics.fmean(r[s].psnr_rgb for r in results)
                    if all(r[s].has_quality for r in results)
                    else None
                )
                for s in splits
            }
            row.update(
                psnr=psnr,
                runtime_ms=statistics.fmean(per_run),
                runtime_runs_ms=per_run,
                runtime_spread_ms=_spread(per_run),
                split_runtime_ms={s: statistics.fmean(v) for s, v in split_means.items()},
                split_median_ms={s: statistics.fmean(v) for s, v in split_medians.items()},
                first_image_ms={
                    s: statistics.fmean(r[s].images[0].runtime_ms for r in results) for s in splits
                },
                memory_mb={s: max((r[s].memory_mb or 0.0) for r in results) for s in splits},
                memory_kind=first.memory_kind if first else None,
            )
            if any(v is None for v in psnr.values()):
                row["notes"].append("no trained weights: PSNR not measured, gates not checked")
        rows.append(row)
    env = measured[0][splits[0]].environment if measured else {}
    datasets = {s: measured[0][s].dataset for s in splits} if measured else {}
    return {
        "schema": CHALLENGE_SCHEMA,
        "edition": edition.name,
        "splits": splits,
        "data": split_data,
        "datasets": datasets,
        "runs_requested": runs,
        "runs_completed": len(measured),
        "protocol": "no warm-up, mean forward ms incl. the first image, PSNR-RGB border 4; "
        "runtime = mean over runs of (valid mean + test mean)/2",
        "environment": env,
        "models": rows,
    }


_TXT_HEADER = [
    "Model",
    "Val PSNR",
    "Test PSNR",
    "Val Time [ms]",
    "Test Time [ms]",
    "Ave Time [ms]",
    "Params [M]",
    "FLOPs [G]",
    "Acts [M]",
    "Mem [M]",
    "Conv",
]


def challenge_results_txt(document: dict[str, Any]) -> str:
    """The challenge's ``results.txt`` layout (tab-separated, its roundings) of ``document``."""
    lines = ["\t".join(_TXT_HEADER)]
    for m in document["models"]:
        if m.get("error") or m.get("runtime_ms") is None:
            continue
        psnr, split_rt = m["psnr"], m["split_runtime_ms"]

        def p(v: float | None) -> str:
            return "nan" if v is None else f"{v:.2f}"

        lines.append(
            "\t".join(
                [
                    m["name"],
                    p(psnr.get("valid")),
                    p(psnr.get("test")),
                    f"{split_rt.get('valid', float('nan')):.2f}",
                    f"{split_rt.get('test', float('nan')):.2f}",
                    f"{m['runtime_ms']:.2f}",
                    f"{m['params'] / 1e6:.3f}",
                    f"{m['flops'] / 1e9:.2f}",
                    f"{m['activations'] / 1e6:.2f}",
                    f"{m['memory_mb'].get('valid', 0.0):.2f}",
                    str(m["convs"]),
                ]
            )
        )
    return "\n".join(lines) + "\n"
