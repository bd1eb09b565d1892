"""The NTIRE Efficient SR score and ranking of a set of results (``srbench score``).

Inputs, each read as it is (:func:`load_entries`):

* an srbench ``results.json`` (schema ``srbench/1``) or a run folder holding one: one row per
  model; PSNR is ``psnr_rgb`` of that run's one dataset (counted as the ``valid`` split, so
  the test gate is "not checked"), runtime is the run's headline statistic (mean under
  ``--ntire-compat``, else median), params/FLOPs are the exact counts;
* an ``srbench run --protocol ntireYYYY`` folder or its ``challenge.json`` (schema
  ``srbench/ntire-1``): both splits, runtime = mean of the two split averages, averaged
  over the runs;
* the challenge's own ``results.json`` (model name -> ``valid_ave_psnr``,
  ``valid_ave_runtime``, ``num_parameters`` [M], ``flops`` [G], optional ``test_*``) and
  ``results.txt`` (columns separated by tabs or any run of spaces).

Scores follow :mod:`srbench.ntire.editions`. The baseline is the input row named by
``baseline`` (or, by default, the edition's baseline row such as ``00_EFDN_baseline``, or
its srbench model name such as ``efdn``); when the input has no such row, the edition's
published figures are used, and :class:`Baseline.source` says which.

Eligibility per row: ``True`` (every gate checked and passed), ``False`` (a gate failed or the
row has no figures; ``why_not`` lists why) or ``None`` (a split's PSNR is missing, so its gate
could not be checked). Rows that are not ``False`` are ranked per track (``runtime``,
``flops``, ``params``, ``final``) by ascending score, ties sharing a rank (1, 2, 2, 4).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.core.files import atomic_write_text
from srbench.core.tables import Column, fit_tables
from srbench.ntire.editions import Edition

SCORE_SCHEMA = "srbench/score-1"
CHALLENGE_SCHEMA = "srbench/ntire-1"
TRACKS: tuple[str, ...] = ("runtime", "flops", "params", "final")


@dataclass
class Entry:
    """One model's figures in the challenge's units: PSNR-RGB per split (dB), runtime (ms),
    params (M), FLOPs (G). ``None`` where the input does not have the figure."""

    name: str
    psnr: dict[str, float | None] = field(default_factory=dict)
    runtime_ms: float | None = None
    split_runtime_ms: dict[str, float] = field(default_factory=dict)
    params_m: float | None = None
    flops_g: float | None = None
    #: True when srbench found the FLOPs counter below the conv lower bound (see counting).
    flops_undercount: bool = False
    flops_lower_bound_g: float | None = None
    source: str = ""
    #: Why the row cannot be scored at all (e.g. the model failed), else None.
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Dataset names the PSNR was measured on, per split, when srbench measured it.
    datasets: dict[str, str] = field(default_factory=dict)
    #: True when srbench measured the row (its runtime is from this machine, not the organisers').
    measured_here: bool = False
    #: The edition an ``srbench run --protocol`` run was made for (its challenge.json), else None.
    edition: str | None = None
    #: Run-to-run spread of ``runtime_ms`` (population std over runs, ms) when the row
    #: summarises several runs (``srbench sweep --runs``, ``run --protocol --runs``), else None.
    runtime_std_ms: float | None = None


@dataclass(frozen=True)
class Baseline:
    """The figures every score is relative to, and where they came from."""

    name: str
    runtime_ms: float
    flops_g: float
    params_m: float
    #: "row" (a row of the input) or "published" (the edition's published figures).
    kind: str
    source: str


@dataclass
class ScoreRow:
    """One scored row (see the module docstring for ``eligible`` and ``rank``)."""

    name: str
    eligible: bool | None
    why_not: list[str]
    psnr: dict[str, float | None]
    runtime_ms: float | None
    flops_g: float | None
    params_m: float | None
    score_runtime: float | None
    score_flops: float | None
    score_params: float | None
    score_final: float | None
    rank: dict[str, int | None]
    is_baseline: bool = False
    flops_undercount: bool = False
    #: See ``Entry.runtime_std_ms``; the table shows ``runtime ± std``.
    runtime_std_ms: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Ranking:
    """The ranking of a set of entries under one edition."""

    edition: Edition
    baseline: Baseline
    rows: list[ScoreRow]
    inputs: list[str] = field(default_factory=list)
    #: Caveats that apply to the whole ranking (data sets, devices), one sentence each.
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (schema ``srbench/score-1``); non-finite floats become strings."""
        return _clean(
            {
                "schema": SCORE_SCHEMA,
                "edition": self.edition.name,
                "weights": dict(zip(("runtime", "flops", "params"), self.edition.weights, strict=True)),
                "gates": self.edition.gates,
                "baseline": asdict(self.baseline),
                "inputs": self.inputs,
                "warnings": self.warnings,
                "rows": [asdict(r) for r in self.rows],
            }
        )


