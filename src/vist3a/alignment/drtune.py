"""The two losses of VIST3A's DiT alignment (METHOD.md §6): flow-matching SFT and DRTune rollouts.

- :func:`flow_matching_loss`: clip → VAE (frozen) → normalised latent ``z0``; ``σ`` drawn uniformly
  and shifted as Wan's scheduler does (``σ' = sσ / (1 + (s−1)σ)``; ``s = 1`` is the official
  training code's unshifted σ); ``z_σ = (1−σ)z0 + σε``; MSE between the DiT's velocity at
  ``t = 1000σ`` and ``ε − z0``.
- :func:`drtune_rollout`: sample from noise with a random number of steps, the DiT's input
  **detached at every step**, the DiT under ``no_grad`` except at chosen steps (K random ones plus
  the last). Gradients reach the LoRA only through those predictions and flow forward through the
  scheduler's linear updates.
- :func:`decode_and_render`: raw latent → checkpointed VAE decode → frames; stitched decoder
  (frozen) → Gaussians + cameras → renders at the predicted cameras of the chosen views.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.render import render

log = logging.getLogger(__name__)


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """Wan / SD3 timestep shift ``sσ / (1 + (s−1)σ)`` (identity for ``s = 1``)."""
    if shift == 1.0:
        return sigma
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def flow_matching_loss(
    video_model,
    clips: torch.Tensor,
    text,
    generator: torch.Generator | None = None,
    shift: float = 3.0,
) -> torch.Tensor:
    """Flow-matching MSE on captioned clips.

    Args:
        video_model: a :class:`~vist3a.models.video.VideoModel` (LoRA-wrapped DiT; VAE frozen).
        clips: ``[B, T, 3, H, W]`` in [0, 1] (T = 1+4k).
        text: prompt embeddings ``[B, L, D]`` or :class:`TextEmbeddings` of the clips' captions.
        generator: CPU generator for the posterior sample, σ and ε (reproducible on any device).
        shift: timestep shift (Wan: 3; the official training code: 1).

    Returns:
        scalar loss.
    """
    if clips.ndim != 5 or clips.shape[2] != 3:
        raise InputError(f"SFT clips must be [B,T,3,H,W] in [0,1], got {tuple(clips.shape)}")
    x = clips.permute(0, 2, 1, 3, 4).float() * 2.0 - 1.0
    with torch.no_grad():
        raw = video_model.encode(x.clamp(-1, 1), sample=True, generator=generator)
        z0 = video_model.normalize(raw).cpu()
    b = z0.shape[0]
    sigma = shift_sigma(torch.rand(b, generator=generator), shift)
    eps = torch.randn(z0.shape, generator=generator)
    s = sigma.view(b, 1, 1, 1, 1)
    zt = (1.0 - s) * z0 + s * eps
    target = eps - z0
    v = video_model.velocity(zt, sigma * 1000.0, text)
    return F.mse_loss(v, target.to(v.device))


@dataclass
class RolloutPlan:
    """What one DRTune rollout does: ``num_steps`` steps; the DiT has gradients at ``grad_steps``."""

    num_steps: int
    grad_steps: tuple[int, ...]
    guidance_scale: float

    @staticmethod
    def draw(
        generator: torch.Generator,
        min_steps: int,
        max_steps: int,
        k: int,
        guidance: tuple[float, float],
    ) -> RolloutPlan:
        """Steps ~ U[min, max]; K distinct random steps among the first n−1, plus the last; CFG ~ U[g0, g1]."""
        if not 1 <= min_steps <= max_steps:
            raise InputError(f"need 1 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
        if k < 0:
            raise InputError(f"drtune K must be >= 0, got {k}")
        n = int(torch.randint(min_steps, max_steps + 1, (1,), generator=generator))
        pick = torch.randperm(max(n - 1, 0), generator=generator)[: min(k, n - 1)].tolist()
        g0, g1 = guidance
        g = g0 + (g1 - g0) * float(torch.rand((), generator=generator))
        return RolloutPlan(n, tuple(sorted({*pick, n - 1})), g)


def drtune_rollout(
    video_model,
    cond,
    uncond,
    noise: torch.Tensor,
    plan: RolloutPlan,
    scheduler: str = "unipc",
    flow_shift: float = 3.0,
    on_step: Callable[[int, bool], None] | None = None,
) -> torch.Tensor:
    """Denoise ``noise`` (normalised latent ``[B, C, T', h, w]``) to ``z0`` with DRTune's gradient rule.

    At every step the DiT input is ``z.detach()``; the DiT runs with autograd only at
    ``plan.grad_steps``. The scheduler update ``z ← step(v, t, z)`` is kept in the graph, so a
    prediction's gradient also reaches later states through the (linear) updates.

    Args:
        cond, uncond: prompt / negative embeddings (``uncond`` may be None for no CFG).
        on_step: called as ``on_step(index, with_grad)`` before each DiT call (tests, logging).

    Returns:
        normalised ``z0`` (float32), differentiable w.r.t. the LoRA through the gradient steps.
    """
    sched = video_model.make_scheduler(scheduler, flow_shift)
    dev = video_model._dit_exec_device()
    sched.set_timesteps(plan.num_steps, device=dev)
    z = noise.to(dev, torch.float32)
    grad_set = set(plan.grad_steps)
    for i, t in enumerate(sched.timesteps):
        with_grad = i in grad_set
        if on_step is not None:
            on_step(i, with_grad)
        with torch.set_grad_enabled(with_grad):
            v = video_model.guided_velocity(z.detach(), t, cond, uncond, plan.guidance_scale)
        z = sched.step(v, t, z, return_dict=False)[0]
    return z


@dataclass
class DecodedScene:
    """The reward's inputs for a batch: frames and renders ``[B, V, 3, H, W]`` in [0, 1]."""

    frames: torch.Tensor
    renders: torch.Tensor | None
    views: list[int]


def recon_size(decoder, latent_h: int, latent_w: int) -> tuple[int, int]:
    """The stitched decoder's RGB input size for a latent grid (delegates to the generation pipeline)."""
    from vist3a.pipelines.text_to_3d import recon_input_size

    return recon_input_size(decoder, latent_h, latent_w)


def decode_and_render(
    video_model,
    decoder,
    z0: torch.Tensor,
    views: Sequence[int],
    with_renders: bool = True,
    backend: str = "auto",
    near: float = 0.1,
    far: float = 100.0,
) -> DecodedScene:
    """Normalised ``z0`` → checkpointed VAE decode → frames at the reconstruction size; stitched
    decoder → Gaussians + cameras; renders of the chosen views at their predicted cameras.

    Args:
        views: frame indices the reward looks at (paper: 2 random views; official: all 13).
        with_renders: run the stitched decoder and renderer (False for frame-only rewards).
        decoder: may be None for frame-only rewards (frames then stay at the video size; otherwise
            they are resized to the reconstruction size, as the renders).
    """
    raw = video_model.denormalize(z0)
    rgb = video_model.decode(raw, checkpoint=True)  # [B,3,T,H,W] in [-1,1]
    frames = ((rgb + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 1, 3, 4)  # [B,T,3,H,W]
    b, t = frames.shape[:2]
    bad = [v for v in views if not 0 <= v < t]
    if bad:
        raise InputError(f"reward views {bad} outside the {t} decoded frames")
    idx = list(views)
    if decoder is None:
        if with_renders:
            raise InputError("renders need the stitched decoder")
        return DecodedScene(frames[:, idx], None, idx)  # frame-only rewards: the video size
    rh, rw = recon_size(decoder, raw.shape[-2], raw.shape[-1])
    small = F.interpolate(frames.flatten(0, 1), size=(rh, rw), mode="bilinear", align_corners=False)
    small = small.view(b, t, 3, rh, rw)
    if not with_renders:
        return DecodedScene(small[:, idx], None, idx)
    dev = next(decoder.parameters()).device
    out = decoder(raw.to(dev), small.to(dev).clamp(0.0, 1.0))
    renders = []
    for i in range(b):
        cams = Cameras(out.c2w[i, idx].float(), out.K[i, idx].float(), width=rw, height=rh)
        r = render(out.gaussians[i], cams, backend=backend, near_plane=near, far_plane=far)
        renders.append(r.rgb.clamp(0.0, 1.0))
    return DecodedScene(small[:, idx], torch.stack(renders).to(small.device), idx)
