"""Gaussians and cameras as the arrays viser draws (pure numpy/torch; viser is not imported here).

Conventions: vist3a scenes live in OpenCV axes (x right, y down, z forward); viser's camera frusta
and client cameras use the same OpenCV camera frame (looking along +z, y down), so a camera-to-world
matrix maps to viser's ``(wxyz, position)`` unchanged. Only the world *up* direction needs choosing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras, auto_up, matrix_to_quat, quat_to_matrix
from vist3a.gaussians.gaussians import Gaussians

#: More splats than this are subsampled (largest opacity × volume first) for the browser.
MAX_BROWSER_SPLATS = 2_000_000


@dataclass(frozen=True)
class SplatArrays:
    """What ``viser.SceneApi.add_gaussian_splats`` takes.

    Attributes:
        centers: ``[N,3]`` float32. covariances: ``[N,3,3]`` float32 (R·diag(s²)·Rᵀ).
        rgbs: ``[N,3]`` float32 in [0,1] (the SH DC colour). opacities: ``[N,1]`` float32 in [0,1].
    """

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray

    def __len__(self) -> int:
        return int(self.centers.shape[0])


def splat_arrays(gaussians: Gaussians, max_splats: int = MAX_BROWSER_SPLATS) -> SplatArrays:
    """Activated Gaussians → viser arrays; non-finite splats are dropped, and beyond ``max_splats``
    the most visible ones (opacity × volume) are kept."""
    if not isinstance(gaussians, Gaussians):
        raise InputError(f"expected Gaussians, got {type(gaussians).__name__}")
    g = gaussians.detach().to("cpu", torch.float32)
    ok = torch.isfinite(g.means).all(-1) & torch.isfinite(g.scales).all(-1) & torch.isfinite(g.quats).all(-1)
    ok &= torch.isfinite(g.opacities) & torch.isfinite(g.sh[:, 0]).all(-1) & (g.quats.norm(dim=-1) > 1e-12)
    g = g[ok]
    if len(g) == 0:
        raise InputError("the scene has no drawable splats (all are non-finite or it is empty)")
    if len(g) > max_splats:
        score = g.opacities * g.scales.prod(-1)
        g = g[torch.topk(score, max_splats).indices]
    rot = quat_to_matrix(g.quats)  # [N,3,3]
    cov = rot @ torch.diag_embed(g.scales.square()) @ rot.transpose(-1, -2)
    return SplatArrays(
        centers=g.means.numpy().astype(np.float32),
        covariances=cov.numpy().astype(np.float32),
        rgbs=g.colors.numpy().astype(np.float32),
        opacities=g.opacities.clamp(0, 1)[:, None].numpy().astype(np.float32),
    )


@dataclass(frozen=True)
class CameraPose:
    """One camera for viser: ``wxyz`` and ``position`` of the OpenCV camera frame, vertical ``fov``
    (radians) and ``aspect`` (width / height)."""

    wxyz: tuple[float, float, float, float]
    position: tuple[float, float, float]
    fov: float
    aspect: float


def camera_poses(cameras: Cameras) -> list[CameraPose]:
    """``Cameras`` (c2w OpenCV, pixel K) → one :class:`CameraPose` per camera."""
    c = cameras.to("cpu", torch.float32)
    q = matrix_to_quat(c.c2w[:, :3, :3])
    t = c.c2w[:, :3, 3]
    out = []
    for i in range(len(c)):
        fy = float(c.K[i, 1, 1])
        fov = 2.0 * math.atan(c.height / (2.0 * fy)) if fy > 0 else math.radians(60.0)
        out.append(
            CameraPose(
                wxyz=tuple(float(v) for v in q[i]),  # type: ignore[arg-type]
                position=tuple(float(v) for v in t[i]),  # type: ignore[arg-type]
                fov=fov,
                aspect=c.width / c.height,
            )
        )
    return out


def world_up(cameras: Cameras | None) -> tuple[float, float, float]:
    """World up: minus the mean camera y axis (OpenCV y is down), or −y without cameras."""
    if cameras is None or len(cameras) == 0:
        return (0.0, -1.0, 0.0)
    y = cameras.c2w[:, :3, 1].detach().float().cpu().mean(0)
    n = float(y.norm())
    if not math.isfinite(n) or n < 1e-6:
        return (0.0, -1.0, 0.0)
    y = -y / n
    return (float(y[0]), float(y[1]), float(y[2]))


def fly_through(cameras: Cameras, frames_per_view: int = 15) -> Cameras:
    """The trajectory interpolated with ``frames_per_view`` steps between consecutive cameras
    (the keyframes included); a single camera stays one frame."""
    if frames_per_view < 1:
        raise InputError(f"frames_per_view must be >= 1, got {frames_per_view}")
    if len(cameras) < 2:
        return cameras
    return cameras.interpolate((len(cameras) - 1) * frames_per_view + 1)


def frustum_scale(cameras: Cameras, splats: SplatArrays | None = None) -> float:
    """A frustum size that reads well: a tenth of the median distance between consecutive cameras'
    extent, else 5 % of the scene's spread."""
    centers = cameras.c2w[:, :3, 3].detach().float().cpu()
    if len(centers) >= 2:
        extent = float((centers - centers.mean(0)).norm(dim=-1).max())
        if math.isfinite(extent) and extent > 1e-6:
            return max(0.15 * extent, 1e-3)
    if splats is not None and len(splats):
        spread = float(np.median(np.linalg.norm(splats.centers - np.median(splats.centers, 0), axis=-1)))
        if math.isfinite(spread) and spread > 0:
            return 0.1 * spread
    return 0.1


def scene_up(gaussians: Gaussians) -> tuple[float, float, float]:
    """World up guessed from the splats alone (+z, or −y for a reconstruction in OpenCV axes),
    the same guess :meth:`Cameras.orbit_around` makes."""
    g = gaussians.detach().to("cpu", torch.float32)
    return auto_up(g.means, g.opacities.clamp_min(1e-6))


def orbit_for(gaussians: Gaussians, n: int = 240) -> Cameras:
    """A fly-through for a scene that came without cameras: an orbit of ``n`` frames around it."""
    return Cameras.orbit_around(gaussians, n, 512, 512, up=scene_up(gaussians))
