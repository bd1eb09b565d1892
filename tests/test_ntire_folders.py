"""NTIRE challenge folders measured as their ``test_demo.py`` builds each team (issue 30).

One synthetic challenge repository reproduces each loading defect found on the real NTIRE
2022-2026 repositories (CI cannot fetch those): positional arguments, a class chosen among
several by an ``importlib`` branch, import aliases, ``**kwargs`` constructors, calls after
loading (``switch_deploy``), weights fused on the first forward, a model's own
``load_state_dict``, weight_norm (thop cannot copy it), an override of ``to(self, device)``,
a sub-package file with a ``.pkl`` checkpoint, a constructor that moves itself to CUDA, a
missing third-party package, a team whose file does not import, and team code that prints.
Every expected count is closed form: conv weights + biases, nothing else.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from srbench.cli import main
from srbench.models.ntire_demo import read_test_demo
from srbench.models.usercode import FAULT_PACKAGE, FAULT_TEAM, classify_failure, parse_teams

CH = 8  # feature channels of every synthetic team: a 3x3 conv 3->8 has 3*8*9 + 8 = 224 params


def conv_params(cin: int, cout: int, k: int = 3, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


# Head conv 3->C, tail conv C->48, pixel shuffle x4: the body every team shares.
BASE = conv_params(3, CH) + conv_params(CH, 48)

COMMON = f"""
import torch
import torch.nn.functional as F
from torch import nn

CH = {CH}


class Plain(nn.Module):
    def __init__(self, c=CH):
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.tail = nn.Conv2d(c, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x):
        return self.up(self.tail(self.head(x)))
"""

TEAMS = {
    # Positional arguments, and a constructor that moves itself to CUDA and runs a forward there.
    "team00_Base.py": COMMON
    + """
class Base(Plain):
    def __init__(self, num_in_ch, num_out_ch, upscale=2, feature_channels=4):
        super().__init__(feature_channels)
        assert (num_in_ch, num_out_ch, upscale) == (3, 3, 4)
        self.cuda()
        with torch.no_grad():
            self(torch.rand(1, 3, 16, 16, device="cuda"))
""",
    # Several candidate classes: the importlib branch chooses Small.
    "team01_Pick.py": COMMON
    + """
class Small(Plain):
    def __init__(self, a, b, feature_channels=4):
        super().__init__(feature_channels)


class Large(Plain):
    def __init__(self, a, b, feature_channels=64):
        super().__init__(feature_channels)
""",
    # An alias in the import: the class is RFDN, test_demo calls it RFDNPrune.
    "team02_Alias.py": COMMON
    + """
class RFDN(Plain):
    def __init__(self, nf=4):
        super().__init__(nf)
""",
    # A **kwargs constructor.
    "team03_Kw.py": COMMON
    + """
class Kw(Plain):
    def __init__(self, **kwargs):
        super().__init__(kwargs["num_feat"])
""",
    # Calls after loading: switch_deploy merges a parallel 1x1 branch into the 3x3 conv.
    "team04_Deploy.py": COMMON
    + """
class RepConv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.k3 = nn.Conv2d(c, c, 3, padding=1)
        self.k1 = nn.Conv2d(c, c, 1)
        self.deployed = False

    def switch_deploy(self):
        w = self.k3.weight.data.clone()
        w[:, :, 1:2, 1:2] += self.k1.weight.data
        self.k3.weight.data, self.k3.bias.data = w, self.k3.bias.data + self.k1.bias.data
        del self.k1
        self.deployed = True

    def forward(self, x):
        return self.k3(x) if self.deployed else self.k3(x) + self.k1(x)


class Deploy(Plain):
    def __init__(self):
        super().__init__()
        self.rep = RepConv(CH)

    def forward(self, x):
        return self.up(self.tail(self.rep(self.head(x))))
""",
    # Fuses on its first forward (drops the training branch), as 2025 team 08 does.
    "team05_Fuse.py": COMMON
    + """
FORWARDS = []  # every forward of this module's networks, in this process


class Fuse(Plain):
    def __init__(self):
        super().__init__()
        self.train_branch = nn.Conv2d(CH, CH, 3, padding=1)

    def forward(self, x):
        FORWARDS.append(tuple(x.shape))
        if hasattr(self, "train_branch"):
            del self.train_branch
        return super().forward(x)
""",
    # Its own load_state_dict renames the checkpoint's keys (the checkpoint says "h."/"t.").
    "team06_Own.py": COMMON
    + """
class Own(Plain):
    def load_state_dict(self, state, strict=True):
        renamed = {k.replace("h.", "head.").replace("t.", "tail."): v for k, v in state.items()}
        return super().load_state_dict(renamed, strict=strict)
