"""PSNR / SSIM / LPIPS against known answers and skimage; the `vist3a eval metrics` command."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from vist3a.cli import main
from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.eval.metrics import (
    LPIPS,
    MetricSummary,
    find_lpips_weights,
    load_lpips,
    mean_finite,
    psnr,
    score_dir,
    ssim,
)


def sk_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """The pixelSplat/AnySplat/VIST3A call."""
    return float(
        structural_similarity(
            a.numpy(), b.numpy(), win_size=11, gaussian_weights=True, data_range=1.0, channel_axis=0
        )
    )


# ------------------------------------------------------------------------------------------ PSNR
def test_psnr_constant_offset_is_exactly_20db():
    gt = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    assert torch.allclose(psnr(gt + 0.1, gt), torch.tensor([20.0, 20.0], dtype=torch.float64), atol=1e-9)
    # offset 0.01 → mse 1e-4 → 40 dB
    assert psnr(gt[0] + 0.01, gt[0]).item() == pytest.approx(40.0, abs=1e-9)


def test_psnr_identical_is_inf_not_nan():
    x = torch.rand(3, 3, 8, 8)
    v = psnr(x, x)
    assert torch.isinf(v).all() and (v > 0).all()
    assert not torch.isnan(v).any()


def test_psnr_is_mean_of_per_image_values_not_of_mean_mse():
    gt = torch.zeros(2, 3, 8, 8)
    pred = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)])
    per = psnr(pred, gt)
    assert per.tolist() == pytest.approx([20.0, 40.0], abs=1e-4)
    mean, n_inf = mean_finite(per)
    assert mean == pytest.approx(30.0, abs=1e-4) and n_inf == 0
    # PSNR of the batch-mean MSE would be -10 log10((1e-2 + 1e-4)/2) ≈ 22.97 dB: not what we report
    assert abs(mean - (-10 * math.log10((1e-2 + 1e-4) / 2))) > 5


def test_psnr_clips_to_unit_range():
    gt = torch.ones(3, 4, 4)
    assert psnr(gt * 1.7, gt).item() == math.inf  # 1.7 clips to 1


def test_mean_finite_reports_identical_pairs():
    assert mean_finite([20.0, math.inf, 30.0]) == (25.0, 1)
    assert mean_finite([math.inf, math.inf]) == (math.inf, 2)
    with pytest.raises(InputError):
        mean_finite([float("nan")])
    s = MetricSummary.of([20.0, math.inf], [0.5, 1.0], None)
    assert (s.psnr, s.n_identical, s.ssim, s.lpips, s.n) == (20.0, 1, 0.75, None, 2)


def test_shape_mismatch_is_one_clear_error():
    with pytest.raises(InputError, match="differ in shape"):
        psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 9))
    with pytest.raises(InputError, match="smaller than"):
        ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 8))


# ------------------------------------------------------------------------------------------ SSIM
def test_ssim_identical_is_one():
    x = torch.rand(2, 3, 20, 24)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_ssim_matches_skimage_on_random_images(dtype, tol):
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 3, 33, 47, generator=g, dtype=torch.float64)
    pred = (gt + 0.15 * torch.randn(gt.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    mine = ssim(pred.to(dtype), gt.to(dtype))
    for i in range(3):
        assert mine[i].item() == pytest.approx(sk_ssim(gt[i].to(dtype), pred[i].to(dtype)), abs=tol)


def test_ssim_matches_skimage_on_structured_images():
    # Edges, gradients and flat areas exercise the border crop and the covariance terms.
    h, w = 40, 52
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    checker = (((yy * 8).floor() + (xx * 8).floor()) % 2).to(torch.float64)
    grad = xx.to(torch.float64)
    gt = torch.stack([checker, grad, 1 - checker * grad])
    preds = [
        torch.roll(gt, shifts=(1, 2), dims=(1, 2)),  # misregistration
        gt * 0.6 + 0.2,  # contrast change
        torch.flip(gt, dims=(2,)),  # different structure
        torch.zeros_like(gt),  # flat
    ]
    for pred in preds:
        assert ssim(pred, gt).item() == pytest.approx(sk_ssim(gt, pred), abs=1e-8)
    # symmetric in its arguments, like skimage
    assert ssim(gt, preds[1]).item() == pytest.approx(ssim(preds[1], gt).item(), abs=1e-12)


def test_ssim_is_differentiable_and_batched():
    gt = torch.rand(2, 2, 3, 16, 16, dtype=torch.float64)
    pred = gt.clone().add_(0.05).requires_grad_(True)
    val = ssim(pred, gt)
    assert val.shape == (4,)
    val.sum().backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------ LPIPS
@pytest.fixture(scope="module")
def lpips_random() -> LPIPS:
    torch.manual_seed(0)
    m = LPIPS()
    with torch.no_grad():  # non-negative linear weights, as the trained ones are
        for lin in m.lins:
            lin.weight.abs_()
    return m


def test_lpips_identical_is_zero_and_symmetric(lpips_random):
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    assert torch.allclose(lpips_random(a, a), torch.zeros(2), atol=1e-7)
    d_ab, d_ba = lpips_random(a, b), lpips_random(b, a)
    assert (d_ab > 0).all()
    assert torch.allclose(d_ab, d_ba, rtol=1e-5)


def test_lpips_gradient_reaches_the_input(lpips_random):
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8), requires_grad=True)
    lpips_random(x, torch.full((1, 3, 16, 16), 0.5)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_lpips_scaling_properties(lpips_random):
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    base = lpips_random(a, b)
    m = LPIPS()
    m.load_state_dict(lpips_random.state_dict())
    # LPIPS is linear in the 1x1 "lin" weights: ×3 → distance ×3
    with torch.no_grad():
        for lin in m.lins:
            lin.weight.mul_(3.0)
    assert torch.allclose(m(a, b), 3 * base, rtol=1e-5)
    # Features are unit-normalised per position, and ReLU / max-pool are positively homogeneous:
    # scaling the conv weights by c>0 with zero biases leaves the distance unchanged.
    m.load_state_dict(lpips_random.state_dict())
    with torch.no_grad():
        for layer in m.net.features:
            if isinstance(layer, torch.nn.Conv2d):
                layer.bias.zero_()
        ref = m(a, b)
        for layer in m.net.features:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.mul_(2.5)
    assert torch.allclose(m(a, b), ref, rtol=1e-4)


def test_lpips_vgg_layout_matches_torchvision_names():
    sd = LPIPS().net.state_dict()
    convs = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
             14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512),
             26: (512, 512), 28: (512, 512)}  # fmt: skip
    assert set(sd) == {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    for i, (co, ci) in convs.items():
        assert tuple(sd[f"features.{i}.weight"].shape) == (co, ci, 3, 3)


def _fake_weight_files(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    """A state dict with torchvision's vgg16 key names (plus the classifier) and an lpips vgg.pth one."""
    g = torch.Generator().manual_seed(4)
    vgg = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in LPIPS().net.state_dict().items()}
    vgg["classifier.0.weight"] = torch.zeros(4, 4)  # ignored
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate((64, 128, 256, 512, 512))}
    vp, lp = tmp_path / "vgg16-397923af.pth", tmp_path / "lpips_vgg_v0.1.pth"
    torch.save(vgg, vp)
    torch.save(lin, lp)
    return vp, lp, vgg, lin


