"""CPU tests of the reference renderer against analytic answers and a naive dense renderer."""

from __future__ import annotations

import math

import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras, quat_to_matrix
from vist3a.gaussians.gaussians import Gaussians, eval_sh
from vist3a.gaussians.render import GsplatUnavailableError, render, resolve_backend
from vist3a.gaussians.render_torch import (
    BIN_PAIR_COST,
    PIXEL_PAIR_COST,
    bin_gaussians,
    choose_tile_size,
    project_gaussians,
    render_torch,
    tile_counts,
)


def _front_camera(width: int = 32, height: int = 24, f: float = 30.0, dtype=torch.float32) -> Cameras:
    """A camera at the origin looking down +z (c2w = identity)."""
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return Cameras(torch.eye(4, dtype=dtype)[None], K[None], width, height)


def _one(mean, color, scale=0.05, opacity=0.9999, dtype=torch.float32) -> Gaussians:
    t = lambda v: torch.tensor(v, dtype=dtype)
    return Gaussians.from_colors(
        t([mean]), t([color]), torch.full((1, 3), scale, dtype=dtype), t([opacity])
    )


def _random_scene(n: int, seed: int = 0, dtype=torch.float64, sh_degree: int = 1, spread: float = 0.6) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen, dtype=dtype) * spread
    means[:, 2] += 3.0
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen, dtype=dtype), dim=-1)
    scales = torch.exp(torch.randn(n, 3, generator=gen, dtype=dtype) * 0.4 - 2.8)
    opac = torch.rand(n, generator=gen, dtype=dtype) * 0.9 + 0.05
    sh = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=gen, dtype=dtype) * 0.4
    return Gaussians(means, quats, scales, opac, sh)


def _dense_render(g: Gaussians, cam: Cameras, bg: torch.Tensor, eps2d: float = 0.3):
    """Naive reference: every Gaussian against every pixel, a Python loop front to back (gsplat's rules).

    Independent of the tiled code: own projection (J W Σ Wᵀ Jᵀ with an explicit Jacobian, no
    clamping, for scenes inside the view), own SH colours, no binning.
    """
    w2c = torch.linalg.inv(cam.c2w[0])
    K = cam.K[0]
    H, W = cam.height, cam.width
    ys, xs = torch.meshgrid(torch.arange(H, dtype=g.dtype) + 0.5, torch.arange(W, dtype=g.dtype) + 0.5, indexing="ij")
    T = torch.ones(H, W, dtype=g.dtype)
    done = torch.zeros(H, W, dtype=torch.bool)
    rgb = torch.zeros(H, W, 3, dtype=g.dtype)
    depth = torch.zeros(H, W, dtype=g.dtype)
    cam_pos = cam.c2w[0, :3, 3]
    pc = g.means @ w2c[:3, :3].T + w2c[:3, 3]
    for i in torch.argsort(pc[:, 2]).tolist():
        x, y, z = pc[i]
        if z <= 0.01:
            continue
        fx, fy = K[0, 0], K[1, 1]
        J = torch.stack([torch.stack([fx / z, 0 * z, -fx * x / z**2]), torch.stack([0 * z, fy / z, -fy * y / z**2])])
        R = quat_to_matrix(g.quats[i])
        S = torch.diag(g.scales[i])
        cov = J @ w2c[:3, :3] @ R @ S @ S @ R.T @ w2c[:3, :3].T @ J.T + eps2d * torch.eye(2, dtype=g.dtype)
        inv = torch.linalg.inv(cov)
        u = fx * x / z + K[0, 2]
        v = fy * y / z + K[1, 2]
        dx, dy = xs - u, ys - v
        sigma = 0.5 * (inv[0, 0] * dx * dx + inv[1, 1] * dy * dy) + inv[0, 1] * dx * dy
        alpha = torch.clamp(g.opacities[i] * torch.exp(-sigma), max=0.999)
        color = (eval_sh(g.sh[i], g.means[i] - cam_pos) + 0.5).clamp_min(0)
        use = (alpha >= 1 / 255) & ~done
        next_T = T * (1 - alpha)
        stop = use & (next_T <= 1e-4)
        done |= stop
        use &= ~stop
        w = torch.where(use, alpha * T, torch.zeros_like(T))
        rgb += w[..., None] * color
        depth += w * z
        T = torch.where(use, next_T, T)
    alpha = 1 - T
    rgb = rgb + T[..., None] * bg
    return rgb.permute(2, 0, 1), (depth / alpha.clamp_min(1e-10))[None], alpha[None]


