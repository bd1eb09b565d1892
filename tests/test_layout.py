"""The package layout: rooms import only rooms below them (checked on every import, inside
functions too), no module-level import cycle, nothing in the root shadows the installed package,
the CLI's help imports no heavy library."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from srbench.commands import COMMAND_MODULES, COMMAND_SUMMARIES
from srbench.models.registry import all_entries

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def test_no_folder_in_the_root_shadows_the_installed_package() -> None:
    # Run from the project root, sys.path[0] is the root: a folder named srbench there
    # would hide the installed package from every worker process (the issue-12 bug).
    assert not (ROOT / "srbench").exists()
    assert not (ROOT / "srbench.py").exists()


#: The rooms of the package, lowest first: a module may import its own room and rooms of a
#: lower rank, never one of the same rank or above (docs/architecture.md). ``""`` is the
#: package root (``srbench.__version__``).
RANKS = {
    "": 0,
    "core": 0,
    "data": 1,
    "measure": 2,
    "models": 2,
    "backends": 3,
    "results": 4,
    "runner": 5,
    "ntire": 6,
    "reporting": 6,
    "commands": 7,
    "cli": 8,
    "api": 8,
    "__main__": 9,
    "selfcheck": 9,
}

#: The one deliberate sideways import: the bicubic row *is* srbench's MATLAB bicubic resampler.
ALLOWED_SIDEWAYS = {("srbench.models.bicubic", "srbench.data.imresize")}
#: The package root's one upward import: its module ``__getattr__`` loads the Python API
#: (``srbench.run``, ``srbench.load_results``...; srbench.api, above every room) on first use,
#: inside the function only, so ``import srbench`` and ``srbench --help`` import no torch.
#: No other module may import upward, lazily or not.
ROOT_API = ("srbench", "srbench.api")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    line: int
    in_function: bool
    names: tuple[str, ...] = ()  # the names of ``from target import ...``

    def modules(self, known: set[str]) -> set[str]:
        """The modules this import loads: ``from pkg import mod`` loads ``pkg.mod``."""
        subs = {f"{self.target}.{n}" for n in self.names} & known
        return subs or ({self.target} if self.target in known else {self.target.rsplit(".", 1)[0]})


def module_name(path: Path, package_dirs: dict[str, Path]) -> str:
    """Dotted name of ``path`` under the package-dir mapping (``srbench`` -> benchmark/, ...)."""
    for dotted, folder in sorted(package_dirs.items(), key=lambda kv: -len(kv[0])):
        if path.is_relative_to(folder):
            parts = [*dotted.split("."), *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def srbench_imports(path: Path, name: str) -> list[Import]:
    """Every ``srbench`` import in one file, module level and inside functions alike."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("srbench"):
                names = tuple(a.name for a in child.names)
                found.append(Import(name, child.module, child.lineno, inner, names))
            elif isinstance(child, ast.Import):
                targets = [a.name for a in child.names if a.name.startswith("srbench")]
                found.extend(Import(name, t, child.lineno, inner) for t in targets)
            visit(child, inner)

    visit(tree, False)
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports that go up or sideways between rooms, and unknown rooms."""
    bad = []
    for imp in imports:
        a, b = room(imp.source), room(imp.target)
        if a == b or (imp.source, imp.target) in ALLOWED_SIDEWAYS:
            continue
        if (imp.source, imp.target) == ROOT_API and imp.in_function:
            continue
        if a not in RANKS or b not in RANKS:
            bad.append(f"{imp.source}:{imp.line} is in or imports an unranked room ({a!r} -> {b!r})")
        elif RANKS[b] >= RANKS[a] and b != "":
            bad.append(f"{imp.source}:{imp.line} imports {imp.target} ({a} may not import {b})")
    return bad


def module_cycles(imports: list[Import], modules: set[str]) -> list[list[str]]:
    """Cycles among module-level imports (each a strongly connected component of >1 module)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if imp.in_function:
            continue
        graph[imp.source].update(m for m in imp.modules(modules) if m in modules and m != imp.source)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def scan(package_dirs: dict[str, Path]) -> tuple[list[Import], set[str]]:
    imports: list[Import] = []
    modules: set[str] = set()
    for folder in package_dirs.values():
        for path in sorted(folder.rglob("*.py")):
            name = module_name(path, package_dirs)
            modules.add(name)
            imports.extend(srbench_imports(path, name))
    return imports, modules


PACKAGE_DIRS = {"srbench": ROOT / "benchmark", "srbench.models": MODELS}


def test_every_import_goes_down_the_layers() -> None:
    imports, _ = scan(PACKAGE_DIRS)
    assert len(imports) > 300  # the scan sees the package (module- and function-level imports)
    assert layer_violations(imports) == []


def test_no_module_level_import_cycle() -> None:
    imports, modules = scan(PACKAGE_DIRS)
    assert module_cycles(imports, modules) == []


