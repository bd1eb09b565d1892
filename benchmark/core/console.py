"""Rich consoles for the CLI.

Tables go to stdout; progress bars, notes and errors to stderr. When the output is not a
terminal (a pipe, a CI log) rich would wrap tables at 80 columns and cut every header;
srbench widens it so a logged table stays readable.
"""

from __future__ import annotations

from rich.console import Console

#: Width used when writing tables to a pipe or file.
PIPE_WIDTH = 200


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr), widened when not attached to a terminal."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=PIPE_WIDTH)
    return console
