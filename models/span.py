"""SPAN: swift parameter-free attention network (hongyuanyu/SPAN; NTIRE 2024 ESR winner).

Two constructions share one set of classes:

* **deployed** (``deploy=True``, the NTIRE "slim" layout, 44 tensors at 6 blocks): every
  :class:`Conv3XC` holds only its fused 3x3 ``eval_conv``;
* **training form** (``deploy=False``, the official layout, 204 tensors): each
  :class:`Conv3XC` also holds its branches ``sk`` and ``conv.0/1/2``. The branches are
  fused into ``eval_conv`` once, when the module is put in eval mode or after a state dict
  is loaded, never inside ``forward``.

Conventions: input and output are RGB in **[0, 1]**. Internally the network works on
``(x - DIV2K mean) * 255`` and does not de-normalise its output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from srbench.models.registry import WeightsSpec, register_model
from srbench.models.sources import ALL_SCALES, NTIRE2024

#: The DIV2K RGB mean SPAN subtracts (upstream ``rgb_mean``), on the [0, 1] scale.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


@torch.no_grad()
def fuse_conv3xc_branches(
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    w3: torch.Tensor,
    b3: torch.Tensor,
    w_sk: torch.Tensor,
    b_sk: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The single 3x3 conv (weight, bias) equal to a training-form Conv3XC.

    The branch is ``conv.2(conv.1(conv.0(pad1(x))))`` with 1x1, unpadded 3x3 and 1x1
    kernels ``w1``, ``w2``, ``w3``; the skip is the 1x1 ``w_sk`` on the unpadded input.
    Because zero padding happens before ``conv.0``, padded pixels carry ``b1`` into the 3x3;
    the fused form reproduces that with the ``Σ_taps w2·b1`` bias term, so the result is
    exact at the borders too. Computed in float64 and returned in ``w2``'s dtype.
    """
    dtype = w2.dtype
    a = w1.double()[:, :, 0, 0]  # (g·c_in, c_in)
    k = w2.double()  # (g·c_out, g·c_in, 3, 3)
    c = w3.double()[:, :, 0, 0]  # (c_out, g·c_out)
    weight = torch.einsum("ob,bakl,ai->oikl", c, k, a)
    weight[:, :, 1, 1] += w_sk.double()[:, :, 0, 0]
    inner = b2.double() + torch.einsum("bakl,a->b", k, b1.double())
    bias = c @ inner + b3.double() + b_sk.double()
    return weight.to(dtype), bias.to(dtype)


def _refuse_after_load(module: Conv3XC, _incompatible: object) -> None:
    # A module-level function (not a lambda) keeps the model picklable.
    module.fuse()


class Conv3XC(nn.Module):
    """SPAN's re-parameterisable 3x3 convolution (gain ``gain``, stride 1).

    ``eval_conv`` is an ``nn.Conv2d`` (so module-hook counters see it) whose parameters
    have ``requires_grad=False``, as upstream: they are derived, yet counted by Σ numel and
    saved in the state dict. With ``deploy=False`` the branches exist too; they run in
    training mode and are folded into ``eval_conv`` by :meth:`fuse`.
    """

    def __init__(self, c_in: int, c_out: int, gain: int = 2, *, deploy: bool = True) -> None:
        super().__init__()
        self.deploy = deploy
        if not deploy:
            self.sk = nn.Conv2d(c_in, c_out, 1)
            self.conv = nn.Sequential(
                nn.Conv2d(c_in, c_in * gain, 1),
                nn.Conv2d(c_in * gain, c_out * gain, 3, padding=0),
                nn.Conv2d(c_out * gain, c_out, 1),
            )
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.eval_conv.weight.requires_grad_(False)
        self.eval_conv.bias.requires_grad_(False)
        if not deploy:
            self.fuse()
            # A loaded state dict may carry a stale eval_conv: re-derive it from the
            # branches right after every load.
            self.register_load_state_dict_post_hook(_refuse_after_load)

    @property
    def has_branches(self) -> bool:
        """True for the training form (``sk`` and ``conv.*`` present)."""
        return not self.deploy

    @torch.no_grad()
    def fuse(self) -> None:
        """Recompute ``eval_conv`` from the branches (no-op for the deployed form)."""
        if self.deploy:
            return
        weight, bias = fuse_conv3xc_branches(
            self.conv[0].weight,
            self.conv[0].bias,
            self.conv[1].weight,
            self.conv[1].bias,
            self.conv[2].weight,
            self.conv[2].bias,
            self.sk.weight,
            self.sk.bias,
        )
        self.eval_conv.weight.copy_(weight)
        self.eval_conv.bias.copy_(bias)

    def train(self, mode: bool = True) -> Conv3XC:
        """Switch mode; entering eval mode fuses the branches once."""
        super().train(mode)
        if not mode:
            self.fuse()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.deploy:
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        return self.eval_conv(x)


class SPAB(nn.Module):
    """Swift parameter-free attention block: three Conv3XC with SiLU and a σ-0.5 gate.

    Returns ``((out3 + x) * att, out1, att)`` where ``att = sigmoid(out3) - 0.5``.
    """

    def __init__(self, channels: int, *, deploy: bool = True) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels, 2, deploy=deploy)
        self.c2_r = Conv3XC(channels, channels, 2, deploy=deploy)
        self.c3_r = Conv3XC(channels, channels, 2, deploy=deploy)
        self.act1 = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out1 = self.c1_r(x)
        out2 = self.c2_r(self.act1(out1))
        out3 = self.c3_r(self.act1(out2))
        att = torch.sigmoid(out3) - 0.5
        return (out3 + x) * att, out1, att


