"""Multi-head self-attention with optional per-head qk LayerNorm and 2D RoPE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.models.layers.rope import RotaryPositionEmbedding2D


class Attention(nn.Module):
    """``[B,N,C] -> [B,N,C]`` scaled-dot-product self-attention.

    Args:
        dim: token width C.
        num_heads: number of heads (C must be divisible by it).
        qkv_bias: bias on the fused ``qkv`` projection.
        proj_bias: bias on the output projection ``proj``.
        qk_norm: LayerNorm over each head's queries and keys (``q_norm``/``k_norm``), before RoPE.
        norm_eps: epsilon of those LayerNorms.
        rope: a :class:`RotaryPositionEmbedding2D` applied to q and k when ``pos`` is given.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B,N,C]``, optional ``pos [B,N,2]`` token grid positions for RoPE."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # B, h, N, d
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and pos is not None:
            q = self.rope(q, pos)
            k = self.rope(k, pos)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj(x)
