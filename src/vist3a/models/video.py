"""The video side of the stitch: a video VAE, a flow-matching DiT and a text encoder behind one object.

:class:`VideoModel` wraps diffusers classes (``AutoencoderKLWan`` + ``WanTransformer3DModel``, or the
VAE of CogVideoX / HunyuanVideo) and a :class:`~vist3a.models.text.TextEncoder`:

- ``encode(video)`` → **raw** latent (posterior sample or mode), ``decode(raw)`` → video, with
  ``decode(raw, checkpoint=True)`` for rewards that backpropagate through decoding;
- ``normalize(raw)`` → the DiT's latent and ``denormalize(z)`` back: per-channel mean/std for Wan
  (``(raw - mean) / std``), a scalar ``scaling_factor`` for CogVideoX / HunyuanVideo (``raw · s``);
- ``velocity(z, t, text)`` the DiT forward (flow prediction ``v = noise − x0``), ``guided_velocity``
  with classifier-free guidance, ``make_scheduler`` (UniPC flow prediction as the official inference
  uses, or FlowMatchEuler), and ``sample_latents`` the sampling loop;
- memory options as methods: VAE tiling / slicing, CPU offload of the text encoder and of the DiT
  while the VAE runs, bf16.

Conventions: video ``[B, 3, T, H, W]`` in [-1, 1] with ``T = 1 + 4k``; latents ``[B, 16, T', H/8, W/8]``
with ``T' = 1 + (T − 1)/4``. Functions say whether they take raw or normalised latents.

Presets (``vist3a.registry.build(name, device=..., weights=...)``): ``wan2.1-t2v-1.3b``,
``wan2.1-t2v-14b``, ``wan-mini``, ``cogvideox-vae``, ``hunyuanvideo-vae``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.mini_assets import SHIPPED, resolve
from vist3a.models.text import TextEmbeddings, TextEncoder
from vist3a.models.vae_checkpoint import decode_checkpointed

log = logging.getLogger(__name__)

WAN_13B_ID = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
WAN_14B_ID = "Wan-AI/Wan2.1-T2V-14B-Diffusers"
COGVIDEOX_ID = "THUDM/CogVideoX-2b"
HUNYUANVIDEO_ID = "hunyuanvideo-community/HunyuanVideo"

#: Wan 2.1's default negative prompt (diffusers' WanPipeline example; blur and artifacts).
WAN_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)

#: DiT configs of the released checkpoints (diffusers ``WanTransformer3DModel``; ECOSYSTEM.md §D.1).
_WAN_DIT_COMMON: dict[str, Any] = dict(
    patch_size=(1, 2, 2),
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    image_dim=None,
    added_kv_proj_dim=None,
    rope_max_seq_len=1024,
)
WAN_13B_DIT: dict[str, Any] = {**_WAN_DIT_COMMON, "num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30}
WAN_14B_DIT: dict[str, Any] = {**_WAN_DIT_COMMON, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}
#: The Wan 2.1 VAE = diffusers' ``AutoencoderKLWan`` defaults (shared by 1.3B and 14B).
WAN_VAE: dict[str, Any] = dict(
    base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[], temperal_downsample=[False, True, True]
)

#: wan-mini: the same classes at small widths (4x time / 8x space, 16 latent channels kept).
MINI_VAE: dict[str, Any] = dict(
    base_dim=16,
    z_dim=16,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=1,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    latents_mean=[0.0] * 16,
    latents_std=[1.0] * 16,
)
MINI_DIT: dict[str, Any] = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=4,
    attention_head_dim=64,
    in_channels=16,
    out_channels=16,
    text_dim=384,  # MiniLM-L6 hidden size
    freq_dim=256,
    ffn_dim=1024,
    num_layers=6,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)

SchedulerKind = Literal["unipc", "euler"]

#: LoRA targets of VIST3A's DiT alignment: q/k/v/out of self- (attn1) and cross-attention (attn2).
VIST3A_LORA_TARGETS: tuple[str, ...] = tuple(
    f"{a}.{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out.0")
)


# ====================================================================== helpers
def valid_frame_counts(near: int, ratio: int = 4, n: int = 3) -> list[int]:
    """Frame counts ``1 + ratio·k`` closest to ``near`` (for error messages)."""
    k = max(0, round((near - 1) / ratio))
    return sorted({1 + ratio * max(0, j) for j in range(k - n // 2 - 1, k + n // 2 + 2)})[: n + 1]


def _vae_geometry(vae: nn.Module) -> tuple[int, int, int]:
    """(latent channels, temporal ratio, spatial ratio) of a diffusers video VAE."""
    cfg = vae.config
    name = type(vae).__name__
    if name == "AutoencoderKLWan":
        return int(cfg.z_dim), int(cfg.scale_factor_temporal or 4), int(cfg.scale_factor_spatial or 8)
    if name == "AutoencoderKLCogVideoX":
        return int(cfg.latent_channels), int(cfg.temporal_compression_ratio), 2 ** (len(cfg.block_out_channels) - 1)
    if name == "AutoencoderKLHunyuanVideo":
        return int(cfg.latent_channels), int(cfg.temporal_compression_ratio), int(cfg.spatial_compression_ratio)
    raise InputError(f"unsupported video VAE class {name}; supported: AutoencoderKLWan, CogVideoX, HunyuanVideo")


def _param_device(m: nn.Module | None) -> torch.device:
    if m is None:
        return torch.device("cpu")
    p = next(m.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _conv3d_channels_last(module: nn.Module) -> None:
    """Store every Conv3d weight of ``module`` channels-last (``torch.channels_last_3d``), once."""
    if getattr(module, "_vist3a_channels_last", False):
        return
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
    module._vist3a_channels_last = True


def _param_dtype(m: nn.Module) -> torch.dtype:
    p = next(m.parameters(), None)
    return p.dtype if p is not None else torch.float32


def cast_keeping_fp32(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast floating parameters and buffers to ``dtype``, except the model's ``_keep_in_fp32_modules``.

    diffusers' ``from_pretrained(torch_dtype=...)`` keeps e.g. the Wan DiT's rope, time embedder,
    norms and modulation tables in fp32; a plain ``.to(bf16)`` would not. Those stay (or become) fp32.
    """
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or [])
    for mod_name, sub in model.named_modules():
        for kind in ("_parameters", "_buffers"):
            store = getattr(sub, kind)
            for n, t in list(store.items()):
                if t is None or not t.is_floating_point():
                    continue
                parts = f"{mod_name}.{n}".split(".")
                target = torch.float32 if keep.intersection(parts) else dtype
                if t.dtype != target:
                    if kind == "_parameters":
                        t.data = t.data.to(target)
                    else:
                        store[n] = t.to(target)
    return model


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ====================================================================== the model
class VideoModel(nn.Module):
    """A video VAE (+ optional DiT and text encoder) with latent normalisation and sampling.

    Args:
        vae: a diffusers video VAE (``AutoencoderKLWan``, ``AutoencoderKLCogVideoX``,
            ``AutoencoderKLHunyuanVideo``).
        transformer: a ``WanTransformer3DModel`` (flow-matching velocity prediction), or None.
        text_encoder: a :class:`TextEncoder` whose hidden size equals the DiT's ``text_dim``, or None.
        flow_shift: default ``flow_shift`` of the samplers (VIST3A inference: 5.0).
        name: preset name, for messages.

    Latent normalisation is read from the VAE config: ``latents_mean``/``latents_std`` (per channel)
    when present, else the scalar ``scaling_factor`` (and ``shift_factor``, if any).
    """

    def __init__(
        self,
        vae: nn.Module,
        transformer: nn.Module | None = None,
        text_encoder: TextEncoder | None = None,
        flow_shift: float = 5.0,
        name: str = "",
    ) -> None:
        super().__init__()
        self.vae = vae
        self.transformer = transformer
        self.text_encoder = text_encoder
        self.flow_shift = float(flow_shift)
        self.name = name
        self.latent_channels, self.temporal_ratio, self.spatial_ratio = _vae_geometry(vae)
        if transformer is not None:
            tc = transformer.config
            if tc.in_channels != self.latent_channels:
                raise CheckpointError(
                    f"DiT takes {tc.in_channels} latent channels but the VAE gives {self.latent_channels}"
                )
            if text_encoder is not None and text_encoder.hidden_size != tc.text_dim:
                raise CheckpointError(
                    f"text encoder hidden size {text_encoder.hidden_size} != DiT text_dim {tc.text_dim}"
                )
        self._offload_dit: torch.device | None = None

    # ------------------------------------------------------------------ geometry and checks
    @property
    def patch_size(self) -> tuple[int, int, int]:
        if self.transformer is None:
            return (1, 1, 1)
        return tuple(self.transformer.config.patch_size)  # type: ignore[return-value]

    def check_num_frames(self, num_frames: int) -> None:
        """Raise :class:`InputError` unless ``num_frames = 1 + r·k`` (r = temporal ratio, 4)."""
        r = self.temporal_ratio
        if num_frames < 1 or (num_frames - 1) % r != 0:
            valid = ", ".join(str(v) for v in valid_frame_counts(num_frames, r))
            raise InputError(
                f"got {num_frames} frames; this VAE compresses time {r}x causally and needs 1+{r}k frames "
                f"(e.g. {valid}); trim or pad the clip, frames are never dropped silently"
            )

    def latent_shape(self, batch: int, num_frames: int, height: int, width: int) -> tuple[int, int, int, int, int]:
        """Shape ``[B, C, T', h, w]`` of the latent of a ``[B, 3, T, H, W]`` video (checks T, H, W)."""
        self.check_num_frames(num_frames)
        mult = self.spatial_ratio * max(self.patch_size[1], self.patch_size[2])
        if height % mult or width % mult or height <= 0 or width <= 0:
            raise InputError(f"height and width must be positive multiples of {mult}, got {height}x{width}")
        s = self.spatial_ratio
        return (batch, self.latent_channels, 1 + (num_frames - 1) // self.temporal_ratio, height // s, width // s)

    def _check_video(self, video: torch.Tensor) -> None:
        if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[1] != 3:
            shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
            raise InputError(f"expected a video [B,3,T,H,W] in [-1,1], got {shape}")
        self.check_num_frames(video.shape[2])
        s = self.spatial_ratio
        if video.shape[3] % s or video.shape[4] % s:
            raise InputError(f"video height and width must be multiples of {s}, got {video.shape[3]}x{video.shape[4]}")
        if video.device.type != "meta" and video.numel():
            lo, hi = float(video.min()), float(video.max())
            if not (lo == lo and hi == hi) or lo < -1.01 or hi > 1.01:
                raise InputError(f"video values must lie in [-1, 1] (got min {lo:.3g}, max {hi:.3g})")

    def _check_latent(self, z: torch.Tensor, what: str) -> None:
        if not isinstance(z, torch.Tensor) or z.ndim != 5 or z.shape[1] != self.latent_channels:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise InputError(f"expected a {what} latent [B,{self.latent_channels},T',h,w], got {shape}")

    # ------------------------------------------------------------------ latent normalisation
    @property
    def per_channel_stats(self) -> bool:
        cfg = self.vae.config
        return getattr(cfg, "latents_mean", None) is not None and getattr(cfg, "latents_std", None) is not None

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, scale) broadcastable to ``[B, C, T, h, w]`` such that ``z = (raw − shift) · scale``."""
        cfg = self.vae.config
        kw = dict(device=like.device, dtype=torch.float32)
        if self.per_channel_stats:
            mean = torch.tensor(cfg.latents_mean, **kw).view(1, -1, 1, 1, 1)
            inv_std = 1.0 / torch.tensor(cfg.latents_std, **kw).view(1, -1, 1, 1, 1)
            return mean, inv_std
        shift = getattr(cfg, "shift_factor", None) or 0.0
        return torch.tensor(shift, **kw), torch.tensor(float(cfg.scaling_factor), **kw)

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw VAE latent → the DiT's (normalised) latent, same shape ``[B, C, T', h, w]``, float32."""
        self._check_latent(raw, "raw")
        shift, scale = self._stats(raw)
        return (raw.float() - shift) * scale

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """The DiT's (normalised) latent → raw VAE latent, float32."""
        self._check_latent(z, "normalised")
        shift, scale = self._stats(z)
        return z.float() / scale + shift

    def set_latent_stats(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> None:
        """Set per-channel latent mean/std (stored in the VAE config, saved with it)."""
        mean_l = [float(v) for v in torch.as_tensor(mean).flatten()]
        std_l = [float(v) for v in torch.as_tensor(std).flatten()]
        if len(mean_l) != self.latent_channels or len(std_l) != self.latent_channels:
            raise InputError(f"need {self.latent_channels} means and stds, got {len(mean_l)} and {len(std_l)}")
        if min(std_l) <= 0:
            raise InputError("latent stds must be > 0")
        self.vae.register_to_config(latents_mean=mean_l, latents_std=std_l)

    # ------------------------------------------------------------------ VAE
    def _vae_device(self) -> torch.device:
        return _param_device(self.vae)

    def _before_vae(self) -> None:
        if self._offload_dit is not None and self.transformer is not None:
            if _param_device(self.transformer).type != "cpu":
                self.transformer.to("cpu")
                _empty_cache(self._offload_dit)

    def encode(
        self,
        video: torch.Tensor,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Encode a video ``[B, 3, T, H, W]`` in [-1, 1] (T = 1+4k) to a **raw** latent ``[B, C, T', H/8, W/8]``.

        Args:
            sample: draw from the posterior (as VIST3A's training does); False returns its mode (mean).
            generator: RNG for the posterior sample.

        Returns:
            raw (un-normalised) latent, float32. Use :meth:`normalize` for the DiT's latent.
        """
        self._check_video(video)
        self._before_vae()
        dev, dt = self._vae_device(), _param_dtype(self.vae)
        dist = self.vae.encode(video.to(device=dev, dtype=dt)).latent_dist
        z = dist.sample(generator=generator) if sample else dist.mode()
        return z.float()

    def decode(self, raw: torch.Tensor, checkpoint: bool = False, frames_per_segment: int = 1) -> torch.Tensor:
        """Decode a **raw** latent ``[B, C, T', h, w]`` to a video ``[B, 3, 1+4(T'-1), 8h, 8w]`` in [-1, 1].

        Args:
            checkpoint: gradient checkpointing for backpropagating through decoding. For the Wan VAE
                it runs :func:`~vist3a.models.vae_checkpoint.decode_checkpointed` (per latent frame,
                equal to the plain decode); other VAEs switch on their diffusers checkpointing, which
                then stays on for later decodes (undo with ``vae.disable_gradient_checkpointing()``).
            frames_per_segment: latent frames per checkpoint segment (Wan only).

        Returns:
            float32 video. Normalised latents go through :meth:`denormalize` first.
        """
        self._check_latent(raw, "raw")
        self._before_vae()
        dev, dt = self._vae_device(), _param_dtype(self.vae)
        raw = raw.to(device=dev, dtype=dt)
        if checkpoint and type(self.vae).__name__ == "AutoencoderKLWan":
            if getattr(self.vae, "use_tiling", False):
                log.warning("checkpointed Wan decode ignores VAE tiling (decodes whole frames)")
            if getattr(self.vae, "use_slicing", False) and raw.shape[0] > 1:
                return torch.cat([decode_checkpointed(self.vae, r, frames_per_segment) for r in raw.split(1)]).float()
            return decode_checkpointed(self.vae, raw, frames_per_segment).float()
        if checkpoint:
            # diffusers' own checkpointing; it stays enabled because the backward pass recomputes
            # with the same module flags (values are unchanged; only memory and time differ)
            self.vae.enable_gradient_checkpointing()
        if dev.type == "cpu":
            # channels-last 3D convolutions (and the channel-wise RMS norms between them) are ~1.5x
            # faster on a CPU: 4.8 -> 3.25 s for a 13-frame 256² wan-mini decode on 2 cores, same values
            _conv3d_channels_last(self.vae)
            raw = raw.contiguous(memory_format=torch.channels_last_3d)
        return self.vae.decode(raw).sample.float()

    # ------------------------------------------------------------------ text
    def encode_text(self, prompts: str | Sequence[str], cache: bool = True) -> TextEmbeddings:
        """Prompts → :class:`TextEmbeddings` (``[B, L, D]`` zero-padded, mask ``[B, L]``) on the DiT's device."""
        if self.text_encoder is None:
            raise InputError(f"preset {self.name or '?'} has no text encoder; pass prompt embeddings instead")
        dev = self._dit_exec_device() if self.transformer is not None else None
        return self.text_encoder.encode(prompts, cache=cache, device=dev)

    # ------------------------------------------------------------------ DiT
    def _require_dit(self) -> nn.Module:
        if self.transformer is None:
            raise InputError(f"preset {self.name or '?'} has no DiT (VAE only); build one with a transformer")
        return self.transformer

    def _dit_exec_device(self) -> torch.device:
        if self._offload_dit is not None:
            return self._offload_dit
        return _param_device(self.transformer)

    def _before_dit(self) -> nn.Module:
        dit = self._require_dit()
        if self._offload_dit is not None and _param_device(dit) != self._offload_dit:
            dit.to(self._offload_dit)
        return dit

    def velocity(
        self,
        z: torch.Tensor,
        timestep: torch.Tensor | float,
        text: TextEmbeddings | torch.Tensor,
    ) -> torch.Tensor:
        """DiT forward: flow velocity ``v ≈ noise − x0`` at a **normalised** latent ``z_t``.

        Args:
            z: normalised noisy latent ``[B, C, T', h, w]``.
            timestep: ``t`` in [0, 1000] (``σ·1000``), scalar or ``[B]``.
            text: prompt embeddings ``[B, L, text_dim]`` (or :class:`TextEmbeddings`).

        Returns:
            ``[B, C, T', h, w]`` float32.
        """
        dit = self._before_dit()
        self._check_latent(z, "normalised")
        emb = text.embeds if isinstance(text, TextEmbeddings) else text
        if emb.ndim != 3 or emb.shape[-1] != dit.config.text_dim:
            raise InputError(f"text embeddings must be [B,L,{dit.config.text_dim}], got {tuple(emb.shape)}")
        if emb.shape[0] != z.shape[0]:
            raise InputError(f"batch of latents ({z.shape[0]}) and text embeddings ({emb.shape[0]}) differ")
        pe = getattr(dit, "patch_embedding", None)
        dev = _param_device(dit)
        dt = pe.weight.dtype if pe is not None else _param_dtype(dit)  # compute dtype (some modules stay fp32)
        t = torch.as_tensor(timestep, device=dev, dtype=torch.float32).flatten()
        if t.numel() == 1:
            t = t.expand(z.shape[0])
        out = dit(
            hidden_states=z.to(device=dev, dtype=dt),
            timestep=t,
            encoder_hidden_states=emb.to(device=dev, dtype=dt),
            return_dict=False,
        )[0]
        return out.float()

    def guided_velocity(
        self,
        z: torch.Tensor,
        timestep: torch.Tensor | float,
        cond: TextEmbeddings | torch.Tensor,
        uncond: TextEmbeddings | torch.Tensor | None,
        guidance_scale: float,
    ) -> torch.Tensor:
        """Classifier-free guidance ``v_u + s·(v_c − v_u)`` in one batched DiT call (batch 2B).

        ``uncond`` may have batch 1 (broadcast) and a different token length (zero-padded, as Wan pads).
        With ``guidance_scale == 1`` or ``uncond=None`` only the conditional branch runs.
        """
        c = cond.embeds if isinstance(cond, TextEmbeddings) else cond
        if uncond is None or guidance_scale == 1.0:
            return self.velocity(z, timestep, c)
        u = uncond.embeds if isinstance(uncond, TextEmbeddings) else uncond
        if u.shape[0] == 1 and c.shape[0] > 1:
            u = u.expand(c.shape[0], -1, -1)
        if u.shape[0] != c.shape[0]:
            raise InputError(f"negative embeddings batch {u.shape[0]} must be 1 or {c.shape[0]}")
        L = max(c.shape[1], u.shape[1])
        c = torch.nn.functional.pad(c, (0, 0, 0, L - c.shape[1]))
        u = torch.nn.functional.pad(u.to(c.device, c.dtype), (0, 0, 0, L - u.shape[1]))
        t = torch.as_tensor(timestep, dtype=torch.float32).flatten()
        t = t.expand(z.shape[0]) if t.numel() == 1 else t
        v = self.velocity(torch.cat([z, z]), torch.cat([t, t]), torch.cat([c, u]))
        v_c, v_u = v.chunk(2)
        return v_u + guidance_scale * (v_c - v_u)

    # ------------------------------------------------------------------ schedulers and sampling
    def make_scheduler(self, kind: SchedulerKind = "unipc", flow_shift: float | None = None) -> Any:
        """A fresh diffusers scheduler for flow-matching sampling.

        ``"unipc"``: ``UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
        flow_shift=...)`` as Wan's and VIST3A's inference use; ``"euler"``: ``FlowMatchEulerDiscreteScheduler(shift=...)``.
        """
        from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

        shift = self.flow_shift if flow_shift is None else float(flow_shift)
        if shift <= 0:
            raise InputError(f"flow_shift must be > 0, got {shift}")
        if kind == "unipc":
            return UniPCMultistepScheduler(
                num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
            )
        if kind == "euler":
            return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        raise InputError(f"unknown scheduler {kind!r}; choose 'unipc' or 'euler'")

    @torch.no_grad()
    def sample_latents(
        self,
        prompt_embeds: TextEmbeddings | torch.Tensor,
        negative_embeds: TextEmbeddings | torch.Tensor | None = None,
        num_frames: int = 13,
        height: int = 512,
        width: int = 512,
        steps: int = 50,
        guidance_scale: float = 7.5,
        flow_shift: float | None = None,
        generator: torch.Generator | int | None = None,
        scheduler: SchedulerKind = "unipc",
        latents: torch.Tensor | None = None,
        progress: bool = True,
        callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Sample **normalised** latents ``[B, C, T', H/8, W/8]`` from text embeddings with CFG.

        Args:
            prompt_embeds: ``[B, L, D]`` (or :class:`TextEmbeddings`).
            negative_embeds: ``[1 or B, L', D]``; required when ``guidance_scale != 1``.
            num_frames, height, width: video size (T = 1+4k, H and W multiples of 16).
            steps: denoising steps. guidance_scale: CFG scale (VIST3A: 7.5).
            flow_shift: scheduler shift (default: the model's, 5.0 for VIST3A inference).
            generator: a ``torch.Generator`` or an int seed; the initial noise is drawn on the
                generator's device (CPU for an int), so a seed gives the same noise on any device.
            scheduler: ``"unipc"`` (flow prediction, as the official inference) or ``"euler"``.
            latents: initial noise (overrides the generator).
            callback: called as ``callback(step_index, timestep, latents)`` after each step.

        Returns:
            float32 normalised latents; :meth:`denormalize` then :meth:`decode` give the video.
        """
        self._require_dit()
        emb = prompt_embeds.embeds if isinstance(prompt_embeds, TextEmbeddings) else prompt_embeds
        if not isinstance(emb, torch.Tensor) or emb.ndim != 3:
            raise InputError("prompt_embeds must be a [B,L,D] tensor or TextEmbeddings")
        if guidance_scale != 1.0 and negative_embeds is None:
            raise InputError("guidance_scale != 1 needs negative_embeds (encode the negative prompt, e.g. '')")
        if steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        shape = self.latent_shape(emb.shape[0], num_frames, height, width)
        dev = self._dit_exec_device()
        if latents is None:
            if isinstance(generator, int):
                generator = torch.Generator().manual_seed(generator)
            gen_dev = generator.device if generator is not None else torch.device("cpu")
            latents = torch.randn(shape, generator=generator, device=gen_dev, dtype=torch.float32)
        elif tuple(latents.shape) != shape:
            raise InputError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        z = latents.to(device=dev, dtype=torch.float32)
        sched = self.make_scheduler(scheduler, flow_shift)
        sched.set_timesteps(steps, device=dev)
        from tqdm.auto import tqdm

        for i, t in enumerate(tqdm(sched.timesteps, desc="denoising", disable=not progress, leave=False)):
            v = self.guided_velocity(z, t, emb, negative_embeds, guidance_scale)
            z = sched.step(v, t, z, return_dict=False)[0]
            if callback is not None:
                callback(i, t, z)
        return z

    # ------------------------------------------------------------------ memory options
    def enable_vae_tiling(
        self, tile: int | None = None, stride: int | None = None
    ) -> None:
        """Spatial VAE tiling (diffusers ``enable_tiling``; tile/stride in pixels, Wan default 256/192)."""
        if tile is None and stride is None:
            self.vae.enable_tiling()
            return
        kw = {}
        if type(self.vae).__name__ == "AutoencoderKLWan" or hasattr(self.vae, "tile_sample_stride_height"):
            if tile is not None:
                kw.update(tile_sample_min_height=tile, tile_sample_min_width=tile)
            if stride is not None:
                kw.update(tile_sample_stride_height=stride, tile_sample_stride_width=stride)
        self.vae.enable_tiling(**kw)

    def disable_vae_tiling(self) -> None:
        self.vae.disable_tiling()

    def enable_vae_slicing(self) -> None:
        """Encode/decode one batch item at a time."""
        self.vae.enable_slicing()

    def disable_vae_slicing(self) -> None:
        self.vae.disable_slicing()

    def enable_text_encoder_cpu_offload(self, device: str | torch.device = "cuda") -> None:
        """Keep the text encoder on the CPU; it visits ``device`` only while encoding."""
        if self.text_encoder is not None:
            self.text_encoder.enable_cpu_offload(device)

    def enable_dit_cpu_offload(self, device: str | torch.device = "cuda") -> None:
        """Move the DiT to the CPU whenever the VAE runs, and back to ``device`` for the next DiT call."""
        self._offload_dit = torch.device(device)

    def disable_cpu_offload(self) -> None:
        """Undo both offloads (components stay where they are now)."""
        self._offload_dit = None
        if self.text_encoder is not None:
            self.text_encoder.disable_cpu_offload()

    def enable_bf16(self, vae: bool = False) -> None:
        """Cast the DiT and text encoder to bfloat16 (the VAE too when ``vae=True``; default keeps it fp32).

        The DiT's ``_keep_in_fp32_modules`` (rope, time embedder, norms, modulation) stay fp32, as with
        diffusers' ``from_pretrained(torch_dtype=torch.bfloat16)``.
        """
        if self.transformer is not None:
            cast_keeping_fp32(self.transformer, torch.bfloat16)
        if self.text_encoder is not None and self.text_encoder.encoder is not None:  # a cache has no weights
            self.text_encoder.encoder.to(torch.bfloat16)
        if vae:
            self.vae.to(torch.bfloat16)

    def enable_dit_gradient_checkpointing(self) -> None:
        """diffusers' per-block gradient checkpointing of the DiT."""
        self._require_dit().enable_gradient_checkpointing()

    # ------------------------------------------------------------------ LoRA on the DiT
    def add_dit_lora(
        self, rank: int = 8, alpha: float = 16.0, target_modules: Sequence[str] = VIST3A_LORA_TARGETS
    ) -> int:
        """Wrap the DiT with a trainable PEFT LoRA (VIST3A: r=8, alpha=16 on self- and cross-attention q/k/v/out).

        Only LoRA parameters are left trainable. Returns their number.
        """
        import peft

        dit = self._require_dit()
        cfg = peft.LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=list(target_modules))
        self.transformer = peft.get_peft_model(dit, cfg)
        return sum(p.numel() for p in self.transformer.parameters() if p.requires_grad)

    def load_dit_lora(self, path: str | os.PathLike[str], merge: bool = True) -> None:
        """Load a PEFT LoRA folder (``adapter_config.json`` + weights, e.g. VIST3A's ``lora_ema/``) onto the DiT.

        Args:
            merge: fold the LoRA into the base weights (plain DiT again, no inference overhead).
        """
        import peft

        dit = self._require_dit()
        folder = Path(path).expanduser()
        if not (folder / "adapter_config.json").is_file():
            raise MissingWeightsError(
                f"no PEFT LoRA at {folder} (expected adapter_config.json); VIST3A's released LoRAs are the "
                "lora_ema/ folders of its checkpoints (github.com/gohyojun15/VIST3A)"
            )
        try:
            wrapped = peft.PeftModel.from_pretrained(dit, str(folder), is_trainable=not merge)
        except (ValueError, RuntimeError, KeyError) as e:
            raise CheckpointError(f"LoRA at {folder} does not fit this DiT: {str(e).splitlines()[0][:300]}") from e
        self.transformer = wrapped.merge_and_unload() if merge else wrapped

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``vae/`` and ``transformer/`` (diffusers format, safetensors) and ``video_model.json``.

        The folder is built beside its destination and renamed into place, so it appears whole or not
        at all. Load it with the preset builder's ``weights=folder``.
        """
        dst = Path(folder).expanduser()
        if dst.exists() and any(dst.iterdir()):
            raise InputError(f"output folder exists and is not empty: {dst}")
        if not dst.parent.is_dir():
            raise InputError(f"output folder's parent does not exist: {dst.parent}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
        try:
            self.vae.save_pretrained(str(tmp / "vae"))
            if self.transformer is not None:
                self.transformer.save_pretrained(str(tmp / "transformer"))
            meta = {"name": self.name, "flow_shift": self.flow_shift}
            (tmp / "video_model.json").write_text(json.dumps(meta, indent=2))
            if dst.exists():
                dst.rmdir()
            os.replace(tmp, dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dst


# ====================================================================== loading
def _missing(what: str, hf_id: str, weights: Any, err: Exception | None = None) -> MissingWeightsError:
    why = f" ({type(err).__name__})" if err is not None else ""
    return MissingWeightsError(
        f"could not load {what} from {weights!r}{why}: download {hf_id} "
        f"(`huggingface-cli download {hf_id} --local-dir DIR`) and pass weights=DIR"
    )


def _source(weights: Any, subfolder: str, hf_id: str, what: str) -> tuple[str, dict[str, Any]]:
    """(path or hub id, from_pretrained kwargs) for one component of a diffusers folder."""
    p = Path(str(weights)).expanduser()
    if p.is_dir():
        if (p / subfolder).is_dir():
            return str(p / subfolder), {}
        if (p / "config.json").is_file():
            return str(p), {}  # the component folder itself
        raise _missing(f"{what} ({subfolder}/ not in {p})", hf_id, weights)
    s = str(weights)
    if p.exists() or s.startswith((".", "/", "~")) or s.count("/") != 1:
        raise _missing(what, hf_id, weights)
    return s, {"subfolder": subfolder}


def _load_component(cls: Any, weights: Any, subfolder: str, hf_id: str, what: str, dtype: Any) -> nn.Module:
    src, kw = _source(weights, subfolder, hf_id, what)
    if dtype is not None:
        kw["torch_dtype"] = dtype
    try:
        return cls.from_pretrained(src, **kw)
    except (OSError, ValueError) as e:
        raise _missing(what, hf_id, weights, e) from e


def _check_config(module: nn.Module, expected: dict[str, Any], preset: str, keys: Sequence[str]) -> None:
    cfg = module.config
    bad = [f"{k}={getattr(cfg, k, None)!r} (expected {expected[k]!r})" for k in keys if getattr(cfg, k, None) != expected[k]]
    if bad:
        raise CheckpointError(f"weights do not match preset {preset}: " + ", ".join(bad))


def _build_random(cls: Any, config: dict[str, Any], device: torch.device, dtype: Any, seed: int | None) -> nn.Module:
    """Random init from ``config`` directly on ``device`` (and in ``dtype``: a 14B DiT never exists in fp32)."""

    def make() -> nn.Module:
        old = torch.get_default_dtype()
        if dtype is not None and dtype.is_floating_point:
            torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                return cls(**config)
        finally:
            torch.set_default_dtype(old)

    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = make()
    else:
        m = make()
    if dtype is not None:
        cast_keeping_fp32(m, dtype)
    return m.eval()


_COMPONENTS = ("vae", "transformer", "text_encoder")


def _check_components(components: Sequence[str]) -> tuple[str, ...]:
    comps = tuple(components)
    bad = [c for c in comps if c not in _COMPONENTS]
    if bad or "vae" not in comps:
        raise InputError(f"components must include 'vae' and come from {_COMPONENTS}, got {comps}")
    return comps


def wan_from_pretrained(
    weights: str | os.PathLike[str],
    device: Any = "cpu",
    dtype: torch.dtype | None = None,
    components: Sequence[str] = ("vae", "transformer", "text_encoder"),
    max_text_length: int = 512,
    flow_shift: float = 5.0,
    name: str = "wan",
    hf_id: str = WAN_13B_ID,
    expect_vae: dict[str, Any] | None = None,
    expect_dit: dict[str, Any] | None = None,
) -> VideoModel:
    """Load a Wan model from a diffusers-format folder or HF id.

    The folder holds ``vae/`` (``AutoencoderKLWan``), ``transformer/`` (``WanTransformer3DModel``),
    ``text_encoder/`` (``UMT5EncoderModel``) and ``tokenizer/``; only the listed ``components`` are
    loaded. ``expect_vae`` / ``expect_dit`` (architecture numbers) are checked against the loaded
    configs, so a preset pointed at the wrong checkpoint fails with a :class:`CheckpointError` naming
    the differing numbers. Missing files raise :class:`MissingWeightsError` naming ``hf_id``.
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from vist3a.models.text import umt5_xxl

    dev = torch.device(device)
    comps = _check_components(components)
    if dev.type == "meta":
        raise InputError("device='meta' builds the architecture only; leave weights=None")
    vae = _load_component(AutoencoderKLWan, weights, "vae", hf_id, "the Wan VAE", None)
    if expect_vae is not None:
        _check_config(vae, expect_vae, name, ["base_dim", "z_dim", "dim_mult", "num_res_blocks"])
    vae = vae.to(dev).eval()
    dit = None
    if "transformer" in comps:
        dit = _load_component(WanTransformer3DModel, weights, "transformer", hf_id, "the Wan DiT", dtype)
        if expect_dit is not None:
            keys = ["num_attention_heads", "attention_head_dim", "ffn_dim", "num_layers", "text_dim"]
            _check_config(dit, expect_dit, name, keys)
        dit = dit.to(dev).eval()
    te = None
    if "text_encoder" in comps:
        te = umt5_xxl(device=dev, weights=weights, dtype=dtype, max_length=max_text_length)
    return VideoModel(vae, dit, te, flow_shift=flow_shift, name=name)


def _wan_official(
    preset: str,
    hf_id: str,
    dit_config: dict[str, Any],
    device: Any,
    weights: Any,
    dtype: Any,
    components: Sequence[str],
    max_text_length: int,
    flow_shift: float,
    seed: int | None,
) -> VideoModel:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from vist3a.models.text import umt5_xxl

    if weights is not None:
        return wan_from_pretrained(
            weights, device, dtype, components, max_text_length, flow_shift, preset, hf_id, WAN_VAE, dit_config
        )
    dev = torch.device(device)
    comps = _check_components(components)
    vae = _build_random(AutoencoderKLWan, WAN_VAE, dev, None, seed)
    dit = _build_random(WanTransformer3DModel, dit_config, dev, dtype, seed) if "transformer" in comps else None
    te = umt5_xxl(device=dev, dtype=dtype, max_length=max_text_length) if "text_encoder" in comps else None
    return VideoModel(vae, dit, te, flow_shift=flow_shift, name=preset)


def wan21_t2v_1_3b(
    device: Any = "cpu",
    weights: str | os.PathLike[str] | None = None,
    dtype: torch.dtype | None = None,
    components: Sequence[str] = _COMPONENTS,
    max_text_length: int = 512,
    flow_shift: float = 5.0,
    seed: int | None = None,
) -> VideoModel:
    """Wan 2.1 T2V 1.3B: Wan VAE + DiT (30 layers, 12×128 heads, ffn 8960) + UMT5-XXL.

    Args:
        weights: a diffusers-format folder (``vae/``, ``transformer/``, ``text_encoder/``,
            ``tokenizer/``) or the HF id ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``; None = random init
            (``device="meta"`` for an allocation-free architecture).
        dtype: dtype of the DiT and text encoder (the VAE stays fp32).
        components: which of ``("vae", "transformer", "text_encoder")`` to build (the VAE always).
    """
    return _wan_official(
        "wan2.1-t2v-1.3b", WAN_13B_ID, WAN_13B_DIT, device, weights, dtype, components, max_text_length, flow_shift, seed
    )


def wan21_t2v_14b(
    device: Any = "cpu",
    weights: str | os.PathLike[str] | None = None,
    dtype: torch.dtype | None = None,
    components: Sequence[str] = _COMPONENTS,
    max_text_length: int = 512,
    flow_shift: float = 5.0,
    seed: int | None = None,
) -> VideoModel:
    """Wan 2.1 T2V 14B: Wan VAE + DiT (40 layers, 40×128 heads, ffn 13824) + UMT5-XXL (see 1.3B)."""
    return _wan_official(
        "wan2.1-t2v-14b", WAN_14B_ID, WAN_14B_DIT, device, weights, dtype, components, max_text_length, flow_shift, seed
    )


def wan_mini(
    device: Any = "cpu",
    weights: str | os.PathLike[str] | None = SHIPPED,
    dtype: torch.dtype | None = None,
    components: Sequence[str] = _COMPONENTS,
    max_text_length: int = 64,
    flow_shift: float = 5.0,
    seed: int | None = 0,
    vae_config: dict[str, Any] | None = None,
    dit_config: dict[str, Any] | None = None,
) -> VideoModel:
    """wan-mini: the Wan VAE and DiT classes at small widths, MiniLM-L6 (pretrained, offline) as text encoder.

    Video 13 frames at 256² → latent ``[B, 16, 4, 32, 32]``. VAE 2.6 M and DiT 7.1 M parameters.

    Args:
        weights: ``"shipped"`` (default) = the trained weights in the package (random when
            ``vae_config``/``dit_config`` are given); a folder written by :meth:`VideoModel.save_pretrained`
            (``vae/``, ``transformer/``); None = random init (seeded by ``seed``).
        vae_config, dit_config: overrides of :data:`MINI_VAE` / :data:`MINI_DIT` (tests).
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from vist3a.models.text import minilm_l6

    shipped = isinstance(weights, str) and weights == SHIPPED
    weights = resolve("wan-mini", weights, bool(vae_config or dit_config), device)
    dev = torch.device(device)
    comps = _check_components(components)
    vcfg = {**MINI_VAE, **(vae_config or {})}
    dcfg = {**MINI_DIT, **(dit_config or {})}
    shift = flow_shift
    if weights is None:
        vae = _build_random(AutoencoderKLWan, vcfg, dev, None, seed)
        dit = _build_random(WanTransformer3DModel, dcfg, dev, dtype, seed) if "transformer" in comps else None
    else:
        if dev.type == "meta":
            raise InputError("device='meta' builds the architecture only; leave weights=None")
        folder = Path(str(weights)).expanduser()
        if not (folder / "vae").is_dir():
            raise MissingWeightsError(
                f"wan-mini weights not found at {folder} (expected vae/ and transformer/ written by "
                "VideoModel.save_pretrained); train them with `vist3a world train-mini` or pass weights=None"
            )
        vae = AutoencoderKLWan.from_pretrained(str(folder / "vae")).to(dev).eval()
        dit = None
        if "transformer" in comps and shipped and not (folder / "transformer").is_dir():
            log.warning("wan-mini: the shipped weights hold the VAE only; the DiT is random")
            dit = _build_random(WanTransformer3DModel, dcfg, dev, dtype, seed)
        elif "transformer" in comps:
            if not (folder / "transformer").is_dir():
                raise MissingWeightsError(f"wan-mini DiT weights not found: {folder / 'transformer'}")
            kw = {"torch_dtype": dtype} if dtype is not None else {}
            dit = WanTransformer3DModel.from_pretrained(str(folder / "transformer"), **kw).to(dev).eval()
        meta = folder / "video_model.json"
        if meta.is_file():
            shift = float(json.loads(meta.read_text()).get("flow_shift", shift))
    te = None
    if "text_encoder" in comps:
        te = minilm_l6(device=dev, dtype=dtype, max_length=max_text_length)
    return VideoModel(vae, dit, te, flow_shift=shift, name="wan-mini")


def _vae_only(
    preset: str, cls_name: str, hf_id: str, device: Any, weights: Any, dtype: Any, config: dict[str, Any] | None, seed: int | None
) -> VideoModel:
    import diffusers

    cls = getattr(diffusers, cls_name)
    dev = torch.device(device)
    if weights is None:
        vae = _build_random(cls, dict(config or {}), dev, dtype, seed)
    else:
        if dev.type == "meta":
            raise InputError("device='meta' builds the architecture only; leave weights=None")
        vae = _load_component(cls, weights, "vae", hf_id, f"the {preset} VAE", dtype).to(dev).eval()
    return VideoModel(vae, None, None, name=preset)


def cogvideox_vae(
    device: Any = "cpu",
    weights: str | os.PathLike[str] | None = None,
    dtype: torch.dtype | None = None,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
) -> VideoModel:
    """CogVideoX VAE (``AutoencoderKLCogVideoX``; 16 ch, 4x time, 8x space, scalar scaling 1.15258426).

    ``weights``: a CogVideoX diffusers folder or HF id (``THUDM/CogVideoX-2b``), loading ``vae/``.
    """
    return _vae_only("cogvideox-vae", "AutoencoderKLCogVideoX", COGVIDEOX_ID, device, weights, dtype, config, seed)


def hunyuanvideo_vae(
    device: Any = "cpu",
    weights: str | os.PathLike[str] | None = None,
    dtype: torch.dtype | None = None,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
) -> VideoModel:
    """HunyuanVideo VAE (``AutoencoderKLHunyuanVideo``; 16 ch, 4x time, 8x space, scalar scaling 0.476986).

    ``weights``: a HunyuanVideo diffusers folder or HF id (``hunyuanvideo-community/HunyuanVideo``), loading ``vae/``.
    """
    return _vae_only("hunyuanvideo-vae", "AutoencoderKLHunyuanVideo", HUNYUANVIDEO_ID, device, weights, dtype, config, seed)
