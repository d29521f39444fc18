"""`vist3a align`: DRTune rollouts, rewards, the LoRA trainer (tiny real classes on CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from vist3a.alignment.drtune import (
    RolloutPlan,
    drtune_rollout,
    flow_matching_loss,
    shift_sigma,
)
from vist3a.alignment.rewards import (
    BrightnessReward,
    ConsistencyReward,
    WeightedSum,
    WorldColourReward,
    build_reward,
)
from vist3a.alignment.trainer import AlignConfig, AlignTrainer, PromptItem
from vist3a.errors import InputError, MissingWeightsError


def tiny_models(seed: int = 0, decoder: bool = True):
    """Video 1 frame (5 for DiT-only tests) at 32² → latent [1,16,1,4,4] → 2×2 tokens → recon input 28²."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, BertConfig, BertModel

    from vist3a.models.anysplat import anysplat_mini
    from vist3a.models.text import TextEncoder, minilm_path
    from vist3a.models.video import VideoModel
    from vist3a.stitching.stitched import StitchedDecoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(base_dim=2, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True])
        dit = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=16,
                                    out_channels=16, text_dim=16, freq_dim=16, ffn_dim=16, num_layers=2,
                                    cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
        bert = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16),
                         add_pooling_layer=False)
        tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
        te = TextEncoder(bert.eval(), tok, max_length=8, source_hint="tiny")
        video = VideoModel(vae.eval(), dit.eval(), te, flow_shift=3.0, name="tiny")
        dec = None
        if decoder:
            recon = anysplat_mini(image_size=28, pos_embed_img_size=28, embed_dim=16, dino_depth=3, dino_num_heads=2,
                                  depth=2, num_heads=2, intermediate_layer_idx=(0, 1, 1, 1), camera_trunk_depth=1,
                                  camera_num_heads=2, dpt_features=8, dpt_out_channels=(8, 8, 16, 16), voxelize=False,
                                  sh_degree=0)
            dec = StitchedDecoder(recon, "conv3d_k5x3x3_o16_s1x2x2_p2x1x1", "enc_blocks_2", (16, 1, 4, 4))
            with torch.no_grad():
                enc = recon.encoder
                enc.camera_head.pose_branch.fc2.weight.normal_(0, 0.05)
                enc.camera_head.pose_branch.fc2.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0, 0.15, 0.15]))
            dec.eval()
    return video, dec


def tiny_config(**kw) -> AlignConfig:
    base = dict(num_frames=5, height=32, width=32, min_steps=2, max_steps=3, drtune_k=1, guidance=(1.0, 1.0),
                sft_weight=0.0, reward_weight=1.0, reward_views=2, ckpt_every=1000, lr=1e-2, render_backend="torch")
    base.update(kw)
    return AlignConfig(**base)


def _state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# ------------------------------------------------------------------------------------------- losses
def test_shift_sigma_matches_wan_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    s = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    sig = torch.linspace(1.0, 0.001, 1000)  # the unshifted training sigmas
    ours = shift_sigma(sig, 3.0)
    assert torch.allclose(ours, s.sigmas.float(), atol=1e-5)
    assert torch.equal(shift_sigma(sig, 1.0), sig)


def test_rollout_plan_draws_k_plus_last():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = RolloutPlan.draw(g, 3, 7, 2, (4.0, 6.0))
        assert 3 <= p.num_steps <= 7
        assert p.grad_steps[-1] == p.num_steps - 1 and len(p.grad_steps) == 3
        assert len(set(p.grad_steps)) == 3 and 4.0 <= p.guidance_scale <= 6.0
    with pytest.raises(InputError):
        RolloutPlan.draw(g, 5, 3, 1, (1, 1))


