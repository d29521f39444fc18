"""Writing a generated / reconstructed scene as a bundle of files, and safe per-prompt folders.

``export_scene(out_dir, gaussians, cameras, formats=("ply",))`` writes, atomically per file:

- ``scene.ply`` (INRIA layout; ``.spz`` / ``.splat`` on request),
- ``cameras.json`` (the predicted cameras, OpenCV c2w + pixel intrinsics),
- ``video.mp4``: a render along the predicted trajectory, interpolated (``frames_per_view`` frames
  per pair of consecutive cameras, the last camera included; the official export drops it),
- ``orbit.mp4``: a render on a circle placed around the scene (:meth:`Cameras.orbit_of_reconstruction`),
- ``decoded.mp4``: the video model's decoded frames, when given.

Splats that no renderer draws (opacity < 1/255, non-finite) are dropped. :func:`reduce_splats` merges
a scene per voxel (moment matching, :func:`merge_voxels`) down to a splat budget: for the scene files
on request (``max_splats``), and for the videos' renders (``preview_splats``), whose cost on a CPU
grows with the number of splats.

``prompt_folder_name(prompt, seed, occurrence)`` is a file-system-safe, collision-free folder name:
an ASCII slug of the prompt plus a short hash of (prompt, seed, occurrence), never containing a path
separator or ``..``; :func:`claim_folder` creates it atomically (adding ``-2``, ``-3`` when taken).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians
from vist3a.gaussians.render_torch import EPS2D
from vist3a.io_utils import atomic_write_text

log = logging.getLogger(__name__)

SCENE_FORMATS = ("ply", "spz", "splat")
SLUG_CHARS = 48
#: Variance factor of a merged splat over its members' moments. The moment-matched Gaussian of a
#: uniformly covered voxel is narrower than the voxel (σ = side/√12) and leaves holes between
#: neighbouring voxels; ×3 restores the overlap (pixel-aligned proxy scene at 150k of 652k splats:
#: 20 → 28 dB PSNR against the full scene). The opacity rule keeps the covered mass.
MERGE_INFLATION = 3.0
#: Largest scale of a merged splat, in voxel sides (measured across the viewing rays; see ``_merge``).
MAX_SCALE_VOXELS = 2.0
#: The renderers' screen-space low-pass in px² (their default ``eps2d``): a splat
#: narrower than a pixel still covers about a pixel, so the merge's opacity rule counts each member's area
#: with it when the cameras are known (two generated mini scenes: previews 17–25 → 37–39 dB; docs/generate.md).
LOW_PASS_PX2 = EPS2D


@dataclass
class ExportReport:
    """What :func:`export_scene` wrote: ``files`` (name → path) and ``timings`` (seconds per part)."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    splats_written: int = 0
    splats_rendered: int = 0


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"ply,spz"`` or a list → validated, de-duplicated formats (ply always first)."""
    items = [t.strip().lower().lstrip(".") for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t]
    bad = [t for t in items if t not in SCENE_FORMATS]
    if bad:
        raise InputError(f"unknown scene format(s) {bad}; choose from {', '.join(SCENE_FORMATS)}")
    out = ["ply", *[t for t in SCENE_FORMATS[1:] if t in items]]
    return tuple(out)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Pretty JSON, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")


def render_frames(
    gaussians: Gaussians, cameras: Cameras, background: float, desc: str, progress: bool, tile_size: int | None
) -> torch.Tensor:
    """``[N,3,H,W]`` renders, one camera at a time. On a CPU with n > 1 torch threads the frames are
    rendered by n worker threads of one torch thread each: the renderer's many small ops leave cores
    idle, and whole frames in parallel are ~25 % faster on 2 cores (the images are identical)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from vist3a.gaussians.render import render

    ts = video_tile_size(gaussians, cameras, tile_size) if gaussians.device.type == "cpu" else tile_size

    def one(i: int) -> torch.Tensor:
        out = render(gaussians, cameras[i].to(gaussians.device), background=background, tile_size=ts)
        return out.rgb[0].clamp(0, 1).cpu()

    n = len(cameras)
    threads = torch.get_num_threads()
    if gaussians.device.type != "cpu" or threads < 2 or n < 2:
        frames = [one(i) for i in tqdm(range(n), desc=desc, unit="frame", disable=not progress, leave=False)]
        return torch.stack(frames)
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(min(threads, n)) as pool:
            it = pool.map(one, range(n))
            frames = list(tqdm(it, total=n, desc=desc, unit="frame", disable=not progress, leave=False))
    finally:
        torch.set_num_threads(threads)
    return torch.stack(frames)


