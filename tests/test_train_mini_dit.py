"""The mini DiT stage (issue 10): latent cache, flow-matching loss, CFG dropout, resume, export, on CPU."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vist3a.errors import InputError
from vist3a.models.video import VideoModel, wan_mini
from vist3a.train.mini_dit import DitTask, flow_pair, load_trained_vae, shift_sigma, train_dit
from vist3a.train.mini_loop import MiniTrainConfig

TINY_VAE = dict(base_dim=8, dim_mult=[1, 2, 2, 2])
TINY_DIT = dict(num_attention_heads=2, attention_head_dim=16, ffn_dim=32, num_layers=1)


@pytest.fixture(scope="module")
def minilm():
    from vist3a.models.text import minilm_l6

    return minilm_l6(max_length=64)


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    """A VAE-stage-like export: tiny wan-mini VAE with fitted stats, fp16, under RUN/wan_mini."""
    vm = wan_mini(components=("vae",), vae_config=TINY_VAE, seed=0)
    vm.set_latent_stats(torch.linspace(-0.1, 0.1, 16), torch.linspace(0.5, 1.5, 16))
    vm.vae.to(torch.float16)
    run = tmp_path_factory.mktemp("vae_run")
    vm.save_pretrained(run / "wan_mini")
    return run / "wan_mini"


def cfg(out, **kw):
    base = dict(out=out, steps=4, batch=2, lr=1e-3, warmup=0, train_scenes=3, eval_scenes=1, frames=5, size=32,
                shadows=False, eval_every=0, ckpt_every=100, max_objects=2, extra={"cfg_drop": 0.3})  # fmt: skip
    return MiniTrainConfig(**{**base, **kw})


def run(out, vae_dir, minilm, **kw):
    opts = {k: kw.pop(k) for k in ("resume", "stop_after", "clock") if k in kw}
    return train_dit(cfg(out, **kw), vae_dir, dit_config=TINY_DIT, text_encoder=minilm, progress=False, **opts)


# ----------------------------------------------------------------------------- flow matching
def test_shift_and_pair_match_the_sampler():
    """σ schedule = FlowMatchEuler's shifted sigmas; an Euler step with the exact target velocity moves
    x_σ to x_σ' along the same straight path (so the training target is what the sampler integrates)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0)
    u = torch.arange(1000, 0, -1) / 1000  # the scheduler's training sigmas before the shift
    torch.testing.assert_close(shift_sigma(u, 5.0), sched.sigmas.float(), atol=1e-5, rtol=1e-5)
    sched.set_timesteps(10)
    torch.testing.assert_close(sched.timesteps.float(), sched.sigmas[:-1].float() * 1000, atol=1e-3, rtol=1e-5)

    x0, eps = torch.randn(1, 16, 2, 4, 4), torch.randn(1, 16, 2, 4, 4)
    s0, s1 = sched.sigmas[3].float(), sched.sigmas[4].float()
    x_t, v = flow_pair(x0, eps, s0.view(1))
    sched._step_index = 3
    nxt = sched.step(v, sched.timesteps[3], x_t, return_dict=False)[0]
    torch.testing.assert_close(nxt, flow_pair(x0, eps, s1.view(1))[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(flow_pair(x0, eps, torch.zeros(1))[0], x0)


# ----------------------------------------------------------------------------- training
def test_resume_cache_reuse_and_export(tmp_path, vae_dir, minilm, monkeypatch):
    import vist3a.world.sample as ws

    full = run(tmp_path / "a", vae_dir, minilm)
    assert full.finished and len(full.losses) == 4 and all(torch.isfinite(torch.tensor(full.losses)))
    shards = sorted((tmp_path / "a" / "cache").glob("*.safetensors"))
    assert [p.name for p in shards] == ["eval_00000.safetensors", "train_00000.safetensors", "uncond.safetensors"]

    part = run(tmp_path / "b", vae_dir, minilm, stop_after=2)
    assert part.step == 2 and not part.finished
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "b" / "cache").iterdir()}
    calls = []
    real = ws.make_sample
    monkeypatch.setattr(ws, "make_sample", lambda *a, **k: calls.append(a) or real(*a, **k))
    rest = run(tmp_path / "b", vae_dir, minilm, resume=True)
    assert calls == []  # the resumed run reads the cache, renders nothing
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "b" / "cache").iterdir()} == mtimes
    assert rest.finished and rest.losses == full.losses

    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    ev = metrics["eval"]
    assert set(ev) == {"fm_loss", "fm_loss@0.25", "fm_loss@0.5", "fm_loss@0.75"} and ev["fm_loss"] > 0

    # the export is the full video model: VAE copy + fp16 DiT, loadable by the preset and sampleable
    from vist3a.registry import build

    out = tmp_path / "a" / "wan_mini"
    assert (out / "vae" / "config.json").read_text() == (vae_dir / "vae" / "config.json").read_text()
    vm = build("wan-mini", weights=out)
    assert vm.transformer is not None and vm.text_encoder is not None
    assert vm.vae.config.latents_std == pytest.approx(torch.linspace(0.5, 1.5, 16).tolist())
    cond, neg = vm.encode_text(["a red cube on a wooden floor"]), vm.encode_text([""])
    z = vm.sample_latents(cond, neg, num_frames=5, height=32, width=32, steps=2, guidance_scale=3.0, generator=0,
                          progress=False)  # fmt: skip
    assert z.shape == (1, 16, 2, 4, 4) and torch.isfinite(z).all()
    video = vm.decode(vm.denormalize(z))
    assert video.shape == (1, 3, 5, 32, 32) and torch.isfinite(video).all()

    # the exported DiT computes what the trained one does (fp16 rounding aside)
    trained = torch.load(tmp_path / "a" / "checkpoints" / "step_00000004.pt", weights_only=True)["model"]
    sd = vm.transformer.state_dict()
    for k, v in trained.items():
        torch.testing.assert_close(sd[k].float(), v.float(), atol=2e-3, rtol=2e-3)


