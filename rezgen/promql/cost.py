"""How many samples a query would hold, estimated from its parsed tree and the store before evaluating it."""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from rezgen.promql.limits import children
from rezgen.promql.selectors import datetime_ns, duration_ns, select_labelled
from rezgen.store.store import HistogramSeries, Store


def estimate_samples(store: Store, tree: pp.Expr, times: np.ndarray, start_ns: int, end_ns: int,
                     scope: tuple[tuple[str, str], ...] = ()) -> int:
    """Samples evaluating `tree` at `times` would hold: every node's output (series x steps, x buckets for
    histograms), range selectors' window points and subqueries' inner grids. An upper bound: aggregations with
    `by`/`without` and vector matching are taken to keep every series. start_ns/end_ns are the query's, for `@`."""
    return _Estimate(store, scope, start_ns, end_ns).walk(tree, int(times.min()), int(times.max()), len(times))[1]


class _Estimate:
    def __init__(self, store: Store, scope: tuple[tuple[str, str], ...], start_ns: int, end_ns: int):
        self.store, self.scope, self.start_ns, self.end_ns = store, scope, start_ns, end_ns

    def walk(self, node: pp.Expr, lo: int, hi: int, steps: int) -> tuple[int, int]:
        """(cells of one step of the node's output: series, x buckets for histograms; samples held in all) over
        evaluation times from lo to hi."""
        if isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
            return 1, steps
        if isinstance(node, pp.VectorSelector):
            width = self._width(node)
            return width, width * steps
        if isinstance(node, pp.MatrixSelector):
            selector = node.vector_selector
            first, last = self._shifted(lo, hi, selector.offset, selector.at)
            rows: dict[int, int] = {}
            width = held = 0
            for series, _ in select_labelled(self.store, selector, self.scope):
                if id(series.table) not in rows:  # a table's rows in the window, counted once for its series
                    window = series.table.rows_between(first - duration_ns(node.range), last)
                    rows[id(series.table)] = max(0, window.stop - window.start)
                held += rows[id(series.table)]
                width += series.layout.buckets if isinstance(series, HistogramSeries) else 1
            return width, held
        if isinstance(node, pp.SubqueryExpr):
            first, last = self._shifted(lo, hi, node.offset, node.at)
            range_ns, step_ns = duration_ns(node.range), duration_ns(node.step) or 60_000_000_000
            a, b = (first - range_ns) // step_ns + 1, last // step_ns
            grid = max(1, b - a + 1)
            width, held = self.walk(node.expr, a * step_ns, b * step_ns, grid)
            return width, held + width * grid  # the inner result, then its copy as a range vector
        held, widths = 0, []
        for child in children(node):
            width, samples = self.walk(child, lo, hi, steps)
            held += samples
            widths.append(width)
        if isinstance(node, pp.AggregateExpr) and node.modifier is None and str(node.op) not in (
                "count_values", "topk", "bottomk"):
            width = 1
        elif isinstance(node, pp.BinaryExpr) and str(node.op) == "or":
            width = sum(widths)
        else:
            width = max(widths or [1])
        return width, held + width * steps

    def _width(self, selector: pp.VectorSelector) -> int:
        return sum(s.layout.buckets if isinstance(s, HistogramSeries) else 1
                   for s, _ in select_labelled(self.store, selector, self.scope))

    def _shifted(self, lo: int, hi: int, offset: object, at: pp.AtModifier | None) -> tuple[int, int]:
        """The evaluation span after `@` and `offset`, as selectors.shifted_times moves it."""
        if at is not None:
            pinned = self.start_ns if at.type == pp.AtModifierType.Start else \
                self.end_ns if at.type == pp.AtModifierType.End else datetime_ns(at.at)
            lo = hi = pinned
        shift = duration_ns(offset)  # type: ignore[arg-type]
        return lo - shift, hi - shift