""",
    # weight_norm: deepcopy (thop's copy) fails on its computed weight.
    "team07_WN.py": COMMON
    + """
class WN(Plain):
    def __init__(self):
        super().__init__()
        self.head = nn.utils.weight_norm(nn.Conv2d(3, CH, 3, padding=1))
""",
    # Overrides to(self, device): .to(device=..., dtype=...) would break it.
    "team08_To.py": COMMON
    + """
class ToNet(Plain):
    def to(self, device):
        return super().to(device)
""",
    # A module-level failure: the team's code, not srbench's.
    "team11_Broken.py": COMMON + "\nraise RuntimeError('this team file is broken')\n",
    # A third-party package this machine does not have.
    "team12_Needs.py": "import srbench_no_such_package_xyz\n" + COMMON,
    # Team code that prints while being built and run.
    "team13_Chatty.py": COMMON
    + """
class Chatty(Plain):
    def __init__(self):
        super().__init__()
        print("building Chatty { not json")

    def forward(self, x):
        print("forward!")
        return super().forward(x)
""",
}

SUBPACKAGE = {
    "__init__.py": "",
    "blocks.py": COMMON,
    "arch.py": """
from torch import nn

from .blocks import Plain


class Pkg(Plain):
    pass
""",
}

TEST_DEMO = """
import importlib
import os
import torch


def run(model, args):
    # A model_id test outside select_model (2024's special forward for team 34) is not a branch.
    if args.model_id == 4:
        from models.team01_Pick import Large
        model = Large(3, 3)
    return model


def select_model(args, device):
    model_id = args.model_id
    if model_id == 0:
        from models.team00_Base import Base
        name, data_range = f"{model_id:02}_Base_baseline", 1.0
        model = Base(3, 3, upscale=4, feature_channels=8).eval().to(device)
        model_path = os.path.join('model_zoo', 'team00_base.pth')
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 1:
        model_module = importlib.import_module(f'models.team{model_id:02}_Pick')
        name, data_range = f"{model_id:02}_Pick", 1.0
        model = getattr(model_module, f'Small')(3, 3, feature_channels=8).eval().to(device)
    elif model_id == 2:
        from models.team02_Alias import RFDN as RFDNPrune
        name, data_range = f"{model_id:02}_Alias", 255.0
        model = RFDNPrune(nf=8)
    elif model_id == 3:
        from models.team03_Kw import Kw
        name, data_range = f"{model_id:02}_Kw", 1.0
        model = Kw(num_feat=8, window_size=4)
    elif model_id == 4:
        from models.team04_Deploy import Deploy
        name, data_range = f"{model_id:02}_Deploy", 1.0
        model = Deploy()
        for module in model.modules():
            if hasattr(module, 'switch_deploy'):
                module.switch_deploy()
    elif model_id == 5:
        from models.team05_Fuse import Fuse
        name, data_range = f"{model_id:02}_Fuse", 1.0
        model = Fuse()
        state = torch.load(os.path.join('model_zoo', 'team05_fuse.pth'))
        model.load_state_dict(state['params_ema'], strict=False)
    elif model_id == 6:
        from models.team06_Own import Own
        name, data_range = f"{model_id:02}_Own", 1.0
        model = Own()
        model.load_state_dict(torch.load(os.path.join('model_zoo', 'team06_own.pth')), strict=True)
    elif model_id == 7:
        from models.team07_WN import WN
        name, data_range = f"{model_id:02}_WN", 1.0
        model = WN()
    elif model_id == 8:
        from models.team08_To import ToNet
        name, data_range = f"{model_id:02}_To", 1.0
        model = ToNet()
    elif model_id == 9:
        from models.team09_pkg.arch import Pkg
        name, data_range = f"{model_id:02}_Pkg", 1.0
        model_path = os.path.join('model_zoo', 'team09_pkg.pkl')
        model = Pkg()
        model.load_state_dict(torch.load(model_path)['params'], strict=True)
    elif model_id == 10:
        pass
    elif model_id == 11:
        from models.team11_Broken import Plain
        name, data_range = f"{model_id:02}_Broken", 1.0
        model = Plain()
    elif model_id == 12:
        from models.team12_Needs import Plain
        name, data_range = f"{model_id:02}_Needs", 1.0
        model = Plain()
    elif model_id == 13:
        from models.team13_Chatty import Chatty
        name, data_range = f"{model_id:02}_Chatty", 1.0
        model = Chatty()
    else:
        raise NotImplementedError(f"Model {model_id} is not implemented.")
    model.eval()
    return model, name, data_range, None
