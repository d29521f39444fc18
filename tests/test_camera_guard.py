"""The camera guard (vist3a.models.camera_guard): implausible predicted trajectories become a static camera."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from vist3a.errors import InputError
from vist3a.models.camera_guard import geodesic_deg, guard_cameras, max_step_deg


def yaw(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


def trajectory(yaws: list[float]) -> torch.Tensor:
    """``[V, 3, 4]`` w2c: rotations about y by each angle, translations 0.1·index (so views differ in both)."""
    return torch.stack([torch.cat([yaw(d), torch.tensor([[0.1 * i], [0.0], [0.0]], dtype=torch.float64)], 1) for i, d in enumerate(yaws)])


def test_geodesic_known_angles() -> None:
    for d in (0.0, 1e-4, 28.0, 90.0, 179.0):
        assert float(geodesic_deg(yaw(d), yaw(0.0))) == pytest.approx(d, abs=1e-6)
    # about another axis, composed: 30° then -30° about y is the identity
    assert float(geodesic_deg(yaw(30.0) @ yaw(-30.0), torch.eye(3, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-6)


def test_max_step_is_the_largest_neighbour_turn_not_the_total() -> None:
    orbit = trajectory([28.0 * i for i in range(13)])  # 336° in all, 28° per frame
    jump = trajectory([0, 2, 4, 130, 6, 8])  # one wild view: 126° and 124° to its neighbours
    steps = max_step_deg(torch.stack([orbit[:6], jump]))
    assert steps.tolist() == pytest.approx([28.0, 126.0], abs=1e-6)
    assert float(max_step_deg(orbit[None])) == pytest.approx(28.0, abs=1e-6)


def test_guard_replaces_only_implausible_scenes_by_their_first_camera(caplog) -> None:
    orbit = trajectory([28.0 * i for i in range(6)])
    jump = trajectory([0, 2, 4, 130, 6, 8])
    w2c = torch.stack([orbit, jump])
    with caplog.at_level(logging.WARNING, logger="vist3a.models.camera_guard"):
        out, guarded = guard_cameras(w2c, 90.0)
    assert guarded.tolist() == [False, True]
    assert "cameras of 1 scene(s) turn more than 90°" in caplog.text and len(caplog.records) == 1
    torch.testing.assert_close(out[0], orbit, rtol=0, atol=0)  # a real orbit is left alone
    torch.testing.assert_close(out[1], jump[:1].expand(6, 3, 4), rtol=0, atol=0)  # every view at view 0
    assert torch.equal(w2c[1], jump)  # the input is not modified
    # a limit above every step guards nothing; 4x4 matrices work too
    w4 = torch.cat([w2c, torch.tensor([0.0, 0, 0, 1], dtype=torch.float64).expand(2, 6, 1, 4)], 2)
    caplog.clear()
    out4, g4 = guard_cameras(w4, 127.0)
    assert not g4.any() and torch.equal(out4, w4) and not caplog.records  # nothing guarded: no warning


@pytest.mark.parametrize(
    "w2c, limit, match",
    [(torch.zeros(6, 3, 4), 90.0, "B, V, 3|4, 4"), (torch.zeros(1, 6, 3, 3), 90.0, "B, V, 3|4, 4"),
     (torch.zeros(1, 6, 3, 4), 0.0, "> 0 degrees"), (torch.zeros(1, 6, 3, 4), float("nan"), "> 0 degrees")],
)
def test_bad_input_is_one_clear_error(w2c: torch.Tensor, limit: float, match: str) -> None:
    with pytest.raises(InputError, match=match.replace("|", r"\|")):
        guard_cameras(w2c, limit)


def test_anysplat_forward_with_the_guard_unprojects_from_the_first_camera() -> None:
    """A guard below the random network's turns puts every view at view 0: the cameras are equal and the world points
    are the depth unprojected with view 0's extrinsics; without the guard (or with a limit above every turn) nothing
    changes."""
    from anysplat_tiny import TINY
    from vist3a import registry
    from vist3a.models.geometry import unproject_depth

    torch.manual_seed(0)
    model = registry.build("anysplat-mini", device="cpu", **TINY)
    with torch.no_grad():
        model.encoder.camera_head.pose_branch.fc2.weight.normal_(0, 0.5)  # cameras that differ between views
        images = torch.rand(1, 3, 3, 56, 56, generator=torch.Generator().manual_seed(1))
        plain = model(images, voxelize=False)
        turn = float(max_step_deg(plain.w2c))
        assert turn > 1.0 and plain.guarded is None
        high = model(images, voxelize=False, camera_guard_deg=turn + 1.0)
        low = model(images, voxelize=False, camera_guard_deg=turn / 2)
    assert high.guarded.tolist() == [False] and low.guarded.tolist() == [True]
    torch.testing.assert_close(high.points, plain.points, rtol=0, atol=0)
    first = plain.w2c[:, :1].expand_as(plain.w2c)
    torch.testing.assert_close(low.w2c, first, rtol=0, atol=0)
    torch.testing.assert_close(low.c2w[0, 1:], low.c2w[0, :1].expand(2, 4, 4), rtol=0, atol=0)
    torch.testing.assert_close(low.depth, plain.depth, rtol=0, atol=0)  # the depth is the network's, unchanged
    torch.testing.assert_close(low.points, unproject_depth(plain.depth, first, plain.K), rtol=1e-5, atol=1e-5)
    rec = model.reconstruct(images, camera_guard_deg=turn / 2)
    assert rec.guarded == [True]
