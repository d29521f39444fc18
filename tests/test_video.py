"""VideoModel: presets (meta-device parameter counts), VAE shapes and frame-count rule, latent
(de)normalisation, checkpointed decode (= plain decode, with gradients), DiT + CFG, samplers, loading."""

from __future__ import annotations

import logging

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from vist3a import registry
from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.models import video as V
from vist3a.models.vae_checkpoint import decode_checkpointed
from vist3a.models.video import VideoModel

TINY_VAE = dict(base_dim=4, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
TINY_DIT = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=16, out_channels=16, text_dim=32,
    freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
)


def _tiny(seed: int = 0, dit: bool = True) -> VideoModel:
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(**TINY_VAE).eval()
    d = WanTransformer3DModel(**TINY_DIT).eval() if dit else None
    return VideoModel(vae, d, None, flow_shift=5.0, name="tiny")


@pytest.fixture(scope="module")
def tiny() -> VideoModel:
    return _tiny()


def _video(t: int = 9, hw: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, t, hw, hw, generator=g) * 2 - 1


# ---------------------------------------------------------------------- presets
def _wan_dit_params(dim: int, ffn: int, layers: int, text: int = 4096, freq: int = 256) -> int:
    """Parameter count of a Wan 2.1 DiT from its architecture numbers (independent of diffusers)."""
    attn = 4 * (dim * dim + dim) + 2 * dim  # q, k, v, out (+bias) and the q/k RMS norms
    block = 2 * attn + 2 * dim + (2 * dim * ffn + ffn + dim) + 6 * dim  # self+cross attn, norm2, ffn, modulation
    top = (16 * 4 * dim + dim) + (text * dim + dim + dim * dim + dim) + (freq * dim + dim + dim * dim + dim)
    top += (dim * 6 * dim + 6 * dim) + (dim * 64 + 64) + 2 * dim  # time projection, head, head modulation
    return layers * block + top


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "name, dim, ffn, layers, dit_params",
    [
        # released counts of the diffusers checkpoints (safetensors headers), cross-checked by the formula
        ("wan2.1-t2v-1.3b", 1536, 8960, 30, 1_418_996_800),
        ("wan2.1-t2v-14b", 5120, 13824, 40, 14_288_491_584),
    ],
)
def test_official_presets_on_meta_match_released_sizes(name, dim, ffn, layers, dit_params) -> None:
    m = registry.build(name, device="meta")
    assert _wan_dit_params(dim, ffn, layers) == dit_params
    assert _count(m.transformer) == dit_params
    assert _count(m.vae) == 126_892_531  # Wan 2.1 VAE
    assert _count(m.text_encoder) == 5_680_910_336  # UMT5-XXL encoder
    cfg = m.transformer.config
    assert cfg.num_attention_heads * cfg.attention_head_dim == dim and cfg.text_dim == 4096
    assert all(p.device.type == "meta" for p in m.parameters())
    # the published per-channel latent statistics of the Wan VAE (first and last channel)
    vc = m.vae.config
    assert (vc.latents_mean[0], vc.latents_std[0], vc.latents_mean[15], vc.latents_std[15]) == (
        -0.7571, 2.8184, -0.2921, 1.9160
    )
    assert m.latent_shape(1, 13, 512, 512) == (1, 16, 4, 64, 64)


def test_wan_mini_preset_geometry_and_size() -> None:
    m = registry.build("wan-mini", device="meta", components=("vae", "transformer"))
    assert (m.latent_channels, m.temporal_ratio, m.spatial_ratio) == (16, 4, 8)
    assert m.transformer.config.text_dim == 384  # MiniLM-L6 hidden size
    assert m.latent_shape(1, 13, 256, 256) == (1, 16, 4, 32, 32)
    # the shipped mini set is <= 60 MB fp16 in total; video side stays well under half of it
    assert 2 * (_count(m.vae) + _count(m.transformer)) < 25e6
    # the VAE really compresses 13x256² to 4x32x32 (shape propagation on the meta device)
    z = m.vae.encode(torch.empty(1, 3, 13, 256, 256, device="meta")).latent_dist.mode()
    assert tuple(z.shape) == (1, 16, 4, 32, 32)


