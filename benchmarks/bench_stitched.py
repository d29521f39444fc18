"""Stitched decoder vs the two-stage path, and one stitching-training step (random weights).

Usage (CUDA; < 4 min on an H100)::

    python benchmarks/bench_stitched.py --out benchmarks/results/stitched.json

Official size: Wan 2.1 VAE (512² video, 13 frames → latent [1,16,4,64,64]) and AnySplat at 448².

- ``stitched``: latent → stitching conv → AnySplat from DINO block 3 (RGB shortcut at 448²).
- ``two_stage``: latent → Wan VAE decode (13×512²) → resize to 448² → the full AnySplat.
- ``train_step``: one step of ``vist3a stitch train`` at batch 1, 13 frames: VAE encode (posterior
  sample), frozen teacher forward, student forward + backward (LoRA r64 via peft, gradient
  checkpointing, bf16 autocast), AdamW step.

Both forwards run with voxel fusion on (the inference default). Prints a markdown table and writes JSON.
``--preset mini --device cpu`` is a smoke run of the same code on the mini pair.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def _timed(fn, repeats: int, device: torch.device) -> tuple[list[float], float, object]:
    fn()  # warm-up
    _sync(device)
    _reset(device)
    times, out = [], None
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, _peak(device), out


def build(preset: str, device: torch.device):
    from vist3a import registry

    if preset == "official":
        video = registry.build("wan2.1-t2v-1.3b", device=device, components=("vae",), seed=0)
        dec = registry.build("anysplat-stitched", device=device, official_compat=True)
        size, frames = 512, 13
    else:
        video = registry.build("wan-mini", device=device, components=("vae",), seed=0)
        dec = registry.build("stitched-mini", device=device)
        size, frames = 256, 13
    return video.eval().requires_grad_(False), dec, size, frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("official", "mini"), default="official")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--frames", type=int, default=13, help="video frames, 1+4k (13)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-repeats", type=int, default=2)
    ap.add_argument("--no-train", action="store_true", help="skip the training step")
    ap.add_argument("--out", type=Path, help="JSON output")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available; use --preset mini --device cpu for a smoke run", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    t0 = time.perf_counter()
    video, dec, size, _ = build(args.preset, device)
    frames = args.frames
    dec.eval()
    recon = dec.recon  # the full network (its front is unused by the stitched path)
    recon_size = dec.image_size
    build_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(1, 3, frames, size, size, generator=g).to(device) * 2 - 1
    with torch.no_grad():
        latent = video.encode(clip, sample=False)
    rgb = F.interpolate(((clip[0].permute(1, 0, 2, 3) + 1) / 2), size=(recon_size, recon_size),
                        mode="bilinear", antialias=True).clamp(0, 1)[None]  # fmt: skip
    rows = []

    def stitched():
        with torch.no_grad():
            return len(dec(latent, rgb).gaussians[0])

    def two_stage():
        with torch.no_grad():
            vid = video.decode(latent)  # [1,3,T,S,S] in [-1,1]
            imgs = F.interpolate(((vid[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1), size=(recon_size, recon_size),
                                 mode="bilinear", antialias=True)[None]  # fmt: skip
            return len(recon(imgs).gaussians[0])

    for name, fn in (("stitched", stitched), ("two_stage", two_stage)):
        times, peak, n = _timed(fn, args.repeats, device)
        rows.append({"path": name, "frames": frames, "time_s_median": sorted(times)[len(times) // 2],
                     "time_s_min": min(times), "peak_mem_gib": peak, "gaussians": n})  # fmt: skip
        print(f"{name}: {min(times):.3f} s, peak {peak:.2f} GiB", flush=True)

    if not args.no_train:
        from vist3a.stitching.distill import DistillWeights
        from vist3a.stitching.train import DistillStep, make_teacher, prepare_models, teacher_targets

        teacher = make_teacher(dec)
        prepare_models(dec, teacher, "r64,a32,d0.0,f0", grad_checkpointing=True)
        params = [p for p in dec.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
        step_mod = DistillStep(dec, DistillWeights(), official_quirk=False)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
        gen = torch.Generator(device=device).manual_seed(0)

        def train_step():
            with torch.no_grad():
                lat = video.encode(clip, sample=True, generator=gen)
            with autocast:
                target = teacher_targets(teacher, rgb)
                terms = step_mod(lat, rgb, target)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return float(terms["total"].detach())

        times, peak, loss = _timed(train_step, args.train_repeats, device)
        rows.append({"path": "train_step", "frames": frames, "time_s_median": sorted(times)[len(times) // 2],
                     "time_s_min": min(times), "peak_mem_gib": peak, "loss": loss,
                     "trainable_params": sum(p.numel() for p in params)})  # fmt: skip
        print(f"train_step: {min(times):.3f} s, peak {peak:.2f} GiB", flush=True)

    print()
    print(f"| path ({args.preset}, {frames} frames) | time (s, median) | time (s, min) | peak memory (GiB) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['time_s_median']:.3f} | {r['time_s_min']:.3f} | {r['peak_mem_gib']:.2f} |")
    result = {
        "benchmark": "stitched",
        "preset": args.preset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "video_size": size,
        "recon_size": recon_size,
        "latent": list(latent.shape),
        "build_s": build_s,
        "rows": rows,
        "notes": "random weights; voxel fusion on for the forwards; train step = batch 1, bf16 autocast on CUDA, "
        "gradient checkpointing, LoRA r64 a32, AdamW, grad clip 1.0",
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
