"""Stage 2 of the mini model (issue 9): train anysplat-mini on procedural multi-view clips.

Supervision scheme (exact, because the world's cameras and depth are known):

- A clip has ``V = config.frames`` views at ``S²``; the network sees ``context`` of them (evenly
  spaced, the first view included) and every view is a rendering target.
- The ground truth is expressed in the frame the network predicts in: the first context camera's
  (camera 0 = identity) with the scale fixed by ``s`` = the mean ground-truth z-depth over the
  context views' non-sky pixels (translations and depths divided by ``s``). This is the normalised
  frame of AnySplat/VGGT's camera and depth heads, so the heads can be supervised directly.
- Camera loss: L1 between every camera-head iteration's pose encoding and the ground-truth encoding
  of the context views (translation, quaternion up to sign, field of view), later iterations
  weighted more (``0.8^(n-1-i)``).
- Depth loss: L1 between the predicted depth and the normalised ground-truth depth on non-sky pixels.
- Rendering loss: the predicted pixel-aligned Gaussians (no voxel fusion) are rendered at the
  ground-truth normalised cameras of all V views (context and held-out targets) and compared with
  the ground-truth frames (L1 + MSE). Because the cameras and depth are pinned to the same frame,
  no pose alignment at render time is needed.

Evaluation: novel-view PSNR/SSIM on the non-context views of held-out scenes, rendered at their
ground-truth normalised cameras. The final model is written to ``out/anysplat_mini``
(:meth:`AnySplat.save_pretrained`, loadable with :func:`vist3a.models.anysplat.from_pretrained`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.eval.metrics import psnr, ssim
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.render import render
from vist3a.models.anysplat import AnySplat, anysplat_mini
from vist3a.models.geometry import se3_inverse
from vist3a.models.pose_encoding import extri_intri_to_pose_encoding
from vist3a.train.mini_loop import MiniResult, MiniTrainConfig, run_loop
from vist3a.world.dataset import WorldDataset

log = logging.getLogger(__name__)

EXPORT_DIR = "anysplat_mini"


def context_views(views: int, context: int) -> list[int]:
    """``context`` evenly spaced view indices of ``views`` (the first and last included when ``context > 1``)."""
    if not 1 <= context <= views:
        raise InputError(f"need 1 <= context views <= views, got {context} of {views}")
    return sorted({int(round(x)) for x in torch.linspace(0, views - 1, context).tolist()})


def normalise_clip(c2w: torch.Tensor, depth: torch.Tensor, ctx: list[int]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Ground truth in the first context camera's frame, scale-normalised.

    Args:
        c2w: ``[V, 4, 4]`` camera-to-world (OpenCV). depth: ``[V, H, W]`` z-depth, 0 = sky.
        ctx: context view indices (``ctx[0]`` defines the frame).

    Returns:
        ``(c2w [V,4,4], depth [V,H,W], s)``: cameras with ``c2w[ctx[0]] = I`` and translations / s,
        depths / s, where ``s`` is the mean non-sky depth of the context views.
    """
    c2w = c2w.double()
    rel = se3_inverse(c2w[ctx[0]])[None] @ c2w
    valid = depth[ctx] > 0
    if not valid.any():
        raise InputError("a clip's context views are all sky: no depth to normalise by")
    s = float(depth[ctx][valid].double().mean())
    rel = rel.clone()
    rel[:, :3, 3] /= s
    return rel.float(), depth / s, s


def _pose_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """L1 of ``[..., 9]`` encodings: translation, quaternion (sign-invariant), field of view."""
    t = (pred[..., :3] - gt[..., :3]).abs().mean()
    q = torch.minimum((pred[..., 3:7] - gt[..., 3:7]).abs().sum(-1), (pred[..., 3:7] + gt[..., 3:7]).abs().sum(-1))
    fov = (pred[..., 7:] - gt[..., 7:]).abs().mean()
    return t + q.mean() / 4 + fov


