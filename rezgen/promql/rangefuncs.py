"""Functions over range vectors: rate, irate, increase, delta, idelta and the *_over_time family.

Each works on all steps at once: per series, the window (t - range, t] of every step is a slice [lo, hi) of the
series' samples, found with two binary searches, and prefix sums turn window sums into two lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

from rezgen.promql.deadline import check_deadline
from rezgen.promql.values import Matrix, PromQLError, RangeSeries, Sample, Vector, drop_name
from rezgen.store.store import segment_starts

NS = 1e9
T = TypeVar("T")


def _windowed(matrix: Matrix, minimum: int) -> Iterator[tuple[RangeSeries, np.ndarray, np.ndarray, np.ndarray]]:
    """Per series, the steps whose window holds at least `minimum` samples (mask `ok`) and those windows'
    sample slices [lo, hi); series with no such step are skipped."""
    for group, lo, hi, ok in _shared_windows(matrix, minimum):
        for series in group:
            check_deadline()
            yield series, lo, hi, ok


def _shared_windows(matrix: Matrix, minimum: int
                    ) -> Iterator[tuple[list[RangeSeries], np.ndarray, np.ndarray, np.ndarray]]:
    """`_windowed` for runs of consecutive series that share one times array (the series of a table with a
    sample in every row), whose windows are found once."""
    for group in _runs(matrix.series):
        times = group[0].times
        lo = np.searchsorted(times, matrix.times - matrix.range_ns, side="right")
        hi = np.searchsorted(times, matrix.times, side="right")
        starts = segment_starts(times, matrix.times, group[0].breaks)
        if starts is not None:  # an agent restart: windows begin after it
            lo = np.maximum(lo, starts)
        ok = hi - lo >= minimum
        if ok.any():
            yield group, lo[ok], hi[ok], ok


def _runs(series: list[RangeSeries]) -> Iterator[list[RangeSeries]]:
    run: list[RangeSeries] = []
    for s in series:
        if run and s.times is not run[0].times:
            yield run
            run = []
        run.append(s)
    if run:
        yield run


def _reset_corrected(values: np.ndarray) -> np.ndarray:
    """Counter values with every drop (a restart) compensated by adding the value before it, as Prometheus does."""
    drops = np.zeros(len(values))
    if len(values) > 1:
        fell = values[1:] < values[:-1]
        drops[1:] = np.where(fell, values[:-1], 0.0)
    return values + np.cumsum(drops)


def extrapolated(matrix: Matrix, kind: str) -> Vector:
    """`rate`, `increase` and `delta`, extrapolated to the window edges exactly as Prometheus does."""
    is_counter = kind in ("rate", "increase")
    out = Vector()
    for series, lo, hi, ok in _windowed(matrix, 2):
        first, last = lo, hi - 1
        t = series.times
        first_t, last_t = t[first] / NS, t[last] / NS
        end = matrix.times[ok] / NS
        start = end - matrix.range_ns / NS
        sampled = last_t - first_t
        to_start, to_end = first_t - start, end - last_t
        average = sampled / (last - first)
        if series.histogram is not None:
            increase = series.histogram.increase(first, last)
            first_v = series.histogram.cumulative(first).sum(axis=1)
            change = increase.sum(axis=1)
        else:
            floats = series.float_values
            corrected = _reset_corrected(floats) if is_counter else floats
            increase = corrected[last] - corrected[first]
            first_v = floats[first]
            change = increase
        # Prometheus 3 order: a window edge too far from its sample gets half an average interval, and a
        # counter's start is then capped at the point where it would have been zero.
        threshold = average * 1.1
        to_start = np.where(to_start < threshold, to_start, average / 2)
        to_end = np.where(to_end < threshold, to_end, average / 2)
        if is_counter:
            with np.errstate(divide="ignore", invalid="ignore"):
                to_zero = np.where((change > 0) & (first_v >= 0), sampled * (first_v / change), np.inf)
            to_start = np.minimum(to_start, to_zero)
        interval = sampled + to_start + to_end
        factor = interval / sampled
        if kind == "rate":
            factor = factor / (matrix.range_ns / NS)
        values = increase * (factor[:, None] if increase.ndim == 2 else factor)
        out.series.append(_sample(series, ok, values))
    return out


def instant(matrix: Matrix, kind: str) -> Vector:
    """`irate` and `idelta`: the last two samples of each window."""
    out = Vector()
    for group, _, hi, ok in _shared_windows(matrix, 2):
        a, b = hi - 2, hi - 1
        seconds = (group[0].times[b] - group[0].times[a]) / NS
        if group[0].histogram is not None:
            for series in group:
                # A histogram window's times are its own array, so its run is that one histogram series.
                assert series.histogram is not None
                delta = series.histogram.delta(b)  # rows between two consecutive samples hold no entries
                out.series.append(_sample(series, ok, delta / seconds[:, None] if kind == "irate" else delta))
            continue
        # The group's series at once, one row each: the same arithmetic as series by series.
        values = (np.stack([series.float_values for series in group]) if len(group) > 1
                  else group[0].float_values[None, :])
        va, vb = values[:, a], values[:, b]
        delta = np.where(vb < va, vb, vb - va) if kind == "irate" else vb - va
        if kind == "irate":
            delta = delta / seconds
        full = np.zeros((len(group), len(ok)))
        full[:, ok] = delta
        out.series.extend(Sample(drop_name(series.labels), full[i], ok.copy(), series.layout)
                          for i, series in enumerate(group))
    return out


def _sample(series: RangeSeries, ok: np.ndarray, values: np.ndarray, keep_name: bool = False) -> Sample:
    full = np.zeros((len(ok), *values.shape[1:]))
    full[ok] = values
    labels = series.labels if keep_name else drop_name(series.labels)
    return Sample(labels, full, ok.copy(), series.layout)


def _prefix(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(values)])


def _reduce(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """ufunc.reduce over each [lo, hi) slice (all non-empty), overlapping slices allowed."""
    padded = np.append(values, 0.0)
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    return ufunc.reduceat(padded, bounds)[0::2]


def _per_window(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, fn: Callable[[np.ndarray], float]) -> np.ndarray:
    return np.array([fn(values[a:b]) for a, b in _checked(zip(lo, hi))], dtype=np.float64)


def _checked(items: Iterable[T], every: int = 1024) -> Iterator[T]:
    """`items`, checking the query's deadline every so many: a window at a time is Python-speed work."""
    for i, item in enumerate(items):
        if i % every == 0:
            check_deadline()
        yield item


