"""The optional ``srbench[onnx]`` extra: ``onnx``, ``onnxruntime`` and ``onnxscript``.

Every module that needs them imports them through :func:`require`, so a missing package is
one line naming the install command instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from srbench.core.errors import SrbenchError

#: The distributions the extra installs (onnxscript is the torch dynamo exporter's translator).
EXTRA_PACKAGES = ("onnx", "onnxruntime", "onnxscript")

INSTALL_HINT = "pip install 'srbench[onnx]'"


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` (one of :data:`EXTRA_PACKAGES`) or raise a one-line SrbenchError.

    ``purpose`` completes "... is needed for ___" (e.g. ``"--backend onnxruntime"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SrbenchError(
            f"{module} is not installed; {purpose} needs the optional extra: {INSTALL_HINT}"
        ) from None


def versions() -> dict[str, str]:
    """Installed versions of the extra's packages (only those that import)."""
    out = {}
    for name in EXTRA_PACKAGES:
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            continue
    return out
