"""The segment files of a live recording (`F.parts/` beside `F`) and their merge into one Rezolus recording.

Each segment is a complete Rezolus recording of one agent over at most a minute, named `RUN-AGENT-SEQ.parquet`
(a run is one `serve --live` session; a kill -9 leaves its segments for the next run). An agent's segments hold
strictly increasing timestamps, so the merge is an N-way merge of per-agent streams read a few rows at a time:
rows are the union of the timestamps (equal ones share a row), columns the union of the columns (null where a
segment lacks one). Memory stays at a batch per stream plus one row group, whatever the length of the recording.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rezgen.recording.writer import MAX_ROW_GROUP_SIZE, open_parquet

SEGMENT = re.compile(r"^(\d+)-(\d+)-(\d+)\.parquet$")
BATCH_ROWS = 32  # per stream and read: a row of a large host is ~2 MB decoded
ROW_GROUP_BYTES = 64 << 20  # a row group is assembled in memory before it is written
_KINDS = {b"counter": 0, b"gauge": 1, b"histogram": 2}
FieldKey = tuple[str, bytes]


def sidecar(path: Path) -> Path:
    return path.with_name(f"{path.name}.parts")


def segment_name(run: int, agent: int, seq: int) -> str:
    return f"{run:04d}-{agent:03d}-{seq:06d}.parquet"


def streams(parts: Path) -> dict[tuple[int, int], list[Path]]:
    """(run, agent) → its segments in order."""
    found: dict[tuple[int, int], list[tuple[int, Path]]] = {}
    for path in parts.glob("*.parquet") if parts.is_dir() else ():
        match = SEGMENT.match(path.name)
        if match:
            run, agent, seq = map(int, match.groups())
            found.setdefault((run, agent), []).append((seq, path))
    return {key: [p for _, p in sorted(paths)] for key, paths in sorted(found.items())}


def remove_temporaries(path: Path) -> None:
    """Half-written files of a process that was killed (segments and the merged file are written under temporary
    names and renamed when complete)."""
    for stale in [*sidecar(path).glob(".*.tmp"), *path.parent.glob(f".{path.name}.*.tmp")]:
        stale.unlink(missing_ok=True)


def _key(field: pa.Field) -> FieldKey:
    return field.name, (field.metadata or {}).get(b"metric_type", b"")


class _Stream:
    """One agent's segments, read a batch at a time; `stamps[pos:]` are the rows not yet merged (those within
    [lo, hi] only)."""

    def __init__(self, paths: list[Path], lo: int = 0, hi: int = 2**63 - 1):
        self._lo, self._hi = lo, hi
        self._batches = self._read(paths)
        self.batch: pa.RecordBatch | None = None
        self.columns: dict[FieldKey, int] = {}
        self.stamps = np.empty(0, dtype=np.int64)
        self.pos = 0
        self.advance()

    def _read(self, paths: list[Path]) -> Iterator[tuple[pa.RecordBatch, dict[FieldKey, int]]]:
        for path in paths:
            parquet = pq.ParquetFile(path)
            columns = {_key(f): i for i, f in enumerate(parquet.schema_arrow)}
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
                yield batch, columns

    def advance(self) -> bool:
        """Load the next non-empty batch; False when the stream is done."""
        for batch, columns in self._batches:
            stamps = batch.column(0).to_numpy().astype(np.int64)
            first = int(np.searchsorted(stamps, self._lo, side="left"))
            last = int(np.searchsorted(stamps, self._hi, side="right"))
            if last > first:
                self.batch, self.columns, self.pos = batch.slice(first, last - first), columns, 0
                self.stamps = stamps[first:last]
                return True
        self.batch = None
        return False

    def take(self, bound: int) -> tuple[np.ndarray, pa.RecordBatch, dict[FieldKey, int]]:
        """The rows up to `bound` (inclusive), consumed."""
        assert self.batch is not None
        end = int(np.searchsorted(self.stamps, bound, side="right"))
        piece = (self.stamps[self.pos:end], self.batch.slice(self.pos, end - self.pos), self.columns)
        self.pos = end
        return piece


def _readable(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):  # e.g. damaged on disk: the other segments are still worth having
        return None


def _schema(schemas: list[pa.Schema]) -> pa.Schema:
    """The union of the segments' columns in the format's order, and their footers (later ones win, except that
    descriptions add up)."""
    fields: dict[FieldKey, pa.Field] = {}
    footer: dict[bytes, bytes] = {}
    descriptions: dict[str, str] = {}
    head: list[pa.Field] = []
    for schema in schemas:
        head = head or [schema.field(0), schema.field(1)]  # timestamp, duration
        for field in list(schema)[2:]:
            fields.setdefault(_key(field), field)
        footer.update(schema.metadata or {})
        descriptions.update(json.loads(footer.get(b"descriptions", b"{}")))
    if descriptions:
        footer[b"descriptions"] = json.dumps(descriptions, separators=(",", ":"), sort_keys=True).encode()
    body = sorted(fields.values(), key=lambda f: (_KINDS.get(_key(f)[1], 3), f.name))
    return pa.schema(head + body, metadata=footer)


def _column(field: pa.Field, key: FieldKey, stamps: np.ndarray,
            pieces: list[tuple[np.ndarray, pa.RecordBatch, dict[FieldKey, int]]]) -> pa.Array:
    out: pa.Array | None = None
    for times, batch, columns in pieces:
        if key not in columns or not len(times):
            continue
        values = batch.column(columns[key])
        if len(times) != len(stamps):  # the rows of the others: nulls, through take() with null indices
            index = np.full(len(stamps), -1, dtype=np.int64)
            index[np.searchsorted(stamps, times)] = np.arange(len(times))
            values = values.take(pa.array(index, mask=index < 0))
        if out is None:
            out = values
        else:  # an equal timestamp: the first value stays. (Imported here: pyarrow.compute alone costs a live server
            import pyarrow.compute as pc  # 13 MB of RSS, and only merges need it.)

            out = pc.coalesce(out, values)
    if out is None:
        return pa.nulls(len(stamps), type=field.type)
    return out if out.type == field.type else out.cast(field.type)  # e.g. a list's item named `element`


def merge(parts: Path, target: Path) -> int:
    """Write every segment under `parts` into `target` (atomically); returns its row count (0: nothing written)."""
    return merge_streams(list(streams(parts).values()), target)


def merge_streams(sources: list[list[Path]], target: Path, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """Write the rows within [lo, hi] of every stream (a producer's segments in time order) into `target`
    (atomically); returns its row count (0: nothing written)."""
    schemas = {p: _readable(p) for segments in sources for p in segments}
    found = [[p for p in segments if schemas[p] is not None] for segments in sources]
    if not any(found):
        return 0
    schema = _schema([s for s in schemas.values() if s is not None])
    keys = [_key(f) for f in schema]
    active = [s for s in (_Stream(segments, lo, hi) for segments in found if segments) if s.batch is not None]
    if not active:
        return 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    rows = 0
    try:
        with open_parquet(tmp, schema) as writer:
            pending: list[pa.RecordBatch] = []
            size = 0
            while active:
                # Every stream's later rows come after its current batch, so all rows up to the earliest batch
                # end are known: merge those.
                bound = min(int(s.stamps[-1]) for s in active)
                pieces = [s.take(bound) for s in active]
                if len(pieces) == 1:  # one stream (one agent's segment): its rows, its columns, nulls for the rest
                    stamps, batch, columns = pieces[0]
                    arrays = [batch.column(columns[k]) if k in columns else pa.nulls(len(stamps), type=f.type)
                              for f, k in zip(schema, keys)]
                    pending.append(pa.RecordBatch.from_arrays(
                        [a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, schema)], schema=schema))
                else:
                    stamps = np.unique(np.concatenate([times for times, _, _ in pieces]))
                    arrays = [pa.array(stamps.astype(np.uint64), type=pa.uint64())]
                    arrays += [_column(f, k, stamps, pieces) for f, k in zip(list(schema)[1:], keys[1:])]
                    pending.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
                size += pending[-1].nbytes
                rows += len(stamps)
                active = [s for s in active if s.pos < len(s.stamps) or s.advance()]
                if size >= ROW_GROUP_BYTES or sum(b.num_rows for b in pending) >= MAX_ROW_GROUP_SIZE or not active:
                    writer.write_table(pa.Table.from_batches(pending), row_group_size=MAX_ROW_GROUP_SIZE)
                    pending, size = [], 0
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return rows
