"""Does anysplat-mini's frozen aggregator already carry the relative camera pose? (issue 9: the static camera)

The camera head reads one token per view, the camera token of the aggregator's last layer (``[B, S, 2C]``), and
its trunk attends across the views. This caches those tokens of world clips once (the aggregator frozen, CPU),
then fits a copy of the camera head alone on them with the recon stage's camera loss against the exact
ground-truth encodings, and reports the held-out rotation error per camera motion beside the static camera's
(as `recon_camera_eval.py` does). If the fitted head leaves the static camera, the aggregator's tokens hold the
pose and the shipped head never learned to read them; if it does not, the aggregator must learn too (GPU
training). ``--save DIR`` writes the anysplat-mini folder with the fitted head in place of the old one.

    python benchmarks/camera_head_fit.py --train-clips 1024 --eval-clips 32 --steps 3000 \
        --cache runs/camfit/tokens.safetensors --out benchmarks/results/camera_head_fit.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def camera_tokens(model, task, ds, n: int, label: str) -> dict[str, torch.Tensor]:
    """The last layer's camera tokens ``[n, S, 2C]`` of ``n`` clips of ``ds`` (context views), the ground-truth
    encodings ``[n, S, 9]`` and the context cameras ``c2w [n, S, 4, 4]`` (normalised: view 0 = identity)."""
    from tqdm import tqdm

    from vist3a.models.geometry import se3_inverse
    from vist3a.models.pose_encoding import extri_intri_to_pose_encoding

    s = task.config.size
    toks, encs, c2ws = [], [], []
    with torch.no_grad():
        for i in tqdm(range(n), desc=f"tokens ({label})", unit="clip"):
            clip = task._clips(ds, [i])
            agg = model.encoder.aggregator(clip["images"][:, task.ctx])
            toks.append(agg.layers[-1][0, :, 0].float())
            c2w = clip["c2w"][0, task.ctx]
            encs.append(extri_intri_to_pose_encoding(se3_inverse(c2w)[None, :, :3], clip["K"][:, task.ctx], (s, s))[0])
            c2ws.append(c2w)
    return {"tokens": torch.stack(toks), "enc": torch.stack(encs).float(), "c2w": torch.stack(c2ws).float()}


def stitched_camera_tokens(dec, video_model, n: int, seed: int, frames: int, label: str) -> dict[str, torch.Tensor]:
    """As :func:`camera_tokens` for the stitched decoder: world clips (``frames`` at 256², every frame a view, as
    in generation) → VAE posterior mode → stitched tokens → the aggregator from the stitch point."""
    from tqdm import tqdm

    from vist3a.models.geometry import se3_inverse
    from vist3a.models.pose_encoding import extri_intri_to_pose_encoding
    from vist3a.train.mini_recon import normalise_clip
    from vist3a.world.sample import make_sample

    agg_net, grid = dec.recon.encoder.aggregator, dec.image_size // dec.recon.config.patch_size
    every = list(range(frames))
    toks, encs, c2ws = [], [], []
    with torch.no_grad():
        for i in tqdm(range(n), desc=f"stitched tokens ({label})", unit="clip"):
            sample = make_sample(i, seed, frames, 256, 3)
            r = sample.render("cpu")
            raw = video_model.encode(r.rgb.float().permute(1, 0, 2, 3)[None] * 2 - 1, sample=False)
            agg = agg_net.forward_from_dino_block(dec.tokens(raw), dec.block, (grid, grid), dec.official_compat)
            toks.append(agg.layers[-1][0, :, 0].float())
            c2w = normalise_clip(sample.cameras.c2w.cpu(), r.depth.cpu(), every)[0]  # view 0 = identity, scale-normalised
            k = sample.cameras.K.float()[None]  # the field of view is the same at the decoder's 224² (K and size scale together)
            encs.append(extri_intri_to_pose_encoding(se3_inverse(c2w)[None, :, :3], k, (256, 256))[0])
            c2ws.append(c2w)
    return {"tokens": torch.stack(toks), "enc": torch.stack(encs).float(), "c2w": torch.stack(c2ws).float()}


def cached(path: Path | None, key: dict, build) -> dict[str, torch.Tensor]:
    """``build()`` once; kept in ``path`` (safetensors) with ``key`` in its metadata; a different key rebuilds."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    meta = {"key": json.dumps(key, sort_keys=True)}
    if path is not None and path.is_file():
        with safe_open(str(path), "pt") as f:
            if f.metadata() == meta:
                return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    data = build()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in data.items()}, str(tmp), metadata=meta)
        tmp.replace(path)
    return data


