"""Result records and the ``srbench/1`` results files (JSON, CSV, Markdown).

The JSON file is the public contract (documented in docs/results-schema.md): ``schema``,
``environment``, ``config``, ``config_hash``, ``dataset`` and ``models``. CSV and Markdown
are views of it. Every file is written atomically by :mod:`srbench.core.files` (temporary file in the same
folder, then ``os.replace``; mode 0o666 minus the umask), so a reader never sees a
half-written file and a crash keeps the previous complete version.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srbench.backends.records import BackendAgreement
from srbench.core.errors import SrbenchError
from srbench.core.files import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from srbench.measure.timing import RuntimeStats
from srbench.results.config import config_hash
from srbench.results.stats import Interval

SCHEMA = "srbench/1"

#: Model statuses: measured with trained weights; measured without (efficiency only);
#: failed (``reason`` says why; other models are unaffected).
STATUS_OK = "ok"
STATUS_NO_WEIGHTS = "no-weights"
STATUS_ERROR = "error"


@dataclass
class ImageResult:
    """One image of one model. Times in ms; PSNR in dB; ``None`` when not meaningful.

    ``sr_sha256`` fingerprints the model's quantised output: the SHA-256 of the SR image as
    uint8 H×W×3 RGB bytes in row-major order (a one-grey-level change on one pixel changes it).
    """

    name: str
    runtime_ms: float | None
    psnr_y: float | None = None
    ssim_y: float | None = None
    psnr_rgb: float | None = None
    tiled: bool = False
    sr_sha256: str | None = None
    #: GPU energy of one forward in joules (NVML counter; mean over --repeat); None on CPU.
    energy_j: float | None = None
    #: Every timed forward (ms), in order, when more than one ran (``--repeat R`` > 1, or a
    #: disturbed forward measured again); ``runtime_ms`` is the median of the undisturbed ones.
    runtime_samples_ms: list[float] | None = None
    #: Per timed forward, in the order of the samples: whether it was disturbed (README
    #: "Runtime": CPU share below 0.9, or NVML saw another process / throttling on CUDA).
    #: None where not measured (the browser backend; results written before it).
    runtime_disturbed: list[bool] | None = None
    #: Per timed CPU forward: process CPU time / (wall × threads), and involuntary context
    #: switches of the process during it.
    runtime_cpu_share: list[float | None] | None = None
    runtime_nivcsw: list[int | None] | None = None


@dataclass
class WeightsInfo:
    """The checkpoint a model ran with: file name, sha256 (hex) and where it was found.

    ``key`` is the checkpoint key the weights were loaded from, ``/``-separated when nested
    (``params_ema``, ``state_dict_ema``, ``model/ema``; see
    :func:`srbench.models.loading.unwrap_state_dict`); None when the file is a bare state
    dict (and in results written before srbench recorded it).
    """

    file: str
    sha256: str
    source: str
    key: str | None = None


@dataclass
class ModelResult:
    """Everything measured for one model (each field's definition: docs/metrics.md)."""

    name: str
    arch: str
    scale: int
    status: str
    reason: str | None = None
    weights: WeightsInfo | None = None
    input_range: float | None = None
    params: int | None = None
    flops: int | None = None
    activations: int | None = None
    convs: int | None = None
    complexity_input: list[int] | None = None
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    flops_dispatch: int | None = None
    functional_convs: int | None = None
    #: Conv MACs seen by module hooks (a floor for any honest count); see measure/counting.py.
    flops_lower_bound: int | None = None
    #: True when ``flops`` (fvcore) is below ``flops_lower_bound``; the notes say by how much.
    flops_undercount: bool = False
    #: thop's MAC count (module hooks; functional calls and activations count 0).
    flops_thop: int | None = None
    #: The new-shape warm-up probe (measure/shapeprobe.py): shapes, first_ms, seen_ms, flagged.
    shape_probe: dict[str, Any] | None = None
    psnr_y: float | None = None
    ssim_y: float | None = None
    psnr_rgb: float | None = None
    runtime_ms: RuntimeStats | None = None
    #: 95 % percentile-bootstrap intervals (:mod:`srbench.results.stats`, docs/statistics.md)
    #: keyed ``runtime_ms`` (the headline statistic: median, or mean under --ntire-compat),
    #: ``psnr_y``, ``ssim_y``, ``psnr_rgb``; a figure with fewer than two images (or repeats) has
    #: none. Absent from files written before srbench computed them (they still load).
    intervals: dict[str, Interval] | None = None
    #: The model's very first forward call (cold: first-call costs, compilation with
    #: --compile), ms; untimed warm-up unless --warmup 0 (then it is the first image's time).
    first_forward_ms: float | None = None
    #: Timed forwards that were disturbed and, of all timed forwards, how many ran (retries
    #: included); None where not measured. ``disturbed_images``: images whose figure still
    #: comes from disturbed forwards (every try within the budget was disturbed).
    disturbed_forwards: int | None = None
    #: CPU time per thread of the forward (ms; CPU share × wall time, i.e. process CPU time /
    #: threads): the median over images of each image's median over its forwards. A
    #: preemption adds wall time, not CPU time, so on a loaded machine this stays near the
    #: idle machine's wall time where ``runtime_ms`` does not (docs/runtime.md). CPU only.
    cpu_time_ms: float | None = None
    timed_forwards: int | None = None
    disturbed_images: int | None = None
    #: ``--runs N`` (N > 1): each run's median time (ms), the between-run spread and the
    #: within-run interval it is compared with (:func:`srbench.measure.spread.run_spread`).
    runs: dict[str, Any] | None = None
    #: Untimed warm-up forwards the model ran (``--warmup`` in all, at least one per LR shape,
    #: the CPU memory pass included); None in results written before srbench recorded it.
    warmup_calls: int | None = None
    memory_mb: float | None = None
    memory_kind: str | None = None
    #: Mean over images of ``ImageResult.energy_j`` (joules); None without an NVML counter.
    energy_j_per_image: float | None = None
    images: list[ImageResult] = field(default_factory=list)
    phases_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Sweep rows only (``srbench sweep``): the grid cell (model, data, backend, dtype), the
    #: node and device that measured it and, per run, its key, node, device and headline time.
    #: Absent from the JSON of ``srbench run`` results.
    cell: dict[str, Any] | None = None
    #: What ran the network: ``torch`` or ``onnxruntime`` (the row name says so when not torch).
    backend: str = "torch"
    #: Where it ran: the torch device (``cpu``, ``cuda:0``) or the ONNX Runtime execution
    #: provider (``CPUExecutionProvider``, ...).
    provider: str | None = None
    #: Float type of the forwards (``fp32``, ``fp16``, ``bf16``).
    dtype: str | None = None
    #: Deployment backends: the exported file run (``format``, ``file``, ``sha256``, ``opset``,
    #: ``cached``: whether the content-hashed cache already held it). Absent for torch rows.
    deployed: dict[str, Any] | None = None
    #: Deployment backends: agreement with PyTorch (:class:`BackendAgreement`). Absent for torch.
    backend_agreement: BackendAgreement | None = None
    #: The browser backend: browser name and version, ONNX Runtime Web version, the provider
    #: requested and the one that actually ran, nodes per provider, the fallback (if any),
    #: WASM threads and cross-origin isolation. Absent for other backends.
    backend_info: dict[str, Any] | None = None
    #: What the row was measured from, by content: ``weights_sha256``, ``code_sha256``,
    #: ``data_sha256`` (:mod:`srbench.runner.identity`); ``--resume`` reuses the row only when
    #: all three are unchanged. None in results written before srbench recorded it.
    identity: dict[str, Any] | None = None
    #: A precision variant's row (``--precision fp16|int8``): its cost against the fp32 row of
    #: the same model in the same run (``reference``, ``images`` compared, ``psnr_y_delta`` and
    #: ``ssim_y_delta`` = mean over those images of variant − fp32, ``speed_ratio`` = fp32 median
    #: time / variant median time, ``size_ratio`` = variant file bytes / fp32 file bytes).
    precision_cost: dict[str, Any] | None = None
    #: True when the model's own code asked for CUDA while srbench built it on a machine
    #: without a GPU, and srbench sent it to the CPU (srbench.models.device_shim). Absent
    #: otherwise.
    device_shim: bool | None = None

    @property
    def drifted(self) -> bool:
        """True when a deployment backend's output is outside its tolerance of PyTorch's."""
        return self.backend_agreement is not None and not self.backend_agreement.within_tolerance

    @property
    def has_quality(self) -> bool:
        """True when the quality columns mean something (trained weights, measured, and, for a
        deployment backend, agreeing with PyTorch within tolerance)."""
        return self.status == STATUS_OK and self.psnr_y is not None and not self.drifted

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``srbench/1``)."""
        d = asdict(self)
        d["runtime_ms"] = self.runtime_ms.to_dict() if self.runtime_ms else None
        for key in (
            "cell",
            "deployed",
            "backend_agreement",
            "intervals",
            "precision_cost",
            "runs",
            "device_shim",
        ):
            if d[key] is None:
                del d[key]  # torch run results keep their srbench/1 shape
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelResult:
        """Inverse of :meth:`to_dict` (unknown keys are ignored, for forward compatibility)."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: _restore_float(v) for k, v in d.items() if k in known}
        if kwargs.get("weights"):
            kwargs["weights"] = WeightsInfo(**kwargs["weights"])
        if kwargs.get("runtime_ms"):
            kwargs["runtime_ms"] = RuntimeStats(**kwargs["runtime_ms"])
        if kwargs.get("intervals"):
            kwargs["intervals"] = {
                k: Interval.from_dict({f: _restore_float(v) for f, v in iv.items()})
                for k, iv in kwargs["intervals"].items()
            }
        if kwargs.get("backend_agreement"):
            agreement = {k: _restore_float(v) for k, v in kwargs["backend_agreement"].items()}
            kwargs["backend_agreement"] = BackendAgreement(**agreement)
        image_fields = set(ImageResult.__dataclass_fields__)
        kwargs["images"] = [
            ImageResult(**{k: _restore_float(v) for k, v in i.items() if k in image_fields})
            for i in kwargs.get("images") or []
        ]
        return cls(**kwargs)


