"""Can anysplat-mini's camera head learn to use its images? (issue 9: the camera columns of the claim table)

The claim table shows the shipped camera head's rotation errors equal, scene by scene, those of a *static*
camera (every view predicted at view 0; ``vist3a.eval.stitch_claim.static_camera_errors``): it has learned
the mean pose. This trains the recon stage's geometry losses only (``w_render = w_mse = 0``: no
rasterisation) on a few fixed world clips and reports, on those clips, the camera head's rotation error
beside the static camera's. A head that can use the images drives its error below the static one on the
clips it sees (one constant pose cannot fit several different trajectories); one that cannot stays on it.

    python benchmarks/camera_overfit.py --scenes 4 --steps 300 --size 112 --out benchmarks/results/x.json
    python benchmarks/camera_overfit.py --init shipped --size 224 ...   # from the shipped weights
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=4, help="fixed training clips (4)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--context", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--w-camera", type=float, default=5.0)
    p.add_argument("--w-depth", type=float, default=1.0)
    p.add_argument("--init", default="none",
                   help="none (random), shipped, or a model file written by --save (a curriculum's second stage)")
    p.add_argument("--save", type=Path, default=None, help="write the trained model here (safetensors) at the end")
    p.add_argument("--every", type=int, default=25, help="measure every N steps")
    p.add_argument("--eval-scenes", type=int, default=0, help="also measure on N held-out clips (generalisation)")
    p.add_argument("--measure", type=int, default=8, help="training clips measured (the first N)")
    p.add_argument("--layerscale", type=float, default=None,
                   help="set the aggregator's frame/global LayerScale gammas to this value first (init 0.01)")
    p.add_argument("--motion", default=None, help="training clips' camera motions, e.g. pan or pan,truck (held-out: the same)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=None, help="JSON of the measurements")
    a = p.parse_args(argv)

    from vist3a.eval.stitch_claim import static_camera_errors
    from vist3a.io_utils import atomic_write_text
    from vist3a.models.anysplat import anysplat_mini
    from vist3a.train.mini_loop import MiniTrainConfig
    from vist3a.train.mini_recon import ReconTask, pose_errors

    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    model = anysplat_mini(device=dev, weights=None if a.init == "none" else a.init).float()
    if a.layerscale is not None:  # how much the aggregator's attention may change the DINO tokens at the start
        agg = model.encoder.aggregator
        with torch.no_grad():
            for blocks in (agg.frame_blocks, agg.global_blocks):
                for blk in blocks:
                    for ls in (blk.ls1, blk.ls2):
                        ls.gamma.fill_(a.layerscale)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MiniTrainConfig(out=Path(tmp), steps=a.steps, batch=a.batch, lr=a.lr, warmup=0, eval_every=0,
                              eval_scenes=max(1, a.eval_scenes), train_scenes=a.scenes, frames=a.frames, size=a.size, max_objects=3,
                              seed=a.seed, ckpt_every=10**6,
                              extra={"context": a.context, "w_render": 0.0, "w_mse": 0.0, "w_depth": a.w_depth,
                                     "w_camera": a.w_camera, "motions": a.motion})  # fmt: skip
        task = ReconTask(model, cfg, dev)
        if a.motion:  # the stage restricts its training clips only; here the held-out clips get the same motions
            from vist3a.world.dataset import WorldDataset

            ds = task.train_set
            task.eval_set = WorldDataset(cfg.eval_scenes, seed=cfg.eval_seed, frames=ds.frames, size=ds.size,
                                         device=ds.device, max_objects=ds.max_objects, shadows=ds.shadows,
                                         motion=ds.motions)  # fmt: skip
        memo = {i: task._clips(task.train_set, [i]) for i in range(a.scenes)}  # rendered once
        held = [task._clips(task.eval_set, [i]) for i in range(a.eval_scenes)]
    clips = [memo[i] for i in range(min(a.measure, a.scenes))]
    task._clips = lambda ds, idx: {k: torch.cat([memo[i][k] for i in idx]) for k in memo[idx[0]]}  # type: ignore
    static = [static_camera_errors(c["c2w"][0, task.ctx].double().cpu())["rot_deg"] for c in clips]
    static_held = [static_camera_errors(c["c2w"][0, task.ctx].double().cpu())["rot_deg"] for c in held]
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(a.seed)
    off = torch.autocast(dev.type, enabled=False)

    @torch.no_grad()
    def measure(which: list[dict[str, torch.Tensor]] = clips) -> list[float]:
        model.eval()
        errs = []
        for c in which:
            out = model(c["images"][:, task.ctx], voxelize=False)
            w2c = torch.linalg.inv(c["c2w"][0, task.ctx].double())
            errs.append(pose_errors(out.pose_enc_list[-1][0].float(), w2c)["rot_deg"])
        model.train()
        return errs

    def write(step: int) -> None:  # after every measurement: a run cut off by a time limit keeps what it measured
        if a.out:
            res = {"args": {k: str(v) for k, v in vars(a).items()}, "static_rot_deg": static,
                   "held_static_rot_deg": static_held, "log": log, "steps_done": step,
                   "seconds_per_step": (time.time() - t0) / max(step, 1), "device": str(dev)}  # fmt: skip
            a.out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(a.out, json.dumps(res, indent=1) + "\n")

    log = [{"step": 0, "rot_deg": measure(), "held_rot_deg": measure(held), "loss": None}]
    print(f"static camera rot err per clip: {[round(s, 2) for s in static]} (mean {statistics.fmean(static):.2f})")
    if held:
        print(f"held-out static camera rot err: mean {statistics.fmean(static_held):.2f}")
    print(f"step 0: rot err {[round(e, 2) for e in log[0]['rot_deg']]}", flush=True)
    t0, losses = time.time(), []
    for step in range(1, a.steps + 1):
        idx = torch.randperm(a.scenes, generator=g)[: a.batch].tolist()
        terms = task.loss(idx, step, off)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append({k: float(terms[k].detach()) for k in ("camera", "depth_log", "total")})
        if step % a.every == 0 or step == a.steps:
            recent = {k: statistics.fmean(x[k] for x in losses[-a.every:]) for k in losses[-1]}
            log.append({"step": step, "rot_deg": measure(), "held_rot_deg": measure(held), "loss": recent})
            e, h = log[-1]["rot_deg"], log[-1]["held_rot_deg"]
            print(f"step {step}: rot err {[round(x, 2) for x in e]} (mean {statistics.fmean(e):.2f}); "
                  + (f"held-out mean {statistics.fmean(h):.2f}; " if h else "")
                  + f"camera loss {recent['camera']:.4f}, depth log {recent['depth_log']:.4f}; "
                  f"{(time.time() - t0) / step:.2f} s/step", flush=True)  # fmt: skip
            write(step)
    write(a.steps)
    if a.save:
        from safetensors.torch import save_file

        from vist3a.io_utils import atomic_path

        with atomic_path(a.save) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
