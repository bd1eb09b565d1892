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

from srbench.errors import SrbenchError
from srbench.web.server import HOST

pytestmark = pytest.mark.browser


def _reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, scale: int) -> np.ndarray:
    # float64 PyTorch: conv then pixel shuffle (= DepthToSpace CRD), a second implementation.
    t = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(weight), torch.from_numpy(bias), padding=1)
    return F.pixel_shuffle(t, scale).numpy()


def test_wasm_session_matches_the_reference_reports_provider_and_stops_its_server(tmp_path: Path) -> None:
    ort_web_or_skip("wasm")
    from srbench.web.driver import BrowserSession

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
    from srbench.web.driver import BrowserSession

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
    from srbench.web.driver import BrowserSession

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