def test_gradient_only_at_chosen_steps():
    """Hooks on the DiT: autograd is on only at the plan's steps, and only their outputs get gradients."""
    video, _ = tiny_models(decoder=False)
    video.add_dit_lora(4, 8)
    plan = RolloutPlan(num_steps=5, grad_steps=(1, 4), guidance_scale=1.0)
    outs: list[tuple[bool, torch.Tensor]] = []

    def hook(mod, args, kwargs, out):
        o = out[0] if isinstance(out, tuple) else out.sample
        outs.append((torch.is_grad_enabled(), o))
        if o.requires_grad:
            o.retain_grad()

    h = video.transformer.get_base_model().register_forward_hook(hook, with_kwargs=True)
    try:
        cond = video.encode_text(["a red cube"])
        noise = torch.randn(video.latent_shape(1, 5, 32, 32), generator=torch.Generator().manual_seed(1))
        z0 = drtune_rollout(video, cond, None, noise, plan, "unipc", 3.0)
        z0.square().mean().backward()
    finally:
        h.remove()
    assert [g for g, _ in outs] == [False, True, False, False, True]
    for i, (_, o) in enumerate(outs):
        if i in plan.grad_steps:
            assert o.grad is not None and o.grad.abs().sum() > 0, f"step {i} got no gradient"
        else:
            assert not o.requires_grad
    # inputs are detached: the gradient of the last prediction does not depend on the earlier one's graph
    lora_grads = [p.grad for p in video.transformer.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in lora_grads)


def test_flow_matching_loss_target_and_grad():
    """With a DiT that is exactly right the loss is 0: check the interpolation/target against a hand oracle."""
    video, _ = tiny_models(decoder=False)
    clips = torch.rand(1, 5, 3, 32, 32)
    g = torch.Generator().manual_seed(3)
    # replay the draws of flow_matching_loss by hand
    g2 = torch.Generator().manual_seed(3)
    with torch.no_grad():
        raw = video.encode(clips.permute(0, 2, 1, 3, 4) * 2 - 1, sample=True, generator=g2)
    z0 = video.normalize(raw)
    sigma = shift_sigma(torch.rand(1, generator=g2), 3.0)
    eps = torch.randn(z0.shape, generator=g2)
    seen = {}

    def fake_velocity(zt, t, text):
        seen["zt"], seen["t"] = zt, t
        return (eps - z0).clone().requires_grad_(True)

    video.velocity = fake_velocity  # instance attribute shadows the method
    loss = flow_matching_loss(video, clips, torch.zeros(1, 4, 16), g, shift=3.0)
    assert float(loss.detach()) == 0.0
    s = float(sigma)
    assert torch.allclose(seen["zt"], (1 - s) * z0 + s * eps, atol=1e-6)
    assert torch.allclose(torch.as_tensor(seen["t"]), sigma * 1000)


# ------------------------------------------------------------------------------------------- rewards
def test_consistency_reward_is_minus_l1():
    f = torch.rand(2, 3, 3, 8, 8)
    r = ConsistencyReward()
    assert torch.allclose(r(f, f.clone(), ["a", "b"]), torch.zeros(2))
    g = (f + 0.1).clamp(max=1.0)
    expect = -(f - g).abs().mean(dim=(1, 2, 3, 4))
    assert torch.allclose(r(f, g, ["a", "b"]), expect)
    with pytest.raises(InputError):
        r(f, None, ["a", "b"])


def test_consistency_reward_lpips_term():
    from vist3a.eval.metrics import LPIPS

    torch.manual_seed(0)
    lp = LPIPS()
    f, g = torch.rand(1, 2, 3, 32, 32), torch.rand(1, 2, 3, 32, 32)
    r = ConsistencyReward(lp, lpips_weight=0.25)(f, g, ["a"])
    expect = -(f - g).abs().mean() - 0.25 * lp(g[0], f[0]).mean()
    assert torch.allclose(r, expect.view(1), atol=1e-6)


