"""Driving an ONNX model in headless Chromium through ONNX Runtime Web.

:class:`BrowserSession` starts the local server (127.0.0.1 only) with the page
(:mod:`srbench.backends.browser`'s ``page/``), ORT-Web's files and the model, launches Chromium through
Playwright, creates the inference session with exactly the requested execution provider,
and runs float32 NCHW tensors: each goes to the page as raw bytes, ``session.run`` is timed
in the page with ``performance.now()``, and the output comes back as raw bytes. Leaving the
``with`` block closes the browser and the server.

What the in-page time covers: the ``session.run`` call only — ORT-Web copying the input
into the WASM heap (or GPU buffer), the forward, and copying the output back to a JS array
(on WebGPU, the read-back). Not the transfer between Python and the page, not building the
tensor.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srbench.backends.browser.browser import launch_chromium
from srbench.backends.browser.bundle import PAGE_DIR
from srbench.backends.browser.ortweb import PROVIDERS, OrtWeb, find_ort_web
from srbench.backends.browser.server import LocalServer
from srbench.core.errors import SrbenchError

#: ORT's names for the execution providers behind each browser provider. WASM runs ORT's
#: CPU provider compiled to WebAssembly; WebGPU is the native WebGPU provider (older
#: releases: the JS "JSEP" one). The WebGL backend is ORT-Web's separate JS engine: it has
#: no per-node fallback (an unsupported op fails the session) and logs no placements.
EP_NAMES = {
    "CPUExecutionProvider": "wasm",
    "XnnpackExecutionProvider": "wasm",
    "WebGpuExecutionProvider": "webgpu",
    "JsExecutionProvider": "webgpu",
}
_PLACED = re.compile(r"(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)")
_NODE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s{2,}(\S+) \(")


@dataclass
class Placement:
    """Where ORT placed the graph's nodes: node count per provider and, for nodes not on
    the requested provider, their op types (count per op)."""

    nodes: dict[str, int] = field(default_factory=dict)
    fallback_ops: dict[str, int] = field(default_factory=dict)


def parse_placements(lines: list[str], requested: str) -> Placement | None:
    """Read ORT's ``VerifyEachNodeIsAssignedToAnEp`` verbose lines (``All nodes placed on
    [EP]. Number of nodes: N`` or, when split, ``Node(s) placed on [EP]. Number of nodes: N``
    followed by one ``  OpType (node name)`` line per node). None when there are none."""
    placement = Placement()
    current: str | None = None
    for line in lines:
        m = _PLACED.search(line)
        if m:
            current = EP_NAMES.get(m.group(1), m.group(1))
            placement.nodes[current] = placement.nodes.get(current, 0) + int(m.group(2))
            continue
        n = _NODE.search(line)
        if n and current is not None and current != requested:
            placement.fallback_ops[n.group(1)] = placement.fallback_ops.get(n.group(1), 0) + 1
    return placement if placement.nodes else None


def provider_summary(requested: str, placement: Placement | None) -> tuple[str, str | None]:
    """``(provider actually used, fallback line or None)``.

    The provider used is the requested one when every node ran on it; when some nodes were
    placed elsewhere it reads ``webgpu+wasm`` and the fallback line names the ops.
    """
    if placement is None:
        return requested, None
    others = {ep: n for ep, n in placement.nodes.items() if ep != requested}
    if not others:
        return requested, None
    if requested not in placement.nodes:
        used = "+".join(others)
        return used, f"no node ran on {requested}: all {sum(others.values())} on {used}"
    total = sum(placement.nodes.values())
    ops = ", ".join(f"{op}×{n}" for op, n in sorted(placement.fallback_ops.items()))
    moved = sum(others.values())
    where = "+".join(others)
    return (
        f"{requested}+{where}",
        f"{moved} of {total} nodes fell back from {requested} to {where}" + (f" ({ops})" if ops else ""),
    )


@dataclass
class BrowserInfo:
    """What ran: browser, ORT-Web, the provider requested and actually used (``backend_info``)."""

    browser: str
    browser_version: str
    user_agent: str
    ort_web: str
    provider_requested: str
    provider: str
    fallback: str | None
    nodes_per_provider: dict[str, int]
    threads: int
    cross_origin_isolated: bool
    hardware_concurrency: int | None
    session_create_ms: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BrowserSession:
    """One ONNX model in one headless Chromium page (see the module docstring).

    Args:
        model: the ``.onnx`` file (weights inside it, not in a ``.onnx.data`` file).
        provider: ``wasm``, ``webgpu`` or ``webgl``.
        threads: WASM threads (``ort.env.wasm.numThreads``).
        ort: the ORT-Web install (default: :func:`find_ort_web`).

    Raises:
        SrbenchError: Chromium, Playwright or ORT-Web missing (one line, with the install
            command), or the session cannot be created with this provider (the browser's
            reason in one line).
    """

    def __init__(self, model: Path, provider: str = "wasm", *, threads: int = 1, ort: OrtWeb | None = None):
        if provider not in PROVIDERS:
            raise SrbenchError(f"browser provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        self.model = Path(model)
        self.provider = provider
        self.threads = max(1, int(threads))
        self.ort = ort or find_ort_web(provider)
        self.info: BrowserInfo | None = None
        self._server: LocalServer | None = None
        self._browser_cm: Any = None
        self._page: Any = None
        self._console: list[str] = []
        self._count = 0

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> BrowserSession:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        mounts = {"/": PAGE_DIR, "/ort/": self.ort.dist, "/model.onnx": self.model}
        self._server = LocalServer(mounts).start()
        self._browser_cm = launch_chromium(self.provider)
        browser = self._browser_cm.__enter__()
        page = browser.new_page()
        page.on("console", lambda msg: self._console.append(msg.text))
        page.on("pageerror", lambda exc: self._console.append(f"pageerror: {exc}"))
        page.set_default_timeout(0)  # big images on WASM take long; the run's own timeout governs
        page.goto(self._server.url + "index.html?driver=1")
        try:
            raw = page.evaluate(
                "opts => window.srbench.load(opts)",
                {"model": "model.onnx", "provider": self.provider, "threads": self.threads},
            )
        except Exception as exc:
            raise SrbenchError(
                f"ONNX Runtime Web could not create a {self.provider} session for {self.model.name} "
                f"in Chromium {browser.version}: {_first_line(exc)}"
            ) from None
        self._page = page
        placement = parse_placements(raw["placements"], self.provider)
        used, fallback = provider_summary(self.provider, placement)
        self.info = BrowserInfo(
            browser=browser.browser_type.name,
            browser_version=browser.version,
            user_agent=raw["userAgent"],
            ort_web=str(raw["ortWeb"]),
            provider_requested=self.provider,
            provider=used,
            fallback=fallback,
            nodes_per_provider=placement.nodes if placement else {},
            threads=int(raw["threads"]),
            cross_origin_isolated=bool(raw["crossOriginIsolated"]),
            hardware_concurrency=raw.get("hardwareConcurrency"),
            session_create_ms=float(raw["sessionCreateMs"]),
            warnings=[w for w in raw.get("warnings", []) if "VerifyEachNode" not in w][:10],
        )

    def close(self) -> None:
        """Close the browser and stop the server (idempotent)."""
        if self._browser_cm is not None:
            cm, self._browser_cm = self._browser_cm, None
            cm.__exit__(None, None, None)
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()

    @property
    def port(self) -> int | None:
        """The local server's port while it runs."""
        return self._server.port if self._server else None

    # ------------------------------------------------------------------ running
    def run(self, x: np.ndarray, *, warmup: int = 0, repeat: int = 1) -> tuple[np.ndarray, list[float]]:
        """Run the model on ``x`` (float32, shape (1, C, H, W)) ``warmup`` times untimed, then
        ``repeat`` times timed; returns the last output (float32 NCHW) and the in-page times (ms).

        Raises:
            SrbenchError: the page failed (ORT's message in one line).
        """
        if self._page is None or self._server is None:
            raise RuntimeError("BrowserSession used outside its with-block")
        x = np.ascontiguousarray(x, dtype="<f4")
        self._count += 1
        name = f"t{self._count}"
        self._server.put_blob(name, x.tobytes())
        try:
            r = self._page.evaluate(
                "a => window.srbench.runBlob(a.name, a.dims, a.warmup, a.repeat)",
                {"name": name, "dims": list(x.shape), "warmup": int(warmup), "repeat": int(repeat)},
            )
        except Exception as exc:
            raise SrbenchError(f"ONNX Runtime Web ({self.provider}) failed: {_first_line(exc)}") from None
        finally:
            self._server.blobs.pop(name, None)
        # bytearray: a writable buffer, so torch.from_numpy can wrap the result without a copy.
        raw = bytearray(self._server.take_blob(name + ".out"))
        out = np.frombuffer(raw, dtype="<f4").reshape(r["dims"])
        return out.astype(np.float32, copy=False), [float(t) for t in r["times"]]

    def time_repeated(self, x: np.ndarray, repeat: int) -> tuple[np.ndarray, float]:
        """The output and the median in-page time (ms) of ``repeat`` runs (as ``--repeat``)."""
        out, times = self.run(x, repeat=repeat)
        return out, statistics.median(times)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # Playwright prefixes "Page.evaluate: Error: ..." and appends a call log; keep the message.
    line = text.splitlines()[0] if text else type(exc).__name__
    return re.sub(r"^(Page\.evaluate: )?(Error: )?", "", line)
