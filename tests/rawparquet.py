"""An independent, deliberately plain reader of Rezolus Parquet recordings, used to compute expected values.

It shares no code with rezgen: only pyarrow and numpy, following docs/recording-format.md directly.

- Columns are addressed by their position in the Arrow schema (names repeat, §6). A column's values are read by
  name and the right one of several same-named columns is picked by its occurrence among them; the field metadata
  of what was read is checked against the schema field, so a mix-up cannot go unnoticed.
- Series identity (§1.6): `metric` (or the column name without `:buckets` when the key is missing) plus every
  field-metadata key except the property keys.
- Kind comes from the Arrow type (§1.5): uint64 counter, int64 gauge, list<uint64> histogram.
- Counters and gauges become float64 arrays with NaN where the cell is null; histograms become a present-row mask
  and a dense (rows, buckets) integer array of cumulative per-bucket counts (zeros on absent rows).
- H2 bucket bounds (§2.3) are computed here from the formula, with Python integers (exact for all of u64).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PROPERTY_KEYS = frozenset({"metric", "metric_type", "unit", "grouping_power", "max_value_power", "description"})
RESERVED = ("timestamp", "duration")


@dataclass
class RawColumn:
    index: int  # position in the Arrow schema
    name: str
    occurrence: int  # how many earlier schema fields carry the same name
    kind: str | None  # "counter", "gauge", "histogram"; None for timestamp/duration and unknown types
    metric: str
    labels: dict[str, str]
    meta: dict[str, str] = field(repr=False)

    @property
    def identity(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric, tuple(sorted(self.labels.items()))

    @property
    def grouping_power(self) -> int | None:
        return _small_int(self.meta.get("grouping_power"))

    @property
    def max_value_power(self) -> int | None:
        return _small_int(self.meta.get("max_value_power"))


def _small_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_uint64(arrow_type):
        return "counter"
    if pa.types.is_int64(arrow_type):
        return "gauge"
    if pa.types.is_list(arrow_type) and pa.types.is_uint64(arrow_type.value_type):
        return "histogram"
    return None


def _decode(metadata: dict[bytes, bytes] | None) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (metadata or {}).items()}


class RawRecording:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = pq.ParquetFile(self.path)
        self.schema = self._file.schema_arrow
        self.footer = {k: v for k, v in _decode(self._file.metadata.metadata).items() if k != "ARROW:schema"}
        self.columns: list[RawColumn] = []
        seen: dict[str, int] = {}
        for index, f in enumerate(self.schema):
            meta = _decode(f.metadata)
            occurrence = seen.get(f.name, 0)
            seen[f.name] = occurrence + 1
            metric = meta.get("metric") or (f.name[: -len(":buckets")] if f.name.endswith(":buckets") else f.name)
            labels = {k: v for k, v in meta.items() if k not in PROPERTY_KEYS}
            kind = None if f.name in RESERVED else _kind(f.type)
            self.columns.append(RawColumn(index, f.name, occurrence, kind, metric, labels, meta))
        self._cache: dict[int, np.ndarray] = {}

    # -- structure ----------------------------------------------------------------------------------------------

    @property
    def metric_columns(self) -> list[RawColumn]:
        """Every series column (timestamp and duration excluded)."""
        return [c for c in self.columns if c.kind is not None]

    def select(self, metric: str, **labels: str) -> list[RawColumn]:
        """Series columns of a metric whose labels include all the given pairs."""
        return [c for c in self.metric_columns
                if c.metric == metric and all(c.labels.get(k) == v for k, v in labels.items())]

    @cached_property
    def interval_ns(self) -> int:
        return round(float(self.footer["sampling_interval_ms"]) * 1e6)

    @cached_property
    def timestamps(self) -> np.ndarray:
        ts = self._column(self.columns[0])
        assert self.columns[0].name == "timestamp" and ts.null_count == 0
        return ts.to_numpy().astype(np.int64)

    # -- values -------------------------------------------------------------------------------------------------

    def _column(self, column: RawColumn) -> pa.ChunkedArray:
        table = self._file.read(columns=[column.name], use_threads=False)
        same = [i for i, f in enumerate(table.schema) if f.name == column.name]
        picked = same[column.occurrence]
        schema_field = self.schema.field(column.index)
        assert table.schema.field(picked).equals(schema_field, check_metadata=True), "column picked by mistake"
        return table.column(picked)

    def values(self, column: RawColumn) -> np.ndarray:
        """A counter or gauge as float64, NaN where null."""
        assert column.kind in ("counter", "gauge"), column
        if column.index not in self._cache:
            out = np.full(len(self.timestamps), np.nan)
            for i, v in enumerate(self._column(column).to_pylist()):
                if v is not None:
                    out[i] = float(v)
            self._cache[column.index] = out
        return self._cache[column.index]

    def histogram(self, column: RawColumn) -> tuple[np.ndarray, np.ndarray]:
        """(present mask, dense cumulative counts of shape (rows, buckets)); absent rows are zero."""
        assert column.kind == "histogram", column
        buckets = bucket_count(column.grouping_power, column.max_value_power)
        lists = self._column(column).combine_chunks()
        present = np.asarray(lists.is_valid(), dtype=bool)
        dense = np.zeros((len(lists), buckets), dtype=np.int64)
        flat = lists.flatten().to_numpy().astype(np.int64)
        offsets = lists.offsets.to_numpy()
        for row in np.flatnonzero(present):
            cell = flat[offsets[row]: offsets[row + 1]]
            assert len(cell) == buckets, f"row {row}: {len(cell)} buckets, expected {buckets}"
            dense[row] = cell
        return present, dense

    def descriptions(self) -> dict[str, str]:
        return json.loads(self.footer.get("descriptions", "{}"))


# -- H2 histogram layout (format doc §2.3) ------------------------------------------------------------------------

def bucket_count(g: int, m: int) -> int:
    return 2 ** (g + 1) + (m - g - 1) * 2**g


def bucket_bounds(g: int, m: int) -> list[tuple[int, int]]:
    """Inclusive (low, high) of every bucket, histogram 1.x rule for the last bucket."""
    n = bucket_count(g, m)
    out = []
    for i in range(n):
        q = i >> g
        r = i - q * 2**g
        if q == 0:
            low = high = i
        else:
            low = 2 ** (g + q - 1) + r * 2 ** (q - 1)
            high = low + 2 ** (q - 1) - 1
        out.append((low, high))
    out[-1] = (out[-1][0], 2**64 - 1 if m == 64 else 2**m - 1)
    return out


def upper_edges(g: int, m: int) -> list[int]:
    return [high for _, high in bucket_bounds(g, m)]


def quantile_upper_edge(counts: np.ndarray | list[float], q: float, edges: list[int]) -> float | None:
    """The format doc's rule (§2.5): upper edge of the first bucket whose running sum reaches
    rank = max(1, ceil(q * total)); None when the total is 0."""
    total = float(sum(counts))
    if total <= 0:
        return None
    rank = max(1.0, math.ceil(q * total))
    running = 0.0
    for i, c in enumerate(counts):
        running += float(c)
        if running >= rank:
            return float(edges[i])
    return float(edges[len(counts) - 1])  # rounding: rank a hair above the total
