"""ONNX Runtime Web: the pinned npm package, where srbench keeps it, and which files a
provider needs.

``srbench browser setup`` runs ``npm install onnxruntime-web@ORT_WEB_VERSION`` into the
ORT-Web folder: ``$SRBENCH_ORT_WEB_DIR`` when set, else ``$SRBENCH_CACHE_DIR/ort-web/VERSION``
(default cache ``~/.cache/srbench``). Nothing is ever fetched from a CDN: the page loads
ORT-Web from that folder through the local server, and ``srbench export --format web``
copies the files it needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from srbench.core.errors import SrbenchError
from srbench.core.paths import cache_root

#: The ONNX Runtime Web release srbench drives (``npm install onnxruntime-web@1.30.0``).
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_PACKAGE = f"onnxruntime-web@{ORT_WEB_VERSION}"
SETUP_COMMAND = "srbench browser setup"

#: Browser providers and the ORT-Web bundle each loads. ``ort.wasm.min.js`` carries only the
#: WASM (CPU) engine: about half the bytes of ``ort.min.js`` and the same speed on WASM.
PROVIDERS = ("wasm", "webgpu", "webgl")
BUNDLES = {
    "wasm": ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": (
        "ort.webgpu.min.js",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    ),
    "webgl": ("ort.webgl.min.js",),
}


@dataclass(frozen=True)
class OrtWeb:
    """An installed ORT-Web: its ``dist`` folder and the package's version."""

    dist: Path
    version: str

    def files(self, provider: str) -> list[Path]:
        """The files ``provider`` loads (script, worker module, wasm binary)."""
        return [self.dist / name for name in BUNDLES[provider]]


def ort_web_prefix() -> Path:
    """The npm prefix ORT-Web is installed into (see the module docstring)."""
    env = os.environ.get("SRBENCH_ORT_WEB_DIR")
    return Path(env).expanduser() if env else cache_root() / "ort-web" / ORT_WEB_VERSION


def _dist_candidates(prefix: Path) -> list[Path]:
    # SRBENCH_ORT_WEB_DIR may name the npm prefix, the package folder or its dist/ folder.
    return [prefix / "node_modules" / "onnxruntime-web" / "dist", prefix / "dist", prefix]


def find_ort_web(provider: str = "wasm", prefix: Path | None = None) -> OrtWeb:
    """The installed ORT-Web with the files ``provider`` needs, at the pinned version, in
    ``prefix`` (default :func:`ort_web_prefix`).

    Raises :class:`SrbenchError` (one line with the install command) when it is missing,
    incomplete or another version.
    """
    prefix = Path(prefix) if prefix is not None else ort_web_prefix()
    for dist in _dist_candidates(prefix):
        if not (dist / BUNDLES["wasm"][0]).is_file():
            continue
        version = _package_version(dist.parent / "package.json")
        if version != ORT_WEB_VERSION:
            raise SrbenchError(
                f"ONNX Runtime Web in {dist.parent} is version {version or 'unknown'}, srbench needs "
                f"{ORT_WEB_VERSION}; reinstall it with '{SETUP_COMMAND}'"
            )
        ort = OrtWeb(dist, version)
        absent = [p.name for p in ort.files(provider) if not p.is_file()]
        if absent:
            raise SrbenchError(
                f"ONNX Runtime Web in {dist} lacks {', '.join(absent)} (needed for the browser provider "
                f"{provider}); reinstall it with '{SETUP_COMMAND}'"
            )
        return ort
    where = "SRBENCH_ORT_WEB_DIR=" + str(prefix) if os.environ.get("SRBENCH_ORT_WEB_DIR") else str(prefix)
    raise SrbenchError(
        f"ONNX Runtime Web {ORT_WEB_VERSION} is not installed ({where}); install it with "
        f"'{SETUP_COMMAND}' (runs npm install {ORT_WEB_PACKAGE})"
    )


def _package_version(package_json: Path) -> str | None:
    try:
        return str(json.loads(package_json.read_text(encoding="utf-8")).get("version"))
    except (OSError, ValueError):
        return None


def install_ort_web(prefix: Path | None = None) -> OrtWeb:
    """``npm install onnxruntime-web@ORT_WEB_VERSION`` into ``prefix`` (default
    :func:`ort_web_prefix`); returns the installed package.

    npm's install scripts are not run (``--ignore-scripts``): the package ships built files.
    Raises :class:`SrbenchError` when npm is missing or fails.
    """
    prefix = Path(prefix) if prefix is not None else ort_web_prefix()
    npm = shutil.which("npm")
    if npm is None:
        raise SrbenchError(
            "npm is not installed; install Node.js and npm (e.g. 'apt-get install -y nodejs npm'), "
            f"then rerun '{SETUP_COMMAND}'"
        )
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--ignore-scripts"]
    cmd.append(ORT_WEB_PACKAGE)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SrbenchError(f"npm install {ORT_WEB_PACKAGE} into {prefix} failed ({last})")
    return find_ort_web(prefix=prefix)
