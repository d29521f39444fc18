"""Writing a generated / reconstructed scene as a bundle of files, and safe per-prompt folders.

``export_scene(out_dir, gaussians, cameras, formats=("ply",))`` writes, atomically per file:

- ``scene.ply`` (INRIA layout; ``.spz`` / ``.splat`` on request),
- ``cameras.json`` (the predicted cameras, OpenCV c2w + pixel intrinsics),
- ``video.mp4``: a render along the predicted trajectory, interpolated (``frames_per_view`` frames
  per pair of consecutive cameras, the last camera included; the official export drops it),
- ``orbit.mp4``: a render on a circle placed around the scene (:meth:`Cameras.orbit_around`).

``prompt_folder_name(prompt, seed, occurrence)`` is a file-system-safe, collision-free folder name:
an ASCII slug of the prompt plus a short hash of (prompt, seed, occurrence), never containing a path
separator or ``..``; :func:`claim_folder` creates it atomically (adding ``-2``, ``-3`` when taken).
"""

from __future__ import annotations

import hashlib
import json
import logging
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
from vist3a.io_utils import atomic_write_text

log = logging.getLogger(__name__)

SCENE_FORMATS = ("ply", "spz", "splat")
SLUG_CHARS = 48


@dataclass
class ExportReport:
    """What :func:`export_scene` wrote: ``files`` (name → path) and ``timings`` (seconds per part)."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    splats_written: int = 0


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


def _render_frames(
    gaussians: Gaussians, cameras: Cameras, background: float, desc: str, progress: bool
) -> torch.Tensor:
    from tqdm.auto import tqdm

    from vist3a.gaussians.render import render

    frames = []
    for i in tqdm(range(len(cameras)), desc=desc, unit="frame", disable=not progress, leave=False):
        out = render(gaussians, cameras[i].to(gaussians.device), background=background)
        frames.append(out.rgb[0].clamp(0, 1).cpu())
    return torch.stack(frames)


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
) -> ExportReport:
    """Write scene files, ``cameras.json`` and the two videos into ``out_dir`` (which must exist).

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
    """
    from vist3a.gaussians.formats import save_scene
    from vist3a.video_io import write_video

    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"export folder does not exist: {out}")
    report = ExportReport(out)
    t0 = time.perf_counter()
    stored = gaussians
    if sh_degree is not None:
        if sh_degree < 0:
            raise InputError(f"sh_degree must be >= 0, got {sh_degree}")
        stored = gaussians.with_sh_degree(min(sh_degree, gaussians.sh_degree))
    for fmt in parse_formats(formats):
        r = save_scene(stored, out / f"scene.{fmt}")
        report.files[f"scene.{fmt}"] = r.path
        if fmt == "ply":
            report.splats_written = r.written
    report.files["cameras.json"] = cameras.save_json(out / "cameras.json")
    report.timings["scene_files"] = time.perf_counter() - t0

    if frames_per_view <= 0 and orbit_frames <= 0:
        return report
    t0 = time.perf_counter()
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scene = gaussians.detach().to(dev, torch.float32)
    cams = cameras if render_size is None else cameras.resized(render_size, render_size)
    if frames_per_view > 0:
        path = trajectory_cameras(cams, frames_per_view)
        frames = _render_frames(scene, path, background, "render trajectory", progress)
        report.files["video.mp4"] = write_video(frames, out / "video.mp4", fps=fps)
    if orbit_frames > 0:
        orbit = Cameras.orbit_around(scene, orbit_frames, cams.width, cams.height, up=_up_of(cams))
        frames = _render_frames(scene, orbit, background, "render orbit", progress)
        report.files["orbit.mp4"] = write_video(frames, out / "orbit.mp4", fps=fps)
    report.timings["videos"] = time.perf_counter() - t0
    return report


def _up_of(cameras: Cameras) -> tuple[float, float, float]:
    """World up for an orbit around a reconstruction: minus the mean camera y axis (OpenCV y is down)."""
    y = cameras.c2w[:, :3, 1].float().mean(0)
    n = float(y.norm())
    if n < 1e-6:
        return (0.0, -1.0, 0.0)
    y = -y / n
    return (float(y[0]), float(y[1]), float(y[2]))


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
