"""Starting a viser server on a host/port the user chose, with clear errors.

viser quietly moves to the next port when the asked one is taken; a user who typed ``--port 8080``
should instead hear that 8080 is in use. :func:`start_server` checks the port first and, should
another process win the race, stops the server and says so.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from vist3a.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class PortInUseError(InputError):
    """The port asked for is taken by another program."""


def import_viser() -> Any:
    """``import viser`` with an actionable message when the optional extra is missing."""
    try:
        import viser
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InputError(
            "the browser viewer needs viser, which is not installed: pip install 'vist3a[view]'"
        ) from exc
    return viser


def check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` if ``host:port`` cannot be bound (port 0 = any free port)."""
    if not 0 <= int(port) <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
        try:
            s.bind((host, int(port)))
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise PortInUseError(
                    f"port {port} on {host} is already in use by another program; choose another with "
                    f"--port N (or --port 0 for any free port)"
                ) from exc
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def start_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, label: str = "vist3a") -> Any:
    """A running ``viser.ViserServer`` bound to exactly ``host:port`` (or a free port for 0).

    Binds to 127.0.0.1 by default: only this machine can connect. Pass ``host="0.0.0.0"`` to
    serve the local network (anyone who can reach the port can use the page).
    """
    viser = import_viser()
    check_port(host, port)
    server = viser.ViserServer(host=host, port=int(port), label=label, verbose=False)
    bound = server.get_port()
    if port != 0 and bound != port:
        server.stop()
        raise PortInUseError(f"port {port} on {host} was taken while starting; choose another with --port N")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s:%d: anyone who can reach this address can use the page", host, bound)
    return server


def url_of(server: Any) -> str:
    host = server.get_host()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{server.get_port()}"