#: Tile edges the PyTorch renderer may use for a preview video (see :func:`video_tile_size`).
TILE_CANDIDATES = (4, 8, 16, 32)


def video_tile_size(gaussians: Gaussians, cameras: Cameras, smallest: int | None, views: int = 3) -> int:
    """The PyTorch renderer's tile edge for a video: the candidate (:data:`TILE_CANDIDATES`, at least
    ``smallest``) with the lowest estimated cost (:func:`~vist3a.gaussians.render_torch.tile_size_costs`)
    summed over ``views`` cameras spread along ``cameras``. Small merged splats favour 4 px tiles; a
    blurry reconstruction's splats, tens of pixels wide, would be listed in hundreds of 4 px tiles each
    (binning then costs seconds per frame) and favour 16-32 px. The image does not depend on it."""
    from vist3a.gaussians.render_torch import project_gaussians, tile_size_costs

    low = smallest or 1
    candidates = tuple(t for t in TILE_CANDIDATES if t >= low) or (low,)
    if len(candidates) == 1 or len(cameras) == 0:
        return candidates[0]
    g = gaussians
    total = dict.fromkeys(candidates, 0.0)
    for i in sorted({round(k * (len(cameras) - 1) / max(views - 1, 1)) for k in range(views)}):
        cam = cameras[i]
        w2c = torch.linalg.inv(cam.c2w[0].to(g.means.device, g.means.dtype))
        K = cam.K[0].to(g.means.device, g.means.dtype)
        proj = project_gaussians(g.means, g.quats, g.scales, g.opacities, w2c, K, cam.width, cam.height)
        v = proj.valid
        for ts, c in tile_size_costs(proj.means2d[v], proj.radii[v], cam.width, cam.height, candidates).items():
            total[ts] += c
    return min(total, key=total.__getitem__)


def trajectory_cameras(cameras: Cameras, frames_per_view: int) -> Cameras:
    """The predicted cameras interpolated with ``frames_per_view`` steps per pair, last camera included:
    ``(N − 1)·frames_per_view + 1`` cameras that pass through every keyframe."""
    if frames_per_view < 1:
        raise InputError(f"frames_per_view must be >= 1, got {frames_per_view}")
    return cameras.interpolate((len(cameras) - 1) * frames_per_view + 1)


