"""Captioned DL3DV clips (the text–video pairs of the video model's SFT loss, METHOD §4.1).

Caption file (``dl3dv_text_label_980P.json`` in the official code; its structure is implied by the
loader)::

    [{"scene_name": "<DL3DV scene id>",
      "caption": {"<anything>_<start>_<end>": "a text", ...}}, ...]

Each caption key ends in the inclusive frame-number range ``_<start>_<end>`` of the clip it describes
(frame numbers of ``frame_<n>.png``). Every ``(scene, key)`` pair is one sample here (the official loader
draws one key per scene at random instead).

Frame choice (both protocols, as the official loader): a range with more than ``num_frames`` frames
gives its first, its last and ``num_frames − 2`` random interior frames (sorted); a shorter range is
padded by repeating its last frame. Preprocessing: ``"official"`` squashes each frame to ``size × size``
(no aspect preservation, 16:9 → 1:1); ``"default"`` resizes aspect-correctly and centre-crops.
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

from vist3a.data import OnError, Protocol, SceneDataset, SkipScene, check_protocol
from vist3a.data.dl3dv import find_dl3dv_scenes, list_frames, scene_cameras
from vist3a.data.transforms import Size, read_image, resize, resize_center_crop, stack_frames
from vist3a.errors import FormatError, InputError
from vist3a.gaussians.cameras import Cameras

log = logging.getLogger(__name__)

KEY_RANGE = re.compile(r"_(\d+)_(\d+)$")


@dataclass(frozen=True)
class CaptionClip:
    """One captioned clip: frames ``start..end`` (inclusive frame numbers) of ``scene``."""

    scene: str
    key: str
    start: int
    end: int
    text: str


def read_dl3dv_captions(source: str | os.PathLike[str] | list) -> tuple[list[CaptionClip], list[str]]:
    """Parse the caption JSON.

    Returns:
        ``(clips, bad_keys)``: the well-formed clips, and ``"scene/key"`` of keys without a
        ``_<start>_<end>`` suffix, with ``start > end`` or with a non-string text (skipped).

    Raises:
        InputError: unreadable file; FormatError: not a list of ``{"scene_name", "caption"}`` objects.
    """
    if isinstance(source, list):
        data, where = source, "captions"
    else:
        p = Path(source)
        where = str(p)
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the caption file {p}: {exc}") from exc
    if not isinstance(data, list):
        raise FormatError(f"{where}: expected a JSON list of {{'scene_name', 'caption'}} objects")
    clips, bad = [], []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("scene_name"), str) or not isinstance(entry.get("caption"), dict):
            raise FormatError(f"{where}: entry {i} needs a string 'scene_name' and a 'caption' object")
        scene = entry["scene_name"]
        for key, text in entry["caption"].items():
            m = KEY_RANGE.search(str(key))
            if m is None or not isinstance(text, str) or int(m.group(1)) > int(m.group(2)):
                bad.append(f"{scene}/{key}")
                continue
            clips.append(CaptionClip(scene, str(key), int(m.group(1)), int(m.group(2)), text))
    return clips, bad


def choose_frames(n_available: int, num_frames: int, generator: torch.Generator | None) -> list[int]:
    """Positions within a clip: first, last and random interior ones (sorted), or all padded with the last."""
    if n_available < 1:
        raise SkipScene("empty range")
    if num_frames >= n_available:
        return list(range(n_available)) + [n_available - 1] * (num_frames - n_available)
    if num_frames == 1:
        return [0]
    inner = (torch.randperm(n_available - 2, generator=generator)[: num_frames - 2] + 1).tolist()
    return sorted([0, *inner, n_available - 1])


class DL3DVCaptionDataset(SceneDataset):
    """Captioned DL3DV clips → ``{"images" [n,3,S,S], "text", "scene", "caption_key", "frame_ids", "cameras"}``.

    Args:
        root: DL3DV root (as :class:`vist3a.data.dl3dv.DL3DVDataset`).
        captions: the caption JSON (path or parsed list).
        num_frames: frames per sample (13 = 1 + 4·3 for the Wan VAE).
        size: output size (512).
        protocol: ``"default"`` (aspect-correct crop) or ``"official"`` (squash to ``size × size``).

    Clips of scenes absent from ``root`` are counted as "missing"; malformed keys as "bad caption key".
    ``cameras`` come from the scene's ``transforms.json`` when present (else None).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        captions: str | os.PathLike[str] | list,
        num_frames: int = 13,
        size: Size = 512,
        protocol: Protocol = "default",
        image_dir: str = "images_4",
        seed: int | None = None,
        on_error: OnError = "next",
    ) -> None:
        super().__init__(on_error=on_error, seed=seed)
        if num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames, self.size = int(num_frames), size
        self.protocol = check_protocol(protocol)
        self.image_dir = image_dir
        clips, bad = read_dl3dv_captions(captions)
        for b in bad:
            self.skipped.add(b, "bad caption key")
        scenes = find_dl3dv_scenes(root, image_dir)
        self.items: list[tuple[CaptionClip, Path]] = []
        for c in clips:
            if c.scene not in scenes:
                self.skipped.add(c.scene, "missing")
                continue
            self.items.append((c, scenes[c.scene]))
        log.info("DL3DV captions: %d clips (%s)", len(self.items), self.skipped)

    def _name(self, index: int) -> str:
        c = self.items[index][0]
        return f"{c.scene}/{c.key}"

    def _load(self, index: int) -> dict[str, Any]:
        clip, scene_dir = self.items[index]
        frames = [(n, p) for n, p in list_frames(scene_dir / self.image_dir) if clip.start <= n <= clip.end]
        if not frames:
            raise SkipScene("empty range", f"no frames {clip.start}..{clip.end}")
        pos = choose_frames(len(frames), self.num_frames, self.generator(index))
        cache: dict[int, torch.Tensor] = {}
        for i in set(pos):
            cache[i] = read_image(frames[i][1])
        images = stack_frames([cache[i] for i in pos], clip.scene)
        paths = [frames[i][1] for i in pos]
        cameras = scene_cameras(scene_dir, paths, tuple(images.shape[-2:]))
        K = cameras.K if cameras is not None else None
        if self.protocol == "official":
            images, K = resize(images, self.size, K)
        else:
            images, K = resize_center_crop(images, self.size, K)
        h, w = images.shape[-2:]
        return {
            "images": images,
            "cameras": Cameras(cameras.c2w, K, w, h) if cameras is not None and K is not None else None,
            "text": clip.text,
            "scene": clip.scene,
            "caption_key": clip.key,
            "frame_ids": torch.tensor([frames[i][0] for i in pos]),
        }
