"""Stage 1 of the mini model (issue 9): train the wan-mini video VAE on procedural world videos.

One step: B world scenes as videos ``[B, 3, T, S, S]`` in [-1, 1] → ``AutoencoderKLWan.encode`` →
a posterior sample (generator seeded by (seed, step)) → decode →
``loss = L1(recon, video) + λ_kl · KL + λ_lpips · LPIPS``, where KL is the mean over latent elements of
``KL(N(μ, σ²) ‖ N(0, 1))`` and LPIPS (VGG, published weights, only when found offline) is taken on
every frame. Evaluation: reconstruction PSNR (posterior mode) on held-out scenes. At the end the
per-channel latent mean/std is fitted on held-out latents (posterior mode, stored in the VAE config
by :meth:`VideoModel.set_latent_stats`) and the VAE is written in fp16 to ``out/wan_mini``, which
``registry.build("wan-mini", weights=out/"wan_mini", components=("vae",))`` loads.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import InputError, MissingWeightsError
from vist3a.eval.metrics import psnr
from vist3a.models.video import VideoModel, wan_mini
from vist3a.train.mini_loop import MiniResult, MiniTrainConfig, mix_seed, run_loop
from vist3a.world.dataset import WorldDataset

log = logging.getLogger(__name__)

EXPORT_DIR = "wan_mini"


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
        self.kl_weight = float(config.extra.get("kl_weight", 1e-6))
        # objects are the only coloured pixels and cover a few per cent of a frame: weighting them keeps an
        # L1-trained VAE from learning luminance only (docs/mini.md); 1 = the plain mean
        self.object_weight = float(config.extra.get("object_weight", 1.0))
        if self.object_weight <= 0:
            raise InputError(f"--object-weight must be > 0, got {self.object_weight}")
        self.lpips_weight = float(config.extra.get("lpips_weight", 0.0))
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

    def loss(self, indices: list[int], step: int, autocast: contextlib.AbstractContextManager) -> dict[str, torch.Tensor]:
        items = [self.train_set[i] for i in indices]  # rendered once: images and, for --object-weight, ids
        video = as_video(items, self.device)
        g = torch.Generator(device=self.device).manual_seed(mix_seed(self.config.seed, step, 1))
        with autocast:
            post = self.model.encode(video).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=g, device=self.device, dtype=post.mean.dtype)
            recon = self.model.decode(z).sample.float()
        err = (recon - video).abs()  # B, 3, T, S, S
        if self.object_weight != 1.0:
            w = 1.0 + (self.object_weight - 1.0) * object_mask(items, self.device).float()
            terms = {"l1": (err * w).sum() / (w.sum() * err.shape[1])}
        else:
            terms = {"l1": err.mean()}
        terms["kl"] = kl_standard_normal(post.mean, post.logvar)
        total = terms["l1"] + self.kl_weight * terms["kl"]
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
        """Held-out ``psnr`` (all pixels, mean over frames), ``object_psnr`` (object pixels only, pooled) and
        ``chroma_l1`` (mean |error| of the colour part, pixel minus its grey level, on object pixels: a VAE that
        keeps only luminance scores the objects' saturation here however good its ``psnr``)."""
        vals, obj_se, chroma, n_obj = [], 0.0, 0.0, 0
        for video, z, mask in self._latent_modes():
            recon = self.model.decode(z.to(next(self.model.parameters()).dtype)).sample.float().clamp(-1, 1)
            frames = lambda v: ((v + 1) / 2).permute(0, 2, 1, 3, 4).flatten(0, 1)  # noqa: E731
            vals.append(psnr(frames(recon), frames(video)).clamp(max=100.0))
            err = (recon - video) / 2  # in [0, 1] units
            m = mask.expand_as(err)
            obj_se += float(err[m].pow(2).sum())
            chroma += float((err - err.mean(1, keepdim=True))[m].abs().sum())
            n_obj += int(m.sum())
        out = {"psnr": float(torch.cat(vals).mean())}
        if n_obj:
            out["object_psnr"] = float(-10 * torch.log10(torch.tensor(max(obj_se / n_obj, 1e-10))))
            out["chroma_l1"] = chroma / n_obj
        return out

    def fit_latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std ``[C]`` of the held-out latents (posterior mode), stored in the VAE config."""
        with torch.no_grad():
            lat = torch.cat([z.transpose(0, 1).flatten(1) for _, z, _ in self._latent_modes()], dim=1)  # C, N
        mean, std = lat.mean(1), lat.std(1).clamp_min(1e-6)
        self.video_model.set_latent_stats(mean, std)
        return mean, std

    def export(self, out: Path) -> dict[str, Any]:
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