def test_world_colour_reward_prefers_caption_colours():
    from vist3a.world.captions import CaptionObject, StructuredCaption
    from vist3a.world.palette import COLOUR_BY_NAME

    img = torch.full((1, 1, 3, 16, 16), 0.55)  # grey floor
    img[..., 4:12, 4:12] = torch.tensor(COLOUR_BY_NAME["red"].rgb).view(3, 1, 1)
    red = StructuredCaption([CaptionObject("cube", "red", "large")])
    blue = StructuredCaption([CaptionObject("cube", "blue", "large")])
    r = WorldColourReward(on="frames")
    good, bad = r(img, None, ["x"], captions=[red]), r(img, None, ["x"], captions=[blue])
    assert float(good) > 0.5 and float(bad) < 0.0
    grey = torch.full((1, 1, 3, 16, 16), 0.55)
    assert abs(float(r(grey, None, ["x"], captions=[red]))) < 1e-3  # nothing coloured: no presence
    # differentiable: pushing the patch towards red raises the reward
    x = img.clone().requires_grad_(True)
    r(x, None, ["x"], captions=[red]).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(InputError):
        r(img, None, ["x"])


def test_build_reward_parsing_and_missing_weights(tmp_path):
    w = build_reward("consistency,brightness@2")
    assert isinstance(w, WeightedSum) and w.weights == [1.0, 2.0] and w.needs_renders
    assert not build_reward("brightness").needs_renders
    with pytest.raises(InputError, match="unknown reward"):
        build_reward("aesthetic")
    with pytest.raises(InputError, match="needs a local model folder"):
        build_reward("clip")
    with pytest.raises(MissingWeightsError, match="no clip weights"):
        build_reward(f"clip:{tmp_path / 'nothing'}")
    # world, relation and judge read the renders unless told otherwise (":frames": the decoded video alone)
    ons = {r.name: r.on for r in build_reward("world,relation:FRAMES,judge:frames").terms}
    assert ons == {"world": "renders", "relation": "frames", "judge": "frames"}
    assert build_reward("world").needs_renders and not build_reward("world:frames,relation:frames").needs_renders
    assert build_reward("world:both").needs_renders
    with pytest.raises(InputError, match="judge:both: the judge reward reads renders or frames"):
        build_reward("judge:both")


