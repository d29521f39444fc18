"""AnySplat's Gaussian adapter: raw (fused) head features → activated 3D Gaussians.

Raw feature layout per Gaussian (``K = (sh_degree+1)²``, 83 channels for degree 4):
``[density logit (1), scale (3), quaternion xyzw (4), SH (3·K, laid out rgb-major: R's K, G's K, B's K)]``.

Activations (AnySplat's ``UnifiedGaussianAdapter`` with ``pose_free=True``):
- opacity = sigmoid(density) (AnySplat's opacity mapping is the identity at its released settings);
- scale = min(0.001·softplus(raw), 0.3) in world units;
- rotation = raw / (‖raw‖ + 1e-8), **xyzw** (scalar last);
- SH = raw reshaped to ``[3, K]`` times ``sh_mask`` (1 for degree 0, ``0.1·0.25^l`` for degree l ≥ 1);
- covariance = R S Sᵀ Rᵀ.

SH units: AnySplat renders with gsplat, ``colors = harmonics → [G, K, 3]``, colour = SH(d) + 0.5 clamped
at 0. Its DC coefficient is therefore already in SH units: colour = 0.5 + C0·dc, exactly
:class:`vist3a.gaussians.Gaussians`' convention, so converting needs only a transpose (no rescaling).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError
from vist3a.gaussians.gaussians import Gaussians


def quat_xyzw_to_matrix(q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Quaternions **xyzw** ``[..., 4]`` → rotation matrices ``[..., 3, 3]``, normalised by ``2/(‖q‖² + eps)``."""
    x, y, z, w = q.unbind(-1)
    s = 2.0 / ((q * q).sum(-1) + eps)
    return torch.stack(
        [
            1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
            s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
            s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)  # fmt: skip


def build_covariance(scales: torch.Tensor, rotations_xyzw: torch.Tensor) -> torch.Tensor:
    """``Σ = R S Sᵀ Rᵀ`` from scales ``[..., 3]`` and xyzw quaternions ``[..., 4]`` → ``[..., 3, 3]``."""
    s = torch.diag_embed(scales)
    r = quat_xyzw_to_matrix(rotations_xyzw)
    return r @ s @ s.transpose(-1, -2) @ r.transpose(-1, -2)


def sh_mask(sh_degree: int) -> torch.Tensor:
    """AnySplat's SH damping ``[K]``: 1 for degree 0, ``0.1·0.25^l`` for the coefficients of degree l ≥ 1."""
    mask = torch.ones((sh_degree + 1) ** 2, dtype=torch.float32)
    for degree in range(1, sh_degree + 1):
        mask[degree**2 : (degree + 1) ** 2] = 0.1 * 0.25**degree
    return mask


@dataclass
class AnySplatGaussians:
    """Gaussians in AnySplat's own layout (its ``Gaussians`` dataclass), batched.

    Attributes:
        means: ``[B, G, 3]``.
        covariances: ``[B, G, 3, 3]`` = R S Sᵀ Rᵀ.
        harmonics: ``[B, G, 3, K]`` (rgb, SH coefficient), already multiplied by ``sh_mask``.
        opacities: ``[B, G]`` in (0, 1).
        scales: ``[B, G, 3]`` linear, world units.
        rotations: ``[B, G, 4]`` quaternions **xyzw**, normalised with +1e-8.
    """

    means: torch.Tensor
    covariances: torch.Tensor
    harmonics: torch.Tensor
    opacities: torch.Tensor
    scales: torch.Tensor
    rotations: torch.Tensor

    def to_gaussians(self, index: int = 0, count: int | None = None) -> Gaussians:
        """Scene ``index`` as :class:`vist3a.gaussians.Gaussians` (wxyz quats, ``sh [G, K, 3]``).

        ``count`` keeps only the first ``count`` Gaussians (drops batch padding). Quaternions are
        renormalised exactly (the covariance is unchanged: AnySplat normalises by ``‖q‖²`` there).
        """
        sl = slice(None) if count is None else slice(0, int(count))
        rot = self.rotations[index, sl]
        quats = F.normalize(rot[..., [3, 0, 1, 2]], dim=-1)
        # A zero raw quaternion is the identity in AnySplat's covariance (2/(0+eps)·0 = 0).
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=quats.dtype, device=quats.device)
        quats = torch.where(rot.norm(dim=-1, keepdim=True) > 0, quats, identity)
        return Gaussians(
            means=self.means[index, sl],
            quats=quats,
            scales=self.scales[index, sl],
            opacities=self.opacities[index, sl],
            sh=self.harmonics[index, sl].transpose(-1, -2),
        )

    @classmethod
    def from_gaussians(cls, g: Gaussians) -> AnySplatGaussians:
        """One scene of :class:`Gaussians` → AnySplat layout with B = 1 (xyzw rotations, covariances)."""
        rotations = g.quats[..., [1, 2, 3, 0]]
        return cls(
            means=g.means[None],
            covariances=build_covariance(g.scales, rotations)[None],
            harmonics=g.sh.transpose(-1, -2)[None],
            opacities=g.opacities[None],
            scales=g.scales[None],
            rotations=rotations[None],
        )

    def __getitem__(self, index: torch.Tensor | slice) -> AnySplatGaussians:
        """Select Gaussians along the G axis (all batch entries)."""
        return AnySplatGaussians(**{f.name: getattr(self, f.name)[:, index] for f in fields(self)})


