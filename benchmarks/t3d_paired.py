"""Paired comparison of two mini candidates on the same held-out captions (``vist3a eval text-to-3d`` outputs).

Each ``--pair BASE CAND`` names two ``per_scene.csv`` files of one generation seed (same captions, same views);
several pairs pool the seeds. Per scene-seed pair: the candidate's overall judge minus the baseline's, and the
consistency PSNR difference; reported as wins / losses / ties and mean ± standard error, for all captions and split
into one-object and several-object captions (the split where the mini DiT fails; docs/mini.md).

    python benchmarks/t3d_paired.py --pair shipped/per_scene.csv cand/per_scene.csv \\
        --pair shipped_777/per_scene.csv cand_777/per_scene.csv [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

SHAPES = re.compile(r"\b(cubes?|spheres?|cylinders?|cones?)\b")


def objects_in(prompt: str) -> int:
    """How many objects a procedural-world caption names (one shape word each)."""
    return len(SHAPES.findall(prompt))


def read_scores(path: Path) -> dict[str, dict[str, Any]]:
    """``{scene: {"prompt", "overall", "consistency"}}`` of one ``per_scene.csv``."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise SystemExit(f"{path}: cannot read ({exc.strerror})") from exc
    need = {"scene", "prompt", "judge_overall", "consistency_psnr"}
    if not rows or not need <= set(rows[0]):
        raise SystemExit(
            f"{path}: not a per_scene.csv of `vist3a eval text-to-3d` (needs columns {sorted(need)})"
        )
    return {r["scene"]: {"prompt": r["prompt"], "overall": float(r["judge_overall"]),
                         "consistency": float(r["consistency_psnr"] or "nan")} for r in rows}  # fmt: skip


def summary(diffs: list[float]) -> dict[str, Any]:
    """Wins / losses / ties and mean ± standard error of paired differences."""
    n = len(diffs)
    mean = sum(diffs) / n if n else float("nan")
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else float("nan")
    return {"n": n, "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "mean": mean, "se": math.sqrt(var / n) if n > 1 else float("nan")}  # fmt: skip


def compare(pairs: list[tuple[Path, Path]]) -> dict[str, Any]:
    groups: dict[str, dict[str, list[float]]] = {
        g: {"overall": [], "consistency": []} for g in ("all", "one", "several")
    }
    for base_csv, cand_csv in pairs:
        base, cand = read_scores(base_csv), read_scores(cand_csv)
        if set(base) != set(cand):
            raise SystemExit(f"{base_csv} and {cand_csv} hold different scenes: not the same captions")
        for scene, b in base.items():
            c = cand[scene]
            group = "one" if objects_in(b["prompt"]) <= 1 else "several"
            for g in ("all", group):
                groups[g]["overall"].append(c["overall"] - b["overall"])
                if not (math.isnan(c["consistency"]) or math.isnan(b["consistency"])):
                    groups[g]["consistency"].append(c["consistency"] - b["consistency"])
    return {g: {k: summary(v) for k, v in d.items()} for g, d in groups.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--pair",
        nargs=2,
        action="append",
        type=Path,
        required=True,
        metavar=("BASE", "CAND"),
        help="per_scene.csv of the baseline and of the candidate, same captions and seed (repeatable)",
    )
    p.add_argument("--json", type=Path, help="also write the result here")
    a = p.parse_args(argv)
    res = compare([(b, c) for b, c in a.pair])
    for g, d in res.items():
        o, c = d["overall"], d["consistency"]
        print(f"{g:8s} n={o['n']:3d}  judge {o['wins']}/{o['losses']}/{o['ties']} (win/loss/tie) "
              f"{o['mean']:+.1f} ± {o['se']:.1f}   consistency {c['mean']:+.2f} ± {c['se']:.2f} dB")  # fmt: skip
    if a.json:
        a.json.write_text(
            json.dumps({"pairs": [[str(b), str(c)] for b, c in a.pair], **res}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into `head`: the reader left; stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
