"""The claim table (issue 9): metric helpers on analytic cases, noise injection, and an end-to-end tiny run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from repo_scripts import load_script
from test_stitch_train import TINY_RECON as STITCH_TINY_RECON  # noqa: E402
from test_stitch_train import TINY_SPEC, TINY_VAE  # noqa: E402
from vist3a.errors import InputError
from vist3a.eval.stitch_claim import (
    ROWS,
    ClaimConfig,
    add_latent_noise,
    camera_errors,
    claim_markdown,
    context_split,
    depth_absrel,
    latent_norm,
    relative_to_first,
    render_clip,
    rotation_error_deg,
    run_claim,
    static_camera_errors,
)
from vist3a.gaussians.cameras import look_at
from vist3a.stitching.stitched import StitchedDecoder
from vist3a.world.sample import make_sample

# the tiny pair of tests/test_stitch_train.py: AnySplat at 56² (4x4 tokens), VAE 64² -> 8x8 latent
TINY_RECON = dict(STITCH_TINY_RECON, image_size=56, pos_embed_img_size=56)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _rot_z(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])


def _cams(n: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    eyes = torch.randn(n, 3, generator=g) * 2 + torch.tensor([0.0, 0.0, -5.0])
    c2w = torch.stack([look_at(e, torch.zeros(3), torch.tensor([0.0, -1.0, 0.0])) for e in eyes])
    return c2w


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def test_context_split_even_odd():
    ctx, tgt = context_split(25)
    assert ctx == list(range(0, 25, 2)) and len(ctx) == 13
    assert tgt == list(range(1, 25, 2)) and len(tgt) == 12


def test_rotation_error_known_angle():
    r = torch.stack([_rot_z(a) for a in (0.0, 10.0, 90.0, 179.0)])
    err = rotation_error_deg(r, torch.eye(3).expand(4, 3, 3))
    assert torch.allclose(err, torch.tensor([0.0, 10.0, 90.0, 179.0], dtype=torch.float64), atol=1e-4)
    # symmetric and invariant to a common rotation
    base = _cams(4)[:, :3, :3]
    assert torch.allclose(rotation_error_deg(base @ r, base), rotation_error_deg(base, base @ r), atol=1e-5)


def test_camera_errors_zero_for_identical_and_known_offsets():
    gt = relative_to_first(_cams(5))
    e0 = camera_errors(gt, gt)
    assert e0["rot_deg"] < 1e-5 and e0["center_err"] < 1e-9 and e0["center_dir_deg"] < 1e-3
    # rotating every camera (after the first) by 5° about its own z axis: 5° rotation error, no centre error
    pred = gt.clone()
    pred[1:, :3, :3] = pred[1:, :3, :3] @ _rot_z(5.0).double()
    e = camera_errors(pred, gt)
    assert e["rot_deg"] == pytest.approx(5.0, abs=1e-4) and e["center_err"] < 1e-9
    # scaling the centres by 2: direction exact, centre error = mean |c|
    pred = gt.clone()
    pred[:, :3, 3] *= 2
    e = camera_errors(pred, gt)
    assert e["center_dir_deg"] < 1e-3
    assert e["center_err"] == pytest.approx(float(gt[1:, :3, 3].norm(dim=-1).mean()), rel=1e-9)


def test_static_camera_errors_are_the_views_offsets_from_view_0():
    # views rotated 0, 20, 40, 60 degrees about z and moved 0, 1, 2, 3 along x, in a world where view 0 is not
    # the identity: the static prediction errs by exactly those angles and distances
    base = torch.eye(4, dtype=torch.float64)
    base[:3, :3] = _rot_x(30.0).double()
    base[:3, 3] = torch.tensor([0.5, -1.0, 2.0])
    views = []
    for i in range(4):
        m = torch.eye(4, dtype=torch.float64)
        m[:3, :3] = _rot_z(20.0 * i).double()
        m[0, 3] = float(i)
        views.append(base @ m)
    e = static_camera_errors(torch.stack(views))
    assert e["rot_deg"] == pytest.approx((20 + 40 + 60) / 3, abs=1e-6)
    assert e["center_err"] == pytest.approx((1 + 2 + 3) / 3, abs=1e-9)
    # the ground truth itself as the prediction: camera_errors of the static guess are these numbers
    gt = relative_to_first(torch.stack(views))
    assert camera_errors(torch.eye(4, dtype=torch.float64).expand(4, 4, 4), gt)["rot_deg"] == pytest.approx(40.0)
    with pytest.raises(InputError, match="N >= 2"):
        static_camera_errors(torch.eye(4)[None])


def test_relative_to_first_undoes_a_similarity():
    c2w = _cams(4, seed=3).double()
    rel = relative_to_first(c2w)
    assert torch.allclose(rel[0], torch.eye(4, dtype=torch.float64), atol=1e-7)
    # a rigid motion of the world and a scale of 3 leave the scale-normalised relative poses unchanged
    t = torch.eye(4, dtype=torch.float64)
    t[:3, :3] = _rot_z(40.0).double()
    t[:3, 3] = torch.tensor([1.0, -2.0, 0.5])
    moved = t[None] @ c2w
    moved[:, :3, 3] *= 3.0
    assert torch.allclose(relative_to_first(moved, 1 / 3.0), rel, atol=1e-7)


def test_depth_absrel_analytic():
    gt = torch.rand(2, 8, 8) + 0.5
    gt[0, :2] = 0  # sky
    assert depth_absrel(gt.clone(), gt) == 0.0
    assert depth_absrel(gt * 1.1, gt) == pytest.approx(0.1, rel=1e-6)
    pred = gt.clone()
    pred[gt == 0] = 123.0  # sky pixels are ignored
    assert depth_absrel(pred, gt) == 0.0
    with pytest.raises(InputError, match="non-sky"):
        depth_absrel(gt, torch.zeros_like(gt))


def test_latent_noise_norm_ratio():
    z = torch.randn(2, 16, 2, 8, 8) * torch.tensor([1.0, 5.0]).view(2, 1, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    for alpha in (0.0, 0.05, 0.3):
        zn = add_latent_noise(z, alpha, generator=g)
        ratio = latent_norm(zn - z) / latent_norm(z)
        assert torch.allclose(ratio.flatten(), torch.full((2,), alpha), atol=0.02 * max(alpha, 1e-3) + 1e-7)
    # "l2": the noise per element is alpha * ||z||_F, i.e. sqrt(numel) times the RMS version
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
    n = z[0].numel()
    z_l2 = add_latent_noise(z, 1e-3, eps=eps, norm="l2")
    z_rms = add_latent_noise(z, 1e-3 * math.sqrt(n), eps=eps, norm="rms")
    assert torch.allclose(z_l2, z_rms, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(z_l2, z, atol=1e-3)
    with pytest.raises(InputError):
        add_latent_noise(z, -0.1)


def test_25_frame_even_views_vs_13_frame_path():
    """Non-orbit paths: the 25-frame clip's even views ARE the 13-frame path. Orbits: not (the arc is
    360·(T-1)/T), which is why the claim uses the 25-frame clip's own even/odd split."""
    same, differ = 0, 0
    for i in range(6):
        a, b = make_sample(i, 7919, 25, 64), make_sample(i, 7919, 13, 64)
        orbit = "orbit" in a.trajectory.phrase
        close = torch.allclose(a.cameras.c2w[::2], b.cameras.c2w, atol=1e-5)
        assert torch.allclose(a.cameras.K[::2], b.cameras.K)
        assert close != orbit, f"scene {i}: {a.trajectory.phrase}"
        same += close
        differ += not close
    assert same >= 1


