"""Reduce long series for display with a min/max envelope, and build the resolution levels a chart zooms through.

LTTB-style sampling picks "representative" points and drops latency spikes; a min/max envelope keeps the
extremes of every bucket, so a spike that lasted one sample is still drawn at any zoom level.

A plot's levels are planned for its whole payload, not per series: the coarsest level (about `TARGET_POINTS`
points per series, or the series itself when it has at most `FULL_RESOLUTION_MAX` samples) is always there, and
each finer level (`ZOOM_FACTOR` times more buckets) only while series x points stays within `PLOT_POINTS`. So a
one-line chart of a day carries a coarse and a finer level, while heatmaps and many-series charts carry the
coarse one alone, and the size of a site grows with the number of charts rather than the length of the recording.

Rows are reduced as they are evaluated, chunk by chunk of steps (`Reducer`): to the finest bucket any level
needs, from which every coarser level follows exactly (the minimum of minima is the minimum). Memory is the
reduced size, never the full-resolution rows of a long recording.
"""

from __future__ import annotations

import math

import numpy as np

FULL_RESOLUTION_MAX = 1000  # samples drawn as they are
TARGET_POINTS = 1000  # points of the coarsest level of a longer series (two per bucket for envelopes)
ZOOM_FACTOR = 8  # each finer level has about this many times more buckets
PLOT_POINTS = 4000  # series x points a finer level of one plot may hold


def points(steps: int, bucket: int, per_bucket: int = 2) -> int:
    """Points of a level: full resolution has one per step, a reduced level `per_bucket` per bucket."""
    return steps if bucket <= 1 else math.ceil(steps / bucket) * per_bucket


def finest_bucket(steps: int, per_bucket: int = 2, budget: int = PLOT_POINTS, coarse_only: bool = False) -> int:
    """The finest bucket any level of a one-series plot of `steps` samples may use (levels of a plot with more
    series are a subset of the same ladder, see `plan`)."""
    coarse = coarse_bucket(steps, per_bucket)
    if coarse == 1 or coarse_only:
        return coarse
    if steps <= budget:
        return 1
    bucket = max(2, math.ceil(steps * per_bucket / budget))
    while points(steps, bucket, per_bucket) > budget:
        bucket += 1
    return min(bucket, coarse)


def coarse_bucket(steps: int, per_bucket: int = 2) -> int:
    if steps <= FULL_RESOLUTION_MAX:
        return 1
    return max(2, math.ceil(steps * per_bucket / TARGET_POINTS))


def ladder(steps: int, base: int, per_bucket: int = 2) -> list[int]:
    """Bucket sizes from coarsest to finest, all multiples of `base` (the reduction the rows were fed at)."""
    coarse = coarse_bucket(steps, per_bucket)
    if coarse <= base:
        return [base]
    top = math.ceil(coarse / base) * base
    levels = [top]
    bucket = top
    while bucket > base:
        finer = max(base, math.ceil(bucket / ZOOM_FACTOR / base) * base)
        if finer >= bucket:
            finer = base
        levels.append(finer)
        bucket = finer
    return levels


def plan(steps: int, base: int, rows: int, per_bucket: int = 2, budget: int = PLOT_POINTS) -> list[int]:
    """The levels a plot of `rows` series ships: the coarsest always, finer ones while rows x points fit."""
    levels = ladder(steps, base, per_bucket)
    return [b for i, b in enumerate(levels) if i == 0 or rows * points(steps, b, per_bucket) <= budget]


class Reducer:
    """The rows of a plot (series x steps), fed consecutive chunks of steps and kept at bucket `base`: the values
    themselves when base is 1, otherwise each bucket's minimum and maximum (NaN = no value in the bucket); "max"
    keeps only the maximum (heatmap cells). Rows may be added as series appear: NaN before they do."""

    def __init__(self, rows: int, steps: int, base: int, reducer: str = "envelope"):
        self.steps = steps
        self.base = base
        self.reducer = reducer
        self.filled = 0
        cells = steps if base <= 1 else math.ceil(steps / base)
        self.high = np.full((rows, cells), np.nan)
        self.low = np.full((rows, cells), np.nan) if base > 1 and reducer == "envelope" else None

    @property
    def rows(self) -> int:
        return len(self.high)

    @property
    def empty(self) -> np.ndarray:
        """Per row: no value at all (NaN everywhere)."""
        return np.isnan(self.high).all(axis=1)

    @property
    def values(self) -> np.ndarray:
        """Full-resolution values (base 1 only)."""
        return self.high

    def add_rows(self, count: int) -> None:
        self.high = np.vstack([self.high, np.full((count, self.high.shape[1]), np.nan)])
        if self.low is not None:
            self.low = np.vstack([self.low, np.full((count, self.low.shape[1]), np.nan)])

    def feed(self, chunk: np.ndarray) -> None:
        """The next steps of every row: (rows, steps of the chunk), NaN where a row has no value."""
        first, n = self.filled, chunk.shape[1]
        self.filled += n
        if n == 0:
            return
        if self.base <= 1:
            self.high[:, first : first + n] = chunk
            return
        ids = (first + np.arange(n)) // self.base
        starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 1))
        cells = ids[starts]
        self.high[:, cells] = np.fmax(self.high[:, cells], np.fmax.reduceat(chunk, starts, axis=1))
        if self.low is not None:
            self.low[:, cells] = np.fmin(self.low[:, cells], np.fmin.reduceat(chunk, starts, axis=1))

    def take(self, rows: np.ndarray | list[int]) -> Reducer:
        """These rows, in this order."""
        return self._like(self.high[rows], None if self.low is None else self.low[rows])

    def join(self, other: Reducer) -> Reducer:
        """These rows, then `other`'s (reduced alike)."""
        return self._like(np.vstack([self.high, other.high]),
                          None if self.low is None or other.low is None else np.vstack([self.low, other.low]))

    def _like(self, high: np.ndarray, low: np.ndarray | None) -> Reducer:
        out = Reducer(0, self.steps, self.base, self.reducer)
        out.filled, out.high, out.low = self.filled, high, low
        return out

    def level(self, bucket: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(max, min) per bucket of size `bucket` (a multiple of base), row by row; min is None for "max" rows."""
        if bucket == self.base:
            return self.high, self.low
        starts = np.arange(0, self.high.shape[1], bucket // self.base)
        high = np.fmax.reduceat(self.high, starts, axis=1)
        if self.reducer != "envelope":
            return high, None
        # At base 1 the kept values are both every step's minimum and its maximum.
        low = np.fmin.reduceat(self.low if self.low is not None else self.high, starts, axis=1)
        return high, low


def level_times(times: np.ndarray, bucket: int, per_bucket: int) -> np.ndarray:
    """Times of a level's points: every step at full resolution, else each bucket's first step, and (envelopes)
    its middle step."""
    if bucket <= 1:
        return times
    steps = len(times)
    first = np.arange(0, steps, bucket)
    if per_bucket == 1:
        return times[first]
    out = np.empty(2 * len(first), dtype=times.dtype)
    out[0::2] = times[first]
    out[1::2] = times[np.minimum(first + bucket // 2, steps - 1)]
    return out


def level_values(rows: Reducer, bucket: int) -> np.ndarray:
    """The rows' values at a level, aligned with `level_times`: envelopes alternate each bucket's min and max."""
    if bucket <= 1:
        return rows.values
    high, low = rows.level(bucket)
    if low is None:
        return high
    out = np.empty((high.shape[0], 2 * high.shape[1]))
    out[:, 0::2], out[:, 1::2] = low, high
    return out
