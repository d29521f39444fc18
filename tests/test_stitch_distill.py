"""Self-distillation losses: known answers for every term, and the depth-gradient axes."""

from __future__ import annotations

import pytest
import torch

from vist3a.errors import InputError
from vist3a.stitching.distill import (
    TERMS,
    DistillTargets,
    DistillWeights,
    depth_gradient_loss,
    distillation_loss,
)

B, V, H, W = 1, 3, 8, 16


def _targets(seed: int = 0) -> DistillTargets:
    g = torch.Generator().manual_seed(seed)
    G = V * H * W
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return DistillTargets(
        depth=r(B, V, H, W, 1).abs() + 1, depth_conf=r(B, V, H, W).abs() + 1,
        means=r(B, G, 3), covariances=r(B, G, 3, 3), harmonics=r(B, G, 3, 25), opacities=r(B, G).sigmoid(),
        scales=r(B, G, 3).abs(), rotations=r(B, G, 4), anchor=r(B, V, 83, H, W), gs_conf=r(B, V, H, W),
        extrinsic=r(B, V, 4, 4), intrinsic=r(B, V, 3, 3), pose_enc=[r(B, V, 9) for _ in range(4)],
    )  # fmt: skip


def _shifted(t: DistillTargets, name: str, by: float) -> DistillTargets:
    kw = dict(t.__dict__)
    kw[name] = [x.clone() for x in kw[name]] if name == "pose_enc" else kw[name] + by
    return DistillTargets(**kw)


def test_identical_outputs_give_zero():
    t = _targets()
    loss = distillation_loss(t, _targets())
    assert set(loss) == set(TERMS) | {"total"}
    for k, v in loss.items():
        assert v.item() == 0.0, k


@pytest.mark.parametrize(
    "name, weight",
    [("depth", 1), ("means", 1), ("covariances", 1), ("harmonics", 1), ("opacities", 1), ("scales", 10),
     ("rotations", 1), ("gs_conf", 0.01), ("depth_conf", 0.01), ("anchor", 0.1), ("extrinsic", 1),
     ("intrinsic", 1)],
)  # fmt: skip
def test_a_constant_shift_gives_weight_times_shift(name, weight):
    t = _targets()
    loss = distillation_loss(_shifted(t, name, 0.25), t)
    assert loss[name].item() == pytest.approx(0.25 * weight, rel=1e-5)
    others = [k for k in TERMS if k != name]
    assert all(abs(loss[k].item()) < 1e-8 for k in others), {k: loss[k].item() for k in others if loss[k] != 0}  # rounding
    assert loss["total"].item() == pytest.approx(0.25 * weight, rel=1e-5)


def test_pose_encoding_term_is_the_mean_over_iterations():
    t = _targets()
    s = _shifted(t, "pose_enc", 0)
    s.pose_enc[1] = s.pose_enc[1] + 0.4  # one of four iterations off by 0.4
    assert distillation_loss(s, t)["pose_enc"].item() == pytest.approx(0.1, rel=1e-5)


