"""Lift a video into 3D through the stitched decoder: frames → VAE latent → Gaussians and cameras.

This is the stitched "3D VAE" used as a reconstruction model (the paper's NVS setting): the video
is cropped to the VAE's square size, cut to a frame count the causal VAE accepts (1+4k), encoded,
and decoded by the stitched decoder; the Gaussian head's RGB shortcut sees the same frames resized
to the reconstruction size. Every change made to the input (frame count, crop) is reported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.models.anysplat import Reconstruction

log = logging.getLogger(__name__)


@dataclass
class LiftInput:
    """Frames ready for the VAE: ``video [1, 3, T, S, S]`` in [-1, 1], ``images [1, T, 3, R, R]`` in [0, 1].

    ``notes`` says what was done to the source (frame selection, resize/crop), for the user.
    """

    video: torch.Tensor
    images: torch.Tensor
    indices: list[int]
    notes: list[str] = field(default_factory=list)


def frame_count_for(available: int, wanted: int | None, time_factor: int = 4) -> int:
    """The frame count to use: ``wanted`` (must be 1 + k·time_factor and <= available), or by default
    the largest 1 + k·time_factor <= ``available``."""
    if available < 1:
        raise InputError("the source has no frames")
    if wanted is not None:
        if wanted < 1 or (wanted - 1) % time_factor:
            lo = max(1, (wanted - 1) // time_factor * time_factor + 1)
            raise InputError(
                f"--frames {wanted} is not 1+{time_factor}k (the VAE's causal frame count); try {lo} or {lo + time_factor}"
            )
        if wanted > available:
            raise InputError(f"--frames {wanted} but the source has only {available} frames")
        return wanted
    return (available - 1) // time_factor * time_factor + 1


def prepare_frames(
    source: str | os.PathLike[str],
    vae_size: int,
    recon_size: int,
    frames: int | None = None,
    max_frames: int | None = None,
    sampling: str = "uniform",
    time_factor: int = 4,
) -> LiftInput:
    """Read a video or frame folder and make it VAE- and decoder-ready.

    Args:
        source: video file or folder of images.
        vae_size: square side for the VAE (resize so the frame covers it, centre crop).
        recon_size: side of the RGB frames for the Gaussian head (the same crop, resized).
        frames: frame count to use (1+4k); default: ``max_frames`` if given, else as many as the
            source allows, rounded down to 1+4k.
        max_frames: cap for the default (e.g. the decoder's native count, 13 for the official one).
        sampling: ``"uniform"`` (evenly spaced, both ends kept) or ``"first"``.
    """
    from vist3a.data.frames import count_video_frames, list_images, load_frames
    from vist3a.data.transforms import resize_center_crop

    p = Path(source)
    if p.is_dir():
        n = len(list_images(p))
        if n == 0:
            raise InputError(f"no image files in {p}")
    elif p.is_file():
        n = count_video_frames(p)
    else:
        raise InputError(f"no such video or frame folder: {p}")
    notes = []
    want = frames
    if want is None:
        want = frame_count_for(min(n, max_frames) if max_frames else n, None, time_factor)
    count = frame_count_for(n, want, time_factor)
    if count != n:
        how = "evenly spaced" if sampling == "uniform" else "the first"
        notes.append(f"the source has {n} frames; using {count} ({how}; the VAE needs 1+{time_factor}k frames)")
    else:
        notes.append(f"using all {n} frames")
    raw, idx = load_frames(p, count, None, sampling=sampling)  # [T, 3, H, W] in [0, 1]
    h, w = raw.shape[-2:]
    crop, _ = resize_center_crop(raw, vae_size)
    if (h, w) != (vae_size, vae_size):
        notes.append(f"resized {w}x{h} to cover {vae_size}x{vae_size} and centre-cropped (VAE input)")
    rec = F.interpolate(crop, size=(recon_size, recon_size), mode="bilinear", antialias=True).clamp(0, 1)
    notes.append(f"the Gaussian head sees the same crop at {recon_size}x{recon_size}")
    video = (crop.clamp(0, 1) * 2 - 1).permute(1, 0, 2, 3)[None]  # 1, 3, T, S, S
    return LiftInput(video=video, images=rec[None], indices=list(idx), notes=notes)


@torch.no_grad()
def lift(
    inp: LiftInput,
    video_model: Any,
    decoder: Any,
    sample: bool = False,
    seed: int = 0,
    camera_guard_deg: float | None = None,
) -> Reconstruction:
    """Encode ``inp.video`` with the video VAE (posterior mean unless ``sample``) and decode it with the
    stitched decoder. Returns Gaussians and the predicted cameras (at the reconstruction size).

    ``camera_guard_deg``: cameras that turn more than this between neighbouring frames are replaced by the
    first camera, with a warning (``vist3a.models.camera_guard``; ``Reconstruction.guarded`` says so); None = off.
    """
    dev = decoder.stitching_layer.weight.device
    g = torch.Generator(device=dev).manual_seed(seed) if sample else None
    latent = video_model.encode(inp.video.to(dev), sample=sample, generator=g)
    log.info("latent %s -> stitched decoder", list(latent.shape))
    return decoder.reconstruct(latent, inp.images, camera_guard_deg=camera_guard_deg)
