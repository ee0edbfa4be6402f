"""The starlette application behind `rezgen serve`: the built site as static files, plus its reload stream."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .reload import Reloader

RELOAD_PATH = "/_rezgen/reload"


def create_app(site: Path, reloader: Reloader) -> Starlette:
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
        routes=[Route(RELOAD_PATH, reload_stream), Mount("/", StaticFiles(directory=site, html=True))],
        lifespan=lifespan,
    )
