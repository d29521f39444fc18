"""``vist3a align``: reward alignment of the video DiT with a LoRA (DRTune + flow-matching SFT).

    vist3a align --model mini --world 64 --out runs/align --steps 200 --reward consistency,world,relation,judge
    vist3a align --model mini --video-weights DIT_DIR --stitched STITCH_DIR --recon-weights RECON_DIR \
        --world 256 --text-cache cache.safetensors --minutes 8 --out runs/align     # (--resume to continue)
    vist3a align --model mini --world 256 --write-text-cache cache.safetensors --out runs/align   # CPU, then exit
    vist3a align --model DIR --prompts prompts.txt --sft-data dl3dv:/data/DL3DV --reward consistency,clip:/w/clip

Writes ``<out>/checkpoints/step_*.pt`` (resumable), ``<out>/checkpoints/checkpoint-<step>/{lora,lora_ema}``,
``<out>/tb`` (tensorboard) and, at the end (or when ``--minutes`` runs out), ``<out>/lora`` and
``<out>/lora_ema`` (PEFT folders; use ``lora_ema`` for inference) and, for the mini model,
``<out>/wan_mini`` (the video model with the EMA LoRA merged: a drop-in for ``assets/mini/wan-mini``).
Runs under ``torchrun --nproc_per_node N`` (LoRA gradients averaged).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vist3a.errors import InputError
from vist3a.train import HELD_OUT_SEED  # the evaluation set: never a rollout prompt source

log = logging.getLogger(__name__)

#: Default rewards with --world prompts: 3D consistency + the procedural proxies; the judge is logged.
WORLD_REWARDS = "consistency,world,relation,judge"


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
    p.add_argument("--world-seed", type=int, default=0,
                   help=f"seed of the world prompt set (0 = the mini DiT's training set; {HELD_OUT_SEED} is held out for evaluation)")
    p.add_argument("--video-weights", metavar="DIR",
                   help="mini: the wan-mini folder to align (vae/ + transformer/; default: the shipped one)")
    p.add_argument("--stitched", metavar="DIR",
                   help="mini: a trained stitched decoder folder (stitched.json + stitched.safetensors; default: shipped)")
    p.add_argument("--recon-weights", metavar="DIR", help="mini: the anysplat-mini folder under --stitched (default: shipped)")
    p.add_argument("--text-cache", metavar="FILE",
                   help="prompt embeddings from this file (--write-text-cache); no text encoder is loaded")
    p.add_argument("--write-text-cache", metavar="FILE",
                   help="encode the rollout prompts (+ the SFT captions of --sft-data world:N) into FILE and exit")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="wall-clock budget: checkpoint + export after this many minutes (continue with --resume; 0 = none)")
    p.add_argument("--merged-out", metavar="DIR", default=None,
                   help="where to write the DiT with the EMA LoRA merged (default: OUT/wan_mini for the mini model; 'none' = skip)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--steps", type=int, default=1000, help="total optimisation steps (1000)")
    p.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (8)")
    p.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA alpha (16)")
    p.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (1e-4)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (official code 1.0, paper 0.1; 0 = off)")
    p.add_argument("--reward", default=None,
                   help="comma-separated NAME[:PATH][@WEIGHT]: consistency, world, relation, judge (logged only, no "
                        "gradient), brightness, clip:DIR, hps:DIR, pickscore:DIR (default: "
                        f"{WORLD_REWARDS} with --world, else consistency)")
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
    p.add_argument("--flow-shift", type=float, default=None,
                   help="rollout scheduler shift (default: the model's own for mini (5), else 3 as the official code)")
    p.add_argument("--reward-views", type=int, default=2, help="frames/renders the rewards see (paper 2; 0 = all)")
    p.add_argument("--frames", type=int, default=None, help="video frames (default: the model's, 13)")
    p.add_argument("--size", type=int, default=None, help="video height = width (default: the model's)")
    p.add_argument("--template", default="", help="rollout prompt template with {prompt} (default: none)")
    p.add_argument("--ckpt-every", type=int, default=100, help="checkpoint period in steps (100)")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CKPT",
                   help="resume from the latest checkpoint in --out (none yet: start fresh), or from CKPT")
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
    if seed == HELD_OUT_SEED:
        raise InputError(f"--world-seed {HELD_OUT_SEED} is the held-out evaluation set; align on a training set (0)")
    items = []
    for i in range(n):
        s = make_sample(i, seed, frames, size)
        items.append(PromptItem(s.texts["short"], s.caption))
    return items


def _sft_data(spec: str, frames: int, size: int, seed: int, device="cpu"):
    kind, _, rest = spec.partition(":")
    if kind == "world":
        from vist3a.world.dataset import WorldDataset

        try:
            n = int(rest)
        except ValueError:
            raise InputError(f"--sft-data world:N needs a number, got {spec!r}") from None
        return WorldDataset(n, seed=seed + 1, frames=frames, size=size, device=device)
    if kind == "dl3dv":
        from vist3a.data.captions import DL3DVCaptionDataset

        root, _, captions = rest.partition(":")
        if not root or not Path(root).is_dir():
            raise InputError(f"--sft-data dl3dv:ROOT: folder not found: {root!r}")
        cap = captions or str(Path(root) / "captions.json")
        return DL3DVCaptionDataset(root, cap, num_frames=frames, size=size, seed=seed)
    raise InputError(f"--sft-data must be dl3dv:ROOT[:CAPTIONS] or world:N, got {spec!r}")


def _load(args: argparse.Namespace, device, with_text: bool = True):
    """(video model, stitched decoder, frames, size) of ``--model`` (and the mini part folders)."""
    import torch

    from vist3a.pipelines.loading import MINI_SETTINGS, load_pipeline, tiny_pipeline

    dtype = torch.bfloat16 if args.bf16 else torch.float32
    parts = args.video_weights or args.stitched or args.recon_weights
    if parts and args.model != "mini":
        raise InputError("--video-weights / --stitched / --recon-weights go with --model mini")
    if args.model == "mini":
        from vist3a import mini_assets
        from vist3a.models.checkpoint import has_weights
        from vist3a.models.video import wan_mini
        from vist3a.stitching.stitched import stitched_mini

        for flag, path, marker in (("--video-weights", args.video_weights, "transformer"),
                                   ("--stitched", args.stitched, "stitched.json")):  # fmt: skip
            if path is not None and not (Path(path) / marker).exists():
                raise InputError(f"{flag} {path}: no {marker} there")
        if args.recon_weights is not None and not has_weights(args.recon_weights):
            raise InputError(f"--recon-weights {args.recon_weights}: no model.safetensors (or shard index) there")
        vw = args.video_weights or mini_assets.shipped_folder("wan-mini")
        if vw is None:
            log.warning("no trained wan-mini: aligning a RANDOM DiT (pass --video-weights DIR)")
        comps = ("vae", "transformer", "text_encoder") if with_text else ("vae", "transformer")
        video = wan_mini(device=device, weights=str(vw) if vw else None, dtype=None if not args.bf16 else dtype,
                         components=comps)  # fmt: skip
        dec = stitched_mini(device=device, weights=args.stitched or mini_assets.SHIPPED,
                            recon_weights=args.recon_weights or mini_assets.SHIPPED)  # fmt: skip
        s = MINI_SETTINGS
        return video, dec, s.num_frames, s.height
    pipe = tiny_pipeline(device=device) if args.model == "tiny" else load_pipeline(args.model, device=device, dtype=dtype)
    return pipe.video, pipe.decoder, pipe.settings.num_frames, pipe.settings.height


def _flow_shift(args: argparse.Namespace, video) -> float:
    if args.flow_shift is not None:
        return float(args.flow_shift)
    return float(video.flow_shift) if args.model == "mini" else 3.0


def _cache_prompts(args: argparse.Namespace, prompts, frames: int, size: int) -> list[str]:
    """Every text the run will encode: templated rollout prompts and the SFT world captions."""
    texts = [args.template.replace("{prompt}", p.text) if args.template else p.text for p in prompts]
    if args.sft_data and args.sft_data.startswith("world:"):
        from vist3a.world.sample import make_sample

        ds = _sft_data(args.sft_data, frames, size, args.seed)
        for i in range(len(ds)):
            texts.extend(make_sample(i, ds.seed, frames, size, ds.max_objects).texts.values())
    return list(dict.fromkeys(texts))


def run(args: argparse.Namespace) -> int:
    from vist3a.alignment.rewards import build_reward
    from vist3a.alignment.trainer import AlignConfig, AlignTrainer, PromptItem
    from vist3a.pipelines.loading import use_text_cache
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
    if args.minutes < 0:
        raise InputError(f"--minutes must be >= 0, got {args.minutes}")
    if args.text_cache and args.write_text_cache:
        raise InputError("--text-cache reads a cache, --write-text-cache writes one: give one of them")
    prompts = [PromptItem(p) for p in _read_prompts(args.prompts)] if args.prompts else []
    if args.write_text_cache:
        return _write_cache(args, ctx, prompts)
    lpips = None
    if args.lpips:
        from vist3a.eval.metrics import load_lpips

        lpips = load_lpips(ctx.device)
    spec = args.reward or (WORLD_REWARDS if args.world is not None else "consistency")
    reward = build_reward(spec, lpips=lpips, device=ctx.device) if args.reward_weight > 0 else None
    if reward is not None:
        reward.to(ctx.device)
    video, decoder, frames0, size0 = _load(args, ctx.device, with_text=not args.text_cache)
    if args.text_cache:
        use_text_cache(video, args.text_cache, ctx.device)
    frames = args.frames or frames0
    size = args.size or size0
    if args.world is not None:
        prompts = _world_prompts(args.world, args.world_seed, frames, size)
    sft = _sft_data(args.sft_data, frames, size, args.seed, ctx.device) if args.sft_data else None
    sft_weight = args.sft_weight if args.sft_weight is not None else (1.0 if sft is not None else 0.0)
    cfg = AlignConfig(
        lr=args.lr, grad_clip=args.grad_clip, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
        drtune_k=args.drtune_k, min_steps=args.min_steps, max_steps=args.max_steps, guidance=tuple(args.cfg),
        rollout_shift=_flow_shift(args, video), sft_weight=sft_weight, reward_weight=args.reward_weight,
        sft_shift=args.sft_shift, sft_batch=args.sft_batch, prompt_batch=args.prompt_batch,
        reward_views=args.reward_views, num_frames=frames, height=size, width=size, template=args.template,
        ckpt_every=args.ckpt_every, seed=args.seed,
        render_backend="auto" if ctx.device.type == "cuda" else "torch",
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logger = RunLogger(out, enabled=ctx.is_main, wandb_project=args.wandb, config={k: v for k, v in vars(args).items() if k != "func"} | {"device": str(ctx.device)})
    try:
        trainer = AlignTrainer(video, decoder, reward, prompts, cfg, out, sft_data=sft, dist=ctx, logger=logger)
        if args.resume:
            found = trainer.resume(None if args.resume == "latest" else args.resume)
            if not found and args.resume != "latest":
                raise InputError(f"--resume: no checkpoint at {args.resume}")
            if found:
                log.info("resumed at step %d", trainer.step)
            else:  # as `vist3a world train-mini --resume`: the same command starts and continues a run
                log.warning("--resume: no checkpoint in %s yet, starting fresh", out / "checkpoints")
        elif trainer.ckpt.latest() is not None:
            raise InputError(f"{out / 'checkpoints'} already holds checkpoints: pass --resume to continue, or pick a new --out")
        merged = args.merged_out or (str(out / "wan_mini") if args.model == "mini" else None)
        if merged == "none":
            merged = None
        hist = trainer.train(args.steps, minutes=args.minutes, merged=merged)
        if ctx.is_main:
            summary = {
                "steps": trainer.step,
                "finished": trainer.finished,
                "target_steps": args.steps,
                "merged": merged,
                "seconds_per_step": _step_seconds(trainer),
                "skipped_steps": trainer.skipped,
                "final_loss": hist[-1].loss if hist else None,
                "final_reward": hist[-1].reward if hist else None,
                "recent_terms": _recent_terms(hist),
                "lora": str(out / "lora"),
                "lora_ema": str(out / "lora_ema"),
            }
            from vist3a.io_utils import atomic_write_text

            atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
            more = "" if trainer.finished else f" of {args.steps} (time budget used; continue with --resume)"
            print(f"aligned {trainer.step} steps{more} ({trainer.skipped} skipped); LoRA for inference: {out / 'lora_ema'}"
                  + (f"; merged video model: {merged}" if merged else ""))
    finally:
        logger.close()
        distributed.shutdown()
    return 0


def _recent_terms(hist, n: int = 20) -> dict[str, float]:
    """Mean of each logged reward term over the last ``n`` steps (NaN-free)."""
    out: dict[str, list[float]] = {}
    for rec in hist[-n:]:
        for k, v in {"loss": rec.loss, "sft": rec.sft, "reward": rec.reward, **rec.terms}.items():
            if v == v:  # not NaN
                out.setdefault(k, []).append(float(v))
    return {k: round(sum(v) / len(v), 5) for k, v in out.items()}


def _step_seconds(trainer) -> float | None:
    times = getattr(trainer, "step_seconds", None)
    return round(sum(times) / len(times), 3) if times else None


def _write_cache(args: argparse.Namespace, ctx, prompts) -> int:
    """``--write-text-cache FILE``: encode every text of the run with the real text encoder, write FILE."""
    from vist3a.models.text_cache import write_text_cache
    from vist3a.train import distributed

    try:
        if args.model == "mini":
            from vist3a.models.text import minilm_l6

            te = minilm_l6(device=ctx.device)  # the mini DiT's encoder (max_length 64), no other weights needed
            frames, size = 13, 256
            if args.frames or args.size:
                frames, size = args.frames or frames, args.size or size
        else:
            video, _, frames, size = _load(args, ctx.device)
            te = video.text_encoder
            frames, size = args.frames or frames, args.size or size
        if args.world is not None:
            prompts = _world_prompts(args.world, args.world_seed, frames, size)
        if not prompts:
            raise InputError("--write-text-cache needs the run's prompts: --prompts FILE or --world N")
        texts = _cache_prompts(args, prompts, frames, size)
        if ctx.is_main:
            path = write_text_cache(te, texts, args.write_text_cache)
            print(f"wrote {len(texts) + 1} prompt embeddings to {path}")
    finally:
        distributed.shutdown()
    return 0
