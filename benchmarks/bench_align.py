"""One alignment step (flow-matching SFT + DRTune reward rollout) at Wan-2.1-1.3B size, random weights.

Usage (CUDA; a few minutes at most on an H100)::

    python benchmarks/bench_align.py --out benchmarks/results/align.json
    python benchmarks/bench_align.py --size 512 --out benchmarks/results/align_512.json
    torchrun --nproc_per_node 2 benchmarks/bench_align.py --out align_2gpu.json   # issue 11: per-GPU time, memory

What runs per step (the official ``train_vdm.py`` recipe, METHOD.md §6.2): the Wan 1.3B DiT in bf16 with
a PEFT LoRA (r 8, α 16, attn1/attn2 q/k/v/out), per-block gradient checkpointing; an SFT loss on one
random 13-frame clip; a rollout of ``--rollout-steps`` UniPC steps with CFG (batch 2 DiT calls), the
DiT input detached, gradients at K=2 random steps + the last; the checkpointed Wan VAE decode
(fp32); the official stitched AnySplat (random, 1.19 B; gradient checkpointing) from the raw latent
and the decoded RGB; gsplat renders of ``--reward-views`` views at the predicted cameras; the
3D-consistency reward; backward; clip; AdamW; EMA. Under torchrun each process takes one GPU and the
LoRA gradients are averaged across them (the trainer's all-reduce, as in ``vist3a align``); the JSON
then lists every rank's step time and peak memory.

The text encoder (UMT5-XXL) is replaced by random prompt embeddings ``[1, 512, 4096]`` (it is frozen
and its embeddings are cached in a real run). Prints a markdown table and writes JSON (+ .md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import zlib
from pathlib import Path

import torch
from torch import nn


class RandomText(nn.Module):
    """Stands in for UMT5-XXL: fixed random embeddings ``[B, L, 4096]`` per prompt."""

    def __init__(self, dim: int = 4096, length: int = 512) -> None:
        super().__init__()
        self.hidden_size, self.length = dim, length
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    def encode(self, prompts, cache=True, device=None):
        out = []
        for p in prompts:
            g = torch.Generator().manual_seed(zlib.crc32(p.encode()))
            out.append(torch.randn(1, self.length, self.hidden_size, generator=g))
        return torch.cat(out).to(device=device, dtype=torch.bfloat16)


class RandomClips(torch.utils.data.Dataset):
    def __init__(self, frames: int, size: int) -> None:
        self.frames, self.size = frames, size

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"images": torch.rand(self.frames, 3, self.size, self.size, generator=g), "text": f"clip {i}"}


def _sync() -> None:
    torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="video size (256: latent 32² → AnySplat 224²; 512: 64² → 448²)")
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--rollout-steps", type=int, default=10, help="denoising steps of the rollout (the minimum of U[10,50])")
    ap.add_argument("--reward-views", type=int, default=2, help="views scored by the reward (paper 2; official 13)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--no-sft", action="store_true", help="reward rollout only")
    ap.add_argument("--out", default="benchmarks/results/align.json")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_align needs CUDA", file=sys.stderr)
        return 1
    from vist3a.train import distributed

    ctx = distributed.init("cuda")  # one GPU per process under torchrun (LOCAL_RANK)
    dev = ctx.device
    torch.backends.cuda.matmul.allow_tf32 = True

    from vist3a.alignment.rewards import build_reward
    from vist3a.alignment.trainer import AlignConfig, AlignTrainer
    from vist3a.models.anysplat import anysplat
    from vist3a.models.video import wan21_t2v_1_3b
    from vist3a.stitching.stitched import OFFICIAL_LAYER, OFFICIAL_SPEC, StitchedDecoder

    t0 = time.perf_counter()
    video = wan21_t2v_1_3b(device=dev, dtype=torch.bfloat16, components=("vae", "transformer"), seed=0)
    video.text_encoder = RandomText().to(dev)
    lat = args.size // 8
    recon_size = (lat // 2) * 14
    recon = anysplat(device=dev, image_size=recon_size, allow_download=False)
    recon.enable_gradient_checkpointing()
    with torch.device(dev):
        dec = StitchedDecoder(recon, OFFICIAL_SPEC, OFFICIAL_LAYER, (16, 1 + (args.frames - 1) // 4, lat, lat),
                              image_size=recon_size)
    dec.eval()
    build_s = time.perf_counter() - t0
    cfg = AlignConfig(
        num_frames=args.frames, height=args.size, width=args.size, min_steps=args.rollout_steps,
        max_steps=args.rollout_steps, drtune_k=2, reward_views=args.reward_views,
        sft_weight=0.0 if args.no_sft else 1.0, ckpt_every=10**9, render_backend="auto",
    )  # fmt: skip
    out_dir = Path(args.out).with_suffix("")
    trainer = AlignTrainer(video, dec, build_reward("consistency"), ["a red cube on a table"], cfg, out_dir,
                           sft_data=None if args.no_sft else RandomClips(args.frames, args.size), dist=ctx)
    n_lora = sum(p.numel() for p in trainer.params)

    trainer.train_step()  # warm-up
    _sync()
    torch.cuda.reset_peak_memory_stats()
    times, recs = [], []
    for _ in range(args.steps):
        _sync()
        t = time.perf_counter()
        recs.append(trainer.train_step())
        _sync()
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() / 2**30
    mine = {"rank": ctx.rank, "step_s_median": sorted(times)[len(times) // 2], "peak_mem_gib": peak,
            "device": torch.cuda.get_device_name()}
    ranks = [mine]
    if ctx.distributed:
        import torch.distributed as tdist

        ranks = [None] * ctx.world_size
        tdist.all_gather_object(ranks, mine)
    distributed.shutdown()
    if not ctx.is_main:
        return 0
    res = {
        "device": torch.cuda.get_device_name(),
        "world_size": ctx.world_size,
        "per_rank": ranks,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "size": args.size,
        "frames": args.frames,
        "recon_size": recon_size,
        "rollout_steps": args.rollout_steps,
        "grad_steps": 3,
        "reward_views": args.reward_views,
        "sft": not args.no_sft,
        "lora_params": n_lora,
        "build_s": build_s,
        "step_s": times,
        "step_s_median": sorted(times)[len(times) // 2],
        "peak_mem_gib": max(r["peak_mem_gib"] for r in ranks),
        "losses": [r.loss for r in recs],
        "rewards": [r.reward for r in recs],
        "grad_norms": [r.grad_norm for r in recs],
        "skipped": trainer.skipped,
    }
    md = (
        "| device | GPUs | video | recon | rollout steps (grad) | reward views | SFT | step s (median) | peak GiB per GPU |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {res['device']} | {ctx.world_size} | {args.frames}×{args.size}² | {recon_size}² | {args.rollout_steps} (3) | "
        f"{args.reward_views} | {res['sft']} | {res['step_s_median']:.2f} | {res['peak_mem_gib']:.1f} |\n"
    )
    print(md)
    print(json.dumps(res, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    out.with_suffix(".md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
