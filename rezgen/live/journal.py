"""The open segment of the data dir as an append-only journal, encoded as a Parquet segment once, when it closes.

A journal is one agent's rows in time order, as a msgpack stream of records:

    ["rezgen-journal", VERSION, node, interval_ms]   first: what it is, the `node` label (several agents) and interval
    ["f", footer]                                    the footer the segment gets (systeminfo, descriptions), if changed
    ["e", [[name, metric, [[label, value], ...], unit], ...]]
                                                     counters and gauges not described before, numbered in order
    ["s", kind, numbers]                             the entries of kind 0 (counters) or 1 (gauges) when they change:
                                                     their numbers (u32 bytes)
    ["s", 2, entries]                                the histograms when they change: [name, metric, labels, unit,
                                                     grouping_power, max_value_power]
    ["r", t_ns, duration_ns, counters, gauges, where, changes]
                                                     a row: counters (u64) and gauges (i64) as bytes in the order of
                                                     their last "s"; the buckets of every histogram of the last "s",
                                                     end to end, as the positions (u32) and wrapping differences (u64)
                                                     of those that changed since the row before (since zeros after an
                                                     "s" of histograms)

Recording a row costs a few numpy operations: no Parquet encoding while the segment is open, one (`write_segment`)
when it closes, from the journal, which also serves a restart after a kill (`read`). A c16-size host's row is ~25 KB
(its snapshot is ~200 KB of msgpack, mostly histogram buckets that did not change). A journal cut short (a kill
during a write, a full disk) reads up to its last whole record.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import numpy as np

from rezgen.agent.pieces import Identity, Scalars
from rezgen.gcpause import paused_gc
from rezgen.live.segment_writer import SCALAR_KINDS, ColumnId, column_name, scalar_columns, series_meta, write_columns
from rezgen.recording.writer import MAX_ROW_GROUP_SIZE
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels

log = logging.getLogger(__name__)

MAGIC = "rezgen-journal"
VERSION = 1
SUFFIX = ".journal"
# A row group is assembled in memory before it is written: a ten-minute segment of a c16-size host (~130 KB of
# histogram buckets a row) is one row group, one footer's worth of column chunks.
ROW_GROUP_BYTES = 128 << 20
_DTYPES = (np.uint64, np.int64)


class JournalError(ValueError):
    """A file that is not a journal this version reads."""


@functools.lru_cache(maxsize=256)
def _buckets(grouping_power: int, max_value_power: int) -> int:
    return Layout(grouping_power, max_value_power).buckets


class Journal:
    """One agent's open segment: rows are recorded into `pending` (bytes to append) by `add`; the writer appends
    them to `path` (`take`) and closes the journal into a segment when it spans the segment length."""

    def __init__(self, path: Path, node: str | None, interval_ms: int):
        self.path = path
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.rows = 0
        self.parted_ns: int | None = None  # the last row already written as a part of the open segment
        self.parts: list[Path] = []
        self.broken = False  # a write failed: what follows goes to another journal
        self._pending: list[bytes] = [msgpack.packb([MAGIC, VERSION, node, interval_ms])]
        self._scalars: list[tuple[list[str], list[Identity]] | None] = [None, None]
        self._numbers: dict[tuple[str, int], tuple[Identity, int]] = {}  # (name, id(identity)) -> its number
        self._histograms: list[tuple[SeriesKey, int, int]] | None = None
        self._previous: np.ndarray | None = None
        self._footer: dict[str, Any] | None = None
        self._file: BinaryIO | None = None

    def add(self, snapshot: Any) -> None:
        pending = self._pending
        values = []
        for index in (0, 1):
            columns: Scalars = snapshot.scalars(index)
            last = self._scalars[index]
            if last is None or (columns.names is not last[0]
                                and (columns.names != last[0] or columns.identities != last[1])):
                pending.append(msgpack.packb(["s", index, self._number(columns).tobytes()]))
                self._scalars[index] = (columns.names, columns.identities)
            values.append(np.asarray(columns.values, dtype=_DTYPES[index]).tobytes())
        histograms = [e for e in snapshot.histograms if e.layout is not None
                      and len(e.value) == _buckets(e.layout.grouping_power, e.layout.max_value_power)]
        described = [(e.key, e.layout.grouping_power, e.layout.max_value_power) for e in histograms]
        if described != self._histograms:
            entries = [[e.name, e.key.metric, e.key.labels, e.unit, g, m]
                       for e, (_, g, m) in zip(histograms, described)]
            pending.append(msgpack.packb(["s", 2, entries]))
            self._histograms, self._previous = described, None
        where = changes = b""
        if histograms:
            current = np.concatenate([e.value for e in histograms])  # (numpy is 4x slower given a dtype)
            if current.dtype != np.uint64:
                current = current.astype(np.uint64)
            previous = self._previous
            # (nonzero() of a boolean array is 10x faster than of u64 differences)
            at = np.flatnonzero(current if previous is None else current != previous)
            delta = current[at] if previous is None else current[at] - previous[at]  # wraps, as u64 does
            where, changes = at.astype(np.uint32).tobytes(), delta.tobytes()
            self._previous = current
        t_ns = snapshot.timestamp_ns
        pending.append(msgpack.packb(["r", t_ns, getattr(snapshot, "duration_ns", None), *values, where, changes]))
        self.first_ns = t_ns if self.first_ns is None else self.first_ns
        self.last_ns = t_ns
        self.rows += 1

    def _number(self, columns: Scalars) -> np.ndarray:
        """The entries' numbers; those seen for the first time are described first. By identity object: the decoder
        hands out the same one while an entry stays the same."""
        numbers = self._numbers
        out = np.empty(len(columns.names), dtype=np.uint32)
        new = []
        for i, (name, found) in enumerate(zip(columns.names, columns.identities)):
            known = numbers.get((name, id(found)))
            if known is None or known[0] is not found:
                known = numbers[(name, id(found))] = (found, len(numbers))  # holding it keeps its id unique
                new.append([name, found[1].metric, found[1].labels, found[2]])
            out[i] = known[1]
        if new:
            self._pending.append(msgpack.packb(["e", new]))
        return out

    def footer(self, footer: dict[str, Any]) -> None:
        """The footer the segment gets, recorded when it changed."""
        if footer != self._footer:
            self._pending.append(msgpack.packb(["f", footer], default=str))
            self._footer = footer

    def take(self) -> bytes:
        """The records not yet appended to the file."""
        data, self._pending = b"".join(self._pending), []
        return data

    def append(self, data: bytes) -> None:
        """Append records to the file (kept open: a journal is appended every second)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 (closed by `close`)
        self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # what could not be written was said when it was written
                file.close()


