"""A small self-contained HTML writer: escaped tables with click-to-sort headers, inline
CSS/JS and base64 images, so ``report.html`` opens anywhere with no other file."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
tr.error td { color: #b00; }
td.reproduced { color: #070; } td.contradicted { color: #b00; font-weight: 600; }
td.unchecked { color: #777; }
img { max-width: 100%; border: 1px solid #ddd; }
img.plot { width: 100%; max-width: 860px; }
ul.notes { color: #555; font-size: 0.9em; }
"""

# Click a header to sort by that column; again to reverse. A cell's data-sort attribute
# (numbers as JS-parsable text) wins over its text, so "9,833,807,872" sorts as the number it
# shows; numbers sort before text, and blanks and "—" always sort last.
_JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent.trim(); }
    if (v === "" || v === "\\u2014") { return null; }
    var n = Number(v);
    return isNaN(n) ? v : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (t) {
    var heads = t.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var body = t.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === null || y === null) { return (x === null) - (y === null); }
          var nx = typeof x === "number", ny = typeof y === "number";
          // Numbers by value (Infinity included), numbers before text, text by locale.
          var c = (nx && ny) ? (x < y ? -1 : (x > y ? 1 : 0))
                  : (nx ? -1 : (ny ? 1 : String(x).localeCompare(String(y))));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


@dataclass(frozen=True)
class Cell:
    """A table cell: shown ``text``, optional numeric ``sort`` key and CSS ``cls``."""

    text: str
    sort: float | int | None = None
    cls: str | None = None


def num(value: float | int | None, scale: float = 1.0, digits: int = 2) -> Cell:
    """A right-aligned number ``value / scale`` with ``digits`` decimals, sorted by value."""
    if value is None:
        return Cell("—", None, "num")
    v = float(value)
    if math.isinf(v):
        return Cell("inf", v, "num")
    return Cell(f"{v / scale:.{digits}f}", value, "num")


def _sort_attr(v: float | int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and math.isinf(v):
        return ' data-sort="Infinity"' if v > 0 else ' data-sort="-Infinity"'
    return f' data-sort="{v!r}"'


def table(
    headers: Sequence[str],
    rows: Sequence[tuple[Sequence[Cell | str], str | None]],
    *,
    caption: str | None = None,
    table_id: str | None = None,
) -> str:
    """A sortable ``<table>``; each row is ``(cells, row CSS class or None)``."""
    id_attr = f' id="{escape(table_id)}"' if table_id else ""
    out = [f'<table class="sortable"{id_attr}>']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr></thead>")
    out.append("<tbody>")
    for cells, row_cls in rows:
        tds = []
        for c in cells:
            c = c if isinstance(c, Cell) else Cell(str(c))
            cls = f' class="{escape(c.cls)}"' if c.cls else ""
            tds.append(f"<td{cls}{_sort_attr(c.sort)}>{escape(c.text)}</td>")
        tr_cls = f' class="{escape(row_cls)}"' if row_cls else ""
        out.append(f"<tr{tr_cls}>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def png_img(data: bytes, alt: str, *, cls: str | None = None) -> str:
    """An ``<img>`` with the PNG inlined as a base64 data URL (CSS class ``cls``: "plot"
    shows a print-resolution plot at screen size)."""
    b64 = base64.b64encode(data).decode("ascii")
    cls_attr = f' class="{escape(cls)}"' if cls else ""
    return f'<img{cls_attr} alt="{escape(alt)}" src="data:image/png;base64,{b64}">'


def notes(lines: Sequence[str]) -> str:
    """A bullet list of notes (empty string when there are none)."""
    if not lines:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in lines) + "</ul>"


def page(title: str, body: Sequence[str]) -> str:
    """The whole document: ``body`` fragments (already HTML) in order, CSS and JS inline."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n<h1>{escape(title)}</h1>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )
