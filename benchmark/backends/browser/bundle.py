"""The web bundle ``srbench export --format web -o DIR`` writes: the page the browser backend
drives, the ONNX model and the ORT-Web files, ready to serve as static files.

Layout (the same URLs the backend's local server uses)::

    DIR/index.html, DIR/srbench-web.js   the page (drop an image: upscaled, time per inference)
    DIR/srbench-web.json                 model name, scale, input range, provider, versions
    DIR/model.onnx                       the exported model (weights inside)
    DIR/ort/...                          ONNX Runtime Web's files for the chosen provider(s)
    DIR/NOTICE.txt                       where ort/ comes from and its licence

Serve it with ``srbench browser serve DIR`` (127.0.0.1, cross-origin isolated, so WASM
runs multi-threaded) or any static server (then one WASM thread). Opening ``index.html``
from disk (file://) does not work: browsers refuse to fetch the model and WASM from file URLs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from srbench import __version__
from srbench.backends.browser.ortweb import PROVIDERS, find_ort_web
from srbench.core.errors import SrbenchError
from srbench.core.files import atomic_open, atomic_write_text, file_sha256

PAGE_DIR = Path(__file__).resolve().parent / "page"
PAGE_FILES = ("index.html", "srbench-web.js")
CONFIG_NAME = "srbench-web.json"
MODEL_NAME = "model.onnx"


@dataclass(frozen=True)
class WebConfig:
    """``srbench-web.json``: what the page needs to run the model and say what it runs."""

    name: str
    arch: str
    scale: int
    input_range: float
    provider: str = "wasm"
    threads: int | None = None  # None: the browser's navigator.hardwareConcurrency
    model: str = MODEL_NAME
    model_sha256: str = ""
    ort_web: str = ""
    srbench: str = __version__


def _copy(src: Path, dest: Path) -> None:
    with src.open("rb") as fin, atomic_open(dest, mkdir=True) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def check_destination(dest: Path, *, overwrite: bool) -> None:
    """Refuse a web-bundle destination that is a file, or a folder holding files (unless
    ``overwrite``): one line naming it (:class:`SrbenchError`)."""
    if dest.exists() and not dest.is_dir():
        raise SrbenchError(f"-o {dest} is a file; the web export writes a folder (e.g. -o span-web/)")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise SrbenchError(f"{dest} is not empty; add --overwrite or choose another -o")


def write_web_bundle(
    model: Path,
    dest: Path,
    config: WebConfig,
    *,
    providers: tuple[str, ...] = ("wasm",),
    overwrite: bool = False,
) -> list[Path]:
    """Write the bundle for ONNX file ``model`` into folder ``dest``; returns the files written.

    ``providers``: whose ORT-Web files to include (``config.provider`` is always included).

    Raises:
        SrbenchError: ``dest`` holds other files (without ``overwrite``), ORT-Web is not
            installed (with the install command), or an unknown provider.
    """
    wanted = tuple(dict.fromkeys((config.provider, *providers)))
    unknown = [p for p in wanted if p not in PROVIDERS]
    if unknown:
        raise SrbenchError(f"--browser-provider {unknown[0]!r} is not one of {', '.join(PROVIDERS)}")
    check_destination(dest, overwrite=overwrite)
    orts = [find_ort_web(p) for p in wanted]
    written = []
    for name in PAGE_FILES:
        _copy(PAGE_DIR / name, dest / name)
        written.append(dest / name)
    _copy(model, dest / MODEL_NAME)
    written.append(dest / MODEL_NAME)
    for provider, ort in zip(wanted, orts):
        for src in ort.files(provider):
            if not (dest / "ort" / src.name).is_file() or overwrite:
                _copy(src, dest / "ort" / src.name)
            written.append(dest / "ort" / src.name)
    final = WebConfig(**{**asdict(config), "model_sha256": file_sha256(model), "ort_web": orts[0].version})
    atomic_write_text(dest / CONFIG_NAME, json.dumps(asdict(final), indent=2) + "\n")
    written.append(dest / CONFIG_NAME)
    atomic_write_text(dest / "NOTICE.txt", _notice(orts[0].version, wanted))
    written.append(dest / "NOTICE.txt")
    return list(dict.fromkeys(written))


def _notice(version: str, providers: tuple[str, ...]) -> str:
    return (
        "This folder was written by srbench (srbench export --format web).\n\n"
        f"ort/ holds files of ONNX Runtime Web {version} (npm package onnxruntime-web, "
        "https://github.com/microsoft/onnxruntime), copied unmodified for the providers "
        f"{', '.join(providers)}. ONNX Runtime is Copyright (c) Microsoft Corporation and is "
        "distributed under the MIT License.\n\n"
        "Serve the folder over HTTP: 'srbench browser serve .' (127.0.0.1, cross-origin isolated: "
        "multi-threaded WASM) or any static file server (one WASM thread). Opening index.html "
        "from disk does not work.\n"
    )
