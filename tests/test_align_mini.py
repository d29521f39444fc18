"""`vist3a align` for the mini model: prompt-embedding cache, procedural rewards, time budget, merged export."""

from __future__ import annotations

import json
import math

import pytest
import torch

from test_align import tiny_config, tiny_models
from vist3a.alignment.rewards import JudgeReward, WorldRelationReward, build_reward
from vist3a.alignment.trainer import AlignTrainer, PromptItem
from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.models.text import TextEncoder
from vist3a.models.text_cache import CachedTextEncoder, write_text_cache
from vist3a.world.captions import CaptionObject, StructuredCaption
from vist3a.world.palette import COLOUR_BY_NAME


# ------------------------------------------------------------------------------------------- text cache
def test_text_cache_stands_in_for_the_encoder(tmp_path):
    video, _ = tiny_models(decoder=False)
    te = video.text_encoder
    prompts = ["a red cube", "a blue sphere left of a green cone"]
    want = te.encode(prompts, cache=False)
    path = write_text_cache(te, prompts, tmp_path / "c.safetensors", dtype=None)
    enc = CachedTextEncoder(path)
    assert len(enc) == 3 and enc.max_length == te.max_length and enc.hidden_size == te.hidden_size
    got = enc.encode(prompts)
    assert torch.equal(got.embeds, want.embeds) and torch.equal(got.mask, want.mask)
    assert torch.equal(enc.encode("").embeds, te.encode("", cache=False).embeds)  # CFG's negative prompt
    assert enc.cached("  a red cube ") == te.cached("a red cube")  # same cleaning as the encoder
    with pytest.raises(MissingWeightsError, match="not in"):
        enc.encode(["a yellow cylinder"])
    half = CachedTextEncoder(write_text_cache(te, prompts, tmp_path / "h.safetensors"))
    assert half.encode(prompts).embeds.dtype == torch.float16
    assert torch.allclose(half.encode(prompts).embeds.float(), want.embeds, atol=2e-3, rtol=2e-3)
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError):
        CachedTextEncoder(tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match="not found"):
        CachedTextEncoder(tmp_path / "none.safetensors")


def test_text_cache_is_a_text_encoder_without_weights(tmp_path):
    """The cache is a TextEncoder with no encoder module: no parameters, its results follow .to(),
    bf16 leaves it alone, and a TextEncoder without a module must be told its width."""
    video, _ = tiny_models(decoder=False)
    te = video.text_encoder
    enc = CachedTextEncoder(write_text_cache(te, ["a red cube"], tmp_path / "c.safetensors", dtype=None))
    assert isinstance(enc, TextEncoder) and enc.encoder is None and not list(enc.parameters())
    assert enc.encode("a red cube").embeds.device.type == "cpu"
    assert enc.to("meta").encode("a red cube").embeds.device.type == "meta"  # .to() moves where results go
    video.text_encoder = CachedTextEncoder(tmp_path / "c.safetensors")
    video.enable_bf16()  # casts the DiT; the cache has no weights to cast
    assert video.text_encoder.encode("a red cube").embeds.dtype == torch.float32  # stored dtype kept
    half = CachedTextEncoder(write_text_cache(te, ["a red cube"], tmp_path / "h.safetensors"))
    assert (enc.dtype, half.dtype) == (torch.float32, torch.float16)
    with pytest.raises(InputError, match="hidden_size"):
        TextEncoder(None, None, 8)


def test_trainer_runs_on_cached_text_only(tmp_path):
    """With the encoder replaced by the cache (no tokenizer, no weights), a step trains as before."""
    ref, _ = tiny_models(decoder=False)
    video, _ = tiny_models(decoder=False)
    path = write_text_cache(video.text_encoder, ["a red cube"], tmp_path / "c.safetensors", dtype=None)
    video.text_encoder = CachedTextEncoder(path)
    cfg = tiny_config(min_steps=2, max_steps=2, reward_views=0, num_frames=1)
    a = AlignTrainer(ref, None, build_reward("brightness"), ["a red cube"], cfg, tmp_path / "a").train_step()
    b = AlignTrainer(video, None, build_reward("brightness"), ["a red cube"], cfg, tmp_path / "b").train_step()
    assert (a.loss, a.reward, a.grad_norm) == (b.loss, b.reward, b.grad_norm)