# --------------------------------------------------------------------------- scoring


def sub_score(value: float, baseline: float) -> float:
    """``exp(2 * value / baseline)``: 7.3891 (e²) for the baseline itself, lower is better."""
    return math.exp(2.0 * value / baseline)


def final_score(edition: Edition, runtime: float, flops: float, params: float) -> float:
    """The weighted sum of the three sub-scores (already computed) with the edition's weights."""
    w_rt, w_fl, w_pa = edition.weights
    return w_rt * runtime + w_fl * flops + w_pa * params


def eligibility(edition: Edition, psnr: dict[str, float | None]) -> tuple[bool | None, list[str]]:
    """``(eligible, reasons)`` for PSNR-RGB per split against the edition's gates."""
    failed, unchecked = [], []
    for split, gate in edition.gates.items():
        value = psnr.get(split)
        if value is None:
            unchecked.append(f"no {split} PSNR: the {gate:.2f} dB gate is not checked")
        elif value < gate:
            failed.append(f"{split} PSNR {value:.3f} dB < {gate:.2f} dB")
    if failed:
        return False, failed + unchecked
    return (None if unchecked else True), unchecked


def resolve_baseline(entries: list[Entry], edition: Edition, name: str | None = None) -> Baseline:
    """The baseline row named ``name`` (or the edition's default names), else published figures."""
    by_name = {e.name: e for e in entries}
    if name is not None and name not in by_name:
        raise SrbenchError(
            f"--baseline {name!r} is not a row of the input (rows: {', '.join(by_name) or 'none'}); "
            "name one of them or drop --baseline to use the edition's published figures"
        )
    candidates = [name] if name else [edition.baseline_row, edition.baseline_model]
    unusable = ""
    for cand in candidates:
        e = by_name.get(cand)
        if e is None:
            continue
        missing = [k for k in ("runtime_ms", "flops_g", "params_m") if getattr(e, k) in (None, 0)]
        if missing:
            why = e.error or f"no {', '.join(missing)}"
            if name:
                raise SrbenchError(
                    f"baseline row {cand!r} cannot be used ({why}); pass another row with --baseline"
                )
            unusable = f"row {cand!r} unusable ({why}), so the "
            continue
        assert e.runtime_ms is not None and e.flops_g is not None and e.params_m is not None
        return Baseline(cand, e.runtime_ms, e.flops_g, e.params_m, "row", f"row {cand!r} of the input")
    pub = edition.baseline
    return Baseline(
        edition.baseline_row,
        pub.runtime_ms,
        pub.flops_g,
        pub.params_m,
        "published",
        f"{unusable}published figures of {edition.title} ({pub.source}; runtime on {pub.gpu})",
    )


