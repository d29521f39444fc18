"""Pure-PyTorch reference rasteriser of 3D Gaussians (EWA splatting), CPU or GPU.

The maths follows gsplat 1.5's default ("classic") and "antialiased" modes so that the two backends
agree to float precision (the GPU test holds them together):

1. **Projection** (:func:`project_gaussians`). World → camera with the world-to-camera matrix; the
   pinhole projection ``u = fx·x/z + cx``, ``v = fy·y/z + cy`` (skew ignored, as gsplat); the 2D
   covariance ``Σ' = J W Σ Wᵀ Jᵀ`` with the perspective Jacobian ``J`` evaluated at the mean, whose
   x/z and y/z are clamped to 1.3× the half field of view (gsplat's guard against huge off-screen
   Gaussians); then ``eps2d`` (0.3 px²) is added to the diagonal (the low-pass "dilation"). In
   "antialiased" mode the opacity is multiplied by ``sqrt(det Σ' / det(Σ' + eps2d·I))``.
   Gaussians with depth outside ``(near_plane, far_plane)``, a non-positive determinant, an
   (effective) opacity below 1/255 or a footprint entirely outside the image are culled.
2. **Footprint.** An opacity-aware axis-aligned box: half-sizes ``ceil(k·sqrt(Σ'_xx))`` and
   ``ceil(k·sqrt(Σ'_yy))`` with ``k = min(3.33, sqrt(2·ln(255·opacity)))`` — outside it every alpha
   is below 1/255 and would be skipped anyway, so binning never changes the image.
3. **Binning.** The image is cut into ``tile_size``² tiles (8 px by default here: on a CPU, smaller
   tiles waste fewer pixel × Gaussian evaluations than gsplat's 16); every Gaussian is listed in each tile its
   box touches; each tile's list is sorted front to back by camera-space depth ``z``.
4. **Compositing** per pixel (pixel centres at ``+0.5``), front to back::

       σ = ½(a·dx² + c·dy²) + b·dx·dy         (a, b, c: the conic, the inverse of Σ')
       α = min(0.999, opacity · exp(−σ));  skipped when σ < 0 or α < 1/255
       stop (exclusive) as soon as T·(1 − α) ≤ 1e-4
       C = Σ cᵢ αᵢ Tᵢ,   T_{i+1} = Tᵢ (1 − αᵢ),   alpha = 1 − T_final

   Tiles are processed in chunks, and each tile's Gaussian list in blocks (16 Gaussians, then
   ×4) with the transmittance carried between blocks, so memory stays bounded by
   ``max_elements`` whatever the scene. A tile leaves its chunk as soon as all its pixels have
   stopped: behind an opaque front only the first blocks of a long list are ever evaluated. With
   gradients on, each chunk is recomputed in the backward pass (activation checkpointing), so the
   saved state is the per-Gaussian inputs, not the per-pixel intermediates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from vist3a.gaussians.cameras import quat_to_matrix

ALPHA_THRESHOLD = 1.0 / 255.0
MAX_ALPHA = 0.999
TRANSMITTANCE_STOP = 1e-4
MAX_EXTEND = 3.33
#: Screen-space low-pass ("dilation") added to every projected covariance, px²: gsplat's default, and
#: the default of every renderer here (the preview merge counts it too, ``pipelines.export``).
EPS2D = 0.3


@dataclass
class Projected:
    """Screen-space Gaussians of one camera (all N; only ``valid`` ones are rendered).

    Attributes:
        means2d: ``[N,2]`` pixel coordinates of the projected means.
        cov2d: ``[N,2,2]`` screen covariance *including* the ``eps2d`` dilation.
        conics: ``[N,3]`` ``(a, b, c)`` of the inverse of ``cov2d``: ``[[a, b], [b, c]]``.
        depths: ``[N]`` camera-space z.
        opacities: ``[N]`` opacity used for compositing (× the compensation in antialiased mode).
        radii: ``[N,2]`` integer half-sizes (x, y) of the footprint box in pixels; 0 where culled.
        valid: ``[N]`` bool, the Gaussians that reach the image.
    """

    means2d: torch.Tensor
    cov2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    opacities: torch.Tensor
    radii: torch.Tensor
    valid: torch.Tensor


def covariance_3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """World covariance ``R S Sᵀ Rᵀ`` ``[N,3,3]`` from quaternions wxyz ``[N,4]`` and scales ``[N,3]``."""
    m = quat_to_matrix(quats) * scales[:, None, :]
    return m @ m.transpose(1, 2)


def project_gaussians(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    w2c: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    eps2d: float = EPS2D,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    antialiased: bool = False,
) -> Projected:
    """EWA projection of N Gaussians into one pinhole camera (see the module docstring).

    Args:
        means: ``[N,3]`` world positions. quats: ``[N,4]`` wxyz (normalised here). scales: ``[N,3]``.
        opacities: ``[N]`` in [0,1]. w2c: ``[4,4]`` world-to-camera (OpenCV). K: ``[3,3]`` pixel intrinsics.
        width, height: image size in pixels (used for the Jacobian clamp and the on-screen test).
    """
    rot, trans = w2c[:3, :3], w2c[:3, 3]
    means_c = means @ rot.T + trans  # N, 3
    x, y, z = means_c.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    in_depth = (z > near_plane) & (z < far_plane)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))  # keeps culled Gaussians' gradients finite
    rz = 1.0 / z_safe
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)  # N, 2

    # Jacobian of the perspective projection at the (clamped) mean.
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    zero = torch.zeros_like(rz)
    jac = torch.stack(
        [fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], dim=-1
    ).reshape(-1, 2, 3)  # N, 2, 3
    jw = jac @ rot  # N, 2, 3 : J W
    cov2d = jw @ covariance_3d(quats, scales) @ jw.transpose(1, 2)  # N, 2, 2

    det_orig = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    det_ok = det > 0
    det_safe = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack(
        [cov2d[:, 1, 1] / det_safe, -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]) / det_safe, cov2d[:, 0, 0] / det_safe],
        dim=-1,
    )
    if antialiased:
        comp = torch.sqrt(torch.clamp(det_orig / det_safe, min=0.0))
        opacities = opacities * comp

    with torch.no_grad():
        valid = in_depth & det_ok & (opacities >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(opacities.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp(max=MAX_EXTEND)
        diag = torch.stack([cov2d[:, 0, 0], cov2d[:, 1, 1]], dim=-1).clamp_min(0)
        radii = torch.ceil(extend[:, None] * torch.sqrt(diag))  # N, 2
        valid &= (radii > 0).any(-1)
        mx, my = means2d[:, 0], means2d[:, 1]
        valid &= (mx + radii[:, 0] > 0) & (mx - radii[:, 0] < width)
        valid &= (my + radii[:, 1] > 0) & (my - radii[:, 1] < height)
        radii = torch.where(valid[:, None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projected(means2d, cov2d, conics, z, opacities, radii, valid)


@dataclass
class TileBins:
    """Gaussian lists per tile, front to back.

    Attributes:
        ids: ``[I]`` indices into the projected (valid) Gaussians, grouped by tile, depth-sorted within.
        start: ``[n_tiles]`` offset of each tile's list in ``ids``.
        count: ``[n_tiles]`` length of each tile's list.
        tiles_x, tiles_y: the tile grid.
    """

    ids: torch.Tensor
    start: torch.Tensor
    count: torch.Tensor
    tiles_x: int
    tiles_y: int


def _tile_ranges(
    means2d: torch.Tensor, radii: torch.Tensor, tiles_x: int, tiles_y: int, tile_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tiles ``[x0, x1) × [y0, y1)`` (each ``[M]`` int64) that each footprint box touches."""
    r = radii.to(means2d.dtype)
    lo = torch.floor((means2d - r) / tile_size).long()
    hi = torch.ceil((means2d + r) / tile_size).long()
    x0, x1 = lo[:, 0].clamp(0, tiles_x), hi[:, 0].clamp(0, tiles_x)
    y0, y1 = lo[:, 1].clamp(0, tiles_y), hi[:, 1].clamp(0, tiles_y)
    return x0, x1, y0, y1


