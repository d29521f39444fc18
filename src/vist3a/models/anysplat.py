"""AnySplat: feed-forward 3D Gaussian splatting from unposed views (checkpoint-compatible).

Composition (module names = the official state-dict prefixes, so ``lhjiang/anysplat`` loads unchanged)::

    AnySplat.encoder
      .aggregator            DINOv2-L/14-reg4 + VGGT alternating attention   images → 4 layers [B,V,T,2C]
      .camera_head           iterative pose encoding                        → [B,V,9] (xyzw, OpenCV w2c)
      .depth_head            DPT, exp depth + 1+exp confidence              → [B,V,H,W,1], [B,V,H,W]
      .gaussian_param_head   DPT + RGB input merger, raw                    → [B,V,84,H,W]
      .gaussian_adapter      activations (no parameters)

Depth is unprojected with the predicted cameras to world points (world = view 0's camera), one
Gaussian per pixel; with ``voxelize`` the pixels are fused per voxel of side ``voxel_size``
(softmax over the fusion logit, raw features averaged before activation). Outputs are converted to
this package's conventions at the edge: :class:`~vist3a.gaussians.Gaussians` (wxyz quaternions,
``sh [N,K,3]``) and :class:`~vist3a.gaussians.Cameras` (camera-to-world, pixel K).

Precision: on CUDA the aggregator runs under bf16 autocast and the heads in fp32 (as the official
code); on CPU everything runs in fp32. ``round_input_bf16`` reproduces the official encoder's
``aggregator(image.to(bfloat16))``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians
from vist3a.mini_assets import SHIPPED, resolve
from vist3a.models.aggregator import Aggregator, AggregatorOutput
from vist3a.models.camera_guard import guard_cameras
from vist3a.models.gaussian_adapter import AnySplatGaussians, GaussianAdapter
from vist3a.models.geometry import unproject_depth
from vist3a.models.heads.camera_head import CameraHead
from vist3a.models.heads.dpt_head import DPTHead
from vist3a.models.heads.gaussian_head import GaussianHead, gaussian_head_channels
from vist3a.models.pose_encoding import extrinsics_to_c2w, normalize_intrinsics, pose_encoding_to_extri_intri
from vist3a.models.voxelize import voxelize_with_fusion

log = logging.getLogger(__name__)

HF_REPO = "lhjiang/anysplat"


@dataclass(frozen=True)
class AnySplatConfig:
    """Every number that shapes an AnySplat network (defaults = the released model).

    Attributes:
        image_size: square input side the preset expects (448; any multiple of ``patch_size`` runs).
        patch_size: ViT patch side (14).
        pos_embed_img_size: DINO training size fixing its position-embedding grid (518 → 37x37).
        embed_dim: token width C of DINO and the aggregator (1024).
        dino_depth, dino_num_heads: DINO blocks and heads (24, 16).
        depth, num_heads: aggregator rounds and heads (24, 16).
        mlp_ratio: MLP width / C in every transformer.
        num_register_tokens: registers in DINO and in the aggregator (4).
        rope_freq: 2D RoPE base of the aggregator (100).
        intermediate_layer_idx: aggregator layers read by the DPT heads ([4, 11, 17, 23]).
        camera_trunk_depth, camera_num_heads: camera-head trunk (4 blocks, 16 heads at width 2C).
        dpt_features, dpt_out_channels: DPT fusion width and per-layer projection widths.
        sh_degree: SH degree of the Gaussians (4 → 84 head channels).
        voxelize, voxel_size: voxel fusion on/off and voxel side in world units (0.002).
        focal_eps: the ``+1e-3`` in AnySplat's focal length from the field of view.
        round_input_bf16: round the aggregator's input image to bf16 (official behaviour).
        frames_chunk_size: views per DPT-head chunk (8).
        autocast: bf16 autocast of the aggregator on CUDA.
    """

    image_size: int = 448
    patch_size: int = 14
    pos_embed_img_size: int = 518
    embed_dim: int = 1024
    dino_depth: int = 24
    dino_num_heads: int = 16
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    rope_freq: float = 100.0
    intermediate_layer_idx: tuple[int, ...] = (4, 11, 17, 23)
    camera_trunk_depth: int = 4
    camera_num_heads: int = 16
    dpt_features: int = 256
    dpt_out_channels: tuple[int, ...] = (256, 512, 1024, 1024)
    sh_degree: int = 4
    voxelize: bool = True
    voxel_size: float = 0.002
    focal_eps: float = 1e-3
    round_input_bf16: bool = True
    frames_chunk_size: int = 8
    autocast: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MINI_CONFIG = AnySplatConfig(
    image_size=224,
    pos_embed_img_size=224,
    embed_dim=192,
    dino_depth=6,
    dino_num_heads=3,
    depth=4,
    num_heads=3,
    intermediate_layer_idx=(0, 1, 2, 3),
    camera_trunk_depth=2,
    camera_num_heads=6,
    dpt_features=64,
    dpt_out_channels=(48, 96, 192, 192),
    voxel_size=0.002,
)


@dataclass
class AnySplatOutput:
    """Everything one forward produces (B scenes of V views at H x W).

    Attributes:
        pose_enc_list: per camera-head iteration ``[B, V, 9]`` ([t, q xyzw, fov_h, fov_w], OpenCV w2c).
        w2c: ``[B, V, 3, 4]`` world-to-camera; ``c2w``: ``[B, V, 4, 4]`` camera-to-world.
        K: ``[B, V, 3, 3]`` pixel intrinsics; ``K_normalized``: rows divided by W, H.
        depth: ``[B, V, H, W, 1]``; depth_conf: ``[B, V, H, W]``.
        points: ``[B, V, H, W, 3]`` world points of every pixel.
        gs_raw: ``[B, V, C, H, W]`` raw Gaussian-head output (no activation); ``None`` when the forward
            was asked for geometry only (``gaussians=False``).
        splats: per scene, AnySplat-layout Gaussians (B = 1 each; xyzw, harmonics [1,G,3,K]); ``[]`` without.
        gaussians: per scene, :class:`Gaussians` in our conventions; ``[]`` without.
        pixel_to_voxel: per scene, ``[V*H*W]`` voxel row of every pixel (None without voxelisation).
        aggregator: the aggregator output (layers and DINO taps).
        guarded: ``[B]`` bool, the scenes whose cameras the camera guard replaced by a static camera
            (``vist3a.models.camera_guard``; ``pose_enc_list`` keeps the prediction); None without the guard.
    """

    pose_enc_list: list[torch.Tensor]
    w2c: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    K_normalized: torch.Tensor
    depth: torch.Tensor
    depth_conf: torch.Tensor
    points: torch.Tensor
    gs_raw: torch.Tensor | None
    splats: list[AnySplatGaussians]
    gaussians: list[Gaussians]
    pixel_to_voxel: list[torch.Tensor] | None
    aggregator: AggregatorOutput
    guarded: torch.Tensor | None = None


@dataclass
class Reconstruction:
    """The result of :meth:`AnySplat.reconstruct`, in this package's conventions.

    Attributes:
        gaussians: one :class:`Gaussians` per batch item (activated, wxyz, ``sh [N,K,3]``).
        cameras: one :class:`Cameras` per batch item: the V context cameras (c2w OpenCV, pixel K).
        depth: ``[B, V, H, W]`` predicted z-depth.
        confidence: ``[B, V, H, W]`` depth confidence (``1 + exp``, > 1).
        pose_encoding: ``[B, V, 9]`` final camera encoding (xyzw, w2c), for reference.
        guarded: per batch item, whether the camera guard replaced the predicted cameras by a static camera
            (None without the guard).
    """

    gaussians: list[Gaussians]
    cameras: list[Cameras]
    depth: torch.Tensor
    confidence: torch.Tensor
    pose_encoding: torch.Tensor = field(repr=False)
    guarded: list[bool] | None = None


class AnySplatEncoder(nn.Module):
    """The network (official ``EncoderAnySplat``): aggregator, camera head, depth head, Gaussian head."""

    def __init__(self, config: AnySplatConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        dim2 = 2 * c.embed_dim
        self.aggregator = Aggregator.from_config(c)
        self.camera_head = CameraHead(
            dim2, trunk_depth=c.camera_trunk_depth, num_heads=c.camera_num_heads, mlp_ratio=c.mlp_ratio
        )
        self.depth_head = DPTHead(
            dim2,
            patch_size=c.patch_size,
            output_dim=2,
            activation="exp",
            conf_activation="expp1",
            features=c.dpt_features,
            out_channels=c.dpt_out_channels,
            intermediate_layer_idx=c.intermediate_layer_idx,
        )
        self.gaussian_param_head = GaussianHead(
            dim2,
            patch_size=c.patch_size,
            output_dim=gaussian_head_channels(c.sh_degree),
            features=c.dpt_features,
            head_features=c.dpt_features // 2,  # 128 in the released model; must equal output_conv1's width
            out_channels=c.dpt_out_channels,
            intermediate_layer_idx=c.intermediate_layer_idx,
        )
        self.gaussian_adapter = GaussianAdapter(sh_degree=c.sh_degree)

    def reset_buffers(self) -> None:
        """Re-create the parameter-free modules (after ``to_empty`` left their buffers uninitialised)."""
        device = self.camera_head.empty_pose_tokens.device
        with torch.device(device):
            self.gaussian_adapter = GaussianAdapter(sh_degree=self.config.sh_degree)


class AnySplat(nn.Module):
    """AnySplat reconstruction network.

    Args:
        config: an :class:`AnySplatConfig` (default: the released model).

    Stitching hooks: ``forward(..., taps=["enc_blocks_k"])`` records DINO block outputs, and
    ``forward(..., dino_tokens=t, dino_start_block=k)`` enters after DINO block k with patch tokens
    ``[B, V, P, C]`` (the images are then used only by the Gaussian head's RGB shortcut).
    """

    def __init__(self, config: AnySplatConfig | None = None) -> None:
        super().__init__()
        self.config = config or AnySplatConfig()
        self.encoder = AnySplatEncoder(self.config)

    # --- switches -----------------------------------------------------------------------------
    def enable_gradient_checkpointing(self, enabled: bool = True) -> AnySplat:
        """Recompute DINO and aggregator blocks in the backward pass (training memory)."""
        self.encoder.aggregator.gradient_checkpointing = enabled
        self.encoder.aggregator.patch_embed.gradient_checkpointing = enabled
        return self

    def set_voxelize(self, enabled: bool, voxel_size: float | None = None) -> AnySplat:
        """Turn voxel fusion on or off (and optionally change the voxel side)."""
        self.config = replace(self.config, voxelize=enabled, voxel_size=voxel_size or self.config.voxel_size)
        return self

    @property
    def device(self) -> torch.device:
        return self.encoder.camera_head.empty_pose_tokens.device

    # --- forward ------------------------------------------------------------------------------
    def _check_images(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 5 or images.shape[2] != 3:
            shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise InputError(f"images must be a [B, V, 3, H, W] tensor in [0, 1], got {shape}")
        p = self.config.patch_size
        if images.shape[-1] % p or images.shape[-2] % p:
            raise InputError(f"image size {images.shape[-2]}x{images.shape[-1]} is not a multiple of {p}")
        if images.device.type != "meta" and not torch.isfinite(images).all():
            raise InputError("images contain non-finite values")

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.config.autocast and device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(
        self,
        images: torch.Tensor,
        taps: Iterable[str] = (),
        dino_tokens: torch.Tensor | None = None,
        dino_start_block: int = 0,
        readd_pos_embed: bool = True,
        voxelize: bool | None = None,
        gaussians: bool = True,
        camera_guard_deg: float | None = None,
    ) -> AnySplatOutput:
        """Run the network.

        Args:
            images: ``[B, V, 3, H, W]`` RGB in [0, 1].
            taps: DINO taps to record (``"enc_blocks_k"``), returned in ``out.aggregator.taps``.
            dino_tokens: optional ``[B, V, P, C]`` patch tokens at DINO block ``dino_start_block``
                (stitched entry); the DINO front (conv and blocks 1..k) is then skipped.
            dino_start_block: k (1-based) for ``dino_tokens``.
            readd_pos_embed: add the DINO position embedding to ``dino_tokens`` (VIST3A does).
            voxelize: override ``config.voxelize`` for this call.
            gaussians: run the Gaussian head (``False``: cameras and depth only, for geometry-only
                training steps; ``gs_raw`` is then ``None`` and there are no splats).
            camera_guard_deg: inference only: a scene whose predicted cameras turn more than this between
                neighbouring views is placed from its first camera (``vist3a.models.camera_guard``).
        """
        self._check_images(images)
        enc = self.encoder
        b, v, _, h, w = images.shape
        images = images.float()
        with self._autocast(images.device):
            if dino_tokens is None:
                agg = enc.aggregator(images, taps=taps)
            else:
                grid = (h // self.config.patch_size, w // self.config.patch_size)
                agg = enc.aggregator.forward_from_dino_block(
                    dino_tokens, dino_start_block, grid, readd_pos_embed, taps
                )
        head_dtype = enc.camera_head.empty_pose_tokens.dtype
        layers = [t.to(head_dtype) for t in agg.layers]
        with (
            torch.autocast(images.device.type, enabled=False)
            if images.device.type == "cuda"
            else contextlib.nullcontext()
        ):
            pose_enc_list = enc.camera_head(layers)
            w2c, k = pose_encoding_to_extri_intri(pose_enc_list[-1], (h, w), self.config.focal_eps)
            guarded = None
            if camera_guard_deg is not None:
                w2c, guarded = guard_cameras(w2c, camera_guard_deg)
            depth, conf = enc.depth_head(layers, images, agg.patch_start_idx, self.config.frames_chunk_size)
            points = unproject_depth(depth, w2c, k)
            raw, splats, gs, inverses = None, [], [], None
            if gaussians:
                raw = enc.gaussian_param_head(layers, images, agg.patch_start_idx, self.config.frames_chunk_size)
                splats, gs, inverses = self._gaussians(points, raw, self.config.voxelize if voxelize is None else voxelize)
        return AnySplatOutput(
            pose_enc_list=pose_enc_list,
            w2c=w2c,
            c2w=extrinsics_to_c2w(w2c),
            K=k,
            K_normalized=normalize_intrinsics(k, (h, w)),
            depth=depth,
            depth_conf=conf,
            points=points,
            gs_raw=raw,
            splats=splats,
            gaussians=gs,
            pixel_to_voxel=inverses,
            aggregator=agg,
            guarded=guarded,
        )

    def _gaussians(
        self, points: torch.Tensor, raw: torch.Tensor, voxelize: bool
    ) -> tuple[list[AnySplatGaussians], list[Gaussians], list[torch.Tensor] | None]:
        """Pixel-aligned (or voxel-fused) Gaussians per scene."""
        b = points.shape[0]
        feats = raw[:, :, :-1].permute(0, 1, 3, 4, 2).reshape(b, -1, raw.shape[2] - 1)  # B, V*H*W, C
        logits = raw[:, :, -1].reshape(b, -1)
        pts = points.reshape(b, -1, 3)
        splats, gaussians, inverses = [], [], []
        for i in range(b):
            p, f = pts[i], feats[i]
            if voxelize:
                p, f, inv = voxelize_with_fusion(p, f, logits[i], self.config.voxel_size)
                inverses.append(inv)
            s = self.encoder.gaussian_adapter(p[None], f[None])
            splats.append(s)
            gaussians.append(s.to_gaussians(0))
        return splats, gaussians, (inverses if voxelize else None)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, camera_guard_deg: float | None = None) -> Reconstruction:
        """Images ``[B, V, 3, H, W]`` in [0, 1] → :class:`Reconstruction` (Gaussians, cameras, depth)."""
        was_training = self.training
        self.eval()
        try:
            out = self(images.to(self.device), camera_guard_deg=camera_guard_deg)
        finally:
            self.train(was_training)
        h, w = images.shape[-2:]
        cams = [
            Cameras(out.c2w[i].float(), out.K[i].float(), width=w, height=h) for i in range(images.shape[0])
        ]
        return Reconstruction(
            gaussians=out.gaussians,
            cameras=cams,
            depth=out.depth[..., 0],
            confidence=out.depth_conf,
            pose_encoding=out.pose_enc_list[-1],
            guarded=None if out.guarded is None else [bool(g) for g in out.guarded],
        )

    # --- files --------------------------------------------------------------------------------
    def save_pretrained(
        self,
        folder: str | os.PathLike[str],
        preset: str = "anysplat",
        dtype: torch.dtype | None = None,
        max_shard_size: int | str | None = None,
    ) -> Path:
        """Write the weights and ``vist3a_model.json`` (preset + config) into ``folder``, atomically.

        ``dtype``: cast floating-point tensors (e.g. ``torch.float16`` for shipped weights); loading casts back.
        ``max_shard_size``: split ``model.safetensors`` into shards of at most this size (bytes or ``"15MB"``)
        with a ``model.safetensors.index.json``, as the mini set ships (:data:`vist3a.mini_assets.SHARD_SIZE`).
        """
        from vist3a.io_utils import atomic_write_text
        from vist3a.models.checkpoint import save_state_dict

        out = Path(folder)
        sd = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if dtype is not None:
            sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
        save_state_dict(sd, out, max_shard_size)
        meta = {"preset": preset, "config": self.config.to_dict()}
        atomic_write_text(out / MODEL_JSON, json.dumps(meta, indent=1) + "\n")
        return out


MODEL_JSON = "vist3a_model.json"


def from_pretrained(path: str | os.PathLike[str], device: Any = "cpu", **kwargs: Any) -> AnySplat:
    """Load a folder written by :meth:`AnySplat.save_pretrained`, or official weights (file, folder, HF id).

    A folder without ``vist3a_model.json`` is taken to hold the released AnySplat architecture.
    """
    p = Path(path).expanduser()
    meta_file = p / MODEL_JSON if p.is_dir() else p.parent / MODEL_JSON
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            preset = meta.get("preset", "anysplat")
            cfg = dict(meta.get("config", {}))
        except (ValueError, AttributeError) as exc:
            raise InputError(f"{meta_file}: not a valid model description ({exc})") from exc
        for key in ("intermediate_layer_idx", "dpt_out_channels"):
            if key in cfg:
                cfg[key] = tuple(cfg[key])
        base = MINI_CONFIG if preset == "anysplat-mini" else AnySplatConfig()
        config = _config(
            base, {**cfg, **{k: v for k, v in kwargs.items() if k in AnySplatConfig.__dataclass_fields__}}
        )
        rest = {k: v for k, v in kwargs.items() if k not in AnySplatConfig.__dataclass_fields__}
        return build_model(AnySplat, config, device, p, **rest)
    return anysplat(device=device, weights=path, **kwargs)


# --- builders ---------------------------------------------------------------------------------


def build_model(
    model_cls: type[nn.Module],
    config: Any,
    device: Any = "cpu",
    weights: Any = None,
    dtype: torch.dtype | None = None,
    aggregator_dtype: torch.dtype | None = None,
    **load_kwargs: Any,
) -> nn.Module:
    """Build ``model_cls(config)`` on ``device``; load ``weights`` strictly when given.

    With weights the model is built on the meta device and materialised empty, so no time is spent
    on random initialisation. ``aggregator_dtype=torch.bfloat16`` mirrors the official runtime dtypes
    (bf16 aggregator, fp32 heads).
    """
    from vist3a.models.checkpoint import load_weights

    device = torch.device(device)
    if weights is not None and device.type != "meta":
        with torch.device("meta"):
            model = model_cls(config)
        model = model.to_empty(device=device)
        for m in model.modules():
            if hasattr(m, "reset_buffers") and m is not model:
                m.reset_buffers()
        # to_empty leaves buffers uninitialised: every buffer must have been re-created above.
        stale = [
            n for n, b in model.named_buffers() if b.device.type == "meta" or not torch.isfinite(b).all()
        ]
        if stale:  # pragma: no cover - a developer error (a new buffer without reset_buffers)
            raise RuntimeError(f"buffers not re-created after to_empty: {stale}")
        _cast(model, dtype, aggregator_dtype)
        load_weights(model, weights, **load_kwargs)
    else:
        with device:
            model = model_cls(config)
        _cast(model, dtype, aggregator_dtype)
    return model.eval()


def _cast(model: nn.Module, dtype: torch.dtype | None, aggregator_dtype: torch.dtype | None) -> None:
    if dtype is not None:
        model.to(dtype)
    if aggregator_dtype is not None:
        for m in model.modules():
            if isinstance(m, Aggregator):
                m.to(aggregator_dtype)


def _config(base: AnySplatConfig, overrides: dict[str, Any]) -> AnySplatConfig:
    names = set(AnySplatConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(f"unknown AnySplat option(s) {unknown}; known: {sorted(names)}")
    return replace(base, **overrides)


def anysplat(
    device: Any = "cpu",
    weights: Any = None,
    dtype: torch.dtype | None = None,
    aggregator_dtype: torch.dtype | None = None,
    allow_download: bool = True,
    **overrides: Any,
) -> AnySplat:
    """The released AnySplat (1.19 B parameters; ``weights`` e.g. ``"lhjiang/anysplat"`` or a local path)."""
    cfg = _config(AnySplatConfig(), overrides)
    return build_model(AnySplat, cfg, device, weights, dtype, aggregator_dtype, allow_download=allow_download)


def anysplat_mini(
    device: Any = "cpu",
    weights: Any = SHIPPED,
    dtype: torch.dtype | None = None,
    aggregator_dtype: torch.dtype | None = None,
    allow_download: bool = True,
    **overrides: Any,
) -> AnySplat:
    """The same classes at small widths: C=192, 6 DINO blocks, 4 aggregator rounds, 224² input (16x16 tokens).

    ``weights``: ``"shipped"`` (default) = the trained weights in the package (random when config
    ``overrides`` are given); None = random init; or a file / folder / HF id.
    """
    weights = resolve("anysplat-mini", weights, bool(overrides), device)
    cfg = _config(MINI_CONFIG, overrides)
    return build_model(AnySplat, cfg, device, weights, dtype, aggregator_dtype, allow_download=allow_download)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__: Sequence[str] = (
    "AnySplat",
    "AnySplatConfig",
    "AnySplatOutput",
    "Reconstruction",
    "MINI_CONFIG",
    "anysplat",
    "anysplat_mini",
)
