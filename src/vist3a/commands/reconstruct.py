"""``vist3a reconstruct IMAGES...|VIDEO``: multi-view images or a video → 3D Gaussians with AnySplat.

Writes ``scene.ply`` (INRIA layout), ``cameras.json`` (the predicted context cameras, OpenCV c2w) and
``video.mp4`` rendered along a smooth path through the predicted cameras.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vist3a.errors import InputError, MissingWeightsError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="multi-view images or a video -> 3D Gaussians (AnySplat)",
        description=(
            "Reconstruct a 3D Gaussian scene from unposed images (or frames of one video) with AnySplat. "
            "Images are resized (aspect kept) so the short side matches the model, then centre-cropped. "
            "Writes scene.ply, cameras.json and video.mp4 into --out."
        ),
    )
    p.add_argument(
        "inputs", nargs="+", metavar="IMAGES|VIDEO", help="image files, a folder of images, or one video"
    )
    p.add_argument(
        "--model",
        default="anysplat",
        help="'anysplat' (weights lhjiang/anysplat), 'anysplat-mini', or a weights file/folder (default: anysplat)",
    )
    p.add_argument(
        "--weights", default=None, help="weights file, folder or Hugging Face id (overrides the default)"
    )
    p.add_argument("--out", default="reconstruction", help="output folder (created if missing)")
    p.add_argument(
        "--size", type=int, default=None, help="square input side, a multiple of 14 (default: the model's)"
    )
    p.add_argument("--frames", type=int, default=8, help="frames sampled evenly from a video (default 8)")
    p.add_argument("--max-views", type=int, default=64, help="refuse more input views than this (default 64)")
    p.add_argument("--no-voxelize", action="store_true", help="keep one Gaussian per pixel (no voxel fusion)")
    p.add_argument("--video-frames", type=int, default=96, help="frames of the rendered video; 0 = no video")
    p.add_argument("--preview-splats", type=int, default=None,
                   help="the video renders the scene merged to at most N splats (default: all on CUDA, 40000 on "
                        "CPU, as `generate`; 0 = all)")
    p.add_argument("--fps", type=float, default=24.0, help="video frame rate")
    p.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ..."
    )
    p.add_argument("--offline", action="store_true", help="never download weights (use the local cache only)")
    p.add_argument(
        "--random-weights", action="store_true", help="smoke test only: random weights, meaningless output"
    )
    p.set_defaults(func=run)


# --- inputs ----------------------------------------------------------------------------------------


def center_crop_resize(image: np.ndarray, size: int) -> torch.Tensor:
    """``[H,W,3]`` uint8/float image → ``[3,size,size]`` float in [0,1]: short side to ``size`` (bicubic,
    antialiased, aspect kept), then a centre crop."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise InputError(f"expected an RGB image, got an array of shape {list(image.shape)}")
    x = torch.from_numpy(np.ascontiguousarray(image[..., :3]))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    x = x.permute(2, 0, 1)[None]  # 1,3,H,W
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[0, :, top : top + size, left : left + size].clamp(0.0, 1.0)


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        return np.asarray(iio.imread(path))
    except Exception as exc:  # unreadable or not an image
        raise InputError(f"cannot read image {path}: {exc}") from exc


def _read_video(path: Path, count: int) -> list[np.ndarray]:
    import imageio.v3 as iio

    try:
        frames = [np.asarray(f) for f in iio.imiter(path)]
    except Exception as exc:
        raise InputError(f"cannot read video {path}: {exc}") from exc
    if not frames:
        raise InputError(f"video {path} has no frames")
    idx = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return [frames[i] for i in idx]


def collect_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders into their images (sorted); check that everything exists; one video or images."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise InputError(f"input not found: {p}")
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    if videos and len(paths) > 1:
        raise InputError("give either one video or several images, not both")
    if not paths:
        raise InputError("no input views")
    return paths


