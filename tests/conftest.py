"""Shared fixtures: the official weights folder (skip cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def weights_dir() -> Path | None:
    """``$SRBENCH_WEIGHTS_DIR`` when it names an existing folder, else None."""
    value = os.environ.get("SRBENCH_WEIGHTS_DIR")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


# The browser tests read the ONNX Runtime Web that 'srbench browser setup' installed into the
# user's cache (read-only, pinned version), although every test gets a private cache below.
if not os.environ.get("SRBENCH_ORT_WEB_DIR"):
    from srbench.backends.browser.ortweb import ort_web_prefix

    os.environ["SRBENCH_ORT_WEB_DIR"] = str(ort_web_prefix())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own SRBENCH_CACHE_DIR (complexity counts, downloads): nothing is
    read from or written to the user's ~/.cache/srbench, and no test sees another's entries."""
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("srbench-cache")))


@pytest.fixture
def official_weights() -> Path:
    """The official checkpoints folder; skips the test when it is not available."""
    path = weights_dir()
    if path is None:
        pytest.skip("official checkpoints not available: set SRBENCH_WEIGHTS_DIR=../shared/weights")
    return path