@torch.no_grad()
def tile_counts(means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int, tile_size: int) -> torch.Tensor:
    """``[tiles_y, tiles_x]`` the length of each tile's list, as :func:`bin_gaussians` would make it, in
    ``O(M + tiles)`` (box sums of a 2D difference array; no list is built)."""
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    x0, x1, y0, y1 = _tile_ranges(means2d, radii, tiles_x, tiles_y, tile_size)
    diff = torch.zeros((tiles_y + 1) * (tiles_x + 1), dtype=torch.long, device=means2d.device)
    stride = tiles_x + 1
    ones = torch.ones_like(x0)
    for ys, xs, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
        diff.index_add_(0, ys * stride + xs, ones * sign)
    return diff.view(tiles_y + 1, tiles_x + 1).cumsum(0).cumsum(1)[:tiles_y, :tiles_x]


#: Cost model of :func:`choose_tile_size` (relative CPU costs measured with this renderer): binning one
#: (tile, Gaussian) pair, evaluating one (pixel, Gaussian) pair, and the list length past which a tile
#: as wide as the median footprint radius is assumed to have stopped early (an opaque front saturates a tile within
#: the first blocks). A tile k times wider needs about k² splats per layer to
#: be covered, so its saturation length is scaled by k² (a 224² trained-recon preview with 8–12 px
#: splats: measured 0.25 / 0.26 / 0.55 / 1.8 s per frame at 4 / 8 / 16 / 32 px tiles; the unscaled
#: length picked 32).
BIN_PAIR_COST = 3.5
PIXEL_PAIR_COST = 1.0
SATURATED_LIST = 128


