"""Bring your own model: a file, a module, an entry point, an NTIRE submission folder.

The closed-form model (one 3x3 conv 3->48, pixel shuffle x4, plus a nearest upsample of the
input) has counts derivable by hand at 1x3x256x256:

* params: 3*48*9 weights + 48 biases = 1,344;
* FLOPs (fvcore MACs): conv 48*3*9 * 256*256 = 84,934,656, plus nearest upsampling at one
  per output element 3*1024*1024 = 3,145,728: 88,080,384;
* activations: the conv's output 48*256*256 = 3,145,728; convs: 1.

With an all-zero checkpoint its output *is* the nearest-neighbour upsample of the input,
so its PSNR must equal the PSNR of a nearest upsample computed here with scikit-image.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio

from srbench.cli import main
from srbench.data.datasets import load_dataset

FAST = ["--data", "sample-mini", "--profile-input", "1x3x64x64"]

CLOSED_FORM = '''
"""A closed-form test network: conv 3->48, pixel shuffle x4, plus nearest upsampling."""
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """A building block: the discovery must not take it for the model."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1, bias=bias)

    def forward(self, x):
        return self.conv(x)


class Closed(nn.Module):
    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.body = Block(bias)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        return self.shuffle(self.body(x)) + F.interpolate(x, scale_factor=4, mode="nearest")


def build_closed(**kwargs):
    return Closed(**kwargs)


class NotAModel:
    pass
