"""The starlette application behind `rezgen serve`: the built site as static files, plus its reload stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from rezgen.promql.limits import DEFAULT_LIMITS, QueryLimits
from rezgen.server.api import api_routes
from rezgen.server.guard import Guard
from rezgen.server.reload import Reloader
from rezgen.server.source import DataSource

RELOAD_PATH = "/_rezgen/reload"
RECORDING_STATUS = {"mode": "recording", "agents": []}
SUBSCRIBE_HINT = 'send {"section": "<route>", "host": null, "since": <ms>}'


def create_app(site: Path, reloader: Reloader, source: Callable[[], DataSource], names: frozenset[str],
               limits: QueryLimits = DEFAULT_LIMITS) -> Starlette:
    """`source` returns what the API answers from now (it changes when the recording is rebuilt); `names` are the
    host names requests may carry (see `guard`)."""
    async def still(request: Request) -> Response:
        """/api/stream of a recording: its data never changes, so one status event and then keep-alives."""
        route = request.query_params.get("section", "")
        if not any(section.route == route for section in source().sections):
            return JSONResponse({"error": f"unknown section {route!r}"}, status_code=400)

        async def events() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(json.dumps(RECORDING_STATUS), event="status")
            await asyncio.Event().wait()  # until the client goes away

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    async def still_socket(websocket: WebSocket) -> None:
        """/ws of a recording: as live mode's, but each subscription gets only the status (no points ever come)."""
        await websocket.accept()
        try:
            while True:
                try:
                    request = json.loads(await websocket.receive_text())
                    known = any(section.route == request.get("section") for section in source().sections)
                except (ValueError, AttributeError, KeyError):  # not JSON, not an object, a binary frame
                    known = False
                message = {"type": "status", "id": None, "data": RECORDING_STATUS} if known else {
                    "type": "error", "data": {"error": SUBSCRIBE_HINT}}
                await websocket.send_text(json.dumps(message))
        except WebSocketDisconnect:
            pass

    async def reload_stream(request: Request) -> EventSourceResponse:
        return EventSourceResponse(reloader.events(), ping=15, headers={"Cache-Control": "no-store",
                                                                        "X-Accel-Buffering": "no"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        watcher = asyncio.create_task(reloader.watch(stop))
        try:
            yield
        finally:
            stop.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    return Starlette(
        routes=[Route(RELOAD_PATH, reload_stream), Route("/api/stream", still), WebSocketRoute("/ws", still_socket),
                *api_routes(source, limits), Mount("/", StaticFiles(directory=site, html=True))],
        middleware=[Middleware(Guard, names=names)],
        lifespan=lifespan,
    )
