"""Novel-view synthesis (NVS) evaluation with the AnySplat / VIST3A protocol (METHOD.md §5).

Per RealEstate10K sequence (8 context + 4 target views, METHOD §4.3):

1. **Context → Gaussians.** The context views go through the model once (run 1). Its Gaussians and
   its predicted context cameras define the evaluation frame (world = the first context camera).
2. **Target cameras** (``cameras="predicted"``, the official protocol, no ground-truth poses): the
   model runs a second time on context + targets (run 2, the *joint* pass). Both runs share the first
   context frame as the identity, so their rotations are taken as aligned and only the translation
   scale is aligned (:func:`align_translation_scale`, METHOD §5.1 step 3). The targets use run 2's
   intrinsics.
   ``cameras="gt"`` (where poses exist, e.g. the procedural world): the ground-truth target cameras
   are mapped into the predicted context frame with the similarity that best maps the ground-truth
   context cameras onto run 1's predicted ones (:func:`similarity_from_cameras`); ground-truth
   intrinsics.
3. **Render** the targets from run 1's Gaussians at the reconstructor's input size (448² official,
   224² mini), near 0.01, far 100, black background.
4. **Save** ``OUT/<seq>/{gt,pred}/00000k.png`` (the layout ``vist3a eval metrics`` reads; GT = the
   target frame at the reconstructor's input size) and score it with :func:`vist3a.eval.metrics.score_dir`.

**Stitched models** read the context through the video VAE, whose causal 4× time compression needs
``1 + 4k`` frames. The 8 context views are padded to 9 by repeating the last one (as the official
``nvs_eval.py`` does, METHOD §5.1 step 1); the Gaussians come from all 9 frames (the duplicate adds
duplicate Gaussians, as officially), the 9th predicted camera is dropped wherever cameras are
reported, but the scale alignment averages over all 9 context translations of both runs, exactly as
the official code. The joint pass is 9 + 4 = 13 frames (valid). AnySplat itself takes any number of
views, so for the plain reconstructors the context is the 8 views and the joint pass 12.

Scenes that cannot be loaded or evaluated are skipped, named and counted (:class:`NVSRun`); one bad
scene never stops a run.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from vist3a.errors import InputError, Vist3aError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians

log = logging.getLogger(__name__)

CameraMode = Literal["predicted", "gt"]
CAMERA_MODES = ("predicted", "gt")
#: CLI protocol name → the loaders' protocol name (``vist3a.data``).
PROTOCOLS = {"official": "official", "clean": "default"}
NEAR, FAR = 0.01, 100.0
RUN_JSON = "nvs_run.json"
#: Official sizes: 512² crops for the video VAE, 448² for the reconstructor (METHOD §1.3).
OFFICIAL_CROP, OFFICIAL_INPUT = 512, 448
MINI_CROP, MINI_INPUT = 256, 224

__all__ = [
    "CAMERA_MODES",
    "PROTOCOLS",
    "ContextReconstruction",
    "Similarity",
    "NVSModel",
    "AnySplatNVS",
    "StitchedNVS",
    "Predictor",
    "ModelPredictor",
    "OraclePredictor",
    "TargetPrediction",
    "NVSRun",
    "align_translation_scale",
    "similarity_from_cameras",
    "apply_similarity",
    "pad_frames_1_plus_4k",
    "crop_size_for",
    "load_re10k",
    "load_predictor",
    "run_nvs",
]


# ==================================================================================================
# Camera alignment
# ==================================================================================================
def align_translation_scale(
    ref_context_c2w: torch.Tensor, joint_context_c2w: torch.Tensor, joint_c2w: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Bring joint-pass cameras into the context-only pass's frame by a translation scale (METHOD §5.1 step 3).

    As VIST3A's ``nvs_eval.py`` and AnySplat's ``eval_nvs.py``::

        s = mean(t_ctx of run 1) / mean(t_ctx of run 2)

    where each mean is over **all translation components** (x, y and z of every context
    camera-to-world matrix, not their norms), and run 2's translations are multiplied by ``s``.
    Rotations are left as they are: both runs put the world at the first context camera, so they
    are assumed aligned. (A sign change or a near-zero mean of run 2 makes ``s`` meaningless; that is
    the official formula's weakness, reported as an error here rather than rendered.)

    Args:
        ref_context_c2w: ``[N,4,4]`` context cameras of run 1 (context only).
        joint_context_c2w: ``[N,4,4]`` the same context views' cameras from run 2 (context + targets).
        joint_c2w: ``[M,4,4]`` run-2 cameras to align (the targets, or all of run 2).

    Returns:
        ``(aligned [M,4,4], s)``.

    Raises:
        InputError: shapes disagree, or run 2's mean context translation is zero / not finite.
    """
    for name, m in (("ref_context_c2w", ref_context_c2w), ("joint_context_c2w", joint_context_c2w), ("joint_c2w", joint_c2w)):
        if m.ndim != 3 or tuple(m.shape[1:]) != (4, 4):
            raise InputError(f"align_translation_scale: {name} must be [N,4,4], got {list(m.shape)}")
    if ref_context_c2w.shape[0] != joint_context_c2w.shape[0]:
        raise InputError(
            f"align_translation_scale: {ref_context_c2w.shape[0]} reference and {joint_context_c2w.shape[0]} joint context cameras"
        )
    num = ref_context_c2w[:, :3, 3].double().mean()
    den = joint_context_c2w[:, :3, 3].double().mean()
    s = float(num / den) if float(den) != 0.0 else math.inf
    if not math.isfinite(s) or abs(float(den)) < 1e-12:
        raise InputError(f"translation-scale alignment is degenerate (mean joint context translation {float(den):.3g})")
    out = joint_c2w.clone()
    out[:, :3, 3] = out[:, :3, 3] * s
    return out, s