def test_cfg_drop_uses_the_pipelines_unconditional_embedding(tmp_path, vae_dir, minilm):
    """Dropped captions become the embedding of "" (the mini pipeline's negative prompt, as the
    TextEncoder produces it at inference); kept ones are the scene's phrasings' embeddings."""
    vm, folder = load_trained_vae(vae_dir, torch.device("cpu"))
    dit = wan_mini(components=("vae", "transformer"), vae_config=TINY_VAE, dit_config=TINY_DIT).transformer
    model = VideoModel(vm.vae, dit, None, name="wan-mini")
    c = cfg(tmp_path / "c", extra={"cfg_drop": 1.0, "progress": False})
    task = DitTask(model, folder, c, torch.device("cpu"), text_encoder=minilm)
    uncond = minilm.encode([""], cache=False).embeds
    assert uncond.shape == (1, 64, 384)
    rows = task.draw_text_rows([0, 1, 2], step=5)
    assert rows.tolist() == [-1, -1, -1]
    torch.testing.assert_close(task._text(task.train_set, rows), uncond.expand(3, -1, -1).half().float())

    task.cfg_drop = 0.0
    seen = set()
    for step in range(12):
        rows = task.draw_text_rows([0, 1, 2], step)
        emb = task._text(task.train_set, rows)
        for b, (i, r) in enumerate(zip([0, 1, 2], rows.tolist(), strict=True)):
            lo, hi = int(task.train_set.first[i]), int(task.train_set.first[i + 1])
            assert lo <= r < hi
            text = task.train_set.captions[i][r - lo]
            seen.add((i, text))
            # the cache encodes in batches: fp32 round-off there may flip one fp16 ulp (~5e-4) after .half()
            ref = minilm.encode([text], cache=False).embeds[0].half().float()
            torch.testing.assert_close(emb[b], ref, rtol=0, atol=1e-3)
    assert len(seen) > 3  # phrasings vary across steps
    # the drop rate follows --cfg-drop
    task.cfg_drop = 0.3
    drops = torch.cat([task.draw_text_rows([0, 1, 2], s) for s in range(300)]) < 0
    assert 0.22 < drops.float().mean() < 0.38


