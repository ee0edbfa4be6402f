"""Vector and matrix selectors: which stored series match, and their samples at or before each step.

Windows are left-open, as in Prometheus 3: a range selector at t covers (t - range, t]; an instant selector takes
the newest sample in (t - lookback, t].
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import promql_parser as pp

from rezgen.promql.cache import EvalCache, selector_key, times_key, without_histograms
from rezgen.promql.deadline import check_deadline
from rezgen.promql.regex import anchored
from rezgen.promql.values import NAME, Matrix, RangeSeries, Sample, Vector
from rezgen.store.model import Labels
from rezgen.store.store import HistogramSeries, Series, Store, Table

LOOKBACK_NS = 5 * 60 * 1_000_000_000


@dataclass
class Context:
    store: Store
    times: np.ndarray  # int64 ns evaluation times
    start_ns: int  # the query's start and end, for `@ start()` / `@ end()`
    end_ns: int
    lookback_ns: int = LOOKBACK_NS
    # Labels every selected series must carry when it has them at all: how a page shows one host of several.
    scope: tuple[tuple[str, str], ...] = ()
    cache: EvalCache | None = None  # shared by the queries of a build

    def key(self) -> Hashable:
        """What decides an expression's value besides the expression (the store aside)."""
        return times_key(self.times), self.start_ns, self.end_ns, self.lookback_ns, self.scope


