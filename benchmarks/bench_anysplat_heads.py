"""Time and memory of AnySplat's dense heads and Gaussian construction (aggregator excluded).

Runs, at the released widths (dim_in 2048, 84 Gaussian channels) on random aggregator tokens:
the DPT depth head, the Gaussian head, unprojection, voxel fusion (voxel 0.002) and the Gaussian
adapter, for several view counts at 448². Inputs are made on the device before timing; each
number is the median of ``--repeat`` runs after one warm-up. TF32 is off (parity numerics).

    python benchmarks/bench_anysplat_heads.py --device cuda --views 2 8 32 --out benchmarks/results/anysplat_heads_gpu.json
    python benchmarks/bench_anysplat_heads.py --device cpu --views 1 --size 224 --out benchmarks/results/anysplat_heads_cpu.json

The GPU run also checks that CUDA voxel fusion assigns exactly the same voxels as the CPU on the
same points (``voxel_assignment_matches_cpu``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.models.gaussian_adapter import GaussianAdapter  # noqa: E402
from vist3a.models.geometry import unproject_depth  # noqa: E402
from vist3a.models.heads.dpt_head import DPTHead  # noqa: E402
from vist3a.models.heads.gaussian_head import GaussianHead  # noqa: E402
from vist3a.models.voxelize import voxelize_with_fusion  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _surface_depth(v: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """Smooth depth maps in [1, 3] (a tilted wavy plane per view)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, device=device), torch.linspace(0, 1, w, device=device), indexing="ij")
    views = torch.arange(v, device=device, dtype=torch.float32)[:, None, None]
    return (2.0 + 0.5 * torch.sin(6 * xx + views) * torch.cos(4 * yy) + 0.3 * xx)[None, ..., None]


def run(device: torch.device, views: int, size: int, repeat: int) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    grid = size // 14
    tokens = [torch.randn(1, views, 5 + grid * grid, 2048, generator=g, device=device) for _ in range(4)]
    images = torch.rand(1, views, 3, size, size, generator=g, device=device)
    with torch.device(device):
        depth_head = DPTHead(2048, output_dim=2, activation="exp", conf_activation="expp1").eval()
        gs_head = GaussianHead(2048).eval()
        adapter = GaussianAdapter()
    result: dict = {"views": views, "size": size}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        t, _ = _timed(lambda: depth_head(tokens, images, 5), device, repeat)
        result["depth_head_s"] = t
        t, raw = _timed(lambda: gs_head(tokens, images, 5), device, repeat)
        result["gaussian_head_s"] = t
        depth = _surface_depth(views, size, size, device)
        w2c = torch.eye(4, device=device)[:3].expand(1, views, 3, 4).clone()
        w2c[0, :, 0, 3] = torch.linspace(0, 0.3, views, device=device)
        f = size * 2.0  # pixel footprint ~0.002 at depth 2: neighbouring views share voxels
        K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]], device=device).expand(1, views, 3, 3)
        t, points = _timed(lambda: unproject_depth(depth, w2c, K), device, repeat)
        result["unproject_s"] = t
        pts = points.reshape(-1, 3)
        feats = raw[0].permute(0, 2, 3, 1).reshape(-1, raw.shape[2])
        t, (vp, vf, inv) = _timed(lambda: voxelize_with_fusion(pts, feats[:, :83], feats[:, 83], 0.002), device, repeat)
        result["voxelize_s"] = t
        result["gaussians"] = int(vp.shape[0])
        result["voxel_ratio"] = vp.shape[0] / pts.shape[0]
        t, _ = _timed(lambda: adapter(vp[None], vf[None]), device, repeat)
        result["adapter_s"] = t
        if device.type == "cuda":
            result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            _, _, inv_cpu = voxelize_with_fusion(pts.cpu(), feats[:, :1].cpu(), feats[:, 83].cpu(), 0.002)
            result["voxel_assignment_matches_cpu"] = bool(torch.equal(inv.cpu(), inv_cpu))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--views", type=int, nargs="+", default=[2, 8, 32])
    ap.add_argument("--size", type=int, default=448, help="square image side (multiple of 14)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    rows = []
    for v in args.views:
        r = run(device, v, args.size, args.repeat)
        print(json.dumps(r), flush=True)
        rows.append(r)
    report = {
        "benchmark": "anysplat_heads",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "results": rows,
    }
    if args.out is not None:
        from vist3a.io_utils import atomic_write_text

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
