"""Cameras: orbits, extrinsics, interpolation, quaternion conversions and cameras.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import (
    Cameras,
    intrinsics_from_fov,
    look_at,
    matrix_to_quat,
    quat_to_matrix,
    slerp,
)


def rodrigues(axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotation matrix by ``angle`` about unit ``axis`` (independent of the quaternion code)."""
    a = torch.nn.functional.normalize(axis.double(), dim=0)
    k = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def test_orbit_cameras_look_at_the_target() -> None:
    target = (0.3, -0.2, 0.5)
    cams = Cameras.orbit(8, radius=2.5, elevation_deg=30, target=target, width=320, height=240)
    t = torch.tensor(target)
    assert len(cams) == 8 and (cams.width, cams.height) == (320, 240)
    dist = (cams.centers - t).norm(dim=-1)
    assert torch.allclose(dist, torch.full((8,), 2.5), atol=1e-5)
    fwd = cams.c2w[:, :3, 2]
    assert torch.allclose(fwd, torch.nn.functional.normalize(t - cams.centers, dim=-1), atol=1e-5)
    # The target projects to the principal point of every camera.
    p = cams.w2c[:, :3, :3] @ t + cams.w2c[:, :3, 3]
    uv = (cams.K @ p[..., None])[..., 0]
    assert torch.allclose(uv[:, :2] / uv[:, 2:], torch.tensor([160.0, 120.0]).expand(8, 2), atol=1e-3)
    # Elevation: the centre sits 30 degrees above the target's horizontal plane (z up).
    assert torch.allclose(cams.centers[:, 2] - t[2], torch.full((8,), 2.5 * math.sin(math.radians(30))), atol=1e-5)
    # Image "down" (camera +y) points against world up; rotations are proper.
    assert (cams.c2w[:, :3, 1] @ torch.tensor([0.0, 0.0, 1.0]) < 0).all()
    assert torch.allclose(torch.det(cams.c2w[:, :3, :3]), torch.ones(8), atol=1e-5)
    # A full circle excludes its endpoint: the cameras are evenly spread, none repeated.
    assert torch.cdist(cams.centers, cams.centers).add(torch.eye(8) * 9).min() > 1.0


def test_orbit_of_reconstruction_circles_where_the_scene_was_seen_from() -> None:
    """A frame-filling object 1 unit in front of three near-identical cameras (OpenCV axes: y down, z forward)
    over a floor of splats out to depth 20: the orbit is centred on the object (the opacity-weighted median),
    its radius is the cameras' distance to it (median of 1, 1.00005, 1.00005), not the 90 %-of-splats radius
    that the far floor pushes out, and it is 20 degrees above the plane normal to world up = -y."""
    from types import SimpleNamespace

    gen = torch.Generator().manual_seed(0)
    obj = torch.tensor([0.0, 0.0, 1.0]).expand(600, 3)
    floor = torch.stack([torch.rand(400, generator=gen) * 8 - 4, torch.full((400,), 0.5),
                         1 + torch.rand(400, generator=gen) * 19], dim=1)  # fmt: skip
    scene = SimpleNamespace(means=torch.cat([obj, floor]), opacities=torch.ones(1000))
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[1, 0, 3], c2w[2, 0, 3] = 0.01, -0.01
    seen = Cameras(c2w, intrinsics_from_fov(60.0, 96, 64).expand(3, 3, 3).clone(), 96, 64)
    ring = Cameras.orbit_of_reconstruction(scene, seen, 12)
    target = torch.tensor([0.0, 0.0, 1.0])
    assert len(ring) == 12 and (ring.width, ring.height) == (96, 64)
    torch.testing.assert_close((ring.centers - target).norm(dim=-1), torch.full((12,), 1.00005), atol=2e-3, rtol=0)
    height = -(ring.centers[:, 1] - target[1])  # along world up = -y
    torch.testing.assert_close(height, torch.full((12,), 1.00005 * math.sin(math.radians(20))), atol=2e-3, rtol=0)
    auto = Cameras.orbit_around(scene, 12, 96, 64, up=(0.0, -1.0, 0.0))
    assert float((auto.centers[0] - target).norm()) > 10  # what the floor does to the automatic radius
    # cameras on the target: the automatic radius
    on = Cameras(torch.eye(4).expand(1, 4, 4).clone(), intrinsics_from_fov(60.0, 96, 64)[None], 96, 64)
    on.c2w[0, :3, 3] = target
    torch.testing.assert_close(Cameras.orbit_of_reconstruction(scene, on, 12).centers, auto.centers, atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="no splats"):
        Cameras.orbit_of_reconstruction(SimpleNamespace(means=torch.zeros(0, 3), opacities=torch.zeros(0)), seen, 4)