def test_config_checks():
    with pytest.raises(InputError, match="1\\+4k"):
        ClaimConfig(frames=23).check()
    with pytest.raises(InputError, match="odd"):
        ClaimConfig(frames=24).check()
    with pytest.raises(InputError, match="noise-norm"):
        ClaimConfig(noise_norm="max").check()
    ClaimConfig().check()


# --------------------------------------------------------------------------------------------------
# end to end with tiny random models
# --------------------------------------------------------------------------------------------------
def _tiny_models():
    from vist3a.models.anysplat import anysplat_mini
    from vist3a.models.video import wan_mini

    torch.manual_seed(0)
    recon = anysplat_mini(**TINY_RECON)
    torch.manual_seed(1)
    dec = StitchedDecoder(
        anysplat_mini(**TINY_RECON), TINY_SPEC, "enc_blocks_1", (16, 2, 8, 8), image_size=56
    )
    video = wan_mini(components=("vae",), vae_config=TINY_VAE, seed=0)
    return recon, video, dec


def test_render_clip_ground_truth_frame():
    cfg = ClaimConfig(scenes=1, frames=9, video_size=64, recon_size=56)
    clip = render_clip(0, cfg)
    ctx, _ = context_split(9)
    assert (
        clip.video.shape == (9, 3, 64, 64)
        and clip.images.shape == (9, 3, 56, 56)
        and clip.depth.shape == (9, 56, 56)
    )
    assert torch.allclose(clip.c2w[0], torch.eye(4), atol=1e-5)
    d = clip.depth[ctx]
    assert float(d[d > 0].mean()) == pytest.approx(1.0, rel=1e-4)  # depths in units of the mean context depth
    assert clip.K[0, 0, 2] == pytest.approx(28.0)


