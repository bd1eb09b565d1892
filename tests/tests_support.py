"""Helpers shared by test modules (not a test module itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import weights_dir


def require_weights() -> Path:
    """The official checkpoints folder, or skip the calling test with the reason."""
    path = weights_dir()
    if path is None:
        pytest.skip("official checkpoints not available: set SRBENCH_WEIGHTS_DIR=../shared/weights")
    return path
