"""Restart without a blank page: refill the live window from the newest segments of the data dir.

Each agent's last `retention` of samples is read back from its node's segments before the agent is polled again,
so a page opened a second after a restart shows the last hour; the time rezgen was down is a hole in the table (a
break in every chart). A segment goes in whole, as columns (an hour of a large host is ~7 million values: a row or
a series at a time in Python took seconds): its counters and gauges as one (rows, series) float64 matrix, NaN
where a column has no sample, written into the window's block at once (`Ingest.extend`, after `Ingest.reserve`
took the window's storage once); each histogram column straight from the file's lists into its sparse deltas.
Segments of one node share their schema, parsed once (`SchemaMemo`), and their lists of names and identities, so
ingest plans its writes once. A segment that cannot be read is skipped with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rezgen.agent.pieces import Identity, Scalars
from rezgen.live.datadir import FORMAT, FORMAT_KEY, list_segments
from rezgen.live.ingest import Ingest
from rezgen.recording.reader import Column, Recording, RecordingError, SchemaMemo, open_recording
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, make_labels

log = logging.getLogger(__name__)
# Per kind, the previous segment's columns (one schema's are the same objects: `SchemaMemo`), and the lists of
# names and identities made of them, handed out again while they are equal: ingest reuses its plan by identity.
_Lists = tuple[list[Column], list[str], list[Identity]]


def open_segment(path: Path, memo: SchemaMemo | None = None) -> Recording | None:
    """A segment as a recording, or None (with a warning) when it is damaged or of another format version. `memo`:
    the columns of the schema of a segment opened before (see `SchemaMemo`)."""
    try:
        recording = open_recording(path, memo)
    except RecordingError as exc:
        log.warning("skipping a segment: %s", exc)
        return None
    version = recording.footer.raw.get(FORMAT_KEY)
    if version is not None and version != FORMAT:
        log.warning("skipping a segment: %s: written by another rezgen version (segment format %s, this one reads %s)",
                    path, version, FORMAT)
        return None
    return recording


def refill(ingest: Ingest, root: Path, dirs: dict[str, str]) -> int:
    """Append the newest `ingest.retention_ns` of each agent's segments (agent url -> node directory); returns the
    rows appended."""
    found = list_segments(root)
    rows = 0
    for agent, name in dirs.items():
        files = found.get(name, [])
        if not files:
            continue
        cutoff = max(s.end_ns for s in files) - ingest.retention_ns
        segments = [s for s in files if s.end_ns >= cutoff]
        span_ns = max(s.end_ns for s in segments) - max(min(s.start_ns for s in segments), cutoff)
        shared: dict[Kind, _Lists] = {}
        memo = SchemaMemo()
        for segment in segments:
            added = _append(ingest, agent, open_segment(segment.path, memo), cutoff, shared, span_ns)
            rows += added
            span_ns = 0 if added else span_ns
    return rows


def _append(ingest: Ingest, agent: str, recording: Recording | None, cutoff: int,
            shared: dict[Kind, _Lists], span_ns: int) -> int:
    """One segment's (None: unreadable) rows from `cutoff` on, a column at a time. `shared`: see `_Lists`.
    `span_ns`: the time all segments cover, when this is the first: room is made for the rows to come, about (at
    this segment's spacing: the agent's pace, whatever this run's --interval), so the window's storage is taken
    once."""
    if recording is None:
        return 0
    try:
        stamps = recording.table.timestamps
        keep = np.flatnonzero(stamps >= cutoff)
        if not len(keep):
            return 0
        scalars = [_scalars(recording, kind, keep, shared) for kind in (Kind.COUNTER, Kind.GAUGE)]
        histograms = [c for c in recording.columns if c.meta.kind is Kind.HISTOGRAM]
        if span_ns:
            spacing = int(np.median(np.diff(stamps))) if len(stamps) > 1 else ingest.store.interval_ns
            ingest.reserve(agent, span_ns // max(spacing, 1) + 1, sum(len(found) for found in scalars))
        first, appended = ingest.extend(agent, stamps[keep], scalars)
        rows = keep[appended]
        for column in histograms if len(rows) else ():
            layout = Layout(column.meta.grouping_power or 0, column.meta.max_value_power or 0)
            series = ingest.histogram(agent, _entry_key(column), column.meta.unit, layout)
            if series is not None and series.layout == layout:
                present, counts = recording.histogram_rows(column, rows)
                with ingest.lock:
                    series.extend_cumulative(first, counts, present)
    except RecordingError as exc:
        log.warning("skipping a segment: %s", exc)
        return 0
    return int(appended.sum())


def _entry_key(column: Column) -> SeriesKey:
    """The series' key as its agent sends it: without the `node` label the recorder added (ingest adds it back)."""
    key = column.meta.key
    return SeriesKey(key.metric, make_labels({k: v for k, v in key.labels if k != "node"}))


def _scalars(recording: Recording, kind: Kind, keep: np.ndarray, shared: dict[Kind, _Lists]) -> Scalars:
    """The counters or gauges of the rows `keep` as one (rows, entries) float64 matrix, NaN for no sample."""
    columns = [c for c in recording.columns if c.meta.kind is kind]
    values = recording.read_scalars(columns) if columns else {}
    before = shared.get(kind)
    if before is None or len(before[0]) != len(columns) or any(a is not b for a, b in zip(before[0], columns)):
        names = [c.name for c in columns]
        identities: list[Identity] = [({}, _entry_key(c), c.meta.unit) for c in columns]
        if before is not None and (before[1], before[2]) == (names, identities):
            names, identities = before[1], before[2]
        before = shared[kind] = columns, names, identities
    matrix = np.empty((len(keep), len(columns)))
    for j, column in enumerate(columns):
        matrix[:, j] = values.pop(column.index)[keep]
    return Scalars(before[1], before[2], matrix)
