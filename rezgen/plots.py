"""Plot data: a dashboard plot evaluated over a time range, shaped for the browser.

Every kind gives a shared time axis (`t`, unix ms) and named series of values aligned to it, `null` where there
is no point. Steps that fall in a hole of the data (no sample in the last two sampling intervals) are nulled so
charts draw a break instead of a line across it. Long ranges become resolution levels (see `decimate`).

A plot is evaluated in chunks of steps and each chunk is reduced at once to the finest resolution level the plot
can ship, so memory follows the size of the payload, not the length of the recording: a day at 1 s is 86,400
steps, and one dense histogram array over it would not fit. Values of reduced levels are rounded to
`ROUND_DIGITS` significant digits (the envelope of a bucket is an approximation anyway); full-resolution values
are written exactly.

Percentile plots (`sum(irate(H[5m]))` of a histogram selector) are computed straight from the stored sparse bucket
deltas, which gives the numbers the PromQL engine gives, without a dense (steps x buckets) array per series;
anything else goes through the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import promql_parser as pp

from . import decimate
from .dashboards import Plot
from .histogram import Layout
from .model import Labels
from .promql.engine import Evaluator, parse
from .promql.selectors import Context, duration_ns, select
from .promql.values import Matrix, PromQLError, Scalar, String, Vector, type_name
from .store import HistogramSeries, Store

QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999))
QUANTILE_VALUES = np.array([q for _, q in QUANTILES])
OTHER = "Other"
CHUNK_STEPS = 4096  # steps evaluated at once (at most)
SCALAR_CELLS = 1_000_000  # steps x counters/gauges a chunk's evaluation may hold (at least 256 steps)
CHUNK_CELLS = 4_000_000  # steps x buckets of one dense histogram array per chunk
SPARSE_CHUNK_STEPS = 1024  # steps of bucket rates gathered at once from the sparse deltas (entries ~ steps x series)
CACHE_CELLS = 2_000_000  # evaluated values kept for the second pass of a top-k plot instead of evaluating again
HEAT_COLUMNS = 500  # columns of a percentile plot's bucket heatmap (at most)
HEAT_CELLS = 10_000  # cells holding a count in a bucket heatmap (at most; columns are merged to fit)
HEAT_CELLS_COARSE = 4_000  # the same for a coarse-only plot (the metric browser)
ROUND_DIGITS = 7  # significant digits of the values of reduced levels
HEAT_DIGITS = 4  # significant digits of bucket heatmap cells averaged over several steps
IRATE_RANGE_NS = 5 * 60 * 1_000_000_000
NS = 1e9


@dataclass
class TimeRange:
    start_ns: int
    end_ns: int
    step_ns: int

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.start_ns, self.end_ns + 1, self.step_ns, dtype=np.int64)


def coverage(store: Store, times: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """True at steps with a sample of any table in (t - max_gap, t]."""
    covered = np.zeros(len(times), dtype=bool)
    for table in store.tables:
        stamps = table.timestamps
        if len(stamps) == 0:
            continue
        idx = np.searchsorted(stamps, times, side="right") - 1
        covered |= (idx >= 0) & (stamps[np.maximum(idx, 0)] > times - max_gap_ns)
    return covered


def plot_data(store: Store, plot: Plot, span: TimeRange, scope: tuple[tuple[str, str], ...] = (), *,
              coarse_only: bool = False) -> dict[str, Any] | None:
    """The plot's payload, or None when the recording has no data for it.

    `coarse_only` ships the coarsest level alone (the metric browser's charts do not zoom into detail)."""
    if span.step_ns <= 0:
        raise PromQLError("the step must be positive")
    if span.end_ns < span.start_ns:
        raise PromQLError("the end time must not be before the start time")
    if plot.kind == "percentiles":
        built = _percentiles(store, plot, span, scope, coarse_only)
        heatmap = built[2] if built else None
    else:
        built = _series(store, plot, span, scope, coarse_only)
        heatmap = None
    if built is None:
        return None
    names, rows = built[0], built[1]
    kind = plot.kind
    if kind == "line" and len(names) > 1:
        kind = "multi"
    if kind == "heatmap" and len(names) < 2:
        return None  # one device: the aggregate chart says it all
    payload = {**plot.to_json(), "kind": kind, "names": names,
               "levels": _levels(span.times, rows, "max" if kind == "heatmap" else "envelope", coarse_only)}
    if heatmap is not None:
        payload["buckets"] = heatmap
    return payload


def waiting_plot(plot: Plot) -> dict[str, Any]:
    """A plot's payload before it has any point (a live window just started): no series, one empty level, which
    pushed points extend."""
    return {**plot.to_json(), "names": [], "levels": [{"bucket": 1, "t": [], "values": []}]}


# ---- evaluation in chunks ---------------------------------------------------------------------------------------

def _evaluate(store: Store, tree: pp.Expr, span: TimeRange, scope: tuple[tuple[str, str], ...]
              ) -> Iterator[tuple[int, np.ndarray, Any]]:
    """(first step, chunk times, value) per chunk; each step depends only on samples at or before it, so the
    chunks together are the range query (as `promql.engine.evaluate_range`). Every series the query reads holds
    its chunk of values at once (a histogram a dense (steps x buckets) array), so chunks are sized by all the
    series the query may read, not by the widest histogram alone."""
    times = span.times
    scalars, cells = _selected_size(store, tree)
    chunk = min(CHUNK_STEPS, max(256, SCALAR_CELLS // max(1, scalars)))
    if cells:
        chunk = max(16, min(chunk, CHUNK_CELLS // cells))
    for first in range(0, len(times), chunk):
        ctx = Context(store, times[first : first + chunk], span.start_ns, span.end_ns, scope=scope)
        yield first, ctx.times, Evaluator(ctx).eval(tree)


def _selected_size(store: Store, tree: pp.Expr) -> tuple[int, int]:
    """(counters and gauges, histogram buckets summed over histograms) the expression's selectors may read,
    judged by metric name alone."""
    seen: dict[int, int] = {}
    for selector in plot_selectors(tree):
        for series in store.series_of(selector.name) if selector.name else store:
            seen[id(series)] = series.layout.buckets if isinstance(series, HistogramSeries) else 0
    return sum(1 for cells in seen.values() if cells == 0), sum(seen.values())


def plot_selectors(node: Any) -> Iterator[pp.VectorSelector]:
    """Every vector selector of a parsed expression (those inside range selectors too)."""
    if isinstance(node, pp.VectorSelector):
        yield node
        return
    if isinstance(node, pp.MatrixSelector):
        yield node.vector_selector
        return
    for name in ("expr", "lhs", "rhs", "param"):
        child = getattr(node, name, None)
        if isinstance(child, pp.Expr):
            yield from plot_selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from plot_selectors(child)


def _chunk_rows(value: Any, steps: int) -> dict[Labels, np.ndarray]:
    """The rows of one chunk's result: values at present steps, NaN elsewhere."""
    if isinstance(value, Scalar):
        return {(): np.asarray(value.values, dtype=np.float64)}
    if isinstance(value, (String, Matrix)):
        raise PromQLError(f"invalid expression type \"{type_name(value)}\" for range query, must be a scalar or "
                          "an instant vector")
    assert isinstance(value, Vector)
    out: dict[Labels, np.ndarray] = {}
    for sample in value.series:
        if sample.is_histogram:
            raise PromQLError("the result holds histograms: wrap it in histogram_quantile(), histogram_count(), "
                              "histogram_sum(), histogram_avg() or histogram_heatmap()")
        if sample.present.any():
            row = out.get(sample.labels)
            if row is None:
                row = out[sample.labels] = np.full(steps, np.nan)
            row[sample.present] = sample.values[sample.present]
    return out


# ---- line, multi and heatmap plots ------------------------------------------------------------------------------

def _series(store: Store, plot: Plot, span: TimeRange, scope: tuple[tuple[str, str], ...], coarse_only: bool
            ) -> tuple[list[str], list[decimate.RowReducer]] | None:
    tree = parse(plot.query)
    steps = len(span.times)
    reducer = "max" if plot.kind == "heatmap" else "envelope"
    base = decimate.finest_bucket(steps, 1 if reducer == "max" else 2, coarse_only=coarse_only)
    max_gap = 2 * store.interval_ns + 1
    ranked = plot.kind == "multi"
    rows: dict[Labels, decimate.RowReducer] = {}
    sums: dict[Labels, float] = {}
    counts: dict[Labels, int] = {}
    cache: list[tuple[int, np.ndarray, dict[Labels, np.ndarray]]] | None = [] if ranked else None
    cached_cells = 0
    for first, times, value in _evaluate(store, tree, span, scope):
        chunk = _chunk_rows(value, len(times))
        covered = coverage(store, times, max_gap)
        if cache is not None:
            cached_cells += len(chunk) * len(times)
            if cached_cells <= CACHE_CELLS:
                cache.append((first, times, chunk))
            else:
                cache = None
        for labels, values in chunk.items():
            if ranked:
                finite = np.isfinite(values)
                sums[labels] = sums.get(labels, 0.0) + float(np.where(finite, values, 0.0).sum())
                counts[labels] = counts.get(labels, 0) + int(finite.sum())
            row = rows.get(labels)
            if row is None:
                row = rows[labels] = decimate.RowReducer(steps, base, reducer)
                row.skip(first)
            row.feed(np.where(covered, values, np.nan))
        for labels, row in rows.items():
            if labels not in chunk:
                row.skip(len(times))
    if not rows:
        return None
    order = sorted(rows)
    names = [_name(dict(labels), plot.kind) for labels in order]
    reduced = [rows[labels] for labels in order]
    if plot.kind == "heatmap":
        by_name = sorted(range(len(names)), key=lambda i: (not names[i].isdigit(), int(names[i]) if names[i].isdigit()
                                                           else 0, names[i]))
        names, reduced = [names[i] for i in by_name], [reduced[i] for i in by_name]
    elif ranked and len(names) > plot.top + 1:
        means = np.array([sums[labels] / counts[labels] if counts[labels] > 0 else -np.inf for labels in order])
        by_mean = np.argsort(-means, kind="stable")
        keep, rest = by_mean[: plot.top], by_mean[plot.top :]
        other = _other(store, tree, span, scope, [order[i] for i in rest], cache, base, reducer)
        names = [names[i] for i in keep] + [OTHER]
        reduced = [reduced[i] for i in keep] + [other]
    if all(row.empty for row in reduced):
        return None
    return names, reduced


def _other(store: Store, tree: pp.Expr, span: TimeRange, scope: tuple[tuple[str, str], ...], rest: list[Labels],
           cache: list[tuple[int, np.ndarray, dict[Labels, np.ndarray]]] | None, base: int, reducer: str
           ) -> decimate.RowReducer:
    """The sum of the series outside the top k (NaN where none of them has a point), from the cached chunks or a
    second evaluation."""
    steps = len(span.times)
    other = decimate.RowReducer(steps, base, reducer)
    chunks = cache if cache is not None else ((f, t, _chunk_rows(v, len(t))) for f, t, v in
                                              _evaluate(store, tree, span, scope))
    max_gap = 2 * store.interval_ns + 1
    for _, times, chunk in chunks:
        members = [chunk[labels] for labels in rest if labels in chunk]
        if not members:
            other.skip(len(times))
            continue
        stacked = np.vstack(members)
        total = np.nansum(stacked, axis=0)
        total[np.isnan(stacked).all(axis=0)] = np.nan
        total[~coverage(store, times, max_gap)] = np.nan
        other.feed(total)
    return other


def _name(labels: dict[str, str], kind: str) -> str:
    if kind == "heatmap" and "id" in labels:
        return labels["id"]
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", "value")
    if len(shown) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))


# ---- percentile plots -------------------------------------------------------------------------------------------

def _percentiles(store: Store, plot: Plot, span: TimeRange, scope: tuple[tuple[str, str], ...], coarse_only: bool
                 ) -> tuple[list[str], list[decimate.RowReducer], dict[str, Any] | None] | None:
    """p50..p99.99 and the bucket heatmap of sum(irate(h[5m])), from one pass over the bucket rates."""
    times = span.times
    steps = len(times)
    base = decimate.finest_bucket(steps, 2, coarse_only=coarse_only)
    rows = [decimate.RowReducer(steps, base) for _ in QUANTILES]
    stride = max(1, math.ceil(steps / HEAT_COLUMNS))
    heat: np.ndarray | None = None
    layout: Layout | None = None
    max_gap = 2 * store.interval_ns + 1
    for first, chunk_times, used, rates, chunk_layout in _bucket_rates(store, plot.query, span, scope):
        layout = chunk_layout
        quantiles = _quantiles(rates, used, layout.highs)
        quantiles[:, ~coverage(store, chunk_times, max_gap)] = np.nan
        for row, values in zip(rows, quantiles):
            row.feed(values)
        if len(used):
            if heat is None or heat.shape[1] < layout.buckets:
                grown = np.zeros((math.ceil(steps / stride), layout.buckets))
                if heat is not None:
                    grown[:, : heat.shape[1]] = heat
                heat = grown
            columns = (first + np.arange(len(chunk_times))) // stride
            starts = np.flatnonzero(np.diff(columns, prepend=columns[0] - 1))
            heat[np.ix_(columns[starts], used)] += np.add.reduceat(rates, starts, axis=0)
    if layout is None or all(row.empty for row in rows):
        return None
    cells = HEAT_CELLS_COARSE if coarse_only else HEAT_CELLS
    return [name for name, _ in QUANTILES], rows, _bucket_heatmap(heat, stride, layout, times, cells)


def _quantiles(rates: np.ndarray, used: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """(len(QUANTILES), steps) percentiles of per-step bucket rates given for the `used` buckets only (the others
    are empty), by the rule of `histogram.quantile_rows`: the upper edge of the first bucket whose running sum
    reaches q x total; NaN where a step has no observation."""
    out = np.full((len(QUANTILES), rates.shape[0]), np.nan)
    if rates.size == 0:
        return out
    total = rates.sum(axis=1)
    ok = total > 0
    if not ok.any():
        return out
    running = np.cumsum(rates[ok], axis=1)
    # A relative slack absorbs the rounding of summed rates (as in quantile_rows). Every q is > 0, so a running
    # sum that reaches the target is positive, and running sums never decrease: the first bucket reaching the
    # target is the number of buckets below it.
    targets = QUANTILE_VALUES[:, None] * total[ok][None, :] * (1 - 1e-12)
    if running.shape[1] <= 256:
        first = np.stack([(running < target[:, None]).sum(axis=1) for target in targets])
    else:  # wide rows (g=7 histograms): a binary search per row beats comparing every bucket
        first = np.empty(targets.shape, dtype=np.int64)
        for row in range(running.shape[0]):
            first[:, row] = np.searchsorted(running[row], targets[:, row], side="left")
    out[:, ok] = highs[used][np.minimum(first, running.shape[1] - 1)]
    return out


def _bucket_rates(store: Store, query: str, span: TimeRange, scope: tuple[tuple[str, str], ...]
                  ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, Layout]]:
    """Per chunk of steps: (first step, times, used buckets, (steps, used) bucket rates, layout) of
    sum(irate(query[5m])); steps where no series has a rate are zero."""
    tree = parse(f"sum(irate({query}[5m]))")
    selector = _plain_selector(tree)
    series = select(store, selector, scope) if selector is not None else None
    if series is None or not all(isinstance(s, HistogramSeries) for s in series) \
            or len({s.layout.grouping_power for s in series}) > 1:
        yield from _engine_bucket_rates(store, tree, span, scope)  # the engine decides (or says what is wrong)
        return
    if not series:
        return
    layout = max((s.layout for s in series), key=lambda lay: lay.buckets)
    times = span.times
    chunk = max(16, min(SPARSE_CHUNK_STEPS, CHUNK_CELLS // layout.buckets))
    for first in range(0, len(times), chunk):
        chunk_times = times[first : first + chunk]
        steps_at, buckets_at, rates_at = [], [], []
        for s in series:
            found = _series_rates(s, chunk_times)
            if found is not None:
                steps_at.append(found[0])
                buckets_at.append(found[1])
                rates_at.append(found[2])
        if not steps_at:
            yield first, chunk_times, np.zeros(0, dtype=np.int64), np.zeros((len(chunk_times), 0)), layout
            continue
        step_of, bucket_of = np.concatenate(steps_at), np.concatenate(buckets_at)
        used, column = np.unique(bucket_of, return_inverse=True)
        # bincount adds in input order, series after series: the same sums as the engine's `sum`.
        dense = np.bincount(step_of * len(used) + column, weights=np.concatenate(rates_at),
                            minlength=len(chunk_times) * len(used)).reshape(len(chunk_times), len(used))
        yield first, chunk_times, used, dense, layout


def _plain_selector(tree: pp.Expr) -> pp.VectorSelector | None:
    """The selector of `sum(irate(selector[5m]))` when the expression is exactly that, else None."""
    if not (isinstance(tree, pp.AggregateExpr) and str(tree.op) == "sum" and tree.modifier is None
            and tree.param is None):
        return None
    call = tree.expr
    if not (isinstance(call, pp.Call) and call.func.name == "irate" and len(call.args) == 1
            and isinstance(call.args[0], pp.MatrixSelector)):
        return None
    matrix = call.args[0]
    selector = matrix.vector_selector
    if duration_ns(matrix.range) != IRATE_RANGE_NS or selector.offset is not None or selector.at is not None:
        return None
    return selector


def _series_rates(series: HistogramSeries, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """irate(series[5m]) at `times` as sparse (step, bucket, rate) entries, in step order; None when it has none.

    As in `promql.rangefuncs.instant`: a step's rate is the change between the last two samples of its window
    (t - 5m, t], divided by their distance in seconds; each stored row holds exactly that change (its delta from
    the previous sample, or its whole counts after a reset)."""
    window = series.window(int(times[0]) - IRATE_RANGE_NS, int(times[-1]))
    stamps = window.times
    lo = np.searchsorted(stamps, times - IRATE_RANGE_NS, side="right")
    hi = np.searchsorted(stamps, times, side="right")
    ok = hi - lo >= 2
    if not ok.any():
        return None
    b = hi[ok] - 1
    seconds = (stamps[b] - stamps[b - 1]) / NS
    rows = window.rows[b]
    entry_rows, buckets, counts = window.column._entry_rows(int(rows[0]) - 1, int(rows[-1]))
    start = np.searchsorted(entry_rows, rows, side="left")
    lengths = np.searchsorted(entry_rows, rows, side="right") - start
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    owner = np.repeat(np.arange(len(rows)), lengths)
    entries = np.repeat(start - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
    return np.flatnonzero(ok)[owner], buckets[entries], counts[entries] / seconds[owner]


def _engine_bucket_rates(store: Store, tree: pp.Expr, span: TimeRange, scope: tuple[tuple[str, str], ...]
                         ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, Layout]]:
    for first, times, value in _evaluate(store, tree, span, scope):
        assert isinstance(value, Vector)
        for sample in value.series:
            assert sample.layout is not None
            dense = np.where(sample.present[:, None], sample.values, 0.0)
            used = np.flatnonzero(dense.any(axis=0))
            yield first, times, used, dense[:, used], sample.layout


def _bucket_heatmap(heat: np.ndarray | None, stride: int, layout: Layout, times: np.ndarray, max_cells: int
                    ) -> dict[str, Any] | None:
    """Per-bucket rates over time (mean over `stride` steps per column), limited to the buckets that ever hold a
    count; neighbouring columns are merged until at most `max_cells` cells hold a count (the cells are the bulk
    of a site, and the browser draws each one)."""
    if heat is None:
        return None
    used = np.flatnonzero(heat.any(axis=0))
    if len(used) == 0:
        return None
    sums = heat[:, used]
    merge = 1
    while True:
        merged = sums if merge == 1 else _merge_columns(sums, merge)
        if np.count_nonzero(merged) <= max_cells or len(merged) == 1:
            break
        merge = max(merge + 1, math.ceil(merge * np.count_nonzero(merged) / max_cells))
    stride *= merge
    cells = merged / stride
    ti, bi = np.nonzero(cells)
    triples = np.empty((len(ti), 3), dtype=object)  # [column, bucket row, rate] with ints where whole
    triples[:, 0], triples[:, 1] = ti.tolist(), bi.tolist()
    triples[:, 2] = _numbers(cells[ti, bi], HEAT_DIGITS if stride > 1 else None)
    return {
        "t": (times[::stride] // 1_000_000).tolist(),
        "edges": [float(layout.highs[b]) for b in used],
        "cells": triples.tolist(),
        "max": float(cells.max()),
    }


def _merge_columns(sums: np.ndarray, factor: int) -> np.ndarray:
    """Sum each `factor` consecutive rows of a (columns, buckets) array (the last group may be shorter)."""
    return np.add.reduceat(sums, np.arange(0, len(sums), factor), axis=0)


# ---- levels and JSON numbers ------------------------------------------------------------------------------------

def _levels(times: np.ndarray, rows: list[decimate.RowReducer], reducer: str, coarse_only: bool = False
            ) -> list[dict[str, Any]]:
    per_bucket = 1 if reducer == "max" else 2
    base = rows[0].base if rows else 1
    buckets = decimate.plan(len(times), base, len(rows), per_bucket)
    if coarse_only:
        buckets = buckets[:1]
    out = []
    for bucket in buckets:
        t = decimate.level_times(times, bucket, per_bucket)
        digits = None if bucket <= 1 else ROUND_DIGITS
        out.append({"bucket": bucket, "t": (t // 1_000_000).tolist(),
                    "values": [_numbers(decimate.level_values(row, bucket), digits) for row in rows]})
    return out


def json_values(row: np.ndarray) -> list[float | None]:
    """Floats for JSON: NaN and infinities become null (JSON has no such numbers)."""
    finite = np.isfinite(row)
    return [float(v) if ok else None for v, ok in zip(row.tolist(), finite.tolist())]


def _numbers(row: np.ndarray, digits: int | None = None) -> list[float | int | None]:
    """JSON numbers, shortest form: whole values as integers, others exact or rounded to `digits` significant
    digits; NaN and infinities become null."""
    row = np.asarray(row, dtype=np.float64)
    finite = np.isfinite(row)
    if digits is not None:
        row = round_significant(row, digits)
    whole = finite & (np.abs(row) < 2.0**53) & (row == np.trunc(row))
    out = np.array(row.tolist(), dtype=object)  # Python floats; whole ones and non-finite ones replaced
    if whole.any():
        out[whole] = row[whole].astype(np.int64).tolist()
    if not finite.all():
        out[~finite] = None
    return out.tolist()


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Each value rounded to `digits` significant digits, as the double nearest that decimal (so it prints short).

    Dividing (or multiplying) the rounded integer by an exact power of ten is correctly rounded; values whose
    power of ten is not exact in float64 (beyond 1e22 either way) stay as they are."""
    out = np.array(values, dtype=np.float64)
    magnitude = np.abs(out)
    ok = np.isfinite(out) & (magnitude > 0)
    if not ok.any():
        return out
    with np.errstate(divide="ignore"):
        places = digits - 1 - np.floor(np.log10(np.where(ok, magnitude, 1.0))).astype(np.int64)
    up = ok & (places >= 0) & (places <= 22)
    down = ok & (places < 0) & (places >= -22)
    if up.any():
        scale = 10.0 ** places[up]
        out[up] = np.rint(out[up] * scale) / scale
    if down.any():
        scale = 10.0 ** -places[down]
        out[down] = np.rint(out[down] / scale) * scale
    return out
