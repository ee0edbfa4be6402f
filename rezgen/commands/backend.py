"""`rezgen build --prometheus URL` and `rezgen serve --prometheus URL`: the dashboards over a Prometheus-compatible
TSDB, every query run by the backend through its HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from rezgen.backend.client import BackendClient
from rezgen.backend.dataset import BackendData, BackendStore, check, sampling_interval, systeminfo_footer
from rezgen.backend.rewrite import rated_metrics
from rezgen.dashboards import Section, load_dashboards
from rezgen.errors import RezgenError
from rezgen.pages.templating import template_environment
from rezgen.resources import resource_dir
from rezgen.server.api import api_routes
from rezgen.server.backend_source import BackendLiveSource, BackendWindow
from rezgen.server.guard import Guard, trusted_names
from rezgen.server.hub import Hub
from rezgen.server.listen import listen
from rezgen.server.live import live_routes
from rezgen.server.prom_proxy import proxy_routes
from rezgen.site.build import BuildReport, Progress, build_site

# rezgen's own endpoints that read plot data; /api/query reads raw samples from a local store, and /api/v1/* is the
# backend's own (passed through: `prom_proxy`).
BACKEND_API = {"/api/metrics", "/api/dashboard", "/api/dashboard/{section}", "/api/plot/{section}/{id}", "/api/range"}


POLL_SECONDS = 1.0  # how often the backend is asked for new points (at most): the pages' fastest refresh


class BackendEmpty(RezgenError):
    """The backend holds no data to show."""


def counters_of(sections: list[Section]) -> set[str]:
    return rated_metrics([plot.query for section in sections for plot in section.plots])


def build_from_backend(url: str, start_ns: int, end_ns: int, output: Path, *, timeout_s: float = 30.0,
                       systeminfo: Path | None = None, dashboards: Path | None = None, templates: Path | None = None,
                       progress: Progress | None = None, warn: Progress | None = None, strict: bool = False
                       ) -> BuildReport:
    if end_ns <= start_ns:
        raise RezgenError("--end must be after --start")
    client = BackendClient(url, timeout_s)
    check(client)
    data = BackendData(client, start_ns, end_ns, counters_of(load_dashboards(dashboards)), systeminfo)
    return build_site(data, output, dashboards=dashboards, templates=templates, progress=progress, warn=warn,
                      strict=strict)


def serve_backend(url: str, *, retention_ns: int, host: str = "127.0.0.1", port: int = 8000,
                  timeout_s: float = 30.0, systeminfo: Path | None = None, dashboards: Path | None = None,
                  templates: Path | None = None, allowed_hosts: tuple[str, ...] = (),
                  announce: Callable[[str], None] = print) -> None:
    sections = load_dashboards(dashboards)
    footer = systeminfo_footer(systeminfo)
    client = BackendClient(url, timeout_s)
    check(client)
    store = BackendStore(client, 1_000_000_000, counters_of(sections), (0, 0))
    newest = store.newest_sample(retention_ns)
    if newest is None:
        raise BackendEmpty(f"the backend {url} holds no Rezolus metrics newer than --retention")
    store.interval_ns = sampling_interval(store, newest)
    window = BackendWindow(store, retention_ns)
    window.advance(newest)
    source = BackendLiveSource(window, sections, url, footer)
    hub = Hub(window, store.interval_ns, source.status)  # type: ignore[arg-type]
    env = template_environment(templates)
    env.globals["served"] = False

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        hub.notify()
        every = max(POLL_SECONDS, store.interval_ns / 1e9)
        poller = threading.Thread(target=source.run, name="rezgen-backend-poll", daemon=True,
                                  args=(every, stop, lambda: loop.call_soon_threadsafe(hub.notify)))
        poller.start()
        pusher = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            stop.set()
            pusher.cancel()

    api: list[BaseRoute] = [r for r in api_routes(lambda: source)  # type: ignore[arg-type, return-value]
                            if isinstance(r, Route) and r.path in BACKEND_API] + proxy_routes(url, timeout_s)
    app = Starlette(routes=[Mount("/static", StaticFiles(directory=resource_dir("templates") / "static")), *api,
                            *live_routes(source, hub, env, url)],  # type: ignore[arg-type]
                    middleware=[Middleware(Guard, names=trusted_names(host, allowed_hosts))], lifespan=lifespan)
    listener = listen(host, port)
    announce(f"serving {url} at http://{host}:{listener.getsockname()[1]}/ (Ctrl+C to stop)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listener])
