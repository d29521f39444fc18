"""Recon stage geometry (issue 9 diagnosis): rendering-loss cameras, depth/pose metrics, the clip cache."""

from __future__ import annotations

import math

import pytest
import torch

from anysplat_tiny import TINY
from vist3a.errors import InputError
from vist3a.models.anysplat import anysplat_mini
from vist3a.models.geometry import se3_inverse
from vist3a.models.pose_encoding import matrix_to_quat_xyzw
from vist3a.train.mini_loop import MiniTrainConfig
from vist3a.train.mini_recon import ClipCache, ReconTask, depth_errors, normalise_clip, pose_errors
from vist3a.world.dataset import WorldDataset

TINY_RECON = dict(TINY, image_size=28, pos_embed_img_size=28)


def cfg(out, **extra):
    return MiniTrainConfig(out=out, steps=2, batch=1, lr=1e-4, warmup=0, train_scenes=2, eval_scenes=1, frames=3,
                           size=28, shadows=False, eval_every=0, ckpt_every=100, extra={"context": 2, **extra})  # fmt: skip


def task(tmp_path, **extra):
    torch.manual_seed(0)
    return ReconTask(anysplat_mini(**TINY_RECON), cfg(tmp_path, **extra), torch.device("cpu"))


def test_render_loss_places_gaussians_with_ground_truth_cameras(tmp_path):
    """Default ``render_cameras="gt"``: the rendered Gaussians are the predicted depth unprojected with the
    ground-truth cameras (independent pixel-ray computation), and the rendering loss sends no gradient
    to the camera head (it learns from the camera loss only). With "pred" it does (the old behaviour)."""
    t = task(tmp_path, w_depth=0.0, w_camera=0.0)
    clip = t._clips(t.train_set, [0])
    out = t.model(clip["images"][:, t.ctx], voxelize=False)
    means = t.gt_camera_gaussians(out, clip)[0].means.reshape(len(t.ctx), 28, 28, 3)
    v, y, x = 1, 5, 17  # context view 1 = frame 2
    d = float(out.depth[0, v, y, x, 0].detach())
    k, c2w = clip["K"][0, t.ctx[v]].double(), clip["c2w"][0, t.ctx[v]].double()
    cam = torch.tensor([(x - k[0, 2]) / k[0, 0] * d, (y - k[1, 2]) / k[1, 1] * d, d], dtype=torch.float64)
    expect = c2w[:3, :3] @ cam + c2w[:3, 3]
    torch.testing.assert_close(means[v, y, x].double(), expect, atol=1e-4, rtol=1e-4)

    def camera_grad(tk):
        tk.model.zero_grad(set_to_none=True)
        tk.loss([0], 0, torch.autocast("cpu", enabled=False))["total"].backward()
        return sum(p.grad.abs().sum() for p in tk.model.encoder.camera_head.parameters() if p.grad is not None)

    assert camera_grad(t) == 0
    assert camera_grad(task(tmp_path / "p", w_depth=0.0, w_camera=0.0, render_cameras="pred")) > 0


def test_depth_errors_known_values():
    gt = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    pred = torch.tensor([[9.0, 2.0], [2.0, 1.0]])
    e = depth_errors(pred, gt)  # the sky pixel (gt 0) is ignored
    assert float(e["l1"]) == pytest.approx((1 + 0 + 3) / 3)
    assert float(e["log"]) == pytest.approx((math.log(2) + 0 + math.log(4)) / 3)
    assert float(e["absrel"]) == pytest.approx((1 + 0 + 0.75) / 3)


def test_pose_errors_known_rotation_and_direction():
    def w2c(angle_deg, centre):
        a = math.radians(angle_deg)
        r = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64)
        c = torch.tensor(centre, dtype=torch.float64)
        m = torch.eye(4, dtype=torch.float64)
        m[:3, :3], m[:3, 3] = r, -r @ c
        return m

    gt = torch.stack([w2c(0, [0, 0, 0]), w2c(20, [1, 0, 0])])
    pred_m = torch.stack([w2c(0, [0, 0, 0]), w2c(30, [0, 0, 2])])  # 10° off, centre direction 90° off
    enc = torch.cat([pred_m[:, :3, 3], matrix_to_quat_xyzw(pred_m[:, :3, :3]), torch.ones(2, 2, dtype=torch.float64)], -1)
    e = pose_errors(enc, gt)
    assert e["rot_deg"] == pytest.approx(10.0, abs=1e-6)
    assert e["trans_dir_deg"] == pytest.approx(90.0, abs=1e-6)


