"""The package layout: nothing in the root shadows the installed package, models/ owns its
knowledge and stays free of the harness, the CLI's help imports no heavy library."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def _srbench_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("srbench"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("srbench"))
    return found


#: The one deliberate exception: the bicubic row *is* srbench's MATLAB bicubic resampler.
_ALLOWED_HARNESS_IMPORTS = {("bicubic.py", "srbench.data.imresize")}


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.py")), ids=lambda p: p.name)
def test_models_do_not_import_the_harness(path: Path) -> None:
    for module in _srbench_imports(path):
        allowed = module.startswith("srbench.models") or module == "srbench.errors"
        assert allowed or (path.name, module) in _ALLOWED_HARNESS_IMPORTS, f"{path.name} imports {module}"


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
