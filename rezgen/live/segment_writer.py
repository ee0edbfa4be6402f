"""Write what agents send as complete Rezolus recordings ("parts"), at least once a minute: the writer behind
`serve --live --record FILE` (see `record`), and the thread, faults and column assembly the data dir of live history
builds on (see `datadir`: it journals its open segment instead, see `journal`).

A Parquet schema is fixed when a file starts, but live series come and go, and a process can be killed at any
moment; so snapshots are buffered per agent and written at least every `flush_s` (and whenever the buffer passes
`SEGMENT_BYTES`) as complete files under temporary names renamed when complete, by a thread of their own. A kill -9
loses at most the buffered minute. Where the parts go and what happens after each write is the subclass's.

Buffering is by columns, as the fast decode path hands them out (`Snapshot.scalars`): a row keeps the snapshot's
value arrays and its (shared) lists of names, never an object per value, so buffering costs a few microseconds
per snapshot; the columns are assembled when the part is written.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rezgen.recording.writer import MAX_ROW_GROUP_SIZE, RecordingWriter
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels

log = logging.getLogger(__name__)

FLUSH_SECONDS = 60.0
SEGMENT_BYTES = 64 << 20  # of buffered values: a large host's snapshot is ~2 MB
FLUSH_ENV = "REZGEN_RECORD_SEGMENT_S"  # tests write parts every few seconds rather than every minute
ColumnId = tuple[Kind, str]
SCALAR_KINDS = (Kind.COUNTER, Kind.GAUGE)


@dataclass
class Row:
    t_ns: int
    duration_ns: int | None
    scalars: list[Any]  # counters, gauges: `agent.pieces.Scalars`
    histograms: list[Any]  # entries with a layout


@dataclass
class AgentBuffer:
    index: int
    node: str | None  # the `node` label of its series (several agents only)
    seq: int = 0  # parts written
    last_ns: int | None = None
    rows: list[Row] = field(default_factory=list)
    bytes: int = 0


@dataclass
class Part:
    """One agent's buffered rows, taken to be written."""

    agent: str
    index: int
    node: str | None
    seq: int
    rows: list[Row]


class SegmentWriter:
    def __init__(self, interval_ms: int, nodes: dict[str, str], footer: Callable[[], dict[str, Any]] = dict,
                 flush_s: float | None = None, segment_bytes: int = SEGMENT_BYTES):
        self.interval_ms = interval_ms
        self.nodes = nodes  # agent url -> node label (several agents), as `parquet combine` names them
        self.footer = footer  # systeminfo and descriptions, as the agents reported them by now
        self.rows = 0  # snapshots taken
        self.flush_s = flush_s or float(os.environ.get(FLUSH_ENV) or FLUSH_SECONDS)
        self.segment_bytes = segment_bytes
        self.fault: str | None = None  # the last write's error, None once a write succeeds again
        self._agents: dict[str, AgentBuffer] = {}
        self._lock = threading.Lock()  # the buffers
        self._writing = threading.Lock()  # one rotation at a time
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._rotate_every, name="segment-writer", daemon=True)
        self._thread.start()

    def add(self, agent: str, snapshot: Any) -> None:
        with self._lock:
            if self._closing:
                return
            state = self._agents.get(agent)
            if state is None:
                state = self._agents[agent] = AgentBuffer(len(self._agents), self.nodes.get(agent))
            if state.last_ns is not None and snapshot.timestamp_ns <= state.last_ns:
                return  # a recording's time only moves forward
            scalars = [snapshot.scalars(0), snapshot.scalars(1)]
            histograms = [e for e in snapshot.histograms if e.layout is not None]  # no layout: no column for it
            state.rows.append(Row(snapshot.timestamp_ns, getattr(snapshot, "duration_ns", None), scalars, histograms))
            state.last_ns = snapshot.timestamp_ns
            state.bytes += sum(s.values.nbytes for s in scalars) + sum(getattr(e.value, "nbytes", 8)
                                                                      for e in histograms)
            self.rows += 1
            if state.bytes >= self.segment_bytes:
                self._wake.set()

    def rotate(self) -> None:
        """Write what is buffered now, one part per agent."""
        with self._writing:
            with self._lock:
                taken = [Part(url, a.index, a.node, a.seq, a.rows) for url, a in self._agents.items() if a.rows]
                for a in self._agents.values():
                    if a.rows:
                        a.seq, a.rows, a.bytes = a.seq + 1, [], 0
            for part in taken:
                try:
                    path = self.part_path(part)
                    write_part(path, part.rows, part.node, self.interval_ms, self.footer())
                except (OSError, ValueError) as exc:  # e.g. a full disk: say so (once), keep going from memory
                    self._failed(exc)
                    continue
                if self.fault is not None:
                    log.warning("%s: writing again", self.describe())
                self.fault = None
                self.written(part, path)
            self.rotated()

    def _failed(self, exc: BaseException) -> None:
        message = f"{self.describe()}: could not write: {exc}; live data stays in memory only"
        if message != self.fault:
            log.error("%s", message)
        self.fault = message

    def describe(self) -> str:
        """What the writer writes to, for its messages."""
        return "segments"

    def part_path(self, part: Part) -> Path:
        """Where a part goes (its directory exists)."""
        raise NotImplementedError

    def written(self, part: Part, path: Path) -> None:
        """Called after each part is in place."""

    def rotated(self) -> None:
        """Called after each rotation (parts written or not)."""

    def stop(self) -> None:
        """Stop the rotation thread and write what is buffered."""
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.rotate()

    def tick(self) -> None:
        """What the writer's thread does every `flush_s` (and when woken)."""
        self.rotate()

    def _rotate_every(self) -> None:
        deadline = time.monotonic() + self.flush_s
        while True:
            self._wake.wait(max(deadline - time.monotonic(), 0))
            if self._closing:
                return
            if self._wake.is_set() or time.monotonic() >= deadline:
                self._wake.clear()
                self.tick()
                deadline = time.monotonic() + self.flush_s


