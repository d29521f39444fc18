"""A streaming torch ``Dataset`` of world scenes, made on the fly (no files)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from vist3a.errors import InputError
from vist3a.world.sample import make_sample, scene_seed
from vist3a.world.trajectory import MOTIONS


def parse_motions(motion: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"pan,truck"`` / ``["pan", "truck"]`` / ``None`` → the validated motion names (``()``: no restriction)."""
    if motion is None:
        return ()
    names = [m.strip() for m in motion.split(",")] if isinstance(motion, str) else [str(m) for m in motion]
    names = [m for m in names if m]
    bad = [m for m in names if m not in MOTIONS]
    if bad or not names:
        raise InputError(f"unknown camera motion(s) {bad or motion!r}; choose from {', '.join(MOTIONS)}")
    return tuple(names)


class WorldDataset(Dataset):
    """Scene ``i`` of the set drawn with ``seed``, rendered on ``device`` when indexed.

    Deterministic per (index, seed): no global RNG is touched, so it works unchanged with DataLoader
    workers and ``DistributedSampler`` (a map-style dataset with a length). Rendering on CUDA inside
    forked DataLoader workers is not possible; use ``num_workers=0`` (or the "spawn" start method)
    with ``device="cuda"``.

    Args:
        length: number of scenes.
        seed: the set's seed.
        frames: views per scene (T).
        size: image size (square).
        device: where to ray-cast ("cpu", "cuda", ...); scene sampling is always on CPU.
        max_objects: objects per scene at most.
        caption_style: a phrasing style ("short", "long", "list", "camera") or None to pick one per
            index (deterministically).
        shadows: cast shadows.
        motion: restrict the camera motions (``vist3a.world.trajectory.MOTIONS``): one name for every scene,
            or several (a sequence or a comma-separated string), one of them per scene, chosen from its
            index; None: drawn from the world's own motion mix.

    Items are dicts:
        ``images [T,3,H,W]`` float in [0,1]; ``depth [T,H,W]`` z-depth (0 = sky); ``ids [T,H,W]`` int64
        (-1 sky, 0 floor, k+1 object k); ``c2w [T,4,4]`` (OpenCV, camera-to-world); ``K [T,3,3]`` pixel
        intrinsics; ``caption`` str; ``structured`` str (JSON of the structured caption); ``index`` int.
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        frames: int = 13,
        size: int = 256,
        device: str | torch.device = "cpu",
        max_objects: int = 4,
        caption_style: str | None = None,
        shadows: bool = True,
        motion: str | Sequence[str] | None = None,
    ) -> None:
        if length < 1:
            raise InputError(f"WorldDataset needs length >= 1, got {length}")
        if caption_style not in (None, "short", "long", "list", "camera"):
            raise InputError(f"unknown caption style {caption_style!r}; use short, long, list, camera or None")
        self.length, self.seed, self.frames, self.size = length, seed, frames, size
        self.device = torch.device(device)
        self.max_objects, self.caption_style, self.shadows = max_objects, caption_style, shadows
        self.motions = parse_motions(motion)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not -self.length <= index < self.length:
            raise IndexError(f"WorldDataset index {index} out of range for length {self.length}")
        index = index % self.length
        motion = None
        if self.motions:  # a fixed choice per index, independent of the scene's own draws
            motion = self.motions[scene_seed(self.seed + 2, index) % len(self.motions)]
        sample = make_sample(index, self.seed, self.frames, self.size, self.max_objects, motion)
        render = sample.render(self.device, shadows=self.shadows)
        styles = sorted(sample.texts)
        style = self.caption_style or styles[scene_seed(self.seed + 1, index) % len(styles)]
        cams = sample.cameras
        return {
            "images": render.rgb,
            "depth": render.depth,
            "ids": render.ids,
            "c2w": cams.c2w.to(self.device),
            "K": cams.K.to(self.device),
            "caption": sample.texts.get(style, sample.texts["long"]),
            "structured": sample.caption.to_json(),
            "index": index,
        }
