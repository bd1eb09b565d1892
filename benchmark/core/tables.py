"""Console tables that fit a width without cutting anything.

rich shortens a cell that does not fit with "…" (``317,2…``, ``sp…``): a number, a model
name or a header read that way is wrong, not short. :func:`fit_tables` never lets that
happen. Every cell keeps its whole text on one line (columns marked ``wrap`` may break
between words); when the columns do not fit ``width``, the ones with the lowest ``keep``
move to a second table keyed by the first column (``overflow="table"``) or are left out
with the caption naming them and where they are (``overflow="note"``: the results files,
``--json``). Each command declares its columns once, as a list of :class:`Column`, so a
new column is one edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """One column of a console table.

    ``keep``: the column's priority when the width is short (lower moves out first;
    ``None``: always shown, as the first, key column must be). ``wrap``: free text that may
    break onto several lines (between words; a path longer than the column folds) in a
    continuation table; the first table keeps every row on one line.
    """

    header: str
    justify: Literal["left", "right"] = "left"
    keep: int | None = None
    wrap: bool = False


#: Narrowest a ``wrap`` column is made (its header's longest word when longer).
MIN_WRAP = 16


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _width(col: Column, cells: Sequence[str]) -> int:
    """The column's width in characters: headers break between words, cells only if ``wrap``."""
    header = _longest_word(col.header)
    return max(header, *(len(c) for c in cells)) if cells else header


def table_width(widths: Sequence[int], *, edge: bool = True) -> int:
    """Characters a rich table with the default box takes: one space of padding each side of
    a cell, one rule between columns and (``edge``) one at each edge."""
    return sum(w + 2 for w in widths) + len(widths) + (1 if edge else -1)


def fit_tables(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    *,
    caption: str | None = None,
    overflow: Literal["table", "note"] = "table",
    elsewhere: str = "",
    styles: Sequence[str | None] | None = None,
) -> list[Table]:
    """The rows as one table, or several, when ``width`` is too narrow for every column.

    Args:
        title: the first table's title (later ones add "(continued)").
        columns: the columns, the first being the key repeated in every table.
        rows: cells as strings, one list per row, in column order.
        width: the console's width in characters; ``None``: no limit (one table).
        caption: text under the first table.
        overflow: where the columns that do not fit go: ``"table"``, further tables keyed by
            the first column; ``"note"``, nowhere on screen, the caption naming them.
        elsewhere: with ``"note"``, where the left-out columns can be read (e.g. results.csv).
        styles: one rich style per row (or None).

    Returns:
        rich Tables; each fits ``width`` when its columns can (a single non-wrapping cell
        wider than the console cannot, and is still never shortened).
    """
    widths = [_width(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    whole = [max(w, len(c.header)) for c, w in zip(columns, widths, strict=True)]
    if width is None or table_width(whole) <= width:
        widths = whole  # room for every header on one line
    # In a continuation table a free-text column may wrap: it needs only MIN_WRAP characters.
    narrow = [
        min(w, max(MIN_WRAP, _longest_word(c.header))) if c.wrap else w for c, w in zip(columns, widths)
    ]
    everything = list(range(len(columns)))
    keep = list(everything)
    movable = sorted((i for i in everything if columns[i].keep is not None), key=lambda i: columns[i].keep)
    moved: list[int] = []
    if width is not None:
        for i in movable:
            if table_width([widths[j] for j in keep]) <= width:
                break
            keep.remove(i)
            moved.append(i)
    moved.sort()
    text = caption
    groups = [keep]
    if moved and overflow == "note":
        note = f"not shown at this width ({elsewhere}): " if elsewhere else "not shown at this width: "
        note += ", ".join(columns[i].header for i in moved)
        text = f"{caption}; {note}" if caption else note
    elif moved:
        group = [0]
        for i in moved:
            # A free-text column shares a table only where it fits on one line.
            if len(group) > 1 and table_width([widths[j] for j in [*group, i]]) > width:  # type: ignore[operator]
                groups.append(group)
                group = [0]
            group.append(i)
        groups.append(group)
    tables = []
    for n, group in enumerate(groups):
        sizes = [narrow[i] if n > 0 else widths[i] for i in group]
        table = Table(
            title=title if n == 0 else f"{title} (continued)",
            caption=text if n == 0 else None,
            caption_justify="left",
            # Without its outer rules a table is 2 characters narrower: enough for a key and a
            # whole sha256 at 80 columns.
            show_edge=width is None or table_width(sizes) <= width,
        )
        for i in group:
            col = columns[i]
            table.add_column(
                Text(col.header, no_wrap=False),
                justify=col.justify,
                no_wrap=not col.wrap,
                # A fixed width for the others, so that rich breaks a long header between its
                # words instead of widening the column past what fit_tables counted.
                width=None if col.wrap and n > 0 else widths[i],
                min_width=narrow[i] if n > 0 else widths[i],
                overflow="fold",
            )
        for r, row in enumerate(rows):
            style = styles[r] if styles is not None else None
            table.add_row(*(Text(row[i]) for i in group), style=style)
        tables.append(table)
    return tables
