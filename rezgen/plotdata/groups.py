"""A top-k plot of many series, evaluated a group of series at a time, so a build holds one group's data at once.

The metric browser charts every metric, and a metric can have hundreds of series: a day at 1 s of c16's 706
`task_cpu_usage` counters is 488 MB decoded, on top of everything else a build holds. When a top-k ("multi")
plot's query maps each stored series to one plotted series (`irate(m[5m])`, `m`, `m / 100`: `series_wise`), the
series can be evaluated in groups: each group over the whole range, its series released before the next group is
decoded (`release`, the build's budget). A running top k (by mean, ties by labels, as `plots` ranks) keeps the
full-resolution rows of the k + 1 best so far; every other row is added to the "Other" total as it drops out. The
result is what evaluating all series at once gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import promql_parser as pp

from rezgen.dashboards import Plot
from rezgen.plotdata import decimate
from rezgen.plotdata.evaluation import Scope, TimeRange, chunk_matrix, coverage
from rezgen.promql.engine import evaluate_range
from rezgen.promql.selectors import NAME, select, series_labels
from rezgen.store.model import Kind, Labels
from rezgen.store.store import Series, Store

GROUP_BYTES = 64 * 2**20  # decoded values of the series evaluated at once
# Range functions whose result has one series per selected series, each computed from that series alone.
PER_SERIES = {"rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes", "avg_over_time",
              "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
              "stddev_over_time", "stdvar_over_time", "present_over_time"}
Release = Callable[[Sequence[Series]], None]
Ranked = tuple[float, Labels, np.ndarray]  # a row's sort key (minus its mean), its labels, its values


def series_wise(tree: pp.Expr) -> pp.VectorSelector | None:
    """The query's one selector when every plotted series comes from one stored series alone, else None."""
    if isinstance(tree, pp.ParenExpr | pp.UnaryExpr):
        return series_wise(tree.expr)
    if isinstance(tree, pp.VectorSelector):
        return tree
    if isinstance(tree, pp.Call) and tree.func.name in PER_SERIES and len(tree.args) == 1 \
            and isinstance(tree.args[0], pp.MatrixSelector):
        return tree.args[0].vector_selector
    if isinstance(tree, pp.BinaryExpr):
        if isinstance(tree.rhs, pp.NumberLiteral):
            return series_wise(tree.lhs)
        if isinstance(tree.lhs, pp.NumberLiteral):
            return series_wise(tree.rhs)
    return None


def series_groups(store: Store, tree: pp.Expr, scope: Scope, top: int) -> list[list[Series]] | None:
    """The groups to evaluate a top-k plot's query in, or None when it is better evaluated at once (a query that
    is not series-wise, histograms, few series, or little data). Series whose plotted labels are equal stay in one
    group: the evaluation merges them into one row."""
    selector = series_wise(tree)
    if selector is None:
        return None
    members = select(store, selector, scope)
    if len(members) <= top + 1 or any(series.kind is Kind.HISTOGRAM for series in members):
        return None
    sizes = {id(series): 8 * len(series.table.timestamps) for series in members}
    if sum(sizes.values()) <= GROUP_BYTES:
        return None
    # In the store's order, which is the order the series decode in (a read decodes neighbouring columns too);
    # a series plotted under the labels of one already placed joins that one's group.
    groups: list[list[Series]] = []
    placed: dict[Labels, int] = {}
    size = 0
    for series in members:
        key = _plotted(series)
        if key in placed:
            groups[placed[key]].append(series)
            continue
        if not groups or size + sizes[id(series)] > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(series)
        placed[key] = len(groups) - 1
        size += sizes[id(series)]
    return groups


def _plotted(series: Series) -> Labels:
    return tuple(label for label in series_labels(series) if label[0] != NAME)


def grouped_top(store: Store, tree: pp.Expr, span: TimeRange, scope: Scope, plot: Plot, groups: list[list[Series]],
                base: int, reducer: str, release: Release) -> tuple[list[Labels], decimate.Reducer] | None:
    """The top k rows (and "Other", when the plot has it) of a query evaluated group by group: the rows' labels
    and their reduced values; None when no series has a point. At most k + 1 rows plotted means all of them, in
    label order, as `plots` does."""
    steps = len(span.times)
    best: list[Ranked] = []  # the k + 1 best rows so far, best first
    rest = np.zeros(steps)
    rest_seen = np.zeros(steps, dtype=bool)  # a step where some row of the rest has a point
    rows = 0
    for group in groups:
        labels, values, means = _evaluated(store.subset(group), tree, span, scope, steps, len(group))
        release(group)
        rows += len(labels)
        candidates = best + [(-mean, key, row) for key, row, mean in zip(labels, values, means)]
        candidates.sort(key=lambda item: (item[0], item[1]))
        best = [(key, labels_, row.copy()) for key, labels_, row in candidates[: plot.top + 1]]  # not the group's
        for _, _, row in candidates[plot.top + 1 :]:
            _add(rest, rest_seen, row)
    if not rows:
        return None
    if rows <= plot.top + 1:
        best.sort(key=lambda item: item[1])
        return [key for _, key, _ in best], _reduced([row for _, _, row in best], steps, base, reducer)
    for _, _, row in best[plot.top :]:
        _add(rest, rest_seen, row)
    shown = best[: plot.top]
    out = _reduced([row for _, _, row in shown], steps, base, reducer)
    if plot.other:
        rest[~rest_seen] = np.nan
        out = out.join(_reduced([rest], steps, base, reducer))
    return [key for _, key, _ in shown], out


def _evaluated(store: Store, tree: pp.Expr, span: TimeRange, scope: Scope, steps: int, members: int
               ) -> tuple[list[Labels], np.ndarray, np.ndarray]:
    """One group's rows at full resolution (NaN where a step has no point or falls in a hole of the data), and
    each row's mean over its points (-inf without any), as `plots` ranks them. A series-wise query plots at most
    one row per member."""
    index: dict[Labels, int] = {}
    values = np.full((members, steps), np.nan)
    sums, counts = np.zeros(members), np.zeros(members, dtype=np.int64)
    for first, times, value in evaluate_range(store, tree, span.start_ns, span.end_ns, span.step_ns, scope):
        keys, chunk = chunk_matrix(value, len(times))
        ids = np.array([index.setdefault(key, len(index)) for key in keys], dtype=np.int64)
        finite = np.isfinite(chunk)
        sums[ids] += np.where(finite, chunk, 0.0).sum(axis=1)
        counts[ids] += finite.sum(axis=1)
        values[ids, first : first + len(times)] = np.where(coverage(store, times), chunk, np.nan)
    rows = len(index)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts[:rows] > 0, sums[:rows] / np.maximum(counts[:rows], 1), -np.inf)
    return list(index), values[:rows], means


def _add(total: np.ndarray, seen: np.ndarray, row: np.ndarray) -> None:
    present = ~np.isnan(row)
    total[present] += row[present]
    seen |= present


def _reduced(rows: list[np.ndarray], steps: int, base: int, reducer: str) -> decimate.Reducer:
    out = decimate.Reducer(len(rows), steps, base, reducer)
    out.feed(np.array(rows).reshape(len(rows), steps))
    return out
