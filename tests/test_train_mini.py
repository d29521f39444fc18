"""Training code of the mini model (issue 9): VAE and reconstruction stages on tiny configs, on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from anysplat_tiny import TINY
from vist3a.cli import main
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
    from vist3a.errors import InputError

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
