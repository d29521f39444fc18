"""Does anysplat-mini's aggregator carry the camera motion? A probe on its frozen features.

    python benchmarks/camera_probe.py --train 1024 --eval 64 --out benchmarks/results/camera_probe_cpu.json

The shipped camera head predicts an almost static camera even on true world clips whose cameras move (docs/mini.md,
session 26). Either the head never learned to read the motion, or the aggregator's tokens do not hold it (session 7:
its LayerScale stays at ~0.01, so the views barely talk to each other). This separates the two: the aggregator runs
once per clip (frozen, true frames, the recon stage's 8-view clips at 224² with 5 context views), and a fresh
:class:`CameraHead` of the same config is trained on the cached last-layer tokens against the exact cameras, with the
recon stage's camera loss. Its held-out rotation error, beside the shipped head's and the static camera's, says how
much motion the frozen tokens carry; its training-clip error says whether it only memorises.

``--tokens camera`` feeds the head what it sees in the model (each view's camera token); ``--tokens pooled`` feeds
the view's mean patch token in its place (the view's content, which the official head does not read).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vist3a.eval.stitch_claim import static_camera_errors
from vist3a.io_utils import atomic_write_text
from vist3a.models.geometry import se3_inverse
from vist3a.models.heads.camera_head import CameraHead
from vist3a.models.pose_encoding import extri_intri_to_pose_encoding
from vist3a.train import HELD_OUT_SEED
from vist3a.train.mini_recon import _pose_l1, context_views, normalise_clip, pose_errors
from vist3a.world.dataset import WorldDataset


@torch.no_grad()
def features(
    model, n: int, seed: int, frames: int, context: int, size: int, batch: int = 8
) -> dict[str, torch.Tensor]:
    """Frozen aggregator tokens of ``n`` world clips and their exact cameras.

    Returns ``camera [n, C, 2D]`` (each context view's camera token, last layer), ``pooled [n, C, 2D]`` (its mean
    patch token), ``enc [n, C, 9]`` (the exact pose encoding in the first context view's frame), ``w2c [n, C, 4, 4]``,
    ``pred [n, C, 9]`` (the shipped head's encoding).
    """
    ds = WorldDataset(n, seed=seed, frames=frames, size=size)
    ctx = context_views(frames, context)
    agg_mod, head = model.encoder.aggregator, model.encoder.camera_head
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("camera", "pooled", "enc", "w2c", "pred")}
    for start in range(0, n, batch):
        items = [ds[i] for i in range(start, min(n, start + batch))]
        images = torch.stack([it["images"][ctx] for it in items]).float()
        w2c = torch.stack([se3_inverse(normalise_clip(it["c2w"], it["depth"], ctx)[0][ctx]) for it in items])
        k = torch.stack([it["K"][ctx] for it in items]).float()
        agg = agg_mod(images)
        last = agg.layers[-1].float()  # B, C, T, 2D
        out["camera"].append(last[:, :, 0])
        out["pooled"].append(last[:, :, agg.patch_start_idx :].mean(2))
        out["enc"].append(extri_intri_to_pose_encoding(w2c[..., :3, :], k, (size, size)))
        out["w2c"].append(w2c)
        out["pred"].append(head([t.float() for t in agg.layers])[-1])
    return {k: torch.cat(v) for k, v in out.items()}


def head_input(f: dict[str, torch.Tensor], tokens: str) -> torch.Tensor:
    """``[n, C, 1, 2D]``: the token the head reads (it takes index 0 of the last layer): each view's camera token,
    or (``pooled``) its mean patch token in that place."""
    if tokens not in ("camera", "pooled"):
        raise SystemExit(f"--tokens: camera or pooled, got {tokens!r}")
    return f[tokens][:, :, None]


def mean_errors(enc: torch.Tensor, w2c: torch.Tensor) -> dict[str, float]:
    """Mean rotation and translation-direction errors (degrees) of ``enc [n, C, 9]`` against ``w2c [n, C, 4, 4]``."""
    errs = [pose_errors(enc[i].float(), w2c[i].double()) for i in range(len(enc))]
    rot = sum(e["rot_deg"] for e in errs) / len(errs)
    trans = [e["trans_dir_deg"] for e in errs if e["trans_dir_deg"] == e["trans_dir_deg"]]
    return {"rot_deg": rot, "trans_dir_deg": sum(trans) / max(1, len(trans))}


def static_errors(w2c: torch.Tensor) -> float:
    """The mean rotation error of "every view at view 0" (the mean-pose level) over ``w2c [n, C, 4, 4]``."""
    errs = [static_camera_errors(se3_inverse(w.double()))["rot_deg"] for w in w2c]
    return sum(errs) / len(errs)


def train_probe(
    cfg, tr: dict, ev: dict, tokens: str, steps: int, lr: float, batch: int, seed: int, log_every: int
):
    """A fresh camera head on frozen tokens; returns its curve and final errors."""
    torch.manual_seed(seed)
    head = CameraHead(2 * cfg.embed_dim, trunk_depth=cfg.camera_trunk_depth, num_heads=cfg.camera_num_heads,
                      mlp_ratio=cfg.mlp_ratio)  # fmt: skip
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    x_tr, x_ev = head_input(tr, tokens), head_input(ev, tokens)
    g = torch.Generator().manual_seed(seed)
    curve = []
    for step in range(1, steps + 1):
        idx = torch.randint(len(x_tr), (batch,), generator=g)
        preds = head([x_tr[idx]])
        n = len(preds)
        loss = sum(0.8 ** (n - 1 - i) * _pose_l1(p, tr["enc"][idx]) for i, p in enumerate(preds))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                e_ev = mean_errors(head([x_ev])[-1], ev["w2c"])
                e_tr = mean_errors(head([x_tr[:256]])[-1], tr["w2c"][:256])
            curve.append({"step": step, "loss": float(loss.detach()), "eval_rot_deg": e_ev["rot_deg"],
                          "train_rot_deg": e_tr["rot_deg"]})  # fmt: skip
            print(json.dumps({"tokens": tokens, **curve[-1]}), flush=True)
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=1024, help="training clips (world seed 0)")
    ap.add_argument("--eval", type=int, default=64, help="held-out clips (seed 7919)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--context", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", default="camera,pooled", help="comma list of camera|pooled")
    ap.add_argument("--weights", default=None, help="anysplat-mini folder (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help="save/load the features here (.pt)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from vist3a import registry

    model = registry.build("anysplat-mini", **({"weights": args.weights} if args.weights else {})).eval()
    t0 = time.perf_counter()
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        tr, ev = torch.load(cache, weights_only=True).values()
    else:
        kw = dict(frames=args.frames, context=args.context, size=args.size)
        tr = features(model, args.train, 0, **kw)
        ev = features(model, args.eval, HELD_OUT_SEED, **kw)
        if cache is not None:
            torch.save({"train": tr, "eval": ev}, cache)
    t_feat = time.perf_counter() - t0
    res = {
        "clips": {"train": len(tr["enc"]), "eval": len(ev["enc"])},
        "settings": {
            k: getattr(args, k) for k in ("frames", "context", "size", "steps", "lr", "batch", "weights")
        },
        "static_rot_deg": {"train": static_errors(tr["w2c"]), "eval": static_errors(ev["w2c"])},
        "shipped_head": {
            "train": mean_errors(tr["pred"], tr["w2c"]),
            "eval": mean_errors(ev["pred"], ev["w2c"]),
        },
        "feature_seconds": t_feat,
        "probes": {},
    }
    print(json.dumps({k: res[k] for k in ("static_rot_deg", "shipped_head")}), flush=True)
    for tokens in args.tokens.split(","):
        curve = train_probe(
            model.config, tr, ev, tokens, args.steps, args.lr, args.batch, 0, max(1, args.steps // 10)
        )
        res["probes"][tokens] = {"final": curve[-1], "curve": curve}
    res["date"] = time.strftime("%Y-%m-%d")
    atomic_write_text(Path(args.out), json.dumps(res, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
