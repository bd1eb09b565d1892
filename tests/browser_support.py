"""Fixtures for the tests that need a real browser (``@pytest.mark.browser``).

They skip with the reason when Chromium, Playwright or ONNX Runtime Web is missing, unless
``SRBENCH_REQUIRE_BROWSER=1`` (the ``browser`` nox session sets it): then a missing piece
fails the test, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os

import pytest

from srbench.errors import SrbenchError


def missing(what: str, exc: SrbenchError) -> None:
    """Skip (or fail under SRBENCH_REQUIRE_BROWSER=1) because ``what`` is missing."""
    message = f"{what} not available: {exc}"
    if os.environ.get("SRBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def chromium_or_skip() -> None:
    """Skip unless Chromium and Playwright are both there."""
    from srbench.web.browser import find_chromium, import_playwright

    try:
        find_chromium()
        import_playwright()
    except SrbenchError as exc:
        missing("browser", exc)
