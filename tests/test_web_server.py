"""The local server behind the browser backend (127.0.0.1 only, port freed on stop), ORT-Web
discovery and the placement-log parser: no browser needed."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from pathlib import Path

import pytest

from srbench.backends.browser import ortweb
from srbench.backends.browser.driver import parse_placements, provider_summary
from srbench.backends.browser.server import HOST, LocalServer
from srbench.core.errors import SrbenchError


def _get(port: int, path: str, host: str = HOST) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request("GET", path)
    return conn.getresponse()


def _listening(port: int) -> bool:
    """Whether any socket on this machine is in LISTEN state on ``port`` (/proc/net/tcp*)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _other_local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (the server must not answer on them)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [a for a in out.split() if "." in a and not a.startswith("127.")]


def test_server_binds_loopback_only_serves_mounts_and_frees_its_port(tmp_path: Path) -> None:
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text("<p>hi</p>")
    (tmp_path / "page" / "x.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("no")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    server = LocalServer({"/": tmp_path / "page", "/model.onnx": model})
    with server:
        host, port = server._httpd.server_address[:2]
        assert host == "127.0.0.1" and port > 0 and _listening(port)
        assert server.url == f"http://127.0.0.1:{port}/"
        r = _get(port, "/")
        assert r.status == 200 and r.read() == b"<p>hi</p>"
        assert r.getheader("Cross-Origin-Opener-Policy") == "same-origin"
        assert r.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        r = _get(port, "/x.wasm")
        assert r.getheader("Content-Type") == "application/wasm" and r.read() == b"\0asm"
        assert _get(port, "/model.onnx").read() == b"onnx"
        assert _get(port, "/../secret.txt").status == 404  # no escape from a mount
        assert _get(port, "/%2e%2e/secret.txt").status == 404
        # Blobs: the page POSTs outputs, Python puts inputs.
        server.put_blob("in", b"abc")
        assert _get(port, "/blob/in").read() == b"abc"
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        conn.request("POST", "/blob/in.out", body=b"xyz")
        assert conn.getresponse().status == 204
        assert server.take_blob("in.out") == b"xyz"
        for address in _other_local_addresses():
            with pytest.raises(OSError):  # refused: nothing listens there
                socket.create_connection((address, port), timeout=2).close()
    # Stopped: nothing listens any more and a new listener can take the port (closed
    # connections linger in TIME_WAIT, which SO_REUSEADDR allows, as any server sets it).
    with pytest.raises(OSError):
        socket.create_connection((HOST, port), timeout=2).close()
    assert not _listening(port)
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind((HOST, port))
    probe.listen()
    probe.close()


# --------------------------------------------------------------------------- ORT-Web discovery


def _fake_ort(prefix: Path, version: str, files: tuple[str, ...] = ortweb.BUNDLES["wasm"]) -> Path:
    pkg = prefix / "node_modules" / "onnxruntime-web"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "onnxruntime-web", "version": version}))
    for name in files:
        (pkg / "dist" / name).write_bytes(b"x")
    return pkg / "dist"


def test_ort_web_is_found_at_the_pinned_version_or_named_with_its_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SRBENCH_ORT_WEB_DIR", str(tmp_path / "none"))
    with pytest.raises(SrbenchError, match=r"not installed .*'srbench browser setup'"):
        ortweb.find_ort_web()
    dist = _fake_ort(tmp_path / "ok", ortweb.ORT_WEB_VERSION)
    monkeypatch.setenv("SRBENCH_ORT_WEB_DIR", str(tmp_path / "ok"))
    assert ortweb.find_ort_web().dist == dist
    with pytest.raises(SrbenchError, match=r"lacks ort\.webgpu\.min\.js"):
        ortweb.find_ort_web("webgpu")
    _fake_ort(tmp_path / "old", "1.17.0")
    monkeypatch.setenv("SRBENCH_ORT_WEB_DIR", str(tmp_path / "old"))
    with pytest.raises(SrbenchError, match=r"version 1\.17\.0, srbench needs 1\.30\.0"):
        ortweb.find_ort_web()
    monkeypatch.delenv("SRBENCH_ORT_WEB_DIR")
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert ortweb.ort_web_prefix() == tmp_path / "cache" / "ort-web" / ortweb.ORT_WEB_VERSION


def test_missing_chromium_is_one_line_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srbench.backends.browser import browser

    monkeypatch.setenv("SRBENCH_CHROMIUM", str(tmp_path / "nope"))
    with pytest.raises(SrbenchError, match=r"SRBENCH_CHROMIUM=.* is not an executable"):
        browser.find_chromium()
    monkeypatch.delenv("SRBENCH_CHROMIUM")
    monkeypatch.setattr(
        browser, "CHROMIUM_CANDIDATES", (str(tmp_path / "chromium"), "srbench-no-such-browser")
    )
    with pytest.raises(SrbenchError, match="apt-get install -y chromium") as info:
        browser.find_chromium()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- placements

# Lines as ORT-Web 1.30 prints them with logSeverityLevel 0 (recorded from Chromium 156).
_ALL_WASM = [
    "2026-11-29 10:36:45.241444 [V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp] "
    "Node placements",
    "2026-11-29 10:36:45.245575 [V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  "
    "All nodes placed on [CPUExecutionProvider]. Number of nodes: 62",
]
_SPLIT = [
    "x [V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp] Node placements",
    "x [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on "
    "[WebGpuExecutionProvider]. Number of nodes: 3",
    "x [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Conv (conv)",
    "x [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   DepthToSpace (shuffle)",
    "x [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   MemcpyToHost (m)",
    "x [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on "
    "[CPUExecutionProvider]. Number of nodes: 2",
    "x [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Round (tail)",
    "x [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Round (tail2)",
]


def test_placement_log_gives_the_provider_that_ran_and_names_fallbacks() -> None:
    p = parse_placements(_ALL_WASM, "wasm")
    assert p is not None and p.nodes == {"wasm": 62} and p.fallback_ops == {}
    assert provider_summary("wasm", p) == ("wasm", None)
    p = parse_placements(_SPLIT, "webgpu")
    assert p is not None and p.nodes == {"webgpu": 3, "wasm": 2} and p.fallback_ops == {"Round": 2}
    used, line = provider_summary("webgpu", p)
    assert used == "webgpu+wasm" and line == "2 of 5 nodes fell back from webgpu to wasm (Round×2)"
    assert provider_summary("webgpu", parse_placements(_ALL_WASM, "webgpu"))[0] == "wasm"
    assert parse_placements(["unrelated"], "webgl") is None
    assert provider_summary("webgl", None) == ("webgl", None)
