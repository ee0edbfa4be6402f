"""`rezgen replay RECORDING`: a recording served as a live Rezolus agent (protocol §1.1, §2.9, §3.3).

Routes as a 5.x agent: `/` (banner), `/metrics/binary` (V2 without windows, or V3), `/metrics/json`, `/systeminfo`
and `/metrics/descriptions` (404 when the recording has none, as agents before 5.9). Every route is GET only
(405 otherwise, 404 for unknown paths) and answers gzip when the request accepts it and the body is over
32 bytes, streamed without a Content-Length, like the agent's tower-http layer; otherwise raw bytes.

Time: the replay starts at the first row and moves through the recording at `speed` × wall time. Each row keeps
its recorded timestamp shifted by one constant (start wall time − first row's time), so at speed 1 `systemtime`
tracks the wall clock, and at any speed the deltas between rows — hence every rate — are the recorded ones; the
price is that at speed ≠ 1 the served clock runs ahead of (or behind) the wall clock. Polls between two rows get
the same snapshot (same `systemtime`), like the agent's cache. At the end: with `loop`, the next pass follows one
interval later with counters and histogram buckets continued upward (see `recorded`); without, the last row is
served for ever.

Test hooks (under `/_replay/`, not part of any agent): `POST /_replay/fault` with `mode` = none | garbage | empty |
truncated | slow | error (and `seconds` for slow) changes what `/metrics/binary` answers; `GET /_replay/stats`
tells how many binary requests came, how many were in flight at once, and the requests per path;
`POST /_replay/clock?seconds=-3600` steps the served clock. An agent that is down is a stopped process: tests kill
and restart this one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gzip
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rezgen.synthetic.encode import encode, to_json
from rezgen.synthetic.recorded import RecordedAgent

FAULTS = ("none", "garbage", "empty", "truncated", "slow", "error")
FORMATS = {"v2": 2, "v3": 3}
GZIP_MIN_BYTES = 32  # tower-http's default: smaller bodies go out uncompressed


class Replay:
    """What the fake agent serves now; safe to call from several threads."""

    def __init__(self, agent: RecordedAgent, *, speed: float = 1.0, version: int = 2, loop: bool = True):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.agent, self.speed, self.version, self.loop = agent, speed, version, loop
        self._relative = (agent.timestamps - agent.timestamps[0]).tolist()
        self._start = time.monotonic()
        self.offset_ns = time.time_ns() - int(agent.timestamps[0])
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int], Any, dict[str, bytes]] | None = None

    def step_clock(self, ns: int) -> None:
        """Move the served clock (a test hook: an agent whose clock is stepped, e.g. by NTP)."""
        with self._lock:
            self.offset_ns += ns
            self._cached = None

    def position(self) -> tuple[int, int]:
        """(pass, row) for now."""
        elapsed = int((time.monotonic() - self._start) * self.speed * 1e9)
        if self.loop:
            lap, within = divmod(elapsed, self.agent.period_ns)
        else:
            lap, within = 0, elapsed
        return lap, bisect.bisect_right(self._relative, within) - 1

    def current(self) -> tuple[tuple[int, int], Any, dict[str, bytes]]:
        """(position, snapshot, encodings) of now; each row is built and encoded once."""
        position = self.position()
        with self._lock:
            if self._cached is None or self._cached[0] != position:
                lap, row = position
                snapshot = self.agent.snapshot(row, lap, self.offset_ns)
                self._cached = (position, snapshot, {"raw": encode(snapshot, self.version)})
            return self._cached

    def binary(self, compressed: bool) -> tuple[bytes, bytes | None]:
        """The snapshot of now, raw and (when asked) gzipped: both of the same row."""
        _, _, encodings = self.current()
        with self._lock:
            if compressed and "gzip" not in encodings:
                encodings["gzip"] = gzip.compress(encodings["raw"], 6)
            return encodings["raw"], encodings.get("gzip") if compressed else None


@dataclass
class Faults:
    mode: str = "none"
    seconds: float = 30.0
    requests: int = 0  # to /metrics/binary
    in_flight: int = 0
    max_in_flight: int = 0
    gzipped: int = 0  # binary answers sent gzip-encoded
    paths: dict[str, int] = field(default_factory=dict)  # requests per path, every route


def _accepts_gzip(request: Request) -> bool:
    for token in request.headers.get("accept-encoding", "").split(","):
        name, _, params = token.strip().partition(";")
        if name.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def _answer(request: Request, body: bytes, media_type: str, status: int = 200,
            gzipped: bytes | None = None) -> Response:
    if len(body) > GZIP_MIN_BYTES and _accepts_gzip(request):
        data = gzipped if gzipped is not None else gzip.compress(body, 6)
        return StreamingResponse(iter([data]), status_code=status, media_type=media_type,
                                 headers={"content-encoding": "gzip", "vary": "accept-encoding"})
    return Response(body, status_code=status, media_type=media_type)


async def _linger(request: Request, seconds: float) -> bool:
    """Wait like a hung agent, but notice when the client hangs up, so `in_flight` counts open requests only."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(0.02)
    return True


