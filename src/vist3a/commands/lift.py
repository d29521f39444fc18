"""``vist3a lift VIDEO|FRAMES_DIR``: a video → 3D Gaussians through the stitched decoder (VAE latent → 3D).

The frames are cropped to the VAE size, cut to a 1+4k frame count (reported), encoded by the video
VAE, and decoded by the stitched decoder; the Gaussian head's RGB branch sees the same frames at the
reconstruction size. Writes ``scene.ply``, ``cameras.json``, ``video.mp4`` (a render along the
predicted cameras) and ``lift.json`` (what was done)::

    vist3a lift clip.mp4 --model anysplat-stitched --weights anysplat_stitched.pth \\
        --recon-weights lhjiang/anysplat --video-model wan2.1-t2v-1.3b --video-weights Wan-AI/... --out lifted
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from vist3a.commands.generate import add_camera_guard_flag

    p = subparsers.add_parser(
        "lift",
        help="a video or frame folder -> 3D Gaussians through the stitched decoder (VAE latent -> 3D)",
        description="Encode a video with the video VAE and decode its latent with a stitched decoder into 3D "
        "Gaussians and cameras. Writes scene.ply, cameras.json, video.mp4 and lift.json into --out.",
    )
    p.add_argument("source", type=Path, metavar="VIDEO|FRAMES_DIR", help="a video file or a folder of frames")
    p.add_argument(
        "--model", default="stitched-mini",
        help="stitched decoder: a preset (stitched-mini, anysplat-stitched) or a folder from `vist3a stitch train`",
    )  # fmt: skip
    p.add_argument("--weights", help="preset weights (anysplat-stitched: the official anysplat_stitched.pth)")
    p.add_argument("--recon-weights", help="anysplat-stitched: AnySplat base weights (e.g. lhjiang/anysplat)")
    p.add_argument("--video-model", default="wan-mini", help="video model preset whose VAE encodes (wan-mini, ...)")
    p.add_argument("--video-weights", help="weights of the video model (diffusers folder or HF id)")
    p.add_argument("--out", type=Path, default=Path("lifted"), help="output folder (created if missing)")
    p.add_argument("--frames", type=int, help="frame count, 1+4k (default: the decoder's native count or fewer)")
    p.add_argument("--sampling", choices=("uniform", "first"), default="uniform", help="which frames to take")
    p.add_argument("--resolution", type=int, help="VAE input side (default: 16 x decoder tokens per side)")
    add_camera_guard_flag(p, "90 for stitched-mini, off otherwise")
    p.add_argument("--sample", action="store_true", help="posterior sample instead of the posterior mean")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample")
    p.add_argument("--no-voxelize", action="store_true", help="one Gaussian per pixel (no voxel fusion)")
    p.add_argument("--formats", default="ply", help="scene formats: ply[,spz,splat]")
    p.add_argument("--frames-per-view", type=int, default=None,
                   help="render frames per camera pair (default as `generate`: 10 on CUDA, 2 on CPU; 0 = no video)")
    p.add_argument("--orbit-frames", type=int, default=0, help="frames of an extra orbit video (0 = none)")
    p.add_argument("--preview-splats", type=int, default=None,
                   help="the video renders the scene merged to at most N splats (default as `generate`: all on "
                        "CUDA, 40000 on CPU; 0 = all)")
    p.add_argument("--fps", type=float, default=20.0)
    p.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', ...")
    p.set_defaults(func=run)


def load_decoder(model: str, weights: str | None, recon_weights: str | None, device: torch.device) -> Any:
    """A stitched decoder from a preset name or a trained folder (``stitched.json``)."""
    from vist3a import registry
    from vist3a.stitching.export import CONFIG_FILE, load_trained

    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise InputError(f"--model {path} is a folder without {CONFIG_FILE} (not a `vist3a stitch train` output)")
        return load_trained(path, device=device)
    if model not in registry.names():
        raise InputError(f"--model {model!r} is neither a folder nor a preset ({', '.join(registry.names())})")
    kw: dict[str, Any] = {}
    if weights:
        kw["weights"] = weights
    if recon_weights:
        kw["recon_weights"] = recon_weights
    if not weights:
        log.warning("%s: no --weights given, the stitched decoder is randomly initialised (output is meaningless)",
                    model)  # fmt: skip
    dec = registry.build(model, device=device, **kw)
    if not hasattr(dec, "stitching_layer"):
        raise InputError(f"--model {model!r} is not a stitched decoder preset")
    return dec


def guard_default(model: str) -> float | None:
    """The camera guard of ``--model``: the mini generator's (``MINI_CAMERA_GUARD_DEG``) for the shipped
    stitched-mini, whose camera head breaks on some frame-filling objects (docs/mini.md); off otherwise."""
    from vist3a.pipelines.loading import MINI_CAMERA_GUARD_DEG

    return MINI_CAMERA_GUARD_DEG if model == "stitched-mini" else None


def run(args: argparse.Namespace) -> int:
    from vist3a.commands.generate import check_camera_guard, export_defaults
    from vist3a.commands.reconstruct import _device
    from vist3a.commands.stitch import _build
    from vist3a.pipelines.export import export_scene, parse_formats, write_json
    from vist3a.pipelines.lift import lift, prepare_frames

    out = args.out.expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out must be a folder, got the file {out}")
    if not args.source.exists():
        raise InputError(f"no such video or frame folder: {args.source}")
    formats = parse_formats(args.formats)
    for flag in ("frames_per_view", "orbit_frames", "preview_splats"):
        if (getattr(args, flag) or 0) < 0:
            raise InputError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    check_camera_guard(args.camera_guard)
    guard = guard_default(args.model) if args.camera_guard is None else (args.camera_guard or None)
    device = _device(args.device)
    vd = export_defaults(device)
    decoder = load_decoder(args.model, args.weights, args.recon_weights, device)
    video_model = _build(args.video_model, device, args.video_weights, components=("vae",), seed=args.seed)
    if not hasattr(video_model, "encode"):
        raise InputError(f"--video-model {args.video_model!r} has no VAE encoder")
    tf = int(decoder.time_factor)
    patch = decoder.recon.config.patch_size
    recon_size = decoder.image_size
    size = args.resolution or (recon_size // patch) * 16
    native = (decoder.latent_grid[1] - 1) * tf + 1
    inp = prepare_frames(args.source, size, recon_size, args.frames, max_frames=native, sampling=args.sampling,
                         time_factor=tf)  # fmt: skip
    latent_hw = tuple(video_model.latent_shape(1, inp.video.shape[2], size, size)[3:])
    if latent_hw != tuple(decoder.latent_grid[2:]):
        raise InputError(
            f"a {size}x{size} video gives a {latent_hw[0]}x{latent_hw[1]} latent, the decoder expects "
            f"{decoder.latent_grid[2]}x{decoder.latent_grid[3]}; use --resolution {decoder.latent_grid[2] * (size // latent_hw[0])}"
        )
    for note in inp.notes:
        print(f"lift: {note}")
    decoder.recon.set_voxelize(not args.no_voxelize)
    rec = lift(inp, video_model, decoder, sample=args.sample, seed=args.seed, camera_guard_deg=guard)
    gaussians, cameras = rec.gaussians[0].detach().to("cpu"), rec.cameras[0].to("cpu")
    out.mkdir(parents=True, exist_ok=True)
    fpv = vd.frames_per_view if args.frames_per_view is None else args.frames_per_view
    preview = vd.preview_splats if args.preview_splats is None else args.preview_splats
    report = export_scene(out, gaussians, cameras, formats=formats, frames_per_view=fpv, orbit_frames=args.orbit_frames,
                          fps=args.fps, device=device, preview_splats=preview, tile_size=vd.tile_size)  # fmt: skip
    write_json(out / "lift.json", {
        "source": str(args.source), "frame_indices": inp.indices, "frames": len(inp.indices),
        "vae_size": size, "recon_size": recon_size, "notes": inp.notes, "model": args.model,
        "video_model": args.video_model, "gaussians": len(gaussians), "files": sorted(report.files),
        "camera_guard_deg": guard, "camera_guarded": bool(rec.guarded and rec.guarded[0]),
    })  # fmt: skip
    for name in sorted(report.files):
        print(f"wrote {report.files[name]}")
    return 0
