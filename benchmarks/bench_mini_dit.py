"""Speed and memory of the mini DiT stage (issue 10) at its real size, to plan device runs.

Uses a randomly initialised wan-mini VAE (real widths, fitted-looking stats) saved like a VAE-stage
export, builds a latent cache of ``--scenes`` world scenes (13 frames at 256²; render + VAE encode +
MiniLM embeddings of every phrasing), then times training steps of the real mini DiT at ``--batch``
(bf16 autocast on CUDA) and one held-out evaluation, and runs the real loop (``train_dit``) for a few
steps to check the whole path including the export.

    VIST3A_MINILM=/path/to/minilm_fp16 python benchmarks/bench_mini_dit.py --out benchmarks/results/mini_dit_gpu.json
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=128, help="scenes in the benchmark cache")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    from vist3a.models.video import wan_mini
    from vist3a.train.mini_dit import train_dit

    tmp = Path(tempfile.mkdtemp())
    vm = wan_mini(components=("vae",), seed=0)
    vm.set_latent_stats(torch.zeros(16), torch.ones(16))
    vm.vae.to(torch.float16)
    (tmp / "vae_run").mkdir()
    vm.save_pretrained(tmp / "vae_run" / "wan_mini")
    vae = tmp / "vae_run" / "wan_mini"

    def config(out: Path, steps: int) -> MiniTrainConfig:
        return MiniTrainConfig(out=out, steps=steps, batch=args.batch, lr=3e-4, warmup=0, train_scenes=args.scenes,
                               eval_scenes=16, eval_every=0, ckpt_every=10_000, extra={"cfg_drop": 0.1})  # fmt: skip

    # 1. the cache (cache_only), timed
    _sync()
    t0 = time.perf_counter()
    train_dit(config(tmp / "run", args.steps), vae, device=dev, cache_only=True, progress=False)
    _sync()
    cache_s = time.perf_counter() - t0
    per_scene = cache_s / (args.scenes + 16)

    # 2. the training step, timed on the cached data (the loop's own path, without checkpoint I/O)
    from diffusers import WanTransformer3DModel

    from vist3a.models.video import MINI_DIT, VideoModel, _build_random
    from vist3a.train.mini_dit import DitTask, load_trained_vae

    cfg = config(tmp / "run", args.steps)
    cfg.extra["progress"] = False
    vmodel, folder = load_trained_vae(vae, dev)
    dit = _build_random(WanTransformer3DModel, MINI_DIT, dev, None, 0)
    task = DitTask(VideoModel(vmodel.vae, dit, None, name="wan-mini"), folder, cfg, dev)
    params = [p for p in task.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    from vist3a.train.mini_loop import step_indices

    for s in range(args.steps):
        _sync()
        t0 = time.perf_counter()
        task.model.train()
        loss = task.loss(step_indices(args.scenes, args.batch, 0, s), s, autocast)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        _sync()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None
    step_s = sum(times[3:]) / max(1, len(times[3:]))
    task.model.eval()
    _sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        ev = task.evaluate()
    _sync()
    eval_s = time.perf_counter() - t0

    # 3. the real loop (reuses the cache) with export
    t0 = time.perf_counter()
    res = train_dit(config(tmp / "run", 10), vae, device=dev, progress=False)
    loop_s = time.perf_counter() - t0
    from vist3a.registry import build

    loaded = build("wan-mini", weights=tmp / "run" / "wan_mini", device=dev, components=("vae", "transformer"))

    out = {
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "cache_scenes": args.scenes + 16,
        "cache_seconds": cache_s,
        "cache_s_per_scene": per_scene,
        "cache_4000_minutes_estimate": per_scene * (4000 + 16) / 60,
        "batch": args.batch,
        "step_s": step_s,
        "steps_per_8_min": int(480 / step_s),
        "peak_gib": peak,
        "eval_s": eval_s,
        "eval": ev,
        "loop_10_steps_s": loop_s,
        "loop_losses": res.losses,
        "export_loads": loaded.transformer is not None,
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