def test_clear_errors(tmp_path, vae_dir, minilm):
    with pytest.raises(InputError, match="--vae"):
        run(tmp_path / "x", tmp_path / "nowhere", minilm)
    with pytest.raises(InputError, match="--vae"):
        run(tmp_path / "x", tmp_path, minilm)  # a folder without vae/
    run(tmp_path / "y", vae_dir, minilm, steps=1)
    with pytest.raises(InputError, match="other settings"):  # the cache of another world setting is refused
        run(tmp_path / "y", vae_dir, minilm, steps=2, max_objects=3, resume=True)
    shard = tmp_path / "y" / "cache" / "train_00000.safetensors"
    shard.write_bytes(b"garbage")
    from vist3a.errors import CheckpointError

    with pytest.raises(CheckpointError, match="delete it"):
        run(tmp_path / "y", vae_dir, minilm, steps=2, resume=True)


def test_cli_stage_dit(tmp_path, vae_dir, capsys):
    from vist3a.cli import main

    out = tmp_path / "cli"
    args = ["world", "train-mini", "--stage", "dit", "--out", str(out), "--steps", "2", "--batch", "2",
            "--frames", "5", "--size", "32", "--cache-scenes", "2", "--eval-scenes", "1", "--warmup", "0",
            "--no-shadows", "--device", "cpu", "--cfg-drop", "0.5"]  # fmt: skip
    assert main(args) == 1  # no --vae
    assert "--vae" in capsys.readouterr().err
    shutil.copytree(vae_dir, tmp_path / "vae")
    assert main([*args, "--vae", str(tmp_path / "vae"), "--cache-only"]) == 0
    assert "latent cache ready" in capsys.readouterr().out
    assert (out / "cache" / "train_00000.safetensors").is_file() and not (out / "checkpoints").exists()
    assert main([*args, "--vae", str(tmp_path / "vae")]) == 0
    assert "dit: finished at step 2/2" in capsys.readouterr().out
    assert (out / "wan_mini" / "transformer" / "config.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["export"]["cache_scenes"] == 2


# ----------------------------------------------------------------------------- MiniLM in fp16
def test_minilm_loads_an_fp16_copy_as_float32(tmp_path, monkeypatch):
    from transformers import BertConfig, BertModel

    from vist3a.models.text import minilm_l6, minilm_path

    src = minilm_path()
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=128))  # fmt: skip
    bert.half().save_pretrained(str(tmp_path / "m"))
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / f, tmp_path / "m" / f)
    monkeypatch.setenv("VIST3A_MINILM", str(tmp_path / "m"))
    assert minilm_path() == tmp_path / "m"
    te = minilm_l6(max_length=16)
    assert te.dtype == torch.float32 and te.hidden_size == 32
    w = te.encoder.embeddings.word_embeddings.weight
    torch.testing.assert_close(w, bert.embeddings.word_embeddings.weight.float(), atol=0, rtol=0)
    assert torch.isfinite(te.encode(["a cube"]).embeds).all()
    assert minilm_l6(max_length=16, dtype=torch.float16).dtype == torch.float16
    monkeypatch.setenv("VIST3A_MINILM", str(tmp_path / "empty"))
    from vist3a.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="VIST3A_MINILM"):
        minilm_path()


# ----------------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_gpu_dit_stage_bf16(tmp_path, vae_dir, minilm):
    """The DiT stage on CUDA under bf16 autocast (mini DiT widths, small clips), cache on the GPU, export."""
    res = train_dit(cfg(tmp_path / "g", steps=6, batch=4, train_scenes=8, size=64, frames=5, eval_scenes=2), vae_dir,
                    device="cuda", text_encoder=minilm.to("cuda"), progress=False)  # fmt: skip
    assert res.finished and all(torch.isfinite(torch.tensor(res.losses)))
    assert res.evals[-1][1]["fm_loss"] > 0
    vm = wan_mini(weights=tmp_path / "g" / "wan_mini", device="cuda")
    z = vm.sample_latents(vm.encode_text(["a cube"]), vm.encode_text([""]), num_frames=5, height=64, width=64,
                          steps=2, generator=0, progress=False)  # fmt: skip
    assert z.shape == (1, 16, 2, 8, 8) and torch.isfinite(z).all()


