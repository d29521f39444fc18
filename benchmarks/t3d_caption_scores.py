"""The caption rewards of best-of-N selection (``--select world`` / ``relation``) for every scene of a finished
`vist3a eval text-to-3d --world N` run, so that ``t3d_best_of_n.py --score world`` can estimate that selector from
runs made without it.

Each scene folder's ``scene.ply`` is rendered at the 4 predicted cameras the selector reads
(:func:`vist3a.eval.consistency.frame_indices`, near/far as the selector renders them) and scored against its
``world_caption.json``. Writes ``caption_scores.csv`` (scene, prompt, world, relation) beside ``per_scene.csv``
(~3 s a scene on 2 CPU cores).

    python benchmarks/t3d_caption_scores.py RUN_DIR [RUN_DIR ...]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="eval text-to-3d output folders (with scenes/)")
    args = ap.parse_args(argv)
    colour, relation = WorldColourReward(), WorldRelationReward()
    for run in args.runs:
        folders = sorted(p for p in (run / "scenes").iterdir() if (p / "world_caption.json").is_file()) \
            if (run / "scenes").is_dir() else []
        if not folders:
            raise SystemExit(f"{run}: no scenes/*/world_caption.json (a `vist3a eval text-to-3d --world N` run?)")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=FIELDS)
        w.writeheader()
        for f in folders:
            s = scene_scores(f, colour, relation)
            w.writerow({"scene": f.name, "prompt": (f / "prompt.txt").read_text().strip(),
                        **{k: f"{v:.6f}" for k, v in s.items()}})  # fmt: skip
        atomic_write_text(run / "caption_scores.csv", buf.getvalue())
        print(f"{run}: {len(folders)} scenes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
