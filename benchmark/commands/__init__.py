"""CLI subcommands: one module each, each exposing ``register(subparsers)``.

``register`` adds the subcommand's parser and sets ``func`` (``func(args) -> int``, the
exit code) as its default. :mod:`srbench.cli` imports only the module of the command being
run: ``srbench --help`` and ``srbench --version`` read the one-line summaries below and
import no command module at all (so neither torch nor matplotlib).

:data:`COMMAND_MODULES` lists the modules in the order of ``srbench --help``;
:data:`COMMAND_SUMMARIES` maps each module to its command name and one-line summary. A
module missing from the summaries still works, but is imported for every ``--help``.
"""

COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "profile",
    "list_models",
    "weights",
    "data",
    "upscale",
    "export",
    "compare",
    "check",
    "diff",
    "report",
    "score",
    "sweep",
    "browser",
    "new_model",
)

#: ``module: (command name, one-line summary)``; the summary is the subcommand's ``help``.
COMMAND_SUMMARIES: dict[str, tuple[str, str]] = {
    "run": ("run", "measure models on a dataset (quality, runtime, complexity, memory)"),
    "profile": ("profile", "params, FLOPs, activations and conv calls of models (no data)"),
    "list_models": ("list", "registered models, scales, params, weights found or not"),
    "weights": ("weights", "list or fetch official checkpoints"),
    "data": ("data", "check, prepare and download SR datasets"),
    "upscale": ("upscale", "upscale images or folders with a model (PNG out)"),
    "export": ("export", "export a model's deployed (fused) form, e.g. to ONNX"),
    "compare": ("compare", "crop grid of HR, bicubic and each model's SR for one image of a run"),
    "check": ("check", "compare a results.json with a baseline; exit 1 on regressions"),
    "diff": (
        "diff",
        "paired comparison of two rows on the same images: time ratio, ΔPSNR-Y, ΔSSIM-Y, verdicts",
    ),
    "report": ("report", "merge runs into report.md/report.html with plots and claims vs measured"),
    "score": (
        "score",
        "rank results by an NTIRE Efficient SR edition's score (eligibility gates, Score_Final)",
    ),
    "sweep": ("sweep", "measure a grid (models x data x backends x dtypes x runs) locally or on Ray"),
    "browser": ("browser", "set up and check the browser backend (Chromium, ORT-Web); serve a web export"),
    "new_model": (
        "new-model",
        "write a minimal documented model file and its test (a new architecture in one file)",
    ),
}
