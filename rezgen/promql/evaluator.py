"""The PromQL evaluator: a parsed expression's value at every time of a `Context` at once, with numpy.

Queries (`engine`) run it over chunks of steps; it knows nothing of chunks, limits or how errors are worded.
"""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from rezgen.promql import aggregations, binops, functions, rangefuncs
from rezgen.promql.cache import matrix_key, without_histograms
from rezgen.promql.deadline import check_deadline
from rezgen.promql.selectors import Context, duration_ns, instant_vector, range_vector, shifted_times
from rezgen.promql.sparse import summed_irate
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

DEFAULT_SUBQUERY_STEP_NS = 60_000_000_000  # Prometheus's default evaluation interval
MAX_SUBQUERY_POINTS = 1_000_000
RANGE_FUNCTIONS = {"rate", "increase", "delta", "irate", "idelta", "changes", "resets", "deriv", "predict_linear",
                   "absent_over_time", "present_over_time", "quantile_over_time"}

functions.register_extensions()


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
        summed = summed_irate(self.ctx.store, node, self.ctx.scope, self.ctx.cache)
        if summed is not None:
            return summed.dense(self.ctx.times, self.ctx.cache)
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