@torch.no_grad()
def export_scene(
    out_dir: str | os.PathLike[str],
    gaussians: Gaussians,
    cameras: Cameras,
    formats: Sequence[str] = ("ply",),
    frames_per_view: int = 10,
    orbit_frames: int = 120,
    fps: float = 20.0,
    render_size: int | None = None,
    background: float = 1.0,
    device: str | torch.device | None = None,
    progress: bool = True,
    sh_degree: int | None = 0,
    max_splats: int | None = None,
    preview_splats: int | None = None,
    tile_size: int | None = None,
    decoded_frames: torch.Tensor | None = None,
) -> ExportReport:
    """Write scene files, ``cameras.json`` and the videos into ``out_dir`` (which must exist).

    Args:
        gaussians: the scene. cameras: the predicted cameras (OpenCV c2w, pixel K).
        formats: scene formats among ``ply``, ``spz``, ``splat`` (ply is always written).
        frames_per_view: trajectory video frames per pair of consecutive cameras (0 = no video).
        orbit_frames: frames of the orbit video (0 = none).
        fps: video frame rate (the official export uses 20).
        render_size: rendered height/width (default: the cameras' size).
        background: grey level of the background (white, as the official renders).
        device: where to render (default: CUDA when available).
        sh_degree: SH degree stored in the scene files (default 0 = colour only, as the official export:
            AnySplat's degree-4 SH make a ~1 GB .ply that most viewers cannot read; None keeps all).
            The videos always use every band.
        max_splats: merge the scene files' splats to at most this many (:func:`reduce_splats`;
            None/0 = every visible splat).
        preview_splats: the videos render a copy merged to at most this many splats (None/0 = the
            scene as written). Rendering cost grows with the splat count: this is the CPU speed knob.
        tile_size: smallest renderer tile edge on a CPU (default: any of :data:`TILE_CANDIDATES`): each
            video uses the candidate tile edge, at least this one, that is cheapest for its footprints
            (:func:`video_tile_size`; 4 px for small merged splats, 16-32 px for a blurry scene's large
            ones). On CUDA it is passed to the renderer as is.
        decoded_frames: the video model's decoded frames ``[T,3,H,W]`` in [0,1], written as
            ``decoded.mp4`` (what the DiT "saw"; no rendering involved).
    """
    from vist3a.gaussians.formats import save_scene
    from vist3a.video_io import write_video

    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"export folder does not exist: {out}")
    for name, v in (("max_splats", max_splats), ("preview_splats", preview_splats)):
        if v is not None and v < 0:
            raise InputError(f"{name} must be >= 0 (0 = no limit), got {v}")
    report = ExportReport(out)
    t0 = time.perf_counter()
    scene = reduce_splats(gaussians, max_splats, cameras=cameras)
    report.timings["reduce"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    stored = scene
    if sh_degree is not None:
        if sh_degree < 0:
            raise InputError(f"sh_degree must be >= 0, got {sh_degree}")
        stored = scene.with_sh_degree(min(sh_degree, scene.sh_degree))
    for fmt in parse_formats(formats):
        r = save_scene(stored, out / f"scene.{fmt}")
        report.files[f"scene.{fmt}"] = r.path
        if fmt == "ply":
            report.splats_written = r.written
    report.files["cameras.json"] = cameras.save_json(out / "cameras.json")
    report.timings["scene_files"] = time.perf_counter() - t0

    if decoded_frames is not None:
        t0 = time.perf_counter()
        if decoded_frames.ndim != 4 or decoded_frames.shape[1] != 3:
            raise InputError(f"decoded_frames must be [T,3,H,W], got {list(decoded_frames.shape)}")
        report.files["decoded.mp4"] = write_video(decoded_frames.float().clamp(0, 1).cpu(), out / "decoded.mp4", fps=fps)
        report.timings["decoded_video"] = time.perf_counter() - t0
    if frames_per_view <= 0 and orbit_frames <= 0:
        return report
    t0 = time.perf_counter()
    cams = cameras if render_size is None else cameras.resized(render_size, render_size)
    preview = _merge_to_budget(scene, preview_splats, cams)  # `scene` is pruned already
    report.splats_rendered = len(preview)
    report.timings["reduce_preview"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preview = preview.to(dev, torch.float32)
    if frames_per_view > 0:
        path = trajectory_cameras(cams, frames_per_view)
        frames = render_frames(preview, path, background, "render trajectory", progress, tile_size)
        report.files["video.mp4"] = write_video(frames, out / "video.mp4", fps=fps)
    if orbit_frames > 0:
        orbit = Cameras.orbit_of_reconstruction(preview, cams, orbit_frames)
        frames = render_frames(preview, orbit, background, "render orbit", progress, tile_size)
        report.files["orbit.mp4"] = write_video(frames, out / "orbit.mp4", fps=fps)
    report.timings["videos"] = time.perf_counter() - t0
    return report


# ====================================================================== splat reduction
def _voxel_keys(points: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """One integer key per splat naming its cubic voxel of side ``voxel_size`` (from the min corner):
    ``[N]`` int64, or ``[N,3]`` when the grid is too large for one int64."""
    rel = points - points.min(0).values
    idx = (rel / voxel_size).long()  # floor: rel >= 0
    dims = (rel.max(0).values / voxel_size).long() + 1
    if float(dims.double().prod()) >= 2.0**62:  # pragma: no cover - needs > 2^20 voxels per axis
        return idx
    return (idx[:, 0] * dims[1] + idx[:, 1]) * dims[2] + idx[:, 2]


def _voxel_inverse(points: torch.Tensor, voxel_size: float) -> tuple[torch.Tensor, int]:
    """Voxel row of every splat ``[N]`` and the number of occupied voxels."""
    key = _voxel_keys(points, voxel_size)
    _, inverse = torch.unique(key, dim=0 if key.ndim == 2 else None, return_inverse=True)
    return inverse, int(inverse.max()) + 1 if inverse.numel() else 0


def _voxel_count(points: torch.Tensor, voxel_size: float) -> int:
    key = _voxel_keys(points, voxel_size)
    return int(torch.unique(key, dim=0 if key.ndim == 2 else None).shape[0])


def contract(points: torch.Tensor, center: torch.Tensor, radius: float) -> torch.Tensor:
    """mip-NeRF 360's scene contraction of ``points [N,3]`` around ``center`` with unit ``radius``:
    ``x`` inside the unit ball, ``(2 − 1/|x|)·x/|x|`` outside (everything lands in a ball of radius 2)."""
    x = (points - center) / radius
    r = x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(r <= 1.0, x, (2.0 - 1.0 / r) * x / r)


def merge_voxels(gaussians: Gaussians, voxel_size: float, contraction: tuple[torch.Tensor, float] | None = None) -> Gaussians:
    """Fuse the splats inside each cubic voxel of side ``voxel_size`` into one Gaussian.

    A merged Gaussian matches the opacity-weighted moments of its members (weights ``wᵢ = αᵢ``):
    mean ``μ = Σ wᵢμᵢ / Σ wᵢ``, covariance ``Σ̄ = Σ wᵢ(Σᵢ + (μᵢ−μ)(μᵢ−μ)ᵀ) / Σ wᵢ`` (rotation and scales
    from its eigen-decomposition), SH coefficients ``Σ wᵢ shᵢ / Σ wᵢ``. Its opacity keeps the covered
    "mass" ``Σ αᵢAᵢ / A`` (``A`` = the product of the two largest scales of ``Σ̄``, the area of the
    ellipse up to π) but never exceeds ``1 − Π(1 − αᵢ)``, the opacity of the members stacked on top of
    each other — the case of one surface seen from several views. Finally the covariance is scaled by
    :data:`MERGE_INFLATION`, so that neighbouring merged splats overlap as their members did. Voxels
    with one member keep it unchanged.

    Args:
        gaussians: N splats (activated; wxyz quaternions).
        voxel_size: voxel side in world units, or in contracted units with ``contraction``.
        contraction: ``(center [3], radius)``: voxels are cubes of the contracted space (:func:`contract`),
            so they grow with the distance beyond ``radius`` as a pixel's footprint does; merged scales
            are then capped at :data:`MAX_SCALE_VOXELS` voxel sides across the viewing rays.
    Returns:
        one splat per occupied voxel, in voxel order.
    """
    if voxel_size <= 0 or not math.isfinite(voxel_size):
        raise InputError(f"voxel_size must be a positive number, got {voxel_size}")
    g = gaussians.detach()
    if len(g) == 0:
        return g
    pts = g.means.float() if contraction is None else contract(g.means.float(), *contraction)
    inverse, v = _voxel_inverse(pts, voxel_size)
    grid = None if contraction is None else (voxel_size, contraction[0], float(contraction[1]))
    return g if v == len(g) else _merge(g, inverse, v, grid)


def pixel_footprints(means: torch.Tensor, cameras: Cameras | None) -> torch.Tensor | None:
    """``[N]`` world size of one pixel at each of ``means [N,3]``: the distance to the nearest camera centre
    over that camera's focal length in pixels (None without cameras)."""
    if cameras is None or len(cameras) == 0:
        return None
    centers = cameras.centers.to(means.device, torch.float32)
    focal = cameras.K[:, :2, :2].diagonal(dim1=1, dim2=2).mean(-1).to(means.device, torch.float32)
    parts = []
    for chunk in means.float().split(1 << 18):  # [chunk, cameras] distances, not [N, cameras]
        dist, near = torch.cdist(chunk, centers).min(1)
        parts.append(dist / focal[near].clamp_min(1e-9))
    return torch.cat(parts) if parts else means.new_zeros(0, dtype=torch.float32)


def _merge(
    g: Gaussians,
    inverse: torch.Tensor,
    v: int,
    grid: tuple[float, torch.Tensor, float] | None = None,
    pixel: torch.Tensor | None = None,
) -> Gaussians:
    """Moment-matched merge of the splats with equal ``inverse`` (``[N]`` rows in ``0..v-1``).

    ``pixel [N]`` (:func:`pixel_footprints`): with it, every area of the opacity rule includes the renderers'
    :data:`LOW_PASS_PX2` dilation, as the image does.

    ``grid = (side, center, radius)`` of a contracted voxel grid caps a merged splat's scales at
    :data:`MAX_SCALE_VOXELS` × the world size of a voxel's side across the viewing rays at its mean: far
    voxels are long along the rays, and their members' spread there must not become a splat that
    covers the whole image from another viewpoint."""
    from vist3a.gaussians.cameras import matrix_to_quat
    from vist3a.gaussians.render_torch import covariance_3d

    n, dt = len(g), g.means.dtype
    members = torch.bincount(inverse, minlength=v)
    alpha = g.opacities.clamp(1e-6, 1.0)
    wsum = alpha.new_zeros(v).index_add(0, inverse, alpha)
    w = (alpha / wsum[inverse])[:, None]  # N, 1: normalised weight inside the voxel
    mean = g.means.new_zeros(v, 3).index_add(0, inverse, g.means * w)
    d = g.means - mean[inverse]
    cov_i = covariance_3d(g.quats, g.scales) + d[:, :, None] * d[:, None, :]
    cov = cov_i.new_zeros(v, 3, 3).index_add(0, inverse, cov_i * w[:, :, None])
    sh = g.sh.new_zeros(v, *g.sh.shape[1:]).index_add(0, inverse, g.sh * w[:, :, None])
    single = members == 1
    multi = ~single
    evals, evecs = torch.linalg.eigh(0.5 * (cov[multi] + cov[multi].transpose(1, 2)).double())  # ascending
    flip = torch.linalg.det(evecs)[:, None, None] < 0
    evecs = torch.where(flip, evecs * evecs.new_tensor([-1.0, 1.0, 1.0]), evecs)  # a rotation (det +1)
    scales = g.scales.new_zeros(v, 3)
    quats = g.quats.new_zeros(v, 4)
    scales[multi] = evals.clamp_min(1e-20).sqrt().to(dt)
    quats[multi] = matrix_to_quat(evecs).to(dt)
    if grid is not None:
        side, center, radius = grid
        r = ((mean - center.to(mean)) / radius).norm(dim=-1).clamp_min(1.0)  # tangential stretch: r / (2 − 1/r)
        cap = MAX_SCALE_VOXELS * side * radius * r / (2.0 - 1.0 / r) / math.sqrt(MERGE_INFLATION)
        scales = torch.minimum(scales, cap[:, None])
    # opacity: area-weighted ("mass" preserving), capped by the stacked opacity
    var2 = g.scales.sort(dim=1).values[:, 1:] ** 2  # N, 2: each member's two largest variances
    merged2 = scales[:, 1:] ** 2  # v, 2 (eigh's ascending order survives the common cap)
    if pixel is not None:  # on screen every splat is widened by the low-pass: a sub-pixel one covers ~a pixel
        low_pass = LOW_PASS_PX2 * pixel.to(dt) ** 2  # N, world units²
        var2 = var2 + low_pass[:, None]
        merged2 = merged2 + scales.new_zeros(v).index_add(0, inverse, low_pass * w[:, 0])[:, None]
    top2 = var2.prod(1).sqrt()
    area = merged2.prod(1).sqrt().clamp_min(1e-30)  # singles: replaced below
    mass = alpha.new_zeros(v).index_add(0, inverse, alpha * top2)
    log_t = alpha.new_zeros(v).index_add(0, inverse, torch.log1p(-alpha.clamp(max=1 - 1e-6)))
    opac = torch.minimum(mass / area, 1.0 - torch.exp(log_t)).clamp(0.0, 1.0)
    scales = scales * math.sqrt(MERGE_INFLATION)  # after the opacity rule, which uses the moments
    # single members stay exactly as they were
    first = torch.full((v,), n, dtype=torch.long, device=inverse.device).scatter_reduce(
        0, inverse, torch.arange(n, device=inverse.device), "amin"
    )
    src = first[single]
    mean[single], scales[single], quats[single] = g.means[src], g.scales[src], g.quats[src]
    opac[single], sh[single] = g.opacities[src], g.sh[src]
    return Gaussians(mean, quats, scales, opac, sh)


def reduce_splats(
    gaussians: Gaussians, max_splats: int | None, min_opacity: float = 1.0 / 255.0, cameras: Cameras | None = None
) -> Gaussians:
    """Splats for export and preview: drop the ones no renderer draws (opacity below ``min_opacity``, or
    non-finite values), then, when more than ``max_splats`` remain, merge them per voxel.

    The voxels are cubes of the contracted space (:func:`contract`) around the opacity-weighted median
    of the means, with the median distance to it as unit radius: uniform near the scene's centre,
    growing like a pixel's footprint towards a far background. Their side is searched (secant steps in
    log space inside a bisection bracket) to leave between 90 % and 100 % of ``max_splats`` splats
    (at most ``max_splats`` always). ``max_splats`` None or 0 merges
    nothing. ``cameras`` (the scene's or the video's): the opacity rule then counts the renderers' low-pass
    at those cameras' pixel size (:func:`pixel_footprints`), without which sub-pixel splats merge too faint.
    """
    if max_splats is not None and max_splats < 0:
        raise InputError(f"max_splats must be >= 0 (0 = no limit), got {max_splats}")
    g = gaussians.detach()
    finite = torch.isfinite(g.means).all(1) & torch.isfinite(g.scales).all(1) & torch.isfinite(g.opacities)
    finite &= torch.isfinite(g.quats).all(1) & torch.isfinite(g.sh).flatten(1).all(1)
    keep = finite & (g.opacities >= min_opacity)
    if not bool(keep.all()):  # (a copy of every tensor, SH included: skipped when nothing goes)
        g = g[keep]
    return _merge_to_budget(g, max_splats, cameras)


def _merge_to_budget(g: Gaussians, max_splats: int | None, cameras: Cameras | None = None) -> Gaussians:
    """The merge of :func:`reduce_splats` on splats already pruned (detached, finite, visible)."""
    from vist3a.gaussians.cameras import splat_median, weighted_quantile

    if not max_splats or len(g) <= max_splats:
        return g
    means, weights = g.means.float().cpu(), g.opacities.float().cpu()
    step = max(1, len(g) // 65536)  # the centre and radius from a strided subset: quantiles need no more
    sub, sub_w = means[::step], weights[::step]
    center = splat_median(sub, sub_w)
    radius = max(weighted_quantile((sub - center).norm(dim=-1), sub_w, 0.5), 1e-9)
    pts = contract(means, center, radius)
    # Search the side in log space: the count falls like side^-D (D ≈ 2 on surfaces), so a secant step on
    # (log side, log count), kept inside the bracket [lo, hi] (count(lo) > budget >= count(hi)), usually
    # lands within 10 % of the budget in 2-4 counts; plain bisection takes over when it does not.
    lo, hi = 2.0**-14, 4.0  # contracted units: everything lies in a ball of radius 2; 2^-14 is far below a pixel
    n_lo, n_hi = len(g), 1
    side = hi * (n_hi / max_splats) ** 0.5  # a surface-like first guess from the count at `hi`
    for _ in range(16):
        if not lo < side < hi:
            side = math.sqrt(lo * hi)
        n = _voxel_count(pts, side)
        if n <= max_splats:
            hi, n_hi = side, n
            if n >= 0.9 * max_splats:
                break
        else:
            lo, n_lo = side, n
        if hi / lo < 1.02:
            break
        slope = math.log(n_lo / n_hi) / math.log(hi / lo) if n_lo > n_hi else 2.0  # -d log count / d log side
        side = hi * (n_hi / (0.95 * max_splats)) ** (1.0 / max(slope, 0.5))
    inverse, v = _voxel_inverse(pts, hi)
    out = _merge(g, inverse.to(g.device), v, grid=(hi, center, radius), pixel=pixel_footprints(g.means, cameras))
    log.info("merged %d splats into %d (contracted voxel side %.4g) for a budget of %d", len(g), v, hi, max_splats)
    return out


# ====================================================================== folders
def slugify(text: str, max_chars: int = SLUG_CHARS) -> str:
    """Lower-case ASCII letters, digits and single dashes (never empty, never ``.``/``..``)."""
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    t = re.sub(r"[^a-z0-9]+", "-", t).strip("-")
    t = t[:max_chars].rstrip("-")
    return t or "scene"


def prompt_folder_name(prompt: str, seed: int, occurrence: int = 0) -> str:
    """``<slug>-<8 hex>`` with the hash over (prompt, seed, occurrence): the same prompt twice in one
    list (occurrence 0, 1, ...) gets two names; the same prompt and seed in another run gets the same name."""
    key = f"{prompt}\x00{seed}\x00{occurrence}".encode()
    return f"{slugify(prompt)}-{hashlib.sha1(key).hexdigest()[:8]}"


def occurrences(prompts: Sequence[str]) -> list[int]:
    """For each prompt, how many times the same prompt appeared before it in the list."""
    seen: dict[str, int] = {}
    out = []
    for p in prompts:
        out.append(seen.get(p, 0))
        seen[p] = out[-1] + 1
    return out


def claim_folder(root: str | os.PathLike[str], name: str) -> Path:
    """Create ``root/name`` atomically (``root/name-2``, ``-3``, ... when it exists) and return it.

    ``name`` must be a single path component; the result always lies inside ``root``.
    """
    base = Path(root).expanduser()
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise InputError(f"not a safe folder name: {name!r}")
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10_000):
        cand = base / (name if i == 1 else f"{name}-{i}")
        try:
            cand.mkdir()
        except FileExistsError:
            continue
        if cand.resolve().parent != base.resolve():  # pragma: no cover - guarded by the name check
            raise InputError(f"output folder {cand} escapes {base}")
        return cand
    raise InputError(f"could not find a free folder name for {name!r} in {base}")
