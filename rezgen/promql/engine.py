"""Evaluate PromQL over a `Store`: parse with promql-parser, evaluate all steps at once with numpy.

A range query evaluates at start + k*step. Because every step of an expression depends only on samples at or
before it, long queries are cut into chunks of steps and evaluated chunk by chunk with identical results; this
bounds the memory of histogram expressions (a dense bucket array per step).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import promql_parser as pp

from rezgen.promql import aggregations, binops, functions, rangefuncs
from rezgen.promql.cache import matrix_key, parse, without_histograms
from rezgen.promql.cost import estimate_samples
from rezgen.promql.deadline import check_deadline
from rezgen.promql.limits import TRIM_AFTER_SAMPLES, check_samples, release_memory
from rezgen.promql.result import SeriesResult
from rezgen.promql.selectors import Context, duration_ns, instant_vector, range_vector, shifted_times
from rezgen.promql.sparse import summed_histogram_irate
from rezgen.promql.values import (
    NAME,
    Matrix,
    PromQLError,
    RangeSeries,
    Sample,
    Scalar,
    String,
    Value,
    Vector,
    drop_name,
    type_name,
)
from rezgen.store.model import Labels
from rezgen.store.store import HistogramSeries, Store

CHUNK_CELLS = 4_000_000  # steps x buckets of one dense histogram array per chunk
DEFAULT_SUBQUERY_STEP_NS = 60_000_000_000  # Prometheus's default evaluation interval
MAX_SUBQUERY_POINTS = 1_000_000
RANGE_FUNCTIONS = {"rate", "increase", "delta", "irate", "idelta", "changes", "resets", "deriv", "predict_linear",
                   "absent_over_time", "present_over_time", "quantile_over_time"}

functions.register_extensions()


@dataclass
class QueryResult:
    kind: str  # "matrix", "vector", "scalar" or "string"
    series: list[SeriesResult]
    string: str | None = None


def range_query(store: Store, expr: str | pp.Expr, start_ns: int, end_ns: int, step_ns: int,
                scope: tuple[tuple[str, str], ...] = (), max_samples: int | None = None) -> QueryResult:
    """max_samples: refuse (QueryTooExpensive) a chunk estimated to hold more samples (see cost.py)."""
    merged: dict[Labels, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for times, value in evaluate_range(store, expr, start_ns, end_ns, step_ns, scope, max_samples):
        if isinstance(value, (String, Matrix)):
            raise PromQLError(f"invalid expression type \"{type_name(value)}\" for range query, must be a scalar or "
                              "an instant vector")
        for labels, t, v in _rows(value, times):
            merged[labels].append((t, v))
    series = []
    for labels, parts in sorted(merged.items()):
        t, v = np.concatenate([t for t, _ in parts]), np.concatenate([v for _, v in parts])
        order = np.argsort(t, kind="stable")  # one label set may come from several series (e.g. `or`)
        series.append(SeriesResult(labels, t[order], v[order]))
    return QueryResult("matrix", series)


def evaluate_range(store: Store, expr: str | pp.Expr, start_ns: int, end_ns: int, step_ns: int,
                   scope: tuple[tuple[str, str], ...] = (), max_samples: int | None = None
                   ) -> Iterator[tuple[np.ndarray, Value]]:
    """Evaluate at start + k*step, chunk by chunk: yields (chunk times, value over those steps)."""
    if step_ns <= 0:
        raise PromQLError("the step must be positive")
    if end_ns < start_ns:
        raise PromQLError("the end time must not be before the start time")
    tree = parse(expr) if isinstance(expr, str) else expr
    times = np.arange(start_ns, end_ns + 1, step_ns, dtype=np.int64)
    chunk = max(16, CHUNK_CELLS // _widest_histogram(store))
    for first in range(0, len(times), chunk):
        check_deadline()
        ctx = Context(store, times[first : first + chunk], start_ns, end_ns, scope=scope)
        with _bounded(ctx, tree, max_samples):
            value = _evaluate(ctx, tree)
        yield ctx.times, value


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
    rows = sorted(_rows(value, times), key=lambda row: row[0])
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
    # Inf and NaN are ordinary PromQL results; times and durations beyond int64 nanoseconds are a user error.
    try:
        with np.errstate(all="ignore"):
            return Evaluator(ctx).eval(tree)
    except (OverflowError, ValueError) as exc:
        raise PromQLError(f"value out of range: {exc}") from None


def _rows(value: Value, times: np.ndarray) -> list[tuple[Labels, np.ndarray, np.ndarray]]:
    if isinstance(value, Scalar):
        return [((), times, value.values)]
    assert isinstance(value, Vector)
    out = []
    for sample in value.series:
        if sample.is_histogram:
            raise PromQLError("the result holds histograms: wrap it in histogram_quantile(), histogram_count(), "
                              "histogram_sum(), histogram_avg() or histogram_heatmap()")
        if sample.present.any():
            out.append((sample.labels, times[sample.present], sample.values[sample.present]))
    return out


def _unique(value: Value) -> Value:
    """Prometheus refuses a result holding one label set twice at one step (e.g. after dropping names)."""
    if isinstance(value, Vector) and len(value.series) > 1:
        seen: dict[Labels, np.ndarray] = {}
        for sample in value.series:
            earlier = seen.get(sample.labels)
            if earlier is not None and (earlier & sample.present).any():
                raise PromQLError(f"vector cannot contain metrics with the same labelset {dict(sample.labels)}")
            seen[sample.labels] = sample.present if earlier is None else earlier | sample.present
    return value


def _widest_histogram(store: Store) -> int:
    widths = [s.layout.buckets for s in store if isinstance(s, HistogramSeries)]
    return max(widths, default=1)


class Evaluator:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.steps = len(ctx.times)

    def eval(self, node: pp.Expr) -> Value:
        check_deadline()
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(self.steps, float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr)
        if isinstance(node, pp.UnaryExpr):
            return self._negate(self.eval(node.expr))
        if isinstance(node, pp.VectorSelector):
            return instant_vector(self.ctx, node)
        if isinstance(node, pp.MatrixSelector):
            return range_vector(self.ctx, node)
        if isinstance(node, pp.SubqueryExpr):
            return self._subquery(node)
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        raise PromQLError(f"unsupported expression {node}")

    def _negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            return Vector([Sample(drop_name(s.labels), -s.values, s.present, s.layout) for s in value.series])
        raise PromQLError(f"unary minus is not defined for a {type_name(value)}")

    def _subquery(self, node: pp.SubqueryExpr) -> Matrix:
        range_ns = duration_ns(node.range)
        step_ns = duration_ns(node.step) or DEFAULT_SUBQUERY_STEP_NS
        times = shifted_times(self.ctx, node.offset, node.at)
        first = (int(times.min()) - range_ns) // step_ns + 1
        last = int(times.max()) // step_ns
        if (last - first + 1) > MAX_SUBQUERY_POINTS:
            raise PromQLError("subquery would evaluate too many points; use a coarser subquery step")
        grid = np.arange(first, last + 1, dtype=np.int64) * step_ns
        inner = Evaluator(Context(self.ctx.store, grid, self.ctx.start_ns, self.ctx.end_ns, scope=self.ctx.scope)
                          ).eval(node.expr)
        if isinstance(inner, Scalar):
            inner = Vector([Sample((), inner.values, np.ones(len(grid), dtype=bool))])
        if not isinstance(inner, Vector):
            raise PromQLError("subqueries take an instant vector or scalar expression")
        series = []
        for sample in inner.series:
            if sample.is_histogram:
                raise PromQLError("subqueries over histograms are not supported")
            series.append(RangeSeries(sample.labels, grid[sample.present], values=sample.values[sample.present]))
        return Matrix(series, range_ns, times)

    def _call(self, node: pp.Call) -> Value:
        name = node.func.name
        cache = self.ctx.cache
        if cache is not None and len(node.args) == 1 and isinstance(node.args[0], pp.MatrixSelector):
            # rate(x[5m]) and the like: the same for every query of a build that has it (histograms aside: a
            # dense array of buckets per series is too big to keep)
            key = ("call", name, matrix_key(node.args[0]), self.ctx.key())
            return cache.get(key, lambda: self._apply(name, node), keep=without_histograms)
        return self._apply(name, node)

    def _apply(self, name: str, node: pp.Call) -> Value:
        args = [self.eval(arg) for arg in node.args]
        if name.endswith("_over_time") or name in RANGE_FUNCTIONS:
            return _unique(self._range_function(name, node, args))
        if name == "absent":
            vector = args[0]
            assert isinstance(vector, Vector)
            present = np.zeros(self.steps, dtype=bool)
            for sample in vector.series:
                present |= sample.present
            return self._absent(node.args[0], ~present)
        return _unique(functions.call(name, args, self.steps, self.ctx.times))

    def _range_function(self, name: str, node: pp.Call, args: list[Value]) -> Value:
        matrix = next((a for a in args if isinstance(a, Matrix)), None)
        if matrix is None:
            raise PromQLError(f"{name}() expects a range vector such as metric[5m]")
        if name in ("rate", "increase", "delta"):
            return rangefuncs.extrapolated(matrix, name)
        if name in ("irate", "idelta"):
            return rangefuncs.instant(matrix, name)
        if name in ("changes", "resets"):
            return rangefuncs.over_time(matrix, name)
        if name == "deriv":
            return rangefuncs.deriv(matrix)
        if name == "predict_linear":
            seconds = args[1]
            assert isinstance(seconds, Scalar)
            return rangefuncs.deriv(matrix, predict_s=seconds.values)
        if name == "absent_over_time":
            present = np.zeros(self.steps, dtype=bool)
            for series in matrix.series:
                lo = np.searchsorted(series.times, matrix.times - matrix.range_ns, side="right")
                present |= np.searchsorted(series.times, matrix.times, side="right") > lo
            return self._absent(node.args[0], ~present)
        param = args[0].values if name == "quantile_over_time" and isinstance(args[0], Scalar) else None
        return rangefuncs.over_time(matrix, name[: -len("_over_time")], param)

    def _absent(self, arg: pp.Expr, missing: np.ndarray) -> Vector:
        selector = arg.vector_selector if isinstance(arg, pp.MatrixSelector) else arg
        labels: Labels = ()
        if isinstance(selector, pp.VectorSelector):
            pairs = {m.name: m.value for m in selector.matchers.matchers
                     if m.op == pp.MatchOp.Equal and m.name != NAME}
            labels = tuple(sorted(pairs.items()))
        return Vector([Sample(labels, np.ones(self.steps), missing)] if missing.any() else [])

    def _aggregate(self, node: pp.AggregateExpr) -> Vector:
        op = str(node.op)
        if op == "sum" and node.modifier is None and node.param is None:
            summed = summed_histogram_irate(self.ctx, node.expr)
            if summed is not None:
                return summed
        vector = self.eval(node.expr)
        if not isinstance(vector, Vector):
            raise PromQLError(f"{op}() expects an instant vector")
        param: object = None
        if node.param is not None:
            value = self.eval(node.param)
            param = value.value if isinstance(value, String) else value.values if isinstance(value, Scalar) else None
            if param is None:
                raise PromQLError(f"{op}() expects a scalar or string parameter")
        modifier = node.modifier
        without = modifier is not None and modifier.type == pp.AggModifierType.Without
        names = list(modifier.labels) if modifier is not None else []
        return aggregations.aggregate(op, vector, names, without, param, self.steps)

    def _binary(self, node: pp.BinaryExpr) -> Value:
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        modifier = node.modifier
        return_bool = bool(modifier and modifier.return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return binops.scalar_scalar(op, lhs, rhs, return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return binops.vector_scalar(op, lhs, rhs, False, return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return binops.vector_scalar(op, rhs, lhs, True, return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            return binops.vector_vector(op, lhs, rhs, modifier, self.steps)
        raise PromQLError(f"operator {op!r} is not defined between a {type_name(lhs)} and a {type_name(rhs)}")
