"""Percentile plots: p50..p99.99 and the bucket heatmap of `sum(irate(H[5m]))` for a histogram selector H.

They are computed straight from the stored sparse bucket deltas (`promql.sparse`, the engine's own fast path for
that sum), which gives the numbers the PromQL engine gives, without a dense (steps x buckets) array; any other
expression goes through the engine. Percentiles follow the one rule of `store.histogram.quantiles`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import promql_parser as pp

from rezgen.plotdata import decimate
from rezgen.plotdata.evaluation import PlotSource, Scope, TimeRange
from rezgen.plotdata.levels import numbers
from rezgen.promql.cache import EvalCache, parse
from rezgen.promql.engine import chunk_steps, evaluate_range, translated_errors
from rezgen.promql.sparse import summed_irate
from rezgen.promql.values import PromQLError, Vector, type_name
from rezgen.store.histogram import Layout, quantiles
from rezgen.store.store import Store

QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999))
HEAT_COLUMNS = 500  # columns of a percentile plot's bucket heatmap (at most)
HEAT_CELLS = 10_000  # cells holding a count in a bucket heatmap (at most; columns are merged to fit)
HEAT_CELLS_COARSE = 4_000  # the same for a coarse-only plot (the metric browser)
HEAT_DIGITS = 4  # significant digits of bucket heatmap cells averaged over several steps


def percentile_plot(source: PlotSource, query: str, span: TimeRange, scope: Scope, coarse_only: bool,
                    cache: EvalCache | None = None, wanted: tuple[float, ...] | None = None
                    ) -> tuple[list[str], decimate.Reducer, dict[str, Any] | None] | None:
    """p50..p99.99 (or the `wanted` quantiles) and the bucket heatmap of sum(irate(query[5m])), from one pass over
    the bucket rates (or, where the source holds them ready, the percentiles from its quantile gauges and the
    heatmap from its buckets)."""
    times = span.times
    steps = len(times)
    base = decimate.finest_bucket(steps, 2, coarse_only=coarse_only)
    named = QUANTILES if wanted is None else tuple((f"p{q * 100:g}", q) for q in wanted)
    levels = np.array([q for _, q in named])
    rows = decimate.Reducer(len(named), steps, base)
    stride = max(1, math.ceil(steps / HEAT_COLUMNS))
    gauges = source.quantile_gauges(query, span, scope, levels)
    if gauges is not None:
        for _, chunk_times, values in gauges:
            values[:, ~source.coverage(chunk_times)] = np.nan
            rows.feed(values)
    # Heatmap sums per chunk over the chunk's used buckets only: a dense (columns x buckets) array of a
    # 7,424-bucket histogram would be mostly zeros.
    heat_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    layout: Layout | None = None
    for first, chunk_times, used, rates, chunk_layout in source.bucket_rates(query, span, scope, cache):
        layout = chunk_layout
        if gauges is None:
            # The buckets left out are empty, which leaves every percentile as it is (see `quantiles`).
            values = quantiles(rates, levels, layout.highs[used])
            values[:, ~source.coverage(chunk_times)] = np.nan
            rows.feed(values)
        if len(used):
            columns = (first + np.arange(len(chunk_times))) // stride
            starts = np.flatnonzero(np.diff(columns, prepend=columns[0] - 1))
            heat_parts.append((columns[starts], used, np.add.reduceat(rates, starts, axis=0)))
    if (layout is None and gauges is None) or rows.empty.all():
        return None
    cells = HEAT_CELLS_COARSE if coarse_only else HEAT_CELLS
    heatmap = None if layout is None else bucket_heatmap(heat_parts, math.ceil(steps / stride), stride, layout,
                                                          times, cells)
    return [name for name, _ in named], rows, heatmap


def bucket_rates(store: Store, query: str, span: TimeRange, scope: Scope, cache: EvalCache | None = None
                 ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, Layout]]:
    """Per chunk of steps: (first step, times, used buckets, (steps, used) bucket rates, layout) of
    sum(irate(query[5m])); steps where no series has a rate are zero."""
    tree = parse(f"sum(irate({query}[5m]))")
    summed = summed_irate(store, tree, scope, cache)
    if summed is None:
        yield from engine_bucket_rates(store, tree, span, scope, cache)  # the engine decides (or says what is wrong)
        return
    layout = summed.layout
    times = span.times
    chunk = chunk_steps(0, layout.buckets)  # the engine's chunks for the one dense sum its own fast path holds
    for first in range(0, len(times), chunk):
        chunk_times = times[first : first + chunk]
        with translated_errors():
            found = summed.entries(chunk_times, cache)
        if found is None:
            yield first, chunk_times, np.zeros(0, dtype=np.int64), np.zeros((len(chunk_times), 0)), layout
            continue
        step_of, bucket_of, rates, _ = found
        seen = np.zeros(layout.buckets, dtype=bool)  # np.unique without its sort: buckets are small integers
        seen[bucket_of] = True
        used = np.flatnonzero(seen)
        column = (np.cumsum(seen) - 1)[bucket_of]
        # bincount adds in input order, series after series: the same sums as the engine's `sum`.
        dense = np.bincount(step_of * len(used) + column, weights=rates,
                            minlength=len(chunk_times) * len(used)).reshape(len(chunk_times), len(used))
        yield first, chunk_times, used, dense, layout


def engine_bucket_rates(store: Store, tree: pp.Expr, span: TimeRange, scope: Scope, cache: EvalCache | None = None
                        ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, Layout]]:
    for first, times, value in evaluate_range(store, tree, span.start_ns, span.end_ns, span.step_ns, scope,
                                              cache=cache, histograms=True):
        if not isinstance(value, Vector):
            raise PromQLError("a percentiles plot needs histogram series, not a " + type_name(value))
        for sample in value.series:
            if sample.layout is None:
                raise PromQLError("a percentiles plot needs histogram series; this query selects counters or gauges")
            dense = np.where(sample.present[:, None], sample.values, 0.0)
            used = np.flatnonzero(dense.any(axis=0))
            yield first, times, used, dense[:, used], sample.layout


def bucket_heatmap(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], columns: int, stride: int,
                    layout: Layout, times: np.ndarray, max_cells: int) -> dict[str, Any] | None:
    """Per-bucket rates over time (mean over `stride` steps per column), limited to the buckets that ever hold a
    count; neighbouring columns are merged until at most `max_cells` cells hold a count (the cells are the bulk
    of a site, and the browser draws each one). `parts` are (columns, buckets, sums) of the chunks."""
    if not parts:
        return None
    if len(parts) == 1 and len(parts[0][0]) == columns:  # one chunk: its sums are the table
        used, sums = parts[0][1], parts[0][2]
    else:
        used = np.unique(np.concatenate([buckets for _, buckets, _ in parts]))
        sums = np.zeros((columns, len(used)))
        for at, buckets, part in parts:
            sums[np.ix_(at, np.searchsorted(used, buckets))] += part
    nonzero = sums.any(axis=0)
    used, sums = used[nonzero], sums[:, nonzero]
    if len(used) == 0:
        return None
    merge = 1
    while True:
        merged = sums if merge == 1 else _merge_columns(sums, merge)
        if np.count_nonzero(merged) <= max_cells or len(merged) == 1:
            break
        merge = max(merge + 1, math.ceil(merge * np.count_nonzero(merged) / max_cells))
    stride *= merge
    cells = merged / stride
    ti, bi = np.nonzero(cells)
    rates = numbers(cells[ti, bi], HEAT_DIGITS if stride > 1 else None)
    return {
        "t": (times[::stride] // 1_000_000).tolist(),
        "edges": layout.highs[used].tolist(),
        "cells": list(zip(ti.tolist(), bi.tolist(), rates)),  # [column, bucket row, rate]; tuples are JSON arrays
        "max": float(cells.max()),
    }


def _merge_columns(sums: np.ndarray, factor: int) -> np.ndarray:
    """Sum each `factor` consecutive rows of a (columns, buckets) array (the last group may be shorter)."""
    return np.add.reduceat(sums, np.arange(0, len(sums), factor), axis=0)
