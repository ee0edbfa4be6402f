"""A recording read back as the snapshots its agent served (protocol §3.3), for `rezgen replay`.

- One agent per replay: the columns of one `node` (combined files; default the first node name), else of the
  agent's `source` when the file mixes an agent with services (told by `source=rezolus` or the agent's own
  `rezolus_*` metrics), else every column.
- Entry names are column names without `<node>::`/`<instance>::` and `:buckets`; metadata loses what recorders
  and combiners added (`metric_type`, `endpoint`, `source` unless `external`, and the combiner's `node`/`instance`).
- Rows are read in small batches, on demand and in order: the decoded histograms of a whole recording can be
  hundreds of MB (c16: 580 MB), a batch of 64 rows of one agent is a few MB.
- Looping: pass k adds k × (last − first + one typical step) to every counter and histogram bucket (like
  benchmarks/tile.py), so rates stay sane across the seam; gauges repeat as recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rezgen.agent.snapshot import Entry, Snapshot
from rezgen.errors import RezgenError
from rezgen.recording.footer import parse_footer
from rezgen.store.histogram import Layout, LayoutError
from rezgen.store.model import PROPERTY_KEYS, Kind, SeriesKey, make_labels

BATCH_ROWS = 64
AGENT_METRICS = frozenset({"rezolus_cpu_usage", "rezolus_memory_usage_resident_set_size", "rezolus_rusage"})
SIDECARS = (":window_begin", ":window_width")


class ReplayError(RezgenError):
    """The recording cannot be replayed; the message is one line for the user."""


@dataclass
class ReplayColumn:
    name: str  # the Parquet column name
    occurrence: int  # how many earlier columns share the name
    entry: str  # the name the agent gave the entry
    kind: Kind
    key: SeriesKey
    unit: str | None
    metadata: dict[str, str]
    layout: Layout | None = None


@dataclass
class _Block:
    first: int  # file row of the block's first row
    rows: int
    scalars: dict[Kind, tuple[np.ndarray, np.ndarray]]  # kind → (values (columns, rows), valid (columns, rows))
    histograms: list[tuple[np.ndarray, np.ndarray]]  # per column: (valid (rows,), dense (rows, buckets))


class RecordedAgent:
    """Rows of one agent of a recording, as snapshots. Not thread-safe: use from one thread (the event loop)."""

    def __init__(self, path: str | os.PathLike[str], node: str | None = None, batch_rows: int = BATCH_ROWS):
        self.path = Path(path)
        try:
            self._parquet = pq.ParquetFile(self.path)
            times = self._parquet.read(columns=["timestamp", "duration"], use_threads=False)
        except FileNotFoundError:
            raise ReplayError(f"{self.path}: no such file") from None
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise ReplayError(f"{self.path}: not a readable Rezolus recording: {str(exc).splitlines()[0]}") \
                from None
        footer = parse_footer(self._parquet.metadata.metadata)
        self.batch_rows = batch_rows
        self.nodes, self.node, self.columns, source = _select(self._parquet.schema_arrow, node, self.path)
        self._kinds = {kind: [c for c in self.columns if c.kind is kind] for kind in Kind}
        raw = times.column("timestamp").to_numpy(zero_copy_only=False).astype(np.int64)
        # Serve rows in file order, skipping any that do not move time forward (a clock step in the recording).
        before = np.concatenate(([np.iinfo(np.int64).min], np.maximum.accumulate(raw)[:-1]))
        self.row_index = np.flatnonzero(raw > before)
        if len(self.row_index) == 0:
            raise ReplayError(f"{self.path}: the recording has no rows")
        self.timestamps = raw[self.row_index]
        duration = times.column("duration")
        self.durations = duration.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)[self.row_index]
        self.interval_ns = int(footer.interval_ms * 1e6) if footer.interval_ms else \
            int(np.median(np.diff(self.timestamps))) if len(self.timestamps) > 1 else 1_000_000_000
        self.period_ns = int(self.timestamps[-1] - self.timestamps[0]) + self.interval_ns
        info = footer.per_source.get(source) if source else None
        member = info.members.get(self.node or "") or next(iter(info.members.values()), {}) if info else {}
        self.version = str((info.version if info else None) or member.get("version") or footer.version or "unknown")
        systeminfo = member.get("systeminfo") if isinstance(member.get("systeminfo"), dict) else None
        self.systeminfo: dict[str, Any] | None = systeminfo or footer.systeminfo
        served = {c.key.metric for c in self.columns}
        self.descriptions: dict[str, str] | None = \
            {k: v for k, v in footer.descriptions.items() if k in served} if footer.descriptions else None
        self._block: _Block | None = None
        self._batches: Any = None
        self._next_first = 0
        self._shifts = self._loop_shifts()

    @property
    def rows(self) -> int:
        return len(self.timestamps)

    def snapshot(self, row: int, loop: int = 0, offset_ns: int = 0) -> Snapshot:
        """Row `row` of pass `loop`, its timestamp moved by `offset_ns` + loop × period."""
        file_row = int(self.row_index[row])
        block = self._block_of(file_row)
        r = file_row - block.first
        snap = Snapshot(2, int(self.timestamps[row]) + loop * self.period_ns + offset_ns, int(self.durations[row]),
                        {"source": "rezolus", "version": self.version}, [], [], [])
        for kind, out in ((Kind.COUNTER, snap.counters), (Kind.GAUGE, snap.gauges)):
            columns = self._kinds[kind]
            values, valid = block.scalars[kind]
            row_values = values[:, r]
            if kind is Kind.COUNTER and loop:
                row_values = row_values + np.uint64(loop) * self._shifts[0]  # wraps like a u64 counter
            for i, value in zip(np.flatnonzero(valid[:, r]).tolist(), row_values[valid[:, r]].tolist()):
                c = columns[i]
                out.append(Entry(c.entry, c.key, value, None, c.unit, c.metadata))
        for c, (valid, dense), shift in zip(self._kinds[Kind.HISTOGRAM], block.histograms, self._shifts[1]):
            if valid[r]:
                value = dense[r] + np.uint64(loop) * shift if loop else dense[r]
                snap.histograms.append(Entry(c.entry, c.key, value, c.layout, c.unit, c.metadata))
        return snap

    # --- reading --------------------------------------------------------------------------------------------

    def _block_of(self, file_row: int) -> _Block:
        block = self._block
        if block is not None and block.first <= file_row < block.first + block.rows:
            return block
        if block is None or file_row < block.first or self._batches is None:
            self._batches, self._next_first = self._iter(), 0  # rows go forward; a new pass starts over
        while True:
            try:
                batch = next(self._batches)
            except StopIteration:
                raise IndexError(f"row {file_row} is beyond the recording") from None
            first, self._next_first = self._next_first, self._next_first + batch.num_rows
            if file_row < self._next_first:
                self._block = self._decode(batch, first)
                return self._block

    def _iter(self):
        names = sorted({c.name for c in self.columns}) or ["timestamp"]
        return self._parquet.iter_batches(batch_size=self.batch_rows, columns=names, use_threads=False)

    def _decode(self, batch: pa.RecordBatch, first: int) -> _Block:
        positions: dict[tuple[str, int], int] = {}
        seen: dict[str, int] = {}
        for i, name in enumerate(batch.schema.names):
            positions[(name, seen.get(name, 0))] = i
            seen[name] = seen.get(name, 0) + 1
        scalars: dict[Kind, tuple[np.ndarray, np.ndarray]] = {}
        for kind, dtype in ((Kind.COUNTER, np.uint64), (Kind.GAUGE, np.int64)):
            columns = self._kinds[kind]
            values = np.zeros((len(columns), batch.num_rows), dtype=dtype)
            valid = np.zeros((len(columns), batch.num_rows), dtype=bool)
            for i, c in enumerate(columns):
                array = batch.column(positions[(c.name, c.occurrence)])
                if array.null_count == 0:  # the common case, and a copy-free one
                    valid[i] = True
                    values[i] = array.to_numpy(zero_copy_only=False)
                else:
                    valid[i] = array.is_valid().to_numpy(zero_copy_only=False)
                    values[i] = array.fill_null(0).to_numpy(zero_copy_only=False)
            scalars[kind] = (values, valid)
        histograms = []
        for c in self._kinds[Kind.HISTOGRAM]:
            assert c.layout is not None
            array = batch.column(positions[(c.name, c.occurrence)])
            n = c.layout.buckets
            lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
            valid = lengths == n  # a row of the wrong length is served as absent, like a dropped histogram
            dense = np.zeros((batch.num_rows, n), dtype=np.uint64)
            if valid.any():
                flat = pc.list_flatten(array.filter(pa.array(valid))).to_numpy(zero_copy_only=False)
                dense[valid] = flat.reshape(-1, n)
            histograms.append((valid, dense))
        return _Block(first, batch.num_rows, scalars, histograms)

    def _loop_shifts(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Per counter and per histogram bucket: last − first present value + one typical step (≥ 0)."""
        counters, hists = self._kinds[Kind.COUNTER], self._kinds[Kind.HISTOGRAM]
        c_first = np.zeros(len(counters), dtype=np.uint64)
        c_last = np.zeros(len(counters), dtype=np.uint64)
        c_count = np.zeros(len(counters), dtype=np.int64)
        h_first: list[np.ndarray | None] = [None] * len(hists)
        h_last: list[np.ndarray | None] = [None] * len(hists)
        h_count = np.zeros(len(hists), dtype=np.int64)
        wanted = np.zeros(self._parquet.metadata.num_rows, dtype=bool)
        wanted[self.row_index] = True
        first_row = 0
        for batch in self._iter():
            block = self._decode(batch, first_row)
            keep = wanted[first_row:first_row + block.rows]
            first_row += block.rows
            values, valid = block.scalars[Kind.COUNTER]
            valid = valid & keep
            present = valid.any(axis=1)
            if present.any():
                cols = np.flatnonzero(present)
                ends = block.rows - 1 - np.argmax(valid[cols][:, ::-1], axis=1)
                fresh = cols[c_count[cols] == 0]
                c_first[fresh] = values[fresh, np.argmax(valid[fresh], axis=1)]
                c_last[cols] = values[cols, ends]
                c_count += valid.sum(axis=1)
            for i, (ok, dense) in enumerate(block.histograms):
                rows = np.flatnonzero(ok & keep)
                if len(rows):
                    if h_first[i] is None:
                        h_first[i] = dense[rows[0]].copy()
                    h_last[i] = dense[rows[-1]].copy()
                    h_count[i] += len(rows)
        # Counters exactly, in Python ints (a float would round a u64); buckets are far below 2^53.
        c_shift = np.array([max(last - first + round((last - first) / (n - 1)), 0) % (1 << 64) if n >= 2 else 0
                            for first, last, n in zip(c_first.tolist(), c_last.tolist(), c_count.tolist())],
                           dtype=np.uint64)
        h_shift = []
        for c, first, last, count in zip(hists, h_first, h_last, h_count.tolist()):
            if first is None or last is None:  # set together: never present in the rows served
                assert c.layout is not None  # a histogram column without its layout is not kept
                h_shift.append(np.zeros(c.layout.buckets, dtype=np.uint64))
            else:
                h_shift.append(_shift(first, last, count))
        return c_shift, h_shift


