"""Finding and launching the system Chromium through Playwright for Python.

No browser is ever downloaded: srbench uses the Chromium the system has (Debian's
``chromium`` package, or ``$SRBENCH_CHROMIUM``). The browser is driven over a pipe, so it
opens no port, and every request to a host other than 127.0.0.1 fails: background
networking is off, host names other than ``localhost`` do not resolve, and any other
address goes to a proxy on a closed loopback port.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from srbench.core.errors import SrbenchError

#: Where Chromium is looked for, in order, after ``$SRBENCH_CHROMIUM``. Debian's
#: ``/usr/bin/chromium`` is a shell wrapper; its binary is launched directly.
CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome-stable",
    "google-chrome",
)
INSTALL_CHROMIUM = "apt-get install -y chromium"
INSTALL_PLAYWRIGHT = "python -m pip install 'srbench[browser]'"

#: Flags that keep the browser on loopback (see the module docstring) and quiet.
_LOOPBACK_ONLY = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost",
]
#: Per provider: the flags that expose it in headless Chromium. WebGPU needs the unsafe
#: flag even for the software (SwiftShader) adapter a GPU-less machine offers.
PROVIDER_FLAGS = {
    "wasm": [],
    "webgpu": ["--enable-unsafe-webgpu", "--enable-features=Vulkan"],
    "webgl": ["--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
}


def find_chromium() -> Path:
    """The Chromium executable: ``$SRBENCH_CHROMIUM`` or the first of :data:`CHROMIUM_CANDIDATES`.

    Raises :class:`SrbenchError` (one line, with the install command) when none exists.
    """
    env = os.environ.get("SRBENCH_CHROMIUM")
    if env:
        path = Path(env)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise SrbenchError(
            f"SRBENCH_CHROMIUM={env} is not an executable file; point it at a Chromium binary or unset it"
        )
    for name in CHROMIUM_CANDIDATES:
        found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return Path(found)
    raise SrbenchError(
        f"no Chromium found (looked for {', '.join(CHROMIUM_CANDIDATES)}); install it with "
        f"'{INSTALL_CHROMIUM}' or set SRBENCH_CHROMIUM=/path/to/chromium"
    )


def import_playwright() -> Any:
    """``playwright.sync_api.sync_playwright``, or a one-line error saying how to install it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SrbenchError(
            f"Playwright for Python is not installed; install it with {INSTALL_PLAYWRIGHT} "
            "(the system Chromium is used: never run 'playwright install')"
        ) from None
    return sync_playwright


@contextmanager
def launch_chromium(provider: str = "wasm", *, extra_args: list[str] | None = None) -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed on exit.

    ``provider`` adds the flags :data:`PROVIDER_FLAGS` names for it.
    """
    executable = find_chromium()
    sync_playwright = import_playwright()
    args = [*_LOOPBACK_ONLY, *PROVIDER_FLAGS.get(provider, []), *(extra_args or [])]
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=str(executable), headless=True, args=args)
        except Exception as exc:  # Playwright's own error type; the first line says why
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SrbenchError(
                f"Chromium at {executable} did not start ({first}); check it runs: {executable} --version"
            ) from None
        try:
            yield browser
        finally:
            browser.close()
