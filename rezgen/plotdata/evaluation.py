"""What plots add to the engine's chunked evaluation (`promql.engine.evaluate_range`, the first half of `plots`):
a plot's time range, the steps that fall in a hole of the data, and a chunk's values as rows of series.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
import promql_parser as pp

from rezgen.promql.cache import EvalCache, parse
from rezgen.promql.engine import Scope
from rezgen.promql.selectors import vector_selectors
from rezgen.promql.values import Scalar, Value, Vector
from rezgen.store.histogram import Layout
from rezgen.store.model import Labels
from rezgen.store.store import Store

__all__ = ["BucketChunk", "PlotSource", "QuantileChunk", "Scope", "TimeRange", "chunk_matrix", "coverage",
           "selector_names"]


@dataclass
class TimeRange:
    start_ns: int
    end_ns: int
    step_ns: int

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.start_ns, self.end_ns + 1, self.step_ns, dtype=np.int64)


def coverage(store: Store, times: np.ndarray) -> np.ndarray:
    """True at steps that are not in a hole of the data of some table: a hole is a gap between consecutive samples
    longer than twice the table's sampling interval (`Table.spacing`), and the time after the newest sample once
    it is that long. The one rule for every chart, first load and pushed points alike: from the timestamps, not
    from whether the client saw an outage (a stalled agent, or one whose clock jumped, leaves a gap too)."""
    covered = np.zeros(len(times), dtype=bool)
    for table in store.tables:
        stamps = table.timestamps
        if len(stamps) == 0:
            continue
        longest = 2 * table.spacing(store.interval_ns)
        idx = np.searchsorted(stamps, times, side="right") - 1
        before = stamps[np.maximum(idx, 0)]
        after = stamps[np.minimum(idx + 1, len(stamps) - 1)]
        last = idx + 1 >= len(stamps)
        covered |= (idx >= 0) & (times - before <= longest) & (last | (after - before <= longest))
    return covered


@lru_cache(maxsize=4096)
def selector_names(query: str) -> tuple[str, ...]:
    """The metric names a query's selectors name, in order ("" for a selector without one); PromQLError for a
    query that does not parse. Kept per query: a build asks for the hundreds of its queries several times."""
    return tuple(selector.name or "" for selector in vector_selectors(parse(query)))


def chunk_matrix(value: Value, steps: int) -> tuple[list[Labels], np.ndarray]:
    """The rows of one chunk's value (a scalar or float samples, as `evaluate_range` yields them): each series'
    labels, and a (series, steps) array of its values at present steps, NaN elsewhere. Series without any point
    are left out; samples that share labels make one row."""
    if isinstance(value, Scalar):
        return [()], np.asarray(value.values, dtype=np.float64).reshape(1, steps)
    assert isinstance(value, Vector)
    if not value.series:
        return [], np.empty((0, steps))
    present = np.stack([sample.present for sample in value.series])
    values = np.where(present, np.stack([sample.values for sample in value.series]), np.nan)
    kept = np.flatnonzero(present.any(axis=1))
    labels = [value.series[i].labels for i in kept]
    if len(set(labels)) == len(labels):
        return labels, values[kept]
    # Samples that share labels: the later one's points win where both have one.
    rows: dict[Labels, int] = {}
    merged = np.full((len(set(labels)), steps), np.nan)
    for i, key in zip(kept, labels):
        row = rows.setdefault(key, len(rows))
        merged[row, present[i]] = values[i, present[i]]
    return list(rows), merged


BucketChunk = tuple[int, np.ndarray, np.ndarray, np.ndarray, Layout]  # first step, times, used buckets, rates, layout
QuantileChunk = tuple[int, np.ndarray, np.ndarray]  # first step, times, (quantiles, steps) values


class PlotSource(Protocol):
    """Where a plot's queries are evaluated: the local store (`source.StoreSource`, the engine's one evaluation
    path) or a Prometheus-compatible backend (`rezgen.backend`). Plot shaping above it — top-k, percentiles,
    bucket heatmaps, decimation, levels — is the same for both."""

    def evaluate(self, tree: pp.Expr, span: TimeRange, scope: Scope, cache: EvalCache | None = None,
                 histograms: bool = False) -> Iterator[tuple[int, np.ndarray, Value]]:
        """(first step, chunk times, value) per chunk of steps, as `promql.engine.evaluate_range` yields them."""

    def coverage(self, times: np.ndarray) -> np.ndarray:
        """True at steps that are not in a hole of the data (see `coverage`)."""

    def bucket_rates(self, query: str, span: TimeRange, scope: Scope, cache: EvalCache | None = None
                     ) -> Iterator[BucketChunk]:
        """Per chunk: the bucket rates of sum(irate(query[5m])) (see `percentiles.bucket_rates`)."""

    def quantile_gauges(self, query: str, span: TimeRange, scope: Scope, quantiles: np.ndarray
                        ) -> Iterator[QuantileChunk] | None:
        """Percentiles the source holds ready (a TSDB's quantile gauges) of the histogram `query`, or None."""
