"""`rezgen serve --live AGENT...`: the dashboards of running agents, pushed to open pages as points arrive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from pyarrow import ArrowException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from rezgen.agent.client import AgentClient, node_name
from rezgen.agent.poller import Poller
from rezgen.dashboards import load_dashboards
from rezgen.live import datadir
from rezgen.live.datadir import HistorySettings, HistoryWriter, node_dir_name
from rezgen.live.history import History
from rezgen.live.ingest import Ingest
from rezgen.live.record import LiveRecorder, recover
from rezgen.live.refill import refill
from rezgen.pages.templating import template_environment
from rezgen.promql.limits import DEFAULT_LIMITS, QueryLimits, trim_heap
from rezgen.remote.writer import RemoteWriteConfig
from rezgen.resources import resource_dir
from rezgen.server.api import api_routes
from rezgen.server.guard import Guard, trusted_names
from rezgen.server.hub import Hub
from rezgen.server.listen import ServeError, listen
from rezgen.server.live import live_routes
from rezgen.server.live_source import LiveSource
from rezgen.server.long_range import LongRange
from rezgen.server.rollup_builder import RollupBuilder
from rezgen.server.rollups import digest, segment_sections
from rezgen.server.trim import TrimAfterBigAnswers
from rezgen.store.store import Store


def _footer(agents: dict[str, AgentClient]) -> dict[str, Any]:
    """systeminfo and descriptions as the agents reported them (the first agent's systeminfo, as combine does)."""
    infos = [agent.info for agent in agents.values()]
    footer: dict[str, Any] = {}
    systeminfo = next((i.systeminfo for i in infos if i.systeminfo), None)
    if systeminfo:
        footer["systeminfo"] = systeminfo
    descriptions = {k: v for i in infos for k, v in (i.descriptions or {}).items()}
    if descriptions:
        footer["descriptions"] = descriptions
    return footer


def _history(settings: HistorySettings | None, ingest: Ingest, urls: list[str], nodes: dict[str, str],
             interval_ns: int, footer: Callable[[], dict[str, Any]], announce: Callable[[str], None]
             ) -> HistoryWriter | None:
    """The data dir: close what a killed run left open, refill the window from it, and its writer. A data dir
    that cannot be used is said once; live mode then runs from memory (the page's status says so too)."""
    if settings is None:
        return None
    root = settings.root
    dirs = {url: node_dir_name(node_name(url)) for url in urls}
    try:
        root.mkdir(parents=True, exist_ok=True)
        recovered = datadir.recover(root)
        if recovered:
            announce(f"recovered {recovered} rows of an interrupted segment in {root}")
        rows = refill(ingest, root, dirs)
        if rows:
            trim_heap()  # the segments' decoded columns: gone, and handed back
            announce(f"refilled the live window with {rows} rows from {root}")
    except (OSError, ArrowException) as exc:
        announce(f"rezgen: data dir {root}: {exc}; live data stays in memory only")
    return HistoryWriter(root, interval_ns // 1_000_000, nodes, dirs, segment_ns=settings.segment_ns,
                         keep_ns=settings.keep_ns, keep_bytes=settings.keep_bytes, footer=footer)


def serve_live(urls: list[str], *, interval_ns: int, retention_ns: int, host: str = "127.0.0.1", port: int = 8000,
               dashboards: Path | None = None, templates: Path | None = None, record: Path | None = None,
               allowed_hosts: tuple[str, ...] = (), limits: QueryLimits = DEFAULT_LIMITS,
               history: HistorySettings | None = None, remote: RemoteWriteConfig | None = None,
               announce: Callable[[str], None] = print) -> None:
    sections = load_dashboards(dashboards)
    env = template_environment(templates)
    env.globals["served"] = False
    ingest = Ingest(Store(interval_ns), retention_ns)
    nodes = {url: node_name(url) for url in urls} if len(urls) > 1 else {}
    for url in urls:
        ingest.add_agent(url, nodes.get(url))
    agents: dict[str, AgentClient] = {}
    recorder = None
    if record is not None:
        try:
            recovered = recover(record)
        except (OSError, ArrowException) as exc:
            raise ServeError(f"{record}: could not recover the interrupted recording beside it: {exc}") from None
        if recovered:
            announce(f"recovered {recovered} rows of an interrupted recording into {record}; recording continues")
        recorder = LiveRecorder(record, interval_ns // 1_000_000, nodes, footer=lambda: _footer(agents))
    writer = _history(history, ingest, urls, nodes, interval_ns, lambda: _footer(agents), announce)
    source = LiveSource(ingest, sections, interval_ns, agents, nodes,
                        History(history.root, history.keep_ns, writer) if history is not None else None)
    if history is not None and len(urls) == 1:  # rollups of the one agent's node directory
        key = digest(sections, interval_ns)
        source.long_range = LongRange(history.root, node_dir_name(node_name(urls[0])), key, interval_ns)
        source.rollup_builder = RollupBuilder(history.root, key, segment_sections(sections, source.describe),
                                              interval_ns)
    remote_writer = remote.writer() if remote is not None and remote.urls else None

    def status() -> dict[str, Any]:
        found = source.status()
        if remote_writer is not None:
            found["remote_write"] = remote_writer.status()
        return found

    hub = Hub(ingest, interval_ns, status)
    pollers: list[Poller] = []  # one, once the server has started

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if remote_writer is not None:
            remote_writer.start()
        for url in urls:
            def on_snapshot(snapshot: Any, url: str = url) -> None:
                if ingest.append(url, snapshot):
                    if recorder is not None:
                        recorder.add(url, snapshot)
                    if writer is not None:
                        writer.add(url, snapshot)
                    loop.call_soon_threadsafe(hub.notify)
                    if remote_writer is not None:
                        remote_writer.add(node_name(url), snapshot)
            agents[url] = AgentClient(url, interval_ns / 1e9, on_snapshot=on_snapshot,  # logs reachability
                                      offset_s=len(agents) / len(urls) * interval_ns / 1e9)  # polls spread out
        pollers.append(Poller(list(agents.values())))
        pollers[0].start()
        if source.rollup_builder is not None:
            source.rollup_builder.start()
        if ingest.newest_ns is not None:  # refilled from the data dir: pages can show it before the first poll
            hub.notify()
        pusher = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            pusher.cancel()
            finish()

    def finish() -> None:
        """Stop polling and complete the recording: on the way out of the lifespan (Ctrl-C, SIGTERM), or after
        uvicorn skipped the lifespan's end (a second Ctrl-C)."""
        for poller in pollers:
            poller.stop()
        if source.rollup_builder is not None:
            source.rollup_builder.stop()
        if remote_writer is not None:
            remote_writer.stop()
        if writer is not None and not writer.closed:
            writer.close()
        if recorder is None or recorder.closed:
            return
        try:
            rows = recorder.close()
        except (OSError, ValueError, ArrowException) as exc:
            announce(f"rezgen: could not write {record}: {exc}; its segments stay in {recorder.parts}")
            return
        announce(f"recorded {recorder.rows} snapshots ({rows} rows) to {record}" if rows
                 else f"nothing recorded to {record}")

    title = ", ".join(urls)
    app = Starlette(routes=[Mount("/static", StaticFiles(directory=resource_dir("templates") / "static")),
                            *api_routes(lambda: source, limits), *live_routes(source, hub, env, title, status)],
                    middleware=[Middleware(Guard, names=trusted_names(host, allowed_hosts)),
                                Middleware(TrimAfterBigAnswers)], lifespan=lifespan)
    listener = listen(host, port)
    announce(f"serving live {title} at http://{host}:{listener.getsockname()[1]}/ (Ctrl+C to stop)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        finish()