def test_lpips_loads_torchvision_and_lpips_key_names(tmp_path, monkeypatch):
    vp, lp, vgg, lin = _fake_weight_files(tmp_path)
    m = load_lpips("cpu", vp, lp)
    assert torch.equal(m.net.features[28].weight, vgg["features.28.weight"])
    assert torch.equal(m.lins[4].weight, lin["lin4.model.1.weight"])
    # lpips' own full-model keys (net.sliceK.i.*) load too
    m2 = LPIPS()
    slices = {0: 1, 2: 1, 5: 2, 7: 2, 10: 3, 12: 3, 14: 3, 17: 4, 19: 4, 21: 4, 24: 5, 26: 5, 28: 5}
    m2.load_vgg_state_dict({f"net.slice{slices[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v
                            for k, v in vgg.items() if k.startswith("features")})  # fmt: skip
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    m2.load_lin_state_dict(lin)
    assert torch.allclose(m(x, y), m2(x, y))
    # the torch-hub cache location is found without explicit paths
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    vp.rename(tmp_path / "hub" / "checkpoints" / vp.name)
    lp.rename(tmp_path / "hub" / "checkpoints" / lp.name)
    monkeypatch.delenv("VIST3A_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("VIST3A_LPIPS_WEIGHTS", raising=False)
    found = find_lpips_weights()
    assert found == (tmp_path / "hub" / "checkpoints" / vp.name, tmp_path / "hub" / "checkpoints" / lp.name)


def test_lpips_wrong_weights_are_clear_errors(tmp_path, monkeypatch):
    m = LPIPS()
    with pytest.raises(CheckpointError, match="lack"):
        m.load_vgg_state_dict({"features.0.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(CheckpointError, match="lin0"):
        m.load_lin_state_dict({})
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "nohub"))
    monkeypatch.delenv("VIST3A_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("VIST3A_LPIPS_WEIGHTS", raising=False)
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        find_lpips_weights()
    with pytest.raises(MissingWeightsError, match="not found: /no/such.pth"):
        find_lpips_weights(vgg_path="/no/such.pth")


# ------------------------------------------------------------------------------------------ CLI
def _write_run(root: Path, offsets: dict[str, list[float]]) -> None:
    """root/<sample>/{gt,pred}/00000k.png; pred = gt + offset (exact in 8 bit: multiples of 1/255)."""
    rng = np.random.default_rng(0)
    for sample, offs in offsets.items():
        (root / sample / "gt").mkdir(parents=True)
        (root / sample / "pred").mkdir(parents=True)
        for k, off in enumerate(offs):
            gt = rng.integers(40, 200, size=(24, 20, 3), dtype=np.uint8)
            pred = (gt.astype(int) + int(round(off * 255))).clip(0, 255).astype(np.uint8)
            Image.fromarray(gt).save(root / sample / "gt" / f"{k:06d}.png")
            Image.fromarray(pred).save(root / sample / "pred" / f"{k:06d}.png")


def test_score_dir_known_answer(tmp_path):
    # offset 51/255 = 0.2 → PSNR 20·log10(1/0.2) = 13.979 dB; offset 0 → inf (reported, not averaged)
    _write_run(tmp_path / "run", {"a": [0.2, 0.2], "b": [0.2, 0.0]})
    res = score_dir(tmp_path / "run", progress=False)
    want = -10 * math.log10(0.2**2)
    assert [s.sample for s in res.samples] == ["a", "b"]
    assert res.samples[0].psnr == pytest.approx(want, abs=1e-5)
    assert res.samples[1].psnr == pytest.approx(want, abs=1e-5) and res.samples[1].n_identical == 1
    assert res.overall.psnr == pytest.approx(want, abs=1e-5)
    assert res.n_identical_images == 1 and res.n_images == 4


def test_eval_metrics_cli_tables(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "nohub"))
    monkeypatch.delenv("VIST3A_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("VIST3A_LPIPS_WEIGHTS", raising=False)
    _write_run(tmp_path / "r1", {"s1": [0.2], "s2": [0.2]})
    # the official layout: DIR/images/<seq>/{gt,pred}
    _write_run(tmp_path / "r2" / "images", {"s1": [0.1], "s2": [0.1]})
    # an unpaired sample is skipped and named, not fatal
    _write_run(tmp_path / "r2" / "images", {"bad": [0.1]})
    (tmp_path / "r2" / "images" / "bad" / "pred" / "000000.png").unlink()
    out = tmp_path / "cmp.json"
    assert main(["eval", "metrics", str(tmp_path / "r1"), str(tmp_path / "r2"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "r1" in printed and "r2" in printed and "PSNR" in printed
    rows = json.loads(out.read_text())
    assert [r["run"] for r in rows] == ["r1", "r2"]
    assert float(rows[0]["PSNR"]) == pytest.approx(-10 * math.log10(0.2**2), abs=1e-3)
    assert float(rows[1]["PSNR"]) == pytest.approx(-10 * math.log10((26 / 255) ** 2), abs=1e-3)
    assert rows[0]["LPIPS"] == "n/a"  # no weights offline: PSNR/SSIM still reported
    assert rows[1]["skipped_samples"] == 1
    per = list(csv.DictReader((tmp_path / "r1" / "metrics_per_sample.csv").open()))
    assert [r["sample"] for r in per] == ["s1", "s2"]
    overall = json.loads((tmp_path / "r2" / "metrics_overall.json").read_text())
    assert "bad" in overall["skipped_samples"] and overall["samples"] == 2


def test_eval_metrics_cli_errors(tmp_path, capsys):
    assert main(["eval", "metrics", str(tmp_path / "missing")]) == 1
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", "metrics", str(tmp_path / "empty"), "--no-lpips"]) == 1
    assert "gt/" in capsys.readouterr().err


def test_lpips_matches_the_lpips_package_when_available():
    """Parity with the reference implementation; runs where `lpips` (+torchvision) and the weights exist."""
    lpips_pkg = pytest.importorskip("lpips")
    try:
        find_lpips_weights()
    except MissingWeightsError as exc:
        pytest.skip(str(exc))
    ref = lpips_pkg.LPIPS(net="vgg", verbose=False).eval()
    ours = load_lpips("cpu")
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        assert torch.allclose(ours(x, y), ref(x, y, normalize=True).flatten(), atol=1e-5)


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu(lpips_random):
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    assert torch.allclose(ssim(x.cuda(), y.cuda()).cpu(), ssim(x, y), atol=1e-5)
    assert torch.allclose(psnr(x.cuda(), y.cuda()).cpu(), psnr(x, y), atol=1e-4)
    m = lpips_random
    cpu = m(x, y)
    gpu = m.cuda()(x.cuda(), y.cuda()).cpu()
    m.cpu()
    assert torch.allclose(gpu, cpu, rtol=5e-3, atol=1e-5)  # cuDNN may use TF32


def test_eval_metrics_cli_with_lpips_weights(tmp_path, monkeypatch):
    vp, lp, _, _ = _fake_weight_files(tmp_path)
    monkeypatch.setenv("VIST3A_VGG16_WEIGHTS", str(vp))
    monkeypatch.setenv("VIST3A_LPIPS_WEIGHTS", str(lp))
    _write_run(tmp_path / "run", {"same": [0.0], "diff": [0.2]})
    assert main(["eval", "metrics", str(tmp_path / "run"), "--device", "cpu"]) == 0
    rows = {r["sample"]: r for r in csv.DictReader((tmp_path / "run" / "metrics_per_sample.csv").open())}
    assert float(rows["same"]["LPIPS"]) == 0.0 and rows["same"]["PSNR"] == "inf"
    assert float(rows["diff"]["LPIPS"]) > 0
    overall = json.loads((tmp_path / "run" / "metrics_overall.json").read_text())
    assert overall["LPIPS"] == pytest.approx(float(rows["diff"]["LPIPS"]) / 2, rel=1e-4)
    assert overall["identical_images"] == 1


def test_write_pair_images_round_trip(tmp_path):
    from vist3a.eval.metrics import write_pair_images

    gt = torch.full((2, 3, 16, 16), 100 / 255)
    pred = gt + 51 / 255  # offset 0.2 exactly in 8 bit
    folder = write_pair_images(tmp_path / "out", "seq0", gt, pred)
    assert sorted(p.name for p in (folder / "pred").iterdir()) == ["000000.png", "000001.png"]
    res = score_dir(tmp_path / "out", progress=False)
    assert res.overall.psnr == pytest.approx(-10 * math.log10(0.2**2), abs=1e-4)
    with pytest.raises(InputError):
        write_pair_images(tmp_path / "out", "../x", gt, pred)
