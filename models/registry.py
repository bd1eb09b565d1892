"""One registry of model builders, in the style of timm.

Each entry knows its scales, its input range and its official checkpoints (as data: file
name, sha256, upstream URL). Architecture modules (``rlfn.py``, ``span.py``, ...) hold only
``nn.Module`` code; :mod:`srbench.models.zoo` registers builders for them, and
:mod:`srbench.models.loading` reads and converts checkpoints.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from srbench.core.errors import SrbenchError

#: A state-dict converter: takes a canonical state dict (wrappers and ``module.`` already
#: stripped) and returns one whose keys fit the registered class. It must return the input
#: unchanged when it already fits.
Converter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class WeightsSpec:
    """An official checkpoint described as data.

    Attributes:
        file_name: the file's name in ``SRBENCH_WEIGHTS_DIR`` / the cache folder.
        sha256: lowercase hex digest of the file's bytes.
        url: the upstream download URL (pinned to a commit).
        scale: the upscaling factor this checkpoint was trained for.
        size_bytes: the file's size in bytes, when known.
        params: the parameter count the checkpoint reproduces (sum of tensor numel).
    """

    file_name: str
    sha256: str
    url: str
    scale: int
    size_bytes: int | None = None
    params: int | None = None


#: The ``--dtype`` values a model runs unless its entry says otherwise.
ALL_DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes:
        name: registry name (``rlfn``, ``span``, ...).
        builder: ``builder(scale=s, **kwargs) -> nn.Module``; returns an untrained model.
        scales: the upscaling factors the builder supports.
        input_range: the value range the network takes and returns: 1.0 for [0,1], 255.0
            for [0,255]. The harness feeds ``lr_uint8 / 255 * input_range`` and divides the
            output by ``input_range`` before quantising.
        description: one line for ``srbench list``.
        weights: official checkpoints, one per scale at most.
        converter: maps alternative checkpoint layouts onto the class's keys.
        has_trained_weights: False when no trained checkpoint exists anywhere (quality
            columns are then never meaningful).
        default_kwargs: keyword arguments passed to the builder by default.
        tags: free-form labels (``"conv"``, ``"attention"``, ``"test-only"``).
        origin: where the entry came from, as ``srbench list`` shows it: ``builtin``,
            ``plugin MODULE`` (``SRBENCH_PLUGINS``), ``entry point NAME (DIST)``,
            ``module MODULE`` (any other import), ``file``/``ntire`` (user code named on the
            command line), ``spandrel``.
        dtypes: the ``--dtype`` values the network runs correctly in (an operation with no
            half-precision kernel, a numerically unstable attention): any other is refused
            before a run does any work (:meth:`check_dtype`).
    """

    name: str
    builder: Callable[..., nn.Module]
    scales: tuple[int, ...]
    input_range: float
    description: str
    weights: tuple[WeightsSpec, ...] = ()
    converter: Converter | None = None
    has_trained_weights: bool = True
    default_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    origin: str = "builtin"
    dtypes: tuple[str, ...] = ALL_DTYPES

    def check_dtype(self, dtype: str) -> None:
        """Raise :class:`SrbenchError` (one line naming ``--dtype``) unless the model runs ``dtype``."""
        if dtype not in self.dtypes:
            raise SrbenchError(
                f"model '{self.name}' does not run --dtype {dtype}; choose one of {', '.join(self.dtypes)}"
            )

    def weights_for(self, scale: int) -> WeightsSpec | None:
        """The official checkpoint for ``scale``, or None."""
        for spec in self.weights:
            if spec.scale == scale:
                return spec
        return None

    def check_scale(self, scale: int) -> None:
        """Raise :class:`SrbenchError` (one line naming ``--scale``) unless ``scale`` is supported."""
        if scale not in self.scales:
            raise SrbenchError(
                f"model '{self.name}' does not support --scale {scale}; "
                f"choose one of {', '.join(map(str, self.scales))}"
            )

    def build(self, scale: int = 4, **kwargs: Any) -> nn.Module:
        """Build the untrained model at ``scale`` in eval mode (fused where applicable)."""
        self.check_scale(scale)
        merged = {**self.default_kwargs, **kwargs}
        model = self.builder(scale=scale, **merged)
        return model.eval()


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    scales: tuple[int, ...],
    input_range: float,
    description: str,
    weights: tuple[WeightsSpec, ...] = (),
    converter: Converter | None = None,
    has_trained_weights: bool = True,
    default_kwargs: Mapping[str, Any] | None = None,
    tags: tuple[str, ...] = (),
    origin: str | None = None,
    dtypes: tuple[str, ...] = ALL_DTYPES,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``builder`` under ``name``. Re-registering a name is an error.

    ``origin`` (see :attr:`ModelEntry.origin`) defaults to the plugin or entry point being
    loaded, else ``builtin`` for srbench's own modules and ``module MODULE`` for others.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            existing = _REGISTRY[name].origin
            raise ValueError(f"model '{name}' is already registered (by {existing})")
        module = getattr(builder, "__module__", "") or ""
        where = (
            origin
            or _loading_origin
            or ("builtin" if module.startswith("srbench.models") else f"module {module}")
        )
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            scales=tuple(scales),
            input_range=float(input_range),
            description=description,
            weights=tuple(weights),
            converter=converter,
            has_trained_weights=has_trained_weights,
            default_kwargs=dict(default_kwargs or {}),
            tags=tuple(tags),
            origin=where,
            dtypes=tuple(dtypes),
        )
        return builder

    return decorate


