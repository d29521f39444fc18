"""``vist3a view SCENE [--cameras cameras.json] [--host 127.0.0.1] [--port N]``: the scene in the browser."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from vist3a.viewer.server import DEFAULT_HOST, DEFAULT_PORT

    p = subparsers.add_parser(
        "view",
        help="interactive 3D viewer in the browser (splats, camera frusta, fly-through)",
        description=(
            "Serve an interactive viewer of a Gaussian-splat scene (.ply, .spz, .splat, or 'example') with viser: "
            "the splats, the frusta of the trajectory's cameras and buttons that play the fly-through. "
            "A cameras.json beside the scene is used unless --cameras is given; without cameras the "
            "fly-through orbits the scene. Works offline (the web client ships with viser). Binds to "
            "127.0.0.1 by default: only this machine can open the page."
        ),
    )
    p.add_argument("scene", metavar="SCENE", help="scene file (.ply, .spz, .splat) or 'example'")
    p.add_argument("--cameras", default=None, help="cameras.json of the trajectory (default: one beside SCENE)")
    p.add_argument("--no-cameras", action="store_true", help="ignore a cameras.json beside the scene")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--frames-per-view", type=int, default=15, help="fly-through frames between cameras (15)")
    p.add_argument("--max-splats", type=int, default=2_000_000, help="subsample larger scenes for the browser")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vist3a.errors import InputError
    from vist3a.gaussians.cameras import Cameras
    from vist3a.gaussians.formats import load_scene, resolve_scene_path
    from vist3a.viewer.server import check_port, import_viser, start_server, url_of
    from vist3a.viewer.view import SceneViewer

    import_viser()
    check_port(args.host, args.port)  # before reading a large scene
    scene_path = resolve_scene_path(args.scene)
    gaussians = load_scene(scene_path)
    cameras = None
    if args.cameras:
        cameras = Cameras.load_json(args.cameras)
    elif not args.no_cameras and (scene_path.parent / "cameras.json").is_file():
        cameras = Cameras.load_json(scene_path.parent / "cameras.json")
        log.info("using the cameras in %s", scene_path.parent / "cameras.json")
    if args.max_splats < 1:
        raise InputError(f"--max-splats must be >= 1, got {args.max_splats}")
    if args.frames_per_view < 1:
        raise InputError(f"--frames-per-view must be >= 1, got {args.frames_per_view}")
    server = start_server(args.host, args.port, label="vist3a view")
    try:
        SceneViewer(
            server, gaussians, cameras, title=Path(scene_path).name, frames_per_view=args.frames_per_view,
            max_splats=args.max_splats,
        )  # fmt: skip
        print(f"vist3a view: open {url_of(server)} in a browser (Ctrl+C to stop)", flush=True)
        while True:
            time.sleep(3600)
    finally:
        server.stop()
