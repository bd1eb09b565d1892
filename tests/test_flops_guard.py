"""FLOPs that cannot be gamed: the conv lower bound, the undercount flag, thop's count and
the per-module/per-operator breakdown whose totals are the NTIRE integers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srbench.measure.counting import (
    complexity_breakdown,
    count_conv_calls,
    count_flops_thop,
    profile_model,
)
from srbench.models import create_model
from srbench.results.schema import ModelResult, RunResult
from srbench.results.tables import console_table, results_markdown


class _NumpyTrip(nn.Module):
    """conv1's result leaves torch through NumPy: jit.trace keeps it as a constant, so conv1 is
    dead code in the trace and fvcore never counts it, although it runs on every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        y = torch.from_numpy(y.detach().cpu().numpy()).to(x.device)
        return self.shuffle(self.conv2(y))


def test_numpy_round_trip_is_flagged_with_the_gap() -> None:
    c = profile_model(_NumpyTrip().eval(), (1, 3, 32, 32))
    conv1, conv2 = 16 * 3 * 9 * 32 * 32, 48 * 16 * 9 * 32 * 32  # Cout*Cin*k²*H*W
    assert c.flops == conv2  # fvcore lost conv1
    assert c.flops_lower_bound == conv1 + conv2
    assert c.flops_undercount is True
    assert c.flops_note is not None and f"{conv1:,} below" in c.flops_note
    assert c.flops_thop == conv1 + conv2  # module hooks see both


class _HiddenByResize(nn.Module):
    """As above, but fvcore's bilinear-resize count (4 per output element) outweighs the lost
    conv, so only the conv part of its count shows the gap."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(self.conv1(x).detach().cpu().numpy()).to(x.device)
        return torch.nn.functional.interpolate(self.conv2(y), scale_factor=4, mode="bilinear")


def test_dropped_conv_hidden_in_the_total_is_still_flagged() -> None:
    hw = 16 * 16
    c = profile_model(_HiddenByResize().eval(), (1, 3, 16, 16))
    conv = 4 * 3 * 9 * hw  # each conv: 108 MACs per pixel
    assert c.flops == conv + 4 * 3 * 16 * hw  # conv2 + bilinear, above the floor ...
    assert c.flops_lower_bound == 2 * conv and c.flops > c.flops_lower_bound
    assert c.flops_undercount is True  # ... but fvcore's conv part is below it
    assert c.flops_note is not None and "convolutions total" in c.flops_note


class _Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=2),
            nn.ReLU(),
            nn.Conv2d(8, 48, 1),
        )
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x))


def test_thop_and_lower_bound_equal_the_closed_form_of_a_plain_conv_net() -> None:
    h = w = 24
    closed = h * w * (8 * 3 * 9 + 8 * (8 // 2) * 9 + 48 * 8 * 1)  # Cout·Cin/g·k²·H·W, no bias
    x = torch.rand(1, 3, h, w)
    model = _Plain().eval()
    assert count_flops_thop(model, x) == closed
    assert count_conv_calls(model, x).macs == closed
    assert not any(hasattr(m, "total_ops") for m in model.modules())  # thop ran on a copy
    c = profile_model(model, (1, 3, h, w))
    assert (c.flops, c.flops_lower_bound, c.flops_thop, c.flops_undercount) == (closed, closed, closed, False)


def test_transposed_conv_lower_bound_uses_the_input_size() -> None:
    conv = nn.ConvTranspose2d(16, 16, 4, stride=2, padding=1)
    assert count_conv_calls(conv, torch.zeros(1, 16, 32, 32)).macs == 4_194_304  # not 16,777,216


@pytest.mark.parametrize("name", ["rlfn", "span", "efdn"])
def test_no_flag_on_the_ntire_models(name: str) -> None:
    c = profile_model(create_model(name, scale=4).eval(), (1, 3, 48, 48))
    assert c.flops_lower_bound is not None and 0 < c.flops_lower_bound <= c.flops
    assert c.flops_undercount is False and c.flops_note is None


def test_rlfn_breakdown_totals_are_the_ntire_integers() -> None:
    b = complexity_breakdown(create_model("rlfn", scale=4).eval(), depth=1)
    total = b.modules[0]
    assert total.name == ""
    assert (total.params, total.flops, total.activations, total.convs) == (
        317_218,
        19_674_859_520,
        80_045_184,
        39,
    )
    assert sum(o.flops for o in b.operators) == 19_674_859_520
    assert {o.op: o.flops for o in b.operators if o.counted} == {
        "conv": 19_658_082_304,
        "upsample_bilinear2d": 4 * 4_194_304,
    }
    # Depth-1 children add up to the whole (RLFN has no parameters or convs outside them).
    kids = [m for m in b.modules if m.depth == 1]
    assert sum(m.params for m in kids) == 317_218
    assert sum(m.flops for m in kids) == 19_674_859_520
    assert sum(m.convs for m in kids) == 39


def test_old_results_load_and_flagged_models_are_marked() -> None:
    old = {"name": "m", "arch": "m", "scale": 4, "status": "ok", "flops": 7}  # no new fields
    m = ModelResult.from_dict(old)
    assert (m.flops_lower_bound, m.flops_undercount, m.flops_thop) == (None, False, None)
    m.flops_undercount = True
    m.flops = 1_590_000_000
    run = RunResult(environment={}, config={}, dataset={}, models=[m])
    assert "1.59 ⚠" in results_markdown(run)
    assert any("1.59 ⚠" in str(c) for c in console_table(run).columns[6]._cells)


def test_profile_breakdown_cli_totals_for_span(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from srbench.cli import main

    assert main(["profile", "--models", "span", "--breakdown", "--depth", "1", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["models"]
    total = row["breakdown"]["modules"][0]
    assert (total["params"], total["flops"], total["activations"], total["convs"]) == (
        150_688,
        9_833_807_872,
        41_680_896,
        22,
    )
    assert row["flops_lower_bound"] == row["flops_thop"] == 9_833_807_872 and row["flops_undercount"] is False
    assert main(["profile", "--models", "span", "--breakdown"]) == 0
    out = capsys.readouterr().out
    assert "span (total)" in out and "per operator" in out and "9,833,807,872" in out