@pytest.mark.parametrize("name, scale", [("cogvideox-vae", 1.15258426), ("hunyuanvideo-vae", 0.476986)])
def test_other_vae_presets_on_meta(name, scale) -> None:
    m = registry.build(name, device="meta")
    assert (m.latent_channels, m.temporal_ratio, m.spatial_ratio) == (16, 4, 8)
    assert not m.per_channel_stats and m.vae.config.scaling_factor == pytest.approx(scale)
    assert m.transformer is None and m.text_encoder is None


# ---------------------------------------------------------------------- VAE
def test_frame_count_rule_is_an_error_naming_valid_counts(tiny: VideoModel) -> None:
    with pytest.raises(InputError, match=r"12 frames.*1\+4k.*13"):
        tiny.encode(_video(12))
    with pytest.raises(InputError, match="1\\+4k"):
        tiny.latent_shape(1, 14, 32, 32)
    with pytest.raises(InputError, match="multiples of 16"):
        tiny.latent_shape(1, 13, 40, 32)


def test_bad_video_inputs(tiny: VideoModel) -> None:
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        tiny.encode(_video(9) * 127.5 + 127.5)  # a [0, 255] video
    with pytest.raises(InputError, match="B,3,T,H,W"):
        tiny.encode(torch.zeros(1, 4, 9, 32, 32))
    with pytest.raises(InputError, match="raw latent"):
        tiny.decode(torch.zeros(1, 8, 3, 4, 4))


def test_encode_decode_shapes_sample_and_mode(tiny: VideoModel) -> None:
    x = _video(13, 16)
    with torch.no_grad():
        mode = tiny.encode(x, sample=False)
        dist = tiny.vae.encode(x).latent_dist
        s1 = tiny.encode(x, sample=True, generator=torch.Generator().manual_seed(1))
        s2 = tiny.encode(x, sample=True, generator=torch.Generator().manual_seed(1))
        y = tiny.decode(mode)
    assert mode.shape == (1, 16, 4, 2, 2) and y.shape == (1, 3, 13, 16, 16)
    torch.testing.assert_close(mode, dist.mean)
    assert torch.equal(s1, s2) and not torch.allclose(s1, mode)
    # the posterior sample is mean + std·eps: its deviation scales with the posterior std
    assert float(((s1 - mode) / dist.std).std()) == pytest.approx(1.0, abs=0.2)
    assert float(y.abs().max()) <= 1.0


def test_wan_normalisation_is_per_channel(tiny: VideoModel) -> None:
    raw = torch.randn(2, 16, 3, 4, 4)
    z = tiny.normalize(raw)
    mean = torch.tensor(tiny.vae.config.latents_mean)
    std = torch.tensor(tiny.vae.config.latents_std)
    for c in (0, 7, 15):
        torch.testing.assert_close(z[:, c], (raw[:, c] - mean[c]) / std[c])
    torch.testing.assert_close(tiny.denormalize(z), raw, atol=1e-5, rtol=1e-5)


def test_set_latent_stats_is_saved_in_the_config() -> None:
    m = _tiny(dit=False)
    m.set_latent_stats(torch.full((16,), 0.5), torch.full((16,), 2.0))
    raw = torch.ones(1, 16, 1, 2, 2)
    torch.testing.assert_close(m.normalize(raw), torch.full_like(raw, 0.25))
    with pytest.raises(InputError):
        m.set_latent_stats([0.0] * 3, [1.0] * 3)


def _plain_and_checkpointed_grads(vae, z, fps):
    z1 = z.clone().requires_grad_(True)
    ref = vae.decode(z1).sample
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    (ref * w).sum().backward()
    g_ref = z1.grad.clone()
    p_ref = [p.grad.clone() for p in vae.decoder.parameters()]
    vae.zero_grad()
    z2 = z.clone().requires_grad_(True)
    out = decode_checkpointed(vae, z2, frames_per_segment=fps)
    (out * w).sum().backward()
    p_out = [p.grad.clone() for p in vae.decoder.parameters()]
    vae.zero_grad()
    return ref, out, g_ref, z2.grad, p_ref, p_out


