"""A plot's resolution levels as JSON-ready lists, and the numbers in them.

Values of reduced levels are rounded to `ROUND_DIGITS` significant digits (the envelope of a bucket is an
approximation anyway); full-resolution values are written exactly. Whole values are written as integers, the
shortest form, and NaN and infinities as null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rezgen.plotdata import decimate

ROUND_DIGITS = 7  # significant digits of the values of reduced levels


def levels(times: np.ndarray, rows: decimate.Reducer, reducer: str, coarse_only: bool = False
           ) -> list[dict[str, Any]]:
    per_bucket = 1 if reducer == "max" else 2
    buckets = decimate.plan(len(times), rows.base, rows.rows, per_bucket)
    if coarse_only:
        buckets = buckets[:1]
    out = []
    for bucket in buckets:
        t = decimate.level_times(times, bucket, per_bucket)
        digits = None if bucket <= 1 else ROUND_DIGITS
        out.append({"bucket": bucket, "t": (t // 1_000_000).tolist(),
                    "values": numbers(decimate.level_values(rows, bucket), digits)})
    return out


def json_values(row: np.ndarray) -> list[float | None]:
    """Floats for JSON: NaN and infinities become null (JSON has no such numbers)."""
    finite = np.isfinite(row)
    return [float(v) if ok else None for v, ok in zip(row.tolist(), finite.tolist())]


def numbers(values: np.ndarray, digits: int | None = None) -> list[Any]:
    """JSON numbers, shortest form: whole values as integers, others exact or rounded to `digits` significant
    digits; NaN and infinities become null. A row gives a list, rows a list of lists."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if digits is not None:
        values = round_significant(values, digits)
    whole = finite & (np.abs(values) < 2.0**53) & (values == np.trunc(values))
    if whole.all():
        return values.astype(np.int64).tolist()
    if finite.all() and not whole.any():
        return values.tolist()
    # Python ints where whole, floats elsewhere, made in numpy's loops rather than a Python one
    out = values.astype(object)
    out[whole] = values[whole].astype(np.int64).astype(object)
    out[~finite] = None
    return out.tolist()


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Each value rounded to `digits` significant digits, as the double nearest that decimal (so it prints short).

    Dividing (or multiplying) the rounded integer by an exact power of ten is correctly rounded; values whose
    power of ten is not exact in float64 (beyond 1e22 either way) stay as they are."""
    out = np.array(values, dtype=np.float64)
    magnitude = np.abs(out)
    ok = np.isfinite(out) & (magnitude > 0)
    if not ok.any():
        return out
    with np.errstate(divide="ignore"):
        places = digits - 1 - np.floor(np.log10(np.where(ok, magnitude, 1.0))).astype(np.int64)
    up = ok & (places >= 0) & (places <= 22)
    down = ok & (places < 0) & (places >= -22)
    if up.any():
        scale = 10.0 ** places[up]
        out[up] = np.rint(out[up] * scale) / scale
    if down.any():
        scale = 10.0 ** -places[down]
        out[down] = np.rint(out[down] / scale) * scale
    return out
