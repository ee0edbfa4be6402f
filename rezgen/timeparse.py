"""Times and durations as users type them: unix seconds, RFC 3339, and Prometheus durations (`1m30s`, `500ms`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

_UNITS_NS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
             "d": 86_400_000_000_000, "w": 604_800_000_000_000, "y": 31_536_000_000_000_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> int:
    """A duration in nanoseconds: `5m`, `1h30m`, `500ms`, `1.5s`, or plain seconds (`15`, `0.5`)."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        ns = round(float(text) * 1e9)
    else:
        pos, ns = 0, 0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            ns += round(float(match.group(1)) * _UNITS_NS[match.group(2)])
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"invalid duration {text!r} (try 500ms, 15s, 5m, 1h)")
    if ns <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return int(ns)


def parse_time(text: str) -> int:
    """A point in time in nanoseconds since the epoch: unix seconds (`1700000000.5`) or RFC 3339."""
    text = text.strip()
    try:
        # Decimal keeps every digit: a float would blur nanosecond timestamps by ~100 ns.
        return int((Decimal(text) * 1_000_000_000).to_integral_value())
    except (InvalidOperation, ValueError, OverflowError):
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid time {text!r} (use unix seconds or RFC 3339 such as 2026-01-01T00:00:00Z)") \
            from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def ceil_ms(t_ns: int) -> int:
    """Round a nanosecond time up to a whole millisecond (browsers and Prometheus work in milliseconds)."""
    return -(-t_ns // 1_000_000) * 1_000_000