def load_views(inputs: Sequence[str | os.PathLike[str]], size: int, video_frames: int = 8) -> torch.Tensor:
    """Image files, folders of images or one video → ``[1, V, 3, size, size]`` in [0, 1]."""
    paths = collect_inputs(inputs)
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        if video_frames < 2:
            raise InputError(f"--frames must be at least 2, got {video_frames}")
        arrays = _read_video(videos[0], video_frames)
    else:
        arrays = [_read_image(p) for p in paths]
    return torch.stack([center_crop_resize(a, size) for a in arrays])[None]


# --- model -----------------------------------------------------------------------------------------


def load_model(name: str, weights: str | None, device: torch.device, random_weights: bool, offline: bool):
    """Build the reconstruction model named on the command line (see ``--model``)."""
    from vist3a.models import anysplat as A

    kw = {"allow_download": not offline}
    if name in ("anysplat", "anysplat-mini"):
        builder = A.anysplat if name == "anysplat" else A.anysplat_mini
        if random_weights:
            log.warning("using RANDOM weights: the output is meaningless (smoke test)")
            return builder(device=device, weights=None)
        if weights is None:
            if name == "anysplat":
                weights = A.HF_REPO
            else:
                from vist3a.mini_assets import mini_assets, shipped_folder

                shipped = shipped_folder("anysplat-mini")
                if shipped is None:
                    raise MissingWeightsError(
                        f"anysplat-mini weights are not shipped with this install ({mini_assets()}): train them "
                        "(`vist3a world train-mini`) or pass --weights PATH"
                    )
                return A.from_pretrained(shipped, device=device)
        p = Path(weights).expanduser()
        if p.exists() and (p / A.MODEL_JSON).is_file():
            return A.from_pretrained(p, device=device)
        return builder(device=device, weights=weights, **kw)
    p = Path(name).expanduser()
    if not p.exists():
        raise InputError(
            f"--model must be 'anysplat', 'anysplat-mini' or an existing weights path, got {name!r}"
        )
    return A.from_pretrained(p, device=device, **({} if (p / A.MODEL_JSON).is_file() else kw))


def _device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError as exc:
        raise InputError(f"bad --device {spec!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda requested but no CUDA device is available")
    return dev


def run(args: argparse.Namespace) -> int:
    from vist3a.gaussians.formats import save_scene

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out must be a folder, got the file {out}")
    if args.video_frames < 0 or (args.preview_splats or 0) < 0:
        raise InputError("--video-frames and --preview-splats must be >= 0")
    device = _device(args.device)
    collect_inputs(args.inputs)  # fail on a missing input before loading a large model
    model = load_model(args.model, args.weights, device, args.random_weights, args.offline)
    size = args.size or model.config.image_size
    if size % model.config.patch_size:
        raise InputError(f"--size must be a multiple of {model.config.patch_size}, got {size}")
    images = load_views(args.inputs, size, args.frames)
    if images.shape[1] > args.max_views:
        raise InputError(f"{images.shape[1]} views exceed --max-views {args.max_views}")
    model.set_voxelize(not args.no_voxelize)
    log.info("reconstructing %d views at %dx%d on %s", images.shape[1], size, size, device)
    rec = model.reconstruct(images.to(device))
    gaussians, cameras = rec.gaussians[0].detach().to("cpu"), rec.cameras[0].to("cpu")

    out.mkdir(parents=True, exist_ok=True)
    report = save_scene(gaussians, out / "scene.ply")
    cameras.save_json(out / "cameras.json")
    written = [out / "cameras.json"]
    if args.video_frames > 0:
        from vist3a.commands.generate import export_defaults
        from vist3a.pipelines.export import reduce_splats, render_frames
        from vist3a.video_io import write_video

        vd = export_defaults(device)
        budget = vd.preview_splats if args.preview_splats is None else args.preview_splats
        preview = reduce_splats(rec.gaussians[0].detach(), budget, cameras=cameras).to(device, torch.float32)
        frames = render_frames(preview, cameras.interpolate(args.video_frames), 1.0, "rendering video", True,
                               vd.tile_size)  # fmt: skip
        write_video(frames, out / "video.mp4", fps=args.fps)
        written.append(out / "video.mp4")
    print(report.summary())
    for p in written:
        print(f"wrote {p}")
    return 0
