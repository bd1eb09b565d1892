"""The bad-input matrix (docs/bad-inputs.md): one line, the right exit code, nothing lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import srbench_test_models  # noqa: F401  (registers test_slow)
import torch
from PIL import Image

from srbench.cli import main
from srbench.results import io as results_module


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("srbench: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _png(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _paired(root: Path) -> Path:
    for i in range(2):
        _png(root / "HR" / f"{i}.png", 32, 32, i)
        _png(root / "LR" / f"{i}.png", 8, 8, i)
    return root


@pytest.fixture(scope="module")
def bad_ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from srbench.models import create_model

    tmp = tmp_path_factory.mktemp("ckpts")
    rlfn2 = tmp / "rlfn_x2.pth"
    torch.save(create_model("rlfn", scale=2).state_dict(), rlfn2)
    span = tmp / "span_x4.pth"
    torch.save(create_model("span", scale=4).state_dict(), span)
    good = tmp / "rlfn_x4.pth"
    torch.save(create_model("rlfn", scale=4).state_dict(), good)
    trunc = tmp / "truncated.pth"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {"wrong_scale": rlfn2, "other_arch": span, "truncated": trunc}


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("unknown_model", "unknown model 'rlfnn'"),
        ("unknown_option_value", "--dtype"),
        ("missing_folder", "nope"),
        ("empty_folder", "empty"),
        ("corrupt_png", "corrupt.png"),
        ("mismatched_sizes", "1.png"),
        ("wrong_scale", "rlfn_x2.pth"),
        ("other_arch", "span_x4.pth"),
        ("truncated", "truncated.pth"),
        ("unwritable_output", "not writable"),
        ("unsupported_scale", "does not support --scale 5"),
    ],
)
def test_bad_input_matrix(
    case: str, expect: str, tmp_path: Path, bad_ckpts: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--output", str(tmp_path / "out"), "--no-isolate"]
    base = ["run", "--models", "bicubic", *out]
    if case == "unknown_model":
        args = ["run", "--models", "rlfnn", *out]
    elif case == "unknown_option_value":
        args = [*base, "--dtype", "fp64"]
    elif case == "missing_folder":
        args = [*base, "--data", str(tmp_path / "nope")]
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args = [*base, "--data", str(tmp_path / "empty")]
    elif case == "corrupt_png":
        root = _paired(tmp_path / "set")
        (root / "HR" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        _png(root / "LR" / "corrupt.png", 8, 8)
        args = [*base, "--data", str(root)]
    elif case == "mismatched_sizes":
        root = _paired(tmp_path / "set")
        _png(root / "LR" / "1.png", 9, 8)
        args = [*base, "--data", str(root)]
    elif case == "unsupported_scale":  # before any data is read or any model runs
        args = ["run", "--models", "bicubic,span", "--scale", "5", *out]
    elif case in ("wrong_scale", "other_arch", "truncated"):
        args = ["run", "--models", f"rlfn={bad_ckpts[case]}", *out]
    else:  # unwritable_output: a path below a regular file
        blocker = tmp_path / "file"
        blocker.write_text("x")
        args = ["run", "--models", "bicubic", "--output", str(blocker / "sub"), "--no-isolate"]
    code, err = _run(args, capsys)
    assert code == 2
    assert expect in _one_line_error(err)
    assert not (tmp_path / "out" / "results.json").exists()  # nothing ran, nothing half-written


def test_wrong_architecture_suggests_the_right_model(bad_ckpts, capsys) -> None:
    code, err = _run(["run", "--models", f"rlfn={bad_ckpts['other_arch']}", "--no-isolate"], capsys)
    assert code == 2 and "'span'" in _one_line_error(err)


def test_disk_full_keeps_earlier_results(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    real = results_module.atomic_write_text
    calls = {"n": 0}

    def flaky(path: Path, text: str) -> None:
        calls["n"] += 1
        if calls["n"] > 3:  # the first model's three files land, then the disk fills up
            raise OSError(28, "No space left on device")
        real(path, text)

    # write_results writes through the shared helper (srbench.core.files) as results.io.atomic_write_text.
    monkeypatch.setattr(results_module, "atomic_write_text", flaky)
    args = [
        "run",
        "--models",
        "bicubic,test_slow",
        "--output",
        str(out),
        "--no-isolate",
        "--data",
        "sample-mini",
    ]
    code, err = _run(args, capsys)
    assert code == 2
    assert "No space left on device" in _one_line_error(err)
    saved = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in saved["models"]] == ["bicubic"]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_resume_on_another_config_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert (
        main(["run", "--models", "bicubic", "--output", str(out), "--no-isolate", "--data", "sample-mini"])
        == 0
    )
    before = (out / "results.json").read_text()
    capsys.readouterr()
    args = [
        "run",
        "--models",
        "bicubic",
        "--resume",
        str(out),
        "--no-isolate",
        "--warmup",
        "1",
        "--data",
        "sample-mini",
    ]
    code, err = _run(args, capsys)
    assert code == 2 and "another configuration" in _one_line_error(err)
    assert (out / "results.json").read_text() == before