def unregister_model(name: str) -> None:
    """Remove ``name`` from the registry (tests register throwaway models)."""
    _REGISTRY.pop(name, None)


#: Environment variable naming extra modules (comma-separated, importable) that register
#: their own models with :func:`register_model`; worker processes import them too.
PLUGINS_ENV = "SRBENCH_PLUGINS"

#: The entry-point group through which installed packages register models (as pytest and
#: timm-style plugins do): each entry point names a module whose import calls
#: :func:`register_model`, or a function that does when called with no arguments.
ENTRY_POINT_GROUP = "srbench.models"

_loaded_plugins: set[str] = set()
_loaded_entry_points: set[tuple[str, str]] = set()
_entry_points_scanned = False
#: The origin given to models registered while a plugin or entry point loads.
_loading_origin: str | None = None


def _ensure_zoo() -> None:
    # Importing the zoo registers every shipped model; done lazily so that importing the
    # registry alone stays cheap and free of import cycles.
    global _loading_origin
    from srbench.models import zoo  # noqa: F401

    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        if module in _loaded_plugins:
            continue
        _loaded_plugins.add(module)
        _loading_origin = f"plugin {module}"
        try:
            if module.endswith(".py"):
                # A file path works too: imported once under a name unique to its path.
                from srbench.models.usercode import import_file

                import_file(module)
            else:
                importlib.import_module(module)
        except ImportError as exc:
            raise SrbenchError(
                f"{PLUGINS_ENV}: cannot import {module!r} ({exc}); fix the module path"
            ) from None
        finally:
            _loading_origin = None
    _load_entry_points()


def _load_entry_points() -> None:
    """Load every ``srbench.models`` entry point of the installed packages, once per process.

    The scan of installed distributions costs ~10 ms, so it runs on the first registry
    lookup only (a package installed while a process runs is seen by the next process).
    """
    global _loading_origin, _entry_points_scanned
    from importlib.metadata import entry_points

    if _entry_points_scanned:
        return
    _entry_points_scanned = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        key = (dist, ep.name)
        if key in _loaded_entry_points:
            continue
        _loaded_entry_points.add(key)
        _loading_origin = f"entry point {ep.name} ({dist})"
        try:
            target = ep.load()
            if callable(target) and not isinstance(target, type):
                target()
        except SrbenchError:
            raise
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise SrbenchError(
                f"entry point {ep.name} = {ep.value} of package {dist} ({ENTRY_POINT_GROUP}) failed: "
                f"{type(exc).__name__}: {first}; fix or uninstall {dist}"
            ) from None
        finally:
            _loading_origin = None


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a one-line error suggesting close names otherwise."""
    _ensure_zoo()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SrbenchError(
            f"unknown model '{name}'{hint}; run 'srbench list' to see the registered models"
        ) from None


def list_models(pattern: str = "*", *, include_test_only: bool = False) -> list[str]:
    """Registered model names matching a shell-style wildcard ``pattern``, sorted."""
    _ensure_zoo()
    names = [
        n
        for n, e in _REGISTRY.items()
        if fnmatch.fnmatchcase(n, pattern) and (include_test_only or "test-only" not in e.tags)
    ]
    return sorted(names)


def create_model(name: str, scale: int = 4, **kwargs: Any) -> nn.Module:
    """Build registered model ``name`` at ``scale`` (untrained, eval mode)."""
    return get_entry(name).build(scale=scale, **kwargs)


def all_entries() -> list[ModelEntry]:
    """Every registered entry, in registration order."""
    _ensure_zoo()
    return list(_REGISTRY.values())
