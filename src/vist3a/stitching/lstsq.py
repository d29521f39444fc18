"""Streaming ridge least squares for a linear (convolutional) map, in float64.

The layer search (paper Sec. 3.1, METHOD §2.3) fits ``Y ≈ X W + b`` where each row of X is one receptive
field of the stitching convolution (im2col of the latent, d = C·prod(kernel) columns) and each row of Y is
the reconstruction network's token at that output position (D columns). The number of rows grows with
the number of clips (13·32·32 per clip at the official size), so X and Y are never stored: only their
moments are accumulated, O(d² + d·D) numbers, whatever the clip count.

Moments kept (all float64):

- :class:`DesignMoments` for X: ``n``, ``Σx`` [d], ``XᵀX`` [d,d] — shared by every target fitted on the
  same X (every candidate layer of the search);
- :class:`TargetMoments` for one Y: ``Σy`` [D], ``Σy²`` [D] (per channel), ``XᵀY`` [d,D].

From them :func:`ridge_solve` computes the ridge solution with an *unpenalised* intercept, and
:func:`sum_squared_error` the residual sum of squares of any (W, b) on any data set — training or
held-out — as ``tr(YᵀY) − 2 tr(W̃ᵀX̃ᵀY) + tr(W̃ᵀX̃ᵀX̃W̃)`` with ``X̃ = [X, 1]``, ``W̃ = [W; b]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.stitching.spec import ConvSpec

ACC_DTYPE = torch.float64


def im2col(x: torch.Tensor, spec: ConvSpec, padding_mode: str | None = None) -> torch.Tensor:
    """Every receptive field of ``spec`` on ``x`` as one row, in the layer's weight order.

    The rows are padded exactly as the layer pads (``spec.padding_mode``, replicate for the official
    layer) unless ``padding_mode`` overrides it, so ``im2col(x) @ weight.reshape(D, -1).T + bias``
    equals the convolution's output, row for row.

    Args:
        x: conv3d: ``[B, C, T, h, w]``; conv2d: ``[B, C, T, h, w]`` (applied per frame) or ``[B, C, h, w]``;
            conv1d: ``[B, C, L]``.
        spec: the stitching layer.
        padding_mode: ``"replicate"`` or ``"zeros"``; default ``spec.padding_mode``.

    Returns:
        ``[B·T_out·h_out·w_out, C·prod(kernel)]`` with rows ordered (B, T, h, w) and columns ordered
        (C, kT, kH, kW) — the flattening of ``conv.weight[o]``.
    """
    mode = padding_mode or spec.padding_mode
    if spec.dim == 2 and x.ndim == 5:  # per frame: (B T) C h w
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
    if x.ndim != spec.dim + 2:
        raise InputError(f"conv{spec.dim}d im2col needs a {spec.dim + 2}-d input, got shape {tuple(x.shape)}")
    pad: list[int] = []
    for p in reversed(spec.padding):  # F.pad wants the last axis first
        pad += [p, p]
    if any(pad):
        x = F.pad(x, pad, mode="replicate") if mode == "replicate" else F.pad(x, pad)
    n, c = x.shape[:2]
    for axis, (k, s, d) in enumerate(zip(spec.kernel_size, spec.stride, spec.dilation, strict=True)):
        extent = d * (k - 1) + 1
        if x.shape[2 + axis] < extent:
            raise InputError(
                f"input axis {axis} of size {x.shape[2 + axis]} (after padding) is smaller than the kernel "
                f"extent {extent} of {spec}"
            )
        x = x.unfold(2 + axis, extent, s)  # appends a window axis
        if d > 1:
            x = x[..., ::d]
    # x: N, C, out_1..out_k, k_1..k_k  ->  N, out_1..out_k, C, k_1..k_k
    k = spec.dim
    order = [0, *range(2, 2 + k), 1, *range(2 + k, 2 + 2 * k)]
    return x.permute(order).reshape(-1, c * int(torch.tensor(spec.kernel_size).prod()))


@dataclass
class DesignMoments:
    """Moments of the design matrix X [n, d]: n, Σx [d], XᵀX [d, d] (float64)."""

    dim: int
    device: torch.device | str = "cpu"
    n: int = 0
    x_sum: torch.Tensor = field(init=False)
    xtx: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.x_sum = torch.zeros(self.dim, dtype=ACC_DTYPE, device=self.device)
        self.xtx = torch.zeros(self.dim, self.dim, dtype=ACC_DTYPE, device=self.device)

    def add(self, x: torch.Tensor) -> None:
        """Accumulate rows ``x`` [m, d] (cast to float64)."""
        x = x.to(self.xtx.device, ACC_DTYPE)
        self.n += x.shape[0]
        self.x_sum += x.sum(0)
        self.xtx.addmm_(x.T, x)


@dataclass
class TargetMoments:
    """Moments of one target Y [n, D] against X [n, d]: Σy [D], Σy² [D], XᵀY [d, D] (float64)."""

    in_dim: int
    out_dim: int
    device: torch.device | str = "cpu"
    y_sum: torch.Tensor = field(init=False)
    y_sq: torch.Tensor = field(init=False)
    xty: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.y_sum = torch.zeros(self.out_dim, dtype=ACC_DTYPE, device=self.device)
        self.y_sq = torch.zeros(self.out_dim, dtype=ACC_DTYPE, device=self.device)
        self.xty = torch.zeros(self.in_dim, self.out_dim, dtype=ACC_DTYPE, device=self.device)

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Accumulate rows ``x`` [m, d] (already float64 on this device) and ``y`` [m, D]."""
        y = y.to(self.xty.device, ACC_DTYPE)
        self.y_sum += y.sum(0)
        self.y_sq += y.square().sum(0)
        self.xty.addmm_(x.T, y)


