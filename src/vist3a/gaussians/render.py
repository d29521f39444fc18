"""Differentiable rendering of 3D Gaussians: ``render(gaussians, cameras) -> RenderOutput``.

Two backends with one contract (the GPU test ``tests/test_render_gpu.py`` holds them together):

- ``"gsplat"``: gsplat's CUDA rasteriser, the fast path (CUDA tensors, float32, gsplat installed);
- ``"torch"``: the pure-PyTorch reference in :mod:`vist3a.gaussians.render_torch`, the same maths
  (EWA splatting with gsplat's 0.3 px² dilation, opacity-aware footprints, 16×16 tiles,
  front-to-back compositing with the 1e-4 transmittance stop), on any device and dtype.

``backend="auto"`` takes gsplat for CUDA float32 scenes when it is installed and works, else torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians, sh_degree_from_k
from vist3a.gaussians.render_gsplat import GsplatUnavailableError, gsplat_installed, render_gsplat
from vist3a.gaussians.render_torch import EPS2D, render_torch

__all__ = ["BACKENDS", "GsplatUnavailableError", "RenderOutput", "render", "resolve_backend"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gsplat", "torch")
RASTERIZE_MODES = ("classic", "antialiased")
_gsplat_broken: str | None = None  # set once gsplat failed in "auto" mode, so we warn only once


@dataclass
class RenderOutput:
    """What :func:`render` returns; N = number of cameras.

    Attributes:
        rgb: ``[N,3,H,W]`` colour composited over the background; in [0,1] when the Gaussians'
            colours are (SH colours are clamped at 0 but, as in gsplat, not at 1).
        depth: ``[N,1,H,W]`` expected z-depth (camera-space z, not ray length):
            ``Σ wᵢ zᵢ / Σ wᵢ`` — alpha-weighted and *normalised by alpha* (gsplat's "ED" mode);
            0 where nothing was drawn.
        alpha: ``[N,1,H,W]`` accumulated opacity ``1 − T_final``.
        backend: ``"gsplat"`` or ``"torch"``, the backend that produced it.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    backend: str


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """Pick ``"gsplat"`` or ``"torch"`` for ``backend`` in ``BACKENDS`` (see the module docstring)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "gsplat":
        if not gsplat_installed():
            raise GsplatUnavailableError(
                "backend='gsplat' but gsplat is not installed; `pip install gsplat` (needs CUDA) or use backend='torch'"
            )
        if device.type != "cuda":
            raise GsplatUnavailableError(
                f"backend='gsplat' needs the scene on a CUDA device, it is on {device}; "
                "move it with gaussians.to('cuda') or use backend='torch'"
            )
        return "gsplat"
    if backend == "torch":
        return "torch"
    ok = device.type == "cuda" and dtype == torch.float32 and gsplat_installed() and _gsplat_broken is None
    return "gsplat" if ok else "torch"


def _background(background: object, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Background colour(s) → ``[n,3]``: None (black), a float (grey), 3 floats, or a ``[3]``/``[n,3]`` tensor."""
    if background is None:
        return torch.zeros(n, 3, dtype=dtype, device=device)
    if isinstance(background, (int, float)):
        return torch.full((n, 3), float(background), dtype=dtype, device=device)
    if isinstance(background, torch.Tensor):
        bg = background.to(device=device, dtype=dtype)
    elif isinstance(background, Sequence):
        bg = torch.tensor([float(v) for v in background], dtype=dtype, device=device)
    else:
        raise InputError(f"background must be None, a number, 3 numbers or a tensor, got {type(background).__name__}")
    if bg.shape == (3,):
        return bg.expand(n, 3)
    if bg.shape == (n, 3):
        return bg
    raise InputError(f"background must have shape [3] or [{n},3], got {list(bg.shape)}")


def _check_scene(g: Gaussians) -> None:
    n = g.means.shape[0] if g.means.ndim == 2 else -1
    shapes = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
    if g.means.ndim != 2 or g.means.shape[1] != 3:
        raise InputError(f"Gaussians.means must be [N,3], got {list(g.means.shape)}")
    for name, shape in shapes.items():
        t = getattr(g, name)
        if tuple(t.shape) != shape:
            raise InputError(f"Gaussians.{name} must be {list(shape)}, got {list(t.shape)}")
        if t.device != g.means.device:
            raise InputError(f"Gaussians.{name} is on {t.device} but means are on {g.means.device}")
    if g.sh.ndim != 3 or g.sh.shape[0] != n or g.sh.shape[2] != 3:
        raise InputError(f"Gaussians.sh must be [N,K,3] with N={n}, got {list(g.sh.shape)}")
    sh_degree_from_k(g.sh.shape[1])
    for name in ("means", "quats", "scales", "opacities", "sh"):
        if not bool(torch.isfinite(getattr(g, name)).all()):
            raise InputError(f"cannot render: Gaussians.{name} has non-finite values")


def render(
    gaussians: Gaussians,
    cameras: Cameras,
    width: int | None = None,
    height: int | None = None,
    background: float | Sequence[float] | torch.Tensor | None = None,
    backend: str = "auto",
    sh_degree: int | None = None,
    *,
    rasterize_mode: str = "classic",
    eps2d: float = EPS2D,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    tile_size: int | None = None,
    max_elements: int | None = None,
) -> RenderOutput:
    """Render ``gaussians`` from every camera; differentiable w.r.t. all Gaussian parameters.

    Args:
        gaussians: N activated Gaussians (means, wxyz quats — normalised here —, linear scales,
            opacities in [0,1], SH ``[N,K,3]``).
        cameras: C pinhole cameras (OpenCV, camera-to-world, pixel intrinsics).
        width, height: output size; default the cameras' size. Cameras are rescaled (intrinsics per
            axis) when it differs; giving only one keeps the cameras' aspect ratio.
        background: None (black), a number, 3 numbers, or a tensor ``[3]`` / ``[C,3]``; added as
            ``(1 − alpha) · bg``.
        backend: ``"auto"``, ``"gsplat"`` (CUDA, float32; error if unavailable) or ``"torch"``.
        sh_degree: SH bands to use (default: all the scene has); must not exceed the scene's degree.
        rasterize_mode: ``"classic"`` or ``"antialiased"`` (gsplat's opacity compensation,
            ``opacity · sqrt(det Σ' / det(Σ' + eps2d·I))``).
        eps2d: screen-space dilation added to the 2D covariance diagonal (px²).
        near_plane, far_plane: Gaussians with camera z outside this open interval are culled.
        tile_size: tile edge in pixels; default 16 for gsplat and 8 for torch (fewer wasted pixel ×
            Gaussian pairs on CPU). The image does not depend on it (footprints are exact bounds).
        max_elements: memory bound of the torch backend (tiles × pixels × Gaussians per step);
            default 2^18 on CPU (1 MB per float32 intermediate, cache-sized) and 2^24 on GPU.
    Returns:
        :class:`RenderOutput` with ``rgb [C,3,H,W]``, ``depth [C,1,H,W]``, ``alpha [C,1,H,W]`` in the
        scene's dtype (float32 for half-precision scenes).
    """
    if not isinstance(gaussians, Gaussians):
        raise InputError(f"render needs a Gaussians scene, got {type(gaussians).__name__}")
    if not isinstance(cameras, Cameras):
        raise InputError(f"render needs Cameras, got {type(cameras).__name__}")
    if rasterize_mode not in RASTERIZE_MODES:
        raise InputError(f"rasterize_mode must be one of {', '.join(RASTERIZE_MODES)}, got {rasterize_mode!r}")
    if tile_size is not None and tile_size < 1:
        raise InputError(f"tile_size must be >= 1, got {tile_size}")
    _check_scene(gaussians)
    degree = gaussians.sh_degree
    if sh_degree is None:
        sh_degree = degree
    if not 0 <= sh_degree <= degree:
        raise InputError(f"sh_degree={sh_degree} but the scene has SH degree {degree} (use 0..{degree})")

    if width is None and height is None:
        width, height = cameras.width, cameras.height
    elif width is None:
        width = max(1, round(cameras.width * height / cameras.height))
    elif height is None:
        height = max(1, round(cameras.height * width / cameras.width))
    if width <= 0 or height <= 0:
        raise InputError(f"render size must be positive, got {width}x{height}")
    if (width, height) != (cameras.width, cameras.height):
        cameras = cameras.resized(width, height)

    g = gaussians
    dtype = g.dtype if g.dtype in (torch.float32, torch.float64) else torch.float32
    device = g.device
    c = len(cameras)
    bg = _background(background, c, dtype, device)
    w2c = cameras.w2c.to(device=device, dtype=dtype)
    K = cameras.K.to(device=device, dtype=dtype)
    args = (
        g.means.to(dtype), g.quats.to(dtype), g.scales.to(dtype), g.opacities.to(dtype), g.sh.to(dtype),
        w2c, K, width, height, sh_degree,
    )  # fmt: skip
    opts = dict(eps2d=eps2d, near_plane=near_plane, far_plane=far_plane, antialiased=rasterize_mode == "antialiased")

    chosen = resolve_backend(backend, device, dtype)
    if chosen == "gsplat":
        try:
            rgb, depth, alpha = render_gsplat(*args, tile_size=tile_size or 16, **opts)
        except GsplatUnavailableError as exc:
            if backend == "gsplat":
                raise
            global _gsplat_broken
            _gsplat_broken = str(exc)
            log.warning("%s — falling back to the PyTorch renderer", exc)
            chosen = "torch"
    if chosen == "torch":
        if max_elements is None:
            max_elements = 1 << 24 if device.type == "cuda" else 1 << 18
        rgb, depth, alpha = render_torch(*args, tile_size=tile_size or 8, max_elements=max_elements, **opts)

    rgb = rgb.to(dtype) + (1.0 - alpha.to(dtype)) * bg[:, None, None, :]
    depth = depth.to(dtype) / alpha.to(dtype).clamp_min(1e-10)
    to_nchw = lambda t: t.permute(0, 3, 1, 2).contiguous()
    return RenderOutput(to_nchw(rgb), to_nchw(depth), to_nchw(alpha.to(dtype)), chosen)
