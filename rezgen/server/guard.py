"""Refuse requests that a browser makes on behalf of another web site.

- DNS rebinding: a foreign page whose name resolves to 127.0.0.1 reaches the server with its own name in `Host`.
  Only the names the server is known by pass: the address it is bound to, the loopback names (`localhost`,
  `127.0.0.1`, `::1`) and whatever `--allowed-host` adds; any port. Others get 421 (Misdirected Request).
- Cross-site requests: a foreign page may open a WebSocket or an EventSource to us, or send a form POST (no
  preflight), and the browser adds the user's access. The streams (`/ws`, `/api/stream`) and every request that is
  not GET/HEAD/OPTIONS must come from our own origin or carry no `Origin` (curl, promtool, Grafana's backend);
  `Origin: null` and `Sec-Fetch-Site: cross-site` are refused as well. Those get 403. No CORS headers are sent.

A pure ASGI middleware (not BaseHTTPMiddleware), so it sees WebSocket handshakes and never buffers a stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = ("localhost", "127.0.0.1", "::1")
STREAMS = ("/ws", "/api/stream")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_PORTS = {"http": 80, "https": 443}
HOST = re.compile(r"(?P<name>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


def trusted_names(bound: str, allowed: Iterable[str] = ()) -> frozenset[str]:
    """The host names requests may carry: the bound address, the loopback names and the allowed ones."""
    return frozenset(_bare(name) for name in (bound, *LOOPBACK, *allowed))


class Guard:
    def __init__(self, app: ASGIApp, names: frozenset[str]):
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if _split(host)[0] not in self.names:
            await _refuse(scope, receive, send, 421, f"host {host!r} is not served here "
                                                     "(start the server with --allowed-host NAME to allow a name)")
            return
        guarded = scope["type"] == "websocket" or scope["path"] in STREAMS or scope["method"] not in SAFE_METHODS
        if guarded and not _same_origin(headers, host):
            await _refuse(scope, receive, send, 403, "cross-origin request refused")
            return
        await self.app(scope, receive, send)


def _same_origin(headers: Headers, host: str) -> bool:
    """Whether the request comes from our own pages, or from no browser page at all (no Origin header)."""
    if headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:  # "null" (sandboxed or file:// pages), odd schemes
        return False
    default = DEFAULT_PORTS[parts.scheme]
    name, port = _split(host)
    try:
        origin_port = parts.port or default
    except ValueError:
        return False
    return (_bare(parts.hostname or ""), origin_port) == (name, port or default)


def _split(host: str) -> tuple[str, int | None]:
    """A Host header's name (lower case, no brackets or final dot) and port; a malformed one gives ("", None)."""
    match = HOST.fullmatch(host)
    if match is None:
        return "", None
    port = match["port"]
    return _bare(match["name"]), int(port) if port else None


def _bare(name: str) -> str:
    return name.strip("[]").rstrip(".").lower()


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    """A one-line JSON error; a WebSocket handshake gets it as the HTTP answer, or a plain 403 where the server
    cannot send one (no websocket.http.response extension)."""
    if scope["type"] == "websocket" and "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
