"""Reading checkpoints, converting alternative layouts and loading them strictly.

* :func:`read_checkpoint` reads ``.pth``/``.pt`` (``torch.load(weights_only=True)``: no
  arbitrary unpickling) or ``.safetensors`` and canonicalises the result to a flat
  ``name -> tensor`` dict (wrappers such as ``params_ema`` unwrapped, the EMA copy chosen
  under every common naming, ``module.`` stripped); :func:`read_checkpoint_file` also says
  which key was loaded (``--weights-key`` chooses another).
* Converters map other upstream layouts onto the registered classes' keys:
  :func:`convert_span_full_to_fused` (SPAN training layout → NTIRE "slim" layout, re-fusing
  every Conv3XC from its branches) and :func:`rename_rlfn_ntire2022_keys`.
* :func:`load_weights` applies the entry's converter and loads with ``strict=True``; on a
  mismatch it raises a one-line :class:`SrbenchError` that names keys and shapes and
  suggests the registered model the checkpoint does fit (:func:`detect_architecture`).
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srbench.core.errors import SrbenchError, cause
from srbench.models.registry import ModelEntry, all_entries

#: Wrapper keys unwrapped by :func:`unwrap_state_dict`, in priority order. srbench's rule:
#: when a checkpoint holds a raw and an EMA (exponential moving average) copy, the EMA copy is
#: the published one. The EMA spellings of the common conventions come first: BasicSR
#: (``params``/``params_ema``, training states ``net_g``/``net_g_ema``), timm
#: (``state_dict``/``state_dict_ema``), DeiT (``model``/``model_ema``), ``model``/``ema``.
EMA_KEYS: tuple[str, ...] = (
    "params_ema",
    "params-ema",
    "state_dict_ema",
    "model_ema",
    "net_g_ema",
    "ema",
)
#: Raw-weight wrappers, tried after :data:`EMA_KEYS`.
RAW_KEYS: tuple[str, ...] = (
    "params",
    "model_state_dict",
    "state_dict",
    "model",
    "net",
    "net_g",
)
WRAPPER_KEYS: tuple[str, ...] = EMA_KEYS + RAW_KEYS
#: Suffixes that mark any other key as the EMA copy of its stem (``generator``/``generator_ema``).
EMA_SUFFIXES: tuple[str, ...] = ("_ema", "-ema", ".ema")

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's weights as srbench loads them.

    Attributes:
        state: flat ``name -> tensor`` dict (CPU tensors, as stored).
        key: the wrapper key path the weights were taken from, ``/``-separated
            (``"params_ema"``, ``"checkpoint/state_dict_ema"``); None when the file's top
            level is the state dict itself.
        others: the other wrapper keys at the chosen level that also hold tensors (the raw
            copy beside an EMA copy, ...): what ``--weights-key`` could choose instead.
    """

    state: StateDict
    key: str | None = None
    others: tuple[str, ...] = ()


# --------------------------------------------------------------------------- reading


def _holds_tensors(obj: Any, depth: int = 3) -> bool:
    """True when mapping ``obj`` holds a tensor, directly or ``depth`` mappings down."""
    if not isinstance(obj, Mapping) or depth < 0:
        return False
    return any(isinstance(v, torch.Tensor) or _holds_tensors(v, depth - 1) for v in obj.values())


def _weight_keys(obj: Mapping[Any, Any]) -> list[str]:
    """The keys of ``obj`` whose values are mappings holding tensors, as strings."""
    return [str(k) for k, v in obj.items() if isinstance(v, Mapping) and _holds_tensors(v)]