@torch.no_grad()
def choose_tile_size(
    means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int, candidates: tuple[int, ...] = (4, 8, 16, 32)
) -> int:
    """The candidate tile edge with the lowest estimated CPU cost for these footprints.

    ``cost = BIN_PAIR_COST · Σ_t n_t + PIXEL_PAIR_COST · tile² · Σ_t min(n_t, SATURATED_LIST · max(1, tile/r)²)``
    (r the median footprint radius) with
    ``n_t`` the list length of tile t (:func:`tile_counts`): small tiles waste fewer pixel evaluations
    on small footprints; footprints much larger than a tile make binning dominate (a 30 px splat is
    listed in ~250 tiles of 4 px) and larger tiles win. The image does not depend on the choice.
    """
    costs = tile_size_costs(means2d, radii, width, height, candidates)
    return min(costs, key=costs.__getitem__)


@torch.no_grad()
def tile_size_costs(
    means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int, candidates: tuple[int, ...] = (4, 8, 16, 32)
) -> dict[int, float]:
    """The estimated cost (arbitrary units) of each candidate tile edge; see :func:`choose_tile_size`."""
    if not candidates:
        raise ValueError("no candidate tile sizes")
    out = {}
    footprint = max(1.0, float(radii.max(-1).values.float().median())) if len(radii) else 1.0  # radius, px
    for ts in candidates:
        n = tile_counts(means2d, radii, width, height, ts)
        saturated = SATURATED_LIST * max(1.0, ts / footprint) ** 2
        out[ts] = BIN_PAIR_COST * float(n.sum()) + PIXEL_PAIR_COST * ts * ts * float(n.clamp(max=saturated).sum())
    return out


