"""Reduce long series for display with a min/max envelope, and build the resolution levels a chart zooms through.

LTTB-style sampling picks "representative" points and drops latency spikes; a min/max envelope keeps the
extremes of every bucket, so a spike that lasted one sample is still drawn at any zoom level.

A plot's levels are planned for its whole payload, not per series: the coarsest level (about `TARGET_POINTS`
points per series, or the series itself when it has at most `FULL_RESOLUTION_MAX` samples) is always there, and
each finer level (`ZOOM_FACTOR` times more buckets) only while series x points stays within `PLOT_POINTS`. So a
one-line chart of a day carries a coarse and a finer level, while heatmaps and many-series charts carry the
coarse one alone, and the size of a site grows with the number of charts rather than the length of the recording.

Rows are reduced as they are evaluated, chunk by chunk of steps (`RowReducer`): to the finest bucket any level
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


def level_buckets(steps: int, points_per_bucket: int = 2) -> list[int]:
    """Bucket sizes of the levels of a one-series plot of `steps` samples: coarsest first, 1 = full resolution."""
    base = finest_bucket(steps, points_per_bucket)
    return plan(steps, base, 1, points_per_bucket)


class RowReducer:
    """One row of a plot, fed consecutive chunks of steps and kept at bucket `base`: the values themselves when
    base is 1, otherwise each bucket's minimum and maximum (NaN = no value in the bucket); "max" keeps only the
    maximum (heatmap cells)."""

    def __init__(self, steps: int, base: int, reducer: str = "envelope"):
        self.steps = steps
        self.base = base
        self.reducer = reducer
        self.filled = 0
        count = steps if base <= 1 else math.ceil(steps / base)
        self.high = np.full(count, np.nan)
        self.low = np.full(count, np.nan) if base > 1 and reducer == "envelope" else None

    @property
    def empty(self) -> bool:
        """No value at all (NaN everywhere)."""
        return bool(np.isnan(self.high).all())

    @property
    def values(self) -> np.ndarray:
        """Full-resolution values (base 1 only)."""
        return self.high

    def skip(self, count: int) -> None:
        """Steps without values (NaN) — the row did not exist yet."""
        self.filled += count

    def feed(self, chunk: np.ndarray) -> None:
        first, n = self.filled, len(chunk)
        self.filled += n
        if n == 0:
            return
        if self.base <= 1:
            self.high[first : first + n] = chunk
            return
        ids = (first + np.arange(n)) // self.base
        starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 1))
        cells = ids[starts]
        self.high[cells] = np.fmax(self.high[cells], np.fmax.reduceat(chunk, starts))
        if self.low is not None:
            self.low[cells] = np.fmin(self.low[cells], np.fmin.reduceat(chunk, starts))

    def level(self, bucket: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(max, min) per bucket of size `bucket` (a multiple of base); min is None for "max" rows."""
        if bucket == self.base:
            return self.high, self.low
        group = bucket // self.base
        starts = np.arange(0, len(self.high), group)
        high = np.fmax.reduceat(self.high, starts)
        if self.reducer != "envelope":
            return high, None
        # At base 1 the kept values are both every step's minimum and its maximum.
        low = np.fmin.reduceat(self.low if self.low is not None else self.high, starts)
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


def level_values(row: RowReducer, bucket: int) -> np.ndarray:
    """A row's values at a level, aligned with `level_times`: envelopes alternate each bucket's min and max."""
    if bucket <= 1:
        return row.values
    high, low = row.level(bucket)
    if low is None:
        return high
    out = np.empty(2 * len(high))
    out[0::2], out[1::2] = low, high
    return out


def envelope(times: np.ndarray, values: np.ndarray, bucket: int, reducer: str = "envelope"
             ) -> tuple[np.ndarray, np.ndarray]:
    """Bucket `bucket` consecutive steps. values: (series, steps) with NaN = no point.

    "envelope" emits two points per bucket (its min, then its max) at the bucket's first and middle step;
    "max" emits one point per bucket (for heatmap cells).
    """
    if bucket <= 1:
        return times, values
    per_bucket = 1 if reducer == "max" else 2
    rows = []
    for row in values:
        reduced = RowReducer(values.shape[1], bucket, reducer)
        reduced.feed(np.asarray(row, dtype=np.float64))
        rows.append(level_values(reduced, bucket))
    out = np.vstack(rows) if rows else np.zeros((0, points(values.shape[1], bucket, per_bucket)))
    return level_times(times, bucket, per_bucket), out
