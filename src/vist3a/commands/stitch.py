"""``vist3a stitch``: paper step 1 (``search``: where to stitch) and step 2 (``train``: fine-tune the stitch).

``vist3a stitch search`` streams clips through the frozen video VAE encoder and the frozen
reconstruction network, accumulates the least-squares moments of every candidate layer
(:class:`vist3a.stitching.search.LayerSearch`), and writes per-layer stitching-layer initialisations,
``report.json``/``report.csv`` and a plot of MSE against depth::

    vist3a stitch search --video wan2.1-t2v-1.3b --video-weights Wan-AI/Wan2.1-T2V-1.3B-Diffusers \\
        --recon anysplat --recon-weights lhjiang/anysplat --dataset dl3dv:/data/DL3DV-10K \\
        --spec conv3d_k5x3x3_o1024_s1x2x2_p2x1x1 --clips 404 --val-clips 100 --out runs/search

``vist3a stitch train`` (step 2) fine-tunes the stitching layer and LoRA by self-distillation
(:mod:`vist3a.stitching.train`); it runs under ``python`` or ``torchrun --nproc_per_node N``::

    torchrun --nproc_per_node 4 -m vist3a stitch train --video wan2.1-t2v-1.3b --video-weights ... \\
        --recon anysplat --recon-weights lhjiang/anysplat --init runs/search --dataset dl3dv:/data/DL3DV-10K \\
        --out runs/stitch --steps 30000

``vist3a stitch convert`` turns a trained folder into the official ``.pth`` (or a merged state
dict) and an official checkpoint into our folder format.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vist3a.errors import InputError
from vist3a.mini_assets import shipped_folder
from vist3a.stitching.search import DEFAULT_RIDGE, LayerSearch, SearchReport

log = logging.getLogger(__name__)

DATASET_KINDS = ("dl3dv", "scannet", "frames", "generated")


# ------------------------------------------------------------------------------------------------ parser
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stitch",
        help="stitch a video VAE to a 3D reconstruction network (search = paper step 1, train = step 2)",
        description="Paper step 1 (search: where to stitch, by closed-form least squares) and step 2 "
        "(train: fine-tune the stitching layer and LoRA by self-distillation).",
    )
    steps = parser.add_subparsers(dest="stitch_step", metavar="STEP")
    _register_search(steps)
    _register_train(steps)
    _register_convert(steps)
    _register_generate_set(steps)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _register_search(steps: argparse._SubParsersAction) -> None:
    p = steps.add_parser(
        "search",
        help="find the stitching layer by streaming least squares (paper Sec. 3.1)",
        description="Fit the stitching layer in closed form at every candidate layer and rank the layers by "
        "held-out MSE. Writes init_<layer>.safetensors, report.json, report.csv, mse_vs_depth.png.",
    )
    p.add_argument("--video", required=True, help="video model preset (e.g. wan2.1-t2v-1.3b, wan-mini)")
    p.add_argument("--video-weights", help="weights of the video model (diffusers folder or HF id)")
    p.add_argument(
        "--recon", required=True, help="reconstruction network preset (e.g. anysplat, anysplat-mini)"
    )
    p.add_argument("--recon-weights", help="weights of the reconstruction network (file, folder or HF id)")
    p.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="KIND:ROOT",
        help=f"clip source, repeatable; KIND in {DATASET_KINDS} (frames = folder of videos / frame folders)",
    )
    p.add_argument("--spec", required=True, help="stitching layer, e.g. conv3d_k5x3x3_o1024_s1x2x2_p2x1x1")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--clips", type=int, default=404, help="training clips (official run: 404)")
    p.add_argument(
        "--val-clips", type=int, default=64, help="held-out clips for scoring (0 = rank by in-sample MSE)"
    )
    p.add_argument("--frames", type=int, default=13, help="frames per clip, 1+4k (13)")
    p.add_argument("--window", type=int, help="longest window the frames are drawn from (default: --frames)")
    p.add_argument(
        "--layers", help="comma-separated candidate taps (default: every DINO block enc_blocks_1..N)"
    )
    p.add_argument(
        "--ridge", type=float, default=DEFAULT_RIDGE, help=f"ridge λ on the weights ({DEFAULT_RIDGE})"
    )
    p.add_argument(
        "--resolution", type=int, help="VAE input side (default: 16 × recon tokens per side: 512 / 256)"
    )
    p.add_argument(
        "--recon-resolution", type=int, help="reconstruction input side (default: the preset's, 448 / 224)"
    )
    p.add_argument(
        "--protocol",
        choices=("default", "official"),
        default="default",
        help="DL3DV/ScanNet preprocessing: default (antialiased resize) or official (as the VIST3A loaders)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="clips per forward pass")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip sampling and the posterior samples")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-plot", action="store_true", help="skip mse_vs_depth.png")
    p.set_defaults(func=run_search)


# -------------------------------------------------------------------------------------------------- glue
def parse_dataset_arg(text: str) -> tuple[str, Path]:
    """``"dl3dv:/data/DL3DV"`` → ``("dl3dv", Path)``; a clear error for an unknown kind or a missing root."""
    kind, sep, root = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not root or kind not in DATASET_KINDS:
        raise InputError(f"--dataset must be KIND:ROOT with KIND in {DATASET_KINDS}, got {text!r}")
    path = Path(root).expanduser()
    if not path.exists():
        raise InputError(f"--dataset {text!r}: {path} does not exist")
    return kind, path


def make_dataset(
    specs: Sequence[str],
    frames: int,
    window: int,
    size: int,
    recon_size: int | None = None,
    protocol: str = "default",
    color_jitter: bool = False,
) -> torch.utils.data.Dataset:
    """The clip source: DL3DV / ScanNet / frame folders at the VAE resolution, concatenated in order.

    Each item has ``images`` ``[V, 3, size, size]`` in [0, 1] (aspect-preserving resize + centre crop)
    and, for DL3DV / ScanNet, ``feedforward_images`` (the same crop at ``recon_size``, resized as the
    loaders' ``protocol`` says). Random windows come from torch's global RNG (seeded by the caller).
    """
    from vist3a.data import FramesDataset
    from vist3a.data.dl3dv import DL3DVDataset
    from vist3a.data.scannet import ScanNetDataset
    from vist3a.stitching.generated import GeneratedLatents

    kinds = {parse_dataset_arg(text)[0] for text in specs}
    if "generated" in kinds and len(specs) > 1:  # a batch mixing stored latents with clips to encode has no one latent path
        raise InputError("--dataset generated:DIR cannot be combined with other --dataset sources")
    parts = []
    for text in specs:
        kind, root = parse_dataset_arg(text)
        if kind in ("dl3dv", "scannet"):  # the two multi-view datasets share one constructor signature
            cls = DL3DVDataset if kind == "dl3dv" else ScanNetDataset
            ds = cls(
                root,
                num_views=frames,
                window=(frames, window),
                size=size,
                feedforward_size=recon_size,
                protocol=protocol,
                color_jitter=color_jitter,
            )
        elif kind == "generated":  # the DiT's latents + their decode (`vist3a stitch generate-set`)
            ds = GeneratedLatents(root, frames=frames, size=size)
        else:
            ds = FramesDataset(root, num_frames=frames, size=size)
        if len(ds) == 0:
            raise InputError(f"--dataset {text!r}: no usable clips ({ds.skipped})")
        parts.append(ds)
    return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)


def split_indices(
    n_items: int, clips: int, val_clips: int, generator: torch.Generator
) -> dict[str, list[int]]:
    """Item indices for ``clips`` training and ``val_clips`` held-out clips, never sharing a scene.

    Scenes are shuffled and split in proportion (at least one each); a split with fewer scenes than
    clips cycles through its scenes (each visit draws a new random window).
    """
    if clips < 1:
        raise InputError(f"--clips must be >= 1, got {clips}")
    if val_clips < 0:
        raise InputError(f"--val-clips must be >= 0, got {val_clips}")
    if val_clips and n_items < 2:
        raise InputError(
            "held-out clips need at least 2 scenes (train and val never share one); use --val-clips 0"
        )
    perm = torch.randperm(n_items, generator=generator).tolist()
    if n_items >= clips + val_clips:
        n_val = val_clips
    else:
        n_val = min(
            max(1, round(n_items * val_clips / (clips + val_clips)), 1 if val_clips else 0), n_items - 1
        )
        n_val = n_val if val_clips else 0
        log.warning(
            "%d scenes for %d + %d clips: scenes are revisited with new windows", n_items, clips, val_clips
        )
    val_scenes, train_scenes = perm[:n_val], perm[n_val:]
    cycle = lambda scenes, n: [scenes[i % len(scenes)] for i in range(n)] if n else []
    return {"train": cycle(train_scenes, clips), "val": cycle(val_scenes, val_clips)}


def default_layers(recon: Any) -> list[str]:
    """Every DINO block tap of an AnySplat-style network: ``enc_blocks_1 .. enc_blocks_N``."""
    depth = getattr(getattr(recon, "config", None), "dino_depth", None)
    if depth is None:
        blocks = _dino(recon).blocks
        depth = len(blocks)
    return [f"enc_blocks_{k}" for k in range(1, int(depth) + 1)]


def check_layers(recon: Any, layers: Sequence[str]) -> None:
    """Every name must be a DINO tap ``enc_blocks_k`` of this network (clear error before any data is read)."""
    from vist3a.models.dinov2 import parse_tap

    if not layers:
        raise InputError("--layers is empty")
    depth = len(_dino(recon).blocks)
    for name in layers:
        parse_tap(name, depth)


def _dino(recon: Any) -> Any:
    try:
        return recon.encoder.aggregator.patch_embed
    except AttributeError:
        raise InputError(
            f"{type(recon).__name__} has no DINO encoder at encoder.aggregator.patch_embed; "
            "only AnySplat-style reconstruction networks are supported"
        ) from None


@torch.no_grad()
def recon_taps(recon: Any, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """DINO block outputs of the reconstruction network: ``{tap: [B, V, P, C]}`` (patch tokens only).

    Runs only the image normalisation and DINO blocks up to the deepest tap (the aggregator and heads
    are not needed for the search), under bf16 autocast on CUDA as the official feature extraction does.

    Args:
        images: ``[B, V, 3, H, W]`` in [0, 1] at the reconstruction resolution.
    """
    from vist3a.models.dinov2 import parse_tap

    agg = recon.encoder.aggregator
    dino = _dino(recon)
    depth = len(dino.blocks)
    wanted = {parse_tap(name, depth): name for name in layers}
    b, v, _, h, w = images.shape
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if images.device.type == "cuda"
        else contextlib.nullcontext()
    )
    out: dict[str, torch.Tensor] = {}
    with autocast:
        x = agg.normalize(images).reshape(b * v, 3, h, w)
        x = x.to(dino.patch_embed.proj.weight.dtype) if images.device.type != "cuda" else x
        tokens = dino.prepare_tokens(x)
        s = dino.num_special_tokens
        for i in range(max(wanted)):
            tokens = dino.blocks[i](tokens)
            if i + 1 in wanted:
                out[wanted[i + 1]] = tokens[:, s:].reshape(b, v, -1, tokens.shape[-1])
    return out


def _build(preset: str, device: torch.device, weights: str | None, **extra: Any) -> Any:
    from vist3a import registry

    kwargs: dict[str, Any] = {}
    if weights:
        kwargs["weights"] = weights
    else:
        log.warning("%s: no weights given, using a random initialisation (only useful for testing)", preset)
    target = registry._PRESETS.get(preset)  # noqa: SLF001 - only to see which keywords the builder takes
    if target:
        import importlib

        module, func = target.split(":")
        params = inspect.signature(getattr(importlib.import_module(module), func)).parameters
        kwargs.update({k: v for k, v in extra.items() if k in params})
    model = registry.build(preset, device=device, **kwargs)
    if hasattr(model, "eval"):
        model.eval()
    return model


def _batches(
    dataset: Any, indices: list[int], batch_size: int, recon_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(VAE images [B, V, 3, S, S], reconstruction images [B, V, 3, R, R])`` in [0, 1] per batch.

    The reconstruction images are the loader's ``feedforward_images`` when it gives them, else the same
    crop resized (antialiased bilinear) to ``recon_size``.
    """
    for start in range(0, len(indices), batch_size):
        items = [dataset[i] for i in indices[start : start + batch_size]]
        vae = torch.stack([it["images"] for it in items])
        recs = []
        for it in items:
            rec = it.get("feedforward_images")
            if rec is None or tuple(rec.shape[-2:]) != (recon_size, recon_size):
                rec = F.interpolate(
                    it["images"], size=(recon_size, recon_size), mode="bilinear", antialias=True
                )
            recs.append(rec.clamp(0, 1))
        yield vae, torch.stack(recs)


# ---------------------------------------------------------------------------------------------- command
def run_search(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vist3a.stitching.spec import parse_spec

    spec = parse_spec(args.spec)  # fail before loading anything
    if args.frames < 1 or (args.frames - 1) % 4:
        raise InputError(f"--frames must be 1+4k (9, 13, 17, 21, ...) for the video VAE, got {args.frames}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    window = args.window or args.frames
    if window < args.frames:
        raise InputError(f"--window ({window}) must be >= --frames ({args.frames})")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)

    video = _build(args.video, device, args.video_weights, components=("vae",), seed=args.seed)
    if not hasattr(video, "encode"):
        raise InputError(f"preset {args.video!r} has no encode(video) method; pick a video model preset")
    recon = _build(args.recon, device, args.recon_weights)
    layers = (
        [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else default_layers(recon)
    )
    patch = int(getattr(getattr(recon, "config", None), "patch_size", 14))
    recon_size = args.recon_resolution or int(getattr(getattr(recon, "config", None), "image_size", 448))
    if recon_size % patch:
        raise InputError(f"--recon-resolution {recon_size} is not a multiple of the patch size {patch}")
    size = args.resolution or (recon_size // patch) * 16
    if hasattr(video, "check_num_frames"):
        video.check_num_frames(args.frames)
    time_factor = int(getattr(video, "temporal_ratio", 4))

    _check_pair(spec, video, recon, args.frames, size, recon_size, patch, time_factor)  # before any data

    dataset = make_dataset(args.dataset, args.frames, window, size, recon_size, args.protocol)
    g = torch.Generator().manual_seed(args.seed)
    splits = split_indices(len(dataset), args.clips, args.val_clips, g)
    search = LayerSearch(spec, layers, ridge=args.ridge, time_factor=time_factor, device=device)
    log.info(
        "search %s over %d layers: %d train + %d val clips of %d frames, VAE %d², recon %d² on %s",
        spec, len(layers), args.clips, args.val_clips, args.frames, size, recon_size, device,
    )  # fmt: skip
    post = torch.Generator(device=device).manual_seed(args.seed)
    encode_kwargs = {"generator": post} if "generator" in inspect.signature(video.encode).parameters else {}
    with torch.no_grad(), tqdm(total=args.clips + args.val_clips, unit="clip", desc="layer search") as bar:
        for split in ("train", "val"):
            for images, rec in _batches(dataset, splits[split], args.batch_size, recon_size):
                images = images.to(device)
                video_in = images.permute(0, 2, 1, 3, 4) * 2 - 1  # B, 3, T, H, W in [-1, 1]
                latent = video.encode(video_in, **encode_kwargs)  # raw posterior sample [B, C, T', h, w]
                taps = recon_taps(recon, rec.to(device), layers)  # {layer: [B, V, P, D]}
                search.update(latent, taps, split=split)
                bar.update(images.shape[0])
    paths = search.save(args.out, plot=not args.no_plot)
    report = search.report()
    print(format_report(report))
    print(f"best stitching layer: {report.best_layer} (by {report.selected_by})")
    print(f"wrote {args.out}/: report.json, report.csv, init_<layer>.safetensors x{len(layers)}" + (
        ", mse_vs_depth.png" if "plot" in paths else ""))  # fmt: skip
    return 0


def _check_pair(
    spec: Any, video: Any, recon: Any, frames: int, size: int, recon_size: int, patch: int, tf: int
) -> None:
    """Check the spec against the two models' grids before reading data (a clear error with a suggestion)."""
    from vist3a.stitching.spec import StitchGrids, check_grids

    width = getattr(getattr(recon, "config", None), "embed_dim", None)
    if not hasattr(video, "latent_shape") or width is None:
        return  # checked on the first batch instead
    latent = tuple(int(v) for v in video.latent_shape(1, frames, size, size)[1:])
    tokens = (frames, recon_size // patch, recon_size // patch, int(width))
    check_grids(spec, StitchGrids(latent, tokens, tf))


def format_report(report: SearchReport) -> str:
    """A plain table of the per-layer scores."""
    lines = [f"{'layer':<16}{'train MSE':>14}{'train R²':>10}{'val MSE':>14}{'val R²':>10}"]
    for r in report.layers:
        val = "" if r.val_mse is None else f"{r.val_mse:14.6g}{r.val_r2:10.4f}"
        mark = "  <- best" if r.layer == report.best_layer else ""
        r2 = f"{r.train_r2:10.4f}" if math.isfinite(r.train_r2) else f"{'nan':>10}"
        lines.append(f"{r.layer:<16}{r.train_mse:14.6g}{r2}{val}{mark}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- step 2
def _register_train(steps: argparse._SubParsersAction) -> None:
    p = steps.add_parser(
        "train",
        help="fine-tune the stitching layer and LoRA by self-distillation (paper Sec. 3.1, step 2)",
        description="Self-distillation: the frozen reconstruction network on the frames teaches the stitched "
        "decoder on their video latent. Runs under python or torchrun (NCCL on GPU, gloo on CPU). Writes "
        "checkpoints/ (atomic, resumable), tb/ (tensorboard), and at the end stitched.safetensors + stitched.json.",
    )
    p.add_argument("--video", required=True, help="video model preset (e.g. wan2.1-t2v-1.3b, wan-mini)")
    p.add_argument("--video-weights", help="weights of the video model (diffusers folder or HF id)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--recon", help="reconstruction network preset to stitch (e.g. anysplat, anysplat-mini)")
    src.add_argument("--stitched", help="stitched-decoder preset to continue from (e.g. anysplat-stitched)")
    p.add_argument("--recon-weights", help="weights of the reconstruction network (file, folder or HF id)")
    p.add_argument("--stitched-weights", help="with --stitched: an official anysplat_stitched.pth to start from")
    p.add_argument(
        "--recon-set", action="append", default=[], metavar="KEY=VALUE",
        help="override a reconstruction-network config number (repeatable; e.g. embed_dim=48 for tests)",
    )  # fmt: skip
    p.add_argument("--init", type=Path, help="layer-search output: a folder (its best layer) or an init file")
    p.add_argument(
        "--init-stitched", type=Path, metavar="DIR",
        help="with --recon: start from a trained stitched decoder (stitched.safetensors + stitched.json: its layer, "
        "spec, LoRA and trained state) over the --recon-weights network, which is also the teacher; to follow a "
        "reconstruction network that was trained further without distilling from scratch",
    )  # fmt: skip
    p.add_argument("--layer", help="stitch point enc_blocks_k (default: from --init)")
    p.add_argument("--spec", help="stitching layer spec (default: from --init)")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument(
        "--dataset", action="append", metavar="KIND:ROOT", help=f"clip source, repeatable; KIND in {DATASET_KINDS}"
    )
    data.add_argument("--world", type=int, metavar="N", help="N procedural scenes made on the fly (vist3a.world)")
    p.add_argument("--world-seed", type=int, default=0, help="seed of the procedural scene set")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps")
    p.add_argument("--lora", default="r64,a32,d0.0,f0", help="LoRA config (official: r64,a32,d0.0,f0)")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (2e-4)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (0)")
    p.add_argument("--warmup", type=int, default=500, help="warm-up steps of the cosine schedule (500)")
    p.add_argument("--batch", type=int, default=1, help="clips per process and step")
    p.add_argument("--frames", default="9,13,17,21", help="frame counts drawn per step, each 1+4k")
    p.add_argument("--window", type=int, default=50, help="DL3DV/ScanNet: longest window frames come from (50)")
    p.add_argument("--protocol", choices=("default", "official"), default="default", help="loader preprocessing")
    p.add_argument("--no-jitter", action="store_true", help="DL3DV/ScanNet: no colour jitter (official: on)")
    p.add_argument("--resolution", type=int, help="VAE input side (default: 16 x recon tokens per side)")
    p.add_argument("--recon-resolution", type=int, help="reconstruction input side (default: the preset's)")
    p.add_argument("--ckpt-every", type=int, default=1000, help="checkpoint period in steps")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="stop with a checkpoint and the weights so far after this much wall time (then --resume)")
    p.add_argument("--keep", type=int, default=2, help="checkpoints kept")
    p.add_argument(
        "--resume", nargs="?", const="latest", metavar="CKPT",
        help="continue from the latest checkpoint in OUT/checkpoints (or the given file)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of data order, clip sampling, posterior, frame draws")
    p.add_argument("--device", help="cuda / cpu (default: cuda if available)")
    p.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on GPU")
    p.add_argument("--no-grad-checkpointing", action="store_true", help="keep activations (more memory)")
    p.add_argument("--official-quirk", action="store_true", help="official depth-gradient axes (frames, rows)")
    p.add_argument("--student-rgb", choices=("frames", "decoded"), default="frames",
                   help="the student's RGB branch sees the clip's frames (official) or their VAE decode, as at "
                   "generation (for a lossy VAE)")  # fmt: skip
    p.add_argument(
        "--loss-weight", action="append", default=[], metavar="TERM=VALUE",
        help="override one distillation weight (repeatable), e.g. depth_grad=0.05; defaults: the paper's",
    )  # fmt: skip
    p.add_argument("--object-weight", type=float, default=1.0, metavar="W",
                   help="weight of object pixels (saturated: the world judge's) in the pixel-aligned terms; 1: the "
                   "paper's plain means")  # fmt: skip
    p.add_argument(
        "--official-compat", action="store_true", help="re-add the DINO position embedding at the stitch (official)"
    )
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers per process")
    p.add_argument("--wandb", metavar="PROJECT", help="also log to this wandb project")
    p.add_argument("--export-official", action="store_true", help="also write anysplat_stitched.pth at the end")
    p.set_defaults(func=run_train)


def _register_convert(steps: argparse._SubParsersAction) -> None:
    p = steps.add_parser(
        "convert",
        help="trained folder -> official .pth / merged .safetensors, or official .pth -> our folder",
        description="Convert stitched-decoder checkpoints. Linear LoRA layouts coincide; conv LoRA is refactorised "
        "(exact from ours to official; official to ours is exact only when each conv delta has rank <= r, "
        "otherwise use --to merged via the official loader). See docs/stitching.md.",
    )
    p.add_argument("source", type=Path, help="our trained folder (stitched.json) or an official .pth")
    p.add_argument("--to", choices=("official", "merged", "ours"), required=True)
    p.add_argument("--out", type=Path, required=True, help="output file (.pth / .safetensors) or folder (ours)")
    p.add_argument("--like", type=Path, help="official -> ours/merged: a trained folder whose stitched.json describes the model")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run_convert)


def _register_generate_set(steps: argparse._SubParsersAction) -> None:
    from vist3a.models.text_cache import add_text_cache_args

    p = steps.add_parser(
        "generate-set",
        help="the DiT's latents and their VAE decode for world captions: a set to distil on (--dataset generated:DIR)",
        description="Generate one clip per procedural-world caption with a text-to-3D pipeline's DiT and VAE (no 3D "
        "stage) and write its raw latent and decoded frames, so that `stitch train --dataset generated:DIR` distils "
        "the stitched decoder on the latents generation feeds it (docs/stitching.md). Resumable: clips already "
        "written are kept.",
    )
    p.add_argument("--model", default="mini", help="pipeline name or folder for vist3a.load_pipeline (default mini)")
    p.add_argument("--world", type=int, required=True, metavar="N", help="captions: the first N of the world set")
    p.add_argument("--world-seed", type=int, default=3, help="world set of the captions (default 3; held out: 7919)")
    p.add_argument("--style", default="short", help="caption style of the world's samples (default short)")
    p.add_argument("--per-caption", type=int, default=1, metavar="K",
                   help="clips per caption, each from its own seed (default 1)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="generation seed of clip j is SEED + j (default 0)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the pipeline's)")
    p.add_argument("--out", type=Path, required=True, help="folder of the set")
    p.add_argument("--batch-size", type=int, default=1,
                   help="clips denoised and decoded together (default 1; 16-64 on a GPU)")  # fmt: skip
    add_text_cache_args(p, "the set's captions", "generating")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_generate_set)


def run_generate_set(args: argparse.Namespace) -> int:
    """``vist3a stitch generate-set``: captions of the world set → the DiT's raw latents + decoded frames."""
    from vist3a.eval.text_to_3d import world_scenes
    from vist3a.pipelines import load_pipeline
    from vist3a.stitching.generated import write_generated_set
    from vist3a.train import HELD_OUT_SEED

    if args.world_seed == HELD_OUT_SEED:
        raise InputError(f"--world-seed {HELD_OUT_SEED} is the held-out evaluation set: distil on another one")
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps must be >= 1, got {args.steps}")
    if args.batch_size < 1 or args.per_caption < 1:
        raise InputError(f"--batch-size and --per-caption must be >= 1, got {args.batch_size} and {args.per_caption}")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} is a file; the set is a folder")
    if args.text_cache and args.write_text_cache:
        raise InputError("--text-cache reads a cache, --write-text-cache writes one: give one of them")
    if args.text_cache and not args.text_cache.expanduser().is_file():  # before any model loads
        raise InputError(f"--text-cache {args.text_cache}: file not found")
    scenes = world_scenes(args.world, args.world_seed, 0, style=args.style)
    prompts = [s.prompt for s in scenes]
    if args.write_text_cache:
        from vist3a.models.text_cache import write_text_cache
        from vist3a.pipelines.loading import load_text_encoder, pipeline_settings

        st = pipeline_settings(args.model)
        texts = list(dict.fromkeys(st.full_prompt(p, True) for p in prompts))
        path = write_text_cache(load_text_encoder(args.model, device=args.device or "cpu"), texts,
                                args.write_text_cache, negative=st.negative_prompt)  # fmt: skip
        print(f"wrote {len(texts) + 1} caption embeddings to {path}")
        return 0
    pipe = load_pipeline(args.model, device=args.device or "auto", text_cache=args.text_cache)
    if args.text_cache:
        from vist3a.models.text_cache import require_cached

        texts = [pipe.settings.full_prompt(p, True) for p in prompts]
        if pipe.settings.guidance_scale != 1.0:
            texts.append(pipe.settings.negative_prompt)
        require_cached(pipe.video.text_encoder, texts, args.text_cache,
                       "write it with --write-text-cache and the same --world, --world-seed and --style")  # fmt: skip
    if args.steps is not None:
        pipe = pipe.with_settings(steps=args.steps)
    clips = [p for p in prompts for _ in range(args.per_caption)]
    out = write_generated_set(pipe, clips, [args.seed + j for j in range(len(clips))], args.out,
                              progress=not args.no_progress, batch_size=args.batch_size)  # fmt: skip
    print(f"wrote {len(clips)} clips to {out}")
    return 0


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["embed_dim=48", "intermediate_layer_idx=0,0,1,1"]`` → typed values (int, float, bool, int tuples)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--recon-set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = _typed(text.strip())
    return out


def _typed(text: str) -> Any:
    if "," in text:
        return tuple(_typed(t) for t in text.split(",") if t)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def resolve_init(path: Path, layer: str | None) -> tuple[dict[str, torch.Tensor], str | None, str | None]:
    """``--init``: a layer-search folder (``report.json`` → best layer, or ``--layer``) or a file.

    Returns ``(state, layer, spec)``; layer/spec come from the file's metadata when present.
    """
    import json

    from vist3a.stitching.search import load_init

    if path.is_dir():
        if layer is None:
            report = path / "report.json"
            if not report.is_file():
                raise InputError(f"--init {path}: no report.json to pick the best layer from; pass --layer")
            layer = json.loads(report.read_text()).get("best_layer")
        candidates = [path / f"init_{layer}.safetensors", path / f"state_dict_{layer}.pt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise InputError(f"--init {path}: no init for layer {layer} (looked for {[c.name for c in candidates]})")
        path = found
    state, meta = load_init(path)
    stem = path.stem
    guess = stem.split("init_", 1)[-1] if stem.startswith("init_") else stem.split("state_dict_", 1)[-1]
    return state, layer or meta.get("layer") or (guess if guess.startswith("enc_blocks_") else None), meta.get("spec")


def build_training_models(args: argparse.Namespace, device: torch.device, frames: int) -> tuple[Any, Any, Any, dict]:
    """``(student, teacher, video, model_meta)`` for ``vist3a stitch train`` (LoRA not yet added)."""
    from vist3a import registry
    from vist3a.stitching.stitched import StitchedDecoder
    from vist3a.stitching.train import make_teacher

    video = _build(args.video, device, args.video_weights, components=("vae",), seed=args.seed)
    if not hasattr(video, "encode"):
        raise InputError(f"preset {args.video!r} has no encode(video); pick a video model preset")
    video.requires_grad_(False)
    sets = parse_sets(args.recon_set)
    meta: dict[str, Any] = {
        "video": args.video, "video_weights": args.video_weights, "recon": args.recon, "stitched": args.stitched,
        "recon_weights": args.recon_weights, "recon_overrides": sets,
    }  # fmt: skip
    tf = int(getattr(video, "temporal_ratio", 4))
    if args.init_stitched:
        return _warm_start(args, video, device, frames, sets, meta)
    if args.stitched:
        kw: dict[str, Any] = dict(sets)
        if args.recon_weights:
            kw["recon_weights"] = args.recon_weights
        elif not (args.stitched == "stitched-mini" and shipped_folder("anysplat-mini") and not sets):
            log.warning("%s: no --recon-weights, the base network is randomly initialised", args.stitched)
        # a fresh stitching layer unless an official checkpoint is given: the shipped mini decoder already
        # carries its LoRA, and the teacher must be the base network without it
        kw["weights"] = args.stitched_weights
        student = registry.build(args.stitched, device=device, **kw)
        if args.official_compat:
            student.official_compat = True
        if args.init:
            state, _, _ = resolve_init(args.init, args.layer or student.layer)
            _load_conv(student, state)
        size = _video_size(args, student, video, frames, f"--stitched {args.stitched}")
    else:
        if args.init is None:
            raise InputError("--recon needs --init (the layer-search output) to initialise the stitching layer")
        if not args.recon_weights:
            log.warning("%s: no --recon-weights, using a random initialisation (only useful for testing)", args.recon)
        kw = dict(sets)
        if args.recon_weights:
            kw["weights"] = args.recon_weights
        recon = registry.build(args.recon, device=device, **kw)
        state, layer, spec = resolve_init(args.init, args.layer)
        spec = args.spec or spec
        if layer is None or spec is None:
            raise InputError("the init does not name its layer/spec (an official .pt?): pass --layer and --spec")
        recon_size = args.recon_resolution or recon.config.image_size
        patch = recon.config.patch_size
        if recon_size % patch:
            raise InputError(f"--recon-resolution {recon_size} is not a multiple of the patch size {patch}")
        size = args.resolution or (recon_size // patch) * 16
        latent = tuple(int(v) for v in video.latent_shape(1, frames, size, size)[1:])
        with torch.device(device):
            student = StitchedDecoder(recon, spec, layer, latent, time_factor=tf,
                                      official_compat=args.official_compat, image_size=recon_size)  # fmt: skip
        _load_conv(student, state)
    teacher = make_teacher(student)
    meta["resolution"] = size
    return student, teacher, video, meta


def _warm_start(args: argparse.Namespace, video: Any, device: torch.device, frames: int, sets: dict[str, Any],
                meta: dict[str, Any]) -> tuple[Any, Any, Any, dict]:  # fmt: skip
    """``--init-stitched``: the trained decoder's layer, spec, LoRA and state over the ``--recon`` network."""
    import copy

    from vist3a import registry
    from vist3a.stitching import export

    if args.stitched or args.init or args.layer or args.spec:
        raise InputError("--init-stitched brings its own layer, spec and stitching layer: drop --stitched/--init/--layer/--spec")
    doc = export.read_config(args.init_stitched)
    lora = doc["decoder"].get("lora") or {}
    if lora:
        log.info("--init-stitched: its LoRA (rank %s, alpha %s) is continued; --lora is not used", lora.get("rank"),
                 lora.get("alpha"))  # fmt: skip
    kw = dict(sets)
    if args.recon_weights:
        kw["weights"] = args.recon_weights
    recon = registry.build(args.recon, device=device, **kw)
    teacher = copy.deepcopy(recon).eval().requires_grad_(False)  # the base before the init's LoRA wraps it
    student = export.load_trained(args.init_stitched, device, recon=recon)
    if args.recon_resolution and args.recon_resolution != student.image_size:
        raise InputError(f"--recon-resolution {args.recon_resolution}: {args.init_stitched} was trained at {student.image_size}")
    meta["resolution"] = _video_size(args, student, video, frames, str(args.init_stitched))
    meta["init_stitched"] = str(args.init_stitched)
    return student.train(), teacher, video, meta


def _video_size(args: argparse.Namespace, student: Any, video: Any, frames: int, what: str) -> int:
    """The VAE input side for a decoder built beforehand (``--resolution`` or 16 per recon token), checked against the
    latent grid the decoder was built for."""
    recon_size = args.recon_resolution or student.image_size
    size = args.resolution or (recon_size // student.recon.config.patch_size) * 16
    latent = tuple(int(v) for v in video.latent_shape(1, frames, size, size)[1:])
    if latent[0] != student.latent_grid[0] or latent[2:] != tuple(student.latent_grid[2:]):
        raise InputError(f"{what} expects latents {list(student.latent_grid)}, the video gives {list(latent)}")
    return size


def _load_conv(student: Any, state: dict[str, torch.Tensor]) -> None:
    conv = student.stitching_layer
    for k in ("weight", "bias"):
        if tuple(state[k].shape) != tuple(getattr(conv, k).shape):
            raise InputError(
                f"--init {k} has shape {list(state[k].shape)}, the stitching layer {student.spec} needs "
                f"{list(getattr(conv, k).shape)}"
            )
    with torch.no_grad():
        conv.weight.copy_(state["weight"])
        conv.bias.copy_(state["bias"])


def run_train(args: argparse.Namespace) -> int:
    from vist3a.stitching.distill import DistillWeights
    from vist3a.stitching.lora import parse_lora_config
    from vist3a.stitching.train import TrainConfig, parse_frames, prepare_models, train_stitched
    from vist3a.train import distributed

    frames = parse_frames(args.frames)
    if any(parse_dataset_arg(d)[0] == "generated" for d in args.dataset or ()) and len(frames) > 1:
        raise InputError(f"--dataset generated: trains at the set's own frame count; --frames {args.frames} draws "
                         "several (pass the one the set was made with)")  # fmt: skip
    weights = DistillWeights().with_overrides(args.loss_weight)
    config = TrainConfig(
        out=args.out, steps=args.steps, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
        batch=args.batch, frames=frames, ckpt_every=args.ckpt_every, keep=args.keep, seed=args.seed, minutes=args.minutes,
        bf16=not args.no_bf16, grad_checkpointing=not args.no_grad_checkpointing,
        official_quirk=args.official_quirk, num_workers=args.workers, wandb_project=args.wandb, weights=weights,
        student_rgb=args.student_rgb, object_weight=args.object_weight,
    )  # fmt: skip
    config.check()
    parse_lora_config(args.lora)  # fail before loading anything
    if args.world is not None and args.world < 1:
        raise InputError(f"--world must be >= 1, got {args.world}")
    resume = False if args.resume is None else (True if args.resume == "latest" else Path(args.resume))
    if resume is False and (args.out / "checkpoints" / "latest").is_file():
        raise InputError(f"{args.out} already holds checkpoints: pass --resume to continue, or pick a new --out")
    ctx = distributed.init(args.device)
    try:
        torch.manual_seed(args.seed)  # identical random inits on every rank (DDP also broadcasts)
        student, teacher, video, meta = build_training_models(args, ctx.device, max(frames))
        prepare_models(student, teacher, args.lora, config.grad_checkpointing)
        size, recon_size = meta["resolution"], student.image_size
        if args.world is not None:
            from vist3a.world import WorldDataset

            dataset: Any = WorldDataset(args.world, seed=args.world_seed, frames=max(frames), size=size)
        else:
            dataset = make_dataset(args.dataset, max(frames), max(args.window, max(frames)), size, recon_size,
                                   args.protocol, color_jitter=not args.no_jitter)  # fmt: skip
        if ctx.is_main:
            n_train = sum(p.numel() for p in student.parameters() if p.requires_grad)
            log.info("stitch train: %d clips, VAE %d², recon %d², frames %s, %d trainable parameters, %d process(es)",
                     len(dataset), size, recon_size, list(frames), n_train, ctx.world_size)  # fmt: skip
        result = train_stitched(student, teacher, video, dataset, config, ctx=ctx, recon_size=recon_size,
                                resume=resume, model_meta=meta)  # fmt: skip
        if ctx.is_main:
            if args.export_official:
                from vist3a.stitching.export import save_official

                save_official(student, args.out / "anysplat_stitched.pth")
            last = f"{result.losses[-1]:.5g}" if result.losses else "n/a"
            print(f"trained {result.step} steps (final loss {last}); wrote {args.out}/stitched.safetensors, "
                  f"stitched.json, checkpoints/, tb/")  # fmt: skip
    finally:
        distributed.shutdown()
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from vist3a.stitching import export

    src: Path = args.source
    if src.is_dir():
        dec = export.load_trained(src, device=args.device)
        if args.to == "official":
            export.save_official(dec, args.out)
        elif args.to == "merged":
            export.save_merged(dec, args.out)
        else:
            raise InputError(f"{src} is already in our format")
        print(f"wrote {args.out}")
        return 0
    if not src.is_file():
        raise InputError(f"{src} does not exist")
    if args.like is None:
        raise InputError("converting an official checkpoint needs --like FOLDER (a stitched.json naming the model)")
    doc = export.read_config(args.like)
    if args.to == "official":
        raise InputError(f"{src} is already an official checkpoint")
    if args.to == "merged":
        plain = dict(doc, decoder={**doc["decoder"], "lora": None})
        dec = export.build_decoder(plain, args.device)
        lora = doc["decoder"].get("lora") or {}
        from vist3a.stitching.lora import LoraSpec

        dec.load_official(src, LoraSpec(**{**lora, "targets": tuple(lora.get("targets") or ())}))
        export.save_merged(dec, args.out)
    else:
        dec = export.build_decoder(doc, args.device)
        errors = export.from_official(dec, src)
        export.save_trained(dec, args.out, {k: v for k, v in doc.items() if k not in ("format", "decoder")})
        if errors:
            print(f"conv LoRA refactorised: largest relative error {max(errors.values()):.2g}")
    print(f"wrote {args.out}")
    return 0
