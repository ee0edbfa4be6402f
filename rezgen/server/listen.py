"""Binding the server's socket before serving, so a busy port or a bad address is one clear error."""

from __future__ import annotations

import socket

from rezgen.errors import RezgenError


def listen(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port or a bad address is one clear error (port 0 picks a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: without it a response's headers and body, written apart, wait on the
        # client's delayed ACK (~40 ms a poll on a kept-alive connection; an SSE event likewise).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class ServeError(RezgenError):
    """The server cannot start; the message is one line for the user."""
