"""Gaussian adapter: activations, layout, conversion to vist3a Gaussians, parity with the official run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import quat_to_matrix
from vist3a.gaussians.gaussians import SH_C0, Gaussians
from vist3a.models.gaussian_adapter import AnySplatGaussians, GaussianAdapter, build_covariance
from vist3a.models.voxelize import voxelize_with_fusion


def _raw(n: int, seed: int = 0, sh_degree: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, n, 1 + 7 + 3 * (sh_degree + 1) ** 2, generator=g) * 2


def test_sh_mask_buffer_is_non_persistent() -> None:
    ad = GaussianAdapter(sh_degree=4)
    assert "sh_mask" not in ad.state_dict()
    expect = [1.0] + [0.025] * 3 + [0.00625] * 5 + [0.0015625] * 7 + [0.000390625] * 9
    torch.testing.assert_close(ad.sh_mask, torch.tensor(expect))
    assert ad.raw_dim == 83
    with torch.device("meta"):
        lazy = GaussianAdapter(sh_degree=4)
    lazy = lazy.to_empty(device="cpu")  # what building on meta and materialising leaves behind
    lazy.reset_buffers()
    torch.testing.assert_close(lazy.sh_mask, torch.tensor(expect))


def test_activations_against_formulas() -> None:
    ad = GaussianAdapter()
    raw = _raw(50)
    raw[0, 0, 1:4] = torch.tensor([-3.0, 0.0, 400.0])  # softplus(400)·0.001 = 0.4 → clamped to 0.3
    means = torch.randn(1, 50, 3)
    g = ad(means, raw)
    torch.testing.assert_close(g.opacities, 1 / (1 + torch.exp(-raw[..., 0])))
    torch.testing.assert_close(g.scales[0, 0], torch.tensor([0.001 * math.log1p(math.exp(-3.0)), 0.001 * math.log(2), 0.3]))
    q = raw[..., 4:8]
    torch.testing.assert_close(g.rotations, q / (q.norm(dim=-1, keepdim=True) + 1e-8))
    # SH layout (rgb-major): channel 8 + 25·c + k is colour c, coefficient k
    torch.testing.assert_close(g.harmonics[0, 7, 1, 0], raw[0, 7, 8 + 25])
    torch.testing.assert_close(g.harmonics[0, 7, 2, 4], raw[0, 7, 8 + 50 + 4] * 0.00625)
    assert g.harmonics.shape == (1, 50, 3, 25) and g.covariances.shape == (1, 50, 3, 3)
    torch.testing.assert_close(g.means, means)
    # a trailing fusion logit (the head's 84th channel) is ignored
    g84 = ad(means, torch.cat([raw, torch.randn(1, 50, 1)], dim=-1))
    torch.testing.assert_close(g84.scales, g.scales)
    with pytest.raises(InputError, match="83 channels"):
        ad(means, raw[..., :80])


def test_covariance_xyzw_convention() -> None:
    # 90° about z, xyzw = (0, 0, sin45, cos45): x axis → y axis
    q = torch.tensor([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    cov = build_covariance(torch.tensor([2.0, 0.5, 1.0]), q)
    torch.testing.assert_close(cov, torch.diag(torch.tensor([0.25, 4.0, 1.0])), atol=1e-6, rtol=0)


def test_conversion_to_gaussians_preserves_covariance_and_colour() -> None:
    ad = GaussianAdapter()
    g = ad(torch.randn(1, 40, 3), _raw(40, seed=3))
    ours = g.to_gaussians().validate()
    assert isinstance(ours, Gaussians) and ours.sh.shape == (40, 25, 3)
    # covariance from our wxyz quaternions and scales equals AnySplat's R S S^T R^T
    r = quat_to_matrix(ours.quats)
    s2 = torch.diag_embed(ours.scales**2)
    torch.testing.assert_close(r @ s2 @ r.transpose(-1, -2), g.covariances[0], atol=1e-12, rtol=1e-4)
    # DC term is in SH units in both conventions: colour = 0.5 + C0·dc
    torch.testing.assert_close(ours.colors, (0.5 + SH_C0 * g.harmonics[0, :, :, 0]).clamp(0, 1))
    # and back
    back = AnySplatGaussians.from_gaussians(ours)
    torch.testing.assert_close(back.covariances, g.covariances, atol=1e-12, rtol=1e-4)
    torch.testing.assert_close(back.harmonics, g.harmonics)
    torch.testing.assert_close(back.rotations, g.rotations / g.rotations.norm(dim=-1, keepdim=True))


def test_conversion_drops_padding_and_handles_zero_quaternion() -> None:
    ad = GaussianAdapter(sh_degree=0)
    raw = torch.randn(1, 5, 12)
    raw[0, 2, 4:8] = 0.0
    raw[0, 3:] = -1e10  # batch padding: opacity 0
    g = ad(torch.zeros(1, 5, 3), raw)
    ours = g.to_gaussians(count=3)
    assert len(ours) == 3
    torch.testing.assert_close(ours.quats[2], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(g.covariances[0, 2], torch.diag_embed(g.scales[0, 2] ** 2))  # identity rotation
    assert (g.opacities[0, 3:] == 0).all()


# ---------------------------------------------------------------------------------------------
# parity with the official run (shared reference data)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref(shared_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(shared_dir / "reference" / "parity" / "anysplat_io.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith(("novox/", "vox/", "gs_head/", "points/"))}


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    err = (a - b).abs().max()
    assert err <= 2e-5 * b.abs().max(), f"max abs error {err:.3g} vs max|ref| {b.abs().max():.3g}"


def test_stored_covariances_are_r_s_st_rt_of_stored_rotations(ref: dict[str, torch.Tensor]) -> None:
    for prefix, n in (("novox", 150_528), ("vox", 147_775)):
        assert ref[f"{prefix}/scales"].shape[1] == n
        cov = build_covariance(ref[f"{prefix}/scales"][0, ::16], ref[f"{prefix}/rotations"][0, ::16])
        _close(cov, ref[f"{prefix}/covariances_s16"][0])
        # and through our Gaussians (wxyz) as well
        g = AnySplatGaussians(
            means=ref[f"{prefix}/means"][:, ::16],
            covariances=cov[None],
            harmonics=ref[f"{prefix}/harmonics_s16"],
            opacities=ref[f"{prefix}/opacities"][:, ::16],
            scales=ref[f"{prefix}/scales"][:, ::16],
            rotations=ref[f"{prefix}/rotations"][:, ::16],
        ).to_gaussians()
        r = quat_to_matrix(g.quats)
        _close(r @ torch.diag_embed(g.scales**2) @ r.transpose(-1, -2), ref[f"{prefix}/covariances_s16"][0])


def test_adapter_on_stored_raw_reproduces_pixel_gaussians(ref: dict[str, torch.Tensor]) -> None:
    """novox Gaussian (v, y, x) for even y, x comes from gs_head/raw_s2[v, :, y/2, x/2]."""
    raw = ref["gs_head/raw_s2"][0]  # [V, 84, H/2, W/2]
    v_n, c, h2, w2 = raw.shape
    h, w = 2 * h2, 2 * w2
    v, y, x = torch.meshgrid(torch.arange(v_n), torch.arange(0, h, 2), torch.arange(0, w, 2), indexing="ij")
    idx = (v * h * w + y * w + x).reshape(-1)
    g = GaussianAdapter()(ref["novox/means"][:, idx], raw.permute(0, 2, 3, 1).reshape(1, -1, c))
    for name in ("scales", "rotations", "opacities"):
        _close(getattr(g, name)[0], ref[f"novox/{name}"][0, idx])
    # harmonics/covariances are stored for every 16th Gaussian: those with even rows overlap
    on16 = idx % 16 == 0
    assert int(on16.sum()) == v_n * (h // 2) * (w // 16)
    for name in ("harmonics", "covariances"):
        _close(getattr(g, name)[0, on16], ref[f"novox/{name}_s16"][0, idx[on16] // 16])


def test_voxel_fusion_then_adapter_reproduces_voxel_gaussians(ref: dict[str, torch.Tensor]) -> None:
    """Voxels whose member pixels all lie on the stored stride-2 grid (36,313 of 147,775) match fully."""
    raw = ref["gs_head/raw_s2"][0]
    v_n, c, h2, w2 = raw.shape
    h, w = 2 * h2, 2 * w2
    full = torch.zeros(v_n, c, h, w)
    full[:, :, ::2, ::2] = raw
    known = torch.zeros(v_n, h, w, dtype=torch.bool)
    known[:, ::2, ::2] = True
    feats = full.permute(0, 2, 3, 1).reshape(-1, c)
    pts, fused, inv = voxelize_with_fusion(ref["points/world"].reshape(-1, 3), feats[:, :83], feats[:, 83], 0.002)
    ok = torch.ones(pts.shape[0], dtype=torch.bool)
    ok[inv[~known.reshape(-1)]] = False
    assert int(ok.sum()) == 36_313
    g = GaussianAdapter()(pts[None], fused[None])
    for name in ("means", "scales", "rotations", "opacities"):
        _close(getattr(g, name)[0, ok], ref[f"vox/{name}"][0, ok])
    sel = torch.zeros_like(ok)
    sel[::16] = True
    sel &= ok
    for name in ("harmonics", "covariances"):
        _close(getattr(g, name)[0, sel], ref[f"vox/{name}_s16"][0, sel.nonzero()[:, 0] // 16])


def test_view_dependent_colour_matches_gsplat_convention() -> None:
    """AnySplat hands gsplat ``harmonics.permute -> [G, K, 3]``; gsplat's colour is SH(dir) + 0.5, clamped at 0.

    Written out for degree 1 (gsplat's signs: -C1·y, +C1·z, -C1·x), higher bands zeroed.
    """
    ad = GaussianAdapter()
    raw = _raw(30, seed=5)
    raw[..., 8:] = raw[..., 8:].reshape(1, 30, 3, 25).mul(torch.tensor([1.0] * 4 + [0.0] * 21)).reshape(1, 30, 75)
    g = ad(torch.randn(1, 30, 3), raw)
    campos = torch.tensor([0.3, -2.0, 1.0])
    d = torch.nn.functional.normalize(g.means[0] - campos, dim=-1)
    x, y, z = d[:, 0:1], d[:, 1:2], d[:, 2:3]
    h = g.harmonics[0]  # [G, 3, 25]
    c1 = 0.4886025119029199
    expect = 0.5 + SH_C0 * h[..., 0] - c1 * y * h[..., 1] + c1 * z * h[..., 2] - c1 * x * h[..., 3]
    torch.testing.assert_close(g.to_gaussians().colors_from(campos), expect.clamp_min(0.0))
