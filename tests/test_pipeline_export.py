"""Scene bundles (export_scene), the interpolated trajectory, the orbit placed around a scene, safe
per-prompt folder names, and the splat reduction behind the CPU export defaults (voxel merging)."""

from __future__ import annotations

import math

import imageio.v3 as iio
import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras, quat_to_matrix
from vist3a.gaussians.formats import load_scene
from vist3a.gaussians.gaussians import Gaussians
from vist3a.pipelines.export import (
    MERGE_INFLATION,
    claim_folder,
    export_scene,
    merge_voxels,
    occurrences,
    parse_formats,
    prompt_folder_name,
    reduce_splats,
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


# ---------------------------------------------------------------- splat reduction (CPU export defaults)
def test_merging_two_splats_matches_their_moments():
    """Two isotropic splats (scale s, opacity a) at ±d on x: one Gaussian with mean 0, covariance
    k·diag(s²+d², s², s²) and opacity min(2a·s² / (s·sqrt(s²+d²)), 1 − (1−a)²), worked out by hand."""
    s, d, a = 0.1, 0.2, 0.6
    g = _splats(torch.tensor([[-d, 0.0, 0.0], [d, 0.0, 0.0]]), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]), a)
    g.scales[:] = s
    m = merge_voxels(g, voxel_size=10.0)
    assert len(m) == 1
    torch.testing.assert_close(m.means[0], torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(m.colors[0], torch.tensor([0.5, 0.0, 0.5]), atol=1e-5, rtol=0)
    k = MERGE_INFLATION
    expect = torch.tensor([s, s, math.sqrt(s * s + d * d)]) * math.sqrt(k)  # ascending, as eigh gives them
    torch.testing.assert_close(m.scales[0], expect, atol=1e-5, rtol=0)
    rot = quat_to_matrix(m.quats)[0]
    assert abs(float(rot[:, 2] @ torch.tensor([1.0, 0, 0]))) > 0.9999  # the long axis lies along x
    alpha = min(2 * a * s * s / (s * math.sqrt(s * s + d * d)), 1 - (1 - a) ** 2)
    assert float(m.opacities[0]) == pytest.approx(alpha, rel=1e-4)


def test_a_stack_of_views_of_one_surface_stays_opaque():
    """13 copies of one splat (one surface point seen from 13 views), opacity 0.3 each → 1 − 0.7¹³."""
    g = _splats(torch.zeros(13, 3) + torch.randn(13, 3) * 1e-4, torch.full((13, 3), 0.5), 0.3)
    m = merge_voxels(g, voxel_size=1.0)
    assert len(m) == 1 and float(m.opacities[0]) == pytest.approx(1 - 0.7**13, rel=1e-3)


def test_reduce_splats_prunes_invisible_and_meets_the_budget():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    means = (centres[:, None] + 0.01 * torch.randn(4, 50, 3, generator=gen)).reshape(-1, 3)
    g = _splats(means, torch.rand(200, 3, generator=gen), 0.8)
    invisible = _splats(torch.rand(30, 3, generator=gen), torch.rand(30, 3, generator=gen), 0.5 / 255)
    both = Gaussians.cat([g, invisible])
    assert len(reduce_splats(both, None)) == 200  # only the invisible ones go
    assert len(reduce_splats(both, 0)) == 200
    r = reduce_splats(both, 10)
    assert 4 <= len(r) <= 10  # never merges across the four far-apart clusters: at least 4 remain
    four = reduce_splats(both, 4)
    assert len(four) == 4
    got = sorted(four.means.tolist())
    want = sorted(means.reshape(4, 50, 3).mean(1).tolist())  # equal opacities: the plain centroid
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="max_splats"):
        reduce_splats(g, -1)


