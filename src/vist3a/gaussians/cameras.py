"""Pinhole cameras in OpenCV axes (x right, y down, z forward), camera-to-world extrinsics.

``c2w [N,4,4]`` maps camera coordinates to world coordinates; ``K [N,3,3]`` are *pixel* intrinsics
(fx, fy, cx, cy in pixels for an image of ``width`` × ``height``; pixel centres at +0.5).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vist3a.errors import InputError


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """OpenCV camera-to-world matrices looking from ``eye [...,3]`` at ``target [...,3]``.

    ``up [3]`` is the world's up direction; the camera's y axis (down in the image) points against it.
    Returns ``[...,4,4]``.
    """
    fwd = torch.nn.functional.normalize(target - eye, dim=-1)
    up = up.to(eye).expand_as(fwd)
    right = torch.nn.functional.normalize(torch.cross(fwd, up, dim=-1), dim=-1)
    down = torch.cross(fwd, right, dim=-1)
    c2w = torch.zeros(*eye.shape[:-1], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = right, down, fwd, eye
    c2w[..., 3, 3] = 1.0
    return c2w


def intrinsics_from_fov(fov_x_deg: float, width: int, height: int) -> torch.Tensor:
    """Pixel intrinsics ``[3,3]`` for a horizontal field of view and square pixels."""
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def matrix_to_quat(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[...,3,3]`` → unit quaternions wxyz ``[...,4]`` with w ≥ 0.

    Shepperd's method: of the four algebraically equal formulas, use the one whose divisor is largest,
    so 180° rotations (w = 0) come out right.
    """
    m = r
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    four_sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    s = 2 * torch.sqrt(four_sq.clamp_min(1e-12))  # [...,4] = 4 * |component|
    d21, d12 = m[..., 2, 1], m[..., 1, 2]
    d02, d20 = m[..., 0, 2], m[..., 2, 0]
    d10, d01 = m[..., 1, 0], m[..., 0, 1]
    cands = torch.stack(
        [
            torch.stack([s[..., 0] / 4, (d21 - d12) / s[..., 0], (d02 - d20) / s[..., 0], (d10 - d01) / s[..., 0]], -1),
            torch.stack([(d21 - d12) / s[..., 1], s[..., 1] / 4, (d01 + d10) / s[..., 1], (d02 + d20) / s[..., 1]], -1),
            torch.stack([(d02 - d20) / s[..., 2], (d01 + d10) / s[..., 2], s[..., 2] / 4, (d12 + d21) / s[..., 2]], -1),
            torch.stack([(d10 - d01) / s[..., 3], (d02 + d20) / s[..., 3], (d12 + d21) / s[..., 3], s[..., 3] / 4], -1),
        ],
        dim=-2,
    )  # [...,4 candidates,4]
    best = four_sq.argmax(-1)[..., None, None].expand(*four_sq.shape[:-1], 1, 4)
    q = torch.gather(cands, -2, best).squeeze(-2)
    q = torch.where(q[..., :1] < 0, -q, q)
    return torch.nn.functional.normalize(q, dim=-1)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions wxyz ``[...,4]`` (normalised here) → rotation matrices ``[...,3,3]``."""
    w, x, y, z = torch.nn.functional.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)  # fmt: skip


def slerp(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of unit quaternions ``[...,4]`` at ``t [...]`` (shortest arc)."""
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    t = t.unsqueeze(-1)
    theta = torch.acos(dot)
    sin = torch.sin(theta)
    near = sin < 1e-6
    safe = torch.where(near, torch.ones_like(sin), sin)
    a = torch.where(near, 1 - t, torch.sin((1 - t) * theta) / safe)
    b = torch.where(near, t, torch.sin(t * theta) / safe)
    return torch.nn.functional.normalize(a * q0 + b * q1, dim=-1)


UP_AXES: dict[str, tuple[float, float, float]] = {
    "+x": (1.0, 0.0, 0.0), "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0), "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0), "-z": (0.0, 0.0, -1.0),
}  # fmt: skip