@dataclass(frozen=True)
class Similarity:
    """``x ↦ s·R·x + t`` (world → world)."""

    scale: float
    R: torch.Tensor  # [3,3]
    t: torch.Tensor  # [3]


def similarity_from_cameras(src_c2w: torch.Tensor, dst_c2w: torch.Tensor, eps: float = 1e-10) -> Similarity:
    """The similarity ``T`` with ``T ∘ src_i ≈ dst_i`` for N paired cameras (ground truth → predicted frame).

    A camera-to-world ``[R_i | c_i]`` maps under ``x ↦ sRx + t`` to ``[R R_i | s R c_i + t]``. The
    rotation is the chordal L2 mean of ``R_dst_i R_src_iᵀ`` (projected onto SO(3) with an SVD), so it
    is determined by the cameras' orientations even when their centres are collinear (a straight
    dolly). Given R, scale and translation are the least-squares fit of the centres:
    ``s = Σ (d_i − d̄)·R(c_i − c̄) / Σ |c_i − c̄|²``, ``t = d̄ − s R c̄``. Exact for exact data.

    Args:
        src_c2w, dst_c2w: ``[N,4,4]`` OpenCV camera-to-world, N ≥ 2.

    Raises:
        InputError: shapes disagree, or the source centres do not move (scale undefined).
    """
    if src_c2w.shape != dst_c2w.shape or src_c2w.ndim != 3 or tuple(src_c2w.shape[1:]) != (4, 4):
        raise InputError(f"similarity_from_cameras: need two [N,4,4], got {list(src_c2w.shape)} and {list(dst_c2w.shape)}")
    if src_c2w.shape[0] < 2:
        raise InputError("similarity_from_cameras: need at least 2 cameras")
    a, b = src_c2w.double(), dst_c2w.double()
    m = (b[:, :3, :3] @ a[:, :3, :3].transpose(1, 2)).sum(0)
    u, _, vh = torch.linalg.svd(m)
    d = torch.ones(3, dtype=m.dtype, device=m.device)
    d[2] = torch.sign(torch.linalg.det(u @ vh))
    rot = u @ torch.diag(d) @ vh
    cs, cd = a[:, :3, 3], b[:, :3, 3]
    ms, md = cs.mean(0), cd.mean(0)
    xs, xd = cs - ms, cd - md
    var = float((xs * xs).sum())
    if var <= eps * max(1.0, float((cs * cs).sum())):
        raise InputError("similarity_from_cameras: the source cameras do not move, the scale is undefined")
    s = float((xd * (xs @ rot.T)).sum() / var)
    if not math.isfinite(s) or s <= 0:
        raise InputError(f"similarity_from_cameras: degenerate fit (scale {s:.3g})")
    t = md - s * rot @ ms
    return Similarity(s, rot, t)


