"""The stitching layer S: its spec grammar, the layer it builds, and the grids it must connect.

VIST3A joins a video VAE encoder E to a 3D reconstruction network F at layer k by a single
convolution S (paper Sec. 3.1; METHOD §1.2-1.3)::

    raw latent z [B,C,T',h,w] --upsample_latent_time--> [B,C,T,h,w] --S--> tokens [B,D,T,h_tok,w_tok]

A spec string names S (METHOD §2.5), e.g. the official Wan + AnySplat layer::

    conv3d_k5x3x3_o1024_s1x2x2_p2x1x1   ->  Conv3d(16, 1024, kernel (5,3,3), stride (1,2,2), padding (2,1,1))

Grammar: ``conv{1|2|3}d_k<K>_o<OUT>[_s<S>][_p<P>][_d<D>]``, case-insensitive; each of K, S, P, D is one
integer (used for every axis) or an ``x``-separated tuple with one entry per axis, ordered (T, H, W)
for conv3d and (H, W) for conv2d. Defaults: stride 1, padding 0, dilation 1. The layer always has a
bias and ``padding_mode='replicate'``, as the official builder does.

How each kind is applied to a latent video [B,C,T,h,w]: ``conv3d`` over (T, h, w); ``conv2d`` per frame
over (h, w); ``conv1d`` cannot produce a 2D token grid and is rejected by :func:`apply_stitching_layer`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError

# Wan 2.1's VAE compresses time 4x causally: T' = 1 + (T - 1) / 4 (METHOD §1.3 item 2).
WAN_TIME_FACTOR = 4

_AXES = {1: "(L)", 2: "(H, W)", 3: "(T, H, W)"}
_FIELDS = {"k": "kernel", "o": "out channels", "s": "stride", "p": "padding", "d": "dilation"}
_KIND_RE = re.compile(r"conv([0-9]+)d", re.IGNORECASE)
_EXAMPLE = "conv3d_k5x3x3_o1024_s1x2x2_p2x1x1"


@dataclass(frozen=True)
class ConvSpec:
    """A stitching convolution, fully resolved (every tuple has one entry per axis).

    Args:
        dim: 1, 2 or 3 (Conv1d / Conv2d / Conv3d).
        out_channels: D, the token width of the reconstruction network at the stitching layer.
        kernel_size, stride, padding, dilation: per-axis tuples, axes (T, H, W) for 3D, (H, W) for 2D.
        padding_mode: how borders are padded, ``"replicate"`` (official) or ``"zeros"``. The layer search
            builds its design matrix with the same mode, so the fit matches the layer it initialises.
    """

    dim: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] = field(default=())
    padding: tuple[int, ...] = field(default=())
    dilation: tuple[int, ...] = field(default=())
    padding_mode: str = "replicate"

    def __post_init__(self) -> None:
        if self.dim not in (1, 2, 3):
            raise InputError(f"conv dimension must be 1, 2 or 3, got {self.dim}")
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
            if not getattr(self, name):
                object.__setattr__(self, name, (default,) * self.dim)
        for name in ("kernel_size", "stride", "padding", "dilation"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != self.dim:
                raise InputError(f"{name} {value} has {len(value)} entries, conv{self.dim}d needs {self.dim}")
            object.__setattr__(self, name, value)
        if self.out_channels < 1:
            raise InputError(f"out channels must be >= 1, got {self.out_channels}")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise InputError(f"kernel, stride and dilation must be >= 1 in {self}")
        if min(self.padding) < 0:
            raise InputError(f"padding must be >= 0 in {self}")
        if self.padding_mode not in ("replicate", "zeros"):
            raise InputError(f"padding_mode must be 'replicate' or 'zeros', got {self.padding_mode!r}")

    def __str__(self) -> str:
        """The canonical spec string (parses back to an equal spec, padding_mode aside)."""

        text = f"conv{self.dim}d_k{'x'.join(map(str, self.kernel_size))}_o{self.out_channels}"
        if any(s != 1 for s in self.stride):
            text += f"_s{'x'.join(map(str, self.stride))}"
        if any(p != 0 for p in self.padding):
            text += f"_p{'x'.join(map(str, self.padding))}"
        if any(d != 1 for d in self.dilation):
            text += f"_d{'x'.join(map(str, self.dilation))}"
        return text

    def patch_dim(self, in_channels: int) -> int:
        """Length of one receptive field, ``C_in * prod(kernel)`` (720 for C=16, k=5x3x3)."""
        return in_channels * math.prod(self.kernel_size)

    def build(self, in_channels: int) -> nn.Module:
        """The torch layer ``nn.Conv{dim}d(in_channels, out_channels, ...)`` with bias (random init)."""
        if in_channels < 1:
            raise InputError(f"in_channels must be >= 1, got {in_channels}")
        cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[self.dim]
        return cls(
            in_channels,
            self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            padding_mode=self.padding_mode,
            bias=True,
        )

    def output_size(self, in_size: tuple[int, ...]) -> tuple[int, ...]:
        """Output grid of the layer for an input grid (per-axis ``floor((n+2p-d(k-1)-1)/s)+1``)."""
        if len(in_size) != self.dim:
            raise InputError(f"conv{self.dim}d takes a {self.dim}-axis grid {_AXES[self.dim]}, got {in_size}")
        return tuple(
            _out_len(n, k, s, p, d)
            for n, k, s, p, d in zip(
                in_size, self.kernel_size, self.stride, self.padding, self.dilation, strict=True
            )
        )

    def suggest(self, in_size: tuple[int, ...], out_size: tuple[int, ...]) -> ConvSpec | None:
        """A spec with the same kernel, dilation and width that maps ``in_size`` onto ``out_size``.

        Per axis it keeps the current stride/padding when they already fit, otherwise picks the
        smallest stride and the padding closest to "same" padding ``d(k-1)/2`` (padding is kept below
        the kernel extent). Returns None when no stride/padding works for some axis with this kernel.
        """
        strides, pads = [], []
        for n, m, k, s0, p0, d in zip(
            in_size, out_size, self.kernel_size, self.stride, self.padding, self.dilation, strict=True
        ):
            if _out_len(n, k, s0, p0, d) == m:
                strides.append(s0)
                pads.append(p0)
                continue
            extent = d * (k - 1)
            best: tuple[float, int, int] | None = None
            for s in range(1, max(n, 1) + extent + 2):
                for p in range(0, extent + 1):
                    if _out_len(n, k, s, p, d) == m:
                        key = (abs(p - extent / 2), s, p)
                        best = key if best is None or key < best else best
            if best is None:
                return None
            strides.append(best[1])
            pads.append(best[2])
        return replace(self, stride=tuple(strides), padding=tuple(pads))


def _out_len(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _ints(text: str, letter: str, spec: str) -> tuple[int, ...]:
    parts = text.lower().split("x")
    try:
        values = tuple(int(v) for v in parts)
    except ValueError:
        raise InputError(
            f"bad stitching spec {spec!r}: {_FIELDS[letter]} '{letter}{text}' must be an integer or "
            f"'x'-separated integers (e.g. '{letter}2' or '{letter}1x2x2')"
        ) from None
    if any(not v.isdigit() for v in parts):  # int() accepts '+1', ' 1', '-1'
        raise InputError(
            f"bad stitching spec {spec!r}: {_FIELDS[letter]} '{letter}{text}' must be non-negative integers"
        )
    return values


def parse_spec(spec: str) -> ConvSpec:
    """Parse a spec string (METHOD §2.5) into a :class:`ConvSpec`; every mistake is one clear InputError.

    Example: ``parse_spec("conv3d_k5x3x3_o1024_s1x2x2_p2x1x1")``.
    """
    if isinstance(spec, ConvSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"stitching spec must be a non-empty string like {_EXAMPLE!r}, got {spec!r}")
    text = spec.strip()
    tokens = text.split("_")
    kind = _KIND_RE.fullmatch(tokens[0])
    if not kind:
        raise InputError(
            f"bad stitching spec {spec!r}: unknown layer kind {tokens[0]!r}; expected conv1d, conv2d or conv3d "
            f"(e.g. {_EXAMPLE!r})"
        )
    dim = int(kind.group(1))
    if dim not in (1, 2, 3):
        raise InputError(
            f"bad stitching spec {spec!r}: unknown layer kind {tokens[0]!r}; expected conv1d, conv2d or conv3d"
        )
    fields: dict[str, tuple[int, ...]] = {}
    for token in tokens[1:]:
        letter, body = token[:1].lower(), token[1:]
        if letter not in _FIELDS:
            raise InputError(
                f"bad stitching spec {spec!r}: unknown field {token!r}; fields are k<kernel>, o<out channels>, "
                "s<stride>, p<padding>, d<dilation>"
            )
        if letter in fields:
            raise InputError(f"bad stitching spec {spec!r}: field '{letter}' ({_FIELDS[letter]}) given twice")
        if not body:
            raise InputError(
                f"bad stitching spec {spec!r}: field '{letter}' ({_FIELDS[letter]}) has no value"
            )
        fields[letter] = _ints(body, letter, spec)
    for letter in ("k", "o"):
        if letter not in fields:
            raise InputError(
                f"bad stitching spec {spec!r}: missing {_FIELDS[letter]} '{letter}…' (e.g. {_EXAMPLE!r})"
            )
    if len(fields["o"]) != 1:
        raise InputError(
            f"bad stitching spec {spec!r}: out channels must be a single integer, got {fields['o']}"
        )

    def per_axis(letter: str, default: int) -> tuple[int, ...]:
        values = fields.get(letter, (default,))
        if len(values) == 1:
            return values * dim
        if len(values) != dim:
            raise InputError(
                f"bad stitching spec {spec!r}: {_FIELDS[letter]} has {len(values)} values "
                f"({'x'.join(map(str, values))}) but conv{dim}d needs 1 or {dim} {_AXES[dim]}"
            )
        return values

    kernel, stride, padding, dilation = per_axis("k", 1), per_axis("s", 1), per_axis("p", 0), per_axis("d", 1)
    try:
        return ConvSpec(dim, fields["o"][0], kernel, stride, padding, dilation)
    except InputError as exc:
        raise InputError(f"bad stitching spec {spec!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------------------
# Temporal upsampling and the grid check
# ---------------------------------------------------------------------------------------------------------


def upsampled_frames(latent_frames: int, time_factor: int = WAN_TIME_FACTOR) -> int:
    """Frames after :func:`upsample_latent_time`: ``(T' - 1) * time_factor + 1`` (4 -> 13 for Wan)."""
    return (latent_frames - 1) * time_factor + 1


def upsample_latent_time(latent: torch.Tensor, time_factor: int = WAN_TIME_FACTOR) -> torch.Tensor:
    """Stretch raw VAE latents in time to the video's frame count, as VIST3A does before S.

    The official ``StitchVAE3D.get_stitching_layer.upsampling_layer`` (METHOD §1.3 item 3) calls
    ``F.interpolate(x, size=[(T'-1)*4+1, h, w], mode="trilinear", align_corners=True)``. The spatial size
    is unchanged, so this is exactly linear interpolation along time with ``align_corners=True``:
    output frame ``t`` samples latent position ``t / time_factor``. Hence latent frame ``j`` lands
    unchanged on video frame ``time_factor * j`` (Wan's causal VAE encodes frame 0 alone and each later
    latent frame summarises 4 video frames, the last of which is ``4j``), and the frames in between are
    convex blends of the two neighbouring latent frames.

    Args:
        latent: raw (un-normalised) VAE latent ``[B, C, T', h, w]``.
        time_factor: the VAE's temporal compression (4 for Wan 2.1, CogVideoX, HunyuanVideo).

    Returns:
        ``[B, C, (T'-1)*time_factor + 1, h, w]``, same dtype as the input.
    """
    if latent.ndim != 5:
        raise InputError(f"latent must be [B, C, T', h, w], got shape {tuple(latent.shape)}")
    if time_factor < 1:
        raise InputError(f"time_factor must be >= 1, got {time_factor}")
    b, c, t, h, w = latent.shape
    if t == 1 or time_factor == 1:
        return latent
    size = [upsampled_frames(t, time_factor), h, w]
    if latent.dtype in (torch.float16, torch.bfloat16) and latent.device.type == "cpu":
        return F.interpolate(latent.float(), size=size, mode="trilinear", align_corners=True).to(latent.dtype)
    return F.interpolate(latent, size=size, mode="trilinear", align_corners=True)


@dataclass(frozen=True)
class StitchGrids:
    """The two grids S must connect.

    Args:
        latent: raw VAE latent grid ``(C, T', h, w)``.
        tokens: the reconstruction network's token grid at the stitching layer ``(T, h_tok, w_tok, D)``.
        time_factor: the VAE's temporal compression (T = (T'-1)*time_factor + 1).
    """

    latent: tuple[int, int, int, int]
    tokens: tuple[int, int, int, int]
    time_factor: int = WAN_TIME_FACTOR


def layer_output_grid(spec: ConvSpec, latent: tuple[int, int, int, int], time_factor: int = WAN_TIME_FACTOR):
    """``(T, h_tok, w_tok, D)`` that ``spec`` produces from a raw latent grid ``(C, T', h, w)``."""
    _c, t_lat, h, w = latent
    t = upsampled_frames(t_lat, time_factor)
    if spec.dim == 3:
        t_out, h_out, w_out = spec.output_size((t, h, w))
    elif spec.dim == 2:
        h_out, w_out = spec.output_size((h, w))
        t_out = t
    else:
        raise InputError(
            f"{spec} is a conv1d: it cannot map a latent video [C,T,h,w] onto a 2D token grid; use conv2d or conv3d"
        )
    return (t_out, h_out, w_out, spec.out_channels)


def check_grids(spec: ConvSpec | str, grids: StitchGrids) -> ConvSpec:
    """Check that ``spec`` maps the latent grid onto the token grid; raise a helpful InputError if not.

    The error names the mismatching axes and, when one exists, a spec with the same kernel that fits.
    Returns the parsed spec.
    """
    spec = parse_spec(spec)
    c, t_lat, h, w = grids.latent
    t_tok, h_tok, w_tok, d_tok = grids.tokens
    t_up = upsampled_frames(t_lat, grids.time_factor)
    got = layer_output_grid(spec, grids.latent, grids.time_factor)
    want = (t_tok, h_tok, w_tok, d_tok)
    if got == want:
        return spec
    problems = []
    if spec.out_channels != d_tok:
        problems.append(f"it outputs {spec.out_channels} channels but the tokens are {d_tok}-d")
    if spec.dim == 2 and t_up != t_tok:
        problems.append(
            f"the latent's {t_lat} frames upsample to {t_up}, but the reconstruction network sees {t_tok} frames"
        )
    if got[:3] != want[:3]:
        problems.append(
            f"it maps the latent grid (T={t_up}, h={h}, w={w}) to {got[:3]} instead of {want[:3]}"
        )
    in_size = (t_up, h, w) if spec.dim == 3 else (h, w)
    out_size = (t_tok, h_tok, w_tok) if spec.dim == 3 else (h_tok, w_tok)
    fix = replace(spec.suggest(in_size, out_size) or spec, out_channels=d_tok)
    fits = layer_output_grid(fix, grids.latent, grids.time_factor) == want
    hint = (
        f"; try {fix}"
        if fits
        else "; no stride/padding with this kernel fits: change the kernel or the VAE input size"
    )
    raise InputError(
        f"stitching layer {spec} does not fit latent (C={c}, T'={t_lat}, h={h}, w={w}) -> tokens "
        f"(T={t_tok}, h={h_tok}, w={w_tok}, D={d_tok}): " + "; ".join(problems) + hint
    )


def build_stitching_layer(spec: ConvSpec | str, grids: StitchGrids) -> nn.Module:
    """Check the grids (see :func:`check_grids`) and build S with ``in_channels = C`` of the latent."""
    spec = check_grids(spec, grids)
    return spec.build(grids.latent[0])


def apply_stitching_layer(
    layer: nn.Module, latent: torch.Tensor, time_factor: int = WAN_TIME_FACTOR
) -> torch.Tensor:
    """Upsample a raw latent in time and apply S: ``[B,C,T',h,w] -> tokens [B,T,h_tok,w_tok,D]``."""
    x = upsample_latent_time(latent, time_factor)
    if isinstance(layer, nn.Conv3d):
        y = layer(x)  # B, D, T, h_tok, w_tok
    elif isinstance(layer, nn.Conv2d):
        b, c, t, h, w = x.shape
        y = layer(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B T), D, h_tok, w_tok
        y = y.reshape(b, t, *y.shape[1:]).transpose(1, 2)
    else:
        raise InputError(f"stitching layer must be a Conv2d or Conv3d, got {type(layer).__name__}")
    return y.permute(0, 2, 3, 4, 1)
