"""Voxel fusion: analytic cases, gradients, batch padding, and parity with the official AnySplat run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from vist3a.errors import InputError
from vist3a.models.voxelize import (
    FEATURE_PAD,
    POINT_PAD,
    gaussians_from_pixels,
    pad_and_stack,
    unique_rows_inverse,
    voxel_ids,
    voxelize_with_fusion,
)

EPS = 1e-6  # AnySplat's softmax denominator offset


def test_two_points_in_one_voxel_softmax_weighted_mean() -> None:
    pts = torch.tensor([[0.10, 0.20, 0.30], [0.14, 0.16, 0.34]])  # both round to voxel (1, 2, 3) at size 0.1
    feats = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    logits = torch.tensor([0.5, 2.0])
    p, f, inv = voxelize_with_fusion(pts, feats, logits, voxel_size=0.1)
    e = [math.exp(0.5 - 2.0), 1.0]
    w = [x / (sum(e) + EPS) for x in e]
    assert inv.tolist() == [0, 0]
    torch.testing.assert_close(p[0], w[0] * pts[0] + w[1] * pts[1])
    torch.testing.assert_close(f[0], w[0] * feats[0] + w[1] * feats[1])


def test_separate_voxels_kept_and_sorted_lexicographically() -> None:
    # voxel ids at size 1: (2,0,0), (0,5,1), (0,5,0), (-1,9,9)
    pts = torch.tensor([[2.2, 0.1, 0.0], [0.0, 5.0, 1.2], [0.1, 4.9, -0.3], [-1.0, 9.0, 9.0]])
    feats = torch.arange(8.0).reshape(4, 2)
    logits = torch.tensor([3.0, -1.0, 0.0, 7.0])
    p, f, inv = voxelize_with_fusion(pts, feats, logits, voxel_size=1.0)
    assert inv.tolist() == [3, 2, 1, 0]  # order: (-1,9,9) < (0,5,0) < (0,5,1) < (2,0,0)
    scale = 1.0 / (1.0 + EPS)  # a lone point has weight exp(0)/(exp(0)+1e-6)
    torch.testing.assert_close(p, pts[[3, 2, 1, 0]] * scale)
    torch.testing.assert_close(f, feats[[3, 2, 1, 0]] * scale)
    assert voxel_ids(pts, 1.0).dtype == torch.int32


def test_fusion_is_shift_invariant_and_large_logits_are_stable() -> None:
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.02, 0.0, 0.0]])
    feats = torch.tensor([[1.0], [2.0], [3.0]])
    logits = torch.tensor([1.0, 2.0, 3.0])
    _, f1, _ = voxelize_with_fusion(pts, feats, logits, voxel_size=1.0)
    _, f2, _ = voxelize_with_fusion(pts, feats, logits + 500.0, voxel_size=1.0)  # would overflow a naive exp
    torch.testing.assert_close(f1, f2)
    assert torch.isfinite(f2).all()


def test_gradients_flow_to_points_features_and_logits() -> None:
    g = torch.Generator().manual_seed(0)
    pts = (torch.rand(64, 3, generator=g) * 0.5).requires_grad_()
    feats = torch.randn(64, 5, generator=g, requires_grad=True)
    logits = torch.randn(64, generator=g, requires_grad=True)
    p, f, inv = voxelize_with_fusion(pts, feats, logits, voxel_size=0.2)
    assert p.shape[0] < 64  # some voxels hold several points
    (p.sum() + (f * torch.randn(f.shape, generator=g)).sum()).backward()
    assert pts.grad is not None and feats.grad is not None and logits.grad is not None
    shared = torch.bincount(inv)[inv] > 1
    assert (logits.grad[shared].abs() > 0).all()  # logits matter only where they compete
    torch.testing.assert_close(logits.grad[~shared], torch.zeros_like(logits.grad[~shared]), atol=1e-6, rtol=0)


def test_gradcheck_double() -> None:
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.1, 0.0], [3.0, 3.0, 3.0]], dtype=torch.float64)
    feats = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = lambda fe, lo: voxelize_with_fusion(pts, fe, lo, voxel_size=1.0)[1]
    assert torch.autograd.gradcheck(fn, (feats, logits))


def test_bad_inputs() -> None:
    with pytest.raises(InputError):
        voxelize_with_fusion(torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(3), 0.1)
    with pytest.raises(InputError):
        voxelize_with_fusion(torch.zeros(3, 3), torch.zeros(2, 1), torch.zeros(3), 0.1)
    with pytest.raises(InputError):
        voxelize_with_fusion(torch.zeros(3, 3), torch.zeros(3, 1), torch.zeros(3), 0.0)
    with pytest.raises(InputError, match="non-finite"):
        voxelize_with_fusion(torch.full((3, 3), float("nan")), torch.zeros(3, 1), torch.zeros(3), 0.1)


def test_batch_padding() -> None:
    a, b = torch.ones(2, 3), torch.ones(4, 3)
    out = pad_and_stack([a, b], -7.0)
    assert out.shape == (2, 4, 3)
    assert (out[0, 2:] == -7.0).all() and (out[0, :2] == 1).all() and (out[1] == 1).all()

    # scene 0: all pixels at one point (1 voxel); scene 1: spread out (4 voxels)
    points = torch.zeros(2, 1, 2, 2, 3)
    points[1, 0] = torch.tensor([[[0.0, 0, 0], [1, 0, 0]], [[0, 1, 0], [0, 0, 1]]])
    raw = torch.randn(2, 1, 6, 2, 2)  # 5 features + fusion logit
    means, feats, counts = gaussians_from_pixels(points, raw, voxel_size=0.1)
    assert counts.tolist() == [1, 4]
    assert means.shape == (2, 4, 3) and feats.shape == (2, 4, 5)
    assert (means[0, 1:] == POINT_PAD).all() and (feats[0, 1:] == FEATURE_PAD).all()
    # without voxelisation: one Gaussian per pixel in (view, row, column) order
    means_px, feats_px, counts_px = gaussians_from_pixels(points, raw, voxel_size=None)
    assert counts_px.tolist() == [4, 4]
    torch.testing.assert_close(means_px[1], points[1, 0].reshape(4, 3))
    torch.testing.assert_close(feats_px[1, 2], raw[1, 0, :5, 1, 0])


# ---------------------------------------------------------------------------------------------
# parity with the official run (shared reference data)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture(shared_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    keys = ["points/world", "gs_head/raw_s2", "vox/voxel_ids", "vox/pixel_to_voxel", "vox/means"]
    with safe_open(str(shared_dir / "reference" / "parity" / "anysplat_io.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in keys}


def test_voxel_assignment_matches_official(fixture: dict[str, torch.Tensor]) -> None:
    """From the stored full-resolution world points, voxel ids and pixel→voxel map match exactly."""
    pts = fixture["points/world"].reshape(-1, 3)
    n = pts.shape[0]
    p, _, inv = voxelize_with_fusion(pts, torch.zeros(n, 1), torch.zeros(n), voxel_size=0.002)
    ids = torch.unique(voxel_ids(pts, 0.002), dim=0)
    assert p.shape[0] == fixture["vox/voxel_ids"].shape[0] == 147_775
    assert torch.equal(ids.to(torch.int16), fixture["vox/voxel_ids"])
    assert torch.equal(inv.to(torch.int32), fixture["vox/pixel_to_voxel"])
    counts = torch.bincount(inv)
    assert torch.bincount(counts).tolist() == [0, 145_084, 2630, 60, 1]  # README: 2630 / 60 / 1 merged voxels


def test_fused_means_match_official_where_logits_are_known(fixture: dict[str, torch.Tensor]) -> None:
    """The fusion logits are stored only at even rows and columns (gs_head/raw_s2).

    Every single-pixel voxel is checked (its mean is p/(1+1e-6) whatever the logit) and every
    multi-pixel voxel whose members all lie on the stored grid (66 voxels). The remaining merged
    voxels need the full head output: see the end-to-end test in test_anysplat_heads.py.
    """
    pts = fixture["points/world"].reshape(-1, 3)
    _, v, h, w, _ = fixture["points/world"].shape
    raw = fixture["gs_head/raw_s2"][0]  # [V, 84, H/2, W/2]
    logits = torch.zeros(v, h, w)
    known = torch.zeros(v, h, w, dtype=torch.bool)
    logits[:, ::2, ::2] = raw[:, 83]
    known[:, ::2, ::2] = True
    fused, _, inv = voxelize_with_fusion(pts, torch.zeros(pts.shape[0], 1), logits.reshape(-1), 0.002)
    g = fused.shape[0]
    all_known = torch.ones(g, dtype=torch.bool)
    all_known[inv[~known.reshape(-1)]] = False
    counts = torch.bincount(inv, minlength=g)
    check = all_known | (counts == 1)
    assert int((all_known & (counts > 1)).sum()) == 66
    ref = fixture["vox/means"][0]
    err = (fused[check] - ref[check]).abs().max()
    assert err <= 2e-5 * ref.abs().max(), err  # measured: bitwise equal
    # the same logits with the fusion confidence ignored (uniform weights) would be visibly off
    uniform, _, _ = voxelize_with_fusion(pts, torch.zeros(pts.shape[0], 1), torch.zeros(pts.shape[0]), 0.002)
    multi = all_known & (counts > 1)
    assert (uniform[multi] - ref[multi]).abs().max() > 1e-4 * ref.abs().max()


@pytest.mark.gpu
def test_cuda_fusion_matches_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(200_000, 3, generator=g) * 0.05  # dense: many points share voxels of 0.002
    feats = torch.randn(200_000, 83, generator=g)
    logits = torch.randn(200_000, generator=g)
    p_cpu, f_cpu, inv_cpu = voxelize_with_fusion(pts, feats, logits, 0.002)
    p_gpu, f_gpu, inv_gpu = voxelize_with_fusion(pts.cuda(), feats.cuda(), logits.cuda(), 0.002)
    assert torch.equal(inv_gpu.cpu(), inv_cpu)
    torch.testing.assert_close(p_gpu.cpu(), p_cpu, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(f_gpu.cpu(), f_cpu, atol=1e-5, rtol=1e-4)


def test_packed_key_numbering_equals_unique_rows() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(-40, 40, (20000, 3), generator=gen, dtype=torch.int32)  # many repeats, negatives
    ids[::7, 1] = 30000  # a wide axis
    ref = torch.unique(ids, dim=0, return_inverse=True)[1]
    assert torch.equal(unique_rows_inverse(ids), ref)
    # a span too wide for one int64 key takes the reference path
    wide = torch.tensor([[-(2**30), 0, 5], [2**30, 2**30, -(2**30)], [0, 0, 0], [-(2**30), 0, 5]], dtype=torch.int32)
    assert torch.equal(unique_rows_inverse(wide), torch.unique(wide, dim=0, return_inverse=True)[1])
