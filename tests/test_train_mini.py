"""Training code of the mini model (issue 9): VAE and reconstruction stages on tiny configs, on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from anysplat_tiny import TINY
from vist3a.cli import main
from vist3a.errors import InputError
from vist3a.models.anysplat import from_pretrained
from vist3a.models.video import wan_mini
from vist3a.train.mini_loop import MiniTrainConfig, step_indices
from vist3a.train.mini_recon import context_views, normalise_clip, train_recon
from vist3a.train.mini_vae import kl_standard_normal, train_vae, videos

TINY_VAE = dict(base_dim=8, dim_mult=[1, 2, 2, 2])
TINY_RECON = dict(TINY, image_size=28, pos_embed_img_size=28)
# the first runs' recipe, whose loss-drop threshold below was set for it (the new defaults are covered
# by tests/test_mini_recon_geometry.py)
RECON_V1 = {"render_cameras": "pred", "depth_loss": "l1", "w_depth": 0.5}


def vae_cfg(out, **kw):
    base = dict(out=out, steps=8, batch=1, lr=3e-3, warmup=0, train_scenes=1, eval_scenes=1, frames=5, size=32,
                shadows=False, eval_every=0, ckpt_every=100)  # fmt: skip
    return MiniTrainConfig(**{**base, **kw})


def recon_cfg(out, **kw):
    base = dict(out=out, steps=6, batch=1, lr=1e-4, warmup=0, train_scenes=1, eval_scenes=1, frames=3, size=28,
                shadows=False, eval_every=0, ckpt_every=100, extra={"context": 2, **RECON_V1})  # fmt: skip
    return MiniTrainConfig(**{**base, **kw})


class FakeClock:
    """Each call advances 60 s."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        t = self.t
        self.t += 60.0
        return t


# --------------------------------------------------------------------------------------- pieces
def test_kl_matches_torch_distributions():
    mean, logvar = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    p = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    q = torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    ref = torch.distributions.kl_divergence(p, q).mean()
    torch.testing.assert_close(kl_standard_normal(mean, logvar), ref)


def test_step_indices_are_epoch_permutations():
    steps = [step_indices(6, 2, seed=3, step=s) for s in range(3)]
    assert sorted(sum(steps, [])) == list(range(6))
    assert step_indices(6, 2, 3, 1) == steps[1]  # pure function of (seed, step)


def test_context_views():
    assert context_views(8, 1) == [0]
    assert context_views(8, 2) == [0, 7]
    assert context_views(5, 3) == [0, 2, 4]
    with pytest.raises(Exception, match="context"):
        context_views(3, 4)


