"""Where the stitched decoder's depth error sits (issue 9): per context frame and per region, rows (a)/(b)/(c).

The claim table (``benchmarks/mini_claim.py``) reports one depth AbsRel per scene. This breaks it down on
the same held-out clips and the same scale alignment (``vist3a.eval.stitch_claim.score_prediction``: the
prediction is scaled so its mean over the valid pixels of all context frames matches the ground truth's):

- per context frame — the VAE compresses time 4x, so frame ``t`` sits at latent frame ``ceil(t/4)``; an
  error that grows between latent frames points at the stitching layer's temporal upsampling;
- per region — pixels nearer / farther than the scene's median ground-truth depth (objects and near
  floor vs far floor and horizon), and pixels within 2 px of a ground-truth depth edge (a jump of more
  than 5 % between neighbours: object silhouettes, the horizon) vs the rest — a blurred depth map loses
  its accuracy at the edges first.

No rendering, so it runs in seconds per scene on a CPU::

    python benchmarks/mini_claim_depth.py --scenes 4 --stitched src/vist3a/assets/mini/stitched-mini \
        --out benchmarks/results/mini_s6_2026-12-03/claim_depth_shipped.json --png docs/images/x.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROWS = ("anysplat", "two_stage", "stitched")


def absrel_map(
    pred: torch.Tensor, gt: torch.Tensor, align: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale-aligned ``|k·pred - gt| / gt`` per pixel ``[N,H,W]`` and the valid mask (``gt > 0``).

    ``align="mean"``: ``k`` matches the means (the claim table's alignment); ``"median"``: the medians — robust
    when a few far pixels (a floor running to the horizon) dominate the mean.
    """
    from vist3a.eval.stitch_claim import depth_scale  # the claim table's alignment

    valid = gt > 0
    k = depth_scale(pred, gt, align)
    err = ((pred.double() * k - gt.double()).abs() / gt.double().clamp_min(1e-6)).float()
    return err, valid


def edge_mask(gt: torch.Tensor, jump: float = 0.05, radius: int = 2) -> torch.Tensor:
    """Pixels ``[N,H,W]`` within ``radius`` of a relative depth jump above ``jump`` between 4-neighbours."""
    g = gt.clamp_min(1e-6)
    e = torch.zeros_like(gt, dtype=torch.bool)
    dx = (g[:, :, 1:] / g[:, :, :-1]).log().abs() > jump
    dy = (g[:, 1:, :] / g[:, :-1, :]).log().abs() > jump
    e[:, :, 1:] |= dx
    e[:, :, :-1] |= dx
    e[:, 1:, :] |= dy
    e[:, :-1, :] |= dy
    k = 2 * radius + 1
    return torch.nn.functional.max_pool2d(e[:, None].float(), k, stride=1, padding=radius)[:, 0] > 0


def breakdown(pred: torch.Tensor, gt: torch.Tensor, align: str = "mean") -> dict[str, list[float] | float]:
    """AbsRel overall, per frame, near / far (split at the median GT depth), at depth edges / elsewhere."""
    err, valid = absrel_map(pred, gt, align)
    med = gt[valid].median()
    near, far = valid & (gt <= med), valid & (gt > med)
    edge = valid & edge_mask(gt)
    per_frame = [float(err[i][valid[i]].mean()) for i in range(err.shape[0])]
    return {
        "absrel": float(err[valid].mean()),
        "near": float(err[near].mean()),
        "far": float(err[far].mean()),
        "edge": float(err[edge].mean()) if edge.any() else float("nan"),
        "interior": float(err[valid & ~edge].mean()),
        "per_frame": per_frame,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=4)
    p.add_argument("--video-weights", default="src/vist3a/assets/mini/wan-mini")
    p.add_argument("--recon-weights", default="src/vist3a/assets/mini/anysplat-mini")
    p.add_argument("--stitched", default="src/vist3a/assets/mini/stitched-mini")
    p.add_argument("--device", default="cpu")
    p.add_argument("--align", choices=("mean", "median"), default="mean", help="depth scale alignment (mean)")
    p.add_argument("--out", required=True, help="result JSON")
    p.add_argument(
        "--png", default=None, help="depth panel: rows GT, (a), (b), (c) for 4 frames of each scene"
    )
    a = p.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).parent))
    from mini_claim import load_recon, load_stitched, load_video  # the claim table's own loaders

    from vist3a.errors import Vist3aError
    from vist3a.eval.stitch_claim import (
        ClaimConfig,
        ClaimModels,
        context_split,
        depth_scale,
        render_clip,
        resize_frames,
    )

    dev = torch.device(a.device)
    try:
        recon = load_recon(a.recon_weights, dev)
        video = load_video(a.video_weights, dev)
        stitched = load_stitched(a.stitched, recon, dev)
    except (Vist3aError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models = ClaimModels(recon, video, stitched)
    cfg = ClaimConfig(scenes=a.scenes)
    ctx, _ = context_split(cfg.frames)
    result: dict[str, list] = {r: [] for r in ROWS}
    panels = []
    for i in range(cfg.scenes):
        clip = render_clip(i, cfg, dev)
        gt_ctx = resize_frames(clip.video[ctx], cfg.recon_size)
        z = models.encode(clip.video[ctx])
        decoded = models.decode(z, cfg.recon_size)
        preds = {
            "anysplat": models.reconstruct(gt_ctx).depth.cpu(),
            "two_stage": models.reconstruct(decoded).depth.cpu(),
            "stitched": models.stitched_decode(z, decoded).depth.cpu(),
        }
        gt = clip.depth[ctx].cpu()
        for r in ROWS:
            result[r].append({"scene": i, **breakdown(preds[r], gt, a.align)})
        print(f"scene {i}: " + ", ".join(f"{r} {result[r][-1]['absrel']:.3f}" for r in ROWS), flush=True)
        if a.png:
            frames = [0, 1, 2, 4]  # frame 0 and 4 sit on latent frames, 1 and 2 between them
            rows = [gt] + [preds[r] for r in ROWS]
            lo, hi = float(gt[gt > 0].min()), float(gt.max())
            for d in rows:
                k = depth_scale(d, gt)
                panels.append(torch.cat([((d[f] * k - lo) / (hi - lo)).clamp(0, 1) for f in frames], dim=1))
    n = cfg.scenes
    summary = {
        r: {
            **{m: sum(s[m] for s in result[r]) / n for m in ("absrel", "near", "far", "edge", "interior")},
            "per_frame": [sum(s["per_frame"][t] for s in result[r]) / n for t in range(len(ctx))],
        }
        for r in ROWS
    }
    out = {
        "stitched": a.stitched,
        "align": a.align,
        "scenes": cfg.scenes,
        "context_views": ctx,
        "summary": summary,
        "per_scene": result,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(a.out)
    for r in ROWS:
        s = summary[r]
        pf = " ".join(f"{v:.2f}" for v in s["per_frame"])
        print(
            f"{r:>10s}: absrel {s['absrel']:.3f} near {s['near']:.3f} far {s['far']:.3f} "
            f"edge {s['edge']:.3f} interior {s['interior']:.3f} | per frame {pf}"
        )
    if a.png and panels:
        from PIL import Image

        img = (torch.cat(panels, dim=0) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(img).save(a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
