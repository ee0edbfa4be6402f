"""Query results in the exact JSON shapes of the Prometheus HTTP API."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rezgen.store.model import Labels


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64), which Prometheus uses for sample values."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return np.format_float_positional(value, trim="-")


def format_time(t_ns: int) -> float | int:
    """Unix seconds as Prometheus prints them: integral when whole, else milliseconds (finer only if asked for)."""
    if t_ns % 1_000_000:
        return t_ns / 1e9
    ms = t_ns // 1_000_000
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


@dataclass
class SeriesResult:
    labels: Labels
    times: np.ndarray  # int64 ns
    values: np.ndarray

    @property
    def metric(self) -> dict[str, str]:
        return dict(self.labels)


def matrix_json(series: list[SeriesResult]) -> dict[str, Any]:
    return _success("matrix", [
        {"metric": s.metric,
         "values": [[format_time(int(t)), format_value(float(v))] for t, v in zip(s.times, s.values)]}
        for s in series
    ])


def vector_json(series: list[SeriesResult]) -> dict[str, Any]:
    return _success("vector", [
        {"metric": s.metric, "value": [format_time(int(s.times[0])), format_value(float(s.values[0]))]} for s in series
    ])


def scalar_json(t_ns: int, value: float) -> dict[str, Any]:
    return _success("scalar", [format_time(t_ns), format_value(value)])


def string_json(t_ns: int, value: str) -> dict[str, Any]:
    return _success("string", [format_time(t_ns), value])


def _success(kind: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


def error_json(message: str, kind: str = "bad_data") -> dict[str, Any]:
    return {"status": "error", "errorType": kind, "error": message}
