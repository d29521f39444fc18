"""The ``vist3a`` command. Thin: parses arguments and calls library code.

Each subcommand lives in ``vist3a.commands.<name>`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed namespace; returns an exit code or None).
Errors become one line on stderr and a non-zero exit; ``--debug`` shows the full traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vist3a import __version__

# Order = order in `vist3a --help`.
COMMAND_MODULES = [
    "generate",
    "reconstruct",
    "lift",
    "stitch",
    "align",
    "eval",
    "render",
    "convert",
    "world",
    "view",
    "app",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vist3a",
        description="Text-to-3D generation by model stitching (VIST3A).",
    )
    parser.add_argument("--version", action="version", version=f"vist3a {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"vist3a.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vist3a.commands.{name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def _setup_logging(debug: bool) -> None:
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=debug)
        fmt = "%(message)s"
    except ImportError:  # pragma: no cover - rich is a dependency
        handler = logging.StreamHandler()
        fmt = "%(levelname)s %(message)s"
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format=fmt, handlers=[handler])


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[0] if msg else ""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)) and not text:
        text = f"{exc.filename}"
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.debug)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("vist3a: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for users, the traceback with --debug
        if args.debug:
            raise
        kind = "" if _is_ours(exc) else f"{type(exc).__name__}: "
        print(f"vist3a {args.command}: error: {kind}{_one_line(exc)}", file=sys.stderr)
        return 1
    return int(code or 0)


def _is_ours(exc: BaseException) -> bool:
    from vist3a.errors import Vist3aError

    return isinstance(exc, (Vist3aError, OSError))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
