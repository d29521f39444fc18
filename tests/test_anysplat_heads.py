"""DPT depth head and AnySplat Gaussian head: checkpoint layout, formulas, chunking, unprojection."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from vist3a.errors import InputError
from vist3a.models.geometry import se3_inverse, unproject_depth
from vist3a.models.heads.dpt_head import (
    DPTHead,
    FeatureFusionBlock,
    ResidualConvUnit,
    activate_head,
    uv_position_embedding,
)
from vist3a.models.heads.gaussian_head import GaussianHead, gaussian_head_channels

DATA = Path(__file__).resolve().parent / "data"
ANYSPLAT_MANIFEST = "anysplat_state_dict_manifest.tsv"


def _read_manifest(path: Path) -> list[tuple[str, str]]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    return [(r[0], r[1]) for r in rows]


def _anysplat_manifest() -> list[tuple[str, str]]:
    return _read_manifest(DATA / ANYSPLAT_MANIFEST)


def _layout(module: nn.Module) -> list[tuple[str, str]]:
    return [(k, "x".join(str(d) for d in v.shape)) for k, v in module.state_dict().items()]


def _prefixed(rows: list[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    return [(k[len(prefix) :], s) for k, s in rows if k.startswith(prefix)]


# ---------------------------------------------------------------------------------------------
# checkpoint layout (meta device: no memory)
# ---------------------------------------------------------------------------------------------


def test_depth_head_state_dict_matches_anysplat_manifest() -> None:
    with torch.device("meta"):
        head = DPTHead(dim_in=2048, output_dim=2, activation="exp", conf_activation="expp1")
    expected = _prefixed(_anysplat_manifest(), "encoder.depth_head.")
    assert len(expected) == 62
    assert _layout(head) == expected  # same keys, shapes and registration order


def test_gaussian_head_state_dict_matches_anysplat_manifest() -> None:
    with torch.device("meta"):
        head = GaussianHead(dim_in=2048)
    expected = _prefixed(_anysplat_manifest(), "encoder.gaussian_param_head.")
    assert len(expected) == 64
    assert _layout(head) == expected
    assert head.output_dim == 84


def test_vggt1b_dpt_heads_match_manifest(shared_dir: Path) -> None:
    rows = _read_manifest(shared_dir / "reference" / "vggt1b_state_dict_manifest.tsv")
    with torch.device("meta"):
        point = DPTHead(dim_in=2048, output_dim=4, activation="inv_log", conf_activation="expp1")
        depth = DPTHead(dim_in=2048, output_dim=2, activation="exp", conf_activation="expp1")
        track = DPTHead(dim_in=2048, features=128, feature_only=True, down_ratio=2, pos_embed=False)
    assert _layout(point) == _prefixed(rows, "point_head.")
    assert _layout(depth) == _prefixed(rows, "depth_head.")
    assert _layout(track) == _prefixed(rows, "track_head.feature_extractor.")


def test_gaussian_head_channels_formula() -> None:
    assert gaussian_head_channels(4) == 84
    assert gaussian_head_channels(0) == 1 + 7 + 3 + 1
    with torch.device("meta"):
        h0 = GaussianHead(dim_in=64, sh_degree=0)
    assert h0.scratch.output_conv2[2].out_channels == 12
    assert h0.scratch.output_conv2[0].out_channels == 32  # AnySplat's rule: 128 only when output_dim > 50
    assert h0.input_merger[0].out_channels == 128  # added to the 128-channel fused map
    with pytest.raises(InputError):
        gaussian_head_channels(5)


# ---------------------------------------------------------------------------------------------
# formulas against independent expectations
# ---------------------------------------------------------------------------------------------


def test_uv_position_embedding_formula() -> None:
    """Channel c < C/2 embeds u (column), the rest v (row); sin block then cos block, ω_i = 100^(-i/(C/4))."""
    c, h, w = 8, 3, 5
    aspect = 2.0  # image W/H, not the feature map's
    emb = uv_position_embedding(c, h, w, aspect, torch.float32, "cpu")
    assert emb.shape == (c, h, w)
    diag = math.sqrt(aspect**2 + 1)
    quarter = c // 4
    for i in range(h):
        for j in range(w):
            u = -aspect / diag * (w - 1) / w + j * (2 * aspect / diag * (w - 1) / w) / (w - 1)
            v = -1 / diag * (h - 1) / h + i * (2 / diag * (h - 1) / h) / (h - 1)
            expect = []
            for pos in (u, v):
                omegas = [100.0 ** (-k / quarter) for k in range(quarter)]
                expect += [math.sin(pos * o) for o in omegas] + [math.cos(pos * o) for o in omegas]
            torch.testing.assert_close(emb[:, i, j], torch.tensor(expect), atol=1e-6, rtol=0)
    # the grid is symmetric about the image centre: u at the two edges are opposite
    torch.testing.assert_close(emb[0, 0, 0], -emb[0, 0, -1])


def test_activations() -> None:
    x = torch.tensor([[-2.0, 0.5, 1.5]]).reshape(1, 3, 1, 1)  # two prediction channels + conf
    p, conf = activate_head(x, "exp", "expp1")
    torch.testing.assert_close(p.reshape(-1), torch.tensor([math.exp(-2.0), math.exp(0.5)]))
    torch.testing.assert_close(conf.reshape(-1), torch.tensor([1 + math.exp(1.5)]))
    p, _ = activate_head(x, "inv_log", "expp0")
    torch.testing.assert_close(p.reshape(-1), torch.tensor([-(math.exp(2.0) - 1), math.exp(0.5) - 1]))
    p, conf = activate_head(x, "linear", "sigmoid")
    torch.testing.assert_close(p.reshape(-1), torch.tensor([-2.0, 0.5]))
    torch.testing.assert_close(conf.reshape(-1), torch.tensor([1 / (1 + math.exp(-1.5))]))
    y = torch.tensor([3.0, 4.0, 0.0, 0.0]).reshape(1, 4, 1, 1)
    p, _ = activate_head(y, "norm_exp", "expp1")
    torch.testing.assert_close(p.reshape(-1), torch.tensor([0.6, 0.8, 0.0]) * math.expm1(5.0))
    with pytest.raises(InputError):
        activate_head(x, "nope", "expp1")


def test_residual_unit_skip_adds_activated_input() -> None:
    """VGGT's unit applies ReLU in place before the convs, so the skip carries relu(x), not x."""
    rcu = ResidualConvUnit(3)
    for conv in (rcu.conv1, rcu.conv2):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rcu(x), x.clamp_min(0))
    with torch.no_grad():
        rcu.conv2.bias.fill_(0.5)
    torch.testing.assert_close(rcu(x), x.clamp_min(0) + 0.5)


