"""``vist3a eval nvs``: novel-view synthesis on RealEstate10K with the AnySplat / VIST3A protocol.

Registered by :mod:`vist3a.commands.eval` (``EVAL_COMMANDS``). The library side is
:mod:`vist3a.eval.nvs`; the scoring is ``vist3a eval metrics`` run on the output folder.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nvs",
        help="novel-view synthesis on RealEstate10K (8 context -> 4 targets), then PSNR / SSIM / LPIPS",
        description=(
            "Context views -> Gaussians; target cameras from a joint forward pass over context + targets, "
            "aligned to the context-only pass by a translation scale (--cameras predicted, the official "
            "AnySplat/VIST3A protocol) or ground-truth target cameras mapped into the predicted frame by a "
            "similarity (--cameras gt); render the targets; write OUT/<seq>/{gt,pred}/00000k.png and score "
            "them as `vist3a eval metrics OUT` does. See docs/evaluation.md."
        ),
    )
    p.add_argument(
        "--model", required=True,
        help="anysplat | anysplat-mini | anysplat-stitched | stitched-mini | oracle | a saved AnySplat folder/file",
    )  # fmt: skip
    p.add_argument("--dataset", required=True, metavar="re10k:ROOT", help="RealEstate10K-layout folder")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--protocol", choices=["official", "clean"], default="official",
                   help="official: the VIST3A preprocessing and frame order; clean: aspect-correct crops, sorted frames")
    p.add_argument("--cameras", choices=["predicted", "gt"], default="predicted",
                   help="target cameras: predicted (joint pass + scale alignment) or ground truth (needs poses)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N sequences")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--weights", default=None, help="reconstructor / stitched-decoder weights (default: the shipped set for *-mini, random for the others; 'random' forces random)")
    p.add_argument("--recon-weights", default=None,
                   help="anysplat-stitched only: the AnySplat weights (e.g. lhjiang/anysplat) under --weights")
    p.add_argument("--vae-weights", default=None, help="video-VAE weights of a stitched model (default: shipped wan-mini for stitched-mini, else random)")
    p.add_argument("--size", type=int, default=None, help="reconstructor input side (default: the model's; crop = 8/7 of it)")
    p.add_argument("--index-map", default=None, help="re10k_indexmap.json (default: ROOT/re10k_indexmap.json)")
    p.add_argument("--sequences", default=None, help="sequence list (default: ROOT/re10k_test.txt if present)")
    p.add_argument("--extrinsics", choices=["w2c", "c2w"], default="w2c", help="convention of annotations.json")
    p.add_argument("--backend", choices=["auto", "gsplat", "torch"], default="auto", help="render backend")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--vgg-weights", default=None, help="see `vist3a eval metrics`")
    p.add_argument("--lpips-weights", default=None, help="see `vist3a eval metrics`")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from vist3a.commands.eval import run_metrics
    from vist3a.eval.nvs import load_predictor, load_re10k, run_nvs, summary_line

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    predictor = load_predictor(args.model, device, args.weights, args.vae_weights, args.size, args.backend, args.recon_weights)
    ds = load_re10k(args.dataset, predictor, args.protocol, args.index_map, args.sequences, args.extrinsics)
    if ds.skipped.total:
        log.warning("dataset: %s", ds.skipped)
    result = run_nvs(predictor, ds, args.out, args.cameras, args.limit, args.overwrite, progress=not args.no_progress)
    print(f"nvs: {summary_line(result)}; summary in {result.out / 'nvs_run.json'}")
    metrics_args = argparse.Namespace(
        dirs=[args.out], out=None, no_lpips=args.no_lpips, vgg_weights=args.vgg_weights,
        lpips_weights=args.lpips_weights, device=device, no_write=False,
    )  # fmt: skip
    return run_metrics(metrics_args)
