"""Image → patch tokens with one strided convolution (``proj``)."""

from __future__ import annotations

import torch
from torch import nn

from vist3a.errors import InputError


class PatchEmbed(nn.Module):
    """``[N,C,H,W] -> [N, (H/p)*(W/p), D]`` (row-major patch order).

    Args:
        patch_size: square patch side ``p``; H and W must be multiples of it.
        in_chans: input channels.
        embed_dim: token width ``D``.
    """

    def __init__(self, patch_size: int = 14, in_chans: int = 3, embed_dim: int = 1024) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise InputError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        x = self.proj(x)  # N, D, H/p, W/p
        return x.flatten(2).transpose(1, 2)  # N, P, D
