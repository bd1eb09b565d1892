"""The one error type users see.

A :class:`SrbenchError` carries a one-line message that names the file or option at fault
and says what to do. The CLI prints it without a traceback (unless ``--debug``) and exits
with :attr:`SrbenchError.exit_code`.
"""

from __future__ import annotations

import re


class SrbenchError(Exception):
    """A user-facing error: bad input, missing file, mismatched checkpoint, ..."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


#: Longest cause quoted from an exception in a message (cut at a word boundary, with "…").
CAUSE_CHARS = 160


#: Terminal colour/style escape sequences (CSI ... letter), removed from foreign messages.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def cause(exc: BaseException, limit: int = CAUSE_CHARS) -> str:
    """The first non-empty line of ``exc``'s message (or its type name), at most ``limit``
    characters, cut between words (never mid-word) with an ellipsis: the part of a foreign
    exception that goes into a one-line :class:`SrbenchError`."""
    plain = _ANSI.sub("", str(exc))  # torch colours some messages; a one-line error is plain text
    text = next((line.strip() for line in plain.splitlines() if line.strip()), "") or type(exc).__name__
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") or text[:limit]
    return cut + "…"