class GaussianAdapter(nn.Module):
    """Activate raw Gaussian features (AnySplat's ``UnifiedGaussianAdapter``).

    Args:
        sh_degree: SH degree of the raw features (4 for AnySplat).
        scale_multiplier: factor on ``softplus`` of the raw scale (0.001).
        max_scale: upper clamp of the scale (0.3).
    """

    def __init__(self, sh_degree: int = 4, scale_multiplier: float = 0.001, max_scale: float = 0.3) -> None:
        super().__init__()
        if not 0 <= sh_degree <= 4:
            raise InputError(f"sh_degree must be in 0..4, got {sh_degree}")
        self.sh_degree = sh_degree
        self.scale_multiplier = scale_multiplier
        self.max_scale = max_scale
        self.register_buffer("sh_mask", sh_mask(sh_degree), persistent=False)

    def reset_buffers(self) -> None:
        """Refill ``sh_mask`` in place (e.g. after ``to_empty`` left the non-persistent buffer uninitialised)."""
        with torch.no_grad():
            self.sh_mask.copy_(sh_mask(self.sh_degree).to(self.sh_mask.device))

    @property
    def d_sh(self) -> int:
        """SH coefficients per colour channel, ``(sh_degree+1)²``."""
        return (self.sh_degree + 1) ** 2

    @property
    def raw_dim(self) -> int:
        """Raw feature channels: density 1 + scale 3 + rotation 4 + SH 3K (83 for degree 4)."""
        return 1 + 7 + 3 * self.d_sh

    def forward(self, means: torch.Tensor, raw: torch.Tensor) -> AnySplatGaussians:
        """Activate raw features.

        Args:
            means: ``[B, G, 3]`` Gaussian centres (fused points).
            raw: ``[B, G, raw_dim]`` raw (fused) features; a trailing fusion-logit channel
                (``raw_dim + 1`` channels, the head's full output) is accepted and ignored.
        Returns:
            :class:`AnySplatGaussians` in float32.
        """
        if raw.shape[-1] == self.raw_dim + 1:
            raw = raw[..., : self.raw_dim]
        if raw.shape[-1] != self.raw_dim:
            raise InputError(
                f"raw Gaussian features need {self.raw_dim} channels for SH degree {self.sh_degree}, "
                f"got {raw.shape[-1]}"
            )
        if means.shape[:-1] != raw.shape[:-1] or means.shape[-1] != 3:
            raise InputError(f"means {list(means.shape)} do not match raw features {list(raw.shape)}")
        density, scales, rotations, sh = raw.split((1, 3, 4, 3 * self.d_sh), dim=-1)
        pdf = torch.sigmoid(density[..., 0])
        # AnySplat's opacity mapping 0.5·(1 - (1-p)^e + p^(1/e)) at its released exponent e = 1:
        # mathematically the identity, written out to match the official float rounding.
        opacities = 0.5 * (1 - (1 - pdf) + pdf)
        scales = (self.scale_multiplier * F.softplus(scales)).clamp_max(self.max_scale)
        rotations = rotations / (rotations.norm(dim=-1, keepdim=True) + 1e-8)
        harmonics = sh.reshape(*sh.shape[:-1], 3, self.d_sh) * self.sh_mask.to(sh.dtype)
        covariances = build_covariance(scales, rotations)
        return AnySplatGaussians(
            means=means.float(),
            covariances=covariances.float(),
            harmonics=harmonics.float(),
            opacities=opacities.float(),
            scales=scales.float(),
            rotations=rotations.float(),
        )