class ReconTask:
    """The reconstruction stage for :func:`~vist3a.train.mini_loop.run_loop`.

    Args:
        model: an :class:`AnySplat` (all parameters trained; voxel fusion off in training).
        config: the run settings; ``config.extra``: ``context`` (views given to the network, default
            ``frames // 2 + 1``), ``w_render`` (1), ``w_mse`` (1), ``w_depth`` (0.5), ``w_camera`` (1),
            ``render_backend`` ("auto").
        device: where the model and the world renders live.
    """

    name = "recon"

    def __init__(self, model: AnySplat, config: MiniTrainConfig, device: torch.device) -> None:
        self.model = model.requires_grad_(True)
        self.config, self.device = config, device
        if config.size % model.config.patch_size:
            raise InputError(f"--size must be a multiple of {model.config.patch_size}, got {config.size}")
        ex = config.extra
        self.ctx = context_views(config.frames, int(ex.get("context", config.frames // 2 + 1)))
        self.targets = [v for v in range(config.frames) if v not in self.ctx] or list(range(config.frames))
        self.w = {k: float(ex.get(f"w_{k}", d)) for k, d in (("render", 1.0), ("mse", 1.0), ("depth", 0.5), ("camera", 1.0))}
        self.backend = str(ex.get("render_backend", "auto"))
        kw = dict(frames=config.frames, size=config.size, device=device, max_objects=config.max_objects,
                  shadows=config.shadows)  # fmt: skip
        self.train_set = WorldDataset(config.train_scenes, seed=config.seed, **kw)
        self.eval_set = WorldDataset(config.eval_scenes, seed=config.eval_seed, **kw)

    def _clips(self, ds: WorldDataset, indices: list[int]) -> dict[str, torch.Tensor]:
        items = [ds[i] for i in indices]
        norm = [normalise_clip(it["c2w"].cpu(), it["depth"].cpu(), self.ctx) for it in items]
        return {
            "images": torch.stack([it["images"] for it in items]).to(self.device).float(),  # B, V, 3, S, S
            "c2w": torch.stack([n[0] for n in norm]).to(self.device),  # B, V, 4, 4
            "depth": torch.stack([n[1] for n in norm]).to(self.device).float(),  # B, V, S, S
            "K": torch.stack([it["K"] for it in items]).to(self.device).float(),  # B, V, 3, 3
        }

    def _render(self, out: Any, clip: dict[str, torch.Tensor], b: int, views: list[int]) -> torch.Tensor:
        s = self.config.size
        cams = Cameras(clip["c2w"][b, views].float(), clip["K"][b, views], s, s)
        return render(out.gaussians[b], cams, backend=self.backend).rgb  # n, 3, S, S

    def loss(self, indices: list[int], step: int, autocast: contextlib.AbstractContextManager) -> dict[str, torch.Tensor]:
        clip = self._clips(self.train_set, indices)
        s = self.config.size
        with autocast:
            out = self.model(clip["images"][:, self.ctx], voxelize=False)
        w2c_gt = se3_inverse(clip["c2w"][:, self.ctx])[..., :3, :]
        enc_gt = extri_intri_to_pose_encoding(w2c_gt, clip["K"][:, self.ctx], (s, s))
        n = len(out.pose_enc_list)
        cam = sum(0.8 ** (n - 1 - i) * _pose_l1(p.float(), enc_gt) for i, p in enumerate(out.pose_enc_list))
        d_gt = clip["depth"][:, self.ctx]
        valid = d_gt > 0
        depth = (out.depth[..., 0].float() - d_gt).abs()[valid].mean() if valid.any() else out.depth.sum() * 0
        every = list(range(self.config.frames))
        rgb = torch.stack([self._render(out, clip, b, every) for b in range(len(indices))]).float()
        gt = clip["images"]
        terms = {"l1": (rgb - gt).abs().mean(), "mse": F.mse_loss(rgb, gt), "depth": depth, "camera": cam}
        terms["total"] = (
            self.w["render"] * terms["l1"] + self.w["mse"] * terms["mse"]
            + self.w["depth"] * terms["depth"] + self.w["camera"] * terms["camera"]
        )  # fmt: skip
        return terms

    def evaluate(self) -> dict[str, float]:
        ps, ss = [], []
        for i in range(len(self.eval_set)):
            clip = self._clips(self.eval_set, [i])
            out = self.model(clip["images"][:, self.ctx], voxelize=False)
            rgb = self._render(out, clip, 0, self.targets).float().clamp(0, 1)
            gt = clip["images"][0, self.targets]
            ps.append(psnr(rgb, gt).clamp(max=100.0))
            ss.append(ssim(rgb, gt))
        return {"nvs_psnr": float(torch.cat(ps).mean()), "nvs_ssim": float(torch.cat(ss).mean())}

    def export(self, out: Path) -> dict[str, Any]:
        dst = self.model.save_pretrained(out / EXPORT_DIR, preset="anysplat-mini", dtype=torch.float16)
        return {"folder": str(dst), "dtype": "float16", "context_views": self.ctx, "target_views": self.targets}


def train_recon(
    config: MiniTrainConfig,
    model: AnySplat | None = None,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
    resume: str | Path | bool | None = False,
    stop_after: int | None = None,
    progress: bool = True,
    clock: Any = None,
) -> MiniResult:
    """Train (or continue training) anysplat-mini; see the module docstring.

    Args:
        config: run settings (``size`` a multiple of 14, e.g. 224; ``frames`` = views per clip).
        model: the network; default ``anysplat_mini(**overrides)`` initialised under ``config.seed``.
        resume, stop_after, progress, clock: see :func:`~vist3a.train.mini_loop.run_loop`.
    """
    dev = torch.device(device)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = anysplat_mini(device=dev, **(overrides or {}))
    task = ReconTask(model, config, dev)
    kw = {"clock": clock} if clock is not None else {}
    return run_loop(task, config, dev, resume=resume, stop_after=stop_after, progress=progress, **kw)