def score_entries(
    entries: list[Entry], edition: Edition, baseline_name: str | None = None, inputs: list[str] | None = None
) -> Ranking:
    """Score and rank ``entries`` (see the module docstring)."""
    base = resolve_baseline(entries, edition, baseline_name)
    rows = []
    for e in entries:
        eligible, why = eligibility(edition, e.psnr)
        notes = list(e.notes)
        if e.error:
            eligible, why = False, [e.error, *why]
        s_rt = sub_score(e.runtime_ms, base.runtime_ms) if e.runtime_ms is not None else None
        s_fl = sub_score(e.flops_g, base.flops_g) if e.flops_g is not None else None
        s_pa = sub_score(e.params_m, base.params_m) if e.params_m is not None else None
        missing = [n for n, v in (("runtime", s_rt), ("FLOPs", s_fl), ("params", s_pa)) if v is None]
        if missing and not e.error:
            eligible = False
            why.append(f"no {', '.join(missing)}: cannot be scored")
        s_final = None if missing else final_score(edition, s_rt, s_fl, s_pa)  # type: ignore[arg-type]
        if e.flops_undercount:
            bound = f" (conv lower bound {e.flops_lower_bound_g:.2f} G)" if e.flops_lower_bound_g else ""
            notes.append(f"FLOPs undercounted by the fvcore trace{bound}: Score_FLOPs is too good")
        rows.append(
            ScoreRow(
                name=e.name,
                eligible=eligible,
                why_not=why,
                psnr=dict(e.psnr),
                runtime_ms=e.runtime_ms,
                runtime_std_ms=e.runtime_std_ms,
                flops_g=e.flops_g,
                params_m=e.params_m,
                score_runtime=s_rt,
                score_flops=s_fl,
                score_params=s_pa,
                score_final=s_final,
                rank={t: None for t in TRACKS},
                is_baseline=base.kind == "row" and e.name == base.name,
                flops_undercount=e.flops_undercount,
                notes=notes,
            )
        )
    for track in TRACKS:
        ranked = [r for r in rows if r.eligible is not False and _track_score(r, track) is not None]
        ranked.sort(key=lambda r: _track_score(r, track))  # type: ignore[arg-type,return-value]
        for i, r in enumerate(ranked):
            prev = ranked[i - 1] if i else None
            same = prev is not None and _track_score(prev, track) == _track_score(r, track)
            r.rank[track] = prev.rank[track] if same and prev is not None else i + 1
    rows.sort(key=lambda r: (r.rank["final"] is None, r.rank["final"] or 0, r.name))
    return Ranking(
        edition=edition,
        baseline=base,
        rows=rows,
        inputs=list(inputs or []),
        warnings=_warnings(entries, edition, base),
    )


def _warnings(entries: list[Entry], edition: Edition, base: Baseline) -> list[str]:
    out = []
    expected = {s: hr[: -len("_HR")] for s, (hr, _lr) in edition.layout.items()}
    other = sorted(
        {f"{s}: {name}" for e in entries for s, name in e.datasets.items() if name != expected.get(s)}
    )
    if other:
        out.append(
            f"PSNR measured on {', '.join(other)}, not the challenge's "
            f"{', '.join(expected.values())}: the gates are thresholds for those sets only"
        )
    if base.kind == "published" and any(e.measured_here for e in entries):
        out.append(
            f"runtimes measured here are scored against the baseline's {edition.baseline.gpu} figure; "
            "they are comparable only on that GPU (measure the baseline in the same run instead)"
        )
    return out


def _track_score(row: ScoreRow, track: str) -> float | None:
    return getattr(row, f"score_{track}")


# --------------------------------------------------------------------------- reading inputs

#: results.txt column names (the challenge's ``results.txt`` header) -> Entry field.
_TXT_COLUMNS = {
    "Model": "name",
    "Val PSNR": "valid_psnr",
    "Test PSNR": "test_psnr",
    "Val Time [ms]": "valid_time",
    "Test Time [ms]": "test_time",
    "Ave Time [ms]": "ave_time",
    "Params [M]": "params",
    "FLOPs [G]": "flops",
    "Acts [M]": "acts",
    "Mem [M]": "mem",
    "Conv": "conv",
}


