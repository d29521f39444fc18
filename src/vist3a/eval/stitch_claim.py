"""The paper's claim on exact ground truth (issue 9): stitched decoder vs. two-stage vs. plain reconstructor.

On held-out procedural-world scenes (exact cameras and depth), every row sees **the same** clip:

- The world renders scene ``i`` with ``frames`` (25) views along its trajectory, once at the video
  size (256²) and once at the reconstructor's size (224², for the exact ground-truth depth and target
  frames). The even views (13) are the *context* (the "video"), the odd views (12) are novel-view
  targets.
- Row ``anysplat``: the reconstructor on the 13 ground-truth context frames (256² renders, antialiased
  bilinear resize to 224²), upper bound.
- Row ``two_stage``: the video VAE encodes the 13 frames ([1,3,13,256,256] in [-1,1], posterior mode),
  decodes them, and the reconstructor reads the decoded frames (resized to 224²).
- Row ``stitched``: the stitched decoder on the same **raw** VAE latent; its Gaussian head's RGB
  shortcut reads the decoded frames (``stitched_rgb="decoded"``, as the text-to-3D pipeline where no
  ground-truth RGB exists) or the ground-truth frames (``"gt"``, as in distillation training).

Metrics per row and scene, in the frame the network is trained to predict in
(:func:`vist3a.train.mini_recon.normalise_clip`: first context camera = identity, translations and
depths divided by the mean ground-truth context depth ``s``):

- **NVS**: the predicted Gaussians (no voxel fusion, as in training) rendered at the 12 targets'
  ground-truth cameras in that frame, against the exact 224² renders: PSNR, SSIM (and LPIPS when its
  weights are found offline, else ``None`` / "n/a").
- **Depth AbsRel** of the context views on non-sky pixels, after aligning the predicted frame's scale
  to the ground truth by the mean depth: ``k = mean(gt/s) / mean(pred)`` over the ground truth's
  non-sky pixels. ``depth_absrel_median`` aligns the medians instead (a floor running to the horizon makes
  the mean a statistic of a few far pixels); ``depth_absrel_raw`` is the same without ``k`` (the network's own
  scale). Cameras are aligned by the mean ``k``.
- **Cameras**: predicted context cameras re-expressed relative to the first one, translations
  multiplied by the same ``k``; rotation error (geodesic angle, degrees), camera-centre error (in
  units of the mean context depth) and centre-direction error (degrees), means over views 1..12.

**Robustness** (paper App. D.2): ``z' = z + α·‖z‖·ε`` with ``ε ~ N(0, I)`` drawn from a fixed seed
per scene (the same ``ε`` for every α and both rows). METHOD.md does not define ``‖z‖``; here it is
the per-sample RMS of the **raw** latent, the one both decoders read (``noise_norm="rms"``, so α is
the noise-to-signal RMS ratio); ``"l2"`` uses the Frobenius norm of the whole sample as the paper's formula literally reads (at the
mini latent size, α_l2 = α_rms / 256). Row ``two_stage`` decodes ``z'`` and reconstructs; row
``stitched`` decodes ``z'`` with the stitched decoder. NVS PSNR and depth AbsRel per α.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vist3a.errors import InputError, MissingWeightsError
from vist3a.gaussians.cameras import Cameras
from vist3a.models.geometry import se3_inverse
from vist3a.train import HELD_OUT_OFFSET

log = logging.getLogger(__name__)

#: Held-out world scenes use the training seed + this offset (``MiniTrainConfig.eval_seed``).
EVAL_SEED_OFFSET = HELD_OUT_OFFSET
ROWS = ("anysplat", "two_stage", "stitched")
ROW_LABELS = {
    "anysplat": "(a) anysplat-mini on GT frames",
    "two_stage": "(b) VAE decode → anysplat-mini",
    "stitched": "(c) stitched decoder on latent",
}
METRICS = (
    "psnr",
    "ssim",
    "lpips",
    "depth_absrel",
    "depth_absrel_median",
    "depth_absrel_raw",
    "rot_deg",
    "center_err",
    "center_dir_deg",
)
ROBUST_METRICS = ("psnr", "depth_absrel")
DEFAULT_ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3)
NOISE_NORMS = ("rms", "l2")
STITCHED_RGB = ("decoded", "gt")

__all__ = [
    "METRICS",
    "ROW_LABELS",
    "ClaimConfig",
    "ClaimModels",
    "Clip",
    "Prediction",
    "relative_to_first",
    "score_prediction",
    "EVAL_SEED_OFFSET",
    "ROWS",
    "add_latent_noise",
    "camera_errors",
    "context_split",
    "depth_absrel",
    "latent_norm",
    "render_clip",
    "resize_frames",
    "rotation_error_deg",
    "run_claim",
    "claim_markdown",
]


# ==================================================================================================
# Settings
# ==================================================================================================
@dataclass
class ClaimConfig:
    """Settings of one claim run.

    Attributes:
        scenes: held-out scenes evaluated (indices ``0..scenes-1`` of the held-out set).
        seed: the **training** world seed; the held-out set is ``seed + 7919``.
        frames: views rendered per scene (even = context, odd = targets); ``(frames+1)/2`` context
            views must be ``1 + 4k`` for the video VAE (25 → 13).
        video_size: the video VAE's frame side (256 mini). recon_size: the reconstructor's (224 mini).
        alphas: latent-noise levels of the robustness study (empty: skipped).
        noise_seed: seed of ``ε`` (scene ``i`` uses ``noise_seed + i``).
        noise_norm: ``"rms"`` (per-sample RMS of z) or ``"l2"`` (per-sample Frobenius norm).
        stitched_rgb: the stitched Gaussian head's RGB input, ``"decoded"`` or ``"gt"``.
        max_objects, shadows: world settings (as in training).
        backend: Gaussian render backend (``"auto"``: gsplat on CUDA when installed).
    """

    scenes: int = 16
    seed: int = 0
    frames: int = 25
    video_size: int = 256
    recon_size: int = 224
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    noise_seed: int = 0
    noise_norm: str = "rms"
    stitched_rgb: str = "decoded"
    max_objects: int = 4
    shadows: bool = True
    backend: str = "auto"

    @property
    def eval_seed(self) -> int:
        return self.seed + EVAL_SEED_OFFSET

    def check(self, temporal_ratio: int = 4) -> None:
        if self.scenes < 1:
            raise InputError(f"--scenes must be >= 1, got {self.scenes}")
        if self.frames < 3 or self.frames % 2 == 0:
            raise InputError(
                f"--frames must be odd and >= 3 (even views = context, odd = targets), got {self.frames}"
            )
        n_ctx = (self.frames + 1) // 2
        if (n_ctx - 1) % temporal_ratio:
            raise InputError(
                f"--frames {self.frames} gives {n_ctx} context views, not 1+{temporal_ratio}k as the video VAE needs "
                f"(use e.g. {2 * (1 + temporal_ratio * max(1, (n_ctx - 1) // temporal_ratio)) - 1})"
            )
        if self.video_size < 8 or self.recon_size < 1:
            raise InputError(f"bad sizes: video {self.video_size}, recon {self.recon_size}")
        if any((not math.isfinite(a)) or a < 0 for a in self.alphas):
            raise InputError(f"--alphas must be finite and >= 0, got {list(self.alphas)}")
        if self.noise_norm not in NOISE_NORMS:
            raise InputError(f"--noise-norm must be one of {NOISE_NORMS}, got {self.noise_norm!r}")
        if self.stitched_rgb not in STITCHED_RGB:
            raise InputError(f"--stitched-rgb must be one of {STITCHED_RGB}, got {self.stitched_rgb!r}")


# ==================================================================================================
# Helpers (pure functions, tested on analytic cases)
# ==================================================================================================
def context_split(frames: int) -> tuple[list[int], list[int]]:
    """Even view indices (context) and odd ones (targets) of a ``frames``-view clip."""
    return list(range(0, frames, 2)), list(range(1, frames, 2))


def resize_frames(images: torch.Tensor, size: int) -> torch.Tensor:
    """``[V,3,H,W]`` in [0,1] → ``[V,3,size,size]`` (antialiased bilinear, as the stitching trainer), clamped."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"frames must be [V,3,H,W], got {list(images.shape)}")
    if tuple(images.shape[-2:]) == (size, size):
        return images.clamp(0, 1)
    out = F.interpolate(
        images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out.clamp(0, 1)


def rotation_error_deg(r_pred: torch.Tensor, r_gt: torch.Tensor) -> torch.Tensor:
    """Geodesic angle ``[N]`` in degrees between rotations ``[N,3,3]`` (float64 inside, in [0, 180])."""
    if r_pred.shape != r_gt.shape or r_pred.shape[-2:] != (3, 3):
        raise InputError(
            f"rotation_error_deg: need two [N,3,3], got {list(r_pred.shape)} and {list(r_gt.shape)}"
        )
    from vist3a.models.camera_guard import geodesic_deg

    return geodesic_deg(r_pred, r_gt)


def relative_to_first(c2w: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``[N,4,4]`` cameras re-expressed with camera 0 = identity, translations multiplied by ``scale``."""
    rel = se3_inverse(c2w[0].double())[None] @ c2w.double()
    rel[:, :3, 3] *= scale
    return rel


def camera_errors(pred_c2w: torch.Tensor, gt_c2w: torch.Tensor) -> dict[str, float]:
    """Pose errors of cameras already in one frame (camera 0 = identity, same scale).

    Args:
        pred_c2w, gt_c2w: ``[N,4,4]`` camera-to-world, N ≥ 2.

    Returns:
        ``rot_deg``: mean geodesic rotation error; ``center_err``: mean camera-centre distance;
        ``center_dir_deg``: mean angle between the centres seen from camera 0 (translation
        direction), each over views 1..N-1 (view 0 is the identity in both).
    """
    if (
        pred_c2w.shape != gt_c2w.shape
        or pred_c2w.ndim != 3
        or pred_c2w.shape[1:] != (4, 4)
        or pred_c2w.shape[0] < 2
    ):
        raise InputError(
            f"camera_errors: need two [N,4,4] with N >= 2, got {list(pred_c2w.shape)} and {list(gt_c2w.shape)}"
        )
    p, g = pred_c2w[1:].double(), gt_c2w[1:].double()
    rot = rotation_error_deg(p[:, :3, :3], g[:, :3, :3])
    cp, cg = p[:, :3, 3], g[:, :3, 3]
    err = (cp - cg).norm(dim=-1)
    cos = F.cosine_similarity(cp, cg, dim=-1, eps=1e-12).clamp(-1.0, 1.0)
    return {
        "rot_deg": float(rot.mean()),
        "center_err": float(err.mean()),
        "center_dir_deg": float(torch.rad2deg(torch.arccos(cos)).mean()),
    }


def static_camera_errors(gt_c2w: torch.Tensor) -> dict[str, float]:
    """The pose errors of a camera head that ignores its images: every view predicted at view 0.

    A reference for :func:`camera_errors`: with ``gt_c2w [N,4,4]`` relative to view 0, the prediction
    "identity everywhere" errs by each view's rotation angle and centre distance from view 0
    (``center_dir_deg`` is undefined for a zero centre and left out). A head whose errors are not below
    these has learned the mean pose only.
    """
    if gt_c2w.ndim != 3 or gt_c2w.shape[1:] != (4, 4) or gt_c2w.shape[0] < 2:
        raise InputError(f"static_camera_errors: need [N,4,4] with N >= 2, got {list(gt_c2w.shape)}")
    static = torch.eye(4, dtype=torch.float64).expand(gt_c2w.shape[0], 4, 4)
    e = camera_errors(static, relative_to_first(gt_c2w))
    return {"rot_deg": e["rot_deg"], "center_err": e["center_err"]}


def depth_absrel(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None = None) -> float:
    """``mean(|pred − gt| / gt)`` over ``valid`` pixels (default: ``gt > 0``, i.e. non-sky)."""
    if pred.shape != gt.shape:
        raise InputError(
            f"depth_absrel: prediction {list(pred.shape)} and ground truth {list(gt.shape)} differ"
        )
    m = gt > 0 if valid is None else valid & (gt > 0)
    if not m.any():
        raise InputError("depth_absrel: no valid (non-sky) pixel")
    p, g = pred.double()[m], gt.double()[m]
    return float(((p - g).abs() / g).mean())


def depth_scale(pred: torch.Tensor, gt: torch.Tensor, how: str = "mean") -> float:
    """``k`` with ``stat(k·pred) = stat(gt)`` over the ground truth's non-sky pixels; ``stat`` = mean or median.

    NaN when the prediction's statistic is not positive (the alignment is undefined).
    """
    if how not in ("mean", "median"):
        raise InputError(f"depth scale alignment must be 'mean' or 'median', got {how!r}")
    valid = gt > 0
    stat = torch.mean if how == "mean" else torch.median
    p = float(stat(pred[valid].double()))
    return float(stat(gt[valid].double())) / p if p > 0 else math.nan


def latent_norm(z: torch.Tensor, norm: str = "rms") -> torch.Tensor:
    """Per-sample norm ``[B,1,...,1]`` of a latent ``[B,...]``: RMS or Frobenius (``"l2"``)."""
    if norm not in NOISE_NORMS:
        raise InputError(f"noise norm must be one of {NOISE_NORMS}, got {norm!r}")
    sq = z.double().pow(2).flatten(1)
    v = sq.mean(1) if norm == "rms" else sq.sum(1)
    return v.sqrt().to(z.dtype).view(-1, *([1] * (z.ndim - 1)))


def add_latent_noise(
    z: torch.Tensor,
    alpha: float,
    eps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    norm: str = "rms",
) -> torch.Tensor:
    """``z' = z + α·‖z‖·ε`` per sample (paper App. D.2); ``ε ~ N(0, I)`` drawn on the CPU unless given."""
    if alpha < 0 or not math.isfinite(alpha):
        raise InputError(f"noise level must be finite and >= 0, got {alpha}")
    if eps is None:
        eps = torch.randn(z.shape, generator=generator, dtype=torch.float32)
    if eps.shape != z.shape:
        raise InputError(f"noise {list(eps.shape)} does not match the latent {list(z.shape)}")
    return z + alpha * latent_norm(z, norm) * eps.to(z.device, z.dtype)


# ==================================================================================================
# Data
# ==================================================================================================
@dataclass
class Clip:
    """One held-out scene, rendered for every row.

    ``video [V,3,S,S]`` (video size) and ``images [V,3,R,R]`` / ``depth [V,R,R]`` (reconstructor size,
    exact renders); ``c2w [V,4,4]`` normalised (context 0 = identity, /s); ``K [V,3,3]`` at R; ``s``.
    """

    index: int
    video: torch.Tensor
    images: torch.Tensor
    depth: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    s: float


def render_clip(index: int, config: ClaimConfig, device: torch.device | str = "cpu") -> Clip:
    """Scene ``index`` of the held-out set: exact renders at both sizes and the normalised ground truth."""
    from vist3a.train.mini_recon import normalise_clip
    from vist3a.world.raycast import render_world
    from vist3a.world.sample import make_sample

    dev = torch.device(device)
    sample = make_sample(index, config.eval_seed, config.frames, config.video_size, config.max_objects)
    cams = sample.cameras.to(dev)
    video = render_world(sample.scene, cams, shadows=config.shadows)
    small_cams = cams.resized(config.recon_size, config.recon_size)
    small = render_world(sample.scene, small_cams, shadows=config.shadows)
    ctx, _ = context_split(config.frames)
    c2w, depth, s = normalise_clip(cams.c2w.cpu(), small.depth.cpu(), ctx)
    return Clip(
        index, video.rgb.float(), small.rgb.float(), depth.float(), c2w.float(), small_cams.K.float().cpu(), s
    )


# ==================================================================================================
# Rows
# ==================================================================================================
@dataclass
class Prediction:
    """One forward: Gaussians (scene 0), context cameras ``c2w [N,4,4]`` and depth ``[N,H,W]``."""

    gaussians: Any
    c2w: torch.Tensor
    depth: torch.Tensor


def _pred(out: Any) -> Prediction:
    return Prediction(out.gaussians[0], out.c2w[0].detach().float(), out.depth[0, ..., 0].detach().float())


def score_prediction(
    pred: Prediction, clip: Clip, config: ClaimConfig, lpips: Any = None
) -> dict[str, float | None]:
    """Every metric of one row on one clip (module docstring)."""
    from vist3a.eval.metrics import compute_metrics
    from vist3a.gaussians.render import render

    ctx, tgt = context_split(config.frames)
    r = config.recon_size
    g = pred.gaussians
    dev = g.means.device
    cams = Cameras(clip.c2w[tgt].to(dev), clip.K[tgt].to(dev), r, r)
    rgb = (
        render(g, cams, backend=config.backend, near_plane=0.01, far_plane=100.0)
        .rgb.detach()
        .float()
        .clamp(0, 1)
    )
    m = compute_metrics(rgb, clip.images[tgt].to(rgb.device), lpips)
    out: dict[str, float | None] = {
        "psnr": float(m["psnr"].clamp(max=100.0).mean()),
        "ssim": float(m["ssim"].mean()),
        "lpips": float(m["lpips"].mean()) if "lpips" in m else None,
    }
    gt_d = clip.depth[ctx].to(pred.depth.device)
    pd = pred.depth.float()
    if pd.shape != gt_d.shape:
        raise InputError(
            f"predicted depth {list(pd.shape)} does not match the ground truth {list(gt_d.shape)}"
        )
    k = depth_scale(pd, gt_d)
    if not math.isfinite(k) or k <= 0:
        log.warning(
            "scene %d: predicted depth has mean %.3g; depth/camera alignment is undefined",
            clip.index,
            float(pd[gt_d > 0].double().mean()),
        )
        out.update(
            dict.fromkeys(
                ("depth_absrel", "depth_absrel_median", "depth_absrel_raw", "rot_deg", "center_err", "center_dir_deg")
            )
        )
        return out
    out["depth_absrel"] = depth_absrel(pd * k, gt_d)
    # median scaling as well: a floor running to the horizon makes the mean a statistic of a few far pixels
    k_med = depth_scale(pd, gt_d, "median")
    out["depth_absrel_median"] = depth_absrel(pd * k_med, gt_d) if math.isfinite(k_med) else None
    out["depth_absrel_raw"] = depth_absrel(pd, gt_d)
    out.update(camera_errors(relative_to_first(pred.c2w.cpu(), k), clip.c2w[ctx].double()))
    return out


class ClaimModels:
    """The three networks: a reconstructor (AnySplat), a video model (VAE) and a stitched decoder.

    The stitched decoder owns its own copy of the reconstructor (LoRA wraps it in place).
    """

    def __init__(self, recon: Any, video: Any, stitched: Any) -> None:
        self.recon, self.video, self.stitched = recon.eval(), video.eval(), stitched.eval()
        self.device = recon.device
        ratio = int(getattr(video, "temporal_ratio", 4))
        if getattr(stitched, "time_factor", ratio) != ratio:
            raise InputError(
                f"the VAE compresses time {ratio}x, the stitched decoder expects {stitched.time_factor}x"
            )
        self.ratio = ratio

    @torch.no_grad()
    def encode(self, video01: torch.Tensor) -> torch.Tensor:
        """``[T,3,S,S]`` in [0,1] → raw latent ``[1,C,T',h,w]`` (posterior mode)."""
        v = (video01 * 2 - 1).clamp(-1, 1).permute(1, 0, 2, 3)[None]
        return self.video.encode(v.to(self.device), sample=False)

    @torch.no_grad()
    def decode(self, raw: torch.Tensor, size: int) -> torch.Tensor:
        """Raw latent → frames ``[T,3,size,size]`` in [0,1]."""
        rgb = self.video.decode(raw)  # [1,3,T,H,W] in [-1,1]
        frames = ((rgb.float() + 1) / 2).clamp(0, 1)[0].permute(1, 0, 2, 3)
        return resize_frames(frames, size)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> Prediction:
        return _pred(self.recon(images[None].to(self.device), voxelize=False))

    @torch.no_grad()
    def stitched_decode(self, raw: torch.Tensor, images: torch.Tensor) -> Prediction:
        dev = self.stitched.stitching_layer.weight.device
        return _pred(self.stitched(raw.to(dev), images[None].to(dev), voxelize=False))


# ==================================================================================================
# The run
# ==================================================================================================
def _summary(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _load_lpips(device: torch.device) -> Any:
    from vist3a.eval.metrics import load_lpips

    try:
        return load_lpips(device)
    except MissingWeightsError as exc:
        log.warning("LPIPS not computed (n/a): %s", exc)
        return None


def run_claim(
    recon: Any,
    video: Any,
    stitched: Any,
    config: ClaimConfig | None = None,
    device: torch.device | str = "cpu",
    lpips: Any = "auto",
    progress: bool = True,
    clip_fn: Callable[[int, ClaimConfig, torch.device], Clip] | None = None,
) -> dict[str, Any]:
    """Evaluate rows (a) anysplat, (b) two-stage, (c) stitched and the latent-noise study (module docstring).

    Args:
        recon: an :class:`~vist3a.models.anysplat.AnySplat` (its input size = ``config.recon_size``).
        video: a :class:`~vist3a.models.video.VideoModel` with its VAE.
        stitched: a :class:`~vist3a.stitching.stitched.StitchedDecoder` for this VAE's raw latents.
        lpips: an LPIPS module, None (off) or ``"auto"`` (load offline; "n/a" without its weights).
        clip_fn: replaces :func:`render_clip` (tests).

    Returns:
        JSON-ready dict: ``config``, ``rows`` (per row ``mean``/``std``/``per_scene``; a metric that
        cannot be computed for a scene is None there and left out of the mean), ``vae_psnr`` (the
        decoded context frames against the ground truth, 224²: what row (b) reads), ``robustness``
        (per row and metric, ``mean``/``std`` per α and per-scene lists), ``lpips``, ``seconds``,
        ``markdown``.
    """
    from tqdm import tqdm

    from vist3a.eval.metrics import psnr

    cfg = config or ClaimConfig()
    models = ClaimModels(recon, video, stitched)
    cfg.check(models.ratio)
    dev = torch.device(device)
    if lpips == "auto":
        lpips = _load_lpips(dev)
    ctx, _ = context_split(cfg.frames)
    clip_fn = clip_fn or render_clip
    per_scene: dict[str, list[dict[str, Any]]] = {r: [] for r in ROWS}
    robust: dict[str, dict[str, list[list[float | None]]]] = {
        r: {m: [[] for _ in cfg.alphas] for m in ROBUST_METRICS} for r in ("two_stage", "stitched")
    }
    vae_psnr: list[float] = []
    static: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for i in tqdm(range(cfg.scenes), desc="claim scenes", unit="scene", disable=not progress):
        clip = clip_fn(i, cfg, dev)
        gt_ctx = resize_frames(clip.video[ctx], cfg.recon_size)
        z = models.encode(clip.video[ctx])
        decoded = models.decode(z, cfg.recon_size)
        vae_psnr.append(float(psnr(decoded, gt_ctx.to(decoded.device)).clamp(max=100.0).mean()))
        static.append({"scene": clip.index, **static_camera_errors(clip.c2w[ctx].double())})
        rgb_c = decoded if cfg.stitched_rgb == "decoded" else gt_ctx
        preds = {
            "anysplat": models.reconstruct(gt_ctx),
            "two_stage": models.reconstruct(decoded),
            "stitched": models.stitched_decode(z, rgb_c),
        }
        for row, p in preds.items():
            per_scene[row].append({"scene": clip.index, **score_prediction(p, clip, cfg, lpips)})
        del preds
        gen = torch.Generator().manual_seed(int(cfg.noise_seed) + clip.index)
        eps = torch.randn(z.shape, generator=gen, dtype=torch.float32)
        for a_i, alpha in enumerate(cfg.alphas):
            zn = add_latent_noise(z, float(alpha), eps=eps, norm=cfg.noise_norm)
            dec_n = models.decode(zn, cfg.recon_size)
            noisy = {
                "two_stage": models.reconstruct(dec_n),
                "stitched": models.stitched_decode(zn, dec_n if cfg.stitched_rgb == "decoded" else gt_ctx),
            }
            for row, p in noisy.items():
                s = score_prediction(p, clip, cfg, None)
                for m in ROBUST_METRICS:
                    robust[row][m][a_i].append(s[m])
    seconds = time.perf_counter() - t0
    rows: dict[str, Any] = {}
    for row in ROWS:
        means, stds = {}, {}
        for m in METRICS:
            means[m], stds[m] = _summary([s.get(m) for s in per_scene[row]])
        rows[row] = {"label": ROW_LABELS[row], "mean": means, "std": stds, "per_scene": per_scene[row]}
    rob: dict[str, Any] = {
        "alphas": [float(a) for a in cfg.alphas],
        "noise_norm": cfg.noise_norm,
        "noise_seed": cfg.noise_seed,
    }
    for row, by_metric in robust.items():
        rob[row] = {}
        for m, lists in by_metric.items():
            sums = [_summary(v) for v in lists]
            rob[row][m] = {"mean": [s[0] for s in sums], "std": [s[1] for s in sums], "per_scene": lists}
    result: dict[str, Any] = {
        "config": {**asdict(cfg), "eval_seed": cfg.eval_seed, "alphas": list(cfg.alphas)},
        "scenes": [s["scene"] for s in per_scene["anysplat"]],
        "context_views": ctx,
        "target_views": context_split(cfg.frames)[1],
        "rows": rows,
        "vae_psnr": dict(zip(("mean", "std"), _summary(vae_psnr), strict=True), per_scene=vae_psnr),
        "robustness": rob,
        "static_camera": {
            m: dict(zip(("mean", "std"), _summary([s[m] for s in static]), strict=True)) for m in ("rot_deg", "center_err")
        }
        | {"per_scene": static},
        "lpips": lpips is not None,
        "seconds": seconds,
    }
    result["markdown"] = claim_markdown(result)
    return result


# ==================================================================================================
# Report
# ==================================================================================================
def _fmt(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ± {std or 0.0:.{digits}f}"


def claim_markdown(result: dict[str, Any]) -> str:
    """The claim table and the robustness table as Markdown (mean ± std over scenes)."""
    cols = [
        ("psnr", "PSNR ↑", 2), ("ssim", "SSIM ↑", 3), ("lpips", "LPIPS ↓", 3), ("depth_absrel", "Depth AbsRel ↓", 3),
        ("depth_absrel_median", "AbsRel, median-scaled ↓", 3), ("rot_deg", "Rot. err (°) ↓", 2),
        ("center_err", "Centre err ↓", 3), ("center_dir_deg", "Trans. dir (°) ↓", 2),
    ]  # fmt: skip
    cfg = result["config"]
    n = len(result["scenes"])
    lines = [
        f"Held-out world scenes: {n} (seed {cfg['eval_seed']}), {cfg['frames']} views: "
        f"{len(result['context_views'])} context (even), {len(result['target_views'])} novel targets (odd); "
        f"video {cfg['video_size']}², reconstructor {cfg['recon_size']}²; stitched RGB input: {cfg['stitched_rgb']}.",
        "",
        "| Row | " + " | ".join(c[1] for c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for row in ROWS:
        r = result["rows"][row]
        lines.append(
            f"| {r['label']} | " + " | ".join(_fmt(r["mean"][k], r["std"][k], d) for k, _, d in cols) + " |"
        )
    lines += [
        "",
        "NVS: 224² renders at the odd views' ground-truth cameras in the normalised frame (first context "
        "camera = identity, unit = mean GT context depth). Depth AbsRel on non-sky context pixels and camera "
        "errors (views 1..N-1 of the context) after aligning the predicted scale by the mean depth (the "
        "median-scaled AbsRel aligns the medians instead: robust to a floor running to the horizon); "
        "centre error in units of the mean context depth.",
    ]
    sc = result.get("static_camera")
    if sc:  # older result files lack it
        lines += [
            "",
            f"Reference, a static camera (every context view predicted at view 0): rot. err "
            f"{_fmt(sc['rot_deg']['mean'], sc['rot_deg']['std'], 2)}°, centre err "
            f"{_fmt(sc['center_err']['mean'], sc['center_err']['std'], 3)} — camera errors not below these "
            "mean that the camera head has not learned to use the images.",
        ]
    vp = result.get("vae_psnr")
    if vp and vp.get("mean") is not None:
        lines += [
            "",
            f"VAE reconstruction of the context frames (row (b)'s input): PSNR {_fmt(vp['mean'], vp['std'], 2)} dB.",
        ]
    rob = result["robustness"]
    if rob["alphas"]:
        lines += [
            "",
            f"Latent noise z' = z + α‖z‖ε (‖z‖ = per-sample {rob['noise_norm'].upper()}, ε seed {rob['noise_seed']}):",
            "",
            "| α | (b) two-stage PSNR ↑ | (c) stitched PSNR ↑ | (b) two-stage AbsRel ↓ | (c) stitched AbsRel ↓ |",
            "|---|---|---|---|---|",
        ]
        for i, a in enumerate(rob["alphas"]):
            vals = [
                _fmt(rob[r][m]["mean"][i], rob[r][m]["std"][i], 2 if m == "psnr" else 3)
                for m in ROBUST_METRICS for r in ("two_stage", "stitched")
            ]  # fmt: skip
            lines.append(f"| {a:g} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
