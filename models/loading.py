"""Reading checkpoints, converting alternative layouts and loading them strictly.

* :func:`read_checkpoint` reads ``.pth``/``.pt`` (``torch.load(weights_only=True)``: no
  arbitrary unpickling) or ``.safetensors`` and canonicalises the result to a flat
  ``name -> tensor`` dict (wrappers such as ``params_ema`` unwrapped, ``module.`` stripped).
* Converters map other upstream layouts onto the registered classes' keys:
  :func:`convert_span_full_to_fused` (SPAN training layout → NTIRE "slim" layout, re-fusing
  every Conv3XC from its branches) and :func:`rename_rlfn_ntire2022_keys`.
* :func:`load_weights` applies the entry's converter and loads with ``strict=True``; on a
  mismatch it raises a one-line :class:`SrbenchError` that names keys and shapes and
  suggests the registered model the checkpoint does fit (:func:`detect_architecture`).
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srbench.errors import SrbenchError, cause
from srbench.models.registry import ModelEntry, all_entries

#: Wrapper keys unwrapped by :func:`canonicalize_state_dict`, in priority order
#: (BasicSR saves both ``params`` and ``params_ema``; the EMA weights are the published ones).
WRAPPER_KEYS: tuple[str, ...] = (
    "params_ema",
    "params-ema",
    "params",
    "model_state_dict",
    "state_dict",
    "model",
    "net",
)

StateDict = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- reading


def canonicalize_state_dict(obj: Any, *, source: str) -> StateDict:
    """Unwrap training-checkpoint wrappers and strip a shared ``module.`` prefix.

    Keeps only tensor values (an ``epoch`` integer beside the weights is dropped).
    Raises :class:`SrbenchError` naming ``source`` when no tensors are found.
    """
    for _ in range(8):  # nesting depth bound; real files use one or two levels
        if not isinstance(obj, Mapping):
            break
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None and len(obj) == 1:
            (only,) = obj.values()
            key = next(iter(obj)) if isinstance(only, Mapping) else None
        if key is None:
            break
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise SrbenchError(
            f"checkpoint {source} holds a {type(obj).__name__}, not a state dict; "
            "save it with torch.save(model.state_dict(), ...)"
        )
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise SrbenchError(f"checkpoint {source} holds no tensors; pass a model state dict file")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


#: What to do instead, for every file srbench refuses as a checkpoint.
_RESAVE = "re-save the weights with torch.save(model.state_dict(), PATH) or as .safetensors"


def identify_checkpoint(path: Path) -> str | None:
    """What ``path`` is when it is plainly not a loadable checkpoint, from its first bytes and
    (for zips) its member names; None when it looks like a PyTorch or safetensors file.

    The answer is a phrase for :func:`read_checkpoint`'s one-line error: an empty file, an
    HTML page or a Git LFS pointer (a download that saved the wrong thing), an ONNX model, a
    TorchScript archive, a zip that is not a checkpoint.
    """
    size = path.stat().st_size
    if size == 0:
        return "an empty file (0 bytes): re-download or re-save it"
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return (
            "an HTML page, not a checkpoint (a download that saved an error or login page?): "
            "download it again"
        )
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the checkpoint itself: run 'git lfs pull' in its repository"
    if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and b"onnx" in head.lower()):
        return (
            "an ONNX model, not a PyTorch/safetensors checkpoint: srbench measures PyTorch models; "
            "pass the .pth/.safetensors the ONNX file was exported from"
        )
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return None
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return (
                "a TorchScript archive (torch.jit.save), which holds code as well as weights: load it "
                "with torch.jit.load and " + _RESAVE
            )
        if not any(n.endswith("data.pkl") for n in names):
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            return (
                f"a zip archive that is not a PyTorch checkpoint (it holds: {shown or 'nothing'}): unpack it"
            )
    return None


def _looks_like_safetensors(path: Path) -> bool:
    # 8-byte little-endian header length, then a JSON object.
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_checkpoint(path: Path, *, key: str | None = None) -> StateDict:
    """Read a ``.pth``/``.pt`` or ``.safetensors`` checkpoint onto the CPU.

    PyTorch files are read with ``weights_only=True``; a file that needs arbitrary
    unpickling is refused. Anything else is refused with a one-line :class:`SrbenchError`
    that names the file, says what it is (:func:`identify_checkpoint`: empty, HTML, ONNX,
    TorchScript, another zip; a pickled full model; a safetensors header error; a truncated
    file) and what to do instead. torch's own warnings while reading are not shown. ``key``:
    the entry to read when the file's top level has it (an NTIRE branch's ``['params']``);
    otherwise the usual unwrapping applies.
    """
    path = Path(path)
    if not path.is_file():
        raise SrbenchError(f"checkpoint {path} does not exist; check its path")
    what = identify_checkpoint(path)
    if what is not None:
        raise SrbenchError(f"checkpoint {path} is {what}")
    if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise SrbenchError(
                f"checkpoint {path} is a .safetensors file whose header or data is broken ({cause(exc)}); "
                "it is truncated or corrupt: re-download or re-export it"
            ) from None
        return canonicalize_state_dict(raw, source=str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's FutureWarnings/TorchScript notes are not for users
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "Unsupported operand" in text or "not an allowed global" in text:
            if "torch.nn.modules" in text or _mentions_module_class(path):
                raise SrbenchError(
                    f"checkpoint {path} is a pickled full model (torch.save(model)), which srbench will "
                    f"not unpickle (it runs code); {_RESAVE}"
                ) from None
            raise SrbenchError(
                f"checkpoint {path} contains pickled Python objects that srbench will not unpickle "
                f"(torch.load weights_only=True refused: {cause(exc, 100)}); {_RESAVE}"
            ) from None
        raise SrbenchError(
            f"checkpoint {path} is not a readable PyTorch checkpoint ({cause(exc)}); "
            "it is truncated or corrupt: re-download it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise SrbenchError(
            f"checkpoint {path} is not a readable PyTorch checkpoint ({cause(exc)}); "
            "it is truncated or corrupt: re-download it"
        ) from None
    if key is not None and isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
        raw = raw[key]
    return canonicalize_state_dict(raw, source=str(path))


def _mentions_module_class(path: Path) -> bool:
    """True when the pickle inside ``path`` names ``torch.nn`` module classes (a full model)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                pkl = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                data = zf.read(pkl) if pkl else b""
        else:
            data = path.read_bytes()[: 1 << 20]
    except (OSError, zipfile.BadZipFile):
        return False
    return b"torch.nn.modules" in data


