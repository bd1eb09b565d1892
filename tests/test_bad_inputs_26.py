"""Issue 26, items 6-13: field failure kinds turned into cases, each with a sibling instance.

Every test here fails on the code before issue 26 (traceback/exit 1, silent data loss, a
misleading message, or a request served that should be refused) and passes after it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srbench.backends.browser import server as server_mod
from srbench.backends.browser.server import HOST, LocalServer
from srbench.cli import main
from srbench.core.errors import SrbenchError, cause
from srbench.data import datasets
from srbench.data.datasets import check_dataset
from srbench.data.imageio import read_image
from srbench.measure.metrics import SSIM_WINDOW
from srbench.measure.quality import score_image
from srbench.models.loading import pickle_globals, read_checkpoint
from srbench.runner.upscale import read_source

# --------------------------------------------------------------------------- helpers


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png(path: Path, rows: np.ndarray, color_type: int, depth: int) -> Path:
    """A PNG written byte by byte (Pillow cannot write 16-bit RGBA/LA): ``rows`` is (H, W*C)
    big-endian samples of ``depth`` bits."""
    h = rows.shape[0]
    w = rows.shape[1] // {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    raw = b"".join(b"\0" + r.tobytes() for r in rows)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


def _bomb(path: Path, w: int = 20000, h: int = 10000) -> Path:
    """A small 1-bit PNG that declares ``w``×``h`` pixels (about 24 KB for 200 MP)."""
    row = b"\0" + b"\0" * ((w + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("srbench: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- 6. decompression bombs


def test_decompression_bomb_is_one_line_in_upscale_data_check_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = _bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 64_000
    assert main(["upscale", str(bomb), "--model", "bicubic", "--device", "cpu"]) == 2
    line = _error_line(capsys)
    assert "bomb.png" in line and "200 megapixels" in line and "did not decode it" in line

    folder = tmp_path / "set"
    folder.mkdir()
    Image.fromarray(_rgb(64, 64)).save(folder / "good.png")
    _bomb(folder / "huge.png")
    assert main(["data", "check", "--data", str(folder), "--scale", "4"]) == 1
    out = capsys.readouterr().out
    assert "HR huge.png is not a readable image (it declares 200 megapixels" in out

    assert main(["run", "--data", str(folder), "--models", "bicubic", "--device", "cpu",
                 "-o", str(tmp_path / "r")]) == 2  # fmt: skip
    assert "huge.png" in _error_line(capsys)


def test_decompression_bomb_sibling_jpeg_under_a_lower_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sibling: another format and another size; the limit is Pillow's own setting.
    photo = tmp_path / "photo.jpg"
    Image.fromarray(_rgb(100, 120)).save(photo, quality=90)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 12,000 px > 2 x 2000: a "bomb"
    with pytest.raises(SrbenchError, match=r"cannot read image .*photo\.jpg: it declares 0 megapixels"):
        read_image(photo)
    assert main(["upscale", str(photo), "--model", "bicubic", "--device", "cpu"]) == 2
    assert "photo.jpg" in _error_line(capsys)


# --------------------------------------------------------------------------- 7. 16-bit with alpha


@pytest.mark.parametrize("color_type", [6, 4], ids=["rgba16", "la16"])
def test_allow_16bit_keeps_alpha_and_grey_like_the_8bit_copy(
    tmp_path: Path, color_type: int, capsys: pytest.CaptureFixture[str]
) -> None:
    channels = {6: 4, 4: 2}[color_type]
    rng = np.random.default_rng(color_type)
    samples = rng.integers(0, 65536, (10, 12 * channels), dtype=np.uint16)
    src16 = _png(tmp_path / "deep.png", samples.astype(">u2"), color_type, 16)
    src8 = _png(tmp_path / "eight.png", (samples >> 8).astype(np.uint8), color_type, 8)

    image = read_source(src16, allow_16bit=True)
    assert image.alpha is not None and image.grey == (color_type == 4)
    assert image.rgb.flags.writeable  # torch.from_numpy warns about read-only arrays

    for src in (src16, src8):
        assert main(["upscale", str(src), "-m", "bicubic", "--device", "cpu", "--allow-16bit"]) == 0
    capsys.readouterr()
    with (
        Image.open(tmp_path / "deep_x4_bicubic.png") as a,
        Image.open(tmp_path / "eight_x4_bicubic.png") as b,
    ):
        assert a.mode == b.mode == {6: "RGBA", 4: "LA"}[color_type]
        assert np.array_equal(np.asarray(a), np.asarray(b))


# --------------------------------------------------------------------------- 8. animated / multi-page


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_animated_and_multipage_inputs_are_refused_in_one_line(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [Image.fromarray(np.full((16, 16, 3), 60 * k, np.uint8)) for k in range(3)]
    src = tmp_path / f"anim{suffix}"
    extra = {"lossless": True} if suffix == ".webp" else {}
    frames[0].save(src, save_all=True, append_images=frames[1:], **extra)
    assert main(["upscale", str(src), "--model", "bicubic", "--device", "cpu"]) == 2
    line = _error_line(capsys)
    assert f"anim{suffix} holds 3 frames (animated or multi-page)" in line
    assert not list(tmp_path.glob("*_x4_*"))  # nothing half-written


def test_multipage_hr_is_reported_by_data_check(tmp_path: Path) -> None:
    # Sibling: another command and a two-page file.
    folder = tmp_path / "set"
    folder.mkdir()
    pages = [Image.fromarray(_rgb(40, 40, k)) for k in range(2)]
    pages[0].save(folder / "scan.tif", save_all=True, append_images=pages[1:])
    problems = check_dataset(folder)
    assert [p.kind for p in problems] == ["frames"]
    assert "scan.tif holds 2 frames" in problems[0].message
    with pytest.raises(SrbenchError, match="holds 2 frames"):
        read_image(folder / "scan.tif")


# --------------------------------------------------------------------------- 10. tiny images


@pytest.mark.parametrize(("side", "scale"), [(16, 4), (14, 2)])
def test_hr_too_small_for_ssim_is_named_by_data_check(tmp_path: Path, side: int, scale: int) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    Image.fromarray(_rgb(side, side)).save(folder / "icon.png")
    Image.fromarray(_rgb(64, 64, 1)).save(folder / "photo.png")
    problems = check_dataset(folder, scale=scale)
    assert [p.kind for p in problems] == ["too-small-for-ssim"]
    left = (side // scale) * scale - 2 * scale
    assert problems[0].message.startswith(f"HR icon.png is {side}x{side}: {left}x{left} after the x{scale}")
    assert f"at least {SSIM_WINDOW + 2 * scale}x{SSIM_WINDOW + 2 * scale}" in problems[0].message


def test_ssim_window_constant_matches_the_metric() -> None:
    assert datasets.SSIM_MIN_SIDE == SSIM_WINDOW


def test_scoring_a_tiny_image_names_it() -> None:
    hr = _rgb(16, 16)
    out = torch.from_numpy(hr).permute(2, 0, 1).float() / 255
    with pytest.raises(SrbenchError, match=r"image icon\.png: HR 16x16 leaves 8x8 after the 4-pixel border"):
        score_image(out, hr, crop_border=4, name="icon.png")
    score_image(out, hr, crop_border=2, name="icon.png")  # 12x12 holds a window


# --------------------------------------------------------------------------- 11. untrusted checkpoints


class _Shell:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_code_running_pickle_is_named_not_called_corrupt(tmp_path: Path) -> None:
    zipped = tmp_path / "net.pth"
    torch.save({"w": torch.zeros(2), "hook": _Shell()}, zipped)
    raw = tmp_path / "raw.pth"
    raw.write_bytes(pickle.dumps(_Eval()))  # sibling: legacy (non-zip) file, builtins.eval
    for path, name in ((zipped, "system"), (raw, "builtins.eval")):
        with pytest.raises(SrbenchError) as caught:
            read_checkpoint(path)
        text = str(caught.value)
        assert name in text and "runs code" in text and "truncated" not in text
        assert "weights_only=False" in text  # says not to do it


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (argparse.Namespace(lr=2e-4), "argparse.Namespace"),
        (np.float64(30.1), "numpy scalars"),
        (np.int64(7), "numpy scalars"),
    ],
)
def test_blocked_types_are_named_with_the_safe_resave(tmp_path: Path, extra: object, named: str) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"params": {"w": torch.zeros(2)}, "extra": extra}, path)
    with pytest.raises(SrbenchError) as caught:
        read_checkpoint(path)
    text = str(caught.value)
    assert named in text and "\x1b" not in text and "truncated" not in text
    assert "torch.is_tensor" in text and "safetensors" in text
    assert any(g.startswith(("argparse", "numpy")) for g in pickle_globals(path))


def test_cause_strips_terminal_escapes() -> None:
    assert (
        cause(RuntimeError("two options, \x1b[1mdo those steps\x1b[0m only"))
        == "two options, do those steps only"
    )


# --------------------------------------------------------------------------- 12. local web server


def _request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    status = conn.getresponse().status
    conn.close()
    return status


def test_server_refuses_foreign_hosts_and_origins(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>hi</p>")
    with LocalServer({"/": tmp_path}) as server:
        port = server.port
        ours = f"http://127.0.0.1:{port}"
        assert _request(port, "GET", "/", {"Host": f"127.0.0.1:{port}"}) == 200
        assert _request(port, "GET", "/", {"Host": f"localhost:{port}"}) == 200
        # DNS rebinding: a hostile name that resolves to 127.0.0.1 (and a sibling: other port).
        assert _request(port, "GET", "/", {"Host": f"evil.example:{port}"}) == 403
        assert _request(port, "GET", "/", {"Host": f"127.0.0.1:{port + 1}"}) == 403
        assert _request(port, "GET", "/", {}) == 403
        # Cross-site writes: another Origin, or the browser's own Sec-Fetch-Site.
        host = {"Host": f"127.0.0.1:{port}"}
        assert _request(port, "POST", "/blob/a", {**host, "Origin": "http://evil.example"}, b"x") == 403
        assert (
            _request(port, "POST", "/blob/a", {**host, "Origin": f"http://127.0.0.1:{port + 1}"}, b"x") == 403
        )
        assert _request(port, "POST", "/blob/a", {**host, "Sec-Fetch-Site": "cross-site"}, b"x") == 403
        assert server.blobs == {}
        assert (
            _request(port, "POST", "/blob/a", {**host, "Origin": ours, "Sec-Fetch-Site": "same-origin"}, b"x")
            == 204
        )
        assert server.take_blob("a") == b"x"
        assert _request(port, "POST", "/blob/../x", {**host, "Origin": ours}, b"x") == 403


def test_server_bounds_blob_size_and_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_mod, "MAX_BLOB", 8)
    monkeypatch.setattr(server_mod, "MAX_BLOBS", 2)
    monkeypatch.setattr(server_mod, "MAX_BLOB_TOTAL", 12)
    with LocalServer({"/": tmp_path}) as server:
        port = server.port
        h = {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"}
        assert _request(port, "POST", "/blob/big", h, b"x" * 9) == 413
        assert _request(port, "POST", "/blob/a", h, b"x" * 8) == 204
        assert _request(port, "POST", "/blob/b", h, b"x" * 5) == 413  # total 13 > 12
        assert _request(port, "POST", "/blob/b", h, b"x" * 4) == 204
        assert _request(port, "POST", "/blob/c", h, b"") == 413  # a third blob
        assert _request(port, "POST", "/blob/a", h, b"y" * 8) == 204  # replacing is fine
        assert sorted(server.blobs) == ["a", "b"]


# --------------------------------------------------------------------------- 13. truncated files


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_data_check_catches_truncated_files_by_default_and_run_names_each(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    for k, stem in enumerate(("a", "b", "c")):
        Image.fromarray(_rgb(64, 64, k)).save(folder / f"{stem}{suffix}")
    for stem in ("a", "c"):
        data = (folder / f"{stem}{suffix}").read_bytes()
        (folder / f"{stem}{suffix}").write_bytes(data[: len(data) // 2])
    problems = check_dataset(folder)
    assert [p.path.name for p in problems] == [f"a{suffix}", f"c{suffix}"]
    assert all("truncated" in p.message for p in problems)
    assert main(["run", "--data", str(folder), "--models", "bicubic", "--device", "cpu",
                 "-o", str(tmp_path / "r")]) == 2  # fmt: skip
    line = _error_line(capsys)
    assert f"a{suffix}" in line and f"c{suffix}" in line and f"b{suffix}" not in line


# --------------------------------------------------------------------------- 13. score's edition


def _challenge_run(folder: Path, edition: str) -> Path:
    from srbench.ntire.challenge import CHALLENGE_SCHEMA

    folder.mkdir(parents=True)
    row = {
        "psnr": {"valid": 26.9, "test": 27.0},
        "runtime_ms": 10.0,
        "params": 276_000,
        "flops": 16_700_000_000,
    }
    doc = {
        "schema": CHALLENGE_SCHEMA,
        "edition": edition,
        "splits": ["valid", "test"],
        "models": [{"name": "efdn", **row}, {"name": "mine", **row, "runtime_ms": 8.0}],
    }
    (folder / "challenge.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize("edition", ["ntire2025", "ntire2024"])
def test_score_uses_the_edition_the_run_recorded(
    tmp_path: Path, edition: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _challenge_run(tmp_path / "run", edition)
    assert main(["score", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["edition"] == edition
    assert main(["score", str(run), "--json", "--edition", "ntire2026"]) == 0  # an explicit choice wins
    assert json.loads(capsys.readouterr().out)["edition"] == "ntire2026"


def test_score_refuses_runs_of_different_editions_without_edition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _challenge_run(tmp_path / "a", "ntire2025")
    b = _challenge_run(tmp_path / "b", "ntire2024")
    assert main(["score", str(a), str(b)]) == 2
    assert "different editions (ntire2024, ntire2025); pass --edition" in _error_line(capsys)


# --------------------------------------------------------------------------- 13. check's platform


@pytest.mark.parametrize(
    ("part", "key", "value"),
    [("environment", "torch", "2.99.0"), ("environment", "torch_threads", 3), ("config", "dtype", "fp16")],
)
def test_check_names_the_key_that_makes_another_platform(part: str, key: str, value: object) -> None:
    from srbench.reporting import check as C
    from srbench.results.schema import RunResult

    def run(**over: object) -> RunResult:
        env = {"device": "cpu", "device_name": "Test CPU", "torch": "2.13.0", "torch_threads": 2}
        cfg = {"scale": 4, "dtype": "fp32"}
        (env if part == "environment" else cfg).update(over)
        return RunResult(
            environment=env, config=cfg, dataset={"name": "s", "images": 1, "scale": 4}, models=[]
        )

    same = [f for f in C.compare_runs(run(), run()) if f.metric == "sr_sha256"]
    assert same == []
    notes = [f for f in C.compare_runs(run(), run(**{key: value})) if f.metric == "sr_sha256"]
    assert len(notes) == 1
    assert f"{part}.{key}" in str(notes[0].baseline) and repr(value) in str(notes[0].baseline)


# --------------------------------------------------------------------------- 13. new-model's next step


@pytest.mark.parametrize("has_pytest", [True, False])
def test_new_model_suggests_pytest_only_when_it_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], has_pytest: bool
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: real(name, *a) if has_pytest or name != "pytest" else None,
    )
    assert main(["new-model", "tiny_net", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    first = next(line for line in out.splitlines() if line.startswith("next:"))
    if has_pytest:
        assert first.startswith("next: python -m pytest")
    else:
        assert first == f"next: srbench profile --models {tmp_path / 'tiny_net.py'}:TinyNet"
        assert "python -m pip install pytest, then python -m pytest" in out


# --------------------------------------------------------------------------- 13. report.md's load warning


@pytest.mark.parametrize("n_runs", [1, 2])
def test_report_md_carries_the_run_notes_like_results_md_and_html(tmp_path: Path, n_runs: int) -> None:
    from srbench.core.files import atomic_write_text
    from srbench.results.schema import ModelResult, RunResult, results_json

    busy = "load average 9.1 before and 9.4 after the run on 2 CPUs: other processes competed"
    paths = []
    for i in range(n_runs):
        run = RunResult(
            environment={"device": "cpu", "device_name": f"CPU-{i}"},
            config={"scale": 4, "dtype": "fp32"},
            dataset={"name": "sample", "images": 2, "scale": 4},
            models=[ModelResult(name="bicubic", arch="bicubic", scale=4, status="ok", params=0, flops=0)],
            notes=[busy] if i == n_runs - 1 else [],  # sibling: the note on the second of two runs
        )
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        atomic_write_text(folder / "results.json", results_json(run))
        paths.append(folder)
    out = tmp_path / "report"
    assert main(["report", *map(str, paths), "--output", str(out)]) == 0
    for name in ("report.md", "report.html"):
        assert busy in (out / name).read_text(), name


# --------------------------------------------------------------------------- 13. ONNX metadata numbers


@pytest.mark.parametrize(("input_range", "text"), [(1.0, "1"), (255.0, "255")])
def test_onnx_metadata_holds_numbers_and_old_files_still_read(input_range: float, text: str) -> None:
    from srbench.backends.onnx_export import ExportMetadata

    meta = ExportMetadata("net", "span", 4, input_range, "ab" * 32)
    props = meta.to_props()
    assert props["srbench.input_range"] == text and props["srbench.scale"] == "4"
    typed = json.loads(props["srbench.json"])
    assert typed["input_range"] == input_range and isinstance(typed["input_range"], float)
    assert isinstance(typed["scale"], int)
    assert ExportMetadata.from_props(props) == meta
    # A file written before: every value a string such as '1.0', no srbench.json.
    old = {k: str(v) for k, v in props.items() if k != "srbench.json"}
    old["srbench.input_range"] = str(input_range)
    assert ExportMetadata.from_props(old) == meta


# --------------------------------------------------------------------------- 9. output larger than memory


def test_output_that_would_not_fit_untiled_is_tiled_and_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    from srbench.backends import pytorch as P
    from srbench.models.registry import create_model
    from srbench.runner.upscale import SourceImage, Upscaler

    rgb = _rgb(300, 260)
    out_bytes = 3 * 1200 * 1040 * 4
    up = Upscaler("bicubic", create_model("bicubic"), input_range=1.0, scale=4)
    monkeypatch.setattr(P, "available_memory", lambda device: None)  # unknown: untiled
    plain, _, tiled = up.upscale(SourceImage(rgb))
    assert not tiled
    # Room for the tiled estimate but not the untiled one: tiled before anything runs.
    room = (P.TILED_BUFFERS * out_bytes + P.UNTILED_BUFFERS * out_bytes) // 2
    monkeypatch.setattr(P, "available_memory", lambda device: room)
    assert up.memory_plan(300, 260).tile == P.AUTO_TILE
    small, _, tiled = up.upscale(SourceImage(rgb))
    assert tiled and np.abs(small.astype(int) - plain.astype(int)).max() <= 1


@pytest.mark.parametrize("scale", [4, 2])
def test_output_that_cannot_fit_names_the_image_not_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], scale: int
) -> None:
    from srbench.backends import pytorch as P

    src = tmp_path / "flat.png"
    Image.fromarray(np.full((400, 400, 3), 128, np.uint8)).save(src)
    monkeypatch.setattr(P, "available_memory", lambda device: 1_000_000)
    argv = ["upscale", str(src), "--model", "bicubic", "--device", "cpu", "--scale", str(scale)]
    assert main(argv) == 2
    line = _error_line(capsys)
    side = 400 * scale
    assert f"image {src} (400x400) upscaled x{scale} is {side}x{side}" in line
    assert "report" not in line and "model" not in line
    assert not (tmp_path / f"flat_x{scale}_bicubic.png").exists()


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: 3 GB"),
        RuntimeError("CUDA out of memory. Tried to allocate 3.00 GiB"),
    ],
)
def test_out_of_memory_in_a_model_blames_the_input_size(exc: BaseException) -> None:
    from srbench.runner.failures import describe_failure

    text = str(describe_failure("span", "image big.png", exc, size=(4000, 4000), probe=lambda s: None))
    assert "ran out of memory on image big.png (4000x4000)" in text
    assert "--tile" in text and "report it" not in text


def test_complete_files_with_trailing_bytes_are_not_called_truncated(tmp_path: Path) -> None:
    from srbench.data.imageio import truncation

    for suffix in (".png", ".jpg"):
        path = tmp_path / f"x{suffix}"
        Image.fromarray(_rgb(32, 32)).save(path)
        assert truncation(path) is None
        path.write_bytes(path.read_bytes() + b"trailer written by some tool")
        assert truncation(path) is None
        read_image(path)  # and Pillow reads it


def test_camera_jpeg_with_a_preview_picture_is_one_image(tmp_path: Path) -> None:
    # Sibling of the multi-frame refusal that must NOT be refused: MPO (multi-picture JPEG).
    from srbench.data.imageio import probe_image

    path = tmp_path / "cam.jpg"
    main_pic = Image.fromarray(_rgb(32, 32))
    main_pic.save(path, format="MPO", save_all=True, append_images=[Image.fromarray(_rgb(16, 16, 1))])
    assert probe_image(path).frames == 1
    assert read_image(path).shape == (32, 32, 3)
    assert check_dataset(tmp_path) == []
