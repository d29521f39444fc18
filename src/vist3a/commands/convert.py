"""``vist3a convert IN OUT``: convert a Gaussian-splat scene between .ply, .splat and .spz."""

from __future__ import annotations

import argparse

from vist3a.gaussians.formats import MIN_OPACITY, load_scene, save_scene, scene_format


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a scene between .ply, .splat and .spz",
        description=(
            "Convert a 3D Gaussian-splat scene between the INRIA .ply, antimatter15 .splat and Niantic .spz "
            "formats (chosen by suffix). IN may be 'example' for the scene shipped with vist3a. Splats with "
            "non-finite values or opacity below --min-opacity are dropped and counted."
        ),
    )
    p.add_argument("input", metavar="IN", help="scene file (.ply, .splat, .spz) or 'example'")
    p.add_argument("output", metavar="OUT", help="output file (.ply, .splat, .spz); its folder must exist")
    p.add_argument(
        "--min-opacity",
        type=float,
        default=MIN_OPACITY,
        help="drop splats less opaque than this (default 1/255; 0 keeps all)",
    )
    p.add_argument("--sh-degree", type=int, default=None, help="truncate (or zero-pad) SH to this degree (0..4)")
    p.add_argument(
        "--strict", action="store_true", help="fail on splats with non-finite values instead of dropping them"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vist3a.errors import InputError

    scene_format(args.output)  # an unknown output suffix fails before any reading
    if args.sh_degree is not None and not 0 <= args.sh_degree <= 4:
        raise InputError(f"--sh-degree must be in 0..4, got {args.sh_degree}")
    gaussians = load_scene(args.input, skip_invalid=False)  # save_scene counts (or, --strict, refuses) bad splats
    if args.sh_degree is not None:
        gaussians = gaussians.with_sh_degree(args.sh_degree)
    report = save_scene(gaussians, args.output, min_opacity=args.min_opacity, strict=args.strict)
    print(report.summary())
    return 0