# --------------------------------------------------------------------------- matching

_SHAPE_CACHE: dict[tuple[str, int], dict[str, tuple[int, ...]]] = {}


def model_key_shapes(entry: ModelEntry, scale: int) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the state dict of ``entry`` built at ``scale`` (cached).

    Built on the CPU: the ``torch.device("meta")`` context was tried and is slower for
    Python-heavy constructors (it intercepts every tensor op), while these models are small.
    """
    cache_key = (entry.name, scale)
    if cache_key not in _SHAPE_CACHE:
        model = entry.build(scale=scale)
        _SHAPE_CACHE[cache_key] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return _SHAPE_CACHE[cache_key]


def _fits(state: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]]) -> bool:
    return state.keys() == shapes.keys() and all(tuple(state[k].shape) == s for k, s in shapes.items())


def _converted(entry: ModelEntry, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    return entry.converter(dict(state)) if entry.converter is not None else state


def detect_architecture(state: Mapping[str, torch.Tensor]) -> tuple[str, int] | None:
    """The first registered ``(model name, scale)`` whose keys and shapes ``state`` fits
    exactly, after that model's converter; None when nothing fits.

    Candidates are built once per (name, scale) and cached; an entry whose key set shares
    nothing with the state dict is skipped after its first scale.
    """
    converted_by: dict[int, Mapping[str, torch.Tensor]] = {}
    for entry in all_entries():
        conv_id = id(entry.converter)
        if conv_id not in converted_by:
            try:
                converted_by[conv_id] = _converted(entry, state)
            except Exception:  # a converter that cannot handle this layout: no fit
                converted_by[conv_id] = {}
        candidate = converted_by[conv_id]
        if not candidate:
            continue
        for scale in entry.scales:
            shapes = model_key_shapes(entry, scale)
            if shapes and _fits(candidate, shapes):
                return entry.name, scale
            # Scale changes shapes and sometimes upsampler keys, never the whole key set:
            # with no key in common the other scales need not be built.
            if shapes.keys().isdisjoint(candidate.keys()):
                break
    return None


def _few(items: list[str], n: int = 3) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", … ({len(items)} in all)" if len(items) > n else "")


def load_weights(
    model: nn.Module, entry: ModelEntry, state: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """Load ``state`` into ``model`` (built from ``entry``) with ``strict=True``.

    A state dict that already matches the model's keys is loaded as-is (e.g. a training
    form SPAN); otherwise ``entry.converter`` is applied first. On any key or shape
    mismatch a one-line :class:`SrbenchError` names ``source``, a few missing/unexpected
    keys and differing shapes, and the registered model the file does fit, if any.
    """
    target = model.state_dict()
    candidate: Mapping[str, torch.Tensor] = state
    if state.keys() != target.keys():
        candidate = _converted(entry, state)
    missing = [k for k in target if k not in candidate]
    unexpected = [k for k in candidate if k not in target]
    shapes = [
        f"{k} {tuple(candidate[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in candidate and tuple(candidate[k].shape) != tuple(target[k].shape)
    ]
    if missing or unexpected or shapes:
        scale = getattr(model, "upscale", None)
        what = f"model '{entry.name}'" + (f" at x{scale}" if scale else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_few(shapes, 2)}")
        fit = detect_architecture(state)
        # Hints keep the user's file: naming the official model instead would measure
        # another network's weights under the user's row.
        if fit is not None and fit[0] == entry.name and fit[1] != scale:
            hint = f"it fits '{fit[0]}' at x{fit[1]}: rerun with --scale {fit[1]}, keeping {source}"
        elif fit is not None and fit != (entry.name, scale):
            hint = f"it fits '{fit[0]}' at x{fit[1]}: name the same file as {fit[0]}={source}" + (
                f" with --scale {fit[1]}" if fit[1] != scale else ""
            )
        else:
            hint = "no registered model fits it; check the file and the model name"
        raise SrbenchError(f"checkpoint {source} does not fit {what} ({'; '.join(parts)}); {hint}")
    model.load_state_dict(dict(candidate), strict=True)
