"""AnySplat's Gaussian-parameter head: a DPT head with an RGB shortcut and raw per-pixel outputs.

Compared with :class:`~vist3a.models.heads.dpt_head.DPTHead` it
- replaces ``scratch.output_conv2`` by Conv3×3 (h1 = features/2 → h2), ReLU, Conv1×1 (h2 → output_dim),
  with ``h2 = 128`` when ``output_dim > 50`` (SH degree ≥ 3) else 32;
- adds ``input_merger`` (Conv7×7 3 → h1, padding 3, then ReLU) on the raw [0, 1] RGB image, added to
  the fused features after they are upsampled to the image size and before the position embedding;
- returns the raw output ``[B, S, output_dim, H, W]`` with no activation.

Channels (``sh_degree`` d, ``K = (d+1)²``): 0 density logit; 1–3 scale; 4–7 quaternion xyzw; then ``3K``
SH coefficients laid out (rgb, K); the last channel is the voxel-fusion confidence logit. For d = 4
that is 1 + 7 + 75 + 1 = 84 channels (keys ``encoder.gaussian_param_head.*`` of AnySplat).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError
from vist3a.models.heads.dpt_head import DPTHead


def gaussian_head_channels(sh_degree: int) -> int:
    """Output channels of the Gaussian head: density 1 + scale 3 + rotation 4 + SH 3(d+1)² + fusion logit 1."""
    if not 0 <= sh_degree <= 4:
        raise InputError(f"sh_degree must be in 0..4, got {sh_degree}")
    return 1 + 7 + 3 * (sh_degree + 1) ** 2 + 1


class GaussianHead(DPTHead):
    """AnySplat's ``VGGT_DPT_GS_Head``: per-pixel raw Gaussian parameters.

    Args:
        dim_in, patch_size, features, out_channels, intermediate_layer_idx, pos_embed, down_ratio:
            as :class:`DPTHead`.
        output_dim: raw output channels; ``None`` = :func:`gaussian_head_channels` of ``sh_degree``.
        activation, conf_activation: accepted for signature compatibility with :class:`DPTHead`; the
            Gaussian head applies no activation.
        feature_only: must be False.
        sh_degree: SH degree used when ``output_dim`` is None (4 for AnySplat → 84 channels).
        head_features: width h2 of the first ``output_conv2`` conv; ``None`` = 128 if ``output_dim > 50``
            else 32 (AnySplat's rule). ``input_merger`` has ``features // 2`` channels, like the fused map.
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        output_dim: int | None = None,
        activation: str = "linear",
        conf_activation: str = "expp1",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        pos_embed: bool = True,
        feature_only: bool = False,
        down_ratio: int = 1,
        sh_degree: int = 4,
        head_features: int | None = None,
    ) -> None:
        if feature_only:
            raise InputError("GaussianHead always predicts Gaussian parameters; feature_only is not supported")
        if output_dim is None:
            output_dim = gaussian_head_channels(sh_degree)
        super().__init__(
            dim_in,
            patch_size=patch_size,
            output_dim=output_dim,
            activation=activation,
            conf_activation=conf_activation,
            features=features,
            out_channels=out_channels,
            intermediate_layer_idx=intermediate_layer_idx,
            pos_embed=pos_embed,
            feature_only=False,
            down_ratio=down_ratio,
        )
        h1 = features // 2
        h2 = head_features if head_features is not None else (128 if output_dim > 50 else 32)
        # AnySplat gives the merger h2 channels, which only adds up when h2 == h1 (its released SH-4
        # config, 128 == 128); matching the fused map's h1 channels is the same there and works for all.
        self.input_merger = nn.Sequential(nn.Conv2d(3, h1, kernel_size=7, padding=3), nn.ReLU())
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(h1, h2, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(h2, output_dim, kernel_size=1),
        )

    def forward(
        self,
        aggregated_tokens_list: Sequence[torch.Tensor],
        images: torch.Tensor,
        patch_start_idx: int,
        frames_chunk_size: int | None = 8,
    ) -> torch.Tensor:
        """Raw Gaussian parameters for every pixel of every view.

        Args:
            aggregated_tokens_list: aggregator outputs ``[B, S, P, dim_in]`` (see :meth:`DPTHead.forward`).
            images: ``[B, S, 3, H, W]`` RGB in [0, 1] (un-normalised; fed to ``input_merger``).
            patch_start_idx: index of the first patch token.
            frames_chunk_size: views processed at once (``None`` = all).
        Returns:
            ``[B, S, output_dim, H, W]`` raw values, no activation.
        """
        tokens = self._select_layers(aggregated_tokens_list, images, patch_start_idx)
        s = images.shape[1]
        chunk = s if frames_chunk_size is None or frames_chunk_size >= s else int(frames_chunk_size)
        if chunk <= 0:
            raise InputError(f"frames_chunk_size must be positive, got {frames_chunk_size}")
        outs = [self._forward_chunk(tokens, images, lo, min(lo + chunk, s)) for lo in range(0, s, chunk)]
        return torch.cat(outs, dim=1)

    def _forward_chunk(self, tokens: list[torch.Tensor], images: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        b, _, _, height, width = images.shape
        out = self._fused_features(tokens, images, lo, hi)
        rgb = images[:, lo:hi].reshape(b * (hi - lo), 3, height, width).to(out.dtype)
        out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=True)
        out = out + self.input_merger(rgb)
        if self.pos_embed:
            out = self._apply_pos_embed(out, width, height)
        out = self.scratch.output_conv2(out)
        return out.reshape(b, hi - lo, *out.shape[1:])
