"""VGGT camera head: iterative refinement of a 9-d pose encoding from the camera tokens.

Input is the camera token (index 0) of the last aggregator layer, ``[B, S, 2C]``. Each of the
``num_iterations`` rounds embeds the previous encoding (the learned ``empty_pose_tokens`` in the first
round), modulates the normalised tokens adaLN-style (shift, scale, gate), runs a small transformer
trunk that attends across the S views, and adds a predicted delta to the encoding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.models.layers import Block, Mlp


def _act(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "linear":
        return x
    if kind == "relu":
        return F.relu(x)
    if kind == "exp":
        return torch.exp(x)
    if kind == "inv_log":
        return torch.sign(x) * torch.expm1(x.abs())
    if kind == "norm":
        return x / x.norm(dim=-1, keepdim=True)
    raise ValueError(f"unknown activation {kind!r}")


def activate_pose(
    enc: torch.Tensor, trans_act: str = "linear", quat_act: str = "linear", fl_act: str = "relu"
) -> torch.Tensor:
    """Apply the per-part activations to a raw ``[..., 9]`` encoding."""
    return torch.cat(
        (_act(enc[..., :3], trans_act), _act(enc[..., 3:7], quat_act), _act(enc[..., 7:], fl_act)), dim=-1
    )


class CameraHead(nn.Module):
    """Aggregated tokens → list of ``[B, S, 9]`` pose encodings (one per refinement round).

    Args:
        dim_in: token width (2C = 2048).
        trunk_depth: transformer blocks in the trunk (4).
        num_heads: trunk attention heads (16).
        mlp_ratio: trunk MLP width / dim_in.
        init_values: trunk LayerScale init (0.01).
        trans_act, quat_act, fl_act: activations of translation, quaternion and field of view.
    """

    target_dim = 9

    def __init__(
        self,
        dim_in: int = 2048,
        trunk_depth: int = 4,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        init_values: float = 0.01,
        trans_act: str = "linear",
        quat_act: str = "linear",
        fl_act: str = "relu",
    ) -> None:
        super().__init__()
        self.acts = (trans_act, quat_act, fl_act)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, self.target_dim))
        self.trunk = nn.Sequential(
            *[Block(dim_in, num_heads, mlp_ratio, init_values=init_values) for _ in range(trunk_depth)]
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.embed_pose = nn.Linear(self.target_dim, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, self.target_dim)

    def forward(
        self, aggregated_tokens_list: Sequence[torch.Tensor], num_iterations: int = 4
    ) -> list[torch.Tensor]:
        """``aggregated_tokens_list[-1]`` is ``[B, S, T, 2C]``; returns ``num_iterations`` tensors ``[B, S, 9]``."""
        tokens = self.token_norm(aggregated_tokens_list[-1][:, :, 0])  # B, S, 2C
        b, s, _ = tokens.shape
        enc: torch.Tensor | None = None
        out: list[torch.Tensor] = []
        for _ in range(num_iterations):
            if enc is None:
                inp = self.embed_pose(self.empty_pose_tokens.expand(b, s, -1))
            else:
                enc = enc.detach()
                inp = self.embed_pose(enc)
            shift, scale, gate = self.poseLN_modulation(inp).chunk(3, dim=-1)
            x = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            x = self.trunk(x)
            delta = self.pose_branch(self.trunk_norm(x))
            enc = delta if enc is None else enc + delta
            out.append(activate_pose(enc, *self.acts))
        return out
