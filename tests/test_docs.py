"""The README stays one screen, its links land, and its two quick-start commands are the ones CI runs.

``nox -s docs`` (``mkdocs build --strict``) checks the links inside ``docs/``; MkDocs does not
read README.md or CONTRIBUTING.md, so their links are checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: Markdown links ``[text](target)``; images and links inside code spans are not used there.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _fenced_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_fits_a_screen_of_150_lines() -> None:
    assert len(README.read_text().splitlines()) <= 150


def test_relative_links_outside_docs_point_to_files_that_exist() -> None:
    broken = []
    for doc in (README, ROOT / "CONTRIBUTING.md"):
        for target in _LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
                continue
            path = target.split("#", 1)[0]
            if path and not (doc.parent / path).exists():
                broken.append(f"{doc.name}: {target}")
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {Path(t.split("#", 1)[0]).name for t in _LINK.findall(README.read_text()) if "docs/" in t}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    # Pages added by other work may arrive before their README line; the core set must be there.
    core = {
        "index.md", "metrics.md", "results-schema.md", "runtime.md", "datasets.md", "models.md",
        "backends.md", "ntire.md", "sweeps.md", "reports.md", "performance.md", "architecture.md",
        "bad-inputs.md",
    }  # fmt: skip
    assert core <= pages
    assert core - {"index.md"} <= linked, sorted(core - linked)


def test_quick_start_commands_are_the_ones_ci_and_the_quickstart_session_run() -> None:
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in _fenced_blocks(quick, "bash")]
    assert len(commands) == 2, commands
    first, second = commands
    # The second is the test command .ci/run runs verbatim.
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert second in ci, (second, ci[-3:])
    # The first installs torch pinned, then the project (not editable), then runs the models
    # whose outcome the quickstart session asserts.
    noxfile = (ROOT / "noxfile.py").read_text()
    pin = re.search(r'^TORCH = "(torch==[\d.]+)"', noxfile, flags=re.M)
    assert pin and first.startswith(f"python -m pip install {pin.group(1)} && python -m pip install . && ")
    models = re.search(r'^QUICKSTART_MODELS = "([\w,]+)"', noxfile, flags=re.M)
    assert models and first.endswith(f"srbench run --models {models.group(1)}")
    assert f"python -m pip install {pin.group(1)} nox && nox" == second
