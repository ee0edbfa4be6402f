"""The windows a live page shows: the last few minutes to a day of the data, on the live grid.

One definition for the server that answers a page's first load, the rankings of its live updates (`topk`) and
the page's own controls (its config, rendered into the page from these constants).
"""

from __future__ import annotations

from rezgen.plotdata.evaluation import TimeRange
from rezgen.timeparse import parse_duration

RANGES = ("5m", "15m", "1h", "6h", "24h")  # the range picker's choices, shortest first
DEFAULT_RANGE = "15m"
LONGEST_NS = parse_duration(RANGES[-1])  # no window reaches further back, whatever a page asks for


def range_ns(text: str | None) -> int:
    """A page's `range` (a duration such as 15m; a custom range is sent as seconds, e.g. 1234s) in ns; the
    default range when it is missing or not a duration."""
    try:
        return parse_duration(text or DEFAULT_RANGE)
    except ValueError:
        return parse_duration(DEFAULT_RANGE)


def trailing(end_ns: int, length_ns: int, oldest_ns: int, step_ns: int) -> TimeRange:
    """The last `length_ns` up to `end_ns`, starting no earlier than the data (`oldest_ns`) nor `LONGEST_NS` back,
    on the grid of `end_ns` with `step_ns`."""
    start = max(end_ns - length_ns, oldest_ns, end_ns - LONGEST_NS)
    start = end_ns - max(0, end_ns - start) // step_ns * step_ns
    return TimeRange(start, end_ns, step_ns)