def _expected_ramp(slope: float, along: int, n_other: int) -> float:
    """mean over s of slope·2^s·(n_s - 1)/n_s, n_s = ceil(along / 2^s) (the ramp's axis subsampled)."""
    total = 0.0
    for s in range(4):
        n = -(-along // 2**s)
        total += slope * 2**s * (n - 1) / n
    return total / 4


def test_depth_gradient_is_taken_along_the_image_axes():
    target = torch.full((B, V, H, W, 1), 2.0)  # exact differences
    ramp_w = target + 0.5 * torch.arange(W).view(1, 1, 1, W, 1)  # slope 0.5 along width
    got = depth_gradient_loss(ramp_w, target)
    assert got.item() == pytest.approx(_expected_ramp(0.5, W, H), rel=1e-5)
    ramp_h = target + 0.5 * torch.arange(H).view(1, 1, H, 1, 1)
    assert depth_gradient_loss(ramp_h, target).item() == pytest.approx(_expected_ramp(0.5, H, W), rel=1e-5)
    per_frame = target + torch.arange(V).view(1, V, 1, 1, 1).float()  # a different offset per view
    assert depth_gradient_loss(per_frame, target).item() == 0.0
    # the full loss weights it by 0.005; a constant shift has no gradient
    t = _targets()
    s = _shifted(t, "depth", 0)
    s.depth = t.depth + 0.5 * torch.arange(W).view(1, 1, 1, W, 1)
    assert distillation_loss(s, t)["depth_grad"].item() == pytest.approx(0.005 * _expected_ramp(0.5, W, H), rel=1e-5)
    assert distillation_loss(_shifted(t, "depth", 3.0), t)["depth_grad"].item() < 1e-8


def test_official_quirk_takes_frames_and_rows():
    target = torch.full((B, V, H, W, 1), 2.0)  # exact differences
    ramp_w = target + 0.5 * torch.arange(W).view(1, 1, 1, W, 1)
    assert depth_gradient_loss(ramp_w, target, official_quirk=True).item() == 0.0  # blind to width
    per_frame = target + torch.arange(V).view(1, V, 1, 1, 1).float()
    # official: sum |Δ_frames| / (B·V_s·H_s), averaged over scales; Δ = 2^s between kept frames
    want = 0.0
    for s in range(4):
        v, h = -(-V // 2**s), -(-H // 2**s)
        want += (v - 1) * h * W * 2**s / (B * v * h)
    assert depth_gradient_loss(per_frame, target, official_quirk=True).item() == pytest.approx(want / 4, rel=1e-5)


def test_custom_weights_and_shape_errors():
    t = _targets()
    loss = distillation_loss(_shifted(t, "means", 1.0), t, DistillWeights(means=3.0))
    assert loss["means"].item() == pytest.approx(3.0)
    bad = _shifted(t, "means", 0)
    bad.means = bad.means[:, :5]
    with pytest.raises(InputError, match="means differ in shape"):
        distillation_loss(bad, t)
    with pytest.raises(InputError, match="B, V, H, W, 1"):
        depth_gradient_loss(torch.zeros(2, 3), torch.zeros(2, 3))


def test_weight_overrides():
    """`stitch train --loss-weight TERM=VALUE`: named terms change, the rest keep the paper's defaults; a
    zeroed term contributes nothing; unknown terms and bad values are one clear error each."""
    w = DistillWeights().with_overrides(["depth_grad=0.05", " scales = 2"])
    assert (w.depth_grad, w.scales, w.means) == (0.05, 2.0, DistillWeights().means)
    t = _targets()
    off = DistillWeights().with_overrides(["means=0"])
    assert float(distillation_loss(_shifted(t, "means", 1.0), t, off)["means"]) == 0.0
    for bad, msg in (("depth", "TERM=VALUE"), ("colour=1", "TERM=VALUE"), ("depth=x", "not a number"),
                     ("depth=nan", "finite"), ("depth=-2", ">= 0")):  # fmt: skip
        with pytest.raises(InputError, match=msg):
            DistillWeights().with_overrides([bad])


def _shifted_at_pixel(t: DistillTargets, name: str, by: float, v: int, h: int, w: int) -> DistillTargets:
    """``t`` with term ``name`` moved by ``by`` at one pixel (all its channels): Gaussians are numbered (v, h, w)."""
    kw = dict(t.__dict__)
    x = kw[name].clone()
    if x.shape[1] == V * H * W:  # [B, G, ...]
        x[:, v * H * W + h * W + w] += by
    elif name == "anchor":  # [B, V, C, H, W]
        x[:, v, :, h, w] += by
    else:  # [B, V, H, W(, 1)]
        x[:, v, h, w] += by
    kw[name] = x
    return DistillTargets(**kw)


@pytest.mark.parametrize(
    "name", ["depth", "means", "covariances", "harmonics", "opacities", "scales", "rotations", "gs_conf",
             "depth_conf", "anchor"],
)  # fmt: skip
def test_pixel_weight_gives_the_weighted_mean_at_the_right_pixel(name):
    """`stitch train --object-weight`: one pixel off by d, weighted k against 1 elsewhere, gives k·d / (N − 1 + k)
    (N pixels; the channels cancel) instead of the plain d / N; a weight on another pixel gives d / (N − 1 + k)."""
    t = _targets()
    n, k, d = V * H * W, 5.0, 0.5
    student = _shifted_at_pixel(t, name, d, 1, 2, 3)
    scale = getattr(DistillWeights(), name)
    pw = torch.ones(B, V, H, W)
    pw[0, 1, 2, 3] = k
    got = distillation_loss(student, t, pixel_weight=pw)[name].item() / scale
    assert got == pytest.approx(k * d / (n - 1 + k), rel=1e-5)
    assert distillation_loss(student, t)[name].item() / scale == pytest.approx(d / n, rel=1e-5)
    elsewhere = torch.ones(B, V, H, W)
    elsewhere[0, 2, 0, 0] = k
    assert distillation_loss(student, t, pixel_weight=elsewhere)[name].item() / scale == pytest.approx(
        d / (n - 1 + k), rel=1e-5
    )


def test_pixel_weight_leaves_cameras_alone_and_checks_its_shape():
    t = _targets()
    s = _shifted(_shifted(t, "extrinsic", 0.25), "depth", 0.5)
    pw = torch.rand(B, V, H, W, generator=torch.Generator().manual_seed(3)) + 0.1
    weighted, plain = distillation_loss(s, t, pixel_weight=pw), distillation_loss(s, t)
    assert weighted["extrinsic"].item() == pytest.approx(plain["extrinsic"].item())
    assert weighted["depth"].item() == pytest.approx(0.5, rel=1e-5)  # a constant shift: any weighted mean of it
    assert distillation_loss(s, t, pixel_weight=torch.ones(B, V, H, W))["total"].item() == pytest.approx(
        plain["total"].item(), rel=1e-6
    )
    with pytest.raises(InputError, match="pixel_weight must be"):
        distillation_loss(s, t, pixel_weight=torch.ones(B, V, H + 1, W))
    kw = {k: (v[:, :-1] if k in ("means", "covariances", "harmonics", "opacities", "scales", "rotations") else v)
          for k, v in t.__dict__.items()}  # fmt: skip
    voxelised = DistillTargets(**kw)  # one Gaussian fewer than pixels
    with pytest.raises(InputError, match="one Gaussian per pixel"):
        distillation_loss(voxelised, voxelised, pixel_weight=torch.ones(B, V, H, W))


def test_object_pixel_weight_marks_the_saturated_pixels():
    from vist3a.stitching.distill import object_pixel_weight

    img = torch.full((1, 2, 3, 4, 4), 0.5)  # grey floor
    img[0, 1, :, 1, 2] = torch.tensor([0.9, 0.1, 0.1])  # one red object pixel in view 1
    assert object_pixel_weight(img, 1.0) is None
    pw = object_pixel_weight(img, 4.0)
    want = torch.ones(1, 2, 4, 4)
    want[0, 1, 1, 2] = 4.0
    assert torch.equal(pw, want)
