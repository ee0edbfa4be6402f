"""The starlette application behind `rezgen serve`: the built site as static files, plus its reload stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import AsyncIterator, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .api import api_routes
from .reload import Reloader
from .source import DataSource

RELOAD_PATH = "/_rezgen/reload"


def create_app(site: Path, reloader: Reloader, source: Callable[[], DataSource]) -> Starlette:
    """`source` returns what the API answers from now (it changes when the recording is rebuilt)."""
    async def still(request: Request) -> Response:
        """/api/stream of a recording: its data never changes, so one status event and then keep-alives."""
        route = request.query_params.get("section", "")
        if not any(section.route == route for section in source().sections):
            return JSONResponse({"error": f"unknown section {route!r}"}, status_code=400)

        async def events() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(json.dumps({"mode": "recording", "agents": []}), event="status")
            await asyncio.Event().wait()  # until the client goes away

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

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
        routes=[Route(RELOAD_PATH, reload_stream), Route("/api/stream", still), *api_routes(source),
                Mount("/", StaticFiles(directory=site, html=True))],
        lifespan=lifespan,
    )