def test_fusion_block_upsamples_align_corners() -> None:
    blk = FeatureFusionBlock(1, has_residual=False)
    for m in (blk.resConfUnit2.conv1, blk.resConfUnit2.conv2):
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)
    with torch.no_grad():
        blk.out_conv.weight.fill_(1.0)
        blk.out_conv.bias.zero_()
    x = torch.tensor([[[[0.0, 3.0]]]])  # [1,1,1,2]
    out = blk(x, size=(1, 4))
    torch.testing.assert_close(out.reshape(-1), torch.tensor([0.0, 1.0, 2.0, 3.0]))  # corners kept


# ---------------------------------------------------------------------------------------------
# tiny heads: shapes, chunking, layer read-out, errors
# ---------------------------------------------------------------------------------------------

TINY = dict(patch_size=2, features=8, out_channels=(4, 8, 8, 8), intermediate_layer_idx=(0, 2, 3, 5))


def _tokens(b: int, s: int, grid: tuple[int, int], dim: int, n_layers: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, s, 3 + grid[0] * grid[1], dim, generator=g) for _ in range(n_layers)]


def _perturb(module: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_dpt_head_shapes_chunking_and_layer_readout() -> None:
    torch.manual_seed(0)
    head = DPTHead(dim_in=16, output_dim=2, activation="exp", conf_activation="expp1", **TINY).eval()
    b, s, h, w = 2, 3, 8, 12  # 4x6 patch grid, non-square
    images = torch.rand(b, s, 3, h, w)
    all_layers = _tokens(b, s, (h // 2, w // 2), 16, 6)
    with torch.no_grad():
        depth, conf = head(all_layers, images, patch_start_idx=3, frames_chunk_size=None)
        depth1, conf1 = head(all_layers, images, patch_start_idx=3, frames_chunk_size=1)
        kept = [all_layers[i] for i in TINY["intermediate_layer_idx"]]
        depth4, _ = head(kept, images, patch_start_idx=3, frames_chunk_size=2)
    assert depth.shape == (b, s, h, w, 1) and conf.shape == (b, s, h, w)
    assert (depth > 0).all() and (conf > 1).all()
    torch.testing.assert_close(depth1, depth, atol=1e-6, rtol=1e-5)  # chunking does not change results
    torch.testing.assert_close(conf1, conf, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(depth4, depth, atol=1e-6, rtol=1e-5)  # 4 read-out layers == all layers
    # each view depends only on its own tokens
    changed = [t.clone() for t in all_layers]
    changed[3][:, 1] += torch.randn(changed[3][:, 1].shape)  # (a constant shift would vanish in LayerNorm)
    with torch.no_grad():
        d2, _ = head(changed, images, patch_start_idx=3)
    torch.testing.assert_close(d2[:, [0, 2]], depth[:, [0, 2]], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(d2[:, 1], depth[:, 1])


def test_dpt_head_feature_only_and_pos_embed_matters() -> None:
    torch.manual_seed(0)
    head = DPTHead(dim_in=16, feature_only=True, down_ratio=2, **TINY).eval()
    images = torch.rand(1, 2, 3, 8, 8)
    toks = _tokens(1, 2, (4, 4), 16, 6)
    with torch.no_grad():
        feats = head(toks, images, patch_start_idx=3)
    assert feats.shape == (1, 2, 8, 4, 4)
    head.pos_embed = False
    with torch.no_grad():
        feats_nope = head(toks, images, patch_start_idx=3)
    assert not torch.allclose(feats, feats_nope)


def test_dpt_head_bad_inputs() -> None:
    head = DPTHead(dim_in=16, output_dim=2, activation="exp", **TINY)
    images = torch.rand(1, 2, 3, 8, 8)
    with pytest.raises(InputError, match="patch tokens"):
        head(_tokens(1, 2, (3, 4), 16, 6), images, patch_start_idx=3)
    with pytest.raises(InputError, match="aggregator layers"):
        head(_tokens(1, 2, (4, 4), 16, 5), images, patch_start_idx=3)
    with pytest.raises(InputError, match=r"\[B, S, 3, H, W\]"):
        head(_tokens(1, 2, (4, 4), 16, 6), images[0], patch_start_idx=3)
    with pytest.raises(InputError):
        DPTHead(dim_in=16, activation="softmax")


def test_gaussian_head_raw_output_and_rgb_shortcut() -> None:
    torch.manual_seed(0)
    head = GaussianHead(dim_in=16, sh_degree=1, **TINY).eval()
    _perturb(head)
    b, s, h, w = 1, 3, 8, 8
    images = torch.rand(b, s, 3, h, w)
    toks = _tokens(b, s, (4, 4), 16, 6)
    with torch.no_grad():
        raw = head(toks, images, patch_start_idx=3, frames_chunk_size=None)
        raw1 = head(toks, images, patch_start_idx=3, frames_chunk_size=1)
        raw_dark = head(toks, torch.zeros_like(images), patch_start_idx=3)
    assert raw.shape == (b, s, gaussian_head_channels(1), h, w)
    assert (raw < 0).any() and (raw > 0).any()  # no activation on the output
    torch.testing.assert_close(raw1, raw, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(raw_dark, raw)  # the [0,1] RGB enters through input_merger
    # with input_merger silenced, the image no longer matters
    with torch.no_grad():
        head.input_merger[0].weight.zero_()
        head.input_merger[0].bias.zero_()
        a = head(toks, images, patch_start_idx=3)
        c = head(toks, torch.zeros_like(images), patch_start_idx=3)
    torch.testing.assert_close(a, c)


# ---------------------------------------------------------------------------------------------
# unprojection
# ---------------------------------------------------------------------------------------------


def test_unproject_integer_pixel_grid_and_inverse_pose() -> None:
    h, w = 3, 4
    depth = torch.full((1, 1, h, w, 1), 2.0)
    K = torch.tensor([[[[10.0, 0.0, 2.0], [0.0, 20.0, 1.5], [0.0, 0.0, 1.0]]]])
    # camera at world (1, 2, 3), rotated 90° about z: world = R_c2w cam + C
    r_c2w = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    centre = torch.tensor([1.0, 2.0, 3.0])
    w2c = torch.cat([r_c2w.T, (-r_c2w.T @ centre)[:, None]], dim=1)[None, None]
    pts = unproject_depth(depth, w2c, K)
    assert pts.shape == (1, 1, h, w, 3)
    for v in range(h):
        for u in range(w):
            cam = torch.tensor([(u - 2.0) * 2.0 / 10.0, (v - 1.5) * 2.0 / 20.0, 2.0])  # no +0.5
            torch.testing.assert_close(pts[0, 0, v, u], r_c2w @ cam + centre)
    # 4x4 extrinsics and [B,V,H,W] depth give the same
    w2c4 = torch.cat([w2c, torch.tensor([0.0, 0, 0, 1]).expand(1, 1, 1, 4)], dim=2)
    torch.testing.assert_close(unproject_depth(depth[..., 0], w2c4, K), pts)
    torch.testing.assert_close(se3_inverse(w2c4)[0, 0, :3, 3], centre)
    with pytest.raises(InputError):
        unproject_depth(depth, w2c, K[0])


def _quat_xyzw_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """VGGT's quat_to_mat (xyzw, normalised by 2/|q|^2), written out for the test."""
    i, j, k, r = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    m = [
        1 - s * (j * j + k * k), s * (i * j - k * r), s * (i * k + j * r),
        s * (i * j + k * r), 1 - s * (i * i + k * k), s * (j * k - i * r),
        s * (i * k - j * r), s * (j * k + i * r), 1 - s * (i * i + j * j),
    ]  # fmt: skip
    return torch.stack(m, -1).reshape(*q.shape[:-1], 3, 3)


def test_unproject_matches_anysplat_fixture(shared_dir: Path) -> None:
    from safetensors import safe_open

    path = shared_dir / "reference" / "parity" / "anysplat_io.safetensors"
    with safe_open(str(path), "pt") as f:
        depth = f.get_tensor("depth/depth")
        pose = f.get_tensor("camera/pose_enc_list")[-1]  # [1, V, 9]
        ref = f.get_tensor("points/world")
    h, w = depth.shape[2:4]
    t, q, fov_h, fov_w = pose[..., :3], pose[..., 3:7], pose[..., 7], pose[..., 8]
    w2c = torch.cat([_quat_xyzw_to_matrix(q), t[..., None]], dim=-1)
    K = torch.zeros(*pose.shape[:2], 3, 3)
    K[..., 0, 0] = (w / 2) / (torch.tan(fov_w / 2) + 1e-3)
    K[..., 1, 1] = (h / 2) / (torch.tan(fov_h / 2) + 1e-3)
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = w / 2, h / 2, 1.0
    pts = unproject_depth(depth, w2c, K)
    err = (pts - ref).abs().max()
    assert err <= 2e-5 * ref.abs().max(), err  # measured: bitwise equal


# ---------------------------------------------------------------------------------------------
# end-to-end parity with the official AnySplat (needs the aggregator; builds a 1.2 B model)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_heads_end_to_end_parity_with_official_anysplat(shared_dir: Path) -> None:
    """The released architecture with the fixture weights on the fixture images (parity README §3, §7).

    Checks the depth head (depth, conf), the Gaussian head (raw, at the stored stride 2), the
    unprojection (world points), the pixel-aligned Gaussians (novox/*) and the voxel-fused Gaussians
    (vox/*, fused on the reference points as README §7 recommends; plus end-to-end voxel statistics).
    """
    pytest.importorskip("vist3a.models.anysplat")
    from anysplat_parity import LazyStateDict, fixture_tensors, load_make_weights, rel_err
    from vist3a.models.anysplat import anysplat
    from vist3a.models.gaussian_adapter import GaussianAdapter
    from vist3a.models.voxelize import voxelize_with_fusion

    tol = 1e-4  # max|x - ref| / max|ref|; measured fp32 spread of the official code is <= 4.5e-6
    io = fixture_tensors(shared_dir)
    mw = load_make_weights(shared_dir)
    weights = LazyStateDict(mw, shared_dir / "reference" / "anysplat_state_dict_manifest.tsv")
    model = anysplat(device="cpu", weights=weights)
    images = io["input/images"]
    with torch.no_grad():
        out = model(images, voxelize=False)
    assert torch.isfinite(out.depth).all() and torch.isfinite(out.points).all(), (
        "non-finite depth/points: are the aggregator's non-persistent ImageNet buffers initialised "
        "after building on meta + to_empty?"
    )

    assert rel_err(out.depth, io["depth/depth"]) <= tol
    assert rel_err(out.depth_conf, io["depth/conf"]) <= tol
    assert rel_err(out.gs_raw[..., ::2, ::2], io["gs_head/raw_s2"]) <= tol
    assert rel_err(out.points, io["points/world"]) <= tol

    # pixel-aligned Gaussians: one per pixel in (view, row, column) order
    b, v, c, h, w = out.gs_raw.shape
    raw_px = out.gs_raw.permute(0, 1, 3, 4, 2).reshape(b, v * h * w, c)
    g = GaussianAdapter()(out.points.reshape(b, -1, 3), raw_px)
    for name in ("means", "scales", "rotations", "opacities"):
        assert rel_err(getattr(g, name), io[f"novox/{name}"]) <= tol, name
    for name in ("harmonics", "covariances"):
        assert rel_err(getattr(g, name)[:, ::16], io[f"novox/{name}_s16"]) <= tol, name

    # voxel fusion on the reference points with our head output: every vox/* tensor
    pts_ref = io["points/world"].reshape(-1, 3)
    p, f, inv = voxelize_with_fusion(pts_ref, raw_px[0, :, :-1], raw_px[0, :, -1], 0.002)
    assert torch.equal(inv.to(torch.int32), io["vox/pixel_to_voxel"])
    gv = GaussianAdapter()(p[None], f[None])
    for name in ("means", "scales", "rotations", "opacities"):
        assert rel_err(getattr(gv, name), io[f"vox/{name}"]) <= tol, name
    for name in ("harmonics", "covariances"):
        assert rel_err(getattr(gv, name)[:, ::16], io[f"vox/{name}_s16"]) <= tol, name

    # end to end with our own points: voxel membership may flip only near rounding boundaries
    g_ref = io["vox/means"].shape[1]
    ours = voxelize_with_fusion(out.points.reshape(-1, 3), raw_px[0, :, :1], raw_px[0, :, -1], 0.002)[0].shape[0]
    assert abs(ours - g_ref) <= 0.005 * g_ref
    own_ids = torch.round(out.points.reshape(-1, 3) / 0.002).int()
    ref_ids = io["vox/voxel_ids"].int()[io["vox/pixel_to_voxel"].long()]
    assert (own_ids != ref_ids).any(dim=1).float().mean() <= 0.005


@pytest.mark.gpu
def test_heads_cuda_match_cpu() -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    depth_head = DPTHead(dim_in=16, output_dim=2, activation="exp", **TINY).eval()
    gs_head = GaussianHead(dim_in=16, **TINY).eval()
    _perturb(gs_head)
    images = torch.rand(1, 3, 3, 8, 12)
    toks = _tokens(1, 3, (4, 6), 16, 6)
    with torch.no_grad():
        d_cpu, c_cpu = depth_head(toks, images, 3)
        r_cpu = gs_head(toks, images, 3)
        depth_head.cuda()
        gs_head.cuda()
        toks_gpu = [t.cuda() for t in toks]
        d_gpu, c_gpu = depth_head(toks_gpu, images.cuda(), 3)
        r_gpu = gs_head(toks_gpu, images.cuda(), 3)
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(c_gpu.cpu(), c_cpu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(r_gpu.cpu(), r_cpu, atol=1e-5, rtol=1e-4)
