"""Multi-view consistency of a generated scene (issue 10; the quantity the 3D-consistency reward
optimises, paper Sec. 3.2): PSNR between the decoded video frames and renders of the scene's 3D
Gaussians at the cameras the stitched decoder predicted for those frames.

A video whose frames agree with one 3D scene is reconstructed into Gaussians that re-render those
frames; frames that contradict each other (objects that move, change or vanish) cannot all be
explained by one set of Gaussians, so their renders differ from them and the PSNR drops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.eval.metrics import psnr
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.render import render

#: Frames scored per scene (evenly spaced, first and last included): 4 renders keep the CPU cost ~1 s.
NUM_FRAMES = 4


def frame_indices(t: int, n: int = NUM_FRAMES) -> list[int]:
    """``n`` evenly spaced indices of ``t`` frames, first and last included (all when ``n <= 0`` or ``n >= t``);
    also the mini recon stage's choice of context views (:func:`vist3a.train.mini_recon.context_views`)."""
    if t < 1:
        raise InputError("no frames to score")
    if n <= 0 or n >= t:
        return list(range(t))
    return sorted({int(round(x)) for x in torch.linspace(0, t - 1, n).tolist()})


def consistency_views(
    gaussians,
    cameras: Cameras,
    frames: torch.Tensor,
    n: int = NUM_FRAMES,
    backend: str = "auto",
) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The views :func:`multiview_consistency` compares: ``(indices, renders [V,3,h,w], frames [V,3,h,w])`` in
    [0, 1] at the cameras' size (also what best-of-N's caption rewards read, :mod:`vist3a.pipelines.selection`)."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise InputError(f"frames must be [T,3,H,W], got {list(frames.shape)}")
    if len(cameras) != frames.shape[0]:
        raise InputError(f"{len(cameras)} cameras for {frames.shape[0]} frames")
    if not torch.isfinite(frames).all():
        raise InputError("frames contain non-finite values")
    idx = frame_indices(frames.shape[0], n)
    dev = gaussians.means.device
    target = F.interpolate(frames[idx].float(), size=(cameras.height, cameras.width), mode="bilinear",
                           align_corners=False).clamp(0, 1).to(dev)  # fmt: skip
    # near/far as the alignment trainer renders its consistency reward
    with torch.no_grad():
        out = render(gaussians, cameras[torch.tensor(idx)].to(dev), backend=backend, near_plane=0.1, far_plane=100.0)
    return idx, out.rgb.clamp(0, 1), target


def multiview_consistency(
    gaussians,
    cameras: Cameras,
    frames: torch.Tensor,
    n: int = NUM_FRAMES,
    backend: str = "auto",
) -> dict[str, list[float] | list[int]]:
    """PSNR (dB) of renders at the predicted cameras against the decoded frames.

    Args:
        gaussians: the scene (activated Gaussians, the pipeline's ``result.gaussians``).
        cameras: the ``T`` predicted cameras, sized at the reconstruction input (``result.cameras``).
        frames: the decoded video ``[T, 3, H, W]`` in [0, 1] at the video size; resized to the cameras'
            size as the pipeline resized them for the stitched decoder (bilinear).
        n: frames scored (evenly spaced; ``0`` = all).

    Returns:
        ``{"frames": [i, ...], "psnr": [dB, ...], "l1": [mean |error|, ...]}``.
    """
    return consistency_scores(*consistency_views(gaussians, cameras, frames, n, backend))


def consistency_scores(idx: list[int], rend: torch.Tensor, target: torch.Tensor) -> dict[str, list[float] | list[int]]:
    """:func:`multiview_consistency`'s record of views made by :func:`consistency_views`."""
    l1 = (rend - target).abs().mean(dim=(1, 2, 3))
    return {"frames": idx, "psnr": [round(float(v), 4) for v in psnr(rend, target)],
            "l1": [round(float(v), 6) for v in l1]}  # fmt: skip
