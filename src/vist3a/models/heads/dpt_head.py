"""DPT dense-prediction head on VGGT aggregator tokens (depth, point map, or features).

The head follows "Vision Transformers for Dense Prediction" (Ranftl et al. 2021) as VGGT uses it:
four aggregator layers are read out, each is normalised, projected to a per-layer width, given a
sinusoidal UV position embedding and resized to 4x, 2x, 1x and 0.5x the patch grid; a RefineNet
cascade fuses them coarse-to-fine; the fused map is upsampled to the image size and a small conv
stack predicts the output channels, the last of which is a confidence.

Submodule names match VGGT/AnySplat state dicts (``norm``, ``projects.k``, ``resize_layers.k``,
``scratch.layer{1..4}_rn``, ``scratch.refinenet{1..4}.{out_conv,resConfUnit1,resConfUnit2}``,
``scratch.output_conv1``, ``scratch.output_conv2.{0,2}``), so ``encoder.depth_head.*`` of AnySplat and
``depth_head.*`` / ``point_head.*`` / ``track_head.feature_extractor.*`` of VGGT-1B load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError

# ----------------------------------------------------------------------------------------------
# Position embedding
# ----------------------------------------------------------------------------------------------


def uv_grid_axes(
    width: int, height: int, aspect_ratio: float, dtype: torch.dtype, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two axes of VGGT's normalised UV grid: ``u [width]`` and ``v [height]``.

    The grid spans ``±span·(n-1)/n`` on each axis with ``span_x = a/sqrt(a²+1)`` and
    ``span_y = 1/sqrt(a²+1)`` for aspect ratio ``a = W/H`` of the *image* (not of the feature map),
    so that the image diagonal has unit half-length. ``grid[i, j] = (u[j], v[i])``.
    """
    diag = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    v = torch.linspace(
        -span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype, device=device
    )
    return u, v


