"""Camera trajectories through a scene, each with the caption phrase that describes its motion.

Motions: ``orbit`` (all the way round), ``arc`` (part of a circle, left or right), ``dolly`` (in or
out along the view direction), ``pan`` (turn in place), ``truck`` (slide sideways), ``rise``
(move up while looking at the objects). Directions are the camera's own: moving *right* means
along the first camera's image +x axis. All cameras are :class:`~vist3a.gaussians.cameras.Cameras`
(OpenCV axes, camera-to-world, pixel intrinsics); world z is up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras, intrinsics_from_fov, look_at
from vist3a.world.scene import Scene

MOTIONS: tuple[str, ...] = ("orbit", "arc", "dolly", "pan", "truck", "rise")
_WEIGHTS = torch.tensor([0.3, 0.25, 0.15, 0.1, 0.1, 0.1])
_UP = torch.tensor([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Trajectory:
    """Cameras of one clip and how to say their motion.

    Attributes:
        cameras: the T cameras.
        motion: one of ``MOTIONS``.
        phrase: the caption phrase, e.g. "the camera arcs to the left around the objects".
        params: the motion's numbers (radius, elevation_deg, fov_x_deg, azimuth_deg, amount...).
    """

    cameras: Cameras
    motion: str
    phrase: str
    params: dict


def _u(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _sphere_point(target: torch.Tensor, radius: float, az_deg: torch.Tensor, el_deg: float | torch.Tensor):
    az = torch.deg2rad(az_deg)
    el = torch.deg2rad(torch.as_tensor(el_deg, dtype=torch.float32))
    d = torch.stack([torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az), torch.sin(el).expand_as(az)], -1)
    return target + radius * d


def sample_trajectory(
    scene: Scene,
    gen: torch.Generator,
    frames: int,
    width: int,
    height: int,
    motion: str | None = None,
) -> Trajectory:
    """Draw a camera path of ``frames`` views whose first view frames every object of ``scene``.

    Args:
        scene: the scene (its centre and radius set the target and distance).
        gen: the generator all choices are drawn from.
        frames: number of cameras T ≥ 1.
        width, height: image size.
        motion: force one of ``MOTIONS`` (default: drawn from ``gen``).
    """
    if frames < 1:
        raise InputError(f"a trajectory needs at least one frame, got {frames}")
    if motion is None:
        motion = MOTIONS[int(torch.multinomial(_WEIGHTS, 1, generator=gen))]
    elif motion not in MOTIONS:
        raise InputError(f"unknown camera motion {motion!r}; choose one of {', '.join(MOTIONS)}")
    fov = _u(gen, 45.0, 60.0)
    el = _u(gen, 12.0, 38.0)
    az0 = _u(gen, 0.0, 360.0)
    half = math.radians(fov) / 2 * min(1.0, height / width)
    radius = scene.radius / math.sin(half) * _u(gen, 1.15, 1.5)
    target = torch.tensor(scene.centre, dtype=torch.float32)
    target[2] = min(float(target[2]), 0.3)
    s = torch.linspace(0.0, 1.0, frames) if frames > 1 else torch.zeros(1)
    sign = 1.0 if _u(gen, 0.0, 1.0) < 0.5 else -1.0
    side = "right" if sign > 0 else "left"
    params: dict = {"radius": radius, "elevation_deg": el, "fov_x_deg": fov, "azimuth_deg": az0}
    eye0 = _sphere_point(target, radius, torch.tensor([az0]), el)[0]
    if motion in ("orbit", "arc"):
        # Increasing azimuth moves the camera towards its own right (see module docstring).
        arc = 360.0 * (frames - 1) / max(frames, 1) if motion == "orbit" else _u(gen, 30.0, 120.0)
        params["arc_deg"] = sign * arc
        eyes = _sphere_point(target, radius, az0 + sign * arc * s, el)
        targets = target.expand_as(eyes)
        phrase = (
            f"the camera orbits {'clockwise' if sign < 0 else 'counterclockwise'} around the objects"
            if motion == "orbit"
            else f"the camera arcs to the {side} around the objects"
        )
    elif motion == "dolly":
        inward = sign > 0
        f = _u(gen, 0.3, 0.45)
        scale = (1 - f * s) if inward else (1 + 1.5 * f * s)
        params["scale_end"] = float(scale[-1])
        eyes = target + (eye0 - target) * scale[:, None]
        targets = target.expand_as(eyes)
        phrase = "the camera dollies in toward the objects" if inward else "the camera pulls back from the objects"
    elif motion == "pan":
        ang = _u(gen, 15.0, 30.0)
        params["pan_deg"] = sign * ang
        # Turning right is a clockwise turn seen from above (negative angle about +z).
        a = torch.deg2rad(-sign * ang * s)
        v = target - eye0
        rv = torch.stack(
            [torch.cos(a) * v[0] - torch.sin(a) * v[1], torch.sin(a) * v[0] + torch.cos(a) * v[1], v[2].expand_as(a)],
            -1,
        )
        eyes = eye0.expand(frames, 3).clone()
        targets = eye0 + rv
        phrase = f"the camera pans to the {side}"
    elif motion == "truck":
        right0 = look_at(eye0[None], target[None], _UP)[0, :3, 0]
        amt = _u(gen, 0.3, 0.6) * radius
        params["truck"] = sign * amt
        offs = (sign * amt * s)[:, None] * right0
        eyes = eye0 + offs
        targets = target + offs
        phrase = f"the camera slides to the {side}"
    else:  # rise
        rise = _u(gen, 15.0, 30.0)
        params["rise_deg"] = rise
        eyes = torch.stack([_sphere_point(target, radius, torch.tensor([az0]), el + rise * float(t))[0] for t in s])
        targets = target.expand_as(eyes)
        phrase = "the camera rises and looks down at the objects"
    c2w = look_at(eyes, targets, _UP)
    k = intrinsics_from_fov(fov, width, height).expand(frames, 3, 3).clone()
    return Trajectory(Cameras(c2w, k, width, height), motion, phrase, params)