# --- analytic answers ---------------------------------------------------------------------------


def test_opaque_gaussian_centre_pixel_is_its_colour():
    cam = _front_camera(32, 24)
    # The mean projects onto the centre of pixel (16, 12): u = cx + 0.5 with x = 0.5 z / f.
    z = 2.0
    g = _one([0.5 * z / 30.0, 0.5 * z / 30.0, z], [0.2, 0.6, 0.9])
    bg = torch.tensor([1.0, 0.0, 0.5])
    out = render(g, cam, background=bg, backend="torch")
    assert out.rgb.shape == (1, 3, 24, 32) and out.depth.shape == (1, 1, 24, 32) and out.alpha.shape == (1, 1, 24, 32)
    expected = torch.tensor([0.2, 0.6, 0.9]) * 0.999 + bg * 0.001
    torch.testing.assert_close(out.rgb[0, :, 12, 16], expected, atol=1e-5, rtol=0)
    assert out.alpha[0, 0, 12, 16].item() == pytest.approx(0.999, abs=1e-6)
    # Depth at the centre is the Gaussian's z (a single Gaussian: expected depth = z exactly).
    assert out.depth[0, 0, 12, 16].item() == pytest.approx(z, rel=1e-6)
    assert out.backend == "torch"


def test_background_where_nothing_is():
    cam = _front_camera(32, 24)
    g = _one([0.0, 0.0, 2.0], [1.0, 0.0, 0.0], scale=0.02)
    out = render(g, cam, background=(0.1, 0.2, 0.3), backend="torch")
    corner = out.rgb[0, :, 0, 0]
    torch.testing.assert_close(corner, torch.tensor([0.1, 0.2, 0.3]))
    assert out.alpha[0, 0, 0, 0].item() == 0.0 and out.depth[0, 0, 0, 0].item() == 0.0
    # An empty scene is all background.
    empty = render(Gaussians.empty(), cam, background=0.5, backend="torch")
    assert torch.all(empty.rgb == 0.5) and torch.all(empty.alpha == 0)


def test_front_gaussian_wins_and_swapping_depths_swaps_the_result():
    cam = _front_camera(32, 24)

    def scene(z_red: float, z_blue: float) -> Gaussians:
        # Both means project onto the centre of pixel (16, 12).
        means = torch.tensor([[z_red / 60, z_red / 60, z_red], [z_blue / 60, z_blue / 60, z_blue]])
        colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        scales = torch.tensor([[0.02, 0.02, 0.02], [0.04, 0.04, 0.04]]) * torch.tensor([[z_red], [z_blue]])
        return Gaussians.from_colors(means, colors, scales, torch.tensor([0.7, 0.7]))

    red_front = render(scene(2.0, 4.0), cam, backend="torch")
    blue_front = render(scene(4.0, 2.0), cam, backend="torch")
    # Front: 0.7 of its colour; back: 0.7 of the remaining 0.3.
    torch.testing.assert_close(red_front.rgb[0, :, 12, 16], torch.tensor([0.7, 0.0, 0.21]), atol=1e-5, rtol=0)
    torch.testing.assert_close(blue_front.rgb[0, :, 12, 16], torch.tensor([0.21, 0.0, 0.7]), atol=1e-5, rtol=0)
    # Expected depth in both: the front one at z=2 weighs 0.7, the back one at z=4 weighs 0.21.
    for out in (red_front, blue_front):
        assert out.depth[0, 0, 12, 16].item() == pytest.approx((0.7 * 2 + 0.21 * 4) / 0.91, rel=1e-5)


def test_transmittance_stop_is_exclusive_like_gsplat():
    # Two 0.999 layers would leave T = 1e-6 <= 1e-4: gsplat stops *before* the second one.
    cam = _front_camera(32, 24)
    means = torch.tensor([[2 / 60, 2 / 60, 2.0], [3 / 60, 3 / 60, 3.0]])
    g = Gaussians.from_colors(means, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), torch.full((2, 3), 0.05), torch.ones(2))
    out = render(g, cam, background=(0.0, 0.0, 1.0), backend="torch")
    torch.testing.assert_close(out.rgb[0, :, 12, 16], torch.tensor([0.999, 0.0, 0.001]), atol=1e-5, rtol=0)
    assert out.depth[0, 0, 12, 16].item() == pytest.approx(2.0, rel=1e-6)


