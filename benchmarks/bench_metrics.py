"""Throughput and agreement of the NVS image metrics (PSNR, SSIM, LPIPS-VGG) at the RE10K eval size.

Times ``psnr``, ``ssim`` and ``LPIPS`` on batches of 448×448 images (4 targets per sequence, as the
VIST3A evaluation) and checks SSIM against skimage on a few images. LPIPS uses the published weights
when they are cached locally (see docs/evaluation.md), otherwise random weights (timing only).

    python benchmarks/bench_metrics.py --device cuda --out benchmarks/results/metrics_gpu.json
    python benchmarks/bench_metrics.py --device cpu --size 224 --iters 2 --out benchmarks/results/metrics_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.errors import MissingWeightsError  # noqa: E402
from vist3a.eval.metrics import LPIPS, load_lpips, psnr, ssim  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, iters: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    pred = (gt + 0.1 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
    gt_d, pred_d = gt.to(dev), pred.to(dev)

    try:
        lp = load_lpips(dev)
        weights = "published"
    except MissingWeightsError:
        lp = LPIPS().to(dev)
        weights = "random (published weights not cached)"

    with torch.no_grad():
        t_psnr = _time(lambda: psnr(pred_d, gt_d), dev, args.iters)
        t_ssim = _time(lambda: ssim(pred_d, gt_d), dev, args.iters)
        t_lpips = _time(lambda: lp(pred_d, gt_d), dev, args.iters)
        ours = ssim(pred_d, gt_d).cpu()
        lpips_vals = lp(pred_d, gt_d).cpu()

    from skimage.metrics import structural_similarity

    n_check = min(args.batch, 2)
    t0 = time.perf_counter()
    ref = [
        structural_similarity(gt[i].numpy(), pred[i].numpy(), win_size=11, gaussian_weights=True, data_range=1.0, channel_axis=0)
        for i in range(n_check)
    ]
    t_sk = (time.perf_counter() - t0) / n_check
    max_diff = float(max(abs(float(ours[i]) - float(ref[i])) for i in range(n_check)))

    res = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "image": [args.batch, 3, args.size, args.size],
        "lpips_weights": weights,
        "ms_per_batch": {"psnr": 1e3 * t_psnr, "ssim": 1e3 * t_ssim, "lpips_vgg": 1e3 * t_lpips},
        "images_per_s": {"ssim": args.batch / t_ssim, "lpips_vgg": args.batch / t_lpips},
        "skimage_ssim_ms_per_image": 1e3 * t_sk,
        "ssim_max_abs_diff_vs_skimage": max_diff,
        "ssim_mean": float(ours.mean()),
        "lpips_mean": float(lpips_vals.mean()),
    }
    print(json.dumps(res, indent=2))
    if max_diff > 1e-4:
        raise SystemExit(f"SSIM differs from skimage by {max_diff:.2e} (> 1e-4)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
