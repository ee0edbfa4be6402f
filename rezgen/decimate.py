"""Reduce long series for display with a min/max envelope, and build the resolution levels a chart zooms through.

LTTB-style sampling picks "representative" points and drops latency spikes; a min/max envelope keeps the
extremes of every bucket, so a spike that lasted one sample is still drawn at any zoom level.
"""

from __future__ import annotations

import math

import numpy as np

FULL_RESOLUTION_MAX = 1000  # samples drawn as they are
TARGET_POINTS = 1000  # points of an envelope level (two per bucket)
ZOOM_FACTOR = 8  # each finer level has this many times more buckets
MAX_LEVEL_POINTS = 16000  # finer levels than this are left to the server


def envelope(times: np.ndarray, values: np.ndarray, bucket: int, reducer: str = "envelope"
             ) -> tuple[np.ndarray, np.ndarray]:
    """Bucket `bucket` consecutive steps. values: (series, steps) with NaN = no point.

    "envelope" emits two points per bucket (its min, then its max) at the bucket's first and middle step;
    "max" emits one point per bucket (for heatmap cells).
    """
    if bucket <= 1:
        return times, values
    steps = values.shape[1]
    buckets = math.ceil(steps / bucket)
    padded = np.full((values.shape[0], buckets * bucket), np.nan)
    padded[:, :steps] = values
    cells = padded.reshape(values.shape[0], buckets, bucket)
    empty = np.isnan(cells).all(axis=2)
    with np.errstate(invalid="ignore"):
        low = np.where(empty, np.nan, np.nanmin(np.where(empty[..., None], 0.0, cells), axis=2))
        high = np.where(empty, np.nan, np.nanmax(np.where(empty[..., None], 0.0, cells), axis=2))
    starts = times[np.arange(buckets) * bucket]
    if reducer == "max":
        return starts, high
    middles = times[np.minimum(np.arange(buckets) * bucket + bucket // 2, steps - 1)]
    out_t = np.empty(2 * buckets, dtype=times.dtype)
    out_t[0::2], out_t[1::2] = starts, middles
    out_v = np.empty((values.shape[0], 2 * buckets))
    out_v[:, 0::2], out_v[:, 1::2] = low, high
    return out_t, out_v


def level_buckets(steps: int, points_per_bucket: int = 2) -> list[int]:
    """Bucket sizes of the levels for a series of `steps` samples: coarsest first, 1 = full resolution."""
    if steps <= FULL_RESOLUTION_MAX:
        return [1]
    bucket = math.ceil(steps * points_per_bucket / TARGET_POINTS)
    levels = [bucket]
    while bucket > 1:
        bucket = max(1, math.ceil(bucket / ZOOM_FACTOR))
        points = math.ceil(steps / bucket) * (points_per_bucket if bucket > 1 else 1)
        if points > MAX_LEVEL_POINTS:
            break
        levels.append(bucket)
    return levels