def test_clip_cache_matches_render_and_reloads_shards(tmp_path):
    ds = WorldDataset(2, seed=3, frames=2, size=16, shadows=False)
    fresh = ds[1]
    cache = ClipCache(ds, tmp_path / "c", "train")
    got = cache[1]
    assert (got["images"] - fresh["images"]).abs().max() <= 0.5 / 255 + 1e-6  # uint8 storage
    torch.testing.assert_close(got["depth"], fresh["depth"], atol=0, rtol=1e-3)  # fp16 storage
    torch.testing.assert_close(got["c2w"], fresh["c2w"])
    shard = tmp_path / "c" / "train_00000.safetensors"
    assert shard.is_file()
    again = ClipCache(ds, tmp_path / "c", "train")
    again.ds = None  # must read the shard, not render
    torch.testing.assert_close(again[0]["images"], cache[0]["images"])
    other = ClipCache(WorldDataset(2, seed=4, frames=2, size=16, shadows=False), tmp_path / "c", "train")
    with pytest.raises(Exception, match="other settings"):
        other[0]
    # the normalised ground truth is unchanged by the cache
    c2w, _, s = normalise_clip(got["c2w"], got["depth"], [0, 1])
    c2w_ref, _, s_ref = normalise_clip(fresh["c2w"], fresh["depth"], [0, 1])
    assert s == pytest.approx(s_ref, rel=1e-3)
    torch.testing.assert_close(se3_inverse(c2w)[:, :3, :3], se3_inverse(c2w_ref)[:, :3, :3])


def test_unknown_recon_option_is_refused(tmp_path):
    with pytest.raises(Exception, match="unknown recon option"):
        task(tmp_path, w_dpeth=1.0)
    with pytest.raises(Exception, match="render_cameras"):
        task(tmp_path, render_cameras="both")


