"""Restart without a blank page: refill the live window from the newest segments of the data dir.

Each agent's last `retention` of samples is read back from its node's segments and appended as snapshots, before
the agent is polled again, so a page opened a second after a restart shows the last hour; the time rezgen was down
is a hole in the table (a break in every chart). Rows are appended a file at a time, as columns: every row of a
file shares one list of names and identities (so ingest plans its writes once per file), counters and gauges are
float64 with NaN where a column has no sample (which ingest stores as "no sample"). A segment that cannot be read
is skipped with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rezgen.agent.pieces import Identity, Scalars, Snapshot
from rezgen.live.datadir import FORMAT, FORMAT_KEY, SegmentFile, list_segments
from rezgen.live.ingest import Ingest
from rezgen.recording.reader import Column, Recording, RecordingError, open_recording
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, make_labels

log = logging.getLogger(__name__)


def open_segment(path: Path) -> Recording | None:
    """A segment as a recording, or None (with a warning) when it is damaged or of another format version."""
    try:
        recording = open_recording(path)
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
        shared: dict[Kind, tuple[list[str], list[Identity]]] = {}
        for segment in (s for s in files if s.end_ns >= cutoff):
            rows += _append(ingest, agent, segment, cutoff, shared)
    return rows


def _append(ingest: Ingest, agent: str, segment: SegmentFile, cutoff: int,
            shared: dict[Kind, tuple[list[str], list[Identity]]]) -> int:
    """One segment's rows from `cutoff` on. `shared`: the lists of names and identities of the previous segment,
    handed out again when this one's are equal (ingest reuses its plan by identity: the same list)."""
    recording = open_segment(segment.path)
    if recording is None:
        return 0
    try:
        stamps = recording.table.timestamps
        keep = np.flatnonzero(stamps >= cutoff)
        if not len(keep):
            return 0
        scalars = [_scalars(recording, kind, keep, shared) for kind in (Kind.COUNTER, Kind.GAUGE)]
        (counter_names, counter_ids, counters), (gauge_names, gauge_ids, gauges) = scalars
        table = ingest.agents()[agent].table
        first = table.first_row + len(table.timestamps)  # the absolute row of this segment's first row
        appended = np.zeros(len(keep), dtype=bool)
        for i, row in enumerate(keep):
            snapshot: Any = Snapshot(2, int(stamps[row]), None, {}, Scalars(counter_names, counter_ids, counters[i]),
                                     Scalars(gauge_names, gauge_ids, gauges[i]), [])
            appended[i] = ingest.append(agent, snapshot)
        # Histograms a column at a time, straight into the rows just appended (a row at a time, the dense bucket
        # arrays of an hour took seconds).
        rows = keep[appended]
        for column in (c for c in recording.columns if c.meta.kind is Kind.HISTOGRAM):
            layout = Layout(column.meta.grouping_power or 0, column.meta.max_value_power or 0)
            with ingest.lock:
                series = ingest.histogram(agent, _entry_key(column), column.meta.unit, layout)
                if series is not None and series.layout == layout and len(rows):
                    hist = recording.histogram_loader(column)()
                    present = hist.present()[rows]
                    series.extend_cumulative(first, hist.cumulative_at(rows[present]), present)
    except RecordingError as exc:
        log.warning("skipping a segment: %s", exc)
        return 0
    return int(appended.sum())


def _entry_key(column: Column) -> SeriesKey:
    """The series' key as its agent sends it: without the `node` label the recorder added (ingest adds it back)."""
    key = column.meta.key
    return SeriesKey(key.metric, make_labels({k: v for k, v in key.labels if k != "node"}))


def _scalars(recording: Recording, kind: Kind, keep: np.ndarray,
             shared: dict[Kind, tuple[list[str], list[Identity]]]) -> tuple[list[str], list[Identity], np.ndarray]:
    columns = [c for c in recording.columns if c.meta.kind is kind]
    values = recording.read_scalars(columns) if columns else {}
    names = [c.name for c in columns]
    identities: list[Identity] = [({}, _entry_key(c), c.meta.unit) for c in columns]
    if kind in shared and shared[kind] == (names, identities):
        names, identities = shared[kind]
    shared[kind] = names, identities
    matrix = np.column_stack([values[c.index][keep] for c in columns]) if columns else np.empty((len(keep), 0))
    return names, identities, matrix
