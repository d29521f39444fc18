"""DL3DV-10K (HF ``DL3DV/DL3DV-ALL-960P``): random multi-view clips for stitching / training.

On-disk layout (METHOD §4.1)::

    <root>/{1K..11K}/<scene>/images_4/frame_00001.png …   (960×540)
    <root>/{1K..11K}/<scene>/transforms.json               (nerfstudio format, optional here)

``transforms.json`` (nerfstudio): top-level ``w, h, fl_x, fl_y, cx, cy`` (pixels of the *full*-resolution
images; a frame may override them) and ``frames: [{"file_path": "images/frame_00001.png",
"transform_matrix": 4×4}]``. ``transform_matrix`` is camera-to-world in OpenGL axes (x right, y up,
z backward); it is converted to OpenCV axes (``c2w @ diag(1,-1,-1,1)``) and K is scaled to the size
of the images actually read. Distortion coefficients are ignored. The official VIST3A code never
reads this file; here it gives the ``cameras`` of a sample (``None`` when absent).

Sampling (METHOD §3.4): ``num_views`` frames (21) from a random window of ``window`` = (21, 50)
frames, sorted, the window's first frame included. Preprocessing: see :mod:`vist3a.data.transforms`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vist3a.data import OnError, Protocol, SceneDataset, SkipScene, check_protocol, sample_window
from vist3a.data.transforms import ColorJitter, Size, read_image, resize, resize_center_crop, stack_frames
from vist3a.errors import FormatError, InputError
from vist3a.gaussians.cameras import Cameras

log = logging.getLogger(__name__)

FRAME_RE = re.compile(r"^frame_(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)
OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


@dataclass
class FrameCamera:
    """One frame's camera from ``transforms.json``: OpenCV ``c2w [4,4]``, pixel ``K [3,3]`` for ``width×height``."""

    c2w: torch.Tensor
    K: torch.Tensor
    width: float
    height: float


