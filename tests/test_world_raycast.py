"""Ray casting against answers from geometry."""

from __future__ import annotations

import math

import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras, look_at
from vist3a.world.palette import COLOUR_BY_NAME, SIZES
from vist3a.world.raycast import FLOOR_ID, SKY_ID, render_world
from vist3a.world.scene import CONE_RADIUS, CYLINDER_RADIUS, Scene, SceneObject


def _camera(eye, target, size=65, f=80.0, up=(0.0, 0.0, 1.0)) -> Cameras:
    c2w = look_at(torch.tensor([eye], dtype=torch.float64), torch.tensor([target], dtype=torch.float64), torch.tensor(up, dtype=torch.float64))
    k = torch.tensor([[[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]]], dtype=torch.float64)
    return Cameras(c2w, k, size, size)


def _top_camera(height: float, size=65, f=80.0) -> Cameras:
    # Straight down: look_at needs an up vector not parallel to the view direction.
    return _camera((0.0, 0.0, height), (0.0, 0.0, 0.0), size, f, up=(0.0, 1.0, 0.0))


def test_sphere_silhouette_radius_and_centre_depth():
    obj = SceneObject("sphere", "blue", "large", 0.0, 0.0)
    r = SIZES["large"] / 2
    dist = 3.0
    # Look horizontally at the sphere's centre from `dist` away; the odd image puts a pixel centre on the axis.
    cam = _camera((dist, 0.0, r), (0.0, 0.0, r), size=101, f=120.0)
    out = render_world(Scene((obj,)), cam)
    mask = out.ids[0] == 1
    expected = 120.0 * r / math.sqrt(dist**2 - r**2)  # tangent cone: f·tan(asin(r/d))
    radius_px = math.sqrt(float(mask.sum()) / math.pi)
    assert abs(radius_px - expected) < 0.35
    assert float(out.depth[0, 50, 50]) == pytest.approx(dist - r, abs=1e-6)
    # The row through the centre is exactly 2·expected wide (± one pixel of sampling).
    assert abs(float(mask[50].sum()) - 2 * expected) <= 1.0


def test_top_face_shading_under_known_light():
    light = (0.3, -0.2, 0.8)
    n = math.sqrt(sum(v * v for v in light))
    ambient = 0.33
    obj = SceneObject("cube", "green", "medium", 0.0, 0.0, yaw=0.3)
    scene = Scene((obj,), light_dir=light, ambient=ambient)
    out = render_world(scene, _top_camera(3.0))
    lz = light[2] / n
    expected = torch.tensor(COLOUR_BY_NAME["green"].rgb, dtype=torch.float64) * (ambient + (1 - ambient) * lz)
    assert int(out.ids[0, 32, 32]) == 1
    torch.testing.assert_close(out.rgb[0, :, 32, 32], expected, atol=1e-6, rtol=0)
    # Depth of the top face = camera height − cube side.
    assert float(out.depth[0, 32, 32]) == pytest.approx(3.0 - SIZES["medium"], abs=1e-9)


def test_rotated_cube_from_above_is_a_square_of_known_area():
    s, hc, f = SIZES["large"], 4.0, 80.0
    scene = Scene((SceneObject("cube", "red", "large", 0.0, 0.0, yaw=math.radians(30)),))
    out = render_world(scene, _top_camera(hc, size=101, f=f))
    side_px = f * s / (hc - s)  # the top face; the sides are edge-on from straight above
    assert abs(float((out.ids[0] == 1).sum()) - side_px**2) < 2.5 * side_px


@pytest.mark.parametrize("shape,radius", [("cylinder", CYLINDER_RADIUS), ("cone", CONE_RADIUS)])
def test_cylinder_and_cone_from_above(shape, radius):
    hc, f, size = 4.0, 80.0, 101
    h = SIZES["large"]
    out = render_world(Scene((SceneObject(shape, "orange", "large", 0.0, 0.0),)), _top_camera(hc, size, f))
    # Silhouette: the top disk (cylinder) or the base disk (cone).
    r_px = f * radius * h / ((hc - h) if shape == "cylinder" else hc)
    assert abs(math.sqrt(float((out.ids[0] == 1).sum()) / math.pi) - r_px) < 0.5
    # Centre depth: the top face or the apex.
    assert float(out.depth[0, 50, 50]) == pytest.approx(hc - h, abs=1e-5)


