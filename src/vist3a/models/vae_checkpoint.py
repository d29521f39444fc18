"""Wan VAE decoding with gradient checkpointing, one latent frame (or a few) per segment.

diffusers' ``AutoencoderKLWan`` decodes causally: ``_decode`` feeds the decoder one latent frame at a
time and carries a *feature cache* (the last two time steps at the input of every causal 3D conv, or
the marker ``"Rep"`` for the first temporal up-sampler) from one frame to the next. The model does
not support ``enable_gradient_checkpointing``, so backpropagating a reward through decoding keeps
every activation of every frame alive — tens of GB at 13 frames and 512².

:func:`decode_checkpointed` reproduces that iteration with the cache threaded *functionally* through
``torch.utils.checkpoint`` segments: each segment takes ``(latent frames, cache tensors)`` and returns
``(decoded frames, new cache tensors)``. Only segment inputs and outputs stay in memory; activations
inside a segment are recomputed in the backward pass. The result and its gradients equal the plain
``vae.decode`` (tested), because the same modules run on the same inputs in the same order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from vist3a.errors import InputError

CacheEntry = Any  # None, the string "Rep", or a tensor [B, C, <=2, h, w]


def _decode_frames(
    decoder: torch.nn.Module,
    frames: torch.Tensor,
    cache_in: list[CacheEntry],
    first_chunk: bool,
) -> tuple[torch.Tensor, list[CacheEntry]]:
    """Decode latent frames ``[B, C, n, h, w]`` one at a time, as ``AutoencoderKLWan._decode`` does.

    ``cache_in`` is copied, never mutated, so a checkpoint recomputation sees the same inputs.
    Returns ``([B, 3, n', H, W], cache_out)``.
    """
    cache = list(cache_in)
    outs = []
    for j in range(frames.shape[2]):
        idx = [0]  # the decoder walks its causal convs in a fixed order and advances this counter
        outs.append(
            decoder(frames[:, :, j : j + 1], feat_cache=cache, feat_idx=idx, first_chunk=first_chunk and j == 0)
        )
    return torch.cat(outs, dim=2), cache


def decode_checkpointed(vae: Any, z: torch.Tensor, frames_per_segment: int = 1) -> torch.Tensor:
    """Decode raw (un-normalised) Wan latents with per-frame gradient checkpointing.

    Args:
        vae: a diffusers ``AutoencoderKLWan``.
        z: raw latent ``[B, 16, T_lat, h, w]``.
        frames_per_segment: latent frames per checkpoint segment (1 = least memory).

    Returns:
        video ``[B, 3, 1 + 4 (T_lat - 1), 8 h, 8 w]`` in [-1, 1], equal to ``vae.decode(z).sample``.
        Spatial tiling of the VAE is not applied here (the whole frame is one segment).
    """
    if z.ndim != 5:
        raise InputError(f"expected a latent [B,C,T,h,w], got shape {tuple(z.shape)}")
    if frames_per_segment < 1:
        raise InputError(f"frames_per_segment must be >= 1, got {frames_per_segment}")
    if z.shape[1] != vae.config.z_dim:
        raise InputError(f"latent has {z.shape[1]} channels, this VAE expects {vae.config.z_dim}")
    z = z.to(dtype=next(vae.parameters()).dtype)
    x = vae.post_quant_conv(z)
    n_convs = sum(1 for m in vae.decoder.modules() if type(m).__name__ == "WanCausalConv3d")
    cache: list[CacheEntry] = [None] * n_convs
    outs = []
    need_grad = torch.is_grad_enabled()
    for s in range(0, x.shape[2], frames_per_segment):
        seg = x[:, :, s : s + frames_per_segment]
        if need_grad:
            out, cache = checkpoint(_decode_frames, vae.decoder, seg, cache, s == 0, use_reentrant=False)
        else:
            out, cache = _decode_frames(vae.decoder, seg, cache, s == 0)
        outs.append(out)
    video = torch.cat(outs, dim=2)
    patch = getattr(vae.config, "patch_size", None)
    if patch is not None:
        from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

        video = unpatchify(video, patch_size=patch)
    return torch.clamp(video, min=-1.0, max=1.0)
