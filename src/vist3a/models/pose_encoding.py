"""VGGT's "absT_quaR_FoV" camera encoding and its conversions.

An encoding is ``[..., 9] = [t(3), q(4) xyzw (scalar last), fov_h, fov_w]`` for an **OpenCV
world-to-camera** extrinsic ``[R | t]`` (x right, y down, z forward). Intrinsics are pixel
``K = [[fx, 0, W/2], [0, fy, H/2], [0, 0, 1]]`` with ``f = (size/2) / (tan(fov/2) + focal_eps)``;
AnySplat uses ``focal_eps = 1e-3``, the released VGGT 0.

Our package stores cameras as camera-to-world (:class:`vist3a.gaussians.cameras.Cameras`) and
quaternions as wxyz; :func:`pose_encoding_to_cameras` converts at this edge.
"""

from __future__ import annotations

import torch

from vist3a.errors import InputError


def quat_xyzw_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``[..., 4]`` xyzw (any norm; normalised by ``2/|q|^2``) → rotation ``[..., 3, 3]``."""
    i, j, k, r = torch.unbind(q, -1)
    two_s = 2.0 / (q * q).sum(-1)
    m = torch.stack(
        (
            1 - two_s * (j * j + k * k),
            two_s * (i * j - k * r),
            two_s * (i * k + j * r),
            two_s * (i * j + k * r),
            1 - two_s * (i * i + k * k),
            two_s * (j * k - i * r),
            two_s * (i * k - j * r),
            two_s * (j * k + i * r),
            1 - two_s * (i * i + j * j),
        ),
        -1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat_xyzw(m: torch.Tensor) -> torch.Tensor:
    """Rotation ``[..., 3, 3]`` → unit quaternion ``[..., 4]`` xyzw with w >= 0."""
    from vist3a.gaussians.cameras import matrix_to_quat  # wxyz

    q = matrix_to_quat(m)
    q = torch.where(q[..., :1] < 0, -q, q)
    return torch.cat((q[..., 1:], q[..., :1]), dim=-1)


def xyzw_to_wxyz(q: torch.Tensor) -> torch.Tensor:
    """Scalar-last → scalar-first quaternion ``[..., 4]``."""
    return torch.cat((q[..., 3:], q[..., :3]), dim=-1)


def wxyz_to_xyzw(q: torch.Tensor) -> torch.Tensor:
    """Scalar-first → scalar-last quaternion ``[..., 4]``."""
    return torch.cat((q[..., 1:], q[..., :1]), dim=-1)


def pose_encoding_to_extri_intri(
    pose_encoding: torch.Tensor, image_size_hw: tuple[int, int], focal_eps: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., 9]`` encoding → (world-to-camera ``[..., 3, 4]``, pixel intrinsics ``[..., 3, 3]``)."""
    if pose_encoding.shape[-1] != 9:
        raise InputError(f"pose encoding must end in 9 values, got {list(pose_encoding.shape)}")
    h, w = image_size_hw
    t = pose_encoding[..., :3]
    r = quat_xyzw_to_matrix(pose_encoding[..., 3:7])
    extrinsics = torch.cat((r, t[..., None]), dim=-1)
    fy = (h / 2.0) / (torch.tan(pose_encoding[..., 7] / 2.0) + focal_eps)
    fx = (w / 2.0) / (torch.tan(pose_encoding[..., 8] / 2.0) + focal_eps)
    k = torch.zeros(pose_encoding.shape[:-1] + (3, 3), dtype=pose_encoding.dtype, device=pose_encoding.device)
    k[..., 0, 0] = fx
    k[..., 1, 1] = fy
    k[..., 0, 2] = w / 2
    k[..., 1, 2] = h / 2
    k[..., 2, 2] = 1.0
    return extrinsics, k


def extri_intri_to_pose_encoding(
    extrinsics: torch.Tensor,
    intrinsics: torch.Tensor,
    image_size_hw: tuple[int, int],
    focal_eps: float = 1e-3,
) -> torch.Tensor:
    """Inverse of :func:`pose_encoding_to_extri_intri` (w2c ``[...,3,4]`` or ``[...,4,4]``, pixel K)."""
    h, w = image_size_hw
    t = extrinsics[..., :3, 3]
    q = matrix_to_quat_xyzw(extrinsics[..., :3, :3])
    fov_h = 2 * torch.atan((h / 2.0) / intrinsics[..., 1, 1] - focal_eps)
    fov_w = 2 * torch.atan((w / 2.0) / intrinsics[..., 0, 0] - focal_eps)
    return torch.cat((t, q, fov_h[..., None], fov_w[..., None]), dim=-1)


def extrinsics_to_c2w(w2c: torch.Tensor) -> torch.Tensor:
    """World-to-camera ``[..., 3, 4]`` → camera-to-world ``[..., 4, 4]`` (matrix inverse, as AnySplat)."""
    pad = torch.zeros(w2c.shape[:-2] + (1, 4), dtype=w2c.dtype, device=w2c.device)
    pad[..., 0, 3] = 1.0
    return torch.linalg.inv(torch.cat((w2c[..., :3, :4], pad), dim=-2))


def normalize_intrinsics(k: torch.Tensor, image_size_hw: tuple[int, int]) -> torch.Tensor:
    """Pixel K ``[..., 3, 3]`` → K with row 0 divided by W and row 1 by H."""
    h, w = image_size_hw
    out = k.clone()
    out[..., 0, :] = out[..., 0, :] / w
    out[..., 1, :] = out[..., 1, :] / h
    return out


def pose_encoding_to_cameras(
    pose_encoding: torch.Tensor, image_size_hw: tuple[int, int], focal_eps: float = 1e-3
):
    """``[V, 9]`` encoding of one scene → :class:`~vist3a.gaussians.cameras.Cameras` (c2w OpenCV, pixel K)."""
    from vist3a.gaussians.cameras import Cameras

    w2c, k = pose_encoding_to_extri_intri(pose_encoding.float(), image_size_hw, focal_eps)
    return Cameras(extrinsics_to_c2w(w2c), k, width=image_size_hw[1], height=image_size_hw[0])
