"""A model's runtime error is one line naming the input, in every command (issue 19 case 3).

RLFN's ESA branch (stride-2 conv, then a 7x7/3 max-pool) cannot run on tiny inputs: PyTorch
raises "Output size is too small". By the layer arithmetic the pooled map needs
floor((H - 3) / 2) + 1 >= 7, i.e. H >= 15: the smallest input is 15x15 (the independent
reference the search is checked against).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srbench.cli import main
from srbench.core.errors import SrbenchError
from srbench.runner.failures import cause, describe_failure, model_call, smallest_input

RLFN_MIN_SIDE = 15  # floor((15 - 3) / 2) + 1 = 7 = the pool's kernel


def _png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("srbench: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_cause_is_cut_between_words() -> None:
    exc = RuntimeError("word " * 100 + "\nsecond line")
    text = cause(exc, limit=23)
    assert text == "word word word word…"
    assert cause(ValueError("")) == "ValueError"


def test_smallest_input_bisects_to_the_threshold() -> None:
    calls: list[int] = []

    def probe(side: int) -> None:
        calls.append(side)
        if side < 37:
            raise RuntimeError("too small")

    assert smallest_input(probe) == 37
    assert len(calls) <= 10  # 256 first, then a bisection of 1..256
    assert smallest_input(lambda s: (_ for _ in ()).throw(RuntimeError("never"))) is None


def test_model_call_passes_srbench_errors_and_wraps_the_rest() -> None:
    with pytest.raises(SrbenchError, match=r"^already one line$"), model_call("m", "x"):
        raise SrbenchError("already one line")
    wrapped = r"model 'm' failed on image a\.png \(3x4\): boom; rerun with --debug"
    with pytest.raises(SrbenchError, match=wrapped), model_call("m", "image a.png", size=(3, 4)):
        raise RuntimeError("boom")
    # Not a size problem: the model takes inputs this small, so no size advice.
    err = describe_failure("m", "image a", RuntimeError("x"), size=(20, 20), probe=lambda s: None)
    assert "at least" not in str(err) and err.min_side is None


@pytest.mark.slow
def test_upscale_tiny_image_is_one_line_naming_file_model_and_smallest_input(tmp_path: Path, capsys) -> None:
    from tests_support import require_weights

    require_weights()
    icon = _png(tmp_path / "icon.png", 12, 12)
    assert main(["upscale", str(icon), "--model", "rlfn", "--offline"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(icon) in line and "'rlfn'" in line and f"at least {RLFN_MIN_SIDE}x{RLFN_MIN_SIDE}" in line
    # The named minimum is true: 15x15 upscales, 14x14 does not.
    ok = _png(tmp_path / "ok.png", RLFN_MIN_SIDE, RLFN_MIN_SIDE)
    assert main(["upscale", str(ok), "--model", "rlfn", "--offline"]) == 0
    small = _png(tmp_path / "small.png", RLFN_MIN_SIDE - 1, RLFN_MIN_SIDE - 1)
    assert main(["upscale", str(small), "--model", "rlfn", "--offline"]) == 2


def test_profile_tiny_input_is_one_line(capsys) -> None:
    assert main(["profile", "--models", "rlfn", "--input", "1x3x12x12"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "1x3x12x12" in line and f"at least {RLFN_MIN_SIDE}x{RLFN_MIN_SIDE}" in line and "--input" in line


@pytest.mark.slow
def test_run_error_row_names_the_image(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    (tmp_path / "no-weights").mkdir()
    _png(tmp_path / "photos" / "a_big.png", 64, 64)  # LR 16x16: fine
    _png(tmp_path / "photos" / "b_icon.png", 48, 48, seed=1)  # LR 12x12: too small for rlfn
    out = tmp_path / "out"
    args = ["run", "--models", "rlfn,bicubic", "--data", str(tmp_path / "photos"), "--offline"]
    assert main([*args, "--no-isolate", "--output", str(out)]) == 1
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    reason = rows["rlfn"]["reason"]
    assert rows["rlfn"]["status"] == "error"
    assert "image b_icon (12x12)" in reason and f"at least {RLFN_MIN_SIDE}x{RLFN_MIN_SIDE}" in reason
    assert "[1 of 2 images measured before it]" in reason
    assert [i["name"] for i in rows["rlfn"]["images"]] == ["a_big"]  # kept, not dropped
    assert rows["bicubic"]["status"] == "ok"  # other models survive


@pytest.mark.slow
def test_export_of_a_model_that_raises_is_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnx")
    import srbench_test_models
    import torch

    from srbench.models.registry import get_entry

    srbench_test_models.register()
    ckpt = tmp_path / "raise.pth"
    torch.save(get_entry("test_raise").build(scale=4).state_dict(), ckpt)
    args = ["export", "--model", "test_raise", "--weights", str(ckpt), "--format", "onnx"]
    code = main([*args, "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2, err
    line = _one_error_line(err)
    assert "test_raise" in line  # the export's own one-line error, or model_call's
