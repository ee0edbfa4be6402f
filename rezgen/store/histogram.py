"""Rezolus H2 histogram layout (grouping power g, max value power m) and the percentile rule.

Bucket i < 2^(g+1) holds exactly the value i; above that every power of two [2^k, 2^(k+1)) is split into 2^g
buckets of equal width. Rezolus reports a percentile as the inclusive upper edge of the bucket that holds
rank max(1, ceil(q * count)); rezgen does the same so its numbers match `rezolus view`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class Layout:
    grouping_power: int
    max_value_power: int

    def __post_init__(self) -> None:
        g, m = self.grouping_power, self.max_value_power
        if not (0 <= g < m <= 64):
            raise LayoutError(f"invalid histogram parameters grouping_power={g} max_value_power={m}")

    @property
    def buckets(self) -> int:
        g, m = self.grouping_power, self.max_value_power
        return 2 ** (g + 1) + (m - g - 1) * 2**g

    @cached_property
    def lows(self) -> np.ndarray:
        return self._bounds()[0]

    @cached_property
    def highs(self) -> np.ndarray:
        return self._bounds()[1]

    @cached_property
    def midpoints(self) -> np.ndarray:
        return (self.lows + self.highs) / 2.0

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        g, m = self.grouping_power, self.max_value_power
        i = np.arange(self.buckets, dtype=np.int64)
        q = i >> g
        r = i - (q << g)
        # Float64 is exact up to 2^53 and rounds above it, which is far beyond any latency in nanoseconds.
        low = np.where(q == 0, i, np.exp2(g + q - 1) + r * np.exp2(np.maximum(q - 1, 0))).astype(np.float64)
        high = np.where(q == 0, i, low + np.exp2(np.maximum(q - 1, 0)) - 1).astype(np.float64)
        high[-1] = 2.0**64 - 1 if m == 64 else 2.0**m - 1
        return low, high

    def index_of(self, value: int) -> int:
        g = self.grouping_power
        if value < 2 ** (g + 1):
            return int(value)
        k = int(value).bit_length() - 1
        return 2 ** (g + 1) + (k - g - 1) * 2**g + ((int(value) - 2**k) >> (k - g))


SEARCH_QUANTILES = 8  # above this many quantiles, `quantiles` searches each row instead of scanning per quantile


def quantile_rows(counts: np.ndarray, q: float, highs: np.ndarray) -> np.ndarray:
    """Percentile q of each row of a (rows, buckets) array of per-bucket counts; NaN where a row is empty."""
    return quantiles(counts, np.array([q], dtype=np.float64), highs)[0]


def quantiles(counts: np.ndarray, qs: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """(len(qs), rows) percentiles of each row of a (rows, buckets) array of per-bucket counts whose buckets' upper
    edges are `highs`; NaN where a row is empty. The one place the Rezolus rule is written.

    For integer counts, "the first bucket whose running sum reaches max(1, ceil(q * total))" is the same bucket
    as "the first non-empty bucket whose running sum reaches q * total"; the second form also holds for rates
    (counts divided by an interval), so a percentile does not depend on how long the interval was. It also holds
    when empty buckets are left out of the rows (with their edges): an empty bucket never reaches first.
    q outside [0, 1] follows Prometheus: -Inf below, +Inf above.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim == 1:
        counts = counts[None, :]
    out = np.full((len(qs), counts.shape[0]), np.nan)
    total = counts.sum(axis=1)
    ok = total > 0
    if not ok.any():
        return out
    running = np.cumsum(counts[ok], axis=1)
    inside = [(row, q) for row, q in enumerate(qs.tolist()) if 0 <= q <= 1]  # NaN is neither
    for row, q in enumerate(qs.tolist()):
        if q < 0 or q > 1:
            out[row, ok] = -np.inf if q < 0 else np.inf
    if not inside:
        return out
    rows = [row for row, _ in inside]
    # A relative slack absorbs the rounding of summed rates; integer counts are far coarser than 1e-12.
    targets = np.array([q for _, q in inside])[:, None] * total[ok][None, :] * (1 - 1e-12)  # (qs, rows)
    if len(inside) <= SEARCH_QUANTILES:
        for k, row in enumerate(rows):
            reached = (running >= targets[k][:, None]) & (running > 0)
            out[row, ok] = highs[np.argmax(reached, axis=1)]
        return out
    # Many quantiles (a spectrum): the same first bucket found by a binary search in each row's running sum (it
    # never decreases): the first one reaching the target, and not before the first non-empty one.
    found = np.empty((len(inside), len(running)), dtype=np.int64)
    for i, row_sums in enumerate(running):
        at = np.maximum(np.searchsorted(row_sums, targets[:, i], side="left"),
                        np.searchsorted(row_sums, 0.0, side="right"))
        found[:, i] = np.where(at < len(row_sums), at, 0)  # none reached: argmax of all-False, bucket 0
    out[np.ix_(np.array(rows, dtype=np.int64), np.flatnonzero(ok))] = highs[found]
    return out
