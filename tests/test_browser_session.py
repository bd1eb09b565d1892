"""ONNX models in headless Chromium through ONNX Runtime Web (``BrowserSession``): output
equal to an independent reference, the provider that actually ran, fallbacks and failures
in one line, and the server gone afterwards."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from browser_support import ort_web_or_skip, tiny_sr_onnx

from srbench.backends.browser.server import HOST
from srbench.core.errors import SrbenchError

pytestmark = pytest.mark.browser


def _reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, scale: int) -> np.ndarray:
    # float64 PyTorch: conv then pixel shuffle (= DepthToSpace CRD), a second implementation.
    t = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(weight), torch.from_numpy(bias), padding=1)
    return F.pixel_shuffle(t, scale).numpy()


def test_wasm_session_matches_the_reference_reports_provider_and_stops_its_server(tmp_path: Path) -> None:
    ort_web_or_skip("wasm")
    from srbench.backends.browser.driver import BrowserSession

    model = tmp_path / "tiny.onnx"
    weight, bias = tiny_sr_onnx(model, scale=2)
    rng = np.random.default_rng(1)
    with BrowserSession(model, "wasm", threads=2) as session:
        port = session.port
        info = session.info
        assert info is not None
        assert (info.browser, info.ort_web, info.provider, info.fallback) == (
            "chromium",
            "1.30.0",
            "wasm",
            None,
        )
        assert info.nodes_per_provider == {"wasm": 2}  # Conv + DepthToSpace, both on ORT's CPU EP
        assert info.cross_origin_isolated and info.threads == 2  # COOP/COEP: two WASM threads
        for h, w in ((8, 8), (5, 11)):  # dynamic height/width, odd sizes
            x = rng.random((1, 3, h, w), dtype=np.float32)
            out, times = session.run(x, warmup=2, repeat=3)
            assert out.shape == (1, 3, 2 * h, 2 * w) and out.dtype == np.float32
            np.testing.assert_allclose(out, _reference(x, weight, bias, 2), atol=1e-5, rtol=0)
            assert len(times) == 3 and all(t > 0 for t in times)
    assert session.port is None
    with pytest.raises(OSError):
        socket.create_connection((HOST, port), timeout=2).close()


def test_op_without_a_wasm_kernel_fails_in_one_line(tmp_path: Path) -> None:
    ort_web_or_skip("wasm")
    from srbench.backends.browser.driver import BrowserSession

    model = tmp_path / "double.onnx"
    tiny_sr_onnx(model, conv_dtype="double")  # ORT's CPU provider has no float64 Conv
    with pytest.raises(SrbenchError) as info, BrowserSession(model, "wasm"):
        pass
    message = str(info.value)
    assert "\n" not in message
    assert "could not create a wasm session for double.onnx" in message
    assert "Could not find an implementation for Conv" in message


@pytest.mark.slow
def test_op_without_a_webgpu_kernel_is_reported_as_falling_back(tmp_path: Path) -> None:
    # WebGPU here is Chromium's software adapter (SwiftShader): correct, slow, fine for a
    # 2-node graph. Round has no WebGPU kernel in ORT-Web 1.30: ORT places it on the CPU.
    ort_web_or_skip("webgpu")
    from srbench.backends.browser.driver import BrowserSession

    model = tmp_path / "round.onnx"
    weight, bias = tiny_sr_onnx(model, tail_op="Round")
    try:
        session = BrowserSession(model, "webgpu").__enter__()
    except SrbenchError as exc:
        pytest.skip(f"no WebGPU adapter in this Chromium: {exc}")
    try:
        info = session.info
        assert info is not None and info.provider == "webgpu+wasm"
        assert info.fallback is not None and "fell back from webgpu to wasm" in info.fallback
        assert "Round×1" in info.fallback and "\n" not in info.fallback
        assert info.nodes_per_provider["webgpu"] >= 2 and info.nodes_per_provider["wasm"] >= 1
        x = np.random.default_rng(2).random((1, 3, 6, 6), dtype=np.float32)
        out, _ = session.run(x)
        ref = np.round(_reference(x, weight, bias, 2))
        # Round may flip where the conv lands within float error of .5: compare away from it.
        unsure = np.abs(np.abs(_reference(x, weight, bias, 2) % 1) - 0.5) < 1e-3
        np.testing.assert_array_equal(out[~unsure], ref[~unsure])
    finally:
        session.close()


def test_web_export_page_upscales_a_chosen_image_and_shows_the_time(tmp_path: Path) -> None:
    ort_web_or_skip("wasm")
    from PIL import Image

    from srbench.backends.browser.browser import launch_chromium
    from srbench.backends.browser.bundle import WebConfig, write_web_bundle
    from srbench.backends.browser.server import LocalServer

    model = tmp_path / "tiny.onnx"
    weight, bias = tiny_sr_onnx(model, scale=2)
    out = tmp_path / "web"
    files = write_web_bundle(model, out, WebConfig(name="tiny", arch="tiny", scale=2, input_range=1.0))
    names = sorted(str(f.relative_to(out)) for f in files)
    assert names == sorted(
        [
            "index.html",
            "srbench-web.js",
            "model.onnx",
            "srbench-web.json",
            "NOTICE.txt",
            "ort/ort.wasm.min.js",
            "ort/ort-wasm-simd-threaded.mjs",
            "ort/ort-wasm-simd-threaded.wasm",
        ]
    )
    with pytest.raises(SrbenchError, match="not empty"):
        write_web_bundle(model, out, WebConfig(name="tiny", arch="tiny", scale=2, input_range=1.0))

    lr = np.random.default_rng(3).integers(0, 256, (7, 10, 3), dtype=np.uint8)
    Image.fromarray(lr).save(tmp_path / "lr.png")
    with LocalServer({"/": out}) as server, launch_chromium() as browser:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_function(
            "document.getElementById('status').textContent.startsWith('Ready')", timeout=60_000
        )
        assert page.text_content("#provider") == "wasm" and page.text_content("#ortversion") == "1.30.0"
        page.set_input_files("#file", str(tmp_path / "lr.png"))
        page.wait_for_function("document.getElementById('status').textContent === 'Done.'", timeout=60_000)
        assert page.text_content("#sizes") == "10×7 → 20×14"
        assert " ms" in (page.text_content("#time") or "")
        rgba = page.evaluate(
            "() => { const c = document.getElementById('out');"
            " return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"
        )
    got = np.array(rgba, dtype=np.int32).reshape(14, 20, 4)[..., :3]
    x = (lr.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1)[None]
    ref = _reference(x, weight, bias, 2)[0].transpose(1, 2, 0)
    expected = np.clip(np.round(ref * 255.0), 0, 255).astype(np.int32)
    assert np.abs(got - expected).max() <= 1  # fp32 in the page vs fp64 here: a rounding tie at most
    assert (got == expected).mean() > 0.99
