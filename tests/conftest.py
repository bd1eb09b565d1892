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


@pytest.fixture
def official_weights() -> Path:
    """The official checkpoints folder; skips the test when it is not available."""
    path = weights_dir()
    if path is None:
        pytest.skip("official checkpoints not available: set SRBENCH_WEIGHTS_DIR=../shared/weights")
    return path
