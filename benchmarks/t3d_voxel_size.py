"""`vist3a eval text-to-3d` (or any `vist3a` command) with the mini model's voxel fusion at another voxel side.

anysplat-mini fuses its pixel-aligned Gaussians per voxel of side 0.002 (AnySplat's value; ~590k of the 650k pixel
Gaussians of a 13-frame scene survive). A larger side merges more of them: fewer Gaussians, a smaller `.ply`, a
faster export. The DiT's latents and frames are unchanged, so a run at the same `--gen-seed` pairs scene by scene
with a run at the default (`t3d_paired.py`). Session 25 measured 0.005 (docs/mini.md).

    VOXEL_SIZE=0.005 python benchmarks/t3d_voxel_size.py eval text-to-3d --model mini --world 24 --gen-seed 777 \\
        --device cpu --no-progress --out OUT
"""

from __future__ import annotations

import os
import sys

import vist3a.pipelines.loading as loading
from vist3a.cli import main

_load_mini = loading._load_mini


def _load_mini_at_voxel_size(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - as loading._load_mini
    pipe = _load_mini(*args, **kwargs)
    pipe.decoder.recon.set_voxelize(True, float(os.environ["VOXEL_SIZE"]))
    print(f"anysplat-mini voxel side {pipe.decoder.recon.config.voxel_size}", file=sys.stderr)
    return pipe


if __name__ == "__main__":
    if not float(os.environ.get("VOXEL_SIZE", "0")) > 0:
        raise SystemExit("set VOXEL_SIZE to the voxel side (world units, > 0)")
    loading._load_mini = _load_mini_at_voxel_size
    raise SystemExit(main(sys.argv[1:]))
