"""Plot data: a dashboard plot evaluated over a time range, shaped for the browser.

Every kind gives a shared time axis (`t`, unix ms) and named series of values aligned to it, `null` where there
is no point. Steps that fall in a hole of the data (no sample in the last two sampling intervals) are nulled so
charts draw a break instead of a line across it. Long ranges become resolution levels (see `decimate`, `levels`).

A plot is evaluated in chunks of steps (see `evaluation`) and each chunk is reduced at once to the finest
resolution level the plot can ship, so memory follows the size of the payload, not the length of the recording:
a day at 1 s is 86,400 steps, and one dense histogram array over it would not fit. Percentile plots have their
own path (see `percentiles`); line, multi and heatmap plots are here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import promql_parser as pp

from . import decimate
from .dashboards import Plot
from .evaluation import Scope, TimeRange, chunk_rows, coverage, evaluate_chunks, plot_selectors
from .levels import json_values, levels, round_significant
from .model import Labels
from .percentiles import percentile_plot
from .promql.cache import EvalCache, parse
from .promql.values import PromQLError
from .store import Store

# Imported from here by the rest of rezgen: what a plot is and how its values are written.
__all__ = ["OTHER", "TimeRange", "json_values", "plot_data", "plot_selectors", "round_significant", "waiting_plot"]

OTHER = "Other"
CACHE_CELLS = 2_000_000  # evaluated values kept for the second pass of a top-k plot instead of evaluating again


def plot_data(store: Store, plot: Plot, span: TimeRange, scope: Scope = (), *, coarse_only: bool = False,
              cache: EvalCache | None = None) -> dict[str, Any] | None:
    """The plot's payload, or None when the recording has no data for it.

    `coarse_only` ships the coarsest level alone (the metric browser's charts do not zoom into detail); `cache`
    shares evaluated pieces between the plots of a build whose store does not change meanwhile."""
    if span.step_ns <= 0:
        raise PromQLError("the step must be positive")
    if span.end_ns < span.start_ns:
        raise PromQLError("the end time must not be before the start time")
    if plot.kind == "percentiles":
        built = percentile_plot(store, plot.query, span, scope, coarse_only, cache)
        heatmap = built[2] if built else None
    else:
        built = _series(store, plot, span, scope, coarse_only, cache)
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
               "levels": levels(span.times, rows, "max" if kind == "heatmap" else "envelope", coarse_only)}
    if heatmap is not None:
        payload["buckets"] = heatmap
    return payload


def waiting_plot(plot: Plot) -> dict[str, Any]:
    """A plot's payload before it has any point (a live window just started): no series, one empty level, which
    pushed points extend."""
    return {**plot.to_json(), "names": [], "levels": [{"bucket": 1, "t": [], "values": []}]}


# ---- line, multi and heatmap plots ------------------------------------------------------------------------------

def _series(store: Store, plot: Plot, span: TimeRange, scope: Scope, coarse_only: bool, cache: EvalCache | None
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
    kept: list[tuple[int, np.ndarray, dict[Labels, np.ndarray]]] | None = [] if ranked else None
    kept_cells = 0
    for first, times, value in evaluate_chunks(store, tree, span, scope, cache):
        chunk = chunk_rows(value, len(times))
        covered = coverage(store, times, max_gap)
        if kept is not None:
            kept_cells += len(chunk) * len(times)
            if kept_cells <= CACHE_CELLS:
                kept.append((first, times, chunk))
            else:
                kept = None
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
        other = _other(store, tree, span, scope, [order[i] for i in rest], kept, base, reducer)
        names = [names[i] for i in keep] + [OTHER]
        reduced = [reduced[i] for i in keep] + [other]
    if all(row.empty for row in reduced):
        return None
    return names, reduced


def _other(store: Store, tree: pp.Expr, span: TimeRange, scope: Scope, rest: list[Labels],
           kept: list[tuple[int, np.ndarray, dict[Labels, np.ndarray]]] | None, base: int, reducer: str
           ) -> decimate.RowReducer:
    """The sum of the series outside the top k (NaN where none of them has a point), from the cached chunks or a
    second evaluation."""
    steps = len(span.times)
    other = decimate.RowReducer(steps, base, reducer)
    chunks = kept if kept is not None else ((f, t, chunk_rows(v, len(t))) for f, t, v in
                                            evaluate_chunks(store, tree, span, scope))
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
