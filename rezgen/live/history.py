"""Read a range of the data dir back as one store: a table per node, its rows the segments' rows in time order.

Only the segments that overlap the range (and `LOOKBACK` before it, for range selectors at its start) are opened,
and they are opened lazily as the reader does: footer, schema and timestamps; a series' values are read, from
every segment at once, when a query first needs them (counters and gauges a metric at a time, a histogram a
column at a time, straight into sparse deltas). A segment that cannot be read, or one of another format version,
is skipped with a warning. A row repeated in two segments (a part merged twice after a crash) is kept once. A
range of more than `MAX_ROWS` rows per node is read at every k-th row (see there).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rezgen.live.datadir import SegmentFile, list_segments
from rezgen.live.refill import open_segment
from rezgen.recording.reader import Column, Recording
from rezgen.store.histogram import Layout
from rezgen.store.histograms import HistogramColumn
from rezgen.store.model import Kind, SeriesKey, SeriesMeta
from rezgen.store.store import HistogramSeries, Series, Store, Table

log = logging.getLogger(__name__)

LOOKBACK_NS = 5 * 60 * 1_000_000_000  # PromQL's lookback and the dashboards' longest range window
OLDEST_EVERY_S = 10.0
# Rows of one node a range read from disk holds at most (6 h at 1 s): beyond that every k-th row is read, so memory
# and time stay those of six hours whatever the range (a day at 1 s decoded whole is gigabytes).
MAX_ROWS = 21_600
Piece = tuple[Recording, np.ndarray]  # a segment and its rows in the range


def overlapping(files: list[SegmentFile], start_ns: int, end_ns: int) -> list[SegmentFile]:
    return [s for s in files if s.end_ns >= start_ns and s.start_ns <= end_ns]


class HistoryStore(Store):
    """A store read from segments: what a query decoded can be released (`release`) and is read again when
    needed, so a page of a day holds one chart's series at a time rather than all of them."""

    def __init__(self, interval_ns: int):
        super().__init__(interval_ns)
        self.loaders: dict[int, tuple[Series, Any]] = {}  # id(series) -> (series, its loader)

    def add_loaded(self, series: Series, loader: Any) -> Series:
        self.loaders[id(series)] = (series, loader)
        return self.add_series(series)

    def release(self) -> None:
        for series, loader in self.loaders.values():
            if series.loaded:
                series.unload(loader)


def history_store(root: Path, start_ns: int, end_ns: int, interval_ns: int, lookback_ns: int = LOOKBACK_NS
                  ) -> HistoryStore | None:
    """The samples of [start_ns - lookback_ns, end_ns] of every node; None when there are none."""
    store = HistoryStore(interval_ns)
    lo = start_ns - lookback_ns
    for name, files in list_segments(root).items():
        recordings = [r for s in overlapping(files, lo, end_ns) if (r := open_segment(s.path)) is not None]
        add_node(store, name or root.name, recordings, lo, end_ns)
    return store if store.tables else None


