"""The NTIRE Efficient SR challenge editions as data: one :class:`Edition` per year.

Everything ``srbench score`` and ``srbench run --protocol ntireYYYY`` need to know about a
challenge year lives here and nowhere else: the baseline model (its registry name and its
row name in the challenge's own tables), the score weights, the PSNR gates, the splits and
their on-disk layout, the number of whole runs the organisers average, and the baseline's
published figures (used when the input holds no baseline row).

Score (lower is better; the baseline scores ``exp(2) = 7.3891`` on every term)::

    Score_X     = exp(2 * X / X_baseline)        for X in Runtime (ms), FLOPs (G), Params (M)
    Score_Final = w_runtime * Score_Runtime + w_flops * Score_FLOPs + w_params * Score_Params

Eligibility: PSNR-RGB (border = 4, uint8, mean over images) on each gated split is at least
that split's gate. Runtime is the mean of the per-split average forward times.

To add next year: append an :class:`Edition` to :data:`EDITIONS` (name ``ntireYYYY``), with
the figures from that year's challenge repository README and final results table, and
state their source in ``source``. Nothing else needs to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from srbench.core.errors import SrbenchError


@dataclass(frozen=True)
class PublishedBaseline:
    """The baseline's published figures: PSNR-RGB per split (dB), runtime (ms), params (M),
    FLOPs (G, fvcore MACs at 1x3x256x256), the GPU the runtime was taken on, and where the
    figures come from."""

    psnr: dict[str, float]
    runtime_ms: float
    params_m: float
    flops_g: float
    gpu: str
    source: str
    #: Per-split average runtimes (ms) when the organisers published them.
    split_runtime_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Edition:
    """One challenge year (see the module docstring for the formulas)."""

    name: str
    title: str
    #: srbench registry name of the baseline model (what ``run --protocol`` measures).
    baseline_model: str
    #: The baseline's row name in the challenge's results.json/results.txt (team id 00).
    baseline_row: str
    #: Score weights (runtime, flops, params); they sum to 1.
    weights: tuple[float, float, float]
    #: PSNR-RGB gates per split (dB): a row below any gate is not eligible.
    gates: dict[str, float]
    #: Splits in the order the challenge runs them.
    splits: tuple[str, ...]
    #: Folder names under the data root, per split: (HR folder, LR folder); LR files are
    #: ``<HR stem>x4.png``.
    layout: dict[str, tuple[str, str]]
    scale: int
    #: Whole-script runs the organisers average for the published figures.
    runs: int
    baseline: PublishedBaseline
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _ntire_layout() -> dict[str, tuple[str, str]]:
    return {
        "valid": ("DIV2K_LSDIR_valid_HR", "DIV2K_LSDIR_valid_LR"),
        "test": ("DIV2K_LSDIR_test_HR", "DIV2K_LSDIR_test_LR"),
    }


#: The editions srbench knows, by name.
EDITIONS: dict[str, Edition] = {
    e.name: e
    for e in (
        Edition(
            name="ntire2024",
            title="NTIRE 2024 Efficient SR",
            baseline_model="rlfn",
            baseline_row="00_RLFN_baseline",
            weights=(0.7, 0.15, 0.15),
            gates={"valid": 26.90, "test": 26.99},
            splits=("valid", "test"),
            layout=_ntire_layout(),
            scale=4,
            runs=5,
            baseline=PublishedBaseline(
                psnr={"valid": 26.96, "test": 27.07},
                runtime_ms=13.54,
                split_runtime_ms={"valid": 16.18, "test": 10.89},
                params_m=0.317,
                flops_g=19.67,
                gpu="NVIDIA RTX 3090",
                source="Amazingren/NTIRE2024_ESR README (mean of 5 runs)",
            ),
        ),
        Edition(
            name="ntire2025",
            title="NTIRE 2025 Efficient SR",
            baseline_model="efdn",
            baseline_row="00_EFDN_baseline",
            weights=(0.7, 0.15, 0.15),
            gates={"valid": 26.90, "test": 26.99},
            splits=("valid", "test"),
            layout=_ntire_layout(),
            scale=4,
            runs=5,
            baseline=PublishedBaseline(
                psnr={"valid": 26.93, "test": 27.01},
                runtime_ms=16.69,
                split_runtime_ms={"valid": 18.77, "test": 14.61},
                params_m=0.276,
                flops_g=16.70,
                gpu="NVIDIA RTX A6000",
                source="Amazingren/NTIRE2025_ESR README (mean of 5 runs)",
            ),
        ),
        Edition(
            name="ntire2026",
            title="NTIRE 2026 Efficient SR",
            baseline_model="span",
            baseline_row="00_SPAN",
            weights=(0.8, 0.1, 0.1),
            gates={"valid": 26.90, "test": 26.99},
            splits=("valid", "test"),
            layout=_ntire_layout(),
            scale=4,
            runs=5,
            baseline=PublishedBaseline(
                psnr={"valid": 26.94, "test": 27.01},
                runtime_ms=7.74,
                params_m=0.151,
                flops_g=9.83,
                gpu="NVIDIA RTX A6000",
                source="Amazingren/NTIRE2026_ESR final results table",
            ),
            note="the README at the challenge's start quoted 5.59 ms for the baseline; the final "
            "table 7.74 ms",
        ),
    )
}

#: The edition used when none is named (the newest).
DEFAULT_EDITION = max(EDITIONS)


def get_edition(name: str | None, option: str = "--edition") -> Edition:
    """The edition called ``name`` (``None``: the newest); unknown names are a one-line error
    naming ``option``."""
    key = (name or DEFAULT_EDITION).lower().replace("-", "").replace("_", "")
    if key not in EDITIONS:
        raise SrbenchError(f"{option} {name!r} is not known; use one of {', '.join(sorted(EDITIONS))}")
    return EDITIONS[key]
