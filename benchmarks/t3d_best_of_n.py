"""Best-of-N generation (`--candidates N --select ...`), estimated from `vist3a eval text-to-3d` runs at several seeds.

Each ``--run`` is the ``per_scene.csv`` of one generation seed with one set of models and settings (the same
captions in every run). For a scene, N candidates are N of these seeds; best-of-N keeps the candidate whose scene
re-renders its own decoded frames best (the highest ``consistency_psnr``: no caption, no judge). Against it stands
one candidate drawn at random, i.e. the mean over the N. ``--score world`` (or ``relation``, ``world+relation``)
ranks by the caption rewards of ``--select world`` instead, read from ``caption_scores.csv`` beside each
``per_scene.csv`` (written by ``t3d_caption_scores.py``), ties broken by consistency; ``world_frames`` (and
``world_frames4``) by the world reward of the decoded frames (``--select world:frames``, ``t3d_frame_scores.py``).
Every N-subset of the runs is scored and averaged, so the estimate uses all seeds alike:

    selected − random  (judge overall points, and dB)  per caption, then mean ± standard error over captions
    oracle − random    the most that any selector could gain from the same N candidates (best judge)

    python benchmarks/t3d_best_of_n.py --run s0/per_scene.csv --run s777/per_scene.csv ... [--score world] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t3d_paired import objects_in, read_scores, summary  # noqa: E402

SCORES = ("consistency", "world", "relation", "world+relation", "world_frames", "world_frames4")


def caption_scores(path: Path, score: str) -> dict[str, float]:
    """``{scene: score}`` from the ``caption_scores.csv`` beside ``path`` (``score`` of :data:`SCORES`, not consistency)."""
    f = path.parent / "caption_scores.csv"
    if not f.is_file():
        raise SystemExit(f"{f}: missing; write it with python benchmarks/t3d_caption_scores.py {path.parent}")
    with open(f, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [k for k in score.split("+") if rows and k not in rows[0]]
    if missing:
        raise SystemExit(f"{f}: no {', '.join(missing)} column (it has {', '.join(list(rows[0])[2:])})")
    return {r["scene"]: sum(float(r[k]) for k in score.split("+")) for r in rows}


def by_prompt(path: Path, score: str = "consistency") -> dict[str, tuple[float, float, float]]:
    """``{prompt: (overall judge, consistency dB, selection score)}`` of one run (scene folders differ between
    seeds, captions not); the selection score is the consistency itself unless ``score`` names a caption reward."""
    extra = None if score == "consistency" else caption_scores(path, score)
    out: dict[str, tuple[float, float, float]] = {}
    for scene, row in read_scores(path).items():
        if row["prompt"] in out:
            raise SystemExit(f"{path}: caption {row['prompt']!r} appears twice")
        if extra is not None and scene not in extra:
            raise SystemExit(f"{path}: scene {scene} has no {score} score in caption_scores.csv")
        out[row["prompt"]] = (row["overall"], row["consistency"], row["consistency"] if extra is None else extra[scene])
    return out


def pick(cands: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The candidate with the highest selection score, then consistency (the first of equals: deterministic)."""
    return max(cands, key=lambda c: (c[2], c[1]))


def best_of_n(runs: list[dict[str, tuple[float, float, float]]], n: int, prompts: list[str]) -> dict[str, Any]:
    """Per caption, averaged over all n-subsets of the runs: selected, random (mean) and oracle judge and dB."""
    subsets = list(itertools.combinations(range(len(runs)), n))
    rows = []
    for p in prompts:
        sel_j = sel_c = rnd_j = rnd_c = orc = 0.0
        for sub in subsets:
            cands = [runs[i][p] for i in sub]
            j, c, _ = pick(cands)
            sel_j += j
            sel_c += c
            rnd_j += sum(x[0] for x in cands) / n
            rnd_c += sum(x[1] for x in cands) / n
            orc += max(x[0] for x in cands)
        k = len(subsets)
        rows.append({"prompt": p, "objects": objects_in(p), "selected": sel_j / k, "random": rnd_j / k,
                     "oracle": orc / k, "selected_db": sel_c / k, "random_db": rnd_c / k})  # fmt: skip
    out: dict[str, Any] = {"n": n, "subsets": len(subsets)}
    for group, keep in (("all", lambda r: True), ("one", lambda r: r["objects"] == 1),
                        ("several", lambda r: r["objects"] > 1)):  # fmt: skip
        g = [r for r in rows if keep(r)]
        if not g:
            continue
        gain = summary([r["selected"] - r["random"] for r in g])
        db = summary([r["selected_db"] - r["random_db"] for r in g])
        orc = summary([r["oracle"] - r["random"] for r in g])
        out[group] = {"captions": len(g), "selected": sum(r["selected"] for r in g) / len(g),
                      "random": sum(r["random"] for r in g) / len(g), "gain": gain["mean"], "gain_se": gain["se"],
                      "gain_db": db["mean"], "gain_db_se": db["se"], "oracle_gain": orc["mean"],
                      "oracle_gain_se": orc["se"]}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, action="append", required=True, help="per_scene.csv of one seed (2 or more)")
    ap.add_argument("--score", choices=SCORES, default="consistency", help="what ranks the candidates")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if len(args.run) < 2:
        raise SystemExit("give at least two --run files (one per generation seed)")
    runs = [by_prompt(p, args.score) for p in args.run]
    prompts = sorted(runs[0])
    for path, r in zip(args.run[1:], runs[1:], strict=True):
        if sorted(r) != prompts:
            raise SystemExit(f"{path}: not the same captions as {args.run[0]}")
    for path, r in zip(args.run, runs, strict=True):
        bad = [p for p, (_, c, _) in r.items() if not math.isfinite(c)]
        if bad:
            raise SystemExit(f"{path}: no consistency for {len(bad)} scene(s), e.g. {bad[0]!r}")
    results = [best_of_n(runs, n, prompts) for n in range(1, len(runs) + 1)]
    print(f"{len(prompts)} captions, {len(runs)} seeds, ranked by {args.score}")
    print("N  selected  random  gain (judge)    gain (dB)       oracle gain   | several-object gain")
    for r in results:
        a, s = r["all"], r.get("several")
        sev = f"{s['gain']:+.1f} ± {s['gain_se']:.1f}" if s else "-"
        print(f"{r['n']}  {a['selected']:8.1f}  {a['random']:6.1f}  {a['gain']:+5.1f} ± {a['gain_se']:.1f}    "
              f"{a['gain_db']:+.2f} ± {a['gain_db_se']:.2f}   {a['oracle_gain']:+5.1f} ± {a['oracle_gain_se']:.1f}  | {sev}")  # fmt: skip
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps({"runs": [str(p) for p in args.run], "score": args.score, "best_of_n": results}, indent=1) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
