"""`serve --prometheus`: a TSDB as the live pages' source. A poller asks the backend for its newest sample at the
refresh rate; the trailing window (`retention`) up to it is what pages show, and the live hub pushes the new steps
to open pages exactly as it does for agents (`hub.Hub`, `live.live_routes`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rezgen.backend.client import BackendError
from rezgen.backend.dataset import BackendStore
from rezgen.dashboards import Plot, Section
from rezgen.recording.footer import Footer

log = logging.getLogger(__name__)


class BackendWindow:
    """What the hub reads of live data (`live.ingest.Ingest`'s members): the store, the newest sample, a lock."""

    def __init__(self, store: BackendStore, retention_ns: int):
        self.store = store
        self.retention_ns = retention_ns
        self.newest_ns: int | None = None
        self.seq = 0

    @property
    def lock(self) -> threading.RLock:
        # Nothing here changes under a reader (the backend holds the data): each reader gets a lock of its own, so
        # pages and the hub query the backend side by side.
        return threading.RLock()

    def advance(self, newest_ns: int) -> bool:
        """The backend's newest sample is now `newest_ns`: True when that is news."""
        if self.newest_ns is not None and newest_ns <= self.newest_ns:
            return False
        self.newest_ns = newest_ns
        self.store.window = (max(0, newest_ns - self.retention_ns), newest_ns)
        self.seq += 1
        return True


class BackendLiveSource:
    """The pages' source (as `live_source.LiveSource`) over a backend."""

    def __init__(self, window: BackendWindow, sections: list[Section], url: str, footer: Footer):
        self.ingest = window
        self.sections = sections
        self.interval_ns = window.store.interval_ns
        self.url = url
        self.footer = footer
        self.error: str | None = None
        self.last_success: float | None = None
        self.down_since: float | None = None
        self.polls = 0

    @property
    def store(self) -> BackendStore:
        return self.ingest.store

    @property
    def lock(self) -> threading.RLock:
        return self.ingest.lock

    @property
    def hosts(self) -> list[str]:
        try:
            return self.store.hosts()
        except BackendError:
            return []

    def time_range(self) -> tuple[int, int] | None:
        return self.store.window if self.ingest.newest_ns is not None else None

    def describe(self, metric: str) -> str | None:
        return self.footer.describe(metric)

    @property
    def systeminfo(self) -> dict[str, Any] | None:
        return self.footer.systeminfo

    def has_data(self, plot: Plot) -> bool:
        return bool(plot.metrics) and all(self.store.series_of(name) for name in plot.metrics)

    def reach_ns(self) -> int:
        """How far back a page may ask: the backend's window (the TSDB keeps more; pages show this much)."""
        return self.ingest.retention_ns

    def oldest_ns(self) -> int | None:
        """The oldest time a page may show: the start of the backend's window."""
        bounds = self.time_range()
        return bounds[0] if bounds else None

    def range_store(self, start_ns: int, end_ns: int, metrics: set[str] | None = None
                    ) -> tuple[BackendStore, threading.RLock]:
        """Every range is read from the backend itself."""
        return self.store, self.lock

    @staticmethod
    def rolled_up(section: Any, span: Any, scope: Any) -> None:
        """No rollups: the backend answers any range itself."""

    def poll(self) -> bool:
        """Ask for the newest sample; True when the window moved."""
        try:
            newest = self.store.newest_sample(self.ingest.retention_ns)
        except BackendError as exc:
            if self.error is None:
                log.warning("%s", exc)
            self.error = str(exc)
            self.down_since = self.down_since or time.time()
            return False
        self.error, self.down_since, self.last_success = None, None, time.time()
        self.polls += 1
        return newest is not None and self.ingest.advance(newest)

    def run(self, every_s: float, stop: threading.Event, moved: Callable[[], None]) -> None:
        while not stop.is_set():
            if self.poll():
                moved()
            stop.wait(every_s)

    def status(self) -> dict[str, Any]:
        newest = self.ingest.newest_ns
        return {"agents": [{
            "node": None, "url": self.url, "state": "connected" if self.error is None else "disconnected",
            "error": self.error, "last_success_ms": int(self.last_success * 1000) if self.last_success else None,
            "down_since_ms": int(self.down_since * 1000) if self.down_since else None,
            "snapshots": self.polls, "restarts": 0}],
            "seq": self.ingest.seq, "newest_ms": newest // 1_000_000 if newest else None}
