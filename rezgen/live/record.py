"""`serve --live --record FILE`: write what the agents send as a Rezolus-format recording (format doc §1,
agent-protocol §3.4) that `rezgen build` and Rezolus can open.

A Parquet schema is fixed when the file starts, but live series come and go, so rows are buffered a block at a
time into compact part files (numpy, exact integers) and the recording is assembled from them on close, with the
union of all columns; the file appears only then, complete (RecordingWriter writes atomically).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..model import Kind, SeriesKey, SeriesMeta, make_labels
from ..recording.writer import RecordingWriter

BLOCK_ROWS = 256
ColumnId = tuple[Kind, str]


class LiveRecorder:
    def __init__(self, path: Path, interval_ms: int, nodes: dict[str, str]):
        self.path = Path(path)
        self.interval_ms = interval_ms
        self.nodes = nodes  # agent url -> node label (several agents), as `parquet combine` names them
        self.rows = 0
        self.footer: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._parts = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self._columns: dict[ColumnId, SeriesMeta] = {}
        self._block: list[tuple[int, int | None, dict[ColumnId, Any]]] = []
        self._blocks = 0

    def add(self, agent: str, snapshot: Any) -> None:
        node = self.nodes.get(agent)
        values: dict[ColumnId, Any] = {}
        for kind, entries in ((Kind.COUNTER, snapshot.counters), (Kind.GAUGE, snapshot.gauges),
                              (Kind.HISTOGRAM, snapshot.histograms)):
            for entry in entries:
                name = entry.name or str(entry.key)  # V2 external metrics have empty names
                column = (kind, f"{node}::{name}" if node else name)
                values[column] = entry.value
                if column not in self._columns:
                    self._columns[column] = _meta(entry, kind, node)
        with self._lock:
            self._block.append((snapshot.timestamp_ns, getattr(snapshot, "duration_ns", None), values))
            self.rows += 1
            if len(self._block) >= BLOCK_ROWS:
                self._flush()

    def _flush(self) -> None:
        if not self._block:
            return
        block, self._block = self._block, []
        arrays: dict[str, np.ndarray] = {
            "timestamp": np.array([t for t, _, _ in block], dtype=np.int64),
            "duration": np.array([d if d is not None else -1 for _, d, _ in block], dtype=np.int64),
        }
        index = {column: i for i, column in enumerate(self._columns)}
        for column in {c for _, _, values in block for c in values}:
            kind = column[0]
            cells = [values.get(column) for _, _, values in block]
            present = np.array([c is not None for c in cells])
            if kind is Kind.HISTOGRAM:
                width = len(next(c for c in cells if c is not None))
                dense = np.zeros((len(block), width), dtype=np.uint64)
                dense[present] = np.stack([np.asarray(c, dtype=np.uint64) for c in cells if c is not None])
            else:
                dtype = np.uint64 if kind is Kind.COUNTER else np.int64
                dense = np.array([c if c is not None else 0 for c in cells], dtype=dtype)
            arrays[f"v{index[column]}"] = dense
            arrays[f"p{index[column]}"] = present
        np.savez(self._parts / f"{self._blocks:06d}.npz", **arrays)
        self._blocks += 1

    def close(self) -> int:
        """Assemble the recording; returns its number of rows (nothing is written for zero rows)."""
        with self._lock:
            self._flush()
            try:
                if self._blocks:
                    self._assemble()
            finally:
                shutil.rmtree(self._parts, ignore_errors=True)
        return self.rows

    def _assemble(self) -> None:
        order = sorted(self._columns, key=lambda c: (c[0] is Kind.HISTOGRAM, c[0] is Kind.GAUGE, c[1]))
        index = {column: i for i, column in enumerate(self._columns)}
        columns = [(name if kind is not Kind.HISTOGRAM else f"{name}:buckets", self._columns[(kind, name)])
                   for kind, name in order]
        with RecordingWriter(self.path, columns, interval_ms=self.interval_ms, source="rezolus",
                             footer=self.footer) as writer:
            for part in sorted(self._parts.glob("*.npz")):
                with np.load(part) as data:
                    duration = data["duration"].astype(np.float64)
                    duration[duration < 0] = np.nan
                    writer.write(data["timestamp"], [_masked(data, index[column]) for column in order], duration)


def _masked(data: Any, i: int) -> np.ndarray | None:
    if f"v{i}" not in data:
        return None
    values, present = data[f"v{i}"], data[f"p{i}"]
    if values.ndim == 2:
        out = values.astype(np.float64)  # a histogram row of NaN is a null row
        out[~present] = np.nan
        return out
    return np.ma.MaskedArray(values, mask=~present)


def _meta(entry: Any, kind: Kind, node: str | None) -> SeriesMeta:
    labels = dict(entry.key.labels)
    if node:
        labels["node"] = node
    meta = SeriesMeta(SeriesKey(entry.key.metric, make_labels(labels)), kind, unit=entry.unit)
    if kind is Kind.HISTOGRAM and entry.layout is not None:
        meta.grouping_power, meta.max_value_power = entry.layout.grouping_power, entry.layout.max_value_power
    return meta