def test_cli_set_options_are_checked(tmp_path, capsys):
    from vist3a.cli import main

    base = ["world", "train-mini", "--out", str(tmp_path / "r"), "--steps", "1", "--device", "cpu"]
    assert main([*base, "--stage", "recon", "--set", "w_camera"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main([*base, "--stage", "vae", "--set", "w_camera=2"]) == 1
    assert main([*base, "--stage", "recon", "--set", "w_dpeth=1"]) == 1
    assert "unknown recon option" in capsys.readouterr().err


def test_geometry_only_steps_skip_rendering(tmp_path, monkeypatch):
    """w_render = w_mse = 0: no rasterisation at all, and the total is exactly the depth and camera terms."""
    from vist3a.train import mini_recon

    t = task(tmp_path, w_render=0.0, w_mse=0.0, w_depth=0.5, w_camera=2.0)

    def no_render(*a, **k):
        raise AssertionError("rendered in a geometry-only step")

    monkeypatch.setattr(mini_recon, "render", no_render)
    monkeypatch.setattr(t.model.encoder.gaussian_param_head, "forward", no_render)  # nor the Gaussian head
    terms = t.loss([0], 0, torch.autocast("cpu", enabled=False))
    assert float(terms["l1"]) == 0 and float(terms["mse"]) == 0
    torch.testing.assert_close(terms["total"], 0.5 * terms["depth_log"] + 2.0 * terms["camera"])
    terms["total"].backward()  # the camera and depth heads get gradients, the Gaussian head none
    enc = t.model.encoder
    assert sum(p.grad.abs().sum() for p in enc.camera_head.parameters() if p.grad is not None) > 0
    with_render = task(tmp_path / "r", w_depth=0.5, w_camera=2.0)
    monkeypatch.undo()
    assert float(with_render.loss([0], 0, torch.autocast("cpu", enabled=False))["l1"]) > 0


def test_eval_reports_the_static_camera_level(tmp_path):
    """``evaluate`` gives ``rot_deg_static``: the rotation error of predicting every view at view 0, which equals
    each view's rotation from view 0 (independently: the claim table's static_camera_errors on the same clip)."""
    from vist3a.eval.stitch_claim import static_camera_errors

    t = task(tmp_path)
    res = t.evaluate()
    clip = t._clips(t.eval_set, [0])
    want = static_camera_errors(clip["c2w"][0, t.ctx].double())["rot_deg"]
    assert res["rot_deg_static"] == pytest.approx(want, abs=1e-9)
    assert math.isfinite(res["rot_deg"])


def test_clip_cache_records_a_motion_restriction(tmp_path):
    ClipCache(WorldDataset(2, seed=3, frames=2, size=16, shadows=False, motion="pan"), tmp_path / "c", "train")[0]
    # the shard holds pan clips: a run on the world's mix must not read them as its own, nor a truck run
    for motion in (None, "truck"):
        other = ClipCache(WorldDataset(2, seed=3, frames=2, size=16, shadows=False, motion=motion), tmp_path / "c", "train")
        with pytest.raises(Exception, match="other settings"):
            other[0]
    again = ClipCache(WorldDataset(2, seed=3, frames=2, size=16, shadows=False, motion="pan"), tmp_path / "c", "train")
    again.ds = None  # must read the shard
    assert again[1]["images"].shape == (2, 3, 16, 16)


def test_motions_option_restricts_training_clips_only(tmp_path):
    t = task(tmp_path, motions="pan")
    assert t.train_set.motions == ("pan",) and t.eval_set.motions == ()
    c2w = t.train_set[1]["c2w"]  # a pan: every camera centre the same
    torch.testing.assert_close(c2w[:, :3, 3], c2w[:1, :3, 3].expand(3, 3), atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="unknown camera motion"):
        task(tmp_path, motions="spin")


def test_render_every_renders_only_on_its_steps(tmp_path, monkeypatch):
    """render_every = 3: steps 0 and 3 carry the rendering terms, 1 and 2 are geometry-only (no rasterisation)."""
    from vist3a.train import mini_recon

    t = task(tmp_path, render_every="3")
    calls = []
    real = mini_recon.render
    monkeypatch.setattr(mini_recon, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    off = torch.autocast("cpu", enabled=False)
    l1 = []
    for step in range(4):
        n = len(calls)
        terms = t.loss([0], step, off)
        l1.append(float(terms["l1"]))
        assert (len(calls) > n) == (step % 3 == 0), step
    assert l1[0] > 0 and l1[3] > 0 and l1[1] == 0 and l1[2] == 0
    # a rendering step's total: every term at weight 1 (the defaults)
    torch.testing.assert_close(terms["total"], terms["depth_log"] + terms["camera"] + terms["l1"] + terms["mse"])
    for bad in ("0", "-2", "1.5", "x"):
        with pytest.raises(InputError, match="render_every"):
            task(tmp_path / bad, render_every=bad)


def test_saturated_pixels_are_the_judges_object_pixels():
    """Palette colours (even their shaded sides) are object pixels; grey, beige floor, white sky and black are not."""
    from vist3a.world.judge import Judge, saturated

    px = torch.tensor([[1.0, 0.1, 0.1], [0.3, 0.03, 0.03], [0.5, 0.5, 0.5], [0.8, 0.75, 0.65], [1.0, 1.0, 1.0],
                       [0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [0.18, 0.36, 0.9]])  # fmt: skip
    img = px.T[:, None, :]  # [3, 1, 8]
    got = saturated(img)[0, 0].tolist()
    assert got == [True, True, False, False, False, False, False, True]
    # the same pixels as the judge's segmentation keeps them (any palette hue within its tolerance)
    j = Judge()
    big = img.repeat_interleave(8, 1).repeat_interleave(8, 2)[None]  # [1, 3, 8, 64]: 8x8 blocks beat the opening
    seg = torch.from_numpy(j.segment(big).any(1))[0, 4, 4::8]
    assert seg.tolist() == got


def test_object_weight_is_a_weighted_mean_of_the_rendering_error(tmp_path):
    """Known answer: an error of 1 on the object pixels only, object weight w, object fraction f →
    L1 = w·f / (w·f + 1 − f)."""
    t = task(tmp_path, object_weight=4.0)
    gt = torch.full((1, 1, 3, 4, 5), 0.5)
    gt[..., :, :2, :] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # 10 of 20 pixels red
    rgb = gt.clone()
    rgb[..., :, :2, :] -= 0.05
    l1, mse = t._photometric(rgb, gt)
    f, w = 10 / 20, 4.0
    assert float(l1) == pytest.approx(0.05 * w * f / (w * f + 1 - f), rel=1e-5)
    assert float(mse) == pytest.approx(0.05**2 * w * f / (w * f + 1 - f), rel=1e-4)
    plain = task(tmp_path / "p")._photometric(rgb, gt)[0]
    assert float(plain) == pytest.approx(0.05 * f, rel=1e-5)
    with pytest.raises(InputError, match="object_weight"):
        task(tmp_path / "z", object_weight=0.0)


def test_self_consistency_term_renders_at_the_networks_own_cameras(tmp_path, monkeypatch):
    """w_self: the network's own Gaussians rendered at its own context cameras against the context frames; unlike
    the GT-camera loss it reaches the camera head, and with every other weight 0 it is the whole total."""
    from vist3a.train import mini_recon

    t = task(tmp_path, w_render=0.0, w_mse=0.0, w_depth=0.0, w_camera=0.0, w_self=1.0)
    seen = []
    real = mini_recon.render

    def spy(g, cams, **k):
        seen.append(cams.c2w.detach().clone())
        return real(g, cams, **k)

    monkeypatch.setattr(mini_recon, "render", spy)
    t.model.zero_grad(set_to_none=True)
    terms = t.loss([0], 0, torch.autocast("cpu", enabled=False))
    own = seen[-1]  # the self term's render: the network's own context cameras
    clip = t._clips(t.train_set, [0])
    with torch.no_grad():
        pred = t.model(clip["images"][:, t.ctx], voxelize=False, gaussians=False).c2w[0]
    torch.testing.assert_close(own, pred.float(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(own[1], clip["c2w"][0, t.ctx[1]], atol=1e-3)  # not the ground truth
    assert float(terms["self"]) > 0
    torch.testing.assert_close(terms["total"], terms["self"])
    terms["total"].backward()
    assert sum(p.grad.abs().sum() for p in t.model.encoder.camera_head.parameters() if p.grad is not None) > 0
