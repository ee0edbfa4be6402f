"""A TSDB as plot data (a `plotdata.evaluation.PlotSource`): every query runs in the backend, and its answers come
back as the engine's values, so plot shaping, the page model and payloads are the ones local data gets.

Histograms live in a TSDB as cumulative `NAME_bucket{le}` counters, `NAME_count` and quantile gauges
`NAME{quantile}`. A percentile plot reads the gauges when they pin one series per quantile, and otherwise applies
the Rezolus rule (`store.histogram.quantiles`) to the bucket rates the backend returns, never the backend's
interpolating `histogram_quantile`; `histogram_avg(sum(irate(H[5m])))` and its kin get the engine's own histogram
functions over those bucket rates, in the Rezolus layout the `le` bounds belong to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator
from typing import Any

import numpy as np
import promql_parser as pp

from rezgen.backend.client import MAX_POINTS, BackendClient, BackendError
from rezgen.backend.rewrite import (
    BUCKET_FUNCTIONS,
    HistogramForm,
    histogram_form,
    histogram_names,
    histogram_selector,
    quoted,
    renamed,
    scoped,
)
from rezgen.promql.cache import EvalCache, parse
from rezgen.promql.functions import histogram_function
from rezgen.promql.selectors import vector_selectors
from rezgen.promql.values import PromQLError, Sample, Scalar, Value, Vector
from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels

Scope = tuple[tuple[str, str], ...]
NAMES_TTL = 30.0  # seconds the backend's metric names are trusted before asking again
MAX_GROUPING_POWER = 7


class CatalogSeries:
    """A series as the metric catalog reads it (no samples: the backend holds those)."""

    def __init__(self, meta: SeriesMeta):
        self.meta, self.key, self.kind = meta, meta.key, meta.kind


class BackendSource:
    """`url`'s data over `interval_ns` steps; `counters` are the metrics known to be counters (a TSDB does not say
    which are)."""

    def __init__(self, client: BackendClient, interval_ns: int, counters: Collection[str] = ()):
        self.client = client
        self.interval_ns = interval_ns
        self.counters = set(counters)
        self._names: tuple[float, set[str], set[str]] | None = None  # when, plain names, histogram names
        self._hosts: tuple[float, list[str]] | None = None
        self._lock = threading.Lock()

    # ---- what the backend holds -----------------------------------------------------------------------------

    def names(self) -> tuple[set[str], set[str]]:
        """(counter and gauge names, histogram names) the backend holds, asked again every NAMES_TTL seconds."""
        with self._lock:
            if self._names is None or time.monotonic() - self._names[0] > NAMES_TTL:
                every = set(self.client.label_values("__name__"))
                histograms = {n.removesuffix("_bucket") for n in every if n.endswith("_bucket")}
                plain = every - histograms - {f"{h}_bucket" for h in histograms} - {f"{h}_count" for h in histograms}
                self._names = (time.monotonic(), plain, histograms)
            return self._names[1], self._names[2]

    def series_of(self, metric: str) -> list[Any]:
        """Non-empty when the backend holds the metric (all `pages.model.absent_plots` asks), or cannot say (the
        chart then shows why)."""
        try:
            plain, histograms = self.names()
        except BackendError:
            return [metric]
        return [metric] if metric in plain or metric in histograms else []

    def hosts(self) -> list[str]:
        """The `node` label's values when there are several, else [] (as a recording with one host); asked again
        every NAMES_TTL seconds."""
        with self._lock:
            if self._hosts is None or time.monotonic() - self._hosts[0] > NAMES_TTL:
                nodes = self.client.label_values("node")
                self._hosts = (time.monotonic(), nodes if len(nodes) > 1 else [])
            return self._hosts[1]

    def catalog_series(self, start_ns: int, end_ns: int) -> list[CatalogSeries]:
        """Every series of one host (the first) as the catalog lists it: histograms once per label set (not per
        bucket or quantile). One host's: a fleet's series are the same metrics many times over, more than a
        backend lists at once."""
        _, histograms = self.names()
        hosts = self.hosts()
        match = f'{{__name__!~".+_bucket",node={quoted(hosts[0])}}}' if hosts else '{__name__!~".+_bucket"}'
        found: dict[SeriesKey, CatalogSeries] = {}
        for labels in self.client.series(match, start_ns, end_ns):
            name = labels.pop("__name__", "")
            base = name.removesuffix("_bucket").removesuffix("_count")
            if base in histograms and (name != base or "quantile" in labels):  # `_count` or a quantile gauge
                labels.pop("le", None)
                labels.pop("quantile", None)
                kind, name = Kind.HISTOGRAM, base
            else:
                kind = Kind.COUNTER if name in self.counters else Kind.GAUGE
            key = SeriesKey(name, make_labels(labels))
            found.setdefault(key, CatalogSeries(SeriesMeta(key, kind)))
        return [found[key] for key in sorted(found, key=lambda k: (k.metric, k.labels))]

    def newest_sample(self, within_ns: int) -> int | None:
        """The time (ns) of the newest sample of a metric every host has (cpu_cores when there is one) within
        `within_ns` before now: the newest `timestamp()` on a grid of steps whose lookback covers that span."""
        plain, histograms = self.names()
        names = sorted(plain) or sorted(f"{h}_count" for h in histograms)
        if not names:
            return None
        name = "cpu_cores" if "cpu_cores" in plain else names[0]
        now = time.time_ns() // 1_000_000 * 1_000_000
        step = max(60_000_000_000, within_ns // 1000 // 1_000_000_000 * 1_000_000_000)
        found = self.client.query_range(f"max(timestamp({name}))", now - within_ns, now, step)
        newest = max((float(np.nanmax(values)) for _, _, values in found if len(values)), default=None)
        return None if newest is None else int(newest * 1000) * 1_000_000

    # ---- plot data (plotdata.evaluation.PlotSource) -----------------------------------------------------------

    def evaluate(self, tree: pp.Expr, span: Any, scope: Scope, cache: EvalCache | None = None,
                 histograms: bool = False) -> Iterator[tuple[int, np.ndarray, Value]]:
        steps = len(span.times)
        _, known = self.names()
        if not histogram_names(tree, known):
            query = str(tree)
            if not any(True for _ in vector_selectors(tree)):  # a number: the backend would answer a scalar
                query = f"vector({query})"
            yield 0, span.times, self._vector(query, span, scope)
            return
        form = histogram_form(tree)
        if form is None or histograms:
            raise PromQLError("over a TSDB, histograms are read as FUNC(sum(irate(H[5m]))) with FUNC one of "
                              "histogram_count, " + ", ".join(BUCKET_FUNCTIONS))
        if form.function == "histogram_count":
            yield 0, span.times, self._vector(form.count_query(), span, scope)
            return
        if form.function not in BUCKET_FUNCTIONS:
            raise PromQLError(f"function {form.function}() is not supported over a TSDB")
        yield 0, span.times, self._bucket_function(form, span, scope, steps)

    def coverage(self, times: np.ndarray) -> np.ndarray:
        return np.ones(len(times), dtype=bool)  # the backend's answers already leave out what it has no data for

    def bucket_rates(self, query: str, span: Any, scope: Scope, cache: EvalCache | None = None
                     ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, Layout]]:
        selector = histogram_selector(query)
        found = self._buckets(f"sum by (le) (irate({renamed(selector, '_bucket')}[5m]))", span, scope)
        if not found:
            return
        _, rates, layout, buckets = found[0]
        for first in range(0, len(span.times), MAX_POINTS):
            chunk = rates[first : first + MAX_POINTS]
            used = np.flatnonzero(chunk.any(axis=0))
            yield first, span.times[first : first + MAX_POINTS], buckets[used], chunk[:, used], layout

    def quantile_gauges(self, query: str, span: Any, scope: Scope, quantiles: np.ndarray
                        ) -> Iterator[tuple[int, np.ndarray, np.ndarray]] | None:
        selector = histogram_selector(query)
        wanted = [repr(float(q)).removesuffix(".0") if q >= 1 else repr(float(q)) for q in quantiles]
        pattern = "|".join(w.replace(".", "\\.") for w in wanted)
        # A gauge holds for its own interval only: an interval without observations has no gauge (and no
        # percentile), where the TSDB's lookback would repeat the previous one. A millisecond under the interval:
        # Prometheus 2's windows include their left end, where the previous interval's gauge sits.
        gauges = scoped(renamed(selector, "", f"quantile=~{quoted(pattern)}"), scope)
        window_ms = max(1, self.interval_ns // 1_000_000 - 1)
        found = self.client.query_range(f"last_over_time({gauges}[{window_ms}ms])",
                                        span.start_ns, span.end_ns, span.step_ns)
        by_quantile: dict[str, list[Any]] = {}
        for labels, index, values in found:
            by_quantile.setdefault(labels.get("quantile", ""), []).append((index, values))
        if not found or any(len(by_quantile.get(w, [])) != 1 for w in wanted):
            return None  # no gauges, or several series per quantile (gauges cannot be summed): the buckets decide
        rows = np.full((len(wanted), len(span.times)), np.nan)
        for row, w in enumerate(wanted):
            index, values = by_quantile[w][0]
            rows[row, index] = values
        return iter([(0, span.times, rows)])

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _vector(self, query: str, span: Any, scope: Scope) -> Vector:
        steps = len(span.times)
        # One host's data unscoped: its `node` label says nothing, and a recording of one host has none.
        drop = "node" if not scope and not self.hosts() else None
        out = Vector()
        for labels, index, values in self.client.query_range(scoped(query, scope), span.start_ns, span.end_ns,
                                                             span.step_ns):
            row = np.full(steps, np.nan)
            row[index] = values
            out.series.append(Sample(make_labels({k: v for k, v in labels.items() if k != drop}), row,
                                     ~np.isnan(row)))
        return out

    def _buckets(self, query: str, span: Any, scope: Scope
                 ) -> list[tuple[dict[str, str], np.ndarray, Layout, np.ndarray]]:
        """Per group of series that differ only in `le`: its labels, (steps, buckets) per-bucket rates from the
        cumulative `le` rates of `query`, the Rezolus layout the bounds belong to, and each column's bucket index
        in it."""
        groups: dict[tuple[tuple[str, str], ...], list[tuple[float, np.ndarray, np.ndarray]]] = {}
        for labels, index, values in self.client.query_range(scoped(query, scope), span.start_ns, span.end_ns,
                                                             span.step_ns):
            labels = dict(labels)  # answers are shared (see `client.query_range`): never change them
            try:
                le = float(labels.pop("le", ""))
            except ValueError:
                continue
            if np.isfinite(le):
                groups.setdefault(tuple(sorted(labels.items())), []).append((le, index, values))
        out = []
        for key, bounds in sorted(groups.items()):
            bounds.sort(key=lambda b: b[0])
            edges = np.array([b[0] for b in bounds])
            layout = _layout_of(edges)
            cumulative = np.zeros((len(span.times), len(bounds)))
            for column, (_, index, values) in enumerate(bounds):
                cumulative[index, column] = np.nan_to_num(values)
            rates = np.maximum(np.diff(cumulative, axis=1, prepend=0.0), 0.0)
            out.append((dict(key), rates, layout, np.searchsorted(layout.highs, edges)))
        return out

    def _bucket_function(self, form: HistogramForm, span: Any, scope: Scope, steps: int) -> Vector:
        histograms = Vector()
        for labels, rates, layout, buckets in self._buckets(form.buckets_query(), span, scope):
            dense = np.zeros((steps, layout.buckets))
            dense[:, buckets] = rates
            histograms.series.append(Sample(make_labels(labels), dense, np.asarray(dense.any(axis=1)), layout))
        args: list[Value] = [Scalar(np.full(steps, _number(arg))) for arg in form.args]
        return histogram_function(form.function, [*args, histograms], steps)


def _number(arg: pp.Expr) -> float:
    tree = parse(str(arg))
    if isinstance(tree, pp.NumberLiteral):
        return float(tree.val)
    raise PromQLError(f"{arg}: over a TSDB a histogram function's parameter must be a number")


def _layout_of(edges: np.ndarray) -> Layout:
    """The coarsest Rezolus layout whose bucket upper edges include every `le` bound."""
    for power in range(MAX_GROUPING_POWER + 1):
        layout = Layout(power, 64)
        if np.isin(edges, layout.highs).all():
            return layout
    raise PromQLError("the backend's `le` bounds are not those of a Rezolus histogram")
