"""ScanNet, as exported by the official SensReader: random multi-view clips for stitching / training.

On-disk layout (METHOD §4.2)::

    <root>/scans/<sceneXXXX_YY>/frames/color/<i>.jpg          (1296×968, sorted numerically)
    <root>/scans/<sceneXXXX_YY>/frames/pose/<i>.txt           4×4 camera-to-world, OpenCV axes
    <root>/scans/<sceneXXXX_YY>/frames/intrinsic/intrinsic_color.txt   4×4, K = top-left 3×3 (pixels)
    <root>/scans/<sceneXXXX_YY>/frames/depth/<i>.png          (unused)

``<root>`` may also hold the scene folders directly (the official loader globs ``<root>/*/``).
Scenes are filtered by a name list (the official ``train_name_list.json``). ScanNet marks failed
tracking with ``-inf`` poses: the default protocol samples only frames with a finite pose; the official
protocol samples all colour frames (as the official loader, which reads no poses) and gives
``cameras=None`` when a chosen frame has no valid pose.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vist3a.data import OnError, Protocol, SceneDataset, SkipScene, check_protocol, sample_window
from vist3a.data.dl3dv import preprocess_clip
from vist3a.data.transforms import ColorJitter, Size, read_image, stack_frames
from vist3a.errors import FormatError, InputError
from vist3a.gaussians.cameras import Cameras

log = logging.getLogger(__name__)

SCANNET_NAME = re.compile(r"^scene\d{4}_\d{2}$")


def read_matrix(path: str | os.PathLike[str]) -> torch.Tensor:
    """A whitespace-separated 4×4 matrix (SensReader pose / intrinsic file) → ``[4,4]`` float32."""
    try:
        arr = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise FormatError(f"cannot read matrix {path}: {exc}") from exc
    if arr.shape != (4, 4):
        raise FormatError(f"{path}: expected a 4x4 matrix, got shape {arr.shape}")
    return torch.from_numpy(arr).float()


def read_name_list(names: str | os.PathLike[str] | list[str] | None) -> set[str] | None:
    """A JSON list of scene names (or a list, or None for no filter)."""
    if names is None:
        return None
    if isinstance(names, (list, tuple, set)):
        return {str(n) for n in names}
    p = Path(names)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the scene name list {p}: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        raise InputError(f"{p}: expected a JSON list of scene names")
    return set(data)


def list_color_frames(folder: Path) -> list[tuple[int, Path]]:
    """``<i>.jpg`` (or .png) files as ``(i, path)`` sorted by ``i``; other names are ignored."""
    out = []
    with os.scandir(folder) as it:
        for e in it:
            stem, ext = os.path.splitext(e.name)
            if stem.isdigit() and ext.lower() in (".jpg", ".jpeg", ".png"):
                out.append((int(stem), Path(e.path)))
    out.sort()
    return out


class ScanNetDataset(SceneDataset):
    """Random clips of ScanNet scenes (SensReader export).

    Args:
        root: folder with ``scans/<scene>/frames/…`` (or ``<scene>/frames/…`` directly).
        name_list: JSON file / list of allowed scene names (``train_name_list.json``); None = all.
        num_views, window, size, feedforward_size, protocol, color_jitter, seed, on_error:
            as :class:`vist3a.data.dl3dv.DL3DVDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        name_list: str | os.PathLike[str] | list[str] | None = None,
        num_views: int = 21,
        window: int | tuple[int, int] = (21, 50),
        size: Size = 512,
        feedforward_size: Size | None = None,
        protocol: Protocol = "default",
        color_jitter: bool | ColorJitter = False,
        seed: int | None = None,
        on_error: OnError = "next",
    ) -> None:
        super().__init__(on_error=on_error, seed=seed)
        r = Path(root)
        if not r.is_dir():
            raise InputError(f"ScanNet root is not a folder: {r}")
        base = r / "scans" if (r / "scans").is_dir() else r
        self.root = base
        self.num_views = int(num_views)
        self.window = (int(window), int(window)) if isinstance(window, int) else (int(window[0]), int(window[1]))
        self.size, self.feedforward_size = size, feedforward_size
        self.protocol = check_protocol(protocol)
        self.jitter = color_jitter if isinstance(color_jitter, ColorJitter) else (ColorJitter() if color_jitter else None)
        allowed = read_name_list(name_list)
        self.filtered_out = 0
        need = max(self.num_views, self.window[0]) + (1 if self.protocol == "official" else 0)
        present = {d.name: d for d in sorted(base.iterdir()) if d.is_dir()}
        if allowed is not None:
            for name in sorted(allowed - set(present)):
                if SCANNET_NAME.match(name):  # the official list also holds non-ScanNet ids
                    self.skipped.add(name, "missing")
        self.items: list[tuple[str, Path, list[tuple[int, Path]]]] = []
        self._valid_cache: dict[int, list[tuple[int, Path]]] = {}
        for name, d in present.items():
            if allowed is not None and name not in allowed:
                self.filtered_out += 1
                continue
            color = d / "frames" / "color"
            if not color.is_dir():
                self.skipped.add(name, "missing", "no frames/color")
                continue
            try:
                frames = list_color_frames(color)
            except OSError as exc:
                self.skipped.add(name, "unreadable", str(exc))
                continue
            if len(frames) < need:
                self.skipped.add(name, "too short", f"{len(frames)} frames < {need}")
                continue
            self.items.append((name, d, frames))
        log.info("ScanNet: %d scenes in %s (%d not in the name list; %s)", len(self.items), base, self.filtered_out, self.skipped)

    def _name(self, index: int) -> str:
        return self.items[index][0]

    def _poses(self, scene_dir: Path, frames: list[tuple[int, Path]]) -> list[torch.Tensor | None] | None:
        pose_dir = scene_dir / "frames" / "pose"
        if not pose_dir.is_dir():
            return None
        out: list[torch.Tensor | None] = []
        for n, _ in frames:
            f = pose_dir / f"{n}.txt"
            if not f.is_file():
                out.append(None)
                continue
            m = read_matrix(f)
            out.append(m if torch.isfinite(m).all() else None)
        return out

    def _frames(self, index: int) -> list[tuple[int, Path]]:
        """Candidate frames: all (official) or those with a finite pose when poses exist (default)."""
        name, d, frames = self.items[index]
        if self.protocol == "official":
            return frames
        if index not in self._valid_cache:
            poses = self._poses(d, frames)
            self._valid_cache[index] = frames if poses is None else [f for f, p in zip(frames, poses, strict=True) if p is not None]
        return self._valid_cache[index]

    def _load(self, index: int) -> dict[str, Any]:
        name, d, _ = self.items[index]
        frames = self._frames(index)
        g = self.generator(index)
        idx = sample_window(len(frames), self.num_views, self.window, g, self.protocol)
        chosen = [frames[i] for i in idx]
        images = stack_frames([read_image(p) for _, p in chosen], name)
        h, w = images.shape[-2:]
        cameras = None
        poses = self._poses(d, chosen)
        kfile = d / "frames" / "intrinsic" / "intrinsic_color.txt"
        if poses is not None and all(p is not None for p in poses) and kfile.is_file():
            K = read_matrix(kfile)[:3, :3]
            if not torch.isfinite(K).all() or K[0, 0] <= 0:
                raise SkipScene("unreadable", f"bad intrinsics in {kfile}")
            cameras = Cameras(torch.stack(poses), K.expand(len(chosen), 3, 3).clone(), w, h)  # type: ignore[arg-type]
        out = preprocess_clip(images, cameras, self.size, self.feedforward_size, self.protocol, self.jitter, g)
        out["scene"] = name
        out["frame_ids"] = torch.tensor([n for n, _ in chosen])
        return out