@pytest.mark.parametrize("fps", [1, 2])
def test_checkpointed_decode_equals_plain_decode_with_gradients(fps) -> None:
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**TINY_VAE)
    z = torch.randn(1, 16, 3, 2, 2) * 0.3
    ref, out, g_ref, g_out, p_ref, p_out = _plain_and_checkpointed_grads(vae, z, fps)
    assert out.shape == ref.shape == (1, 3, 9, 16, 16)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert float(g_ref.abs().max()) > 0
    torch.testing.assert_close(g_out, g_ref, atol=1e-5, rtol=1e-4)
    for a, b in zip(p_out, p_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_checkpointed_decode_keeps_far_fewer_tensors_for_backward() -> None:
    """Bytes saved for backward (what stays in memory between forward and backward)."""
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**TINY_VAE)
    z = torch.randn(1, 16, 3, 2, 2, requires_grad=True)

    def saved_bytes(fn) -> int:
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn()
        out.sum().backward()
        return total[0]

    plain = saved_bytes(lambda: vae.decode(z).sample)
    ckpt = saved_bytes(lambda: decode_checkpointed(vae, z))
    assert ckpt < plain / 4


def test_video_model_decode_checkpoint_flag(tiny: VideoModel, caplog) -> None:
    raw = torch.randn(1, 16, 2, 2, 2) * 0.3
    with torch.no_grad():
        plain = tiny.decode(raw)
        ck = tiny.decode(raw, checkpoint=True)
    torch.testing.assert_close(ck, plain, atol=1e-5, rtol=0)
    raw = torch.randn(1, 16, 1, 4, 4) * 0.3
    tiny.enable_vae_tiling(tile=16, stride=8)
    try:
        with caplog.at_level(logging.WARNING), torch.no_grad():
            tiled = tiny.decode(raw)
            tiny.decode(raw, checkpoint=True)
        assert tiled.shape == (1, 3, 1, 32, 32) and "tiling" in caplog.text
    finally:
        tiny.disable_vae_tiling()


# ---------------------------------------------------------------------- other VAEs
COG_TINY = dict(
    block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1, norm_num_groups=4,
    sample_height=16, sample_width=16,
)
HY_TINY = dict(block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1, norm_num_groups=4)


@pytest.mark.parametrize("name, cfg", [("cogvideox-vae", COG_TINY), ("hunyuanvideo-vae", HY_TINY)])
def test_other_vaes_tiny(name, cfg) -> None:
    m = registry.build(name, device="cpu", config=cfg, seed=0)
    x = _video(9, 16)
    with torch.no_grad():
        raw = m.encode(x, sample=False)
        y = m.decode(raw)
    assert raw.shape == (1, 16, 3, 2, 2) and y.shape == (1, 3, 9, 16, 16)
    s = m.vae.config.scaling_factor
    torch.testing.assert_close(m.normalize(raw), raw * s)
    torch.testing.assert_close(m.denormalize(m.normalize(raw)), raw, atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="1\\+4k"):
        m.encode(_video(10, 16))
    # decode with gradient checkpointing (diffusers' own for these VAEs) equals the plain decode
    z = raw.clone().requires_grad_(True)
    yc = m.decode(z, checkpoint=True)
    yc.sum().backward()
    torch.testing.assert_close(yc.detach(), y, atol=1e-5, rtol=0)
    assert z.grad is not None and float(z.grad.abs().max()) > 0
    with pytest.raises(InputError, match="no DiT"):
        m.velocity(m.normalize(raw), 500.0, torch.zeros(1, 4, 8))