def test_merged_surface_still_covers_the_view():
    """A dense opaque plane of 64² pixel-aligned splats merged to a quarter: the render keeps its coverage
    (alpha) and colour in the interior."""
    n = 64
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    means = torch.stack([xs, ys, torch.full_like(xs, 3.0)], -1).reshape(-1, 3)
    colors = torch.stack([0.5 + 0.4 * xs, 0.5 + 0.4 * ys, torch.full_like(xs, 0.3)], -1).reshape(-1, 3)
    g = Gaussians.from_colors(means, colors, torch.full((n * n, 3), 1.2 / n), torch.full((n * n,), 0.7))
    cam = Cameras.orbit(1, radius=3.0, elevation_deg=0.0, target=(0.0, 0.0, 3.0), up=(0.0, -1.0, 0.0),
                        fov_x_deg=30.0, width=48, height=48)
    from vist3a.gaussians.render import render

    small = reduce_splats(g, n * n // 4)
    assert len(small) <= n * n // 4
    full, prev = render(g, cam, background=0.0), render(small, cam, background=0.0)
    inner = (slice(None), slice(None), slice(8, 40), slice(8, 40))
    a_full, a_prev = float(full.alpha[inner].min()), float(prev.alpha[inner].min())
    mse = float(((full.rgb[inner] - prev.rgb[inner]) ** 2).mean())
    assert a_full > 0.95 and a_prev > a_full - 0.03
    assert -10 * math.log10(mse) > 25.0


def test_merged_sub_pixel_splats_keep_their_coverage_given_the_cameras():
    """Splats far narrower than a pixel (as a trained mini decoder predicts) still cover about a pixel each on
    screen, through the renderers' low-pass. A plane of them, one per pixel, merged to a quarter: with the
    cameras the merge counts that footprint and the preview keeps the full render's coverage and colour;
    without them the areas are the splats' own, the merged splats come out faint, and the background shows."""
    from vist3a.gaussians.render import render
    from vist3a.pipelines.export import LOW_PASS_PX2, pixel_footprints

    n = 48
    cam = Cameras.orbit(1, radius=3.0, elevation_deg=0.0, target=(0.0, 0.0, 3.0), up=(0.0, -1.0, 0.0),
                        fov_x_deg=30.0, width=n, height=n)  # fmt: skip
    half = 3.0 * math.tan(math.radians(15.0))  # the plane fills the view: one splat per pixel
    ys, xs = torch.meshgrid(torch.linspace(-half, half, n), torch.linspace(-half, half, n), indexing="ij")
    means = torch.stack([xs, ys, torch.full_like(xs, 3.0)], -1).reshape(-1, 3)
    colors = torch.stack([0.6 + 0.3 * xs, 0.2 + 0.3 * ys, torch.full_like(xs, 0.1)], -1).reshape(-1, 3)
    pixel = 2 * half / n
    g = Gaussians.from_colors(means, colors, torch.full((n * n, 3), 0.1 * pixel), torch.full((n * n,), 0.9))
    # the footprint helper: distance to the camera over the focal length = the pixel pitch on the plane
    assert pixel_footprints(means[:1] * 0 + torch.tensor([0.0, 0.0, 3.0]), cam)[0] == pytest.approx(pixel, rel=0.01)
    assert LOW_PASS_PX2 == pytest.approx(0.3)  # gsplat's and render_torch's eps2d

    inner = (slice(None), slice(None), slice(8, 40), slice(8, 40))
    full = render(g, cam, background=1.0)
    with_cams = render(reduce_splats(g, n * n // 4, cameras=cam), cam, background=1.0)
    without = render(reduce_splats(g, n * n // 4), cam, background=1.0)
    a_full = float(full.alpha[inner].mean())
    assert a_full > 0.9
    assert float(with_cams.alpha[inner].mean()) > a_full - 0.05
    assert float(without.alpha[inner].mean()) < a_full - 0.2  # the faint merge the cameras fix
    mse = float(((full.rgb[inner] - with_cams.rgb[inner]) ** 2).mean())
    assert -10 * math.log10(mse) > 25.0


def test_export_defaults_flags_and_ply_layout(tmp_path):
    """Preview budget: the videos render a merged copy, the .ply keeps every visible splat; frame counts
    follow the flags; decoded frames become decoded.mp4; the .ply has the INRIA 3DGS property layout."""
    from plyfile import PlyData

    g, cams = _blob(600), _cams(3)
    decoded = torch.rand(5, 3, 16, 16)
    rep = export_scene(tmp_path, g, cams, frames_per_view=3, orbit_frames=0, preview_splats=100, tile_size=4,
                       device="cpu", progress=False, decoded_frames=decoded)
    assert rep.splats_written == 600 and 0 < rep.splats_rendered <= 100
    assert set(rep.files) == {"scene.ply", "cameras.json", "video.mp4", "decoded.mp4"}
    assert iio.imread(tmp_path / "video.mp4").shape[0] == (3 - 1) * 3 + 1
    assert iio.imread(tmp_path / "decoded.mp4").shape[0] == 5
    names = [p.name for p in PlyData.read(str(tmp_path / "scene.ply"))["vertex"].properties]
    assert names == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                     "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    out2 = tmp_path / "merged"
    out2.mkdir()
    rep2 = export_scene(out2, g, cams, frames_per_view=0, orbit_frames=0, max_splats=50, progress=False)
    assert 0 < rep2.splats_written <= 50 and len(load_scene(out2 / "scene.ply")) == rep2.splats_written
    with pytest.raises(InputError, match="preview_splats"):
        export_scene(out2, g, cams, preview_splats=-1)


def test_far_voxels_long_along_the_rays_do_not_make_huge_splats():
    """Far away a contracted voxel is long along the viewing rays: 50 splats spread ±100 along the ray at
    distance 1000 fall into one voxel of side 0.01 (contraction radius 1), and the merged splat is capped at
    two voxel sides across the rays there, 2·0.01·r/(2 − 1/r) ≈ 10, not the members' spread (std ≈ 58)."""
    far = torch.zeros(50, 3)
    far[:, 0] = 1000.0 + torch.linspace(-100, 100, 50)
    g = _splats(far, torch.rand(50, 3, generator=torch.Generator().manual_seed(1)), 0.8)
    out = merge_voxels(g, 0.01, contraction=(torch.zeros(3), 1.0))
    assert len(out) == 1
    r = float(out.means[0].norm())
    assert 990 < r < 1010
    assert float(out.scales.max()) == pytest.approx(2 * 0.01 * r / (2 - 1 / r), rel=1e-3)
    plain = merge_voxels(g, 1000.0)  # a uniform grid: no cap, the spread along x stays (× sqrt(3))
    assert float(plain.scales.max()) > 50 * math.sqrt(MERGE_INFLATION)


def test_orbit_video_keeps_the_predicted_cameras_distance(tmp_path, monkeypatch):
    """A far, faint background must not push the orbit to the horizon: the orbit runs at the predicted
    cameras' median distance to the target (3 here), not at the automatic 90 %-of-splats radius."""
    import vist3a.pipelines.export as ex

    g = Gaussians.cat([_blob(300), _splats(torch.randn(200, 3) * 500.0, torch.ones(200, 3), 0.9)])
    seen = {}
    real = ex.Cameras.orbit_around

    def spy(*a, **k):
        seen["cams"] = real(*a, **k)
        return seen["cams"]

    monkeypatch.setattr(ex.Cameras, "orbit_around", spy)
    export_scene(tmp_path, g, _cams(3), frames_per_view=0, orbit_frames=2, device="cpu", progress=False)
    target = torch.stack([g.means[:, k].median() for k in range(3)])
    expect = float((_cams(3).c2w[:, :3, 3] - target).norm(dim=-1).median())
    dist = (seen["cams"].c2w[:, :3, 3] - target).norm(dim=-1)
    torch.testing.assert_close(dist, torch.full_like(dist, expect), atol=1e-3, rtol=1e-3)
    assert expect < 5.0  # the automatic radius would be hundreds of units


def test_parallel_cpu_frames_equal_sequential_ones():
    from vist3a.pipelines.export import render_frames

    g, cams = _blob(300), _cams(4)
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        par = render_frames(g, cams, 1.0, "x", False, 4)
        assert torch.get_num_threads() == 2  # restored
        torch.set_num_threads(1)
        seq = render_frames(g, cams, 1.0, "x", False, 4)
    finally:
        torch.set_num_threads(n)
    assert par.shape == (4, 3, 24, 32) and float(par.std()) > 0.01
    torch.testing.assert_close(par, seq, atol=0, rtol=0)


def test_preview_tile_edge_grows_with_the_footprints_and_respects_the_smallest():
    from vist3a.pipelines.export import video_tile_size

    gen = torch.Generator().manual_seed(0)
    means = torch.rand(3000, 3, generator=gen) * torch.tensor([2.0, 2.0, 0.5]) - torch.tensor([1.0, 1.0, -3.0])
    colors = torch.rand(3000, 3, generator=gen)
    K = torch.tensor([[[60.0, 0.0, 32.0], [0.0, 60.0, 32.0], [0.0, 0.0, 1.0]]])
    cam = Cameras(torch.eye(4)[None], K, 64, 64)  # at the origin, looking down +z
    fine = Gaussians.from_colors(means, colors, torch.full((3000, 3), 0.004), torch.full((3000,), 0.8))
    blurry = Gaussians.from_colors(means, colors, torch.full((3000, 3), 0.3), torch.ones(3000))
    assert video_tile_size(fine, cam, 4) == 4  # ~1 px splats
    assert video_tile_size(blurry, cam, 4) in (16, 32)  # ~30 px splats: 4 px tiles would bin each ~250 times
    assert video_tile_size(fine, cam, 8) == 8  # never below the requested edge
    assert video_tile_size(blurry, cam, 64) == 64
