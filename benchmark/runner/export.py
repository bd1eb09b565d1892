"""``srbench export``: write a model's deployed form in a deployment format.

Formats are dispatched through :data:`FORMATS` (format name → writer), so a new target
(e.g. a browser bundle) is one more entry. Every writer receives the built, strictly loaded
model (:func:`load_for_export`) and returns an :class:`ExportResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from srbench.backends.browser.bundle import WebConfig, write_web_bundle
from srbench.backends.browser.ortweb import find_ort_web
from srbench.backends.onnx_export import DEFAULT_OPSET, INPUT_NAME, ExportMetadata, export_onnx, write_onnx
from srbench.backends.onnxruntime.precision import load_calibration, make_variant
from srbench.backends.verify import verify_against_torch
from srbench.core.errors import SrbenchError
from srbench.core.extras import require
from srbench.models.registry import ModelEntry
from srbench.models.specs import ModelSpec
from srbench.runner.building import build_model
from srbench.runner.upscale import resolve_spec

if TYPE_CHECKING:
    from srbench.backends.onnx_export import ExportMetadata

#: The end of an export failure from ``srbench export`` (whose options cannot avoid it).
_EXPORT_ADVICE = "such a model cannot be deployed as ONNX; srbench run --backend torch measures it in PyTorch"


@dataclass
class ExportRequest:
    """What to export: the model (built and loaded), where, and how."""

    spec: ModelSpec
    entry: ModelEntry
    model: nn.Module
    scale: int
    weights_sha256: str
    output: Path
    dtype: str = "fp32"
    opset: int | None = None
    #: ``--format web``: the ONNX Runtime Web provider the page uses, and whether to replace
    #: the folder's files.
    browser_provider: str = "wasm"
    overwrite: bool = False
    #: ``--precision``: ``fp32`` or an ONNX Runtime variant (``fp16``, ``int8``), and for int8
    #: the calibration set (``--calibration``; None: the default set).
    precision: str = "fp32"
    calibration: str | None = None

    @property
    def opset_used(self) -> int:
        """``opset``, or the exporter's default when none was asked for."""

        return self.opset or DEFAULT_OPSET

    def metadata(self) -> ExportMetadata:
        """What the ONNX file records about the model (an ``ExportMetadata``)."""

        return ExportMetadata(
            model=self.spec.name,
            arch=self.entry.name,
            scale=self.scale,
            input_range=self.entry.input_range,
            weights_sha256=self.weights_sha256,
            dtype=self.dtype,
        )

    def onnx_bytes(self) -> bytes:
        """The exported file's bytes (:func:`~srbench.backends.onnx_export.export_onnx`)."""

        return export_onnx(self.model, self.metadata(), opset=self.opset_used, advice=_EXPORT_ADVICE)


@dataclass
class ExportResult:
    """What was written: the file, its size in bytes, and lines to show the user."""

    path: Path
    size_bytes: int
    seconds: float
    lines: list[str] = field(default_factory=list)


ExportWriter = Callable[[ExportRequest], ExportResult]


@dataclass(frozen=True)
class ExportFormat:
    """A ``--format``: its writer and the optional packages it needs (checked up front)."""

    write: ExportWriter
    requires: tuple[str, ...] = ()
    purpose: str = "export"

    def check_installed(self) -> None:
        """One-line SrbenchError naming the extra when a required package is missing."""

        for module in self.requires:
            require(module, purpose=self.purpose)


def load_for_export(
    model: str,
    *,
    scale: int,
    weights: str | None,
    offline: bool,
    model_args: dict[str, dict] | None = None,
    input_ranges: dict[str, float] | None = None,
    weights_keys: dict[str, str] | None = None,
) -> tuple[ModelSpec, ModelEntry, nn.Module, str]:
    """``(spec, entry, model, weights_sha256)`` for ``--model``; refuses random weights.

    ``weights_sha256`` is "" for a parameter-free model (``bicubic``). ``model_args`` and
    ``input_ranges`` are ``--model-args``/``--input-range`` (user code, see specs.py);
    ``weights_keys`` is ``--weights-key`` (the checkpoint key to load).
    """
    from dataclasses import replace

    spec = resolve_spec(
        model, model_args=model_args, input_ranges=input_ranges, scale=scale, weights_keys=weights_keys
    )
    if weights is not None:
        if not Path(weights).is_file():
            raise SrbenchError(f"--weights {weights}: file not found")
        # replace() keeps the rest of the spec (a user file's class, its arguments).
        spec = replace(spec, weights_path=Path(weights))
    entry, loaded = build_model(spec, scale=scale, offline=offline)
    has_params = any(p.numel() > 0 for p in loaded.model.parameters())
    if loaded.weights is None and has_params:
        raise SrbenchError(
            f"no x{scale} weights for model '{spec.name}' ({loaded.reason}); pass --weights PATH "
            "(exporting random weights is meaningless)"
        )
    return spec, entry, loaded.model, loaded.weights.sha256 if loaded.weights else ""