def create_app(replay: Replay, faults: Faults | None = None) -> Starlette:
    faults = faults or Faults()
    agent = replay.agent
    banner = f"Rezolus {agent.version} Agent\nFor information, see: https://rezolus.com\n".encode()

    async def root(request: Request) -> Response:
        return _answer(request, banner, "text/plain; charset=utf-8")

    async def binary(request: Request) -> Response:
        faults.requests += 1
        faults.in_flight += 1
        faults.max_in_flight = max(faults.max_in_flight, faults.in_flight)
        try:
            mode = faults.mode
            if mode == "slow" and not await _linger(request, faults.seconds):
                return Response(b"", status_code=499)  # the client gave up; nobody reads this
            elif mode == "garbage":  # 0xc1 is never used by msgpack, so this can never decode
                return Response(b"\xc1" + os.urandom(255), media_type="application/octet-stream")
            elif mode == "empty":  # what `rezolus exporter` answers when its agent is down
                return Response(b"", media_type="application/octet-stream")
            elif mode == "error":
                return Response(b"internal error\n", status_code=500, media_type="text/plain")
            raw, gzipped = await run_in_threadpool(replay.binary, _accepts_gzip(request))
            if mode == "truncated":
                return Response(raw[: len(raw) // 2], media_type="application/octet-stream")
            faults.gzipped += gzipped is not None
            return _answer(request, raw, "application/octet-stream", gzipped=gzipped)
        finally:
            faults.in_flight -= 1

    async def metrics_json(request: Request) -> Response:
        _, snapshot, _ = await run_in_threadpool(replay.current)
        body = json.dumps(to_json(snapshot, replay.version), separators=(",", ":")).encode()
        return _answer(request, body, "text/plain; charset=utf-8")

    def document(value: Any):
        async def handler(request: Request) -> Response:
            if value is None:
                return Response(b"", status_code=404)
            return _answer(request, json.dumps(value).encode(), "application/json")
        return handler

    async def set_fault(request: Request) -> Response:
        try:
            settings = dict(request.query_params) or await request.json()
            mode = str(settings.get("mode", "none"))
            seconds = float(settings.get("seconds", faults.seconds))
        except (ValueError, TypeError):
            return JSONResponse({"error": "send mode=<fault> (and seconds=<n> for slow)"}, status_code=400)
        if mode not in FAULTS:
            return JSONResponse({"error": f"unknown fault {mode!r}; one of {', '.join(FAULTS)}"}, status_code=400)
        faults.mode, faults.seconds = mode, seconds
        return JSONResponse({"fault": mode, "seconds": seconds})

    async def step_clock(request: Request) -> Response:
        try:
            seconds = float(request.query_params["seconds"])
        except (KeyError, ValueError):
            return JSONResponse({"error": "send seconds=<n> (negative: back)"}, status_code=400)
        replay.step_clock(int(seconds * 1e9))
        return JSONResponse({"offset_ns": replay.offset_ns})

    async def stats(request: Request) -> Response:
        lap, row = replay.position()
        return JSONResponse({"requests": faults.requests, "in_flight": faults.in_flight,
                             "max_in_flight": faults.max_in_flight, "gzipped": faults.gzipped, "fault": faults.mode,
                             "loop": lap, "row": row, "offset_ns": replay.offset_ns, "paths": faults.paths})

    routes = [
        Route("/", root), Route("/metrics/binary", binary), Route("/metrics/json", metrics_json),
        Route("/systeminfo", document(agent.systeminfo)),
        Route("/metrics/descriptions", document(agent.descriptions)),
        Route("/_replay/fault", set_fault, methods=["POST"]), Route("/_replay/clock", step_clock, methods=["POST"]),
        Route("/_replay/stats", stats),
    ]

    class Count:  # per-path request counts, so tests can tell what a client fetched
        def __init__(self, app: Any, paths: dict[str, int]) -> None:
            self.app, self.paths = app, paths

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.paths[scope["path"]] = self.paths.get(scope["path"], 0) + 1
            await self.app(scope, receive, send)

    return Starlette(routes=routes, middleware=[Middleware(Count, paths=faults.paths)])


def replay_recording(recording: Path, *, host: str = "127.0.0.1", port: int = 4241, speed: float = 1.0,
                     fmt: str = "v2", loop: bool = True, node: str | None = None, fault: str = "none",
                     announce=print) -> None:
    """Serve until stopped. ReplayError / ServeError (one line) when the recording or the port is unusable."""
    from rezgen.server.listen import listen

    agent = RecordedAgent(recording, node=node)
    listener = listen(host, port)
    replay = Replay(agent, speed=speed, version=FORMATS[fmt], loop=loop)
    app = create_app(replay, Faults(mode=fault))
    bound = listener.getsockname()[1]
    who = f"node {agent.node}, " if agent.node else ""
    announce(f"serving {recording} ({who}{agent.rows} rows, {fmt}, speed {speed:g}) as a Rezolus agent at "
             f"http://{host}:{bound}/ (Ctrl+C to stop)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listener])
