"""End-to-end throughput of the layer search per clip: VAE encode, DINO taps, least-squares update.

Uses the real model classes with random weights (the timing does not depend on the values) and
synthetic smooth clips made on the device, so it needs no downloads and no dataset:

    python benchmarks/bench_stitch_search_e2e.py --pair mini --out benchmarks/results/stitch_search_e2e_mini.json
    python benchmarks/bench_stitch_search_e2e.py --pair official --clips 4 --out benchmarks/results/stitch_search_e2e_official.json

Pairs:
    mini:     wan-mini VAE, 13 frames at 256² -> [16,4,32,32]; anysplat-mini at 224² (6 DINO blocks, C=192)
    official: Wan 2.1 VAE, 13 frames at 512² -> [16,4,64,64]; AnySplat at 448² (24 DINO blocks, C=1024)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a import registry  # noqa: E402
from vist3a.commands.stitch import default_layers, recon_taps  # noqa: E402
from vist3a.stitching.search import LayerSearch  # noqa: E402

PAIRS = {
    "mini": dict(
        video="wan-mini",
        recon="anysplat-mini",
        size=256,
        recon_size=224,
        spec="conv3d_k5x3x3_o192_s1x2x2_p2x1x1",
    ),
    "official": dict(
        video="wan2.1-t2v-1.3b",
        recon="anysplat",
        size=512,
        recon_size=448,
        spec="conv3d_k5x3x3_o1024_s1x2x2_p2x1x1",
    ),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", choices=sorted(PAIRS), default="mini")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cfg = PAIRS[args.pair]
    device = torch.device(args.device)

    t0 = time.perf_counter()
    video = registry.build(cfg["video"], device=device, components=("vae",), seed=0).eval()
    recon = registry.build(cfg["recon"], device=device).eval()
    _sync(device)
    t_build = time.perf_counter() - t0
    layers = default_layers(recon)
    search = LayerSearch(cfg["spec"], layers, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    times = {"encode": 0.0, "taps": 0.0, "update": 0.0}

    def clip() -> torch.Tensor:  # [1, V, 3, S, S] smooth colour fields in [0, 1]
        base = torch.rand(1 * args.frames, 3, 6, 6, generator=g, device=device)
        img = F.interpolate(base, size=(cfg["size"], cfg["size"]), mode="bicubic").sigmoid()
        return img.view(1, args.frames, 3, cfg["size"], cfg["size"])

    with torch.no_grad():
        for i in range(args.clips + 1):  # the first clip is warm-up
            images = clip()
            _sync(device)
            t = time.perf_counter()
            latent = video.encode(images.permute(0, 2, 1, 3, 4) * 2 - 1)
            _sync(device)
            t1 = time.perf_counter()
            rec = F.interpolate(
                images.flatten(0, 1), size=(cfg["recon_size"],) * 2, mode="bilinear", antialias=True
            )
            taps = recon_taps(recon, rec.view(1, args.frames, 3, *rec.shape[-2:]), layers)
            _sync(device)
            t2 = time.perf_counter()
            search.update(latent, taps, split="train" if i % 4 else "val")
            _sync(device)
            t3 = time.perf_counter()
            if i:
                times["encode"] += t1 - t
                times["taps"] += t2 - t1
                times["update"] += t3 - t2
    t = time.perf_counter()
    report = search.report()
    _sync(device)
    total = sum(times.values()) / args.clips
    result = {
        "pair": args.pair,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "frames": args.frames,
        "layers": len(layers),
        "clips_timed": args.clips,
        "build_s": t_build,
        "ms_per_clip": {k: v / args.clips * 1e3 for k, v in times.items()},
        "clips_per_s": 1.0 / total,
        "fit_and_report_s": time.perf_counter() - t,
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "best_layer_random_weights": report.best_layer,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