def parse_challenge_txt(text: str, source: str = "results.txt") -> list[Entry]:
    """Rows of the challenge's ``results.txt``: header columns found by name (any whitespace
    between them), data rows split on any whitespace; a row with the wrong number of fields
    is a one-line error naming its line."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise SrbenchError(f"{source} is empty; pass the results.txt written by the challenge's test_demo.py")
    header = lines[0]
    found = []
    for col in _TXT_COLUMNS:
        m = re.search(r"(?<!\S)" + re.escape(col) + r"(?!\S)", header)
        if m:
            found.append((m.start(), _TXT_COLUMNS[col]))
    cols = [c for _, c in sorted(found)]
    if not cols or cols[0] != "name" or "valid_psnr" not in cols:
        raise SrbenchError(
            f"{source}: first line is not the challenge's header (Model, Val PSNR, ...); "
            "pass the results.txt written by test_demo.py"
        )
    entries = []
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) != len(cols):
            raise SrbenchError(
                f"{source}:{lineno}: {len(fields)} fields, expected {len(cols)} ({', '.join(cols)})"
            )
        row: dict[str, Any] = {"name": fields[0]}
        for col, value in zip(cols[1:], fields[1:], strict=True):
            try:
                number = float(value)
            except ValueError:
                raise SrbenchError(f"{source}:{lineno}: {col} {value!r} is not a number") from None
            row[col] = None if math.isnan(number) else number
        entries.append(_challenge_entry(row, source))
    return entries


def parse_challenge_json(data: dict[str, Any], source: str = "results.json") -> list[Entry]:
    """Rows of the challenge's ``results.json`` (model name -> ``valid_*``/``test_*`` figures)."""
    entries = []
    for name, d in data.items():
        if not isinstance(d, dict) or "valid_ave_psnr" not in d:
            raise SrbenchError(
                f"{source}: entry {name!r} has no valid_ave_psnr; not a challenge results.json "
                "(pass one written by test_demo.py, or an srbench results.json)"
            )
        row = {
            "name": name,
            "valid_psnr": d.get("valid_ave_psnr"),
            "test_psnr": d.get("test_ave_psnr"),
            "valid_time": d.get("valid_ave_runtime"),
            "test_time": d.get("test_ave_runtime"),
            "params": d.get("num_parameters"),
            "flops": d.get("flops"),
        }
        entries.append(_challenge_entry(row, source))
    return entries


def _challenge_entry(row: dict[str, Any], source: str) -> Entry:
    split_rt = {s: float(row[f"{s}_time"]) for s in ("valid", "test") if row.get(f"{s}_time") is not None}
    notes = []
    if row.get("ave_time") is not None:
        runtime: float | None = float(row["ave_time"])
    elif len(split_rt) == 2:
        runtime = (split_rt["valid"] + split_rt["test"]) / 2
    elif "valid" in split_rt:
        runtime = split_rt["valid"]
        notes.append("no test split: runtime is the valid-split average alone")
    else:
        runtime = None
    return Entry(
        name=str(row["name"]),
        psnr={s: _opt_float(row.get(f"{s}_psnr")) for s in ("valid", "test")},
        runtime_ms=runtime,
        split_runtime_ms=split_rt,
        params_m=_opt_float(row.get("params")),
        flops_g=_opt_float(row.get("flops")),
        source=source,
        notes=notes,
    )


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def entries_from_run(data: dict[str, Any], source: str) -> list[Entry]:
    """Rows of an srbench ``results.json`` (schema ``srbench/1``), see the module docstring."""
    # Imported here: the schema's records import torch, and scoring text files must not.
    from srbench.results.schema import RunResult

    run = RunResult.from_dict(data, source=source)
    stat = "mean" if run.config.get("ntire_compat") else "median"
    ds = run.dataset.get("name", "?")
    entries = []
    for m in run.models:
        e = Entry(
            name=m.name,
            psnr={"valid": m.psnr_rgb if m.has_quality else None, "test": None},
            runtime_ms=getattr(m.runtime_ms, stat) if m.runtime_ms else None,
            params_m=m.params / 1e6 if m.params is not None else None,
            flops_g=m.flops / 1e9 if m.flops is not None else None,
            flops_undercount=bool(getattr(m, "flops_undercount", False)),
            flops_lower_bound_g=_g(getattr(m, "flops_lower_bound", None)),
            source=source,
            notes=[f"one split ({ds}); runtime = {stat} forward ms"],
            datasets={"valid": ds},
            measured_here=True,
        )
        runs = len((m.cell or {}).get("runs") or [])
        if runs > 1 and m.runtime_ms is not None:
            # A sweep row: runtime_ms summarises the runs' headline times (see execution/sweep.py).
            e.runtime_std_ms = m.runtime_ms.std
            e.notes[0] = (
                f"one split ({ds}); runtime = {stat} over {runs} runs of each run's {stat} forward ms"
            )
        if m.status == "error":
            e.error = f"error: {m.reason}"
        elif m.drifted:
            # A deployment backend whose output left PyTorch's tolerance is never ranked.
            a = m.backend_agreement
            e.error = (
                f"{m.backend} output drifts from PyTorch (max |diff| {a.max_abs_diff:.2e} > {a.tolerance:g})"
            )
        entries.append(e)
    return entries


