"""Query results in the Prometheus HTTP API's JSON shapes: values formatted like Go's FormatFloat(v, 'f', -1, 64),
times as unix seconds with millisecond precision (integral when whole)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rezgen.promql.result import (
    SeriesResult,
    error_json,
    format_time,
    format_value,
    matrix_json,
    scalar_json,
    string_json,
    vector_json,
)

S = 1_000_000_000


# --- format_value: Go's strconv.FormatFloat(v, 'f', -1, 64) -----------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (2559.0, "2559"),
    (0.1, "0.1"),
    (0.0, "0"),
    (-0.0, "-0"),
    (-2.5, "-2.5"),
    (1.0 / 3.0, "0.3333333333333333"),  # shortest repr that round-trips
    (0.1 + 0.2, "0.30000000000000004"),
    (123456789.125, "123456789.125"),
    (1e21, "1000000000000000000000"),  # never exponent notation
    (2.0**64, "18446744073709552000"),  # shortest round-trip digits, then zeros (as Go pads)
    (1.5e-7, "0.00000015"),
    (65535.0, "65535"),
])
def test_format_value_like_go_format_float_f_minus_1(value, text):
    assert format_value(value) == text


def test_format_value_special_values():
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"


def test_format_value_accepts_numpy_floats():
    assert format_value(np.float64(19.0)) == "19"


# --- format_time ------------------------------------------------------------------------------------------------------

def test_whole_seconds_are_integers():
    t = format_time(1_700_000_000 * S)
    assert t == 1_700_000_000
    assert isinstance(t, int)
    assert json.dumps(t) == "1700000000"


def test_whole_milliseconds_print_with_millisecond_precision():
    assert format_time(1_700_000_000 * S + 500_000_000) == 1_700_000_000.5
    assert json.dumps(format_time(1_700_000_000 * S + 123_000_000)) == "1700000000.123"
    assert format_time(1_000_000) == 0.001
    assert format_time(-1_500_000_000) == -1.5


def test_times_finer_than_a_millisecond_keep_their_precision():
    """Only a time the caller asked for can be finer than a millisecond; it is printed as it is, not rounded."""
    assert format_time(1_700_000_000 * S + 123_456_789) == (1_700_000_000 * S + 123_456_789) / 1e9
    assert format_time(1_500) == 1.5e-6
    assert isinstance(format_time(2 * S + 1), float)


def test_epoch_is_zero():
    assert format_time(0) == 0


# --- JSON shapes ------------------------------------------------------------------------------------------------------

def series(labels: dict[str, str], times_s: list[float], values: list[float]) -> SeriesResult:
    return SeriesResult(tuple(sorted(labels.items())), (np.array(times_s) * S).astype(np.int64), np.array(values))


def test_matrix_json():
    result = matrix_json([series({"__name__": "x", "a": "1"}, [10, 10.5], [1.0, math.nan]),
                          series({}, [10], [math.inf])])
    assert result == {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x", "a": "1"}, "values": [[10, "1"], [10.5, "NaN"]]},
        {"metric": {}, "values": [[10, "+Inf"]]},
    ]}}


def test_vector_json():
    result = vector_json([series({"op": "read"}, [20], [2559.0])])
    assert result == {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"op": "read"}, "value": [20, "2559"]},
    ]}}


def test_empty_results():
    assert matrix_json([])["data"] == {"resultType": "matrix", "result": []}
    assert vector_json([])["data"] == {"resultType": "vector", "result": []}


def test_scalar_and_string_json():
    assert scalar_json(5 * S, 0.25) == {"status": "success", "data": {"resultType": "scalar", "result": [5, "0.25"]}}
    assert string_json(5 * S, "hi") == {"status": "success", "data": {"resultType": "string", "result": [5, "hi"]}}


def test_error_json():
    assert error_json("invalid query: boom") == {"status": "error", "errorType": "bad_data",
                                                 "error": "invalid query: boom"}
    assert error_json("timeout", "timeout")["errorType"] == "timeout"


def test_json_is_serialisable():
    text = json.dumps(matrix_json([series({"a": "1"}, [1.25], [-0.5])]))
    assert '"values": [[1.25, "-0.5"]]' in text