def sincos_embed_1d(pos: torch.Tensor, dim: int, omega_0: float = 100.0) -> torch.Tensor:
    """``[M]`` positions → ``[M, dim]`` = ``[sin(pos·ω_i), cos(pos·ω_i)]``, ``ω_i = ω0^(-i/(dim/2))``.

    Computed in float64 and returned as float32 (VGGT's ``make_sincos_pos_embed``).
    """
    if dim % 2:
        raise InputError(f"sin-cos embedding needs an even dimension, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    omega = 1.0 / omega_0**omega
    angles = pos.reshape(-1).to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def uv_position_embedding(
    channels: int, height: int, width: int, aspect_ratio: float, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """VGGT's 2D position embedding ``[channels, height, width]`` (float32).

    The first ``channels/2`` channels embed the u (column) coordinate, the rest the v (row) coordinate,
    each as ``sincos_embed_1d`` with ``channels/2`` dimensions. The embedding is separable, so it is
    built per column and per row and broadcast (bit-identical to embedding every grid point).
    """
    if channels % 4:
        raise InputError(f"UV position embedding needs channels divisible by 4, got {channels}")
    u, v = uv_grid_axes(width, height, aspect_ratio, dtype, device)
    emb_u = sincos_embed_1d(u, channels // 2)  # [W, C/2]
    emb_v = sincos_embed_1d(v, channels // 2)  # [H, C/2]
    emb_u = emb_u.t()[:, None, :].expand(-1, height, -1)
    emb_v = emb_v.t()[:, :, None].expand(-1, -1, width)
    return torch.cat([emb_u, emb_v], dim=0)


# ----------------------------------------------------------------------------------------------
# Output activations
# ----------------------------------------------------------------------------------------------

ACTIVATIONS = ("exp", "inv_log", "xy_inv_log", "norm_exp", "norm", "relu", "sigmoid", "linear")
CONF_ACTIVATIONS = ("expp1", "expp0", "sigmoid")


def inverse_log_transform(y: torch.Tensor) -> torch.Tensor:
    """``sign(y)·(exp|y| - 1)``: the inverse of ``sign(x)·log(1+|x|)``."""
    return torch.sign(y) * torch.expm1(y.abs())


def activate_head(out: torch.Tensor, activation: str, conf_activation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a head output ``[N, C, H, W]`` into predictions ``[N, H, W, C-1]`` and confidence ``[N, H, W]``.

    Activations of the predictions: ``exp``; ``inv_log`` (``sign·expm1|·|``); ``xy_inv_log`` (z by
    inv_log, x and y multiplied by z); ``norm_exp`` (direction times ``expm1(‖·‖)``); ``norm``;
    ``relu``; ``sigmoid``; ``linear``. Confidence: ``expp1`` (``1+exp``), ``expp0`` (``exp``), ``sigmoid``.
    """
    fmap = out.permute(0, 2, 3, 1)
    xyz, conf = fmap[..., :-1], fmap[..., -1]
    if activation == "exp":
        preds = torch.exp(xyz)
    elif activation == "inv_log":
        preds = inverse_log_transform(xyz)
    elif activation == "xy_inv_log":
        xy, z = xyz.split([2, 1], dim=-1)
        z = inverse_log_transform(z)
        preds = torch.cat([xy * z, z], dim=-1)
    elif activation == "norm_exp":
        d = xyz.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        preds = xyz / d * torch.expm1(d)
    elif activation == "norm":
        preds = xyz / xyz.norm(dim=-1, keepdim=True)
    elif activation == "relu":
        preds = F.relu(xyz)
    elif activation == "sigmoid":
        preds = torch.sigmoid(xyz)
    elif activation == "linear":
        preds = xyz
    else:
        raise InputError(f"unknown DPT activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if conf_activation == "expp1":
        conf = 1 + conf.exp()
    elif conf_activation == "expp0":
        conf = conf.exp()
    elif conf_activation == "sigmoid":
        conf = torch.sigmoid(conf)
    else:
        raise InputError(
            f"unknown DPT confidence activation {conf_activation!r}; choose one of {', '.join(CONF_ACTIVATIONS)}"
        )
    return preds, conf


# ----------------------------------------------------------------------------------------------
# RefineNet blocks
# ----------------------------------------------------------------------------------------------


class ResidualConvUnit(nn.Module):
    """Pre-activation residual unit: ``r = relu(x); r + conv2(relu(conv1(r)))``.

    The skip adds the *activated* input: VGGT's unit applies an in-place ReLU to ``x`` before the
    first conv, so its residual branch sees ``relu(x)``. Written out-of-place here.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FeatureFusionBlock(nn.Module):
    """RefineNet fusion: ``out_conv(up(rcu2(x + rcu1(skip))))`` (no ``rcu1`` in the coarsest block).

    Upsampling is bilinear with ``align_corners=True``, to ``size`` if given, else by 2.
    """

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1, bias=True)
        self.has_residual = has_residual
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: Sequence[int] | None = None
    ) -> torch.Tensor:
        if self.has_residual:
            if skip is None:
                raise InputError("this fusion block needs a skip feature map")
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=True)
        return self.out_conv(x)


class _Scratch(nn.Module):
    """Container named ``scratch`` in the checkpoints: the ``*_rn`` convs, fusion blocks, output convs."""


# ----------------------------------------------------------------------------------------------
# DPT head
# ----------------------------------------------------------------------------------------------


class DPTHead(nn.Module):
    """DPT head on VGGT aggregator tokens.

    Args:
        dim_in: token width of the aggregator outputs (2048 = 2 × 1024 for VGGT-1B/AnySplat).
        patch_size: image pixels per token (14).
        output_dim: output channels including the trailing confidence channel (2 for depth, 4 for a
            point map).
        activation: activation of the predictions (see :func:`activate_head`).
        conf_activation: activation of the confidence channel.
        features: width of the fusion stage (256).
        out_channels: widths of the four per-layer projections.
        intermediate_layer_idx: aggregator layers read out, in order (absolute layer indices).
        pos_embed: add the UV sin-cos position embedding (×0.1) after each projection and at full size.
        feature_only: stop after the fusion stage and return ``features``-channel maps (VGGT track head).
        down_ratio: output at ``1/down_ratio`` of the image size.
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        output_dim: int = 4,
        activation: str = "inv_log",
        conf_activation: str = "expp1",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        pos_embed: bool = True,
        feature_only: bool = False,
        down_ratio: int = 1,
    ) -> None:
        super().__init__()
        if len(out_channels) != 4 or len(intermediate_layer_idx) != 4:
            raise InputError("DPTHead needs exactly 4 out_channels and 4 intermediate_layer_idx")
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown DPT activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if conf_activation not in CONF_ACTIVATIONS:
            raise InputError(f"unknown DPT confidence activation {conf_activation!r}")
        self.patch_size = int(patch_size)
        self.output_dim = int(output_dim)
        self.activation = activation
        self.conf_activation = conf_activation
        self.pos_embed = pos_embed
        self.feature_only = feature_only
        self.down_ratio = down_ratio
        self.intermediate_layer_idx = tuple(int(i) for i in intermediate_layer_idx)
        oc = [int(c) for c in out_channels]

        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, c, kernel_size=1) for c in oc])
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),  # 4x
                nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),  # 2x
                nn.Identity(),  # 1x
                nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),  # 0.5x
            ]
        )
        self.scratch = _Scratch()
        for i, c in enumerate(oc, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(c, features, kernel_size=3, padding=1, bias=False))
        self.scratch.refinenet1 = FeatureFusionBlock(features)
        self.scratch.refinenet2 = FeatureFusionBlock(features)
        self.scratch.refinenet3 = FeatureFusionBlock(features)
        self.scratch.refinenet4 = FeatureFusionBlock(features, has_residual=False)
        if feature_only:
            self.scratch.output_conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(32, output_dim, kernel_size=1),
            )

    # --- public -----------------------------------------------------------------------------
    def forward(
        self,
        aggregated_tokens_list: Sequence[torch.Tensor],
        images: torch.Tensor,
        patch_start_idx: int,
        frames_chunk_size: int | None = 8,
    ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """Dense predictions for every view.

        Args:
            aggregated_tokens_list: aggregator outputs ``[B, S, P, dim_in]``; either one per entry of
                ``intermediate_layer_idx`` (read by position) or one per aggregator layer (read by
                absolute index).
            images: ``[B, S, 3, H, W]``; only its shape is used (H, W multiples of ``patch_size``).
            patch_start_idx: index of the first patch token (5 = camera + 4 registers).
            frames_chunk_size: views processed at once (``None`` = all).
        Returns:
            ``(preds [B, S, H, W, output_dim-1], conf [B, S, H, W])``, or with ``feature_only``
            ``features [B, S, features, H, W]``.
        """
        tokens = self._select_layers(aggregated_tokens_list, images, patch_start_idx)
        s = images.shape[1]
        chunk = s if frames_chunk_size is None or frames_chunk_size >= s else int(frames_chunk_size)
        if chunk <= 0:
            raise InputError(f"frames_chunk_size must be positive, got {frames_chunk_size}")
        outs = [self._forward_chunk(tokens, images, lo, min(lo + chunk, s)) for lo in range(0, s, chunk)]
        if self.feature_only:
            return torch.cat(outs, dim=1)
        return torch.cat([o[0] for o in outs], dim=1), torch.cat([o[1] for o in outs], dim=1)

    # --- stages -------------------------------------------------------------------------------
    def _select_layers(
        self, tokens_list: Sequence[torch.Tensor], images: torch.Tensor, patch_start_idx: int
    ) -> list[torch.Tensor]:
        """The four read-out layers' patch tokens ``[B, S, h·w, dim_in]`` (checked against the image)."""
        if images.ndim != 5 or images.shape[2] != 3:
            raise InputError(f"images must be [B, S, 3, H, W], got {list(images.shape)}")
        if len(tokens_list) == len(self.intermediate_layer_idx):
            chosen = list(tokens_list)
        else:
            top = max(self.intermediate_layer_idx)
            if len(tokens_list) <= top:
                raise InputError(
                    f"DPT head reads aggregator layers {list(self.intermediate_layer_idx)} but got "
                    f"{len(tokens_list)} token tensors (pass 4 read-out layers or all layers)"
                )
            chosen = [tokens_list[i] for i in self.intermediate_layer_idx]
        b, s, _, h, w = images.shape
        ph, pw = h // self.patch_size, w // self.patch_size
        out = []
        for t in chosen:
            if t.ndim != 4 or t.shape[0] != b or t.shape[1] != s:
                raise InputError(f"aggregator tokens must be [B={b}, S={s}, P, C], got {list(t.shape)}")
            patches = t[:, :, patch_start_idx:]
            if patches.shape[2] != ph * pw:
                raise InputError(
                    f"{patches.shape[2]} patch tokens do not match a {h}x{w} image with patch size "
                    f"{self.patch_size} ({ph}x{pw} = {ph * pw}); H and W must be multiples of the patch size"
                )
            out.append(patches)
        return out

    def _apply_pos_embed(self, x: torch.Tensor, width: int, height: int, ratio: float = 0.1) -> torch.Tensor:
        """``x [N, C, h, w] + ratio · uv_embedding`` with the aspect ratio of the image ``width/height``."""
        emb = uv_position_embedding(x.shape[1], x.shape[-2], x.shape[-1], width / height, x.dtype, x.device)
        return x + (emb * ratio)[None]

    def _fused_features(self, tokens: list[torch.Tensor], images: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Read out, project, resize and fuse → ``[N, C, 4h, 4w]`` after ``output_conv1`` (N = B·chunk)."""
        b, _, _, height, width = images.shape
        ph, pw = height // self.patch_size, width // self.patch_size
        maps = []
        for k, t in enumerate(tokens):
            x = t[:, lo:hi]
            x = self.norm(x.reshape(b * (hi - lo), ph * pw, x.shape[-1]))
            x = x.permute(0, 2, 1).reshape(x.shape[0], x.shape[-1], ph, pw)  # N, C, h, w
            x = self.projects[k](x)
            if self.pos_embed:
                x = self._apply_pos_embed(x, width, height)
            maps.append(self.resize_layers[k](x))
        sc = self.scratch
        l1, l2, l3, l4 = (getattr(sc, f"layer{i + 1}_rn")(m) for i, m in enumerate(maps))
        out = sc.refinenet4(l4, size=l3.shape[2:])
        out = sc.refinenet3(out, l3, size=l2.shape[2:])
        out = sc.refinenet2(out, l2, size=l1.shape[2:])
        out = sc.refinenet1(out, l1)
        return sc.output_conv1(out)

    def _forward_chunk(
        self, tokens: list[torch.Tensor], images: torch.Tensor, lo: int, hi: int
    ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        b, _, _, height, width = images.shape
        ph, pw = height // self.patch_size, width // self.patch_size
        out = self._fused_features(tokens, images, lo, hi)
        size = (int(ph * self.patch_size / self.down_ratio), int(pw * self.patch_size / self.down_ratio))
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if self.pos_embed:
            out = self._apply_pos_embed(out, width, height)
        if self.feature_only:
            return out.reshape(b, hi - lo, *out.shape[1:])
        out = self.scratch.output_conv2(out)
        preds, conf = activate_head(out, self.activation, self.conf_activation)
        return preds.reshape(b, hi - lo, *preds.shape[1:]), conf.reshape(b, hi - lo, *conf.shape[1:])