def entries_from_challenge_run(data: dict[str, Any], source: str) -> list[Entry]:
    """Rows of an ``srbench run --protocol`` ``challenge.json`` (schema ``srbench/ntire-1``)."""
    entries = []
    for m in data.get("models", []):
        entries.append(
            Entry(
                name=m["name"],
                psnr={s: m.get("psnr", {}).get(s) for s in data.get("splits", ("valid", "test"))},
                runtime_ms=m.get("runtime_ms"),
                runtime_std_ms=_runs_std(m.get("runtime_spread_ms")),
                split_runtime_ms=m.get("split_runtime_ms", {}),
                params_m=_m(m.get("params")),
                flops_g=_g(m.get("flops")),
                flops_undercount=bool(m.get("flops_undercount")),
                flops_lower_bound_g=_g(m.get("flops_lower_bound")),
                source=source,
                error=m.get("error"),
                notes=list(m.get("notes", [])),
                datasets={s: str(d.get("name", "?")) for s, d in data.get("datasets", {}).items()},
                measured_here=True,
                edition=data.get("edition") if isinstance(data.get("edition"), str) else None,
            )
        )
    return entries


def _runs_std(spread: dict[str, Any] | None) -> float | None:
    # The spread is shown only when there were several runs to spread over.
    return spread.get("std") if spread and int(spread.get("n", 0)) > 1 else None


def _g(v: int | None) -> float | None:
    return None if v is None else v / 1e9


def _m(v: int | None) -> float | None:
    return None if v is None else v / 1e6