@dataclass
class _HistogramRun:
    """Rows [start, end) of the same histogram entries: their positions and changes, and where each entry starts."""

    start: int
    entries: list[tuple[ColumnId, SeriesMeta, int, int]]  # column, meta, first bucket, buckets
    rows: list[int] = field(default_factory=list)
    where: list[bytes] = field(default_factory=list)
    changes: list[bytes] = field(default_factory=list)


@dataclass
class Recorded:
    """A journal read back."""

    node: str | None
    interval_ms: int
    footer: dict[str, Any] = field(default_factory=dict)
    stamps: list[int] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    scalars: tuple[list[Scalars], list[Scalars]] = field(default_factory=lambda: ([], []))
    runs: list[_HistogramRun] = field(default_factory=list)


def read(path: Path) -> Recorded:
    """The whole records of a journal (a damaged or cut-short end is left out, with a warning if damaged)."""
    with paused_gc():  # thousands of objects, no cycles
        return _read(path)


def _read(path: Path) -> Recorded:
    data = path.read_bytes()
    unpacker = msgpack.Unpacker(raw=False, use_list=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    try:
        head = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException):
        head = None
    if not isinstance(head, tuple) or len(head) != 4 or head[0] != MAGIC:
        raise JournalError(f"{path}: not a journal")
    if head[1] != VERSION:
        raise JournalError(f"{path}: a journal of another rezgen version (format {head[1]}, this one reads "
                           f"{VERSION})")
    out = Recorded(head[2], int(head[3]))
    lists: list[tuple[list[str], list[Identity]]] = [([], []), ([], [])]
    described: list[tuple[str, Identity]] = []  # by number
    run: _HistogramRun | None = None
    try:
        for record in unpacker:
            if record[0] == "r":
                _, t_ns, duration, counters, gauges, where, changes = record
                if run is None or (out.stamps and t_ns <= out.stamps[-1]):
                    raise ValueError("a row out of place")
                for index, raw in enumerate((counters, gauges)):
                    values = np.frombuffer(raw, dtype=_DTYPES[index])
                    if len(values) != len(lists[index][0]):
                        raise ValueError("a row that does not fit its entries")
                    out.scalars[index].append(Scalars(*lists[index], values))
                run.rows.append(len(out.stamps))
                run.where.append(where)
                run.changes.append(changes)
                out.stamps.append(int(t_ns))
                out.durations.append(np.nan if duration is None else float(duration))
            elif record[0] == "e":
                described += [(str(e[0]), _identity(e)) for e in record[1]]
            elif record[0] == "s" and record[1] in (0, 1):
                entries = [described[n] for n in np.frombuffer(record[2], dtype=np.uint32).tolist()]
                lists[record[1]] = ([e[0] for e in entries], [e[1] for e in entries])
            elif record[0] == "s" and record[1] == 2:
                run = _HistogramRun(len(out.stamps), _histogram_entries(record[2], out.node))
                out.runs.append(run)
            elif record[0] == "f":
                out.footer = dict(record[1])
    except (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException) as exc:
        log.warning("%s: damaged after %d rows (%s); the rest is left out", path, len(out.stamps), exc)
    return out


