"""``vist3a app [--model NAME] [--host 127.0.0.1] [--port N] [--out DIR]``: the text-to-3D web app."""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from vist3a.viewer.app import MAX_PROMPT_CHARS
    from vist3a.viewer.server import DEFAULT_HOST, DEFAULT_PORT

    p = subparsers.add_parser(
        "app",
        help="text-to-3D web app in the browser (prompt, progress, 3D view, video, downloads)",
        description=(
            "Serve a small web app (viser): type a prompt, set seed/steps/CFG, watch the progress, then look at "
            "the scene in 3D, play its fly-through and download .ply/.spz/.splat. One generation at a time "
            "(others queue). Outputs go only under --out. The default model 'mini' is embedded and runs on a "
            "CPU. Binds to 127.0.0.1 by default: only this machine can open the page."
        ),
    )
    p.add_argument(
        "--model", default="mini", help="mini (default), vist3a-1.3b, vist3a-14b or a pipeline folder (docs/weights.md)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda:0, ...")
    p.add_argument("--out", default="vist3a_app_outputs", help="output folder (default ./vist3a_app_outputs)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument(
        "--max-prompt-chars", type=int, default=MAX_PROMPT_CHARS, help=f"prompt length limit ({MAX_PROMPT_CHARS})"
    )
    p.add_argument(
        "--max-splats", type=int, default=2_000_000,
        help="most splats sent to the page (the files keep all; lower it for software WebGL)",
    )  # fmt: skip
    p.add_argument("--low-vram", action="store_true", help="offload the text encoder and DiT between uses (CUDA)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vist3a.errors import InputError
    from vist3a.pipelines import load_pipeline
    from vist3a.viewer.app import GeneratorApp
    from vist3a.viewer.server import check_port, import_viser, start_server, url_of

    import_viser()
    check_port(args.host, args.port)
    if args.max_splats < 1:
        raise InputError(f"--max-splats must be >= 1, got {args.max_splats}")
    if args.max_prompt_chars < 1:
        raise InputError(f"--max-prompt-chars must be >= 1, got {args.max_prompt_chars}")
    log.info("loading the %s pipeline…", args.model)
    pipe = load_pipeline(args.model, device=args.device)  # fails here (one line) on missing weights
    if args.low_vram:
        pipe.enable_low_vram()
    server = start_server(args.host, args.port, label="vist3a app")
    app = GeneratorApp(
        server, pipe, args.out, model_name=args.model, max_prompt_chars=args.max_prompt_chars,
        max_splats=args.max_splats,
    )  # fmt: skip
    try:
        print(f"vist3a app: open {url_of(server)} in a browser (outputs in {app.out_dir}; Ctrl+C to stop)", flush=True)
        while True:
            time.sleep(3600)
    finally:
        app.close()
        server.stop()