@dataclass
class RunResult:
    """A whole run: environment, config, dataset and one :class:`ModelResult` per model."""

    environment: dict[str, Any]
    config: dict[str, Any]
    dataset: dict[str, Any]
    models: list[ModelResult] = field(default_factory=list)
    created: str = ""
    #: Run-level warnings (e.g. the machine was busy: see ``reporting.environment.busy_notes``).
    notes: list[str] = field(default_factory=list)

    @property
    def config_hash(self) -> str:
        """sha256 (first 16 hex digits) of the hashed part of ``config`` and of ``dataset``.

        The hashed part is the ``protocol`` and ``data`` sections of the run configuration
        (:func:`srbench.results.config.config_hash`). Two runs with the same hash measured
        models under the same protocol on the same data, so ``--resume`` may reuse finished models.
        """

        return config_hash(self.config, self.dataset)

    def to_dict(self) -> dict[str, Any]:
        """The ``srbench/1`` JSON document."""
        return {
            "schema": SCHEMA,
            "created": self.created,
            "environment": self.environment,
            "config": self.config,
            "config_hash": self.config_hash,
            "dataset": self.dataset,
            "models": [m.to_dict() for m in self.models],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "results") -> RunResult:
        """Parse a ``srbench/1`` document; a different schema is a one-line error."""
        if d.get("schema") != SCHEMA:
            raise SrbenchError(
                f"{source} is not an srbench results file (schema {d.get('schema')!r}, "
                f"expected {SCHEMA!r}); pass a results.json written by 'srbench run'"
            )
        return cls(
            environment=d.get("environment", {}),
            config=d.get("config", {}),
            dataset=d.get("dataset", {}),
            models=[ModelResult.from_dict(m) for m in d.get("models", [])],
            created=d.get("created", ""),
            notes=list(d.get("notes") or []),
        )

    def model(self, name: str) -> ModelResult | None:
        """The result for model ``name``, or None."""
        return next((m for m in self.models if m.name == name), None)

    def upsert(self, result: ModelResult) -> None:
        """Add ``result``, replacing an earlier result of the same model name."""
        self.models = [m for m in self.models if m.name != result.name] + [result]