def _choose_wrapper(obj: Mapping[Any, Any]) -> str | None:
    """The key of ``obj`` to unwrap by srbench's rule (EMA first), or None for none.

    A state dict's values are tensors, never mappings, so a wrapper key holding a mapping is
    a wrapper even beside tensors (a ``step`` tensor next to ``params_ema``). Other keys are
    unwrapped only where nothing at this level is a tensor: ``X_ema`` when ``X`` is there too,
    else the one mapping that holds tensors.
    """
    holding = _weight_keys(obj)
    for key in WRAPPER_KEYS:
        if key in holding:
            return key
    if any(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    ema = [k for k in holding if k.endswith(EMA_SUFFIXES) and k[:-4] in holding]
    if len(ema) == 1:
        return ema[0]
    if len(holding) == 1:
        return holding[0]
    if len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
        return str(next(iter(obj)))
    return None


def unwrap_state_dict(obj: Any, *, source: str, key: str | None = None) -> Checkpoint:
    """Unwrap training-checkpoint wrappers (EMA copy first) and strip a shared ``module.`` prefix.

    ``key`` (``--weights-key``) names the wrapper to take, ``/``-separated for nested ones
    (``"model/ema"``); srbench still unwraps further below it. Keeps only tensor values (an
    ``epoch`` integer beside the weights is dropped).

    Raises:
        SrbenchError: naming ``source`` when ``key`` is not in the file (listing the keys that
            hold weights) or when no tensors are found.
    """
    path: list[str] = []
    others: tuple[str, ...] = ()
    if key is not None:
        for part in key.split("/"):
            holding = _weight_keys(obj) if isinstance(obj, Mapping) else []
            if not isinstance(obj, Mapping) or part not in obj or not isinstance(obj[part], Mapping):
                shown = ", ".join(holding) or "none"
                raise SrbenchError(
                    f"checkpoint {source} has no weights under key {key!r} (keys holding weights: "
                    f"{shown}); pass one of them with --weights-key NAME=KEY"
                )
            others = tuple(k for k in holding if k != part)
            path.append(part)
            obj = obj[part]
    for _ in range(8):  # nesting depth bound; real files use one or two levels
        if not isinstance(obj, Mapping):
            break
        chosen = _choose_wrapper(obj)
        if chosen is None:
            break
        others = tuple(k for k in _weight_keys(obj) if k != chosen)
        path.append(chosen)
        obj = next(v for k, v in obj.items() if str(k) == chosen)  # keys need not be strings
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
    return Checkpoint(state, "/".join(path) or None, others)


def canonicalize_state_dict(obj: Any, *, source: str, key: str | None = None) -> StateDict:
    """The flat state dict :func:`unwrap_state_dict` finds in ``obj``."""
    return unwrap_state_dict(obj, source=source, key=key).state


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
    """The flat state dict of :func:`read_checkpoint_file` (``key``: ``--weights-key``)."""
    return read_checkpoint_file(path, key=key).state


def read_checkpoint_file(path: Path, *, key: str | None = None) -> Checkpoint:
    """Read a ``.pth``/``.pt`` or ``.safetensors`` checkpoint onto the CPU.

    PyTorch files are read with ``weights_only=True``; a file that needs arbitrary
    unpickling is refused. Anything else is refused with a one-line :class:`SrbenchError`
    that names the file, says what it is (:func:`identify_checkpoint`: empty, HTML, ONNX,
    TorchScript, another zip; a pickled full model; a safetensors header error; a truncated
    file) and what to do instead. torch's own warnings while reading are not shown.
    The weights are unwrapped by :func:`unwrap_state_dict` (EMA copy first, or ``key``).
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
        return unwrap_state_dict(raw, source=str(path), key=key)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's FutureWarnings/TorchScript notes are not for users
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
    ) as exc:
        # Whatever torch said, the pickle's own references name what the file holds: read them
        # with pickletools (no object is built, no code runs).
        blocked = [g for g in pickle_globals(path) if g not in _SAFE_GLOBALS and not g.startswith("torch.")]
        if blocked or (isinstance(exc, pickle.UnpicklingError) and "global" in str(exc).lower()):
            raise SrbenchError(_refusal(path, blocked, exc)) from None
        raise SrbenchError(
            f"checkpoint {path} is not a readable PyTorch checkpoint ({cause(exc)}); "
            "it is truncated or corrupt: re-download it"
        ) from None
    return unwrap_state_dict(raw, source=str(path), key=key)


#: Globals a weights-only checkpoint may reference besides ``torch.*`` (what
#: ``torch.load(weights_only=True)`` accepts without an allow-list).
_SAFE_GLOBALS = frozenset(
    {"collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.bytearray"}
)

#: Module prefixes whose callables run code or touch the system when unpickled.
_CODE_RUNNING = (
    "os.",
    "posix.",
    "nt.",
    "subprocess.",
    "builtins.eval",
    "builtins.exec",
    "builtins.getattr",
    "builtins.__import__",
    "builtins.compile",
    "builtins.open",
    "runpy.",
    "shutil.",
    "socket.",
    "sys.",
    "importlib.",
    "pty.",
    "webbrowser.",
    "code.",
    "marshal.",
    "types.",
)


def pickle_globals(path: Path, limit: int = 1 << 26) -> list[str]:
    """``module.name`` of every global the pickle in ``path`` references, in order, once each.

    Reads the ``data.pkl`` of a zip checkpoint, or the file itself (legacy format: several
    pickles in a row), with :func:`pickletools.genops`: opcodes only, nothing is unpickled.
    Stops quietly at the first undecodable opcode; [] when nothing can be read.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                pkl = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                data = zf.read(pkl)[:limit] if pkl else b""
        else:
            with open(path, "rb") as fh:
                data = fh.read(limit)
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    found: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        strings: list[str] = []
        start = stream.tell()
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == "GLOBAL" and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str) and op.name.endswith("UNICODE"):
                    strings.append(arg)
        except Exception:
            break
        if stream.tell() == start:
            break
    return list(dict.fromkeys(found))


