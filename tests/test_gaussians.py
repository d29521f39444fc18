"""Gaussians: SH evaluation against independent references, validation, pruning, merging, devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vist3a.errors import InputError
from vist3a.gaussians.gaussians import (
    SH_C0,
    Gaussians,
    eval_sh,
    rgb_to_sh,
    sh_degree_from_k,
    sh_to_rgb,
)


def basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """``[D,K]``: each basis function Y_k(d) from eval_sh with one-hot coefficients."""
    k = (degree + 1) ** 2
    onehot = torch.eye(k, dtype=dirs.dtype)[:, :, None].expand(k, k, 3)
    return eval_sh(onehot[None], dirs[:, None], degree)[..., 0]


def reference_real_sh(dirs: np.ndarray, degree: int) -> np.ndarray:
    """Real SH in the 3DGS/gsplat convention from scipy's complex Y_l^m (with Condon-Shortley phase):
    index l^2+l+m; m<0: sqrt2 Im Y_l^|m|, m=0: Y_l^0, m>0: sqrt2 Re Y_l^m."""
    special = pytest.importorskip("scipy.special")
    x, y, z = dirs.T
    theta = np.arccos(np.clip(z, -1, 1))  # polar
    phi = np.arctan2(y, x)  # azimuth
    out = np.zeros((dirs.shape[0], (degree + 1) ** 2))
    for l in range(degree + 1):
        for m in range(-l, l + 1):
            c = special.sph_harm_y(l, abs(m), theta, phi)
            if m < 0:
                v = math.sqrt(2) * c.imag
            elif m == 0:
                v = c.real
            else:
                v = math.sqrt(2) * c.real
            out[:, l * l + l + m] = v
    return out


@pytest.fixture
def dirs() -> torch.Tensor:
    d = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return torch.nn.functional.normalize(d, dim=-1)


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_eval_sh_matches_scipy_real_sh(dirs: torch.Tensor, degree: int) -> None:
    ours = basis(dirs, degree).numpy()
    ref = reference_real_sh(dirs.numpy(), degree)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_eval_sh_gsplat_signs_of_band_one(dirs: torch.Tensor) -> None:
    c1 = math.sqrt(3 / (4 * math.pi))
    b = basis(dirs, 1)
    x, y, z = dirs.unbind(-1)
    assert torch.allclose(b[:, 0], torch.full_like(x, SH_C0))
    assert torch.allclose(b[:, 1], -c1 * y) and torch.allclose(b[:, 2], c1 * z) and torch.allclose(b[:, 3], -c1 * x)


def test_sh_basis_is_orthonormal_on_the_sphere() -> None:
    """Gauss-Legendre in cos(theta) x uniform phi integrates products up to degree 8 exactly."""
    nodes, weights = np.polynomial.legendre.leggauss(12)
    n_phi = 24
    phi = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
    ct, ph = np.meshgrid(nodes, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    d = np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3)
    w = (weights[:, None] * np.full(n_phi, 2 * np.pi / n_phi)[None]).reshape(-1)
    y = basis(torch.from_numpy(d), 4).numpy()  # [D,25]
    gram = (y * w[:, None]).T @ y
    np.testing.assert_allclose(gram, np.eye(25), atol=1e-10)


def test_eval_sh_degree_argument_and_normalisation(dirs: torch.Tensor) -> None:
    sh = torch.randn(200, 25, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(eval_sh(sh, dirs, degree=2), eval_sh(sh[:, :9], dirs))
    assert torch.allclose(eval_sh(sh, 7.5 * dirs), eval_sh(sh, dirs))  # directions are normalised
    with pytest.raises(InputError, match="degree 3 needs 16"):
        eval_sh(sh[:, :9], dirs, degree=3)


def test_sh_degree_from_k_and_colour_conversions() -> None:
    assert [sh_degree_from_k(k) for k in (1, 4, 9, 16, 25)] == [0, 1, 2, 3, 4]
    for bad in (2, 5, 36):
        with pytest.raises(InputError):
            sh_degree_from_k(bad)
    rgb = torch.tensor([[0.0, 0.5, 1.0]])
    assert torch.allclose(rgb_to_sh(rgb), torch.tensor([[-0.5, 0.0, 0.5]]) / SH_C0)
    assert torch.allclose(sh_to_rgb(rgb_to_sh(rgb)), rgb)


def scene(n: int = 6, degree: int = 1) -> Gaussians:
    g = torch.Generator().manual_seed(2)
    return Gaussians(
        means=torch.randn(n, 3, generator=g),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=torch.rand(n, 3, generator=g) + 0.1,
        opacities=torch.rand(n, generator=g),
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g),
    )


def test_validate_names_the_problem() -> None:
    g = scene()
    assert g.validate() is g
    cases = {
        "means must be": Gaussians(g.means[:, :2], g.quats, g.scales, g.opacities, g.sh),
        "quats must be": Gaussians(g.means, g.quats[:5], g.scales, g.opacities, g.sh),
        "opacities must be": Gaussians(g.means, g.quats, g.scales, g.opacities[:, None], g.sh),
        "sh must be": Gaussians(g.means, g.quats, g.scales, g.opacities, g.sh[:, :, :2]),
        "SH coefficient count 5": Gaussians(g.means, g.quats, g.scales, g.opacities, g.sh[:, :1].repeat(1, 5, 1)),
    }
    for pattern, bad in cases.items():
        with pytest.raises(InputError, match=pattern):
            bad.validate()
    for field, value, pattern in [
        ("means", float("nan"), "means has 1 non-finite"),
        ("scales", -1.0, "scales must be > 0"),
        ("opacities", 1.5, "opacities must lie in"),
        ("quats", 2.0, "unit quaternions"),
    ]:
        bad = scene()
        getattr(bad, field).view(-1)[0] = value
        with pytest.raises(InputError, match=pattern):
            bad.validate()


def test_prune_keeps_opacity_at_or_above_threshold() -> None:
    g = scene(4)
    g.opacities = torch.tensor([0.001, 0.5, 1 / 255, 0.003])
    kept = g.prune()
    assert kept.opacities.tolist() == pytest.approx([0.5, 1 / 255])
    assert torch.equal(kept.means, g.means[[1, 2]])
    assert len(g.prune(0.0)) == 4


def test_cat_pads_lower_sh_degrees_with_zeros() -> None:
    a, b = scene(3, degree=0), scene(4, degree=2)
    c = Gaussians.cat([a, b])
    assert len(c) == 7 and c.sh_degree == 2
    assert torch.equal(c.sh[:3, :1], a.sh) and (c.sh[:3, 1:] == 0).all()
    assert torch.equal(c.sh[3:], b.sh) and torch.equal(c.means, torch.cat([a.means, b.means]))
    with pytest.raises(InputError):
        Gaussians.cat([])


def test_with_sh_degree_truncates_and_pads() -> None:
    g = scene(3, degree=3)
    assert torch.equal(g.with_sh_degree(1).sh, g.sh[:, :4])
    padded = g.with_sh_degree(4)
    assert padded.sh_degree == 4 and torch.equal(padded.sh[:, :16], g.sh) and (padded.sh[:, 16:] == 0).all()


def test_to_changes_dtype_and_device_keeping_values() -> None:
    g = scene()
    d = g.to(dtype=torch.float64)
    assert d.dtype == torch.float64 and d.sh.dtype == torch.float64
    assert torch.allclose(d.means.float(), g.means)
    m = g.to("meta")
    assert m.device.type == "meta" and m.validate() is m  # shape checks only on meta
    assert repr(g) == "Gaussians(n=6, sh_degree=1, device=cpu, dtype=torch.float32)"


def test_indexing_and_from_colors() -> None:
    g = scene(5)
    mask = torch.tensor([True, False, True, False, False])
    assert torch.equal(g[mask].means, g.means[mask])
    rgb = torch.tensor([[1.0, 0.0, 0.25]])
    h = Gaussians.from_colors(torch.zeros(1, 3), rgb, torch.ones(1, 3), torch.ones(1), sh_degree=2)
    assert h.sh_degree == 2 and torch.allclose(h.colors, rgb) and (h.sh[:, 1:] == 0).all()
    assert torch.equal(h.quats, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert len(Gaussians.empty(sh_degree=3)) == 0 and Gaussians.empty(sh_degree=3).sh_degree == 3


def test_colors_from_camera_uses_view_direction() -> None:
    g = scene(4, degree=1)
    cam = torch.tensor([0.5, -2.0, 1.0])
    d = torch.nn.functional.normalize(g.means - cam, dim=-1)
    c1 = math.sqrt(3 / (4 * math.pi))
    x, y, z = d[:, :1], d[:, 1:2], d[:, 2:]
    manual = SH_C0 * g.sh[:, 0] - c1 * y * g.sh[:, 1] + c1 * z * g.sh[:, 2] - c1 * x * g.sh[:, 3] + 0.5
    assert torch.allclose(g.colors_from(cam), manual.clamp_min(0), atol=1e-6)