def camera_loss(head, tokens: torch.Tensor, enc_gt: torch.Tensor) -> torch.Tensor:
    """The recon stage's camera term: every iteration's pose L1, weighted 0.8^(n-1-i)."""
    from vist3a.train.mini_recon import _pose_l1

    out = head([tokens[:, :, None]])
    n = len(out)
    return sum(0.8 ** (n - 1 - i) * _pose_l1(p.float(), enc_gt) for i, p in enumerate(out))


def rotation_errors(head, data: dict[str, torch.Tensor], motions: list[str]) -> dict:
    """Per-clip rotation / direction errors of ``head`` on cached clips, the static camera's, and means by motion."""
    from vist3a.eval.stitch_claim import static_camera_errors
    from vist3a.train.mini_recon import pose_errors

    rows = []
    with torch.no_grad():
        pred = head([data["tokens"][:, :, None]])[-1]
    for i in range(len(pred)):
        c2w = data["c2w"][i].double()
        err = pose_errors(pred[i].float(), torch.linalg.inv(c2w))
        rows.append({"clip": i, "motion": motions[i], **err, "rot_deg_static": static_camera_errors(c2w)["rot_deg"]})
    by = {}
    for m in sorted(set(motions)):
        sel = [r for r in rows if r["motion"] == m]
        by[m] = {"clips": len(sel), "rot_deg": statistics.fmean(r["rot_deg"] for r in sel),
                 "rot_deg_static": statistics.fmean(r["rot_deg_static"] for r in sel)}  # fmt: skip
    mean = {k: statistics.fmean(r[k] for r in rows) for k in ("rot_deg", "rot_deg_static")}
    return {"mean": mean, "by_motion": by, "clips": rows}


