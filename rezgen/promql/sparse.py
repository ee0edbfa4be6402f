"""`irate` of histograms straight from their stored sparse bucket deltas, and `sum(irate(H[range]))` from it.

Through the general path every histogram series of such a sum is a dense (steps x buckets) array first (a
7,424-bucket histogram over 361 steps is 21 MB), most of it zeros. Here each series contributes only its
non-zero entries, added in series order into one array: the same sums, bit for bit, as the general path.
"""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from rezgen.promql.cache import EvalCache, times_key
from rezgen.promql.selectors import Context, duration_ns, select_cached
from rezgen.promql.values import Sample, Vector
from rezgen.store.histogram import Layout
from rezgen.store.store import HistogramSeries, segment_starts

NS = 1e9


Irates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def histogram_irates(series: HistogramSeries, times: np.ndarray, range_ns: int, cache: EvalCache | None = None
                     ) -> Irates | None:
    """`_irates`, once per build when there is a cache (a histogram is charted by several plots)."""
    if cache is None:
        return _irates(series, times, range_ns)
    return cache.get(("irates", id(series), times_key(times), range_ns), lambda: _irates(series, times, range_ns))


def _irates(series: HistogramSeries, times: np.ndarray, range_ns: int) -> Irates | None:
    """irate(series[range]) at `times` as sparse (step, bucket, rate) entries in step order, and the mask of the
    steps that have a rate; None when no step has one.

    As in `rangefuncs.instant`: a step's rate is the change between the last two samples of its window
    (t - range, t], divided by their distance in seconds; each stored row holds exactly that change (its delta
    from the previous sample, or its whole counts after a reset)."""
    window = series.window(int(times[0]) - range_ns, int(times[-1]))
    stamps = window.times
    lo = np.searchsorted(stamps, times - range_ns, side="right")
    hi = np.searchsorted(stamps, times, side="right")
    starts = segment_starts(stamps, times, series.table.breaks)
    if starts is not None:  # an agent restart: no rate spans it
        lo = np.maximum(lo, starts)
    ok = hi - lo >= 2
    if not ok.any():
        return None
    b = hi[ok] - 1
    seconds = (stamps[b] - stamps[b - 1]) / NS
    rows = window.rows[b]
    entry_rows, buckets, counts = window.column.entry_rows(int(rows[0]) - 1, int(rows[-1]))
    start = np.searchsorted(entry_rows, rows, side="left")
    lengths = np.searchsorted(entry_rows, rows, side="right") - start
    total = int(lengths.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), ok
    owner = np.repeat(np.arange(len(rows)), lengths)
    entries = np.repeat(start - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
    return np.flatnonzero(ok)[owner], buckets[entries], counts[entries] / seconds[owner], ok


def summed_histogram_irate(ctx: Context, expr: pp.Expr) -> Vector | None:
    """`sum(<expr>)` when expr is irate over a selector of one histogram metric; None for any other expr (the
    general path decides, or says what is wrong)."""
    if not (isinstance(expr, pp.Call) and expr.func.name == "irate" and len(expr.args) == 1
            and isinstance(expr.args[0], pp.MatrixSelector)):
        return None
    matrix = expr.args[0]
    selector = matrix.vector_selector
    if not selector.name or selector.offset is not None or selector.at is not None:
        return None
    series = [s for s, _ in select_cached(ctx.store, selector, ctx.scope, ctx.cache)]
    if not series or not all(isinstance(s, HistogramSeries) for s in series) \
            or len({s.layout.grouping_power for s in series}) > 1:
        return None
    layout = max((s.layout for s in series), key=lambda lay: lay.buckets)
    steps = len(ctx.times)
    range_ns = duration_ns(matrix.range)
    parts = [found for s in series if (found := histogram_irates(s, ctx.times, range_ns, ctx.cache))]
    if not parts:
        return Vector()
    # bincount adds in input order, series after series: the general path's sums.
    step_of = np.concatenate([p[0] for p in parts])
    bucket_of = np.concatenate([p[1] for p in parts])
    dense = np.bincount(step_of * layout.buckets + bucket_of, weights=np.concatenate([p[2] for p in parts]),
                        minlength=steps * layout.buckets).reshape(steps, layout.buckets)
    present = np.logical_or.reduce([p[3] for p in parts])
    return Vector([Sample((), dense, present, Layout(layout.grouping_power, layout.max_value_power))])
