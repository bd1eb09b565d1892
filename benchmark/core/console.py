"""Rich consoles for the CLI.

Tables go to stdout; progress bars, notes and errors to stderr. When the output is not a
terminal (a pipe, a CI log) rich would wrap tables at 80 columns; srbench widens it so a
logged table stays readable, unless ``$COLUMNS`` names a width (then that width is used, as
on a terminal: every table fits it without cutting a header, a model name or a number).
"""

from __future__ import annotations

import os

from rich.console import Console

#: Width used when writing tables to a pipe or file.
PIPE_WIDTH = 200


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr), widened when not attached to a terminal."""
    console = Console(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        console = Console(stderr=stderr, width=PIPE_WIDTH)
    return console
