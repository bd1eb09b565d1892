"""Every option a message tells the user to pass exists where the message is printed (issue 19, kind 1).

The walk: every string literal in the package (f-string parts included; docstrings, argparse
declarations and help texts left out) that names an option ``--xxx`` is a hint. When the string
names the command itself (``srbench data check PATH --scale 4``), the option must be accepted by
that command. Otherwise it must be accepted by every command that can print it: the commands
whose module imports (directly or through other srbench modules, function-level imports
included) the module holding the string. ``srbench`` global options (``--debug``, ``--help``,
``--version``) are accepted everywhere.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

import srbench
from srbench.cli import build_parser

PACKAGE = Path(srbench.__file__).parent
MODELS = PACKAGE.parent / "models"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
NAMED_COMMAND = re.compile(r"srbench ((?:data|weights) [a-z]+|[a-z_]+)")
GLOBAL_OPTIONS = {"--debug", "--help", "--version"}
#: Modules that are not reached from a command (``nox -s bench`` is its own program).
NOT_COMMANDS = {"srbench.selfcheck.bench"}
#: (module, function, command): hints the name-based call graph reaches but the command cannot
#: print, each with the reason.
UNREACHABLE = {
    # compare re-reads the dataset recorded by 'srbench run' and prefixes any error with the
    # run's folder and "srbench run" options (srbench.reporting.compare.load_comparison).
    **{
        ("srbench.data.datasets", f, "compare"): "run's options"
        for f in (
            "_build_div2k",
            "_build_ntire",
            "_build_benchmark",
            "_detect_layout",
            "_validate_options",
            "_existing_dir",
            "resolve_dataset",
            "_check_command",
            "Dataset._probe",
        )
    },
    ("srbench.data.imageio", "read_image", "compare"): "run's options",
    # Tables name a recorded backend through backend_caption, which catches get_backend's error;
    # profile and upscale never choose a backend.
    **{
        ("srbench.backends.registry", "get_backend", c): "caught by the caption"
        for c in ("check", "compare", "diff", "export", "profile", "report", "score", "upscale")
    },
    # profile counts on the CPU: it never resolves a device or dtype or places a model.
    **{
        ("srbench.backends.devices", f, "profile"): "profile counts on the CPU"
        for f in ("resolve_device", "check_dtype")
    },
    ("srbench.backends.pytorch", "TorchEager.memory_meter", "profile"): "profile counts on the CPU",
    # A sweep's cells take run's defaults for these (fp32 only, threads from the CPUs per cell,
    # no --ntire-repo/--teams).
    **{
        (m, f, "sweep"): "run's defaults"
        for m, f in (
            ("srbench.models.usercode", "parse_teams"),
            ("srbench.models.usercode", "ntire_team_tokens"),
            ("srbench.runner.protocol", "deploy_stage"),
            ("srbench.backends.devices", "parse_threads"),
            ("srbench.results.environment", "oversubscription_notes"),
            ("srbench.backends.onnxruntime.precision", "check_calibration"),
            ("srbench.backends.onnxruntime.precision", "load_calibration"),
            ("srbench.backends.onnxruntime.precision", "check_no_overlap"),
            ("srbench.backends.onnxruntime.precision", "make_variant"),
            ("srbench.commands.run", "parse_precisions"),
        )
    },
    # The caption describes the run's threads; it is no advice to pass an option.
    **{("srbench.results.tables", "caption", c): "a description" for c in ("report", "sweep")},
    # upscale places its model with TorchBackend.prepare; the run's memory meter never runs there.
    ("srbench.backends.pytorch", "TorchEager.memory_meter", "upscale"): "run's meter only",
    # Only run and sweep check a model's dtypes (validate_checkpoints); these never call it.
    **{
        ("srbench.models.registry", "ModelEntry.check_dtype", c): "run and sweep only"
        for c in ("list", "profile", "weights fetch", "weights list")
    },
    # upscale builds its RunConfig with defaults for these; the checks cannot fire there.
    ("srbench.runner.checks", "check_config", "upscale"): "defaults",
    # The --weights file check fires only for an explicit path, which list/weights never pass.
    **{
        ("srbench.models.weights", "resolve_weights", c): "no explicit path"
        for c in (
            "list",
            "weights fetch",
            "weights list",
        )
    },
    # weights list builds each model at its registered scales only.
    ("srbench.models.registry", "ModelEntry.build", "weights list"): "registered scales",
    ("srbench.models.registry", "ModelEntry.check_scale", "weights list"): "registered scales",
    # By name only: weights list never calls fetch_dataset ("fetch" methods elsewhere).
    ("srbench.core.download", "fetch_dataset", "weights list"): "name collision",
    # run --protocol scores with the edition's default baseline and never passes a name, so
    # the messages about a named --baseline cannot fire there (nor in sweep, which never scores).
    **{("srbench.ntire.score", "resolve_baseline", c): "no baseline name" for c in ("run", "sweep")},
    # sweep imports prepare_output_dir from the orchestrator; it resumes by cell, never through
    # the run-level _resume_base whose message names --force.
    ("srbench.runner.orchestrator", "_resume_base", "sweep"): "sweep resumes by cell",
    # By name only: sweep never calls run's run_command/challenge_command.
    **{("srbench.commands.run", f, "sweep"): "name collision" for f in ("run_command", "challenge_command")},
    ("srbench.ntire.challenge", "resolve_split_data", "sweep"): "name collision",
    # sweep configures each cell from run's defaults: --ntire-repo/--teams are always unset there.
    **{
        (m, f, "sweep"): "run's defaults"
        for m, f in (
            ("srbench.commands.options", "model_tokens"),
            ("srbench.models.usercode", "team_files"),
            ("srbench.models.usercode", "ntire_team_paths"),
        )
    },
    # run's deploy stage exports at the default opset, which the --opset check always passes.
    **{("srbench.backends.onnx_export", "export_onnx", c): "default opset" for c in ("run", "sweep")},
    # profile builds models offline for counting and never prints a row's weights reason.
    ("srbench.models.weights", "missing_weights_reason", "profile"): "reason not printed",
}


def _module_files() -> dict[str, Path]:
    files = {}
    for root, prefix in ((PACKAGE, "srbench"), (MODELS, "srbench.models")):
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            files[".".join([prefix, *parts])] = path
    return files


def _imports(tree: ast.AST, module: str, modules: dict[str, Path]) -> set[str]:
    """The srbench modules ``tree`` (a module, or one import statement) imports."""
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import
                base = ".".join(module.split(".")[: -node.level] + [node.module])
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's real parser ("data check" for nested ones); the CLI builds only the
    parser of the command being run, so build each in turn."""
    from srbench.commands import COMMAND_MODULES, COMMAND_SUMMARIES

    out: dict[str, argparse.ArgumentParser] = {}
    for module in COMMAND_MODULES:
        name = COMMAND_SUMMARIES.get(module, (module,))[0]
        parser = build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        p = sub.choices[name]
        out[name] = p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child, cp in action.choices.items():
                    out[f"{name} {child}"] = cp
    return out


