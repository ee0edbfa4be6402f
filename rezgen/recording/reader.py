"""Read a Rezolus Parquet recording into a `Store` (format doc §1–3, checklist §6).

Opening reads only the footer, the Arrow schema and the timestamp column. Series values are decoded when a query
first needs them: counters and gauges a metric at a time, histograms one column at a time in row batches, turned
at once into sparse deltas — the decoded bucket arrays of a long recording would not fit in memory.
Columns are addressed by position because names repeat; identity comes from each column's field metadata.
"""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezgen.errors import RezgenError
from rezgen.gcpause import paused_gc
from rezgen.recording.footer import Footer, Notice, parse_footer
from rezgen.recording.timestamps import interval_ns, usable_timestamps
from rezgen.store.histogram import Layout, LayoutError
from rezgen.store.histograms import HistogramColumn
from rezgen.store.model import PROPERTY_KEYS, Kind, SeriesKey, SeriesMeta, make_labels
from rezgen.store.store import HistogramSeries, Series, Store, Table

# Rows of a histogram column decoded at once: about this many bytes of buckets, whatever the layout (a fixed row
# count would make a grouping power 7 histogram's batch 15 times as large as a grouping power 3 one's).
HISTOGRAM_BATCH_BYTES = 2 * 2**20
SCALAR_READ_BYTES = 1 * 2**20  # decoded counters and gauges one read may produce (a metric is never split)
# Arrow's values of one Parquet read of counters and gauges, at most (a metric of hundreds of columns is read in
# slices): a read's Arrow table lives beside the float64 arrays made from it, so a whole day of a 700-column metric
# read at once would double its ~0.5 GB.
SCALAR_SLICE_BYTES = 32 * 2**20
RESERVED_COLUMNS = ("timestamp", "duration")


class RecordingError(RezgenError):
    """A recording that cannot be read; the message is one line meant for the user."""


@dataclass
class Column:
    index: int  # position in the Arrow schema
    name: str
    occurrence: int  # how many earlier columns share this name
    meta: SeriesMeta


