"""Append decoded agent snapshots to the store's sliding window.

Each agent has its own table (its own timeline). With several agents every series also carries a `node` label
naming its agent, so pages can show one host at a time. Rows older than the retention window are evicted on
every append, and series left with no sample in the window are dropped, so memory is bounded by the window
(no raw snapshot is ever kept). All access to the store goes through `lock`: the poller thread appends while
request handlers read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Kind, SeriesKey, SeriesMeta, make_labels
from ..store import HistogramSeries, Series, Store, Table


SWEEP_EVERY = 64  # snapshots between searches for series that left the window


class Entry(Protocol):
    key: SeriesKey
    value: Any  # int, or a dense array of cumulative bucket counts for histograms
    layout: Any
    unit: str | None


class Snapshot(Protocol):
    timestamp_ns: int
    counters: list[Any]
    gauges: list[Any]
    histograms: list[Any]


@dataclass
class AgentTable:
    table: Table
    node: str | None  # the `node` label value of this agent's series (several agents only)
    series: dict[SeriesKey, Series] = field(default_factory=dict)


class Ingest:
    def __init__(self, store: Store, retention_ns: int):
        self.store = store
        self.retention_ns = retention_ns
        self.lock = threading.RLock()
        self.seq = 0  # number of snapshots appended so far; SSE event ids count these
        self.newest_ns: int | None = None
        self._agents: dict[str, AgentTable] = {}

    def add_agent(self, name: str, node: str | None) -> None:
        with self.lock:
            self._agents[name] = AgentTable(self.store.add_table(Table(name)), node)

    def append(self, agent: str, snapshot: Snapshot) -> bool:
        """Add one snapshot; False when it does not advance this agent's clock (a repeat or a step back)."""
        with self.lock:
            entry = self._agents[agent]
            stamps = entry.table.timestamps
            if len(stamps) and snapshot.timestamp_ns <= stamps[-1]:
                return False
            row = entry.table.append_row(snapshot.timestamp_ns)
            for kind, items in ((Kind.COUNTER, snapshot.counters), (Kind.GAUGE, snapshot.gauges),
                                (Kind.HISTOGRAM, snapshot.histograms)):
                for item in items:
                    series = entry.series.get(item.key) or self._create(entry, item, kind)
                    if series is None:
                        continue
                    if kind is Kind.HISTOGRAM:
                        assert isinstance(series, HistogramSeries)
                        if len(item.value) == series.layout.buckets:
                            series.set_cumulative(row, item.value)
                    else:
                        series.set(row, float(item.value))
            self.seq += 1
            self.newest_ns = max(self.newest_ns or 0, snapshot.timestamp_ns)
            self._evict(self.newest_ns - self.retention_ns)
            return True

    def _create(self, agent: AgentTable, item: Entry, kind: Kind) -> Series | None:
        labels = dict(item.key.labels)
        if agent.node is not None:
            labels["node"] = agent.node
        key = SeriesKey(item.key.metric, make_labels(labels))
        if kind is Kind.HISTOGRAM:
            layout = item.layout
            if layout is None:
                return None
            meta = SeriesMeta(key, kind, unit=item.unit, grouping_power=layout.grouping_power,
                              max_value_power=layout.max_value_power)
            series: Series = HistogramSeries(meta, agent.table)
        else:
            series = Series(SeriesMeta(key, kind, unit=item.unit), agent.table)
        agent.series[item.key] = series
        self.store.add_series(series)
        return series

    def _evict(self, cutoff_ns: int) -> None:
        # Looking for series that left the window costs a pass over all of them: do it now and then.
        sweep = self.seq % SWEEP_EVERY == 0
        for agent in self._agents.values():
            agent.table.evict_before(cutoff_ns)
            if not sweep:
                continue
            gone = [key for key, series in agent.series.items() if not _has_samples(series)]
            if gone:
                self.store.remove_series([agent.series.pop(key) for key in gone])

    def agents(self) -> dict[str, AgentTable]:
        return self._agents


def _has_samples(series: Series) -> bool:
    if isinstance(series, HistogramSeries):
        return len(series.window().times) > 0
    return bool(len(series.points()[0]))

