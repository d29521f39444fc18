"""Export a recon stage run's latest checkpoint as an anysplat-mini folder (fp16), whatever the run's own export.

A piece cut off by ``timeout`` during its final evaluation (session 9) leaves a checkpoint but no fresh
``out/anysplat_mini``; this writes ``DST`` (default ``RUN/anysplat_mini_ckpt``) from ``RUN/checkpoints``'s latest
``step_*.pt`` and prints the step.

    python scripts/device/ckpt_weights.py runs/mini/g1 [DST]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def export(run: Path, dst: Path) -> int:
    from vist3a.errors import InputError
    from vist3a.mini_assets import SHARD_SIZE
    from vist3a.models.anysplat import anysplat_mini

    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    if not ckpts:
        raise InputError(f"{run}/checkpoints holds no step_*.pt")
    state = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    model = anysplat_mini(device="cpu", weights=None)
    model.load_state_dict(state["model"])
    model.save_pretrained(dst, preset="anysplat-mini", dtype=torch.float16, max_shard_size=SHARD_SIZE)
    return int(state["step"])


if __name__ == "__main__":
    run = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else run / "anysplat_mini_ckpt"
    print(f"{dst}: step {export(run, dst)}")