def _accepted(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings} | GLOBAL_OPTIONS


def _hint_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string that could reach a user, f-string placeholders as ``{}``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("add_argument", "add_parser", "add_argument_group", "add_subparsers"):
                for sub in ast.walk(node):
                    skip.add(id(sub))
        if isinstance(node, (ast.List, ast.Tuple)):  # ["npm", "install", "--prefix", ...]: an argv
            for elt in node.elts:
                if (
                    isinstance(elt, ast.Constant)
                    and isinstance(elt.value, str)
                    and OPTION.fullmatch(elt.value)
                ):
                    skip.add(id(elt))
        if isinstance(node, ast.arguments):  # defaults are values, not messages
            for sub in [*node.defaults, *node.kw_defaults]:
                if sub is not None:
                    skip.add(id(sub))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            for v in node.values:
                skip.add(id(v))
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def _hints() -> list[tuple[str, int, str, str | None]]:
    """(module, line, option, named command or None) for every option named in a message."""
    found = []
    COMMANDS = set(_command_parsers())
    for module, path in _module_files().items():
        if module in NOT_COMMANDS:
            continue
        for line, text in _hint_strings(ast.parse(path.read_text(encoding="utf-8"))):
            named = None
            pos = 0
            for m in re.finditer(rf"{NAMED_COMMAND.pattern}|{OPTION.pattern}", text):
                if named is not None and re.search(r"[;)]| or ", text[pos : m.start()]):
                    named = None  # the named command's phrase ended ("... --scale 4) or use --layout")
                if m.group(1) is not None:
                    pos = m.end()
                    words = m.group(1).split()
                    # "srbench upscales 8-bit images" is prose, not a command.
                    named = next(
                        (" ".join(words[:n]) for n in (2, 1) if " ".join(words[:n]) in COMMANDS), named
                    )
                    continue
                if len(m.group(0)) > 3:  # "--o" is a matplotlib line style, not an option
                    found.append((module, line, m.group(0), named))
                pos = m.end()
    return found