# ------------------------------------------------------------------------------------------- rewards
def _two_blobs(left: str, right: str, size: int = 32, low: str | None = None) -> torch.Tensor:
    """``[1,1,3,S,S]``: grey floor, ``left`` colour in the left third, ``right`` in the right third;
    ``low`` (one of them) is drawn lower in the image (nearer)."""
    img = torch.full((1, 1, 3, size, size), 0.55)
    for name, x0 in ((left, 2), (right, size - 12)):
        y0 = size - 12 if name == low else 4
        img[0, 0, :, y0 : y0 + 8, x0 : x0 + 8] = torch.tensor(COLOUR_BY_NAME[name].rgb).view(3, 1, 1)
    return img


def test_relation_reward_sign_and_gradient():
    cap = StructuredCaption([CaptionObject("cube", "red", "large"), CaptionObject("sphere", "blue", "small")],
                            [(0, "left of", 1)])
    r = WorldRelationReward(on="frames")
    good = float(r(_two_blobs("red", "blue"), None, ["x"], captions=[cap]))
    bad = float(r(_two_blobs("blue", "red"), None, ["x"], captions=[cap]))
    assert good > 0.3 and bad < -0.3 and math.isclose(good, -bad, rel_tol=1e-4)  # mirror image: opposite sign
    right = StructuredCaption(cap.objects, [(0, "right of", 1)])
    assert float(r(_two_blobs("blue", "red"), None, ["x"], captions=[right])) > 0.3
    front = StructuredCaption(cap.objects, [(0, "in front of", 1)])
    behind = StructuredCaption(cap.objects, [(0, "behind", 1)])
    img = _two_blobs("red", "blue", low="red")  # red lower in the image = nearer
    assert float(r(img, None, ["x"], captions=[front])) > 0.3 > -0.3 > float(r(img, None, ["x"], captions=[behind]))
    absent = StructuredCaption([CaptionObject("cube", "red", "large"), CaptionObject("cone", "green", "small")],
                               [(0, "left of", 1)])
    assert abs(float(r(_two_blobs("red", "blue"), None, ["x"], captions=[absent]))) < 0.05  # green is absent
    assert float(r(_two_blobs("red", "blue"), None, ["x"], captions=[StructuredCaption(cap.objects)])) == 0.0
    x = _two_blobs("red", "blue").requires_grad_(True)
    r(x, None, ["x"], captions=[cap]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    with pytest.raises(InputError, match="structured caption"):
        r(x.detach(), None, ["x"])


@pytest.fixture(scope="module")
def world_render():
    from vist3a.world.sample import make_sample

    s = make_sample(3, seed=0, frames=2, size=64)
    return s, s.render().rgb


def test_judge_reward_scores_the_world_render(world_render):
    """The judge on a true render of a world scene beats the judge on a mismatched caption; per-category
    scores are logged as extras; no gradient."""
    from vist3a.world.judge import Judge

    s, rgb = world_render
    imgs = rgb[None].float().clamp(0, 1)  # [1,V,3,H,W]
    r = JudgeReward(on="frames")
    got = r(imgs, None, ["x"], captions=[s.caption])
    expect = Judge().score(imgs[0], s.caption).overall
    assert math.isclose(float(got), expect, abs_tol=1e-6) and float(got) > 0.5
    assert set(r.extras) >= {"entity", "attribute"}
    wrong = StructuredCaption([CaptionObject("cone", "purple", "large")])
    assert float(r(imgs, None, ["x"], captions=[wrong])) < float(got)
    assert not got.requires_grad
    w = build_reward("consistency,world,relation,judge")
    assert w.weights == [1.0, 1.0, 1.0, 0.0] and w.needs_first_view and w.needs_renders
    w(imgs, imgs, ["x"], captions=[s.caption])
    assert {"consistency_psnr", "judge", "judge_entity", "relation", "world"} <= set(w.last)
    assert w.last["consistency_psnr"] > 90  # identical images


# ------------------------------------------------------------------------------------------- trainer
def test_reward_views_include_the_caption_view(tmp_path):
    video, dec = tiny_models()
    seen = []

    class Spy(WorldRelationReward):
        def forward(self, frames, renders, prompts, captions=None):
            seen.append(frames.shape[1])
            return super().forward(frames, renders, prompts, captions)

    from vist3a.alignment.rewards import WeightedSum

    cap = StructuredCaption([CaptionObject("cube", "red", "large"), CaptionObject("sphere", "blue", "small")],
                            [(0, "left of", 1)])
    cfg = tiny_config(num_frames=5, reward_views=1, min_steps=1, max_steps=1)
    tr = AlignTrainer(video, dec, WeightedSum([(1.0, Spy(on="frames"))]), [PromptItem("a red cube", cap)], cfg, tmp_path)
    views = []
    import vist3a.alignment.trainer as trainer_mod

    orig = trainer_mod.decode_and_render

    def spy_decode(video, decoder, z0, v, **kw):
        views.append(list(v))
        return orig(video, decoder, z0, v, **kw)

    trainer_mod.decode_and_render = spy_decode
    try:
        for _ in range(3):
            tr.reward_pass()
            tr.step += 1
    finally:
        trainer_mod.decode_and_render = orig
    assert views and all(v == [0] for v in views), views


def test_minutes_budget_checkpoints_exports_and_resumes(tmp_path):
    """A budget stops the run between steps, leaves a checkpoint, the PEFT folders and the merged model;
    --resume continues to the target."""
    t = [0.0]

    def clock():
        t[0] += 40.0  # every look at the clock: 40 s later
        return t[0]

    cfg = tiny_config(min_steps=1, max_steps=1, reward_views=0, num_frames=1, ckpt_every=100)
    video, _ = tiny_models(decoder=False)
    tr = AlignTrainer(video, None, build_reward("brightness"), ["a red cube"], cfg, tmp_path)
    tr.train(10, progress=False, minutes=1.0, clock=clock, merged=tmp_path / "wan_mini")
    assert not tr.finished and 1 <= tr.step < 10
    assert (tmp_path / "lora_ema" / "adapter_config.json").is_file()
    assert (tmp_path / "checkpoints" / f"checkpoint-{tr.step}" / "lora" / "adapter_config.json").is_file()
    assert (tmp_path / "wan_mini" / "transformer" / "config.json").is_file()
    video2, _ = tiny_models(decoder=False)
    tr2 = AlignTrainer(video2, None, build_reward("brightness"), ["a red cube"], cfg, tmp_path)
    assert tr2.resume() and tr2.step == tr.step
    tr2.train(tr.step + 1, progress=False)
    assert tr2.finished and tr2.step == tr.step + 1


def test_merged_export_reproduces_the_ema_model(tmp_path):
    """OUT/wan_mini (EMA LoRA merged, diffusers folders) gives the EMA model's velocities."""
    from diffusers import WanTransformer3DModel

    video, _ = tiny_models(decoder=False)
    cfg = tiny_config(min_steps=1, max_steps=1, reward_views=0, num_frames=1, lr=5e-2)
    tr = AlignTrainer(video, None, build_reward("brightness"), ["a red cube"], cfg, tmp_path)
    for _ in range(3):
        tr.train_step()
    folder = tr.export_merged(tmp_path / "merged", dtype=None)
    assert json.loads((folder / "video_model.json").read_text())["flow_shift"] == video.flow_shift
    dit = WanTransformer3DModel.from_pretrained(str(folder / "transformer")).eval()
    z = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    txt = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(1))
    current = {n: p.detach().clone() for n, p in video.transformer.named_parameters() if p.requires_grad}
    tr.ema.copy_to(video.transformer)
    video.transformer.eval()
    with torch.no_grad():
        want = video.velocity(z, 500.0, txt)
        got = dit(hidden_states=z, timestep=torch.tensor([500.0]), encoder_hidden_states=txt, return_dict=False)[0]
        for n, p in video.transformer.named_parameters():
            if n in current:
                p.copy_(current[n])
        moved = video.velocity(z, 500.0, txt)
    assert not torch.allclose(want, moved, atol=1e-6)  # EMA differs from the current weights ...
    assert torch.allclose(got.float(), want, atol=1e-5)  # ... and the export holds the EMA