def fit_head(head, train: dict[str, torch.Tensor], steps: int, batch: int, lr: float, seed: int, log_every: int = 250):
    """AdamW on the camera head alone, cosine schedule; returns the loss curve (every ``log_every`` steps)."""
    from tqdm import tqdm

    head.train()
    params = [q for q in head.parameters() if q.requires_grad]  # a stitched decoder's head: its LoRA factors
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / 50) * 0.5 * (1 + torch.cos(torch.tensor(k / steps * torch.pi)).item())
    )
    g = torch.Generator().manual_seed(seed)
    n, curve, run = len(train["tokens"]), [], []
    for k in tqdm(range(steps), desc="fit camera head", unit="step"):
        idx = torch.randint(n, (batch,), generator=g)
        loss = camera_loss(head, train["tokens"][idx], train["enc"][idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite camera loss at step {k + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        run.append(float(loss.detach()))
        if (k + 1) % log_every == 0 or k + 1 == steps:
            curve.append({"step": k + 1, "loss": statistics.fmean(run)})
            run = []
    head.eval()
    return curve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("anysplat", "stitched"), default="anysplat",
                   help="anysplat-mini on RGB clips, or the stitched decoder on VAE latents (its LoRA is what trains)")
    p.add_argument("--weights", default="shipped", help="'shipped' or a folder (anysplat-mini or stitch train output)")
    p.add_argument("--train-clips", type=int, default=1024, help="training clips (world seed 0)")
    p.add_argument("--eval-clips", type=int, default=32, help="held-out clips (the recon stage's eval seed)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: 8 anysplat, 13 stitched)")
    p.add_argument("--context", type=int, default=5, help="anysplat: context views (the stitched decoder sees all)")
    p.add_argument("--size", type=int, default=224, help="anysplat: clip size (the stitched path is 256² video)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--cache", type=Path, default=None, help="safetensors file for the tokens (reused when it matches)")
    p.add_argument("--train-all", action="store_true",
                   help="stitched: train every weight of the head, not only its LoRA factors (a diagnostic: "
                        "tokens or LoRA capacity; --save is refused, the checkpoint holds only the LoRA)")
    p.add_argument("--save", type=Path, default=None, help="write anysplat-mini with the fitted camera head here")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    if a.train_all and a.save and a.model == "stitched":
        p.error("--train-all changes the head's base weights, which a stitched checkpoint does not hold: drop --save")
    if a.threads:
        torch.set_num_threads(a.threads)

    from vist3a.io_utils import atomic_write_text
    from vist3a.models.anysplat import anysplat_mini
    from vist3a.train.mini_loop import MiniTrainConfig
    from vist3a.train.mini_recon import ReconTask
    from vist3a.world.sample import make_sample

    t0 = time.time()
    dev = torch.device("cpu")
    stitched = a.model == "stitched"
    frames = a.frames or (13 if stitched else 8)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MiniTrainConfig(out=Path(tmp), steps=1, batch=1, eval_scenes=a.eval_clips, train_scenes=a.train_clips,
                              frames=frames, size=a.size, max_objects=3, extra={"context": a.context})  # fmt: skip
        if stitched:
            from vist3a.models.video import wan_mini
            from vist3a.stitching.stitched import stitched_mini

            net = stitched_mini(device=dev, weights=a.weights)
            head_owner = net.recon.encoder
            vae = wan_mini(device=dev, weights="shipped", components=("vae",))
            key = {"model": "stitched", "weights": a.weights, "frames": frames}
        else:
            net = anysplat_mini(device=dev, weights=a.weights).float().eval()
            head_owner = net.encoder
            task = ReconTask(net, cfg, dev)
            key = {"weights": a.weights, "frames": frames, "context": a.context, "size": a.size, "seed": cfg.seed}
        data = {}
        for name, n, seed in (("train", a.train_clips, cfg.seed), ("eval", a.eval_clips, cfg.eval_seed)):
            path = a.cache.with_name(f"{a.cache.stem}_{name}{a.cache.suffix}") if a.cache else None
            if stitched:
                build = lambda n=n, seed=seed, name=name: stitched_camera_tokens(net, vae, n, seed, frames, name)  # noqa: E731
            else:
                ds = task.train_set if name == "train" else task.eval_set
                build = lambda ds=ds, n=n, name=name: camera_tokens(net, task, ds, n, name)  # noqa: E731
            data[name] = cached(path, {**key, "set": name, "clips": n}, build)
            size = 256 if stitched else a.size
            data[name]["motions"] = [make_sample(i, seed, frames, size, cfg.max_objects).trajectory.motion
                                     for i in range(n)]  # fmt: skip
    t_tokens = time.time() - t0
    shipped = head_owner.camera_head.eval()
    before = {s: rotation_errors(shipped, data[s], data[s]["motions"]) for s in ("train", "eval")}
    head = copy.deepcopy(shipped)
    if a.train_all:
        head.requires_grad_(True)
    curve = fit_head(head, data["train"], a.steps, a.batch, a.lr, a.seed)
    after = {s: rotation_errors(head, data[s], data[s]["motions"]) for s in ("train", "eval")}
    for s in ("train", "eval"):
        for what, r in (("shipped head", before[s]), ("fitted head", after[s])):
            print(f"{s} {what}: rotation {r['mean']['rot_deg']:.1f}° (static {r['mean']['rot_deg_static']:.1f}°); "
                  + ", ".join(f"{m} {v['rot_deg']:.1f}/{v['rot_deg_static']:.1f} (n={v['clips']})"
                              for m, v in r["by_motion"].items()), flush=True)  # fmt: skip
    if a.save:
        head_owner.camera_head = head
        fit = {"train_clips": a.train_clips, "steps": a.steps, "batch": a.batch, "lr": a.lr,
               "eval_rot_deg": after["eval"]["mean"]["rot_deg"]}  # fmt: skip
        if stitched:
            from vist3a.mini_assets import shipped_folder
            from vist3a.stitching.export import read_config, save_trained

            src = shipped_folder("stitched-mini") if a.weights == "shipped" else Path(a.weights)
            doc = {k: v for k, v in read_config(src).items() if k not in ("format", "decoder")}
            save_trained(net, a.save, {**doc, "camera_head_fit": fit})
        else:
            net.save_pretrained(a.save, preset="anysplat-mini", dtype=torch.float16)
        print(f"wrote {a.save}")
    if a.out:
        res = {"args": {k: str(v) for k, v in vars(a).items()}, "seconds": {"tokens": t_tokens, "all": time.time() - t0},
               "curve": curve, "before": before, "after": after}  # fmt: skip
        a.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