def ridge_solve(
    design: DesignMoments, target: TargetMoments, ridge: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression with an unpenalised intercept, from moments.

    Minimises ``‖Y − XW − 1bᵀ‖² + λ‖W‖²``. Solved in centred form for conditioning:
    ``W = (XᵀX − n μμᵀ + λI)⁻¹ (XᵀY − n μ ȳᵀ)``, ``b = ȳ − Wᵀμ`` (μ = Σx/n, ȳ = Σy/n); this is exactly the
    normal-equation solution of the augmented system ``[X, 1]`` with no penalty on the intercept column.

    Returns:
        ``W`` [d, D] and ``b`` [D], float64.
    """
    n = design.n
    if n == 0:
        raise InputError("no training rows were accumulated; call update(..., split='train') first")
    if ridge < 0:
        raise InputError(f"ridge must be >= 0, got {ridge}")
    mu = design.x_sum / n
    ybar = target.y_sum / n
    sxx = design.xtx - n * torch.outer(mu, mu)
    sxy = target.xty - n * torch.outer(mu, ybar)
    sxx.diagonal().add_(ridge)
    w, info = torch.linalg.solve_ex(sxx, sxy)
    if int(info) != 0 or not torch.isfinite(w).all():
        # singular (ridge 0 with collinear columns, or fewer rows than columns): minimum-norm solution
        w = torch.linalg.pinv(sxx, hermitian=True) @ sxy
    b = ybar - mu @ w
    return w, b


def sum_squared_error(
    design: DesignMoments, target: TargetMoments, w: torch.Tensor, b: torch.Tensor
) -> float:
    """``Σ‖y − Wᵀx − b‖²`` over all accumulated rows and channels, from moments (clamped at 0).

    Expands ``‖Y − X̃W̃‖² = tr(YᵀY) − 2 tr(W̃ᵀX̃ᵀY) + tr(W̃ᵀX̃ᵀX̃W̃)`` with ``X̃ = [X, 1]``, ``W̃ = [W; b]``.
    """
    yty = target.y_sq.sum()
    cross = (w * target.xty).sum() + (b * target.y_sum).sum()
    xw = design.xtx @ w  # d, D
    quad = (w * xw).sum() + 2 * (b * (design.x_sum @ w)).sum() + design.n * b.square().sum()
    return max(float(yty - 2 * cross + quad), 0.0)


def total_sum_squares(design: DesignMoments, target: TargetMoments) -> float:
    """``Σ_c Σ_i (y_ic − ȳ_c)²``: the error of predicting each channel by its mean (for R²)."""
    if design.n == 0:
        return 0.0
    return float((target.y_sq - target.y_sum.square() / design.n).sum().clamp_min(0))
