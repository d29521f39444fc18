"""AnySplat forward time and peak GPU memory at 448² for 2, 13 and 32 views (random weights).

Usage (CUDA; < 3 min on an H100)::

    python benchmarks/bench_anysplat.py --out benchmarks/results/anysplat.json

Runs the full network (aggregator under bf16 autocast, heads in fp32, as the official code) with
voxel fusion on; prints a markdown table and writes the numbers as JSON. Random weights say nothing
about the Gaussian count of the real model (ANYSPLAT.md §7).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(model, views: int, size: int, repeats: int, device: torch.device) -> dict:
    g = torch.Generator(device="cpu").manual_seed(views)
    images = torch.rand(1, views, 3, size, size, generator=g).to(device)
    with torch.no_grad():
        model(images)  # warm-up (kernels, allocator)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            out = model(images)
            _sync(device)
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else float("nan")
    n_gauss = len(out.gaussians[0])
    del out
    return {
        "views": views,
        "size": size,
        "time_s_median": sorted(times)[len(times) // 2],
        "time_s_min": min(times),
        "peak_mem_gib": peak / 2**30,
        "gaussians": n_gauss,
        "pixels": views * size * size,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, nargs="+", default=[2, 13, 32])
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-voxelize", action="store_true")
    ap.add_argument(
        "--bf16-aggregator", action="store_true", help="store aggregator weights in bf16 (official)"
    )
    ap.add_argument("--preset", default="anysplat", choices=["anysplat", "anysplat-mini"])
    ap.add_argument(
        "--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run, no memory numbers)"
    )
    ap.add_argument("--out", default="benchmarks/results/anysplat.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_anysplat needs a CUDA device (or --device cpu for a smoke run)", file=sys.stderr)
        return 2
    from vist3a import registry

    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = registry.build(
        args.preset,
        device=device,
        aggregator_dtype=torch.bfloat16 if args.bf16_aggregator else None,
        voxelize=not args.no_voxelize,
    )
    build_s = time.perf_counter() - t0
    weights_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    rows = []
    for v in args.views:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append(bench(model, v, args.size, args.repeats, device))
        print(f"{v} views: {rows[-1]['time_s_median']:.3f} s, {rows[-1]['peak_mem_gib']:.2f} GiB", flush=True)
    info = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "preset": args.preset,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "precision": "aggregator bf16 autocast, heads fp32" if device.type == "cuda" else "fp32",
        "aggregator_weights": "bf16" if args.bf16_aggregator else "fp32",
        "voxelize": not args.no_voxelize,
        "weights_gib": weights_gib,
        "build_s": build_s,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "results": rows,
    }
    print()
    print(
        f"{args.preset} forward, {info['device']}, torch {info['torch']}, {args.size}², random weights, "
        f"{info['precision']}, aggregator weights {info['aggregator_weights']}, voxelize={info['voxelize']}"
    )
    print()
    print(f"| views | time (median of {args.repeats}) | peak memory | Gaussians |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['views']} | {r['time_s_median']:.3f} s | {r['peak_mem_gib']:.2f} GiB | {r['gaussians']:,} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from vist3a.io_utils import atomic_write_text

    atomic_write_text(out, json.dumps(info, indent=1) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
