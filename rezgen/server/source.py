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
    """What the API and the pages read; read-only members, so a property (a recording's store, a live window's
    lock) satisfies them as well as an attribute does."""

    @property
    def store(self) -> Store: ...

    @property
    def lock(self) -> threading.RLock:
        """Held while reading the store: live mode appends from a poller thread, and a recording decodes series
        lazily on first use."""

    @property
    def sections(self) -> list[Section]: ...

    @property
    def interval_ns(self) -> int: ...

    @property
    def hosts(self) -> list[str]:
        """Values of the `node` label when there are several hosts, else []."""

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