def test_run_claim_end_to_end_tiny(tmp_path):
    recon, video, dec = _tiny_models()
    cfg = ClaimConfig(scenes=2, frames=9, video_size=64, recon_size=56, alphas=(0.0, 0.2), backend="torch")
    res = run_claim(recon, video, dec, cfg, lpips=None, progress=False)
    json.dumps(res)  # JSON-ready
    assert (
        res["scenes"] == [0, 1]
        and res["context_views"] == [0, 2, 4, 6, 8]
        and res["target_views"] == [1, 3, 5, 7]
    )
    for row in ROWS:
        r = res["rows"][row]
        assert len(r["per_scene"]) == 2
        for m in ("psnr", "ssim", "depth_absrel", "rot_deg", "center_err", "center_dir_deg"):
            assert r["mean"][m] is not None and math.isfinite(r["mean"][m]), (row, m)
            assert r["std"][m] >= 0
        assert r["mean"]["lpips"] is None
        assert 0 < r["mean"]["psnr"] < 100 and -1 <= r["mean"]["ssim"] <= 1
    rob = res["robustness"]
    assert rob["alphas"] == [0.0, 0.2]
    for row in ("two_stage", "stitched"):
        for m in ("psnr", "depth_absrel"):
            assert len(rob[row][m]["mean"]) == 2 and all(math.isfinite(v) for v in rob[row][m]["mean"])
            assert [len(v) for v in rob[row][m]["per_scene"]] == [2, 2]
    # alpha = 0 is exactly the clean rows (b) and (c)
    for row in ("two_stage", "stitched"):
        clean = [s["psnr"] for s in res["rows"][row]["per_scene"]]
        assert rob[row]["psnr"]["per_scene"][0] == pytest.approx(clean, rel=1e-5)
    vp = res["vae_psnr"]
    assert len(vp["per_scene"]) == 2 and math.isfinite(vp["mean"]) and vp["std"] >= 0
    sc = res["static_camera"]
    assert [s["scene"] for s in sc["per_scene"]] == [0, 1] and sc["rot_deg"]["mean"] >= 0
    md = res["markdown"]
    assert md == claim_markdown(res)
    assert "(c) stitched decoder on latent" in md and "n/a" in md and "| 0.2 |" in md
    assert f"static camera (every context view predicted at view 0): rot. err {sc['rot_deg']['mean']:.2f}" in md


def test_run_claim_rejects_bad_frames():
    recon, video, dec = _tiny_models()
    with pytest.raises(InputError, match="1\\+4k"):
        run_claim(
            recon, video, dec, ClaimConfig(scenes=1, frames=11, video_size=64, recon_size=56), lpips=None
        )


def _script(name: str = "mini_claim"):
    """A benchmarks/ script loaded as a module."""
    return load_script(f"benchmarks/{name}.py")


