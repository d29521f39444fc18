"""DINOv2 ViT (L/14 with 4 registers in AnySplat/VGGT) with named taps and a run-from-block entry.

Token layout per image: ``[cls, register_1..R, patch_1..P]`` (patches row-major). The learned
position embedding covers a square grid (37x37 + cls for ``img_size=518``) and is resized bicubic
with antialiasing to the actual patch grid at every call, exactly as the official model does.

Stitching hooks (VIST3A ``enc_blocks_k``):

- a *tap* ``"enc_blocks_k"`` (k = 1..depth) is the residual stream after block k (1-based),
  **before** the final norm, with the cls and register tokens dropped: ``[N, P, C]``;
- :meth:`DinoV2.forward_from_block` runs blocks k+1..depth (then the final norm) on tokens at
  block k; :meth:`DinoV2.embed_patch_tokens` turns stitched patch tokens back into a full token
  sequence (cls, registers, optional position embedding). Nothing is deleted in place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vist3a.errors import InputError
from vist3a.models.layers import Block, PatchEmbed

_TAP = re.compile(r"^enc_blocks_(\d+)$")


def parse_tap(name: str, depth: int) -> int:
    """``"enc_blocks_k"`` → k (1-based, 1..depth); raises :class:`InputError` otherwise."""
    m = _TAP.match(name)
    if not m or not 1 <= int(m.group(1)) <= depth:
        raise InputError(f"unknown DINO tap {name!r}; expected 'enc_blocks_k' with k in 1..{depth}")
    return int(m.group(1))


class DinoV2(nn.Module):
    """DINOv2 vision transformer with register tokens.

    Args:
        img_size: training image size that fixes the position-embedding grid (518 → 37x37).
        patch_size: patch side (14).
        in_chans: image channels.
        embed_dim: token width C (1024 for ViT-L).
        depth: number of blocks (24).
        num_heads: attention heads (16).
        mlp_ratio: MLP width / C.
        num_register_tokens: register tokens R (4).
        init_values: LayerScale init (1.0 in the released ViT-L/14-reg).
        norm_eps: LayerNorm epsilon (1e-6).
        interpolate_antialias: antialias in the bicubic position-embedding resize.
    """

    def __init__(
        self,
        img_size: int = 518,
        patch_size: int = 14,
        in_chans: int = 3,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        init_values: float = 1.0,
        norm_eps: float = 1e-6,
        interpolate_antialias: bool = True,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.depth = depth
        self.num_register_tokens = num_register_tokens
        self.interpolate_antialias = interpolate_antialias
        self.gradient_checkpointing = False
        grid = img_size // patch_size
        # Own parameters first, in the official order (state-dict order follows registration).
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        self.mask_token = nn.Parameter(
            torch.zeros(1, embed_dim), requires_grad=False
        )  # unused, kept for checkpoints
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values=init_values, norm_eps=norm_eps)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.reset_parameters()

    @property
    def num_special_tokens(self) -> int:
        """cls + registers (the tokens before the patches)."""
        return 1 + self.num_register_tokens

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    # --- embedding ------------------------------------------------------------------------------
    def interpolate_pos_encoding(self, grid_hw: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        """Position embedding for a ``grid_hw`` patch grid: ``[1, 1 + h*w, C]`` (cls first)."""
        h, w = grid_hw
        n = self.pos_embed.shape[1] - 1
        m = int(math.isqrt(n))
        if h * w == n and h == w:
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        patch = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)  # 1, C, M, M
        patch = F.interpolate(patch, size=(h, w), mode="bicubic", antialias=self.interpolate_antialias)
        patch = patch.permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat((pos[:, :1], patch), dim=1).to(dtype)

    def embed_patch_tokens(
        self, patch_tokens: torch.Tensor, grid_hw: tuple[int, int], add_pos_embed: bool = True
    ) -> torch.Tensor:
        """Patch tokens ``[N, P, C]`` → full sequence ``[N, 1+R+P, C]``: cls (+pos), registers, patches (+pos).

        ``add_pos_embed=False`` skips the patch position embedding (the cls token still gets its own).
        VIST3A's stitched model adds it again on top of stitched features; pass ``True`` to match it.
        """
        n, p, c = patch_tokens.shape
        if p != grid_hw[0] * grid_hw[1] or c != self.embed_dim:
            raise InputError(
                f"patch tokens must be [N, {grid_hw[0]}*{grid_hw[1]}, {self.embed_dim}], got {list(patch_tokens.shape)}"
            )
        pos = self.interpolate_pos_encoding(grid_hw, patch_tokens.dtype)
        cls = self.cls_token.to(patch_tokens.dtype).expand(n, -1, -1) + pos[:, :1]
        if add_pos_embed:
            patch_tokens = patch_tokens + pos[:, 1:]
        regs = self.register_tokens.to(patch_tokens.dtype).expand(n, -1, -1)
        return torch.cat((cls, regs, patch_tokens), dim=1)

    def prepare_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[N,3,H,W]`` → tokens entering block 1: ``[N, 1+R+P, C]``."""
        h, w = images.shape[-2:]
        x = self.patch_embed(images)
        return self.embed_patch_tokens(x, (h // self.patch_size, w // self.patch_size), add_pos_embed=True)

    # --- blocks ---------------------------------------------------------------------------------
    def _run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_from_block(
        self, tokens: torch.Tensor, start_block: int = 0, taps: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Run blocks ``start_block+1 .. depth`` (1-based) and the final norm.

        Args:
            tokens: ``[N, 1+R+P, C]`` tokens at block ``start_block`` (0 = after embedding).
            start_block: k in 0..depth.
            taps: names ``"enc_blocks_j"`` (j > k) to record.
        Returns:
            dict with ``x_norm_patchtokens [N,P,C]``, ``x_prenorm [N,1+R+P,C]`` and one
            ``[N,P,C]`` entry per tap.
        """
        if not 0 <= start_block <= self.depth:
            raise InputError(f"start_block must be in 0..{self.depth}, got {start_block}")
        wanted = {parse_tap(t, self.depth) for t in taps}
        if any(k <= start_block for k in wanted):
            raise InputError(f"taps {sorted(wanted)} must come after the start block {start_block}")
        out: dict[str, Any] = {}
        s = self.num_special_tokens
        x = tokens
        for i in range(start_block, self.depth):
            x = self._run_block(self.blocks[i], x)
            if i + 1 in wanted:
                out[f"enc_blocks_{i + 1}"] = x[:, s:]
        out["x_prenorm"] = x
        out["x_norm_patchtokens"] = self.norm(x)[:, s:]
        return out

    def forward(self, images: torch.Tensor, taps: Iterable[str] = ()) -> dict[str, Any]:
        """Normalised images ``[N,3,H,W]`` → dict (see :meth:`forward_from_block`)."""
        return self.forward_from_block(self.prepare_tokens(images), 0, taps)