def test_projected_covariance_matches_hand_computation():
    # Axis-aligned Gaussian at (x, 0, z) seen by the identity camera:
    # J = [[f/z, 0, -f x/z²], [0, f/z, 0]], Σ = diag(sx², sy², sz²)
    # Σ' = [[f²sx²/z² + f²x²sz²/z⁴, 0], [0, f²sy²/z²]] + 0.3 I.
    f, x, z = 30.0, 0.2, 2.0
    sx, sy, sz = 0.05, 0.08, 0.1
    cam = _front_camera(32, 24, f, dtype=torch.float64)
    p = project_gaussians(
        torch.tensor([[x, 0.0, z]], dtype=torch.float64),
        torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
        torch.tensor([[sx, sy, sz]], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64),
        cam.w2c[0],
        cam.K[0],
        32,
        24,
    )
    cxx = f**2 * sx**2 / z**2 + f**2 * x**2 * sz**2 / z**4 + 0.3
    cyy = f**2 * sy**2 / z**2 + 0.3
    torch.testing.assert_close(p.cov2d[0], torch.tensor([[cxx, 0.0], [0.0, cyy]], dtype=torch.float64))
    torch.testing.assert_close(p.means2d[0], torch.tensor([f * x / z + 16, 12.0], dtype=torch.float64))
    torch.testing.assert_close(p.conics[0], torch.tensor([1 / cxx, 0.0, 1 / cyy], dtype=torch.float64))
    assert p.depths[0].item() == z
    # Opacity-aware box: k = min(3.33, sqrt(2 ln(255·0.5))), half-size = ceil(k·sqrt(Σ'_ii)).
    k = min(3.33, math.sqrt(2 * math.log(255 * 0.5)))
    assert p.radii[0].tolist() == [math.ceil(k * math.sqrt(cxx)), math.ceil(k * math.sqrt(cyy))]

    # A rotated Gaussian: Σ' = J R S² Rᵀ Jᵀ + 0.3 I, computed here with numpy-free explicit matrices.
    q = torch.nn.functional.normalize(torch.tensor([0.9, 0.2, -0.3, 0.1], dtype=torch.float64), dim=0)
    p2 = project_gaussians(
        torch.tensor([[x, 0.0, z]], dtype=torch.float64), q[None], torch.tensor([[sx, sy, sz]], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64), cam.w2c[0], cam.K[0], 32, 24,
    )  # fmt: skip
    J = torch.tensor([[f / z, 0, -f * x / z**2], [0, f / z, 0]], dtype=torch.float64)
    R = quat_to_matrix(q)
    S2 = torch.diag(torch.tensor([sx, sy, sz], dtype=torch.float64) ** 2)
    torch.testing.assert_close(p2.cov2d[0], J @ R @ S2 @ R.T @ J.T + 0.3 * torch.eye(2, dtype=torch.float64))


def test_antialiased_mode_scales_opacity_by_the_compensation():
    cam = _front_camera(32, 24, dtype=torch.float64)
    args = (
        torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64), torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
        torch.tensor([[0.01, 0.02, 0.01]], dtype=torch.float64), torch.tensor([0.8], dtype=torch.float64),
        cam.w2c[0], cam.K[0], 32, 24,
    )  # fmt: skip
    p = project_gaussians(*args, antialiased=True)
    a, b = (30 * 0.01 / 2) ** 2, (30 * 0.02 / 2) ** 2
    comp = math.sqrt(a * b / ((a + 0.3) * (b + 0.3)))
    assert p.opacities[0].item() == pytest.approx(0.8 * comp, rel=1e-12)
    assert project_gaussians(*args).opacities[0].item() == 0.8


def test_near_plane_culls_gaussians_behind_the_camera():
    cam = _front_camera()
    g = _one([0.0, 0.0, -1.0], [1.0, 1.0, 1.0], scale=0.5)
    out = render(g, cam, backend="torch")
    assert torch.all(out.alpha == 0)