@torch.no_grad()
def bin_gaussians(
    means2d: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = 16,
) -> TileBins:
    """List each Gaussian (``means2d [M,2]``, ``radii [M,2]``, ``depths [M]``) in the tiles its box touches."""
    device = means2d.device
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    n_tiles = tiles_x * tiles_y
    x0, x1, y0, y1 = _tile_ranges(means2d, radii, tiles_x, tiles_y, tile_size)
    wx = x1 - x0
    counts = wx * (y1 - y0)  # M
    order = torch.argsort(depths)  # front to back
    counts_sorted = counts[order]
    total = int(counts_sorted.sum())
    gid = torch.repeat_interleave(order, counts_sorted)  # I: Gaussian of each intersection
    first = torch.cumsum(counts_sorted, 0) - counts_sorted
    local = torch.arange(total, device=device) - torch.repeat_interleave(first, counts_sorted)
    w = wx[gid]
    tile = (y0[gid] + local // w) * tiles_x + x0[gid] + local % w
    tile_sorted, perm = torch.sort(tile, stable=True)  # keeps the depth order inside a tile
    ids = gid[perm]
    count = torch.bincount(tile_sorted, minlength=n_tiles)
    start = torch.cumsum(count, 0) - count
    return TileBins(ids, start, count, tiles_x, tiles_y)


#: First block of Gaussians per tile composited at once; later blocks grow ×BLOCK_GROWTH (up to the
#: memory bound) while tiles stay unfinished. Small first blocks let the tiles that an opaque front saturates stop early.
FIRST_BLOCK = 16
#: Growth of the block from one step to the next.
BLOCK_GROWTH = 4


def _composite_chunk(
    pix: torch.Tensor,
    ids: torch.Tensor,
    starts: torch.Tensor,
    lengths: torch.Tensor,
    means2d: torch.Tensor,
    conics: torch.Tensor,
    opacities: torch.Tensor,
    features: torch.Tensor,
    max_elements: int,
    transmittance_stop: float = TRANSMITTANCE_STOP,
    first_block: int = FIRST_BLOCK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Front-to-back compositing of a chunk of tiles, with per-tile early termination.

    Args:
        pix: ``[T,P,2]`` pixel centres. ids: ``[I]`` the binned Gaussian lists (:class:`TileBins`);
            starts, lengths: ``[T]`` each tile's list in ``ids``. Past its end a list reads the index
            ``M`` of a dummy, transparent Gaussian.
            means2d ``[M+1,2]``, conics ``[M+1,3]``, opacities ``[M+1]``, features ``[M+1,F]`` (the dummy last).
        max_elements: bound on ``tiles × pixels × Gaussians`` per block.
        transmittance_stop: a pixel stops (exclusive) once ``T·(1 − α)`` would reach it; 0 = never.
    Returns:
        ``[T,P,F+1]``: the composited features and, last, the transmittance ``T_final``; and the number
        of (tile, listed Gaussian) pairs evaluated (a 0-d int64 tensor; padding not counted).

    The lists are walked in blocks, first ``first_block`` Gaussians then ×:data:`BLOCK_GROWTH` (bounded by
    ``max_elements``); after each block the tiles whose pixels have all stopped, or whose lists are
    exhausted, leave the chunk, so a tile behind an opaque front costs a few blocks whatever its list
    length (the early termination of the 3DGS rasteriser, per tile). The result does not depend on the
    blocking: the transmittance is carried between blocks and the stop is per pixel.

    The conic of a projected Gaussian is positive definite (``eps2d > 0`` is added to a PSD matrix), so
    gsplat's ``σ < 0`` test never fires and is left out.
    """
    n_tiles, n_pix = pix.shape[:2]
    n_feat = features.shape[1]
    acc = pix.new_zeros(n_tiles, n_pix, n_feat)
    t = pix.new_ones(n_tiles, n_pix)  # transmittance in front of the next Gaussian
    done = torch.zeros(n_tiles, n_pix, dtype=torch.bool, device=pix.device)  # the stop has fired
    rows = torch.arange(n_tiles, device=pix.device)  # chunk rows still running
    finished_rows, finished = [], []
    visited = torch.zeros((), dtype=torch.long, device=pix.device)
    longest = int(lengths.max()) if n_tiles else 0
    pad = means2d.shape[0] - 1
    last_id = max(ids.shape[0] - 1, 0)
    l0, block = 0, max(1, first_block)
    while rows.numel() > 0:
        block = min(block, longest - l0)
        offs = torch.arange(l0, l0 + block, device=pix.device)
        real = offs < lengths[rows, None]  # T, B: inside the tile's list (else the dummy)
        g = torch.where(real, ids[(starts[rows, None] + offs).clamp(max=last_id)], pad)  # T, B
        visited += real.sum()
        m, con, op = means2d[g], conics[g], opacities[g]  # T,B,2 / T,B,3 / T,B
        half_a, b, half_c = (0.5 * con[:, None, :, 0]), con[:, None, :, 1], (0.5 * con[:, None, :, 2])
        p = pix[rows]
        dx = p[..., 0:1] - m[:, None, :, 0]  # T, P, B
        dy = p[..., 1:2] - m[:, None, :, 1]
        sigma = torch.addcmul(torch.addcmul(b * dy, half_a, dx) * dx, half_c * dy, dy)
        alpha = torch.clamp_max(op[:, None, :] * torch.exp(-sigma), MAX_ALPHA)
        alpha = alpha * (alpha >= ALPHA_THRESHOLD)
        one_minus = 1.0 - alpha
        trans = t[..., None] * torch.cumprod(one_minus, dim=-1)  # T, P, B: transmittance after each
        with torch.no_grad():
            include = trans > transmittance_stop  # a prefix along the list: the stop is exclusive
            if bool(done.any()):
                include &= ~done[..., None]
            n_inc = include.sum(-1)  # T, P
            done = done | (n_inc < include.shape[-1])
        weights = alpha * trans / one_minus * include  # alpha_i * T_i (T in front of i)
        acc = acc + torch.bmm(weights, features[g])  # T, P, F
        last = torch.gather(trans, -1, (n_inc - 1).clamp_min(0)[..., None]).squeeze(-1)
        t = torch.where(n_inc > 0, last, t)
        l0 += block
        with torch.no_grad():
            stop = done.all(-1) | (lengths[rows] <= l0)  # T: every pixel stopped, or the list is used up
        if bool(stop.any()):
            finished_rows.append(rows[stop])
            finished.append(torch.cat([acc[stop], t[stop, :, None]], dim=-1))
            keep = ~stop
            rows, acc, t, done = rows[keep], acc[keep], t[keep], done[keep]
        if rows.numel() > 0:
            block = min(BLOCK_GROWTH * block, max(first_block, max_elements // (n_pix * rows.numel())))
    rows_done = torch.cat(finished_rows)  # the chunk row of each finished tile, in finishing order
    where = torch.empty_like(rows_done)
    where[rows_done] = torch.arange(n_tiles, device=pix.device)
    return torch.cat(finished)[where], visited


def rasterize(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    opacities: torch.Tensor,
    features: torch.Tensor,
    depths: torch.Tensor,
    radii: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = 8,
    max_elements: int = 1 << 18,
    transmittance_stop: float = TRANSMITTANCE_STOP,
    stats: dict[str, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile-based front-to-back compositing of M screen-space Gaussians.

    Args:
        means2d: ``[M,2]``; conics: ``[M,3]``; opacities: ``[M]``; features: ``[M,F]`` (colours, depth...);
        depths: ``[M]`` sort keys; radii: ``[M,2]`` footprint half-sizes (ints).
        max_elements: bound on ``tiles × pixels × Gaussians`` evaluated at once (memory knob).
        transmittance_stop: the per-pixel stop (gsplat's 1e-4; 0 composites every listed Gaussian).
        stats: when given, filled with ``intersections`` (tile × Gaussian pairs binned) and ``visited``
            (pairs actually composited: fewer when tiles stop early).
    Returns:
        ``features [H,W,F]`` (not background-blended) and ``alpha [H,W,1]`` (``1 − T_final``).
    """
    dtype, device = means2d.dtype, means2d.device
    n_feat = features.shape[1]
    n_pix = tile_size * tile_size
    bins = bin_gaussians(means2d, radii, depths, width, height, tile_size)
    n_tiles = bins.tiles_x * bins.tiles_y
    means_p = torch.cat([means2d, means2d.new_zeros(1, 2)])
    conics_p = torch.cat([conics, conics.new_zeros(1, 3)])
    opac_p = torch.cat([opacities, opacities.new_zeros(1)])
    feat_p = torch.cat([features, features.new_zeros(1, n_feat)])

    ar = torch.arange(tile_size, device=device, dtype=dtype) + 0.5
    local = torch.stack(torch.meshgrid(ar, ar, indexing="xy"), dim=-1).reshape(n_pix, 2)  # P, 2 (x, y)

    out = torch.zeros(n_tiles, n_pix, n_feat + 1, dtype=dtype, device=device)
    out[..., -1] = 1.0  # transmittance of empty tiles
    busy = torch.nonzero(bins.count > 0).squeeze(1)
    busy = busy[torch.argsort(bins.count[busy], descending=True)]
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (means2d, conics, opacities, features))
    # Tiles per chunk: enough for the first blocks to fill the memory bound (tiles sorted by list length,
    # so a chunk's tiles tend to finish together).
    n_chunk = max(1, max_elements // (n_pix * FIRST_BLOCK))
    chunks, ids_done = [], []
    visited = 0
    i = 0
    while i < len(busy):
        tiles = busy[i : i + n_chunk]
        i += len(tiles)
        origin = torch.stack([tiles % bins.tiles_x, tiles // bins.tiles_x], dim=-1).to(dtype) * tile_size
        pix = origin[:, None, :] + local  # T, P, 2
        args = (pix, bins.ids, bins.start[tiles], bins.count[tiles], means_p, conics_p, opac_p, feat_p, max_elements, transmittance_stop)
        res, n_vis = checkpoint(_composite_chunk, *args, use_reentrant=False) if grad else _composite_chunk(*args)
        visited += int(n_vis)
        chunks.append(res)
        ids_done.append(tiles)
    if chunks:
        out = out.index_copy(0, torch.cat(ids_done), torch.cat(chunks))
    if stats is not None:
        stats["intersections"] = stats.get("intersections", 0) + len(bins.ids)
        stats["visited"] = stats.get("visited", 0) + visited
    img = out.reshape(bins.tiles_y, bins.tiles_x, tile_size, tile_size, n_feat + 1)
    img = img.permute(0, 2, 1, 3, 4).reshape(bins.tiles_y * tile_size, bins.tiles_x * tile_size, n_feat + 1)
    img = img[:height, :width]
    return img[..., :n_feat], 1.0 - img[..., n_feat:]


def render_torch(
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
    tile_size: int = 8,
    max_elements: int = 1 << 18,
    stats: dict[str, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render C cameras with the reference rasteriser.

    Args:
        means ``[N,3]``, quats ``[N,4]`` wxyz, scales ``[N,3]``, opacities ``[N]``, sh ``[N,K,3]``;
        w2c ``[C,4,4]``, K ``[C,3,3]``; sh_degree: SH bands used (``(sh_degree+1)**2 <= K``).
        stats: filled with the binned and composited (tile, Gaussian) pair counts (see :func:`rasterize`).
    Returns:
        ``rgb [C,H,W,3]`` (no background), ``depth [C,H,W,1]`` (alpha-weighted z, *not* normalised),
        ``alpha [C,H,W,1]``.
    """
    from vist3a.gaussians.gaussians import eval_sh

    rgbs, depths, alphas = [], [], []
    sh = sh[:, : (sh_degree + 1) ** 2]
    for c in range(w2c.shape[0]):
        proj = project_gaussians(
            means, quats, scales, opacities, w2c[c], K[c], width, height, eps2d, near_plane, far_plane, antialiased
        )
        idx = torch.nonzero(proj.valid).squeeze(1)
        campos = -w2c[c, :3, :3].T @ w2c[c, :3, 3]
        colors = (eval_sh(sh[idx], means[idx] - campos, sh_degree) + 0.5).clamp_min(0.0)  # M, 3
        features = torch.cat([colors, proj.depths[idx, None]], dim=-1)  # M, 4
        feat, alpha = rasterize(
            proj.means2d[idx],
            proj.conics[idx],
            proj.opacities[idx],
            features,
            proj.depths[idx].detach(),
            proj.radii[idx],
            width,
            height,
            tile_size=tile_size,
            max_elements=max_elements,
            stats=stats,
        )
        rgbs.append(feat[..., :3])
        depths.append(feat[..., 3:])
        alphas.append(alpha)
    return torch.stack(rgbs), torch.stack(depths), torch.stack(alphas)
