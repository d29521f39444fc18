"""Scene bundles (export_scene), the interpolated trajectory, the orbit placed around a scene, and safe
per-prompt folder names."""

from __future__ import annotations

import math

import imageio.v3 as iio
import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.formats import load_scene
from vist3a.gaussians.gaussians import Gaussians
from vist3a.pipelines.export import (
    claim_folder,
    export_scene,
    occurrences,
    parse_formats,
    prompt_folder_name,
    slugify,
    trajectory_cameras,
)


def _blob(n: int = 200, center=(0.5, -0.2, 3.0), seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor(center) + 0.3 * torch.randn(n, 3, generator=g)
    return _splats(means, torch.rand(n, 3, generator=g), 0.9)


def _splats(means: torch.Tensor, colors: torch.Tensor, opacity: float) -> Gaussians:
    n = means.shape[0]
    return Gaussians.from_colors(means, colors, scales=torch.full((n, 3), 0.05), opacities=torch.full((n,), opacity))


def _cams(n: int = 3) -> Cameras:
    return Cameras.orbit(n, radius=3.0, arc_deg=60.0, target=(0.5, -0.2, 3.0), up=(0.0, -1.0, 0.0), width=32, height=24)


def test_trajectory_passes_through_every_camera_including_the_last():
    cams = _cams(4)
    path = trajectory_cameras(cams, 5)
    assert len(path) == 3 * 5 + 1
    for i in range(4):
        torch.testing.assert_close(path.c2w[5 * i], cams.c2w[i], atol=1e-5, rtol=0)
    with pytest.raises(InputError):
        trajectory_cameras(cams, 0)


def test_orbit_around_looks_at_the_weighted_median_at_the_given_radius():
    g = _blob()
    # a far, almost transparent outlier must not move the target
    g = Gaussians.cat([g, _splats(torch.tensor([[50.0, 50.0, 50.0]]), torch.ones(1, 3), 1e-4)])
    cams = Cameras.orbit_around(g, 6, 32, 32, radius=2.0, up="-y")
    target = torch.stack([g.means[:-1, k].median() for k in range(3)])
    for i in range(6):
        c, fwd = cams.c2w[i, :3, 3], cams.c2w[i, :3, 2]
        assert abs(float((c - target).norm()) - 2.0) < 0.05
        to_t = torch.nn.functional.normalize(target - c, dim=0)
        assert float(fwd @ to_t) > 0.999
    auto = Cameras.orbit_around(g, 2, 32, 32)  # automatic radius: 90 % of the splats inside the view
    assert float((auto.c2w[0, :3, 3] - target).norm()) > 0.3
    with pytest.raises(InputError, match="up axis"):
        Cameras.orbit_around(g, 2, up="sideways")


def test_export_scene_writes_a_readable_bundle(tmp_path):
    g, cams = _blob(), _cams(3)
    rep = export_scene(tmp_path, g, cams, formats=("ply", "splat"), frames_per_view=2, orbit_frames=3, fps=10,
                       device="cpu", progress=False)
    assert set(rep.files) == {"scene.ply", "scene.splat", "cameras.json", "video.mp4", "orbit.mp4"}
    back = load_scene(tmp_path / "scene.ply")
    assert len(back) == len(g) == rep.splats_written
    torch.testing.assert_close(back.means, g.means, atol=1e-5, rtol=0)
    assert len(load_scene(tmp_path / "scene.splat")) == len(g)
    cams_back = Cameras.load_json(tmp_path / "cameras.json")
    torch.testing.assert_close(cams_back.c2w, cams.c2w, atol=1e-5, rtol=0)
    assert iio.imread(tmp_path / "video.mp4").shape[0] == (3 - 1) * 2 + 1
    assert iio.imread(tmp_path / "orbit.mp4").shape[0] == 3
    with pytest.raises(InputError, match="does not exist"):
        export_scene(tmp_path / "missing", g, cams)


def test_formats_parse():
    assert parse_formats("spz, ply,splat,spz") == ("ply", "spz", "splat")
    assert parse_formats("") == ("ply",)
    with pytest.raises(InputError, match="obj"):
        parse_formats("ply,obj")


@pytest.mark.parametrize("prompt", ["../../x", "/etc/passwd", "..", "a/b\\c", "   ", "日本語のプロンプト", "x" * 500])
def test_folder_names_are_single_safe_components(prompt, tmp_path):
    name = prompt_folder_name(prompt, 0)
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert len(name) <= 48 + 9
    d = claim_folder(tmp_path / "out", name)
    assert d.resolve().parent == (tmp_path / "out").resolve()


def test_duplicates_never_collide(tmp_path):
    prompts = ["a cube", "a cube", "a sphere", "a cube"]
    occ = occurrences(prompts)
    assert occ == [0, 1, 0, 2]
    names = [prompt_folder_name(p, 0, k) for p, k in zip(prompts, occ, strict=True)]
    assert len(set(names)) == 4
    assert slugify("A Red  Cube!") == "a-red-cube" and names[0].startswith("a-cube-")
    first = claim_folder(tmp_path, names[0])
    again = claim_folder(tmp_path, names[0])  # the same name in a later run gets a suffix, never overwrites
    assert again.name == names[0] + "-2" and first.is_dir()
    with pytest.raises(InputError, match="safe"):
        claim_folder(tmp_path, "../x")


def test_orbit_radius_from_extent_fills_the_view():
    g = _blob(500)
    cams = Cameras.orbit_around(g, 1, 64, 64, fov_x_deg=60.0)
    target = torch.stack([g.means[:, k].median() for k in range(3)])
    dist = float((cams.c2w[0, :3, 3] - target).norm())
    extent = float((g.means - target).norm(dim=-1).quantile(0.9))
    assert dist == pytest.approx(1.1 * extent / math.sin(math.radians(30)), rel=0.05)
