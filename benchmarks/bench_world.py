"""Procedural-world speed: ray casting per frame (CPU and, when present, CUDA), dataset items, `world make`.

    python benchmarks/bench_world.py --out benchmarks/results/world.json [--make-scenes 100]

Prints one line per measurement and writes all numbers to --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from vist3a.world.dataset import WorldDataset
from vist3a.world.make import MakeConfig, make_dataset
from vist3a.world.sample import make_sample


def _time(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/world.json")
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--make-scenes", type=int, default=100, help="scenes for the `world make` timing (0 = skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "frames": args.frames,
        "size": args.size,
    }
    samples = [make_sample(i, seed=0, frames=args.frames, size=args.size) for i in range(8)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t = _time(lambda: [s.render() for s in samples], repeat=1)
    res["cpu_1thread_s_per_frame"] = t / (8 * args.frames)
    torch.set_num_threads(threads)
    print(f"ray casting, CPU 1 thread: {1000 * res['cpu_1thread_s_per_frame']:.1f} ms/frame ({args.size}²)")
    if torch.cuda.is_available():
        t = _time(lambda: [s.render("cuda") for s in samples])
        res["cuda_s_per_frame"] = t / (8 * args.frames)
        print(f"ray casting, CUDA: {1000 * res['cuda_s_per_frame']:.2f} ms/frame")
        ds = WorldDataset(64, frames=args.frames, size=args.size, device="cuda")
        t = _time(lambda: [ds[i] for i in range(16)], repeat=1)
        res["cuda_dataset_s_per_item"] = t / 16
        print(f"WorldDataset on CUDA: {1000 * res['cuda_dataset_s_per_item']:.1f} ms/item ({args.frames} frames)")
    ds = WorldDataset(64, frames=args.frames, size=args.size)
    t = _time(lambda: [ds[i] for i in range(8)], repeat=1)
    res["cpu_dataset_s_per_item"] = t / 8
    print(f"WorldDataset on CPU: {1000 * res['cpu_dataset_s_per_item']:.1f} ms/item")
    if args.make_scenes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = MakeConfig("dl3dv", tmp, args.make_scenes, args.frames, args.size, seed=0)
            t0 = time.perf_counter()
            make_dataset(cfg, workers=args.workers, progress=False)
            dt = time.perf_counter() - t0
        res["make_scenes"] = args.make_scenes
        res["make_workers"] = args.workers
        res["make_seconds"] = dt
        res["make_seconds_per_1000_scenes"] = dt * 1000 / args.make_scenes
        print(f"world make dl3dv: {args.make_scenes} scenes in {dt:.1f} s with {args.workers} workers "
              f"(→ {res['make_seconds_per_1000_scenes'] / 60:.1f} min per 1000 scenes)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