def write_part(path: Path, rows: list[Row], node: str | None, interval_ms: int, footer: dict[str, Any]) -> None:
    """One agent's rows as a complete recording at `path` (written under a temporary name, then renamed)."""
    metas: dict[ColumnId, SeriesMeta] = {}
    cells: dict[ColumnId, np.ndarray] = {}
    for index, kind in enumerate(SCALAR_KINDS):
        scalar_columns([row.scalars[index] for row in rows], kind, node, metas, cells)
    _histogram_columns(rows, node, metas, cells)
    stamps = np.array([row.t_ns for row in rows], dtype=np.int64)
    durations = np.array([np.nan if row.duration_ns is None else row.duration_ns for row in rows], dtype=np.float64)
    write_columns(path, stamps, durations, metas, cells, interval_ms, footer)


def write_columns(path: Path, stamps: np.ndarray, durations: np.ndarray, metas: dict[ColumnId, SeriesMeta],
                  cells: dict[ColumnId, np.ndarray], interval_ms: int, footer: dict[str, Any],
                  row_group_size: int = MAX_ROW_GROUP_SIZE) -> None:
    """Columns (see `scalar_columns`) as a complete recording at `path` (temporary name, then renamed)."""
    order = list(metas)
    named = [(name if kind is not Kind.HISTOGRAM else f"{name}:buckets", metas[(kind, name)]) for kind, name in order]
    with RecordingWriter(path, named, interval_ms=interval_ms, source="rezolus", footer=footer,
                         row_group_size=row_group_size) as writer:
        writer.write(stamps, [cells[c] for c in order], durations)


def column_name(name: str, key: SeriesKey, node: str | None) -> str:
    name = name or str(key)  # V2 external metrics have empty names
    return f"{node}::{name}" if node else name


def scalar_columns(parts: list[Any], kind: Kind, node: str | None, metas: dict[ColumnId, SeriesMeta],
                    cells: dict[ColumnId, np.ndarray]) -> None:
    """Counters or gauges of the rows as integer columns (exact u64), masked where a row has no value. Rows that
    share their list of names (the decoder hands out the same list while the agent sends the same entries) are
    placed at once, into one (rows, columns) matrix."""
    dtype = np.uint64 if kind is Kind.COUNTER else np.int64
    index: dict[ColumnId, int] = {}
    runs: list[tuple[int, int, np.ndarray]] = []  # rows [start, end) and the matrix column of each entry
    start = 0
    while start < len(parts):
        names, identities = parts[start].names, parts[start].identities
        end = start + 1
        while end < len(parts) and parts[end].names is names:
            end += 1
        where: list[int] = []
        for name, found in zip(names, identities):
            column = (kind, column_name(name, found[1], node))
            if column not in index:
                index[column] = len(index)
                metas.setdefault(column, _scalar_meta(found[1], kind, found[2], node))
            where.append(index[column])
        runs.append((start, end, np.array(where, dtype=np.intp)))
        start = end
    values = np.zeros((len(parts), len(index)), dtype=dtype)
    present = np.zeros((len(parts), len(index)), dtype=bool)
    for start, end, slots in runs:
        if len(slots):
            # A key sent twice in a snapshot: the last value wins, as numpy's fancy assignment does.
            values[start:end, slots] = np.vstack([p.values for p in parts[start:end]])
            present[start:end, slots] = True
    full = np.asarray(present.all(axis=0))
    for column, k in index.items():
        cells[column] = values[:, k] if full[k] else np.ma.MaskedArray(values[:, k], mask=~present[:, k])


@functools.lru_cache(maxsize=1 << 16)
def _scalar_meta(key: SeriesKey, kind: Kind, unit: str | None, node: str | None) -> SeriesMeta:
    """(Made once per series: building labels for 2,000 columns every minute showed in the ingest's CPU.)"""
    return series_meta(key, kind, unit, None, node)


def _histogram_columns(rows: list[Row], node: str | None, metas: dict[ColumnId, SeriesMeta],
                       cells: dict[ColumnId, np.ndarray]) -> None:
    """(rows, buckets) arrays with NaN rows where there is no value (or one of another layout)."""
    for i, row in enumerate(rows):
        for entry in row.histograms:
            column = (Kind.HISTOGRAM, column_name(entry.name, entry.key, node))
            meta = metas.get(column)
            if meta is None:
                meta = metas[column] = series_meta(entry.key, Kind.HISTOGRAM, entry.unit, entry.layout, node)
                width = Layout(entry.layout.grouping_power, entry.layout.max_value_power).buckets
                cells[column] = np.full((len(rows), width), np.nan)
            dense = cells[column]
            if len(entry.value) == dense.shape[1]:
                dense[i] = entry.value


def series_meta(key: SeriesKey, kind: Kind, unit: str | None, layout: Any, node: str | None) -> SeriesMeta:
    labels = dict(key.labels)
    if node:
        labels["node"] = node
    meta = SeriesMeta(SeriesKey(key.metric, make_labels(labels)), kind, unit=unit)
    if layout is not None:
        meta.grouping_power, meta.max_value_power = layout.grouping_power, layout.max_value_power
    return meta
