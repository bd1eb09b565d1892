"""``report.html`` in a real headless Chromium: rendered rows, numeric sorting, a screenshot."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import chromium_or_skip
from PIL import Image
from test_report import two_runs  # noqa: F401  (fixture)

from srbench.reporting.report import build_report

pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> Iterator[Any]:
    chromium_or_skip()
    from srbench.backends.browser.browser import launch_chromium

    with launch_chromium() as browser:
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        yield pg


def _column(page: Any, table: str, col: int) -> list[tuple[str, str | None]]:
    """(text, data-sort) of column ``col`` of every body row of ``#table``, in DOM order."""
    return page.eval_on_selector_all(
        f"#{table} tbody tr",
        f"rows => rows.map(r => [r.cells[{col}].textContent.trim(), "
        f"r.cells[{col}].getAttribute('data-sort')])",
    )


def _number(text: str) -> float | None:
    """The number a cell shows: its first token, thousands separators removed ("—" is None)."""
    head = text.split()[0] if text.strip() else "—"
    return None if head == "—" else float(head.replace(",", ""))


def _click(page: Any, table: str, header: str) -> None:
    page.click(f"#{table} thead th:text-is('{header}')")


def test_report_renders_sorts_numerically_and_screenshots(
    two_runs: list[Path],  # noqa: F811
    tmp_path: Path,
    page: Any,
) -> None:
    files = build_report(two_runs, tmp_path / "out", labels=["laptop", "server"])
    page.goto(files.html.as_uri())

    # Rows as rendered by the browser: 2 runs x 3 models, named by --label.
    labels = [text for text, _ in _column(page, "results", 0)]
    assert sorted(labels) == sorted(
        f"{m} @ {r}" for m in ("rlfn", "span", "span_ca") for r in ("laptop", "server")
    )
    assert page.locator("#images tbody tr").count() == 8
    assert page.locator("img").count() == 2
    assert all(page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"))

    # The claims' "Measured" column holds "9,833,807,872", "150,688", "22", "0.151 M (151,080)":
    # it must sort by the number shown, not as text (where "150,688" < "22" < "9,833,...").
    _click(page, "claims", "Measured")
    shown = [text for text, _ in _column(page, "claims", 2)]
    nums = [_number(t) for t in shown]
    present = [n for n in nums if n is not None]
    assert present == sorted(present) and len(set(present)) > 3
    assert nums[len(present) :] == [None] * (len(nums) - len(present))  # blanks last
    assert shown != sorted(shown)  # text order would differ: the test can tell the two apart
    assert page.get_attribute("#claims thead th:text-is('Measured')", "aria-sort") == "ascending"
    _click(page, "claims", "Measured")
    again = [_number(t) for t, _ in _column(page, "claims", 2)]
    assert [n for n in again if n is not None] == sorted(present, reverse=True)

    # Results: time sorts by value (5.00 ms on the fast run before 40.00 on the slow one).
    _click(page, "results", "Val Time (ms)")
    times = [_number(t) for t, _ in _column(page, "results", 5)]
    assert times == sorted(times, key=lambda v: math.inf if v is None else v)
    assert _column(page, "results", 0)[0][0] == "span @ server"  # 2.0 ms median: the fastest

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as img:
        assert img.size[0] == 1400 and img.size[1] > 900