def _label(name: str) -> str:
    """How a blocked global is named to the user ("" for helpers that come with another one)."""
    if name.startswith("numpy") and name.endswith(".scalar"):
        return f"numpy scalars ({name})"
    if name.startswith("numpy") and name.endswith((".dtype", "._reconstruct", ".ndarray")):
        return f"numpy arrays ({name})" if not name.endswith(".dtype") else ""
    if name == "_codecs.encode":
        return ""  # how numpy scalars and bytes are pickled; named through them
    if name == "argparse.Namespace":
        return "argparse.Namespace (training options)"
    return name


def _refusal(path: Path, blocked: list[str], exc: BaseException) -> str:
    """The one-line refusal of a checkpoint that holds pickled objects other than tensors."""
    labels = list(dict.fromkeys(_label(g) for g in blocked if _label(g)))
    names = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
    if any(g.startswith("torch.nn.modules") for g in blocked) or _mentions_module_class(path):
        return (
            f"checkpoint {path} is a pickled full model (torch.save(model)), which srbench will not "
            f"unpickle (it runs code); {_RESAVE}"
        )
    dangerous = [g for g in blocked if g.startswith(_CODE_RUNNING)]
    if dangerous:
        return (
            f"checkpoint {path} calls {', '.join(dangerous[:3])} when unpickled: it runs code, not just "
            "loads weights; srbench refused it without running anything. Do not load it with "
            "weights_only=False; get the weights from a trusted source (or as .safetensors)"
        )
    what = names or f"an object torch refused ({cause(exc, 100)})"
    return (
        f"checkpoint {path} holds pickled Python objects besides tensors ({what}), which "
        "torch.load(weights_only=True) blocks; srbench did not unpickle them. If you trust the file, "
        "keep only its tensors: python -c \"import torch; d = torch.load('IN', weights_only=False); "
        "torch.save({k: v for k, v in d.items() if torch.is_tensor(v)}, 'OUT.pth')\" (for a nested "
        "checkpoint, d['params'] or d['state_dict'] first), or save as .safetensors"
    )


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
