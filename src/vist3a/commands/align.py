"""``vist3a align``: reward alignment of the video DiT with a LoRA (DRTune + flow-matching SFT).

    vist3a align --model mini --world 64 --out runs/align --steps 200 --reward consistency,world
    vist3a align --model DIR --prompts prompts.txt --sft-data dl3dv:/data/DL3DV --reward consistency,clip:/w/clip

Writes ``<out>/checkpoints/step_*.pt`` (resumable), ``<out>/checkpoints/checkpoint-<step>/{lora,lora_ema}``,
``<out>/tb`` (tensorboard) and, at the end, ``<out>/lora`` and ``<out>/lora_ema`` (PEFT folders; use
``lora_ema`` for inference). Runs under ``torchrun --nproc_per_node N`` (LoRA gradients averaged).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vist3a.errors import InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align",
        help="reward-align the video DiT (LoRA; DRTune + flow-matching SFT)",
        description=(
            "Train a LoRA on the video DiT's attention so that generated scenes score higher under rewards "
            "computed on the decoded frames and on renders of the stitched decoder's 3D Gaussians "
            "(VIST3A Sec. 3.2). Checkpoints are resumable; lora_ema/ is the folder to use for generation."
        ),
    )
    p.add_argument("--model", default="mini", help="mini (default), tiny (random toy, smoke runs), vist3a-1.3b, or a pipeline folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompts", metavar="FILE", help="rollout prompts, one per line ('#' lines skipped), used in order")
    src.add_argument("--world", type=int, metavar="N", help="use N procedural-world captions (with structured captions for the world reward)")
    p.add_argument("--world-seed", type=int, default=0, help="seed of the world prompt set (0)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--steps", type=int, default=1000, help="total optimisation steps (1000)")
    p.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (8)")
    p.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA alpha (16)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (1e-4)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (official code 1.0, paper 0.1; 0 = off)")
    p.add_argument("--reward", default=None,
                   help="comma-separated NAME[:PATH][@WEIGHT]: consistency, world, brightness, clip:DIR, hps:DIR, "
                        "pickscore:DIR (default: consistency,world with --world, else consistency)")
    p.add_argument("--lpips", action="store_true", help="add 0.25*LPIPS to the consistency reward (needs local LPIPS weights)")
    p.add_argument("--reward-weight", type=float, default=1.0, help="weight of the reward loss (1)")
    p.add_argument("--sft-data", metavar="KIND:ROOT",
                   help="captioned clips for the flow-matching loss: dl3dv:ROOT[:CAPTIONS.json] or world:N")
    p.add_argument("--sft-weight", type=float, default=None, help="weight of the SFT loss (1 with --sft-data, else 0)")
    p.add_argument("--sft-shift", type=float, default=3.0, help="timestep shift of the SFT noise level (Wan 3; official code 1)")
    p.add_argument("--sft-batch", type=int, default=1, help="clips per step and process (1; official 4)")
    p.add_argument("--prompt-batch", type=int, default=1, help="rollout prompts per step and process (1)")
    p.add_argument("--drtune-k", type=int, default=2, help="random gradient steps per rollout, plus the last (2)")
    p.add_argument("--min-steps", type=int, default=10, help="fewest rollout steps (10)")
    p.add_argument("--max-steps", type=int, default=50, help="most rollout steps (50)")
    p.add_argument("--cfg", type=float, nargs=2, default=(4.0, 6.0), metavar=("LO", "HI"), help="CFG scale range (4 6)")
    p.add_argument("--flow-shift", type=float, default=3.0, help="rollout scheduler shift (3)")
    p.add_argument("--reward-views", type=int, default=2, help="frames/renders the rewards see (paper 2; 0 = all)")
    p.add_argument("--frames", type=int, default=None, help="video frames (default: the model's, 13)")
    p.add_argument("--size", type=int, default=None, help="video height = width (default: the model's)")
    p.add_argument("--template", default="", help="rollout prompt template with {prompt} (default: none)")
    p.add_argument("--ckpt-every", type=int, default=100, help="checkpoint period in steps (100)")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CKPT",
                   help="resume from the latest checkpoint in --out (or from CKPT)")
    p.add_argument("--seed", type=int, default=0, help="base seed (0)")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda'")
    p.add_argument("--bf16", action="store_true", help="DiT and text encoder in bf16 (LoRA stays fp32)")
    p.add_argument("--wandb", default=None, metavar="PROJECT", help="also log to this wandb project")
    p.set_defaults(func=run)


def _read_prompts(path: str) -> list[str]:
    f = Path(path)
    if not f.is_file():
        raise InputError(f"prompt file not found: {f}")
    lines = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()]
    prompts = [ln for ln in lines if ln and not ln.startswith("#")]
    if not prompts:
        raise InputError(f"no prompts in {f}")
    return prompts


def _world_prompts(n: int, seed: int, frames: int, size: int):
    from vist3a.alignment.trainer import PromptItem
    from vist3a.world.sample import make_sample

    if n < 1:
        raise InputError(f"--world needs N >= 1, got {n}")
    items = []
    for i in range(n):
        s = make_sample(i, seed, frames, size)
        items.append(PromptItem(s.texts["short"], s.caption))
    return items


def _sft_data(spec: str, frames: int, size: int, seed: int):
    kind, _, rest = spec.partition(":")
    if kind == "world":
        from vist3a.world.dataset import WorldDataset

        try:
            n = int(rest)
        except ValueError:
            raise InputError(f"--sft-data world:N needs a number, got {spec!r}") from None
        return WorldDataset(n, seed=seed + 1, frames=frames, size=size)
    if kind == "dl3dv":
        from vist3a.data.captions import DL3DVCaptionDataset

        root, _, captions = rest.partition(":")
        if not root or not Path(root).is_dir():
            raise InputError(f"--sft-data dl3dv:ROOT: folder not found: {root!r}")
        cap = captions or str(Path(root) / "captions.json")
        return DL3DVCaptionDataset(root, cap, num_frames=frames, size=size, seed=seed)
    raise InputError(f"--sft-data must be dl3dv:ROOT[:CAPTIONS] or world:N, got {spec!r}")


def _load(model: str, device, bf16: bool):
    import torch

    from vist3a.pipelines.loading import load_pipeline, tiny_pipeline

    if model == "tiny":
        pipe = tiny_pipeline(device=device)
    else:
        pipe = load_pipeline(model, device=device, dtype=torch.bfloat16 if bf16 else torch.float32)
    return pipe


def run(args: argparse.Namespace) -> int:
    from vist3a.alignment.rewards import build_reward
    from vist3a.alignment.trainer import AlignConfig, AlignTrainer, PromptItem
    from vist3a.train import distributed
    from vist3a.train.logger import RunLogger

    dev = None if args.device == "auto" else args.device
    ctx = distributed.init(dev)
    if args.steps < 1:
        raise InputError(f"--steps must be >= 1, got {args.steps}")
    if args.prompts is None and args.world is None and args.reward_weight > 0:
        raise InputError("give rollout prompts: --prompts FILE or --world N (or --reward-weight 0 with --sft-data)")
    if args.sft_data and args.sft_data.partition(":")[0] not in ("dl3dv", "world"):
        raise InputError(f"--sft-data must be dl3dv:ROOT[:CAPTIONS] or world:N, got {args.sft_data!r}")
    prompts = [PromptItem(p) for p in _read_prompts(args.prompts)] if args.prompts else []
    lpips = None
    if args.lpips:
        from vist3a.eval.metrics import load_lpips

        lpips = load_lpips(ctx.device)
    spec = args.reward or ("consistency,world" if args.world is not None else "consistency")
    reward = build_reward(spec, lpips=lpips, device=ctx.device) if args.reward_weight > 0 else None
    if reward is not None:
        reward.to(ctx.device)
    pipe = _load(args.model, ctx.device, args.bf16)
    s = pipe.settings
    frames = args.frames or s.num_frames
    size = args.size or s.height
    if args.world is not None:
        prompts = _world_prompts(args.world, args.world_seed, frames, size)
    sft = _sft_data(args.sft_data, frames, size, args.seed) if args.sft_data else None
    sft_weight = args.sft_weight if args.sft_weight is not None else (1.0 if sft is not None else 0.0)
    cfg = AlignConfig(
        lr=args.lr, grad_clip=args.grad_clip, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
        drtune_k=args.drtune_k, min_steps=args.min_steps, max_steps=args.max_steps, guidance=tuple(args.cfg),
        rollout_shift=args.flow_shift, sft_weight=sft_weight, reward_weight=args.reward_weight,
        sft_shift=args.sft_shift, sft_batch=args.sft_batch, prompt_batch=args.prompt_batch,
        reward_views=args.reward_views, num_frames=frames, height=size, width=size, template=args.template,
        ckpt_every=args.ckpt_every, seed=args.seed,
        render_backend="auto" if ctx.device.type == "cuda" else "torch",
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logger = RunLogger(out, enabled=ctx.is_main, wandb_project=args.wandb, config={k: v for k, v in vars(args).items() if k != "func"} | {"device": str(ctx.device)})
    try:
        trainer = AlignTrainer(pipe.video, pipe.decoder, reward, prompts, cfg, out, sft_data=sft, dist=ctx, logger=logger)
        if args.resume:
            found = trainer.resume(None if args.resume == "latest" else args.resume)
            if not found:
                raise InputError(f"--resume: no checkpoint in {out / 'checkpoints'}")
            log.info("resumed at step %d", trainer.step)
        hist = trainer.train(args.steps)
        if ctx.is_main:
            summary = {
                "steps": trainer.step,
                "skipped_steps": trainer.skipped,
                "final_loss": hist[-1].loss if hist else None,
                "final_reward": hist[-1].reward if hist else None,
                "lora": str(out / "lora"),
                "lora_ema": str(out / "lora_ema"),
            }
            from vist3a.io_utils import atomic_write_text

            atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
            print(f"aligned {trainer.step} steps ({trainer.skipped} skipped); LoRA for inference: {out / 'lora_ema'}")
    finally:
        logger.close()
        distributed.shutdown()
    return 0
