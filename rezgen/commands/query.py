"""`rezgen query`: PromQL over a recording, answered in the JSON of the Prometheus HTTP API."""

from __future__ import annotations

from typing import Any

from rezgen.promql.engine import instant_query, range_query
from rezgen.promql.limits import MAX_POINTS_PER_SERIES, MAX_TIME_NS, check_range
from rezgen.promql.result import matrix_json, scalar_json, string_json, vector_json
from rezgen.promql.values import PromQLError
from rezgen.recording.reader import Recording
from rezgen.timeparse import ceil_ms


def query_recording(recording: Recording, expr: str, *, start_ns: int | None = None, end_ns: int | None = None,
                    step_ns: int | None = None, time_ns: int | None = None, max_samples: int | None = None
                    ) -> dict[str, Any]:
    """Range query by default (the whole recording at the sampling interval); instant query when time_ns is set.

    The default range starts at the first sample rounded up to a whole millisecond, so every reported
    timestamp is exactly an evaluation time; the default step is the sampling interval, or the smallest multiple
    of it that keeps to MAX_POINTS_PER_SERIES points. The times, the points per series and the samples held are bounded
    as the HTTP API bounds them (PromQLError).
    """
    if time_ns is not None:
        if abs(time_ns) > MAX_TIME_NS:
            raise PromQLError("time is out of range (years 1824 to 2116)")
        result = instant_query(recording.store, expr, time_ns, max_samples=max_samples)
        if result.kind == "scalar":
            return scalar_json(time_ns, float(result.series[0].values[0]))
        if result.kind == "string":
            return string_json(time_ns, result.string or "")
        return vector_json(result.series) if result.kind == "vector" else matrix_json(result.series)
    first, last = recording.time_range
    start = ceil_ms(first) if start_ns is None else start_ns
    end = last if end_ns is None else end_ns
    step = recording.interval_ns if step_ns is None else step_ns
    if step_ns is None and end > start:  # the default step: the sampling interval, or a multiple within the limit
        step *= max(1, -(-((end - start) // step) // MAX_POINTS_PER_SERIES))
    check_range(start, end, step)
    return matrix_json(range_query(recording.store, expr, start, end, step, max_samples=max_samples).series)