def duration_ns(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def shifted_times(ctx: Context, offset: timedelta | None, at: pp.AtModifier | None) -> np.ndarray:
    """Evaluation times after `offset` and `@`."""
    times = ctx.times
    if at is not None:
        if at.type == pp.AtModifierType.Start:
            pinned = ctx.start_ns
        elif at.type == pp.AtModifierType.End:
            pinned = ctx.end_ns
        else:
            pinned = datetime_ns(at.at)
        times = np.full(len(times), pinned, dtype=np.int64)
    return times - duration_ns(offset)


def datetime_ns(value: datetime | None) -> int:
    assert value is not None
    seconds = value.timestamp()
    return round(seconds * 1000) * 1_000_000


def _branch_test(branch: list[pp.Matcher]) -> Callable[[dict[str, str]], bool]:
    """Whether a series' labels (a missing label reads as "") satisfy every matcher of a branch. The matchers are
    read once: a selection tests thousands of series."""
    equal = [(m.name, m.value) for m in branch if m.op == pp.MatchOp.Equal]
    unequal = [(m.name, m.value) for m in branch if m.op == pp.MatchOp.NotEqual]
    regex = [(m.name, anchored(m.value).search, m.op == pp.MatchOp.Re) for m in branch
             if m.op in (pp.MatchOp.Re, pp.MatchOp.NotRe)]

    def test(values: dict[str, str]) -> bool:
        for name, value in equal:
            if values.get(name, "") != value:
                return False
        for name, value in unequal:
            if values.get(name, "") == value:
                return False
        return all((search(values.get(name, "")) is not None) == wanted for name, search, wanted in regex)

    return test


def series_labels(series: Series) -> Labels:
    return tuple(sorted(((NAME, series.key.metric), *series.key.labels)))


def _candidate_names(selector: pp.VectorSelector, branches: list[list[pp.Matcher]]) -> set[str] | None:
    """Metric names the selector can match, or None when it has to look at every series."""
    if selector.name:
        return {selector.name}
    names = set()
    for branch in branches:
        equal = [m.value for m in branch if m.name == NAME and m.op == pp.MatchOp.Equal]
        if not equal:
            return None
        names.add(equal[0])
    return names


def vector_selectors(node: object) -> Iterator[pp.VectorSelector]:
    """Every vector selector of a parsed expression (those inside range selectors too), in the query's order."""
    if isinstance(node, pp.VectorSelector):
        yield node
        return
    if isinstance(node, pp.MatrixSelector):
        yield node.vector_selector
        return
    for name in ("expr", "lhs", "rhs", "param"):
        child = getattr(node, name, None)
        if isinstance(child, pp.Expr):
            yield from vector_selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from vector_selectors(child)


def select(store: Store, selector: pp.VectorSelector, scope: tuple[tuple[str, str], ...] = ()) -> list[Series]:
    """Stored series that satisfy the selector's matchers (any `or` branch) and the scope."""
    return [series for series, _ in select_labelled(store, selector, scope)]


def select_labelled(store: Store, selector: pp.VectorSelector, scope: tuple[tuple[str, str], ...] = (),
                    cache: EvalCache | None = None) -> list[tuple[Series, Labels]]:
    """`select`, each series with its labels (`series_labels`)."""
    branches = selector.matchers.or_matchers or [selector.matchers.matchers]
    names = _candidate_names(selector, branches)
    candidates = [c for name in sorted(names) for c in _labelled(store, name, cache)] if names is not None \
        else _labelled(store, None, cache)
    tests = [_branch_test(branch) for branch in branches]
    return [(series, labels) for series, labels, values in candidates
            if (not scope or all(series.key.label(key) in (None, value) for key, value in scope))
            and any(test(values) for test in tests)]


def _labelled(store: Store, name: str | None, cache: EvalCache | None
              ) -> list[tuple[Series, Labels, dict[str, str]]]:
    """A metric's series (all series for None) with their labels, as a tuple and as a dict to match against."""
    def compute() -> list[tuple[Series, Labels, dict[str, str]]]:
        out = []
        for series in store.series_of(name) if name is not None else store:
            labels = series_labels(series)
            out.append((series, labels, dict(reversed(labels))))  # the first of a repeated name wins
        return out

    return compute() if cache is None else cache.get(("labelled", name), compute)


def select_cached(store: Store, selector: pp.VectorSelector, scope: tuple[tuple[str, str], ...],
                  cache: EvalCache | None) -> list[tuple[Series, Labels]]:
    """`select_labelled`, once per build when there is a cache."""
    if cache is None:
        return select_labelled(store, selector, scope)
    return cache.get(("select", selector_key(selector), scope), lambda: select_labelled(store, selector, scope, cache))


def instant_vector(ctx: Context, selector: pp.VectorSelector) -> Vector:
    if ctx.cache is None:
        return _instant_vector(ctx, selector)
    return ctx.cache.get(("instant", selector_key(selector), ctx.key()), lambda: _instant_vector(ctx, selector),
                         keep=without_histograms)


def _instant_vector(ctx: Context, selector: pp.VectorSelector) -> Vector:
    times = shifted_times(ctx, selector.offset, selector.at)
    lo, hi = int(times.min()) - ctx.lookback_ns, int(times.max())
    out = Vector()
    windows = _Windows()
    for series, labels in select_cached(ctx.store, selector, ctx.scope, ctx.cache):
        check_deadline()
        if isinstance(series, HistogramSeries):
            window = series.window(lo, hi)
            idx, present = _latest(window.times, times, ctx.lookback_ns)
            if present.any():
                values = np.zeros((len(times), series.layout.buckets))
                values[present] = window.cumulative(idx[present])
                out.series.append(Sample(labels, values, present, series.layout))
            continue
        rows, stamps = windows.get(series.table, lo, hi)
        t, v = series.points_in(rows, stamps)
        if t is stamps:  # a sample in every row: each step's latest sample is the table's, found once
            idx, present = windows.latest(series.table, times, ctx.lookback_ns)
        else:
            idx, present = _latest(t, times, ctx.lookback_ns)
        if present.any():
            out.series.append(Sample(labels, np.where(present, v[np.maximum(idx, 0)], 0.0), present.copy()))
    return out


class _Windows:
    """Per table, the kept rows of a window and their times (and where each step's latest one is), found once for
    all the table's series."""

    def __init__(self) -> None:
        self._found: dict[int, tuple[slice, np.ndarray]] = {}
        self._latest: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, table: Table, lo: int, hi: int) -> tuple[slice, np.ndarray]:
        found = self._found.get(id(table))
        if found is None:
            rows = table.rows_between(lo, hi)
            found = self._found[id(table)] = (rows, table.timestamps[rows])
        return found

    def latest(self, table: Table, times: np.ndarray, lookback_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """`_latest` of the table's window (`get` first)."""
        if id(table) not in self._latest:
            self._latest[id(table)] = _latest(self._found[id(table)][1], times, lookback_ns)
        return self._latest[id(table)]


def _latest(sample_times: np.ndarray, times: np.ndarray, lookback_ns: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.searchsorted(sample_times, times, side="right") - 1
    safe = np.maximum(idx, 0)
    present = (idx >= 0) & (sample_times[safe] > times - lookback_ns) if len(sample_times) else idx >= 0
    return idx, present


def range_vector(ctx: Context, matrix: pp.MatrixSelector) -> Matrix:
    selector = matrix.vector_selector
    range_ns = duration_ns(matrix.range)
    times = shifted_times(ctx, selector.offset, selector.at)
    lo, hi = int(times.min()) - range_ns, int(times.max())
    series_out: list[RangeSeries] = []
    windows = _Windows()
    for series, labels in select_cached(ctx.store, selector, ctx.scope, ctx.cache):
        check_deadline()
        breaks = series.table.breaks
        if isinstance(series, HistogramSeries):
            window = series.window(lo, hi)
            series_out.append(RangeSeries(labels, window.times, histogram=window, layout=series.layout,
                                          breaks=breaks))
            continue
        # A series with a sample in every row of the window shares its table's times: functions window them once.
        t, v = series.points_in(*windows.get(series.table, lo, hi))
        series_out.append(RangeSeries(labels, t, values=v, breaks=breaks))
    return Matrix(series_out, range_ns, times)
