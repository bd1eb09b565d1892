"""Building a model for a run: its architecture from the registry and its weights, strictly loaded."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from srbench.core.errors import SrbenchError
from srbench.models.device_shim import cuda_to
from srbench.models.loading import load_weights, read_checkpoint, read_checkpoint_file
from srbench.models.registry import ModelEntry, get_entry
from srbench.models.spandrel_adapter import PREFIX as SPANDREL_PREFIX
from srbench.models.spandrel_adapter import spandrel_entry
from srbench.models.specs import ModelSpec
from srbench.models.usercode import NtireLoading, build_user_model
from srbench.models.weights import fetch_weights, missing_weights_reason, offline_mode, resolve_weights
from srbench.results.schema import WeightsInfo


@dataclass
class LoadedModel:
    """A built model; ``reason`` says why its quality is meaningless (None: meaningful)."""

    model: nn.Module
    weights: WeightsInfo | None
    reason: str | None
    #: True when the model's own code asked for CUDA while being built on a machine without
    #: it and srbench sent it to the CPU (:mod:`srbench.models.device_shim`).
    device_shim: bool = False
    #: What the row should say about how the model was loaded (non-strict loading, ...).
    notes: list[str] = field(default_factory=list)


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
    ONNX file's row gets :func:`onnx_file_model`. User code is built inside
    :func:`srbench.models.device_shim.cuda_to` (CUDA requests go to the CPU when there is no
    GPU; the result says so); an NTIRE submission is loaded and finished as its
    ``test_demo.py`` branch does (:func:`load_ntire`).
    """
    if spec.onnx is not None:
        return onnx_file_model(spec)
    if spec.code is None:
        return _build_and_load(spec, scale, offline)
    with cuda_to("cpu") as shim:
        entry, loaded = _build_and_load(spec, scale, offline)
    if shim.used:
        loaded.device_shim = True
        loaded.notes.append(
            "device_shim: the model's code asked for CUDA while being built; with no GPU here srbench "
            "sent it to the CPU (the challenge's script does the same once its device strings say cpu)"
        )
    return entry, loaded


def _build_and_load(spec: ModelSpec, scale: int, offline: bool) -> tuple[ModelEntry, LoadedModel]:

    entry, model = build_architecture(spec, scale)
    loading = spec.code.loading if spec.code is not None else None
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
        notes: list[str] = []
        if loading is not None:
            model = finish_ntire(model, loading)
        return entry, LoadedModel(model.eval(), None, reason, notes=notes)
    notes = []
    if loading is not None:
        notes = load_ntire(model, entry, found.path, loading)
        model = finish_ntire(model, loading)
        key = loading.state_key
    else:
        checkpoint = read_checkpoint_file(found.path, key=spec.weights_key)
        load_weights(model, entry, checkpoint.state, source=str(found.path))
        key = checkpoint.key
    info = WeightsInfo(file=found.path.name, sha256=found.sha256, source=found.source, key=key)
    return entry, LoadedModel(model.eval(), info, None, notes=notes)


def load_ntire(model: nn.Module, entry: ModelEntry, path: Path, loading: NtireLoading) -> list[str]:
    """Load checkpoint ``path`` into ``model`` as its ``test_demo.py`` branch does; the notes
    the row should carry.

    * a model method named in the branch (``model.load_weights(path)``) loads it itself;
    * a model with its own ``load_state_dict`` gets the state dict and the branch's
      ``strict`` directly (srbench's key pre-check would judge keys the method renames);
    * ``strict=True`` (the default): srbench's strict load, with its one-line mismatch error;
    * ``strict=False``, as the branch says: the keys that fit are loaded and the row notes
      how many were missing or unexpected.

    The state dict is read under the branch's key (``['params']``) when the file has it.
    """
    source = str(path)
    if loading.loader is not None:
        getattr(model, loading.loader)(source)
        return [f"loaded by the model's own {loading.loader}() as test_demo.py does"]
    state = read_checkpoint(path, key=loading.state_key)
    if type(model).load_state_dict is not nn.Module.load_state_dict:
        model.load_state_dict(state, strict=loading.strict)
        return [f"loaded by the model's own load_state_dict (strict={loading.strict}) as test_demo.py does"]
    if loading.strict:
        load_weights(model, entry, state, source=source)
        return []
    result = model.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if not missing and not unexpected:
        return []
    return [
        f"loaded with strict=False as test_demo.py does: {len(missing)} model key(s) not in the checkpoint"
        + (f" ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})" if missing else "")
        + f", {len(unexpected)} checkpoint key(s) unused"
    ]


def finish_ntire(model: nn.Module, loading: NtireLoading) -> nn.Module:
    """The calls a ``test_demo.py`` branch makes after loading (``model.repa()``, every
    submodule's ``switch_deploy()``), in order; a call that returns a module replaces the model."""
    for step in loading.post_load:
        kind, _, method = step.partition(".")
        if kind == "model":
            out = getattr(model, method)()
            if isinstance(out, nn.Module):
                model = out
        else:
            for module in list(model.modules()):
                if hasattr(module, method):
                    getattr(module, method)()
    return model
