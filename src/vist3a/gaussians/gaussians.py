"""The 3D Gaussian-splat scene representation.

Conventions (fixed across the package; files convert at their edge):
- ``means [N,3]`` world positions; ``quats [N,4]`` unit quaternions **wxyz**; ``scales [N,3]`` linear
  standard deviations (> 0); ``opacities [N]`` activated, in (0, 1);
- ``sh [N,K,3]`` spherical-harmonic colour coefficients, ``K = (degree+1)**2``, DC term in SH units:
  ``colour = 0.5 + C0 * sh[:, 0]`` with ``C0 = 0.28209479177387814``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from vist3a.errors import InputError

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)
SH_C4 = (
    2.5033429417967046,
    -1.7701307697799304,
    0.9461746957575601,
    -0.6690465435572892,
    0.10578554691520431,
    -0.6690465435572892,
    0.47308734787878004,
    -1.7701307697799304,
    0.6258357354491761,
)
MAX_SH_DEGREE = 4


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    """Colour in [0,1] ``[...,3]`` → DC SH coefficient ``[...,3]``."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    """DC SH coefficient ``[...,3]`` → colour ``[...,3]`` (not clamped)."""
    return dc * SH_C0 + 0.5


def sh_degree_from_k(k: int) -> int:
    degree = int(round(math.sqrt(k))) - 1
    if (degree + 1) ** 2 != k or not 0 <= degree <= MAX_SH_DEGREE:
        raise InputError(f"SH coefficient count {k} is not (d+1)^2 for a degree d in 0..{MAX_SH_DEGREE}")
    return degree


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor, degree: int | None = None) -> torch.Tensor:
    """Evaluate real spherical harmonics (the 3DGS / gsplat basis and sign convention).

    Args:
        sh: ``[..., K, 3]`` coefficients, ``K >= (degree+1)**2``.
        dirs: ``[..., 3]`` view directions (camera centre → Gaussian); normalised here.
        degree: degree to use (default: the highest that ``K`` holds).
    Returns:
        ``[..., 3]`` colour *before* the +0.5 offset and clamping, i.e. ``sum_k Y_k(d) sh_k``.
    """
    k = sh.shape[-2]
    if degree is None:
        degree = sh_degree_from_k(k)
    if (degree + 1) ** 2 > k:
        raise InputError(f"SH degree {degree} needs {(degree + 1) ** 2} coefficients, got {k}")
    result = SH_C0 * sh[..., 0, :]
    if degree == 0:  # broadcast like the higher degrees do
        return result.expand(torch.broadcast_shapes(result.shape, dirs.shape))
    d = torch.nn.functional.normalize(dirs, dim=-1)
    x, y, z = d[..., 0:1], d[..., 1:2], d[..., 2:3]
    result = result - SH_C1 * y * sh[..., 1, :] + SH_C1 * z * sh[..., 2, :] - SH_C1 * x * sh[..., 3, :]
    if degree == 1:
        return result
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    result = (
        result
        + SH_C2[0] * xy * sh[..., 4, :]
        + SH_C2[1] * yz * sh[..., 5, :]
        + SH_C2[2] * (2.0 * zz - xx - yy) * sh[..., 6, :]
        + SH_C2[3] * xz * sh[..., 7, :]
        + SH_C2[4] * (xx - yy) * sh[..., 8, :]
    )
    if degree == 2:
        return result
    result = (
        result
        + SH_C3[0] * y * (3 * xx - yy) * sh[..., 9, :]
        + SH_C3[1] * xy * z * sh[..., 10, :]
        + SH_C3[2] * y * (4 * zz - xx - yy) * sh[..., 11, :]
        + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[..., 12, :]
        + SH_C3[4] * x * (4 * zz - xx - yy) * sh[..., 13, :]
        + SH_C3[5] * z * (xx - yy) * sh[..., 14, :]
        + SH_C3[6] * x * (xx - 3 * yy) * sh[..., 15, :]
    )
    if degree == 3:
        return result
    xx_yy = xx - yy
    result = (
        result
        + SH_C4[0] * xy * xx_yy * sh[..., 16, :]
        + SH_C4[1] * yz * (3 * xx - yy) * sh[..., 17, :]
        + SH_C4[2] * xy * (7 * zz - 1) * sh[..., 18, :]
        + SH_C4[3] * yz * (7 * zz - 3) * sh[..., 19, :]
        + SH_C4[4] * (zz * (35 * zz - 30) + 3) * sh[..., 20, :]
        + SH_C4[5] * xz * (7 * zz - 3) * sh[..., 21, :]
        + SH_C4[6] * xx_yy * (7 * zz - 1) * sh[..., 22, :]
        + SH_C4[7] * xz * (xx - 3 * yy) * sh[..., 23, :]
        + SH_C4[8] * (xx * (xx - 3 * yy) - yy * (3 * xx - yy)) * sh[..., 24, :]
    )
    return result


@dataclass
class Gaussians:
    """A scene of N activated 3D Gaussians (see the module docstring for conventions).

    Attributes:
        means: ``[N,3]`` world positions.
        quats: ``[N,4]`` unit quaternions, wxyz.
        scales: ``[N,3]`` linear scales (> 0).
        opacities: ``[N]`` in (0,1).
        sh: ``[N,K,3]`` SH coefficients, K = (degree+1)^2, degree 0..4.
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_colors(
        cls,
        means: torch.Tensor,
        colors: torch.Tensor,
        scales: torch.Tensor,
        opacities: torch.Tensor,
        quats: torch.Tensor | None = None,
        sh_degree: int = 0,
    ) -> Gaussians:
        """Build from RGB colours ``[N,3]`` in [0,1] (higher SH bands zero)."""
        n = means.shape[0]
        if quats is None:
            quats = torch.zeros(n, 4, dtype=means.dtype, device=means.device)
            quats[:, 0] = 1.0
        sh = torch.zeros(n, (sh_degree + 1) ** 2, 3, dtype=means.dtype, device=means.device)
        sh[:, 0] = rgb_to_sh(colors)
        return cls(means, quats, scales, opacities, sh)

    @classmethod
    def empty(cls, sh_degree: int = 0, device: torch.device | str = "cpu") -> Gaussians:
        z = lambda *s: torch.zeros(*s, device=device)
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, (sh_degree + 1) ** 2, 3))

    # --- properties ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_k(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def colors(self) -> torch.Tensor:
        """View-independent colour ``[N,3]`` from the DC term, clamped to [0,1]."""
        return sh_to_rgb(self.sh[:, 0]).clamp(0.0, 1.0)

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # --- checks -------------------------------------------------------------------------------
    def validate(self, unit_tol: float = 1e-3) -> Gaussians:
        """Check shapes, finiteness, ranges and unit quaternions; raise :class:`InputError` naming the field."""
        n = self.means.shape[0] if self.means.ndim == 2 else -1
        expect = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        if self.means.ndim != 2 or self.means.shape[1] != 3:
            raise InputError(f"Gaussians.means must be [N,3], got {list(self.means.shape)}")
        for name, shape in expect.items():
            t = getattr(self, name)
            if tuple(t.shape) != shape:
                raise InputError(f"Gaussians.{name} must be {list(shape)}, got {list(t.shape)}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise InputError(f"Gaussians.sh must be [N,K,3] with N={n}, got {list(self.sh.shape)}")
        sh_degree_from_k(self.sh.shape[1])
        if self.means.device.type == "meta":
            return self
        for name, t in self._tensors().items():
            bad = ~torch.isfinite(t)
            if bad.any():
                raise InputError(f"Gaussians.{name} has {int(bad.sum())} non-finite values")
        if n and (self.scales <= 0).any():
            raise InputError(f"Gaussians.scales must be > 0 ({int((self.scales <= 0).sum())} are not)")
        if n and ((self.opacities < 0) | (self.opacities > 1)).any():
            raise InputError("Gaussians.opacities must lie in [0,1] (activated, not logits)")
        if n:
            err = (self.quats.norm(dim=-1) - 1).abs().max().item()
            if err > unit_tol:
                raise InputError(f"Gaussians.quats must be unit quaternions (max |‖q‖-1| = {err:.3g})")
        return self

    # --- transforms ---------------------------------------------------------------------------
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Gaussians:
        return Gaussians(**{k: v.to(device=device, dtype=dtype) for k, v in self._tensors().items()})

    def detach(self) -> Gaussians:
        return Gaussians(**{k: v.detach() for k, v in self._tensors().items()})

    def __getitem__(self, index: torch.Tensor | slice) -> Gaussians:
        """Select Gaussians by boolean mask, index tensor or slice."""
        return Gaussians(**{k: v[index] for k, v in self._tensors().items()})

    def prune(self, min_opacity: float = 1.0 / 255.0) -> Gaussians:
        """Drop Gaussians with opacity below ``min_opacity``."""
        return self[self.opacities >= min_opacity]

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Truncate or zero-pad the SH bands to ``degree``."""
        k = (degree + 1) ** 2
        sh = self.sh[:, :k]
        if sh.shape[1] < k:
            pad = sh.new_zeros(sh.shape[0], k - sh.shape[1], 3)
            sh = torch.cat([sh, pad], dim=1)
        return Gaussians(self.means, self.quats, self.scales, self.opacities, sh)

    @staticmethod
    def cat(items: Sequence[Gaussians]) -> Gaussians:
        """Concatenate scenes; SH bands are padded to the highest degree among them."""
        if not items:
            raise InputError("Gaussians.cat needs at least one scene")
        degree = max(g.sh_degree for g in items)
        items = [g.with_sh_degree(degree) for g in items]
        return Gaussians(**{f.name: torch.cat([getattr(g, f.name) for g in items]) for f in fields(Gaussians)})

    def colors_from(self, campos: torch.Tensor) -> torch.Tensor:
        """View-dependent colour ``[N,3]`` in [0,1] seen from camera centre ``campos [3]``."""
        return (eval_sh(self.sh, self.means - campos) + 0.5).clamp_min(0.0)

    def __repr__(self) -> str:
        return f"Gaussians(n={len(self)}, sh_degree={self.sh_degree}, device={self.device}, dtype={self.dtype})"