def _stdvar(window: np.ndarray) -> float:
    return float(np.var(window))


def over_time(matrix: Matrix, name: str, param: np.ndarray | None = None) -> Vector:
    """The `<agg>_over_time` functions (param: the quantile for quantile_over_time, per step)."""
    out = Vector()
    if any(series.histogram is not None for series in matrix.series):
        function = name if name in ("changes", "resets") else f"{name}_over_time"
        raise PromQLError(f"{function}() does not take histograms")
    for series, lo, hi, ok in _windowed(matrix, 1):
        v = series.float_values
        count = (hi - lo).astype(np.float64)
        if name in ("sum", "avg"):
            prefix = _prefix(v)
            total = prefix[hi] - prefix[lo]
            values = total if name == "sum" else total / count
        elif name == "count":
            values = count
        elif name == "present":
            values = np.ones(len(lo))
        elif name == "last":
            values = v[hi - 1]
        elif name in ("min", "max"):
            values = _reduce(v, lo, hi, np.minimum if name == "min" else np.maximum)
        elif name in ("stddev", "stdvar"):
            values = _per_window(v, lo, hi, _stdvar)
            values = np.sqrt(values) if name == "stddev" else values
        elif name == "quantile":
            assert param is not None
            qs = param[ok]
            values = np.array([_quantile(v[a:b], q) for a, b, q in _checked(zip(lo, hi, qs))])
        elif name in ("changes", "resets"):
            step = (v[1:] != v[:-1]) if name == "changes" else (v[1:] < v[:-1])
            prefix = _prefix(step.astype(np.float64))
            values = prefix[hi - 1] - prefix[lo]
        else:
            raise PromQLError(f"unknown function {name}_over_time")
        out.series.append(_sample(series, ok, values, keep_name=name == "last"))
    return out


def _quantile(window: np.ndarray, q: float) -> float:
    """Prometheus's quantile: linear interpolation between closest ranks; -Inf/+Inf outside [0, 1]."""
    if np.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    return float(np.quantile(window, q, method="linear"))


def deriv(matrix: Matrix, predict_s: np.ndarray | None = None) -> Vector:
    """`deriv` (per-second slope by least squares), and `predict_linear` when predict_s (seconds ahead) is given."""
    if any(series.histogram is not None for series in matrix.series):
        raise PromQLError(f"{'predict_linear' if predict_s is not None else 'deriv'}() does not take histograms")
    out = Vector()
    for series, lo, hi, ok in _windowed(matrix, 2):
        values = []
        for step, (a, b) in enumerate(_checked(zip(lo, hi))):
            at = matrix.times[ok][step]
            x = (series.times[a:b] - at) / NS
            y = series.float_values[a:b]
            slope, intercept = _regression(x, y)
            values.append(slope if predict_s is None else intercept + slope * predict_s[ok][step])
        out.series.append(_sample(series, ok, np.array(values)))
    return out


def _regression(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept at x = 0; a constant series has slope exactly 0, as in Prometheus."""
    if np.all(y == y[0]):
        return 0.0, float(y[0])
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return slope, float(y.mean() - slope * x.mean())
