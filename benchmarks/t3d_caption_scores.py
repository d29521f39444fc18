"""The caption rewards of best-of-N selection (``--select world`` / ``relation``) for every scene of a finished
`vist3a eval text-to-3d --world N` run, so that ``t3d_best_of_n.py --score world`` can estimate that selector from
runs made without it.

Each scene folder's ``scene.ply`` is rendered at the 4 predicted cameras the selector reads
(:func:`vist3a.eval.consistency.frame_indices`, near/far as the selector renders them) and scored against its
``world_caption.json``. Writes ``caption_scores.csv`` (scene, prompt, world, relation) beside ``per_scene.csv``
(~3 s a scene on 2 CPU cores). The scene files keep SH degree 0 (the export's default) while the pipeline's
selector renders every band, so these scores approximate the selector's (on 24 scenes of seed 9001 they differed
by 0.04 on average, at most 0.15, on a [−1, 1] scale).

    python benchmarks/t3d_caption_scores.py RUN_DIR [RUN_DIR ...]

``--from-best-of-n BON_DIR`` takes the scores the selector itself recorded instead: BON_DIR is a run with
``--candidates N --select SPEC`` and each RUN_DIR a plain run at one of its candidate seeds (``--gen-seed`` =
seed + k·100003); the column is named after SPEC. ``t3d_best_of_n.py --score SPEC`` on those plain runs then keeps
exactly what the pipeline kept (for N = all of them), and averages the smaller subsets as usual.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import torch

from vist3a.alignment.rewards import WorldColourReward, WorldRelationReward
from vist3a.eval.consistency import frame_indices
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.formats import load_scene
from vist3a.gaussians.render import render
from vist3a.io_utils import atomic_write_text
from vist3a.world.captions import StructuredCaption

FIELDS = ("scene", "prompt", "world", "relation")


def scene_scores(folder: Path, colour: WorldColourReward, relation: WorldRelationReward) -> dict[str, float]:
    cap = StructuredCaption.from_dict(json.loads((folder / "world_caption.json").read_text()))
    cams = Cameras.load_json(folder / "cameras.json")
    idx = frame_indices(len(cams))
    with torch.no_grad():
        rend = render(load_scene(folder / "scene.ply"), cams[torch.tensor(idx)], near_plane=0.1, far_plane=100.0)
    views = rend.rgb.clamp(0, 1)[None]  # [1,V,3,h,w], the caption's view first
    # both rewards read the renders (their default); the frames argument only sizes the batch
    return {"world": float(colour(views, views, [""], captions=[cap])[0]),
            "relation": float(relation(views, views, [""], captions=[cap])[0])}


def recorded_scores(bon: Path) -> tuple[str, dict[tuple[str, int], float]]:
    """``(select spec, {(prompt, candidate seed): score})`` from a best-of-N run's scene settings."""
    out: dict[tuple[str, int], float] = {}
    specs = set()
    for f in sorted((bon / "scenes").glob("*/settings.json")):
        st = json.loads(f.read_text())
        if not st.get("candidate_seeds") or "candidate_scores" not in st:
            raise SystemExit(f"{f}: no candidate_seeds/candidate_scores (not a --candidates N --select run?)")
        specs.add(st.get("select", "consistency"))
        for sd, v in zip(st["candidate_seeds"], st["candidate_scores"], strict=True):
            out[(st["prompt"], int(sd))] = float(v)
    if len(specs) != 1:
        raise SystemExit(f"{bon}: scenes selected by {sorted(specs) or 'nothing'}, need one --select")
    return specs.pop(), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="eval text-to-3d output folders (with scenes/)")
    ap.add_argument("--from-best-of-n", type=Path, default=None, metavar="BON_DIR",
                    help="use the selection scores recorded by this --candidates run (RUN_DIRs: its candidate seeds)")
    args = ap.parse_args(argv)
    colour, relation = WorldColourReward(), WorldRelationReward()
    spec, recorded = recorded_scores(args.from_best_of_n) if args.from_best_of_n else ("", {})
    for run in args.runs:
        folders = sorted(p for p in (run / "scenes").iterdir() if (p / "world_caption.json").is_file()) \
            if (run / "scenes").is_dir() else []
        if not folders:
            raise SystemExit(f"{run}: no scenes/*/world_caption.json (a `vist3a eval text-to-3d --world N` run?)")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=("scene", "prompt", spec) if spec else FIELDS)
        w.writeheader()
        for f in folders:
            prompt = (f / "prompt.txt").read_text().strip()
            if spec:
                seed = int(json.loads((f / "settings.json").read_text())["seed"])
                if (prompt, seed) not in recorded:
                    raise SystemExit(f"{f}: seed {seed} is not a candidate of {args.from_best_of_n} for {prompt!r}")
                s = {spec: recorded[(prompt, seed)]}
            else:
                s = scene_scores(f, colour, relation)
            w.writerow({"scene": f.name, "prompt": prompt, **{k: f"{v:.6f}" for k, v in s.items()}})
        atomic_write_text(run / "caption_scores.csv", buf.getvalue())
        print(f"{run}: {len(folders)} scenes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
