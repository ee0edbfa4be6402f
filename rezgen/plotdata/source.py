"""The local plot source: a store, evaluated by the engine's one evaluation path (`promql.engine.evaluate_range`).

`plot_source` lets every caller of `plots.plot_data` keep passing a Store; a remote backend passes its own
`PlotSource` (see `evaluation.PlotSource`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import promql_parser as pp

from rezgen.plotdata.evaluation import BucketChunk, PlotSource, QuantileChunk, Scope, TimeRange, coverage
from rezgen.plotdata.percentiles import bucket_rates
from rezgen.promql.cache import EvalCache
from rezgen.promql.engine import evaluate_range
from rezgen.promql.values import Value
from rezgen.store.store import Store


class StoreSource:
    def __init__(self, store: Store):
        self.store = store

    def evaluate(self, tree: pp.Expr, span: TimeRange, scope: Scope, cache: EvalCache | None = None,
                 histograms: bool = False) -> Iterator[tuple[int, np.ndarray, Value]]:
        return evaluate_range(self.store, tree, span.start_ns, span.end_ns, span.step_ns, scope, cache=cache,
                              histograms=histograms)

    def coverage(self, times: np.ndarray) -> np.ndarray:
        return coverage(self.store, times)

    def bucket_rates(self, query: str, span: TimeRange, scope: Scope, cache: EvalCache | None = None
                     ) -> Iterator[BucketChunk]:
        return bucket_rates(self.store, query, span, scope, cache)

    def quantile_gauges(self, query: str, span: TimeRange, scope: Scope, quantiles: np.ndarray
                        ) -> Iterator[QuantileChunk] | None:
        return None  # a store holds histograms, and percentiles are computed from them


def plot_source(data: Store | PlotSource) -> PlotSource:
    return StoreSource(data) if isinstance(data, Store) else data
