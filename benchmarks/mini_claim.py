"""The paper's claim on exact ground truth for the mini pair (issue 9): rows (a) anysplat-mini on GT frames,
(b) wan-mini VAE decode → anysplat-mini, (c) the stitched decoder on the VAE latent, plus the latent-noise
robustness study (paper App. D.2). See :mod:`vist3a.eval.stitch_claim` for the protocol.

    python benchmarks/mini_claim.py --video-weights runs/mini/vae/wan_mini \\
        --recon-weights runs/mini/recon/anysplat_mini --stitched-weights runs/mini/stitch/stitched.safetensors \\
        --scenes 16 --device cuda --out benchmarks/results/mini_claim.json --md benchmarks/results/mini_claim.md

``--stitched-weights`` takes the folder ``vist3a stitch train`` writes (``stitched.safetensors`` +
``stitched.json``), either file of it, or a merged full state dict (``.safetensors`` without a
``stitched.json`` beside it). The stitched decoder is built on its own copy of ``--recon-weights``.
Any weight path left out means RANDOM weights (plumbing / timing only; a warning is printed).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import InputError, MissingWeightsError, Vist3aError
from vist3a.eval.stitch_claim import DEFAULT_ALPHAS, NOISE_NORMS, STITCHED_RGB, ClaimConfig, run_claim
from vist3a.io_utils import atomic_write_text

log = logging.getLogger("mini_claim")


def _warn(msg: str) -> None:
    print(f"WARNING: {msg}", file=sys.stderr)


def load_recon(path: str | None, device: torch.device) -> Any:
    from vist3a.models.anysplat import anysplat_mini, from_pretrained

    if path is None:
        _warn("no --recon-weights: anysplat-mini has RANDOM weights (smoke run, numbers are meaningless)")
        torch.manual_seed(0)
        return anysplat_mini(device=device).eval()
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingWeightsError(
            f"--recon-weights not found: {p} (the folder `world train-mini --stage recon` exports)"
        )
    return from_pretrained(p, device=device).eval()


def load_video(path: str | None, device: torch.device) -> Any:
    from vist3a.models.video import wan_mini

    if path is None:
        _warn("no --video-weights: the wan-mini VAE has RANDOM weights (smoke run, numbers are meaningless)")
    return wan_mini(device=device, weights=path, components=("vae",)).eval()


def load_stitched(path: str | None, recon: Any, device: torch.device) -> Any:
    """The stitched decoder on a private copy of ``recon`` (LoRA wraps its layers in place)."""
    from vist3a.stitching.export import CONFIG_FILE, WEIGHTS_FILE, load_trained, read_config
    from vist3a.stitching.stitched import StitchedDecoder

    base = copy.deepcopy(recon)
    emb = recon.config.embed_dim
    if path is None:
        _warn("no --stitched-weights: the stitching layer is RANDOM (smoke run, numbers are meaningless)")
        torch.manual_seed(1)
        with torch.device(device):
            dec = StitchedDecoder(
                base, f"conv3d_k5x3x3_o{emb}_s1x2x2_p2x1x1", "enc_blocks_2", (16, 4, 32, 32)
            )
        return dec.eval()
    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    if (folder / CONFIG_FILE).is_file() and (p.is_dir() or p.name in (WEIGHTS_FILE, CONFIG_FILE)):
        doc = read_config(folder)
        log.info("stitched decoder %s (trained on recon weights %s)", folder, doc.get("recon_weights"))
        return load_trained(folder, device=device, recon=base).eval()
    if not p.is_file():
        raise MissingWeightsError(
            f"--stitched-weights not found: {p} (give the folder `vist3a stitch train --out` wrote, with "
            f"{WEIGHTS_FILE} + {CONFIG_FILE})"
        )
    from safetensors.torch import load_file

    with torch.device(device):
        dec = StitchedDecoder(base, f"conv3d_k5x3x3_o{emb}_s1x2x2_p2x1x1", "enc_blocks_2", (16, 4, 32, 32))
    try:
        dec.load_state_dict(load_file(str(p)), strict=True)
    except Exception as exc:
        raise InputError(
            f"{p}: not a merged stitched-mini state dict and no {CONFIG_FILE} beside it ({exc})"
        ) from None
    return dec.eval()


def _alphas(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alphas must be comma-separated numbers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--video-weights", help="wan-mini folder (vae/); omitted = random VAE")
    ap.add_argument("--recon-weights", help="anysplat-mini folder; omitted = random")
    ap.add_argument(
        "--stitched-weights", help="stitched folder or its stitched.safetensors; omitted = random layer"
    )
    ap.add_argument("--scenes", type=int, default=16, help="held-out world scenes (default 16)")
    ap.add_argument(
        "--seed", type=int, default=0, help="TRAINING world seed; held-out = seed + 7919 (default 0)"
    )
    ap.add_argument(
        "--frames", type=int, default=25, help="views per clip: even = context, odd = targets (25)"
    )
    ap.add_argument("--video-size", type=int, default=256)
    ap.add_argument("--recon-size", type=int, default=224)
    ap.add_argument(
        "--alphas", type=_alphas, default=DEFAULT_ALPHAS, help="latent noise levels, e.g. 0,0.05,0.1"
    )
    ap.add_argument("--noise-seed", type=int, default=0)
    ap.add_argument(
        "--noise-norm", choices=NOISE_NORMS, default="rms", help="‖z‖: per-sample RMS or L2 (rms)"
    )
    ap.add_argument("--stitched-rgb", choices=STITCHED_RGB, default="decoded",
                    help="RGB of the stitched Gaussian head: VAE-decoded frames (as text-to-3D) or ground truth")  # fmt: skip
    ap.add_argument("--backend", default="auto", help="render backend: auto, gsplat, torch")
    ap.add_argument("--no-lpips", action="store_true", help="skip LPIPS even when its weights are found")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/mini_claim.json"))
    ap.add_argument("--md", type=Path, help="also write the Markdown tables here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        dev = torch.device(args.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda but CUDA is not available")
        t0 = time.perf_counter()
        recon = load_recon(args.recon_weights, dev)
        video = load_video(args.video_weights, dev)
        stitched = load_stitched(args.stitched_weights, recon, dev)
        load_s = time.perf_counter() - t0
        cfg = ClaimConfig(
            scenes=args.scenes, seed=args.seed, frames=args.frames, video_size=args.video_size,
            recon_size=args.recon_size, alphas=args.alphas, noise_seed=args.noise_seed, noise_norm=args.noise_norm,
            stitched_rgb=args.stitched_rgb, backend=args.backend,
        )  # fmt: skip
        res = run_claim(recon, video, stitched, cfg, device=dev, lpips=None if args.no_lpips else "auto")
    except Vist3aError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    res["weights"] = {
        "video": args.video_weights, "recon": args.recon_weights, "stitched": args.stitched_weights,
        "random": [k for k, v in (("video", args.video_weights), ("recon", args.recon_weights),
                                  ("stitched", args.stitched_weights)) if v is None],
    }  # fmt: skip
    res["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    res["load_seconds"] = load_s
    if res["weights"]["random"]:
        res["markdown"] = (
            f"**RANDOM weights: {', '.join(res['weights']['random'])}** (smoke run)\n\n" + res["markdown"]
        )
    print(res["markdown"])
    print(f"{cfg.scenes} scenes in {res['seconds']:.1f} s (+ {load_s:.1f} s loading) on {res['device']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.md, res["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