def _shift(first: np.ndarray, last: np.ndarray, count: np.ndarray | int) -> np.ndarray:
    """last - first + the mean step, never negative (a counter that went down in the recording adds nothing)."""
    increase = last.astype(np.float64) - first.astype(np.float64)
    steps = np.maximum(np.asarray(count, dtype=np.float64) - 1, 1)
    shift = np.maximum(increase + np.rint(increase / steps), 0)
    return np.where(np.asarray(count) >= 2, shift, 0).astype(np.uint64)


def _select(schema: pa.Schema, node: str | None,
            path: Path) -> tuple[list[str], str | None, list[ReplayColumn], str | None]:
    """(node names, chosen node, columns to serve, the agent's source label)."""
    fields: list[tuple[pa.Field, int, dict[str, str]]] = []
    seen: dict[str, int] = {}
    for field in schema:
        occurrence = seen.get(field.name, 0)
        seen[field.name] = occurrence + 1
        if field.name in ("timestamp", "duration") or field.name.endswith(SIDECARS) or field.name == ":wall_offset":
            continue
        md = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in (field.metadata or {}).items()}
        fields.append((field, occurrence, md))
    nodes = sorted({md["node"] for _, _, md in fields if md.get("node")})
    if node is not None and node not in nodes:
        known = ", ".join(nodes) if nodes else "none: it holds a single agent"
        raise ReplayError(f"{path}: no node {node!r} (nodes: {known})")
    chosen = node or (nodes[0] if nodes else None)
    if chosen is not None:
        fields = [f for f in fields if f[2].get("node") == chosen]
    sources = {md.get("source") for _, _, md in fields}
    agent = None
    if len(sources) > 1:  # an agent mixed with services (AB files: the agent's source is `localhost-4241`)
        agents = {md.get("source") for _, _, md in fields if md.get("source") == "rezolus"
                  or md.get("metric") in AGENT_METRICS}
        if len(agents) == 1:
            agent = agents.pop()
            fields = [f for f in fields if f[2].get("source") == agent]
    elif sources:
        agent = next(iter(sources))
    columns = [c for c in (_column(f, occurrence, md) for f, occurrence, md in fields) if c is not None]
    if not columns:
        raise ReplayError(f"{path}: no counter, gauge or histogram columns to serve")
    order = {Kind.COUNTER: 0, Kind.GAUGE: 1, Kind.HISTOGRAM: 2}
    columns.sort(key=lambda c: (order[c.kind], c.entry))
    return nodes, chosen, columns, agent


