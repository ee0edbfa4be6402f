"""rezgen's HTTP API over a data source; the same whether it serves a recording or a live window.

    GET /api/metrics                          {"metrics": [{name, type, unit, series, labels: {name: [values]},
                                              description}]}
    GET /api/dashboard                        {"sections": [{route, title, order, plots}]}
    GET /api/dashboard/{section}              {route, title, order, groups: [{name, description, plots: [plot]}]},
                                              a plot as in the dashboard file (id, title, query, unit, kind, ...)
    GET /api/plot/{section}/{id}?start=&end=&host=&step=&grid=
                                              the plot's data as the static site has it (see plots.plot_data),
                                              plus "window": {start, end, step} (unix ms) of what was evaluated;
                                              `step` (15s, 1m, seconds) is rounded to whole sampling intervals,
                                              `grid` is a time the steps fall on (default: the first sample)
    GET /api/range                            {"start", "end", "step"} (unix ms) of the data, or nulls (the query page)
    GET /api/spectrum/{section}/{id}?mode=full|tail&start=&end=&host=&step=&grid=
                                              a percentile plot's quantile spectrum (see plotdata.spectrum)
    GET /api/query?metric=&labels={json}&start=&end=
                                              {"metric", "type", "unit", "series": [{"labels": {...},
                                              "values": [[t_ms, v], ...]}]}

Times are unix seconds or RFC 3339 and both ends are inclusive; without them, all of the data. A plot is evaluated
on the grid of the static site (first sample, then every sampling interval) clipped to the data, so a zoomed plot
has exactly the points of the whole one. `host` picks one node when the data has several (none: all together).
/api/query gives the stored samples of the series of `metric` whose labels equal every pair of `labels` (a missing
label equals ""); a histogram gives its observation count (cumulative, like a counter) at each sample.
Errors are `{"error": "..."}` with 400 (bad parameters), 404 (unknown section, plot or metric) or 422 (a query
that cannot be evaluated). The Prometheus API (/api/v1/*) is in promapi.py; what both share is in handling.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from rezgen.dashboards import Plot, Section
from rezgen.pages.catalog import metric_catalog
from rezgen.pages.model import SINGLE_HOST, host_scope
from rezgen.plotdata.evaluation import Scope
from rezgen.plotdata.plots import TimeRange, json_values, plot_data
from rezgen.plotdata.spectrum import MODES, spectrum
from rezgen.promql.limits import DEFAULT_LIMITS, QueryLimits
from rezgen.promql.values import PromQLError
from rezgen.server.handling import NS_PER_MS, ApiError, Params, api_time, bad, handler, json_response
from rezgen.server.promapi import api_duration, prometheus_error, prometheus_routes
from rezgen.server.source import DataSource, default_span
from rezgen.store.store import HistogramSeries, Series

MAX_PLOT_STEPS = 1_000_000  # longer plots (11.6 days at 1 s) are evaluated at a multiple of the sampling interval
MAX_RAW_POINTS = 1_000_000  # samples in one /api/query answer
HISTOGRAM_CHUNK = 4096  # histogram samples turned into counts at a time (each is a whole bucket array)


# -- rezgen's endpoints ---------------------------------------------------------------------------------------------


def rezgen_error(error: ApiError) -> Response:
    return json_response({"error": error.message}, error.status)


def _section(source: DataSource, route: str) -> Section:
    for section in source.sections:
        if section.route == route:
            return section
    raise ApiError(404, f"no dashboard section {route!r}")


def metrics(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    return {"metrics": metric_catalog(source.store, source.describe)}


def sections(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    return {"sections": [{"route": s.route, "title": s.title, "order": s.order, "plots": len(s.plots)}
                         for s in source.sections]}


def dashboard(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    section = _section(source, path["section"])
    return {"route": section.route, "title": section.title, "order": section.order,
            "groups": [{"name": g.name, "description": g.description, "plots": [p.to_json() for p in g.plots],
                        **({"hidden": True} if g.hidden else {})} for g in section.groups]}


def _range(params: Params) -> tuple[int | None, int | None]:
    start = api_time("start", params["start"]) if params.get("start") else None
    end = api_time("end", params["end"]) if params.get("end") else None
    if start is not None and end is not None and end < start:
        raise bad("end must not be before start")
    return start, end


def _scope(source: DataSource, params: Params) -> Scope:
    host = params.get("host") or SINGLE_HOST
    if host != SINGLE_HOST and host not in source.hosts:
        known = ", ".join(source.hosts) or "none: the data has a single host"
        raise bad(f"unknown host {host!r} (hosts: {known})")
    return host_scope(host, source.hosts)


def _plot(source: DataSource, path: dict[str, str]) -> Plot:
    section = _section(source, path["section"])
    found: Plot | None = next((p for p in section.plots if p.id == path["id"]), None)
    if found is None:
        raise ApiError(404, f"no plot {path['id']!r} in section {section.route!r}")
    return found


def _span(source: DataSource, params: Params) -> TimeRange | None:
    """The grid a plot is evaluated on: the site's (first sample, then every sampling interval, or every `step`
    rounded to whole intervals) clipped to start and end; None when there is nothing to evaluate."""
    start, end = _range(params)
    span = default_span(source)
    if span is None:
        return None
    step = span.step_ns
    if params.get("step"):
        asked = api_duration("step", params["step"])
        if asked <= 0:
            raise bad("step must be positive")
        step *= max(1, round(asked / step))
    # `grid`: a time on the grid wanted (a live page's, anchored apart from the first sample); the first sample's
    # by default.
    anchor = api_time("grid", params["grid"]) if params.get("grid") else span.start_ns
    lowest = span.start_ns if start is None else max(start, span.start_ns)
    first = anchor + -(-(lowest - anchor) // step) * step
    last = span.end_ns if end is None else min(span.end_ns, end)
    if last < first:
        return None
    steps = (last - first) // step + 1
    if steps > MAX_PLOT_STEPS:
        step *= -(-steps // MAX_PLOT_STEPS)
    return TimeRange(first, last, step)


def plot(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    found = _plot(source, path)
    scope = _scope(source, params)
    span = _span(source, params)
    empty = {**found.to_json(), "names": [], "levels": [], "window": None}
    if span is None:
        return empty
    data = plot_data(source.store, found, span, scope)
    window = {"start": span.start_ns // NS_PER_MS, "end": span.end_ns // NS_PER_MS, "step": span.step_ns // NS_PER_MS}
    return {**(data or empty), "window": window}


def data_range(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    span = default_span(source)
    if span is None:
        return {"start": None, "end": None, "step": None}
    return {"start": span.start_ns // NS_PER_MS, "end": span.end_ns // NS_PER_MS, "step": span.step_ns // NS_PER_MS}


def spectrum_of(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    found = _plot(source, path)
    mode = params.get("mode") or "full"
    if mode not in MODES:
        raise bad(f"mode must be one of {', '.join(MODES)}")
    if found.kind != "percentiles":
        raise bad(f"plot {found.id!r} is not a percentile plot")
    scope = _scope(source, params)
    span = _span(source, params)
    try:
        payload = spectrum(source.store, found.query, span, scope, mode) if span else None
        return payload or {"mode": mode, "columns": []}
    except PromQLError as exc:
        raise ApiError(422, str(exc)) from None


def _labels(params: Params) -> dict[str, str]:
    text = params.get("labels")
    if not text:
        return {}
    try:
        labels = json.loads(text)
    except ValueError as exc:
        raise bad(f"labels must be a JSON object of label names to values: {exc}") from None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise bad('labels must be a JSON object of label names to string values, e.g. {"op":"read"}')
    return labels


def raw_query(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    name = params.get("metric")
    if not name:
        raise bad("missing parameter 'metric'")
    wanted = _labels(params)
    start, end = _range(params)
    every = source.store.series_of(name)
    if not every:
        raise ApiError(404, f"no metric {name!r}")
    chosen = [s for s in every if all((s.key.label(k) or "") == v for k, v in wanted.items())]
    after = None if start is None else start - 1  # stores select t_lo < t <= t_hi; both ends are inclusive here
    windows = [(s, _samples(s, after, end)) for s in chosen]
    total = sum(len(times) for _, (times, _) in windows)
    if total > MAX_RAW_POINTS:
        raise bad(f"too many samples ({total:,}; at most {MAX_RAW_POINTS:,}): narrow the time range or pick "
                  "fewer series with labels")
    first = every[0]
    return {"metric": name, "type": first.kind.value, "unit": first.meta.unit,
            "series": [{"labels": dict(s.key.labels), "values": _pairs(times, values())}
                       for s, (times, values) in windows]}


def _samples(series: Series, after: int | None, until: int | None
             ) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """Sample times, and a function that computes their values (deferred, so the size can be checked first)."""
    if isinstance(series, HistogramSeries):
        window = series.window(after, until)

        def counts() -> np.ndarray:
            positions = np.arange(len(window.times))
            parts = [window.cumulative(positions[i: i + HISTOGRAM_CHUNK]).sum(axis=1)
                     for i in range(0, len(positions), HISTOGRAM_CHUNK)]
            return np.concatenate(parts) if parts else np.zeros(0)

        return window.times, counts
    times, values = series.points(after, until)
    return times, lambda: values


def _pairs(times: np.ndarray, values: np.ndarray) -> list[list[Any]]:
    return [[t, v] for t, v in zip((times // NS_PER_MS).tolist(), json_values(np.asarray(values, dtype=float)))]


def api_routes(source: Callable[[], DataSource], limits: QueryLimits = DEFAULT_LIMITS) -> list[BaseRoute]:
    """rezgen's endpoints and the Prometheus API; `limits` bound each PromQL query."""


    endpoints = [("/api/metrics", metrics), ("/api/dashboard", sections), ("/api/dashboard/{section}", dashboard),
                 ("/api/plot/{section}/{id}", plot), ("/api/query", raw_query),
                 ("/api/spectrum/{section}/{id}", spectrum_of), ("/api/range", data_range)]
    routes: list[BaseRoute] = [Route(path, handler(source, compute, rezgen_error), methods=["GET"])
                               for path, compute in endpoints]
    routes += prometheus_routes(source, limits)

    async def unknown(request: Request) -> Response:
        """JSON for any other /api/v1 path: 405 when the path exists for other methods, else 404."""
        if any(route.matches(request.scope)[0] is Match.PARTIAL for route in routes):
            return prometheus_error(ApiError(405, f"method {request.method} not allowed"))
        return prometheus_error(ApiError(404, f"unknown API endpoint {request.url.path}"))

    # Only /api/v1 gets a catch-all: other /api paths belong to whoever mounts routes after these (live mode's
    # /api/stream and /api/status).
    return [*routes, Route("/api/v1/{rest:path}", unknown, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])]
