"""Image I/O and the geometric transforms of the loaders, with their effect on pixel intrinsics.

Pixel intrinsics follow :mod:`vist3a.gaussians.cameras`: pixel ``(i, j)`` covers ``[i, i+1) × [j, j+1)``,
so a resize by ``s`` multiplies ``fx, cx`` (``fy, cy``) by the horizontal (vertical) factor and a crop at
``(x0, y0)`` subtracts ``x0`` from ``cx`` and ``y0`` from ``cy``.

Two preprocessing protocols exist:

* ``"default"`` — :func:`resize_center_crop`: scale so the image *covers* the output (aspect kept),
  then centre-crop; bilinear with antialiasing.
* ``"official"`` — what the VIST3A code does, reproduced for comparison with published numbers:
  :func:`official_resize_crop` (the RE10K evaluation's PIL-Lanczos resize with width and height
  swapped) and :func:`official_train_resize_crop` (the training loaders' non-antialiased bilinear).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vist3a.errors import FormatError, InputError

__all__ = [
    "read_image",
    "read_image_pil",
    "natural_key",
    "resize",
    "resize_center_crop",
    "official_resize_crop",
    "official_train_resize_crop",
    "ColorJitter",
    "as_size",
    "pil_to_tensor",
    "stack_frames",
]

Size = int | tuple[int, int]


def as_size(size: Size) -> tuple[int, int]:
    """``int`` → square ``(s, s)``; ``(h, w)`` stays. Both must be positive."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h <= 0 or w <= 0:
        raise InputError(f"image size must be positive, got {size}")
    return h, w


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def read_image_pil(path: str | os.PathLike[str]):  # -> PIL.Image.Image
    """Open an image file as an RGB PIL image, fully decoded (raises :class:`FormatError` if unreadable)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FormatError(f"cannot read image {path}: {exc}") from exc


def pil_to_tensor(im) -> torch.Tensor:  # noqa: ANN001 - PIL image
    """PIL RGB image → float ``[3,H,W]`` in [0,1]."""
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return torch.from_numpy(arr[..., :3].copy()).permute(2, 0, 1).float().div_(255.0)


def read_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file (PNG, JPEG, …) as float ``[3,H,W]`` in [0,1] (alpha dropped, grey expanded)."""
    return pil_to_tensor(read_image_pil(path))


def _check_images(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if images.ndim == 3:
        return images[None], True
    if images.ndim != 4:
        raise InputError(f"images must be [V,3,H,W] or [3,H,W], got {list(images.shape)}")
    return images, False


def _scale_k(K: torch.Tensor | None, sx: float, sy: float) -> torch.Tensor | None:
    if K is None:
        return None
    K = K.clone()
    K[..., 0, :] *= sx
    K[..., 1, :] *= sy
    K[..., 2, :] = torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype)
    return K


def _crop_k(K: torch.Tensor | None, x0: float, y0: float) -> torch.Tensor | None:
    if K is None:
        return None
    K = K.clone()
    K[..., 0, 2] -= x0
    K[..., 1, 2] -= y0
    return K


def _interp(images: torch.Tensor, h: int, w: int, antialias: bool) -> torch.Tensor:
    if images.shape[-2:] == (h, w):
        return images
    out = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)
    return out.clamp_(0, 1)


