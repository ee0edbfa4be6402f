"""A plot's query evaluated over a time range in chunks of steps (the first half of `plots`).

Each step of a PromQL expression depends only on samples at or before it, so the chunks together are the range
query (as `promql.engine.evaluate_range`), and a long range never holds more than a chunk of values per series.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

import numpy as np
import promql_parser as pp

from rezgen.promql.cache import EvalCache, parse
from rezgen.promql.engine import Evaluator
from rezgen.promql.selectors import Context
from rezgen.promql.values import Matrix, PromQLError, Scalar, String, Vector, type_name
from rezgen.store.model import Labels
from rezgen.store.store import HistogramSeries, Store

CHUNK_STEPS = 4096  # steps evaluated at once (at most)
SCALAR_CELLS = 1_000_000  # steps x counters/gauges a chunk's evaluation may hold (at least 256 steps)
CHUNK_CELLS = 4_000_000  # steps x buckets of one dense histogram array per chunk

Scope = tuple[tuple[str, str], ...]


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


def evaluate_chunks(store: Store, tree: pp.Expr, span: TimeRange, scope: Scope, cache: EvalCache | None = None
                    ) -> Iterator[tuple[int, np.ndarray, Any]]:
    """(first step, chunk times, value) per chunk. Every series the query reads holds its chunk of values at once
    (a histogram a dense (steps x buckets) array), so chunks are sized by all the series the query may read, not
    by the widest histogram alone."""
    times = span.times
    scalars, cells = _selected_size(store, tree)
    chunk = min(CHUNK_STEPS, max(256, SCALAR_CELLS // max(1, scalars)))
    if cells:
        chunk = max(16, min(chunk, CHUNK_CELLS // cells))
    for first in range(0, len(times), chunk):
        ctx = Context(store, times[first : first + chunk], span.start_ns, span.end_ns, scope=scope, cache=cache)
        yield first, ctx.times, Evaluator(ctx).eval(tree)


def _selected_size(store: Store, tree: pp.Expr) -> tuple[int, int]:
    """(counters and gauges, histogram buckets summed over histograms) the expression's selectors may read,
    judged by metric name alone."""
    seen: dict[int, int] = {}
    for selector in plot_selectors(tree):
        for series in store.series_of(selector.name) if selector.name else store:
            seen[id(series)] = series.layout.buckets if isinstance(series, HistogramSeries) else 0
    return sum(1 for cells in seen.values() if cells == 0), sum(seen.values())


@lru_cache(maxsize=4096)
def selector_names(query: str) -> tuple[str, ...]:
    """The metric names a query's selectors name, in order ("" for a selector without one); PromQLError for a
    query that does not parse. Kept per query: a build asks for the hundreds of its queries several times."""
    return tuple(selector.name or "" for selector in plot_selectors(parse(query)))


def plot_selectors(node: Any) -> Iterator[pp.VectorSelector]:
    """Every vector selector of a parsed expression (those inside range selectors too)."""
    if isinstance(node, pp.VectorSelector):
        yield node
        return
    if isinstance(node, pp.MatrixSelector):
        yield node.vector_selector
        return
    for name in ("expr", "lhs", "rhs", "param"):
        child = getattr(node, name, None)
        if isinstance(child, pp.Expr):
            yield from plot_selectors(child)
    for child in getattr(node, "args", None) or []:
        yield from plot_selectors(child)


def chunk_matrix(value: Any, steps: int) -> tuple[list[Labels], np.ndarray]:
    """The rows of one chunk's result: each series' labels, and a (series, steps) array of its values at present
    steps, NaN elsewhere. Series without any point are left out; samples that share labels make one row."""
    if isinstance(value, Scalar):
        return [()], np.asarray(value.values, dtype=np.float64).reshape(1, steps)
    if isinstance(value, (String, Matrix)):
        raise PromQLError(f"invalid expression type \"{type_name(value)}\" for range query, must be a scalar or "
                          "an instant vector")
    assert isinstance(value, Vector)
    if any(sample.is_histogram for sample in value.series):
        raise PromQLError("the result holds histograms: wrap it in histogram_quantile(), histogram_count(), "
                          "histogram_sum(), histogram_avg() or histogram_heatmap()")
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