def read_nerfstudio_transforms(path: str | os.PathLike[str]) -> dict[str, FrameCamera]:
    """Parse a nerfstudio ``transforms.json`` into ``{image file name: FrameCamera}`` (OpenCV axes).

    Raises:
        FormatError: the file is not valid JSON or lacks ``frames`` / intrinsics / a 4×4 matrix.
    """
    p = Path(path)
    try:
        meta = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"cannot read {p}: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise FormatError(f"{p}: expected an object with a 'frames' list")
    out: dict[str, FrameCamera] = {}
    for i, fr in enumerate(meta["frames"]):
        if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
            raise FormatError(f"{p}: frames[{i}] needs 'file_path' and 'transform_matrix'")

        def get(key: str, fr: dict = fr, i: int = i) -> float:
            val = fr.get(key, meta.get(key))
            if val is None:
                raise FormatError(f"{p}: frames[{i}] has no '{key}' (nor does the file)")
            return float(val)

        fx = get("fl_x")
        fy = fr.get("fl_y", meta.get("fl_y", fx))
        cx, cy, w, h = get("cx"), get("cy"), get("w"), get("h")
        try:
            m = torch.tensor(fr["transform_matrix"], dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{p}: frames[{i}].transform_matrix is not numeric: {exc}") from exc
        if m.shape == (3, 4):
            m = torch.cat([m, torch.tensor([[0.0, 0.0, 0.0, 1.0]])])
        if m.shape != (4, 4) or not torch.isfinite(m).all():
            raise FormatError(f"{p}: frames[{i}].transform_matrix must be a finite 4x4 matrix")
        K = torch.tensor([[fx, 0.0, cx], [0.0, float(fy), cy], [0.0, 0.0, 1.0]])
        out[Path(str(fr["file_path"])).name] = FrameCamera(m @ OPENGL_TO_OPENCV, K, w, h)
    return out


def list_frames(folder: Path) -> list[tuple[int, Path]]:
    """``frame_<n>.png`` files of ``folder`` as ``(n, path)`` sorted by ``n``."""
    frames = []
    with os.scandir(folder) as it:
        for e in it:
            m = FRAME_RE.match(e.name)
            if m:
                frames.append((int(m.group(1)), Path(e.path)))
    frames.sort()
    return frames


def find_dl3dv_scenes(root: str | os.PathLike[str], image_dir: str = "images_4") -> dict[str, Path]:
    """Scene folders ``<root>/<batch>/<scene>/`` (or ``<root>/<scene>/``) that contain ``image_dir``."""
    r = Path(root)
    if not r.is_dir():
        raise InputError(f"DL3DV root is not a folder: {r}")
    scenes: dict[str, Path] = {}
    for pattern in ("*/*", "*"):
        for d in sorted(r.glob(pattern)):
            if (d / image_dir).is_dir() and d.name not in scenes:
                scenes[d.name] = d
    return scenes


def scene_cameras(
    scene_dir: Path, frames: list[Path], image_hw: tuple[int, int]
) -> Cameras | None:
    """Cameras of ``frames`` from ``scene_dir/transforms.json`` for images of ``image_hw``; None if no file."""
    tf = scene_dir / "transforms.json"
    if not tf.is_file():
        return None
    cams = read_nerfstudio_transforms(tf)
    h, w = image_hw
    c2w, K = [], []
    for f in frames:
        cam = cams.get(f.name)
        if cam is None:
            raise FormatError(f"{tf} has no camera for {f.name}")
        k = cam.K.clone()
        k[0] *= w / cam.width
        k[1] *= h / cam.height
        k[2] = torch.tensor([0.0, 0.0, 1.0])
        c2w.append(cam.c2w)
        K.append(k)
    return Cameras(torch.stack(c2w), torch.stack(K), w, h)


def preprocess_clip(
    images: torch.Tensor,
    cameras: Cameras | None,
    size: Size,
    feedforward_size: Size | None,
    protocol: Protocol,
    jitter: ColorJitter | None,
    generator: torch.Generator | None,
) -> dict[str, Any]:
    """Resize + centre-crop a clip ``[V,3,H,W]`` (official: bilinear without antialiasing), jitter it, and
    optionally resize the crop to ``feedforward_size`` (antialiased bilinear, as torchvision's Resize)."""
    K = cameras.K if cameras is not None else None
    x, K = resize_center_crop(images, size, K, antialias=(protocol == "default"))
    out: dict[str, Any] = {}
    if jitter is not None:
        x = jitter(x, generator)
    h, w = x.shape[-2:]
    out["images"] = x
    out["cameras"] = Cameras(cameras.c2w, K, w, h) if cameras is not None and K is not None else None
    if feedforward_size is not None:
        ff, Kf = resize(x, feedforward_size, K, antialias=True)
        out["feedforward_images"] = ff
        out["feedforward_cameras"] = (
            Cameras(cameras.c2w, Kf, ff.shape[-1], ff.shape[-2]) if cameras is not None and Kf is not None else None
        )
    return out


class DL3DVDataset(SceneDataset):
    """Random clips of DL3DV scenes.

    Args:
        root: the DL3DV root (``<root>/1K/<scene>/images_4/…``).
        num_views: frames per sample (21 in VIST3A).
        window: ``(min, max)`` window length the frames are drawn from (21, 50); an int means ``(n, n)``.
        size: output ``(h, w)`` or square side (512).
        feedforward_size: optional second resolution (448) → ``feedforward_images``/``feedforward_cameras``.
        protocol: ``"default"`` or ``"official"`` (see :mod:`vist3a.data.transforms`, :func:`sample_window`).
        color_jitter: apply :class:`ColorJitter` (one draw per clip), as the official training does.
        scenes: optional allow-list of scene ids.
        require_cameras: skip scenes without ``transforms.json``.
        image_dir: ``images_4`` (960P release) or another ``images*`` folder.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        num_views: int = 21,
        window: int | tuple[int, int] = (21, 50),
        size: Size = 512,
        feedforward_size: Size | None = None,
        protocol: Protocol = "default",
        color_jitter: bool | ColorJitter = False,
        scenes: list[str] | None = None,
        require_cameras: bool = False,
        image_dir: str = "images_4",
        seed: int | None = None,
        on_error: OnError = "next",
    ) -> None:
        super().__init__(on_error=on_error, seed=seed)
        self.root = Path(root)
        self.num_views = int(num_views)
        self.window = (int(window), int(window)) if isinstance(window, int) else (int(window[0]), int(window[1]))
        self.size, self.feedforward_size = size, feedforward_size
        self.protocol = check_protocol(protocol)
        self.jitter = color_jitter if isinstance(color_jitter, ColorJitter) else (ColorJitter() if color_jitter else None)
        self.require_cameras = require_cameras
        found = find_dl3dv_scenes(self.root, image_dir)
        if scenes is not None:
            for s in scenes:
                if s not in found:
                    self.skipped.add(s, "missing")
            found = {s: found[s] for s in scenes if s in found}
        need = max(self.num_views, self.window[0]) + (1 if self.protocol == "official" else 0)
        self.items: list[tuple[str, Path, list[tuple[int, Path]]]] = []
        for name, d in found.items():
            try:
                frames = list_frames(d / image_dir)
            except OSError as exc:
                self.skipped.add(name, "unreadable", str(exc))
                continue
            if len(frames) < need:
                self.skipped.add(name, "too short", f"{len(frames)} frames < {need}")
                continue
            if require_cameras and not (d / "transforms.json").is_file():
                self.skipped.add(name, "no cameras", "transforms.json missing")
                continue
            self.items.append((name, d, frames))
        log.info("DL3DV: %d scenes in %s (%s)", len(self.items), self.root, self.skipped)

    def _name(self, index: int) -> str:
        return self.items[index][0]

    def _load(self, index: int) -> dict[str, Any]:
        name, scene_dir, frames = self.items[index]
        g = self.generator(index)
        idx = sample_window(len(frames), self.num_views, self.window, g, self.protocol)
        chosen = [frames[i] for i in idx]
        images = stack_frames([read_image(p) for _, p in chosen], name)
        try:
            cameras = scene_cameras(scene_dir, [p for _, p in chosen], tuple(images.shape[-2:]))
        except FormatError as exc:
            if self.require_cameras:
                raise
            log.warning("DL3DV %s: no cameras (%s)", name, exc)  # the images are still usable
            cameras = None
        if cameras is None and self.require_cameras:
            raise SkipScene("no cameras", "transforms.json missing")
        out = preprocess_clip(images, cameras, self.size, self.feedforward_size, self.protocol, self.jitter, g)
        out["scene"] = name
        out["frame_ids"] = torch.tensor([n for n, _ in chosen])
        return out
