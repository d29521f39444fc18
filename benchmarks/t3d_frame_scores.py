"""The world colour reward of each scene's *decoded frames* (before the 3D stage) for finished `vist3a eval
text-to-3d --world N` runs, so that ``t3d_best_of_n.py --score world_frames`` can estimate a selector that ranks
candidates on the video alone: only the kept candidate then pays for the stitched decode and the renders.

An eval run keeps no frames, so each caption's video is generated again with the mini pipeline at the run's
generation seed (the DiT's latent and its VAE decode; captions of a run are denoised as one batch, which gives
the run's own latents up to float rounding). ``--check`` also renders each scene's ``scene.ply`` at its cameras
and compares the consistency against these frames with the run's ``consistency_psnr``: that they match is the
proof that the frames are the scenes' own. Columns ``world_frames`` (all T frames) and ``world_frames4`` (the 4
frames the selector's renders use) are merged into ``caption_scores.csv`` beside ``per_scene.csv``.

    VIST3A_MINI_ASSETS=... python benchmarks/t3d_frame_scores.py RUN_DIR:SEED [RUN_DIR:SEED ...] [--check SCENES_DIR]

RUN_DIR holds ``per_scene.csv`` (its prompts); SEED is the run's ``--gen-seed``. ~5 s a caption on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import torch

from vist3a.alignment.rewards import WorldColourReward
from vist3a.eval.consistency import frame_indices
from vist3a.io_utils import atomic_write_text
from vist3a.world.captions import parse_caption

COLUMNS = ("world_frames", "world_frames4")


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def frames_of(pipe, prompts: list[str], seed: int, batch: int) -> list[torch.Tensor]:
    """Each prompt's decoded video ``[T,3,H,W]`` in [0,1] at ``seed`` (the pipeline's settings)."""
    out = []
    for b in range(0, len(prompts), batch):
        chunk = prompts[b : b + batch]
        with torch.no_grad():
            raw = pipe.video_latents(chunk, seed=[seed] * len(chunk))
            rgb = pipe.video.decode(raw)  # [B,3,T,H,W] in [-1,1]
        out += list(((rgb.float() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4))
        print(f"  {b + len(chunk)}/{len(prompts)}", file=sys.stderr)
    return out


def merge(path: Path, rows: list[dict[str, str]], scores: dict[str, dict[str, float]]) -> None:
    """Write ``scores`` (per scene) into ``caption_scores.csv``, keeping its other columns."""
    old = {r["scene"]: r for r in read_rows(path)} if path.is_file() else {}
    fields = ["scene", "prompt"] + [k for k in (next(iter(old.values())) if old else {}) if k not in ("scene", "prompt", *COLUMNS)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields + list(COLUMNS))
    w.writeheader()
    for r in rows:
        keep = {k: old.get(r["scene"], {}).get(k, "") for k in fields}
        w.writerow({**keep, "scene": r["scene"], "prompt": r["prompt"],
                    **{k: f"{v:.6f}" for k, v in scores[r["scene"]].items()}})  # fmt: skip
    atomic_write_text(path, buf.getvalue())


def check(scenes: Path, rows: list[dict[str, str]], frames: list[torch.Tensor]) -> None:
    """Consistency of each scene folder under ``scenes`` against the regenerated frames vs. the recorded one."""
    from vist3a.eval.consistency import multiview_consistency
    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.formats import load_scene

    for r, fr in zip(rows, frames, strict=True):
        f = scenes / r["scene"]
        if not (f / "scene.ply").is_file():
            continue
        m = multiview_consistency(load_scene(f / "scene.ply"), Cameras.load_json(f / "cameras.json"), fr)
        got = sum(m["psnr"]) / len(m["psnr"])
        print(f"check {r['scene'][:50]}: {got:.3f} dB here, {float(r['consistency_psnr']):.3f} dB recorded", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="RUN_DIR:SEED (per_scene.csv's folder and its --gen-seed)")
    ap.add_argument("--batch", type=int, default=8, help="captions denoised together")
    ap.add_argument("--check", type=Path, default=None, metavar="SCENES_DIR",
                    help="the first run's scenes/ folder: compare consistency against the regenerated frames")
    args = ap.parse_args(argv)
    import vist3a

    runs = []
    for item in args.runs:
        run, sep, seed = item.rpartition(":")
        if not sep or not seed.lstrip("-").isdigit() or not (Path(run) / "per_scene.csv").is_file():
            raise SystemExit(f"{item}: give RUN_DIR:SEED with RUN_DIR/per_scene.csv")
        runs.append((Path(run), int(seed)))
    pipe = vist3a.load_pipeline("mini", device="cpu")
    colour = WorldColourReward(on="frames")
    for k, (run, seed) in enumerate(runs):
        rows = read_rows(run / "per_scene.csv")
        print(f"{run} (seed {seed}): {len(rows)} captions", file=sys.stderr)
        frames = frames_of(pipe, [r["prompt"] for r in rows], seed, args.batch)
        if k == 0 and args.check:
            check(args.check, rows, frames)
        scores = {}
        for r, fr in zip(rows, frames, strict=True):
            cap = parse_caption(r["prompt"])
            if cap is None:
                raise SystemExit(f"{run}: {r['prompt']!r} names no world object")
            four = fr[frame_indices(len(fr))]
            scores[r["scene"]] = {"world_frames": float(colour(fr[None], None, [""], captions=[cap])[0]),
                                  "world_frames4": float(colour(four[None], None, [""], captions=[cap])[0])}  # fmt: skip
        merge(run / "caption_scores.csv", rows, scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