def test_init_starts_from_an_exported_dit_and_refuses_other_weights(tmp_path, vae_dir, minilm):
    """--init DIR: the DiT starts from a DiT-stage export (fp16 on disk → the same float32 weights), not from the
    seed's random init; a folder without DiT weights or of another architecture is a one-line error."""
    from vist3a.errors import CheckpointError, MissingWeightsError
    from vist3a.registry import build

    run(tmp_path / "a", vae_dir, minilm)
    export = tmp_path / "a" / "wan_mini"
    exported = build("wan-mini", weights=export).transformer.state_dict()
    # lr 1e-12: the first checkpoint holds the initial weights (one Adam step moves them by ~1e-12)
    res = train_dit(cfg(tmp_path / "b", steps=1, lr=1e-12, ckpt_every=1), vae_dir, dit_config=TINY_DIT,
                    text_encoder=minilm, progress=False, init=export)  # fmt: skip
    assert res.finished
    start = torch.load(tmp_path / "b" / "checkpoints" / "step_00000001.pt", weights_only=True)["model"]
    for k, v in exported.items():
        torch.testing.assert_close(start[k].float(), v.float(), atol=1e-6, rtol=0)
    with pytest.raises(MissingWeightsError, match="no DiT weights"):
        train_dit(cfg(tmp_path / "c"), vae_dir, dit_config=TINY_DIT, text_encoder=minilm, init=tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="not a DiT of this configuration"):
        train_dit(cfg(tmp_path / "d"), vae_dir, dit_config={**TINY_DIT, "num_layers": 2}, text_encoder=minilm,
                  init=export)  # fmt: skip


# ----------------------------------------------------------------------------- orbit-only latents
def test_motion_restricts_the_cache_to_one_camera_motion(tmp_path, vae_dir, minilm, capsys):
    """extra motion="orbit": every cached scene is the world sample with an orbit (its latent is the VAE encoding of
    that clip, its phrasings those of the orbit caption); a mix run refuses the orbit cache and vice versa; the CLI
    takes --set motion=orbit for the DiT stage and nothing else."""
    from vist3a.cli import main
    from vist3a.world.sample import make_sample

    run(tmp_path / "o", vae_dir, minilm, steps=1, extra={"cfg_drop": 0.1, "motion": "orbit"})
    vm, folder = load_trained_vae(vae_dir, torch.device("cpu"))
    dit = wan_mini(components=("vae", "transformer"), vae_config=TINY_VAE, dit_config=TINY_DIT).transformer
    task = DitTask(VideoModel(vm.vae, dit, None, name="wan-mini"), folder,
                   cfg(tmp_path / "o", extra={"motion": "orbit", "progress": False}), torch.device("cpu"))  # fmt: skip
    for i in range(3):
        s = make_sample(i, 0, 5, 32, 2, motion="orbit")
        assert s.trajectory.motion == "orbit"
        assert task.train_set.captions[i] == [s.texts[k] for k in sorted(s.texts)]
        assert any("orbits" in t for t in task.train_set.captions[i])
        video = s.render("cpu", shadows=False).rgb.permute(1, 0, 2, 3)[None].float() * 2 - 1
        with torch.no_grad():
            ref = vm.encode(video.clamp(-1, 1), sample=False).half()
        torch.testing.assert_close(task.train_set.latents[i], ref[0], rtol=0, atol=2e-3)
    with pytest.raises(InputError, match="other settings.*motion"):  # the mix refuses the orbit shards
        run(tmp_path / "o", vae_dir, minilm, steps=2, resume=True)
    run(tmp_path / "m", vae_dir, minilm, steps=1)
    with pytest.raises(InputError, match="other settings.*motion"):  # and the orbit run the mix's
        run(tmp_path / "m", vae_dir, minilm, steps=2, resume=True, extra={"cfg_drop": 0.1, "motion": "orbit"})
    with pytest.raises(InputError, match="unknown camera motion"):
        run(tmp_path / "z", vae_dir, minilm, steps=1, extra={"motion": "spin"})
    args = ["world", "train-mini", "--stage", "dit", "--out", str(tmp_path / "cli"), "--vae", str(vae_dir),
            "--frames", "5", "--size", "32", "--cache-scenes", "2", "--eval-scenes", "1", "--no-shadows",
            "--steps", "2", "--batch", "2", "--device", "cpu", "--cache-only"]  # fmt: skip
    assert main([*args, "--set", "w_camera=2"]) == 1
    assert "--set with --stage dit takes only motion" in capsys.readouterr().err
    assert main([*args, "--set", "motion=orbit"]) == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "cli" / "cache" / "train_00000.safetensors"), framework="pt") as f:
        assert f.metadata()["motion"] == "orbit"
