"""Weights on demand: list, fetch and auto-fetch against a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from srbench.cli import main
from srbench.models import all_entries, get_entry
from srbench.models.weights import resolve_weights

SPAN_FILE = "ntire2024_team38_span_ch28_slim_x4.pth"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, official_weights: Path) -> Iterator[tuple[str, Path]]:
    """Serves a folder on 127.0.0.1 holding one good and one corrupted checkpoint."""
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(official_weights / SPAN_FILE, root / SPAN_FILE)
    bad = (official_weights / "ntire2024_team00_rlfn_baseline_x4.pth").read_bytes()
    (root / "ntire2024_team00_rlfn_baseline_x4.pth").write_bytes(bad[:-10] + b"0123456789")
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(cache))
    monkeypatch.delenv("SRBENCH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("SRBENCH_OFFLINE", raising=False)
    return cache / "weights"


def test_fetch_verifies_and_caches(server: tuple[str, Path], isolated_env: Path, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("SRBENCH_WEIGHTS_MIRROR", url)
    entry = get_entry("span")
    assert resolve_weights(entry, 4) is None
    assert main(["weights", "fetch", "span"]) == 0
    got = resolve_weights(entry, 4)
    assert got is not None and got.source == "cache" and got.sha256 == entry.weights_for(4).sha256
    assert (isolated_env / SPAN_FILE).is_file()


def test_corrupt_download_leaves_nothing(
    server: tuple[str, Path], isolated_env: Path, monkeypatch, capsys
) -> None:
    url, _ = server
    monkeypatch.setenv("SRBENCH_WEIGHTS_MIRROR", url)
    assert main(["weights", "fetch", "rlfn", "--scale", "4"]) == 2
    assert "sha256" in capsys.readouterr().err.lower()
    assert not (isolated_env / "ntire2024_team00_rlfn_baseline_x4.pth").exists()


def test_missing_file_is_one_line_error(server, isolated_env: Path, monkeypatch, capsys) -> None:
    url, _ = server
    monkeypatch.setenv("SRBENCH_WEIGHTS_MIRROR", url)
    assert main(["weights", "fetch", "efdn"]) == 2  # the server has no EFDN file: 404
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "404" in err[0]


def test_run_fetches_unless_offline(server, isolated_env: Path, monkeypatch, tmp_path: Path) -> None:
    from srbench.models.specs import ModelSpec
    from srbench.runner.building import build_model

    url, _ = server
    monkeypatch.setenv("SRBENCH_WEIGHTS_MIRROR", url)
    _, offline = build_model(ModelSpec("span", "span"), scale=4, offline=True)
    assert offline.weights is None and "efficiency figures only" in offline.reason
    monkeypatch.setenv("SRBENCH_OFFLINE", "1")
    _, env_offline = build_model(ModelSpec("span", "span"), scale=4)
    assert env_offline.weights is None
    monkeypatch.delenv("SRBENCH_OFFLINE")
    _, online = build_model(ModelSpec("span", "span"), scale=4)
    assert online.weights is not None and online.weights.source == "cache"


def test_fetch_unknown_and_list(isolated_env: Path, capsys) -> None:
    assert main(["weights", "fetch", "span_ca"]) == 2
    assert "no official checkpoint" in capsys.readouterr().err
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert SPAN_FILE in out and "missing" in out


@pytest.mark.parametrize("width", [100, 200])
def test_weights_list_prints_every_sha256_whole(
    isolated_env: Path, capsys, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # A cut sha256 ("71069f10ef234cd…") cannot verify a file: each must appear in full.
    monkeypatch.setattr("srbench.core.console.PIPE_WIDTH", width)
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    shas = {w.sha256 for e in all_entries() for w in e.weights}
    assert shas and all(sha in out for sha in shas)


def test_profile_takes_runs_name_for_the_input_shape(capsys) -> None:
    # profile's --input is run's --profile-input: either spelling works.
    assert main(["profile", "--models", "bicubic", "--profile-input", "1x3x16x16", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    assert row["input_shape"] == [1, 3, 16, 16]