def test_clip_rewards_with_tiny_random_clip(tmp_path):
    """Plumbing of the CLIP/PickScore rewards: a tiny random CLIPModel + the MiniLM tokenizer in a folder."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    from vist3a.alignment.rewards import ClipScoreReward, PickScoreReward
    from vist3a.models.text import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, eos_token_id=tok.sep_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    frames = torch.rand(2, 2, 3, 40, 48, requires_grad=True)
    clip = ClipScoreReward(tmp_path, on="frames")
    r = clip(frames, None, ["a red cube", "a blue sphere"])
    assert r.shape == (2,) and torch.all(r.abs() <= 1.0 + 1e-5)
    # the score is the cosine of the model's own embeddings (independent recomputation)
    m = clip.model
    img = clip._image(frames[0].detach())
    t = tok(["a red cube"], return_tensors="pt", padding=True)
    te = m.get_text_features(**t)
    te = te if isinstance(te, torch.Tensor) else te.pooler_output
    cos = torch.nn.functional.cosine_similarity(img, te.float(), dim=-1).mean()
    assert torch.allclose(r[0], cos, atol=1e-5)
    r.sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    pick = PickScoreReward(tmp_path, on="renders")
    rp = pick(frames.detach(), frames.detach(), ["a", "b"])
    scale = float(pick.model.logit_scale.exp())
    assert torch.allclose(rp, scale / 100.0 * clip(frames.detach(), None, ["a", "b"]), atol=1e-5)


# ------------------------------------------------------------------------------------------- trainer
@pytest.fixture(scope="module")
def one_step(tmp_path_factory):
    """One step with the consistency reward (VAE decode, stitched decoder, render) from a fixed init."""
    video, dec = tiny_models()
    before_vae, before_dec = _state(video.vae), _state(dec)
    before_dit = _state(video.transformer)
    cfg = tiny_config(reward_views=1, min_steps=2, max_steps=2, num_frames=1)
    tr = AlignTrainer(video, dec, build_reward("consistency"), ["a red cube"], cfg, tmp_path_factory.mktemp("a"))
    lora_before = tr.lora_state()
    rec = tr.train_step()
    return dict(video=video, dec=dec, tr=tr, rec=rec, before_vae=before_vae, before_dec=before_dec,
                before_dit=before_dit, lora_before=lora_before)


def test_step_changes_only_lora(one_step):
    s = one_step
    tr, rec = s["tr"], s["rec"]
    assert math.isfinite(rec.reward) and rec.grad_norm > 0 and not rec.skipped
    after_vae, after_dec = _state(s["video"].vae), _state(s["dec"])
    assert all(torch.equal(after_vae[k], v) for k, v in s["before_vae"].items())
    assert all(torch.equal(after_dec[k], v) for k, v in s["before_dec"].items())
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
            for k, v in s["video"].transformer.state_dict().items() if "lora_" not in k}
    assert set(base) == set(s["before_dit"])
    assert all(torch.equal(base[k], v) for k, v in s["before_dit"].items())
    after = tr.lora_state()
    changed = [k for k in after if not torch.equal(after[k], s["lora_before"][k])]
    assert changed and all("lora_" in k for k in changed)


def test_lora_export_loads_as_peft_folder(one_step, tmp_path):
    """The exported lora/ folder loads with VideoModel.load_dit_lora (PeftModel.from_pretrained) and gives
    the trained model's velocities; lora_ema/ holds the EMA weights."""
    tr = one_step["tr"]
    folder = tr.export(tmp_path / "exp")
    assert (folder / "lora" / "adapter_config.json").is_file()
    assert (folder / "lora_ema" / "adapter_model.safetensors").is_file()
    fresh, _ = tiny_models(decoder=False)
    fresh.load_dit_lora(folder / "lora", merge=True)
    z = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    txt = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(1))
    dit = tr.video.transformer
    dit.eval()
    with torch.no_grad():
        want = tr.video.velocity(z, 500.0, txt)
        got = fresh.velocity(z, 500.0, txt)
    dit.train()
    assert torch.allclose(got, want, atol=1e-5)
    from safetensors.torch import load_file

    ema = load_file(str(folder / "lora_ema" / "adapter_model.safetensors"))
    shadow = {k.replace(".default", ""): v for k, v in tr.ema.shadow.items()}
    assert set(ema) == {k.replace("base_model.model.", "base_model.model.") for k in shadow}
    assert all(torch.allclose(ema[k], shadow[k]) for k in ema)


def test_reward_moves_in_expected_direction(tmp_path):
    """Each step raises the reward of that step's own rollout (same plan, noise and views, replayed
    after the update): the update ascends the toy reward (mean brightness of the decoded frames)."""
    video, _ = tiny_models(decoder=False)
    cfg = tiny_config(lr=1e-3, grad_clip=0.0, min_steps=2, max_steps=2, reward_views=0, num_frames=1)
    tr = AlignTrainer(video, None, WeightedSum([(1.0, BrightnessReward())]), ["a red cube"], cfg, tmp_path)
    gains = []
    for _ in range(2):
        rec = tr.train_step()
        tr.step -= 1  # replay the same step's draws
        with torch.no_grad():
            after = float(tr.reward_pass()[0].mean())
        tr.step += 1
        gains.append(after - rec.reward)
    assert all(g > 0 for g in gains), gains


def test_brightness_reward_gradient_sign():
    """The brightness reward's gradient w.r.t. the frames is +1/N everywhere (ascent brightens)."""
    f = torch.rand(1, 2, 3, 4, 4, requires_grad=True)
    BrightnessReward()(f, None, ["a"]).sum().backward()
    assert torch.allclose(f.grad, torch.full_like(f, 1.0 / f[0].numel()))


