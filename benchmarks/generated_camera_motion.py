"""How far do the predicted cameras of generated scenes turn? (issue 10: the DiT's videos hardly orbit)

Reads the scene folders of `vist3a eval text-to-3d` runs (``RUN/scenes/*/cameras.json``) and reports, per scene,
the largest rotation of any view from view 0 and the largest rotation between neighbouring views (geodesic
degrees, ``vist3a.eval.stitch_claim.rotation_error_deg``). A generated 13-frame world orbit turns up to ~330°
with ~28° between neighbours; a static video turns ~0°; a jump of 100°+ between neighbours is a broken
camera, not motion.

    python benchmarks/generated_camera_motion.py runs/t3d_a runs/t3d_b [--out FILE.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

# a jump the mini camera guard catches: no world video turns so between frames (an orbit: ~28°)
from vist3a.pipelines.loading import MINI_CAMERA_GUARD_DEG as BROKEN_STEP_DEG


def scene_motion(cameras_json: Path) -> dict[str, float]:
    from vist3a.gaussians.cameras import Cameras
    from vist3a.models.camera_guard import geodesic_deg, max_step_deg

    c2w = Cameras.load_json(cameras_json).c2w  # the angles between views are the same for c2w and w2c
    r = c2w[:, :3, :3]
    return {"max_from_first_deg": float(geodesic_deg(r, r[:1]).max()), "max_step_deg": float(max_step_deg(c2w[None]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="output folders of `vist3a eval text-to-3d`")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    result = {}
    for run in a.runs:
        files = sorted(run.glob("scenes/*/cameras.json"))
        if not files:
            print(f"error: {run} holds no scenes/*/cameras.json (not a `vist3a eval text-to-3d` output)", file=sys.stderr)
            return 1
        rows = {f.parent.name: scene_motion(f) for f in files}
        turns = [r["max_from_first_deg"] for r in rows.values()]
        broken = [n for n, r in rows.items() if r["max_step_deg"] > BROKEN_STEP_DEG]
        result[str(run)] = {"scenes": len(rows), "median_max_from_first_deg": statistics.median(turns),
                            "broken": len(broken), "per_scene": rows}  # fmt: skip
        ok = [t for n, t in zip(rows, turns, strict=True) if n not in broken]
        print(f"{run}: {len(rows)} scenes; turn from view 0, median {statistics.median(turns):.1f}° "
              f"({statistics.median(ok) if ok else float('nan'):.1f}° without the {len(broken)} with a jump > "
              f"{BROKEN_STEP_DEG:.0f}° between neighbours)")  # fmt: skip
    if a.out is not None:
        from vist3a.pipelines.export import write_json

        a.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(a.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
