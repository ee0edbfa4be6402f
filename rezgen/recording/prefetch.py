"""Decode a recording's columns ahead of need, in a background thread.

Decoding Parquet is most of what reading a recording costs (histogram columns above all: lists of thousands of
buckets per row), and pyarrow decodes without holding the GIL: one thread decoding beside the main thread's
evaluation of the charts puts the second core to work. Counters and gauges come first (the first charts need
them), then histograms in the order the build first names their metrics; a chart that needs a histogram the
thread has not started on decodes it itself rather than wait behind the others. Only for recordings whose
decoded series all stay loaded (see `budget`): what the thread decodes is kept until the build ends.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable

import numpy as np

from ..evaluation import plot_selectors
from ..histograms import HistogramColumn
from ..model import Kind
from ..promql.engine import parse
from ..promql.values import PromQLError
from ..store import HistogramSeries
from .reader import Column, Recording


class DecodeAhead:
    """Decodes the recording's columns in the background; a context manager that stops the thread."""

    def __init__(self, recording: Recording, queries: Iterable[str]):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rezgen-decode")
        handle = self._pool.submit(recording.reopen)  # the thread reads through its own file handle
        store, table = recording.store, recording.table
        for group in recording.scalar_groups:
            decoded = self._pool.submit(lambda group=group: recording.read_scalars(group, handle.result()))
            for column in group:
                series = store.get(table, column.meta.key)
                if series is not None and not series.loaded:
                    series.unload(_taking(decoded, column.index))
        for column in need_order(recording, queries):
            series = store.get(table, column.meta.key)
            if isinstance(series, HistogramSeries) and not series.loaded:
                background = recording.histogram_loader(column, handle.result)
                series.unload(_waiting(self._pool.submit(background), recording.histogram_loader(column)))

    def __enter__(self) -> DecodeAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _taking(decoded: Future[dict[int, np.ndarray]], index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return decoded.result().pop(index)  # the series keeps its own copy: do not hold the group's twice

    return load


def _waiting(future: Future[HistogramColumn], inline: Callable[[], HistogramColumn]) -> Callable[[], HistogramColumn]:
    def load() -> HistogramColumn:
        return inline() if future.cancel() else future.result()

    return load


def need_order(recording: Recording, queries: Iterable[str]) -> list[Column]:
    """The histogram columns in the order the queries first name their metrics, then the others in metric order."""
    by_metric: dict[str, list[Column]] = defaultdict(list)
    for column in recording.columns:
        if column.meta.kind is Kind.HISTOGRAM:
            by_metric[column.meta.key.metric].append(column)
    order: dict[str, None] = {}
    for query in queries:
        try:
            names = [selector.name for selector in plot_selectors(parse(query))]
        except PromQLError:
            continue  # the chart reports it
        order.update((name, None) for name in names if name in by_metric)
    order.update((name, None) for name in sorted(by_metric))
    return [column for name in order for column in by_metric[name]]
