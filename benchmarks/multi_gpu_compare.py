"""Issue 11's checks of a multi-GPU run against a one-GPU run (scripts/device/multi_gpu_call.sh writes both).

    python benchmarks/multi_gpu_compare.py stitch RUN_1GPU RUN_2GPU [--seconds S1 S2] [--out FILE.json]
    python benchmarks/multi_gpu_compare.py generate OUT_1GPU OUT_2GPU [--seconds S1 S2] [--out FILE.json]

- ``stitch``: the per-step total distillation loss of two `vist3a stitch train` runs (TensorBoard ``loss/total``,
  the mean over processes) with the same global batch: the largest relative difference and the step it is at.
  DDP with the same global batch computes the same mean gradient, so the curves agree up to reduction order (and
  bf16 on the GPU).
- ``generate``: two `vist3a generate --prompts-file` outputs: every prompt folder of one is in the other exactly
  once, and each pair of ``scene.ply`` files holds the same Gaussians (largest absolute difference per pair).
- ``--seconds``: wall times of the two runs, for the throughput scaling (one-GPU time / multi-GPU time).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def tb_scalars(run: Path, tag: str) -> dict[int, float]:
    """``{step: value}`` of one TensorBoard tag under ``run/tb`` (the last write of a step wins: resumed runs)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((run / "tb").rglob("events.out.tfevents.*"))
    if not files:
        raise SystemExit(f"{run}: no TensorBoard events under tb/")
    out: dict[int, float] = {}
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            out.update({int(e.step): float(e.value) for e in acc.Scalars(tag)})
    if not out:
        raise SystemExit(f"{run}: no {tag!r} scalars")
    return out


def compare_stitch(a: Path, b: Path) -> dict[str, Any]:
    la, lb = tb_scalars(a, "loss/total"), tb_scalars(b, "loss/total")
    steps = sorted(set(la) & set(lb))
    if not steps:
        raise SystemExit("the two runs share no logged step")
    rel = {s: abs(la[s] - lb[s]) / max(abs(la[s]), 1e-12) for s in steps}
    worst = max(rel, key=rel.get)
    return {"steps": len(steps), "max_rel_diff": rel[worst], "at_step": worst, "first": [la[steps[0]], lb[steps[0]]],
            "last": [la[steps[-1]], lb[steps[-1]]]}  # fmt: skip


def compare_generate(a: Path, b: Path) -> dict[str, Any]:
    from vist3a.gaussians.formats import load_scene

    def folders(root: Path) -> dict[str, Path]:
        return {p.parent.name: p.parent for p in sorted(root.glob("*/scene.ply"))}

    fa, fb = folders(a), folders(b)
    if not fa:
        raise SystemExit(f"{a}: no prompt folders with scene.ply")
    diffs = {}
    for name in sorted(set(fa) & set(fb)):
        ga, gb = load_scene(fa[name] / "scene.ply"), load_scene(fb[name] / "scene.ply")
        if len(ga) != len(gb):
            diffs[name] = float("inf")
            continue
        fields = ("means", "quats", "scales", "opacities", "sh")
        diffs[name] = max(float((getattr(ga, f) - getattr(gb, f)).abs().max()) for f in fields)
    return {"prompts": len(fa), "missing": sorted(set(fa) - set(fb)), "extra": sorted(set(fb) - set(fa)),
            "max_abs_diff": max(diffs.values()) if diffs else None, "per_prompt": diffs}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("stitch", "generate"))
    p.add_argument("one", type=Path, help="the one-GPU (reference) run")
    p.add_argument("multi", type=Path, help="the multi-GPU run")
    p.add_argument("--seconds", type=float, nargs=2, metavar=("ONE", "MULTI"), help="wall times, for the scaling")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    res = compare_stitch(a.one, a.multi) if a.kind == "stitch" else compare_generate(a.one, a.multi)
    if a.seconds:
        res.update(seconds=list(a.seconds), speedup=a.seconds[0] / a.seconds[1])
    res = {"kind": a.kind, "one": str(a.one), "multi": str(a.multi), **res}
    print({k: v for k, v in res.items() if k != "per_prompt"})
    if a.out:
        from vist3a.pipelines.export import write_json

        write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
