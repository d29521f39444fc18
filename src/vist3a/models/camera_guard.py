"""Camera guard: a static camera instead of a predicted trajectory that no video can have.

Neighbouring frames of a video turn a little (a 13-frame world orbit: ~28° per frame; the official 13-frame
videos less). A camera head that meets an input it cannot read (a frame-filling object without texture)
can answer with views that jump 100°+ between neighbours; every frame's Gaussians are then unprojected
from a wrong place and the scene falls apart. Where the predicted trajectory has such a jump, the guard
puts every view at the first camera (the network's own frame: identity), which turns the scene into the
relief seen from one side that a static camera gives — the safe reading of an unreadable video.
Inference only (generation); training and reconstruction never use it.
"""

from __future__ import annotations

import logging

import torch

from vist3a.errors import InputError

log = logging.getLogger(__name__)


def geodesic_deg(r_a: torch.Tensor, r_b: torch.Tensor) -> torch.Tensor:
    """Angle in degrees ``[...]`` between rotations ``[..., 3, 3]`` (float64 inside, in [0, 180]).

    atan2(sin, cos) of the relative rotation: well conditioned near 0° (arccos is not).
    """
    rel = r_a.double() @ r_b.double().transpose(-1, -2)
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = rel - rel.transpose(-1, -2)
    sin = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1).norm(dim=-1) / 2
    return torch.rad2deg(torch.atan2(sin, cos))


def max_step_deg(w2c: torch.Tensor) -> torch.Tensor:
    """Largest rotation between neighbouring views, ``[B]`` degrees, of ``w2c`` ``[B, V, 3|4, 4]``."""
    if w2c.ndim != 4 or w2c.shape[-1] != 4 or w2c.shape[-2] not in (3, 4):
        raise InputError(f"cameras must be [B, V, 3|4, 4] world-to-camera, got {list(w2c.shape)}")
    if w2c.shape[1] < 2:
        return torch.zeros(w2c.shape[0], dtype=torch.float64, device=w2c.device)
    r = w2c[..., :3, :3]
    return geodesic_deg(r[:, 1:], r[:, :-1]).amax(dim=1)


def guard_cameras(w2c: torch.Tensor, limit_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes whose neighbouring views turn more than ``limit_deg`` get every view at their first camera.

    Args:
        w2c: ``[B, V, 3|4, 4]`` predicted world-to-camera matrices.
        limit_deg: the largest plausible turn between neighbouring frames (> 0).
    Returns:
        ``(w2c, guarded)``: the cameras (a new tensor where a scene was guarded) and ``[B]`` bool; a guarded
        batch is logged as a warning, once per call.
    """
    if not limit_deg > 0:
        raise InputError(f"the camera guard's limit must be > 0 degrees, got {limit_deg}")
    guarded = max_step_deg(w2c) > limit_deg
    if guarded.any():
        log.warning("the predicted cameras of %d scene(s) turn more than %g° between neighbouring frames (no video "
                    "moves so): every frame is placed from the first camera (camera guard)", int(guarded.sum()),
                    limit_deg)  # fmt: skip
        first = w2c[:, :1].expand_as(w2c)
        w2c = torch.where(guarded[:, None, None, None], first, w2c)
    return w2c, guarded
