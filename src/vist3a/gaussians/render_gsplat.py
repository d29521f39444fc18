"""The fast path: gsplat's CUDA rasteriser (``gsplat.rasterization``), imported lazily.

gsplat is an optional dependency (``pip install vist3a[cuda]``). Its PyPI wheel compiles its CUDA
kernels on first use (needs ``nvcc``); that can fail on a machine without a CUDA toolkit, which
:func:`render_gsplat` turns into a :class:`GsplatUnavailableError`.
"""

from __future__ import annotations

import importlib.util

import torch

from vist3a.errors import Vist3aError
from vist3a.gaussians.render_torch import EPS2D


class GsplatUnavailableError(Vist3aError, RuntimeError):
    """gsplat is not installed, there is no CUDA device, or its kernels failed to build."""


def gsplat_installed() -> bool:
    """True when the ``gsplat`` package can be imported (its kernels may still fail to build)."""
    return importlib.util.find_spec("gsplat") is not None


def render_gsplat(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    sh: torch.Tensor,
    w2c: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    sh_degree: int,
    eps2d: float = EPS2D,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    antialiased: bool = False,
    tile_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as :func:`vist3a.gaussians.render_torch.render_torch`, on CUDA, float32.

    Returns ``rgb [C,H,W,3]`` (no background), ``depth [C,H,W,1]`` (alpha-weighted z, not
    normalised) and ``alpha [C,H,W,1]``.
    """
    if not gsplat_installed():
        raise GsplatUnavailableError("gsplat is not installed; `pip install gsplat` (or vist3a[cuda]) or use backend='torch'")
    if means.device.type != "cuda":
        raise GsplatUnavailableError(f"the gsplat backend needs CUDA tensors, got device {means.device}; use backend='torch'")
    import gsplat

    k = (sh_degree + 1) ** 2
    try:
        colors, alphas, _ = gsplat.rasterization(
            means.float(),
            quats.float(),
            scales.float(),
            opacities.float(),
            sh[:, :k].float(),
            w2c.float(),
            K.float(),
            width,
            height,
            near_plane=near_plane,
            far_plane=far_plane,
            eps2d=eps2d,
            sh_degree=sh_degree,
            tile_size=tile_size,
            render_mode="RGB+D",
            rasterize_mode="antialiased" if antialiased else "classic",
        )
    except torch.cuda.OutOfMemoryError:
        raise
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:  # kernels failed to build or load (_C is None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GsplatUnavailableError(f"gsplat failed ({first}); use backend='torch'") from exc
    return colors[..., :3], colors[..., 3:4], alphas