def test_script_loads_a_trained_stitched_folder(tmp_path):
    """`vist3a stitch train` writes stitched.safetensors + stitched.json; the script rebuilds the decoder on
    its own copy of the reconstructor and loads the trained state (LoRA included), by file or folder."""
    from vist3a.stitching.export import save_trained

    recon, _, dec = _tiny_models()
    dec.recon.load_state_dict(recon.state_dict())
    dec.requires_grad_(False)
    dec.add_lora("r2,a4")
    with torch.no_grad():
        for name, p in dec.named_parameters():
            if "lora_B" in name or "stitching_layer" in name:
                p.add_(0.01 * torch.randn_like(p))
    save_trained(dec, tmp_path / "stitch", meta={"recon": "anysplat-mini"})
    mod = _script()
    want = dec.trainable_state_dict()
    for arg in (tmp_path / "stitch" / "stitched.safetensors", tmp_path / "stitch"):
        got = mod.load_stitched(str(arg), recon, torch.device("cpu"))
        assert got.recon is not recon  # a private copy: LoRA must not wrap the row-(a) network
        state = got.trainable_state_dict()
        assert set(state) == set(want)
        assert all(torch.equal(state[k], want[k].float()) for k in want)
    assert not any("lora" in n for n, _ in recon.named_modules())
    with pytest.raises(Exception, match="not found"):
        mod.load_stitched(str(tmp_path / "nope.safetensors"), recon, torch.device("cpu"))


@pytest.mark.gpu
def test_run_claim_tiny_cuda():
    recon, video, dec = _tiny_models()
    dev = torch.device("cuda")
    recon, video, dec = recon.to(dev), video.to(dev), dec.to(dev)
    cfg = ClaimConfig(scenes=1, frames=9, video_size=64, recon_size=56, alphas=(0.0, 0.1))
    res = run_claim(recon, video, dec, cfg, device=dev, lpips=None, progress=False)
    for row in ROWS:
        assert math.isfinite(res["rows"][row]["mean"]["psnr"]) and math.isfinite(
            res["rows"][row]["mean"]["rot_deg"]
        )


def _unproject(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """Pixel centres ``[V,H,W]`` at z-depth → world points ``[V,H,W,3]`` (OpenCV, pixel centres at +0.5)."""
    v, h, w = depth.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    out = []
    for i in range(v):
        k = K[i]
        x = (xs - k[0, 2]) / k[0, 0] * depth[i]
        y = (ys - k[1, 2]) / k[1, 1] * depth[i]
        cam = torch.stack([x, y, depth[i]], -1)
        out.append(cam @ c2w[i, :3, :3].T + c2w[i, :3, 3])
    return torch.stack(out)


def test_score_prediction_oracle_geometry_and_renders():
    """A prediction with the exact geometry in another frame (rigid motion, scale 3) scores 0 depth / camera
    error after the mean-depth alignment; Gaussians on the target views' exact pixels give a high PSNR."""
    from vist3a.eval.stitch_claim import Prediction, score_prediction
    from vist3a.gaussians.gaussians import Gaussians

    cfg = ClaimConfig(scenes=1, frames=9, video_size=64, recon_size=56, backend="torch")
    clip = render_clip(0, cfg)
    ctx, tgt = context_split(9)
    depth = clip.depth[tgt].clone()
    depth[depth == 0] = 50.0  # sky far away (the far plane is 100)
    pts = _unproject(depth, clip.K[tgt], clip.c2w[tgt]).reshape(-1, 3)
    cols = clip.images[tgt].permute(0, 2, 3, 1).reshape(-1, 3)
    size = (depth / clip.K[tgt][:, 0, 0].view(-1, 1, 1)).reshape(-1, 1).expand(-1, 3) * 0.6
    g = Gaussians.from_colors(pts, cols, size, torch.full((len(pts),), 0.99))
    # the predicted frame: a rigid motion of the world and 3x the scale
    t = torch.eye(4)
    t[:3, :3] = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))[0]
    if torch.linalg.det(t[:3, :3]) < 0:
        t[:3, :3] = -t[:3, :3]
    t[:3, 3] = torch.tensor([0.3, -1.0, 2.0])
    c2w = (t[None].double() @ clip.c2w[ctx].double()).float()
    c2w[:, :3, 3] *= 3.0
    pred = Prediction(g, c2w, clip.depth[ctx] * 3.0)
    s = score_prediction(pred, clip, cfg)
    assert s["depth_absrel"] == pytest.approx(0.0, abs=1e-6)
    assert s["depth_absrel_median"] == pytest.approx(0.0, abs=1e-6)
    assert s["depth_absrel_raw"] == pytest.approx(2.0, rel=1e-5)
    # a far tail (2 % of the pixels, 50x farther) that the prediction misses: mean scaling is thrown off by
    # it, median scaling is not (its error is only the tail's own: about 0.02 x 0.98)
    from dataclasses import replace

    gt_all = clip.depth.clone()
    d = gt_all[ctx]
    far = d >= d[d > 0].quantile(0.98)
    d[far] *= 50.0
    gt_all[ctx] = d
    t_s = score_prediction(pred, replace(clip, depth=gt_all), cfg)
    assert t_s["depth_absrel_median"] == pytest.approx(float(far.sum() / (d > 0).sum()) * 0.98, rel=0.05)
    assert t_s["depth_absrel"] > 5 * t_s["depth_absrel_median"]
    assert s["rot_deg"] < 0.05 and s["center_err"] < 1e-4 and s["center_dir_deg"] < 0.05
    assert s["psnr"] > 20 and s["lpips"] is None
    # control: the same Gaussians with shuffled colours render far worse at the same cameras
    perm = torch.randperm(len(pts), generator=torch.Generator().manual_seed(1))
    g_bad = Gaussians.from_colors(pts, cols[perm], size, torch.full((len(pts),), 0.99))
    s_bad = score_prediction(Prediction(g_bad, c2w, clip.depth[ctx] * 3.0), clip, cfg)
    assert s["psnr"] > s_bad["psnr"] + 6 and s["ssim"] > s_bad["ssim"] + 0.2
    # a wrong rotation of one camera shows up in the rotation error only
    bad = c2w.clone()
    bad[2, :3, :3] = bad[2, :3, :3] @ _rot_z(12.0)
    e = score_prediction(Prediction(g, bad, clip.depth[ctx] * 3.0), clip, cfg)
    assert e["rot_deg"] == pytest.approx(12.0 / (len(ctx) - 1), abs=0.05)