def apply_similarity(sim: Similarity, c2w: torch.Tensor) -> torch.Tensor:
    """Map camera-to-world matrices ``[N,4,4]`` through ``sim``: ``[R R_i | s R c_i + t]`` (same dtype)."""
    x = c2w.double()
    rot, t = sim.R.to(x), sim.t.to(x)
    out = x.clone()
    out[:, :3, :3] = rot @ x[:, :3, :3]
    out[:, :3, 3] = sim.scale * x[:, :3, 3] @ rot.T + t
    return out.to(c2w.dtype)


def pad_frames_1_plus_4k(frames: torch.Tensor, ratio: int = 4) -> tuple[torch.Tensor, int]:
    """Pad ``[T,...]`` to the next ``1 + ratio·k`` frames by repeating the last frame; returns (padded, added)."""
    t = frames.shape[0]
    if t < 1:
        raise InputError("no frames to pad")
    need = 1 + ratio * math.ceil((t - 1) / ratio)
    if need == t:
        return frames, 0
    extra = frames[-1:].expand(need - t, *frames.shape[1:])
    return torch.cat([frames, extra]), need - t


def crop_size_for(input_size: int) -> int:
    """The video-VAE crop of a reconstructor input: 448 → 512 and 224 → 256 (×8/7, METHOD §1.3)."""
    if input_size % 7:
        raise InputError(f"input size {input_size} is not a multiple of 7 (the crop is 8/7 of it)")
    return input_size * 8 // 7


# ==================================================================================================
# Models
# ==================================================================================================
@dataclass
class ContextReconstruction:
    """Run 1: the Gaussians and the cameras of every view the model was fed (``num_fed ≥`` context)."""

    gaussians: Gaussians
    cameras: Cameras
    num_fed: int


class NVSModel:
    """A reconstructor seen by the NVS protocol. Subclasses implement :meth:`context` and :meth:`joint`.

    Attributes:
        name: for reports.
        input_size: square side of the reconstructor's input (renders and GT have this size).
        crop_size: square side of the crop read from disk (the video VAE's input; the reconstructor's
            input is resized from it, as the official pipeline does).
    """

    name: str = "model"
    input_size: int = OFFICIAL_INPUT
    crop_size: int = OFFICIAL_CROP
    device: torch.device = torch.device("cpu")

    def context(self, crops: torch.Tensor, images: torch.Tensor) -> ContextReconstruction:
        """Run 1 on ``crops [V,3,S,S]`` / ``images [V,3,s,s]`` (the same views at crop and input size)."""
        raise NotImplementedError

    def joint(self, ctx_crops: torch.Tensor, ctx_images: torch.Tensor, tgt_crops: torch.Tensor, tgt_images: torch.Tensor) -> Cameras:
        """Run 2 on context + targets; returns the cameras of the fed context views, then the targets."""
        raise NotImplementedError


