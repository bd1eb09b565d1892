"""Where srbench keeps what it caches: one root for every cache (weights, ONNX exports, counts,
generated LR, ONNX Runtime Web)."""

from __future__ import annotations

import os
from pathlib import Path

#: Overrides every other rule: the cache root is exactly this folder.
CACHE_ENV = "SRBENCH_CACHE_DIR"


def cache_root() -> Path:
    """srbench's cache folder.

    ``$SRBENCH_CACHE_DIR`` when set (``~`` expanded), else ``$XDG_CACHE_HOME/srbench`` when
    ``XDG_CACHE_HOME`` is set (the XDG base-directory convention), else ``~/.cache/srbench``.
    The folder is not created here.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "srbench"
