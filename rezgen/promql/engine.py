"""PromQL queries over a `Store`: parse with promql-parser, evaluate all steps at once with numpy (`evaluator`).

A range query evaluates at start + k*step. Because every step of an expression depends only on samples at or
before it, long ranges are cut into chunks of steps and evaluated chunk by chunk with identical results; this
bounds the memory an evaluation holds (a dense bucket array per step for a histogram). `evaluate_range` is the
one chunked evaluation: `rezgen query`, the HTTP APIs, the static build and live mode (through `plotdata`) all
evaluate through it, with one chunking policy and one wording of evaluation errors.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from rezgen.promql.cache import EvalCache, parse
from rezgen.promql.cost import estimate_samples
from rezgen.promql.deadline import check_deadline
from rezgen.promql.evaluator import Evaluator
from rezgen.promql.limits import TRIM_AFTER_SAMPLES, check_samples, release_memory
from rezgen.promql.result import SeriesResult
from rezgen.promql.selectors import Context, vector_selectors
from rezgen.promql.values import Matrix, PromQLError, Scalar, String, Value, Vector, type_name
from rezgen.store.model import Labels
from rezgen.store.store import HistogramSeries, Store

__all__ = ["CHUNK_CELLS", "CHUNK_STEPS", "HISTOGRAM_RESULT", "OUT_OF_MEMORY", "SCALAR_CELLS", "QueryResult", "Scope",
           "chunk_steps", "evaluate_range", "instant_query", "parse", "range_query", "selected_size",
           "translated_errors"]

CHUNK_STEPS = 4096  # steps evaluated at once (at most)
SCALAR_CELLS = 1_000_000  # steps x counters/gauges a chunk's evaluation may hold (at least 256 steps)
CHUNK_CELLS = 4_000_000  # steps x buckets of the dense histogram arrays a chunk's evaluation may hold
HISTOGRAM_RESULT = ("the result holds histograms: wrap it in histogram_quantile(), histogram_count(), "
                    "histogram_sum(), histogram_avg() or histogram_heatmap()")
OUT_OF_MEMORY = ("query processing needs more memory than is available: narrow the query (fewer series, a shorter "
                 "range or a coarser step)")

Scope = tuple[tuple[str, str], ...]


@dataclass
class QueryResult:
    kind: str  # "matrix", "vector", "scalar" or "string"
    series: list[SeriesResult]
    string: str | None = None


def range_query(store: Store, expr: str | pp.Expr, start_ns: int, end_ns: int, step_ns: int,
                scope: Scope = (), max_samples: int | None = None) -> QueryResult:
    """max_samples: refuse (QueryTooExpensive) a chunk estimated to hold more samples (see cost.py)."""
    merged: dict[Labels, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for _, times, value in evaluate_range(store, expr, start_ns, end_ns, step_ns, scope, max_samples):
        for labels, t, v in _rows(value, times):
            merged[labels].append((t, v))
    series = []
    for labels, parts in sorted(merged.items()):
        t, v = np.concatenate([t for t, _ in parts]), np.concatenate([v for _, v in parts])
        order = np.argsort(t, kind="stable")  # one label set may come from several series (e.g. `or`)
        series.append(SeriesResult(labels, t[order], v[order]))
    return QueryResult("matrix", series)


def evaluate_range(store: Store, expr: str | pp.Expr, start_ns: int, end_ns: int, step_ns: int, scope: Scope = (),
                   max_samples: int | None = None, cache: EvalCache | None = None, histograms: bool = False
                   ) -> Iterator[tuple[int, np.ndarray, Value]]:
    """Evaluate at start + k*step, chunk by chunk: yields (first step, chunk times, value over those steps).

    The value is a scalar or a vector of floats (PromQLError for any other, as a range query's result);
    `histograms` lets vectors of histograms through, for a caller that reads buckets. `cache` shares evaluated
    pieces between the queries of a build; max_samples refuses (QueryTooExpensive) a chunk estimated to hold more
    samples (see cost.py)."""
    if step_ns <= 0:
        raise PromQLError("the step must be positive")
    if end_ns < start_ns:
        raise PromQLError("the end time must not be before the start time")
    tree = parse(expr) if isinstance(expr, str) else expr
    times = np.arange(start_ns, end_ns + 1, step_ns, dtype=np.int64)
    chunk = chunk_steps(*selected_size(store, tree))
    for first in range(0, len(times), chunk):
        check_deadline()
        ctx = Context(store, times[first : first + chunk], start_ns, end_ns, scope=scope, cache=cache)
        with _bounded(ctx, tree, max_samples):
            value = _evaluate(ctx, tree)
        yield first, ctx.times, value if histograms else _range_value(value)


def chunk_steps(scalars: int, cells: int) -> int:
    """The one chunking policy: steps evaluated at once by an evaluation that holds `scalars` counter or gauge
    series and `cells` histogram buckets (summed over its dense histogram arrays) per step."""
    chunk = min(CHUNK_STEPS, max(256, SCALAR_CELLS // max(1, scalars)))
    return max(16, min(chunk, CHUNK_CELLS // cells)) if cells else chunk


def selected_size(store: Store, tree: pp.Expr) -> tuple[int, int]:
    """(counters and gauges, histogram buckets summed over histograms) the expression's selectors may read,
    judged by metric name alone. Every series the query reads holds its chunk of values at once (a histogram a
    dense (steps x buckets) array), so chunks are sized by all of them, not by the widest histogram alone."""
    seen: dict[int, int] = {}
    for selector in vector_selectors(tree):
        for series in store.series_of(selector.name) if selector.name else store:
            seen[id(series)] = series.layout.buckets if isinstance(series, HistogramSeries) else 0
    return sum(1 for cells in seen.values() if cells == 0), sum(seen.values())


def instant_query(store: Store, expr: str | pp.Expr, time_ns: int, max_samples: int | None = None) -> QueryResult:
    """max_samples: refuse (QueryTooExpensive) a query estimated to hold more samples (see cost.py)."""
    tree = parse(expr) if isinstance(expr, str) else expr
    times = np.array([time_ns], dtype=np.int64)
    ctx = Context(store, times, time_ns, time_ns)
    with _bounded(ctx, tree, max_samples):
        value = _evaluate(ctx, tree)
    if isinstance(value, String):
        return QueryResult("string", [], value.value)
    if isinstance(value, Scalar):
        return QueryResult("scalar", [SeriesResult((), times, value.values)])
    if isinstance(value, Matrix):
        return QueryResult("matrix", [SeriesResult(s.labels, s.times, s.values) for s in value.series
                                      if s.values is not None and len(s.times)])
    rows = sorted(_rows(_without_histograms(value), times), key=lambda row: row[0])
    if isinstance(tree, pp.Call) and tree.func.name in ("sort", "sort_desc"):
        # Only an instant query has an order; NaN sorts last either way, as in Prometheus.
        descending = tree.func.name == "sort_desc"
        rows.sort(key=lambda row: (np.isnan(row[2][0]), -row[2][0] if descending else row[2][0]))
    return QueryResult("vector", [SeriesResult(labels, t, v) for labels, t, v in rows])


@contextlib.contextmanager
def _bounded(ctx: Context, tree: pp.Expr, max_samples: int | None) -> Iterator[None]:
    """Refuse an evaluation estimated to hold more than max_samples samples; after a big one, give the memory it
    freed back to the system (without a limit, as in a build, neither)."""
    if max_samples is None:
        yield
        return
    estimated = estimate_samples(ctx.store, tree, ctx.times, ctx.start_ns, ctx.end_ns, ctx.scope)
    check_samples(estimated, max_samples)
    try:
        yield
    finally:
        if estimated > TRIM_AFTER_SAMPLES:
            release_memory()


def _evaluate(ctx: Context, tree: pp.Expr) -> Value:
    with translated_errors():
        return Evaluator(ctx).eval(tree)


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """The one translation of what evaluating can raise besides PromQLError, for every caller alike. Inf and NaN
    are ordinary PromQL results; times and durations beyond int64 nanoseconds (an `@` out of range) are a user
    error, said in the words of what refused them; memory the sample estimate missed refuses this query and is
    given back."""
    try:
        with np.errstate(all="ignore"):
            yield
    except (OverflowError, ValueError) as exc:
        raise PromQLError(_first_line(exc)) from None
    except MemoryError:
        release_memory()
        raise PromQLError(OUT_OF_MEMORY) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _range_value(value: Value) -> Value:
    """A range query's value: a scalar or a vector of floats."""
    if isinstance(value, (String, Matrix)):
        raise PromQLError(f"invalid expression type \"{type_name(value)}\" for range query, must be a scalar or "
                          "an instant vector")
    return _without_histograms(value)


def _without_histograms(value: Value) -> Value:
    if isinstance(value, Vector) and any(sample.is_histogram for sample in value.series):
        raise PromQLError(HISTOGRAM_RESULT)
    return value


def _rows(value: Value, times: np.ndarray) -> list[tuple[Labels, np.ndarray, np.ndarray]]:
    if isinstance(value, Scalar):
        return [((), times, value.values)]
    assert isinstance(value, Vector)
    out = []
    for sample in value.series:
        if sample.present.any():
            out.append((sample.labels, times[sample.present], sample.values[sample.present]))
    return out