class Recording:
    def __init__(self, path: Path, parquet: pq.ParquetFile, footer: Footer, columns: list[Column],
                 timestamps: np.ndarray, order: np.ndarray | None, warnings: list[str]):
        self.path = path
        self.footer = footer
        self.columns = columns
        self.warnings = warnings
        self.rows = len(timestamps)
        self.row_groups = parquet.metadata.num_row_groups
        self._parquet = parquet
        self._order = order  # row permutation that sorts timestamps, None when already sorted
        self.interval_ns = interval_ns(footer, timestamps, warnings)
        self.table = Table(path.name, timestamps)
        self._by_metric: dict[str, list[Column]] = defaultdict(list)
        for column in columns:
            self._by_metric[column.meta.key.metric].append(column)
        self.scalar_groups = list(self._read_groups(self._by_metric.values()))

    @cached_property
    def store(self) -> Store:
        """The recording's series, made on first use (a data dir's refill reads columns without them)."""
        store = Store(interval_ns=self.interval_ns)
        store.add_table(self.table)
        group_of = {id(c): group for group in self.scalar_groups for c in group}
        with paused_gc():  # thousands of objects, no cycles (as in `open_recording`)
            for metric in self._by_metric.values():
                for column in metric:
                    if column.meta.kind is Kind.HISTOGRAM:
                        store.add_series(HistogramSeries(column.meta, self.table, self.histogram_loader(column)))
                    else:
                        store.add_series(Series(column.meta, self.table,
                                                self.scalar_loader(column, group_of[id(column)])))
        return store

    @property
    def time_range(self) -> tuple[int, int]:
        ts = self.table.timestamps
        return int(ts[0]), int(ts[-1])

    def metric_cells(self) -> dict[str, int]:
        """Per metric, how many values decoding its columns yields (a histogram row holds one per bucket): roughly
        what decoding it costs."""
        cells: Counter[str] = Counter()
        for column in self.columns:
            per_row = _layout(column).buckets if column.meta.kind is Kind.HISTOGRAM else 1
            cells[column.meta.key.metric] += per_row * self.rows
        return dict(cells)

    def _read_groups(self, metrics: Iterable[list[Column]]) -> Iterator[list[Column]]:
        """The counters and gauges decoded together: whole metrics, several of them while their values stay within
        `SCALAR_READ_BYTES` (one Parquet read has a cost of its own, and a build reads every metric)."""
        group: list[Column] = []
        for columns in metrics:
            scalar = [c for c in columns if c.meta.kind is not Kind.HISTOGRAM]
            if group and (len(group) + len(scalar)) * self.rows * 8 > SCALAR_READ_BYTES:
                yield group
                group = []
            group += scalar
        if group:
            yield group

    def read_scalars(self, columns: list[Column], parquet: pq.ParquetFile | None = None) -> dict[int, np.ndarray]:
        """Decode counter and gauge columns in one read (through `parquet`, from another thread): float64 values
        in time order, by column index."""
        names = sorted({c.name for c in columns})
        wanted: dict[str, list[Column]] = {}
        for c in columns:
            wanted.setdefault(c.name, []).append(c)
        per_read = max(1, SCALAR_SLICE_BYTES // max(1, self.rows * 8))  # names repeat: a slice may hold more
        out: dict[int, np.ndarray] = {}
        for first in range(0, len(names), per_read):
            part = names[first : first + per_read]
            try:
                table = (parquet or self._parquet).read(columns=part, use_threads=False)
            except (OSError, pa.ArrowException) as exc:
                raise RecordingError(f"{self.path}: cannot read columns: {_first_line(exc)}") from None
            positions: dict[tuple[str, int], int] = {}
            seen: Counter[str] = Counter()
            for i, name in enumerate(table.column_names):
                positions[(name, seen[name])] = i
                seen[name] += 1
            for name in part:
                for c in wanted[name]:
                    out[c.index] = self._rows(_to_float(table.column(positions[(c.name, c.occurrence)])))
            del table
        return out

    def scalar_loader(self, column: Column, siblings: list[Column]) -> Callable[[], np.ndarray]:
        """Decodes a counter or gauge column when called, and hands its siblings (the columns read with it) their
        values on the way."""
        def load() -> np.ndarray:
            values = self.read_scalars(siblings)
            for sibling in siblings:
                series = self.store.get(self.table, sibling.meta.key) if sibling is not column else None
                if series is not None:
                    series.provide(values[sibling.index])
            return values[column.index]

        return load

    def _rows(self, values: np.ndarray) -> np.ndarray:
        return values if self._order is None else values[self._order]

    def check_histograms(self) -> None:
        """Read every histogram column's list lengths (not its values) and drop columns of the wrong length."""
        for column in [c for c in self.columns if c.meta.kind is Kind.HISTOGRAM]:
            buckets = _layout(column).buckets
            for batch in self._batches(column):
                if np.any(_list_lengths(batch, _valid(batch), buckets) != buckets):
                    self._reject(column, f"histogram rows do not have {buckets} buckets")
                    break

    def _reject(self, column: Column, reason: str) -> None:
        self.warnings.append(f"column {column.name!r}: {reason}; skipped")
        self.columns.remove(column)
        series = self.store.get(self.table, column.meta.key)
        if series is not None:
            self.store.remove_series([series])

    def reopen(self) -> pq.ParquetFile:
        """A second handle on the file (its parsed footer shared), for reading from another thread."""
        return pq.ParquetFile(self.path, metadata=self._parquet.metadata)

    def _batches(self, column: Column, parquet: pq.ParquetFile | None = None):
        source = parquet or self._parquet
        buckets = _layout(column).buckets
        rows = max(16, HISTOGRAM_BATCH_BYTES // (8 * buckets))
        for batch in source.iter_batches(batch_size=rows, columns=[column.name], use_threads=False):
            matches = [i for i, n in enumerate(batch.schema.names) if n == column.name]
            yield batch.column(matches[column.occurrence])

    def histogram_rows(self, column: Column, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Some rows of a histogram column (`rows`: increasing indices of the recording's rows), read in row
        batches: whether each has a sample, and the (present rows, buckets) uint64 cumulative counts of those that
        do (what `HistogramColumn.extend_cumulative` takes). RecordingError when its lists are not of the layout's
        length."""
        buckets = _layout(column).buckets
        file_rows = rows if self._order is None else self._order[rows]
        where = np.full(self._parquet.metadata.num_rows, -1, dtype=np.int64)  # file row -> position in `rows`
        where[file_rows] = np.arange(len(rows))
        present = np.zeros(len(rows), dtype=bool)
        dense = np.zeros((len(rows), buckets), dtype=np.uint64)
        offset = 0
        for lists in self._batches(column):
            count = len(lists)
            wanted = where[offset : offset + count]
            offset += count
            if not (wanted >= 0).any():
                continue
            decoded = _dense_lists(lists, buckets)
            if decoded is None:
                raise RecordingError(f"{self.path}: column {column.name!r}: histogram rows do not have {buckets} "
                                     "buckets")
            has, counts = decoded
            take = has & (wanted >= 0)
            dense[wanted[take]] = counts[np.cumsum(has)[take] - 1]
            present[wanted[take]] = True
        return present, dense[present]

    def histogram_loader(self, column: Column, parquet: pq.ParquetFile | None = None
                         ) -> Callable[[], HistogramColumn]:
        """Decodes a histogram column when called, in row batches straight into sparse deltas (through `parquet`,
        a handle of its own, when reading from another thread or process)."""
        def load() -> HistogramColumn:
            layout = _layout(column)
            hist = HistogramColumn(layout.buckets)
            blocks: list[tuple[np.ndarray, np.ndarray]] = []
            for lists in self._batches(column, parquet):
                decoded = _dense_lists(lists, layout.buckets)
                if decoded is None:
                    # A malformed column is dropped with a warning; the rest of the recording stays usable.
                    self.warnings.append(f"column {column.name!r}: histogram rows do not have {layout.buckets} "
                                         "buckets; skipped")
                    empty = HistogramColumn(layout.buckets)
                    empty.append_absent(self.rows)
                    return empty
                if self._order is None:
                    hist.extend_cumulative(decoded[1], decoded[0])
                    if hist.rows == len(decoded[0]):  # the first batch: reserve what the rest will need, about
                        hist.reserve(self.rows, hist.entries * self.rows // max(1, hist.rows) * 5 // 4)
                else:
                    blocks.append(decoded)
            if self._order is not None:
                # Rows must be appended in time order; only unsorted files take this (memory-hungry) path.
                present = np.concatenate([p for p, _ in blocks])
                dense = np.zeros((len(present), layout.buckets))
                dense[present] = np.concatenate([d for _, d in blocks])
                order_present = present[self._order]
                hist.extend_cumulative(dense[self._order][order_present], order_present)
            hist.shrink()
            return hist

        return load


# Arrays are taken apart with numpy rather than pyarrow.compute, whose import alone costs a build ~50 ms.

def _to_float(array: pa.ChunkedArray) -> np.ndarray:
    """Float64 values; integers with nulls come out of Arrow as float64 with NaN for the nulls."""
    return array.to_numpy().astype(np.float64)


def _valid(array: pa.Array) -> np.ndarray:
    """The array's validity as a bool mask."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


def _list_lengths(lists: pa.Array, present: np.ndarray, buckets: int) -> np.ndarray:
    """Length of each list; null rows count as `buckets` long (they are absent, not malformed)."""
    lengths = np.diff(lists.offsets.to_numpy())
    lengths[~present] = buckets
    return lengths


def _dense_lists(lists: pa.Array, buckets: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Present-row mask and the (present rows, buckets) uint64 matrix of a list<uint64> batch; None if malformed."""
    present = _valid(lists)
    if np.any(_list_lengths(lists, present, buckets) != buckets):
        return None
    starts = lists.offsets.to_numpy()[:-1][present]
    values = lists.values.to_numpy(zero_copy_only=False)
    if len(starts) == 0 or starts[-1] - starts[0] == (len(starts) - 1) * buckets:  # back to back: a view
        flat = values[starts[0] : starts[0] + len(starts) * buckets] if len(starts) else values[:0]
    else:  # a null row may still own a range of values: take the present rows' ranges only
        flat = np.concatenate([values[start : start + buckets] for start in starts])
    return present, flat.reshape(-1, buckets)


def _layout(column: Column) -> Layout:
    return Layout(column.meta.grouping_power or 0, column.meta.max_value_power or 0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass
class SchemaMemo:
    """The columns of the last schema parsed, for opening many files of one producer (a data dir's segments share
    their schema): each distinct schema's thousands of fields are parsed once."""

    schema: pa.Schema | None = None
    columns: list[Column] | None = None
    warnings: list[str] | None = None

    def columns_of(self, schema: pa.Schema, warnings: list[str]) -> list[Column]:
        if self.schema is None or self.columns is None or not self.schema.equals(schema, check_metadata=True):
            found: list[str] = []
            self.schema, self.columns, self.warnings = schema, _columns(schema, found), found
        warnings += self.warnings or []
        return list(self.columns)  # a list of its own: a recording may drop columns (`_reject`)


def open_recording(path: str | os.PathLike[str], memo: SchemaMemo | None = None) -> Recording:
    """Open a recording: footer, schema and timestamps now, series values lazily. Raises RecordingError. `memo`:
    the columns of a schema parsed before, reused when this file's is the same."""
    # Thousands of columns make tens of thousands of objects and no cycles: collections would only walk them.
    with paused_gc():
        return _open(Path(path), memo or SchemaMemo())


def _open(path: Path, memo: SchemaMemo) -> Recording:
    parquet = _open_parquet(path)
    schema = parquet.schema_arrow
    footer = parse_footer(parquet.metadata.metadata)
    warnings = list(footer.warnings)
    names = schema.names
    if "timestamp" not in names:
        raise RecordingError(f"{path}: not a Rezolus recording (no 'timestamp' column)")
    try:
        raw = parquet.read(columns=["timestamp"], use_threads=False).column(0)
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"{path}: cannot read timestamps: {_first_line(exc)}") from None
    try:
        timestamps, order = usable_timestamps(raw, warnings)
    except ValueError as exc:
        raise RecordingError(f"{path}: {exc}") from None
    columns = memo.columns_of(schema, warnings)
    recording = Recording(path, parquet, footer, columns, timestamps, order, warnings)
    # `build` and `query` would otherwise show less than the file holds without a word.
    for warning in recording.warnings:
        if isinstance(warning, Notice):
            sys.stderr.write(f"rezgen: warning: {path}: {warning}\n")
    return recording


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - 4))
            tail = handle.read(4)
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory, not a recording") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise RecordingError(f"{path}: the file is empty")
    if head.startswith(b"SQLite format 3\0"):
        raise RecordingError(f"{path}: a .rez (SQLite) archive; convert it to Parquet with `rezolus parquet`")
    if head[:4] != b"PAR1":
        raise RecordingError(f"{path}: not a Parquet file")
    if tail != b"PAR1":
        raise RecordingError(f"{path}: truncated Parquet file (no footer)")
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"{path}: damaged Parquet file: {_first_line(exc)}") from None


def _columns(schema: pa.Schema, warnings: list[str]) -> list[Column]:
    columns: list[Column] = []
    mistyped: set[str] = set()  # metrics with a histogram column not stored as lists
    seen: Counter[str] = Counter()
    for index, field in enumerate(schema):
        occurrence = seen[field.name]
        seen[field.name] += 1
        if field.name in RESERVED_COLUMNS or field.name.endswith((":window_begin", ":window_width")) \
                or field.name == ":wall_offset":
            continue
        meta = _series_meta(field, warnings, mistyped)
        if meta is not None:
            columns.append(Column(index, field.name, occurrence, meta))
    # The metric's other columns go too: sums and percentiles over part of a histogram's series would mislead.
    columns = [c for c in columns if c.meta.key.metric not in mistyped]
    # Two columns with one identity (a clobbered Prometheus label) stay apart, told by their column position.
    identities = Counter(c.meta.key for c in columns)
    for column in columns:
        if identities[column.meta.key] > 1:
            key = column.meta.key
            column.meta.key = SeriesKey(key.metric, make_labels({**dict(key.labels), "column": str(column.index)}))
    return columns


def _series_meta(field: pa.Field, warnings: list[str], mistyped: set[str]) -> SeriesMeta | None:
    md = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in (field.metadata or {}).items()}
    name = field.name
    kind = _kind(field.type)
    metric = md.get("metric") or name.removesuffix(":buckets")
    declared = md.get("metric_type")
    if declared == Kind.HISTOGRAM.value and kind is not Kind.HISTOGRAM:
        warnings.append(Notice(f"column {name!r}: metric_type 'histogram' but Arrow type {field.type} (not a list "
                               f"of bucket counts); metric {metric!r} left out"))
        mistyped.add(metric)
        return None
    if kind is None:
        warnings.append(f"column {name!r}: unsupported type {field.type}; skipped")
        return None
    if declared and declared != kind.value:
        warnings.append(f"column {name!r}: metric_type {declared!r} disagrees with Arrow type {field.type}; "
                        f"read as {kind.value}")
    labels = make_labels({k: v for k, v in md.items() if k not in PROPERTY_KEYS})
    meta = SeriesMeta(SeriesKey(metric, labels), kind, unit=md.get("unit"), description=md.get("description"))
    if kind is Kind.HISTOGRAM:
        try:
            layout = Layout(int(md["grouping_power"]), int(md["max_value_power"]))
        except (KeyError, ValueError, LayoutError):
            warnings.append(f"column {name!r}: histogram without valid grouping_power/max_value_power; skipped")
            return None
        meta.grouping_power, meta.max_value_power = layout.grouping_power, layout.max_value_power
    return meta


def _kind(arrow_type: pa.DataType) -> Kind | None:
    if pa.types.is_uint64(arrow_type):
        return Kind.COUNTER
    if pa.types.is_int64(arrow_type):
        return Kind.GAUGE
    if pa.types.is_list(arrow_type) and pa.types.is_uint64(arrow_type.value_type):
        return Kind.HISTOGRAM
    return None
