"""Write recordings in the Rezolus Parquet format (docs/recording-format.md §1).

One row per snapshot: `timestamp` and `duration` first, then counters (uint64), gauges (int64) and histograms
(`list<uint64>` of cumulative per-bucket counts), each block sorted by column name. Series identity, unit and
histogram parameters go into each column's field metadata; file-wide facts into the footer key/value metadata.
Rows are streamed out in row groups of at most `row_group_size` rows, and the file appears at its path only once
the `with` block ends without error.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezgen.recording.arrow_schema import KEY, encoded_schema
from rezgen.store.histogram import Layout
from rezgen.store.model import PROPERTY_KEYS, Kind, SeriesMeta

MAX_ROW_GROUP_SIZE = 1800  # what Rezolus ≥ 5.17 writes
DATA_PAGE_BYTES = 64 << 20
RESERVED_FOOTER_KEYS = frozenset({"sampling_interval_ms", "source", "version"})
_KIND_ORDER = {Kind.COUNTER: 0, Kind.GAUGE: 1, Kind.HISTOGRAM: 2}
_HISTOGRAM_TYPE = pa.list_(pa.uint64())
_TYPES = {Kind.COUNTER: pa.uint64(), Kind.GAUGE: pa.int64(), Kind.HISTOGRAM: _HISTOGRAM_TYPE}


class RecordingWriter:
    """Stream rows into a Rezolus-format Parquet file; use as a context manager.

    `columns` pairs a column name with its series; histogram names get the `:buckets` suffix if they lack it.
    `footer` adds file metadata: strings are stored as they are, anything else as compact JSON (e.g. `systeminfo`,
    `descriptions`, `per_source_metadata`, `events`). Without a `descriptions` entry the descriptions of the series
    are used, if any.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        columns: list[tuple[str, SeriesMeta]],
        *,
        interval_ms: int,
        source: str,
        version: str | None = None,
        footer: dict[str, Any] | None = None,
        row_group_size: int = MAX_ROW_GROUP_SIZE,
    ) -> None:
        if not 1 <= row_group_size <= MAX_ROW_GROUP_SIZE:
            raise ValueError(f"row_group_size must be within 1..{MAX_ROW_GROUP_SIZE}, got {row_group_size}")
        self.path = Path(path)
        # Columns are stored in the format's order; `write` takes values in the caller's order.
        self._order = sorted(range(len(columns)), key=lambda i: _sort_key(*columns[i]))
        self._metas = [columns[i][1] for i in self._order]
        self._layouts = [_layout(meta) for meta in self._metas]
        self._schema = _schema(columns, self._order, _footer(columns, interval_ms, source, version, footer or {}))
        self._row_group_size = row_group_size
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._last_timestamp: int | None = None
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> RecordingWriter:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._writer = open_parquet(tmp, self._schema)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._writer is not None and self._tmp is not None, "RecordingWriter used outside a with block"
        tmp = self._tmp
        try:
            try:
                if exc_type is None:
                    self._flush(final=True)
            finally:
                self._writer.close()
                self._writer = None
            if exc_type is None:
                os.chmod(tmp, 0o644)  # mkstemp creates 0600; a recording is an ordinary readable file
                os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)  # a no-op after the replace

    def write(
        self,
        timestamps: np.ndarray,
        values: Sequence[np.ndarray | None],
        durations: np.ndarray | None = None,
    ) -> None:
        """Append rows: `timestamps` in ns (strictly increasing, also across calls), one entry of `values` per column
        in the constructor's order, `durations` in ns (NaN or None: unknown).

        A counter or gauge value is a 1-D array (NaN = no sample); a histogram value is a (rows, buckets) array of
        cumulative per-bucket counts (a row of NaN = no sample); None means no sample in any row.
        """
        if self._writer is None:
            raise RuntimeError("RecordingWriter.write called outside its with block")
        timestamps = np.asarray(timestamps)
        rows = len(timestamps)
        _check_timestamps(timestamps, self._last_timestamp)
        if len(values) != len(self._metas):
            raise ValueError(f"expected {len(self._metas)} value arrays, got {len(values)}")
        if durations is not None and len(durations) != rows:
            raise ValueError(f"expected {rows} durations, got {len(durations)}")
        ordered = [values[i] for i in self._order]
        for meta, layout, value in zip(self._metas, self._layouts, ordered):
            _check_shape(meta, layout, value, rows)
        # Convert one row group's worth at a time so memory stays bounded whatever the caller hands in.
        for start in range(0, rows, self._row_group_size):
            part = slice(start, min(start + self._row_group_size, rows))
            n = part.stop - start
            arrays = [
                pa.array(timestamps[part].astype(np.uint64), type=pa.uint64()),
                _scalar_array(None if durations is None else np.asarray(durations)[part], pa.uint64(), n),
            ]
            arrays += [
                _column_array(meta, layout, None if value is None else np.asanyarray(value)[part], n)
                for meta, layout, value in zip(self._metas, self._layouts, ordered)
            ]
            self._pending.append(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
            self._pending_rows += n
            self._flush(final=False)
        if rows:
            self._last_timestamp = int(timestamps[-1])

    def _flush(self, *, final: bool) -> None:
        assert self._writer is not None
        while self._pending_rows >= self._row_group_size or (final and self._pending_rows):
            table = pa.Table.from_batches(self._pending, schema=self._schema)
            take = min(self._row_group_size, self._pending_rows)
            self._writer.write_table(table.slice(0, take), row_group_size=self._row_group_size)
            rest = table.slice(take)
            self._pending = rest.to_batches()
            self._pending_rows = rest.num_rows


def open_parquet(path: str | os.PathLike[str], schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer with the settings of every recording rezgen writes."""
    # Dictionary pages do not pay off for ever-growing counters and bucket counts: off, half the size. Counters
    # and gauges move by small steps: delta-encoded, they take 30% less. Statistics only where a reader uses them
    # (the timestamp's, to tell a file's time span): 2,000 columns' min/max are 5% of a ten-minute segment. One page
    # per column chunk: a histogram compresses better in one piece (its rows repeat each other).
    # The Arrow schema (the columns' metadata) is written by `arrow_schema`, in a third of the bytes.
    names = Counter(f.name for f in schema)
    delta = {f.name: "DELTA_BINARY_PACKED" for f in schema if pa.types.is_integer(f.type) and names[f.name] == 1}
    try:
        footer = {**(schema.metadata or {}), KEY: encoded_schema(schema)}
    except ValueError:  # a column of a type no recording has: Arrow's own
        footer = None
    writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=3, use_dictionary=False,
                              column_encoding=delta, write_statistics=["timestamp"], data_page_size=DATA_PAGE_BYTES,
                              store_schema=footer is None)
    if footer is not None:
        writer.add_key_value_metadata(footer)
    return writer


def _sort_key(name: str, meta: SeriesMeta) -> tuple[int, str]:
    return _KIND_ORDER[meta.kind], _column_name(name, meta)


def _column_name(name: str, meta: SeriesMeta) -> str:
    if meta.kind is Kind.HISTOGRAM and not name.endswith(":buckets"):
        return f"{name}:buckets"
    return name


def _layout(meta: SeriesMeta) -> Layout | None:
    if meta.kind is not Kind.HISTOGRAM:
        return None
    if meta.grouping_power is None or meta.max_value_power is None:
        raise ValueError(f"histogram {meta.key} needs grouping_power and max_value_power")
    return Layout(meta.grouping_power, meta.max_value_power)


def _field_metadata(meta: SeriesMeta) -> dict[str, str]:
    clash = [key for key, _ in meta.key.labels if key in PROPERTY_KEYS]
    if clash:
        raise ValueError(f"{meta.key}: label keys {clash} are reserved for column properties")
    fields = {"metric": meta.key.metric, "metric_type": meta.kind.value}
    if meta.unit:
        fields["unit"] = meta.unit
    fields.update(meta.key.labels)
    if meta.kind is Kind.HISTOGRAM:
        fields["grouping_power"] = str(meta.grouping_power)
        fields["max_value_power"] = str(meta.max_value_power)
    return fields


def _schema(columns: list[tuple[str, SeriesMeta]], order: list[int], footer: dict[str, str]) -> pa.Schema:
    fields = [
        pa.field("timestamp", pa.uint64(), False, {"metric_type": "timestamp", "unit": "nanoseconds"}),
        pa.field("duration", pa.uint64(), True, {"metric_type": "duration", "unit": "nanoseconds"}),
    ]
    for i in order:
        name, meta = columns[i]
        fields.append(pa.field(_column_name(name, meta), _TYPES[meta.kind], metadata=_field_metadata(meta)))
    return pa.schema(fields, metadata=footer)


def _footer(
    columns: list[tuple[str, SeriesMeta]], interval_ms: int, source: str, version: str | None, extra: dict[str, Any]
) -> dict[str, str]:
    reserved = RESERVED_FOOTER_KEYS & extra.keys()
    if reserved:
        raise ValueError(f"footer keys {sorted(reserved)} are set through their own arguments")
    footer = {"sampling_interval_ms": str(int(interval_ms)), "source": source}
    if version is not None:
        footer["version"] = version
    descriptions = {meta.key.metric: meta.description for _, meta in columns if meta.description}
    if descriptions and "descriptions" not in extra:
        extra = {**extra, "descriptions": descriptions}
    for key, value in extra.items():
        footer[key] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return footer


def _check_timestamps(timestamps: np.ndarray, previous: int | None) -> None:
    if timestamps.dtype.kind not in "iu":
        raise ValueError(f"timestamps must be integer nanoseconds, got {timestamps.dtype}")
    if not len(timestamps):
        return
    stamps = timestamps.astype(np.int64)
    if stamps[0] < 0 or (np.diff(stamps) <= 0).any():
        raise ValueError("timestamps must be non-negative and strictly increasing")
    if previous is not None and stamps[0] <= previous:
        raise ValueError(f"timestamp {stamps[0]} does not follow the last one written ({previous})")


def _check_shape(meta: SeriesMeta, layout: Layout | None, value: np.ndarray | None, rows: int) -> None:
    if value is None:
        return
    expected = (rows,) if layout is None else (rows, layout.buckets)
    if np.shape(value) != expected:
        raise ValueError(f"{meta.key}: expected values of shape {expected}, got {np.shape(value)}")


def _missing(values: np.ndarray) -> np.ndarray | None:
    """Null mask (NaN or a masked entry = no sample); None when nothing is missing.

    Masked integer arrays let u64 counters above 2^53 be written exactly, which floats cannot do."""
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        return mask if mask.any() else None
    if values.dtype.kind != "f":
        return None
    mask = np.isnan(values)
    return mask if mask.any() else None


def _integers(values: np.ndarray, dtype: type[np.integer]) -> np.ndarray:
    """Present values as `dtype`; counts can never be negative."""
    if values.dtype.kind == "f":
        values = np.rint(values)
    if dtype is np.uint64 and values.dtype.kind != "u" and (values < 0).any():
        raise ValueError("counters and histogram buckets cannot be negative")
    return values.astype(dtype, copy=False)


def _scalar_array(values: np.ndarray | None, type_: pa.DataType, rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(rows, type=type_)
    mask = _missing(values)
    if isinstance(values, np.ma.MaskedArray):
        values = values.filled(0)
    elif mask is not None:
        values = np.where(mask, 0, values)
    return pa.array(_integers(values, type_.to_pandas_dtype()), type=type_, mask=mask)


def _column_array(meta: SeriesMeta, layout: Layout | None, value: np.ndarray | None, rows: int) -> pa.Array:
    if layout is None:
        return _scalar_array(value, _TYPES[meta.kind], rows)
    if value is None:
        return pa.nulls(rows, type=_HISTOGRAM_TYPE)
    cells = _missing(value)
    null_rows = None if cells is None else cells.any(axis=1)
    present = np.ma.getdata(value if null_rows is None else value[~null_rows])
    flat = pa.array(_integers(present, np.uint64).ravel(), type=pa.uint64())
    # A null row is an empty list under the null bit, so the offsets advance only over present rows.
    lengths = np.full(rows, layout.buckets, dtype=np.int64)
    if null_rows is not None:
        lengths[null_rows] = 0
    offsets = pa.array(np.concatenate(([0], np.cumsum(lengths))).astype(np.int32), type=pa.int32())
    mask = None if null_rows is None else pa.array(null_rows)
    return pa.ListArray.from_arrays(offsets, flat, type=_HISTOGRAM_TYPE, mask=mask)