def test_partial_arc_includes_endpoints() -> None:
    cams = Cameras.orbit(3, radius=1.0, elevation_deg=0, arc_deg=90)
    c = cams.centers
    angle = lambda a, b: math.degrees(math.acos(float((a @ b).clamp(-1, 1))))
    assert angle(c[0], c[2]) == pytest.approx(90, abs=1e-3)  # the arc's end is included
    assert angle(c[0], c[1]) == pytest.approx(45, abs=1e-3) and angle(c[1], c[2]) == pytest.approx(45, abs=1e-3)
    with pytest.raises(InputError):
        Cameras.orbit(0)


def test_w2c_is_the_inverse_of_c2w() -> None:
    cams = Cameras.orbit(5, radius=3.0, elevation_deg=-10, start_deg=17)
    eye = torch.eye(4).expand(5, 4, 4)
    assert torch.allclose(cams.c2w @ cams.w2c, eye, atol=1e-5)
    assert torch.allclose(cams.w2c @ cams.c2w, eye, atol=1e-5)


def test_look_at_axes() -> None:
    c2w = look_at(torch.tensor([0.0, -3.0, 0.0]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    # Looking along +y with z up: right = +x, down = -z, forward = +y.
    assert torch.allclose(c2w[:3, :3], torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]), atol=1e-6)


def test_intrinsics_from_fov() -> None:
    k = intrinsics_from_fov(90.0, 200, 100)
    assert torch.allclose(k, torch.tensor([[100.0, 0, 100], [0, 100, 50], [0, 0, 1]]), atol=1e-4)


def two_keyframes() -> Cameras:
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, :3, :3] = rodrigues(torch.tensor([0.0, 0.0, 1.0]), math.pi / 2).float()
    c2w[1, :3, 3] = torch.tensor([2.0, 4.0, -6.0])
    k = intrinsics_from_fov(60, 64, 48).repeat(2, 1, 1)
    k[1, 0, 0] *= 2
    return Cameras(c2w, k, 64, 48)


def test_interpolate_endpoints_and_midpoint_slerp() -> None:
    keys = two_keyframes()
    out = keys.interpolate(5)
    assert len(out) == 5
    assert torch.allclose(out.c2w[0], keys.c2w[0], atol=1e-6) and torch.allclose(out.c2w[-1], keys.c2w[1], atol=1e-6)
    assert torch.allclose(out.K[0], keys.K[0]) and torch.allclose(out.K[-1], keys.K[1])
    mid = out[2]
    assert torch.allclose(mid.c2w[0, :3, :3].double(), rodrigues(torch.tensor([0.0, 0, 1]), math.pi / 4), atol=1e-6)
    assert torch.allclose(mid.c2w[0, :3, 3], torch.tensor([1.0, 2.0, -3.0]))
    assert torch.allclose(mid.K[0, 0, 0], (keys.K[0, 0, 0] + keys.K[1, 0, 0]) / 2)
    # Quarter point: a quarter of the angle (constant angular speed).
    q = out[1].c2w[0, :3, :3].double()
    assert torch.allclose(q, rodrigues(torch.tensor([0.0, 0, 1]), math.pi / 8), atol=1e-6)
    single = keys[0].interpolate(3)
    assert len(single) == 3 and torch.allclose(single.c2w, keys.c2w[:1].expand(3, 4, 4))


def test_slerp_takes_the_short_arc() -> None:
    q0 = torch.tensor([1.0, 0, 0, 0])
    q1 = -torch.tensor([math.cos(0.3), 0, 0, math.sin(0.3)])  # same rotation as +q, opposite sign
    mid = slerp(q0, q1, torch.tensor(0.5))
    assert torch.allclose(mid.abs(), torch.tensor([math.cos(0.15), 0, 0, math.sin(0.15)]), atol=1e-6)


def test_quat_to_matrix_matches_rodrigues() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        axis = torch.randn(3, generator=g, dtype=torch.float64)
        angle = float(torch.rand(1, generator=g)) * 2 * math.pi
        a = torch.nn.functional.normalize(axis, dim=0)
        q = torch.cat([torch.tensor([math.cos(angle / 2)], dtype=torch.float64), math.sin(angle / 2) * a])
        assert torch.allclose(quat_to_matrix(q), rodrigues(axis, angle), atol=1e-10)


def test_matrix_quat_round_trip_including_180_degrees() -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.nn.functional.normalize(torch.randn(500, 4, generator=g, dtype=torch.float64), dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    back = matrix_to_quat(quat_to_matrix(q))
    assert torch.allclose(back, q, atol=1e-9)
    axes = [torch.tensor(a, dtype=torch.float64) for a in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -2, 3])]
    for axis in axes:
        r = rodrigues(axis, math.pi)
        qq = matrix_to_quat(r)
        assert abs(float(qq[0])) < 1e-9  # w = 0 for 180 degrees
        assert torch.allclose(qq[1:].abs(), torch.nn.functional.normalize(axis, dim=0).abs(), atol=1e-9)
        assert torch.allclose(quat_to_matrix(qq), r, atol=1e-9)
    assert torch.allclose(matrix_to_quat(torch.eye(3)), torch.tensor([1.0, 0, 0, 0]))


