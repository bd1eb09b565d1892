"""The ``srbench`` command line.

Every subcommand lives in :mod:`srbench.commands`. Only the module of the command being
run is imported: ``srbench --help``, ``srbench --version`` and a mistyped command import
none (no torch, no matplotlib), which keeps them well under a second. User errors
(:class:`SrbenchError`) print one line, ``srbench: error: ...``, and exit with the error's
code (2 by default); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings
from collections.abc import Sequence

from srbench import __version__
from srbench.commands import COMMAND_MODULES, COMMAND_SUMMARIES
from srbench.core.errors import SrbenchError


class _Parser(argparse.ArgumentParser):
    """argparse with srbench's one-line error style (argparse's own usage dump is noise)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"srbench: error: {message}; see '{self.prog} --help'\n")
        raise SystemExit(2)


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (its first token that is not a global option)."""
    for token in argv:
        if token in ("--debug",):
            continue
        return None if token.startswith("-") else token
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (all of them when ``command`` is None
    and a module has no summary in :data:`COMMAND_SUMMARIES`; stubs stand for the rest)."""
    parser = _Parser(
        prog="srbench",
        description="Benchmark efficient super-resolution networks: quality, runtime and complexity.",
    )
    parser.add_argument("--version", action="version", version=f"srbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        summary = COMMAND_SUMMARIES.get(name)
        if summary is not None and summary[0] != command:
            sub.add_parser(summary[0], help=summary[1])  # a stub: enough for --help and choices
            continue
        module = importlib.import_module(f"srbench.commands.{name}")
        module.register(sub)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line, ``srbench: warning: ...`` (the source line is noise to a user)."""
    return f"srbench: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``srbench`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    formatter = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _format_warning
    try:
        return _dispatch(argv, debug)
    finally:
        warnings.formatwarning = formatter


def _dispatch(argv: list[str], debug: bool) -> int:
    try:
        try:
            args = build_parser(_command_of(argv)).parse_args(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
            return int(exc.code or 0)
        return int(args.func(args) or 0)
    except SrbenchError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"srbench: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("srbench: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
