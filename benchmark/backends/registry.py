"""The backends ``--backend`` can name: one line each.

A backend is a folder (or module) under ``backends/`` implementing
:class:`~srbench.backends.base.Backend`, and one :func:`register_backend` line below. Code
outside the package (a plug-in, a test) registers its own with the same call.
"""

from __future__ import annotations

from srbench.backends.base import Backend
from srbench.backends.browser.backend import Browser
from srbench.backends.onnxruntime.backend import OnnxRuntime
from srbench.backends.pytorch import TorchEager
from srbench.core.errors import SrbenchError

_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` selectable as ``--backend backend.name``; returns it."""
    _BACKENDS[backend.name] = backend
    return backend


def unregister_backend(name: str) -> None:
    """Forget a registered backend (tests)."""
    _BACKENDS.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """Registered backend names, the reference backend (``torch``) first."""
    return tuple(_BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend ``--backend name`` selects; one :class:`SrbenchError` line for an unknown one."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise SrbenchError(f"--backend {name!r} is not one of {', '.join(_BACKENDS)}") from None


register_backend(TorchEager())
register_backend(OnnxRuntime())
register_backend(Browser())
