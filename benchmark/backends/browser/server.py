"""A local HTTP server for the browser backend and the web demo: 127.0.0.1 only.

It serves *mounts* (URL prefix → a folder or one file) and in-memory *blobs*
(``GET``/``POST /blob/NAME``: how tensors travel between Python and the page without
base64 through the driver). Every response carries the cross-origin isolation headers
(``Cross-Origin-Opener-Policy: same-origin``, ``Cross-Origin-Embedder-Policy:
require-corp``): without them ONNX Runtime Web silently runs one WASM thread.

The server binds 127.0.0.1 on a port the kernel picks, runs on a daemon thread, and
:meth:`LocalServer.stop` (or leaving the ``with`` block) closes the socket.

Binding the loopback address is not enough on its own: a web page the user has open can make
their browser send requests to it (DNS rebinding: a hostile name resolving to 127.0.0.1;
cross-site ``fetch``/form posts). So the server also

* answers only requests whose ``Host`` header is ``127.0.0.1:PORT`` or ``localhost:PORT``
  (a rebound name arrives with its own host name): others get 403;
* refuses a ``POST`` whose ``Origin`` (or ``Sec-Fetch-Site``) says it comes from another
  site; a POST without ``Origin`` is accepted (not a browser's cross-site request);
* bounds what a POST may store: each blob at most :data:`MAX_BLOB` bytes, at most
  :data:`MAX_BLOBS` blobs and :data:`MAX_BLOB_TOTAL` bytes held at once (413 beyond), blob
  names of letters, digits, ``._-`` only.
"""

from __future__ import annotations

import re
import shutil
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

#: Content types the page needs; ``.wasm`` must be ``application/wasm`` for streaming
#: compilation, ``.mjs`` a JavaScript type for module workers.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".map": "application/json",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: Largest blob a page may POST (bytes): a 4K x4 SR output in float32 is ~400 MB.
MAX_BLOB = 1 << 30
#: Most blobs held at once (the backend holds one input and one output per call).
MAX_BLOBS = 16
#: Most bytes held in blobs at once.
MAX_BLOB_TOTAL = 2 << 30
_BLOB_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


class LocalServer:
    """Serves ``mounts`` (``{"/": page_dir, "/ort/": ort_dist, "/model.onnx": file}``) and
    blobs on ``http://127.0.0.1:PORT``.

    Args:
        mounts: URL prefix → folder (prefix ends with "/") or file (exact path).
        isolate: send the cross-origin isolation headers (needed for WASM threads).
        port: 0 (default) lets the kernel pick a free port.
    """

    def __init__(self, mounts: dict[str, Path], *, isolate: bool = True, port: int = 0) -> None:
        self.mounts = {k: Path(v).resolve() for k, v in mounts.items()}
        self.isolate = isolate
        self.blobs: dict[str, bytes] = {}
        self.requests: list[str] = []  # paths served or refused, in order (for tests and reports)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((HOST, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://{HOST}:{self.port}/"

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="srbench-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (the port is free afterwards)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def put_blob(self, name: str, data: bytes) -> None:
        with self._lock:
            self.blobs[name] = bytes(data)

    def _room_for(self, name: str, length: int) -> bool:
        """Whether a POSTed blob of ``length`` bytes may be stored under ``name`` (see the bounds)."""
        with self._lock:
            others = {k: v for k, v in self.blobs.items() if k != name}
            return (
                0 <= length <= MAX_BLOB
                and len(others) < MAX_BLOBS
                and sum(map(len, others.values())) + length <= MAX_BLOB_TOTAL
            )

    def own_origins(self) -> frozenset[str]:
        """``host:port`` forms this server answers to (the ``Host`` header must be one)."""
        return frozenset({f"{HOST}:{self.port}", f"localhost:{self.port}"})

    def take_blob(self, name: str) -> bytes:
        """Remove and return blob ``name`` (KeyError when the page did not send it)."""
        with self._lock:
            return self.blobs.pop(name)

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None (unknown, or outside its mount: no ``..`` escape)."""
        path = urllib.parse.unquote(url_path.split("?", 1)[0])
        for prefix in sorted(self.mounts, key=len, reverse=True):
            root = self.mounts[prefix]
            if prefix.endswith("/") and path.startswith(prefix):
                rel = path[len(prefix) :] or "index.html"
                target = (root / rel).resolve()
                if target.is_file() and target.is_relative_to(root):
                    return target
            elif path == prefix and root.is_file():
                return root
        return None


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the runner reports
            pass

        def _headers(self, status: int, ctype: str, length: int) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("Cache-Control", "no-store")
            if server.isolate:
                for k, v in ISOLATION_HEADERS.items():
                    self.send_header(k, v)
            self.end_headers()

        def _fail(self, status: HTTPStatus) -> None:
            body = status.phrase.encode()
            self._headers(status, "text/plain; charset=utf-8", len(body))
            self.wfile.write(body)

        def _foreign_host(self) -> bool:
            """True (and 403 sent) unless the Host header names this server (DNS rebinding)."""
            if (self.headers.get("Host") or "").strip().lower() in server.own_origins():
                return False
            self._fail(HTTPStatus.FORBIDDEN)
            return True

        def _cross_site(self) -> bool:
            """True when the browser says the request comes from another origin."""
            origin = self.headers.get("Origin")
            if origin is not None:
                parsed = urllib.parse.urlsplit(origin.strip().lower())
                if parsed.scheme != "http" or parsed.netloc not in server.own_origins():
                    return True
            site = self.headers.get("Sec-Fetch-Site")
            return site is not None and site.strip().lower() not in ("same-origin", "none")

        def do_GET(self) -> None:
            server.requests.append(self.path)
            if self._foreign_host():
                return None
            if self.path.startswith("/blob/"):
                name = self.path[len("/blob/") :]
                with server._lock:
                    data = server.blobs.get(name)
                if data is None:
                    return self._fail(HTTPStatus.NOT_FOUND)
                self._headers(HTTPStatus.OK, "application/octet-stream", len(data))
                self.wfile.write(data)
                return
            target = server.resolve(self.path)
            if target is None:
                return self._fail(HTTPStatus.NOT_FOUND)
            ctype = MIME_TYPES.get(target.suffix.lower(), "application/octet-stream")
            with target.open("rb") as fh:
                self._headers(HTTPStatus.OK, ctype, target.stat().st_size)
                shutil.copyfileobj(fh, self.wfile, 1 << 20)

        def do_POST(self) -> None:
            server.requests.append(self.path)
            self.close_connection = True  # a refused body is never read: do not reuse the stream
            if self._foreign_host():
                return None
            name = self.path[len("/blob/") :]
            if not self.path.startswith("/blob/") or not _BLOB_NAME.fullmatch(name) or self._cross_site():
                return self._fail(HTTPStatus.FORBIDDEN)
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                return self._fail(HTTPStatus.LENGTH_REQUIRED)
            if not server._room_for(name, length):
                return self._fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            server.put_blob(name, self.rfile.read(length))
            self._headers(HTTPStatus.NO_CONTENT, "text/plain", 0)

    return Handler
