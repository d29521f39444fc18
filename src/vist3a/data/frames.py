"""Clips from a plain folder of frames or a video file (any format imageio/ffmpeg reads).

A *source* is either a folder of images (``.png/.jpg/.jpeg/.webp/.bmp``, sorted naturally, so
``2.png`` comes before ``10.png``) or a video file (``.mp4/.mov/.avi/.mkv/.webm/.gif``). There are no
cameras. :func:`load_frames` reads one source; :class:`FramesDataset` serves many.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vist3a.data import OnError, SceneDataset, SkipScene
from vist3a.data.transforms import Size, natural_key, read_image, resize, resize_center_crop, stack_frames
from vist3a.errors import FormatError, InputError

log = logging.getLogger(__name__)

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif", ".m4v"}
Sampling = Literal["uniform", "first"]


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files of ``folder`` in natural order."""
    d = Path(folder)
    files = [p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    return sorted(files, key=lambda p: natural_key(p.name))


def pick(n_total: int, num_frames: int | None, sampling: Sampling = "uniform") -> list[int]:
    """Indices of ``num_frames`` frames out of ``n_total``: evenly spaced including both ends
    (``"uniform"``) or the first ones (``"first"``); all when ``num_frames`` is None."""
    if num_frames is None or num_frames >= n_total:
        if num_frames is not None and num_frames > n_total:
            raise InputError(f"the clip has {n_total} frames, fewer than the {num_frames} asked for")
        return list(range(n_total))
    if num_frames < 1:
        raise InputError(f"num_frames must be >= 1, got {num_frames}")
    if sampling == "first":
        return list(range(num_frames))
    if num_frames == 1:
        return [0]
    return [round(i * (n_total - 1) / (num_frames - 1)) for i in range(num_frames)]


def count_video_frames(path: str | os.PathLike[str]) -> int:
    import imageio

    try:
        with imageio.get_reader(str(path), format="ffmpeg") as r:
            return int(r.count_frames())
    except Exception as exc:  # imageio raises many types for broken files
        raise FormatError(f"cannot read video {path}: {exc}") from exc


def read_video(
    path: str | os.PathLike[str], indices: list[int] | None = None
) -> torch.Tensor:
    """Decode frames of a video (streaming; only ``indices`` are kept) → ``[V,3,H,W]`` in [0,1]."""
    import imageio

    want = None if indices is None else set(indices)
    frames: dict[int, torch.Tensor] = {}
    try:
        with imageio.get_reader(str(path), format="ffmpeg") as r:
            for i, arr in enumerate(r):
                if want is None or i in want:
                    a = np.asarray(arr)
                    if a.ndim == 2:
                        a = np.repeat(a[..., None], 3, axis=2)
                    frames[i] = torch.from_numpy(a[..., :3].copy()).permute(2, 0, 1).float() / 255.0
                if want is not None and len(frames) == len(want):
                    break
    except Exception as exc:
        raise FormatError(f"cannot read video {path}: {exc}") from exc
    order = sorted(frames) if indices is None else list(indices)
    missing = [i for i in order if i not in frames]
    if missing or not order:
        raise FormatError(f"{path}: video has no frame(s) {missing[:5] or 'at all'}")
    return stack_frames([frames[i] for i in order], str(path))


def load_frames(
    source: str | os.PathLike[str],
    num_frames: int | None = None,
    size: Size | None = None,
    sampling: Sampling = "uniform",
    crop: bool = True,
) -> tuple[torch.Tensor, list[int]]:
    """Read a folder of frames or a video.

    Args:
        source: folder of images or a video file.
        num_frames: how many frames (see :func:`pick`); None = all.
        size: optional output size; ``crop=True`` → aspect-correct resize + centre crop, else a plain resize.

    Returns:
        ``(images [V,3,H,W] in [0,1], frame indices [V])``.

    Raises:
        InputError: the source does not exist or holds no frames; FormatError: unreadable.
    """
    p = Path(source)
    if p.is_dir():
        files = list_images(p)
        if not files:
            raise InputError(f"no image files ({', '.join(sorted(IMAGE_EXTS))}) in {p}")
        idx = pick(len(files), num_frames, sampling)
        images = stack_frames([read_image(files[i]) for i in idx], str(p))
    elif p.is_file():
        if p.suffix.lower() not in VIDEO_EXTS:
            raise InputError(f"{p} is neither a folder of frames nor a video ({', '.join(sorted(VIDEO_EXTS))})")
        n = count_video_frames(p)
        if n < 1:
            raise FormatError(f"{p}: video has no frames")
        idx = pick(n, num_frames, sampling)
        images = read_video(p, idx)
    else:
        raise InputError(f"no such folder or video: {p}")
    if size is not None:
        images = (resize_center_crop(images, size) if crop else resize(images, size))[0]
    return images, idx


class FramesDataset(SceneDataset):
    """One sample per source (folder of frames or video), ``num_frames`` frames each.

    Args:
        sources: folders / videos, or a single folder whose sub-folders and videos are the sources
            (when it holds no images itself).
        num_frames: frames per sample (None = all; sources with fewer are skipped as "too short").
        size: optional output size (aspect-correct resize + centre crop).
        sampling: ``"uniform"`` (evenly spaced over the clip) or ``"first"``.
    """

    def __init__(
        self,
        sources: str | os.PathLike[str] | list[str | os.PathLike[str]],
        num_frames: int | None = None,
        size: Size | None = None,
        sampling: Sampling = "uniform",
        on_error: OnError = "next",
    ) -> None:
        super().__init__(on_error=on_error)
        if isinstance(sources, (str, os.PathLike)):
            root = Path(sources)
            if root.is_dir() and not list_images(root):
                srcs = sorted(
                    (c for c in root.iterdir() if c.is_dir() or c.suffix.lower() in VIDEO_EXTS),
                    key=lambda c: natural_key(c.name),
                )
            else:
                srcs = [root]
        else:
            srcs = [Path(s) for s in sources]
        self.num_frames, self.size, self.sampling = num_frames, size, sampling
        self.items: list[Path] = []
        for s in srcs:
            if not s.exists():
                self.skipped.add(str(s), "missing")
            else:
                self.items.append(s)

    def _name(self, index: int) -> str:
        return self.items[index].name

    def _load(self, index: int) -> dict[str, Any]:
        src = self.items[index]
        try:
            images, idx = load_frames(src, self.num_frames, self.size, self.sampling)
        except FormatError:
            raise
        except InputError as exc:  # too few frames, an empty folder
            raise SkipScene("unusable", str(exc)) from exc
        return {"images": images, "cameras": None, "scene": src.stem if src.is_file() else src.name,
                "frame_ids": torch.tensor(idx)}  # fmt: skip
