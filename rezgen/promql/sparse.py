"""`irate` of histograms straight from their stored sparse bucket deltas, and `sum(irate(H[range]))` from it: for
the engine (a dense sum) and for percentile plots (the sum's non-zero buckets only).

Through the general path every histogram series of such a sum is a dense (steps x buckets) array first (a
7,424-bucket histogram over 361 steps is 21 MB), most of it zeros. Here each series contributes only its
non-zero entries, added in series order into one array: the same sums, bit for bit, as the general path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from rezgen.promql.cache import EvalCache, times_key
from rezgen.promql.selectors import duration_ns, select_cached
from rezgen.promql.values import Sample, Vector
from rezgen.store.histogram import Layout
from rezgen.store.store import HistogramSeries, Store, segment_starts

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


@dataclass(frozen=True)
class SummedIrate:
    """`sum(irate(H[range]))` over histogram series of one grouping power: their buckets line up, and the widest
    of their layouts holds them all."""

    series: list[HistogramSeries]
    range_ns: int
    layout: Layout

    def entries(self, times: np.ndarray, cache: EvalCache | None = None) -> Irates | None:
        """Every series' sparse (step, bucket, rate) entries at `times`, series after series (adding them in that
        order gives the general path's sums, bit for bit), and the steps where some series has a rate; None when
        none has one."""
        parts = [found for s in self.series if (found := histogram_irates(s, times, self.range_ns, cache))]
        if not parts:
            return None
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]), np.logical_or.reduce([p[3] for p in parts]))

    def dense(self, times: np.ndarray, cache: EvalCache | None = None) -> Vector:
        """The sum as the engine's value: one (steps x buckets) histogram sample."""
        found = self.entries(times, cache)
        if found is None:
            return Vector()
        step_of, bucket_of, rates, present = found
        buckets, steps = self.layout.buckets, len(times)
        # bincount adds in input order, series after series: the general path's sums.
        dense = np.bincount(step_of * buckets + bucket_of, weights=rates,
                            minlength=steps * buckets).reshape(steps, buckets)
        return Vector([Sample((), dense, present, Layout(self.layout.grouping_power, self.layout.max_value_power))])


def summed_irate(store: Store, node: pp.Expr, scope: tuple[tuple[str, str], ...] = (),
                 cache: EvalCache | None = None) -> SummedIrate | None:
    """The one recognition of the fast path: `node` is `sum(irate(H[range]))` (no `by`/`without`, no offset or
    `@`) and H selects histograms of one grouping power only; None for anything else (the general path decides,
    or says what is wrong)."""
    if not (isinstance(node, pp.AggregateExpr) and str(node.op) == "sum" and node.modifier is None
            and node.param is None):
        return None
    call = node.expr
    if not (isinstance(call, pp.Call) and call.func.name == "irate" and len(call.args) == 1
            and isinstance(call.args[0], pp.MatrixSelector)):
        return None
    matrix = call.args[0]
    selector = matrix.vector_selector
    if selector.offset is not None or selector.at is not None:
        return None
    series = [s for s, _ in select_cached(store, selector, scope, cache)]
    histograms = [s for s in series if isinstance(s, HistogramSeries)]
    if not series or len(histograms) < len(series) or len({s.layout.grouping_power for s in histograms}) > 1:
        return None
    layout = max((s.layout for s in histograms), key=lambda lay: lay.buckets)
    return SummedIrate(histograms, duration_ns(matrix.range), layout)
