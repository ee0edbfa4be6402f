"""What a TSDB fed by rezgen's remote write must hold, computed straight from the replayed recording (pyarrow, plain
Python integers): every counter and gauge as recorded; every histogram as cumulative buckets at the edges of the
coarser grouping power, `+Inf` and `_count`; and per interval the Rezolus percentile of the full-resolution
buckets' increase (the upper edge of the first bucket whose running sum reaches ceil(q × total), exact fractions).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pyarrow.parquet as pq
from prometheus_oracle import Column, columns, read_columns

QUANTILES = ("0.5", "0.9", "0.99", "0.999", "0.9999")
Labels = tuple[tuple[str, str], ...]


def bucket_edges(g: int, m: int) -> list[tuple[int, int]]:
    """(low, high) of every H2 bucket: the values below 2^(g+1) one each, then 2^g equal parts per power of two."""
    edges = [(v, v) for v in range(2 ** (g + 1))]
    for k in range(g + 1, m):
        width = 2 ** (k - g)
        edges.extend((2**k + j * width, 2**k + (j + 1) * width - 1) for j in range(2**g))
    return edges


@dataclass
class Histogram:
    column: Column
    g: int
    m: int
    values: list[list[int] | None]


class Expected:
    def __init__(self, recording: Path, offset_ns: int, node: str, external: dict[str, str], power: int = 2):
        cols = columns(recording)
        self.timestamps, values = read_columns(recording, cols)
        self.offset_ns, self.power = offset_ns, power
        self.extra = {"node": node, **external}
        fields = pq.ParquetFile(recording).schema_arrow
        self.scalars = [(c, values[c.index]) for c in cols if c.kind != "histogram"]
        self.histograms = []
        for c in cols:
            if c.kind == "histogram":
                meta = {k.decode(): v.decode() for k, v in fields.field(c.index).metadata.items()}
                self.histograms.append(Histogram(c, int(meta["grouping_power"]), int(meta["max_value_power"]),
                                                 values[c.index]))
        self.row_of = {(t + offset_ns) // 1_000_000: row for row, t in enumerate(self.timestamps)}

    @functools.cache  # noqa: B019 (a few layouts, for the test's life)
    def _coarse(self, g: int, m: int) -> list[tuple[int, int]]:
        highs = [high for _, high in bucket_edges(g, m)]
        return [(le, sum(1 for high in highs if high <= le)) for _, le in bucket_edges(min(self.power, g), m)]

    def labels(self, column: Column, **more: str) -> Labels:
        return tuple(sorted({**dict(column.labels), **self.extra, **more}.items()))

    def samples(self, stamps: list[int]) -> dict[str, dict[Labels, dict[int, float]]]:
        """Every sample expected at the given (ingested, consecutive) timestamps in ms, by metric name."""
        out: dict[str, dict[Labels, dict[int, float]]] = {}

        def put(name: str, labels: Labels, ms: int, value: float) -> None:
            out.setdefault(name, {}).setdefault(labels, {})[ms] = float(value)

        previous: int | None = None
        for ms in stamps:
            row = self.row_of[ms]
            for column, values in self.scalars:
                if values[row] is not None:
                    put(column.metric, self.labels(column), ms, values[row])
            for h in self.histograms:
                counts = h.values[row]
                if counts is None:
                    continue
                fine = bucket_edges(h.g, h.m)
                name = h.column.metric
                running = list(itertools.accumulate(counts))
                for le, below in self._coarse(h.g, h.m):  # below: how many fine buckets end at or under le
                    put(f"{name}_bucket", self.labels(h.column, le=str(le)), ms, running[below - 1])
                put(f"{name}_bucket", self.labels(h.column, le="+Inf"), ms, sum(counts))
                put(f"{name}_count", self.labels(h.column), ms, sum(counts))
                before = h.values[self.row_of[previous]] if previous is not None else None
                if before is None or any(a < b for a, b in zip(counts, before)):
                    continue
                delta = [a - b for a, b in zip(counts, before)]
                total = sum(delta)
                if total == 0:
                    continue
                for q in QUANTILES:
                    rank = max(1, math.ceil(Fraction(q) * total))
                    running = 0
                    for c, (_, high) in zip(delta, fine):
                        running += c
                        if running >= rank:
                            put(name, self.labels(h.column, quantile=q), ms, high)
                            break
            previous = ms
        return out


def count(samples: dict[str, dict[Labels, dict[int, float]]], stamps: set[int] | None = None) -> int:
    return sum(1 for series in samples.values() for points in series.values() for ms in points
               if stamps is None or ms in stamps)