#: Imports inside functions, outside the command line, each for a reason that a module-level
#: import cannot serve. Everything else is imported at the top of its module.
ALLOWED_LAZY = {
    # `srbench score` of text files (results.txt, CSV) stays free of torch, which the results
    # schema's records import; a results.json needs them.
    ("srbench.ntire.score", "srbench.results.schema"),
    # The package root's API (srbench.run(), load_results...) sits above every room: the root
    # imports it on first use, so that `import srbench` and `srbench --help` load no torch.
    ROOT_API,
    # The compiled kernels import metrics' constants; compiling them costs an import, paid
    # only when a kernel is first used.
    ("srbench.measure.metrics", "srbench.measure"),
    # The registry fills itself on first use: zoo and user code import the registry.
    ("srbench.models.registry", "srbench.models"),
    ("srbench.models.registry", "srbench.models.usercode"),
    # A Ray worker imports the measuring code only after its forkserver is up.
    ("srbench.runner.launchers.ray_engine", "srbench.runner.forkserver"),
    ("srbench.runner.launchers.ray_engine", "srbench.runner.sweep"),
    # The engines package names both engines; the Ray one imports ray, so each is imported
    # when chosen.
    ("srbench.runner.launchers", "srbench.runner.launchers.local"),
}


def test_imports_inside_functions_only_where_the_command_line_or_a_reason_needs_them() -> None:
    imports, _ = scan(PACKAGE_DIRS)
    lazy = {
        (imp.source, imp.target)
        for imp in imports
        if imp.in_function and room(imp.source) not in ("commands", "cli", "__main__")
    }
    assert lazy == ALLOWED_LAZY


def test_every_room_is_ranked() -> None:
    rooms = {p.name for p in (ROOT / "benchmark").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "benchmark").glob("*.py")}
    assert rooms | modules | {"models"} <= set(RANKS) | {"__init__"}


def _fixture_package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return {"srbench": tmp_path / "pkg"}


def test_the_layer_check_catches_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    dirs = _fixture_package(
        tmp_path,
        {
            "__init__.py": "import srbench.api\n",
            "api.py": "",
            "core/__init__.py": "",
            "core/paths.py": "def f():\n    from srbench.runner.protocol import measure_model\n",
            "runner/__init__.py": "",
            "runner/protocol.py": "from srbench.core.paths import f\n",
            "measure/__init__.py": "",
            "measure/timing.py": "from srbench.models.registry import x\n",
        },
    )
    imports, _ = scan(dirs)
    bad = layer_violations(imports)
    assert any("srbench.core.paths:2 imports srbench.runner.protocol" in b for b in bad), bad
    assert any("srbench:1 imports srbench.api" in b for b in bad), bad  # the root: lazily only
    assert any("measure may not import models" in b for b in bad), bad  # sideways, same rank
    assert not any("srbench.runner.protocol:" in b for b in bad)  # downward is fine


def test_the_cycle_check_catches_a_cycle(tmp_path: Path) -> None:
    dirs = _fixture_package(
        tmp_path,
        {
            "__init__.py": "",
            "runner/__init__.py": "",
            "runner/a.py": "from srbench.runner.b import x\n",
            "runner/b.py": "from srbench.runner import c\n",
            "runner/c.py": "import srbench.runner.a\n",
            "runner/d.py": "def f():\n    from srbench.runner.a import y\n",
        },
    )
    imports, modules = scan(dirs)
    assert module_cycles(imports, modules) == [["srbench.runner.a", "srbench.runner.b", "srbench.runner.c"]]


def test_each_architecture_module_registers_its_own_models() -> None:
    # zoo.py is a list of imports; every builder lives in its architecture's module.
    zoo = ast.parse((MODELS / "zoo.py").read_text(encoding="utf-8"))
    assert all(isinstance(n, (ast.Expr, ast.ImportFrom)) for n in zoo.body)
    for entry in all_entries():
        if entry.name.startswith(("spandrel-", "test_")) or entry.origin != "builtin":
            continue
        module = entry.builder.__module__
        assert module.startswith("srbench.models.") and module != "srbench.models.zoo", entry.name
        arch_file = MODELS / (module.rsplit(".", 1)[1] + ".py")
        assert f'"{entry.name}"' in arch_file.read_text(encoding="utf-8") or entry.name.startswith("fdat_")


def test_every_command_has_a_summary_so_help_imports_nothing() -> None:
    assert set(COMMAND_SUMMARIES) == set(COMMAND_MODULES)


@pytest.mark.parametrize("module_name", COMMAND_MODULES)
def test_summaries_match_what_each_command_registers(module_name: str) -> None:
    # The stub shown by `srbench --help` must say what the real subcommand says.
    import argparse
    import importlib

    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"srbench.commands.{module_name}").register(sub)
    (action,) = sub._choices_actions
    assert (action.dest, action.help) == COMMAND_SUMMARIES[module_name]


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_neither_torch_nor_matplotlib(argv: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "srbench", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "srbench.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("torch", "matplotlib", "numpy")}


def test_claims_references_ship_inside_the_package() -> None:
    from srbench.reporting import claims

    folder = claims.default_reference_dir()
    assert folder.is_relative_to(Path(claims.__file__).parent)
    assert len(claims.load_references()) >= 5
