"""Behaviour of the AnySplat composition on the mini preset (same classes, small widths; CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from vist3a import registry
from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians
from vist3a.models.anysplat import AnySplat, Reconstruction
from vist3a.models.pose_encoding import (
    extri_intri_to_pose_encoding,
    extrinsics_to_c2w,
    pose_encoding_to_extri_intri,
    quat_xyzw_to_matrix,
)

SIZE = 56  # 4x4 tokens: exercises the bicubic position-embedding resize of the mini 16x16 grid


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 contended threads for these small ops
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def mini() -> AnySplat:
    torch.manual_seed(0)
    model = registry.build("anysplat-mini", device="cpu")
    # Random init leaves the heads near-constant; spread the camera/depth outputs a little.
    with torch.no_grad():
        model.encoder.camera_head.pose_branch.fc2.weight.normal_(0, 0.05)
        model.encoder.camera_head.pose_branch.fc2.bias.copy_(
            torch.tensor([0, 0, 0, 0, 0, 0, 1.0, 0.15, 0.15])
        )  # 4 rounds add up: fov ~0.6 rad
        model.encoder.depth_head.scratch.output_conv2[2].weight.normal_(0, 0.5)
        model.encoder.gaussian_param_head.scratch.output_conv2[2].weight.normal_(0, 0.5)
    return model


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 3, SIZE, SIZE, generator=g)


def test_forward_shapes_and_conventions(mini: AnySplat, images: torch.Tensor) -> None:
    with torch.no_grad():
        out = mini(images, voxelize=False)
    b, v, h, w = 1, 3, SIZE, SIZE
    assert len(out.pose_enc_list) == 4 and out.pose_enc_list[-1].shape == (b, v, 9)
    assert out.depth.shape == (b, v, h, w, 1) and out.depth_conf.shape == (b, v, h, w)
    assert out.points.shape == (b, v, h, w, 3) and out.gs_raw.shape == (b, v, 84, h, w)
    assert (out.depth > 0).all() and (out.depth_conf > 1).all()
    # c2w is the inverse of the w2c built from the encoding; K has the principal point at the centre.
    w2c = torch.cat((out.w2c, torch.tensor([0, 0, 0, 1.0]).expand(b, v, 1, 4)), dim=-2)
    torch.testing.assert_close(out.c2w @ w2c, torch.eye(4).expand(b, v, 4, 4), atol=1e-5, rtol=0)
    assert torch.equal(out.K[..., 0, 2], torch.full((b, v), w / 2)) and torch.equal(
        out.K[..., 1, 2], torch.full((b, v), h / 2)
    )
    torch.testing.assert_close(out.K_normalized[..., 0, 0] * w, out.K[..., 0, 0])
    # Without voxelisation: one Gaussian per pixel, in (view, row, column) order, at the unprojected points.
    g = out.gaussians[0]
    assert len(g) == v * h * w
    torch.testing.assert_close(g.means, out.points.reshape(-1, 3))
    # Our conventions: wxyz unit quaternions equal AnySplat's xyzw rotations rolled; sh [N, K, 3].
    s = out.splats[0]
    torch.testing.assert_close(
        g.quats, torch.nn.functional.normalize(s.rotations[0][:, [3, 0, 1, 2]], dim=-1)
    )
    assert g.sh.shape == (v * h * w, 25, 3)
    torch.testing.assert_close(g.sh[:, 0], s.harmonics[0][:, :, 0])
    g.validate()


def test_voxelize_switch_fuses_pixels(mini: AnySplat, images: torch.Tensor) -> None:
    with torch.no_grad():
        out = mini(images, voxelize=True)
    g = out.gaussians[0]
    inv = out.pixel_to_voxel[0]
    assert inv.shape == (3 * SIZE * SIZE,) and len(g) == int(inv.max()) + 1 <= 3 * SIZE * SIZE
    # Each fused centre lies in the voxel of its member pixels.
    ids = torch.round(out.points.reshape(-1, 3) / mini.config.voxel_size)
    centre_ids = torch.round(g.means / mini.config.voxel_size)
    assert (centre_ids[inv] - ids).abs().max() <= 1


def test_geometry_only_forward_matches_the_full_one(mini: AnySplat, images: torch.Tensor) -> None:
    """gaussians=False skips the Gaussian head and changes nothing else (the cameras and depth are the same)."""
    with torch.no_grad():
        full = mini(images, voxelize=False)
        geo = mini(images, voxelize=False, gaussians=False)
    assert geo.gs_raw is None and geo.gaussians == [] and geo.splats == [] and full.gs_raw is not None
    for name in ("w2c", "K", "depth", "depth_conf", "points"):
        torch.testing.assert_close(getattr(geo, name), getattr(full, name), rtol=0, atol=0)


def test_reconstruct_returns_our_types(mini: AnySplat, images: torch.Tensor) -> None:
    rec = mini.reconstruct(images)
    assert isinstance(rec, Reconstruction)
    assert len(rec.gaussians) == 1 and isinstance(rec.gaussians[0], Gaussians)
    cams = rec.cameras[0]
    assert isinstance(cams, Cameras) and len(cams) == 3 and (cams.width, cams.height) == (SIZE, SIZE)
    assert rec.depth.shape == (1, 3, SIZE, SIZE) and rec.confidence.shape == (1, 3, SIZE, SIZE)
    assert not mini.training


def test_view0_is_the_reference_and_other_views_are_exchangeable(
    mini: AnySplat, images: torch.Tensor
) -> None:
    """Slot 0 marks view 0 only; global attention has no view index, so swapping views 1 and 2 swaps outputs."""
    with torch.no_grad():
        a = mini(images, voxelize=False).pose_enc_list[-1]
        b = mini(images[:, [0, 2, 1]], voxelize=False).pose_enc_list[-1]
        c = mini(images[:, [1, 0, 2]], voxelize=False).pose_enc_list[-1]
    torch.testing.assert_close(b[:, [0, 2, 1]], a, atol=2e-5, rtol=1e-4)
    assert (c[:, [1, 0, 2]] - a).abs().max() > 1e-3  # moving view 0 changes the answer


def test_taps_and_run_from_block(mini: AnySplat, images: torch.Tensor) -> None:
    agg = mini.encoder.aggregator
    dino = agg.patch_embed
    x = agg.normalize(images).reshape(3, 3, SIZE, SIZE)
    with torch.no_grad():
        full = dino(x, taps=["enc_blocks_1", "enc_blocks_2", "enc_blocks_6"])
        tokens = dino.prepare_tokens(x)
        for blk in dino.blocks[:2]:
            tokens = blk(tokens)
        rest = dino.forward_from_block(tokens, 2)
    torch.testing.assert_close(full["enc_blocks_2"], tokens[:, 5:], rtol=0, atol=0)
    torch.testing.assert_close(rest["x_norm_patchtokens"], full["x_norm_patchtokens"], rtol=0, atol=0)
    assert full["enc_blocks_6"].shape == (3, 16, 192)
    # Final norm applies after the last tap: the last tap is the pre-norm stream.
    torch.testing.assert_close(dino.norm(full["enc_blocks_6"]), full["x_norm_patchtokens"])
    with pytest.raises(InputError, match="enc_blocks_k"):
        dino(x, taps=["enc_blocks_7"])


def test_stitched_entry_at_block0_reproduces_the_normal_forward(mini: AnySplat, images: torch.Tensor) -> None:
    """Entering with the conv patch tokens at block 0 (+ position embedding) is the ordinary forward."""
    agg = mini.encoder.aggregator
    x = agg.normalize(images).reshape(3, 3, SIZE, SIZE)
    with torch.no_grad():
        patches = agg.patch_embed.patch_embed(x).reshape(1, 3, 16, -1)
        ref = mini(images, voxelize=False)
        out = mini(images, dino_tokens=patches, dino_start_block=0, readd_pos_embed=True, voxelize=False)
        no_pos = mini(images, dino_tokens=patches, dino_start_block=0, readd_pos_embed=False, voxelize=False)
    torch.testing.assert_close(out.aggregator.layers[-1], ref.aggregator.layers[-1], rtol=0, atol=0)
    torch.testing.assert_close(out.gs_raw, ref.gs_raw, rtol=0, atol=0)
    assert (no_pos.aggregator.layers[-1] - ref.aggregator.layers[-1]).abs().max() > 1e-4


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = registry.build(
        "anysplat-mini", depth=2, dino_depth=2, intermediate_layer_idx=(0, 0, 1, 1)
    ).train()
    x = torch.rand(1, 2, 3, 56, 56)

    def grads(enabled: bool) -> list[torch.Tensor]:
        model.zero_grad()
        model.enable_gradient_checkpointing(enabled)
        out = model.encoder.aggregator(x)
        sum(t.square().mean() for t in out.layers).backward()
        return [p.grad.clone() for p in model.encoder.aggregator.parameters() if p.grad is not None]

    a, b = grads(False), grads(True)
    assert len(a) == len(b) > 10
    for ga, gb in zip(a, b, strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-7)


def test_bf16_input_rounding_constants(mini: AnySplat) -> None:
    """The official encoder feeds ``image.to(bfloat16)``; mean/std become the bf16-rounded constants (parity README §6)."""
    agg = mini.encoder.aggregator
    assert agg.round_input_bf16
    x = torch.zeros(1, 1, 3, 14, 14)
    mean = torch.tensor([0.484375, 0.455078125, 0.40625])
    std = torch.tensor([0.228515625, 0.2236328125, 0.224609375])
    torch.testing.assert_close(agg.normalize(x)[0, 0, :, 0, 0], -mean / std, rtol=0, atol=0)
    x = torch.full((1, 1, 3, 14, 14), 0.3001)
    assert agg.normalize(x)[0, 0, 0, 0, 0] == (torch.tensor(0.3001).bfloat16().float() - mean[0]) / std[0]


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(3, 3, 56, 56), r"\[B, V, 3, H, W\]"),
        (torch.rand(1, 2, 3, 50, 56), "multiple of 14"),
        (torch.full((1, 2, 3, 56, 56), float("nan")), "non-finite"),
    ],
)
def test_bad_images_raise_input_error(mini: AnySplat, bad: torch.Tensor, match: str) -> None:
    with pytest.raises(InputError, match=match):
        mini(bad)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(InputError, match="unknown AnySplat option"):
        registry.build("anysplat-mini", device="meta", embed_dimm=3)


# --- pose encoding ------------------------------------------------------------------------------


def test_quaternion_xyzw_to_matrix_known_rotation() -> None:
    # 90 degrees about z: q = (0, 0, sin 45, cos 45) xyzw; any scale of q gives the same rotation.
    q = torch.tensor([0.0, 0.0, 2**-0.5, 2**-0.5]) * 3.0
    r = quat_xyzw_to_matrix(q)
    torch.testing.assert_close(
        r, torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), atol=1e-6, rtol=0
    )


def test_pose_encoding_roundtrip_and_focal_eps() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 5, 4, generator=g), dim=-1)
    q = torch.where(q[..., 3:] < 0, -q, q)
    enc = torch.cat((torch.randn(2, 5, 3, generator=g), q, 0.3 + torch.rand(2, 5, 2, generator=g)), dim=-1)
    w2c, k = pose_encoding_to_extri_intri(enc, (224, 448), focal_eps=1e-3)
    # fx from the width's field of view, fy from the height's, with AnySplat's +1e-3.
    torch.testing.assert_close(k[..., 0, 0], 224 / (torch.tan(enc[..., 8] / 2) + 1e-3))
    torch.testing.assert_close(k[..., 1, 1], 112 / (torch.tan(enc[..., 7] / 2) + 1e-3))
    back = extri_intri_to_pose_encoding(w2c, k, (224, 448), focal_eps=1e-3)
    torch.testing.assert_close(back, enc, atol=1e-5, rtol=1e-5)
    # The camera centre is -R^T t.
    c2w = extrinsics_to_c2w(w2c)
    centre = -(w2c[..., :3, :3].transpose(-1, -2) @ w2c[..., :3, 3:])[..., 0]
    torch.testing.assert_close(c2w[..., :3, 3], centre, atol=1e-5, rtol=1e-5)


def test_pose_encoding_matches_the_official_cameras(shared_dir) -> None:
    """``camera/pose_enc_list[-1]`` of the parity fixture → its c2w extrinsics and normalised intrinsics."""
    from safetensors import safe_open

    from vist3a.models.pose_encoding import normalize_intrinsics

    with safe_open(str(shared_dir / "reference/parity/anysplat_io.safetensors"), "pt") as f:
        enc = f.get_tensor("camera/pose_enc_list")[-1]
        c2w_ref = f.get_tensor("camera/extrinsic_c2w")
        k_ref = f.get_tensor("camera/intrinsic_norm")
    w2c, k = pose_encoding_to_extri_intri(enc, (224, 224))
    torch.testing.assert_close(extrinsics_to_c2w(w2c), c2w_ref, atol=2e-6, rtol=0)
    torch.testing.assert_close(
        normalize_intrinsics(k, (224, 224)), k_ref, atol=1e-5 * float(k_ref.abs().max()), rtol=0
    )


def test_predicted_cameras_are_valid_pinholes(mini: AnySplat, images: torch.Tensor) -> None:
    rec = mini.reconstruct(images)
    cams = rec.cameras[0]
    assert (cams.K[:, 0, 0] > 0).all() and (cams.K[:, 1, 1] > 0).all()
    r = cams.c2w[:, :3, :3]
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5, rtol=0)


def test_vggt_preset_runs_with_the_same_parts() -> None:
    torch.manual_seed(0)
    model = registry.build(
        "vggt-1b",
        embed_dim=64,
        num_heads=1,
        dino_num_heads=1,
        depth=2,
        dino_depth=1,
        intermediate_layer_idx=(0, 0, 1, 1),
        camera_trunk_depth=1,
        camera_num_heads=2,
        dpt_features=32,
        dpt_out_channels=(8, 8, 16, 16),
        pos_embed_img_size=56,
    )
    with torch.no_grad():
        out = model(torch.rand(1, 2, 3, 42, 56))  # non-square: 3x4 tokens
    assert out.depth.shape == (1, 2, 42, 56, 1) and out.world_points.shape == (1, 2, 42, 56, 3)
    assert out.world_points_conf.shape == (1, 2, 42, 56) and (out.world_points_conf > 1).all()
    # VGGT's focal has no +1e-3: f = (W/2) / tan(fov_w/2).
    enc = out.pose_enc_list[-1]
    torch.testing.assert_close(out.K[..., 0, 0], 28 / torch.tan(enc[..., 8] / 2))
