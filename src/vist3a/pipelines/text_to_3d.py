"""Text → 3D Gaussians: the VIST3A generation pipeline (METHOD.md §6.3).

``TextTo3DPipeline(video, decoder)`` composes a :class:`~vist3a.models.video.VideoModel` (text encoder,
flow-matching DiT, video VAE) and a :class:`~vist3a.stitching.stitched.StitchedDecoder`:

1. the prompt is wrapped in the orbit template of the official inference and encoded, with the
   official negative prompt for classifier-free guidance;
2. the DiT samples a **normalised** latent ``[1, 16, T', H/8, W/8]`` (UniPC flow prediction,
   ``flow_shift`` 5, CFG 7.5, 50 steps, 13 frames at 512² by default);
3. the latent is de-normalised to the **raw** VAE latent, which the stitched decoder takes;
4. the VAE decodes it to RGB ``[1, 3, T, H, W]``, resized to the reconstruction network's input size
   (512 → 448), because AnySplat's Gaussian head adds an RGB shortcut;
5. the stitched decoder turns latent + RGB into Gaussians and one camera per frame.

Memory options are methods (:meth:`TextTo3DPipeline.enable_low_vram`), as in diffusers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians
from vist3a.models.text import TextEmbeddings
from vist3a.stitching.stitched import rgb_branch_input

log = logging.getLogger(__name__)

#: The official inference's prompt template (``inference_t23d.py``), including its literal backticks.
OFFICIAL_TEMPLATE = (
    "The camera rotates around the scene, maintaining constant distance: `{prompt}`. "
    "The orbiting trajectory captures 3D structure and consistency."
)
#: The official inference's negative prompt, verbatim.
OFFICIAL_NEGATIVE_PROMPT = (
    "Background blur, Blurred background, Blurred scene, Artifacts, not aesthetic, not realistic, rendered noise, "
    "low quality movement, low quality video, low quality image, deformed, disfigured, distorted, extra limbs, "
    "cloned face, skinny, glitchy, double torso, extra arms, extra hands, mangled fingers, missing lips, ugly face, "
    "distorted legs, fused fingers, too many fingers, long neck"
)
#: The seed the official inference fixes.
OFFICIAL_SEED = 12413
#: Candidate k of a best-of-N generation starts from seed + k·stride: far from the seed + 1, + 2, ... that
#: `vist3a generate` gives a repeated prompt, so candidates of neighbouring samples do not coincide.
CANDIDATE_SEED_STRIDE = 100_003


@dataclass(frozen=True)
class GenerationSettings:
    """Default sampling settings of a pipeline (each can be overridden per call).

    Attributes:
        num_frames: video frames T (1+4k; official 13).
        height, width: video size (multiples of 16; official 512²).
        steps: denoising steps (official inference 50; the paper's eval 80).
        guidance_scale: classifier-free guidance scale (7.5).
        flow_shift: scheduler shift (5.0).
        scheduler: ``"unipc"`` (flow prediction, as the official inference) or ``"euler"``.
        seed: default seed (the official 12413).
        template: prompt template with ``{prompt}``; "" = use prompts as they are.
        negative_prompt: the negative prompt for CFG.
        voxelize: AnySplat voxel fusion of the pixel-aligned Gaussians (None = the network's config).
        camera_guard_deg: a scene whose predicted cameras turn more than this between neighbouring frames is
            placed from its first camera, with a warning (``vist3a.models.camera_guard``); None = off (official).
        candidates: scenes generated per prompt, of which the best by ``select`` is kept (best-of-N; 1 = official).
        select: how candidates are ranked (:mod:`vist3a.pipelines.selection`): ``"consistency"`` (multi-view
            consistency, no caption involved) or a reward spec such as ``"world"`` (the caption's colours).
    """

    num_frames: int = 13
    height: int = 512
    width: int = 512
    steps: int = 50
    guidance_scale: float = 7.5
    flow_shift: float = 5.0
    scheduler: str = "unipc"
    seed: int = OFFICIAL_SEED
    template: str = OFFICIAL_TEMPLATE
    negative_prompt: str = OFFICIAL_NEGATIVE_PROMPT
    voxelize: bool | None = None
    camera_guard_deg: float | None = None
    candidates: int = 1
    select: str = "consistency"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def full_prompt(self, prompt: str, template: str | bool | None = True) -> str:
        """What the text encoder sees for ``prompt``: True = these settings' template, a string with
        ``{prompt}`` = that template, False/None/"" = the prompt as it is."""
        return apply_template(prompt, self.template if template is True else template)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown generation settings {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class TextTo3DResult:
    """One generated scene.

    Attributes:
        prompt: the user's prompt.
        full_prompt: what the text encoder saw (after the template).
        gaussians: the scene (activated, wxyz quaternions, OpenCV world of the first camera).
        cameras: the T predicted cameras (c2w OpenCV, pixel K at the reconstruction input size).
        frames: decoded video ``[T, 3, H, W]`` in [0, 1] at the video size (None if not kept).
        latents: the **raw** (de-normalised) VAE latent ``[C, T', h, w]``.
        depth: ``[T, S, S]`` predicted depth at the reconstruction input size S.
        seed: the seed of the initial noise.
        timings: seconds per stage: ``text_encoding``, ``denoising``, ``vae_decode``, ``stitched_decode`` (summed
            over the candidates, with ``selection`` for their consistency scores).
        camera_guarded: the camera guard replaced the predicted cameras by the first one (``settings.camera_guard_deg``).
        candidate_seeds, candidate_psnr: with ``candidates > 1``, each candidate's seed and multi-view
            consistency (dB; empty when a frames-only selector ranked them before the 3D stage); ``seed`` is the
            kept one's.
        candidate_scores: with ``candidates > 1``, each candidate's selection score (``select``'s reward, or
            the consistency in dB).
        consistency: with ``candidates > 1``, the kept scene's
            :func:`~vist3a.eval.consistency.multiview_consistency` (already computed to choose it), else None (also
            for a frames-only selector).
    """

    prompt: str
    full_prompt: str
    gaussians: Gaussians
    cameras: Cameras
    frames: torch.Tensor | None
    latents: torch.Tensor
    depth: torch.Tensor
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    camera_guarded: bool = False
    candidate_seeds: list[int] = field(default_factory=list)
    candidate_psnr: list[float] = field(default_factory=list)
    candidate_scores: list[float] = field(default_factory=list)
    consistency: dict[str, Any] | None = None


def apply_template(prompt: str, template: str | bool | None) -> str:
    """``prompt`` inside ``template`` (True = the official orbit template; False/None/"" = unchanged)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"a prompt must be a non-empty string, got {prompt!r}")
    if template is True:
        template = OFFICIAL_TEMPLATE
    if not template:
        return prompt.strip()
    if "{prompt}" not in template:
        raise InputError(f"the prompt template must contain '{{prompt}}', got {template!r}")
    return template.replace("{prompt}", prompt.strip())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def recon_input_size(decoder: nn.Module, latent_h: int, latent_w: int) -> tuple[int, int]:
    """Input size (H, W) of the reconstruction network for a raw latent of ``latent_h × latent_w``.

    The stitching layer maps the latent grid to the token grid; the RGB shortcut needs
    ``tokens × patch`` pixels (official: 64² latent → 32² tokens → 448²).
    """
    layer = decoder.stitching_layer
    patch = decoder.recon.config.patch_size
    if isinstance(layer, (nn.Conv3d, nn.Conv2d)):
        k, s, p = layer.kernel_size[-2:], layer.stride[-2:], layer.padding[-2:]
        if isinstance(p, str):
            raise InputError("stitching layers with string padding are not supported by the pipeline")
        th = (latent_h + 2 * p[0] - k[0]) // s[0] + 1
        tw = (latent_w + 2 * p[1] - k[1]) // s[1] + 1
        return th * patch, tw * patch
    raise InputError(f"stitching layer {type(layer).__name__} is not a Conv2d/Conv3d")


class TextTo3DPipeline:
    """Prompt → video latent → stitched decoder → Gaussians + cameras.

    Args:
        video: a :class:`~vist3a.models.video.VideoModel` with a DiT (and a text encoder, unless
            prompt embeddings are passed to the call).
        decoder: a :class:`~vist3a.stitching.stitched.StitchedDecoder` taking this VAE's raw latents.
        settings: default :class:`GenerationSettings`.
        name: the pipeline's name (``"mini"``, ``"vist3a-1.3b"``, a folder), for messages and settings.json.
    """

    def __init__(
        self,
        video: nn.Module,
        decoder: nn.Module,
        settings: GenerationSettings | None = None,
        name: str = "",
    ) -> None:
        if getattr(video, "transformer", None) is None:
            raise InputError("the text-to-3D pipeline needs a video model with a DiT")
        if video.latent_channels != decoder.latent_grid[0]:
            raise InputError(
                f"the VAE gives {video.latent_channels} latent channels, the stitched decoder takes {decoder.latent_grid[0]}"
            )
        if video.temporal_ratio != decoder.time_factor:
            raise InputError(
                f"the VAE compresses time {video.temporal_ratio}x, the stitched decoder expects {decoder.time_factor}x"
            )
        self.video = video
        self.decoder = decoder
        self.settings = settings or GenerationSettings()
        self.name = name
        self.low_vram = False
        if self.settings.voxelize is not None:
            decoder.recon.set_voxelize(self.settings.voxelize)

    # ------------------------------------------------------------------ devices and memory
    @property
    def device(self) -> torch.device:
        """Where the DiT runs (its execution device under CPU offload)."""
        return self.video._dit_exec_device()

    def to(self, device: str | torch.device) -> TextTo3DPipeline:
        dev = torch.device(device)
        self.video.to(dev)
        self.decoder.to(dev)
        return self

    def enable_low_vram(self, device: str | torch.device | None = None, vae_tiling: bool = True) -> None:
        """Text encoder on the CPU except while encoding, the DiT on the CPU while the VAE and the
        decoder run, and spatial VAE tiling. Peak memory then is max(DiT, decoder) instead of their sum."""
        dev = torch.device(device) if device is not None else self.device
        self.video.enable_text_encoder_cpu_offload(dev)
        self.video.enable_dit_cpu_offload(dev)
        if vae_tiling:
            self.video.enable_vae_tiling()
        # the VAE and the decoder live on the device; the DiT and the text encoder visit it when used
        # (so a pipeline loaded on the CPU never has every part on the GPU at once)
        self.video.vae.to(dev)
        self.decoder.to(dev)
        self.low_vram = True

    def enable_bf16(self) -> None:
        """DiT and text encoder in bfloat16 (the VAE stays fp32; AnySplat autocasts on CUDA)."""
        self.video.enable_bf16()

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, folder: str | os.PathLike[str]) -> Any:
        """Write a self-contained pipeline folder (see :mod:`vist3a.pipelines.loading`)."""
        from vist3a.pipelines.loading import save_pipeline

        return save_pipeline(self, folder)

    # ------------------------------------------------------------------ generation
    def _encode(self, texts: list[str]) -> TextEmbeddings:
        return self.video.encode_text(texts)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        flow_shift: float | None = None,
        seed: int | Sequence[int] | None = None,
        template: str | bool | None = True,
        prompt_embeds: torch.Tensor | TextEmbeddings | None = None,
        negative_embeds: torch.Tensor | TextEmbeddings | None = None,
        keep_frames: bool = True,
        progress: bool = True,
        candidates: int | None = None,
        select: str | None = None,
    ) -> TextTo3DResult | list[TextTo3DResult]:
        """Generate one scene per prompt.

        Args:
            prompt: a prompt or a list of prompts (generated one after another, batch 1 each).
            negative_prompt: default the pipeline's (the official negative prompt).
            num_frames: T = 1+4k (default 13). height, width: video size (default 512²).
            steps, guidance_scale, flow_shift: sampling (default 50, 7.5, 5.0).
            seed: one seed for all prompts, or one per prompt (default the settings' seed).
            template: True = the pipeline's template (the official orbit template), a string with
                ``{prompt}``, or False to use prompts unchanged.
            prompt_embeds, negative_embeds: precomputed text embeddings ``[1, L, D]`` instead of a
                text encoder (then ``prompt`` only names the result).
            keep_frames: keep the decoded video in the result.
            candidates: scenes generated per prompt (seeds ``seed + k·CANDIDATE_SEED_STRIDE``), of which the
                best by ``select`` is returned (default the settings', 1).
            select: how candidates are ranked: ``"consistency"`` or a reward spec such as ``"world"``
                (:mod:`vist3a.pipelines.selection`; default the settings', consistency).

        Returns:
            a :class:`TextTo3DResult` for a string prompt, a list of them for a list.
        """
        s = self.settings
        single = isinstance(prompt, str)
        prompts = [prompt] if single else list(prompt)
        if not prompts:
            raise InputError("no prompts given")
        num_frames = s.num_frames if num_frames is None else int(num_frames)
        height = s.height if height is None else int(height)
        width = s.width if width is None else int(width)
        steps = s.steps if steps is None else int(steps)
        guidance_scale = s.guidance_scale if guidance_scale is None else float(guidance_scale)
        flow_shift = s.flow_shift if flow_shift is None else float(flow_shift)
        negative_prompt = s.negative_prompt if negative_prompt is None else negative_prompt
        # all checks before any work: frame count 1+4k, sizes, steps
        self.video.latent_shape(1, num_frames, height, width)
        if steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        candidates = s.candidates if candidates is None else int(candidates)
        if candidates < 1:
            raise InputError(f"candidates must be >= 1, got {candidates}")
        selector = None
        if candidates > 1:
            from vist3a.pipelines.selection import CandidateSelector

            selector = CandidateSelector(s.select if select is None else select, device=self.device)
        seeds = self._seed_list(seed, len(prompts))
        if len(seeds) != len(prompts):
            raise InputError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
        full = [s.full_prompt(p, template) for p in prompts]
        cfg = guidance_scale != 1.0
        if prompt_embeds is not None and len(prompts) != 1:
            raise InputError("prompt_embeds work with one prompt at a time")
        emb = prompt_embeds.embeds if isinstance(prompt_embeds, TextEmbeddings) else prompt_embeds
        if emb is not None and (not isinstance(emb, torch.Tensor) or emb.ndim != 3 or emb.shape[0] != 1):
            raise InputError(f"prompt_embeds must be [1, L, D], got {list(getattr(emb, 'shape', []))}")
        if prompt_embeds is None and self.video.text_encoder is None:
            raise InputError("this pipeline has no text encoder; pass prompt_embeds (and negative_embeds)")
        if cfg and prompt_embeds is not None and negative_embeds is None:
            raise InputError("guidance_scale != 1 with prompt_embeds needs negative_embeds")

        results = []
        for p, text, sd in zip(prompts, full, seeds, strict=True):
            results.append(
                self._generate_one(
                    p, text, negative_prompt, num_frames, height, width, steps, guidance_scale, flow_shift, sd,
                    prompt_embeds, negative_embeds, keep_frames, progress, candidates, selector,
                )
            )  # fmt: skip
        return results[0] if single else results

    def video_latents(self, prompt: str | Sequence[str], seed: int | Sequence[int] | None = None,
                      template: str | bool | None = True) -> torch.Tensor:  # fmt: skip
        """The DiT's **raw** latent ``[B, C, T', h, w]`` at the pipeline's settings: for one prompt (B = 1) exactly
        the latent ``self(prompt, seed=seed)`` decodes (its ``latents``), without the VAE decode and the 3D stage.

        A list of prompts (with one seed each) is denoised as one batch: each sample gets its own seed's noise, so
        it is the same latent as alone up to float rounding of the batched DiT."""
        s = self.settings
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        seeds = self._seed_list(seed, len(prompts))
        if not prompts or len(seeds) != len(prompts):
            raise InputError(f"video_latents: {len(prompts)} prompts and {len(seeds)} seeds (need one seed each, "
                             "at least one prompt)")  # fmt: skip
        return self._denoise([s.full_prompt(p, template) for p in prompts], s.negative_prompt, s.num_frames, s.height,
                             s.width, s.steps, s.guidance_scale, s.flow_shift, seeds, None, None, False, {})  # fmt: skip

    def _seed_list(self, seed: int | Sequence[int] | None, n: int) -> list[int]:
        """One seed for each of ``n`` prompts: None = the settings' seed, an int for all, or a sequence as given."""
        if seed is None or isinstance(seed, int):
            return [self.settings.seed if seed is None else int(seed)] * n
        return [int(v) for v in seed]

    def _denoise(self, texts: list[str], negative_prompt: str, num_frames: int, height: int, width: int, steps: int,
                 guidance_scale: float, flow_shift: float, seeds: list[int], prompt_embeds: Any, negative_embeds: Any,
                 progress: bool, timings: dict[str, float]) -> torch.Tensor:  # fmt: skip
        """Text encoding and denoising → the raw (de-normalised) latent ``[B, C, T', h, w]``, sample i from
        ``seeds[i]``'s noise; stage seconds into ``timings``."""
        video = self.video
        dev = self.device
        # 1. text
        t0 = time.perf_counter()
        if prompt_embeds is None:
            cond = self._encode(texts)
            uncond = self._encode([negative_prompt]) if guidance_scale != 1.0 else None
        else:
            cond, uncond = prompt_embeds, negative_embeds
        _sync(dev)
        timings["text_encoding"] = time.perf_counter() - t0

        # 2. denoising → normalised latent; each sample's noise is drawn on the CPU from its seed (device
        # independent, and the same whether it is denoised alone or in a batch)
        t0 = time.perf_counter()
        shape = video.latent_shape(1, num_frames, height, width)
        noise = torch.cat([torch.randn(shape, generator=torch.Generator().manual_seed(int(sd)), dtype=torch.float32)
                           for sd in seeds])  # fmt: skip
        z = video.sample_latents(
            cond, uncond, num_frames=num_frames, height=height, width=width, steps=steps,
            guidance_scale=guidance_scale, flow_shift=flow_shift, latents=noise,
            scheduler=self.settings.scheduler, progress=progress,
        )  # fmt: skip
        _sync(dev)
        timings["denoising"] = time.perf_counter() - t0
        return video.denormalize(z)  # the raw latent the VAE decodes

    def _generate_one(
        self,
        prompt: str,
        text: str,
        negative_prompt: str,
        num_frames: int,
        height: int,
        width: int,
        steps: int,
        guidance_scale: float,
        flow_shift: float,
        seed: int,
        prompt_embeds: Any,
        negative_embeds: Any,
        keep_frames: bool,
        progress: bool,
        candidates: int = 1,
        selector: Any = None,
    ) -> TextTo3DResult:
        timings: dict[str, float] = {}
        seeds = [seed + k * CANDIDATE_SEED_STRIDE for k in range(candidates)]
        scores: list[float] = []
        psnrs: list[float] = []
        best = None
        mvc = None
        # a selector that reads the frames alone ranks before the 3D stage
        early = selector is not None and selector.ranks_frames(prompt)
        for k, sd in enumerate(seeds):
            # one candidate at a time: candidate 0 is exactly the plain call, and memory stays one scene's
            step: dict[str, float] = {}
            raw = self._denoise([text], negative_prompt, num_frames, height, width, steps, guidance_scale, flow_shift,
                                [sd], prompt_embeds, negative_embeds, progress, step)  # fmt: skip
            # 3–4. VAE decode → RGB; the stitched decoder on latent + RGB → 3D
            frames01 = self.decode_frames(raw, step)
            rec = None if early else self.frames_to_3d(raw, frames01, step)
            key: tuple[float, ...] = ()
            if selector is not None:
                t0 = time.perf_counter()
                got = (selector.score_frames(prompt, frames01) if early
                       else selector.score(prompt, rec.gaussians[0], rec.cameras[0], frames01))  # fmt: skip
                step["selection"] = time.perf_counter() - t0
                key, mvc = got.key, got.consistency
                scores.append(round(got.score, 4))
                if not early:
                    psnrs.append(round(got.psnr, 4))
                log.info("candidate %d/%d (seed %d): %s %.4g%s", k + 1, candidates, sd, selector.spec, scores[-1],
                         "" if early else f", consistency {psnrs[-1]:.2f} dB")  # fmt: skip
            for name, v in step.items():
                timings[name] = timings.get(name, 0.0) + v
            # the first of equals is kept; a non-finite score (an empty or broken scene) never wins
            if best is None or key > best[0]:
                best = (key, k, raw, frames01, rec, mvc)
        _, k, raw, frames01, rec, mvc = best
        if rec is None:  # ranked by the frames: the kept candidate's 3D stage
            rec = self.frames_to_3d(raw, frames01, timings)
        seed = seeds[k]
        log.info(
            "generated %r: %d Gaussians, %d cameras (%s)", prompt[:60], len(rec.gaussians[0]), len(rec.cameras[0]),
            ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
        )  # fmt: skip
        return TextTo3DResult(
            prompt=prompt,
            full_prompt=text,
            gaussians=rec.gaussians[0],
            cameras=rec.cameras[0],
            frames=frames01.cpu() if keep_frames else None,
            latents=raw[0].detach().cpu(),
            depth=rec.depth[0].detach().cpu(),
            seed=int(seed),
            timings=timings,
            camera_guarded=bool(rec.guarded and rec.guarded[0]),
            candidate_seeds=seeds if candidates > 1 else [],
            candidate_psnr=psnrs,
            candidate_scores=scores,
            consistency=mvc,
        )

    def latents_to_3d(self, raw: torch.Tensor, timings: dict[str, float] | None = None) -> tuple[torch.Tensor, Any]:
        """The VAE decode and the stitched decode of a **raw** latent ``[1, C, T', h, w]``.

        Returns ``(frames [T, 3, H, W] in [0, 1] at the video size, the stitched decoder's reconstruction)``;
        the decoder's RGB branch sees the decoded frames resized to its input size (bilinear per frame = the
        official trilinear with T unchanged). ``timings`` gets ``vae_decode`` and ``stitched_decode`` seconds.
        """
        frames01 = self.decode_frames(raw, timings)
        return frames01, self.frames_to_3d(raw, frames01, timings)

    def decode_frames(self, raw: torch.Tensor, timings: dict[str, float] | None = None) -> torch.Tensor:
        """The VAE decode of a **raw** latent ``[1, C, T', h, w]`` → frames ``[T, 3, H, W]`` in [0, 1] at the video
        size (``timings["vae_decode"]``: seconds)."""
        t0 = time.perf_counter()
        rgb = self.video.decode(raw)  # [1, 3, T, H, W] in [-1, 1]
        _sync(rgb.device)
        if timings is not None:
            timings["vae_decode"] = time.perf_counter() - t0
        return ((rgb.float() + 1.0) / 2.0).clamp(0.0, 1.0)[0].permute(1, 0, 2, 3)

    def frames_to_3d(self, raw: torch.Tensor, frames01: torch.Tensor, timings: dict[str, float] | None = None) -> Any:
        """The stitched decode of a **raw** latent ``[1, C, T', h, w]`` with its decoded frames ``[T, 3, H, W]``
        (:meth:`decode_frames`) → the decoder's reconstruction (``timings["stitched_decode"]``: seconds)."""
        dec = self.decoder
        t0 = time.perf_counter()
        rh, rw = recon_input_size(dec, raw.shape[-2], raw.shape[-1])
        dec_dev = next(dec.parameters()).device
        small = rgb_branch_input(frames01[None].to(dec_dev), (rh, rw))
        rec = dec.reconstruct(raw.to(dec_dev), small, camera_guard_deg=self.settings.camera_guard_deg)
        _sync(dec_dev)
        if timings is not None:
            timings["stitched_decode"] = time.perf_counter() - t0
        return rec

    def with_settings(self, **changes: Any) -> TextTo3DPipeline:
        """The same models with changed default settings."""
        out = TextTo3DPipeline(self.video, self.decoder, replace(self.settings, **changes), self.name)
        out.low_vram = self.low_vram
        return out
