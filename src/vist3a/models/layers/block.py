"""Pre-LN transformer block: ``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``."""

from __future__ import annotations

import torch
from torch import nn

from vist3a.models.layers.attention import Attention
from vist3a.models.layers.layer_scale import LayerScale
from vist3a.models.layers.mlp import Mlp
from vist3a.models.layers.rope import RotaryPositionEmbedding2D


class Block(nn.Module):
    """One transformer block on ``[B,N,C]`` tokens.

    Args:
        dim: token width C.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / C.
        qkv_bias, proj_bias, ffn_bias: biases of the attention and MLP linears.
        init_values: LayerScale init; ``None`` or 0 disables LayerScale (no ``ls*`` keys).
        norm_eps: epsilon of ``norm1``/``norm2`` (DINOv2 uses 1e-6, VGGT 1e-5).
        qk_norm: per-head LayerNorm on q and k (VGGT aggregator).
        rope: optional 2D RoPE shared by the attention.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        init_values: float | None = None,
        norm_eps: float = 1e-5,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias, qk_norm=qk_norm, rope=rope
        )
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))