def resize(
    images: torch.Tensor, size: Size, K: torch.Tensor | None = None, antialias: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resize to ``size`` ignoring the aspect ratio (bilinear).

    Args:
        images: ``[V,3,H,W]`` or ``[3,H,W]`` in [0,1].
        size: output ``(h, w)`` or a square side.
        K: optional pixel intrinsics ``[V,3,3]`` of the input, scaled per axis.

    Returns:
        ``(images [V,3,h,w], K [V,3,3] | None)``.
    """
    x, single = _check_images(images)
    h, w = as_size(size)
    H, W = x.shape[-2:]
    out = _interp(x, h, w, antialias)
    return (out[0] if single else out), _scale_k(K, w / W, h / H)


def resize_center_crop(
    images: torch.Tensor, size: Size, K: torch.Tensor | None = None, antialias: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Aspect-preserving resize so the image covers ``size``, then a centre crop (the default protocol).

    The scale is ``max(h/H, w/W)``; the resized size is rounded, the crop offset is
    ``(new - out) // 2`` per axis. ``K`` (``[V,3,3]``, pixel) is scaled by the exact per-axis factors
    ``new_w/W``, ``new_h/H`` and shifted by the crop.

    Returns:
        ``(images [V,3,h,w], K | None)``.
    """
    x, single = _check_images(images)
    h, w = as_size(size)
    H, W = x.shape[-2:]
    s = max(h / H, w / W)
    nh, nw = max(h, round(H * s)), max(w, round(W * s))
    x = _interp(x, nh, nw, antialias)
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    x = x[..., y0 : y0 + h, x0 : x0 + w]
    K = _crop_k(_scale_k(K, nw / W, nh / H), x0, y0)
    return (x[0] if single else x), K


def official_train_resize_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The VIST3A training loaders' ``resize_shorter_crop_square_batch``: bilinear *without* antialiasing
    so the shorter side is ``size``, then a centre crop to ``size × size``. ``[V,3,H,W]`` → ``[V,3,s,s]``."""
    x, single = _check_images(images)
    H, W = x.shape[-2:]
    s = size / min(H, W)
    nh, nw = round(H * s), round(W * s)
    x = _interp(x, nh, nw, antialias=False)
    y0, x0 = max(nh - size, 0) // 2, max(nw - size, 0) // 2
    x = x[..., y0 : y0 + size, x0 : x0 + size]
    return x[0] if single else x


def official_resize_crop(
    image,  # PIL.Image.Image
    size: int,
    K: torch.Tensor | None = None,
    feedforward_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The official RE10K evaluation preprocessing (``rescale_image_w_crop``), width/height swap included.

    The official code reads ``H, W = image.size`` although PIL returns ``(W, H)``: the image is resized
    with PIL Lanczos to ``(round(H·s) wide, round(W·s) tall)`` with ``s = size / min(W, H)`` — its aspect
    ratio *swapped* (640×360 → 512×910) — then centre-cropped to ``size²`` and resized (Lanczos) to
    ``feedforward_size²``. The returned intrinsics are the *geometrically correct* ones of that
    distorted image (per-axis scale), not the official code's (which scales both axes alike and is
    unused there).

    Args:
        image: a PIL RGB image.
        size: the square crop side (512 in VIST3A).
        K: optional ``[3,3]`` pixel intrinsics of ``image``.
        feedforward_size: optional second side (448) resized from the crop.

    Returns:
        ``(crop [3,s,s], K_crop | None, feedforward [3,f,f] | None, K_feedforward | None)``.
    """
    from PIL import Image

    lanczos = Image.Resampling.LANCZOS
    W0, H0 = image.size
    s = size / min(W0, H0)
    new_w, new_h = round(H0 * s), round(W0 * s)  # the swap
    big = image.resize((new_w, new_h), resample=lanczos)
    x0, y0 = max((new_w - size) // 2, 0), max((new_h - size) // 2, 0)
    crop = big.crop((x0, y0, x0 + size, y0 + size))
    k_crop = _crop_k(_scale_k(K, new_w / W0, new_h / H0), x0, y0)
    ff = k_ff = None
    if feedforward_size is not None:
        ff_img = crop.resize((feedforward_size, feedforward_size), resample=lanczos)
        ff = pil_to_tensor(ff_img)
        k_ff = _scale_k(k_crop, feedforward_size / size, feedforward_size / size)
    return pil_to_tensor(crop), k_crop, ff, k_ff


# --------------------------------------------------------------------------------------------------
# Colour jitter (one draw per clip), as torchvision.transforms.ColorJitter
# --------------------------------------------------------------------------------------------------
def _grey(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[..., 0, :, :] + 0.587 * x[..., 1, :, :] + 0.114 * x[..., 2, :, :]).unsqueeze(-3)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(-3)
    maxc, _ = x.max(-3)
    minc, _ = x.min(-3)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], -3)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(-3)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v], -1),
            torch.stack([t, v, v, q, p, p], -1),
            torch.stack([p, p, t, v, v, q], -1),
        ],
        -4,
    )  # [...,3,H,W,6]
    return torch.gather(table, -1, i.unsqueeze(-3).unsqueeze(-1).expand(*table.shape[:-1], 1)).squeeze(-1)


class ColorJitter:
    """Brightness/contrast/saturation/hue jitter with *one* random draw shared by all frames of a clip.

    Factors as torchvision: brightness, contrast, saturation ∈ U[1-a, 1+a], hue shift ∈ U[-h, h]
    (h ≤ 0.5); applied in a random order. VIST3A trains with (0.5, 0.5, 0.5, 0.1).
    ``__call__(images [V,3,H,W], generator=None)`` → ``[V,3,H,W]`` in [0,1].
    """

    def __init__(self, brightness: float = 0.5, contrast: float = 0.5, saturation: float = 0.5, hue: float = 0.1):
        if not 0 <= hue <= 0.5:
            raise InputError(f"hue jitter must be in [0, 0.5], got {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        def u(lo: float, hi: float) -> float:
            return float(lo + (hi - lo) * torch.rand((), generator=generator))

        order = torch.randperm(4, generator=generator).tolist()
        fb = u(max(0.0, 1 - self.brightness), 1 + self.brightness)
        fc = u(max(0.0, 1 - self.contrast), 1 + self.contrast)
        fs = u(max(0.0, 1 - self.saturation), 1 + self.saturation)
        fh = u(-self.hue, self.hue)
        x = images
        for op in order:
            if op == 0 and self.brightness > 0:
                x = (x * fb).clamp(0, 1)
            elif op == 1 and self.contrast > 0:
                mean = _grey(x).mean((-3, -2, -1), keepdim=True)  # per frame, as torchvision
                x = (fc * x + (1 - fc) * mean).clamp(0, 1)
            elif op == 2 and self.saturation > 0:
                x = (fs * x + (1 - fs) * _grey(x)).clamp(0, 1)
            elif op == 3 and self.hue > 0 and not math.isclose(fh, 0.0):
                hsv = _rgb_to_hsv(x)
                hsv = torch.stack([(hsv[..., 0, :, :] + fh) % 1.0, hsv[..., 1, :, :], hsv[..., 2, :, :]], -3)
                x = _hsv_to_rgb(hsv).clamp(0, 1)
        return x


def stack_frames(frames: Sequence[torch.Tensor], where: str) -> torch.Tensor:
    """Stack ``[3,H,W]`` frames to ``[V,3,H,W]``; frames of different sizes are a :class:`FormatError`."""
    sizes = {tuple(f.shape) for f in frames}
    if len(sizes) > 1:
        raise FormatError(f"{where}: frames differ in size {sorted(sizes)}")
    return torch.stack(list(frames))