def test_binning_lists_each_gaussian_in_the_tiles_of_its_box_front_to_back():
    means2d = torch.tensor([[8.0, 8.0], [20.0, 8.0], [17.0, 17.0]])
    radii = torch.tensor([[3, 3], [5, 2], [2, 2]], dtype=torch.int32)
    bins = bin_gaussians(means2d, radii, torch.tensor([3.0, 1.0, 2.0]), 32, 32, tile_size=16)
    lists = [bins.ids[s : s + c].tolist() for s, c in zip(bins.start.tolist(), bins.count.tolist(), strict=True)]
    # Gaussian 1's box x in [15, 25] touches tiles 0 and 1; Gaussian 2 sits in tiles 0..3.
    assert lists == [[1, 2, 0], [1, 2], [2], [2]]


# --- tiled renderer against the dense reference ------------------------------------------------


@pytest.mark.parametrize("tile_size,max_elements", [(16, 1 << 21), (8, 1 << 21), (16, 2048)])
def test_tiled_matches_dense_reference(tile_size, max_elements):
    g = _random_scene(60, seed=1)
    cam = Cameras.orbit(1, radius=3.0, elevation_deg=15, target=(0.0, 0.0, 3.0), width=40, height=30).to(dtype=torch.float64)
    cam = Cameras(cam.c2w, cam.K, 40, 30)
    bg = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64)
    out = render(g, cam, background=bg, backend="torch", tile_size=tile_size, max_elements=max_elements)
    rgb, depth, alpha = _dense_render(g, cam, bg)
    assert out.alpha.max() > 0.5  # the scene is in view
    torch.testing.assert_close(out.rgb[0], rgb, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.alpha[0], alpha, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.depth[0], depth, atol=1e-5, rtol=1e-5)


def test_dense_scene_hits_the_transmittance_stop_and_still_matches():
    g = _random_scene(150, seed=2, spread=0.15)
    g.opacities = torch.full_like(g.opacities, 0.95)
    cam = Cameras.orbit(1, radius=3.0, elevation_deg=0, target=(0.0, 0.0, 3.0), width=24, height=24).to(dtype=torch.float64)
    cam = Cameras(cam.c2w, cam.K, 24, 24)
    bg = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    out = render(g, cam, background=bg, backend="torch", max_elements=4096)
    rgb, depth, alpha = _dense_render(g, cam, bg)
    assert (alpha > 0.9998).any()  # some pixels stopped early
    torch.testing.assert_close(out.rgb[0], rgb, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.alpha[0], alpha, atol=1e-5, rtol=0)