def test_normalised_clip_is_the_first_camera_frame_scaled():
    """A pixel's 3D point from the normalised depth and camera equals the world point mapped into
    camera 0's frame and divided by the scale."""
    from vist3a.world.dataset import WorldDataset

    it = WorldDataset(1, seed=5, frames=3, size=32, shadows=False)[0]
    ctx = [0, 2]
    c2w, depth, s = normalise_clip(it["c2w"], it["depth"], ctx)
    torch.testing.assert_close(c2w[0], torch.eye(4), atol=1e-5, rtol=0)
    assert depth[ctx][depth[ctx] > 0].mean().item() == pytest.approx(1.0, rel=1e-5)
    v, y, x = 1, 10, 20
    assert it["depth"][v, y, x] > 0
    kinv = torch.linalg.inv(it["K"][v].double())
    ray = kinv @ torch.tensor([x + 0.5, y + 0.5, 1.0], dtype=torch.float64)
    cam = lambda d: ray * d  # noqa: E731
    world = it["c2w"][v].double() @ torch.cat([cam(float(it["depth"][v, y, x])), torch.ones(1, dtype=torch.float64)])
    expect = (torch.linalg.inv(it["c2w"][0].double()) @ world)[:3] / s
    got = c2w[v].double() @ torch.cat([cam(float(depth[v, y, x])), torch.ones(1, dtype=torch.float64)])
    torch.testing.assert_close(got[:3], expect, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------ VAE
def test_vae_overfits_and_exports_fp16(tmp_path):
    vm = wan_mini(components=("vae",), vae_config=TINY_VAE, seed=0)
    cfg = vae_cfg(tmp_path / "run")
    res = train_vae(cfg, video_model=vm, progress=False)
    assert res.finished and res.step == 8
    assert sum(res.losses[-2:]) / 2 < 0.8 * res.losses[0]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["eval"]["psnr"] > 0 and metrics["export"]["dtype"] == "float16"

    loaded = wan_mini(weights=tmp_path / "run" / "wan_mini", components=("vae",))
    assert loaded.vae.config.latents_mean == pytest.approx(metrics["export"]["latents_mean"])
    # the fitted stats are the held-out latents' per-channel moments
    from vist3a.world.dataset import WorldDataset

    held = WorldDataset(1, seed=cfg.eval_seed, frames=5, size=32, shadows=False)
    video = videos(held, [0], torch.device("cpu"))
    with torch.no_grad():
        z = vm.vae.encode(video).latent_dist.mode()
        assert loaded.vae.config.latents_mean == pytest.approx(z.transpose(0, 1).flatten(1).mean(1).tolist(), abs=1e-4)
        ref = vm.decode(z)
        got = loaded.decode(z)
    torch.testing.assert_close(got, ref, atol=2e-2, rtol=0)
    assert (got - ref).abs().mean() < 2e-3


def test_vae_resume_reproduces_losses(tmp_path):
    kw = dict(steps=4, train_scenes=3, batch=1, ema=0.9)  # the EMA is resumed too
    full = train_vae(vae_cfg(tmp_path / "a", **kw), vae_config=TINY_VAE, progress=False)
    part = train_vae(vae_cfg(tmp_path / "b", **kw), vae_config=TINY_VAE, progress=False, stop_after=2)
    assert not part.finished and part.step == 2
    assert not (tmp_path / "b" / "metrics.json").exists()
    with pytest.raises(Exception, match="--resume"):
        train_vae(vae_cfg(tmp_path / "b", **kw), vae_config=TINY_VAE, progress=False)
    rest = train_vae(vae_cfg(tmp_path / "b", **kw), vae_config=TINY_VAE, progress=False, resume=True)
    assert rest.finished and rest.losses == full.losses


def test_time_budget_stops_with_a_checkpoint(tmp_path):
    cfg = vae_cfg(tmp_path / "t", steps=5, minutes=1.5)
    res = train_vae(cfg, vae_config=TINY_VAE, progress=False, clock=FakeClock())
    # clock: start 0 s (deadline 90 s); after step 1: 60 s, after step 2: 120 s -> stop
    assert not res.finished and res.step == 2
    assert res.checkpoint is not None and res.checkpoint.name == "step_00000002.pt"
    assert (tmp_path / "t" / "checkpoints" / "latest").read_text().strip() == "step_00000002.pt"
    # the weights so far are exported as well, marked unfinished
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["finished"] is False and metrics["steps"] == 2
    assert (tmp_path / "t" / "wan_mini" / "vae").is_dir()


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="1\\+4k"):
        train_vae(vae_cfg(tmp_path / "f", frames=6), vae_config=TINY_VAE, progress=False)
    with pytest.raises(InputError, match="--steps"):
        train_vae(vae_cfg(tmp_path / "s", steps=0), vae_config=TINY_VAE, progress=False)
    with pytest.raises(InputError, match="multiple of 14"):
        train_recon(recon_cfg(tmp_path / "r", size=30), overrides=TINY_RECON, progress=False)


