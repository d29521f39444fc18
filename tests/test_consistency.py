"""Multi-view consistency (issue 10): renders at the predicted cameras vs the decoded frames."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vist3a.errors import InputError
from vist3a.eval import text_to_3d as t23d
from vist3a.eval.consistency import frame_indices, multiview_consistency
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.gaussians import Gaussians
from vist3a.gaussians.render import render


def _scene(seed: int = 0, n: int = 300) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    scales = torch.full((n, 3), 0.08)
    colours = torch.rand(n, 3, generator=g) * 0.6 + 0.2
    return Gaussians.from_colors(means, colours, scales, torch.full((n,), 0.8))


def test_frame_indices_are_evenly_spaced_with_both_ends():
    assert frame_indices(13, 4) == [0, 4, 8, 12]
    assert frame_indices(5, 5) == [0, 1, 2, 3, 4]
    assert frame_indices(3, 0) == [0, 1, 2]
    assert frame_indices(9, 1) == [0]


def test_known_answers():
    """Frames that are the scene's own renders score +inf; a known offset gives its analytic PSNR;
    a frame from another scene scores lower than the consistent ones."""
    g = _scene()
    cams = Cameras.orbit(5, radius=3.0, width=48, height=48)
    frames = render(g, cams, backend="torch", near_plane=0.1, far_plane=100.0).rgb.clamp(0, 1)
    same = multiview_consistency(g, cams, frames, n=0, backend="torch")
    assert same["frames"] == [0, 1, 2, 3, 4] and all(math.isinf(v) for v in same["psnr"])
    assert frames.max() < 0.94
    shifted = multiview_consistency(g, cams, frames + 0.05, n=3, backend="torch")
    assert shifted["frames"] == [0, 2, 4]
    for v in shifted["psnr"]:  # MSE = 0.05² everywhere: -10 log10(0.0025) = 26.02 dB
        assert v == pytest.approx(-10 * math.log10(0.05**2), abs=0.05)
    assert shifted["l1"] == pytest.approx([0.05] * 3, abs=1e-4)
    other = render(_scene(seed=1), cams, backend="torch", near_plane=0.1, far_plane=100.0).rgb.clamp(0, 1)
    mixed = frames.clone()
    mixed[2] = other[2]  # one frame contradicts the scene
    got = multiview_consistency(g, cams, mixed, n=0, backend="torch")["psnr"]
    want = -10 * math.log10(float(((other[2] - frames[2]) ** 2).mean()))
    assert got[2] == pytest.approx(want, abs=1e-3) and got[2] < 25
    assert all(math.isinf(v) for i, v in enumerate(got) if i != 2)


def test_frames_are_resized_to_the_cameras():
    """Decoded frames at the video size (2x the cameras' size here) are compared after a bilinear resize."""
    g = _scene()
    cams = Cameras.orbit(2, radius=3.0, width=32, height=32)
    big = render(g, cams.resized(64, 64), backend="torch", near_plane=0.1, far_plane=100.0).rgb.clamp(0, 1)
    got = multiview_consistency(g, cams, big, n=0, backend="torch")["psnr"]
    assert all(v > 22 for v in got)  # the same scene at another resolution; only resampling differs


def test_bad_input_is_one_clear_error():
    g, cams = _scene(), Cameras.orbit(3, width=16, height=16)
    with pytest.raises(InputError, match=r"\[T,3,H,W\]"):
        multiview_consistency(g, cams, torch.rand(3, 16, 16))
    with pytest.raises(InputError, match="3 cameras for 2 frames"):
        multiview_consistency(g, cams, torch.rand(2, 3, 16, 16))
    with pytest.raises(InputError, match="non-finite"):
        multiview_consistency(g, cams, torch.full((3, 3, 16, 16), float("nan")))


def test_read_consistency(tmp_path):
    assert math.isnan(t23d.read_consistency(tmp_path))  # a reused scene without the file
    (tmp_path / t23d.CONSISTENCY_JSON).write_text(json.dumps({"frames": [0, 1, 2], "psnr": [20.0, 22.0, float("inf")]}))
    assert t23d.read_consistency(tmp_path) == pytest.approx(21.0)  # +inf (an identical frame) is left out
    (tmp_path / t23d.CONSISTENCY_JSON).write_text("{not json")
    assert math.isnan(t23d.read_consistency(tmp_path))