def test_cameras_validate_and_helpers() -> None:
    with pytest.raises(InputError, match=r"c2w must be \[N,4,4\]"):
        Cameras(torch.eye(4), torch.eye(3)[None], 8, 8)
    with pytest.raises(InputError, match="K must be"):
        Cameras(torch.eye(4)[None], torch.eye(3), 8, 8)
    with pytest.raises(InputError, match="positive image size"):
        Cameras(torch.eye(4)[None], torch.eye(3)[None], 0, 8)
    bad = torch.eye(4)[None].clone()
    bad[0, 0, 3] = float("nan")
    with pytest.raises(InputError, match="non-finite"):
        Cameras(bad, torch.eye(3)[None], 8, 8)
    cams = Cameras.orbit(3, width=100, height=50, fov_x_deg=90)
    half = cams.resized(50, 25)
    assert torch.allclose(half.K[:, 0, 0], cams.K[:, 0, 0] / 2) and torch.allclose(half.K[:, 1, 2], cams.K[:, 1, 2] / 2)
    assert torch.allclose(cams.K_normalized[:, 0, 2], torch.full((3,), 0.5))
    assert len(Cameras.cat([cams, cams[1]])) == 4
    with pytest.raises(InputError, match="one image size"):
        Cameras.cat([cams, half])
    assert cams.to(dtype=torch.float64).c2w.dtype == torch.float64


# --------------------------------------------------------------------------------------- cameras.json


def test_json_round_trip(tmp_path: Path) -> None:
    cams = two_keyframes().interpolate(4)
    path = tmp_path / "cameras.json"
    cams.save_json(path)
    frames = json.loads(path.read_text())
    assert isinstance(frames, list) and len(frames) == 4
    assert set(frames[0]) == {"c2w", "fx", "fy", "cx", "cy", "width", "height"}
    assert frames[1]["width"] == 64 and len(frames[1]["c2w"]) == 4
    back = Cameras.load_json(path)
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-6) and torch.allclose(back.K, cams.K, atol=1e-5)
    assert (back.width, back.height) == (64, 48)
    path.write_text(json.dumps({"frames": frames}))
    assert torch.allclose(Cameras.load_json(path).c2w, cams.c2w, atol=1e-6)


def frame(**overrides: object) -> dict[str, object]:
    f: dict[str, object] = {
        "c2w": torch.eye(4).tolist(),
        "fx": 50.0,
        "fy": 50.0,
        "cx": 32.0,
        "cy": 24.0,
        "width": 64,
        "height": 48,
    }
    f.update(overrides)
    return f


@pytest.mark.parametrize(
    ("frames", "pattern"),
    [
        ([frame(), {k: v for k, v in frame().items() if k != "fy"}], r"frame 1: missing field 'fy'"),
        ([frame(cx="32")], r"frame 0: field 'cx' must be a finite number"),
        ([frame(fx=True)], r"frame 0: field 'fx' must be a finite number"),
        ([frame(), frame(), {k: v for k, v in frame().items() if k != "c2w"}], r"frame 2: missing field 'c2w'"),
        ([frame(c2w=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])], r"frame 0: field 'c2w' must be a 4x4"),
        ([frame(c2w=[[1, 0, 0, "a"], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])], r"frame 0: field 'c2w' must hold"),
        ([frame(c2w=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])], r"frame 0: .*not a rigid"),
        ([frame(width=64.5)], r"frame 0: field 'width' must be a positive integer"),
        ([frame(), frame(height=96)], "share one image size"),
        ([frame(), "x"], r"frame 1: expected an object"),
        ([], "non-empty list"),
        ({"cams": []}, "'frames'"),
    ],
)
def test_json_errors_name_frame_and_field(tmp_path: Path, frames: object, pattern: str) -> None:
    path = tmp_path / "cameras.json"
    path.write_text(json.dumps(frames))
    with pytest.raises(InputError, match=pattern):
        Cameras.load_json(path)


def test_json_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cameras file not found"):
        Cameras.load_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(InputError, match="not valid JSON"):
        Cameras.load_json(tmp_path / "bad.json")
    with pytest.raises(InputError, match="output folder does not exist"):
        Cameras.orbit(2).save_json(tmp_path / "missing" / "cameras.json")
    assert [p.name for p in tmp_path.iterdir()] == ["bad.json"]