class AnySplatNVS(NVSModel):
    """AnySplat (any preset) in the protocol: 8 context views, 12 in the joint pass."""

    def __init__(self, model: Any, name: str = "anysplat", input_size: int | None = None, crop_size: int | None = None) -> None:
        self.model = model
        self.name = name
        self.input_size = int(input_size or model.config.image_size)
        self.crop_size = int(crop_size or crop_size_for(self.input_size))
        self.device = model.device

    def _run(self, images: torch.Tensor) -> tuple[Gaussians, Cameras]:
        rec = self.model.reconstruct(images[None].to(self.device))
        return rec.gaussians[0], rec.cameras[0]

    def context(self, crops: torch.Tensor, images: torch.Tensor) -> ContextReconstruction:
        g, cams = self._run(images)
        return ContextReconstruction(g, cams, images.shape[0])

    def joint(self, ctx_crops, ctx_images, tgt_crops, tgt_images) -> Cameras:  # noqa: ANN001
        return self._run(torch.cat([ctx_images, tgt_images]))[1]


class StitchedNVS(NVSModel):
    """A stitched decoder behind a video VAE: context crops → VAE latent (1+4k frames) → Gaussians.

    The context is padded to ``1 + 4k`` frames by repeating its last frame (module docstring); the
    VAE latent is the posterior mode (deterministic).
    """

    def __init__(self, decoder: Any, video: Any, name: str = "stitched", input_size: int | None = None, crop_size: int | None = None) -> None:
        self.decoder = decoder
        self.video = video
        self.name = name
        self.input_size = int(input_size or decoder.recon.config.image_size)
        self.crop_size = int(crop_size or crop_size_for(self.input_size))
        self.device = decoder.stitching_layer.weight.device
        self.ratio = int(getattr(video, "temporal_ratio", 4))

    def _run(self, crops: torch.Tensor, images: torch.Tensor) -> tuple[Gaussians, Cameras]:
        video = (crops.to(self.device) * 2 - 1).clamp(-1, 1).permute(1, 0, 2, 3)[None]  # [1,3,T,S,S]
        with torch.no_grad():
            latent = self.video.encode(video, sample=False)
        rec = self.decoder.reconstruct(latent, images[None].to(self.device))
        return rec.gaussians[0], rec.cameras[0]

    def context(self, crops: torch.Tensor, images: torch.Tensor) -> ContextReconstruction:
        crops_p, _ = pad_frames_1_plus_4k(crops, self.ratio)
        images_p, _ = pad_frames_1_plus_4k(images, self.ratio)
        g, cams = self._run(crops_p, images_p)
        return ContextReconstruction(g, cams, crops_p.shape[0])

    def joint(self, ctx_crops, ctx_images, tgt_crops, tgt_images) -> Cameras:  # noqa: ANN001
        crops_p, _ = pad_frames_1_plus_4k(ctx_crops, self.ratio)
        images_p, _ = pad_frames_1_plus_4k(ctx_images, self.ratio)
        crops = torch.cat([crops_p, tgt_crops])
        images = torch.cat([images_p, tgt_images])
        if (crops.shape[0] - 1) % self.ratio:
            raise InputError(
                f"the joint pass has {images_p.shape[0]} context + {tgt_crops.shape[0]} target frames = {crops.shape[0]}, "
                f"not 1+{self.ratio}k; the VAE cannot read it"
            )
        return self._run(crops, images)[1]


# ==================================================================================================
# Predictors: sample → predicted target images
# ==================================================================================================
@dataclass
class TargetPrediction:
    """The predicted target views ``images [T,3,H,W]`` in [0,1] and what produced them."""

    images: torch.Tensor
    cameras: Cameras | None = None
    info: dict[str, float] = field(default_factory=dict)


class Predictor(Protocol):
    name: str
    input_size: int
    crop_size: int

    def predict(self, sample: dict[str, Any], cameras: CameraMode) -> TargetPrediction: ...


def _split(sample: dict[str, Any]) -> tuple[int, torch.Tensor, torch.Tensor]:
    nc = int(sample["num_context"])
    crops, images = sample["images"], sample["feedforward_images"]
    if images.shape[0] <= nc:
        raise InputError(f"sample {sample.get('scene')} has {images.shape[0]} views and no target after {nc} context views")
    return nc, crops, images


