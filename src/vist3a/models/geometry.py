"""Camera geometry used by the reconstruction networks: SE(3) inversion and depth unprojection.

Conventions: OpenCV camera axes (x right, y down, z forward); ``w2c`` maps world → camera;
``K`` are *pixel* intrinsics. The unprojection follows AnySplat/VGGT exactly: the pixel grid is the
integer grid ``u = 0..W-1``, ``v = 0..H-1`` (no +0.5 pixel centre), even though the renderer samples
pixel centres at +0.5. Keeping this half-pixel mismatch is needed to reproduce the official outputs.
"""

from __future__ import annotations

import torch

from vist3a.errors import InputError


def se3_inverse(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of rigid transforms ``[..., 3, 4]`` or ``[..., 4, 4]`` → ``[..., 4, 4]``.

    ``[R | t]⁻¹ = [Rᵀ | -Rᵀ t]``; the bottom row of a 4×4 input is ignored (assumed ``0 0 0 1``).
    """
    if m.shape[-2:] not in ((3, 4), (4, 4)):
        raise InputError(f"rigid transforms must be [..., 3, 4] or [..., 4, 4], got {list(m.shape)}")
    r_t = m[..., :3, :3].transpose(-1, -2)
    t = m[..., :3, 3:]
    out = torch.zeros(*m.shape[:-2], 4, 4, dtype=m.dtype, device=m.device)
    out[..., :3, :3] = r_t
    out[..., :3, 3:] = -(r_t @ t)
    out[..., 3, 3] = 1.0
    return out


def unproject_depth(depth: torch.Tensor, w2c: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Depth maps to world points with AnySplat's pixel grid.

    Args:
        depth: ``[B, V, H, W, 1]`` or ``[B, V, H, W]`` z-depth along the camera axis.
        w2c: ``[B, V, 3, 4]`` or ``[B, V, 4, 4]`` OpenCV world-to-camera extrinsics.
        K: ``[B, V, 3, 3]`` pixel intrinsics (zero skew).
    Returns:
        ``[B, V, H, W, 3]`` world points. Pixel (v, u) is unprojected at the integer coordinates
        ``((u - cx)·d/fx, (v - cy)·d/fy, d)`` and mapped to the world by the closed-form inverse of ``w2c``.
    """
    if depth.ndim == 5:
        if depth.shape[-1] != 1:
            raise InputError(f"depth must be [B, V, H, W] or [B, V, H, W, 1], got {list(depth.shape)}")
        depth = depth[..., 0]
    if depth.ndim != 4:
        raise InputError(f"depth must be [B, V, H, W] or [B, V, H, W, 1], got {list(depth.shape)}")
    b, v, h, w = depth.shape
    if w2c.shape[:2] != (b, v) or w2c.shape[-2:] not in ((3, 4), (4, 4)):
        raise InputError(f"w2c must be [B={b}, V={v}, 3|4, 4], got {list(w2c.shape)}")
    if K.shape != (b, v, 3, 3):
        raise InputError(f"K must be [B={b}, V={v}, 3, 3], got {list(K.shape)}")
    n = b * v
    d = depth.reshape(n, h, w)
    k = K.reshape(n, 3, 3).to(d.dtype)
    fx, fy = k[:, 0, 0, None, None], k[:, 1, 1, None, None]
    cx, cy = k[:, 0, 2, None, None], k[:, 1, 2, None, None]
    u = torch.arange(w, device=d.device)[None, None, :]
    vv = torch.arange(h, device=d.device)[None, :, None]
    x_cam = (u - cx) * d / fx
    y_cam = (vv - cy) * d / fy
    cam = torch.stack((x_cam, y_cam, d, torch.ones_like(d)), dim=-1).reshape(n, h * w, 4)  # homogeneous
    c2w = se3_inverse(w2c.reshape(n, *w2c.shape[-2:]).to(d.dtype))
    world = torch.bmm(c2w, cam.transpose(1, 2)).transpose(1, 2)[..., :3]
    return world.reshape(b, v, h, w, 3)