def _opaque_wall(n: int = 1000, seed: int = 5, size: int = 32) -> tuple[Gaussians, Cameras]:
    """Many large, nearly opaque splats stacked in depth in front of a camera (a blurry scene)."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    means[:, 2] = 2.0 + 2.0 * means[:, 2]
    means[:, :2] = (2.0 * means[:, :2] - 1.0) * 0.7 * means[:, 2:]  # a frustum a bit wider than the view
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen, dtype=torch.float64), dim=-1)
    scales = 0.25 + 0.1 * torch.rand(n, 3, generator=gen, dtype=torch.float64)
    opac = 0.98 + 0.02 * torch.rand(n, generator=gen, dtype=torch.float64)
    sh = torch.randn(n, 1, 3, generator=gen, dtype=torch.float64) * 0.4
    cam = _front_camera(size, size, size * 5 / 6, dtype=torch.float64)
    return Gaussians(means, quats, scales, opac, sh), cam


def test_early_termination_on_overlapping_opaque_splats_visits_fewer_and_changes_pixels_below_1e3():
    from vist3a.gaussians.render_torch import rasterize

    g, cam = _opaque_wall()
    w2c = torch.linalg.inv(cam.c2w[0])
    proj = project_gaussians(g.means, g.quats, g.scales, g.opacities, w2c, cam.K[0], 32, 32)
    idx = torch.nonzero(proj.valid).squeeze(1)
    feats = torch.cat([(g.sh[idx, 0] * 0.28209479 + 0.5).clamp_min(0), proj.depths[idx, None]], dim=-1)
    args = (proj.means2d[idx], proj.conics[idx], proj.opacities[idx], feats, proj.depths[idx], proj.radii[idx], 32, 32)
    rgb, _, alpha = _dense_render(g, cam, torch.zeros(3, dtype=torch.float64))  # gsplat's rules, per pixel
    for tile_size in (4, 8):
        stop_stats, full_stats = {}, {}
        early, a_early = rasterize(*args, tile_size=tile_size, stats=stop_stats)
        full, _ = rasterize(*args, tile_size=tile_size, transmittance_stop=0.0, stats=full_stats)
        assert float((a_early > 0.999).double().mean()) > 0.95  # nearly opaque everywhere: the stop fires
        assert full_stats["visited"] == full_stats["intersections"] == stop_stats["intersections"] > 2000
        assert stop_stats["visited"] < full_stats["visited"] / 2  # tiles leave once all their pixels stopped
        # What the stop leaves out is at most the transmittance left when it fires: ≤ 1e-4 / (1 − α), up to
        # 0.1 behind a rare α = 0.999 splat (gsplat's exclusive rule); bound the mean, the 90 % pixel, the max.
        diff = (early[..., :3] - full[..., :3]).abs()
        assert float(diff.mean()) < 3e-4  # measured 1.5e-4
        assert float(torch.quantile(diff.flatten(), 0.9)) < 1e-3  # measured 2.5e-4 (99 %: 1.4e-3)
        assert float(diff.max()) < 2e-2  # measured 5.4e-3
        # and the early-terminated image is the per-pixel reference, whatever the tile size
        torch.testing.assert_close(early[..., :3].permute(2, 0, 1), rgb, atol=1e-6, rtol=0)
        torch.testing.assert_close(a_early.permute(2, 0, 1), alpha, atol=1e-6, rtol=0)


def test_tile_counts_match_the_binned_lists():
    g = _random_scene(80, seed=6, dtype=torch.float32, spread=0.8)
    cam = _front_camera(45, 37)
    w2c = torch.linalg.inv(cam.c2w[0])
    proj = project_gaussians(g.means, g.quats, g.scales, g.opacities, w2c, cam.K[0], 45, 37)
    v = proj.valid
    for ts in (4, 8, 16):
        bins = bin_gaussians(proj.means2d[v], proj.radii[v], proj.depths[v], 45, 37, tile_size=ts)
        counts = tile_counts(proj.means2d[v], proj.radii[v], 45, 37, ts)
        assert counts.shape == (bins.tiles_y, bins.tiles_x)
        assert counts.flatten().tolist() == bins.count.tolist()


def test_tile_size_choice_follows_the_footprint_size_and_never_changes_the_image():
    small = torch.tensor([[float(x) + 0.5, float(y) + 0.5] for y in range(0, 64, 2) for x in range(0, 64, 2)])
    radii_small = torch.full((small.shape[0], 2), 1, dtype=torch.int32)
    assert choose_tile_size(small, radii_small, 64, 64) == 4  # 1 px splats: small tiles waste least
    radii_large = torch.full((small.shape[0], 2), 30, dtype=torch.int32)
    assert choose_tile_size(small, radii_large, 64, 64) in (16, 32)  # 30 px splats: binning dominates
    assert choose_tile_size(small, radii_large, 64, 64, candidates=(4, 8)) == 8
    g, cam = _opaque_wall(120)
    w2c, K = torch.linalg.inv(cam.c2w), cam.K
    ref = render_torch(g.means, g.quats, g.scales, g.opacities, g.sh, w2c, K, 32, 32, 0, tile_size=4)
    for ts in (8, 32):
        out = render_torch(g.means, g.quats, g.scales, g.opacities, g.sh, w2c, K, 32, 32, 0, tile_size=ts)
        for a, b in zip(out, ref, strict=True):
            torch.testing.assert_close(a, b, atol=1e-9, rtol=0)


def test_several_cameras_and_resizing():
    g = _random_scene(40, seed=3, dtype=torch.float32)
    cams = Cameras.orbit(3, radius=3.0, target=(0.0, 0.0, 3.0), width=32, height=32)
    out = render(g, cams, backend="torch")
    assert out.rgb.shape == (3, 3, 32, 32)
    single = render(g, cams[1], backend="torch")
    torch.testing.assert_close(out.rgb[1], single.rgb[0])
    half = render(g, cams, width=16, backend="torch")  # height follows the aspect ratio
    assert half.rgb.shape == (3, 3, 16, 16)
    # Coarser image of the same view: mean colour stays close.
    assert abs(half.rgb.mean().item() - out.rgb.mean().item()) < 0.05


def test_view_dependent_colour_uses_the_view_direction():
    # Degree-1 SH with only the "z" band: colour = 0.5 + C0*dc + C1 * z_dir * c (gsplat's sign).
    cam = _front_camera(32, 24)
    g = _one([0.5 * 2 / 30, 0.5 * 2 / 30, 2.0], [0.5, 0.5, 0.5]).with_sh_degree(1)
    g.sh[0, 2] = torch.tensor([0.4, 0.0, -0.4])
    d = torch.nn.functional.normalize(g.means[0], dim=0)
    expect = 0.5 + 0.4886025119029199 * d[2] * torch.tensor([0.4, 0.0, -0.4])
    out = render(g, cam, backend="torch")
    torch.testing.assert_close(out.rgb[0, :, 12, 16], expect * 0.999, atol=1e-5, rtol=0)
    dc_only = render(g, cam, backend="torch", sh_degree=0)
    torch.testing.assert_close(dc_only.rgb[0, :, 12, 16], torch.full((3,), 0.5 * 0.999), atol=1e-5, rtol=0)


# --- gradients ----------------------------------------------------------------------------------


def _tiny_params(seed: int = 4):
    g = _random_scene(6, seed=seed, spread=0.25)
    g.scales = g.scales * 2.5
    return g


def test_gradcheck_float64():
    g0 = _tiny_params()
    cam = Cameras.orbit(1, radius=3.0, elevation_deg=10, target=(0.0, 0.0, 3.0), width=12, height=12).to(dtype=torch.float64)
    cam = Cameras(cam.c2w, cam.K, 12, 12)
    weights = torch.rand(1, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(means, log_scales, quats, logit_op, sh):
        g = Gaussians(means, quats, log_scales.exp(), torch.sigmoid(logit_op), sh)
        out = render(g, cam, background=0.2, backend="torch")
        return (out.rgb * weights).sum() + 0.1 * (out.depth * out.alpha).sum()

    inputs = (
        g0.means.clone().requires_grad_(),
        g0.scales.log().requires_grad_(),
        g0.quats.clone().requires_grad_(),
        torch.logit(g0.opacities).requires_grad_(),
        g0.sh.clone().requires_grad_(),
    )
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


def test_gradients_reach_every_parameter_and_match_finite_differences():
    g = _random_scene(30, seed=5, dtype=torch.float64)
    cam = Cameras.orbit(1, radius=3.0, target=(0.0, 0.0, 3.0), width=24, height=24).to(dtype=torch.float64)
    cam = Cameras(cam.c2w, cam.K, 24, 24)
    params = {k: getattr(g, k).clone().requires_grad_() for k in ("means", "quats", "scales", "opacities", "sh")}
    loss = lambda p: render(Gaussians(**p), cam, backend="torch").rgb.square().sum()
    loss(params).backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # Central differences along the gradient direction (a directional derivative per parameter).
    for name, p in params.items():
        d = p.grad / p.grad.norm()
        h = 1e-5
        plus = {k: (v.detach() + h * d if k == name else v.detach()) for k, v in params.items()}
        minus = {k: (v.detach() - h * d if k == name else v.detach()) for k, v in params.items()}
        fd = (loss(plus) - loss(minus)) / (2 * h)
        assert fd.item() == pytest.approx(p.grad.norm().item(), rel=1e-4), name


def test_checkpointed_chunks_give_the_same_gradients():
    g = _random_scene(40, seed=6, dtype=torch.float64)
    cam = Cameras.orbit(1, radius=3.0, target=(0.0, 0.0, 3.0), width=20, height=20).to(dtype=torch.float64)
    cam = Cameras(cam.c2w, cam.K, 20, 20)
    grads = []
    for max_elements in (1 << 20, 512):
        m = g.means.clone().requires_grad_()
        render(Gaussians(m, g.quats, g.scales, g.opacities, g.sh), cam, backend="torch", max_elements=max_elements).rgb.sum().backward()
        grads.append(m.grad)
    torch.testing.assert_close(grads[0], grads[1])


# --- errors ------------------------------------------------------------------------------------


def test_bad_inputs_give_clear_errors():
    cam = _front_camera()
    g = _one([0.0, 0.0, 2.0], [1.0, 0.0, 0.0])
    with pytest.raises(InputError, match="backend"):
        render(g, cam, backend="vulkan")
    with pytest.raises(InputError, match="sh_degree"):
        render(g, cam, sh_degree=2)
    with pytest.raises(InputError, match="background"):
        render(g, cam, background=(1.0, 0.0))
    bad = _one([0.0, 0.0, 2.0], [1.0, 0.0, 0.0])
    bad.means[0, 0] = float("nan")
    with pytest.raises(InputError, match="means"):
        render(bad, cam)
    with pytest.raises(InputError, match="Cameras"):
        render(g, "camera")  # type: ignore[arg-type]


def test_gsplat_backend_on_cpu_is_a_clear_error():
    with pytest.raises(GsplatUnavailableError, match="gsplat"):
        resolve_backend("gsplat", torch.device("cpu"), torch.float32)
    assert resolve_backend("auto", torch.device("cpu"), torch.float32) == "torch"


def test_projection_matches_gsplats_own_torch_reference():
    """Where gsplat is installed (no GPU needed): its private pure-PyTorch projection as an oracle."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gsplat")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gsplat is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "cuda" / "_torch_impl.py"
    mod_spec = importlib.util.spec_from_file_location("_gsplat_torch_impl", path)
    ref = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(ref)  # loaded by path: no CUDA extension is touched

    from vist3a.gaussians.render_torch import covariance_3d

    g = _random_scene(2000, seed=7, spread=1.0)
    cams = Cameras.orbit(2, radius=3.0, target=(0.0, 0.0, 3.0), width=64, height=48).to(dtype=torch.float64)
    for c in range(2):
        radii, means2d, depths, conics, comp = ref._fully_fused_projection(
            g.means, covariance_3d(g.quats, g.scales), cams.w2c[c : c + 1], cams.K[c : c + 1], 64, 48,
            calc_compensations=True,
        )  # fmt: skip
        ours = project_gaussians(g.means, g.quats, g.scales, g.opacities, cams.w2c[c], cams.K[c], 64, 48, antialiased=True)
        both = (radii[0] > 0).all(-1) & ours.valid
        assert both.sum() > 500
        assert not (ours.valid & ~(radii[0] > 0).all(-1)).any()  # we cull at least what it culls
        torch.testing.assert_close(ours.means2d[both], means2d[0][both])
        torch.testing.assert_close(ours.conics[both], conics[0][both])
        torch.testing.assert_close(ours.depths[both], depths[0][both])
        torch.testing.assert_close(ours.opacities[both], (g.opacities * comp[0])[both])


