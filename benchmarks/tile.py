"""Make a long recording by tiling a real one: the source's rows repeated until the wanted length.

    .venv/bin/python benchmarks/tile.py SOURCE.parquet OUT.parquet --hours 24

Tile k is the source shifted in time by k x (span + interval), so timestamps keep advancing at the source's
interval. Counters keep rising: tile k adds k x (last - first + one interval's typical increase) to every
counter column (per bucket for histograms), so the step from the last row of a tile to the first row of the
next is a typical one, not a reset. Gauges and `duration` repeat as they are. Nulls stay null. The schema (with
every field's metadata) and the footer key/values are the source's; row groups hold 1,800 rows (what Rezolus
writes since 5.17). The output is written row group by row group, so memory stays about the size of the decoded
source plus one row group, however long the output is.

This is a benchmark tool, so it uses pyarrow directly rather than rezgen's reader.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 1800


@dataclass
class Source:
    """One column of the source, decoded once: numpy values of its present rows, and how each tile shifts them."""

    field: pa.Field
    present: np.ndarray  # (rows,) bool
    values: np.ndarray  # (present rows,) or (present rows, buckets) for histograms
    shift: np.ndarray | None  # per-tile increase (counters, histograms); None = repeat (gauges, timestamps...)
    position: np.ndarray  # source row -> index into values (-1 when absent)


def _decode(field: pa.Field, column: pa.ChunkedArray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    present = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool) if array.null_count \
        else np.ones(rows, dtype=bool)
    if pa.types.is_list(field.type):
        lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
        buckets = int(lengths[present][0]) if present.any() else 0
        if np.any(lengths[present] != buckets):
            raise SystemExit(f"column {field.name!r}: histogram rows of different lengths")
        flat = array.flatten().to_numpy(zero_copy_only=False)
        return present, np.ascontiguousarray(flat, dtype=np.uint64).reshape(-1, max(buckets, 1))[: int(present.sum())]
    values = array.drop_null().to_numpy(zero_copy_only=False) if array.null_count else \
        array.to_numpy(zero_copy_only=False)
    return present, np.asarray(values)


def _tile_shift(values: np.ndarray) -> np.ndarray:
    """last - first + the mean increase of one interval, per column (or bucket); 0 below two samples."""
    if len(values) < 2:
        return np.zeros(values.shape[1:], dtype=np.uint64)
    first = values[0].astype(np.float64)
    last = values[-1].astype(np.float64)
    increase = last - first
    step = np.rint(increase / (len(values) - 1))
    return np.maximum(increase + step, 0).astype(np.uint64)


def load_source(path: Path) -> tuple[pa.Schema, list[Source], int, int, int]:
    """Decode every column of `path`; returns (schema, columns, rows, span ns, interval ns)."""
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    rows = parquet.metadata.num_rows
    columns: list[Source] = []
    for index, field in enumerate(schema):
        # One column at a time, by position (names repeat); the Arrow column is dropped once it is numpy.
        column = parquet.reader.read_column(index)
        present, values = _decode(field, column, rows)
        del column
        counter = pa.types.is_uint64(field.type) and field.name not in ("timestamp", "duration")
        histogram = pa.types.is_list(field.type)
        shift = _tile_shift(values) if (counter or histogram) else None
        position = np.full(rows, -1, dtype=np.int64)
        position[present] = np.arange(int(present.sum()))
        columns.append(Source(field, present, values, shift, position))
    stamps = columns[0].values.astype(np.int64)
    if columns[0].field.name != "timestamp" or len(stamps) != rows:
        raise SystemExit(f"{path}: the first column is not a complete timestamp column")
    interval = _interval_ns(parquet, stamps)
    return schema, columns, rows, int(stamps[-1] - stamps[0]), interval


def _interval_ns(parquet: pq.ParquetFile, stamps: np.ndarray) -> int:
    footer = parquet.metadata.metadata or {}
    raw = footer.get(b"sampling_interval_ms")
    if raw:
        try:
            return round(float(raw) * 1e6)
        except ValueError:
            pass
    return int(np.median(np.diff(stamps))) if len(stamps) > 1 else 1_000_000_000


def _column(source: Source, tile: np.ndarray, row: np.ndarray, step_ns: int) -> pa.Array:
    """The output column for global rows given as (tile index, source row); tiles ascend through the rows."""
    field = source.field
    present = source.present[row]
    values = source.values[source.position[row[present]]]  # a copy: shifted in place below
    k = tile[present]
    if field.name == "timestamp":
        values = (values.astype(np.int64) + k * step_ns).astype(np.uint64)
    elif source.shift is not None and len(k):
        # Rows of one tile are consecutive: add each tile's shift to its slice (no (rows x buckets) temporary).
        bounds = np.flatnonzero(np.diff(k)) + 1
        for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(k)]])):
            if k[lo]:
                values[lo:hi] += np.uint64(k[lo]) * source.shift
    mask = None if present.all() else ~present
    if pa.types.is_list(field.type):
        buckets = values.shape[1] if values.ndim == 2 else 0
        offsets = np.zeros(len(row) + 1, dtype=np.int32)
        np.cumsum(np.where(present, buckets, 0), out=offsets[1:])
        flat = pa.array(values.reshape(-1), type=pa.uint64())
        return pa.ListArray.from_arrays(pa.array(offsets), flat, type=field.type,
                                        mask=pa.array(mask) if mask is not None else None)
    full = np.zeros(len(row), dtype=values.dtype)
    full[present] = values
    return pa.array(full, type=field.type, mask=mask)


def tile(source_path: Path, out_path: Path, hours: float, *, progress: bool = True) -> dict[str, float]:
    started = time.perf_counter()
    schema, columns, rows, span, step = load_source(source_path)
    tile_ns = span + step
    total = int(hours * 3600e9 // step)  # rows of the output
    if progress:
        print(f"tile: {source_path.name}: {rows} rows x {len(columns)} columns, span {span / 1e9:.0f} s, "
              f"interval {step / 1e6:g} ms -> {total} rows ({total / rows:.1f} tiles)", file=sys.stderr)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    footer = pq.ParquetFile(source_path).metadata.metadata or {}
    kept = {k: v for k, v in footer.items() if k != b"ARROW:schema"}
    out_schema = schema.with_metadata(kept)
    # Statistics of the 7,424-bucket list columns cost as much as compressing them; the scalars keep theirs.
    scalars = [f.name for f in schema if not pa.types.is_list(f.type)]
    with pq.ParquetWriter(part, out_schema, compression="zstd", use_dictionary=False,
                          write_statistics=scalars) as writer:
        for first in range(0, total, ROW_GROUP_ROWS):
            global_rows = np.arange(first, min(first + ROW_GROUP_ROWS, total), dtype=np.int64)
            tiles, source_rows = np.divmod(global_rows, rows)
            arrays = [_column(c, tiles, source_rows, tile_ns) for c in columns]
            writer.write_table(pa.Table.from_arrays(arrays, schema=out_schema), row_group_size=ROW_GROUP_ROWS)
            if progress and (first // ROW_GROUP_ROWS) % 8 == 0:
                print(f"  {first + len(global_rows)}/{total} rows, {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)
    part.replace(out_path)
    return {"rows": total, "seconds": time.perf_counter() - started, "bytes": out_path.stat().st_size}


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path,
                        default=here.parents[1] / "shared" / "recordings" / "c16.parquet")
    parser.add_argument("out", type=Path)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    result = tile(args.source, args.out, args.hours)
    print(f"wrote {args.out}: {result['rows']} rows, {result['bytes'] / 1e6:.1f} MB in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