def _identity(entry: tuple[Any, ...]) -> Identity:
    _, metric, labels, unit = entry
    return {}, SeriesKey(metric, make_labels(labels)), unit


def _histogram_entries(entries: list[Any], node: str | None) -> list[tuple[ColumnId, SeriesMeta, int, int]]:
    out = []
    first = 0
    for name, metric, labels, unit, grouping_power, max_value_power in entries:
        key = SeriesKey(metric, make_labels(labels))
        width = _buckets(grouping_power, max_value_power)
        meta = series_meta(key, Kind.HISTOGRAM, unit, Layout(grouping_power, max_value_power), node)
        out.append(((Kind.HISTOGRAM, column_name(name, key, node)), meta, first, width))
        first += width
    return out


def write_segment(recorded: Recorded, target: Path, after_ns: int | None = None) -> int:
    """The journal's rows (those after `after_ns`) as a complete recording at `target` (temporary name, renamed);
    returns the rows written (0: none, nothing written)."""
    with paused_gc():
        return _write_segment(recorded, target, after_ns)


def _write_segment(recorded: Recorded, target: Path, after_ns: int | None) -> int:
    lo = 0 if after_ns is None else int(np.searchsorted(np.array(recorded.stamps, dtype=np.int64), after_ns,
                                                        side="right"))
    rows = len(recorded.stamps) - lo
    if rows <= 0:
        return 0
    metas: dict[ColumnId, SeriesMeta] = {}
    cells: dict[ColumnId, np.ndarray] = {}
    for index, kind in enumerate(SCALAR_KINDS):
        scalar_columns(recorded.scalars[index][lo:], kind, recorded.node, metas, cells)
    _histogram_columns(recorded.runs, lo, rows, metas, cells)
    width = sum(c.shape[1] if c.ndim == 2 else 1 for c in cells.values()) + 2
    group = max(1, min(MAX_ROW_GROUP_SIZE, ROW_GROUP_BYTES // (8 * width)))
    stamps = np.array(recorded.stamps[lo:], dtype=np.int64)
    durations = np.array(recorded.durations[lo:], dtype=np.float64)
    write_columns(target, stamps, durations, metas, cells, recorded.interval_ms, recorded.footer, group)
    return rows


def _histogram_columns(runs: list[_HistogramRun], lo: int, rows: int, metas: dict[ColumnId, SeriesMeta],
                       cells: dict[ColumnId, np.ndarray]) -> None:
    """(rows, buckets) u64 columns of the rows from `lo` on, masked where a row has no value (or one of another
    layout than the column's first): each run's changes scattered into place and summed down the rows."""
    present: dict[ColumnId, np.ndarray] = {}
    for run in runs:
        if not run.rows or run.rows[-1] < lo or not run.entries:
            continue
        counts = np.array([len(w) // 4 for w in run.where], dtype=np.int64)
        row = np.repeat(np.array(run.rows, dtype=np.int64) - lo, counts)  # the table row of each change
        where = np.frombuffer(b"".join(run.where), dtype=np.uint32).astype(np.int64)
        changes = np.frombuffer(b"".join(run.changes), dtype=np.uint64)
        before = row < 0  # rows before `lo`: they only make the first row's values
        first = max(run.rows[0] - lo, 0)
        for column, meta, start, width in run.entries:
            dense = cells.get(column)
            if dense is None:
                metas[column] = meta
                dense = cells[column] = np.zeros((rows, width), dtype=np.uint64)
                present[column] = np.zeros(rows, dtype=bool)
            elif dense.shape[1] != width:
                continue
            mine = (where >= start) & (where < start + width)
            block = dense[first : run.rows[-1] - lo + 1]
            take = mine & ~before
            block[row[take] - first, where[take] - start] = changes[take]
            np.add.at(block[0], where[mine & before] - start, changes[mine & before])
            for i in range(1, len(block)):  # row by row: contiguous (numpy's cumsum down a column strides, 4x slower)
                np.add(block[i - 1], block[i], out=block[i])
            present[column][first : run.rows[-1] - lo + 1] = True
    for column, here in present.items():
        if not here.all():
            cells[column] = np.ma.MaskedArray(cells[column], mask=np.repeat(~here[:, None], cells[column].shape[1],
                                                                            axis=1))
