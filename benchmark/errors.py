"""The one error type users see.

A :class:`SrbenchError` carries a one-line message that names the file or option at fault
and says what to do. The CLI prints it without a traceback (unless ``--debug``) and exits
with :attr:`SrbenchError.exit_code`.
"""

from __future__ import annotations


class SrbenchError(Exception):
    """A user-facing error: bad input, missing file, mismatched checkpoint, ..."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
