"""Tiny synthetic stores for unit tests, written as Python lists.

    store = build_store({
        'cpu_usage{cpu="0"}': [(0, 10), (1, 20), (2, None), (3, 40)],  # None: the row exists, the series has no sample
        'up': [(1, 1)],
    }, histograms={
        'latency{op="read"}': hist(g=2, m=5, samples=[(0, {3: 1}), (1, {3: 1, 8: 2})]),  # cumulative counts per bucket
    })

Times are in seconds (floats allowed) and become int64 nanoseconds. All series share one `Table` whose rows are the
sorted union of every sample time; rows are appended one by one exactly as a live agent would (`append_row`, then
`set` / `set_cumulative`), so a built store is also a valid starting point for append/evict tests. Names ending in
`_total` are counters, the rest gauges (the kind is metadata only: PromQL does not look at it).

Histogram samples give each bucket's *cumulative* count (the Rezolus encoding: bucket counts that only grow until the
producer restarts), as a dict {bucket index: count}; missing buckets are 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rezgen.store.histogram import Layout
from rezgen.store.model import Kind, SeriesKey, SeriesMeta, make_labels
from rezgen.store.store import HistogramSeries, Series, Store, Table

NS = 1_000_000_000

Points = Sequence[tuple[float, float | None]]


@dataclass
class Hist:
    """A histogram series to build: layout (g, m) and samples [(t_seconds, {bucket: cumulative count})]."""

    g: int
    m: int
    samples: list[tuple[float, Mapping[int, float] | None]] = field(default_factory=list)

    @property
    def layout(self) -> Layout:
        return Layout(self.g, self.m)

    def dense(self, counts: Mapping[int, float]) -> np.ndarray:
        out = np.zeros(self.layout.buckets)
        for bucket, count in counts.items():
            out[bucket] = count
        return out


def hist(g: int, m: int, samples: Sequence[tuple[float, Mapping[int, float] | None]]) -> Hist:
    return Hist(g, m, list(samples))


def ns(t_seconds: float) -> int:
    """Seconds to integer nanoseconds, without float noise for values like 0.1."""
    return round(t_seconds * NS)


_SELECTOR = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_key(text: str) -> SeriesKey:
    """`name{a="1",b="2"}` → SeriesKey("name", (("a", "1"), ("b", "2")))."""
    match = _SELECTOR.match(text.strip())
    if match is None:
        raise ValueError(f"bad series key {text!r}")
    pairs = []
    body = match.group("labels") or ""
    pos = 0
    while pos < len(body):
        label = _LABEL.match(body, pos)
        if label is None:
            raise ValueError(f"bad labels in {text!r}")
        pairs.append((label.group(1), label.group(2)))
        pos = label.end()
    return SeriesKey(match.group("name"), make_labels(pairs))


def build_store(series: Mapping[str, Points] | None = None, histograms: Mapping[str, Hist] | None = None, *,
                table: str = "test", interval_s: float = 1.0) -> Store:
    store = Store(interval_ns=ns(interval_s))
    add_table(store, series or {}, histograms or {}, name=table)
    return store


def add_table(store: Store, series: Mapping[str, Points], histograms: Mapping[str, Hist] | None = None, *,
              name: str = "extra") -> Table:
    """Add one more timeline (another producer) with its own rows to an existing store."""
    histograms = histograms or {}
    table = store.add_table(Table(name))
    float_series: list[tuple[Series, dict[int, float | None]]] = []
    for text, points in series.items():
        key = parse_key(text)
        kind = Kind.COUNTER if key.metric.endswith("_total") else Kind.GAUGE
        created = store.add_series(Series(SeriesMeta(key, kind), table))
        float_series.append((created, {ns(t): v for t, v in points}))
    hist_series: list[tuple[HistogramSeries, Hist, dict[int, Mapping[int, float] | None]]] = []
    for text, spec in histograms.items():
        meta = SeriesMeta(parse_key(text), Kind.HISTOGRAM, grouping_power=spec.g, max_value_power=spec.m)
        created = store.add_series(HistogramSeries(meta, table))
        hist_series.append((created, spec, {ns(t): c for t, c in spec.samples}))
    stamps = sorted({t for _, by_t in float_series for t in by_t} | {t for _, _, by_t in hist_series for t in by_t})
    for t in stamps:
        row = table.append_row(t)
        for s, by_t in float_series:
            value = by_t.get(t)
            if value is not None:
                s.set(row, float(value))
        for h, spec, by_t in hist_series:
            counts = by_t.get(t)
            if counts is not None:
                h.set_cumulative(row, spec.dense(counts))
    return table
