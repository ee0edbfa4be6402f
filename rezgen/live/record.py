"""`serve --live --record FILE`: write what the agents send as a Rezolus-format recording (format doc §1,
agent-protocol §3.4) that `rezgen build` and Rezolus can open.

A Parquet schema is fixed when a file starts, but live series come and go, and a process can be killed at any
moment; so snapshots are buffered per agent and written at least every minute (and whenever the buffer passes
`SEGMENT_BYTES`) as complete segment files in `FILE.parts/` (see `segments`), by a thread of their own. Closing
writes the last segments and merges them all into FILE. A kill -9 loses at most the buffered minute; the next
start with the same FILE recovers the segments left behind (`recover`) and continues from them.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rezgen.live.segments import merge, remove_temporaries, segment_name, sidecar, streams
from rezgen.recording.writer import RecordingWriter
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 60.0
SEGMENT_BYTES = 64 << 20  # of buffered values: a large host's snapshot is ~2 MB
SEGMENT_ENV = "REZGEN_RECORD_SEGMENT_S"  # tests rotate in seconds rather than a minute
ColumnId = tuple[Kind, str]
Row = tuple[int, int | None, dict[ColumnId, Any]]


def recover(path: Path) -> int:
    """Merge the segments a killed session left beside `path` into it; returns the rows written (0: none left).
    The segments stay, so the next session continues the same recording."""
    remove_temporaries(path)
    return merge(sidecar(path), path)


@dataclass
class _Agent:
    index: int
    node: str | None
    seq: int = 0
    last_ns: int | None = None
    rows: list[Row] = field(default_factory=list)
    columns: dict[ColumnId, SeriesMeta] = field(default_factory=dict)  # of the buffered rows
    bytes: int = 0


class LiveRecorder:
    def __init__(self, path: Path, interval_ms: int, nodes: dict[str, str],
                 footer: Callable[[], dict[str, Any]] = dict, segment_s: float | None = None,
                 segment_bytes: int = SEGMENT_BYTES):
        self.path = Path(path)
        self.parts = sidecar(self.path)
        self.parts.mkdir(exist_ok=True)
        self.interval_ms = interval_ms
        self.nodes = nodes  # agent url -> node label (several agents), as `parquet combine` names them
        self.footer = footer  # systeminfo and descriptions, as the agents reported them by now
        self.rows = 0  # snapshots taken
        self.segment_s = segment_s or float(os.environ.get(SEGMENT_ENV) or SEGMENT_SECONDS)
        self.segment_bytes = segment_bytes
        self._run = max((run for run, _ in streams(self.parts)), default=-1) + 1
        self._agents: dict[str, _Agent] = {}
        self._lock = threading.Lock()  # the buffers
        self._writing = threading.Lock()  # one rotation at a time
        self._wake = threading.Event()
        self._closing = False
        self._closed: int | None = None
        self._thread = threading.Thread(target=self._rotate_every, name="recorder", daemon=True)
        self._thread.start()

    def add(self, agent: str, snapshot: Any) -> None:
        with self._lock:
            if self._closing:
                return
            state = self._agents.get(agent)
            if state is None:
                state = self._agents[agent] = _Agent(len(self._agents), self.nodes.get(agent))
            if state.last_ns is not None and snapshot.timestamp_ns <= state.last_ns:
                return  # a recording's time only moves forward
            values: dict[ColumnId, Any] = {}
            size = 0
            for kind, entries in ((Kind.COUNTER, snapshot.counters), (Kind.GAUGE, snapshot.gauges),
                                  (Kind.HISTOGRAM, snapshot.histograms)):
                for entry in entries:
                    if kind is Kind.HISTOGRAM and entry.layout is None:
                        continue  # no layout, no column to write it to
                    name = entry.name or str(entry.key)  # V2 external metrics have empty names
                    column = (kind, f"{state.node}::{name}" if state.node else name)
                    values[column] = entry.value
                    size += getattr(entry.value, "nbytes", 8)
                    if column not in state.columns:
                        state.columns[column] = _meta(entry, kind, state.node)
            state.rows.append((snapshot.timestamp_ns, getattr(snapshot, "duration_ns", None), values))
            state.last_ns = snapshot.timestamp_ns
            state.bytes += size
            self.rows += 1
            if state.bytes >= self.segment_bytes:
                self._wake.set()

    def rotate(self) -> None:
        """Write what is buffered as segments now."""
        with self._writing:
            with self._lock:
                taken = [(a.index, a.seq, a.rows, a.columns) for a in self._agents.values() if a.rows]
                for a in self._agents.values():
                    if a.rows:
                        a.seq, a.rows, a.columns, a.bytes = a.seq + 1, [], {}, 0
            for index, seq, rows, columns in taken:
                try:
                    self._write(self.parts / segment_name(self._run, index, seq), rows, columns)
                except (OSError, ValueError) as exc:  # e.g. a full disk: say so, keep recording
                    log.error("could not write a recording segment: %s", exc)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def close(self) -> int:
        """Write the last segments and merge every segment (earlier sessions' too) into the recording; returns its
        rows (0: nothing was written). The segments are removed only once the recording is in place."""
        if self._closed is not None:
            return self._closed
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join()
        self.rotate()
        remove_temporaries(self.path)
        self._closed = merge(self.parts, self.path)
        shutil.rmtree(self.parts, ignore_errors=True)
        return self._closed

    def _rotate_every(self) -> None:
        deadline = time.monotonic() + self.segment_s
        while True:
            self._wake.wait(max(deadline - time.monotonic(), 0))
            if self._closing:
                return
            if self._wake.is_set() or time.monotonic() >= deadline:
                self._wake.clear()
                self.rotate()
                deadline = time.monotonic() + self.segment_s

    def _write(self, path: Path, rows: list[Row], columns: dict[ColumnId, SeriesMeta]) -> None:
        order = list(columns)
        named = [(name if kind is not Kind.HISTOGRAM else f"{name}:buckets", columns[(kind, name)])
                 for kind, name in order]
        stamps = np.array([t for t, _, _ in rows], dtype=np.int64)
        durations = np.array([np.nan if d is None else d for _, d, _ in rows], dtype=np.float64)
        with RecordingWriter(path, named, interval_ms=self.interval_ms, source="rezolus",
                             footer=self.footer()) as writer:
            writer.write(stamps, [_cells(rows, c, columns[c]) for c in order], durations)


def _cells(rows: list[Row], column: ColumnId, meta: SeriesMeta) -> np.ndarray:
    """One column of the buffered rows: masked integers (exact u64), or for a histogram a (rows, buckets) array
    with NaN rows where there is no value (or one of another layout)."""
    cells = [values.get(column) for _, _, values in rows]
    if column[0] is Kind.HISTOGRAM:
        assert meta.grouping_power is not None and meta.max_value_power is not None
        width = Layout(meta.grouping_power, meta.max_value_power).buckets
        dense = np.full((len(rows), width), np.nan)
        for i, cell in enumerate(cells):
            if cell is not None and len(cell) == width:
                dense[i] = cell
        return dense
    present = np.array([c is not None for c in cells])
    dtype = np.uint64 if column[0] is Kind.COUNTER else np.int64
    return np.ma.MaskedArray(np.array([c if c is not None else 0 for c in cells], dtype=dtype), mask=~present)


def _meta(entry: Any, kind: Kind, node: str | None) -> SeriesMeta:
    labels = dict(entry.key.labels)
    if node:
        labels["node"] = node
    meta = SeriesMeta(SeriesKey(entry.key.metric, make_labels(labels)), kind, unit=entry.unit)
    if kind is Kind.HISTOGRAM and entry.layout is not None:
        meta.grouping_power, meta.max_value_power = entry.layout.grouping_power, entry.layout.max_value_power
    return meta
