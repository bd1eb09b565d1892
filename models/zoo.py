"""The shipped model zoo: every registered builder, with its official weights as data.

Architecture code lives in one module per architecture; this module only wires builders,
scales, input ranges and checkpoints together. Importing it registers everything.
"""

from __future__ import annotations

# --- convolutional models (RLFN family, SPAN family, SPAN-CA, SPAN-F, EFDN, bicubic) ---
from collections.abc import Callable

from torch import nn

from srbench.models.bicubic import Bicubic
from srbench.models.efdn import EFDN
from srbench.models.loading import convert_span_full_to_fused, rename_rlfn_ntire2022_keys
from srbench.models.registry import WeightsSpec, register_model
from srbench.models.rlfn import RLFN
from srbench.models.span import SPAN
from srbench.models.span_ca import SPANCA
from srbench.models.spanf import SPANF

_NTIRE2024 = "https://github.com/Amazingren/NTIRE2024_ESR/raw/6404fa48dde4a4adbf241a51debdc661aef20449"
_NTIRE2025 = "https://github.com/Amazingren/NTIRE2025_ESR/raw/b69fb668c0362deb696eecbfdebfaa5c2fcdfcb4"
_BYTEDANCE = "https://github.com/bytedance/RLFN/raw/bccfde91bf8b2de80789ec033a029e6f2a932330"

_ALL_SCALES = (2, 3, 4)


@register_model(
    "rlfn",
    scales=_ALL_SCALES,
    input_range=255.0,
    description="RLFN_Prune, NTIRE 2022-24 ESR baseline (F=46, M=48, 4 RLFB); [0,255] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2024_team00_rlfn_baseline_x4.pth",
            sha256="3c9be7b9d7a4bece9b68c83a56a1ffb38010f76413d5f215be6b4be842e18fb2",
            url=f"{_NTIRE2024}/model_zoo/team00_rlfn.pth",
            scale=4,
            size_bytes=1294011,
            params=317218,
        ),
    ),
    converter=rename_rlfn_ntire2022_keys,
    tags=("conv", "ntire-baseline"),
)
def _build_rlfn(scale: int = 4, **kwargs: object) -> nn.Module:
    return RLFN(feature_channels=46, mid_channels=48, num_blocks=4, upscale=scale, **kwargs)


@register_model(
    "rlfn_paper",
    scales=_ALL_SCALES,
    input_range=255.0,
    description="RLFN from the paper (F=M=52, 6 RLFB); [0,255] I/O",
    weights=(
        WeightsSpec(
            file_name="bytedance_rlfn_x2.pth",
            sha256="eafe5d5feeb122022453595c06d79160facdc157ae88deb02a44c50f5eba2d41",
            url=f"{_BYTEDANCE}/model_zoo/rlfn_x2.pth",
            scale=2,
            size_bytes=2145309,
            params=526856,
        ),
        WeightsSpec(
            file_name="bytedance_rlfn_x4.pth",
            sha256="8c7edb57dfc89048bafba29d591d4c27d4099964b4a9e22df23d6dc257a637c0",
            url=f"{_BYTEDANCE}/model_zoo/rlfn_x4.pth",
            scale=4,
            size_bytes=2212893,
            params=543740,
        ),
    ),
    converter=rename_rlfn_ntire2022_keys,
    tags=("conv",),
)
def _build_rlfn_paper(scale: int = 4, **kwargs: object) -> nn.Module:
    return RLFN(feature_channels=52, mid_channels=52, num_blocks=6, upscale=scale, **kwargs)


@register_model(
    "rlfn_s",
    scales=_ALL_SCALES,
    input_range=255.0,
    description="RLFN-S from the paper (F=M=48, 6 RLFB); [0,255] I/O",
    weights=(
        WeightsSpec(
            file_name="bytedance_rlfn_s_x2.pth",
            sha256="f5175f499f869c1b884c2552a1bcd6abd07ab352e3d8c8c9abe31b1deb60fe45",
            url=f"{_BYTEDANCE}/model_zoo/rlfn_s_x2.pth",
            scale=2,
            size_bytes=1855005,
            params=454620,
        ),
        WeightsSpec(
            file_name="bytedance_rlfn_s_x4.pth",
            sha256="f769c5a88433786b2db0c2b24da6ca6c92a24c62344b9354a390f8a74388e89d",
            url=f"{_BYTEDANCE}/model_zoo/rlfn_s_x4.pth",
            scale=4,
            size_bytes=1919005,
            params=470208,
        ),
    ),
    converter=rename_rlfn_ntire2022_keys,
    tags=("conv",),
)
def _build_rlfn_s(scale: int = 4, **kwargs: object) -> nn.Module:
    return RLFN(feature_channels=48, mid_channels=48, num_blocks=6, upscale=scale, **kwargs)


def _span_builder(channels: int) -> Callable[..., nn.Module]:
    """A registry builder for SPAN at ``channels`` feature channels."""

    def build(scale: int = 4, deploy: bool = True, **kwargs: object) -> nn.Module:
        # deploy=True is the fused NTIRE "slim" form; deploy=False keeps the training branches.
        return SPAN(3, 3, feature_channels=channels, upscale=scale, deploy=deploy, **kwargs)

    return build


