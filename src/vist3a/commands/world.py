"""``vist3a world``: the procedural world (datasets in real layouts, judge validation)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("world", help="procedural scenes: datasets in DL3DV/ScanNet/RE10K layouts, judge")
    sub = p.add_subparsers(dest="world_command", metavar="WORLD_COMMAND")

    mk = sub.add_parser("make", help="write N scenes in a real dataset's layout (+ captions.json)")
    mk.add_argument("--layout", choices=["dl3dv", "scannet", "re10k"], required=True)
    mk.add_argument("--scenes", type=int, required=True, help="number of scenes")
    mk.add_argument("--frames", type=int, default=13, help="views per scene (default 13)")
    mk.add_argument("--size", type=int, default=256, help="square image size in pixels (default 256)")
    mk.add_argument("--seed", type=int, default=0, help="set seed: the same seed gives the same files")
    mk.add_argument("--out", required=True, help="output folder (created)")
    mk.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    mk.add_argument("--max-objects", type=int, default=4, help="objects per scene at most (1-8, default 4)")
    mk.add_argument("--no-shadows", action="store_true", help="do not cast shadows (faster)")
    mk.set_defaults(func=_make)

    jv = sub.add_parser("judge-eval", help="validate the judge on ground-truth renders (matched/shuffled captions)")
    jv.add_argument("--scenes", type=int, default=200)
    jv.add_argument("--seed", type=int, default=12345, help="held-out set seed")
    jv.add_argument("--frames", type=int, default=8)
    jv.add_argument("--size", type=int, default=256)
    jv.add_argument("--out", default=None, help="write the numbers to this JSON file")
    jv.set_defaults(func=_judge_eval)

    tm = sub.add_parser("train-mini", help="train the mini video VAE (vae), anysplat-mini (recon) or the mini DiT (dit)")
    tm.add_argument("--stage", choices=["vae", "recon", "dit"], required=True)
    tm.add_argument("--out", required=True, help="run folder (checkpoints/, tb/, metrics.json, the model)")
    tm.add_argument("--steps", type=int, required=True, help="optimizer steps in total")
    tm.add_argument("--batch", type=int, default=None, help="scenes per step (default 4; dit 32)")
    tm.add_argument("--lr", type=float, default=None, help="default 2e-4; dit 3e-4")
    tm.add_argument("--warmup", type=int, default=200, help="linear warm-up steps (default 200)")
    tm.add_argument("--weight-decay", type=float, default=0.01)
    tm.add_argument("--grad-clip", type=float, default=1.0)
    tm.add_argument("--minutes", type=float, default=0.0, help="stop with a checkpoint after this much wall time")
    tm.add_argument("--resume", nargs="?", const=True, default=False, help="continue (latest, or a checkpoint path)")
    tm.add_argument("--ckpt-every", type=int, default=500)
    tm.add_argument("--eval-every", type=int, default=500)
    tm.add_argument("--eval-scenes", type=int, default=16, help="held-out scenes (default 16)")
    tm.add_argument("--train-scenes", type=int, default=100_000, help="training scenes (default 100000)")
    tm.add_argument("--frames", type=int, default=None, help="frames/views per scene (vae 13, recon 8)")
    tm.add_argument("--size", type=int, default=None, help="image side (vae 256, recon 224)")
    tm.add_argument("--context", type=int, default=None, help="recon: views given to the network")
    tm.add_argument("--set", dest="recon_set", action="append", default=[], metavar="KEY=VALUE",
                    help="recon/vae: a stage option of vist3a.train.mini_recon.RECON_OPTIONS (e.g. w_camera=2, "
                         "render_cameras=gt, cache=1) or vist3a.train.mini_vae.VAE_OPTIONS (e.g. decoder_only=1, "
                         "chroma_weight=1, crop=128); dit: motion=orbit (the latent cache's camera motion); "
                         "repeatable")  # fmt: skip
    tm.add_argument("--kl-weight", type=float, default=1e-6, help="vae: weight of the mean KL")
    tm.add_argument("--object-weight", type=float, default=1.0,
                    help="vae: L1 weight of object pixels relative to floor and sky (default 1 = plain mean)")
    tm.add_argument("--lpips-weight", type=float, default=0.0, help="vae: LPIPS weight (needs weights offline)")
    tm.add_argument("--vae", default=None, help="dit: the trained VAE (RUN/wan_mini written by --stage vae)")
    tm.add_argument("--init", default=None,
                    help="start a fresh run from these weights instead of random ones: a wan-mini folder "
                         "(vae/ for --stage vae, transformer/ for dit), an anysplat-mini folder, or 'shipped'")
    tm.add_argument("--cache-scenes", type=int, default=4000, help="dit: training scenes in the latent cache")
    tm.add_argument("--cfg-drop", type=float, default=0.1, help="dit: caption dropout probability for CFG")
    tm.add_argument("--cache-only", action="store_true", help="dit: build the latent cache, then stop")
    tm.add_argument("--ema", type=float, default=0.0, help="EMA decay (0 = off)")
    tm.add_argument("--seed", type=int, default=0)
    tm.add_argument("--no-shadows", action="store_true")
    tm.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    tm.add_argument("--device", default=None, help="default: cuda when available")
    tm.add_argument("--wandb", default=None, help="also log to this wandb project")
    tm.set_defaults(func=_train_mini)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _make(args: argparse.Namespace) -> int:
    from vist3a.world.make import MakeConfig, make_dataset

    cfg = MakeConfig(
        layout=args.layout,
        out=args.out,
        scenes=args.scenes,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        max_objects=args.max_objects,
        shadows=not args.no_shadows,
    )
    summary = make_dataset(cfg, workers=args.workers)
    print(
        f"wrote {args.scenes} {args.layout} scenes ({args.frames} frames, {args.size}x{args.size}) "
        f"to {summary['root']} in {summary['seconds']:.1f} s; captions: {Path(summary['root']) / 'captions.json'}"
    )
    return 0


def _judge_eval(args: argparse.Namespace) -> int:
    from vist3a.io_utils import atomic_write_text
    from vist3a.world.validate import validate_judge

    res = validate_judge(args.scenes, args.seed, args.frames, args.size)
    text = json.dumps(res, indent=1)
    if args.out:
        atomic_write_text(args.out, text + "\n")
        print(f"wrote {args.out}")
    print(text)
    return 0


def _train_mini(args: argparse.Namespace) -> int:
    import torch

    from vist3a.errors import InputError
    from vist3a.train.mini_loop import MiniTrainConfig

    vae, dit = args.stage == "vae", args.stage == "dit"
    if dit and not args.vae:
        raise InputError("--stage dit needs --vae RUN/wan_mini (the export of `vist3a world train-mini --stage vae`)")
    extra = {"kl_weight": args.kl_weight, "lpips_weight": args.lpips_weight, "object_weight": args.object_weight} if vae else {}
    if dit:
        extra = {"cfg_drop": args.cfg_drop}
    if not vae and args.context is not None:
        extra["context"] = args.context
    dit_options = {"motion"}  # the DiT stage's --set keys (its other options have flags)
    if dit and any(item.partition("=")[0] not in dit_options for item in args.recon_set):
        raise InputError(f"--set with --stage dit takes only {', '.join(sorted(dit_options))} (e.g. motion=orbit)")
    for item in args.recon_set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            extra[key] = json.loads(value)
        except ValueError:
            extra[key] = value
    cfg = MiniTrainConfig(
        out=Path(args.out), steps=args.steps, batch=args.batch or (32 if dit else 4),
        lr=args.lr or (3e-4 if dit else 2e-4), weight_decay=args.weight_decay,
        warmup=args.warmup, grad_clip=args.grad_clip, ckpt_every=args.ckpt_every, eval_every=args.eval_every,
        seed=args.seed, train_scenes=args.cache_scenes if dit else args.train_scenes, eval_scenes=args.eval_scenes,
        frames=args.frames or (13 if vae or dit else 8), size=args.size or (256 if vae or dit else 224),
        shadows=not args.no_shadows, minutes=args.minutes, ema=args.ema, bf16=not args.no_bf16,
        wandb_project=args.wandb, extra=extra,
    )  # fmt: skip
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dit:
        from functools import partial

        from vist3a.train.mini_dit import train_dit

        train = partial(train_dit, vae=args.vae, cache_only=args.cache_only)
    elif vae:
        from vist3a.train.mini_vae import train_vae as train
    else:
        from vist3a.train.mini_recon import train_recon as train
    init = {}
    if args.init is not None:
        if dit:
            from vist3a.mini_assets import SHIPPED, shipped_folder

            init_dir = shipped_folder("wan-mini") if args.init == SHIPPED else args.init
            if args.init == SHIPPED and (init_dir is None or not (Path(init_dir) / "transformer").is_dir()):
                raise InputError("--init shipped: no trained wan-mini DiT ships in this install")
            init["init"] = init_dir
        elif vae:
            from vist3a.models.video import wan_mini

            init["video_model"] = wan_mini(device=device, weights=args.init, components=("vae",))
        else:
            from vist3a.models.anysplat import anysplat_mini

            init["model"] = anysplat_mini(device=device, weights=args.init)
    res = train(cfg, device=device, resume=args.resume, **init)
    if dit and args.cache_only:
        print(f"dit: latent cache ready in {Path(args.out) / 'cache'} ({cfg.train_scenes} + {cfg.eval_scenes} scenes)")
        return 0
    state = "finished" if res.finished else "stopped (resume with --resume)"
    last = res.evals[-1] if res.evals else None
    print(f"{args.stage}: {state} at step {res.step}/{args.steps}; loss {res.losses[-1] if res.losses else float('nan'):.4g}"
          + (f"; eval at step {last[0]}: {json.dumps(last[1])}" if last else ""))
    return 0