class ModelPredictor:
    """The protocol of the module docstring around an :class:`NVSModel`.

    Args:
        model: the reconstructor.
        backend: render backend (``"auto"``: gsplat on CUDA when installed, else the torch renderer).
    """

    def __init__(self, model: NVSModel, backend: str = "auto") -> None:
        self.model = model
        self.backend = backend
        self.name = model.name
        self.input_size = model.input_size
        self.crop_size = model.crop_size

    def predict(self, sample: dict[str, Any], cameras: CameraMode) -> TargetPrediction:
        from vist3a.gaussians.render import render

        nc, crops, images = _split(sample)
        h, w = images.shape[-2:]
        rec = self.model.context(crops[:nc], images[:nc])
        info: dict[str, float] = {}
        if cameras == "predicted":
            joint = self.model.joint(crops[:nc], images[:nc], crops[nc:], images[nc:])
            k = rec.num_fed
            aligned, s = align_translation_scale(rec.cameras.c2w.float(), joint.c2w[:k].float(), joint.c2w[k:].float())
            tgt = Cameras(aligned, joint.K[k:].float(), joint.width, joint.height)
            info["scale"] = s
        elif cameras == "gt":
            gt = sample.get("feedforward_cameras")
            if gt is None:
                raise InputError(f"{sample.get('scene')}: no ground-truth cameras for --cameras gt")
            sim = similarity_from_cameras(gt.c2w[:nc], rec.cameras.c2w[:nc].to(gt.c2w.device))
            tgt = Cameras(apply_similarity(sim, gt.c2w[nc:]).float(), gt.K[nc:].float(), gt.width, gt.height)
            info["scale"] = sim.scale
        else:
            raise InputError(f"cameras must be one of {CAMERA_MODES}, got {cameras!r}")
        g = rec.gaussians
        out = render(g, tgt.to(g.device), width=w, height=h, backend=self.backend, near_plane=NEAR, far_plane=FAR)
        return TargetPrediction(out.rgb.detach().float().clamp(0, 1).cpu(), tgt, info)


class OraclePredictor:
    """Returns the ground-truth target frames: PSNR ∞ / SSIM 1 by construction.

    It checks the writing and scoring path of a run (file naming, pairing, aggregation, skipped
    scenes) without a model; the unit tests use an independent oracle that finds the targets itself.
    """

    name = "oracle"

    def __init__(self, input_size: int = OFFICIAL_INPUT, crop_size: int | None = None) -> None:
        self.input_size = int(input_size)
        self.crop_size = int(crop_size or crop_size_for(self.input_size))

    def predict(self, sample: dict[str, Any], cameras: CameraMode) -> TargetPrediction:
        nc, _, images = _split(sample)
        return TargetPrediction(images[nc:].clone())


# ==================================================================================================
# Loading
# ==================================================================================================
def load_re10k(
    spec: str,
    predictor: Predictor,
    protocol: str = "official",
    index_map: str | os.PathLike[str] | None = None,
    sequences: str | os.PathLike[str] | None = None,
    extrinsics: str = "w2c",
) -> Any:
    """``"re10k:ROOT"`` → an :class:`~vist3a.data.re10k.RE10KDataset` at the predictor's crop / input sizes.

    The index map defaults to ``ROOT/re10k_indexmap.json`` and the sequence list to
    ``ROOT/re10k_test.txt`` when it exists (else every id of the map).
    """
    from vist3a.data.re10k import RE10KDataset

    kind, sep, root = spec.partition(":")
    if not sep or kind.lower() != "re10k" or not root:
        raise InputError(f"--dataset must be re10k:ROOT, got {spec!r}")
    if protocol not in PROTOCOLS:
        raise InputError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    r = Path(root).expanduser()
    if not r.is_dir():
        raise InputError(f"RE10K root is not a folder: {r}")
    imap = Path(index_map) if index_map else r / "re10k_indexmap.json"
    if not imap.is_file():
        raise InputError(f"index map not found: {imap} (give --index-map)")
    seqs: Any = sequences
    if seqs is None and (r / "re10k_test.txt").is_file():
        seqs = r / "re10k_test.txt"
    return RE10KDataset(
        r, imap, sequences=seqs, size=predictor.crop_size, feedforward_size=predictor.input_size,
        protocol=PROTOCOLS[protocol], extrinsics=extrinsics, on_error="raise",  # type: ignore[arg-type]
    )  # fmt: skip