def add_node(store: HistoryStore, name: str, recordings: list[Recording], lo: int, hi: int) -> None:
    """One node's segments (in time order) as one table of `store`, rows within [lo, hi]."""
    pieces: list[Piece] = []
    last = -1
    for recording in recordings:
        stamps = recording.table.timestamps
        rows = np.flatnonzero((stamps >= lo) & (stamps <= hi) & (stamps > last))
        if len(rows):
            pieces.append((recording, rows))
            last = int(stamps[rows[-1]])
    if not pieces:
        return
    total = sum(len(rows) for _, rows in pieces)
    if total > MAX_ROWS:  # every k-th row: a day costs what MAX_ROWS rows do (spikes shorter than k rows are lost)
        stride = -(-total // MAX_ROWS)
        starts = np.cumsum([0] + [len(rows) for _, rows in pieces])
        pieces = [(recording, rows[(-start) % stride :: stride]) for (recording, rows), start in zip(pieces, starts)]
        pieces = [(recording, rows) for recording, rows in pieces if len(rows)]
    table = store.add_table(Table(name, np.concatenate([r.table.timestamps[rows] for r, rows in pieces])))
    by_key: dict[SeriesKey, SeriesMeta] = {}
    columns: list[dict[SeriesKey, Column]] = []
    for recording, _ in pieces:
        columns.append({c.meta.key: c for c in recording.columns})
        for column in recording.columns:
            by_key.setdefault(column.meta.key, column.meta)
    loaders: dict[str, _MetricLoader] = {}  # counters and gauges: a metric's columns are read together
    for key, meta in by_key.items():
        if meta.kind is Kind.HISTOGRAM:
            located = [(recording, rows, found.get(key)) for (recording, rows), found in zip(pieces, columns)]
            histogram = partial(_histogram, located, meta)
            store.add_loaded(HistogramSeries(meta, table, histogram), histogram)
            continue
        loader = loaders.get(key.metric) or loaders.setdefault(key.metric, _MetricLoader(pieces, columns))
        load = partial(loader.load, key)
        loader.series.append(store.add_loaded(Series(meta, table, load), load))


class _MetricLoader:
    """Reads every column of one metric from every segment in one go, and hands each series its values."""

    def __init__(self, pieces: list[Piece], columns: list[dict[SeriesKey, Column]]):
        self.series: list[Series] = []
        self.pieces = pieces
        self.columns = columns

    def load(self, key: SeriesKey) -> np.ndarray:
        parts: dict[int, list[np.ndarray]] = {id(s): [] for s in self.series}
        for (recording, rows), found in zip(self.pieces, self.columns):
            present = [found[s.key] for s in self.series if s.key in found]
            values = recording.read_scalars(present) if present else {}
            for s in self.series:
                column = found.get(s.key)
                parts[id(s)].append(values[column.index][rows] if column is not None else np.full(len(rows), np.nan))
        wanted = np.empty(0)
        for s in self.series:
            if s.key == key:
                wanted = np.concatenate(parts[id(s)])
            else:
                s.provide(np.concatenate(parts[id(s)]))
        return wanted


def _histogram(located: list[tuple[Recording, np.ndarray, Column | None]], meta: SeriesMeta) -> HistogramColumn:
    layout = Layout(meta.grouping_power or 0, meta.max_value_power or 0)
    out = HistogramColumn(layout.buckets)
    for recording, rows, column in located:
        if column is None or (column.meta.grouping_power, column.meta.max_value_power) != (
                meta.grouping_power, meta.max_value_power):
            out.append_absent(len(rows))
            continue
        hist = recording.histogram_loader(column)()
        present = hist.present()[rows]
        out.extend_cumulative(hist.cumulative_at(rows[present]), present)
    out.shrink()
    return out



class History:
    """The data dir as the live server reads it: how far back it goes, a range of it as a store, and its state."""

    def __init__(self, root: Path, keep_ns: int, writer: Any = None):
        self.root = root
        self.keep_ns = keep_ns
        self.writer = writer  # the data dir's `HistoryWriter`: its state, and what it has not written yet
        self._oldest: tuple[float, int | None] = (0.0, None)

    def oldest_ns(self) -> int | None:
        """The first sample on disk (looked up at most every `OLDEST_EVERY_S`: retention moves it slowly)."""
        checked, oldest = self._oldest
        if time.monotonic() - checked > OLDEST_EVERY_S:
            try:
                starts = [files[0].start_ns for files in list_segments(self.root).values()]
            except OSError:
                starts = []
            oldest = min(starts) if starts else None
            self._oldest = (time.monotonic(), oldest)
        return oldest

    def store(self, start_ns: int, end_ns: int, interval_ns: int) -> HistoryStore | None:
        """[start_ns, end_ns] from disk: the writer's buffer is written first, so the disk holds every sample
        taken so far and the range joins the live window without a seam."""
        if self.writer is not None:
            self.writer.rotate()
        return history_store(self.root, start_ns, end_ns, interval_ns)

    def status(self) -> dict[str, Any]:
        oldest = self.oldest_ns()
        return {"dir": str(self.root), "oldest_ms": oldest // 1_000_000 if oldest is not None else None,
                "keep_ms": self.keep_ns // 1_000_000, "error": getattr(self.writer, "fault", None)}
