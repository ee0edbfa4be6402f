"""Bounds the decoded series a long recording's build holds at once.

A recording decodes a series when a query first reads it and keeps it (`store.Series`); a day at 1 s of a
2,000-column recording is over a gigabyte of counters alone. For such a recording (over `KEEP_ALL_BYTES` of
counters and gauges), before each plot the series the plot does not read are released once the decoded series
exceed `LOADED_BUDGET` (a later query decodes them again), and counters and gauges are decoded in groups of at most
`LOAD_GROUP_BYTES` instead of a whole metric at once. Shorter recordings keep everything they decode.
"""

from __future__ import annotations

import ctypes
from collections import defaultdict
from collections.abc import Iterator

import pyarrow as pa

from rezgen.plotdata.plots import plot_selectors
from rezgen.promql.engine import parse
from rezgen.promql.selectors import select
from rezgen.promql.values import PromQLError
from rezgen.recording.reader import Column, Recording
from rezgen.store.model import Kind, SeriesKey
from rezgen.store.store import HistogramSeries, Series

KEEP_ALL_BYTES = 256 * 2**20  # a recording whose counters and gauges decode to less keeps every series it decodes
LOADED_BUDGET = 64 * 2**20  # otherwise: decoded series kept between plots (estimated bytes)
LOAD_GROUP_BYTES = 16 * 2**20  # decoded values one read of a metric's counters and gauges may produce


class SeriesBudget:
    def __init__(self, recording: Recording):
        self.recording = recording
        self.active = recording.rows * len(recording.columns) * 8 > KEEP_ALL_BYTES
        self._groups: dict[SeriesKey, list[Column]] = {}
        if not self.active:
            return
        per_read = max(1, LOAD_GROUP_BYTES // (8 * recording.rows))
        by_metric: dict[str, list[Column]] = defaultdict(list)
        for column in recording.columns:
            if column.meta.kind is not Kind.HISTOGRAM:
                by_metric[column.meta.key.metric].append(column)
        for columns in by_metric.values():
            for first in range(0, len(columns), per_read):
                group = columns[first : first + per_read]
                for column in group:
                    self._groups[column.meta.key] = group
        for column, series in self._pairs():  # every series decodes through a bounded loader
            self._release(column, series, rearm=True)

    def _pairs(self, metrics: set[str] | None = None) -> Iterator[tuple[Column, Series]]:
        for column in self.recording.columns:
            if metrics is None or column.meta.key.metric in metrics:
                series = self.recording.store.get(self.recording.table, column.meta.key)
                if series is not None:
                    yield column, series

    def loaded_bytes(self) -> int:
        return sum(series.loaded_bytes for _, series in self._pairs())

    def before(self, query: str, scope: tuple[tuple[str, str], ...] = ()) -> None:
        """Make room for a plot: when over budget, release every series the plot does not read."""
        if not self.active:
            return
        if self.loaded_bytes() <= LOADED_BUDGET:
            return_freed_memory()  # what the last plot freed (cheap: about a millisecond)
            return
        try:
            selectors = list(plot_selectors(parse(query)))
        except PromQLError:
            return
        store = self.recording.store
        needed = {id(series) for selector in selectors for series in select(store, selector, scope)}
        for column, series in self._pairs():
            if id(series) not in needed:
                self._release(column, series)
        return_freed_memory()

    def release(self, metrics: set[str] | None = None) -> None:
        """Forget the decoded values of these metrics' series (all when None); a query decodes them again."""
        if self.active:
            for column, series in self._pairs(metrics):
                self._release(column, series)
            return_freed_memory()

    def _release(self, column: Column, series: Series, rearm: bool = False) -> None:
        if not (series.loaded or rearm):
            return
        if isinstance(series, HistogramSeries):
            series.unload(self.recording.histogram_loader(column))
        else:
            series.unload(self.recording.scalar_loader(column, self._groups.get(column.meta.key, [column])))


def return_freed_memory() -> None:
    """Hand memory freed by released series back to the system: the columns are many mid-sized arrays that glibc
    keeps in its heap (and Arrow in its pool) after they are freed, so a long build's footprint would only grow."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc; elsewhere there is nothing to call
    except (OSError, AttributeError):
        pass
