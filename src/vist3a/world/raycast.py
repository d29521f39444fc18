"""Exact ray casting of a :class:`~vist3a.world.scene.Scene` (independent of the 3DGS renderer).

Every primitive is intersected analytically (ray–box in the object's frame for rotated cubes,
ray–sphere, capped cylinder, capped cone, ground plane), vectorised over pixels and over the objects
of each shape. One ray per pixel through the pixel centre, no anti-aliasing: every pixel's colour
is exactly one surface's shaded albedo, and the id map says which.

Shading (white light, so hue and saturation of an albedo are kept):
``colour = albedo · (ambient · (0.75 + 0.25 n_z) + (1 − ambient) · max(0, n·L) · visible)``,
where ``visible`` is 0 in an object's cast shadow. The sky is a vertical gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.world.palette import COLOUR_BY_NAME, SKIES
from vist3a.world.scene import CONE_RADIUS, CYLINDER_RADIUS, Scene

_EPS = 1e-6
SKY_ID = -1
FLOOR_ID = 0


@dataclass
class WorldRender:
    """Ground truth for N views.

    Attributes:
        rgb: ``[N,3,H,W]`` float in [0,1].
        depth: ``[N,H,W]`` z-depth along the camera's optical axis (world units); 0 where the ray
            sees sky.
        ids: ``[N,H,W]`` int64: -1 sky, 0 floor, k+1 for ``scene.objects[k]``.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    ids: torch.Tensor

    def masks(self, n_objects: int) -> torch.Tensor:
        """``[N,n_objects,H,W]`` bool per-object visibility masks."""
        k = torch.arange(1, n_objects + 1, device=self.ids.device)
        return self.ids[:, None] == k[None, :, None, None]