# ------------------------------------------------------------------------------------------- CLI
def test_world_prompts_are_training_captions():
    from vist3a.commands.align import _world_prompts
    from vist3a.world.sample import make_sample

    items = _world_prompts(3, 0, 13, 256)
    assert [p.text for p in items] == [make_sample(i, 0, 13, 256).texts["short"] for i in range(3)]
    assert all(p.caption is not None for p in items)
    with pytest.raises(InputError, match="held-out"):
        _world_prompts(3, 7919, 13, 256)


def test_align_cli_mini_errors(tmp_path, capsys):
    from vist3a.cli import main

    base = ["align", "--out", str(tmp_path / "o"), "--world", "2"]
    assert main([*base, "--model", "tiny", "--world-seed", "7919"]) == 1
    assert "held-out" in capsys.readouterr().err
    assert main([*base, "--model", "tiny", "--video-weights", str(tmp_path)]) == 1
    assert "go with --model mini" in capsys.readouterr().err
    assert main([*base, "--model", "mini", "--stitched", str(tmp_path)]) == 1
    assert "no stitched.json" in capsys.readouterr().err
    assert main([*base, "--model", "tiny", "--text-cache", "a", "--write-text-cache", "b"]) == 1
    assert "give one of them" in capsys.readouterr().err
    assert main([*base, "--model", "tiny", "--minutes", "-1"]) == 1
    assert "--minutes" in capsys.readouterr().err