'''


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("srbench: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def closed_file(tmp_path: Path) -> Path:
    path = tmp_path / "closed.py"
    path.write_text(CLOSED_FORM)
    return path


def _zero_checkpoint(path: Path, wrap: str | None = None, *, bias: bool = True) -> Path:
    state = {"body.conv.weight": torch.zeros(48, 3, 3, 3)}
    if bias:
        state["body.conv.bias"] = torch.zeros(48)
    torch.save({wrap: state} if wrap else state, path)
    return path


def _nearest_quality(scale: int = 4) -> dict[str, tuple[float, float]]:
    """Per image ``(PSNR-Y, PSNR-RGB)`` of a nearest-neighbour upsample of sample-mini's LR."""
    out = {}
    for pair in load_dataset("sample-mini", scale=scale):
        sr = np.repeat(np.repeat(pair.lr, scale, axis=0), scale, axis=1)
        c = scale
        ys = rgb2ycbcr(sr)[c:-c, c:-c, 0]
        yh = rgb2ycbcr(pair.hr)[c:-c, c:-c, 0]
        psnr_rgb = peak_signal_noise_ratio(pair.hr[c:-c, c:-c], sr[c:-c, c:-c], data_range=255)
        out[pair.name] = (peak_signal_noise_ratio(yh, ys, data_range=255), psnr_rgb)
    return out


def _assert_nearest(model: dict) -> None:
    expected = _nearest_quality()
    assert model["status"] == "ok", model["reason"]
    assert len(model["images"]) == len(expected)
    for img in model["images"]:
        assert img["psnr_y"] == pytest.approx(expected[img["name"]][0], abs=1e-6)
        assert img["psnr_rgb"] == pytest.approx(expected[img["name"]][1], abs=1e-6)


def test_closed_form_counts_from_a_user_file(closed_file: Path, capsys) -> None:
    code, out, _ = _run(["profile", "--models", f"{closed_file}:Closed", "--json"], capsys)
    assert code == 0
    (row,) = json.loads(out)["models"]
    assert row["name"] == "Closed"  # named after the class
    assert (row["params"], row["flops"], row["activations"], row["convs"]) == (
        1_344,
        84_934_656 + 3_145_728,
        3_145_728,
        1,
    )


def test_class_is_discovered_and_kwargs_json_reach_it(closed_file: Path, capsys) -> None:
    # FILE.py alone: Block is used by Closed, so Closed is the model; the factory
    # build_closed is not a class and so no candidate. bias=false drops the 48 biases.
    args = ["profile", "--models", f"nobias={closed_file}", "--json"]
    args += ["--model-args", 'nobias={"bias": false}']
    code, out, err = _run(args, capsys)
    assert code == 0, err
    (row,) = json.loads(out)["models"]
    assert (row["name"], row["params"]) == ("nobias", 1_296)


def test_user_file_in_the_same_table_isolated(closed_file: Path, tmp_path: Path, capsys) -> None:
    """The "done when" command: a registered model and a user file, workers on (default)."""
    ckpt = _zero_checkpoint(tmp_path / "closed.pth", wrap="params_ema")
    out = tmp_path / "out"
    token = f"{closed_file}:Closed"
    args = [
        "run",
        "--models",
        f"bicubic,{token}",
        "--weights",
        f"{token}={ckpt}",
        *FAST,
        "--output",
        str(out),
    ]
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    data = json.loads((out / "results.json").read_text())
    rows = {m["name"]: m for m in data["models"]}
    assert list(rows) == ["bicubic", "Closed"]
    assert "Closed" in stdout and "bicubic" in stdout
    closed = rows["Closed"]
    assert closed["arch"] == token and closed["input_range"] == 1.0
    assert closed["weights"]["file"] == "closed.pth"
    assert (closed["params"], closed["convs"]) == (1_344, 1)
    _assert_nearest(closed)


def test_factory_in_a_module_with_a_factory_and_row_name(closed_file: Path, tmp_path: Path, capsys) -> None:
    sys.path.insert(0, str(closed_file.parent))
    try:
        ckpt = _zero_checkpoint(tmp_path / "z.pth", bias=False)
        args = ["run", "--models", "mine=closed:build_closed", "--weights", f"mine={ckpt}"]
        args += ["--model-args", 'closed:build_closed={"bias": false}', *FAST]
        args += ["--output", str(tmp_path / "out"), "--no-isolate"]
        code, _, err = _run(args, capsys)
    finally:
        sys.path.remove(str(closed_file.parent))
        sys.modules.pop("closed", None)
    assert code == 0, err
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["models"]
    assert (row["name"], row["arch"], row["params"]) == ("mine", "closed:build_closed", 1_296)
    _assert_nearest(row)


def test_strict_loading_names_the_unexpected_key(closed_file: Path, tmp_path: Path, capsys) -> None:
    state = {"body.conv.weight": torch.zeros(48, 3, 3, 3), "body.conv.bias": torch.zeros(48)}
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    args = ["run", "--models", f"{closed_file}:Closed", "--weights", f"Closed={tmp_path / 'extra.pth'}"]
    code, _, err = _run([*args, *FAST, "--no-isolate", "--output", str(tmp_path / "o")], capsys)
    line = _one_line_error(err)
    assert code == 2 and "unexpected keys: extra.weight" in line and "extra.pth" in line


def test_input_range_option_and_declared_attribute(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ranged.py"
    path.write_text(
        CLOSED_FORM
        + textwrap.dedent(
            """
            class Declared(Closed):
                data_range = 255.0
            """
        )
    )
    code, _, _ = _run(["profile", "--models", f"{path}:Declared,{path}:Closed", "--json"], capsys)
    assert code == 0
    from srbench.models.specs import parse_model_specs
    from srbench.runner.building import build_architecture

    specs = parse_model_specs(f"{path}:Declared,{path}:Closed", input_ranges={"Closed": 255.0})
    assert [build_architecture(s, 4)[0].input_range for s in specs] == [255.0, 255.0]
    default = parse_model_specs(f"{path}:Closed")[0]
    assert build_architecture(default, 4)[0].input_range == 1.0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing_file", "nope.py not found"),
        ("missing_class", "has no 'Nope' (it defines Block, Closed)"),
        ("not_a_module", "not a torch.nn.Module"),
        ("bad_json", "--model-args Closed: '{bias: false}' is not valid JSON"),
        ("json_not_object", "is a JSON list"),
        ("rejected_kwargs", "unexpected keyword argument 'width'"),
        ("import_error", "ImportError: no such thing"),
        ("unknown_row", "--model-args other=...: no model named 'other'"),
        ("bad_range", "--input-range Closed=3"),
        ("ambiguous_file", "several candidate models (A, B)"),
    ],
)
def test_bad_user_model_inputs(case: str, expect: str, closed_file: Path, tmp_path: Path, capsys) -> None:
    model = f"{closed_file}:Closed"
    extra: list[str] = []
    if case == "missing_file":
        model = f"{tmp_path / 'nope.py'}:Net"
    elif case == "missing_class":
        model = f"{closed_file}:Nope"
    elif case == "not_a_module":
        model = f"{closed_file}:NotAModel"
    elif case == "bad_json":
        extra = ["--model-args", "Closed={bias: false}"]
    elif case == "json_not_object":
        extra = ["--model-args", "Closed=[1]"]
    elif case == "rejected_kwargs":
        extra = ["--model-args", 'Closed={"width": 3}']
    elif case == "import_error":
        broken = tmp_path / "broken.py"
        broken.write_text("raise ImportError('no such thing')\n")
        model = f"{broken}:Net"
    elif case == "unknown_row":
        extra = ["--model-args", 'other={"bias": true}']
    elif case == "bad_range":
        extra = ["--input-range", "Closed=3"]
    else:
        two = tmp_path / "two.py"
        two.write_text("from torch import nn\nclass A(nn.Module):\n    pass\nclass B(nn.Module):\n    pass\n")
        model = str(two)
    args = ["run", "--models", model, *extra, *FAST, "--no-isolate", "--output", str(tmp_path / "o")]
    code, _, err = _run(args, capsys)
    assert code == 2
    assert expect in _one_line_error(err)
    assert not (tmp_path / "o" / "results.json").exists()


# --------------------------------------------------------------------------- checkpoint scale


def test_wrong_scale_hint_keeps_the_users_file(tmp_path: Path, capsys) -> None:
    from srbench.models import create_model

    mine = tmp_path / "my_rlfn_s_x2.pth"
    torch.save(create_model("rlfn_s", scale=2).state_dict(), mine)
    code, _, err = _run(["run", "--models", str(mine), "--no-isolate", *FAST], capsys)
    line = _one_line_error(err)
    assert code == 2
    assert "'rlfn_s' at x2" in line and f"--models {mine} --scale 2" in line
    assert "--models rlfn_s" not in line  # never the official checkpoint in place of the user's
    # The same file through --weights: the loader's hint keeps the file too.
    code, _, err = _run(["run", "--models", "rlfn_s", "--weights", f"rlfn_s={mine}", *FAST], capsys)
    line = _one_line_error(err)
    assert code == 2 and f"--scale 2, keeping {mine}" in line
    code, _, err = _run(["run", "--models", "rlfn", "--weights", f"rlfn={mine}", *FAST], capsys)
    line = _one_line_error(err)
    assert code == 2 and f"rlfn_s={mine} with --scale 2" in line
    # Following the hint measures the user's own file at x2.
    out = tmp_path / "x2"
    code, _, err = _run(
        ["run", "--models", str(mine), "--scale", "2", *FAST, "--no-isolate", "-o", str(out)], capsys
    )
    assert code == 0, err
    (row,) = json.loads((out / "results.json").read_text())["models"]
    assert (row["arch"], row["weights"]["file"], row["weights"]["source"]) == (
        "rlfn_s",
        mine.name,
        "explicit",
    )


# --------------------------------------------------------------------------- NTIRE folders

TEAM_ALPHA = """
import torch.nn.functional as F
from torch import nn


class AlphaBody(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class AlphaNet(nn.Module):
    data_range = 1.0

    def __init__(self, upscale=4):
        super().__init__()
        self.body = AlphaBody()
        self.up = nn.PixelShuffle(upscale)

    def forward(self, x):
        return self.up(self.body(x)) + F.interpolate(x, scale_factor=4, mode="nearest")
"""

# Rounds internally, as a network trained on [0,255] may: only right with --input-range 255.
TEAM_BETA = """
import torch.nn.functional as F
from torch import nn


class BetaNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        return (self.up(self.conv(x)) + F.interpolate(x, scale_factor=4, mode="nearest")).round()


class Other(nn.Module):
    def forward(self, x):
        return x
"""


@pytest.fixture
def ntire_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "NTIRE_ESR"
    (repo / "models").mkdir(parents=True)
    (repo / "model_zoo").mkdir()
    (repo / "models" / "team01_Alpha.py").write_text(TEAM_ALPHA)
    (repo / "models" / "07_Beta.py").write_text(TEAM_BETA)
    zero = {"weight": torch.zeros(48, 3, 3, 3), "bias": torch.zeros(48)}
    torch.save(
        {"params_ema": {f"body.conv.{k}": v for k, v in zero.items()}},
        repo / "model_zoo" / "team01_alpha.pth",
    )
    torch.save({"params": {f"conv.{k}": v for k, v in zero.items()}}, repo / "model_zoo" / "07_Beta.pth")
    return repo


def test_ntire_folder_two_teams(ntire_repo: Path, tmp_path: Path, capsys) -> None:
    base = ["run", "--ntire-repo", str(ntire_repo), "--teams", "1,7", *FAST, "--no-isolate"]
    # Beta declares no data range and has two classes: its row says which option answers it,
    # and the other team is still measured (one team never stops a --teams run).
    code, _, err = _run([*base, "-o", str(tmp_path / "a")], capsys)
    rows = {m["name"]: m for m in json.loads((tmp_path / "a" / "results.json").read_text())["models"]}
    assert code == 1 and rows["01_Alpha"]["status"] == "ok"
    assert "several candidate model classes (BetaNet, Other)" in rows["07_Beta"]["reason"]
    assert "team code" in err
    beta = ntire_repo / "models" / "07_Beta.py"
    code, _, err = _run(
        [*base[:1], "--models", f"ntire:{beta}:BetaNet", *base[5:], "-o", str(tmp_path / "b")], capsys
    )
    line = _one_line_error(err)
    assert code == 2 and "--input-range 07_Beta=255" in line
    # With the class and the range answered, both rows are measured exactly.
    out = tmp_path / "ok"
    args = ["run", "--ntire-repo", str(ntire_repo), "--teams", "1", "--models", f"ntire:{beta}:BetaNet"]
    code, _, err = _run(
        [*args, *FAST, "--no-isolate", "--input-range", "07_Beta=255", "-o", str(out)], capsys
    )
    assert code == 0, err
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    assert list(rows) == ["07_Beta", "01_Alpha"]  # --models first, then --teams
    assert rows["01_Alpha"]["input_range"] == 1.0 and rows["07_Beta"]["input_range"] == 255.0
    assert rows["01_Alpha"]["weights"]["file"] == "team01_alpha.pth"
    assert rows["07_Beta"]["weights"]["file"] == "07_Beta.pth"
    _assert_nearest(rows["01_Alpha"])
    _assert_nearest(rows["07_Beta"])


def test_ntire_ambiguous_checkpoints(ntire_repo: Path, tmp_path: Path, capsys) -> None:
    # Two checkpoints of team 01, neither named like the model file: the user must choose.
    zoo = ntire_repo / "model_zoo"
    (zoo / "team01_alpha.pth").rename(zoo / "team01_alpha_v1.pth")
    torch.save({}, zoo / "team01_alpha_v2.pth")
    model = f"ntire:{ntire_repo / 'models' / 'team01_Alpha.py'}"
    code, _, err = _run(["run", "--models", model, *FAST, "--no-isolate", "-o", str(tmp_path / "o")], capsys)
    line = _one_line_error(err)
    assert code == 2 and "several checkpoints" in line and "--weights 01_Alpha=PATH" in line


# --------------------------------------------------------------------------- entry points


def _plugin_package(root: Path) -> Path:
    pkg = root / "srbench_demo_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import torch.nn.functional as F
            from torch import nn

            from srbench.models.registry import register_model


            class Nearest(nn.Module):
                def __init__(self, scale):
                    super().__init__()
                    self.scale = scale

                def forward(self, x):
                    return F.interpolate(x, scale_factor=self.scale, mode="nearest")


            @register_model("demo_nearest", scales=(2, 4), input_range=1.0, description="demo plugin")
            def build(scale=4):
                return Nearest(scale)
            """
        )
    )
    dist = root / "srbench_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: srbench-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[srbench.models]\ndemo = srbench_demo_plugin\n")
    return root


def _srbench(args: list[str], pythonpath: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "srbench", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_entry_point_registers_a_model(tmp_path: Path) -> None:
    site = _plugin_package(tmp_path / "site")
    listed = _srbench(["list", "demo*"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "demo_nearest" in line)
    assert "entry point demo (srbench-demo-plugin)" in row
    builtin = _srbench(["list", "rlfn"], site, tmp_path)
    assert "builtin" in next(line for line in builtin.stdout.splitlines() if "rlfn " in line)


def test_srbench_plugins_takes_a_module_or_a_file(tmp_path: Path) -> None:
    site = _plugin_package(tmp_path / "site")
    (site / "srbench_demo_plugin-0.1.dist-info" / "entry_points.txt").unlink()  # plugin route only
    plugin_file = site / "srbench_demo_plugin" / "__init__.py"
    for value, origin in (
        ("srbench_demo_plugin", "plugin srbench_demo_plugin"),
        (str(plugin_file), f"plugin {plugin_file}"),
    ):
        env_site = site if value == "srbench_demo_plugin" else tmp_path  # the file needs no PYTHONPATH
        os.environ["SRBENCH_PLUGINS"] = value
        try:
            listed = _srbench(["list", "demo*"], env_site, tmp_path)
        finally:
            del os.environ["SRBENCH_PLUGINS"]
        assert listed.returncode == 0, listed.stderr
        assert "demo_nearest" in listed.stdout and origin in listed.stdout.replace("\n", "")


@pytest.mark.slow
def test_entry_point_model_runs_in_a_worker(tmp_path: Path) -> None:
    site = _plugin_package(tmp_path / "site")
    out = tmp_path / "out"
    done = _srbench(["run", "--models", "demo_nearest", *FAST, "-o", str(out)], site, tmp_path)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads((out / "results.json").read_text())["models"]
    assert (row["name"], row["params"]) == ("demo_nearest", 0)
    _assert_nearest(row)  # parameter-free: its output means something without a checkpoint


# --------------------------------------------------------------------------- new-model


def test_new_model_writes_a_file_that_measures_and_a_test_that_passes(tmp_path: Path, capsys) -> None:
    code, out, err = _run(["new-model", "tmpl_net", "--dir", str(tmp_path)], capsys)
    assert code == 0, err
    model, test = tmp_path / "tmpl_net.py", tmp_path / "test_tmpl_net.py"
    assert model.is_file() and test.is_file()
    # The generated test passes as written (its own closed forms against srbench's counters).
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The file measures as user code; its declared input_range and --scale are honoured.
    from srbench.models.registry import unregister_model

    try:
        code, out, _ = _run(["profile", "--models", f"{model}:TmplNet", "--scale", "2", "--json"], capsys)
    finally:
        unregister_model("tmpl_net")  # the file registers itself on import; keep the registry clean
    assert code == 0
    (row,) = json.loads(out)["models"]
    c, s = 16, 2  # params: head 27C + C, tail 9*C*3s² + 3s²
    assert row["params"] == 27 * c + c + 9 * c * 3 * s * s + 3 * s * s
    # Existing files, a registered name and a non-identifier are one-line errors.
    for args, expect in (
        (["new-model", "tmpl_net", "--dir", str(tmp_path)], "--force"),
        (["new-model", "rlfn", "--dir", str(tmp_path / "b")], "already registered"),
        (["new-model", "9net", "--dir", str(tmp_path)], "lowercase Python identifier"),
    ):
        code, _, err = _run(args, capsys)
        assert code == 2 and expect in _one_line_error(err)


def test_ntire_test_demo_answers_class_arguments_checkpoint_and_range(
    ntire_repo: Path, tmp_path: Path, capsys
) -> None:
    # The challenge script's branch for team 07: a class among two, positional constructor
    # arguments, a checkpoint not named like the model file (beside another), data_range 255.
    (ntire_repo / "models" / "07_Beta.py").unlink()  # test_demo.py imports it: a teamNN_ name
    (ntire_repo / "models" / "team07_Beta.py").write_text(
        TEAM_BETA.replace("    def __init__(self):", "    def __init__(self, in_ch, out_ch, upscale=2):")
    )
    zoo = ntire_repo / "model_zoo"
    (zoo / "07_Beta.pth").rename(zoo / "07_beta_final.pth")
    torch.save({}, zoo / "07_beta_old.pth")
    (ntire_repo / "test_demo.py").write_text(
        textwrap.dedent(
            """
            import os
            import torch

            def select_model(args, device):
                model_id = args.model_id
                if model_id == 1:
                    from models.team01_Alpha import AlphaNet
                    name, data_range = f"{model_id:02}_Alpha", 1.0
                    model_path = os.path.join('model_zoo', 'team01_alpha.pth')
                    model = AlphaNet()
                    model.load_state_dict(torch.load(model_path)['params_ema'], strict=True)
                elif model_id == 7:
                    from models.team07_Beta import BetaNet
                    name, data_range = f"{model_id:02}_Beta", 255.0
                    model_path = os.path.join('model_zoo', '07_beta_final.pth')
                    model = BetaNet(3, 3, upscale=4)
                else:
                    raise NotImplementedError(f"Model {model_id} is not implemented.")
                return model, name, data_range
            """
        )
    )
    from srbench.models.usercode import read_test_demo

    branch = read_test_demo(ntire_repo)[7]
    assert (branch.cls, branch.args, branch.kwargs, branch.checkpoint, branch.data_range) == (
        "BetaNet",
        (3, 3),
        {"upscale": 4},
        "model_zoo/07_beta_final.pth",
        255.0,
    )
    out = tmp_path / "out"
    args = ["run", "--ntire-repo", str(ntire_repo), "--teams", "1,7", *FAST, "--no-isolate", "-o", str(out)]
    code, _, err = _run(args, capsys)
    assert code == 0, err
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    assert rows["07_Beta"]["input_range"] == 255.0
    assert rows["07_Beta"]["weights"]["file"] == "07_beta_final.pth"
    _assert_nearest(rows["07_Beta"])
    _assert_nearest(rows["01_Alpha"])
