"""Writing rendered frames: ``.mp4`` (H.264 through imageio-ffmpeg), ``.gif``, or a folder of PNGs.

Every output appears whole or not at all: files go to a temporary name beside the target and are
renamed onto it; PNG folders are written into a temporary folder that is renamed into place.

Frames are either a float tensor/array ``[T,3,H,W]`` in [0,1] (clamped, rounded to 8 bits) or a
``uint8`` array ``[T,H,W,3]`` (imageio's layout; ``[T,3,H,W]`` is accepted when the last axis is
not 3).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import torch

from vist3a.errors import InputError
from vist3a.io_utils import atomic_path

VIDEO_SUFFIXES = (".mp4", ".gif")
FRAME_PATTERN = "frame_{:05d}.png"


def output_kind(path: str | os.PathLike[str]) -> str:
    """``"mp4"``, ``"gif"`` or ``"frames"`` (a folder: no suffix, a trailing slash, or an existing folder)."""
    text = os.fspath(path)
    p = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or p.is_dir() or p.suffix == "":
        return "frames"
    suffix = p.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return suffix[1:]
    raise InputError(
        f"cannot write video to {p}: unknown suffix {p.suffix!r}; use .mp4, .gif or a folder path for PNG frames"
    )


def to_uint8_frames(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """Frames → ``uint8 [T,H,W,3]`` (see the module docstring for accepted inputs)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().to("cpu")
        if frames.dtype != torch.uint8:
            frames = (frames.float().clamp(0, 1) * 255).round().to(torch.uint8)
        frames = frames.numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise InputError(f"frames must be [T,3,H,W] (or uint8 [T,H,W,3]), got shape {list(frames.shape)}")
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.floating):
            raise InputError(f"frames must be float in [0,1] or uint8, got dtype {frames.dtype}")
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    if frames.shape[-1] != 3:
        if frames.shape[1] != 3:
            raise InputError(f"frames need 3 colour channels, got shape {list(frames.shape)}")
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[0] == 0:
        raise InputError("no frames to write")
    return np.ascontiguousarray(frames)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """H.264 with yuv420p needs even sizes: repeat the last row/column where needed."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VideoWriter:
    """Stream frames to ``path`` (``.mp4``, ``.gif`` or a folder); atomic; use as a context manager.

    Example::

        with VideoWriter("orbit.mp4", fps=24) as w:
            for frame in frames:      # [3,H,W] float in [0,1] or uint8 [H,W,3]
                w.append(frame)
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 24.0, quality: int = 8) -> None:
        if fps <= 0:
            raise InputError(f"fps must be positive, got {fps}")
        self.path = Path(os.fspath(path)).expanduser()
        self.kind = output_kind(path)
        self.fps = float(fps)
        self.quality = quality
        self.count = 0
        self._writer = None
        self._gif_frames: list[np.ndarray] = []
        self._ctx = None
        self._tmp: Path | None = None
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"output folder does not exist: {parent}")
        if self.kind == "frames" and self.path.exists():
            if not self.path.is_dir():
                raise InputError(f"{self.path} exists and is not a folder")
            others = [p.name for p in self.path.iterdir() if not (p.name.startswith("frame_") and p.suffix == ".png")]
            if others:
                raise InputError(
                    f"{self.path} already holds other files ({', '.join(sorted(others)[:3])}); "
                    "choose a new or empty folder for PNG frames"
                )

    def __enter__(self) -> VideoWriter:
        if self.kind == "frames":
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        else:
            self._ctx = atomic_path(self.path)
            self._tmp = self._ctx.__enter__()
            if self.kind == "mp4":
                import imageio.v2 as iio

                self._writer = iio.get_writer(
                    self._tmp, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                    pixelformat="yuv420p", quality=self.quality, macro_block_size=1,
                )  # fmt: skip
        return self

    def append(self, frame: torch.Tensor | np.ndarray) -> None:
        """Add one frame: ``[3,H,W]`` float in [0,1] or ``uint8 [H,W,3]``."""
        if self._tmp is None:
            raise RuntimeError("VideoWriter.append outside its `with` block")
        img = to_uint8_frames(frame[None])[0]
        if self.count == 0:
            self._size = img.shape[:2]
        elif img.shape[:2] != self._size:
            raise InputError(f"frame {self.count} is {img.shape[1]}x{img.shape[0]}, earlier ones {self._size[1]}x{self._size[0]}")
        if self.kind == "mp4":
            self._writer.append_data(_pad_even(img))
        elif self.kind == "gif":
            self._gif_frames.append(img)
        else:
            from PIL import Image

            Image.fromarray(img).save(self._tmp / FRAME_PATTERN.format(self.count))
        self.count += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        error: BaseException | None = None
        try:
            if exc_type is None:
                if self.count == 0:
                    raise InputError("no frames to write")
                self._finalize()
        except BaseException as e:  # noqa: BLE001 - re-raised below after cleaning up
            error = e
        if self._writer is not None:  # failed before the writer was closed: stop ffmpeg
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the output is discarded anyway
                pass
            self._writer = None
        ok = exc_type is None and error is None
        if self.kind == "frames":
            self._finish_folder(not ok)
        elif self._ctx is not None:
            if ok:
                self._ctx.__exit__(None, None, None)
            else:
                self._ctx.__exit__(RuntimeError, RuntimeError("write failed"), None)
        if error is not None:
            raise error

    def _finalize(self) -> None:
        if self.kind == "mp4":
            writer, self._writer = self._writer, None
            writer.close()
        elif self.kind == "gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in self._gif_frames]
            duration = max(20, round(1000.0 / self.fps / 10) * 10)  # GIF delays are in 10 ms steps
            images[0].save(self._tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)

    def _finish_folder(self, failed: bool) -> None:
        assert self._tmp is not None
        if failed:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        old = None
        if self.path.exists():  # a previous render: swap it out, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=self.path.parent))
            os.replace(self.path, old / "frames")
        os.replace(self._tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_video(frames: torch.Tensor | np.ndarray, path: str | os.PathLike[str], fps: float = 24.0) -> Path:
    """Write frames (``[T,3,H,W]`` in [0,1] or ``uint8 [T,H,W,3]``) to ``.mp4``, ``.gif`` or a PNG folder.

    ``.mp4``: H.264 (libx264), yuv420p; odd sizes are padded to even by repeating the last row/column.
    ``.gif``: looping, frame delay ``1/fps`` rounded to 10 ms (Pillow merges identical consecutive
    frames into one with the summed delay, so playback time is kept). Folder: ``frame_00000.png``, …
    Returns the written path.
    """
    data = to_uint8_frames(frames)
    with VideoWriter(path, fps=fps) as writer:
        for frame in data:
            writer.append(frame)
    return writer.path
