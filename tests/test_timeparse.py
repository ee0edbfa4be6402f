"""Times and durations as users type them: unix seconds, RFC 3339 and Prometheus-style durations."""

from __future__ import annotations

import pytest

from rezgen.timeparse import parse_duration, parse_time

S = 1_000_000_000
NEW_YEAR_2026 = 1_767_225_600  # 2026-01-01T00:00:00Z: 56 years of 365 days + 14 leap days = 20454 days × 86400 s


# --- parse_time -------------------------------------------------------------------------------------------------------

def test_unix_seconds():
    assert parse_time("1700000000") == 1_700_000_000 * S
    assert parse_time("0") == 0


def test_unix_seconds_with_a_fraction():
    assert parse_time("1700000000.5") == 1_700_000_000 * S + 500_000_000
    assert parse_time("-1.5") == -1_500_000_000


@pytest.mark.parametrize(("text", "fraction_ns"), [("1767225600.25", 250_000_000), ("1767225600.123", 123_000_000),
                                                   ("1767225600.001", 1_000_000)])
def test_unix_seconds_with_a_decimal_fraction_are_exact(text, fraction_ns):
    """Prometheus parses the fraction of a unix time to milliseconds exactly: "1767225600.25" is 1767225600250 ms.

    A few hundred ns early, an instant query "at 1767225600.25" misses a sample stamped exactly then (windows are
    left-open, (t - 5m, t]), and range-query steps land between samples they should coincide with."""
    assert parse_time(text) == NEW_YEAR_2026 * S + fraction_ns


def test_surrounding_whitespace_is_ignored():
    assert parse_time("  1700000000 ") == 1_700_000_000 * S


def test_rfc3339_utc():
    assert parse_time("2026-01-01T00:00:00Z") == NEW_YEAR_2026 * S
    assert parse_time("2026-01-01T00:00:00z") == NEW_YEAR_2026 * S


def test_rfc3339_with_offsets():
    assert parse_time("2026-01-01T02:00:00+02:00") == NEW_YEAR_2026 * S
    assert parse_time("2025-12-31T19:30:00-04:30") == NEW_YEAR_2026 * S
    assert parse_time("2026-01-01T00:00:00+00:00") == NEW_YEAR_2026 * S


def test_rfc3339_fractional_seconds():
    assert parse_time("2026-01-01T00:00:00.5Z") == NEW_YEAR_2026 * S + 500_000_000
    assert parse_time("2026-01-01T00:00:01.123Z") == (NEW_YEAR_2026 + 1) * S + 123_000_000


def test_rfc3339_one_day_later():
    assert parse_time("2026-01-02T00:00:00Z") == (NEW_YEAR_2026 + 86_400) * S


def test_a_time_without_zone_is_utc():
    assert parse_time("2026-01-01T00:00:00") == NEW_YEAR_2026 * S


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00Z", "12:00"])
def test_invalid_times(text):
    with pytest.raises(ValueError, match="invalid time"):
        parse_time(text)


# --- parse_duration ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ns"), [
    ("500ms", 500_000_000),
    ("1s", S),
    ("15s", 15 * S),
    ("5m", 300 * S),
    ("1h", 3_600 * S),
    ("1h30m", 5_400 * S),
    ("1m30s", 90 * S),
    ("1s500ms", 1_500_000_000),
    ("1.5s", 1_500_000_000),
    ("2d", 172_800 * S),
    ("1w", 604_800 * S),
    ("1y", 365 * 86_400 * S),
    ("15", 15 * S),  # plain seconds
    ("0.5", 500_000_000),
    (" 5m ", 300 * S),
])
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "5x", "m5", "1m30", "-1s", "5 m", "1h-30m", "ms"])
def test_invalid_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "0", "0ms"])
def test_durations_must_be_positive(text):
    with pytest.raises(ValueError, match="must be positive"):
        parse_duration(text)
