"""TextTo3DPipeline on a tiny random pipeline of the real classes: composition (template, de-normalise →
VAE decode → resize → stitched decoder), seeds, input errors, pipeline folders, LoRA loading, errors
for missing released weights."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F

from vist3a.errors import InputError, MissingWeightsError
from vist3a.pipelines import OFFICIAL_NEGATIVE_PROMPT, load_pipeline
from vist3a.pipelines.loading import apply_dit_lora, tiny_pipeline, unknown_words
from vist3a.pipelines.text_to_3d import TextTo3DPipeline, apply_template


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pipe() -> TextTo3DPipeline:
    return tiny_pipeline(seed=0)


def test_official_template_and_negative_prompt():
    # the strings of the official inference_t23d.py (METHOD.md §6.3), literal backticks included
    assert apply_template("a red cube", True) == (
        "The camera rotates around the scene, maintaining constant distance: `a red cube`. "
        "The orbiting trajectory captures 3D structure and consistency."
    )
    assert apply_template("  a red cube ", False) == "a red cube"
    assert apply_template("cube", "draw {prompt} now") == "draw cube now"
    assert OFFICIAL_NEGATIVE_PROMPT.startswith("Background blur, Blurred background")
    assert OFFICIAL_NEGATIVE_PROMPT.endswith("too many fingers, long neck")
    with pytest.raises(InputError, match="\\{prompt\\}"):
        apply_template("x", "no placeholder")
    with pytest.raises(InputError, match="non-empty"):
        apply_template("   ", True)


def test_generation_is_the_documented_composition(pipe):
    """latent = sample(template(prompt), official negative); raw = z·std + mean; RGB = VAE(raw) resized to
    the recon size; scene = stitched decoder(raw, RGB). Recomputed here step by step."""
    res = pipe("a red cube", seed=3)
    video, dec = pipe.video, pipe.decoder
    cond = video.encode_text([res.full_prompt])
    uncond = video.encode_text([OFFICIAL_NEGATIVE_PROMPT])
    z = video.sample_latents(cond, uncond, num_frames=5, height=64, width=64, steps=2, guidance_scale=7.5,
                             flow_shift=5.0, generator=3, progress=False)
    mean = torch.tensor(video.vae.config.latents_mean).view(1, 16, 1, 1, 1)
    std = torch.tensor(video.vae.config.latents_std).view(1, 16, 1, 1, 1)
    assert not torch.allclose(std, torch.ones_like(std))  # de-normalisation is not the identity here
    raw = z * std + mean
    torch.testing.assert_close(res.latents, raw[0], rtol=1e-5, atol=1e-5)
    rgb = ((video.vae.decode(raw).sample + 1) / 2).clamp(0, 1)[0].permute(1, 0, 2, 3)  # T,3,64,64
    torch.testing.assert_close(res.frames, rgb, rtol=1e-4, atol=1e-4)
    small = F.interpolate(rgb, size=(56, 56), mode="bilinear", align_corners=False)
    rec = dec.reconstruct(raw, small[None])
    torch.testing.assert_close(res.gaussians.means, rec.gaussians[0].means, rtol=1e-4, atol=1e-4)
    assert len(res.cameras) == 5 and (res.cameras.width, res.cameras.height) == (56, 56)
    assert res.depth.shape == (5, 56, 56)
    assert set(res.timings) == {"text_encoding", "denoising", "vae_decode", "stitched_decode"}
    # the latent → 3D half alone (used by the probes on VAE round trips) is the same composition
    frames, alone = pipe.latents_to_3d(raw)
    torch.testing.assert_close(frames, rgb, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(alone.gaussians[0].means, rec.gaussians[0].means, rtol=1e-4, atol=1e-4)


def test_seeds_reproduce_and_differ(pipe):
    a = pipe("a blue sphere", seed=1, keep_frames=False)
    b = pipe("a blue sphere", seed=1, keep_frames=False)
    c = pipe("a blue sphere", seed=2, keep_frames=False)
    assert torch.equal(a.latents, b.latents) and a.frames is None
    assert not torch.allclose(a.latents, c.latents)
    many = pipe(["a blue sphere", "a green cone"], seed=[1, 5], keep_frames=False)
    assert isinstance(many, list) and len(many) == 2
    torch.testing.assert_close(many[0].latents, a.latents)


def test_template_can_be_turned_off(pipe):
    assert pipe("a cube", template=False, steps=1).full_prompt == "a cube"
    assert pipe("a cube", template="{prompt}, orbit", steps=1).full_prompt == "a cube, orbit"


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"num_frames": 6}, "1\\+4k"),
        ({"num_frames": 0}, "1\\+4k"),
        ({"height": 60}, "multiples of 16"),
        ({"steps": 0}, "steps"),
        ({"seed": [1, 2]}, "seeds"),
    ],
)
def test_bad_settings_fail_before_any_work(pipe, kw, match):
    with pytest.raises(InputError, match=match):
        pipe("a cube", **kw)


def test_low_vram_mode_gives_the_same_scene(pipe):
    ref = pipe("a red cube", seed=4, keep_frames=False)
    other = tiny_pipeline(seed=0)
    other.enable_low_vram("cpu")
    assert other.low_vram and other.video._offload_dit is not None and other.video.vae.use_tiling
    res = other("a red cube", seed=4, keep_frames=False)
    torch.testing.assert_close(res.gaussians.means, ref.gaussians.means)


def test_pipeline_folder_round_trip(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "p")
    loaded = load_pipeline(folder, device="cpu")
    assert loaded.settings == pipe.settings
    a = pipe("a yellow cylinder", seed=7, keep_frames=False)
    b = loaded("a yellow cylinder", seed=7, keep_frames=False)
    torch.testing.assert_close(a.gaussians.means, b.gaussians.means)
    torch.testing.assert_close(a.cameras.c2w, b.cameras.c2w)


def test_load_pipeline_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="unknown pipeline"):
        load_pipeline(str(tmp_path / "nothing"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="pipeline.json"):
        load_pipeline(tmp_path / "empty", device="cpu")
    monkeypatch.setenv("VIST3A_WEIGHTS", str(tmp_path / "w"))
    with pytest.raises(MissingWeightsError, match="huggingface-cli download HJGO/VIST3A --include 'vist3a_1.3b_lora_ema"):
        load_pipeline("vist3a-1.3b", device="cpu")
    lora = tmp_path / "w" / "VIST3A" / "vist3a_14b_lora_ema"
    lora.mkdir(parents=True)
    (lora / "adapter_config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="anysplat_stitched.pth"):
        load_pipeline("vist3a-14b", device="cpu")


def test_released_dit_lora_loads_with_peft_and_merges():
    """A PEFT adapter folder (as the official lora_ema) applied to a fresh DiT reproduces the PEFT model."""
    from diffusers import WanTransformer3DModel
    from peft import LoraConfig, get_peft_model

    cfg = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=16, out_channels=16,
               text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    torch.manual_seed(0)
    base = WanTransformer3DModel(**cfg).eval()
    state = {k: v.clone() for k, v in base.state_dict().items()}
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    x = torch.randn(1, 16, 2, 4, 4)
    t = torch.tensor([500.0])
    text = torch.randn(1, 6, 32)
    with torch.no_grad():
        want = peft_model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        peft_model.save_pretrained(d)
        fresh = WanTransformer3DModel(**cfg).eval()
        fresh.load_state_dict(state)
        with torch.no_grad():
            before = fresh(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]

        class Holder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.transformer = fresh

        holder = Holder()
        apply_dit_lora(holder, d)
    assert type(holder.transformer).__name__ == "WanTransformer3DModel"  # merged, plain model again
    with torch.no_grad():
        got = holder.transformer(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    assert (want - before).abs().max() > 1e-3  # the adapter matters
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(MissingWeightsError, match="adapter_config.json"):
        apply_dit_lora(holder, "/nonexistent/lora")


def test_mini_vocabulary():
    assert unknown_words("A small red cube to the left of a large blue sphere on a checkered gray floor") == []
    assert unknown_words("two cones and a cylinder") == []
    assert unknown_words("a dragon eating a red pizza") == ["dragon", "eating", "pizza"]


def test_camera_guard_setting_reaches_the_stitched_decoder(pipe, caplog):
    """settings.camera_guard_deg: off by default (official); below the random decoder's turns it places every frame
    from the first camera and says so; the mini model ships with it on (90°)."""
    from vist3a.models.camera_guard import max_step_deg
    from vist3a.pipelines.loading import MINI_SETTINGS

    assert pipe.settings.camera_guard_deg is None and MINI_SETTINGS.camera_guard_deg == 90.0
    plain = pipe("a red cube", seed=3)
    turn = float(max_step_deg(plain.cameras.c2w[None, :, :3, :]))
    assert turn > 0.0
    with caplog.at_level(logging.WARNING, logger="vist3a.models.camera_guard"):
        guarded = pipe.with_settings(camera_guard_deg=turn / 2)("a red cube", seed=3)
    assert "every frame is placed from the first camera" in caplog.text
    assert guarded.camera_guarded and not plain.camera_guarded
    c2w = guarded.cameras.c2w
    torch.testing.assert_close(c2w[1:], c2w[:1].expand_as(c2w[1:]), rtol=0, atol=1e-6)
    torch.testing.assert_close(c2w[0], plain.cameras.c2w[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(guarded.latents, plain.latents, rtol=0, atol=0)  # generation itself is untouched


def test_mini_pipeline_from_a_text_cache_loads_no_minilm(tmp_path, monkeypatch):
    """load_pipeline("mini", text_cache=F): MiniLM is not built; the cache's embeddings equal MiniLM's;
    a cache of another width is refused in one line."""
    from vist3a.errors import CheckpointError
    from vist3a.models.text_cache import CachedTextEncoder, write_text_cache
    from vist3a.pipelines.loading import load_text_encoder, pipeline_settings

    te = load_text_encoder("mini")
    assert te.hidden_size == 384 and te.max_length == 64 and pipeline_settings("mini").height == 256
    path = write_text_cache(te, ["a red cube"], tmp_path / "c.safetensors", dtype=None)
    monkeypatch.setattr("vist3a.models.text.minilm_l6", lambda *a, **k: pytest.fail("MiniLM was loaded"))  # wan_mini's import
    mini = load_pipeline("mini", device="cpu", text_cache=path)
    assert isinstance(mini.video.text_encoder, CachedTextEncoder)
    want = te.encode(["a red cube"], cache=False).embeds
    assert torch.equal(mini.video.encode_text(["a red cube"]).embeds, want)
    small = tiny_pipeline(seed=0).video.text_encoder  # a 1-layer BERT of another width
    other = write_text_cache(small, ["a red cube"], tmp_path / "o.safetensors", dtype=None)
    with pytest.raises(CheckpointError, match=f"embeddings of size {small.hidden_size}, the DiT expects 384"):
        load_pipeline("mini", device="cpu", text_cache=other)


def test_best_of_n_keeps_the_most_consistent_candidate(pipe):
    """candidates=3: the scenes of seeds s, s + stride, s + 2·stride, each scored by multi-view consistency
    (recomputed here from plain calls), and the best one returned as that seed's plain call."""
    from vist3a.eval.consistency import multiview_consistency
    from vist3a.pipelines.text_to_3d import CANDIDATE_SEED_STRIDE

    res = pipe("a green cone", seed=3, candidates=3, keep_frames=False)
    seeds = [3 + k * CANDIDATE_SEED_STRIDE for k in range(3)]
    assert res.candidate_seeds == seeds and res.frames is None
    plain = [pipe("a green cone", seed=sd) for sd in seeds]
    want = [sum(m["psnr"]) / len(m["psnr"]) for m in
            (multiview_consistency(p.gaussians, p.cameras, p.frames) for p in plain)]  # fmt: skip
    assert res.candidate_psnr == pytest.approx(want, abs=1e-3)
    assert len(set(round(w, 3) for w in want)) == 3  # distinct scores: the choice below is not a tie
    best = max(range(3), key=lambda k: want[k])
    assert res.seed == seeds[best]
    torch.testing.assert_close(res.latents, plain[best].latents)
    torch.testing.assert_close(res.gaussians.means, plain[best].gaussians.means)
    assert "selection" in res.timings
    kept = multiview_consistency(plain[best].gaussians, plain[best].cameras, plain[best].frames)
    assert res.consistency["frames"] == kept["frames"]
    assert res.consistency["psnr"] == pytest.approx(kept["psnr"], abs=1e-3)
    one = pipe("a green cone", seed=3, candidates=1, keep_frames=False)
    assert one.candidate_seeds == [] and one.candidate_psnr == [] and one.seed == 3 and one.consistency is None
    torch.testing.assert_close(one.latents, plain[0].latents)
    with pytest.raises(InputError, match="candidates must be >= 1"):
        pipe("a green cone", candidates=0)