def camera_rays(cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through pixel centres: origins ``[N,H,W,3]`` and directions ``[N,H,W,3]`` (world).

    Directions are *not* normalised: each is ``R · K⁻¹ (u, v, 1)``, so its camera-frame z is 1 and the
    ray parameter ``t`` of a hit equals the hit's z-depth.
    """
    h, w = cameras.height, cameras.width
    dev, dt = cameras.c2w.device, cameras.c2w.dtype
    v, u = torch.meshgrid(
        torch.arange(h, device=dev, dtype=dt) + 0.5, torch.arange(w, device=dev, dtype=dt) + 0.5, indexing="ij"
    )
    k = cameras.K
    x = (u[None] - k[:, 0, 2, None, None]) / k[:, 0, 0, None, None]  # [N,H,W]
    y = (v[None] - k[:, 1, 2, None, None]) / k[:, 1, 1, None, None]
    d_cam = torch.stack([x, y, torch.ones_like(x)], -1)  # [N,H,W,3]
    rot = cameras.c2w[:, :3, :3]
    d = torch.einsum("nij,nhwj->nhwi", rot, d_cam)
    o = cameras.c2w[:, None, None, :3, 3].expand_as(d)
    return o, d


def _safe(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)


def _to_local(o: torch.Tensor, d: torch.Tensor, pos: torch.Tensor, yaw: torch.Tensor):
    """Rays ``[P,3]`` into M object frames (base centre at origin, yaw undone): ``[M,P,3]`` each."""
    c, s = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]  # [M,1]
    rel = o[None] - pos[:, None]  # [M,P,3]

    def rot(v: torch.Tensor) -> torch.Tensor:  # R_z(-yaw) v
        vx, vy, vz = v.unbind(-1)
        return torch.stack([c * vx + s * vy, -s * vx + c * vy, vz.expand_as(c * vx)], -1)

    return rot(rel), rot(d[None].expand(pos.shape[0], -1, -1))


def _from_local(n: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Local normals ``[M,P,3]`` back to world (R_z(yaw))."""
    c, s = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    nx, ny, nz = n.unbind(-1)
    return torch.stack([c * nx - s * ny, s * nx + c * ny, nz], -1)


def _inf(like: torch.Tensor) -> torch.Tensor:
    return torch.full_like(like, math.inf)


def hit_boxes(o: torch.Tensor, d: torch.Tensor, side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray–cube in object frames: cubes of ``side [M]`` on the ground. ``o, d [M,P,3]`` → t, normal."""
    h = (side / 2)[:, None, None]  # [M,1,1]
    oc = o - torch.cat([torch.zeros_like(h), torch.zeros_like(h), h], -1)
    inv = 1.0 / _safe(d)
    t1, t2 = (-h - oc) * inv, (h - oc) * inv
    tnear, tfar = torch.minimum(t1, t2), torch.maximum(t1, t2)
    t_in, axis = tnear.max(-1)
    t_out = tfar.min(-1).values
    hit = (t_in <= t_out) & (t_in > _EPS)
    t = torch.where(hit, t_in, _inf(t_in))
    d_axis = torch.gather(d, -1, axis[..., None]).squeeze(-1)
    normal = torch.nn.functional.one_hot(axis, 3).to(d.dtype) * (-torch.sign(d_axis))[..., None]
    return t, normal


def hit_spheres(o: torch.Tensor, d: torch.Tensor, diameter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray–sphere: spheres of ``diameter [M]`` resting on the ground. ``o, d [M,P,3]`` → t, normal."""
    r = (diameter / 2)[:, None]
    oc = o.clone()
    oc[..., 2] -= r
    a = (d * d).sum(-1)
    b = 2 * (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - r * r
    disc = b * b - 4 * a * c
    t = (-b - torch.sqrt(disc.clamp_min(0))) / (2 * a)
    t = torch.where((disc >= 0) & (t > _EPS), t, _inf(t))
    p = oc + t.clamp(max=1e6)[..., None] * d
    return t, p / r[..., None]


def _cap(o, d, z: float | torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """t of the horizontal disk at height ``z [M,1]`` and ``radius [M,1]`` (inf on a miss)."""
    t = (z - o[..., 2]) / _safe(d[..., 2])
    p = o + t.clamp(-1e6, 1e6)[..., None] * d
    inside = p[..., 0] ** 2 + p[..., 1] ** 2 <= radius**2
    return torch.where(inside & (t > _EPS), t, _inf(t))


def hit_cylinders(o: torch.Tensor, d: torch.Tensor, height: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray–capped cylinder: vertical axis, base on the ground. ``o, d [M,P,3]`` → t, normal."""
    hh = height[:, None]
    r = CYLINDER_RADIUS * hh
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = 2 * (o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1])
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - r * r
    disc = b * b - 4 * a * c
    t_side = (-b - torch.sqrt(disc.clamp_min(0))) / (2 * _safe(a))
    z = o[..., 2] + t_side.clamp(-1e6, 1e6) * d[..., 2]
    ok = (disc >= 0) & (a > 1e-12) & (t_side > _EPS) & (z >= 0) & (z <= hh)
    t_side = torch.where(ok, t_side, _inf(t_side))
    t_top, t_bot = _cap(o, d, hh, r), _cap(o, d, torch.zeros_like(hh), r)
    t = torch.minimum(t_side, torch.minimum(t_top, t_bot))
    p = o + t.clamp(max=1e6)[..., None] * d
    n_side = torch.stack([p[..., 0], p[..., 1], torch.zeros_like(t)], -1) / r[..., None]
    n_cap = torch.zeros_like(p)
    n_cap[..., 2] = torch.where(t == t_top, 1.0, -1.0)
    normal = torch.where((t == t_side)[..., None], n_side, n_cap)
    return t, normal


def hit_cones(o: torch.Tensor, d: torch.Tensor, height: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray–capped cone: apex up at ``height``, base disk on the ground. ``o, d [M,P,3]`` → t, normal."""
    hh = height[:, None]
    k2 = CONE_RADIUS**2
    w = hh - o[..., 2]  # height below the apex at the ray origin
    a = d[..., 0] ** 2 + d[..., 1] ** 2 - k2 * d[..., 2] ** 2
    b = 2 * (o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1] + k2 * w * d[..., 2])
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - k2 * w * w
    disc = b * b - 4 * a * c
    q = torch.sqrt(disc.clamp_min(0))
    a_s = _safe(a)
    r1, r2 = (-b - q) / (2 * a_s), (-b + q) / (2 * a_s)
    lin = -c / _safe(b)  # a ≈ 0: the ray is parallel to a generator line
    near_zero = a.abs() < 1e-12
    lo = torch.where(near_zero, lin, torch.minimum(r1, r2))
    hi = torch.where(near_zero, _inf(lin), torch.maximum(r1, r2))

    def valid(t: torch.Tensor) -> torch.Tensor:
        z = o[..., 2] + t.clamp(-1e6, 1e6) * d[..., 2]
        return (disc >= 0) & (t > _EPS) & (z >= 0) & (z <= hh)

    t_side = torch.where(valid(lo), lo, torch.where(valid(hi), hi, _inf(lo)))
    t_base = _cap(o, d, torch.zeros_like(hh), CONE_RADIUS * hh)
    t = torch.minimum(t_side, t_base)
    p = o + t.clamp(max=1e6)[..., None] * d
    n_side = torch.nn.functional.normalize(
        torch.stack([p[..., 0], p[..., 1], k2 * (hh - p[..., 2])], -1), dim=-1
    )
    n_base = torch.zeros_like(p)
    n_base[..., 2] = -1.0
    normal = torch.where((t == t_side)[..., None], n_side, n_base)
    return t, normal


_HITTERS = {"cube": hit_boxes, "sphere": hit_spheres, "cylinder": hit_cylinders, "cone": hit_cones}


def intersect_objects(scene: Scene, o: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest object hit of rays ``o, d [P,3]``: t ``[P]`` (inf on a miss), index ``[P]`` (-1), normal ``[P,3]``.

    Each object is first tested against its bounding sphere (a few flops per ray); the exact
    primitive test then runs, vectorised, on the rays that can hit it.
    """
    p = o.shape[0]
    best_t = torch.full((p,), math.inf, device=o.device, dtype=o.dtype)
    best_i = torch.full((p,), -1, device=o.device, dtype=torch.long)
    best_n = torch.zeros(p, 3, device=o.device, dtype=o.dtype)
    a = (d * d).sum(-1)
    for i, ob in enumerate(scene.objects):
        oc = o - torch.tensor(ob.centre, device=o.device, dtype=o.dtype)
        b = (oc * d).sum(-1)
        c = (oc * oc).sum(-1) - ob.bounding_radius**2
        sel = ((b * b - a * c > 0) & ((b < 0) | (c < 0))).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        pos = torch.tensor([[ob.x, ob.y, 0.0]], device=o.device, dtype=o.dtype)
        yaw = torch.tensor([ob.yaw], device=o.device, dtype=o.dtype)
        size = torch.tensor([ob.height], device=o.device, dtype=o.dtype)
        ol, dl = _to_local(o[sel], d[sel], pos, yaw)
        t, n_local = _HITTERS[ob.shape](ol, dl, size)  # [1,S], [1,S,3]
        t, n_world = t[0], _from_local(n_local, yaw)[0]
        closer = t < best_t[sel]
        best_t[sel] = torch.where(closer, t, best_t[sel])
        best_i[sel] = torch.where(closer, torch.full_like(sel, i), best_i[sel])
        best_n[sel] = torch.where(closer[:, None], n_world, best_n[sel])
    return best_t, best_i, best_n


def render_world(scene: Scene, cameras: Cameras, shadows: bool = True, chunk: int = 1 << 18) -> WorldRender:
    """Render RGB, depth and object ids of ``scene`` for every camera (device of ``cameras``).

    Args:
        scene: the scene.
        cameras: N cameras (OpenCV axes, c2w, pixel K); float32 or float64.
        shadows: cast the objects' shadows (on the floor and on each other).
        chunk: rays per vectorised step (bounds memory: about 1 KB per ray and object).

    Returns:
        :class:`WorldRender` with ``rgb [N,3,H,W]``, ``depth [N,H,W]``, ``ids [N,H,W]``.
    """
    if not isinstance(cameras, Cameras):
        raise InputError(f"render_world needs vist3a Cameras, got {type(cameras).__name__}")
    o_all, d_all = camera_rays(cameras)
    n, h, w = len(cameras), cameras.height, cameras.width
    o_all, d_all = o_all.reshape(-1, 3), d_all.reshape(-1, 3)
    dev, dt = o_all.device, o_all.dtype
    light = torch.tensor(scene.light_dir, device=dev, dtype=dt)
    albedo = torch.tensor([COLOUR_BY_NAME[ob.colour].rgb for ob in scene.objects], device=dev, dtype=dt)
    floor_a = torch.tensor(scene.floor.rgb, device=dev, dtype=dt)
    floor_b = torch.tensor(scene.floor.rgb2 or scene.floor.rgb, device=dev, dtype=dt)
    zenith, horizon = (torch.tensor(c, device=dev, dtype=dt) for c in SKIES[scene.sky])
    rgb_out, depth_out, id_out = [], [], []
    for s in range(0, o_all.shape[0], chunk):
        o, d = o_all[s : s + chunk], d_all[s : s + chunk]
        t_obj, i_obj, n_obj = intersect_objects(scene, o, d)
        t_floor = torch.where((d[:, 2] < -1e-9) & (o[:, 2] > 0), -o[:, 2] / _safe(d[:, 2]), _inf(o[:, 2]))
        on_obj = t_obj < t_floor
        t = torch.minimum(t_obj, t_floor)
        sky = ~torch.isfinite(t)
        ids = torch.where(on_obj, i_obj + 1, torch.where(sky, SKY_ID, FLOOR_ID))
        normal = torch.where(on_obj[:, None], n_obj, torch.tensor([0.0, 0.0, 1.0], device=dev, dtype=dt))
        t_fin = torch.where(sky, torch.zeros_like(t), t)
        p = o + t_fin[:, None] * d
        # Albedo: the object's colour, or the floor's checker pattern.
        tile = (torch.floor(p[:, 0] / scene.checker_size) + torch.floor(p[:, 1] / scene.checker_size)).remainder(2)
        base = torch.where((tile > 0.5)[:, None], floor_b, floor_a)
        base = torch.where(on_obj[:, None], albedo[i_obj.clamp_min(0)], base)
        lam = (normal * light).sum(-1).clamp_min(0)
        if shadows:
            lit = ~sky & (lam > 0)
            vis = torch.ones_like(lam)
            if lit.any():
                ps = p[lit] + 1e-4 * normal[lit]
                t_sh, _, _ = intersect_objects(scene, ps, light.expand_as(ps))
                vis[lit] = torch.isinf(t_sh).to(dt)
            lam = lam * vis
        shade = scene.ambient * (0.75 + 0.25 * normal[:, 2]) + (1 - scene.ambient) * lam
        colour = base * shade[:, None]
        dn = torch.nn.functional.normalize(d, dim=-1)
        g = dn[:, 2].clamp(0, 1).sqrt()[:, None]
        colour = torch.where(sky[:, None], horizon + (zenith - horizon) * g, colour)
        rgb_out.append(colour.clamp(0, 1))
        depth_out.append(t_fin)
        id_out.append(ids)
    rgb = torch.cat(rgb_out).reshape(n, h, w, 3).permute(0, 3, 1, 2).contiguous()
    return WorldRender(rgb, torch.cat(depth_out).reshape(n, h, w), torch.cat(id_out).reshape(n, h, w))
