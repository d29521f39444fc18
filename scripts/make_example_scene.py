"""Build the example scene shipped at ``src/vist3a/assets/example/scene.ply`` (deterministic).

A few thousand flat Gaussians on the surfaces of three simple shapes, world z up (the default ``up`` of
``Cameras.orbit``), centred on the origin:

- a ground disc (radius 1.5, z = 0) in concentric grey/white rings;
- a cube (side 0.6, centre (-0.5, -0.2, 0.3)) with red, green, blue, yellow, cyan and magenta faces;
- an orange sphere (radius 0.35, centre (0.55, 0.25, 0.35)), shaded lighter towards its top.

Usage: ``python scripts/make_example_scene.py [--out PATH]``; running it twice gives identical bytes.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from vist3a.gaussians.cameras import matrix_to_quat
from vist3a.gaussians.formats import save_scene
from vist3a.gaussians.gaussians import Gaussians

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "vist3a" / "assets" / "example" / "scene.ply"
THICKNESS = 0.004
OPACITY = 0.95


def _frames(normals: torch.Tensor) -> torch.Tensor:
    """Rotations ``[N,3,3]`` whose third column is the unit normal ``[N,3]``."""
    n = torch.nn.functional.normalize(normals, dim=-1)
    helper = torch.where(
        (n[:, 2:3].abs() < 0.9), torch.tensor([0.0, 0.0, 1.0], dtype=n.dtype), torch.tensor([1.0, 0.0, 0.0], dtype=n.dtype)
    )
    a = torch.nn.functional.normalize(torch.cross(helper, n, dim=-1), dim=-1)
    b = torch.cross(n, a, dim=-1)
    return torch.stack([a, b, n], dim=-1)


def _surfels(points: torch.Tensor, normals: torch.Tensor, colors: torch.Tensor, size: float) -> Gaussians:
    n = points.shape[0]
    quats = matrix_to_quat(_frames(normals))
    scales = torch.tensor([size, size, THICKNESS], dtype=points.dtype).expand(n, 3).clone()
    opacities = torch.full((n,), OPACITY, dtype=points.dtype)
    return Gaussians.from_colors(points, colors, scales, opacities, quats)


def ground_disc(radius: float = 1.5, rings: int = 24) -> Gaussians:
    pts, cols = [], []
    for i in range(rings):
        r = (i + 0.5) * radius / rings
        count = max(6, int(round(2 * math.pi * r / (radius / rings))))
        phase = 0.5 * (i % 2)
        for j in range(count):
            t = 2 * math.pi * (j + phase) / count
            pts.append((r * math.cos(t), r * math.sin(t), 0.0))
            cols.append((0.85, 0.85, 0.85) if (i // 3) % 2 == 0 else (0.45, 0.47, 0.5))
    p = torch.tensor(pts, dtype=torch.float64)
    normals = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(p)
    return _surfels(p, normals, torch.tensor(cols, dtype=torch.float64), 0.6 * radius / rings)


def cube(center: tuple[float, float, float] = (-0.5, -0.2, 0.3), side: float = 0.6, grid: int = 16) -> Gaussians:
    face_colors = {
        (1, 0, 0): (0.9, 0.1, 0.1),
        (-1, 0, 0): (0.1, 0.8, 0.2),
        (0, 1, 0): (0.1, 0.3, 0.95),
        (0, -1, 0): (0.95, 0.85, 0.1),
        (0, 0, 1): (0.1, 0.85, 0.9),
        (0, 0, -1): (0.85, 0.1, 0.85),
    }
    c = torch.tensor(center, dtype=torch.float64)
    u = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid - 0.5
    uu, vv = torch.meshgrid(u, u, indexing="ij")
    parts = []
    for normal, color in face_colors.items():
        nrm = torch.tensor(normal, dtype=torch.float64)
        frame = _frames(nrm[None])[0]
        a, b = frame[:, 0], frame[:, 1]
        p = c + side * (0.5 * nrm + uu.reshape(-1, 1) * a + vv.reshape(-1, 1) * b)
        cols = torch.tensor(color, dtype=torch.float64).expand_as(p)
        parts.append(_surfels(p, nrm.expand_as(p), cols, 0.6 * side / grid))
    return Gaussians.cat(parts)


def sphere(center: tuple[float, float, float] = (0.55, 0.25, 0.35), radius: float = 0.35, count: int = 1200) -> Gaussians:
    i = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / count
    r = torch.sqrt(1 - z * z)
    golden = math.pi * (3 - math.sqrt(5))
    t = golden * i
    normals = torch.stack([r * torch.cos(t), r * torch.sin(t), z], -1)
    p = torch.tensor(center, dtype=torch.float64) + radius * normals
    shade = (0.55 + 0.45 * (z + 1) / 2)[:, None]
    cols = shade * torch.tensor([1.0, 0.55, 0.1], dtype=torch.float64)
    size = 0.6 * radius * math.sqrt(4 * math.pi / count)
    return _surfels(p, normals, cols, size)


def build_example_scene() -> Gaussians:
    """The example scene: ground disc, cube and sphere (float32)."""
    return Gaussians.cat([ground_disc(), cube(), sphere()]).to(dtype=torch.float32).validate()


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = save_scene(build_example_scene(), args.out)
    print(report.summary())
    return args.out


if __name__ == "__main__":
    main()
