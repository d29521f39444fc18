"""VGGT-1B (``facebook/VGGT-1B``) from the same parts as AnySplat: aggregator, camera, depth and point heads.

The track head is not implemented; loading an official VGGT-1B checkpoint skips its
``track_head.*`` tensors (reported in the log). Unlike AnySplat, the official VGGT feeds the image
unrounded and uses ``f = (size/2) / tan(fov/2)`` (``focal_eps = 0``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from vist3a.errors import InputError
from vist3a.models.aggregator import Aggregator, AggregatorOutput
from vist3a.models.heads.camera_head import CameraHead
from vist3a.models.heads.dpt_head import DPTHead
from vist3a.models.pose_encoding import pose_encoding_to_extri_intri

HF_REPO = "facebook/VGGT-1B"


@dataclass(frozen=True)
class VGGTConfig:
    """Numbers of a VGGT network (defaults = VGGT-1B). Fields as in :class:`~vist3a.models.anysplat.AnySplatConfig`."""

    image_size: int = 518
    patch_size: int = 14
    pos_embed_img_size: int = 518
    embed_dim: int = 1024
    dino_depth: int = 24
    dino_num_heads: int = 16
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    rope_freq: float = 100.0
    intermediate_layer_idx: tuple[int, ...] = (4, 11, 17, 23)
    camera_trunk_depth: int = 4
    camera_num_heads: int = 16
    dpt_features: int = 256
    dpt_out_channels: tuple[int, ...] = (256, 512, 1024, 1024)
    focal_eps: float = 0.0
    frames_chunk_size: int = 8
    autocast: bool = True


@dataclass
class VGGTOutput:
    """``pose_enc_list`` per iteration ``[B,S,9]``; ``w2c [B,S,3,4]``; ``K [B,S,3,3]`` pixels;
    ``depth [B,S,H,W,1]``, ``depth_conf [B,S,H,W]``; ``world_points [B,S,H,W,3]``, ``world_points_conf [B,S,H,W]``."""

    pose_enc_list: list[torch.Tensor]
    w2c: torch.Tensor
    K: torch.Tensor
    depth: torch.Tensor
    depth_conf: torch.Tensor
    world_points: torch.Tensor
    world_points_conf: torch.Tensor
    aggregator: AggregatorOutput


class VGGT(nn.Module):
    """Visual Geometry Grounded Transformer (without the track head)."""

    def __init__(self, config: VGGTConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or VGGTConfig()
        dim2 = 2 * c.embed_dim
        self.aggregator = Aggregator.from_config(c)
        self.camera_head = CameraHead(
            dim2, trunk_depth=c.camera_trunk_depth, num_heads=c.camera_num_heads, mlp_ratio=c.mlp_ratio
        )
        dpt = dict(
            patch_size=c.patch_size,
            features=c.dpt_features,
            out_channels=c.dpt_out_channels,
            intermediate_layer_idx=c.intermediate_layer_idx,
        )
        self.point_head = DPTHead(dim2, output_dim=4, activation="inv_log", conf_activation="expp1", **dpt)
        self.depth_head = DPTHead(dim2, output_dim=2, activation="exp", conf_activation="expp1", **dpt)

    def forward(self, images: torch.Tensor, taps: tuple[str, ...] = ()) -> VGGTOutput:
        """Images ``[B, S, 3, H, W]`` in [0, 1] → :class:`VGGTOutput`."""
        if images.ndim == 4:
            images = images[None]
        if images.ndim != 5 or images.shape[2] != 3:
            raise InputError(f"images must be [B, S, 3, H, W] in [0, 1], got {list(images.shape)}")
        h, w = images.shape[-2:]
        cuda = images.device.type == "cuda"
        ac = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if cuda and self.config.autocast
            else contextlib.nullcontext()
        )
        with ac:
            agg = self.aggregator(images.float(), taps=taps)
        layers = [t.to(self.camera_head.empty_pose_tokens.dtype) for t in agg.layers]
        with torch.autocast("cuda", enabled=False) if cuda else contextlib.nullcontext():
            pose_enc_list = self.camera_head(layers)
            w2c, k = pose_encoding_to_extri_intri(pose_enc_list[-1], (h, w), self.config.focal_eps)
            depth, depth_conf = self.depth_head(
                layers, images, agg.patch_start_idx, self.config.frames_chunk_size
            )
            pts, pts_conf = self.point_head(
                layers, images, agg.patch_start_idx, self.config.frames_chunk_size
            )
        return VGGTOutput(pose_enc_list, w2c, k, depth, depth_conf, pts, pts_conf, agg)


def vggt_1b(
    device: Any = "cpu",
    weights: Any = None,
    dtype: torch.dtype | None = None,
    allow_download: bool = True,
    **overrides: Any,
) -> VGGT:
    """VGGT-1B (``weights`` e.g. ``"facebook/VGGT-1B"`` or a local file; track-head tensors are skipped)."""
    from vist3a.models.anysplat import build_model

    names = set(VGGTConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(f"unknown VGGT option(s) {unknown}; known: {sorted(names)}")
    cfg = replace(VGGTConfig(), **overrides)
    return build_model(
        VGGT,
        cfg,
        device,
        weights,
        dtype,
        None,
        allow_download=allow_download,
        ignore_prefixes=("track_head.",),
    )
