"""Overfit the anysplat-mini recon stage on a few fixed world clips and record every loss term per step.

Diagnosis tool of issue 9 (docs/mini.md, "Recon stage: diagnosis"): compare recipes by how fast the
depth and camera losses fall when the data is tiny. The clips are rendered once (memoised), so the
time per step is the network's.

    python benchmarks/recon_overfit.py --steps 40 --size 56 --frames 6 --context 3 --out benchmarks/results/recon_overfit_new.json
    python benchmarks/recon_overfit.py ... --set render_cameras=pred --set depth_loss=l1 --set w_depth=0.5   # the first runs' recipe

On a GPU use e.g. ``--size 224 --frames 8 --context 5 --steps 300 --device cuda``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vist3a.io_utils import atomic_write_text
from vist3a.train import mini_recon
from vist3a.train.mini_loop import MiniTrainConfig
from vist3a.world.dataset import WorldDataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--scenes", type=int, default=2, help="fixed training clips")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=56)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--context", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recon option (RECON_OPTIONS)")
    p.add_argument("--overrides", default="{}", help="JSON of AnySplatConfig overrides (default: MINI_CONFIG)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="write the per-step terms to this JSON file")
    a = p.parse_args()
    extra: dict = {"context": a.context}
    for item in a.set:
        k, _, v = item.partition("=")
        try:
            extra[k] = json.loads(v)
        except ValueError:
            extra[k] = v

    terms: list[dict[str, float]] = []
    loss = mini_recon.ReconTask.loss

    def recording_loss(self, indices, step, autocast):  # type: ignore[no-untyped-def]
        t = loss(self, indices, step, autocast)
        terms.append({k: round(float(v.detach()), 5) for k, v in t.items()})
        if len(terms) % 5 == 0 or len(terms) == 1:
            print(f"step {len(terms)}: " + ", ".join(f"{k} {v:.4f}" for k, v in terms[-1].items()), flush=True)
        return t

    mini_recon.ReconTask.loss = recording_loss  # type: ignore[method-assign]
    memo: dict = {}
    getitem = WorldDataset.__getitem__

    def cached(self, i):  # type: ignore[no-untyped-def]
        key = (self.seed, self.frames, self.size, i)
        if key not in memo:
            memo[key] = getitem(self, i)
        return memo[key]

    WorldDataset.__getitem__ = cached  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MiniTrainConfig(out=Path(tmp), steps=a.steps, batch=a.batch, lr=a.lr, warmup=a.warmup, eval_every=0,
                              eval_scenes=1, train_scenes=a.scenes, frames=a.frames, size=a.size, max_objects=3,
                              ckpt_every=10**6, extra=extra)  # fmt: skip
        t0 = time.time()
        res = mini_recon.train_recon(cfg, device=a.device, overrides=json.loads(a.overrides), progress=False)
        seconds = time.time() - t0
    n = len(terms)
    for lo in range(0, n, 10):
        hi = min(lo + 10, n)
        avg = {k: round(sum(t[k] for t in terms[lo:hi]) / (hi - lo), 4) for k in terms[0]}
        print(f"steps {lo + 1:4d}-{hi:4d} {avg}")
    print(f"{seconds / max(n, 1):.2f} s/step (incl. start-up and the final evaluation); eval {res.evals[-1][1]}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps({"args": vars(a), "terms": terms, "seconds": seconds,
                                             "eval": res.evals[-1][1]}, indent=0) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
