"""GPU parity: the PyTorch reference renderer against gsplat's CUDA rasteriser.

Run on a CUDA machine with gsplat installed::

    python -m pytest tests/test_render_gpu.py -m gpu -q

Random scenes of 10k-100k Gaussians (some behind the camera, some off-screen, footprints from
sub-pixel to tens of pixels, SH degree 3) at 256² and 512²: images must agree to PSNR ≥ 40 dB and
the gradients w.r.t. means, scales, quats, opacities and SH colours to cosine similarity ≥ 0.99.
"""

from __future__ import annotations

import math

import pytest
import torch

from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians

pytestmark = pytest.mark.gpu


def _needs_gsplat() -> None:
    pytest.importorskip("gsplat", reason="gsplat is not installed")


def _scene(n: int, seed: int, device: str = "cuda") -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen)
    means[:, 2] = means[:, 2] * 1.5 + 4.0  # mostly in front, a few behind or at the near plane
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1)
    scale = 0.6 * n ** (-1 / 3)  # comparable coverage at every n
    scales = scale * torch.exp(torch.randn(n, 3, generator=gen) * 0.6)
    opac = torch.rand(n, generator=gen) * 0.98 + 0.01
    sh = torch.randn(n, 16, 3, generator=gen) * 0.3
    return Gaussians(means, quats, scales, opac, sh).to(device)


def _cameras(size: int, device: str = "cuda") -> Cameras:
    cams = Cameras.orbit(2, radius=4.0, elevation_deg=15.0, target=(0.0, 0.0, 4.0), up=(0.0, -1.0, 0.0),
                         fov_x_deg=60.0, width=size, height=size)  # fmt: skip
    return cams.to(device)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0).item()


@pytest.mark.parametrize(
    "n,size,mode",
    [(10_000, 256, "classic"), (100_000, 256, "classic"), (30_000, 512, "classic"), (100_000, 512, "classic"),
     (10_000, 256, "antialiased")],
)  # fmt: skip
def test_torch_reference_matches_gsplat(n, size, mode):
    _needs_gsplat()
    from vist3a.gaussians.render import render

    g = _scene(n, seed=n + size)
    cams = _cameras(size)
    weights = torch.rand(len(cams), 3, size, size, device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    results = {}
    for backend in ("gsplat", "torch"):
        params = {k: getattr(g, k).clone().requires_grad_() for k in ("means", "quats", "scales", "opacities", "sh")}
        out = render(Gaussians(**params), cams, background=(0.2, 0.3, 0.4), backend=backend, rasterize_mode=mode)
        assert out.backend == backend
        loss = (out.rgb * weights).sum() + out.alpha.sum()
        loss.backward()
        results[backend] = (out, {k: p.grad.detach() for k, p in params.items()})
    (ref, g_ref), (fast, g_fast) = results["torch"], results["gsplat"]

    assert ref.alpha.mean() > 0.2, "the scene should cover a good part of the image"
    psnr_rgb = _psnr(ref.rgb, fast.rgb)
    psnr_alpha = _psnr(ref.alpha, fast.alpha)
    print(f"n={n} size={size} mode={mode}: PSNR rgb {psnr_rgb:.1f} dB, alpha {psnr_alpha:.1f} dB")
    assert psnr_rgb >= 40.0 and psnr_alpha >= 40.0
    solid = (ref.alpha > 0.5) & (fast.alpha > 0.5)
    rel = ((ref.depth - fast.depth).abs() / fast.depth.clamp_min(1e-3))[solid]
    assert rel.median() < 1e-3 and rel.mean() < 1e-2

    for name in ("means", "scales", "quats", "opacities", "sh"):
        cos = _cos(g_ref[name], g_fast[name])
        print(f"  grad {name}: cosine {cos:.5f}")
        assert cos >= 0.99, name
    # SH colours: the DC band alone (the "colour" of each Gaussian) too.
    assert _cos(g_ref["sh"][:, 0], g_fast["sh"][:, 0]) >= 0.99


def test_auto_backend_picks_gsplat_on_cuda():
    _needs_gsplat()
    from vist3a.gaussians.render import render

    out = render(_scene(1000, seed=0), _cameras(64))
    assert out.backend == "gsplat" and out.rgb.is_cuda
    cpu = render(_scene(1000, seed=0, device="cpu"), _cameras(64, device="cpu"))
    assert cpu.backend == "torch"
    torch.testing.assert_close(cpu.rgb, out.rgb.cpu(), atol=2e-3, rtol=0)


def test_float64_scene_uses_the_torch_backend_on_cuda():
    from vist3a.gaussians.render import render

    g = _scene(500, seed=3).to(dtype=torch.float64)
    out = render(g, _cameras(32).to(dtype=torch.float64))
    assert out.backend == "torch" and out.rgb.dtype == torch.float64
