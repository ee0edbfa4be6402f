"""The live server's pages: the static site's templates and data scripts, computed from the sliding window, plus
the SSE stream of new points (one per page).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jinja2
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from rezgen.dashboards import Plot, Section
from rezgen.pages.catalog import catalog_plot, metric_catalog, metric_rows, metric_slug
from rezgen.pages.cgroups import with_cgroup_selector
from rezgen.pages.fleet import FLEET_DATA, fleet_page, kpi_by_id, kpi_payload
from rezgen.pages.gpus import with_gpu_selector
from rezgen.pages.model import (
    SINGLE_HOST,
    absent_plots,
    data_script,
    host_scope,
    live_config,
    metric_payload,
    other_page,
    render,
    section_context,
    section_page,
    section_payload,
    site_context,
)
from rezgen.plotdata.cpus import cpu_count
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import TimeRange, plot_data, waiting_plot
from rezgen.plotdata.window import range_ns, trailing
from rezgen.server.hub import Hub
from rezgen.server.live_source import LiveSource
from rezgen.store.store import Store

UNREPORTED = "Not reported by this agent (one device: the aggregate chart shows it)"


def live_routes(source: LiveSource, hub: Hub, env: jinja2.Environment, title: str,
                status_of: Callable[[], dict[str, Any]] | None = None) -> list[BaseRoute]:
    """`status_of`: what /api/status answers (default: the source's agents)."""
    def visible(section: Section) -> set[str]:
        return {p.id for g in section.groups if not g.hidden for p in g.plots if source.has_data(p)}

    def nav() -> list[tuple[Section, set[str]]]:
        return [(s, ids) for s in source.sections if (ids := visible(s))]

    def site() -> dict[str, Any]:
        bounds = source.time_range() or (0, 0)
        return site_context(title, bounds[0], bounds[1], [(s, len(ids)) for s, ids in nav()], source.hosts)

    def live_context() -> dict[str, Any]:
        return live_config(source.interval_ns, source.reach_ns())

    def catalog() -> list[dict[str, Any]]:
        with source.lock:
            return metric_catalog(source.store, source.describe)

    def metric_data(request: Request) -> Response:
        host, slug = request.path_params["host"], request.path_params["name"]
        entry = next((m for m in catalog() if metric_slug(m["name"]) == slug), None)
        window = _window(source, hub, request.query_params)
        if entry is None or window is None:
            return JSONResponse({"error": "no such metric or no data yet"}, status_code=404)
        span, plot = window[0], catalog_plot(entry)
        store, lock = source.range_store(span.start_ns, span.end_ns, plot.metrics)
        with lock:
            data = plot_data(store, plot, span, host_scope(host, source.hosts))
        return Response(data_script(f"{host}/metrics/{entry['name']}", metric_payload(entry["name"], plot, data, span)),
                        media_type="text/javascript", headers={"Cache-Control": "no-store"})

    def page(request: Request) -> Response:
        name = request.path_params.get("page", "index.html")
        sections = nav()
        if name in ("metrics.html", "system.html", "query.html"):
            return HTMLResponse(render(env, name, site=site(), live=live_context(), systeminfo=source.systeminfo,
                                       page=other_page(name.split(".")[0]), metrics=metric_rows(catalog())))
        if name == "fleet.html" and len(source.hosts) > 1:
            return HTMLResponse(render(env, name, site=site(), live=live_context(), page=fleet_page()))
        wanted = sections[0][0].route if name == "index.html" and sections else name.removesuffix(".html")
        match = next(((s, ids) for s, ids in sections if s.route == wanted), None)
        if match is None:
            if not sections:
                return HTMLResponse("<!doctype html><title>rezgen</title><p>Waiting for the first snapshots… "
                                    "<script>setTimeout(() => location.reload(), 2000)</script>", status_code=503)
            return HTMLResponse("not found", status_code=404)
        section, ids = match
        with source.lock:
            absent = absent_plots(section, source.store)
        return HTMLResponse(render(env, "section.html", site=site(), page=section_page(section),
                                   section=section_context(section, ids - absent, absent), live=live_context()))

    def fleet_data(request: Request) -> Response:
        kpi = kpi_by_id(request.path_params["kpi"])
        window = _window(source, hub, request.query_params)
        if kpi is None or window is None:
            return JSONResponse({"error": "no such KPI or no data yet"}, status_code=404)
        span = window[0]
        with source.lock:
            payload = kpi_payload(source.store, kpi, span.start_ns, span.end_ns, source.interval_ns)
        return Response(data_script(f"fleet/{kpi.id}", payload), media_type="text/javascript",
                        headers={"Cache-Control": "no-store"})

    def data(request: Request) -> Response:
        host, route = request.path_params["host"], request.path_params["route"]
        section = next((s for s in source.sections if s.route == route), None)
        window = _window(source, hub, request.query_params)
        if section is None or window is None:
            return JSONResponse({"error": "no such section or no data yet"}, status_code=404)
        span, length = window
        scope = host_scope(host, source.hosts)
        rolled = source.rolled_up(section, span, scope)  # a long range from the segments' rollups, when they answer
        store, lock = (source.store, source.lock) if rolled is not None else \
            source.range_store(span.start_ns, span.end_ns, {m for p in section.plots for m in p.metrics})
        with lock:
            # A plot whose metrics exist but have no point in the range yet (the first seconds) is sent empty, so the
            # page keeps its place and fills it from the stream.
            # A per-device heatmap of an agent with one such device never gets data (the aggregate chart says it
            # all): it says so instead of waiting.
            absent = absent_plots(section, store)
            plots = {p.id: (rolled[p.id] if rolled is not None else plot_data(store, p, span, scope))
                     or {**waiting_plot(p), **({"missing": UNREPORTED} if _one_device(store, p, span, scope) else {})}
                     for p in section.plots if p.id not in absent}
            # A chart's "Total" multiplies its mean by it (counted in a store; a TSDB's pages have no Total).
            cpus = cpu_count(store, span, scope) if isinstance(store, Store) else None
        # The page's live updates keep the series this load ranked, and rank again over the same window.
        hub.adopt(section, scope, plots, length)
        payload = section_payload(section, plots, span, [], live={"last": span.end_ns // 1_000_000,
                                                                  "step": span.step_ns // 1_000_000}, cpus=cpus)
        with_cgroup_selector(section, payload, files=False)
        with_gpu_selector(section, payload, source.systeminfo, files=False)
        return Response(data_script(f"{host}/{route}", payload), media_type="text/javascript",
                        headers={"Cache-Control": "no-store"})

    async def stream(request: Request) -> Response:
        route = request.query_params.get("section", "")
        section = next((s for s in source.sections if s.route == route), None)
        if section is None:
            return JSONResponse({"error": f"unknown section {route!r}"}, status_code=400)
        host = request.query_params.get("host") or None
        if host is not None and host != SINGLE_HOST and host not in source.hosts:
            return JSONResponse({"error": f"unknown host {host!r}"}, status_code=400)
        cursor = request.headers.get("last-event-id") or request.query_params.get("since")
        events = hub.stream(section, host_scope(host, source.hosts), cursor)
        return EventSourceResponse(events, ping=15, send_timeout=10,
                                   headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def status(request: Request) -> Response:
        return JSONResponse((status_of or source.status)(), headers={"Cache-Control": "no-store"})

    async def socket(websocket: WebSocket) -> None:
        """The stream's updates over a WebSocket; the client sends {"section", "host", "since"} to (re)subscribe."""
        await websocket.accept()
        forward: asyncio.Task[None] | None = None

        async def relay(section: Section, scope: Scope, since: str | None) -> None:
            async for event in hub.stream(section, scope, since):
                await websocket.send_text(json.dumps({"type": event.event, "id": event.id,
                                                      "data": json.loads(str(event.data))}))

        try:
            while True:
                try:
                    request = json.loads(await websocket.receive_text())
                    section = next(s for s in source.sections if s.route == request.get("section"))
                except (ValueError, StopIteration, AttributeError, KeyError):  # KeyError: a binary frame
                    await websocket.send_text(json.dumps({"type": "error", "data": {
                        "error": 'send {"section": "<route>", "host": null, "since": <ms>}'}}))
                    continue
                if forward is not None:
                    forward.cancel()
                host = request.get("host")
                scope = host_scope(host, source.hosts) if isinstance(host, str) else ()
                since = request.get("since")
                forward = asyncio.create_task(relay(section, scope, None if since is None else str(since)))
        except WebSocketDisconnect:
            pass
        finally:
            if forward is not None:
                forward.cancel()

    return [
        Route("/", page), Route("/api/stream", stream), Route("/api/status", status), WebSocketRoute("/ws", socket),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/" + FLEET_DATA.format(kpi="{kpi}"), fleet_data),
        Route("/data/{host}/metrics/{name}.js", metric_data), Route("/data/{host}/{route}.js", data),
        Route("/{page:str}", page),
    ]


def _one_device(store: Store, plot: Plot, span: TimeRange, scope: Scope) -> bool:
    """A heatmap whose query has one series: `plot_data` leaves it out, as the static site does. (A query with no
    point yet is not one: it may still get its devices.)"""
    if plot.kind != "heatmap":
        return False
    line = plot_data(store, dataclasses.replace(plot, kind="line"), span, scope)
    return line is not None and len(line["names"]) == 1


def _window(source: LiveSource, hub: Hub, params: Any) -> tuple[TimeRange, int] | None:
    """The span to show, on the live grid: `from`/`to` (unix ms, `to` defaults to the newest step) or the last
    `range` (e.g. 15m) of the data, clamped to what the window and the data dir hold; and the length asked for
    (ns)."""
    bounds = source.time_range()
    newest = hub.newest_step(bounds[1]) if bounds is not None else None
    if bounds is None or newest is None:
        return None
    length = range_ns(params.get("range"))
    try:
        end = min(newest, hub.grid_until(int(params["to"]) * 1_000_000) or newest) if "to" in params else newest
        if "from" in params:
            length = end - int(params["from"]) * 1_000_000
    except ValueError:
        end, length = newest, range_ns(params.get("range"))
    return trailing(end, length, source.oldest_ns() or bounds[0], hub.step_ns), length
