"""The stitched decoder: raw video-VAE latent (+ RGB for the Gaussian head) → Gaussians, cameras, depth.

``M_stitched = F_{k+1:L} ∘ S ∘ upsample``: the latent is stretched in time to the video's frame count,
the stitching layer S (one conv) maps it onto the reconstruction network's token grid at DINO block k,
and AnySplat runs from block k+1 on (no module is deleted; the unused front is simply not called).

``official_compat=True`` reproduces the official forward exactly, including its re-added DINO position
embedding at the stitch point (METHOD.md §3.3), so the released checkpoint gives its numbers; the
default forward is the clean one (block k's output already holds the position embedding).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import CheckpointError, InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.mini_assets import SHIPPED, resolve
from vist3a.models.anysplat import AnySplat, AnySplatOutput, Reconstruction
from vist3a.models.dinov2 import parse_tap
from vist3a.stitching.lora import LoraSpec, official_delta, parse_lora_config
from vist3a.stitching.spec import WAN_TIME_FACTOR, StitchGrids, apply_stitching_layer, build_stitching_layer

log = logging.getLogger(__name__)

OFFICIAL_SPEC = "conv3d_k5x3x3_o1024_s1x2x2_p2x1x1"
OFFICIAL_LAYER = "enc_blocks_2"
OFFICIAL_LORA = "r64,a32,d0.0,f0"
TOKEN_NAMES = ("cls_token", "register_tokens", "mask_token")


def rgb_branch_input(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The Gaussian head's RGB input: ``frames [B, T, 3, H, W]`` in [0, 1] resized per frame (bilinear) to
    ``[B, T, 3, h, w]`` = ``size``, in [0, 1]. Generation (decoded frames) and training with
    ``--student-rgb decoded`` both go through here, so the student trains on what it will see."""
    b, t = frames.shape[:2]
    small = F.interpolate(frames.flatten(0, 1), size=size, mode="bilinear", align_corners=False)
    return small.clamp(0.0, 1.0).view(b, t, 3, *size)


