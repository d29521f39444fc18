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