def test_tile_size_choice_tracks_the_work_of_semi_transparent_medium_splats():
    # Many ~10 px splats of opacity 0.8 layered in depth (a partly trained reconstruction): tiles stop late,
    # so a 32 px tile composites hundreds of splats per pixel. The chosen edge must cost about the least
    # renderer work as counted by the renderer itself (binned pairs + pixel evaluations of composited pairs).
    gen = torch.Generator().manual_seed(3)
    n, size = 6000, 96
    means = torch.rand(n, 3, generator=gen)
    means[:, 2] = 2.0 + 2.0 * means[:, 2]
    means[:, :2] = (2.0 * means[:, :2] - 1.0) * 0.55 * means[:, 2:]
    scales = (means[:, 2:] / 36).expand(n, 3).clone()  # 3 sigma = 8 px at f = 96 (radius ~10 px)
    g = Gaussians(means, torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).clone(), scales, torch.full((n,), 0.8),
                  torch.rand(n, 1, 3, generator=gen) - 0.5)  # fmt: skip
    cam = _front_camera(size, size, float(size))
    w2c, K = torch.linalg.inv(cam.c2w), cam.K
    proj = project_gaussians(g.means, g.quats, g.scales, g.opacities, w2c[0], K[0], size, size)
    v = proj.valid
    work = {}
    for ts in (4, 8, 16, 32):
        stats: dict[str, int] = {}
        render_torch(g.means, g.quats, g.scales, g.opacities, g.sh, w2c, K, size, size, 0, tile_size=ts, stats=stats)
        work[ts] = BIN_PAIR_COST * stats["intersections"] + PIXEL_PAIR_COST * ts * ts * stats["visited"]
    chosen = choose_tile_size(proj.means2d[v], proj.radii[v], size, size)
    assert work[chosen] <= 1.3 * min(work.values()), (chosen, work)
    assert chosen != 32
