"""The time-series store: one implementation for read-only recordings and for sliding live windows.

A `Table` is one producer's timeline (a recording, or one agent): a column of int64 nanosecond timestamps, and
for each series a row-aligned column of values. Source values are integers (Rezolus counters and gauges), so
NaN can safely mean "no sample in this row". Histograms are kept as sparse per-row deltas (see
`histograms.py`). Series of a recording are loaded lazily, column by column, when a query first touches them;
live series are appended row by row and evicted by age, so memory is bounded by the retention window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from rezgen.store.block import SeriesBlock
from rezgen.store.buffer import GrowArray
from rezgen.store.histogram import Layout
from rezgen.store.histograms import HistogramColumn, HistogramWindow
from rezgen.store.model import Kind, SeriesKey, SeriesMeta

Loader = Callable[[], np.ndarray]


class Table:
    """One timeline: timestamps plus row-aligned series."""

    def __init__(self, name: str, timestamps: np.ndarray | None = None):
        self.name = name
        self._t = GrowArray(np.int64, capacity=max(64, 0 if timestamps is None else len(timestamps)))
        if timestamps is not None:
            self._t.extend(np.asarray(timestamps, dtype=np.int64))
        self.series: list[Series] = []
        self._breaks: list[int] = []  # times of rows after an agent restart: no rate or window reaches before one
        self._spacing: tuple[tuple[int, int], int] | None = None  # (first row, rows) → typical sample spacing
        self._own: list[Series] = []  # series that keep their own rows (not in `_block`): evicted one by one
        self._block: SeriesBlock | None = None

    @property
    def block(self) -> SeriesBlock:
        """The shared storage of this table's `BlockSeries` (created on first use)."""
        if self._block is None:
            self._block = SeriesBlock(len(self._t), self.first_row)
        return self._block

    def attach(self, series: Series) -> None:
        self.series.append(series)
        if not isinstance(series, BlockSeries):
            self._own.append(series)

    def detach(self, series: Iterable[Series]) -> None:
        series = list(series)
        gone = {id(s) for s in series}
        for s in series:
            if isinstance(s, BlockSeries) and s.slot is not None:
                s.block.release(s.slot)
                s.slot = None
        self.series = [s for s in self.series if id(s) not in gone]
        self._own = [s for s in self._own if id(s) not in gone]

    @property
    def timestamps(self) -> np.ndarray:
        return self._t.view()

    @property
    def first_row(self) -> int:
        """Absolute index of the oldest kept row (grows as old rows are evicted)."""
        return self._t.dropped

    @property
    def breaks(self) -> np.ndarray | None:
        """Times of the rows after which the producer restarted (`mark_break`); None when there are none."""
        return np.array(self._breaks, dtype=np.int64) if self._breaks else None

    def mark_break(self, t_ns: int) -> None:
        """The row at t_ns starts afresh (its producer restarted: counters began again from other values)."""
        if not self._breaks or t_ns > self._breaks[-1]:
            self._breaks.append(t_ns)

    def spacing(self, floor_ns: int) -> int:
        """The typical distance between consecutive samples (their median), at least `floor_ns`: a gap longer
        than twice this is a hole in the data. From the timestamps, so an agent answering slower than it is polled
        (a recording replayed at 1 s, polled every 200 ms) does not make every interval a hole."""
        key = (self.first_row, len(self._t))
        if self._spacing is None or self._spacing[0] != key:
            stamps = self.timestamps
            typical = int(np.median(np.diff(stamps))) if len(stamps) > 2 else 0
            self._spacing = (key, typical)
        return max(floor_ns, self._spacing[1])

    def append_row(self, t_ns: int) -> int:
        ts = self.timestamps
        if len(ts) and t_ns <= ts[-1]:
            raise ValueError(f"timestamp {t_ns} does not advance past {ts[-1]}")
        self._t.append(t_ns)
        if self._block is not None:
            self._block.append_row()
        return self.first_row + len(self._t) - 1

    def reserve(self, rows: int, series: int) -> None:
        """Room for `rows` more rows and `series` block series in all (what a refill will add), taken at once."""
        total = len(self._t) + rows
        self._t.reserve(total + total // 4)
        self.block.reserve(series, total + total // 4 + 16)  # the block's own margin for a sliding window

    def extend_rows(self, stamps: np.ndarray) -> int:
        """Append rows at once (strictly increasing times after the last row's); returns the first one's absolute
        row."""
        ts = self.timestamps
        if len(stamps) and ((len(ts) and stamps[0] <= ts[-1]) or np.any(np.diff(stamps) <= 0)):
            raise ValueError("appended timestamps must increase past the last row's")
        first = self.first_row + len(self._t)
        self._t.extend(np.asarray(stamps, dtype=np.int64))
        if self._block is not None:
            self._block.extend_rows(len(stamps))
        return first

    def evict_before(self, t_ns: int) -> int:
        """Drop rows older than t_ns from the table and every series; returns how many rows went."""
        count = int(np.searchsorted(self.timestamps, t_ns, side="left"))
        if count:
            self._t.drop_front(count)
            if self._breaks and len(self._t):
                first = int(self.timestamps[0])
                self._breaks = [b for b in self._breaks if b > first]
            if self._block is not None:
                self._block.drop_front(count)
            for series in self._own:
                series._drop_front(count)
        return count

    def rows_between(self, t_lo: int | None, t_hi: int | None) -> slice:
        """Rows with t_lo < t <= t_hi (None = unbounded), relative to the kept rows."""
        ts = self.timestamps
        lo = 0 if t_lo is None else int(np.searchsorted(ts, t_lo, side="right"))
        hi = len(ts) if t_hi is None else int(np.searchsorted(ts, t_hi, side="right"))
        return slice(lo, max(lo, hi))


def segment_starts(stamps: np.ndarray, times: np.ndarray, breaks: np.ndarray | None) -> np.ndarray | None:
    """Per evaluation time, the index in `stamps` of the first sample at or after the last break at or before it
    (0 before any break): range windows start there, so no rate spans an agent restart. None without breaks."""
    if breaks is None or not len(breaks):
        return None
    which = np.searchsorted(breaks, times, side="right") - 1
    starts = np.searchsorted(stamps, breaks[np.maximum(which, 0)], side="left")
    return np.where(which >= 0, starts, 0)


class Series:
    """A counter or gauge on a table. Values are float64, NaN where the series had no sample."""

    def __init__(self, meta: SeriesMeta, table: Table, loader: Loader | None = None):
        self.meta = meta
        self.table = table
        self._loader = loader
        self._values: GrowArray | None = None
        if loader is None:
            self._values = GrowArray(np.float64, capacity=max(64, len(table.timestamps)), fill=np.nan)
            self._values.extend(np.full(len(table.timestamps), np.nan))

    @property
    def key(self) -> SeriesKey:
        return self.meta.key

    @property
    def kind(self) -> Kind:
        return self.meta.kind

    @property
    def loaded(self) -> bool:
        return self._values is not None

    def _column(self) -> GrowArray:
        if self._values is None:
            assert self._loader is not None
            self.provide(self._loader())
        assert self._values is not None
        return self._values

    def provide(self, values: np.ndarray) -> None:
        """Hand over decoded values (a recording decodes all columns of a metric in one read)."""
        if self._values is None:
            column = np.asarray(values, dtype=np.float64)
            self._values = GrowArray(np.float64, capacity=max(1, len(column)), fill=np.nan)
            self._values.extend(column)
            self._loader = None

    def unload(self, loader: Loader) -> None:
        """Forget the decoded values (a recording can load them again); used to bound memory."""
        self._values, self._loader = None, loader

    @property
    def loaded_bytes(self) -> int:
        """About how much memory the decoded values hold (0 while unloaded)."""
        return 0 if self._values is None else len(self._values) * 8

    def set(self, row: int, value: float) -> None:
        """Store a value at an absolute row of the table (rows appended since the series was last written)."""
        if row < self.table.first_row:
            raise ValueError(f"row {row} was already evicted")
        column = self._column()
        missing = row - self.table.first_row + 1 - len(column)
        if missing > 0:
            column.extend(np.full(missing, np.nan))
        column.view()[row - self.table.first_row] = value

    def _drop_front(self, count: int) -> None:
        if self._values is not None:
            self._values.drop_front(count)

    def points(self, t_lo: int | None = None, t_hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Samples with t_lo < t <= t_hi as (int64 ns times, float64 values), absent rows skipped."""
        rows = self.table.rows_between(t_lo, t_hi)
        return self.points_in(rows, self.table.timestamps[rows])

    def points_in(self, rows: slice, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`points` of kept rows already found, given their times: those come back as they are when every row
        has a sample (the series of a table then share one times array, and a query windows it once)."""
        values = self._row_values(rows)
        if len(values) != len(times):  # a live series not written up to the newest row yet
            times, values = times[: len(values)], values[: len(times)]
        absent = np.isnan(values)
        if not absent.any():
            return times, values.copy()
        return times[~absent], values[~absent]

    def _row_values(self, rows: slice) -> np.ndarray:
        return self._column().view()[rows]


class BlockSeries(Series):
    """A live counter or gauge whose values sit in its table's `SeriesBlock`: written a whole row at a time."""

    def __init__(self, meta: SeriesMeta, table: Table):
        self.meta = meta
        self.table = table
        self._loader = None
        self._values = None
        self.block = table.block
        self.slot: int | None = self.block.allocate()

    @property
    def loaded(self) -> bool:
        return True

    def _column(self) -> GrowArray:
        raise TypeError("a BlockSeries keeps its values in its table's SeriesBlock")

    def provide(self, values: np.ndarray) -> None:
        raise TypeError("a BlockSeries is written row by row")

    def unload(self, loader: Loader) -> None:
        raise TypeError("a BlockSeries cannot be unloaded")

    @property
    def loaded_bytes(self) -> int:
        return len(self.block) * 8

    def set(self, row: int, value: float) -> None:
        if row < self.table.first_row:
            raise ValueError(f"row {row} was already evicted")
        assert self.slot is not None, "series removed from its store"
        self.block.set(self.slot, row, value)

    def _drop_front(self, count: int) -> None:
        pass  # the table's block drops every slot at once

    def has_samples(self) -> bool:
        return self.slot is not None and self.block.newest(self.slot) >= self.table.first_row

    def _row_values(self, rows: slice) -> np.ndarray:
        assert self.slot is not None, "series removed from its store"
        return self.block.values(self.slot)[rows]


class HistogramSeries(Series):
    """A histogram on a table; its rows are sparse bucket deltas (see `histograms.HistogramColumn`)."""

    def __init__(self, meta: SeriesMeta, table: Table, loader: Callable[[], HistogramColumn] | None = None):
        assert meta.grouping_power is not None and meta.max_value_power is not None
        self.layout = Layout(meta.grouping_power, meta.max_value_power)
        self.meta = meta
        self.table = table
        self._hist_loader = loader
        self._hist: HistogramColumn | None = None if loader else HistogramColumn(self.layout.buckets)
        self._loader = None
        self._values = None

    @property
    def loaded(self) -> bool:
        return self._hist is not None

    def _histogram(self) -> HistogramColumn:
        if self._hist is None:
            assert self._hist_loader is not None
            self._hist = self._hist_loader()
            self._hist_loader = None
        return self._hist

    def provide(self, hist: HistogramColumn) -> None:  # type: ignore[override]
        """Hand over the decoded deltas (decoded ahead, elsewhere)."""
        if self._hist is None:
            self._hist, self._hist_loader = hist, None

    def unload(self, loader: Callable[[], HistogramColumn]) -> None:  # type: ignore[override]
        """Forget the decoded deltas (a recording can load them again); used to bound memory."""
        self._hist, self._hist_loader = None, loader

    @property
    def loaded_bytes(self) -> int:
        return 0 if self._hist is None else self._hist.nbytes

    def set_cumulative(self, row: int, counts: np.ndarray) -> None:
        hist = self._histogram()
        missing = row - self.table.first_row - hist.rows
        if missing > 0:
            hist.append_absent(missing)
        hist.append_cumulative(counts)

    def extend_cumulative(self, row: int, block: np.ndarray, present: np.ndarray) -> None:
        """Rows from the absolute row `row` on, at once: `present` marks those with a sample, `block` holds their
        cumulative counts (rows since the series was last written are absent)."""
        hist = self._histogram()
        missing = row - self.table.first_row - hist.rows
        if missing > 0:
            hist.append_absent(missing)
        hist.extend_cumulative(block, present)

    def _drop_front(self, count: int) -> None:
        if self._hist is not None:
            self._hist.drop_front(count)

    def window(self, t_lo: int | None = None, t_hi: int | None = None) -> HistogramWindow:
        """The samples with t_lo < t <= t_hi, with access to bucket sums between any two of them."""
        rows = self.table.rows_between(t_lo, t_hi)
        hist = self._histogram()
        return hist.window(self.table.timestamps, rows)

    def points(self, t_lo: int | None = None, t_hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Observation counts (cumulative), so a histogram can be listed like a counter."""
        window = self.window(t_lo, t_hi)
        return window.times, window.cumulative(np.arange(len(window.times))).sum(axis=1)


class Store:
    """All tables and series, indexed by metric name."""

    def __init__(self, interval_ns: int = 1_000_000_000):
        self.interval_ns = interval_ns
        self.tables: list[Table] = []
        self._by_metric: dict[str, list[Series]] = defaultdict(list)
        self._by_key: dict[tuple[int, SeriesKey], Series] = {}

    def add_table(self, table: Table) -> Table:
        self.tables.append(table)
        return table

    def add_series(self, series: Series) -> Series:
        self._by_metric[series.key.metric].append(series)
        self._by_key[(id(series.table), series.key)] = series
        series.table.attach(series)
        return series

    def subset(self, series: Iterable[Series]) -> Store:
        """A store of some of these series (the same objects, over the same tables), to evaluate a query over
        them alone."""
        part = Store(self.interval_ns)
        part.tables = self.tables
        for s in series:
            part._by_metric[s.key.metric].append(s)
            part._by_key[(id(s.table), s.key)] = s
        return part

    def get(self, table: Table, key: SeriesKey) -> Series | None:
        return self._by_key.get((id(table), key))

    def metrics(self) -> list[str]:
        return sorted(name for name, series in self._by_metric.items() if series)

    def series_of(self, metric: str) -> list[Series]:
        return self._by_metric.get(metric, [])

    def __iter__(self) -> Iterator[Series]:
        for series in self._by_metric.values():
            yield from series

    def time_range(self) -> tuple[int, int] | None:
        stamps = [t.timestamps for t in self.tables if len(t.timestamps)]
        if not stamps:
            return None
        return min(int(s[0]) for s in stamps), max(int(s[-1]) for s in stamps)

    def evict_before(self, t_ns: int) -> None:
        for table in self.tables:
            table.evict_before(t_ns)

    def remove_series(self, series: Iterable[Series]) -> None:
        by_table: dict[int, tuple[Table, list[Series]]] = {}
        for s in list(series):
            self._by_metric[s.key.metric].remove(s)
            self._by_key.pop((id(s.table), s.key), None)
            by_table.setdefault(id(s.table), (s.table, []))[1].append(s)
        for table, gone in by_table.values():
            table.detach(gone)
