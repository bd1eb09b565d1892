"""Building a model for a run: its architecture from the registry and its weights, strictly loaded."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from srbench.core.errors import SrbenchError
from srbench.models.loading import load_weights, read_checkpoint_file
from srbench.models.registry import ModelEntry, get_entry
from srbench.models.spandrel_adapter import PREFIX as SPANDREL_PREFIX
from srbench.models.spandrel_adapter import spandrel_entry
from srbench.models.specs import ModelSpec
from srbench.models.usercode import build_user_model
from srbench.models.weights import fetch_weights, missing_weights_reason, offline_mode, resolve_weights
from srbench.results.schema import WeightsInfo


@dataclass
class LoadedModel:
    """A built model; ``reason`` says why its quality is meaningless (None: meaningful)."""

    model: nn.Module
    weights: WeightsInfo | None
    reason: str | None


def build_architecture(spec: ModelSpec, scale: int) -> tuple[ModelEntry, nn.Module]:
    """``spec``'s untrained network at ``scale`` (eval mode) and the entry describing it.

    Registered models come from the registry (with ``spec.model_args`` as extra builder
    arguments); user code is imported in this process (once) and built by
    :func:`srbench.models.usercode.build_user_model`. ``spec.input_range`` overrides the
    entry's input range.
    """

    if spec.code is not None:
        return build_user_model(
            spec.code, name=spec.name, scale=scale, kwargs=spec.model_args, input_range=spec.input_range
        )
    if spec.arch.startswith(SPANDREL_PREFIX) and spec.weights_path is not None:
        spandrel_entry(spec.weights_path)  # dynamic entries are per process: re-register here
    entry = get_entry(spec.arch)
    try:
        model = entry.build(scale=scale, **spec.model_args)
    except TypeError as exc:
        if not spec.model_args:
            raise
        raise SrbenchError(
            f"--model-args {spec.name}: model '{entry.name}' rejected {dict(spec.model_args)} ({exc}); "
            "pass only its constructor's keyword arguments"
        ) from None
    if spec.input_range is not None:
        entry = replace(entry, input_range=spec.input_range)
    return entry, model


class OnnxFileModule(nn.Module):
    """Stands in for the PyTorch module of a row that is an ONNX file: the file runs on ONNX
    Runtime only, so any code path that would call a PyTorch network fails loudly here."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: object) -> object:
        raise SrbenchError(
            f"{self.path} is an ONNX file and this command runs PyTorch models; "
            f"measure the file with: srbench run --models {self.path}"
        )


def onnx_file_model(spec: ModelSpec) -> tuple[ModelEntry, LoadedModel]:
    """The entry and stand-in model of a row that is an ONNX file (``spec.onnx``): its
    "weights" are the file itself (name, sha256, source ``onnx file``)."""
    info = spec.onnx
    assert info is not None and spec.input_range is not None

    def no_builder(**_: object) -> nn.Module:
        raise SrbenchError(f"{info.path} is an ONNX file: it has no PyTorch architecture to build")

    entry = ModelEntry(
        name=spec.arch,
        builder=no_builder,
        scales=(info.scale,),
        input_range=spec.input_range,
        description=f"ONNX file {info.path.name}",
        origin="onnx",
    )
    weights = WeightsInfo(file=info.path.name, sha256=info.sha256, source="onnx file")
    return entry, LoadedModel(OnnxFileModule(str(info.path)).eval(), weights, None)


def build_model(spec: ModelSpec, *, scale: int, offline: bool = False) -> tuple[ModelEntry, LoadedModel]:
    """Build ``spec``'s architecture for ``scale`` and load its weights (strict); CPU, fp32, eval mode.

    Missing official weights are downloaded unless ``offline`` (or ``SRBENCH_OFFLINE``). An
    ONNX file's row gets :func:`onnx_file_model`.
    """
    if spec.onnx is not None:
        return onnx_file_model(spec)

    entry, model = build_architecture(spec, scale)
    if spec.weights_path is None and not any(True for _ in model.parameters()):
        # Nothing to train (bicubic): its output means something without any checkpoint.
        return entry, LoadedModel(model.eval(), None, None)
    found = resolve_weights(entry, scale, spec.weights_path)
    if found is None and entry.weights_for(scale) is not None and not offline_mode(offline):
        try:
            found = fetch_weights(entry, scale)
        except SrbenchError as exc:
            reason = f"official weights not on disk and the download failed ({exc}); efficiency figures only"
            return entry, LoadedModel(model.eval(), None, reason)
    if found is None:
        if not entry.has_trained_weights:
            reason = "no trained weights exist for this architecture; efficiency figures only"
        elif spec.code is not None:
            reason = f"no checkpoint given; pass --weights {spec.name}=PATH (efficiency figures only)"
        else:
            reason = missing_weights_reason(entry, scale, offline=offline_mode(offline), name=spec.name)
        return entry, LoadedModel(model.eval(), None, reason)
    checkpoint = read_checkpoint_file(found.path, key=spec.weights_key)
    load_weights(model, entry, checkpoint.state, source=str(found.path))
    info = WeightsInfo(file=found.path.name, sha256=found.sha256, source=found.source, key=checkpoint.key)
    return entry, LoadedModel(model.eval(), info, None)
