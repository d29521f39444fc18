"""Stage 1 of the mini model (issue 9): train the wan-mini video VAE on procedural world videos.

One step: B world scenes as videos ``[B, 3, T, S, S]`` in [-1, 1] → ``AutoencoderKLWan.encode`` →
a posterior sample (generator seeded by (seed, step)) → decode →
``loss = L1(recon, video) + λ_kl · KL + λ_lpips · LPIPS``, where KL is the mean over latent elements of
``KL(N(μ, σ²) ‖ N(0, 1))`` and LPIPS (VGG, published weights, only when found offline) is taken on
every frame. Options for a decoder fine-tune (session 9 found the shipped decoder folds the eight palette
colours onto three — red and yellow decode orange, purple blue — while the latent still holds most of them):
``decoder_only`` freezes the encoder (the latent space, so the DiT trained on it stays valid), ``chroma_weight``
adds the L1 of the colour part of the error (the error minus its grey level) on object pixels, and ``crop``
trains on square crops around a random object pixel (cheaper steps where the colours are).
Evaluation: reconstruction PSNR (posterior mode) on held-out scenes. At the end the
per-channel latent mean/std is fitted on held-out latents (posterior mode, stored in the VAE config
by :meth:`VideoModel.set_latent_stats`) and the VAE is written in fp16 to ``out/wan_mini``, which
``registry.build("wan-mini", weights=out/"wan_mini", components=("vae",))`` loads.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import InputError, MissingWeightsError
from vist3a.eval.metrics import psnr
from vist3a.models.video import VideoModel, wan_mini
from vist3a.train.mini_loop import MiniResult, MiniTrainConfig, mix_seed, option_count, option_flag, run_loop
from vist3a.world.dataset import WorldDataset

log = logging.getLogger(__name__)

EXPORT_DIR = "wan_mini"
# stage options (config.extra) and their defaults
VAE_OPTIONS: dict[str, Any] = {
    "kl_weight": 1e-6,
    "lpips_weight": 0.0,
    "object_weight": 1.0,
    "chroma_weight": 0.0,  # L1 of the error's colour part (minus its grey level) on object pixels
    "decoder_only": False,  # freeze the encoder (and its quant conv): the latent space does not move
    "crop": 0,  # train on crops of this side (a multiple of the spatial ratio) around an object; 0 = whole frames
}


def reconstruction_metrics(clips: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """``psnr`` (all pixels, mean over frames and clips), ``object_psnr`` (object pixels only, pooled) and
    ``chroma_l1`` (mean |error| of the colour part, pixel minus its grey level, on object pixels: a VAE that keeps
    only luminance scores the objects' saturation here however good its ``psnr``) of ``(recon, video, mask)``
    triples: ``[1, 3, T, S, S]`` in [-1, 1] (the reconstruction is clamped) and the object mask ``[1, 1, T, S, S]``."""
    vals, obj_se, chroma, n_obj = [], 0.0, 0.0, 0
    frames = lambda v: ((v + 1) / 2).permute(0, 2, 1, 3, 4).flatten(0, 1)  # noqa: E731 - B*T, 3, S, S in [0, 1]
    for recon, video, mask in clips:
        recon = recon.float().clamp(-1, 1)
        vals.append(psnr(frames(recon), frames(video)).clamp(max=100.0))
        err = (recon - video) / 2  # in [0, 1] units
        m = mask.expand_as(err)
        obj_se += float(err[m].pow(2).sum())
        chroma += float((err - err.mean(1, keepdim=True))[m].abs().sum())
        n_obj += int(m.sum())
    if not vals:
        raise InputError("reconstruction_metrics needs at least one clip")
    out = {"psnr": float(torch.cat(vals).mean())}
    if n_obj:
        out["object_psnr"] = float(-10 * torch.log10(torch.tensor(max(obj_se / n_obj, 1e-10))))
        out["chroma_l1"] = chroma / n_obj
    return out


def kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over elements of ``KL(N(mean, exp(logvar)) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²)``."""
    return 0.5 * (mean.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float()).mean()


def videos(ds: WorldDataset, indices: list[int], device: torch.device) -> torch.Tensor:
    """Scenes ``indices`` of ``ds`` as a video batch ``[B, 3, T, S, S]`` in [-1, 1] on ``device``."""
    return as_video([ds[i] for i in indices], device)


def object_mask(items: list[dict[str, torch.Tensor]], device: torch.device) -> torch.Tensor:
    """Object pixels (world ids > 0) of rendered world items as ``[B, 1, T, S, S]`` bool, aligned with :func:`as_video`."""
    return torch.stack([it["ids"] for it in items]).to(device)[:, None] > 0


def as_video(items: list[dict[str, torch.Tensor]], device: torch.device) -> torch.Tensor:
    """Rendered world items (``images [T, 3, S, S]`` in [0, 1]) as a video batch ``[B, 3, T, S, S]`` in [-1, 1]."""
    clips = torch.stack([it["images"] for it in items]).to(device)
    return clips.permute(0, 2, 1, 3, 4) * 2 - 1


class VaeTask:
    """The VAE stage for :func:`~vist3a.train.mini_loop.run_loop`.

    Args:
        video_model: a :class:`VideoModel` whose ``vae`` is trained.
        config: the run settings (``config.extra``: ``kl_weight`` (default 1e-6), ``lpips_weight``
            (default 0: off; LPIPS needs its weights offline, see :func:`vist3a.eval.metrics.load_lpips`)).
        device: where the model and the world renders live.
    """

    name = "vae"

    def __init__(self, video_model: VideoModel, config: MiniTrainConfig, device: torch.device) -> None:
        self.video_model = video_model
        self.model = video_model.vae
        self.model.requires_grad_(True)
        self.config, self.device = config, device
        video_model.check_num_frames(config.frames)
        if config.size % (video_model.spatial_ratio) != 0:
            raise InputError(f"--size must be a multiple of {video_model.spatial_ratio}, got {config.size}")
        unknown = sorted(set(config.extra) - set(VAE_OPTIONS))
        if unknown:
            raise InputError(f"unknown vae option(s) {unknown}; known: {sorted(VAE_OPTIONS)}")
        ex = {**VAE_OPTIONS, **{k: v for k, v in config.extra.items() if v is not None}}
        self.kl_weight = float(ex["kl_weight"])
        # objects are the only coloured pixels and cover a few per cent of a frame: weighting them keeps an
        # L1-trained VAE from learning luminance only (docs/mini.md); 1 = the plain mean
        self.object_weight = float(ex["object_weight"])
        if self.object_weight <= 0:
            raise InputError(f"--object-weight must be > 0, got {self.object_weight}")
        self.chroma_weight = float(ex["chroma_weight"])
        if self.chroma_weight < 0:
            raise InputError(f"chroma_weight must be >= 0, got {self.chroma_weight}")
        self.decoder_only = option_flag(ex["decoder_only"])
        if self.decoder_only:
            self.model.encoder.requires_grad_(False)
            self.model.quant_conv.requires_grad_(False)
        crop = option_count(ex["crop"])
        ratio = video_model.spatial_ratio
        if crop is None or crop % ratio or crop > config.size:
            raise InputError(f"crop must be 0 or a multiple of {ratio} up to --size {config.size}, got {ex['crop']!r}")
        self.crop = crop
        self.lpips_weight = float(ex["lpips_weight"])
        self.lpips = None
        if self.lpips_weight > 0:
            from vist3a.eval.metrics import load_lpips

            try:
                self.lpips = load_lpips(device).eval().requires_grad_(False)
            except MissingWeightsError as exc:
                log.warning("LPIPS weights not found (%s); training without the perceptual term", exc)
                self.lpips_weight = 0.0
        kw = dict(frames=config.frames, size=config.size, device=device, max_objects=config.max_objects,
                  shadows=config.shadows)  # fmt: skip
        self.train_set = WorldDataset(config.train_scenes, seed=config.seed, **kw)
        self.eval_set = WorldDataset(config.eval_scenes, seed=config.eval_seed, **kw)

    def _crop(self, video: torch.Tensor, mask: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Square ``crop`` windows (grid-aligned) around a random object pixel of each clip's first frame."""
        c, size, r = self.crop, video.shape[-1], self.video_model.spatial_ratio
        g = torch.Generator().manual_seed(mix_seed(self.config.seed, step, 2))
        vs, ms = [], []
        for b in range(video.shape[0]):
            ys, xs = torch.nonzero(mask[b, 0, 0].cpu(), as_tuple=True)
            if len(ys):
                k = int(torch.randint(len(ys), (1,), generator=g))
                cy, cx = int(ys[k]), int(xs[k])
            else:  # no object in view: the middle of the frame
                cy = cx = size // 2
            y0 = min(max(cy - c // 2, 0), size - c) // r * r
            x0 = min(max(cx - c // 2, 0), size - c) // r * r
            vs.append(video[b, ..., y0 : y0 + c, x0 : x0 + c])
            ms.append(mask[b, ..., y0 : y0 + c, x0 : x0 + c])
        return torch.stack(vs), torch.stack(ms)

    def loss(self, indices: list[int], step: int, autocast: contextlib.AbstractContextManager) -> dict[str, torch.Tensor]:
        items = [self.train_set[i] for i in indices]  # rendered once: images and, for --object-weight, ids
        video = as_video(items, self.device)
        mask = object_mask(items, self.device)  # B, 1, T, S, S
        if self.crop:
            video, mask = self._crop(video, mask, step)
        g = torch.Generator(device=self.device).manual_seed(mix_seed(self.config.seed, step, 1))
        with autocast:
            with torch.no_grad() if self.decoder_only else contextlib.nullcontext():
                post = self.model.encode(video).latent_dist
                noise = torch.randn(post.mean.shape, generator=g, device=self.device, dtype=post.mean.dtype)
                z = post.mean + post.std * noise
            recon = self.model.decode(z).sample.float()
        signed = recon - video  # B, 3, T, S, S
        err = signed.abs()
        if self.object_weight != 1.0:
            w = 1.0 + (self.object_weight - 1.0) * mask.float()
            terms = {"l1": (err * w).sum() / (w.sum() * err.shape[1])}
        else:
            terms = {"l1": err.mean()}
        terms["kl"] = kl_standard_normal(post.mean, post.logvar)
        total = terms["l1"] + self.kl_weight * terms["kl"]
        if self.chroma_weight:
            # hue and saturation errors: what is left of the error once its grey level is taken out
            chroma = (signed - signed.mean(1, keepdim=True)).abs().mean(1, keepdim=True)  # B, 1, T, S, S
            terms["chroma"] = (chroma * mask).sum() / mask.sum().clamp_min(1)
            total = total + self.chroma_weight * terms["chroma"]
        if self.lpips is not None:
            frames = lambda v: v.permute(0, 2, 1, 3, 4).flatten(0, 1)  # noqa: E731 - B*T, 3, H, W
            terms["lpips"] = self.lpips((frames(recon) + 1) / 2, (frames(video) + 1) / 2).mean()
            total = total + self.lpips_weight * terms["lpips"]
        terms["total"] = total
        return terms

    def _latent_modes(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per held-out scene: the video ``[1, 3, T, S, S]``, its posterior mode and its object mask ``[1, 1, T, S, S]``."""
        out = []
        for i in range(len(self.eval_set)):
            item = self.eval_set[i]
            video = as_video([item], self.device)
            out.append((video, self.model.encode(video).latent_dist.mode().float(), object_mask([item], self.device)))
        return out

    def evaluate(self) -> dict[str, float]:
        """Held-out :func:`reconstruction_metrics` of the posterior modes."""
        dtype = next(self.model.parameters()).dtype
        return reconstruction_metrics(
            (self.model.decode(z.to(dtype)).sample.float(), video, mask) for video, z, mask in self._latent_modes()
        )

    def fit_latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std ``[C]`` of the held-out latents (posterior mode), stored in the VAE config."""
        with torch.no_grad():
            lat = torch.cat([z.transpose(0, 1).flatten(1) for _, z, _ in self._latent_modes()], dim=1)  # C, N
        mean, std = lat.mean(1), lat.std(1).clamp_min(1e-6)
        self.video_model.set_latent_stats(mean, std)
        return mean, std

    def export(self, out: Path) -> dict[str, Any]:
        cfg = self.model.config
        kept = getattr(cfg, "latents_mean", None) is not None and getattr(cfg, "latents_std", None) is not None
        if self.decoder_only and kept:  # the latent space did not move: keep the statistics the DiT was trained with
            mean, std = torch.tensor(cfg.latents_mean), torch.tensor(cfg.latents_std)
        else:
            mean, std = self.fit_latent_stats()
        vae16 = copy.deepcopy(self.model).to("cpu", torch.float16).eval()
        dst = out / EXPORT_DIR
        old = out / f".{EXPORT_DIR}.old"
        shutil.rmtree(old, ignore_errors=True)
        if dst.exists():
            dst.rename(old)
        VideoModel(vae16, name="wan-mini").save_pretrained(dst)
        shutil.rmtree(old, ignore_errors=True)
        return {"folder": str(dst), "dtype": "float16", "latents_mean": mean.tolist(), "latents_std": std.tolist()}


def train_vae(
    config: MiniTrainConfig,
    video_model: VideoModel | None = None,
    device: str | torch.device = "cpu",
    vae_config: dict[str, Any] | None = None,
    resume: str | Path | bool | None = False,
    stop_after: int | None = None,
    progress: bool = True,
    clock: Any = None,
) -> MiniResult:
    """Train (or continue training) the mini video VAE; see the module docstring.

    Args:
        config: run settings (``frames`` = 1+4k, ``size`` a multiple of 8).
        video_model: the model to train; default ``wan_mini(components=("vae",), vae_config=vae_config)``
            built with ``seed=config.seed``.
        resume, stop_after, progress, clock: see :func:`~vist3a.train.mini_loop.run_loop`.
    """
    dev = torch.device(device)
    if video_model is None:
        video_model = wan_mini(device=dev, weights=None, components=("vae",), vae_config=vae_config, seed=config.seed)
    task = VaeTask(video_model, config, dev)
    kw = {"clock": clock} if clock is not None else {}
    return run_loop(task, config, dev, resume=resume, stop_after=stop_after, progress=progress, **kw)
