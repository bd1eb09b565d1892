"""``srbench run --backend browser``: the ONNX export in headless Chromium through ONNX Runtime
Web (WASM), every metric computed in Python as for the other backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_support import chromium_or_skip, ort_web_or_skip

from srbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "ci-cpu.json"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.weights
def test_span_and_span_tiny_in_the_browser_match_pytorch(
    official_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("onnxscript")
    ort_web_or_skip("wasm")
    monkeypatch.setenv("SRBENCH_OFFLINE", "1")
    out = tmp_path / "run"
    argv = ["run", "--models", "span,span_tiny", "--data", "sample-mini", "--backend", "browser"]
    argv += ["--profile-input", "1x3x64x64", "--warmup", "5", "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "span@browser" in printed and "span_tiny@browser" in printed
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    # PyTorch's figures on the same data: the committed CI baseline (nox -s regression pins them).
    torch_rows = {m["name"]: m for m in json.loads(BASELINE.read_text())["models"]}
    for name in ("span", "span_tiny"):
        row = rows[f"{name}@browser"]
        assert row["status"] == "ok" and row["backend"] == "browser"
        assert abs(row["psnr_y"] - torch_rows[name]["psnr_y"]) < 0.05
        assert abs(row["ssim_y"] - torch_rows[name]["ssim_y"]) < 1e-3
        info = row["backend_info"]
        assert (info["browser"], info["ort_web"], info["provider_requested"]) == (
            "chromium",
            "1.30.0",
            "wasm",
        )
        assert info["provider"] == "wasm" and info["fallback"] is None  # every node on ORT's CPU (WASM) EP
        assert set(info["nodes_per_provider"]) == {"wasm"}
        assert row["provider"] == "wasm"
        assert (
            row["backend_agreement"]["within_tolerance"] and row["backend_agreement"]["max_abs_diff"] < 1e-3
        )
        assert row["memory_mb"] is None and row["memory_kind"] == "browser_not_measured"
        assert all(i["runtime_ms"] > 0 for i in row["images"]) and len(row["images"]) == 4
        # Params, FLOPs, convs: the same network, counted as for PyTorch.
        for key in ("params", "flops", "activations", "convs"):
            assert row[key] == torch_rows[name][key]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SRBENCH_CHROMIUM": "/nonexistent/chromium"}, "SRBENCH_CHROMIUM=/nonexistent/chromium"),
        ({"SRBENCH_ORT_WEB_DIR": "/nonexistent/ort"}, "install it with 'srbench browser setup'"),
    ],
)
def test_missing_browser_pieces_are_one_line_before_any_model_runs(
    env: dict[str, str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("playwright")
    if "SRBENCH_CHROMIUM" not in env:
        # Chromium is looked for first: only with one found can the missing piece be ORT-Web.
        chromium_or_skip()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = ["run", "--models", "span", "--data", "sample-mini", "--backend", "browser"]
    assert main([*argv, "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srbench: error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--dtype", "bf16"], "the browser runs fp32"),
        (["--tile", "64"], "--tile with --backend browser"),
        (["--compile"], "--compile applies to --backend torch only"),
    ],
)
def test_browser_refuses_options_it_cannot_honour(
    extra: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxscript")
    argv = ["run", "--models", "span", "--data", "sample-mini", "--backend", "browser", *extra]
    assert main([*argv, "--output", str(tmp_path / "run")]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.weights
def test_export_web_writes_the_page_model_and_ort_web(
    official_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxscript")
    from srbench.backends.browser.ortweb import find_ort_web
    from srbench.core.errors import SrbenchError
    from srbench.core.files import file_sha256

    try:
        ort = find_ort_web("wasm")
    except SrbenchError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("SRBENCH_OFFLINE", "1")
    out = tmp_path / "web"
    assert main(["export", "--model", "span", "--format", "web", "-o", str(out)]) == 0
    config = json.loads((out / "srbench-web.json").read_text())
    assert (config["name"], config["scale"], config["input_range"], config["provider"]) == (
        "span",
        4,
        1.0,
        "wasm",
    )
    assert config["model_sha256"] == file_sha256(out / "model.onnx") and config["ort_web"] == ort.version
    for src in ort.files("wasm"):
        assert (out / "ort" / src.name).read_bytes() == src.read_bytes()
    assert (out / "index.html").is_file() and "MIT" in (out / "NOTICE.txt").read_text()
    # A second export into the same folder needs --overwrite; a file is not a folder.
    assert main(["export", "--model", "span", "--format", "web", "-o", str(out)]) == 2
    assert main(["export", "--model", "span", "--format", "web", "-o", str(out / "index.html")]) == 2


def test_browser_serve_serves_a_web_export_on_loopback_until_interrupted(tmp_path: Path) -> None:
    import http.client
    import re
    import signal
    import subprocess
    import sys

    (tmp_path / "index.html").write_text("<p>demo</p>")
    (tmp_path / "srbench-web.json").write_text("{}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "srbench", "browser", "serve", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.read() == b"<p>demo</p>"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
    assert main(["browser", "serve", str(tmp_path / "nothing")]) == 2
