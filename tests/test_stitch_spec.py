"""The stitching-layer spec grammar, the temporal latent upsampling and the latent->token grid check."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError
from vist3a.stitching.spec import (
    ConvSpec,
    StitchGrids,
    apply_stitching_layer,
    build_stitching_layer,
    check_grids,
    parse_spec,
    upsample_latent_time,
    upsampled_frames,
)

OFFICIAL = "conv3d_k5x3x3_o1024_s1x2x2_p2x1x1"


def test_official_spec_builds_the_official_conv3d():
    spec = parse_spec(OFFICIAL)
    assert spec == ConvSpec(3, 1024, (5, 3, 3), (1, 2, 2), (2, 1, 1), (1, 1, 1))
    conv = spec.build(16)
    assert isinstance(conv, nn.Conv3d)
    assert conv.weight.shape == (1024, 16, 5, 3, 3) and conv.bias.shape == (1024,)
    assert (conv.stride, conv.padding, conv.dilation) == ((1, 2, 2), (2, 1, 1), (1, 1, 1))
    assert conv.padding_mode == "replicate"
    # METHOD §1.3: ≈0.74 M parameters, least-squares design dimension 16·5·3·3 = 720
    assert sum(p.numel() for p in conv.parameters()) == 720 * 1024 + 1024
    assert spec.patch_dim(16) == 720


@pytest.mark.parametrize(
    "text, canonical",
    [
        (OFFICIAL, OFFICIAL),
        ("CONV3D_K5X3X3_O1024_S1X2X2_P2X1X1", OFFICIAL),  # case-insensitive
        ("conv3d_k3_o8_s2", "conv3d_k3x3x3_o8_s2x2x2"),  # a scalar applies to every axis
        ("conv2d_k3_o64_p1_d2", "conv2d_k3x3_o64_p1x1_d2x2"),
        ("conv1d_k7_o4", "conv1d_k7_o4"),
        ("conv3d_k5x7x7_o1024_s1x3x3_p2x0x0", "conv3d_k5x7x7_o1024_s1x3x3_p2x0x0"),  # MVDUSt3R's layer
        ("conv3d_o16_k1", "conv3d_k1x1x1_o16"),  # fields in any order
    ],
)
def test_spec_round_trip(text, canonical):
    spec = parse_spec(text)
    assert str(spec) == canonical
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text, message",
    [
        ("conv4d_k3_o8", "unknown layer kind 'conv4d'"),
        ("linear_k3_o8", "unknown layer kind 'linear'"),
        ("conv3d_k3x3_o8", "kernel has 2 values (3x3) but conv3d needs 1 or 3 (T, H, W)"),
        ("conv2d_k3_o8_s1x2x2", "stride has 3 values (1x2x2) but conv2d needs 1 or 2 (H, W)"),
        ("conv3d_k3_o8_p1x1", "padding has 2 values"),
        ("conv3d_k3_o8_d1x1", "dilation has 2 values"),
        ("conv3d_o8", "missing kernel 'k"),
        ("conv3d_k3", "missing out channels 'o"),
        ("conv3d_k3_oabc", "out channels 'oabc' must be an integer"),
        ("conv3d_k3.5_o8", "kernel 'k3.5' must be an integer"),
        ("conv3d_k3_o8_p-1", "padding 'p-1' must be non-negative integers"),
        ("conv3d_k3_o8_q2", "unknown field 'q2'"),
        ("conv3d_k3_o8_s2_s2", "field 's' (stride) given twice"),
        ("conv3d_k3_o8_s", "field 's' (stride) has no value"),
        ("conv3d_k3_o8x8", "out channels must be a single integer"),
        ("conv3d_k0_o8", "must be >= 1"),
        ("", "non-empty string"),
    ],
)
def test_spec_errors_name_the_problem(text, message):
    with pytest.raises(InputError) as err:
        parse_spec(text)
    assert message in str(err.value)


def test_upsample_latent_time_is_linear_in_time_with_aligned_corners():
    z = torch.randn(2, 3, 4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    up = upsample_latent_time(z)
    assert up.shape == (2, 3, 13, 5, 6) and upsampled_frames(4) == 13
    for j in range(4):  # latent frame j lands unchanged on video frame 4j
        torch.testing.assert_close(up[:, :, 4 * j], z[:, :, j], rtol=0, atol=1e-12)
    for j in range(3):  # in between: convex blends of the two neighbours
        for r in range(1, 4):
            expected = (1 - r / 4) * z[:, :, j] + (r / 4) * z[:, :, j + 1]
            torch.testing.assert_close(up[:, :, 4 * j + r], expected, rtol=0, atol=1e-12)
    assert upsample_latent_time(z[:, :, :1]).shape[2] == 1  # a single latent frame is a single video frame
    with pytest.raises(InputError, match=r"\[B, C, T', h, w\]"):
        upsample_latent_time(z[0])


def test_grid_check_accepts_official_and_mini_pairs():
    assert check_grids(OFFICIAL, StitchGrids((16, 4, 64, 64), (13, 32, 32, 1024))) == parse_spec(OFFICIAL)
    layer = build_stitching_layer(
        "conv3d_k5x3x3_o64_s1x2x2_p2x1x1", StitchGrids((16, 4, 32, 32), (13, 16, 16, 64))
    )
    assert layer.in_channels == 16 and layer.out_channels == 64


def test_grid_check_suggests_a_spec_that_fits():
    grids = StitchGrids((16, 4, 64, 64), (13, 32, 32, 1024))
    with pytest.raises(InputError) as err:
        check_grids("conv3d_k5x3x3_o1024", grids)
    msg = str(err.value)
    assert "(9, 62, 62) instead of (13, 32, 32)" in msg
    assert f"try {OFFICIAL}" in msg
    with pytest.raises(InputError) as err:
        check_grids("conv3d_k5x3x3_o512_s1x2x2_p2x1x1", grids)
    assert "outputs 512 channels but the tokens are 1024-d" in str(err.value)
    assert f"try {OFFICIAL}" in str(err.value)
    with pytest.raises(InputError, match="no stride/padding with this kernel fits"):
        check_grids("conv3d_k3_o8", StitchGrids((4, 2, 8, 8), (5, 20, 20, 8)))
    with pytest.raises(InputError, match="conv1d"):
        check_grids("conv1d_k3_o8", grids)


@pytest.mark.parametrize("seed", range(6))
def test_suggestions_match_torch_output_shapes(seed):
    """Whatever the grids, a suggested spec really maps them (checked by running the torch conv)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))
    k = (r(1, 5), r(1, 5), r(1, 5))
    t_lat, h, w = r(1, 4), r(4, 20), r(4, 20)
    t = upsampled_frames(t_lat)
    out = (t, max(1, h // r(1, 3)), max(1, w // r(1, 3)))
    spec = ConvSpec(3, 2, k)
    fix = spec.suggest((t, h, w), out)
    if fix is None:
        return
    y = fix.build(3)(torch.zeros(1, 3, t, h, w))
    assert tuple(y.shape[2:]) == out == fix.output_size((t, h, w))


def test_conv2d_layer_is_applied_per_frame():
    spec = parse_spec("conv2d_k3_o5_s2_p1")
    layer = build_stitching_layer(spec, StitchGrids((3, 2, 8, 8), (5, 4, 4, 5)))
    z = torch.randn(2, 3, 2, 8, 8)
    y = apply_stitching_layer(layer, z)
    up = upsample_latent_time(z)
    assert y.shape == (2, 5, 4, 4, 5)
    for t in range(5):
        torch.testing.assert_close(y[:, t], layer(up[:, :, t]).permute(0, 2, 3, 1))


def test_official_stitching_conv_parity(shared_dir):
    """Our upsampling + spec-built Conv3d reproduce the official StitchVAE3D's first two stages."""
    from safetensors import safe_open

    parity = shared_dir / "reference" / "parity"
    with safe_open(str(parity / "stitched_io.safetensors"), "pt") as f:
        latent = f.get_tensor("input/latent")
        up_ref = f.get_tensor("stitch/upsampled_latent")
        tokens_ref = f.get_tensor("stitch/tokens")
    with safe_open(str(parity / "stitched_checkpoint.safetensors"), "pt") as f:
        state = {
            "weight": f.get_tensor("stitching_layer/weight"),
            "bias": f.get_tensor("stitching_layer/bias"),
        }
    up = upsample_latent_time(latent)
    torch.testing.assert_close(up, up_ref, rtol=1e-6, atol=1e-6)
    layer = build_stitching_layer(OFFICIAL, StitchGrids(tuple(latent.shape[1:]), (5, 16, 16, 1024)))
    layer.load_state_dict(state)
    with torch.no_grad():
        tokens = apply_stitching_layer(layer, latent)  # B, T, h, w, D
    torch.testing.assert_close(tokens.permute(0, 4, 1, 2, 3), tokens_ref, rtol=1e-4, atol=1e-4)
    # and the replicate padding matters here: zero padding would not reproduce the official tokens
    zero = F.conv3d(up, state["weight"], state["bias"], stride=(1, 2, 2), padding=(2, 1, 1))
    assert (zero - tokens_ref).abs().max() > 1e-2
