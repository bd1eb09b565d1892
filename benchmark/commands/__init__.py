"""CLI subcommands: one module each, each exposing ``register(subparsers)``.

``register`` adds the subcommand's parser and sets ``func`` (``func(args) -> int``, the
exit code) as its default. :mod:`srbench.cli` imports the modules listed in
:data:`COMMAND_MODULES`, in that order (which is the order of ``srbench --help``).
"""

COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "profile",
    "list_models",
    "weights",
    "data",
    "upscale",
    "compare",
    "check",
    "report",
    "score",
)
