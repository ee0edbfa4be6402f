"""Read a range of the data dir back as one store: a table per node, its rows the segments' rows in time order.

Only the segments that overlap the range (and `LOOKBACK` before it, for range selectors at its start) are read,
one at a time, and only the columns of the metrics asked for (a page's charts), each segment in one pass:
counters and gauges into one array per series, histograms straight into sparse deltas. A segment that cannot be
read, or one of another format version, is skipped with a warning. A row repeated in two segments (a part merged
twice after a crash) is kept once. A range of more than `MAX_ROWS` rows per node is read at every k-th row.

A live section page's long range is answered from the segments' rollups instead (rezgen.server.rollups) wherever
they exist; this read is what answers without them (and the metric browser, the API).
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
from rezgen.recording.reader import RecordingError
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


def overlapping(files: list[SegmentFile], start_ns: int, end_ns: int) -> list[SegmentFile]:
    return [s for s in files if s.end_ns >= start_ns and s.start_ns <= end_ns]


class HistoryStore(Store):
    """A store read from segments for one request."""


def history_store(root: Path, start_ns: int, end_ns: int, interval_ns: int, lookback_ns: int = LOOKBACK_NS,
                  metrics: set[str] | None = None) -> HistoryStore | None:
    """The samples of [start_ns - lookback_ns, end_ns] of every node (of `metrics` only, when given); None when
    there are none."""
    store = HistoryStore(interval_ns)
    lo = start_ns - lookback_ns
    for name, files in list_segments(root).items():
        add_node(store, name or root.name, [s.path for s in overlapping(files, lo, end_ns)], lo, end_ns, metrics)
    return store if store.tables else None


def add_node(store: Store, name: str, paths: list[Path], lo: int, hi: int, metrics: set[str] | None) -> None:
    """One node's segments (in time order) as one table of `store`, rows within [lo, hi]. One segment is open at
    a time (the parsed footer of a segment of a large host is ~6 MB: a day of them at once is a gigabyte)."""
    spans: list[tuple[Path, np.ndarray]] = []  # a segment and its rows in the range
    stamps: list[np.ndarray] = []
    last = -1
    for path in paths:
        recording = open_segment(path)
        if recording is None:
            continue
        times = recording.table.timestamps
        rows = np.flatnonzero((times >= lo) & (times <= hi) & (times > last))
        if len(rows):
            spans.append((path, rows))
            stamps.append(times)
            last = int(times[rows[-1]])
        del recording
    total = sum(len(rows) for _, rows in spans)
    if total > MAX_ROWS:  # every k-th row: a day costs what MAX_ROWS rows do (spikes shorter than k rows are lost)
        stride = -(-total // MAX_ROWS)
        starts = np.cumsum([0] + [len(rows) for _, rows in spans])
        spans = [(path, rows[(-start) % stride :: stride]) for (path, rows), start in zip(spans, starts)]
    kept = [(path, rows, times) for (path, rows), times in zip(spans, stamps) if len(rows)]
    if not kept:
        return
    table = store.add_table(Table(name, np.concatenate([times[rows] for _, rows, times in kept])))
    metas: dict[SeriesKey, SeriesMeta] = {}
    scalars: dict[SeriesKey, list[tuple[int, np.ndarray]]] = {}  # key -> (first table row, values) per segment
    histograms: dict[SeriesKey, HistogramColumn] = {}
    done = 0  # table rows filled so far
    for path, rows, _ in kept:
        try:
            _read_segment(path, rows, done, metrics, metas, scalars, histograms)
        except RecordingError as exc:
            log.warning("skipping a segment: %s", exc)
        done += len(rows)
    for key, parts in scalars.items():
        column = np.full(done, np.nan)
        for first, part in parts:
            column[first : first + len(part)] = part
        store.add_series(Series(metas[key], table, partial(_given, column)))
    for key, hist in histograms.items():
        hist.append_absent(done - hist.rows)
        hist.shrink()
        store.add_series(HistogramSeries(metas[key], table, partial(_given, hist)))


def _read_segment(path: Path, rows: np.ndarray, first: int, metrics: set[str] | None,
                  metas: dict[SeriesKey, SeriesMeta], scalars: dict[SeriesKey, list[tuple[int, np.ndarray]]],
                  histograms: dict[SeriesKey, HistogramColumn]) -> None:
    """The wanted columns of one segment's `rows`, which are the table's rows from `first` on."""
    recording = open_segment(path)
    if recording is None:  # it was readable a moment ago
        return
    columns = [c for c in recording.columns if metrics is None or c.meta.key.metric in metrics]
    wanted = [c for c in columns if c.meta.kind is not Kind.HISTOGRAM]
    values = recording.read_scalars(wanted) if wanted else {}
    for column in wanted:
        metas.setdefault(column.meta.key, column.meta)
        scalars.setdefault(column.meta.key, []).append((first, values[column.index][rows]))
    for column in (c for c in columns if c.meta.kind is Kind.HISTOGRAM):
        meta = metas.setdefault(column.meta.key, column.meta)
        if (column.meta.grouping_power, column.meta.max_value_power) != (meta.grouping_power, meta.max_value_power):
            continue  # another layout than the series began with: left out here
        out = histograms.get(column.meta.key)
        if out is None:
            out = histograms[column.meta.key] = HistogramColumn(
                Layout(meta.grouping_power or 0, meta.max_value_power or 0).buckets)
        hist = recording.histogram_loader(column)()
        present = hist.present()[rows]
        out.append_absent(first - out.rows)
        out.extend_cumulative(hist.cumulative_at(rows[present]), present)


def _given(value: Any) -> Any:
    return value


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

    def store(self, start_ns: int, end_ns: int, interval_ns: int, metrics: set[str] | None = None
              ) -> HistoryStore | None:
        """[start_ns, end_ns] from disk (of `metrics` only): the writer's buffer is written first, so the disk holds
        every sample taken so far and the range joins the live window without a seam."""
        if self.writer is not None:
            self.writer.rotate()
        return history_store(self.root, start_ns, end_ns, interval_ns, metrics=metrics)

    def status(self) -> dict[str, Any]:
        oldest = self.oldest_ns()
        return {"dir": str(self.root), "oldest_ms": oldest // 1_000_000 if oldest is not None else None,
                "keep_ms": self.keep_ns // 1_000_000, "error": getattr(self.writer, "fault", None)}