class _Scopes(ast.NodeVisitor):
    """Per module: each function's (and class's) referenced names, and where strings sit."""

    def __init__(self, module: str, modules: dict[str, Path]) -> None:
        self.module, self.modules = module, modules
        self.stack: list[str] = ["<module>"]
        self.refs: dict[str, set[str]] = {"<module>": set()}
        self.imported: dict[str, str] = {}  # local name -> "module:name" or "module:"
        self.owner: dict[int, str] = {}  # line -> innermost scope

    def _scope(self, node: ast.AST, name: str) -> None:
        qual = name if self.stack[-1] == "<module>" else f"{self.stack[-1]}.{name}"
        self.refs.setdefault(qual, set())
        self.refs[self.stack[-1]].add(name)  # a nested def/method belongs to its parent
        if self.stack[-1] != "<module>":
            self.refs[self.stack[-1]].add(qual)
        self.stack.append(qual)
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            self.owner[line] = qual
        self.generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_Name(self, node: ast.Name) -> None:
        self.refs[self.stack[-1]].add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.refs[self.stack[-1]].add(node.attr)  # obj.method(): any method of that name
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for target in _imports(node, self.module, self.modules):
            for alias in node.names:
                if target.endswith("." + alias.name) or target == f"{node.module}.{alias.name}":
                    self.imported[alias.asname or alias.name] = f"{target}:"
                elif target == node.module:
                    self.imported[alias.asname or alias.name] = f"{target}:{alias.name}"
            if self.stack[-1] != "<module>":  # a function-level import is a use
                self.refs[self.stack[-1]].update(a.asname or a.name for a in node.names)


def _reach() -> dict[tuple[str, str], set[str]]:
    """(module, scope) -> the commands that can print the strings in that scope.

    A call graph by name: from each command's function, every function, class (with its
    methods) and module those functions name, across srbench's modules.
    """
    modules = _module_files()
    scopes = {}
    for m, p in modules.items():
        v = _Scopes(m, modules)
        v.visit(ast.parse(p.read_text(encoding="utf-8")))
        scopes[m] = v
    methods: dict[str, set[tuple[str, str]]] = {}  # short name -> scopes of that name anywhere
    for m, v in scopes.items():
        for qual in v.refs:
            methods.setdefault(qual.rpartition(".")[2], set()).add((m, qual))
    reach: dict[tuple[str, str], set[str]] = {}
    for command, parser in _command_parsers().items():
        func = parser.get_default("func")
        if func is None:
            continue
        seen: set[tuple[str, str]] = set()
        todo = [(func.__module__, func.__name__)]
        while todo:
            m, qual = todo.pop()
            if (m, qual) in seen or m not in scopes:
                continue
            seen.add((m, qual))
            v = scopes[m]
            for name in v.refs.get(qual, ()):
                if name in v.imported:
                    target, _, attr = v.imported[name].partition(":")
                    todo.append((target, attr or "<module>"))
                    for sub in scopes.get(target, _Scopes(target, modules)).refs:
                        if attr and sub.startswith(attr + "."):
                            todo.append((target, sub))
                elif name in v.refs:
                    todo.append((m, name))
                    todo.extend((m, sub) for sub in v.refs if sub.startswith(name + "."))
                else:  # obj.method(): any function or method of that name in srbench
                    todo.extend(t for t in methods.get(name, ()) if t[0] in {x[0] for x in seen})
        for key in seen:
            reach.setdefault(key, set()).add(command)
    return reach


def test_every_hinted_option_is_accepted_where_it_is_printed() -> None:
    parsers = _command_parsers()
    accepted = {c: _accepted(p) for c, p in parsers.items()}
    reach = _reach()
    owners = {}
    for m, p in _module_files().items():
        v = _Scopes(m, _module_files())
        v.visit(ast.parse(p.read_text(encoding="utf-8")))
        owners[m] = v.owner
    wrong = []
    hints = _hints()
    assert len(hints) > 50  # the walk sees the messages (guards against a broken walker)
    for module, line, option, named in hints:
        if named is not None:
            commands = {c for c in accepted if c == named or c.startswith(named + " ")}
            commands = {named} if named in accepted else commands
            bad = sorted(c for c in commands if option not in accepted[c])
        else:
            scope = owners[module].get(line, "<module>")
            bad = sorted(
                c
                for c in reach.get((module, scope), ())
                if option not in accepted[c] and (module, scope, c) not in UNREACHABLE
            )
        if bad:
            wrong.append(f"{module}:{line}: {option} is not an option of {', '.join(bad)}")
    assert wrong == []


@pytest.mark.parametrize(
    ("command", "option"),
    [("run", "--allow-16bit"), ("upscale", "--allow-16bit"), ("data check", "--data")],
)
def test_issue_cases_accept_the_hinted_option(command: str, option: str) -> None:
    assert option in _accepted(_command_parsers()[command])


def test_option_mirrors_match_their_sources() -> None:
    """commands.options keeps torch-free copies of choices; they must equal the real ones."""
    from srbench.backends.devices import DTYPES
    from srbench.backends.tiling import DEFAULT_OVERLAP
    from srbench.commands import options
    from srbench.data.datasets import DEGRADATIONS, LAYOUTS, SPLITS

    assert options.LAYOUT_CHOICES == LAYOUTS
    assert options.SPLIT_CHOICES == SPLITS
    assert options.DEGRADATION_CHOICES == DEGRADATIONS
    assert options.DTYPE_CHOICES == tuple(DTYPES)
    assert options.DEFAULT_TILE_OVERLAP == DEFAULT_OVERLAP