def export_onnx_file(req: ExportRequest) -> ExportResult:
    """Write ``req``'s model as one ONNX file and check it against PyTorch on a random input."""

    meta, opset = req.metadata(), req.opset_used
    t0 = time.perf_counter()
    data = req.onnx_bytes()
    if req.precision != "fp32":
        return _export_variant(req, data, t0)
    write_onnx(req.output, data)
    seconds = time.perf_counter() - t0
    lines = [
        f"opset {opset}, input 'input' 1x3xHxW {req.dtype} on [0, {meta.input_range:g}], "
        f"output x{req.scale}, weights sha256 {req.weights_sha256[:12] or '(none)'}"
    ]
    if req.dtype == "fp32":
        diff = verify_against_torch(req.output, req.model, meta)
        lines.append(
            f"onnxruntime vs PyTorch on a random 1x3x64x64 input: max |diff| {diff:.2e} "
            f"(of the output range {meta.input_range:g})"
        )
    else:
        lines.append("fp16 file: not run here (the CPU provider runs fp32 only)")
    return ExportResult(req.output, len(data), seconds, lines)


def _export_variant(req: ExportRequest, fp32: bytes, t0: float) -> ExportResult:
    """``--precision fp16|int8``: the variant of the checked fp32 export (see
    :mod:`srbench.backends.onnxruntime.precision`), made in a temporary folder, then written."""
    import hashlib
    import tempfile

    meta = req.metadata()
    with tempfile.TemporaryDirectory(prefix="srbench-export-") as tmp:
        base = Path(tmp) / f"{req.spec.name}.onnx"
        base.write_bytes(fp32)
        diff = verify_against_torch(base, req.model, meta)
        calibration = load_calibration(req.calibration, req.scale) if req.precision == "int8" else None
        path, _sha, _cached, record = make_variant(
            base,
            hashlib.sha256(fp32).hexdigest(),
            req.precision,
            cache_dir=Path(tmp),
            input_name=INPUT_NAME,
            input_range=req.entry.input_range,
            calibration=calibration,
        )
        data = path.read_bytes()
    write_onnx(req.output, data)
    lines = [
        f"fp32 export checked first: onnxruntime vs PyTorch max |diff| {diff:.2e}",
        f"{req.precision} variant: {record.method}; input and output stay fp32",
        f"{len(data):,} bytes, {len(data) / len(fp32):.2f}x the fp32 file",
    ]
    if calibration is not None:
        c = calibration.describe()
        lines.append(f"calibrated on {c['name']} ({c['size']} images, sha256 {c['sha256'][:12]})")
    return ExportResult(req.output, len(data), time.perf_counter() - t0, lines)


def export_web_folder(req: ExportRequest) -> ExportResult:
    """Write the web bundle (:mod:`srbench.backends.browser.bundle`) into folder ``req.output``: the ONNX
    export (checked against PyTorch as for ``--format onnx``), the page and ORT-Web's files."""
    import tempfile

    find_ort_web(req.browser_provider)  # missing ORT-Web: one line before the slow export
    meta, opset = req.metadata(), req.opset_used
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="srbench-web-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        write_onnx(onnx_path, req.onnx_bytes())
        diff = verify_against_torch(onnx_path, req.model, meta)
        config = WebConfig(
            name=req.spec.name,
            arch=req.entry.name,
            scale=req.scale,
            input_range=req.entry.input_range,
            provider=req.browser_provider,
        )
        files = write_web_bundle(onnx_path, req.output, config, overwrite=req.overwrite)
    seconds = time.perf_counter() - t0
    lines = [
        f"{len(files)} files: index.html, model.onnx (opset {opset}), ORT-Web for {req.browser_provider}",
        f"onnxruntime vs PyTorch on a random 1x3x64x64 input: max |diff| {diff:.2e}",
        f"open it: srbench browser serve {req.output}  (then the printed http://127.0.0.1:PORT/)",
    ]
    return ExportResult(req.output, sum(f.stat().st_size for f in files), seconds, lines)


#: ``--format`` values and how to write them.
FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat(export_onnx_file, ("onnx", "onnxscript", "onnxruntime"), "ONNX export"),
    "web": ExportFormat(export_web_folder, ("onnx", "onnxscript", "onnxruntime"), "web export"),
}