# ---------------------------------------------------------------------- DiT, CFG, sampling
def test_velocity_and_cfg(tiny: VideoModel) -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 16, 2, 4, 4, generator=g)
    c = torch.randn(2, 5, 32, generator=g)
    u = torch.randn(1, 3, 32, generator=g)
    with torch.no_grad():
        v_c = tiny.velocity(z, 700.0, c)
        u_pad = torch.cat([u, torch.zeros(1, 2, 32)], 1).expand(2, -1, -1)
        v_u = tiny.velocity(z, torch.tensor([700.0, 700.0]), u_pad)
        v = tiny.guided_velocity(z, 700.0, c, u, 4.0)
        v1 = tiny.guided_velocity(z, 700.0, c, u, 1.0)
    assert v_c.shape == z.shape and v_c.dtype == torch.float32
    torch.testing.assert_close(v, v_u + 4.0 * (v_c - v_u), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(v1, v_c)
    with pytest.raises(InputError, match="text embeddings"):
        tiny.velocity(z, 1.0, torch.zeros(2, 5, 7))
    with pytest.raises(InputError, match="batch"):
        tiny.velocity(z, 1.0, torch.zeros(3, 5, 32))


def test_schedulers_follow_the_official_inference(tiny: VideoModel) -> None:
    s = tiny.make_scheduler("unipc", flow_shift=5.0)
    assert type(s).__name__ == "UniPCMultistepScheduler"
    assert s.config.prediction_type == "flow_prediction" and s.config.use_flow_sigmas and s.config.flow_shift == 5.0
    e = tiny.make_scheduler("euler", flow_shift=3.0)
    assert type(e).__name__ == "FlowMatchEulerDiscreteScheduler" and e.config.shift == 3.0
    with pytest.raises(InputError):
        tiny.make_scheduler("ddim")  # type: ignore[arg-type]
    # shifted flow sigmas: sigma' = s·sigma / (1 + (s − 1)·sigma)
    s.set_timesteps(4)
    sig = torch.linspace(1, 0, 5)[1:4].double()  # the unshifted sigmas of steps 2..4 (1 − i/4)
    want = 5 * sig / (1 + 4 * sig)
    torch.testing.assert_close(torch.as_tensor(s.sigmas[1:4]).double(), want, atol=2e-3, rtol=0)


@pytest.mark.parametrize("kind", ["unipc", "euler"])
def test_one_step_sampling_is_noise_minus_velocity(tiny: VideoModel, kind) -> None:
    """With one step both samplers jump from sigma=1 to 0: x0 = noise − σ0·v(noise, t_0), σ0 = 1."""
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(1, 4, 32, generator=g)
    noise = torch.randn(1, 16, 2, 4, 4, generator=g)
    out = tiny.sample_latents(
        emb, None, num_frames=5, height=32, width=32, steps=1, guidance_scale=1.0, latents=noise,
        scheduler=kind, progress=False,
    )
    sched = tiny.make_scheduler(kind)
    sched.set_timesteps(1)
    sigma0 = float(sched.sigmas[0])
    assert sigma0 == pytest.approx(1.0, abs=1e-5) and float(sched.sigmas[1]) == 0.0
    with torch.no_grad():
        want = noise - sigma0 * tiny.velocity(noise, sched.timesteps[0], emb)
    torch.testing.assert_close(out, want, atol=1e-4, rtol=1e-4)


def test_sampling_is_deterministic_with_a_seed(tiny: VideoModel) -> None:
    emb = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(0))
    neg = torch.zeros(1, 4, 32)
    kw = dict(num_frames=5, height=32, width=32, steps=3, guidance_scale=5.0, progress=False)
    a = tiny.sample_latents(emb, neg, generator=7, **kw)
    b = tiny.sample_latents(emb, neg, generator=torch.Generator().manual_seed(7), **kw)
    c = tiny.sample_latents(emb, neg, generator=8, **kw)
    assert a.shape == (2, 16, 2, 4, 4) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(InputError, match="negative_embeds"):
        tiny.sample_latents(emb, None, **kw)
    with pytest.raises(InputError, match="1\\+4k"):
        tiny.sample_latents(emb, neg, **{**kw, "num_frames": 6})


