"""Plot data: a dashboard plot evaluated over a time range, shaped for the browser.

Every kind gives a shared time axis (`t`, unix ms) and named series of values aligned to it, `null` where there
is no point. Steps that fall in a hole of the data (no sample in the last two sampling intervals) are nulled so
charts draw a break instead of a line across it. Long ranges become resolution levels (see `decimate`, `levels`).

A plot is evaluated in chunks of steps (`promql.engine.evaluate_range`) and each chunk is reduced at once to the
finest resolution level the plot can ship, so memory follows the size of the payload, not the length of the
recording: a day at 1 s is 86,400 steps, and one dense histogram array over it would not fit. Percentile plots
have their own path (see `percentiles`); line, multi and heatmap plots are here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import promql_parser as pp

from rezgen.dashboards import Plot
from rezgen.plotdata import decimate
from rezgen.plotdata.evaluation import PlotSource, Scope, TimeRange, chunk_matrix
from rezgen.plotdata.groups import Release, grouped_top, series_groups
from rezgen.plotdata.levels import json_values, levels, round_significant
from rezgen.plotdata.percentiles import percentile_plot
from rezgen.plotdata.source import StoreSource, plot_source
from rezgen.promql.cache import EvalCache, parse
from rezgen.promql.values import PromQLError
from rezgen.store.model import Labels
from rezgen.store.store import Store

# Imported from here by the rest of rezgen: what a plot is and how its values are written.
__all__ = ["OTHER", "TimeRange", "json_values", "plot_data", "round_significant", "waiting_plot"]

OTHER = "Other"
CACHE_CELLS = 2_000_000  # evaluated values kept for the second pass of a top-k plot instead of evaluating again
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # an evaluated chunk: its times, its series' rows, their values


def plot_data(store: Store | PlotSource, plot: Plot, span: TimeRange, scope: Scope = (), *, coarse_only: bool = False,
              cache: EvalCache | None = None, release: Release | None = None) -> dict[str, Any] | None:
    """The plot's payload, or None when the recording has no data for it, or `{..., "error", "query"}` when its
    query cannot be evaluated over this recording (a page shows that in the plot's card). `store` is the local
    store or a remote backend's `PlotSource`.

    `coarse_only` ships the coarsest level alone (the metric browser's charts do not zoom into detail); `cache`
    shares evaluated pieces between the plots of a build whose store does not change meanwhile; `release` lets a
    top-k plot of many series evaluate them a group at a time, releasing each group's decoded values after it (see
    `groups`). A range that is
    not one (the caller's mistake, not the plot's) raises PromQLError."""
    if span.step_ns <= 0:
        raise PromQLError("the step must be positive")
    if span.end_ns < span.start_ns:
        raise PromQLError("the end time must not be before the start time")
    try:
        return _evaluated(plot_source(store), plot, span, scope, coarse_only, cache, release)
    except PromQLError as exc:
        # The one place a plot's failure is caught: a query that works on one recording can fail on another
        # (times past int64, an `@` out of range, a histogram where a number is needed: the engine words them
        # all, as `rezgen query` says them), and one plot must not take the page or the build down with it.
        return {**plot.to_json(), "error": str(exc), "query": plot.query}


def _evaluated(store: PlotSource, plot: Plot, span: TimeRange, scope: Scope, coarse_only: bool, cache: EvalCache | None,
               release: Release | None) -> dict[str, Any] | None:
    if plot.kind == "percentiles":
        percentiles = percentile_plot(store, plot.query, span, scope, coarse_only, cache, plot.percentiles)
        if percentiles is None:
            return None
        names, rows, heatmap = percentiles
    else:
        series = _series(store, plot, span, scope, coarse_only, cache, release)
        if series is None:
            return None
        names, rows = series
        heatmap = None
    kind = plot.kind
    if kind == "line" and len(names) > 1:
        kind = "multi"
    if kind == "heatmap" and len(names) < 2:
        return None  # one device: the aggregate chart says it all
    payload = {**plot.to_json(), "kind": kind, "names": names,
               "levels": levels(span.times, rows, "max" if kind == "heatmap" else "envelope", coarse_only)}
    if heatmap is not None:
        payload["buckets"] = heatmap
    return payload


def waiting_plot(plot: Plot) -> dict[str, Any]:
    """A plot's payload before it has any point (a live window just started): no series, one empty level, which
    pushed points extend."""
    return {**plot.to_json(), "names": [], "levels": [{"bucket": 1, "t": [], "values": []}]}


# ---- line, multi and heatmap plots ------------------------------------------------------------------------------

def _series(store: PlotSource, plot: Plot, span: TimeRange, scope: Scope, coarse_only: bool, cache: EvalCache | None,
            release: Release | None) -> tuple[list[str], decimate.Reducer] | None:
    tree = parse(plot.query)
    steps = len(span.times)
    reducer = "max" if plot.kind == "heatmap" else "envelope"
    base = decimate.finest_bucket(steps, 1 if reducer == "max" else 2, coarse_only=coarse_only)
    ranked = plot.kind == "multi"
    local = store.store if isinstance(store, StoreSource) else None  # groups release a store's decoded series
    if ranked and release is not None and local is not None \
            and (groups := series_groups(local, tree, scope, plot.top)) is not None:
        top = grouped_top(local, tree, span, scope, plot, groups, base, reducer, release)
        if top is None:
            return None
        labels, grouped = top
        names = [_name(dict(key), plot.kind) for key in labels] + [OTHER] * (grouped.rows - len(labels))
        return (names, grouped) if not grouped.empty.all() else None
    index: dict[Labels, int] = {}  # each series' row, in the order the series appear
    rows = decimate.Reducer(0, steps, base, reducer)
    sums, counts = np.zeros(0), np.zeros(0, dtype=np.int64)  # of each row's values, to rank a top-k plot
    kept: list[Chunk] | None = [] if ranked else None
    kept_cells = 0
    for _, times, value in store.evaluate(tree, span, scope, cache):
        labels, values = chunk_matrix(value, len(times))
        ids = np.array([index.setdefault(key, len(index)) for key in labels], dtype=np.int64)
        if len(index) > rows.rows:
            added = len(index) - rows.rows
            rows.add_rows(added)
            sums, counts = np.append(sums, np.zeros(added)), np.append(counts, np.zeros(added, dtype=np.int64))
        if kept is not None:
            kept_cells += values.size
            if kept_cells <= CACHE_CELLS:
                kept.append((times, ids, values))
            else:
                kept = None
        if ranked:
            finite = np.isfinite(values)
            sums[ids] += np.where(finite, values, 0.0).sum(axis=1)
            counts[ids] += finite.sum(axis=1)
        chunk = np.full((rows.rows, len(times)), np.nan)  # rows without a point in this chunk stay NaN
        chunk[ids] = np.where(store.coverage(times), values, np.nan)
        rows.feed(chunk)
    if not index:
        return None
    order = sorted(index)
    ids = np.array([index[key] for key in order], dtype=np.int64)
    if ranked and len(order) > plot.top + 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts[ids] > 0, sums[ids] / counts[ids], -np.inf)
        by_mean = np.argsort(-means, kind="stable")
        keep, rest = by_mean[: plot.top], by_mean[plot.top :]
        names = [_name(dict(order[i]), plot.kind) for i in keep]
        reduced = rows.take(ids[keep])
        if plot.other:
            names.append(OTHER)
            reduced = reduced.join(_other(store, tree, span, scope, ids[rest], index, kept, base, reducer))
    else:
        names = [_name(dict(key), plot.kind) for key in order]
        if plot.kind == "heatmap":  # devices in numeric order
            by_name = sorted(range(len(names)), key=lambda i: (not names[i].isdigit(),
                                                               int(names[i]) if names[i].isdigit() else 0, names[i]))
            names, ids = [names[i] for i in by_name], ids[by_name]
        reduced = rows.take(ids)
    if reduced.empty.all():
        return None
    return names, reduced


def _other(store: PlotSource, tree: pp.Expr, span: TimeRange, scope: Scope, rest: np.ndarray, index: dict[Labels, int],
           kept: list[Chunk] | None, base: int, reducer: str) -> decimate.Reducer:
    """The sum of the series outside the top k (rows `rest`, summed in that order; NaN where none of them has a
    point), from the kept chunks or a second evaluation."""
    other = decimate.Reducer(1, len(span.times), base, reducer)
    chunks = kept if kept is not None else _evaluated_again(store, tree, span, scope, index)
    for times, ids, values in chunks:
        where = np.full(len(index), -1)  # each series' place in this chunk
        where[ids] = np.arange(len(ids))
        places = where[rest]
        members = values[places[places >= 0]]
        total = np.nansum(members, axis=0)
        total[np.isnan(members).all(axis=0)] = np.nan
        total[~store.coverage(times)] = np.nan
        other.feed(total[None, :])
    return other


def _evaluated_again(store: PlotSource, tree: pp.Expr, span: TimeRange, scope: Scope, index: dict[Labels, int]
                     ) -> Iterator[Chunk]:
    for _, times, value in store.evaluate(tree, span, scope):
        labels, values = chunk_matrix(value, len(times))
        known = [i for i, key in enumerate(labels) if key in index]  # every one, the query being the same
        yield times, np.array([index[labels[i]] for i in known], dtype=np.int64), values[known]


def _name(labels: dict[str, str], kind: str) -> str:
    if kind == "heatmap" and "id" in labels:
        return labels["id"]
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", "value")
    if len(shown) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
