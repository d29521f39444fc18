"""Resize / crop with intrinsics, the official RE10K preprocessing, colour jitter, window sampling, collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.data import SkipScene, collate, sample_window
from vist3a.data.transforms import (
    ColorJitter,
    natural_key,
    official_resize_crop,
    pil_to_tensor,
    resize,
    resize_center_crop,
)
from vist3a.gaussians.cameras import Cameras


def _blob(h: int, w: int, cx: float, cy: float, sigma: float = 1.5) -> torch.Tensor:
    """A Gaussian blob centred at continuous pixel coords (cx, cy) (pixel i covers [i, i+1))."""
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    g = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return g.expand(3, h, w).clone()


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    m = img[0]
    h, w = m.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return float((m * xx).sum() / m.sum()), float((m * yy).sum() / m.sum())


@pytest.mark.parametrize("size", [24, (24, 32), (40, 20)])
def test_resize_center_crop_moves_the_principal_point_with_the_content(size):
    # The principal point sits on a blob; after the transform, K's (cx, cy) must still sit on it.
    H, W, cx, cy = 60, 100, 47.0, 31.0
    img = _blob(H, W, cx, cy, sigma=4.0)
    K = torch.tensor([[[80.0, 0.0, cx], [0.0, 80.0, cy], [0.0, 0.0, 1.0]]])
    out, K2 = resize_center_crop(img, size, K)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (3, h, w)
    ux, uy = _centroid(out)
    assert K2[0, 0, 2].item() == pytest.approx(ux, abs=0.15)
    assert K2[0, 1, 2].item() == pytest.approx(uy, abs=0.15)
    # aspect kept: one scale for both axes
    assert K2[0, 0, 0] / K2[0, 1, 1] == pytest.approx(1.0, abs=0.02)


def test_resize_scales_intrinsics_per_axis():
    K = torch.tensor([[[100.0, 0.0, 50.0], [0.0, 80.0, 40.0], [0.0, 0.0, 1.0]]])
    out, K2 = resize(torch.rand(2, 3, 80, 100), (20, 50), K)
    assert out.shape == (2, 3, 20, 50)
    assert torch.allclose(K2[0], torch.tensor([[50.0, 0.0, 25.0], [0.0, 20.0, 10.0], [0.0, 0.0, 1.0]]))
    # Cameras.resized agrees
    cams = Cameras(torch.eye(4)[None], K, 100, 80).resized(50, 20)
    assert torch.allclose(cams.K, K2)


def test_official_resize_crop_swaps_width_and_height():
    # 64x36 landscape frame, white stripe over its left quarter (x < 16).
    arr = np.zeros((36, 64, 3), dtype=np.uint8)
    arr[:, :16] = 255
    im = Image.fromarray(arr)
    crop, K, ff, Kf = official_resize_crop(im, 32, torch.eye(3), feedforward_size=16)
    assert crop.shape == (3, 32, 32) and ff.shape == (3, 16, 16)
    # Official: the whole width is squashed to 32 px (36*32/36 = 32 wide, 64*32/36 ≈ 57 tall): the stripe
    # covers x < 8. A correct aspect-preserving crop keeps only the middle and shows ~2 px of it.
    assert crop[:, :, 5].mean() > 0.9
    correct, _ = resize_center_crop(pil_to_tensor(im), 32)
    assert correct[:, :, 5].mean() < 0.1
    # The returned K describes the distorted image: sx = 32/64, sy = 57/36, crop offset y0 = (57-32)//2.
    assert K[0, 0].item() == pytest.approx(32 / 64)
    assert K[1, 1].item() == pytest.approx(57 / 36)
    assert K[1, 2].item() == pytest.approx(-((57 - 32) // 2))
    assert Kf[0, 0].item() == pytest.approx(K[0, 0].item() / 2)


def test_color_jitter_one_draw_per_clip():
    clip = torch.rand(1, 3, 8, 8).expand(4, 3, 8, 8).clone()
    out = ColorJitter()(clip, torch.Generator().manual_seed(0))
    assert out.shape == clip.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, clip)
    for v in range(1, 4):  # identical frames stay identical: one draw for the clip
        assert torch.allclose(out[v], out[0])
    # zero jitter is the identity
    assert torch.allclose(ColorJitter(0, 0, 0, 0)(clip), clip)


def test_sample_window_properties():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        idx = sample_window(60, 21, (21, 50), g)
        assert len(idx) == 21 and idx == sorted(set(idx))
        assert idx[-1] - idx[0] < 50 and 0 <= idx[0] and idx[-1] <= 59
    # official: the start is drawn from [0, N-L-1], so the last frame is never used
    assert max(max(sample_window(22, 21, (21, 21), g, "official")) for _ in range(30)) == 20
    assert max(max(sample_window(21, 21, (21, 21), g)) for _ in range(5)) == 20
    with pytest.raises(SkipScene, match="too short"):
        sample_window(21, 21, (21, 50), g, "official")
    a = sample_window(60, 5, (5, 30), torch.Generator().manual_seed(7))
    assert a == sample_window(60, 5, (5, 30), torch.Generator().manual_seed(7))


def test_collate_stacks_tensors_and_lists_cameras():
    cam = Cameras(torch.eye(4)[None], torch.eye(3)[None], 4, 4)
    batch = [{"images": torch.zeros(2, 3, 4, 4), "cameras": cam, "scene": "a", "n": 8},
             {"images": torch.ones(2, 3, 4, 4), "cameras": None, "scene": "b", "n": 8}]  # fmt: skip
    out = collate(batch)
    assert out["images"].shape == (2, 2, 3, 4, 4)
    assert out["cameras"] == [cam, None] and out["scene"] == ["a", "b"]
    assert out["n"].tolist() == [8, 8]


def test_natural_key():
    assert sorted(["10.png", "2.png", "1.png"], key=natural_key) == ["1.png", "2.png", "10.png"]


def test_official_intrinsics_follow_the_distorted_content():
    # A blob at the principal point stays at K's (cx, cy) through the swapped resize and the crop.
    H, W, cx, cy = 72, 128, 70.0, 40.0
    blob = (_blob(H, W, cx, cy, sigma=5.0) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    K = torch.tensor([[90.0, 0.0, cx], [0.0, 90.0, cy], [0.0, 0.0, 1.0]])
    crop, Kc, ff, Kf = official_resize_crop(Image.fromarray(blob), 48, K, feedforward_size=24)
    for img, k in ((crop, Kc), (ff, Kf)):
        ux, uy = _centroid(img)
        assert k[0, 2].item() == pytest.approx(ux, abs=0.2)
        assert k[1, 2].item() == pytest.approx(uy, abs=0.2)


def test_hsv_conversion_matches_colorsys():
    import colorsys

    from vist3a.data.transforms import _hsv_to_rgb, _rgb_to_hsv

    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    hsv = _rgb_to_hsv(x)
    for i in range(4):
        r, g, b = x[0, :, i, i].tolist()
        assert hsv[0, :, i, i].tolist() == pytest.approx(list(colorsys.rgb_to_hsv(r, g, b)), abs=1e-6)
    assert torch.allclose(_hsv_to_rgb(hsv), x, atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    shifted = _rgb_to_hsv(red) + torch.tensor([1 / 3, 0, 0]).view(1, 3, 1, 1)
    assert torch.allclose(_hsv_to_rgb(shifted), torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1), atol=1e-6)
