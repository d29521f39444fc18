"""Speed and memory of the mini-model training steps (issue 9) at their real sizes, to plan device runs.

For each stage (vae: 13 frames at 256²; recon: 8 views at 224², 5 context) it times the world
rendering of one batch, one full training step (forward, loss, backward, AdamW) and one held-out
evaluation scene, then runs the real loop for a few steps with a tiny time budget to check that it
stops with a checkpoint and resumes.

    python benchmarks/bench_train_mini.py --out benchmarks/results/train_mini_gpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vist3a.train.mini_loop import MiniTrainConfig


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_stage(stage: str, batch: int, steps: int, device: torch.device) -> dict:
    from vist3a.models.anysplat import anysplat_mini
    from vist3a.models.video import wan_mini
    from vist3a.train.mini_recon import ReconTask
    from vist3a.train.mini_vae import VaeTask, videos

    tmp = Path(tempfile.mkdtemp())
    vae = stage == "vae"
    cfg = MiniTrainConfig(out=tmp / stage, steps=steps, batch=batch, warmup=0, eval_scenes=2,
                          frames=13 if vae else 8, size=256 if vae else 224,
                          extra={} if vae else {"context": 5})  # fmt: skip
    if vae:
        task = VaeTask(wan_mini(device=device, components=("vae",)), cfg, device)
        load = lambda idx: videos(task.train_set, idx, device)  # noqa: E731
    else:
        task = ReconTask(anysplat_mini(device=device), cfg, device)
        load = lambda idx: task._clips(task.train_set, idx)  # noqa: E731
    params = [p for p in task.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    data_t, step_t = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for s in range(steps):
        idx = list(range(s * batch, (s + 1) * batch))
        _sync()
        t0 = time.perf_counter()
        load(idx)
        _sync()
        t1 = time.perf_counter()
        task.model.train()
        loss = task.loss(idx, s, autocast)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        _sync()
        t2 = time.perf_counter()
        data_t.append(t1 - t0)
        step_t.append(t2 - t1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    task.model.eval()
    _sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        metrics = task.evaluate()
    _sync()
    eval_s = (time.perf_counter() - t0) / cfg.eval_scenes
    warm = 2 if steps > 3 else 0
    step_s = sum(step_t[warm:]) / len(step_t[warm:])
    data_s = sum(data_t[warm:]) / len(data_t[warm:])
    return {
        "stage": stage, "batch": batch, "frames": cfg.frames, "size": cfg.size,
        "params_M": sum(p.numel() for p in params) / 1e6,
        "world_render_s_per_batch": data_s, "step_s_incl_render": step_s,
        "steps_per_8_min": int(8 * 60 / step_s), "eval_s_per_scene": eval_s,
        "peak_mem_GiB": peak, "final_loss": float(loss.detach()), "eval_untrained": metrics,
    }  # fmt: skip


def check_budget(device: torch.device) -> dict:
    """The real loop stops on its time budget with a checkpoint and resumes to the end."""
    from vist3a.train.mini_vae import train_vae

    tmp = Path(tempfile.mkdtemp())
    cfg = dict(out=tmp / "b", steps=20, batch=1, warmup=0, eval_scenes=1, eval_every=0, frames=13, size=256,
               minutes=0.05)  # fmt: skip
    t0 = time.perf_counter()
    a = train_vae(MiniTrainConfig(**cfg), device=device, progress=False)
    first = time.perf_counter() - t0
    b = train_vae(MiniTrainConfig(**{**cfg, "minutes": 0.0}), device=device, progress=False, resume=True)
    return {"stopped_at": a.step, "first_piece_s": first, "checkpoint": str(a.checkpoint), "resumed_to": b.step,
            "finished": b.finished, "eval": b.evals[-1][1]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="benchmarks/results/train_mini_gpu.json")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--vae-batch", type=int, default=4)
    ap.add_argument("--recon-batch", type=int, default=4)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    res = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__}
    res["vae"] = bench_stage("vae", args.vae_batch, args.steps, dev)
    print(json.dumps(res["vae"], indent=1), flush=True)
    res["recon"] = bench_stage("recon", args.recon_batch, args.steps, dev)
    print(json.dumps(res["recon"], indent=1), flush=True)
    res["budget"] = check_budget(dev)
    print(json.dumps(res["budget"], indent=1), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    from vist3a.io_utils import atomic_write_text

    atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