def test_depth_breakdown_scale_alignment_regions_and_edges():
    """The per-region depth breakdown: a prediction off by a global scale scores 0 everywhere (the claim
    table's mean-depth alignment); a step edge is found at its column; an error put only on the near half
    shows up in ``near`` and not in ``far``."""
    mod = _script("mini_claim_depth")
    gt = torch.full((2, 8, 10), 2.0)
    gt[:, :, 5:] = 4.0  # a depth step between columns 4 and 5
    exact = mod.breakdown(3.0 * gt, gt)
    assert exact["absrel"] == pytest.approx(0.0, abs=1e-6) and exact["edge"] == pytest.approx(0.0, abs=1e-6)
    edge = mod.edge_mask(gt, radius=1)
    assert edge[0, 0].tolist() == [False] * 3 + [True] * 4 + [False] * 3
    pred = gt.clone()
    pred[:, :, :5] *= 1.5  # only the near half is wrong; the alignment scale k spreads some error to far
    out = mod.breakdown(pred, gt)
    k = gt.mean() / pred.mean()  # 3 / 3.5
    assert out["near"] == pytest.approx(float((1.5 * k - 1).abs()), rel=1e-5)
    assert out["far"] == pytest.approx(float((k - 1).abs()), rel=1e-5)
    assert out["per_frame"] == pytest.approx([out["absrel"]] * 2)


def test_depth_breakdown_median_alignment_ignores_a_far_tail():
    """With a few horizon pixels 1000x farther, mean alignment mis-scales a prediction that is exact up to
    scale everywhere but there; median alignment scores the rest 0."""
    mod = _script("mini_claim_depth")
    gt = torch.ones(1, 10, 10)
    gt[0, 0, :2] = 1000.0
    pred = 2.0 * gt
    pred[0, 0, :2] = 2.0  # the prediction saturates at the horizon
    err_med, valid = mod.absrel_map(pred, gt, "median")
    assert float(err_med[0, 1:].max()) == pytest.approx(0.0, abs=1e-6)
    err_mean, _ = mod.absrel_map(pred, gt, "mean")
    assert float(err_mean[0, 1:].mean()) > 10.0  # k set by the tail: the near pixels are blown up
