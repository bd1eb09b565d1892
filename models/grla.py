"""GRLA: lightweight SR with window attention and Gaussian-RBF linear attention.

Built from the paper ("GRLA: Bridging Softmax and Linear Attention via Gaussian RBF Kernel
for Lightweight Image Super-Resolution", ICLR 2026 submission 16242, OpenReview qS3LTUrncS);
there is no official code. The student repository redscarfx/GRLA is a different variant
(Y channel, window 8, element-wise φ) and is *not* followed. ``docs/grla.md`` records every
choice the paper leaves open; they are repeated here.

Conventions: RGB in [0, 1] → RGB in [0, 1] (no mean shift, output not clamped), tensors
(B, 3, H, W). Any input size works; the output is exactly ``scale`` × the input per side.

Architecture (C = 55 channels):
    shallow 3×3 conv 3→C → 6 MPBs with multi-layer aggregation → 3×3 conv → + shallow
    (global residual) → tail: 3×3 conv C→3s², PixelShuffle(s).

    MPB(x) = x + conv1×1(TLA(TWSA(x)))
    TWSA: x ← LFE(x); x ← x + WMSA(LN(x)); x ← x + FFN(LN(x))
    TLA:  x ← LFE(x); x ← x + GRBFLA(LN(x)); x ← x + FFN(LN(x))
    LFE(x) = x + 1×1(BN(GELU(dw3×3(1×1(BN(x))))))   (C → 3C → C)
    FFN: Linear C→4C, GELU, Linear 4C→C (biases on).
    WMSA: 16×16 non-shifted windows, 11 heads (head dim 5), qkv bias, Swin-style relative
    position bias table ((2·16−1)², heads); padded pixels are masked out as keys.
    GRBFLA: 11 heads, qkv bias, γ = 1/2 (see :func:`grbf_linear_attention`).
    Aggregation: after MPB i ≥ 2, the outputs of MPBs 1..i are concatenated and fused by a
    1×1 conv (i·C → C); the fused map feeds MPB i+1, and the last fusion (6C → C) is the deep
    feature. Five convs, 60,775 parameters (the paper reports +61K for aggregation).

Choices the paper leaves open (heads, RPB, LFE expansion 3, FFN ratio 4, the per-MPB 1×1
conv and the aggregation wiring) were made so the ×4 count lands next to the paper's 885K.

Exact parameter counts (RGB): ×2 867,153; ×3 874,593; ×4 885,009 (paper: 867K / 874K /
885K). The scale deltas come only from the tail conv 55·9·3s² + 3s².
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srbench.core.errors import SrbenchError
from srbench.models.registry import register_model
from srbench.models.sources import ALL_SCALES

#: Exact parameter counts of :class:`GRLA` with the defaults, per scale.
GRLA_PARAMS: dict[int, int] = {2: 867_153, 3: 874_593, 4: 885_009}


@dataclass(frozen=True)
class GRLAConfig:
    """Hyperparameters of :class:`GRLA`; the defaults are this project's paper reading.

    Attributes:
        dim: channel width C (paper: 55).
        num_blocks: number of MPBs (paper: 6).
        window_size: WMSA window side in pixels (paper Table 6 best row: 16).
        window_heads: WMSA heads (open; 11 → head dim 5).
        linear_heads: GRBFLA heads (open; 11 → head dim 5).
        lfe_expansion: LFE hidden width = dim · expansion (open; 3).
        ffn_ratio: FFN hidden width = dim · ratio (open; 4).
        gamma: GRBF kernel width γ (paper: 1/2; larger values diverge).
        relative_position_bias: Swin-style RPB table in WMSA (open; on).
    """

    dim: int = 55
    num_blocks: int = 6
    window_size: int = 16
    window_heads: int = 11
    linear_heads: int = 11
    lfe_expansion: int = 3
    ffn_ratio: int = 4
    gamma: float = 0.5
    relative_position_bias: bool = True


def grbf_linear_attention(q: Tensor, k: Tensor, v: Tensor, gamma: float = 0.5, eps: float = 1e-6) -> Tensor:
    """GRBF linear attention over the token axis, O(N) in time and memory.

    With φ(K) = exp(−γ‖K‖²) (a scalar per token, on the *raw* key), Q̂ = Q/‖Q‖, K̂ = K/‖K‖
    and the first-order Taylor step exp(2γ·Q̂ᵀK̂) ≈ 1 + 2γ·Q̂ᵀK̂:

        αᵢ = [Σⱼ φⱼVⱼ + 2γ·Q̂ᵢᵀ Σⱼ φⱼK̂ⱼVⱼᵀ] / [Σⱼ φⱼ + 2γ·Q̂ᵢᵀ Σⱼ φⱼK̂ⱼ]

    φ(Qᵢ) cancels between numerator and denominator and is never formed. φ on the
    normalised key would be the constant exp(−γ), so it is taken before normalisation.
    Every φⱼ is divided by maxⱼ φⱼ (a common factor that cancels exactly) so the sums
    cannot underflow. With γ ≤ 1/2 each weight φⱼ(1 + 2γ·cos) is ≥ 0, so the denominator
    is non-negative; ``eps`` guards the degenerate zero case. Sums run in float32.

    Args:
        q, k, v: (B, heads, N, d) tensors.
        gamma: kernel width γ.
        eps: lower bound on the denominator (the largest φ is 1 after rescaling).

    Returns:
        (B, heads, N, d) in the dtype of ``v``.
    """
    out_dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    log_phi = -gamma * k.pow(2).sum(dim=-1, keepdim=True)  # (B, h, N, 1)
    phi = torch.exp(log_phi - log_phi.amax(dim=-2, keepdim=True))
    q_hat = F.normalize(q, dim=-1)
    k_hat = F.normalize(k, dim=-1)
    phi_k = phi * k_hat  # (B, h, N, d)
    s_v = (phi * v).sum(dim=-2, keepdim=True)  # Σ φⱼVⱼ: (B, h, 1, d)
    s_kv = phi_k.transpose(-2, -1) @ v  # Σ φⱼK̂ⱼVⱼᵀ: (B, h, d, d)
    z = phi.sum(dim=-2, keepdim=True)  # Σ φⱼ: (B, h, 1, 1)
    z_k = phi_k.sum(dim=-2, keepdim=True)  # Σ φⱼK̂ⱼ: (B, h, 1, d)
    num = s_v + 2.0 * gamma * (q_hat @ s_kv)
    den = z + 2.0 * gamma * (q_hat * z_k).sum(dim=-1, keepdim=True)
    return (num / den.clamp_min(eps)).to(out_dtype)


class GRBFLinearAttention(nn.Module):
    """Multi-head GRBF linear attention on tokens (B, N, C): qkv Linear, kernel, proj."""

    def __init__(self, dim: int, num_heads: int, gamma: float = 0.5) -> None:
        super().__init__()
        if dim % num_heads:
            raise SrbenchError(f"GRLA linear_heads={num_heads} must divide dim={dim}")
        self.num_heads = num_heads
        self.gamma = gamma
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = grbf_linear_attention(q, k, v, self.gamma)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class WindowAttention(nn.Module):
    """Non-shifted window MHSA with a Swin-style relative position bias, on (B, H, W, C).

    The map is zero-padded right/bottom to a multiple of the window; padded pixels are
    masked out as keys (so results do not depend on the padding) and cropped from the output.
    """

    def __init__(
        self, dim: int, window_size: int, num_heads: int, relative_position_bias: bool = True
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise SrbenchError(f"GRLA window_heads={num_heads} must divide dim={dim}")
        self.ws = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table: nn.Parameter | None = None
        if relative_position_bias:
            span = 2 * window_size - 1
            self.relative_position_bias_table = nn.Parameter(torch.zeros(span * span, num_heads))
            nn.init.normal_(self.relative_position_bias_table, std=0.02)
            coords = torch.stack(
                torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
            ).flatten(1)  # (2, w²)
            rel = (coords[:, :, None] - coords[:, None, :]) + (window_size - 1)  # (2, w², w²)
            index = rel[0] * span + rel[1]
            # Derived from window_size alone, so kept out of the state dict.
            self.register_buffer("relative_position_index", index, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        ws = self.ws
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        nh, nw, d = hp // ws, wp // ws, c // self.num_heads

        def to_windows(t: Tensor) -> Tensor:
            # (B, Hp, Wp, k) → (B·nh·nw, w², k)
            k_ = t.shape[-1]
            return t.view(b, nh, ws, nw, ws, k_).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, k_)

        win = to_windows(x)
        qkv = self.qkv(win).view(-1, ws * ws, 3, self.num_heads, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (nW·B, heads, w², d)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if self.relative_position_bias_table is not None:
            bias = self.relative_position_bias_table[self.relative_position_index]  # (w², w², heads)
            attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if pad_b or pad_r:
            valid = torch.zeros(1, hp, wp, 1, dtype=torch.bool, device=x.device)
            valid[:, :h, :w] = True
            key_ok = to_windows(valid.expand(b, -1, -1, -1)).squeeze(-1)  # (nW·B, w²)
            attn = attn.masked_fill(~key_ok[:, None, None, :], float("-inf"))
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(-1, ws * ws, c)
        out = self.proj(out)
        out = out.view(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        return out[:, :h, :w, :]


class LFE(nn.Module):
    """Local feature extraction: x + 1×1(BN(GELU(dw3×3(1×1(BN(x)))))), C → E → C.

    The paper lists BN, 1×1, depthwise 3×3, BN, 1×1 and a residual; the GELU (no
    parameters) is this implementation's choice so the branch is not purely linear.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(dim)
        self.pw1 = nn.Conv2d(dim, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act = nn.GELU()
        self.bn2 = nn.BatchNorm2d(hidden)
        self.pw2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pw2(self.bn2(self.act(self.dw(self.pw1(self.bn1(x))))))


class FFN(nn.Module):
    """Token MLP: Linear C→hidden, GELU, Linear hidden→C (with biases)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerUnit(nn.Module):
    """LFE, then pre-norm attention and FFN with residuals; ``kind`` is 'window' or 'linear'.

    Works on (B, C, H, W) maps; the attention and FFN see (B, H, W, C) channel-last tokens.
    """

    def __init__(self, cfg: GRLAConfig, kind: str) -> None:
        super().__init__()
        c = cfg.dim
        self.kind = kind
        self.lfe = LFE(c, c * cfg.lfe_expansion)
        self.norm1 = nn.LayerNorm(c)
        self.attn: nn.Module
        if kind == "window":
            self.attn = WindowAttention(c, cfg.window_size, cfg.window_heads, cfg.relative_position_bias)
        else:
            self.attn = GRBFLinearAttention(c, cfg.linear_heads, cfg.gamma)
        self.norm2 = nn.LayerNorm(c)
        self.ffn = FFN(c, c * cfg.ffn_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = self.lfe(x)
        t = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        if self.kind == "window":
            t = t + self.attn(self.norm1(t))
        else:
            b, h, w, c = t.shape
            t = t + self.attn(self.norm1(t).reshape(b, h * w, c)).view(b, h, w, c)
        t = t + self.ffn(self.norm2(t))
        return t.permute(0, 3, 1, 2).contiguous()


class MPB(nn.Module):
    """One block: TWSA (local window attention) then TLA (global linear attention),
    a 1×1 conv and a block residual."""

    def __init__(self, cfg: GRLAConfig) -> None:
        super().__init__()
        self.twsa = TransformerUnit(cfg, "window")
        self.tla = TransformerUnit(cfg, "linear")
        self.fuse = nn.Conv2d(cfg.dim, cfg.dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fuse(self.tla(self.twsa(x)))


class GRLA(nn.Module):
    """GRLA super-resolution network (RGB in [0, 1] → RGB, ``scale`` × larger).

    Args:
        scale: upscaling factor (any integer ≥ 1; the paper reports 2, 3 and 4).
        config: hyperparameters; :class:`GRLAConfig` defaults give :data:`GRLA_PARAMS`.
    """

    def __init__(self, scale: int = 4, config: GRLAConfig | None = None) -> None:
        super().__init__()
        cfg = config or GRLAConfig()
        if scale < 1:
            raise SrbenchError(f"GRLA scale must be a positive integer, got {scale}")
        self.scale = scale
        self.config = cfg
        c = cfg.dim
        self.head = nn.Conv2d(3, c, 3, 1, 1)
        self.blocks = nn.ModuleList(MPB(cfg) for _ in range(cfg.num_blocks))
        # aggregate[i-2] fuses the outputs of MPBs 1..i (i = 2..num_blocks): i·C → C.
        self.aggregate = nn.ModuleList(nn.Conv2d(i * c, c, 1) for i in range(2, cfg.num_blocks + 1))
        self.body_conv = nn.Conv2d(c, c, 3, 1, 1)
        self.tail = nn.Sequential(nn.Conv2d(c, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.head(x)
        feat = shallow
        outputs: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            outputs.append(block(feat))
            feat = outputs[-1] if i == 0 else self.aggregate[i - 1](torch.cat(outputs, dim=1))
        return self.tail(self.body_conv(feat) + shallow)


# ---------------------------------------------- registration (no official weights)


@register_model(
    "grla",
    scales=ALL_SCALES,
    input_range=1.0,
    description="GRLA (paper reading: C=55, 6 MPB, window 16, GRBF linear attention); RGB [0,1]; "
    "no official weights",
    has_trained_weights=False,
    tags=("attention",),
)
def build_grla(scale: int = 4, **kwargs: object) -> nn.Module:
    """GRLA at ``scale``; keyword arguments override :class:`GRLAConfig` fields."""
    return GRLA(scale=scale, config=GRLAConfig(**kwargs))  # type: ignore[arg-type]