class StitchedDecoder(nn.Module):
    """Latent → rest of AnySplat.

    Args:
        recon: the reconstruction network (its weights are the starting point; owned by this module).
        spec: stitching-layer spec, e.g. ``"conv3d_k5x3x3_o1024_s1x2x2_p2x1x1"``.
        layer: the stitch point ``"enc_blocks_k"`` (tokens after DINO block k).
        latent_grid: the raw latent grid ``(C, T', h, w)`` the layer is built and checked for.
        time_factor: the VAE's temporal compression (4 for Wan).
        official_compat: re-add the DINO position embedding at the stitch point (official forward).
        image_size: the reconstruction network's input size (default: its config's); sets the token grid.
    """

    def __init__(
        self,
        recon: AnySplat,
        spec: str = OFFICIAL_SPEC,
        layer: str = OFFICIAL_LAYER,
        latent_grid: tuple[int, int, int, int] = (16, 4, 64, 64),
        time_factor: int = WAN_TIME_FACTOR,
        official_compat: bool = False,
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        cfg = recon.config
        self.recon = recon
        self.spec = spec
        self.layer = layer
        self.block = parse_tap(layer, cfg.dino_depth)
        self.latent_grid = tuple(latent_grid)
        self.time_factor = time_factor
        self.official_compat = official_compat
        self.image_size = int(image_size or cfg.image_size)  # the RGB / token-grid side the layer is built for
        grid = self.image_size // cfg.patch_size
        frames = (latent_grid[1] - 1) * time_factor + 1
        grids = StitchGrids(latent=self.latent_grid, tokens=(frames, grid, grid, cfg.embed_dim), time_factor=time_factor)
        self.stitching_layer = build_stitching_layer(spec, grids)
        self.lora: LoraSpec | None = None

    @property
    def config(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "layer": self.layer,
            "latent_grid": list(self.latent_grid),
            "time_factor": self.time_factor,
            "official_compat": self.official_compat,
            "image_size": self.image_size,
            "lora": None if self.lora is None else self.lora.__dict__,
        }

    # --- forward ------------------------------------------------------------------------------
    def tokens(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent ``[B,C,T',h,w]`` → stitched tokens ``[B, T, h_tok·w_tok, D]``."""
        if latent.ndim != 5 or latent.shape[1] != self.latent_grid[0]:
            raise InputError(
                f"latent must be [B, {self.latent_grid[0]}, T', h, w] (raw VAE latent), got {list(latent.shape)}"
            )
        if latent.device.type != "meta" and not torch.isfinite(latent).all():
            raise InputError("latent contains non-finite values")
        w = self.stitching_layer.weight
        t = apply_stitching_layer(self.stitching_layer, latent.to(w.dtype), self.time_factor)  # B,T,h,w,D
        b, f, h, w_, d = t.shape
        return t.reshape(b, f, h * w_, d)

    def forward(
        self, latent: torch.Tensor, images: torch.Tensor, voxelize: bool | None = None, camera_guard_deg: float | None = None
    ) -> AnySplatOutput:
        """Decode a raw latent into the reconstruction network's outputs.

        Args:
            latent: raw (un-normalised) VAE latent ``[B, C, T', h, w]``.
            images: ``[B, T, 3, H, W]`` RGB in [0, 1] for the Gaussian head's RGB shortcut
                (T = (T'-1)·time_factor + 1; H, W = the network's input size).
            voxelize: override the network's voxelisation switch.
            camera_guard_deg: see :meth:`AnySplat.forward` (inference only).
        """
        tokens = self.tokens(latent)
        if images.ndim != 5 or images.shape[1] != tokens.shape[1]:
            raise InputError(
                f"images must be [B, {tokens.shape[1]}, 3, H, W] (one RGB frame per upsampled latent frame), "
                f"got {list(images.shape)}"
            )
        p = self.recon.config.patch_size
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        if grid[0] * grid[1] != tokens.shape[2]:
            raise InputError(
                f"images of {images.shape[-2]}x{images.shape[-1]} give a {grid[0]}x{grid[1]} token grid, "
                f"the stitched tokens have {tokens.shape[2]} per frame"
            )
        return self.recon(
            images,
            dino_tokens=tokens,
            dino_start_block=self.block,
            readd_pos_embed=self.official_compat,
            voxelize=voxelize,
            camera_guard_deg=camera_guard_deg,
        )

    @torch.no_grad()
    def reconstruct(
        self, latent: torch.Tensor, images: torch.Tensor, camera_guard_deg: float | None = None
    ) -> Reconstruction:
        """Like :meth:`AnySplat.reconstruct`, from a raw latent and its RGB frames."""
        was_training = self.training
        self.eval()
        try:
            dev = self.stitching_layer.weight.device
            out = self(latent.to(dev), images.to(dev), camera_guard_deg=camera_guard_deg)
        finally:
            self.train(was_training)
        h, w = images.shape[-2:]
        cams = [Cameras(out.c2w[i].float(), out.K[i].float(), width=w, height=h) for i in range(latent.shape[0])]
        guarded = None if out.guarded is None else [bool(g) for g in out.guarded]
        return Reconstruction(out.gaussians, cams, out.depth[..., 0], out.depth_conf, out.pose_enc_list[-1], guarded)

    # --- LoRA and trainable state -------------------------------------------------------------
    def front_module_names(self) -> list[str]:
        """Modules before the cut (never trained, never LoRA-wrapped)."""
        pe = "recon.encoder.aggregator.patch_embed"
        return [f"{pe}.patch_embed"] + [f"{pe}.blocks.{i}" for i in range(self.block)]

    def add_lora(self, config: str | LoraSpec = OFFICIAL_LORA) -> StitchedDecoder:
        """Wrap every Linear / square Conv2d after the cut with LoRA (peft) and set what trains.

        Trainable afterwards: LoRA A/B, the biases of wrapped layers, the stitching layer, and the DINO
        cls / register / mask tokens (their original processing layers are gone, METHOD.md §3.1).
        """
        if self.lora is not None:  # peft would fail deep inside with "target modules not found"
            raise InputError(f"this decoder already carries LoRA ({self.lora}); build it with weights=None to add a fresh one")
        spec = parse_lora_config(config) if isinstance(config, str) else config
        front = tuple(f"{n}." for n in self.front_module_names())  # the dot keeps blocks.1 from matching blocks.10
        targets = [
            n for n, m in self.named_modules()
            if n.startswith("recon.") and not n.startswith(front)
            and (isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size[0] == m.kernel_size[1]))
        ]
        if not targets:
            raise InputError("nothing after the cut to put LoRA on")
        from peft import LoraConfig, inject_adapter_in_model

        cfg = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets,
                         bias=spec.bias)
        inject_adapter_in_model(cfg, self)
        for p in self.stitching_layer.parameters():
            p.requires_grad_(True)
        pe = self.recon.encoder.aggregator.patch_embed
        for name in TOKEN_NAMES:
            getattr(pe, name).requires_grad_(True)
        self.lora = spec
        return self

    def merge_lora(self) -> StitchedDecoder:
        """Fold every LoRA ΔW into its base weight in place (peft ``merge``), for inference: a merged
        layer runs its base layer alone, so a forward costs what the plain network costs (on the mini CPU
        path the unmerged LoRA branches were ~1.5 s of a 6 s decode). Training state saved afterwards is
        no longer LoRA-separable, so only inference pipelines call it; calling it twice is harmless."""
        for m in self.modules():
            if hasattr(m, "lora_A") and hasattr(m, "base_layer") and not getattr(m, "merged", False):
                m.merge()
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters that training changes (our checkpoint format: names as in this module)."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        params = dict(self.named_parameters())
        missing = sorted(n for n, p in params.items() if p.requires_grad and n not in state)
        unknown = sorted(k for k in state if k not in params)
        if missing or unknown:
            raise CheckpointError(
                f"stitched checkpoint does not match: missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                f"unexpected {unknown[:4]}{'...' if len(unknown) > 4 else ''}"
            )
        with torch.no_grad():
            for k, v in state.items():
                if params[k].shape != v.shape:
                    raise CheckpointError(f"{k}: checkpoint shape {list(v.shape)} != model {list(params[k].shape)}")
                params[k].copy_(v.to(params[k].dtype))

    # --- the official checkpoint --------------------------------------------------------------
    def load_official(self, checkpoint: str | Path | Mapping[str, Any], lora: str | LoraSpec = OFFICIAL_LORA) -> None:
        """Load an official ``anysplat_stitched.pth`` into this (LoRA-free) decoder, merging LoRA exactly.

        ``checkpoint`` is the ``.pth`` path (``{"lora": ..., "stitching_layer": ..., "cls_token": ...}``),
        a ``.safetensors`` with keys flattened as ``group/key``, or such a mapping. The official
        ``.eval()`` merges ``W ← W + (B@A)·α/r``; this does the same in fp32, so the result equals
        the official inference model. Unmatched keys are reported by name.
        """
        if self.lora is not None:
            raise CheckpointError("load_official expects a decoder without peft LoRA (load first, then add_lora)")
        spec = parse_lora_config(lora) if isinstance(lora, str) else lora
        groups = _official_groups(checkpoint)
        modules = dict(self.named_modules())
        lora_sd: Mapping[str, torch.Tensor] = groups["lora"]
        layers: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in lora_sd.items():
            owner, _, leaf = key.rpartition(".")
            layers.setdefault(owner, {})[leaf] = value
        unmatched = []
        with torch.no_grad():
            for owner, parts in layers.items():
                name = "recon." + _renumber(owner, self.block)
                mod = modules.get(name)
                if mod is None or not hasattr(mod, "weight"):
                    unmatched.append(owner)
                    continue
                if "lora_A" in parts and "lora_B" in parts:
                    delta = official_delta(mod, parts["lora_A"], parts["lora_B"], spec.scaling)
                    mod.weight.copy_((mod.weight.float() + delta).to(mod.weight.dtype))
                if "bias" in parts:
                    if mod.bias is None:
                        unmatched.append(owner + ".bias")
                        continue
                    mod.bias.copy_(parts["bias"].to(mod.bias.dtype))
            conv = groups["stitching_layer"]
            for k in ("weight", "bias"):
                if k not in conv:
                    raise CheckpointError(f"official checkpoint lacks stitching_layer.{k}")
                target = getattr(self.stitching_layer, k)
                if target.shape != conv[k].shape:
                    raise CheckpointError(
                        f"stitching_layer.{k}: checkpoint {list(conv[k].shape)} vs model {list(target.shape)} "
                        f"(spec {self.spec})"
                    )
                target.copy_(conv[k].to(target.dtype))
            pe = self.recon.encoder.aggregator.patch_embed
            for name in TOKEN_NAMES:
                if name not in groups:
                    raise CheckpointError(f"official checkpoint lacks {name}")
                getattr(pe, name).copy_(groups[name].to(getattr(pe, name).dtype).reshape(getattr(pe, name).shape))
        if unmatched:
            raise CheckpointError(
                f"{len(unmatched)} LoRA entries of the official checkpoint match no layer, e.g. {unmatched[:4]}"
            )
        log.info("loaded official stitched checkpoint: %d LoRA layers merged", len(layers))


def _renumber(key: str, block: int) -> str:
    """Official DINO block j (after deleting the first k) is our block j + k."""
    prefix = "encoder.aggregator.patch_embed.blocks."
    if key.startswith(prefix):
        idx, _, rest = key[len(prefix):].partition(".")
        return f"{prefix}{int(idx) + block}.{rest}"
    return key


def _official_groups(checkpoint: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Normalise the official nested dict (or its flattened safetensors form) to groups."""
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"stitched checkpoint not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            try:
                data: Mapping[str, Any] = load_file(str(path))
            except Exception as exc:
                raise CheckpointError(f"cannot read {path}: {exc}") from None
        else:
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(f"cannot read {path}: {exc}") from None
    else:
        data = checkpoint
    if "lora" in data and isinstance(data["lora"], Mapping):
        groups = dict(data)
    else:  # flattened "group/key"
        groups = {"lora": {}, "stitching_layer": {}}
        for k, v in data.items():
            group, _, key = k.partition("/")
            if key:
                groups.setdefault(group, {})[key] = v
            else:
                groups[group] = v
    missing = [g for g in ("lora", "stitching_layer", *TOKEN_NAMES) if g not in groups]
    if missing:
        raise CheckpointError(f"not an official stitched checkpoint: missing {missing}")
    return groups


# --- presets ----------------------------------------------------------------------------------


def anysplat_stitched(
    device: Any = "cpu",
    weights: str | Path | None = None,
    recon_weights: Any = None,
    official_compat: bool = True,
    lora: str = OFFICIAL_LORA,
    **overrides: Any,
) -> StitchedDecoder:
    """The official layout: Wan latent (512² video → 64² latent) → ``conv3d_k5x3x3_o1024_s1x2x2_p2x1x1``
    → AnySplat from DINO block 3. ``recon_weights`` = AnySplat weights (e.g. ``lhjiang/anysplat``);
    ``weights`` = the released ``anysplat_stitched.pth`` (merged into the network)."""
    from vist3a.models.anysplat import anysplat

    recon = anysplat(device=device, weights=recon_weights, **overrides)
    with torch.device(device):
        dec = StitchedDecoder(recon, OFFICIAL_SPEC, OFFICIAL_LAYER, (16, 4, 64, 64), official_compat=official_compat)
    if weights is not None:
        dec.load_official(weights, lora)
    return dec.eval()


def stitched_mini(device: Any = "cpu", weights: str | Path | None = SHIPPED, **kwargs: Any) -> StitchedDecoder:
    """The mini pair: wan-mini latent (256² video → 32² latent) → anysplat-mini (224², 16×16 tokens).

    Args:
        weights: ``"shipped"`` (default) = the trained decoder in the package over the shipped
            anysplat-mini; a folder written by ``vist3a stitch train`` (``stitched.json`` +
            ``stitched.safetensors``, built over ``recon_weights`` or the shipped anysplat-mini); a merged
            state-dict file; None = a random stitching layer over the (shipped) anysplat-mini.
        kwargs: ``spec``, ``layer`` (untrained decoder only), ``recon_weights`` (base network).
    """
    from vist3a.models.anysplat import anysplat_mini

    recon_weights = kwargs.pop("recon_weights", SHIPPED)
    weights = resolve("stitched-mini", weights, False, device)
    if weights is not None and Path(str(weights), "stitched.json").is_file():
        from vist3a.stitching.export import load_trained

        return load_trained(weights, device=device, recon=anysplat_mini(device=device, weights=recon_weights))
    recon = anysplat_mini(device=device, weights=recon_weights)
    spec = kwargs.pop("spec", f"conv3d_k5x3x3_o{recon.config.embed_dim}_s1x2x2_p2x1x1")
    layer = kwargs.pop("layer", "enc_blocks_1")  # the mini layer search's choice (docs/mini.md)
    with torch.device(device):
        dec = StitchedDecoder(recon, spec, layer, (16, 4, 32, 32), **kwargs)
    if weights is not None:
        from safetensors.torch import load_file

        dec.load_state_dict(load_file(str(weights)), strict=True)
    return dec.eval()
