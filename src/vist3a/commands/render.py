"""``vist3a render SCENE (--orbit N | --cameras cameras.json) --out video.mp4|anim.gif|frames/``.

Renders a Gaussian-splat scene file (.ply / .splat / .spz, or ``example`` for the shipped scene)
along an automatic orbit or the cameras of a ``cameras.json`` and writes an mp4, a GIF or a folder
of PNG frames.

Automatic orbit (``--orbit N``): the target is the opacity-weighted per-axis median of the means; the
radius makes the sphere holding 90 % of the (opacity-weighted) splats fill the view, or is
``--radius``. The up axis is ``--up``; ``auto`` takes +z (vist3a's procedural world, Blender) unless
the scene is flat along y — the signature of a reconstruction stored in OpenCV camera axes (y down,
as AnySplat / COLMAP / VIST3A outputs are) — in which case it takes −y.
"""

from __future__ import annotations

import argparse
import logging

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import UP_AXES, auto_up  # noqa: F401 - auto_up re-exported for callers

log = logging.getLogger(__name__)

NAMED_COLORS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5), "gray": (0.5, 0.5, 0.5)}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a scene file to a video, GIF or PNG frames",
        description=(
            "Render a 3D Gaussian-splat scene (.ply, .splat, .spz, or 'example') along an automatic orbit "
            "(--orbit N) or the cameras in a cameras.json (--cameras) and write an .mp4, a .gif or a folder of "
            "PNG frames (--out). Uses gsplat on CUDA when installed, else the PyTorch renderer."
        ),
    )
    p.add_argument("scene", metavar="SCENE", help="scene file (.ply, .splat, .spz) or 'example'")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--orbit", type=int, metavar="N", help="render N frames on a circle around the scene")
    src.add_argument("--cameras", metavar="JSON", help="render the cameras of a cameras.json file")
    p.add_argument("--out", required=True, help="output: video.mp4, anim.gif, or a folder for PNG frames")
    p.add_argument("--width", type=int, default=None, help="image width (orbit default 512; cameras: theirs)")
    p.add_argument("--height", type=int, default=None, help="image height (orbit default: = width)")
    p.add_argument("--fps", type=float, default=24.0, help="frames per second of the video (default 24)")
    p.add_argument("--radius", type=float, default=None, help="orbit radius (default: from the scene's extent)")
    p.add_argument("--elevation", type=float, default=20.0, help="orbit elevation in degrees (default 20)")
    p.add_argument("--fov", type=float, default=60.0, help="orbit horizontal field of view in degrees (default 60)")
    p.add_argument(
        "--up", choices=["auto", *UP_AXES], default="auto", help="world up axis of the orbit (default auto: +z or -y)"
    )
    p.add_argument(
        "--background", default="black", help="background: black, white, grey, a number in [0,1] or R,G,B (default black)"
    )
    p.add_argument("--backend", choices=["auto", "gsplat", "torch"], default="auto", help="renderer (default auto)")
    p.add_argument("--sh-degree", type=int, default=None, help="SH degree to use (default: the scene's)")
    p.add_argument("--antialiased", action="store_true", help="gsplat's antialiased mode (opacity compensation)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=run)


def parse_background(text: str) -> tuple[float, float, float]:
    """``black``/``white``/``grey``, one number, or ``R,G,B`` (each in [0,1]) → an RGB triple."""
    t = text.strip().lower()
    if t in NAMED_COLORS:
        return NAMED_COLORS[t]
    try:
        values = [float(v) for v in t.split(",")]
    except ValueError:
        raise InputError(f"--background {text!r}: use black, white, grey, a number or R,G,B in [0,1]") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise InputError(f"--background {text!r}: need one or three numbers in [0,1]")
    return values[0], values[1], values[2]


def orbit_for_scene(
    gaussians,  # noqa: ANN001 - Gaussians
    n: int,
    width: int,
    height: int,
    radius: float | None = None,
    elevation_deg: float = 20.0,
    fov_x_deg: float = 60.0,
    up: str = "auto",
):  # noqa: ANN201 - Cameras
    """An orbit of ``n`` cameras placed around ``gaussians`` (:meth:`Cameras.orbit_around`)."""
    from vist3a.gaussians.cameras import Cameras

    return Cameras.orbit_around(gaussians, n, width, height, radius, elevation_deg, fov_x_deg, up)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.formats import load_scene
    from vist3a.gaussians.render import render
    from vist3a.video_io import VideoWriter, output_kind

    output_kind(args.out)  # an unknown suffix fails before any work
    background = parse_background(args.background)
    for name in ("width", "height"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise InputError(f"--{name} must be positive, got {v}")
    if args.orbit is not None and args.orbit < 1:
        raise InputError(f"--orbit needs at least 1 frame, got {args.orbit}")
    if not 0 < args.fov < 180:
        raise InputError(f"--fov must be in (0, 180) degrees, got {args.fov}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    gaussians = load_scene(args.scene)
    if args.sh_degree is not None and not 0 <= args.sh_degree <= gaussians.sh_degree:
        raise InputError(f"--sh-degree {args.sh_degree}: the scene has SH degree {gaussians.sh_degree}")
    if args.orbit is not None:
        width = args.width or (args.height or 512)
        height = args.height or width
        cameras = orbit_for_scene(
            gaussians, args.orbit, width, height, args.radius, args.elevation, args.fov, args.up
        )
    else:
        cameras = Cameras.load_json(args.cameras)
        if args.width or args.height:
            width = args.width or max(1, round(cameras.width * args.height / cameras.height))
            height = args.height or max(1, round(cameras.height * args.width / cameras.width))
            cameras = cameras.resized(width, height)
    gaussians = gaussians.to(device)
    cameras = cameras.to(device)
    log.info("rendering %d splats, %d frames at %dx%d on %s", len(gaussians), len(cameras), cameras.width, cameras.height, device)

    backend_used = None
    with torch.no_grad(), VideoWriter(args.out, fps=args.fps) as writer:
        for i in tqdm(range(len(cameras)), desc="render", unit="frame"):
            out = render(
                gaussians, cameras[i], background=background, backend=args.backend, sh_degree=args.sh_degree,
                rasterize_mode="antialiased" if args.antialiased else "classic",
            )  # fmt: skip
            backend_used = out.backend
            writer.append(out.rgb[0])
    kind = {"mp4": "video", "gif": "GIF", "frames": "PNG frames"}[writer.kind]
    print(
        f"wrote {writer.path} ({kind}: {writer.count} frames, {cameras.width}x{cameras.height}, "
        f"{args.fps:g} fps, {backend_used} renderer)"
    )
    return 0