def load_predictor(
    model: str,
    device: str | torch.device = "cpu",
    weights: str | None = None,
    vae_weights: str | None = None,
    input_size: int | None = None,
    backend: str = "auto",
    recon_weights: str | None = None,
) -> Predictor:
    """``anysplat | anysplat-mini | anysplat-stitched | stitched-mini | oracle | PATH`` → a predictor.

    ``weights`` are the reconstructor's / stitched decoder's, ``vae_weights`` the video VAE's for stitched
    models: None = the shipped weights for the mini presets, random (plumbing / throughput only) for the
    others; ``"random"`` forces random weights;
    ``recon_weights`` the AnySplat weights under ``anysplat-stitched`` (its ``weights`` being the
    released stitched checkpoint, merged on top).
    """
    from vist3a import registry
    from vist3a.mini_assets import SHIPPED

    dev = torch.device(device)
    if model == "oracle":
        return OraclePredictor(input_size or OFFICIAL_INPUT)
    mini = model in ("anysplat-mini", "stitched-mini")

    def pick(w: str | None) -> str | None:  # "random" forces random; a mini preset defaults to its shipped set
        return None if w == "random" else (SHIPPED if w is None and mini else w)

    weights, vae_weights = pick(weights), pick(vae_weights)
    if weights is None and model in ("anysplat", "anysplat-mini", "anysplat-stitched", "stitched-mini"):
        log.warning("%s: no --weights given, using RANDOM weights (plumbing / throughput only)", model)
    if model in ("anysplat", "anysplat-mini"):
        net = registry.build(model, device=dev, weights=weights)
        return ModelPredictor(AnySplatNVS(net, model, input_size), backend)
    if model in ("stitched-mini", "anysplat-stitched"):
        extra = {"recon_weights": recon_weights} if model == "anysplat-stitched" else {}
        dec = registry.build(model, device=dev, weights=weights, **extra)
        video_preset = "wan-mini" if model == "stitched-mini" else "wan2.1-t2v-1.3b"
        video = registry.build(video_preset, device=dev, weights=vae_weights, components=("vae",))
        return ModelPredictor(StitchedNVS(dec, video, model, input_size), backend)
    p = Path(model).expanduser()
    if p.exists():
        from vist3a.models.anysplat import from_pretrained

        net = from_pretrained(p, device=dev)
        return ModelPredictor(AnySplatNVS(net, p.name, input_size), backend)
    raise InputError(
        f"unknown model {model!r}: choose anysplat, anysplat-mini, anysplat-stitched, stitched-mini, oracle or a weights path"
    )


# ==================================================================================================
# The run
# ==================================================================================================
@dataclass
class NVSRun:
    """What :func:`run_nvs` did. ``skipped`` names every scene left out (load or evaluation) with its reason."""

    out: Path
    model: str
    cameras: str
    evaluated: list[str]
    skipped: dict[str, str]
    skipped_at_load: dict[str, int]
    seconds: float
    scales: dict[str, float]

    @property
    def num_skipped(self) -> int:
        return len(self.skipped) + sum(self.skipped_at_load.values())

    @property
    def sequences_per_minute(self) -> float:
        return 60.0 * len(self.evaluated) / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cameras": self.cameras,
            "evaluated": len(self.evaluated),
            "skipped": self.num_skipped,
            "skipped_scenes": self.skipped,
            "skipped_at_load": self.skipped_at_load,
            "seconds": self.seconds,
            "sequences_per_minute": self.sequences_per_minute,
            "alignment_scale": self.scales,
        }


