"""Camera error of anysplat-mini weights on held-out world clips, per camera motion (issue 9).

The recon stage's evaluation reports one mean rotation error beside the static camera's (every view predicted at
view 0). This splits both by the clip's camera motion, so a head that has learned some motions and not others
shows which: one row per motion, plus the mean. It reads weights only (a shipped folder, a stage export or a
safetensors file of the state dict), runs on the CPU in a few minutes, and renders nothing but the clips.

    python benchmarks/recon_camera_eval.py runs/s9/c1a2k.safetensors shipped --frames 8 --context 5 \
        --scenes 16 --out benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch


def _model(spec: str, device: torch.device):
    from vist3a.models.anysplat import anysplat_mini

    if spec.endswith(".safetensors"):  # a bare state dict (a training checkpoint's model, fp16)
        from safetensors.torch import load_file

        model = anysplat_mini(device=device, weights=None)
        missing, unexpected = model.load_state_dict(load_file(spec), strict=False)
        if missing or unexpected:
            raise SystemExit(f"{spec}: {len(missing)} missing and {len(unexpected)} unexpected keys")
        return model.float().eval()
    return anysplat_mini(device=device, weights=spec).float().eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+", help="'shipped', a folder, or a .safetensors state dict")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--context", type=int, default=5)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--scenes", type=int, default=16, help="held-out clips (the stage's eval seed)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON: per weights, per clip and per motion")
    a = p.parse_args(argv)

    from vist3a.eval.stitch_claim import static_camera_errors
    from vist3a.io_utils import atomic_write_text
    from vist3a.train.mini_loop import MiniTrainConfig
    from vist3a.train.mini_recon import ReconTask, pose_errors
    from vist3a.world.sample import make_sample

    dev = torch.device(a.device)
    results: dict = {"args": {k: str(v) for k, v in vars(a).items()}, "runs": {}}
    clips = None
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MiniTrainConfig(out=Path(tmp), steps=1, batch=1, eval_scenes=a.scenes, train_scenes=1, frames=a.frames,
                              size=a.size, max_objects=3, extra={"context": a.context})  # fmt: skip
        for spec in a.weights:
            model = _model(spec, dev)
            task = ReconTask(model, cfg, dev)
            if clips is None:  # rendered once, shared by every weights file
                clips = [task._clips(task.eval_set, [i]) for i in range(a.scenes)]
                motions = [make_sample(i, cfg.eval_seed, a.frames, a.size, cfg.max_objects).trajectory.motion
                           for i in range(a.scenes)]  # fmt: skip
            rows = []
            with torch.no_grad():
                for i, clip in enumerate(clips):
                    out = model(clip["images"][:, task.ctx], voxelize=False)
                    w2c = torch.linalg.inv(clip["c2w"][0, task.ctx].double())
                    err = pose_errors(out.pose_enc_list[-1][0].float(), w2c)
                    static = static_camera_errors(clip["c2w"][0, task.ctx].double().cpu())["rot_deg"]
                    rows.append({"clip": i, "motion": motions[i], **err, "rot_deg_static": static})
            by = {}
            for m in sorted({r["motion"] for r in rows}):
                sel = [r for r in rows if r["motion"] == m]
                by[m] = {"clips": len(sel), "rot_deg": statistics.fmean(r["rot_deg"] for r in sel),
                         "rot_deg_static": statistics.fmean(r["rot_deg_static"] for r in sel)}  # fmt: skip
            mean = {"rot_deg": statistics.fmean(r["rot_deg"] for r in rows),
                    "rot_deg_static": statistics.fmean(r["rot_deg_static"] for r in rows)}  # fmt: skip
            results["runs"][spec] = {"mean": mean, "by_motion": by, "clips": rows}
            print(f"{spec}: rotation {mean['rot_deg']:.1f}° (static {mean['rot_deg_static']:.1f}°); "
                  + ", ".join(f"{m} {v['rot_deg']:.1f}/{v['rot_deg_static']:.1f} (n={v['clips']})"
                              for m, v in by.items()), flush=True)  # fmt: skip
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
