"""Plot data: a dashboard plot evaluated over a time range, shaped for the browser.

Every kind gives a shared time axis (`t`, unix ms) and named series of values aligned to it, `null` where there
is no point. Steps that fall in a hole of the data (no sample in the last two sampling intervals) are nulled so
charts draw a break instead of a line across it. Long ranges become resolution levels (see `decimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import decimate
from .dashboards import Plot
from .histogram import Layout, quantile_rows
from .promql.engine import evaluate_range, range_query
from .promql.values import Vector
from .store import Store

QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999))
OTHER = "Other"


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


def plot_data(store: Store, plot: Plot, span: TimeRange, scope: tuple[tuple[str, str], ...] = ()
              ) -> dict[str, Any] | None:
    """The plot's payload, or None when the recording has no data for it."""
    times = span.times
    if plot.kind == "percentiles":
        names, values, heatmap = _percentiles(store, plot, span, scope)
    else:
        names, values = _series(store, plot, span, scope)
        heatmap = None
    if not names or np.isnan(values).all():
        return None
    values[:, ~coverage(store, times, 2 * store.interval_ns + 1)] = np.nan
    kind = plot.kind
    if kind == "line" and len(names) > 1:
        kind = "multi"
    if kind == "heatmap" and len(names) < 2:
        return None  # one device: the aggregate chart says it all
    payload = {**plot.to_json(), "kind": kind, "names": names,
               "levels": _levels(times, values, "max" if kind == "heatmap" else "envelope")}
    if heatmap is not None:
        payload["buckets"] = heatmap
    return payload


def _series(store: Store, plot: Plot, span: TimeRange, scope: tuple[tuple[str, str], ...]
            ) -> tuple[list[str], np.ndarray]:
    result = range_query(store, plot.query, span.start_ns, span.end_ns, span.step_ns, scope)
    times = span.times
    rows, names = [], []
    for series in result.series:
        row = np.full(len(times), np.nan)
        row[np.searchsorted(times, series.times)] = series.values
        rows.append(row)
        names.append(_name(series.metric, plot.kind))
    if not rows:
        return [], np.zeros((0, len(times)))
    values = np.stack(rows)
    if plot.kind == "heatmap":
        order = sorted(range(len(names)), key=lambda i: (not names[i].isdigit(), int(names[i]) if names[i].isdigit()
                                                         else 0, names[i]))
        return [names[i] for i in order], values[order]
    if plot.kind == "multi" and len(names) > plot.top + 1:
        return _top(names, values, plot.top)
    return names, values


def _name(labels: dict[str, str], kind: str) -> str:
    if kind == "heatmap" and "id" in labels:
        return labels["id"]
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", "value")
    if len(shown) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))


def _top(names: list[str], values: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    """Keep the k series with the highest mean, sum the rest into "Other" (NaN where none of them has a point)."""
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    means = np.where(counts > 0, np.where(finite, values, 0.0).sum(axis=1) / np.maximum(counts, 1), -np.inf)
    order = np.argsort(-means, kind="stable")
    keep, rest = order[:k], order[k:]
    other = np.nansum(values[rest], axis=0)
    other[np.isnan(values[rest]).all(axis=0)] = np.nan
    return [names[i] for i in keep] + [OTHER], np.vstack([values[keep], other[None, :]])


def _percentiles(store: Store, plot: Plot, span: TimeRange, scope: tuple[tuple[str, str], ...]
                 ) -> tuple[list[str], np.ndarray, dict[str, Any] | None]:
    """p50..p99.99 and the bucket heatmap of sum(irate(h[5m])), from one evaluation of the bucket deltas."""
    expr = f"sum(irate({plot.query}[5m]))"
    times = span.times
    quantiles = np.full((len(QUANTILES), len(times)), np.nan)
    counts: list[np.ndarray] = []
    layout: Layout | None = None
    offset = 0
    for chunk_times, value in evaluate_range(store, expr, span.start_ns, span.end_ns, span.step_ns, scope):
        assert isinstance(value, Vector)
        rows = slice(offset, offset + len(chunk_times))
        offset += len(chunk_times)
        for sample in value.series:
            layout = sample.layout
            assert layout is not None
            dense = np.where(sample.present[:, None], sample.values, 0.0)
            for i, (_, q) in enumerate(QUANTILES):
                quantiles[i, rows] = quantile_rows(dense, q, layout.highs)
            counts.append((chunk_times, dense))
    if layout is None:
        return [], quantiles[:0], None
    return [name for name, _ in QUANTILES], quantiles, _bucket_heatmap(counts, layout, times)


def _bucket_heatmap(chunks: list[tuple[np.ndarray, np.ndarray]], layout: Layout, times: np.ndarray
                    ) -> dict[str, Any] | None:
    """Per-bucket rates over time, limited to the buckets that ever hold a count, and at most ~500 columns."""
    dense = np.concatenate([d for _, d in chunks]) if chunks else np.zeros((0, layout.buckets))
    used = np.flatnonzero(dense.any(axis=0))
    if len(used) == 0:
        return None
    stride = max(1, math.ceil(len(times) / 500))
    columns = math.ceil(len(times) / stride)
    padded = np.zeros((columns * stride, len(used)))
    padded[: len(times)] = dense[:, used]
    cells = padded.reshape(columns, stride, len(used)).mean(axis=1)
    ti, bi = np.nonzero(cells)
    return {
        "t": (times[::stride] // 1_000_000).tolist(),
        "edges": [float(layout.highs[b]) for b in used],
        "cells": np.column_stack([ti, bi, cells[ti, bi]]).tolist(),
        "max": float(cells.max()),
    }


def _levels(times: np.ndarray, values: np.ndarray, reducer: str) -> list[dict[str, Any]]:
    per_bucket = 1 if reducer == "max" else 2
    out = []
    for bucket in decimate.level_buckets(len(times), per_bucket):
        t, v = decimate.envelope(times, values, bucket, reducer)
        out.append({"bucket": bucket, "t": (t // 1_000_000).tolist(), "values": [json_values(row) for row in v]})
    return out


def json_values(row: np.ndarray) -> list[float | None]:
    """Floats for JSON: NaN and infinities become null (JSON has no such numbers)."""
    finite = np.isfinite(row)
    return [float(v) if ok else None for v, ok in zip(row.tolist(), finite.tolist())]
