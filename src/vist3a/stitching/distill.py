"""Self-distillation of the stitched decoder (paper step 2, METHOD.md §3.2).

The frozen *teacher* is the original reconstruction network run on the RGB frames (voxelisation
off); the *student* is the :class:`~vist3a.stitching.stitched.StitchedDecoder` run on the video
latent of the same frames. Every term is an L1 distance between the two, weighted as the paper and
the official ``TaskLossAnySplat`` do. There is no rendering loss and no ground truth.

An optional per-pixel weight (``pixel_weight``; ``stitch train --object-weight``) turns the pixel-aligned terms into
weighted means. A plain mean learns mostly the floor when the objects cover a few per cent of a frame, as in the mini
model's world; this is not in the paper.

``official_quirk=True`` reproduces the official depth "gradient" loss, which was written for
``[B, H, W, C]`` maps but is fed ``[B, V, H, W, 1]`` depth, so its two "gradients" run along the
*frame* and *height* axes and its multi-scale slicing subsamples frames and rows. The default takes
the gradients along the image axes H and W, as intended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.models.anysplat import AnySplatOutput
from vist3a.world.judge import object_weights

#: the order of the loss terms in logs and in the returned dict
TERMS = (
    "depth", "depth_grad", "means", "covariances", "harmonics", "opacities", "scales", "rotations",
    "gs_conf", "depth_conf", "anchor", "extrinsic", "intrinsic", "pose_enc",
)  # fmt: skip


@dataclass(frozen=True)
class DistillWeights:
    """Weights of the L1 terms (defaults: the paper's AnySplat weights = the official code's).

    Attributes:
        depth: depth maps. depth_grad: multi-scale depth-gradient term (4 scales).
        means, covariances, harmonics, opacities, scales, rotations: the pixel-aligned Gaussians.
        gs_conf: Gaussian-head confidence (raw logit). depth_conf: depth confidence.
        anchor: raw Gaussian-head features (the head output without its confidence channel).
        extrinsic: 4×4 context camera-to-world. intrinsic: intrinsics normalised by W, H.
        pose_enc: the camera head's pose encodings, averaged over its refinement iterations.
    """

    depth: float = 1.0
    depth_grad: float = 0.005
    means: float = 1.0
    covariances: float = 1.0
    harmonics: float = 1.0
    opacities: float = 1.0
    scales: float = 10.0
    rotations: float = 1.0
    gs_conf: float = 0.01
    depth_conf: float = 0.01
    anchor: float = 0.1
    extrinsic: float = 1.0
    intrinsic: float = 1.0
    pose_enc: float = 1.0

    def with_overrides(self, items: list[str] | tuple[str, ...]) -> DistillWeights:
        """A copy with ``TERM=VALUE`` items applied (``stitch train --loss-weight depth_grad=0.05``)."""
        new: dict[str, float] = {}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in TERMS:
                raise InputError(f"--loss-weight expects TERM=VALUE with TERM one of {', '.join(TERMS)}; got {item!r}")
            try:
                v = float(value)
            except ValueError:
                raise InputError(f"--loss-weight {key}: {value!r} is not a number") from None
            if not math.isfinite(v) or v < 0:
                raise InputError(f"--loss-weight {key}: must be a finite number >= 0, got {value}")
            new[key] = v
        return replace(self, **new)


@dataclass
class DistillTargets:
    """The outputs both networks are compared on (B scenes, V views, H×W pixels, G = V·H·W Gaussians).

    Attributes:
        depth: ``[B, V, H, W, 1]``. depth_conf: ``[B, V, H, W]``.
        means ``[B, G, 3]``, covariances ``[B, G, 3, 3]``, harmonics ``[B, G, 3, K]``, opacities ``[B, G]``,
        scales ``[B, G, 3]``, rotations ``[B, G, 4]``: AnySplat-layout Gaussians (no voxelisation).
        anchor: ``[B, V, C-1, H, W]`` raw Gaussian-head features. gs_conf: ``[B, V, H, W]`` its confidence.
        extrinsic: ``[B, V, 4, 4]`` c2w. intrinsic: ``[B, V, 3, 3]`` normalised K.
        pose_enc: list of ``[B, V, 9]``, one per camera-head iteration.
    """

    depth: torch.Tensor
    depth_conf: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    harmonics: torch.Tensor
    opacities: torch.Tensor
    scales: torch.Tensor
    rotations: torch.Tensor
    anchor: torch.Tensor
    gs_conf: torch.Tensor
    extrinsic: torch.Tensor
    intrinsic: torch.Tensor
    pose_enc: list[torch.Tensor]

    @classmethod
    def from_output(cls, out: AnySplatOutput) -> DistillTargets:
        """Collect the compared tensors of one forward (run with ``voxelize=False``)."""
        if out.pixel_to_voxel is not None:
            raise InputError("distillation compares pixel-aligned Gaussians: run both networks with voxelize=False")

        def cat(name: str) -> torch.Tensor:
            return torch.cat([getattr(s, name) for s in out.splats], dim=0)

        return cls(
            depth=out.depth,
            depth_conf=out.depth_conf,
            means=cat("means"),
            covariances=cat("covariances"),
            harmonics=cat("harmonics"),
            opacities=cat("opacities"),
            scales=cat("scales"),
            rotations=cat("rotations"),
            anchor=out.gs_raw[:, :, :-1],
            gs_conf=out.gs_raw[:, :, -1],
            extrinsic=out.c2w,
            intrinsic=out.K_normalized,
            pose_enc=list(out.pose_enc_list),
        )

    def detach(self) -> DistillTargets:
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return DistillTargets(**{
            k: ([t.detach() for t in v] if isinstance(v, list) else v.detach()) for k, v in kw.items()
        })  # fmt: skip


def _gradient_l1(diff: torch.Tensor) -> torch.Tensor:
    """Sum of |finite differences| of ``diff [N, A, B, ...]`` along axes 1 and 2 (each clamped at 100),
    divided by ``N·A·B`` (the official ``gradient_loss`` normalisation)."""
    g2 = (diff[:, :, 1:] - diff[:, :, :-1]).abs().clamp(max=100)
    g1 = (diff[:, 1:] - diff[:, :-1]).abs().clamp(max=100)
    return (g1.sum() + g2.sum()) / (diff.shape[0] * diff.shape[1] * diff.shape[2])


def depth_gradient_loss(
    pred: torch.Tensor, target: torch.Tensor, scales: int = 4, official_quirk: bool = False
) -> torch.Tensor:
    """Multi-scale L1 on the gradients of ``pred - target`` (unweighted).

    Args:
        pred, target: depth ``[B, V, H, W, 1]``.
        scales: scale s subsamples the two gradient axes by ``2**s``; the result is the mean over scales.
        official_quirk: take the "gradients" along (frames, height) as the official code does;
            the default takes them along (height, width) of every view.

    Returns:
        a scalar: ``mean_s  Σ(|∂₁ d_s| + |∂₂ d_s|) / (N·A_s·B_s)`` with ``d = pred - target`` viewed as
        ``[N=B·V, A=H, B=W, 1]`` (default) or ``[N=B, A=V, B=H, W]`` (official quirk).
    """
    if pred.shape != target.shape or pred.ndim != 5:
        raise InputError(f"depth must be [B, V, H, W, 1] for both, got {list(pred.shape)} / {list(target.shape)}")
    diff = pred.float() - target.float()
    if not official_quirk:
        diff = diff.flatten(0, 1)  # B·V, H, W, 1: axes 1, 2 are the image axes
    total = diff.new_zeros(())
    for s in range(scales):
        step = 2**s
        total = total + _gradient_l1(diff[:, ::step, ::step])
    return total / scales


#: the pixel-aligned terms: the Gaussians ``[B, G, ...]`` (G = V·H·W in (view, row, column) order) and the maps
_GAUSSIAN_TERMS = ("means", "covariances", "harmonics", "opacities", "scales", "rotations")
_PIXEL_TERMS = (*_GAUSSIAN_TERMS, "depth", "depth_conf", "gs_conf", "anchor")


def _pixel_weight_as(pw: torch.Tensor, name: str, like: torch.Tensor) -> torch.Tensor:
    """``pw [B, V, H, W]`` broadcast to the term ``name`` of shape ``like`` (anchor: ``[B, V, C, H, W]``; depth:
    ``[B, V, H, W, 1]``; the Gaussians: ``[B, G, ...]``)."""
    if name in _GAUSSIAN_TERMS:
        pw = pw.flatten(1)
        if like.shape[1] != pw.shape[1]:  # voxelised Gaussians are no longer one per pixel
            raise InputError(
                f"pixel_weight needs one Gaussian per pixel ({pw.shape[1]}, voxelize=False), got {like.shape[1]}"
            )
    elif name == "anchor":
        pw = pw[:, :, None]
    return pw.reshape(*pw.shape, *[1] * (like.ndim - pw.ndim)).expand_as(like)


def distillation_loss(
    student: DistillTargets,
    teacher: DistillTargets,
    weights: DistillWeights | None = None,
    official_quirk: bool = False,
    pixel_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted L1 terms between student and teacher (computed in float32).

    Args:
        pixel_weight: optional ``[B, V, H, W]`` weights >= 0 of the teacher's pixels: the pixel-aligned terms (depth,
            the Gaussians, the confidences, the head features) become weighted means ``Σ w·|s−t| / Σ w``; the
            camera terms and the depth-gradient term stay plain. All ones gives the plain loss.

    Returns:
        ``{term: weight · L1}`` for every name in :data:`TERMS`, plus ``"total"`` (their sum).
    """
    w = weights or DistillWeights()
    if pixel_weight is not None and pixel_weight.shape != student.depth_conf.shape:
        raise InputError(
            f"pixel_weight must be [B, V, H, W] = {list(student.depth_conf.shape)}, got {list(pixel_weight.shape)}"
        )

    def l1(a: torch.Tensor, b: torch.Tensor, name: str) -> torch.Tensor:
        if a.shape != b.shape:
            raise InputError(f"student and teacher {name} differ in shape: {list(a.shape)} vs {list(b.shape)}")
        if pixel_weight is None or name not in _PIXEL_TERMS:
            return F.l1_loss(a.float(), b.float())
        pw = _pixel_weight_as(pixel_weight.float(), name, a)
        return (pw * (a.float() - b.float()).abs()).sum() / pw.sum().clamp_min(1e-12)

    if len(student.pose_enc) != len(teacher.pose_enc) or not student.pose_enc:
        raise InputError("student and teacher must give the same (non-zero) number of pose encodings")
    terms: dict[str, torch.Tensor] = {}
    for name in ("depth", "means", "covariances", "harmonics", "opacities", "scales", "rotations",
                 "gs_conf", "depth_conf", "anchor", "extrinsic", "intrinsic"):
        terms[name] = getattr(w, name) * l1(getattr(student, name), getattr(teacher, name), name)
    terms["depth_grad"] = w.depth_grad * depth_gradient_loss(student.depth, teacher.depth, 4, official_quirk)
    pose = sum(l1(a, b, "pose_enc") for a, b in zip(student.pose_enc, teacher.pose_enc, strict=True))
    terms["pose_enc"] = w.pose_enc * pose / len(student.pose_enc)
    out = {name: terms[name] for name in TERMS}
    out["total"] = torch.stack(list(out.values())).sum()
    return out


@torch.no_grad()
def teacher_targets(teacher: torch.nn.Module, images: torch.Tensor) -> DistillTargets:
    """Run the frozen reconstruction network on ``images [B, V, 3, H, W]`` in [0, 1] (voxelisation off)."""
    return DistillTargets.from_output(teacher(images, voxelize=False)).detach()


def object_pixel_weight(images: torch.Tensor, object_weight: float) -> torch.Tensor | None:
    """``images [B, V, 3, H, W]`` in [0, 1] → ``[B, V, H, W]`` weights: ``object_weight`` on object pixels (the
    world judge's saturated pixels), 1 elsewhere; None when ``object_weight`` is 1 (the plain loss)."""
    w = object_weights(images, object_weight)
    return None if w is None else w[:, :, 0]
