"""Bounds what a build holds at once: decoded series, and the evaluation pieces its charts share.

A recording decodes a series when a query first reads it and keeps it (`store.Series`); a day at 1 s of a
2,000-column recording is over a gigabyte of counters alone, and a day of demo.parquet's histograms about as much
in sparse deltas. So every series decodes through one loader of the budget's, which counts what is decoded; before
each plot, once the decoded series exceed `LOADED_BUDGET`, the longest-decoded series the plot does not read are
released until within it (a later query decodes them again), and the build releases a metric's series once nothing
reads them any more (`release`). Counters and gauges are decoded in the recording's read groups, split to at most
`LOAD_GROUP_BYTES` (a day of a metric with hundreds of columns is hundreds of megabytes). A short recording never
reaches the budget. Together with `CACHE_BYTES` of shared
evaluation pieces (`BuildCache`), this keeps a build of a day at 1 s within about 1 GB.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np

from rezgen.promql.cache import EvalCache
from rezgen.promql.engine import parse
from rezgen.promql.limits import trim_heap
from rezgen.promql.selectors import select, vector_selectors
from rezgen.promql.values import PromQLError, Vector
from rezgen.recording.reader import Column, Recording
from rezgen.store.model import Kind
from rezgen.store.store import Series

LOADED_BUDGET = 256 * 2**20  # decoded series kept between plots (estimated bytes)
LOAD_GROUP_BYTES = 16 * 2**20  # decoded values one read of counters and gauges may produce
CACHE_BYTES = 16 * 2**20  # arrays the build's evaluation cache keeps (c16's all fit: ~8 MB)

T = TypeVar("T")


class SeriesBudget:
    """Every series of the recording decodes through `_load` (its one loader for the whole build), which counts
    what is decoded."""

    def __init__(self, recording: Recording):
        self.recording = recording
        store, table = recording.store, recording.table
        self._series: dict[int, Series] = {}  # by column index
        self._by_metric: dict[str, list[int]] = defaultdict(list)
        for column in recording.columns:
            if (series := store.get(table, column.meta.key)) is not None:
                self._series[column.index] = series
                self._by_metric[column.meta.key.metric].append(column.index)
        self._index_of = {id(series): index for index, series in self._series.items()}
        # What one read decodes: a histogram column, or counters and gauges in the recording's read groups, split.
        self._items: list[list[Column]] = []
        per_read = max(1, LOAD_GROUP_BYTES // (8 * max(1, recording.rows)))
        for group in recording.scalar_groups:
            for first in range(0, len(group), per_read):
                if part := [c for c in group[first : first + per_read] if c.index in self._series]:
                    self._items.append(part)
        self._items += [[c] for c in recording.columns if c.meta.kind is Kind.HISTOGRAM and c.index in self._series]
        self._item_of = {column.index: item for item, columns in enumerate(self._items) for column in columns}
        self._loaded: dict[int, None] = {}  # the columns whose series are decoded, the longest decoded first
        self._bytes = 0  # what they hold (about)
        # What each column holds once decoded: known up front for counters and gauges, after a first decoding for
        # a histogram.
        self._sizes = {c.index: 8 * recording.rows for c in recording.columns
                       if c.index in self._series and c.meta.kind is not Kind.HISTOGRAM}
        self._freed = 0  # bytes released since memory was last handed back
        self._loaders = {index: partial(self._load, index) for index in self._item_of}
        for index, loader in self._loaders.items():
            self._series[index].unload(loader)

    def _load(self, index: int) -> Any:
        decoded = self._decode(self._item_of[index])
        for other, values in decoded.items():  # the columns read with it get theirs
            if other != index:
                self._series[other].provide(values)
            if other not in self._loaded:
                self._loaded[other] = None
                self._sizes[other] = int(values.nbytes)  # float64 values, or a histogram's sparse deltas
                self._bytes += self._sizes[other]
        return decoded[index]

    def _decode(self, item: int) -> dict[int, Any]:
        """An item's decoded columns by index."""
        columns = self._items[item]
        if columns[0].meta.kind is Kind.HISTOGRAM:
            return {columns[0].index: self.recording.histogram_loader(columns[0])()}
        return self.recording.read_scalars(columns)

    def loaded_bytes(self) -> int:
        """About how much the decoded series hold."""
        return self._bytes

    def before(self, query: str, scope: tuple[tuple[str, str], ...] = ()) -> None:
        """Make room for a plot: when what is decoded and what the plot will decode exceed the budget, release the
        series the plot does not read, the longest decoded first, until within it (or none is left to release)."""
        try:
            selectors = list(vector_selectors(parse(query)))
        except PromQLError:
            return
        store = self.recording.store
        needed = {id(series) for selector in selectors for series in select(store, selector, scope)}
        incoming = sum(self._sizes.get(index, 0) for index in map(self._index_of.get, needed)
                       if index is not None and index not in self._loaded)
        excess = self._bytes + incoming - LOADED_BUDGET
        if excess <= 0:
            return
        chosen = []
        for index in self._loaded:
            if excess <= 0:
                break
            if id(series := self._series[index]) not in needed:
                chosen.append(index)
                excess -= series.loaded_bytes
        self._release(chosen)

    def release(self, metric: str) -> None:
        """Forget the decoded values of a metric's series; a query decodes them again."""
        self._release([index for index in self._by_metric.get(metric, ()) if index in self._loaded])

    def release_series(self, series: Sequence[Series]) -> None:
        """Forget the decoded values of these series (a group of a plot's, evaluated: see plotdata.groups)."""
        self._release([index for index in map(self._index_of.get, map(id, series))
                       if index is not None and index in self._loaded])

    def _release(self, indices: list[int]) -> None:
        if not indices:
            return
        for index in indices:
            series = self._series[index]
            self._bytes -= series.loaded_bytes
            self._freed += series.loaded_bytes
            del self._loaded[index]
            series.unload(self._loaders[index])
        if self._freed >= LOAD_GROUP_BYTES:  # a short recording's metric is not worth a trim of the heap
            trim_heap()  # many mid-sized arrays, kept by glibc's heap and Arrow's pool after they are freed
            self._freed = 0


class Unbudgeted(SeriesBudget):
    """No budget: data that is not decoded here (a TSDB's, queried through its API) has nothing to release."""

    def __init__(self) -> None:
        pass

    def before(self, query: str, scope: tuple[tuple[str, str], ...] = ()) -> None:
        pass

    def release(self, metric: str) -> None:
        pass

    def release_series(self, series: Sequence[Series]) -> None:
        pass


class BuildCache(EvalCache):
    """The build's evaluation cache, keeping at most `CACHE_BYTES` of arrays (the first pieces computed): the
    pieces of a long recording (the irates of a day of histograms: ~3 GB for demo.parquet tiled to 24 h) would
    outgrow the series themselves. A short recording's all fit (c16's: ~8 MB)."""

    def __init__(self) -> None:
        super().__init__()
        self._room = CACHE_BYTES

    def get(self, key: Hashable, compute: Callable[[], T], keep: Callable[[T], bool] | None = None) -> T:
        def fits(value: T) -> bool:
            if keep is not None and not keep(value):
                return False
            size = _nbytes(value)
            if size > self._room:
                return False
            self._room -= size
            return True

        return super().get(key, compute, fits)


def _nbytes(value: Any) -> int:
    """The bytes of the arrays a cached value holds; a selection (a list of series) holds none of its own."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, Vector):
        return sum(sample.values.nbytes + sample.present.nbytes for sample in value.series)
    if isinstance(value, tuple):
        return sum(_nbytes(part) for part in value)
    return 0
