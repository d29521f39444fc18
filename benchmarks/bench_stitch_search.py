"""Throughput of the streaming layer search (the least-squares core only, models excluded).

Feeds synthetic clips (random raw latents and random tokens of the right shapes, made on the device
before timing) through :class:`vist3a.stitching.search.LayerSearch` and reports clips/s of ``update``,
the time of ``fit`` + ``report`` and the peak memory of the accumulators.

    python benchmarks/bench_stitch_search.py --size mini --device cpu --out benchmarks/results/stitch_search_cpu.json
    python benchmarks/bench_stitch_search.py --size official --device cuda --out benchmarks/results/stitch_search_gpu.json

Sizes (METHOD §1.3; ARCHITECTURE "two scales"):
    mini:     latent [16, 4, 32, 32] -> tokens 13x16x16x192 (conv3d_k5x3x3_o192_s1x2x2_p2x1x1), 6 layers
    official: latent [16, 4, 64, 64] -> tokens 13x32x32x1024 (conv3d_k5x3x3_o1024_s1x2x2_p2x1x1), 24 layers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.stitching.search import LayerSearch  # noqa: E402

SIZES = {
    "mini": dict(
        latent=(16, 4, 32, 32), tokens=(13, 16, 16, 192), spec="conv3d_k5x3x3_o192_s1x2x2_p2x1x1", layers=6
    ),
    "official": dict(
        latent=(16, 4, 64, 64), tokens=(13, 32, 32, 1024), spec="conv3d_k5x3x3_o1024_s1x2x2_p2x1x1", layers=24
    ),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(size: str, device: torch.device, clips: int, layers: int | None, token_dtype: torch.dtype) -> dict:
    cfg = SIZES[size]
    n_layers = layers or cfg["layers"]
    names = [f"enc_blocks_{k}" for k in range(1, n_layers + 1)]
    g = torch.Generator(device=device).manual_seed(0)
    latents = [torch.randn(1, *cfg["latent"], generator=g, device=device) for _ in range(2)]
    tokens = [
        {n: torch.randn(1, cfg["tokens"][0], cfg["tokens"][1] * cfg["tokens"][2], cfg["tokens"][3], generator=g,
                        device=device).to(token_dtype) for n in names}
        for _ in range(2)
    ]  # fmt: skip
    search = LayerSearch(cfg["spec"], names, device=device)
    search.update(latents[0], tokens[0])  # warm-up (allocations, kernels)
    search.update(latents[1], tokens[1], split="val")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(clips):
        search.update(latents[i % 2], tokens[i % 2], split="train" if i % 4 else "val")
    _sync(device)
    t_update = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = search.report()
    _sync(device)
    t_fit = time.perf_counter() - t0
    acc_bytes = sum(torch.Size(s).numel() * 8 for s in search.accumulator_shapes().values())
    d = search.design_dim
    rows = cfg["tokens"][0] * cfg["tokens"][1] * cfg["tokens"][2]
    flops = clips * (2 * rows * d * d + n_layers * 2 * rows * d * cfg["tokens"][3])
    out = {
        "size": size,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "spec": cfg["spec"],
        "layers": n_layers,
        "design_dim": d,
        "rows_per_clip": rows,
        "token_dtype": str(token_dtype).replace("torch.", ""),
        "clips_timed": clips,
        "update_s_per_clip": t_update / clips,
        "clips_per_s": clips / t_update,
        "float64_gflops": flops / t_update / 1e9,
        "fit_and_report_s": t_fit,
        "accumulator_mb": acc_bytes / 2**20,
        "best_layer": report.best_layer,
    }
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--size", choices=sorted(SIZES), action="append", help="mini and/or official (default: both)"
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--clips", type=int, default=8, help="timed clips per size")
    ap.add_argument("--layers", type=int, help="override the number of candidate layers")
    ap.add_argument("--token-dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    device = torch.device(args.device)
    results = [
        run(size, device, args.clips, args.layers, getattr(torch, args.token_dtype))
        for size in (args.size or ["mini", "official"])
    ]
    for r in results:
        print(
            f"{r['size']:>8} on {r['device_name']}: {r['clips_per_s']:.2f} clips/s "
            f"({r['update_s_per_clip'] * 1e3:.1f} ms/clip, {r['layers']} layers, d={r['design_dim']}+1, "
            f"{r['float64_gflops']:.1f} GFLOP/s fp64), fit+report {r['fit_and_report_s']:.2f} s, "
            f"accumulators {r['accumulator_mb']:.0f} MB"
            + (f", peak CUDA {r['peak_cuda_mb']:.0f} MB" if "peak_cuda_mb" in r else "")
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