"""


def _plain_state(c: int = CH, prefix: tuple[str, str] = ("head", "tail")) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        f"{prefix[0]}.weight": torch.randn(c, 3, 3, 3),
        f"{prefix[0]}.bias": torch.randn(c),
        f"{prefix[1]}.weight": torch.randn(48, c, 3, 3),
        f"{prefix[1]}.bias": torch.randn(48),
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "NTIRE_ESR"
    (root / "models" / "team09_pkg").mkdir(parents=True)
    (root / "model_zoo").mkdir()
    for name, text in TEAMS.items():
        (root / "models" / name).write_text(textwrap.dedent(text))
    for name, text in SUBPACKAGE.items():
        (root / "models" / "team09_pkg" / name).write_text(textwrap.dedent(text))
    (root / "test_demo.py").write_text(TEST_DEMO)
    zoo = root / "model_zoo"
    torch.save(_plain_state(), zoo / "team00_base.pth")
    state5 = {**_plain_state(), "train_branch.weight": torch.zeros(CH, CH, 3, 3)}
    torch.save({"params_ema": state5}, zoo / "team05_fuse.pth")
    torch.save(_plain_state(prefix=("h", "t")), zoo / "team06_own.pth")
    torch.save({"params": _plain_state(), "params_ema": {}}, zoo / "team09_pkg.pkl")
    return root


def test_every_edition_spelling_is_read(repo: Path) -> None:
    demo = read_test_demo(repo)
    assert 10 not in demo  # a withdrawn team's branch only passes
    assert (demo[0].row, demo[0].cls, demo[0].args, demo[0].kwargs) == (
        "00_Base_baseline",
        "Base",
        (3, 3),
        {"upscale": 4, "feature_channels": 8},
    )
    assert (demo[1].module, demo[1].cls, demo[1].args) == ("team01_Pick", "Small", (3, 3))
    assert (demo[2].cls, demo[2].data_range) == ("RFDN", 255.0)  # the class, not the alias
    assert demo[4].cls == "Deploy" and demo[4].post_load == ("modules.switch_deploy",)
    assert (demo[5].state_key, demo[5].strict) == ("params_ema", False)
    assert (demo[9].module, demo[9].checkpoint, demo[9].state_key) == (
        "team09_pkg.arch",
        "model_zoo/team09_pkg.pkl",
        "params",
    )


def test_teams_ranges_and_all(repo: Path) -> None:
    assert parse_teams("all", repo) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]
    assert parse_teams("0,2-5,13", repo) == [0, 2, 3, 4, 5, 13]
    with pytest.raises(Exception, match="runs backwards"):
        parse_teams("5-2", repo)


def _profile(repo: Path, teams: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code = main(["profile", "--ntire-repo", str(repo), "--teams", teams, "--json", "--recount"])
    out = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(out.out)["models"]}  # stdout is JSON only
    return code, rows, out.err


def test_profile_all_teams_matches_closed_form(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, err = _profile(repo, "all", capsys)
    assert code == 1  # two teams cannot be built; every other one is counted
    assert "forward!" in err and "building Chatty" in err  # the team's prints went to stderr
    plain = BASE
    expected = {
        "00_Base_baseline": plain,
        "01_Pick": plain,
        "02_Alias": plain,
        "03_Kw": plain,
        "04_Deploy": plain + conv_params(CH, CH),  # the 1x1 branch merged away
        "05_Fuse": plain,  # the training branch dropped on the first forward
        "06_Own": plain,
        "07_WN": plain + CH,  # weight_norm: weight_g (C) + weight_v (as weight)
        "08_To": plain,
        "09_Pkg": plain,
        "13_Chatty": plain,
    }
    for name, params in expected.items():
        assert "error" not in rows[name], rows[name]
        assert rows[name]["params"] == params, name
    convs = {"04_Deploy": 3}
    for name in expected:
        assert rows[name]["convs"] == convs.get(name, 2), name
        # conv output elements at 1x3x256x256: C·256² + 48·256² (+ C·256² for the rep conv)
        acts = (CH + 48 + (CH if name == "04_Deploy" else 0)) * 256 * 256
        assert rows[name]["activations"] == acts, name
    assert rows["00_Base_baseline"]["device_shim"] is True
    assert not rows["01_Pick"]["device_shim"]
    assert rows["07_WN"]["flops_thop"] is None or rows["07_WN"]["flops_thop"] > 0
    assert any("strict=False" in n for n in rows["05_Fuse"]["notes"])
    assert any("own load_state_dict" in n for n in rows["06_Own"]["notes"])
    assert classify_failure(rows["12_Needs"]["error"]) == FAULT_PACKAGE
    assert "pip install srbench_no_such_package_xyz" in rows["12_Needs"]["error"]
    assert classify_failure(rows["11_Broken"]["error"]) == FAULT_TEAM


def test_counting_leaves_the_model_as_it_was(repo: Path) -> None:
    # Team 05 fuses on its first forward: the count sees the fused network, the model that
    # is then timed still has its first forward (and its fusion) ahead of it.
    from srbench.measure.counting import profile_model
    from srbench.models.specs import parse_model_specs
    from srbench.runner.building import build_model

    (spec,) = parse_model_specs(f"ntire:{repo}#5")
    _, loaded = build_model(spec, scale=4, offline=True)
    c = profile_model(loaded.model, (1, 3, 32, 32), dispatch=False, thop=False)
    assert c.params == BASE
    assert hasattr(loaded.model, "train_branch")
    assert sum(p.numel() for p in loaded.model.parameters()) == BASE + conv_params(CH, CH)


def test_to_with_device_only_override_runs(repo: Path) -> None:
    from srbench.backends.pytorch import TorchBackend
    from srbench.models.specs import parse_model_specs
    from srbench.runner.building import build_model

    (spec,) = parse_model_specs(f"ntire:{repo}#8")
    _, loaded = build_model(spec, scale=4, offline=True)
    backend = TorchBackend.prepare(loaded.model, input_range=1.0, device=torch.device("cpu"))
    assert isinstance(backend.model if hasattr(backend, "model") else loaded.model, nn.Module)


def test_device_shim_is_off_outside_the_build() -> None:
    from srbench.models.device_shim import cuda_to

    with cuda_to("cpu", active=True) as shim:
        t = torch.zeros(2, device="cuda")
        m = nn.Conv2d(1, 1, 1).cuda()
    assert shim.used and t.device.type == "cpu" and m.weight.device.type == "cpu"
    assert nn.Module.cuda is not None and torch.zeros.__module__ != "srbench.models.device_shim"
    if not torch.cuda.is_available():
        with pytest.raises((AssertionError, RuntimeError)):
            torch.zeros(1, device="cuda")


def test_run_teams_goes_on_past_failing_teams(repo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["run", "--ntire-repo", str(repo), "--teams", "1,11-12", "--data", "sample-mini"]
    code = main([*args, "--profile-input", "1x3x64x64", "--no-isolate", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    rows = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    assert rows["01_Pick"]["status"] != "error" and rows["01_Pick"]["params"] == BASE
    assert rows["11_Broken"]["status"] == rows["12_Needs"]["status"] == "error"
    assert "2 model(s) not counted" in err and FAULT_PACKAGE in err and FAULT_TEAM in err
    assert err.count("pip install srbench_no_such_package_xyz") >= 1
    assert "teams need packages that are not installed (srbench_no_such_package_xyz: 12_Needs)" in err


def test_count_stage_runs_no_forward_in_the_timing_process(repo: Path, tmp_path: Path, monkeypatch) -> None:
    # Counting's forwards would warm the process the timed loop then runs in (a first run,
    # which counts, timed faster than a rerun, which reads the cache): they run in a child.
    import sys

    from srbench.models.specs import parse_model_specs
    from srbench.results.config import RunConfig
    from srbench.runner.building import build_model
    from srbench.runner.protocol import Built, count_stage

    monkeypatch.setenv("SRBENCH_CACHE_DIR", str(tmp_path / "cache"))
    (spec,) = parse_model_specs(f"ntire:{repo}#5")
    entry, loaded = build_model(spec, scale=4, offline=True)
    config = RunConfig(models=[spec.name], profile_input=[1, 3, 32, 32], recount=True)
    c = count_stage(Built(entry, loaded, 0.0), config, spec, torch.device("cpu"))
    assert c.params == BASE and c.convs == 2
    team = sys.modules[type(loaded.model).__module__]
    assert team.FORWARDS == []  # every counting forward ran in the child
    assert hasattr(loaded.model, "train_branch")


class _Routed(nn.Module):
    """Runs its conv n times, n from the input's values (as a mixture of experts routes)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    @staticmethod
    def calls(x: torch.Tensor) -> int:
        return int(x.sum().item() * 1000) % 3 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.calls(x)):
            x = self.conv(x)
        return x


def test_value_dependent_counts_are_flagged() -> None:
    from srbench.measure.counting import counting_input, profile_model

    shape = (1, 3, 16, 16)
    n0, n1 = (_Routed.calls(counting_input(shape, seed=s)) for s in (0, 1))
    assert n0 != n1  # the two seeded inputs route differently (else this test proves nothing)
    c = profile_model(_Routed().eval(), shape, dispatch=False, thop=False)
    assert c.value_dependent and c.convs == n0 and c.activations == n0 * 3 * 16 * 16
    plain = profile_model(nn.Conv2d(3, 3, 3, padding=1).eval(), shape, dispatch=False, thop=False)
    assert not plain.value_dependent
