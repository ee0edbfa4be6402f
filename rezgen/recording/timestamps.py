"""A recording's timestamps made fit for time grids: invalid and outlying rows dropped (each drop reported), rows
put in time order, and the sampling interval checked against the rows' real spacing.

One corrupted clock reading (0, or years off) would otherwise stretch every grid over the empty years between.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa

from rezgen.recording.footer import Footer, Notice

OUTLIER_MIN_STEPS = 86_400  # sampling intervals beyond the bulk of the rows a timestamp may lie (see _outliers)
MAX_LISTED_ROWS = 5  # dropped rows named in the warning
INTERVAL_SLACK = 100  # how many times finer than the rows' spacing the footer's interval may be


def usable_timestamps(raw: pa.ChunkedArray, warnings: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The recording's timestamps as strictly increasing int64 nanoseconds, and the file rows they come from (None
    when every row is kept in order). Rows whose timestamp is invalid or far outside the rest are dropped, and
    rows are sorted when the clock stepped back, each with a warning. ValueError when no row is usable."""
    timestamps, rows, invalid = _valid_timestamps(raw)
    if len(raw) == 0:
        raise ValueError("the recording has no rows")
    outlying = _outliers(timestamps)
    if invalid or outlying.any():
        dropped = sorted([*invalid, *((int(r), _utc(int(t))) for r, t in zip(rows[outlying], timestamps[outlying]))])
        if len(dropped) == len(raw):
            raise ValueError(f"no row has a usable timestamp (e.g. row {dropped[0][0]}: {dropped[0][1]})")
        listed = ", ".join(f"row {row}: {text}" for row, text in dropped[:MAX_LISTED_ROWS])
        more = f", and {len(dropped) - MAX_LISTED_ROWS} more" if len(dropped) > MAX_LISTED_ROWS else ""
        warnings.append(Notice(f"dropped {len(dropped)} of {len(raw)} rows whose timestamps are invalid or far "
                               f"outside the rest ({listed}{more})"))
        timestamps, rows = timestamps[~outlying], rows[~outlying]
    order = None if len(rows) == len(raw) else rows
    if len(timestamps) > 1 and np.any(np.diff(timestamps) <= 0):
        # Clock steps can reorder rows; sort and keep the last row of a repeated timestamp.
        by_time = np.argsort(timestamps, kind="stable")
        sorted_ts = timestamps[by_time]
        keep = np.append(sorted_ts[1:] != sorted_ts[:-1], True)
        order = rows[by_time[keep]]
        timestamps = sorted_ts[keep]
        warnings.append("timestamps are not strictly increasing; rows were sorted and repeats dropped")
    return timestamps, order


def interval_ns(footer: Footer, timestamps: np.ndarray, warnings: list[str]) -> int:
    """The sampling interval: the footer's, unless it is far finer than the rows' median spacing (then that)."""
    spacing = int(np.median(np.diff(timestamps))) if len(timestamps) > 1 else None
    if footer.interval_ms:
        interval = max(1, round(footer.interval_ms * 1e6))
        # Grids are laid at the interval: one far finer than the rows (a wrong footer) would only make them that
        # many times longer, mostly empty. A few rows with gaps cannot tell, hence the row count.
        if spacing is not None and len(timestamps) >= 4 and interval * INTERVAL_SLACK < spacing:
            warnings.append(Notice(f"sampling_interval_ms {footer.interval_ms:g} is far below the rows' median "
                                   f"spacing ({spacing / 1e6:g} ms); using the spacing"))
            return spacing
        return interval
    return spacing or 1_000_000_000


def _valid_timestamps(raw: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """The int64 nanosecond timestamps that can be times (from 1970 up to int64's end in 2262: not null, not NaN,
    not negative), their row numbers, and (row, value) of those that cannot."""
    kind = raw.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise ValueError(f"the timestamp column is of type {kind}, not integer nanoseconds")
    values = raw.to_numpy(zero_copy_only=False)  # integers with nulls come as floats, NaN for a null
    nulls = raw.is_null().to_numpy(zero_copy_only=False) if raw.null_count else None
    if values.dtype.kind == "u":
        good = values <= np.iinfo(np.int64).max
    elif values.dtype.kind == "i":
        good = values >= 0
    else:
        with np.errstate(invalid="ignore"):
            good = np.isfinite(values) & (values >= 0) & (values < 2.0**63)
    if nulls is not None:
        good &= ~nulls
    rows = np.flatnonzero(good)
    invalid = [(int(row), _invalid_time(values[row].item(), nulls is not None and bool(nulls[row])))
               for row in np.flatnonzero(~good)]
    stamps = values[rows]
    return (np.rint(stamps) if stamps.dtype.kind == "f" else stamps).astype(np.int64), rows, invalid


def _invalid_time(value: float, null: bool) -> str:
    if null:
        return "null"
    if not math.isfinite(value):
        return str(value)
    return f"{int(value)} (before 1970)" if value < 0 else f"{int(value)} (past int64 nanoseconds, the year 2262)"


def _outliers(timestamps: np.ndarray) -> np.ndarray:
    """Rows whose timestamp lies far outside the bulk of the others (a corrupted clock reading: 0, or years off),
    which would stretch every time grid over the empty years between.

    The bulk is the central half of the rows (their quartiles), so up to a quarter of the rows can be wild on
    either side without moving it. A row is outlying when it lies beyond the bulk by more than the recording's
    own span: the larger of the bulk's span, the row count times the median spacing (the length the recording
    would have without gaps), and 86,400 median spacings (a day at 1 s, a grid rezgen handles anyway). Real gaps
    stay: a missing row or a pause of hours sits inside that reach, and a pause in the middle of the rows is
    inside the bulk itself."""
    out = np.zeros(len(timestamps), dtype=bool)
    if len(timestamps) < 4:
        return out  # too few rows to tell a bulk from an outlier
    ordered = np.sort(timestamps)
    steps = np.diff(ordered)
    steps = steps[steps > 0]
    if not len(steps):
        return out
    spacing = int(np.median(steps))
    low, high = int(ordered[len(ordered) // 4]), int(ordered[(3 * len(ordered)) // 4])
    reach = max(high - low, len(ordered) * spacing, OUTLIER_MIN_STEPS * spacing)
    return (timestamps < low - reach) | (timestamps > high + reach)


def _utc(t_ns: int) -> str:
    seconds, ns = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (f".{ns:09d}".rstrip("0") if ns else "") + "Z"