def test_best_of_n_never_keeps_a_non_finite_score(pipe, monkeypatch):
    import vist3a.eval.consistency as consistency

    calls = []

    def fake(idx, rend, target):  # candidate 0 scores NaN, candidate 1 a finite value
        calls.append(1)
        return {"frames": [0], "psnr": [float("nan") if len(calls) == 1 else 10.0], "l1": [0.0]}

    monkeypatch.setattr(consistency, "consistency_scores", fake)
    res = pipe("a green cone", seed=3, candidates=2, keep_frames=False, steps=1)
    assert len(calls) == 2 and res.seed == res.candidate_seeds[1]


def test_best_of_n_by_the_world_reward_keeps_the_candidate_showing_the_caption(pipe):
    """select="world": each candidate is scored by the world colour reward of its renders at the consistency
    views against the prompt's parsed caption (recomputed here from plain calls), and the best is returned."""
    from vist3a.alignment.rewards import WorldColourReward
    from vist3a.eval.consistency import consistency_views
    from vist3a.pipelines.loading import MINI_SETTINGS
    from vist3a.pipelines.text_to_3d import CANDIDATE_SEED_STRIDE

    assert pipe.settings.select == "consistency" and MINI_SETTINGS.select == "world"  # official default; the mini's
    prompt = "a green cone to the left of a small red cube"
    res = pipe(prompt, seed=3, candidates=3, select="world", keep_frames=False)
    seeds = [3 + k * CANDIDATE_SEED_STRIDE for k in range(3)]
    plain = [pipe(prompt, seed=sd) for sd in seeds]
    reward, want = WorldColourReward(), []
    for p in plain:
        _, rend, _ = consistency_views(p.gaussians, p.cameras, p.frames)
        # the caption's colours by hand: green and red present, the other six absent
        pres = reward.presence(rend).mean(0)
        mine = [reward.names.index("green"), reward.names.index("red")]
        others = [k for k in range(len(reward.names)) if k not in mine]
        want.append(float(pres[mine].mean() - pres[others].mean()))
    assert res.candidate_scores == pytest.approx(want, abs=1e-4)
    assert len(set(round(w, 4) for w in want)) == 3
    best = max(range(3), key=lambda k: want[k])
    assert res.seed == seeds[best]
    torch.testing.assert_close(res.latents, plain[best].latents)
    assert len(res.candidate_psnr) == 3 and all(math.isfinite(v) for v in res.candidate_psnr)


