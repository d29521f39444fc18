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
- Depth loss: on non-sky pixels, ``|log d_pred - log d_gt|`` (``depth_loss="log"``, the default) or
  the L1 of the normalised depths (``"l1"``, the first runs' loss). ``loss/depth`` is always the L1
  (comparable across runs); ``loss/depth_log`` the log error.
- Rendering loss: the predicted pixel-aligned Gaussians (no voxel fusion) are rendered at the
  ground-truth normalised cameras of all V views (context and held-out targets) and compared with
  the ground-truth frames (L1 + MSE). With ``render_cameras="gt"`` (the default) the predicted depth
  is unprojected with the *ground-truth* cameras for this loss, so it supervises depth and the
  Gaussian parameters in the frame it is rendered in, and the camera head learns from the camera
  loss alone; with ``"pred"`` (the first runs) the network's own cameras place the Gaussians, and
  while those are still wrong the rendering loss pulls the depth away from the ground truth
  (see docs/mini.md, "Recon stage: diagnosis"). With ``render_every = N`` only steps 0, N, 2N, ...
  render; the others are geometry-only (several times cheaper), and the Gaussian head keeps learning.
- Self-consistency (``w_self > 0``, AnySplat's own rendering loss): the Gaussians as the network places them
  (its own depth *and* cameras) rendered at its own context cameras, L1 + MSE against the context frames. The
  GT-camera loss never sees the predicted cameras place the Gaussians, but generation does: where they are wrong
  each view's Gaussians land apart and every render of the scene shows ghosts; this term trains that agreement.
- Object weight (``object_weight = w``): the rendering terms weight object pixels ``w`` times (a weighted mean).
  Object pixels are the saturated ones (HSV saturation >= 0.4, as the judge segments them: the world's floors and
  skies are unsaturated); small objects cover a few per cent of a frame, so a plain mean learns the floor first.

Evaluation: novel-view PSNR/SSIM on the non-context views of held-out scenes, rendered at their
ground-truth normalised cameras from the network's own Gaussians (its own cameras); plus the
geometry: depth AbsRel and log error, and the rotation / translation-direction errors of the
predicted context cameras (relative to camera 0).

Clip cache (``cache=True``): every training and held-out clip is rendered once and kept in memory
(images uint8, depth fp16); with ``cache_dir`` the clips are also written there in shards of
:data:`CACHE_SHARD` scenes (atomically), so later ``--resume`` pieces load them instead of rendering.
Use it with a bounded ``train_scenes`` (e.g. 2000). The final model is written to ``out/anysplat_mini``
(:meth:`AnySplat.save_pretrained`, loadable with :func:`vist3a.models.anysplat.from_pretrained`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import FormatError, InputError
from vist3a.eval.consistency import frame_indices
from vist3a.eval.metrics import psnr, ssim
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.render import render
from vist3a.models.anysplat import AnySplat, anysplat_mini
from vist3a.models.geometry import se3_inverse, unproject_depth
from vist3a.models.pose_encoding import extri_intri_to_pose_encoding, quat_xyzw_to_matrix
from vist3a.train.mini_loop import MiniResult, MiniTrainConfig, option_count, option_flag, run_loop
from vist3a.world.dataset import WorldDataset
from vist3a.world.judge import object_weights

log = logging.getLogger(__name__)

EXPORT_DIR = "anysplat_mini"
CACHE_SHARD = 32
CACHE_MAX_GIB = 48  # host memory the clip cache may take (uint8 images + fp16 depth)
# stage options (config.extra) and their defaults
RECON_OPTIONS: dict[str, Any] = {
    "context": None,  # views given to the network (None: frames // 2 + 1)
    "w_render": 1.0,
    "w_mse": 1.0,
    "w_depth": 1.0,
    "w_camera": 1.0,
    "depth_loss": "log",  # "log" | "l1"
    "render_cameras": "gt",  # "gt" | "pred": cameras that place the Gaussians for the rendering loss
    "render_backend": "auto",
    "w_self": 0.0,  # self-consistency rendering at the network's own context cameras (0: off)
    "object_weight": 1.0,  # weight of object (saturated) pixels in the rendering terms (1: the plain mean)
    "render_every": 1,  # rendering terms on every N-th step only (the others geometry-only: several times cheaper)
    "motions": None,  # training clips' camera motions, e.g. "pan,truck,dolly" (None: the world's mix)
    "cache": False,  # keep rendered clips in memory
    "cache_dir": None,  # ... and in shards on disk (default with cache: out/cache)
}


def context_views(views: int, context: int) -> list[int]:
    """``context`` evenly spaced view indices of ``views`` (the first and last included when ``context > 1``)."""
    if not 1 <= context <= views:
        raise InputError(f"need 1 <= context views <= views, got {context} of {views}")
    return frame_indices(views, context)


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


def depth_errors(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1, log-L1 and AbsRel of predicted vs ground-truth depth on the non-sky pixels (``gt > 0``).

    Args:
        pred, gt: ``[..., H, W]`` depths (same shape); ``pred`` is clamped at 1e-6 before the log.
    """
    valid = gt > 0
    if not valid.any():
        zero = pred.sum() * 0
        return {"l1": zero, "log": zero, "absrel": zero}
    p, g = pred[valid], gt[valid]
    return {
        "l1": (p - g).abs().mean(),
        "log": (p.clamp(min=1e-6).log() - g.log()).abs().mean(),
        "absrel": ((p - g).abs() / g).mean(),
    }


def pose_errors(pred_enc: torch.Tensor, gt_w2c: torch.Tensor) -> dict[str, float]:
    """Mean rotation error (degrees) and translation-direction error (degrees) of views 1.. .

    Args:
        pred_enc: ``[V, 9]`` predicted encoding (w2c in camera 0's frame). gt_w2c: ``[V, 3|4, 4]``.
    Views whose ground-truth translation is ~0 are left out of the direction error.
    """
    r_pred = quat_xyzw_to_matrix(pred_enc[1:, 3:7].double())
    r_gt = gt_w2c[1:, :3, :3].double()
    cos = ((r_pred.transpose(-1, -2) @ r_gt).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    rot = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
    # camera centres (c = -R^T t) carry the direction of motion
    c_pred = -(r_pred.transpose(-1, -2) @ pred_enc[1:, :3, None].double())[..., 0]
    c_gt = -(r_gt.transpose(-1, -2) @ gt_w2c[1:, :3, 3:].double())[..., 0]
    moving = c_gt.norm(dim=-1) > 1e-4
    if moving.any():
        cos_t = torch.nn.functional.cosine_similarity(c_pred[moving], c_gt[moving], dim=-1, eps=1e-9)
        trans = float(torch.rad2deg(torch.arccos(cos_t.clamp(-1, 1))).mean())
    else:
        trans = float("nan")
    return {"rot_deg": float(rot.mean()) if len(rot) else 0.0, "trans_dir_deg": trans}


class ClipCache:
    """Rendered world clips kept in memory (images uint8, depth fp16), optionally in safetensors shards.

    Args:
        ds: the :class:`WorldDataset` whose items are cached.
        folder: shard folder (``None``: memory only). A shard ``{tag}_{k:05d}.safetensors`` holds scenes
            ``k*CACHE_SHARD ..``; its metadata records the dataset settings and a mismatch is refused.
        tag: file-name prefix ("train" / "eval").
    """

    def __init__(self, ds: WorldDataset, folder: Path | None, tag: str) -> None:
        self.ds, self.folder, self.tag, self.length = ds, folder, tag, len(ds)
        self.items: dict[int, dict[str, torch.Tensor]] = {}
        self.meta = {"seed": str(ds.seed), "frames": str(ds.frames), "size": str(ds.size),
                     "max_objects": str(ds.max_objects), "shadows": str(ds.shadows), "length": str(len(ds))}  # fmt: skip
        if getattr(ds, "motions", ()):  # recorded only when restricted: older shards stay valid
            self.meta["motions"] = ",".join(ds.motions)

    @staticmethod
    def _pack(it: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {
            "images": (it["images"].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu(),
            "depth": it["depth"].float().cpu().to(torch.float16),
            "c2w": it["c2w"].float().cpu(),
            "K": it["K"].float().cpu(),
        }

    def _shard_path(self, k: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{self.tag}_{k:05d}.safetensors"

    def _load_or_build_shard(self, k: int) -> None:
        from safetensors import safe_open
        from safetensors.torch import save_file

        from vist3a.io_utils import atomic_path

        lo, hi = k * CACHE_SHARD, min((k + 1) * CACHE_SHARD, self.length)
        path = self._shard_path(k)
        if path.is_file():
            try:
                with safe_open(str(path), framework="pt") as f:
                    meta = f.metadata() or {}
                    # "motions" is compared even when this run has none: a restricted shard is not the mix
                    if any(meta.get(key) != self.meta.get(key) for key in {*self.meta, "motions"}):
                        raise InputError(
                            f"{path} was built with other settings ({meta}) than this run ({self.meta}); "
                            "use another --out or delete the cache folder"
                        )
                    for i in range(lo, hi):
                        self.items[i] = {n: f.get_tensor(f"{i}.{n}") for n in ("images", "depth", "c2w", "K")}
                return
            except InputError:
                raise
            except Exception as exc:  # a truncated or foreign file
                raise FormatError(f"{path}: unreadable clip-cache shard ({exc}); delete it to rebuild") from exc
        flat = {}
        for i in range(lo, hi):
            self.items[i] = self._pack(self.ds[i])
            flat.update({f"{i}.{n}": t.contiguous() for n, t in self.items[i].items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(flat, str(tmp), metadata=self.meta)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i not in self.items:
            if self.folder is None:
                self.items[i] = self._pack(self.ds[i])
            else:
                self._load_or_build_shard(i // CACHE_SHARD)
        it = self.items[i]
        return {"images": it["images"].float() / 255, "depth": it["depth"].float(), "c2w": it["c2w"], "K": it["K"]}

    def __len__(self) -> int:
        return self.length


class ReconTask:
    """The reconstruction stage for :func:`~vist3a.train.mini_loop.run_loop`.

    Args:
        model: an :class:`AnySplat` (all parameters trained; voxel fusion off in training).
        config: the run settings; ``config.extra``: see :data:`RECON_OPTIONS` (``context`` = views
            given to the network, default ``frames // 2 + 1``; loss weights ``w_*``; ``depth_loss``;
            ``render_cameras``; ``render_backend``; ``cache``, ``cache_dir``). Unknown keys are refused.
        device: where the model and the world renders live.
    """

    name = "recon"

    def __init__(self, model: AnySplat, config: MiniTrainConfig, device: torch.device) -> None:
        self.model = model.requires_grad_(True)
        self.config, self.device = config, device
        if config.size % model.config.patch_size:
            raise InputError(f"--size must be a multiple of {model.config.patch_size}, got {config.size}")
        unknown = sorted(set(config.extra) - set(RECON_OPTIONS))
        if unknown:
            raise InputError(f"unknown recon option(s) {unknown}; known: {sorted(RECON_OPTIONS)}")
        ex = {**RECON_OPTIONS, **{k: v for k, v in config.extra.items() if v is not None}}
        self.ctx = context_views(config.frames, int(ex["context"] or config.frames // 2 + 1))
        self.targets = [v for v in range(config.frames) if v not in self.ctx] or list(range(config.frames))
        self.w = {k: float(ex[f"w_{k}"]) for k in ("render", "mse", "depth", "camera", "self")}
        self.object_weight = float(ex["object_weight"])
        if not (self.object_weight > 0 and self.w["self"] >= 0):  # NaN fails too
            raise InputError(f"object_weight must be > 0 and w_self >= 0, got {ex['object_weight']!r}, {ex['w_self']!r}")
        self.depth_loss, self.render_cameras = str(ex["depth_loss"]), str(ex["render_cameras"])
        if self.depth_loss not in ("log", "l1"):
            raise InputError(f"depth_loss must be 'log' or 'l1', got {self.depth_loss!r}")
        if self.render_cameras not in ("gt", "pred"):
            raise InputError(f"render_cameras must be 'gt' or 'pred', got {self.render_cameras!r}")
        self.backend = str(ex["render_backend"])
        self.render_every = option_count(ex["render_every"]) or 0
        if self.render_every < 1:
            raise InputError(f"render_every must be a whole number >= 1, got {ex['render_every']!r}")
        kw = dict(frames=config.frames, size=config.size, device=device, max_objects=config.max_objects,
                  shadows=config.shadows)  # fmt: skip
        # a motion subset (a curriculum: easy camera motions first) restricts training only; the held-out
        # clips keep the world's mix so evaluations stay comparable across runs
        self.train_set: Any = WorldDataset(config.train_scenes, seed=config.seed, motion=ex["motions"], **kw)
        self.eval_set: Any = WorldDataset(config.eval_scenes, seed=config.eval_seed, **kw)
        if option_flag(ex["cache"]):
            gib = (config.train_scenes + config.eval_scenes) * config.frames * config.size**2 * 5 / 2**30
            if gib > CACHE_MAX_GIB:
                raise InputError(
                    f"the clip cache would hold {gib:.0f} GiB ({config.train_scenes} training scenes); "
                    f"lower --train-scenes (e.g. 2000) to stay under {CACHE_MAX_GIB} GiB"
                )
            folder = Path(ex["cache_dir"]) if ex["cache_dir"] else Path(config.out) / "cache"
            self.train_set = ClipCache(self.train_set, folder, "train")
            self.eval_set = ClipCache(self.eval_set, folder, "eval")

    def _clips(self, ds: WorldDataset, indices: list[int]) -> dict[str, torch.Tensor]:
        items = [ds[i] for i in indices]
        norm = [normalise_clip(it["c2w"].cpu(), it["depth"].cpu(), self.ctx) for it in items]
        return {
            "images": torch.stack([it["images"] for it in items]).to(self.device).float(),  # B, V, 3, S, S
            "c2w": torch.stack([n[0] for n in norm]).to(self.device),  # B, V, 4, 4
            "depth": torch.stack([n[1] for n in norm]).to(self.device).float(),  # B, V, S, S
            "K": torch.stack([it["K"] for it in items]).to(self.device).float(),  # B, V, 3, 3
        }

    def _render(self, gaussians: list[Any], clip: dict[str, torch.Tensor], b: int, views: list[int]) -> torch.Tensor:
        s = self.config.size
        cams = Cameras(clip["c2w"][b, views].float(), clip["K"][b, views], s, s)
        return render(gaussians[b], cams, backend=self.backend).rgb  # n, 3, S, S

    def gt_camera_gaussians(self, out: Any, clip: dict[str, torch.Tensor]) -> list[Any]:
        """The predicted depth and Gaussian parameters placed with the ground-truth context cameras."""
        w2c = se3_inverse(clip["c2w"][:, self.ctx].float())
        points = unproject_depth(out.depth.float(), w2c, clip["K"][:, self.ctx].float())
        return self.model._gaussians(points, out.gs_raw.float(), False)[1]

    def loss(self, indices: list[int], step: int, autocast: contextlib.AbstractContextManager) -> dict[str, torch.Tensor]:
        clip = self._clips(self.train_set, indices)
        s = self.config.size
        rendering = bool(self.w["render"] or self.w["mse"] or self.w["self"]) and step % self.render_every == 0
        with autocast:  # geometry-only steps skip the Gaussian head too: nothing of it is in their loss
            out = self.model(clip["images"][:, self.ctx], voxelize=False, gaussians=rendering)
        w2c_gt = se3_inverse(clip["c2w"][:, self.ctx])[..., :3, :]
        enc_gt = extri_intri_to_pose_encoding(w2c_gt, clip["K"][:, self.ctx], (s, s))
        n = len(out.pose_enc_list)
        cam = sum(0.8 ** (n - 1 - i) * _pose_l1(p.float(), enc_gt) for i, p in enumerate(out.pose_enc_list))
        derr = depth_errors(out.depth[..., 0].float(), clip["depth"][:, self.ctx])
        terms = {"depth": derr["l1"], "depth_log": derr["log"], "camera": cam}
        if rendering:
            gaussians = out.gaussians if self.render_cameras == "pred" else self.gt_camera_gaussians(out, clip)
            every = list(range(self.config.frames))
            rgb = torch.stack([self._render(gaussians, clip, b, every) for b in range(len(indices))]).float()
            gt = clip["images"]
            terms |= dict(zip(("l1", "mse"), self._photometric(rgb, gt), strict=True))
            if self.w["self"]:
                own = [render(out.gaussians[b], Cameras(out.c2w[b].float(), out.K[b].float(), s, s),
                              backend=self.backend).rgb for b in range(len(indices))]  # fmt: skip
                l1, mse = self._photometric(torch.stack(own).float(), gt[:, self.ctx])
                terms["self"] = l1 + mse
        else:  # geometry-only steps (w_render = w_mse = 0, or between render_every steps): no rasterisation
            zero = cam * 0
            terms |= {"l1": zero, "mse": zero} | ({"self": zero} if self.w["self"] else {})
        terms["total"] = (
            self.w["render"] * terms["l1"] + self.w["mse"] * terms["mse"] + self.w["self"] * terms.get("self", 0.0)
            + self.w["depth"] * terms["depth_log" if self.depth_loss == "log" else "depth"]
            + self.w["camera"] * terms["camera"]
        )  # fmt: skip
        return terms

    def _photometric(self, rgb: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L1 and MSE of renders ``rgb`` against frames ``gt`` (both ``[B, n, 3, S, S]`` in [0, 1]), object pixels
        weighted ``object_weight`` times (see the module docstring)."""
        err = rgb - gt
        w = object_weights(gt, self.object_weight)  # B, n, 1, S, S
        if w is None:
            return err.abs().mean(), err.square().mean()
        norm = w.sum() * err.shape[2]
        return (err.abs() * w).sum() / norm, (err.square() * w).sum() / norm

    def evaluate(self) -> dict[str, float]:
        # the claim table's static-camera reference (imported here: stitch_claim imports this package)
        from vist3a.eval.stitch_claim import static_camera_errors

        ps, ss, geo = [], [], []
        s = self.config.size
        for i in range(len(self.eval_set)):
            clip = self._clips(self.eval_set, [i])
            out = self.model(clip["images"][:, self.ctx], voxelize=False)
            rgb = self._render(out.gaussians, clip, 0, self.targets).float().clamp(0, 1)
            gt = clip["images"][0, self.targets]
            ps.append(psnr(rgb, gt).clamp(max=100.0))
            ss.append(ssim(rgb, gt))
            derr = depth_errors(out.depth[0, ..., 0].float(), clip["depth"][0, self.ctx])
            w2c_gt = se3_inverse(clip["c2w"][0, self.ctx])
            enc_gt = extri_intri_to_pose_encoding(w2c_gt[:, :3], clip["K"][0, self.ctx], (s, s))
            pose = pose_errors(out.pose_enc_list[-1][0].float(), w2c_gt)
            # the same error for a head that ignores its images (every view at view 0): the mean-pose level
            static = static_camera_errors(clip["c2w"][0, self.ctx].double().cpu())["rot_deg"]
            geo.append({"depth_absrel": float(derr["absrel"]), "depth_log": float(derr["log"]),
                        "camera_l1": float(_pose_l1(out.pose_enc_list[-1][0].float(), enc_gt)), **pose,
                        "rot_deg_static": static})  # fmt: skip
        res = {"nvs_psnr": float(torch.cat(ps).mean()), "nvs_ssim": float(torch.cat(ss).mean())}
        for k in geo[0]:
            vals = [g[k] for g in geo if g[k] == g[k]]  # skip NaN (no camera motion)
            res[k] = sum(vals) / len(vals) if vals else float("nan")
        return res

    def export(self, out: Path) -> dict[str, Any]:
        from vist3a.mini_assets import SHARD_SIZE

        dst = self.model.save_pretrained(out / EXPORT_DIR, preset="anysplat-mini", dtype=torch.float16,
                                         max_shard_size=SHARD_SIZE)  # fmt: skip
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
            model = anysplat_mini(device=dev, weights=None, **(overrides or {}))
    task = ReconTask(model, config, dev)
    kw = {"clock": clock} if clock is not None else {}
    return run_loop(task, config, dev, resume=resume, stop_after=stop_after, progress=progress, **kw)
