"""The live data source: the sliding window of one or more agents, as the server's pages and API see it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from rezgen.dashboards import Plot, Section
from rezgen.live.history import History
from rezgen.live.ingest import Ingest
from rezgen.pages.services import sections_for
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import TimeRange
from rezgen.server.long_range import LongRange
from rezgen.server.rollup_builder import RollupBuilder
from rezgen.store.store import Store


class Agent(Protocol):
    """What the source needs from an agent poller (rezgen.agent.client.AgentClient)."""

    url: str

    def state(self) -> Any: ...

    @property
    def info(self) -> Any: ...


class LiveSource:
    def __init__(self, ingest: Ingest, sections: list[Section], interval_ns: int, agents: Mapping[str, Agent],
                 nodes: dict[str, str], history: History | None = None):
        self.ingest = ingest
        self.dashboards = sections
        self._sections: tuple[tuple[tuple[str, int], ...], list[Section]] | None = None
        self.interval_ns = interval_ns
        self.agents = agents
        self.nodes = nodes  # agent url → its `node` label (several agents only)
        self.hosts = sorted(nodes.values()) if nodes else []  # `agents` fills in once the server starts
        self.history = history  # the data dir (None: --no-data-dir)
        self.long_range: LongRange | None = None  # its rollups (one agent), see `rolled_up`
        self.rollup_builder: RollupBuilder | None = None

    @property
    def sections(self) -> list[Section]:
        """The dashboards' sections for what the window holds now (a service's appears once its series arrive);
        worked out again when the window's series change."""
        with self.lock:
            store = self.ingest.store
            key = tuple((name, len(store.series_of(name))) for name in store.metrics())
            if self._sections is None or self._sections[0] != key:
                self._sections = (key, sections_for(self.dashboards, store, self.describe))
            return self._sections[1]

    @property
    def store(self) -> Store:
        return self.ingest.store

    @property
    def lock(self) -> threading.RLock:
        return self.ingest.lock

    def time_range(self) -> tuple[int, int] | None:
        with self.lock:
            return self.ingest.store.time_range()

    def oldest_ns(self) -> int | None:
        """The first sample a page can show: on disk, else in the window."""
        bounds = self.time_range()
        found = [t for t in (bounds[0] if bounds else None, self.history.oldest_ns() if self.history else None)
                 if t is not None]
        return min(found) if found else None

    def reach_ns(self) -> int:
        """How far back a page may ask: the window, or the data dir's retention."""
        return max(self.ingest.retention_ns, self.history.keep_ns if self.history else 0)

    def range_store(self, start_ns: int, end_ns: int, metrics: set[str] | None = None
                    ) -> tuple[Store, threading.RLock]:
        """The store (and its lock) that holds [start_ns, end_ns]: the window, or the data dir (its `metrics`)
        when the range starts before the window does."""
        bounds = self.time_range()
        if self.history is None or (bounds is not None and start_ns >= bounds[0]):
            return self.store, self.lock
        store = self.history.store(start_ns, end_ns, self.interval_ns, metrics)
        return (store, threading.RLock()) if store is not None else (self.store, self.lock)

    def rolled_up(self, section: Section, span: TimeRange, scope: Scope) -> dict[str, dict[str, Any] | None] | None:
        """A section's plots over a range that starts before the window, from the rollups (None: they cannot
        answer, the caller reads the segments)."""
        bounds = self.time_range()
        if self.long_range is None or scope or bounds is None or span.start_ns >= bounds[0]:
            return None
        return self.long_range.section_plots(section, span, self.store, self.lock)

    def describe(self, metric: str) -> str | None:
        for agent in self.agents.values():
            text = (agent.info.descriptions or {}).get(metric)
            if text:
                return text
        return None

    @property
    def systeminfo(self) -> dict[str, Any] | None:
        return next((info.systeminfo for a in self.agents.values() if (info := a.info).systeminfo), None)

    def has_data(self, plot: Plot) -> bool:
        """Cheap test used for navigation: every metric the plot's query names is in the window."""
        names = plot.metrics
        with self.lock:
            return bool(names) and all(self.ingest.store.series_of(name) for name in names)

    def status(self) -> dict[str, Any]:
        """Connection state of every agent, for the pages' indicator (times in unix ms)."""
        agents = []
        for url, agent in self.agents.items():
            state = agent.state()
            agents.append({
                "node": self.nodes.get(url),  # which host's charts this agent feeds (pages show one host)
                # An error matters while it lasts; a recovered agent's last error is history.
                "url": state.url, "state": state.status.value,
                "error": state.last_error if state.status.value != "connected" else None,
                "last_success_ms": int(state.last_success * 1000) if state.last_success else None,
                "down_since_ms": int(state.down_since * 1000) if state.down_since else None,
                "snapshots": state.snapshots, "restarts": state.restarts,
            })
        with self.lock:
            newest = self.ingest.newest_ns
        history = self.history.status() if self.history else None
        if history is not None and self.rollup_builder is not None:
            history["rollups"] = self.rollup_builder.status()
        return {"agents": agents, "seq": self.ingest.seq, "newest_ms": newest // 1_000_000 if newest else None,
                "history": history}
