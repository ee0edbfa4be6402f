"""What a server answers from: a store, the dashboards, and facts about the data (range, hosts, metrics).

`RecordingSource` wraps an opened recording (rezgen serve RECORDING); live mode provides the same attributes
over its sliding window, so the HTTP API and the pages do not care which one they talk to.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from rezgen.dashboards import Section
from rezgen.plotdata.plots import TimeRange
from rezgen.store.model import Kind
from rezgen.store.store import Store
from rezgen.timeparse import ceil_ms


class DataSource(Protocol):
    store: Store
    lock: threading.RLock  # held while reading the store: live mode appends from a poller thread, and a
    # recording decodes series lazily on first use
    sections: list[Section]
    interval_ns: int
    hosts: list[str]  # values of the `node` label when there are several hosts, else []

    def time_range(self) -> tuple[int, int] | None:
        """First and last sample time (ns) of the data, None before the first sample."""

    def describe(self, metric: str) -> str | None:
        """Help text for a metric, when the source has one."""

    @property
    def systeminfo(self) -> dict[str, Any] | None: ...


def default_span(source: DataSource) -> TimeRange | None:
    """The whole data at its sampling interval, starting on a whole millisecond."""
    bounds = source.time_range()
    if bounds is None:
        return None
    return TimeRange(ceil_ms(bounds[0]), bounds[1], source.interval_ns)


def metric_catalog(source: DataSource) -> list[dict[str, Any]]:
    """Every metric: name, type, unit, series count, label names with their values, description."""
    catalog: dict[str, dict[str, Any]] = {}
    for series in source.store:
        entry = catalog.setdefault(series.key.metric, {
            "name": series.key.metric, "type": series.kind.value, "unit": series.meta.unit, "series": 0,
            "labels": {}, "description": series.meta.description or source.describe(series.key.metric),
        })
        entry["series"] += 1
        for key, value in series.key.labels:
            entry["labels"].setdefault(key, set()).add(value)
    for entry in catalog.values():
        entry["labels"] = {k: sorted(v) for k, v in sorted(entry["labels"].items())}
    return [catalog[name] for name in sorted(catalog)]


@dataclass
class RecordingSource:
    """An opened recording (see rezgen.recording.reader.Recording) with the dashboards to show it."""

    recording: Any
    sections: list[Section]
    hosts: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def store(self) -> Store:
        return self.recording.store

    @property
    def interval_ns(self) -> int:
        return self.recording.interval_ns

    def time_range(self) -> tuple[int, int] | None:
        return self.recording.time_range

    def describe(self, metric: str) -> str | None:
        return self.recording.footer.describe(metric)

    @property
    def systeminfo(self) -> dict[str, Any] | None:
        return self.recording.footer.systeminfo


def kind_of(source: DataSource, metric: str) -> Kind | None:
    series = source.store.series_of(metric)
    return series[0].kind if series else None