class SPAN(nn.Module):
    """SPAN with 6 SPABs at ``feature_channels`` C (NTIRE ``SPAN30`` when deployed).

    Parameter count (RGB, scale s): fused ``175C² + (48 + 27s²)C + 3s²``; training form
    ``956C² + (277 + 27s²)C + 24 + 3s²``. Input and output are in [0, 1].
    """

    num_blocks = 6

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        upscale: int = 4,
        *,
        deploy: bool = True,
        img_range: float = 255.0,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        c = feature_channels
        self.upscale = upscale
        self.in_channels = num_in_ch
        self.img_range = img_range
        # Non-persistent: follows .to()/.half() but stays out of the state dict, as upstream.
        self.register_buffer("mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        self.conv_1 = Conv3XC(num_in_ch, c, 2, deploy=deploy)
        for k in range(1, self.num_blocks + 1):
            self.add_module(f"block_{k}", SPAB(c, deploy=deploy))
        self.conv_cat = nn.Conv2d(4 * c, c, 1)
        self.conv_2 = Conv3XC(c, c, 2, deploy=deploy)
        self.upsampler = nn.Sequential(
            nn.Conv2d(c, num_out_ch * upscale**2, 3, padding=1),
            nn.PixelShuffle(upscale),
        )

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB to the network's internal ``(x - mean) * img_range``."""
        return (x - self.mean.to(x.dtype)) * self.img_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.conv_1(self.normalise(x))
        out, _, _ = self.block_1(feature)
        b1 = out
        for k in range(2, self.num_blocks):
            out, _, _ = getattr(self, f"block_{k}")(out)
        b6, b6_out1, _ = getattr(self, f"block_{self.num_blocks}")(out)
        cat = torch.cat([feature, self.conv_2(b6), b1, b6_out1], dim=1)
        return self.upsampler(self.conv_cat(cat))


# ---------------------------------------------- checkpoint conversion and registrations

_SPAN_BRANCH = re.compile(r"^(?P<prefix>.+)\.(?:sk|conv\.[012]|eval_conv)\.(?:weight|bias)$")


def convert_span_full_to_fused(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map SPAN's training layout (``sk``, ``conv.0/1/2``, ``eval_conv``) to the fused one.

    Every Conv3XC that has its branches is re-fused into ``eval_conv`` with
    :func:`~srbench.models.span.fuse_conv3xc_branches`; a stored ``eval_conv`` is ignored
    because it can lag behind the branches. Returns the input unchanged when it holds no
    branches (already the fused "slim" layout). Key order is preserved.
    """
    prefixes = {k[: -len(".sk.weight")] for k in state if k.endswith(".sk.weight")}
    if not prefixes:
        return dict(state)
    needed = ("sk.weight", "sk.bias") + tuple(f"conv.{i}.{p}" for i in range(3) for p in ("weight", "bias"))
    complete = {p for p in prefixes if all(f"{p}.{n}" in state for n in needed)}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _SPAN_BRANCH.match(key)
        prefix = match["prefix"] if match else None
        if prefix not in complete:
            out[key] = value
            continue
        if f"{prefix}.eval_conv.weight" in out:
            continue  # this Conv3XC is already emitted
        g = {n: state[f"{prefix}.{n}"] for n in needed}
        weight, bias = fuse_conv3xc_branches(
            g["conv.0.weight"],
            g["conv.0.bias"],
            g["conv.1.weight"],
            g["conv.1.bias"],
            g["conv.2.weight"],
            g["conv.2.bias"],
            g["sk.weight"],
            g["sk.bias"],
        )
        out[f"{prefix}.eval_conv.weight"] = weight
        out[f"{prefix}.eval_conv.bias"] = bias
    return out


def _span_builder(channels: int) -> Callable[..., nn.Module]:
    """A registry builder for SPAN at ``channels`` feature channels."""

    def build(scale: int = 4, deploy: bool = True, **kwargs: object) -> nn.Module:
        # deploy=True is the fused NTIRE "slim" form; deploy=False keeps the training branches.
        return SPAN(3, 3, feature_channels=channels, upscale=scale, deploy=deploy, **kwargs)

    return build


register_model(
    "span",
    scales=ALL_SCALES,
    input_range=1.0,
    description="SPAN ch28, fused NTIRE 2024 winner (XiaomiMM team38 SPAN30); [0,1] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2024_team38_span_ch28_slim_x4.pth",
            sha256="6c80f05048313289c6526e5fc9726688d7bb3dfdd6ae3c8b1e7dd09f601e5971",
            url=f"{NTIRE2024}/model_zoo/team38_span_ch28_slim.pth",
            scale=4,
            size_bytes=618658,
            params=150688,
        ),
    ),
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)(_span_builder(28))

register_model(
    "span_tiny",
    scales=ALL_SCALES,
    input_range=1.0,
    description="SPANtiny ch26, fused (NTIRE 2024 team39 SPAN30); [0,1] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2024_team39_spantiny_ch26_slim_x4.pth",
            sha256="30bf224aee5d3fb9cbc7a3bf164a294f957f65c45f5b271052947097922040a5",
            url=f"{NTIRE2024}/model_zoo/team39_spantiny_ch26_slim.pth",
            scale=4,
            size_bytes=538017,
            params=130828,
        ),
    ),
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)(_span_builder(26))

register_model(
    "span_ch48",
    scales=ALL_SCALES,
    input_range=1.0,
    description="SPAN ch48 (paper configuration), fused; upstream weights are not redistributable here",
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)(_span_builder(48))

register_model(
    "span_ch52",
    scales=ALL_SCALES,
    input_range=1.0,
    description="SPAN ch52, fused; upstream weights are not redistributable here",
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)(_span_builder(52))
