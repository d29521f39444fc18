"""2D rotary position embedding (VGGT flavour) and the token grid positions it reads.

The head dimension is split in two halves: the first half rotates with the token's row, the second
with its column. Each half uses rotate-half RoPE with frequencies ``1 / base**(2i/d_half)``.
"""

from __future__ import annotations

import torch
from torch import nn


def grid_positions(
    batch: int, height: int, width: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Integer (row, col) of every patch of an ``height x width`` grid, row-major: ``[batch, H*W, 2]``."""
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    pos = torch.cartesian_prod(rows, cols)  # H*W, 2
    return pos.unsqueeze(0).expand(batch, -1, -1).clone()


class RotaryPositionEmbedding2D(nn.Module):
    """Rotate ``[B, heads, N, head_dim]`` features by the 2D positions ``[B, N, 2]`` (row, col).

    Args:
        frequency: the RoPE base (VGGT uses 100).
    """

    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = float(frequency)

    def _cos_sin(
        self, dim: int, length: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        exponents = torch.arange(0, dim, 2, device=device).float() / dim
        inv_freq = 1.0 / (self.frequency**exponents)  # dim/2
        positions = torch.arange(length, device=device, dtype=inv_freq.dtype)
        angles = torch.outer(positions, inv_freq).to(dtype)  # length, dim/2
        angles = torch.cat((angles, angles), dim=-1)  # length, dim
        return angles.cos().to(dtype), angles.sin().to(dtype)

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def _rope_1d(
        self, x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        c = nn.functional.embedding(pos, cos)[:, None]  # B, 1, N, d
        s = nn.functional.embedding(pos, sin)[:, None]
        return x * c + self._rotate_half(x) * s

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``x [B,h,N,D]``, ``positions [B,N,2]`` (long) → rotated ``x``."""
        half = x.shape[-1] // 2
        length = int(positions.max()) + 1
        cos, sin = self._cos_sin(half, length, x.device, x.dtype)
        rows, cols = x.chunk(2, dim=-1)
        rows = self._rope_1d(rows, positions[..., 0], cos, sin)
        cols = self._rope_1d(cols, positions[..., 1], cos, sin)
        return torch.cat((rows, cols), dim=-1)