def test_nonfinite_gradient_is_skipped(tmp_path):
    video, _ = tiny_models(decoder=False)

    class NaNReward(BrightnessReward):
        def forward(self, frames, renders, prompts, captions=None):
            return frames.mean(dim=(1, 2, 3, 4)) * float("nan")

    tr = AlignTrainer(video, None, NaNReward(), ["a"], tiny_config(min_steps=1, max_steps=1), tmp_path)
    before = tr.lora_state()
    rec = tr.train_step()
    assert rec.skipped and tr.skipped == 1 and tr.step == 1
    after = tr.lora_state()
    assert all(torch.equal(after[k], before[k]) for k in before)


class _Clips(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"images": torch.rand(1, 3, 32, 32, generator=g), "text": f"scene {i}"}


def test_resume_is_exact(tmp_path):
    """N steps in one go == k steps, a checkpoint, a fresh process state, then resume to N."""
    cfg = tiny_config(sft_weight=1.0, ckpt_every=1, min_steps=1, max_steps=2, lr=1e-2, num_frames=1)
    prompts = [PromptItem("a red cube"), PromptItem("a blue sphere")]

    def trainer(out):
        video, _ = tiny_models(decoder=False)
        return AlignTrainer(video, None, build_reward("brightness"), prompts, cfg, out, sft_data=_Clips())

    full = trainer(tmp_path / "full")
    full.train(2, progress=False)
    part = trainer(tmp_path / "part")
    part.train(1, progress=False)
    torch.manual_seed(999)  # disturb global RNG: resume must not depend on it
    resumed = trainer(tmp_path / "part")
    assert resumed.resume()
    assert resumed.step == 1
    resumed.train(2, progress=False)
    la = [(r.loss, r.sft, r.reward, r.grad_norm) for r in full.history]
    lb = [(r.loss, r.sft, r.reward, r.grad_norm) for r in resumed.history]
    assert la == lb
    sa, sb = full.lora_state(), resumed.lora_state()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (tmp_path / "part" / "lora_ema" / "adapter_config.json").is_file()
    assert (tmp_path / "part" / "checkpoints" / "checkpoint-2" / "lora" / "adapter_config.json").is_file()


def test_config_errors(tmp_path):
    video, _ = tiny_models(decoder=False)
    with pytest.raises(InputError, match="min-steps"):
        AlignTrainer(video, None, BrightnessReward(), ["a"], tiny_config(min_steps=4, max_steps=2), tmp_path)
    with pytest.raises(InputError, match="needs renders"):
        AlignTrainer(video, None, ConsistencyReward(), ["a"], tiny_config(), tmp_path)
    with pytest.raises(InputError, match="sft-data"):
        AlignTrainer(video, None, BrightnessReward(), ["a"], tiny_config(sft_weight=1.0), tmp_path)
    with pytest.raises(InputError, match="frames"):
        AlignTrainer(video, None, BrightnessReward(), ["a"], tiny_config(num_frames=6), tmp_path)


@pytest.mark.gpu
def test_step_on_cuda_with_gsplat(tmp_path):
    """One consistency step on CUDA (gsplat renderer when installed); same checks as on CPU."""
    video, dec = tiny_models()
    video.to("cuda")
    dec.to("cuda")
    before = _state(dec)
    cfg = tiny_config(reward_views=1, min_steps=2, max_steps=2, num_frames=1, render_backend="auto")
    tr = AlignTrainer(video, dec, build_reward("consistency"), ["a red cube"], cfg, tmp_path)
    rec = tr.train_step()
    assert math.isfinite(rec.reward) and rec.grad_norm > 0 and not rec.skipped
    after = _state(dec)
    assert all(torch.equal(after[k], v) for k, v in before.items())
