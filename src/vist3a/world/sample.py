"""One world sample: a scene, its camera trajectory and its captions, as a pure function of (seed, index)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.world.captions import StructuredCaption, describe, phrasings
from vist3a.world.raycast import WorldRender, render_world
from vist3a.world.scene import Scene, sample_scene
from vist3a.world.trajectory import Trajectory, sample_trajectory

_MASK63 = (1 << 63) - 1


def scene_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for scene ``index`` of a set drawn with ``seed`` (SplitMix64 finaliser)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(index) + 0x632BE59BD9B4E019) & ((1 << 64) - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return (z ^ (z >> 31)) & _MASK63


@dataclass
class WorldSample:
    """A scene with its cameras and captions.

    Attributes:
        index, seed: where it came from (``scene_seed(seed, index)`` seeds its generator).
        scene: the scene.
        trajectory: cameras (T views) and the motion phrase.
        caption: the structured caption (relations from the first camera).
        texts: phrasings ``{style: text}``.
    """

    index: int
    seed: int
    scene: Scene
    trajectory: Trajectory
    caption: StructuredCaption
    texts: dict[str, str]

    @property
    def cameras(self) -> Cameras:
        return self.trajectory.cameras

    def render(self, device: torch.device | str | None = None, shadows: bool = True) -> WorldRender:
        """Ray-cast every view on ``device`` (CPU by default)."""
        return render_world(self.scene, self.cameras.to(device), shadows=shadows)


def _first_view_ok(scene: Scene, cams: Cameras, margin: float = 2.0, min_radius: float = 0.045) -> bool:
    """Every object's bounding sphere lies inside the first image, in front of the camera, is not
    tiny (projected radius ≥ ``min_radius`` of the width), and no two objects' projected discs
    overlap much (so each object is mostly visible in view 0)."""
    w2c = cams.w2c[0].double()
    k = cams.K[0].double()
    uv, rho = [], []
    for o in scene.objects:
        p = w2c[:3, :3] @ torch.tensor(o.centre, dtype=torch.float64) + w2c[:3, 3]
        if p[2] <= o.bounding_radius + 0.1:
            return False
        u = k[0, 0] * p[0] / p[2] + k[0, 2]
        v = k[1, 1] * p[1] / p[2] + k[1, 2]
        r = float(k[0, 0]) * o.bounding_radius / float(p[2])
        if r < min_radius * cams.width:
            return False
        if u - r < margin or v - r < margin or u + r > cams.width - margin or v + r > cams.height - margin:
            return False
        uv.append((float(u), float(v)))
        rho.append(r)
    for i in range(len(uv)):
        for j in range(i + 1, len(uv)):
            d = ((uv[i][0] - uv[j][0]) ** 2 + (uv[i][1] - uv[j][1]) ** 2) ** 0.5
            if d < 0.8 * (rho[i] + rho[j]):
                return False
    return True


def make_sample(
    index: int,
    seed: int = 0,
    frames: int = 13,
    size: int | tuple[int, int] = 256,
    max_objects: int = 4,
    motion: str | None = None,
) -> WorldSample:
    """The world sample ``index`` of the set drawn with ``seed`` (deterministic; no global RNG).

    Args:
        index: scene index ≥ 0.
        seed: the set's seed.
        frames: views per scene.
        size: image size, an int (square) or ``(width, height)``.
        max_objects: at most this many objects (1–8).
        motion: force a camera motion (see ``vist3a.world.trajectory.MOTIONS``).
    """
    if index < 0:
        raise InputError(f"scene index must be >= 0, got {index}")
    width, height = (size, size) if isinstance(size, int) else size
    s = scene_seed(seed, index)
    gen = torch.Generator().manual_seed(s)
    for _ in range(50):
        scene = sample_scene(gen, max_objects=max_objects, seed=s)
        for _ in range(10):
            traj = sample_trajectory(scene, gen, frames, width, height, motion=motion)
            if _first_view_ok(scene, traj.cameras):
                cap = describe(scene, traj.cameras[0], traj.phrase)
                return WorldSample(index, seed, scene, traj, cap, phrasings(cap))
    raise InputError(f"could not place scene {index} (seed {seed}) in view; try a larger image size")  # pragma: no cover