_SCENE_ERRORS = (Vist3aError, OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out is a file: {out}")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"--out {out} is not empty; choose a new folder or pass --overwrite")


def run_nvs(
    predictor: Predictor,
    dataset: Any,
    out: str | os.PathLike[str],
    cameras: CameraMode = "predicted",
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> NVSRun:
    """Evaluate ``predictor`` on every sequence of ``dataset`` and write ``out/<seq>/{gt,pred}/00000k.png``.

    Also writes ``out/nvs_run.json`` (the run summary). A scene that fails to load or to evaluate is
    skipped, logged and counted; with no scene evaluated an :class:`InputError` is raised. Score the
    folder with :func:`vist3a.eval.metrics.score_dir` (``vist3a eval nvs`` does).

    Args:
        predictor: see :func:`load_predictor`.
        dataset: a dataset of samples with ``images``, ``feedforward_images``, ``num_context`` (and
            ``feedforward_cameras`` for ``cameras="gt"``), e.g. :func:`load_re10k`.
        limit: evaluate only the first ``limit`` sequences.
    """
    import json

    from tqdm import tqdm

    from vist3a.eval.metrics import write_pair_images
    from vist3a.io_utils import atomic_write_text

    if cameras not in CAMERA_MODES:
        raise InputError(f"cameras must be one of {CAMERA_MODES}, got {cameras!r}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1, got {limit}")
    root = Path(out)
    _check_out(root, overwrite)
    root.mkdir(parents=True, exist_ok=True)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    skipped: dict[str, str] = {}
    evaluated: list[str] = []
    scales: dict[str, float] = {}
    t0 = time.perf_counter()
    bar = tqdm(range(n), desc=f"nvs {predictor.name}", unit="seq", disable=not progress)
    for i in bar:
        name = dataset._name(i) if hasattr(dataset, "_name") else str(i)
        try:
            sample = dataset[i]
            name = str(sample.get("scene", name))
            nc = int(sample["num_context"])
            gt = sample["feedforward_images"][nc:]
            with torch.no_grad():
                pred = predictor.predict(sample, cameras)
            if tuple(pred.images.shape) != tuple(gt.shape):
                raise InputError(f"prediction {list(pred.images.shape)} does not match the targets {list(gt.shape)}")
            if not torch.isfinite(pred.images).all():
                raise InputError("prediction has non-finite pixels")
            if (root / name).exists():
                shutil.rmtree(root / name)
            try:
                write_pair_images(root, name, gt, pred.images)
            except BaseException:
                shutil.rmtree(root / name, ignore_errors=True)  # never leave a half-written pair
                raise
            evaluated.append(name)
            if "scale" in pred.info:
                scales[name] = float(pred.info["scale"])
        except _SCENE_ERRORS as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
            log.warning("nvs: skipping %s: %s", name, skipped[name])
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        bar.set_postfix(done=len(evaluated), skipped=len(skipped))
    bar.close()
    run = NVSRun(
        out=root,
        model=predictor.name,
        cameras=cameras,
        evaluated=evaluated,
        skipped=skipped,
        skipped_at_load=dict(getattr(getattr(dataset, "skipped", None), "as_dict", dict)()),
        seconds=time.perf_counter() - t0,
        scales=scales,
    )
    atomic_write_text(root / RUN_JSON, json.dumps(run.as_dict(), indent=2) + "\n")
    if not evaluated:
        raise InputError(f"no sequence could be evaluated ({run.num_skipped} skipped, e.g. {next(iter(skipped.values()), '')})")
    return run


def summary_line(run: NVSRun) -> str:
    """One line for logs: evaluated / skipped counts and throughput."""
    extra = f" + {sum(run.skipped_at_load.values())} at load" if run.skipped_at_load else ""
    return (
        f"{len(run.evaluated)} sequence(s) evaluated, {len(run.skipped)} skipped{extra}, "
        f"{run.seconds:.1f} s ({run.sequences_per_minute:.2f} seq/min)"
    )

