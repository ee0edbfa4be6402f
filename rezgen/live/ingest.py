"""Append decoded agent snapshots to the store's sliding window.

Each agent has its own table (its own timeline). With several agents every series also carries a `node` label
naming its agent, so pages can show one host at a time. Rows older than the retention window are evicted on
every append, and series left with no sample in the window are dropped, so memory is bounded by the window
(no raw snapshot is ever kept). A snapshot the client flags as an agent restart marks a break in its table
(`Table.mark_break`): no rate window reaches across it. All access to the store goes through `lock`: the poller
thread appends while request handlers read.

Speed (a snapshot is ~2,000 entries, every second or faster): counters and gauges are `BlockSeries`, so a
snapshot's values (read as columns: `Snapshot.scalars`) go into the table in one numpy operation; which slot each
entry goes to is planned once and reused while the agent sends the same entries in the same order (the decoder
hands out the very same list of identities for unchanged entries, so the check is by identity). A snapshot whose
entries changed gets a new plan (series found by key object identity, else by key); anything a plan cannot
express (a key that names a histogram among counters, say) takes the entry-by-entry path.
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rezgen.agent.pieces import Scalars
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels
from rezgen.store.store import BlockSeries, HistogramSeries, Series, Store, Table

SWEEP_EVERY = 64  # snapshots between searches for series that left the window
EVICT_LATE = 64  # rows older than the retention go in batches, once the oldest is a 64th of the retention late
_key = operator.attrgetter("key")


class Entry(Protocol):
    key: SeriesKey
    value: Any  # int, or a dense array of cumulative bucket counts for histograms
    layout: Any
    unit: str | None


class Snapshot(Protocol):
    timestamp_ns: int
    histograms: list[Entry]
    discontinuity: str | None  # "restart" when the client saw the agent start again (see AgentClient)

    def scalars(self, index: int) -> Scalars: ...


@dataclass
class Plan:
    """Where one list of a snapshot's entries (its counters, gauges or histograms) goes, valid while the list has
    the same keys in the same order."""

    keys: list[Any]  # what the list is matched by: its identities (counters, gauges) or keys (histograms)
    series: list[Series | None]  # per entry (None: a histogram without a layout, looked up again each time)
    slots: np.ndarray | None = None  # counters and gauges: the block slot of each entry written
    take: np.ndarray | None = None  # the entries written, when not all of them in order (a key sent twice)


@dataclass
class AgentTable:
    table: Table
    node: str | None  # the `node` label value of this agent's series (several agents only)
    series: dict[SeriesKey, Series] = field(default_factory=dict)
    plans: list[Plan | None] = field(default_factory=lambda: [None, None, None])  # counters, gauges, histograms
    by_object: dict[int, tuple[SeriesKey, Series]] = field(default_factory=dict)  # id(key) → (key, its series)


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
            if len(stamps) and getattr(snapshot, "discontinuity", None) == "restart":
                # Counters began again (often from large values: a host's counters count since boot). PromQL's
                # reset rule would count the whole new value as an increase — a spike —, so rates start afresh.
                entry.table.mark_break(snapshot.timestamp_ns)
            row = entry.table.append_row(snapshot.timestamp_ns)
            self._scalars(entry, 0, Kind.COUNTER, snapshot.scalars(0), row)
            self._scalars(entry, 1, Kind.GAUGE, snapshot.scalars(1), row)
            self._histograms(entry, snapshot.histograms, row)
            self.seq += 1
            self.newest_ns = max(self.newest_ns or 0, snapshot.timestamp_ns)
            self._evict(self.newest_ns - self.retention_ns)
            return True

    def reserve(self, agent: str, rows: int, series: int) -> None:
        """Room for `rows` more rows of the agent's table and `series` counters and gauges in all, taken at once
        before a bulk `extend` (grown in steps, each step is a copy into fresh memory)."""
        with self.lock:
            self._agents[agent].table.reserve(rows, series)

    def extend(self, agent: str, stamps: np.ndarray, scalars: list[Scalars]) -> tuple[int, np.ndarray]:
        """Add many rows at once (the data dir's refill): `stamps` strictly increasing, `scalars` the counters and
        gauges whose `values` are (rows, entries) matrices, NaN for no sample. Rows that do not advance the agent's
        clock are left out; returns the absolute row of the first row added, and which of `stamps` were."""
        with self.lock:
            entry = self._agents[agent]
            stamps = np.asarray(stamps, dtype=np.int64)
            kept = entry.table.timestamps
            added = stamps > kept[-1] if len(kept) else np.ones(len(stamps), dtype=bool)
            first = entry.table.extend_rows(stamps[added])
            if not added.any():
                return first, added
            for index, kind, columns in zip((0, 1), (Kind.COUNTER, Kind.GAUGE), scalars):
                if not len(columns):
                    continue
                values = columns.values[added].astype(np.float64, copy=False)
                plan = self._scalar_plan(entry, index, kind, columns.identities)
                if plan is None:
                    self._unplanned(entry, kind, columns.identities, values, first)
                    continue
                assert plan.slots is not None  # a counters or gauges plan always has its slots
                entry.table.block.write_rows(plan.slots, (values if plan.take is None else values[:, plan.take]).T)
            self.seq += int(added.sum())
            self.newest_ns = max(self.newest_ns or 0, int(stamps[added][-1]))
            self._evict(self.newest_ns - self.retention_ns)
            return first, added

    def _scalars(self, agent: AgentTable, index: int, kind: Kind, columns: Scalars, row: int) -> None:
        if not len(columns):
            return
        plan = self._scalar_plan(agent, index, kind, columns.identities)
        if plan is None:
            self._unplanned(agent, kind, columns.identities, columns.values[None, :], row)
            return
        values = columns.values.astype(np.float64)  # as float(value), all at once
        assert plan.slots is not None  # a counters or gauges plan always has its slots
        agent.table.block.write_row(plan.slots, values if plan.take is None else values[plan.take])

    def _scalar_plan(self, agent: AgentTable, index: int, kind: Kind, identities: list[Any]) -> Plan | None:
        """The plan of the agent's counters (index 0) or gauges (1) for these entries: the last one while they
        are the same list (or an equal one), else a new one."""
        plan = agent.plans[index]
        if plan is None or (plan.keys is not identities and plan.keys != identities):
            keys = [found[1] for found in identities]
            plan = agent.plans[index] = self._plan(agent, kind, keys, [found[2] for found in identities], identities)
        return plan

    def _unplanned(self, agent: AgentTable, kind: Kind, identities: list[Any], values: np.ndarray, row: int) -> None:
        """Entry by entry, what a plan cannot express: `values` (rows, entries) from the absolute row `row` on."""
        for j, found in enumerate(identities):
            series = agent.series.get(found[1]) or self._create(agent, found[1], kind, found[2])
            if series is not None:
                for i, value in enumerate(values[:, j].tolist()):
                    series.set(row + i, float(value))

    def _histograms(self, agent: AgentTable, items: list[Entry], row: int) -> None:
        if not items:
            return
        keys = list(map(_key, items))
        plan = agent.plans[2]
        if plan is None or plan.keys != keys:
            plan = agent.plans[2] = self._plan(agent, Kind.HISTOGRAM, keys, [e.unit for e in items],
                                               keys, [e.layout for e in items])
            assert plan is not None
        for item, series in zip(items, plan.series):
            if series is None:  # no layout when it was planned: try again, as for an unplanned entry
                series = agent.series.get(item.key) or self._create(agent, item.key, Kind.HISTOGRAM, item.unit,
                                                                     item.layout)
                if series is None:
                    continue
            assert isinstance(series, HistogramSeries)
            if len(item.value) == series.layout.buckets:
                series.set_cumulative(row, item.value)

    def _plan(self, agent: AgentTable, kind: Kind, keys: list[SeriesKey], units: list[str | None], match: list[Any],
              layouts: list[Any] | None = None) -> Plan | None:
        """The series of each entry (created as needed, in order); None when counters/gauges cannot be written as
        one block row (an entry whose key names a series kept elsewhere). `match` is what later snapshots are
        compared with to reuse the plan."""
        by_object = agent.by_object
        if len(by_object) > 2 * len(agent.series) + 1024:  # keys the decoder no longer hands out
            by_object.clear()
        series: list[Series | None] = []
        for i, key in enumerate(keys):
            found = by_object.get(id(key))
            if found is not None and found[0] is key:
                series.append(found[1])
                continue
            one = agent.series.get(key) or self._create(agent, key, kind, units[i], layouts[i] if layouts else None)
            if one is not None:
                by_object[id(key)] = (key, one)  # holding the key keeps its id from being reused
            series.append(one)
        if kind is Kind.HISTOGRAM:
            return Plan(match, series)
        if not all(type(s) is BlockSeries for s in series):
            return None
        slots = [s.slot for s in series]  # type: ignore[union-attr]
        take = None
        if len(set(slots)) != len(slots):  # a key sent twice: the last value wins, as with one write after another
            last = {slot: i for i, slot in enumerate(slots)}
            take = np.array(sorted(last.values()), dtype=np.intp)
            slots = [slots[i] for i in take]
        return Plan(match, series, np.array(slots, dtype=np.intp), take)

    def _create(self, agent: AgentTable, key: SeriesKey, kind: Kind, unit: str | None, layout: Any = None
                ) -> Series | None:
        labels = dict(key.labels)
        if agent.node is not None:
            labels["node"] = agent.node
        stored = SeriesKey(key.metric, make_labels(labels))
        if kind is Kind.HISTOGRAM:
            if layout is None:
                return None
            meta = SeriesMeta(stored, kind, unit=unit, grouping_power=layout.grouping_power,
                              max_value_power=layout.max_value_power)
            series: Series = HistogramSeries(meta, agent.table)
        else:
            series = BlockSeries(SeriesMeta(stored, kind, unit=unit), agent.table)
        agent.series[key] = series
        self.store.add_series(series)
        return series

    def histogram(self, agent: str, key: SeriesKey, unit: str | None, layout: Any) -> HistogramSeries | None:
        """The agent's histogram series of `key` (as the agent names it), made if new: for writing rows in bulk
        (`HistogramSeries.extend_cumulative`, rows the table already has), as the data dir's refill does."""
        with self.lock:
            entry = self._agents[agent]
            series = entry.series.get(key) or self._create(entry, key, Kind.HISTOGRAM, unit, layout)
            return series if isinstance(series, HistogramSeries) else None

    def _evict(self, cutoff_ns: int) -> None:
        # Looking for series that left the window costs a pass over all of them: do it now and then.
        sweep = self.seq % SWEEP_EVERY == 0
        for agent in self._agents.values():
            # In batches: evicting one row of every histogram per snapshot cost a tenth of the ingest.
            stamps = agent.table.timestamps
            if sweep or (len(stamps) and stamps[0] < cutoff_ns - self.retention_ns // EVICT_LATE):
                agent.table.evict_before(cutoff_ns)
            if not sweep:
                continue
            gone = [key for key, series in agent.series.items() if not _has_samples(series)]
            if gone:
                removed = [agent.series.pop(key) for key in gone]
                self.store.remove_series(removed)
                agent.plans = [None, None, None]
                dropped = {id(series) for series in removed}
                agent.by_object = {k: v for k, v in agent.by_object.items() if id(v[1]) not in dropped}

    def agents(self) -> dict[str, AgentTable]:
        return self._agents


def _has_samples(series: Series) -> bool:
    if isinstance(series, BlockSeries):
        return series.has_samples()
    if isinstance(series, HistogramSeries):
        return len(series.window().times) > 0
    return bool(len(series.points()[0]))

