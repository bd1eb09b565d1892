"""Writing a run's results files: ``results.json``, ``results.csv``, ``images.csv`` and
``results.md``, atomically (the one results writer: run, sweep and the challenge use it)."""

from __future__ import annotations

from pathlib import Path

from srbench.core.errors import SrbenchError
from srbench.core.files import atomic_write_text
from srbench.results.schema import RunResult, images_csv, results_csv, results_json
from srbench.results.tables import results_markdown


def write_results(run: RunResult, out_dir: Path) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv`` (one row per model), ``images.csv`` (one row per
    model and image) and ``results.md`` atomically into ``out_dir``; returns their paths
    (keys ``json``, ``csv``, ``images_csv``, ``md``). Raises SrbenchError when the folder is
    not writable."""
    out_dir = Path(out_dir)
    paths = {
        "json": out_dir / "results.json",
        "csv": out_dir / "results.csv",
        "images_csv": out_dir / "images.csv",
        "md": out_dir / "results.md",
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(paths["json"], results_json(run))
        atomic_write_text(paths["csv"], results_csv(run))
        atomic_write_text(paths["images_csv"], images_csv(run))
        atomic_write_text(paths["md"], results_markdown(run))
    except OSError as exc:
        raise SrbenchError(
            f"cannot write results to {out_dir} ({exc.strerror or exc}); "
            "choose a writable folder with --output"
        ) from None
    return paths
