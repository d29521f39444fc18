"""VGGT aggregator: DINOv2 patch tokens + alternating frame / global attention.

Per view the aggregator builds ``[camera(1), register(R), patch(P)]`` tokens. The camera and register
tokens come in two learned slots: slot 0 is used by view 0 only, slot 1 by every other view, which
makes view 0 the reference frame. Then ``depth`` rounds of (frame block, global block) run: frame
blocks attend within each view (``[B*S, T, C]``), global blocks across all views (``[B, S*T, C]``).
Both use qk-norm and 2D RoPE on the patch grid (special tokens sit at position (0, 0), patches at
(row+1, col+1); there is no view index). Layer i's output is ``cat(frame_i, global_i)``:
``[B, S, T, 2C]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vist3a.errors import InputError
from vist3a.models.dinov2 import DinoV2
from vist3a.models.layers import Block, RotaryPositionEmbedding2D, grid_positions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AggregatorOutput:
    """What the aggregator returns.

    Attributes:
        layers: ``[B, S, T, 2C]`` per kept layer, in the order of ``layer_ids``.
        layer_ids: absolute aggregator layer index of each entry of ``layers``.
        patch_start_idx: index of the first patch token (1 + R).
        taps: DINO taps ``"enc_blocks_k" -> [B, S, P, C]`` that were asked for.
    """

    layers: list[torch.Tensor]
    layer_ids: list[int]
    patch_start_idx: int
    taps: dict[str, torch.Tensor] = field(default_factory=dict)


def normalize_images(images: torch.Tensor, round_bf16: bool = False) -> torch.Tensor:
    """``[..., 3, H, W]`` in [0, 1] → ImageNet-normalised fp32.

    With ``round_bf16`` the image and the mean/std constants are first rounded to bf16, reproducing
    the official AnySplat encoder (``aggregator(image.to(bfloat16))`` with bf16-cast buffers); the
    arithmetic itself runs in fp32.
    """
    shape = (3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(shape)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(shape)
    x = images
    if round_bf16:
        x = x.to(torch.bfloat16)
        mean, std = mean.to(torch.bfloat16).float(), std.to(torch.bfloat16).float()
    return (x.float() - mean) / std


def _slot_tokens(token: torch.Tensor, b: int, s: int) -> torch.Tensor:
    """``[1, 2, n, C]`` learned slots → ``[B*S, n, C]``: slot 0 for view 0, slot 1 for the others."""
    first = token[:, :1].expand(b, 1, *token.shape[2:])
    rest = token[:, 1:].expand(b, s - 1, *token.shape[2:])
    return torch.cat((first, rest), dim=1).reshape(b * s, *token.shape[2:])


class Aggregator(nn.Module):
    """Alternating-attention transformer over multi-view DINO tokens.

    Args:
        img_size: DINO training size fixing its position-embedding grid (518).
        patch_size: patch side (14).
        embed_dim: token width C (1024), shared by DINO and the aggregator.
        depth: rounds of (frame, global) blocks (24).
        num_heads: attention heads (16).
        mlp_ratio: MLP width / C.
        num_register_tokens: registers R, both in DINO and in the aggregator (4).
        qk_norm: per-head LayerNorm on q, k in frame/global blocks.
        rope_freq: 2D RoPE base (100); 0 disables RoPE.
        init_values: LayerScale init of frame/global blocks (0.01).
        dino_depth: DINO blocks (24). ``dino_num_heads``, ``dino_init_values`` likewise.
        intermediate_layer_idx: layers to return (``None`` = all); the last layer is always kept.
        round_input_bf16: round the image and the ImageNet constants to bf16 before normalising, as the
            official AnySplat encoder does (``aggregator(image.to(bfloat16))``); needed for parity.
    """

    def __init__(
        self,
        img_size: int = 518,
        patch_size: int = 14,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        qk_norm: bool = True,
        rope_freq: float = 100.0,
        init_values: float = 0.01,
        dino_depth: int = 24,
        dino_num_heads: int = 16,
        dino_init_values: float = 1.0,
        intermediate_layer_idx: Sequence[int] | None = None,
        round_input_bf16: bool = False,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.depth = depth
        self.round_input_bf16 = round_input_bf16
        self.gradient_checkpointing = False
        ids = (
            sorted(set(intermediate_layer_idx)) if intermediate_layer_idx is not None else list(range(depth))
        )
        if any(not 0 <= i < depth for i in ids):
            raise ValueError(f"intermediate_layer_idx {ids} out of range for depth {depth}")
        if depth - 1 not in ids:
            ids.append(depth - 1)
        self.layer_ids = ids
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, embed_dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, num_register_tokens, embed_dim))
        self.patch_start_idx = 1 + num_register_tokens
        self.patch_embed = DinoV2(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=dino_depth,
            num_heads=dino_num_heads,
            mlp_ratio=mlp_ratio,
            num_register_tokens=num_register_tokens,
            init_values=dino_init_values,
        )
        self.rope = RotaryPositionEmbedding2D(rope_freq) if rope_freq > 0 else None

        def make() -> Block:
            return Block(
                embed_dim, num_heads, mlp_ratio, init_values=init_values, qk_norm=qk_norm, rope=self.rope
            )

        self.frame_blocks = nn.ModuleList(make() for _ in range(depth))
        self.global_blocks = nn.ModuleList(make() for _ in range(depth))
        self.reset_parameters()

    @classmethod
    def from_config(cls, c: Any) -> Aggregator:
        """Build from a model config with the usual field names (AnySplatConfig, VGGTConfig)."""
        return cls(
            img_size=c.pos_embed_img_size,
            patch_size=c.patch_size,
            embed_dim=c.embed_dim,
            depth=c.depth,
            num_heads=c.num_heads,
            mlp_ratio=c.mlp_ratio,
            num_register_tokens=c.num_register_tokens,
            rope_freq=c.rope_freq,
            dino_depth=c.dino_depth,
            dino_num_heads=c.dino_num_heads,
            intermediate_layer_idx=c.intermediate_layer_idx,
            round_input_bf16=getattr(c, "round_input_bf16", False),
        )

    def reset_parameters(self) -> None:
        nn.init.normal_(self.camera_token, std=1e-6)
        nn.init.normal_(self.register_token, std=1e-6)
        for blocks in (self.frame_blocks, self.global_blocks):
            for m in blocks.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    # --- inputs ---------------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``[B,S,3,H,W]`` in [0,1] → ImageNet-normalised fp32 (bf16-rounded first if configured)."""
        return normalize_images(images, self.round_input_bf16)

    # --- forward --------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, taps: Iterable[str] = ()) -> AggregatorOutput:
        """Images ``[B, S, 3, H, W]`` in [0, 1] (H, W multiples of the patch size) → :class:`AggregatorOutput`."""
        if images.ndim != 5 or images.shape[2] != 3:
            raise InputError(f"images must be [B, V, 3, H, W], got {list(images.shape)}")
        b, s, _, h, w = images.shape
        if h % self.patch_size or w % self.patch_size:
            raise InputError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        x = self.normalize(images).reshape(b * s, 3, h, w)
        w_dtype = self.patch_embed.patch_embed.proj.weight.dtype
        if not torch.is_autocast_enabled(x.device.type) and x.dtype != w_dtype:
            x = x.to(w_dtype)
        dino = self.patch_embed(x, taps=taps)
        return self._finish(dino, b, s, (h // self.patch_size, w // self.patch_size))

    def forward_from_dino_block(
        self,
        tokens: torch.Tensor,
        start_block: int,
        grid_hw: tuple[int, int],
        add_pos_embed: bool = True,
        taps: Iterable[str] = (),
    ) -> AggregatorOutput:
        """Enter after DINO block ``start_block`` (1-based) with patch tokens ``[B, S, P, C]``.

        The tokens are embedded with :meth:`DinoV2.embed_patch_tokens` (cls, registers and, if
        ``add_pos_embed``, the position embedding again, as VIST3A's stitched model does), then DINO
        blocks ``start_block+1..`` and the aggregator run.
        """
        if tokens.ndim != 4:
            raise InputError(f"stitched tokens must be [B, V, P, C], got {list(tokens.shape)}")
        b, s, p, c = tokens.shape
        full = self.patch_embed.embed_patch_tokens(tokens.reshape(b * s, p, c), grid_hw, add_pos_embed)
        dino = self.patch_embed.forward_from_block(full, start_block, taps)
        return self._finish(dino, b, s, grid_hw)

    def _finish(self, dino: dict, b: int, s: int, grid_hw: tuple[int, int]) -> AggregatorOutput:
        patch = dino["x_norm_patchtokens"]  # B*S, P, C
        taps = {k: v.reshape(b, s, *v.shape[1:]) for k, v in dino.items() if k.startswith("enc_blocks_")}
        layers = self.forward_tokens(patch, b, s, grid_hw)
        return AggregatorOutput(layers, list(self.layer_ids), self.patch_start_idx, taps)

    def forward_tokens(
        self, patch_tokens: torch.Tensor, b: int, s: int, grid_hw: tuple[int, int]
    ) -> list[torch.Tensor]:
        """DINO patch tokens ``[B*S, P, C]`` → kept layers, each ``[B, S, 1+R+P, 2C]``."""
        if s < 1:
            raise InputError("the aggregator needs at least one view")
        dtype = patch_tokens.dtype
        cam = _slot_tokens(self.camera_token.to(dtype), b, s)
        reg = _slot_tokens(self.register_token.to(dtype), b, s)
        tokens = torch.cat((cam, reg, patch_tokens), dim=1)  # B*S, T, C
        n_tok, c = tokens.shape[1:]
        pos = None
        if self.rope is not None:
            pos = grid_positions(b * s, grid_hw[0], grid_hw[1], device=tokens.device) + 1
            special = torch.zeros(b * s, self.patch_start_idx, 2, dtype=pos.dtype, device=pos.device)
            pos = torch.cat((special, pos), dim=1)  # B*S, T, 2
        pos_global = pos.reshape(b, s * n_tok, 2) if pos is not None else None
        keep = set(self.layer_ids)
        outputs: list[torch.Tensor] = []
        for i in range(self.depth):
            tokens = self._run(self.frame_blocks[i], tokens.reshape(b * s, n_tok, c), pos)
            frame_out = tokens.reshape(b, s, n_tok, c)
            tokens = self._run(self.global_blocks[i], tokens.reshape(b, s * n_tok, c), pos_global)
            if i in keep:
                outputs.append(torch.cat((frame_out, tokens.reshape(b, s, n_tok, c)), dim=-1))
        return outputs

    def _run(self, block: nn.Module, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, pos, use_reentrant=False)
        return block(x, pos=pos)
