"""The quantile spectrum of a percentile plot: many quantiles over time (a quantile x time heatmap).

"full" is p1 … p100, "tail" p99.01 … p100, 100 rows each. Values come from the same bucket rates as the plot's
lines (`percentiles.bucket_rates`, the one evaluation path) and the one percentile rule (`store.histogram.quantiles`),
so the spectrum's p99 row is the p99 line. A long range is cut into at most `COLUMNS` columns, each the
percentiles of the bucket rates summed over its steps (the distribution over that column's time).

Every value is a bucket's upper edge, so a payload ships the edges it uses once and each cell as an index into
them. A column's indices never fall from one quantile to the next (a higher quantile is never in a lower bucket),
so each column ships as runs: [index, count, index, count, …] (index null where there is no point, [] for a column
without any), a handful of pairs instead of 100 numbers. The names and quantiles follow from the mode (MODES) and
the times from the first column's and the column width (chart-spectrum.js decodes all three), so they are not sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from rezgen.plotdata.evaluation import Scope, TimeRange, coverage
from rezgen.plotdata.levels import numbers
from rezgen.plotdata.percentiles import bucket_rates
from rezgen.promql.cache import EvalCache
from rezgen.store.histogram import quantiles
from rezgen.store.store import Store

COLUMNS = 500  # columns of a spectrum (at most), as a bucket heatmap; c16's 361 steps stay one per step
MODES = {
    "full": [(f"p{k}", k / 100) for k in range(1, 101)],
    "tail": [(f"p{99 + k / 100:g}", (9900 + k) / 10000) for k in range(1, 101)],
}


def spectrum(store: Store, query: str, span: TimeRange, scope: Scope, mode: str,
             cache: EvalCache | None = None) -> dict[str, Any] | None:
    """{"mode", "start" and "step" (ms: the first column's time and the columns' width), "stride" (steps per
    column), "edges", "columns" (each column's runs, see `runs`)} of sum(irate(query[5m])), or None when it has no
    point. `mode` is a key of MODES. On a grid whose times are not whole milliseconds apart, "t" (each column's
    time, ms) stands for "start" and "step"."""
    return next(spectra(store, query, span, scope, (mode,), cache), None)


def spectra(store: Store, query: str, span: TimeRange, scope: Scope, modes: tuple[str, ...] = tuple(MODES),
            cache: EvalCache | None = None) -> Iterator[dict[str, Any]]:
    """The spectrum of each mode that has a point, from one pass over the bucket rates."""
    times = span.times
    stride = max(1, math.ceil(len(times) / COLUMNS))
    columns = math.ceil(len(times) / stride)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per chunk: (columns, used buckets, sums)
    highs: np.ndarray | None = None
    for first, chunk_times, used, rates, layout in bucket_rates(store, query, span, scope, cache):
        highs = layout.highs
        if not len(used):
            continue
        rates = np.where(coverage(store, chunk_times)[:, None], rates, 0.0)  # a hole has no point, as on the lines
        column_of = (first + np.arange(len(chunk_times))) // stride
        starts = np.flatnonzero(np.diff(column_of, prepend=column_of[0] - 1))
        parts.append((column_of[starts], used, np.add.reduceat(rates, starts, axis=0)))
    if highs is None or not parts:
        return
    used = np.unique(np.concatenate([buckets for _, buckets, _ in parts]))
    sums = np.zeros((columns, len(used)))  # columns x the buckets that ever hold a count: small
    for at, buckets, part in parts:
        sums[np.ix_(at, np.searchsorted(used, buckets))] += part
    for mode in modes:
        qs = np.array([q for _, q in MODES[mode]])
        values = quantiles(sums, qs, highs[used])
        if np.isnan(values).all():
            continue
        # Each value is one of the edges (ascending): its place among them, then among those that occur.
        finite = np.isfinite(values)
        place = np.searchsorted(highs[used], values[finite])
        occurs = np.zeros(len(used), dtype=bool)
        occurs[place] = True
        edges = highs[used][occurs]
        cells = np.full(values.shape, np.nan)
        cells[finite] = (np.cumsum(occurs) - 1)[place]
        yield {"mode": mode, **column_times(times[::stride], stride * span.step_ns), "stride": stride,
               "edges": numbers(edges), "columns": runs(cells)}


def column_times(times: np.ndarray, width_ns: int) -> dict[str, Any]:
    """{"start", "step"} (ms) of columns `width_ns` apart from times[0] on, when the width is a whole number of
    milliseconds (every column's time, floored to a millisecond as on the lines, is then start + k * step), else
    {"t": each column's time in ms}."""
    if width_ns % 1_000_000 == 0:
        return {"start": int(times[0] // 1_000_000), "step": width_ns // 1_000_000}
    return {"t": (times // 1_000_000).tolist()}


def runs(cells: np.ndarray) -> list[list[int | None]]:
    """Each column of `cells` ([quantile][column]: an edge index, NaN where there is no point) as its runs of equal
    cells, [index, count, index, count, …] top to bottom (index None for no point), or [] when it has no point."""
    out: list[list[int | None]] = []
    for column in np.where(np.isnan(cells), -1, cells).T.astype(np.int64):
        if (column < 0).all():
            out.append([])
            continue
        starts = np.flatnonzero(np.diff(column, prepend=-2))
        counts = np.diff(starts, append=len(column))
        out.append([x for index, count in zip(column[starts].tolist(), counts.tolist())
                    for x in (index if index >= 0 else None, count)])
    return out