def test_bf16_keeps_vae_and_fp32_modules_and_stays_close() -> None:
    m = _tiny()
    z, emb = torch.randn(1, 16, 1, 4, 4), torch.randn(1, 3, 32)
    with torch.no_grad():
        ref = m.velocity(z, 500.0, emb)
    m.enable_bf16()
    assert m.transformer.patch_embedding.weight.dtype == torch.bfloat16
    assert m.transformer.scale_shift_table.dtype == torch.float32  # diffusers' _keep_in_fp32_modules
    assert m.transformer.rope.freqs_cos.dtype != torch.bfloat16
    assert next(m.vae.parameters()).dtype == torch.float32
    with torch.no_grad():
        v = m.velocity(z, 500.0, emb)
    assert v.dtype == torch.float32
    assert float((v - ref).norm() / ref.norm()) < 0.05


# ---------------------------------------------------------------------- loading and saving
def test_wan_mini_save_and_load_round_trip(tmp_path) -> None:
    vcfg = {**TINY_VAE, "latents_mean": [0.1] * 16, "latents_std": [2.0] * 16}
    dcfg = {**TINY_DIT, "text_dim": 384}
    m = V.wan_mini(device="cpu", components=("vae", "transformer"), vae_config=vcfg, dit_config=dcfg, flow_shift=3.0)
    folder = m.save_pretrained(tmp_path / "mini")
    assert (folder / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    with pytest.raises(InputError, match="not empty"):
        m.save_pretrained(folder)
    back = registry.build("wan-mini", device="cpu", weights=folder, components=("vae", "transformer"))
    assert back.flow_shift == 3.0 and back.vae.config.latents_std == [2.0] * 16
    raw = torch.randn(1, 16, 2, 4, 4)
    emb = torch.randn(1, 3, 384)
    with torch.no_grad():
        torch.testing.assert_close(back.decode(raw), m.decode(raw))
        torch.testing.assert_close(back.velocity(raw, 10.0, emb), m.velocity(raw, 10.0, emb))
    with pytest.raises(MissingWeightsError, match="save_pretrained"):
        V.wan_mini(weights=tmp_path / "nothing")


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory):
    """A tiny Wan model in the diffusers layout: vae/, transformer/, text_encoder/ (UMT5), tokenizer/."""
    from transformers import UMT5Config, UMT5EncoderModel

    from vist3a.models.text import minilm_l6

    root = tmp_path_factory.mktemp("wan")
    torch.manual_seed(0)
    AutoencoderKLWan(**TINY_VAE).save_pretrained(str(root / "vae"))
    WanTransformer3DModel(**TINY_DIT).save_pretrained(str(root / "transformer"))
    te_cfg = UMT5Config(vocab_size=30522, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                        relative_attention_num_buckets=8)
    UMT5EncoderModel(te_cfg).save_pretrained(str(root / "text_encoder"))
    minilm_l6(device="meta").tokenizer.save_pretrained(str(root / "tokenizer"))  # any tokenizer works here
    return root


