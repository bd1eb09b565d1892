"""Checkpoint reading, layout conversion, strict loading, detection and weights resolution."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from srbench.core.errors import SrbenchError
from srbench.models.loading import (
    detect_architecture,
    load_weights,
    read_checkpoint,
)
from srbench.models.registry import ModelEntry, WeightsSpec, all_entries, create_model, get_entry
from srbench.models.rlfn import rename_rlfn_ntire2022_keys
from srbench.models.span import SPAN, convert_span_full_to_fused
from srbench.models.weights import WeightsFile, resolve_weights, sha256_file, weights_cache_dir


def randomise_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


def official_files() -> list[tuple[str, int, WeightsSpec]]:
    return [(e.name, s.scale, s) for e in all_entries() for s in e.weights]


# --------------------------------------------------------------------------- official files


@pytest.mark.weights
@pytest.mark.parametrize(
    ("name", "scale", "spec"), official_files(), ids=lambda v: getattr(v, "file_name", v)
)
def test_official_file_loads_strictly(
    official_weights: Path, name: str, scale: int, spec: WeightsSpec
) -> None:
    path = official_weights / spec.file_name
    if not path.is_file():
        pytest.skip(f"{spec.file_name} is not in SRBENCH_WEIGHTS_DIR")
    state = read_checkpoint(path)
    assert sum(t.numel() for t in state.values()) == spec.params
    entry = get_entry(name)
    model = entry.build(scale)
    load_weights(model, entry, state, source=str(path))
    assert sum(p.numel() for p in model.parameters()) == spec.params
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v.float()) for k, v in state.items())
    assert detect_architecture(state) == (name, scale)


@pytest.mark.weights
def test_every_folder_file_is_registered(official_weights: Path) -> None:
    folder = official_weights
    registered = {spec.file_name for _, _, spec in official_files()}
    on_disk = {p.name for p in folder.glob("*.pth")}
    assert on_disk <= registered, on_disk - registered


@pytest.mark.weights
def test_resolve_official_weights_from_env(official_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(official_weights))
    entry = get_entry("span")
    found = resolve_weights(entry, 4)
    if found is None:
        pytest.skip("team38 SPAN file absent")
    assert found == WeightsFile(
        official_weights / "ntire2024_team38_span_ch28_slim_x4.pth",
        "6c80f05048313289c6526e5fc9726688d7bb3dfdd6ae3c8b1e7dd09f601e5971",
        618658,
        "SRBENCH_WEIGHTS_DIR",
    )
    assert resolve_weights(entry, 2) is None  # no official x2 SPAN


# --------------------------------------------------------------------------- SPAN layouts


def test_full_layout_with_stale_eval_conv_loads_branch_fused() -> None:
    trainer = randomise_(SPAN(3, 3, feature_channels=28, upscale=4, deploy=False), seed=3)
    full = {k: v.clone() for k, v in trainer.state_dict().items()}
    assert len(full) == 204
    for key in full:
        if ".eval_conv." in key:
            full[key] += 0.5  # deliberately stale
    x = torch.rand(1, 3, 14, 18)
    with torch.no_grad():
        reference = trainer.train()(x)  # the branches themselves

    entry = get_entry("span")
    deployed = entry.build(4)
    load_weights(deployed, entry, full, source="full.pth")
    with torch.no_grad():
        out = deployed(x)
    assert (out - reference).abs().max() / reference.abs().max() < 1e-5

    # The training-form construction loads the same dict as-is and re-fuses after loading.
    training_form = entry.build(4, deploy=False)
    load_weights(training_form, entry, full, source="full.pth")
    with torch.no_grad():
        torch.testing.assert_close(training_form(x), out, atol=1e-5, rtol=1e-5)


def test_span_converter_keeps_slim_dicts_and_key_order() -> None:
    slim = create_model("span", 4).state_dict()
    assert list(convert_span_full_to_fused(slim)) == list(slim)
    full = create_model("span", 4, deploy=False).state_dict()
    assert list(convert_span_full_to_fused(full)) == list(slim)


def test_span_ch48_full_layout_detected() -> None:
    full = SPAN(3, 3, feature_channels=48, upscale=3, deploy=False).state_dict()
    assert detect_architecture(full) == ("span_ch48", 3)


# --------------------------------------------------------------------------- RLFN 2022 names


def test_rlfn_ntire2022_names_load_to_identical_outputs() -> None:
    original = randomise_(create_model("rlfn", 4), seed=5)
    renamed = {}
    for key, value in original.state_dict().items():
        key = key.replace("conv_1.", "fea_conv.").replace("conv_2.", "LR_conv.")
        for k in range(1, 5):
            key = key.replace(f"block_{k}.", f"B{k}.")
        renamed[key] = value
    assert "fea_conv.weight" in renamed and "B4.esa.conv4.bias" in renamed and "LR_conv.bias" in renamed
    assert list(rename_rlfn_ntire2022_keys(renamed)) == list(original.state_dict())
    entry = get_entry("rlfn")
    fresh = entry.build(4)
    load_weights(fresh, entry, renamed, source="team04_rlfn.pth")
    x = torch.rand(1, 3, 20, 24) * 255
    with torch.no_grad():
        assert torch.equal(fresh(x), original(x))
    assert detect_architecture(renamed) == ("rlfn", 4)


def test_detect_architecture_by_shapes() -> None:
    assert detect_architecture(create_model("rlfn", 2).state_dict()) == ("rlfn", 2)
    assert detect_architecture(create_model("rlfn_s", 3).state_dict()) == ("rlfn_s", 3)
    assert detect_architecture(create_model("efdn", 4).state_dict()) == ("efdn", 4)
    assert detect_architecture({"foo.weight": torch.zeros(3)}) is None


# --------------------------------------------------------------------------- reading


@pytest.fixture
def small_state() -> dict[str, torch.Tensor]:
    return {"a.weight": torch.arange(6.0).view(2, 3), "a.bias": torch.ones(2)}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: {"params_ema": s, "params": {k: v * 0 for k, v in s.items()}},
        lambda s: {"params": s},
        lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}, "epoch": 7},
        lambda s: {"model": s},
        lambda s: {"net": s},
        lambda s: {"generator": s},
    ],
    ids=["flat", "params_ema", "params", "state_dict+module", "model", "net", "single-key"],
)
def test_read_checkpoint_unwraps(tmp_path: Path, small_state: dict[str, torch.Tensor], wrap) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(small_state), path)
    state = read_checkpoint(path)
    assert list(state) == list(small_state)
    assert all(torch.equal(state[k], small_state[k]) for k in small_state)


def test_read_safetensors(tmp_path: Path, small_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_file({f"module.{k}": v for k, v in small_state.items()}, str(path))
    state = read_checkpoint(path)
    assert set(state) == set(small_state)
    assert torch.equal(state["a.weight"], small_state["a.weight"])


def test_pickled_objects_are_refused(tmp_path: Path, small_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": small_state, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(SrbenchError, match="pickled Python objects") as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_names_the_file(
    tmp_path: Path, small_state: dict[str, torch.Tensor], suffix: str
) -> None:
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".pth":
        torch.save(small_state, whole)
    else:
        save_file(small_state, str(whole))
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(SrbenchError, match="truncated or corrupt") as info:
        read_checkpoint(cut)
    assert str(cut) in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SrbenchError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")


# --------------------------------------------------------------------------- mismatches


def test_rlfn_checkpoint_offered_to_span_suggests_rlfn() -> None:
    state = create_model("rlfn", 4).state_dict()
    entry = get_entry("span")
    with pytest.raises(SrbenchError) as info:
        load_weights(entry.build(4), entry, state, source="rlfn_x4.pth")
    message = str(info.value)
    assert "\n" not in message
    assert "rlfn_x4.pth" in message and "'span'" in message
    assert "missing keys: conv_1.eval_conv.weight" in message
    assert "unexpected keys: conv_1.weight" in message
    assert "it fits 'rlfn' at x4" in message


def test_shape_mismatch_names_shapes_and_suggests_span_tiny() -> None:
    state = create_model("span_tiny", 4).state_dict()
    entry = get_entry("span")
    with pytest.raises(SrbenchError) as info:
        load_weights(entry.build(4), entry, state, source="ch26.pth")
    message = str(info.value)
    assert "shape mismatches: conv_1.eval_conv.weight (26, 3, 3, 3) vs model (28, 3, 3, 3)" in message
    assert "it fits 'span_tiny' at x4" in message


def test_wrong_scale_suggests_right_scale() -> None:
    state = create_model("rlfn", 2).state_dict()
    entry = get_entry("rlfn")
    with pytest.raises(SrbenchError, match="it fits 'rlfn' at x2"):
        load_weights(entry.build(4), entry, state, source="x2.pth")


def test_unknown_checkpoint_says_nothing_fits() -> None:
    entry = get_entry("efdn")
    with pytest.raises(SrbenchError, match="no registered model fits it"):
        load_weights(entry.build(4), entry, {"x.weight": torch.zeros(1)}, source="odd.pth")


# --------------------------------------------------------------------------- weights resolution


@pytest.fixture
def fake_entry(tmp_path: Path) -> tuple[ModelEntry, bytes]:
    payload = b"official bytes"
    spec = WeightsSpec(
        file_name="fake_x4.pth",
        sha256=hashlib.sha256(payload).hexdigest(),
        url="https://example.invalid/fake_x4.pth",
        scale=4,
        size_bytes=len(payload),
    )
    entry = ModelEntry(
        name="fake", builder=lambda scale: torch.nn.Identity(), scales=(4,), input_range=1.0,
        description="test", weights=(spec,),
    )  # fmt: skip
    return entry, payload


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_entry) -> None:
    entry, payload = fake_entry
    env_dir, cache_root = tmp_path / "env", tmp_path / "cache"
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(env_dir))
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(cache_root))
    assert weights_cache_dir() == cache_root / "weights"
    assert resolve_weights(entry, 4) is None

    (cache_root / "weights").mkdir(parents=True)
    (cache_root / "weights" / "fake_x4.pth").write_bytes(payload)
    assert resolve_weights(entry, 4).source == "cache"

    env_dir.mkdir()
    (env_dir / "fake_x4.pth").write_bytes(payload)
    found = resolve_weights(entry, 4)
    assert found.source == "SRBENCH_WEIGHTS_DIR" and found.size_bytes == len(payload)
    assert found.sha256 == hashlib.sha256(payload).hexdigest() == sha256_file(found.path)

    mine = tmp_path / "my_training.pth"
    mine.write_bytes(b"anything at all")  # explicit files are not checksum-checked
    explicit = resolve_weights(entry, 4, explicit=mine)
    assert explicit.source == "explicit" and explicit.path == mine
    assert resolve_weights(entry, 2) is None  # no official file for x2


def test_wrong_checksum_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_entry) -> None:
    entry, _ = fake_entry
    monkeypatch.setenv("SRBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "fake_x4.pth").write_bytes(b"tampered")
    with pytest.raises(SrbenchError, match=r"fake_x4\.pth has sha256"):
        resolve_weights(entry, 4)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRBENCH_CACHE_DIR", raising=False)
    assert weights_cache_dir() == Path.home() / ".cache" / "srbench" / "weights"


def test_missing_explicit_file(tmp_path: Path, fake_entry) -> None:
    entry, _ = fake_entry
    with pytest.raises(SrbenchError, match="--weights fake="):
        resolve_weights(entry, 4, explicit=tmp_path / "missing.pth")


# --------------------------------------------------------------------------- refused formats (issue 19)


def _refusal(path: Path, recwarn: pytest.WarningsRecorder) -> str:
    recwarn.clear()  # making the files may warn; reading them must not
    with pytest.raises(SrbenchError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    assert [str(w.message) for w in recwarn] == []
    return text


def test_every_refused_checkpoint_format_is_named(
    tmp_path: Path, small_state: dict[str, torch.Tensor], recwarn: pytest.WarningsRecorder
) -> None:
    """Each file srbench cannot use is called what it is, with what to do instead, and torch's
    warnings while reading it stay out of the console."""
    import zipfile

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3))
    cases: dict[str, tuple[Path, str]] = {}
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    cases["empty"] = (empty, r"an empty file \(0 bytes\)")
    script = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(net), script)
    cases["torchscript"] = (script, r"a TorchScript archive .*torch\.jit\.load.*state_dict")
    full = tmp_path / "full.pth"
    torch.save(net, full)
    cases["full model"] = (full, r"a pickled full model \(torch\.save\(model\)\).*state_dict")
    other_zip = tmp_path / "weights.pth"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    cases["other zip"] = (
        other_zip,
        r"a zip archive that is not a PyTorch checkpoint \(it holds: readme\.txt\)",
    )
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"\x08\x07\x12\x07pytorch")
    cases["onnx"] = (onnx_file, r"an ONNX model.*\.pth/\.safetensors")
    bad_header = tmp_path / "bad.safetensors"
    bad_header.write_bytes((10**9).to_bytes(8, "little") + b'{"a": 1}')
    cases["safetensors header"] = (bad_header, r"a \.safetensors file whose header or data is broken")
    html = tmp_path / "span.pth"
    html.write_bytes(b"<!DOCTYPE html><html><body>rate limited</body></html>")
    cases["html"] = (html, r"an HTML page")
    lfs = tmp_path / "lfs.pth"
    lfs.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    cases["lfs"] = (lfs, r"a Git LFS pointer.*git lfs pull")
    for kind, (path, pattern) in cases.items():
        import re

        assert re.search(pattern, _refusal(path, recwarn)), kind
    # A safetensors file named .pth is read as what it is.
    st_as_pth = tmp_path / "really_safetensors.pth"
    save_file(small_state, str(st_as_pth))
    assert set(read_checkpoint(st_as_pth)) == set(small_state)


def test_truncated_message_is_not_cut_mid_word(tmp_path: Path, small_state: dict[str, torch.Tensor]) -> None:
    whole = tmp_path / "whole.pth"
    torch.save(small_state, whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(SrbenchError) as info:
        read_checkpoint(cut)
    inside = str(info.value).split("(", 1)[1].split(")", 1)[0]
    # Either the whole first line of torch's message, or cut at a space and marked with "…".
    assert not inside.endswith("…") or (inside[:-1] == inside[:-1].rstrip() and " " in inside)