register_model(
    "span",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="SPAN ch28, fused NTIRE 2024 winner (XiaomiMM team38 SPAN30); [0,1] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2024_team38_span_ch28_slim_x4.pth",
            sha256="6c80f05048313289c6526e5fc9726688d7bb3dfdd6ae3c8b1e7dd09f601e5971",
            url=f"{_NTIRE2024}/model_zoo/team38_span_ch28_slim.pth",
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
    scales=_ALL_SCALES,
    input_range=1.0,
    description="SPANtiny ch26, fused (NTIRE 2024 team39 SPAN30); [0,1] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2024_team39_spantiny_ch26_slim_x4.pth",
            sha256="30bf224aee5d3fb9cbc7a3bf164a294f957f65c45f5b271052947097922040a5",
            url=f"{_NTIRE2024}/model_zoo/team39_spantiny_ch26_slim.pth",
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
    scales=_ALL_SCALES,
    input_range=1.0,
    description="SPAN ch48 (paper configuration), fused; upstream weights are not redistributable here",
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)(_span_builder(48))

register_model(
    "span_ch52",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="SPAN ch52, fused; upstream weights are not redistributable here",
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)(_span_builder(52))


@register_model(
    "span_ca",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="SPAN ch28 + 7 CBAM channel-attention modules (seed 'SPAN-Updated'; no trained weights)",
    converter=convert_span_full_to_fused,
    has_trained_weights=False,
    tags=("conv", "reparameterised", "untrained"),
)
def _build_span_ca(scale: int = 4, deploy: bool = True, **kwargs: object) -> nn.Module:
    return SPANCA(3, 3, feature_channels=28, upscale=scale, deploy=deploy, **kwargs)


@register_model(
    "spanf",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="SPAN-F ch32, 5 blocks (XiaomiMM, NTIRE 2025 team24); [0,1] I/O",
    weights=(
        WeightsSpec(
            file_name="ntire2025_team24_spanf_ch32_x4.pth",
            sha256="1508c566008654646bea1edff537c83dd7a6fe8f6ffda3f25f9eb7ba09cbbcd3",
            url=f"{_NTIRE2025}/model_zoo/team24_spanf.pth",
            scale=4,
            size_bytes=606629,
            params=148288,
        ),
    ),
    converter=convert_span_full_to_fused,
    tags=("conv", "reparameterised"),
)
def _build_spanf(scale: int = 4, deploy: bool = True, **kwargs: object) -> nn.Module:
    return SPANF(3, 3, feature_channels=32, upscale=scale, deploy=deploy, **kwargs)


@register_model(
    "efdn",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="EFDN deployed form, NTIRE 2025 ESR baseline (48 ch, 4 cells); [0,1] I/O, clamped",
    weights=(
        WeightsSpec(
            file_name="ntire2025_team00_efdn_baseline_x4.pth",
            sha256="71069f10ef234cd123f45ac8e69099f0a1fdc0c16afcfe2189e50071d47ce477",
            url=f"{_NTIRE2025}/model_zoo/team00_EFDN.pth",
            scale=4,
            size_bytes=1153119,
            params=276192,
        ),
    ),
    tags=("conv", "ntire-baseline"),
)
def _build_efdn(scale: int = 4, **kwargs: object) -> nn.Module:
    return EFDN(scale=scale, **kwargs)


@register_model(
    "bicubic",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="MATLAB-style bicubic upsampling (zero parameters; the quality floor)",
    tags=("conv", "parameter-free"),
)
def _build_bicubic(scale: int = 4) -> nn.Module:
    return Bicubic(upscale=scale)


# --- attention models (FDAT, GRLA) ---
# FDAT and GRLA have no official trained weights: they are registered for complexity and
# speed columns only (has_trained_weights=False). Architecture modules are imported inside
# the builders so this section adds no module-level imports below the code above it.

_FDAT_DESCRIPTIONS: dict[str, str] = {
    "fdat_tiny": "FDAT tiny (C=96, 2 groups x 4 blocks, 3 heads); [0,1] I/O; no official weights",
    "fdat_light": "FDAT light (C=108, 3 groups x 4 blocks, 4 heads); [0,1] I/O; no official weights",
    "fdat_medium": "FDAT medium (C=120, 4 groups x 6 blocks, 4 heads); [0,1] I/O; no official weights",
    "fdat_large": "FDAT large (C=180, 4 groups x 8 blocks, 6 heads); [0,1] I/O; no official weights",
    "fdat_xl": "FDAT xl (C=180, 6 groups x 12 blocks, 6 heads); [0,1] I/O; no official weights",
}


def _fdat_builder(preset: str) -> Callable[..., nn.Module]:
    """A registry builder for FDAT ``preset``; ``upsampler_type=`` picks the upsampler."""

    def build(scale: int = 4, upsampler_type: str = "pixelshuffle", **kwargs: object) -> nn.Module:
        from srbench.models.fdat import build_fdat

        return build_fdat(preset, scale=scale, upsampler_type=upsampler_type, **kwargs)

    build.__name__ = f"build_{preset}"
    return build


for _preset, _description in _FDAT_DESCRIPTIONS.items():
    register_model(
        _preset,
        scales=_ALL_SCALES,
        input_range=1.0,
        description=_description,
        has_trained_weights=False,
        tags=("attention",),
    )(_fdat_builder(_preset))


@register_model(
    "grla",
    scales=_ALL_SCALES,
    input_range=1.0,
    description="GRLA (paper reading: C=55, 6 MPB, window 16, GRBF linear attention); RGB [0,1]; "
    "no official weights",
    has_trained_weights=False,
    tags=("attention",),
)
def build_grla(scale: int = 4, **kwargs: object) -> nn.Module:
    """GRLA at ``scale``; keyword arguments override :class:`GRLAConfig` fields."""
    from srbench.models.grla import GRLA, GRLAConfig

    return GRLA(scale=scale, config=GRLAConfig(**kwargs))  # type: ignore[arg-type]