def check_label(label: str | None) -> str | None:
    """``--label``: a short one-line name (it heads tables and tags every merged row)."""
    if label is None:
        return None
    text = label.strip()
    if not text or len(text) > 60 or any(not ch.isprintable() for ch in text):
        raise SrbenchError(
            f"--label {label!r} must be 1 to 60 printable characters (e.g. --label laptop-cpu)"
        )
    return text


def load_results(path: str | Path) -> RunResult:
    """Read ``results.json`` (or a run folder holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise SrbenchError(f"{p} not found; pass a run folder or its results.json") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SrbenchError(
            f"{p} is not readable JSON ({exc}); pass a results.json from 'srbench run'"
        ) from None
    return RunResult.from_dict(data, source=str(p))


# --------------------------------------------------------------------------- writing


def _json_default(obj: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _restore_float(value: Any) -> Any:
    """Inverse of :func:`json_safe` for one value: ``"inf"``/``"-inf"``/``"nan"`` → float."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float as its string (``"inf"``, ``"-inf"``, ``"nan"``), recursively
    through dicts and lists: JSON has no inf/nan (PSNR of identical images is +inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def results_json(run: RunResult) -> str:
    """The JSON text of ``run`` (indent 2, trailing newline)."""
    return json.dumps(json_safe(run.to_dict()), indent=2, default=_json_default) + "\n"


#: CSV columns, one row per model (units in the names).
CSV_COLUMNS = [
    "model",
    "status",
    "psnr_y_db",
    "ssim_y",
    "psnr_rgb_db",
    "time_median_ms",
    "time_mean_ms",
    "time_std_ms",
    "time_min_ms",
    "time_max_ms",
    "time_p90_ms",
    "time_p99_ms",
    "time_cv",
    "disturbed_forwards",
    "timed_forwards",
    "first_forward_ms",
    "params",
    "flops",
    "activations",
    "memory_mb",
    "memory_kind",
    "convs",
    "weights_file",
    "weights_sha256",
    "reason",
    "backend",
    "provider",
    "dtype",
    "max_abs_diff_vs_torch",
    "psnr_vs_torch_db",
]


def results_csv(run: RunResult) -> str:
    """One CSV row per model; exact integers, full-precision floats, empty when absent."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for m in run.models:
        rt = m.runtime_ms
        agree = m.backend_agreement
        writer.writerow(
            {
                "model": m.name,
                "status": m.status,
                "psnr_y_db": _csv(m.psnr_y),
                "ssim_y": _csv(m.ssim_y),
                "psnr_rgb_db": _csv(m.psnr_rgb),
                "time_median_ms": _csv(rt.median if rt else None),
                "time_mean_ms": _csv(rt.mean if rt else None),
                "time_std_ms": _csv(rt.std if rt else None),
                "time_min_ms": _csv(rt.min if rt else None),
                "time_max_ms": _csv(rt.max if rt else None),
                "time_p90_ms": _csv(rt.p90 if rt else None),
                "time_p99_ms": _csv(rt.p99 if rt else None),
                "time_cv": _csv(rt.cv if rt else None),
                "disturbed_forwards": _csv(m.disturbed_forwards),
                "timed_forwards": _csv(m.timed_forwards),
                "first_forward_ms": _csv(m.first_forward_ms),
                "params": _csv(m.params),
                "flops": _csv(m.flops),
                "activations": _csv(m.activations),
                "memory_mb": _csv(m.memory_mb),
                "memory_kind": m.memory_kind or "",
                "convs": _csv(m.convs),
                "weights_file": m.weights.file if m.weights else "",
                "weights_sha256": m.weights.sha256 if m.weights else "",
                "reason": m.reason or "",
                "backend": m.backend,
                "provider": m.provider or "",
                "dtype": m.dtype or "",
                "max_abs_diff_vs_torch": _csv(agree.max_abs_diff if agree else None),
                "psnr_vs_torch_db": _csv(agree.psnr_vs_torch_db if agree else None),
            }
        )
    return buf.getvalue()


#: ``images.csv`` columns, one row per model and image (units in the names). The figures are
#: those of ``results.json``'s ``models[].images[]``; the quality ones are empty for a model
#: without trained weights (as in every view: random-init PSNR means nothing).
IMAGES_CSV_COLUMNS = ["model", "image", "psnr_y_db", "ssim_y", "psnr_rgb_db", "time_ms", "tiled"]


def images_csv(run: RunResult) -> str:
    """One CSV row per model and image: PSNR-Y (dB), SSIM-Y, PSNR-RGB (dB), the image's
    timed forward (ms; the median of ``--repeat`` forwards) and whether it was tiled.
    Full-precision floats, empty when absent; definitions in docs/metrics.md."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=IMAGES_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for m in run.models:
        for im in m.images:
            quality = m.has_quality
            writer.writerow(
                {
                    "model": m.name,
                    "image": im.name,
                    "psnr_y_db": _csv(im.psnr_y if quality else None),
                    "ssim_y": _csv(im.ssim_y if quality else None),
                    "psnr_rgb_db": _csv(im.psnr_rgb if quality else None),
                    "time_ms": _csv(im.runtime_ms),
                    "tiled": str(im.tiled).lower(),
                }
            )
    return buf.getvalue()


def _csv(v: float | int | None) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)