def weighted_quantile(values: torch.Tensor, weights: torch.Tensor, q: float) -> float:
    """Quantile ``q`` of ``values [N]`` with ``weights [N]`` (the smallest value with cumulative weight ≥ q)."""
    order = torch.argsort(values)
    cw = torch.cumsum(weights[order], dim=0)
    i = int(torch.searchsorted(cw, q * cw[-1]).clamp(max=len(values) - 1))
    return float(values[order][i])


def splat_median(means: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[3]``: the per-axis weighted median of ``means [N,3]`` (weights ``[N]``), where an orbit looks."""
    return torch.tensor([weighted_quantile(means[:, k], weights, 0.5) for k in range(3)])


def auto_up(means: torch.Tensor, weights: torch.Tensor) -> tuple[float, float, float]:
    """+z, unless the splats ``means [N,3]`` are flat along y (thinnest principal axis ≈ y and < ¼ of the
    next): −y."""
    if means.shape[0] < 4:
        return UP_AXES["+z"]
    w = weights / weights.sum()
    c = means - (w[:, None] * means).sum(0)
    cov = (w[:, None, None] * c[:, :, None] * c[:, None, :]).sum(0).double()
    evals, evecs = torch.linalg.eigh(cov)
    thin = evecs[:, 0]
    if evals[0] < 0.25 * evals[1] and abs(float(thin[1])) > 0.9:
        return UP_AXES["-y"]
    return UP_AXES["+z"]


@dataclass
class Cameras:
    """N pinhole cameras sharing one image size.

    Attributes:
        c2w: ``[N,4,4]`` camera-to-world, OpenCV axes.
        K: ``[N,3,3]`` pixel intrinsics.
        width: image width in pixels.
        height: image height in pixels.
    """

    c2w: torch.Tensor
    K: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> Cameras:
        n = self.c2w.shape[0] if self.c2w.ndim == 3 else -1
        if self.c2w.ndim != 3 or tuple(self.c2w.shape[1:]) != (4, 4):
            raise InputError(f"Cameras.c2w must be [N,4,4], got {list(self.c2w.shape)}")
        if tuple(self.K.shape) != (n, 3, 3):
            raise InputError(f"Cameras.K must be [{n},3,3], got {list(self.K.shape)}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise InputError(f"Cameras need a positive image size, got {self.width}x{self.height}")
        self.width, self.height = int(self.width), int(self.height)
        if self.c2w.device.type != "meta":
            for name in ("c2w", "K"):
                if not torch.isfinite(getattr(self, name)).all():
                    raise InputError(f"Cameras.{name} has non-finite values")
        return self

    # --- properties ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    def __getitem__(self, index: int | slice | torch.Tensor) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Cameras(self.c2w[index], self.K[index], self.width, self.height)

    @property
    def w2c(self) -> torch.Tensor:
        """``[N,4,4]`` world-to-camera (rigid inverse)."""
        r, t = self.c2w[:, :3, :3], self.c2w[:, :3, 3:]
        out = torch.zeros_like(self.c2w)
        out[:, :3, :3] = r.transpose(1, 2)
        out[:, :3, 3:] = -r.transpose(1, 2) @ t
        out[:, 3, 3] = 1
        return out

    @property
    def centers(self) -> torch.Tensor:
        """``[N,3]`` camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    @property
    def K_normalized(self) -> torch.Tensor:
        """``[N,3,3]`` intrinsics divided by width (row 0) and height (row 1)."""
        k = self.K.clone()
        k[:, 0] /= self.width
        k[:, 1] /= self.height
        return k

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Cameras:
        return Cameras(self.c2w.to(device, dtype), self.K.to(device, dtype), self.width, self.height)

    def resized(self, width: int, height: int) -> Cameras:
        """The same cameras for another image size (intrinsics scaled per axis)."""
        k = self.K.clone()
        k[:, 0] *= width / self.width
        k[:, 1] *= height / self.height
        return Cameras(self.c2w.clone(), k, width, height)

    @staticmethod
    def cat(items: list[Cameras]) -> Cameras:
        if not items:
            raise InputError("Cameras.cat needs at least one camera set")
        w, h = items[0].width, items[0].height
        if any((c.width, c.height) != (w, h) for c in items):
            raise InputError("Cameras.cat needs one image size for all cameras")
        return Cameras(torch.cat([c.c2w for c in items]), torch.cat([c.K for c in items]), w, h)

    # --- trajectories -------------------------------------------------------------------------
    @classmethod
    def orbit(
        cls,
        n: int,
        radius: float = 3.0,
        elevation_deg: float = 20.0,
        arc_deg: float = 360.0,
        start_deg: float = 0.0,
        target: tuple[float, float, float] = (0.0, 0.0, 0.0),
        up: tuple[float, float, float] = (0.0, 0.0, 1.0),
        fov_x_deg: float = 60.0,
        width: int = 256,
        height: int = 256,
        endpoint: bool | None = None,
    ) -> Cameras:
        """``n`` cameras on a circle around ``target``, looking at it.

        The circle lies in the plane normal to ``up`` at ``elevation_deg`` above it. A full circle
        (``arc_deg = 360``) excludes its end point (it equals the start); a partial arc includes it
        unless ``endpoint`` says otherwise.
        """
        if n < 1:
            raise InputError(f"an orbit needs at least one camera, got n={n}")
        up_t = torch.nn.functional.normalize(torch.tensor(up, dtype=torch.float32), dim=0)
        tgt = torch.tensor(target, dtype=torch.float32)
        # An orthonormal basis (a, b) of the plane normal to `up`.
        helper = torch.tensor([1.0, 0.0, 0.0]) if abs(float(up_t[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
        a = torch.nn.functional.normalize(torch.cross(up_t, helper, dim=0), dim=0)
        b = torch.cross(up_t, a, dim=0)
        if endpoint is None:
            endpoint = abs(arc_deg) < 360.0
        steps = torch.linspace(0, 1, n) if (endpoint and n > 1) else torch.arange(n) / n
        az = torch.deg2rad(start_deg + steps * arc_deg)
        el = math.radians(elevation_deg)
        dirs = (
            math.cos(el) * (torch.cos(az)[:, None] * a + torch.sin(az)[:, None] * b)
            + math.sin(el) * up_t
        )
        eye = tgt + radius * dirs
        c2w = look_at(eye, tgt.expand_as(eye), up_t)
        K = intrinsics_from_fov(fov_x_deg, width, height).expand(n, 3, 3).clone()
        return cls(c2w, K, width, height)

    @classmethod
    def orbit_around(
        cls,
        gaussians: object,
        n: int,
        width: int = 512,
        height: int = 512,
        radius: float | None = None,
        elevation_deg: float = 20.0,
        fov_x_deg: float = 60.0,
        up: str | tuple[float, float, float] = "auto",
        target: tuple[float, float, float] | None = None,
    ) -> Cameras:
        """``n`` orbit cameras placed around a scene (any object with ``means [N,3]`` and ``opacities [N]``).

        The target, unless given, is the opacity-weighted per-axis median of the means. Without ``radius`` the orbit
        is as close as lets the sphere holding 90 % of the (opacity-weighted) splats fill the view.
        ``up`` is an axis name (``"+z"``, ``"-y"``, ...), a vector, or ``"auto"``: +z unless the splats
        are flat along y, the signature of a reconstruction in OpenCV camera axes, then −y.
        """
        means = gaussians.means.detach().float().cpu()  # type: ignore[attr-defined]
        weights = gaussians.opacities.detach().float().cpu().clamp_min(1e-6)  # type: ignore[attr-defined]
        if means.shape[0] == 0:
            raise InputError("the scene has no splats to place an orbit around")
        tgt = splat_median(means, weights) if target is None else torch.tensor(target, dtype=torch.float32)
        if isinstance(up, str):
            if up != "auto" and up not in UP_AXES:
                raise InputError(f"unknown up axis {up!r}; choose auto or one of {', '.join(UP_AXES)}")
            up_vec = auto_up(means, weights) if up == "auto" else UP_AXES[up]
        else:
            up_vec = tuple(float(v) for v in up)  # type: ignore[assignment]
        if radius is None:
            dist = (means - tgt).norm(dim=-1)
            extent = max(weighted_quantile(dist, weights, 0.9), 1e-3)
            fov_x = math.radians(fov_x_deg)
            fov_y = 2 * math.atan(math.tan(fov_x / 2) * height / width)
            radius = 1.1 * extent / math.sin(min(fov_x, fov_y) / 2)
        if radius <= 0:
            raise InputError(f"orbit radius must be positive, got {radius}")
        return cls.orbit(
            n, radius=radius, elevation_deg=elevation_deg, target=tuple(tgt.tolist()), up=up_vec,
            fov_x_deg=fov_x_deg, width=width, height=height,
        )  # fmt: skip

    @classmethod
    def orbit_of_reconstruction(cls, gaussians: object, cameras: Cameras, n: int) -> Cameras:
        """``n`` orbit cameras around a reconstruction, placed from the cameras it was seen from.

        The target is :meth:`orbit_around`'s (the opacity-weighted median of the means); world up is minus the
        cameras' mean y axis (OpenCV y is down), and the radius is the cameras' median distance to the target.
        :meth:`orbit_around`'s automatic radius holds 90 % of the splats, so a reconstruction's far background
        (a floor to the horizon, a sky) would push it far past where the scene was seen from. Width and height
        are the cameras'.
        """
        means = gaussians.means.detach().float().cpu()  # type: ignore[attr-defined]
        if means.shape[0] == 0:
            raise InputError("the scene has no splats to place an orbit around")
        target = splat_median(means, gaussians.opacities.detach().float().cpu().clamp_min(1e-6))  # type: ignore[attr-defined]
        y = cameras.c2w[:, :3, 1].float().cpu().mean(0)
        up: str | tuple[float, float, float] = "auto" if float(y.norm()) < 1e-6 else tuple((-y / y.norm()).tolist())
        dist = float((cameras.centers.float().cpu() - target).norm(dim=-1).median())
        radius = dist if dist > 1e-6 else None  # cameras on the target: the automatic radius
        return cls.orbit_around(
            gaussians, n, cameras.width, cameras.height, radius=radius, up=up, target=tuple(target.tolist())
        )  # fmt: skip

    def interpolate(self, n: int) -> Cameras:
        """``n`` cameras along the keyframes: slerp of rotations, linear translations and intrinsics.

        The first and last output cameras equal the first and last keyframes.
        """
        if n < 1:
            raise InputError(f"interpolate needs n >= 1, got {n}")
        m = len(self)
        if m == 1:
            return Cameras(self.c2w.expand(n, 4, 4).clone(), self.K.expand(n, 3, 3).clone(), self.width, self.height)
        s = torch.linspace(0, m - 1, n, dtype=self.c2w.dtype, device=self.c2w.device)
        i0 = s.floor().long().clamp(max=m - 2)
        t = s - i0
        q = matrix_to_quat(self.c2w[:, :3, :3])
        rot = quat_to_matrix(slerp(q[i0], q[i0 + 1], t))
        trans = torch.lerp(self.c2w[i0, :3, 3], self.c2w[i0 + 1, :3, 3], t[:, None])
        K = torch.lerp(self.K[i0], self.K[i0 + 1], t[:, None, None])
        c2w = torch.zeros(n, 4, 4, dtype=self.c2w.dtype, device=self.c2w.device)
        c2w[:, :3, :3], c2w[:, :3, 3], c2w[:, 3, 3] = rot, trans, 1.0
        return Cameras(c2w, K, self.width, self.height)

    # --- cameras.json -------------------------------------------------------------------------
    def to_json_frames(self) -> list[dict[str, object]]:
        """One dict per camera: ``c2w`` (4x4 nested list, OpenCV camera-to-world), ``fx fy cx cy``
        (pixels), ``width``, ``height``."""
        c2w, k = self.c2w.detach().double().cpu(), self.K.detach().double().cpu()
        return [
            {
                "c2w": c2w[i].tolist(),
                "fx": float(k[i, 0, 0]),
                "fy": float(k[i, 1, 1]),
                "cx": float(k[i, 0, 2]),
                "cy": float(k[i, 1, 2]),
                "width": self.width,
                "height": self.height,
            }
            for i in range(len(self))
        ]

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``cameras.json``: a JSON list of frames (see :meth:`to_json_frames`), atomically."""
        import json

        from vist3a.io_utils import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_json_frames(), indent=1) + "\n")

    @classmethod
    def from_json_frames(cls, frames: object, source: str = "cameras.json") -> Cameras:
        """Cameras from a list of frame dicts (or ``{"frames": [...]}``); :class:`InputError` names
        the frame index and field of anything missing or malformed."""
        if isinstance(frames, dict):
            if "frames" not in frames:
                raise InputError(f"{source}: expected a list of frames or an object with 'frames'")
            frames = frames["frames"]
        if not isinstance(frames, list) or not frames:
            raise InputError(f"{source}: expected a non-empty list of camera frames")

        def number(frame: dict, i: int, key: str) -> float:
            if key not in frame:
                raise InputError(f"{source}: frame {i}: missing field '{key}'")
            v = frame[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"{source}: frame {i}: field '{key}' must be a finite number, got {v!r}")
            return float(v)

        c2ws, ks, sizes = [], [], []
        for i, frame in enumerate(frames):
            if not isinstance(frame, dict):
                raise InputError(f"{source}: frame {i}: expected an object, got {type(frame).__name__}")
            if "c2w" not in frame:
                raise InputError(f"{source}: frame {i}: missing field 'c2w'")
            m = frame["c2w"]
            rows_ok = isinstance(m, list) and len(m) == 4 and all(isinstance(r, list) and len(r) == 4 for r in m)
            if not rows_ok:
                raise InputError(f"{source}: frame {i}: field 'c2w' must be a 4x4 nested list")
            for row in m:
                for v in row:
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                        raise InputError(f"{source}: frame {i}: field 'c2w' must hold finite numbers, got {v!r}")
            c2w = torch.tensor(m, dtype=torch.float64)
            r = c2w[:3, :3]
            if (r @ r.T - torch.eye(3, dtype=torch.float64)).abs().max() > 1e-3 or torch.det(r) < 0:
                raise InputError(f"{source}: frame {i}: field 'c2w' is not a rigid transform (rotation part)")
            if (c2w[3] - torch.tensor([0, 0, 0, 1], dtype=torch.float64)).abs().max() > 1e-6:
                raise InputError(f"{source}: frame {i}: field 'c2w' must have last row [0, 0, 0, 1]")
            fx, fy, cx, cy = (number(frame, i, key) for key in ("fx", "fy", "cx", "cy"))
            if fx <= 0 or fy <= 0:
                raise InputError(f"{source}: frame {i}: focal lengths fx, fy must be > 0")
            size = []
            for key in ("width", "height"):
                v = number(frame, i, key)
                if v != int(v) or v <= 0:
                    raise InputError(f"{source}: frame {i}: field '{key}' must be a positive integer, got {v!r}")
                size.append(int(v))
            c2ws.append(c2w)
            ks.append(torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64))
            sizes.append(tuple(size))
        if len(set(sizes)) != 1:
            raise InputError(f"{source}: all frames must share one image size, got {sorted(set(sizes))}")
        w, h = sizes[0]
        return cls(torch.stack(c2ws).float(), torch.stack(ks).float(), w, h)

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> Cameras:
        """Read ``cameras.json`` (see :meth:`from_json_frames`)."""
        import json

        p = Path(path).expanduser()
        if not p.is_file():
            raise InputError(f"cameras file not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{p}: not valid JSON ({exc})") from exc
        return cls.from_json_frames(data, str(p))