def _column(field: pa.Field, occurrence: int, md: dict[str, str]) -> ReplayColumn | None:
    if pa.types.is_uint64(field.type):
        kind = Kind.COUNTER
    elif pa.types.is_int64(field.type):
        kind = Kind.GAUGE
    elif pa.types.is_list(field.type) and pa.types.is_uint64(field.type.value_type):
        kind = Kind.HISTOGRAM
    else:
        return None
    entry = field.name[:-len(":buckets")] if field.name.endswith(":buckets") else field.name
    metadata = {k: v for k, v in md.items() if k not in ("metric_type", "endpoint")}
    if metadata.get("source") != "external":
        metadata.pop("source", None)
    for label in ("node", "instance"):  # added by `parquet combine` together with the `<value>::` name prefix
        value = metadata.get(label)
        if value is not None and entry.startswith(f"{value}::"):
            entry = entry[len(value) + 2:]
            del metadata[label]
    metadata.setdefault("metric", entry)
    layout = None
    if kind is Kind.HISTOGRAM:
        try:
            layout = Layout(int(metadata["grouping_power"]), int(metadata["max_value_power"]))
        except (KeyError, ValueError, LayoutError):
            return None  # a histogram without its layout is unreadable (metriken-query drops it too)
    labels = make_labels({k: v for k, v in metadata.items() if k not in PROPERTY_KEYS})
    return ReplayColumn(field.name, occurrence, entry, kind, SeriesKey(metadata["metric"], labels),
                        metadata.get("unit"), metadata, layout)
