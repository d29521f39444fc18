"""benchmarks/camera_probe.py: the static-camera reference and a probe that finds motion where the tokens hold it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from repo_scripts import load_script
from vist3a.models.pose_encoding import extri_intri_to_pose_encoding


def _yaw_w2c(angles_deg: torch.Tensor) -> torch.Tensor:
    """``[n, C, 4, 4]`` world-to-camera matrices turned by ``angles_deg [n, C]`` about the y axis."""
    a = torch.deg2rad(angles_deg.double())
    m = torch.zeros(*a.shape, 4, 4, dtype=torch.float64)
    m[..., 0, 0], m[..., 0, 2], m[..., 2, 0], m[..., 2, 2] = a.cos(), a.sin(), -a.sin(), a.cos()
    m[..., 1, 1] = m[..., 3, 3] = 1.0
    return m


def test_static_reference_is_the_mean_angle_from_the_first_view():
    m = load_script("benchmarks/camera_probe.py")
    w2c = _yaw_w2c(torch.tensor([[0.0, 10.0, 20.0, 30.0, 40.0], [0.0, 5.0, 5.0, 5.0, 5.0]]))
    assert m.static_errors(w2c) == pytest.approx((25.0 + 5.0) / 2, abs=1e-4)


def _synthetic(n: int, seed: int, informative: bool) -> dict[str, torch.Tensor]:
    """Clips of 4 views turning at a per-clip speed; the tokens carry each view's angle (or only noise)."""
    g = torch.Generator().manual_seed(seed)
    speed = torch.rand(n, 1, generator=g) * 60.0 - 30.0
    angles = speed * torch.arange(4.0)[None]
    w2c = _yaw_w2c(angles)
    k = torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]).expand(n, 4, 3, 3)
    enc = extri_intri_to_pose_encoding(w2c[..., :3, :].float(), k, (64, 64))
    tokens = torch.randn(n, 4, 32, generator=g) * 0.1
    if informative:
        tokens[..., 0] = angles / 60.0
        tokens[..., 1] = (angles / 60.0) ** 2
    return {"camera": tokens, "pooled": tokens, "enc": enc, "w2c": w2c.float()}


@pytest.mark.parametrize("informative", [True, False])
def test_probe_reads_motion_only_when_the_tokens_carry_it(informative):
    m = load_script("benchmarks/camera_probe.py")
    torch.manual_seed(0)
    cfg = SimpleNamespace(embed_dim=16, camera_trunk_depth=1, camera_num_heads=2, mlp_ratio=2.0)
    tr, ev = _synthetic(256, 1, informative), _synthetic(64, 2, informative)
    curve = m.train_probe(cfg, tr, ev, "camera", steps=200, lr=2e-3, batch=64, seed=0, log_every=200)
    static = m.static_errors(ev["w2c"])
    assert math.isfinite(curve[-1]["eval_rot_deg"]) and static > 10.0
    if informative:
        assert curve[-1]["eval_rot_deg"] < 0.6 * static, (curve[-1], static)
    else:  # noise tokens: nothing to read on unseen clips
        assert curve[-1]["eval_rot_deg"] > 0.8 * static, (curve[-1], static)