# ---------------------------------------------------------------------------------------- recon
def test_recon_overfits_resumes_and_exports(tmp_path):
    torch.manual_seed(0)
    full = train_recon(recon_cfg(tmp_path / "a"), overrides=TINY_RECON, progress=False)
    assert full.finished
    assert sum(full.losses[-2:]) / 2 < 0.75 * full.losses[0]
    ev = full.evals[-1][1]
    assert 0 < ev["nvs_psnr"] < 100 and -1 <= ev["nvs_ssim"] <= 1

    torch.manual_seed(0)
    part = train_recon(recon_cfg(tmp_path / "b"), overrides=TINY_RECON, progress=False, stop_after=3)
    assert part.step == 3 and not part.finished
    rest = train_recon(recon_cfg(tmp_path / "b"), overrides=TINY_RECON, progress=False, resume=True)
    assert rest.losses == full.losses

    a = from_pretrained(tmp_path / "a" / "anysplat_mini")
    b = from_pretrained(tmp_path / "b" / "anysplat_mini")
    images = torch.rand(1, 2, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        da, db = a(images, voxelize=False).depth, b(images, voxelize=False).depth
    torch.testing.assert_close(da, db)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_train_mini_refuses_then_resumes(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["world", "train-mini", "--stage", "vae", "--out", str(out), "--steps", "2", "--batch", "1",
            "--frames", "5", "--size", "16", "--train-scenes", "2", "--eval-scenes", "1", "--warmup", "0",
            "--no-shadows", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    assert "finished at step 2/2" in capsys.readouterr().out
    assert (out / "wan_mini" / "vae").is_dir()
    assert main(args) == 1  # refuses to overwrite a run without --resume
    assert main([*args[:7], "3", *args[8:], "--resume"]) == 0
    assert "finished at step 3/3" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ GPU
@pytest.mark.gpu
def test_gpu_both_stages_bf16(tmp_path):
    """Both stages run on CUDA under bf16 autocast (mini widths, small clips) and export."""
    vae = train_vae(vae_cfg(tmp_path / "v", steps=4, size=64, frames=5, batch=2, train_scenes=4), device="cuda",
                    progress=False)  # fmt: skip
    assert vae.finished and all(torch.isfinite(torch.tensor(vae.losses)))
    assert wan_mini(weights=tmp_path / "v" / "wan_mini", components=("vae",), device="cuda").vae.config.latents_std
    rec = train_recon(recon_cfg(tmp_path / "r", steps=4, size=112, frames=4, batch=2, train_scenes=4), device="cuda",
                      progress=False)  # fmt: skip
    assert rec.finished and all(torch.isfinite(torch.tensor(rec.losses)))
    assert 0 < rec.evals[-1][1]["nvs_psnr"] < 100


def test_vae_object_weight_is_the_weighted_l1_over_object_pixels(tmp_path):
    """--object-weight W: object pixels (world ids > 0) count W times floor and sky in the L1 term."""
    import contextlib
    from types import SimpleNamespace

    from vist3a.train.mini_vae import VaeTask

    class ZeroVae(torch.nn.Module):  # decodes everything to 0, so the L1 error is |video|
        def encode(self, x):
            m = torch.zeros(x.shape[0], 16, 2, 4, 4)
            return SimpleNamespace(latent_dist=SimpleNamespace(mean=m, std=torch.zeros_like(m), logvar=torch.zeros_like(m)))

        def decode(self, z):
            return SimpleNamespace(sample=torch.zeros(z.shape[0], 3, 5, 32, 32))

    vm = wan_mini(weights=None, components=("vae",), vae_config=TINY_VAE)
    cfg = vae_cfg(tmp_path, train_scenes=2, max_objects=4, extra={"object_weight": 5.0})
    task = VaeTask(vm, cfg, torch.device("cpu"))
    task.model = ZeroVae()
    item = task.train_set[0]
    video = item["images"].permute(1, 0, 2, 3) * 2 - 1  # 3, T, S, S
    w = 1 + 4 * (item["ids"] > 0).float()  # T, S, S
    assert (item["ids"] > 0).any() and (item["ids"] <= 0).any()
    expected = (video.abs() * w).sum() / (w.sum() * 3)
    got = task.loss([0], 0, contextlib.nullcontext())["l1"]
    torch.testing.assert_close(got, expected)
    task.object_weight = 1.0
    torch.testing.assert_close(task.loss([0], 0, contextlib.nullcontext())["l1"], video.abs().mean())


def test_vae_eval_colour_metrics_are_zero_for_a_perfect_vae_and_the_chroma_for_a_grey_one(tmp_path):
    """evaluate(): ``chroma_l1`` is 0 for an exact reconstruction and, for a VAE that outputs each pixel's grey
    level, the mean |pixel − its grey level| over object pixels; ``object_psnr`` is the PSNR over those pixels."""
    from types import SimpleNamespace

    from vist3a.train.mini_vae import VaeTask

    class EchoVae(torch.nn.Module):  # the "latent" is the video itself; decode optionally drops the colour
        grey = False

        def __init__(self) -> None:
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def encode(self, x):
            return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: x))

        def decode(self, z):
            return SimpleNamespace(sample=z.mean(1, keepdim=True).expand_as(z) if self.grey else z)

    vm = wan_mini(weights=None, components=("vae",), vae_config=TINY_VAE)
    task = VaeTask(vm, vae_cfg(tmp_path, eval_scenes=2, max_objects=4), torch.device("cpu"))
    task.model = EchoVae()
    ev = task.evaluate()
    assert ev["chroma_l1"] == 0.0 and ev["psnr"] == 100.0
    task.model.grey = True
    mask = torch.cat([task.eval_set[i]["ids"].flatten() > 0 for i in range(2)])  # T*S*S per scene
    rgb = torch.cat([task.eval_set[i]["images"].permute(1, 0, 2, 3).flatten(1) for i in range(2)], 1)  # 3, N
    obj = rgb[:, mask]
    chroma = (obj - obj.mean(0, keepdim=True)).abs().mean()
    se = (obj - obj.mean(0, keepdim=True)).pow(2).mean()
    ev = task.evaluate()
    assert ev["chroma_l1"] == pytest.approx(float(chroma), rel=1e-4)
    assert ev["object_psnr"] == pytest.approx(float(-10 * torch.log10(se)), abs=1e-3)


def test_reconstruction_metrics_of_a_grey_offset():
    """A uniform offset of 0.1 (in [0, 1] units) is 20 dB everywhere and has no colour part; no clips is an error."""
    from vist3a.train.mini_vae import reconstruction_metrics

    video = torch.rand(1, 3, 5, 8, 8) * 1.6 - 0.8
    mask = torch.zeros(1, 1, 5, 8, 8, dtype=torch.bool)
    mask[..., 2:5, 2:5] = True
    got = reconstruction_metrics([(video + 0.2, video, mask)])
    assert got["psnr"] == pytest.approx(20.0, abs=1e-3) and got["object_psnr"] == pytest.approx(20.0, abs=1e-3)
    assert got["chroma_l1"] == pytest.approx(0.0, abs=1e-6)
    red = video.clone()
    red[:, 0] += 0.2  # 0.1 on red only: the colour part is (2, -1, -1) / 30, mean |.| = 4/90
    assert reconstruction_metrics([(red, video, mask)])["chroma_l1"] == pytest.approx(4 / 90, rel=1e-4)
    with pytest.raises(InputError, match="at least one clip"):
        reconstruction_metrics([])


class _ZeroDecoder(torch.nn.Module):
    """A VAE stand-in that decodes every latent to grey 0 at 8x its size: the error is then -video."""

    def encode(self, x):
        from types import SimpleNamespace

        t = 1 + (x.shape[2] - 1) // 4
        m = torch.zeros(x.shape[0], 16, t, x.shape[3] // 8, x.shape[4] // 8)
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=m, std=torch.zeros_like(m), logvar=torch.zeros_like(m)))

    def decode(self, z):
        from types import SimpleNamespace

        return SimpleNamespace(sample=torch.zeros(z.shape[0], 3, 1 + 4 * (z.shape[2] - 1), z.shape[3] * 8, z.shape[4] * 8))