def load_entries(path: str | Path) -> list[Entry]:
    """Rows of one input (any format of the module docstring), detected from its content."""
    p = Path(path)
    if p.is_dir():
        for name in ("challenge.json", "results.json", "results.txt"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise SrbenchError(f"{p} holds no challenge.json, results.json or results.txt; pass one of them")
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise SrbenchError(f"{p} not found; pass a results.json, results.txt or run folder") from None
    except OSError as exc:
        raise SrbenchError(f"{p} is not readable ({exc.strerror or exc})") from None
    if p.suffix.lower() == ".txt" or not text.lstrip().startswith("{"):
        return parse_challenge_txt(text, str(p))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SrbenchError(f"{p} is not valid JSON ({exc})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema == CHALLENGE_SCHEMA:
        return entries_from_challenge_run(data, str(p))
    if isinstance(schema, str):
        return entries_from_run(data, str(p))
    if not isinstance(data, dict):
        raise SrbenchError(f"{p}: expected a JSON object")
    return parse_challenge_json(data, str(p))


def load_all(paths: list[str | Path]) -> list[Entry]:
    """Rows of every input; a name seen twice gets its file appended (``name [file]``)."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for path in paths:
        for e in load_entries(path):
            if e.name in seen:
                e.name = f"{e.name} [{path}]"
            seen.add(e.name)
            entries.append(e)
    if not entries:
        raise SrbenchError("the inputs hold no rows to score")
    return entries


def recorded_edition(entries: list[Entry], option: str | None = None) -> str | None:
    """The edition the inputs were run for (their challenge.json), to score them under.

    ``option`` (``--edition``'s value) wins when given. Otherwise: the one edition the inputs
    record; None when none records one (the newest edition is then used). Inputs recording
    different editions are a one-line :class:`SrbenchError` asking for ``--edition``.
    """
    found = sorted({e.edition for e in entries if e.edition})
    if option is not None:
        return option
    if len(found) > 1:
        raise SrbenchError(
            f"the inputs were run for different editions ({', '.join(found)}); pass --edition to score "
            "them under one"
        )
    return found[0] if found else None


# --------------------------------------------------------------------------- views


def _f(v: float | None, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _score(v: float | None) -> str:
    """A score for people: 4 decimals, or 4 significant digits in scientific notation from
    1e6 up (exp(2·X/X_base) explodes for a row far slower than the baseline, and 16-digit
    integers only stretch the table; the JSON keeps every digit)."""
    if v is not None and abs(v) >= 1e6:
        return f"{v:.4g}"
    return _f(v)


def _elig(r: ScoreRow) -> str:
    return {True: "yes", False: "no", None: "unchecked"}[r.eligible]


def _rank(r: ScoreRow, track: str) -> str:
    v = r.rank[track]
    return "—" if v is None else str(v)


def _flops_cell(r: ScoreRow) -> str:
    return _score(r.score_flops) + (" ⚠" if r.flops_undercount else "")


def caption(ranking: Ranking) -> str:
    """One line naming the edition, weights and where the baseline came from."""
    e, b = ranking.edition, ranking.baseline
    w = e.weights
    gates = ", ".join(f"{s} ≥ {g:.2f} dB" for s, g in e.gates.items())
    return (
        f"{e.title}: Score_Final = {w[0]}·Score_Runtime + {w[1]}·Score_FLOPs + {w[2]}·Score_Params, "
        f"Score_X = exp(2·X/X_base); gates (PSNR-RGB) {gates}. Baseline {b.name} from the {b.source}: "
        f"{b.runtime_ms:.4g} ms, {b.flops_g:.4g} G FLOPs, {b.params_m:.4g} M params."
    )


SCORE_COLUMNS = [
    "Rank",
    "Model",
    "Eligible",
    "Val PSNR",
    "Test PSNR",
    "Runtime [ms]",
    "Params [M]",
    "FLOPs [G]",
    "Score_Runtime",
    "Score_FLOPs",
    "Score_Params",
    "Score_Final",
    "Rank RT/FL/PA",
]


def _cells(r: ScoreRow) -> list[str]:
    return [
        _rank(r, "final"),
        r.name + (" (baseline)" if r.is_baseline else ""),
        _elig(r),
        _f(r.psnr.get("valid"), 3),
        _f(r.psnr.get("test"), 3),
        _f(r.runtime_ms, 3) + (f" ± {r.runtime_std_ms:.3f}" if r.runtime_std_ms is not None else ""),
        _f(r.params_m, 4),
        _f(r.flops_g, 4),
        _score(r.score_runtime),
        _flops_cell(r),
        _score(r.score_params),
        _score(r.score_final),
        "/".join(_rank(r, t) for t in ("runtime", "flops", "params")),
    ]


def footnotes(ranking: Ranking) -> list[str]:
    """The ranking's caveats, why each row is not eligible (or unchecked), and flagged FLOPs."""
    out = list(ranking.warnings)
    for r in ranking.rows:
        out.extend(f"{r.name}: {w}" for w in r.why_not)
        out.extend(f"{r.name}: {n}" for n in r.notes if "undercount" in n)
    return out


#: The console's narrow-width order for :data:`SCORE_COLUMNS` (higher stays longer; the
#: rank and model are always shown; the rest moves to a continuation table).
_KEEP = {"Eligible": 9, "Score_Final": 12, "Val PSNR": 11, "Runtime [ms]": 10}


def rich_tables(ranking: Ranking, width: int | None = None) -> list[Any]:
    """The ranking as rich tables fitting ``width`` columns (no cell shortened): the rank and
    model lead every table; the scores that do not fit move to a continuation table."""
    names = [c for c in SCORE_COLUMNS if c not in ("Rank", "Model")]
    # Model first (the key repeated in each table), then the rank, then the rest.
    columns = [Column("Model"), Column("Rank", "right")]
    columns += [
        Column(c, "left" if c == "Eligible" else "right", keep=_KEEP.get(c, len(names) - i))
        for i, c in enumerate(names)
    ]
    order = [SCORE_COLUMNS.index("Model"), SCORE_COLUMNS.index("Rank")]
    order += [SCORE_COLUMNS.index(c) for c in names]
    cells = [[_cells(r)[i] for i in order] for r in ranking.rows]
    styles = ["dim" if r.eligible is False else None for r in ranking.rows]
    title = f"{ranking.edition.title} score"
    return fit_tables(title, columns, cells, width, caption=caption(ranking), styles=styles)


def markdown(ranking: Ranking) -> str:
    """The ranking as a Markdown table with its caption and footnotes."""
    lines = [f"**{caption(ranking)}**", "", "| " + " | ".join(SCORE_COLUMNS) + " |"]
    lines.append("|" + "---|" * len(SCORE_COLUMNS))
    lines.extend("| " + " | ".join(_cells(r)) + " |" for r in ranking.rows)
    notes = footnotes(ranking)
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = [
    "model",
    "eligible",
    "why_not",
    "valid_psnr_db",
    "test_psnr_db",
    "runtime_ms",
    "params_m",
    "flops_g",
    "flops_undercount",
    "score_runtime",
    "score_flops",
    "score_params",
    "score_final",
    "rank_runtime",
    "rank_flops",
    "rank_params",
    "rank_final",
    "is_baseline",
]


def csv_text(ranking: Ranking) -> str:
    """One CSV row per model, full precision."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in ranking.rows:
        w.writerow(
            {
                "model": r.name,
                "eligible": _elig(r),
                "why_not": "; ".join(r.why_not),
                "valid_psnr_db": _c(r.psnr.get("valid")),
                "test_psnr_db": _c(r.psnr.get("test")),
                "runtime_ms": _c(r.runtime_ms),
                "params_m": _c(r.params_m),
                "flops_g": _c(r.flops_g),
                "flops_undercount": str(r.flops_undercount).lower(),
                "score_runtime": _c(r.score_runtime),
                "score_flops": _c(r.score_flops),
                "score_params": _c(r.score_params),
                "score_final": _c(r.score_final),
                **{f"rank_{t}": _c(r.rank[t]) for t in TRACKS},
                "is_baseline": str(r.is_baseline).lower(),
            }
        )
    return buf.getvalue()


def _c(v: float | int | None) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_ranking(ranking: Ranking, out_dir: Path) -> dict[str, Path]:
    """Write ``score.json``, ``score.md`` and ``score.csv`` atomically into ``out_dir``."""

    out_dir = Path(out_dir)
    paths = {"json": out_dir / "score.json", "md": out_dir / "score.md", "csv": out_dir / "score.csv"}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(paths["json"], json.dumps(ranking.to_dict(), indent=2) + "\n")
        atomic_write_text(paths["md"], markdown(ranking))
        atomic_write_text(paths["csv"], csv_text(ranking))
    except OSError as exc:
        raise SrbenchError(
            f"cannot write the score to {out_dir} ({exc.strerror or exc}); choose --output"
        ) from None
    return paths