def test_load_wan_from_a_local_diffusers_folder(wan_folder) -> None:
    m = V.wan_from_pretrained(wan_folder, device="cpu", max_text_length=8, expect_vae=TINY_VAE, expect_dit=TINY_DIT)
    ref_vae = AutoencoderKLWan.from_pretrained(str(wan_folder / "vae"))
    for a, b in zip(m.vae.state_dict().values(), ref_vae.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    emb = m.encode_text(["a cube", "two red spheres"])
    assert emb.embeds.shape == (2, 8, 32)
    z = m.sample_latents(emb, m.encode_text(""), num_frames=5, height=32, width=32, steps=2, guidance_scale=3.0,
                         generator=0, progress=False)
    assert z.shape == (2, 16, 2, 4, 4)
    vae_only = V.wan_from_pretrained(wan_folder / "vae", components=("vae",))
    assert vae_only.transformer is None and vae_only.text_encoder is None


def test_preset_pointed_at_the_wrong_checkpoint_names_the_numbers(wan_folder) -> None:
    with pytest.raises(CheckpointError, match="wan2.1-t2v-1.3b.*base_dim=4 \\(expected 96\\)"):
        registry.build("wan2.1-t2v-1.3b", device="cpu", weights=wan_folder, components=("vae",))


def test_missing_weights_say_what_to_download(tmp_path, monkeypatch) -> None:
    with pytest.raises(MissingWeightsError, match="Wan-AI/Wan2.1-T2V-14B-Diffusers"):
        registry.build("wan2.1-t2v-14b", device="cpu", weights=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="vae/"):
        registry.build("wan2.1-t2v-1.3b", device="cpu", weights=tmp_path / "empty")

    def offline(*a, **k):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(AutoencoderKLWan, "from_pretrained", offline)
    with pytest.raises(MissingWeightsError, match="huggingface-cli download Wan-AI/Wan2.1-T2V-1.3B-Diffusers"):
        registry.build("wan2.1-t2v-1.3b", device="cpu", weights="Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    with pytest.raises(InputError, match="meta"):
        registry.build("wan2.1-t2v-1.3b", device="meta", weights="Wan-AI/Wan2.1-T2V-1.3B-Diffusers")


def test_offload_flags_on_cpu_are_harmless(tiny: VideoModel) -> None:
    m = _tiny()
    m.enable_dit_cpu_offload("cpu")
    with torch.no_grad():
        m.decode(torch.zeros(1, 16, 1, 4, 4))
        v = m.velocity(torch.zeros(1, 16, 1, 4, 4), 1.0, torch.zeros(1, 2, 32))
    assert v.shape == (1, 16, 1, 4, 4)
    m.disable_cpu_offload()


# ---------------------------------------------------------------------- LoRA on the DiT
def test_dit_lora_add_save_load_and_merge(tmp_path) -> None:
    m = _tiny(seed=1)
    base = {k: v.clone() for k, v in m.transformer.state_dict().items()}
    n = m.add_dit_lora(rank=4, alpha=8)
    # r·(in+out) per adapted Linear: 8 projections (attn1/attn2 q,k,v,out) of 16x16 in each of 2 blocks
    assert n == 2 * 8 * 4 * (16 + 16)
    with torch.no_grad():  # LoRA B starts at zero; give it values so the adapter changes the output
        for name, p in m.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    z, emb = torch.randn(1, 16, 1, 4, 4), torch.randn(1, 3, 32)
    with torch.no_grad():
        want = m.velocity(z, 300.0, emb)
    m.transformer.save_pretrained(str(tmp_path / "lora"))

    for merge in (False, True):
        fresh = _tiny(seed=1)
        fresh.transformer.load_state_dict(base)
        with torch.no_grad():
            before = fresh.velocity(z, 300.0, emb)
        fresh.load_dit_lora(tmp_path / "lora", merge=merge)
        with torch.no_grad():
            got = fresh.velocity(z, 300.0, emb)
        assert not torch.allclose(before, want, atol=1e-3)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        assert merge == (type(fresh.transformer).__name__ == "WanTransformer3DModel")
    with pytest.raises(MissingWeightsError, match="adapter_config.json"):
        _tiny().load_dit_lora(tmp_path / "nothing")
    other = VideoModel(AutoencoderKLWan(**TINY_VAE), WanTransformer3DModel(**{**TINY_DIT, "attention_head_dim": 4}))
    with pytest.raises(CheckpointError, match="does not fit"):
        other.load_dit_lora(tmp_path / "lora")


def test_cpu_decode_in_channels_last_equals_the_plain_diffusers_decode() -> None:
    import copy

    vm = _tiny()
    plain = copy.deepcopy(vm.vae)
    z = torch.randn(1, 16, 4, 2, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = plain.decode(z).sample.float()
        got = vm.decode(z)
    conv = next(m for m in vm.vae.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