def test_vae_chroma_term_is_the_colour_part_of_the_error_on_objects(tmp_path):
    import contextlib

    from vist3a.train.mini_vae import VaeTask

    vm = wan_mini(weights=None, components=("vae",), vae_config=TINY_VAE)
    task = VaeTask(vm, vae_cfg(tmp_path, train_scenes=2, max_objects=4, extra={"chroma_weight": 2.0}), torch.device("cpu"))
    task.model = _ZeroDecoder()
    item = task.train_set[0]
    video = item["images"].permute(1, 0, 2, 3) * 2 - 1  # 3, T, S, S
    obj = item["ids"] > 0  # T, S, S
    # the error is -video; its colour part is |v_c - mean_c v| averaged over channels, on object pixels only
    expected = (video - video.mean(0, keepdim=True)).abs().mean(0)[obj].mean()
    terms = task.loss([0], 0, contextlib.nullcontext())
    torch.testing.assert_close(terms["chroma"], expected)
    torch.testing.assert_close(terms["total"], terms["l1"] + 1e-6 * terms["kl"] + 2.0 * expected)
    assert float(expected) > 0.05  # the world's objects are saturated: a grey decoder is far off


def test_vae_crop_windows_hold_an_object_and_bad_crops_are_refused(tmp_path):
    import contextlib

    from vist3a.train.mini_vae import VaeTask

    vm = wan_mini(weights=None, components=("vae",), vae_config=TINY_VAE)
    task = VaeTask(vm, vae_cfg(tmp_path, train_scenes=3, max_objects=4, extra={"crop": 16}), torch.device("cpu"))
    items = [task.train_set[i] for i in range(3)]
    from vist3a.train.mini_vae import as_video, object_mask

    video, mask = as_video(items, task.device), object_mask(items, task.device)
    for step in range(4):
        v, m = task._crop(video, mask, step)
        assert v.shape[-2:] == (16, 16) and m.shape[-2:] == (16, 16)
        assert all(bool(m[b, 0, 0].any()) for b in range(3))  # the window holds an object pixel of frame 0
        # the window is the video at a grid-aligned offset
        for b in range(3):
            hits = [(y, x) for y in range(0, 32 - 15, 8) for x in range(0, 32 - 15, 8)
                    if torch.equal(video[b, ..., y : y + 16, x : x + 16], v[b])]  # fmt: skip
            assert hits
    task.model = _ZeroDecoder()
    assert torch.isfinite(task.loss([0, 1], 0, contextlib.nullcontext())["total"])
    for bad in (12, 40, "x", -8):
        with pytest.raises(InputError, match="crop"):
            VaeTask(vm, vae_cfg(tmp_path / str(bad), extra={"crop": bad}), torch.device("cpu"))
    with pytest.raises(InputError, match="unknown vae option"):
        VaeTask(vm, vae_cfg(tmp_path / "u", extra={"chroma": 1}), torch.device("cpu"))


def test_vae_decoder_only_keeps_the_encoder_and_the_latent_stats(tmp_path):
    vm = wan_mini(components=("vae",), vae_config=TINY_VAE, seed=0)
    stats = ([0.5 + 0.1 * c for c in range(16)], [1.0 + 0.2 * c for c in range(16)])  # "what the DiT saw"
    vm.set_latent_stats(*stats)
    stats = (list(vm.vae.config.latents_mean), list(vm.vae.config.latents_std))  # as stored (float32-rounded)
    before = {k: v.clone() for k, v in vm.vae.state_dict().items()}
    cfg = vae_cfg(tmp_path, steps=3, extra={"decoder_only": 1, "chroma_weight": 1.0})
    train_vae(cfg, video_model=vm, progress=False)
    after = vm.vae.state_dict()
    exported = wan_mini(weights=tmp_path / "wan_mini", components=("vae",)).vae.config
    assert list(exported.latents_mean) == stats[0] and list(exported.latents_std) == stats[1]
    enc = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    dec = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert enc and dec
    assert all(torch.equal(before[k], after[k]) for k in enc)
    assert any(not torch.equal(before[k], after[k]) for k in dec)
