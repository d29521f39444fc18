"""Before/after measurement of `vist3a align` on the mini model: judge scores and 3D consistency.

For a fixed set of **held-out** world captions (world seed 7919 = the mini DiT's training seed 0 +
7919, never seen in training or alignment), every DiT variant generates one scene per caption at
each sampling-step count of the sweep. Per variant and step count it reports:

- the analytic world judge per category (entity = presence, attribute, relation, overall; DPG-style %)
  on 8 views of the generated 3DGS, computed by `vist3a eval text-to-3d`'s own code
  (:func:`vist3a.eval.text_to_3d.evaluate` with the ``judge`` metric, on the scene folders written here);
- the judge on the decoded video frames (``video_judge_*``: what the DiT produced before 3D);
- multi-view consistency: PSNR (and L1) between the decoded frames (resized to the reconstruction
  size) and renders of the 3DGS at the stitched decoder's predicted cameras, mean over all frames —
  the quantity the ``consistency`` reward raises;
- seconds per scene.

Usage (a variant is ``LABEL=DIR``: a wan-mini folder with ``transformer/`` — e.g. ``OUT/wan_mini`` of
`vist3a align` — or a PEFT LoRA folder such as ``OUT/lora_ema``, applied to ``--video-weights``)::

    python benchmarks/bench_align_mini.py --captions 16 --sweep 4,8,12,20 \\
        --dit before=src/vist3a/assets/mini/wan-mini --dit after=runs/align/wan_mini \\
        --out benchmarks/results/align_mini.json                      # GPU: ~2-3 min
    python benchmarks/bench_align_mini.py --captions 2 --sweep 4 --dit before=DIR --device cpu --out /tmp/a.json
    python benchmarks/bench_align_mini.py --captions 12 --sweep 8 --cfg 3,5,7.5 --shift 3,5 --no-3d \
        --consistency-views 2 --dit shipped=src/vist3a/assets/mini/wan-mini --device cpu --out /tmp/guidance.json

Writes the JSON (and ``.md`` beside it) plus the scene folders and tables under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import torch

log = logging.getLogger("bench_align_mini")

HELD_OUT_SEED = 7919  # training world seed 0 + 7919 (vist3a.train.mini_loop / eval.stitch_claim)
GEN_SEED = 12413


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dit", action="append", required=True, metavar="LABEL=DIR",
                   help="a DiT variant: wan-mini folder (transformer/) or PEFT LoRA folder (over --video-weights)")
    p.add_argument("--video-weights", default=None, help="base wan-mini folder for LoRA variants (default: shipped)")
    p.add_argument("--stitched", default=None, help="trained stitched decoder folder (default: shipped stitched-mini)")
    p.add_argument("--recon-weights", default=None, help="anysplat-mini folder under --stitched (default: shipped)")
    p.add_argument("--text-cache", default=None, help="prompt embeddings file instead of MiniLM")
    p.add_argument("--captions", type=int, default=16, help="held-out captions (16)")
    p.add_argument("--world-seed", type=int, default=HELD_OUT_SEED, help=f"world set of the captions ({HELD_OUT_SEED})")
    p.add_argument("--style", default="short", help="caption phrasing (short)")
    p.add_argument("--sweep", default="4,8,12,20", help="comma list of sampling steps (4,8,12,20)")
    p.add_argument("--cfg", default=None, help="guidance scale, or a comma list to sweep (default: the pipeline's)")
    p.add_argument("--shift", default=None, help="flow shift, or a comma list to sweep (default: the pipeline's)")
    p.add_argument("--no-3d", action="store_true",
                   help="skip the judge on 8 rendered views of each 3DGS (the slow part on a CPU): video judge + consistency only")
    p.add_argument("--consistency-views", type=int, default=0,
                   help="frames compared with renders, evenly spaced (0 = all; 2-3 keep a CPU run short)")
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda if available)")
    p.add_argument("--work", default=None, help="scene folders and eval tables (default: next to --out)")
    p.add_argument("--out", required=True, help="result JSON (a .md table is written beside it)")
    return p.parse_args(argv)


def _floats(text: str | None, flag: str) -> list[float | None]:
    """``"4,7.5"`` → ``[4.0, 7.5]``; None → ``[None]`` (the pipeline's default)."""
    from vist3a.errors import InputError

    if text is None:
        return [None]
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{flag} must be a number or a comma list, got {text!r}") from None
    if not vals:
        raise InputError(f"{flag} is empty")
    return vals


def load_video(spec: str, base: str | None, text_cache: str | None, device: torch.device):
    """The video model of one variant (wan-mini folder, or LoRA folder over ``base``)."""
    from vist3a import mini_assets
    from vist3a.errors import InputError
    from vist3a.models.text import minilm_l6
    from vist3a.models.text_cache import CachedTextEncoder
    from vist3a.models.video import wan_mini
    from vist3a.pipelines.loading import apply_dit_lora

    folder = Path(spec)
    lora = (folder / "adapter_config.json").is_file()
    if not lora and not (folder / "transformer").is_dir():
        raise InputError(f"{folder}: neither a wan-mini folder (transformer/) nor a LoRA folder (adapter_config.json)")
    weights = (base or mini_assets.shipped_folder("wan-mini")) if lora else folder
    if weights is None:
        raise InputError(f"{folder} is a LoRA: give --video-weights (the wan-mini it was trained on)")
    video = wan_mini(device=device, weights=str(weights), components=("vae", "transformer"))
    if lora:
        apply_dit_lora(video, folder)
    video.text_encoder = CachedTextEncoder(text_cache, device) if text_cache else minilm_l6(device=device)
    return video


def run_variant(label: str, video, decoder, scenes, steps: int, cfg: float | None, work: Path, device,
                views: int = 0, shift: float | None = None, with_3d: bool = True) -> dict:
    from vist3a.eval import text_to_3d as t23d
    from vist3a.eval.consistency import multiview_consistency
    from vist3a.eval.gen_metrics import build_metric
    from vist3a.io_utils import atomic_write_text
    from vist3a.pipelines.export import export_scene
    from vist3a.pipelines.loading import MINI_SETTINGS
    from vist3a.pipelines.text_to_3d import TextTo3DPipeline
    from vist3a.world.judge import Judge

    pipe = TextTo3DPipeline(video, decoder, MINI_SETTINGS, name=label)
    out = work / (f"{label}-steps{steps:03d}" + (f"-cfg{cfg:g}" if cfg is not None else "")
                  + (f"-shift{shift:g}" if shift is not None else ""))
    judge = Judge()
    psnr, l1, vjudge, secs = [], [], {}, []
    for sc in scenes:
        folder = out / t23d.SCENES_DIR / sc.name
        t0 = time.perf_counter()
        res = pipe(sc.prompt, seed=sc.seed, steps=steps, guidance_scale=cfg, flow_shift=shift, progress=False,
                   keep_frames=True)
        secs.append(time.perf_counter() - t0)
        mvc = multiview_consistency(res.gaussians.to(device, torch.float32), res.cameras, res.frames, n=views)
        psnr.append(sum(mvc["psnr"]) / len(mvc["psnr"]))
        l1.append(sum(mvc["l1"]) / len(mvc["l1"]))
        vj = judge.score(res.frames.float().clamp(0, 1), sc.info["caption"])
        for k, v in {**vj.per_category, "overall": vj.overall}.items():
            if not math.isnan(v):
                vjudge.setdefault(k, []).append(100 * v)
        if not with_3d:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        export_scene(folder, res.gaussians, res.cameras, frames_per_view=0, orbit_frames=0, device=device, progress=False)
        atomic_write_text(folder / "prompt.txt", sc.prompt + "\n")
    row: dict = {"cfg": cfg, "shift": shift}
    if with_3d:  # the judge on 8 views of each 3DGS: `vist3a eval text-to-3d`'s code on the folders just written
        result = t23d.evaluate(scenes, [build_metric("judge", device)], out, pipe=None, reuse=True, device=device,
                               settings={"model": label, "steps": steps}, progress=False)  # fmt: skip
        row.update({k: round(float(v), 3) for k, v in result.overall.items()})
        row.update({"scenes": len(result.per_scene), "failed": len(result.failed)})
    row.update({f"video_judge_{k}": round(sum(v) / len(v), 3) for k, v in vjudge.items()})
    row.update({
        "consistency_psnr": round(sum(psnr) / len(psnr), 3),
        "consistency_l1": round(sum(l1) / len(l1), 5),
        "seconds_per_scene": round(sum(secs) / len(secs), 3),
    })  # fmt: skip
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from vist3a import mini_assets
    from vist3a.errors import InputError
    from vist3a.eval import text_to_3d as t23d
    from vist3a.io_utils import atomic_write_text
    from vist3a.stitching.stitched import stitched_mini

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    variants = []
    for item in args.dit:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            raise InputError(f"--dit must be LABEL=DIR, got {item!r}")
        variants.append((label, folder))
    try:
        sweep = sorted({int(s) for s in args.sweep.split(",") if s.strip()})
    except ValueError:
        raise InputError(f"--sweep must be a comma list of integers, got {args.sweep!r}") from None
    if not sweep or min(sweep) < 1:
        raise InputError("--sweep needs step counts >= 1")
    cfgs, shifts = _floats(args.cfg, "--cfg"), _floats(args.shift, "--shift")
    if args.world_seed == 0:
        log.warning("world seed 0 is the training set: these are NOT held-out captions")
    scenes = t23d.world_scenes(args.captions, args.world_seed, GEN_SEED, args.style)
    decoder = stitched_mini(device=device, weights=args.stitched or mini_assets.SHIPPED,
                            recon_weights=args.recon_weights or mini_assets.SHIPPED)  # fmt: skip
    out = Path(args.out)
    work = Path(args.work) if args.work else out.with_suffix("")
    results: dict[str, dict[str, dict]] = {}
    for label, folder in variants:
        video = load_video(folder, args.video_weights, args.text_cache, device)
        results[label] = {}
        for steps in sweep:
            for cfg in cfgs:
                for shift in shifts:
                    row = run_variant(label, video, decoder, scenes, steps, cfg, work, device, args.consistency_views,
                                      shift, not args.no_3d)  # fmt: skip
                    key = str(steps) + (f"/cfg{cfg:g}" if cfg is not None else "") + (f"/shift{shift:g}" if shift is not None else "")
                    results[label][key] = row
                    print(f"{label:>10s} {key}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        del video
    doc = {
        "bench": "align_mini",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "captions": args.captions, "world_seed": args.world_seed, "style": args.style, "gen_seed": GEN_SEED,
        "variants": dict(variants), "sweep": sweep, "cfg": cfgs, "shift": shifts, "no_3d": args.no_3d,
        "consistency_views": args.consistency_views,
        "results": results,
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    cols = ["judge_entity", "judge_attribute", "judge_relation", "judge_overall", "video_judge_entity",
            "video_judge_attribute", "video_judge_relation", "video_judge_overall", "consistency_psnr",
            "seconds_per_scene"]  # fmt: skip
    cols = [c for c in cols if any(c in row for rows in results.values() for row in rows.values())]
    lines = [f"# align before/after: {args.captions} held-out captions (world seed {args.world_seed}), {doc['device']}", "",
             "| DiT | steps[/cfg][/shift] | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]  # fmt: skip
    for label, rows in results.items():
        for steps, row in rows.items():
            lines.append(f"| {label} | {steps} | " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    md = "\n".join(lines) + "\n"
    atomic_write_text(out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    from vist3a.errors import Vist3aError

    try:
        sys.exit(main())
    except Vist3aError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
