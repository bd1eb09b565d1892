"""Complexity counted once: a cache of :class:`~srbench.measure.counting.Complexity` records.

The counts depend only on the code and the architecture, never on weights or data, yet
fvcore's traced forward costs seconds per model (tens for attention models) on a CPU. So
:func:`cached_profile` keeps each record in ``<cache>/complexity/<key>.json`` (``<cache>``
is ``$SRBENCH_CACHE_DIR`` or ``~/.cache/srbench``, :func:`srbench.core.paths.cache_root`), keyed by
the SHA-256 of everything the counts depend on:

* the srbench, torch and fvcore versions and the cache format;
* the registered architecture name, its builder arguments and the scale;
* the profile input shape, the input range (the counting input is noise in that range)
  and whether the dispatcher count runs;
* the names of the record's fields (a field added to ``Complexity`` misses old entries);
* a hash of the module structure (:func:`structure_hash`): every submodule's name, class and
  ``extra_repr``, every parameter's and buffer's name, shape and dtype, and the source files
  of the (non-torch) classes involved, so editing an architecture misses its old entries.

Entries are written atomically (:func:`srbench.core.files.atomic_write_text`); an unreadable or
mismatching entry is a miss and is overwritten. ``--recount`` (``recount=True``) counts
afresh and rewrites the entry. The record is serialised field by field from the dataclass
(``dataclasses.asdict``) and rebuilt from its type hints, so new fields flow through.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import time
import typing
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srbench import __version__
from srbench.core.files import atomic_write_text, file_sha256
from srbench.core.paths import cache_root
from srbench.measure.counting import Complexity, profile_model

#: Bump when the entry layout changes.
CACHE_FORMAT = 1


def cache_dir() -> Path:
    """``<cache root>/complexity`` (:func:`srbench.core.paths.cache_root`)."""
    return cache_root() / "complexity"


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    try:
        fvcore = version("fvcore")
    except PackageNotFoundError:
        fvcore = "absent"
    return {"srbench": __version__, "torch": torch.__version__, "fvcore": fvcore}


def _file_digest(path: str) -> str:
    """SHA-256 of ``path``'s bytes, memoised per file identity (a file edited in place within
    one process, as by a notebook or a test, is hashed again); ``"unreadable"`` on OSError."""
    try:
        stat = Path(path).stat()
    except OSError:
        return "unreadable"
    return _digest_of(path, (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, _identity: tuple[int, ...]) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return "unreadable"


def class_source_file(cls: type) -> str:
    """The source file that defines ``cls``, from its functions' code objects.

    ``inspect.getfile`` looks the class's module up by name in ``sys.modules``, which a user
    model's sibling modules are taken out of (two folders may each have a ``blocks.py``:
    :mod:`srbench.models.usercode`), so the name could find nothing or another file. A
    method's code object records the file it was compiled from. Classes without methods of
    their own fall back to ``inspect.getfile``; ``<module.qualname>`` when nothing says.
    """
    for value in vars(cls).values():
        func = getattr(value, "__func__", value)  # classmethod/staticmethod
        code = getattr(func, "__code__", None)
        if code is not None and code.co_filename and not code.co_filename.startswith("<"):
            return code.co_filename
    try:
        return inspect.getfile(cls)
    except (TypeError, OSError):
        return f"<{cls.__module__}.{cls.__qualname__}>"


#: Where installed code lives (covered by versions, or not the model's own code).
_INSTALLED = ("site-packages", "dist-packages")
#: How many hops from a class's methods through the names their module uses (``from ops
#: import act``: one hop; ``act`` using ``helpers.f``: two).
_CODE_DEPTH = 3


def _own_code_file(file: str | None) -> bool:
    """True for a Python source file that is neither installed nor the standard library."""
    if not file or file.startswith("<") or not file.endswith(".py"):
        return False
    path = Path(file)
    if any(part in _INSTALLED for part in path.parts):
        return False
    stdlib = Path(inspect.getfile(inspect)).parent
    return not path.is_relative_to(stdlib)


def code_files(cls: type) -> set[str]:
    """The source files ``cls``'s code runs: its own file and, from the globals of its
    methods' modules, the files of the functions, classes and modules they name (``from ops
    import act`` in a user model), followed :data:`_CODE_DEPTH` hops. Installed packages and
    the standard library are left out (their versions stand for them)."""
    files: set[str] = set()
    seen: set[int] = set()
    frontier: list[Any] = [cls]
    for _ in range(_CODE_DEPTH + 1):
        following: list[Any] = []
        for obj in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.ismodule(obj):
                file = getattr(obj, "__file__", None)
                if _own_code_file(file):
                    files.add(str(file))
                continue
            if inspect.isclass(obj):
                if obj.__module__.startswith(("torch.", "builtins")):
                    continue
                file = class_source_file(obj)
                funcs = [getattr(v, "__func__", v) for v in vars(obj).values()]
            else:
                file, funcs = getattr(getattr(obj, "__code__", None), "co_filename", None), [obj]
            if not _own_code_file(file):
                continue
            files.add(str(file))
            for func in funcs:
                code = getattr(func, "__code__", None)
                names = set(code.co_names) if code is not None else set()
                namespace = getattr(func, "__globals__", {})
                following += [namespace[n] for n in names if n in namespace]
        frontier = following
    return files


def structure_hash(model: nn.Module) -> str:
    """SHA-256 (hex) of the module structure: what the counts depend on besides the input.

    Covers each submodule's qualified name, class and ``extra_repr()``, each parameter's and
    buffer's name, shape and dtype (not values: counts are weight-independent), and the
    content of the source files of every class outside torch and of the code its methods
    call (:func:`code_files`; torch's own are covered by its version in the key), so a code
    change to an architecture, or to a helper module it imports, changes the hash.
    """
    h = hashlib.sha256()
    files: set[str] = set()
    for name, module in model.named_modules():
        cls = type(module)
        h.update(f"m|{name}|{cls.__module__}.{cls.__qualname__}|{module.extra_repr()}\n".encode())
        if not cls.__module__.startswith("torch."):
            found = code_files(cls)
            files |= found or {class_source_file(cls)}
    for kind, items in (("p", model.named_parameters()), ("b", model.named_buffers())):
        for name, t in items:
            h.update(f"{kind}|{name}|{tuple(t.shape)}|{t.dtype}\n".encode())
    for path in sorted(files):
        h.update(f"f|{Path(path).name}|{_file_digest(path)}\n".encode())
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    """Builder arguments as JSON (sorted keys; anything else by its repr)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def build_arguments(entry: Any, spec: Any) -> dict[str, Any]:
    """The builder arguments a model was built with: the registry entry's defaults
    (``entry.default_kwargs``) updated by the spec's ``--model-args`` (``spec.model_args``)."""
    return {**dict(getattr(entry, "default_kwargs", {}) or {}), **dict(getattr(spec, "model_args", {}) or {})}


def cache_key(
    model: nn.Module,
    *,
    arch: str,
    build_args: Mapping[str, Any],
    scale: int,
    input_shape: tuple[int, ...],
    input_range: float,
    dispatch: bool = True,
) -> dict[str, Any]:
    """Everything a cached record depends on, as a JSON-ready dict."""
    return {
        "format": CACHE_FORMAT,
        **_versions(),
        "arch": arch,
        "build_args": _jsonable(build_args),
        "scale": scale,
        "input_shape": list(input_shape),
        "input_range": float(input_range),
        "dispatch": dispatch,
        "fields": [f.name for f in dataclasses.fields(Complexity)],
        "structure": structure_hash(model),
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def to_json(c: Complexity) -> dict[str, Any]:
    """The record as a JSON-ready dict, every field by name."""
    return dataclasses.asdict(c)


def from_json(data: Mapping[str, Any]) -> Complexity:
    """Inverse of :func:`to_json`: tuple-typed fields come back as tuples (JSON has lists).

    Raises KeyError/TypeError/ValueError for data that does not fit the record.
    """
    hints = typing.get_type_hints(Complexity)
    values = {}
    for f in dataclasses.fields(Complexity):
        value = data[f.name]
        if typing.get_origin(hints[f.name]) is tuple and value is not None:
            value = tuple(value)
        values[f.name] = value
    return Complexity(**values)


def cached_profile(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    arch: str,
    build_args: Mapping[str, Any],
    scale: int,
    input_range: float = 1.0,
    dispatch: bool = True,
    recount: bool = False,
) -> tuple[Complexity, bool]:
    """``(complexity, from_cache)`` of ``model`` at ``input_shape``, counted once per key.

    On a hit no counter runs and ``complexity.seconds`` is the lookup time; on a miss (or
    with ``recount``) :func:`~srbench.measure.counting.profile_model` counts and the entry is
    (re)written. A cache folder that cannot be written only costs the next run a recount.
    """
    start = time.perf_counter()
    key = cache_key(
        model,
        arch=arch,
        build_args=build_args,
        scale=scale,
        input_shape=tuple(input_shape),
        input_range=input_range,
        dispatch=dispatch,
    )
    path = cache_dir() / f"{_digest(key)}.json"
    if not recount:
        try:
            entry = json.loads(path.read_text())
            if entry["key"] == key:
                found = from_json(entry["complexity"])
                return dataclasses.replace(found, seconds=time.perf_counter() - start), True
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing or unreadable: count
    fresh = profile_model(model, tuple(input_shape), input_range=input_range, dispatch=dispatch)
    try:
        atomic_write_text(path, json.dumps({"key": key, "complexity": to_json(fresh)}, indent=1), mkdir=True)
    except OSError:
        pass
    return dataclasses.replace(fresh, seconds=time.perf_counter() - start), False