@pytest.mark.slow
def test_align_cli_writes_and_uses_a_text_cache(tmp_path):
    """--write-text-cache, then a tiny run that reads only the cache (--minutes budget, summary)."""
    from vist3a.cli import main

    cache = tmp_path / "run" / "c.safetensors"  # inside the run folder, before it exists
    common = ["align", "--model", "tiny", "--world", "2", "--out", str(tmp_path / "run"), "--device", "cpu"]
    assert main([*common, "--write-text-cache", str(cache)]) == 0
    enc = CachedTextEncoder(cache)
    assert len(enc) == 3  # 2 world captions + the negative prompt
    run = [*common, "--text-cache", str(cache), "--steps", "1", "--min-steps", "1", "--max-steps", "1",
           "--drtune-k", "0", "--cfg", "1", "1", "--frames", "5", "--size", "64", "--reward-views", "1",
           "--minutes", "30", "--merged-out", str(tmp_path / "merged")]
    assert main([*run, "--resume"]) == 0  # nothing to resume yet: starts fresh
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["finished"] and summary["seconds_per_step"] > 0
    assert "reward" in summary["recent_terms"]
    assert (tmp_path / "merged" / "transformer" / "config.json").is_file()
    assert main(run) == 1  # checkpoints there and no --resume: refused


@pytest.mark.gpu
def test_mini_align_cli_on_cuda(tmp_path):
    """The device piece in miniature: the mini pair (shipped weights), world prompts, the default world
    rewards, cached text, gsplat, a time budget and the merged export; then the export loads."""
    from vist3a import registry
    from vist3a.cli import main

    cache = tmp_path / "c.safetensors"
    common = ["align", "--model", "mini", "--world", "2", "--out", str(tmp_path / "run")]
    assert main([*common, "--write-text-cache", str(cache), "--device", "cpu"]) == 0
    assert main([*common, "--text-cache", str(cache), "--steps", "2", "--min-steps", "3", "--max-steps", "4",
                 "--device", "cuda", "--minutes", "5"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["finished"]
    video = registry.build("wan-mini", weights=str(tmp_path / "run" / "wan_mini"), components=("vae", "transformer"))
    assert video.transformer is not None