def test_best_of_n_by_the_frames_ranks_before_the_3d_stage(pipe, monkeypatch):
    """select="world:frames": each candidate is scored by the world colour reward of its decoded frames (all T,
    recomputed here by hand from plain calls); only the kept candidate goes through the stitched decoder, and the
    result equals that seed's plain call."""
    from vist3a.alignment.rewards import WorldColourReward
    from vist3a.pipelines.text_to_3d import CANDIDATE_SEED_STRIDE

    prompt = "a green cone to the left of a small red cube"
    seeds = [3 + k * CANDIDATE_SEED_STRIDE for k in range(3)]
    plain = [pipe(prompt, seed=sd) for sd in seeds]
    reward, want = WorldColourReward(), []
    for p in plain:
        pres = reward.presence(p.frames).mean(0)
        mine = [reward.names.index("green"), reward.names.index("red")]
        others = [k for k in range(len(reward.names)) if k not in mine]
        want.append(float(pres[mine].mean() - pres[others].mean()))
    decodes = []
    real = type(pipe).frames_to_3d
    monkeypatch.setattr(type(pipe), "frames_to_3d", lambda self, *a, **k: decodes.append(1) or real(self, *a, **k))
    res = pipe(prompt, seed=3, candidates=3, select="world:frames", keep_frames=False)
    assert len(decodes) == 1  # the kept candidate only
    assert res.candidate_scores == pytest.approx(want, abs=1e-4)
    assert len(set(round(w, 4) for w in want)) == 3
    best = max(range(3), key=lambda k: want[k])
    assert res.seed == seeds[best] and res.candidate_seeds == seeds
    assert res.candidate_psnr == [] and res.consistency is None
    torch.testing.assert_close(res.latents, plain[best].latents)
    torch.testing.assert_close(res.gaussians.means, plain[best].gaussians.means)
    assert {"selection", "stitched_decode"} <= set(res.timings)
    # a free prompt has no caption to score the frames with: every candidate gets its scene, consistency decides
    decodes.clear()
    free = pipe("a teapot on a table", seed=3, candidates=2, select="world:frames", keep_frames=False, steps=1)
    assert len(decodes) == 2 and len(free.candidate_psnr) == 2 and free.candidate_scores == free.candidate_psnr
    with pytest.raises(InputError, match="world:depth: the world reward reads renders or frames or both"):
        pipe(prompt, candidates=2, select="world:depth")


def test_best_of_n_by_a_caption_reward_falls_back_to_consistency_for_a_free_prompt(pipe, caplog):
    """A prompt outside the world's vocabulary has no caption to score: candidates are ranked by consistency,
    with one warning; an unknown reward name is a one-line error before any work."""
    with caplog.at_level(logging.WARNING, logger="vist3a.pipelines.selection"):
        res = pipe("a teapot on a table", seed=3, candidates=2, select="world,relation", keep_frames=False, steps=1)
    assert "names no object of the mini world" in caplog.text
    assert res.candidate_scores == res.candidate_psnr
    assert res.seed == res.candidate_seeds[max(range(2), key=lambda k: res.candidate_psnr[k])]
    with pytest.raises(InputError, match="select: unknown reward 'colour'"):
        pipe("a red cube", candidates=2, select="colour")
