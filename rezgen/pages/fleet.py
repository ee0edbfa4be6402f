"""The Fleet page: per host, four KPIs (CPU busy, network bytes, syscall p99, run-queue latency p99) as a host x time
heatmap each (hosts sorted by the KPI) and a table of current and average values.

Each KPI is ONE query grouped `by (node)`, evaluated like any plot's (`plotdata.source.plot_source`: the local
engine, or a TSDB's API), so a fleet of 500 hosts costs four queries. Columns are `irate` at the column's end:
the per-interval rate or percentile every engine computes alike (a window average would depend on each engine's
extrapolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rezgen.plotdata.evaluation import PlotSource, TimeRange, chunk_matrix
from rezgen.plotdata.levels import json_values
from rezgen.plotdata.source import plot_source
from rezgen.promql.cache import parse
from rezgen.promql.values import PromQLError
from rezgen.store.store import Store

COLUMNS = 240  # heatmap columns (at most): a column is a whole number of sampling intervals
FLEET_DATA = "fleet/{kpi}.js"  # a KPI's data script, beside data/ (whose folders are the hosts)


@dataclass(frozen=True)
class Kpi:
    id: str
    title: str
    unit: str
    query: str


KPIS = (
    Kpi("cpu", "CPU busy", "percentage", "sum by (node) (irate(cpu_usage[5m])) / sum by (node) (cpu_cores) / 1e9"),
    Kpi("network", "Network bytes", "datarate", "sum by (node) (irate(network_bytes[5m]))"),
    Kpi("syscall-p99", "Syscall latency p99", "time",
        "histogram_quantile(0.99, sum by (node) (irate(syscall_latency[5m])))"),
    Kpi("runqueue-p99", "Run-queue latency p99", "time",
        "histogram_quantile(0.99, sum by (node) (irate(scheduler_runqueue_latency[5m])))"),
)


def fleet_span(start_ns: int, end_ns: int, interval_ns: int) -> TimeRange:
    """At most COLUMNS columns over the range, each a whole number of sampling intervals, ending at `end_ns`."""
    intervals = max(1, math.ceil((end_ns - start_ns) / interval_ns / COLUMNS))
    step = intervals * interval_ns
    first = end_ns - (end_ns - start_ns) // step * step
    return TimeRange(first, end_ns, step)


def kpi_rows(data: Store | PlotSource, kpi: Kpi, span: TimeRange) -> tuple[list[str], np.ndarray]:
    """Hosts and their (hosts, columns) values of one KPI, from its one query."""
    hosts: dict[str, int] = {}
    parts: list[tuple[int, list[str], np.ndarray]] = []
    for first, times, value in plot_source(data).evaluate(parse(kpi.query), span, ()):
        labels, values = chunk_matrix(value, len(times))
        names = [dict(key).get("node", "") for key in labels]
        for name in names:
            hosts.setdefault(name, len(hosts))
        parts.append((first, names, values))
    matrix = np.full((len(hosts), len(span.times)), np.nan)
    for first, names, values in parts:
        for name, row in zip(names, values):
            matrix[hosts[name], first : first + len(row)] = row
    return list(hosts), matrix


def summary(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's current value (its newest column with a value) and its average over the columns."""
    present = ~np.isnan(matrix)
    last = matrix.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)
    current = np.where(present.any(axis=1), matrix[np.arange(len(matrix)), last], np.nan)
    with np.errstate(invalid="ignore"):
        average = np.where(present.any(axis=1), np.nansum(matrix, axis=1) / np.maximum(present.sum(axis=1), 1),
                           np.nan)
    return current, average


def kpi_payload(data: Store | PlotSource, kpi: Kpi, start_ns: int, end_ns: int, interval_ns: int) -> dict[str, Any]:
    """One KPI's heatmap (hosts sorted by their average, highest first) and each host's current and average value
    for the table; `error` instead when the data cannot give it (a metric missing, the backend down). Each KPI is
    a data script of its own, so the first chart shows while the others (histogram percentiles cost a TSDB the
    most) are still being computed."""
    span = fleet_span(start_ns, end_ns, interval_ns)
    out: dict[str, Any] = {"id": kpi.id, "title": kpi.title, "unit": kpi.unit, "query": kpi.query,
                           "range": {"start": span.start_ns // 1_000_000, "end": span.end_ns // 1_000_000,
                                     "step": span.step_ns // 1_000_000},
                           "t": (span.times // 1_000_000).tolist()}
    try:
        hosts, matrix = kpi_rows(data, kpi, span)
    except PromQLError as exc:
        return {**out, "error": str(exc)}
    current, average = summary(matrix)
    order = sorted(range(len(hosts)), key=lambda i: (math.isnan(average[i]), -np.nan_to_num(average[i]), hosts[i]))
    return {**out, "hosts": [hosts[i] for i in order], "values": [json_values(matrix[i]) for i in order],
            "table": {host: json_values(np.array([current[i], average[i]])) for i, host in enumerate(hosts)}}


def kpi_by_id(kpi_id: str) -> Kpi | None:
    return next((kpi for kpi in KPIS if kpi.id == kpi_id), None)


def fleet_page() -> dict[str, Any]:
    """The template's `page` of the Fleet page: `data` is each KPI's data script."""
    return {"route": "fleet", "title": "Fleet", "kind": "fleet", "data": FLEET_DATA, "root": "",
            "kpis": [kpi.id for kpi in KPIS]}