def test_cone_side_depth_matches_its_surface():
    # A horizontal ray at height z hits the cone side at distance radius(z) = k(H − z) from the axis.
    h = SIZES["large"]
    out = render_world(Scene((SceneObject("cone", "pink", "large", 0.0, 0.0),)), _camera((3.0, 0.0, 0.2), (0.0, 0.0, 0.2), 101))
    expected = 3.0 - CONE_RADIUS * (h - 0.2)
    assert float(out.depth[0, 50, 50]) == pytest.approx(expected, abs=1e-6)


def test_floor_and_sky():
    cam = _camera((0.0, -3.0, 1.0), (0.0, 0.0, 1.0), size=33)  # looking horizontally
    scene = Scene((SceneObject("sphere", "red", "small", 5.0, 5.0),))
    out = render_world(scene, cam)
    assert int(out.ids[0, 0, 16]) == SKY_ID and float(out.depth[0, 0, 16]) == 0.0
    assert int(out.ids[0, 32, 16]) == FLOOR_ID
    # Bottom row: ray through pixel centre v = 32.5 drops (32.5 − 16.5)/f per unit depth; floor at z = 0.
    assert float(out.depth[0, 32, 16]) == pytest.approx(1.0 / (16.0 / 80.0), rel=1e-5)


def test_shadow_on_the_floor_is_ambient_only():
    # Light at 45° from +x: the floor point P = (−r − 0.3, 0, 0) sees the light through the cylinder.
    scene = Scene((SceneObject("cylinder", "blue", "large", 0.0, 0.0),), light_dir=(1.0, 0.0, 1.0), ambient=0.4)
    cam = _camera((0.0, -3.0, 2.5), (0.0, 0.0, 0.0), size=64)
    p = torch.tensor([-CYLINDER_RADIUS * SIZES["large"] - 0.3, 0.0, 0.0, 1.0], dtype=torch.float64)
    pc = cam.w2c[0] @ p
    u, v = (cam.K[0] @ (pc[:3] / pc[2]))[:2].floor().long().tolist()
    lit = render_world(scene, cam, shadows=False)
    shadowed = render_world(scene, cam, shadows=True)
    assert int(shadowed.ids[0, v, u]) == FLOOR_ID
    floor = torch.tensor(scene.floor.rgb, dtype=torch.float64)
    torch.testing.assert_close(shadowed.rgb[0, :, v, u], floor * 0.4, atol=1e-6, rtol=0)
    torch.testing.assert_close(lit.rgb[0, :, v, u], floor * (0.4 + 0.6 / math.sqrt(2)), atol=1e-6, rtol=0)
    assert torch.equal(lit.ids, shadowed.ids)


def test_render_is_deterministic_and_batched_consistently():
    scene = Scene((SceneObject("cube", "red", "large", 0.3, 0.2, 0.4), SceneObject("cone", "cyan", "medium", -0.6, -0.3)))
    cams = Cameras.orbit(3, radius=3.0, elevation_deg=25, target=(0, 0, 0.3), width=48, height=48)
    a = render_world(scene, cams)
    b = render_world(scene, cams, chunk=999)
    torch.testing.assert_close(a.rgb, b.rgb)
    torch.testing.assert_close(a.depth, b.depth)
    assert torch.equal(a.ids, b.ids)
    one = render_world(scene, cams[1])
    torch.testing.assert_close(one.rgb[0], a.rgb[1])


def test_render_rejects_non_cameras():
    with pytest.raises(InputError, match="Cameras"):
        render_world(Scene((SceneObject("cube", "red", "large", 0, 0),)), torch.eye(4))


@pytest.mark.gpu
def test_cuda_render_matches_cpu():
    scene = Scene((SceneObject("cube", "red", "large", 0.3, 0.2, 0.4), SceneObject("sphere", "blue", "small", -0.6, -0.3)))
    cams = Cameras.orbit(4, radius=3.0, elevation_deg=25, target=(0, 0, 0.3), width=64, height=64)
    cpu = render_world(scene, cams)
    gpu = render_world(scene, cams.to("cuda"))
    assert (gpu.ids.cpu() != cpu.ids).float().mean() < 1e-3
    assert (gpu.rgb.cpu() - cpu.rgb).abs().mean() < 1e-3
