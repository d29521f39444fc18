"""Throughput of the NVS evaluation (`vist3a eval nvs`): sequences per minute, random weights.

Writes a small RealEstate10K-layout set with the procedural world (12 frames per sequence), then runs
the full protocol of ``vist3a.eval.nvs`` per sequence: context pass (8 views), joint pass (12 views,
or 9 + 4 = 13 frames through the video VAE for stitched presets), translation-scale alignment,
rendering of the 4 targets, PNG writing; then the PSNR/SSIM scoring of the folder (timed apart).

    # GPU, official size (448² input, 512² crops), < 3 min on an H100:
    python benchmarks/bench_eval_nvs.py --device cuda --preset anysplat --sequences 8 \
        --out benchmarks/results/eval_nvs_gpu.json
    # CPU, mini preset (224² input):
    python benchmarks/bench_eval_nvs.py --device cpu --preset anysplat-mini --sequences 2 --warmup 0 \
        --out benchmarks/results/eval_nvs_cpu.json

The JSON and a markdown table (same name, ``.md``) go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.errors import InputError  # noqa: E402
from vist3a.eval.metrics import score_dir  # noqa: E402
from vist3a.eval.nvs import load_predictor, load_re10k, run_nvs  # noqa: E402
from vist3a.io_utils import atomic_write_text  # noqa: E402
from vist3a.world.make import MakeConfig, make_dataset  # noqa: E402


def _markdown(r: dict) -> str:
    rows = [
        ("date (UTC)", r["date"]),
        ("device", r["device_name"]),
        ("preset", f"{r['preset']} (random weights)"),
        ("input / crop", f"{r['input_size']}² / {r['crop_size']}²"),
        ("cameras", r["cameras"]),
        ("render backend", r["backend"]),
        ("sequences timed", r["sequences"]),
        ("**sequences / min (protocol)**", f"**{r['sequences_per_minute']:.2f}**"),
        ("seconds / sequence", f"{r['seconds_per_sequence']:.3f}"),
        ("scoring PSNR+SSIM, s / sequence", f"{r['scoring_seconds_per_sequence']:.3f}"),
        ("peak GPU memory (GiB)", r.get("peak_gpu_gib", "n/a")),
        ("load average (1 min) at start / end", f"{r['loadavg_start']} / {r['loadavg_end']}"),
        ("CPU threads", r["threads"]),
    ]
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "# `vist3a eval nvs` throughput\n\n" + "\n".join(lines) + f"\n\nCommand: `{r['command']}`\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", default=None, help="anysplat | anysplat-mini | stitched-mini | anysplat-stitched (default: anysplat on cuda, anysplat-mini on cpu)")
    ap.add_argument("--size", type=int, default=None, help="reconstructor input side (default: the preset's)")
    ap.add_argument("--sequences", type=int, default=8, help="sequences timed")
    ap.add_argument("--warmup", type=int, default=1, help="sequences run before timing")
    ap.add_argument("--world-size", type=int, default=256, help="side of the written world frames")
    ap.add_argument("--cameras", choices=["predicted", "gt"], default="predicted")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (a .md table is written beside it)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    preset = args.preset or ("anysplat" if dev.type == "cuda" else "anysplat-mini")
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    with tempfile.TemporaryDirectory() as tmp:
        # the world first: its worker processes must start before CUDA is initialised
        n_total = args.warmup + args.sequences
        cfg = MakeConfig("re10k", str(Path(tmp) / "re10k"), scenes=n_total, frames=12, size=args.world_size, seed=0, max_objects=3)
        t1 = time.perf_counter()
        make_dataset(cfg, workers=min(n_total, os.cpu_count() or 1), progress=False)
        world_s = time.perf_counter() - t1
        t0 = time.perf_counter()
        torch.manual_seed(0)
        predictor = load_predictor(preset, dev, input_size=args.size, backend=args.backend)
        build_s = time.perf_counter() - t0
        ds = load_re10k(f"re10k:{cfg.out}", predictor, "official")
        try:
            if args.warmup:
                run_nvs(predictor, ds, Path(tmp) / "warm", args.cameras, limit=args.warmup, progress=False)
            ds.items = ds.items[args.warmup:]
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
            run = run_nvs(predictor, ds, Path(tmp) / "out", args.cameras, limit=args.sequences, progress=True)
        except InputError as exc:  # every sequence failed: say why instead of a traceback
            for name in ("warm", "out"):
                f = Path(tmp) / name / "nvs_run.json"
                if f.is_file():
                    print(f.read_text())
            sys.exit(f"bench_eval_nvs: {exc}")
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t2 = time.perf_counter()
        score = score_dir(Path(tmp) / "out", progress=False)
        score_s = time.perf_counter() - t2
    n = len(run.evaluated)
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python", *sys.argv]),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "preset": preset,
        "input_size": predictor.input_size,
        "crop_size": predictor.crop_size,
        "cameras": args.cameras,
        "backend": args.backend,
        "sequences": n,
        "skipped": run.skipped,
        "seconds": run.seconds,
        "sequences_per_minute": 60.0 * n / run.seconds if run.seconds else float("nan"),
        "seconds_per_sequence": run.seconds / max(n, 1),
        "scoring_seconds_per_sequence": score_s / max(n, 1),
        "build_seconds": build_s,
        "world_seconds": world_s,
        "psnr_random_weights": score.overall.psnr,
        "loadavg_start": round(load0, 2),
        "loadavg_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if dev.type == "cuda":
        result["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
        atomic_write_text(args.out.with_suffix(".md"), _markdown(result))
        print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
