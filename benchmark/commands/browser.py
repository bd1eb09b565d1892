"""``srbench browser``: set up, check and serve what the browser backend needs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from srbench.commands.options import with_example
from srbench.core.console import make_console
from srbench.core.errors import SrbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "browser",
        help="set up and check the browser backend (Chromium, ORT-Web); serve a web export",
        description=(
            "The browser backend runs exported models in headless Chromium through ONNX Runtime "
            "Web. 'setup' installs the pinned onnxruntime-web from npm into srbench's cache (or "
            "$SRBENCH_ORT_WEB_DIR) and checks Chromium and Playwright; 'check' only checks; "
            "'serve DIR' serves a folder written by 'srbench export --format web' on 127.0.0.1."
        ),
        **with_example("srbench browser setup && srbench browser check"),
    )
    actions = p.add_subparsers(dest="browser_action", metavar="ACTION", required=True)
    actions.add_parser(
        "setup",
        help="npm install onnxruntime-web (pinned) and check the browser",
        **with_example("srbench browser setup"),
    )
    actions.add_parser(
        "check",
        help="say what the browser backend finds and what is missing",
        **with_example("srbench browser check"),
    )
    serve = actions.add_parser(
        "serve",
        help="serve a web export on 127.0.0.1 (Ctrl-C stops)",
        **with_example("srbench browser serve span-web --port 8000"),
    )
    serve.add_argument("folder", type=Path, help="folder written by 'srbench export --format web'")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.set_defaults(func=browser_command)


def browser_command(args: argparse.Namespace) -> int:
    if args.browser_action == "serve":
        return _serve(args.folder, args.port)
    from srbench.backends.browser.browser import find_chromium, import_playwright
    from srbench.backends.browser.ortweb import find_ort_web, install_ort_web, ort_web_prefix

    console = make_console()
    if args.browser_action == "setup":
        console.print(f"installing onnxruntime-web into {ort_web_prefix()} (npm)...", markup=False)
        ort = install_ort_web()
        console.print(f"ONNX Runtime Web {ort.version}: {ort.dist}", markup=False)
    problems = []
    for what, check in (
        ("Chromium", lambda: str(find_chromium())),
        ("Playwright for Python", lambda: import_playwright() and "installed"),
        ("ONNX Runtime Web", lambda: f"{find_ort_web().version} in {find_ort_web().dist}"),
    ):
        try:
            console.print(f"{what}: {check()}", markup=False)
        except SrbenchError as exc:
            problems.append(str(exc))
    if problems:
        # One line per missing piece, each with its install command; the first is the error.
        for line in problems[1:]:
            console.print(f"missing: {line}", markup=False)
        raise SrbenchError(problems[0])
    return 0


def _serve(folder: Path, port: int) -> int:
    from srbench.backends.browser.server import LocalServer

    if not (folder / "index.html").is_file() or not (folder / "srbench-web.json").is_file():
        raise SrbenchError(
            f"{folder} is not a web export (no index.html/srbench-web.json); write one with "
            "'srbench export --model span --format web -o DIR'"
        )
    console = make_console()
    with LocalServer({"/": folder}, port=port) as server:
        try:  # from the first line on: the URL printed means Ctrl-C is handled
            console.print(
                f"serving {folder} at {server.url} (127.0.0.1 only; Ctrl-C stops)",
                markup=False,
                soft_wrap=True,  # one line whatever the width: the URL must stay whole
            )
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped", markup=False)
    return 0
