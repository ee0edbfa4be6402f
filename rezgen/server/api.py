"""rezgen's HTTP API over a data source; the same whether it serves a recording or a live window.

    GET /api/metrics                          {"metrics": [{name, type, unit, series, labels: {name: [values]},
                                              description}]}
    GET /api/dashboard                        {"sections": [{route, title, order, plots}]}
    GET /api/dashboard/{section}              {route, title, order, groups: [{name, description, plots: [plot]}]},
                                              a plot as in the dashboard file (id, title, query, unit, kind, ...)
    GET /api/plot/{section}/{id}?start=&end=&host=
                                              the plot's data as the static site has it (see plots.plot_data),
                                              plus "window": {start, end, step} (unix ms) of what was evaluated
    GET /api/query?metric=&labels={json}&start=&end=
                                              {"metric", "type", "unit", "series": [{"labels": {...},
                                              "values": [[t_ms, v], ...]}]}

Times are unix seconds or RFC 3339 and both ends are inclusive; without them, all of the data. A plot is evaluated
on the grid of the static site (first sample, then every sampling interval) clipped to the data, so a zoomed plot
has exactly the points of the whole one. `host` picks one node when the data has several (none: all together).
/api/query gives the stored samples of the series of `metric` whose labels equal every pair of `labels` (a missing
label equals ""); a histogram gives its observation count (cumulative, like a counter) at each sample.
Errors are `{"error": "..."}` with 400 (bad parameters), 404 (unknown section, plot or metric) or 422 (a query
that cannot be evaluated). The Prometheus API (/api/v1/*) is in promapi.py.
"""

from __future__ import annotations

import json
import logging
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import parse_qsl

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from ..dashboards import Plot, Section
from ..plots import TimeRange, json_values, plot_data
from ..promql.deadline import QueryTimeout
from ..promql.limits import DEFAULT_LIMITS, MAX_TIME_NS, QueryLimits, release_memory
from ..promql.values import PromQLError
from ..store import HistogramSeries, Series
from ..timeparse import parse_time
from .source import DataSource, default_span, metric_catalog

log = logging.getLogger("rezgen.api")

MAX_PLOT_STEPS = 1_000_000  # longer plots (11.6 days at 1 s) are evaluated at a multiple of the sampling interval
MAX_RAW_POINTS = 1_000_000  # samples in one /api/query answer
HISTOGRAM_CHUNK = 4096  # histogram samples turned into counts at a time (each is a whole bucket array)
MAX_BODY = 1 << 20  # bytes of a form-encoded POST body
BIG_BODY = 16 << 20  # bytes of an answer after which the memory used to build it is handed back
# Times the engine can work with (int64 ns with room for lookback and ranges): years 1824 to 2116.
MAX_SECONDS = Decimal(MAX_TIME_NS) / Decimal(10**9)
# The times Prometheus's own clients send to mean "unbounded" (series and label look-ups only).
UNBOUNDED = {"-292273086-05-16T16:47:06Z": -(2**62), "292277025-08-17T07:12:55.807Z": 2**62}
# `\d+(?:\.\d*)?`, not `\d+\.?\d*`: the latter backtracks quadratically over a long run of digits (35 s for 40 KB).
NUMBER = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?")
NS_PER_MS = 1_000_000

Params = ImmutableMultiDict
Compute = Callable[[DataSource, Params, dict[str, str]], Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "bad_data"):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def bad(message: str) -> ApiError:
    return ApiError(400, message)


# -- request plumbing (shared with promapi.py) -----------------------------------------------------------------------


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers={"Cache-Control": "no-store"})


async def read_params(request: Request) -> Params:
    """URL parameters plus a form-encoded body; for a repeated name the body's value wins, as in Go's FormValue."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
            pairs += parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    return ImmutableMultiDict(pairs)


def handler(source: Callable[[], DataSource], compute: Compute, error: Callable[[ApiError], Response]
            ) -> Callable[[Request], Any]:
    """An endpoint: parameters are read on the event loop, the work runs in the thread pool."""
    async def handle(request: Request) -> Response:
        try:
            params = await read_params(request)
        except ApiError as exc:
            return error(exc)
        return await run_in_threadpool(answer, compute, source(), params, dict(request.path_params), error)

    return handle


def answer(compute: Compute, source: DataSource, params: Params, path: dict[str, str],
           error: Callable[[ApiError], Response]) -> Response:
    try:
        with source.lock:
            payload = compute(source, params, path)
        response = json_response(payload)
        if len(response.body) > BIG_BODY:  # building it made and freed many objects: give the memory back
            del payload
            release_memory()
        return response
    except ApiError as exc:
        return error(exc)
    except PromQLError as exc:
        return error(ApiError(422, str(exc), "execution"))
    except QueryTimeout as exc:  # Prometheus's answer to a query past --query.timeout
        return error(ApiError(503, str(exc), "timeout"))
    except MemoryError:  # what the sample estimate missed: refuse this query, and give the memory back
        release_memory()
        return error(ApiError(422, "query processing needs more memory than is available: narrow the query "
                              "(fewer series, a shorter range or a coarser step)", "execution"))
    except (ValueError, OverflowError, FloatingPointError, ZeroDivisionError) as exc:  # e.g. times past int64
        return error(ApiError(422, f"cannot evaluate: {exc}", "execution"))
    except Exception as exc:  # a bug: logged on the server, one line to the client, never a traceback
        log.exception("API request failed")
        return error(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", "internal"))


# -- times -----------------------------------------------------------------------------------------------------------


def api_time(name: str, text: str | None, unbounded: bool = False) -> int:
    """Unix seconds (rounded to the millisecond) or RFC 3339 (truncated to it), as ns; ApiError otherwise."""
    text = (text or "").strip()
    invalid = bad(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
    if unbounded and text in UNBOUNDED:
        return UNBOUNDED[text]
    if NUMBER.fullmatch(text):
        try:
            seconds = Decimal(text)
        except InvalidOperation:
            raise invalid from None
        if too_big(seconds):
            return _out_of_range(name, text, seconds > 0, unbounded)
        return int((seconds * 1000).to_integral_value(ROUND_HALF_UP)) * NS_PER_MS
    if len(text) > 64:
        raise invalid
    try:
        ns = parse_time(text)
    except (ValueError, OverflowError):
        raise invalid from None
    if abs(ns) > 2**62:
        return _out_of_range(name, text, ns > 0, unbounded)
    return ns // NS_PER_MS * NS_PER_MS


def too_big(seconds: Decimal) -> bool:
    # adjusted() and copy_abs() need no arithmetic context: `1e999999999` must not raise decimal.Overflow.
    return seconds.adjusted() > 12 or seconds.copy_abs() > MAX_SECONDS


def _out_of_range(name: str, text: str, positive: bool, unbounded: bool) -> int:
    if unbounded:
        return 2**62 if positive else -(2**62)
    raise bad(f'invalid parameter "{name}": timestamp "{text}" is out of range (years 1824 to 2116)')


# -- rezgen's endpoints ---------------------------------------------------------------------------------------------


def rezgen_error(error: ApiError) -> Response:
    return json_response({"error": error.message}, error.status)


def _section(source: DataSource, route: str) -> Section:
    for section in source.sections:
        if section.route == route:
            return section
    raise ApiError(404, f"no dashboard section {route!r}")


def metrics(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    return {"metrics": metric_catalog(source)}


def sections(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    return {"sections": [{"route": s.route, "title": s.title, "order": s.order, "plots": len(s.plots)}
                         for s in source.sections]}


def dashboard(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    section = _section(source, path["section"])
    return {"route": section.route, "title": section.title, "order": section.order,
            "groups": [{"name": g.name, "description": g.description, "plots": [p.to_json() for p in g.plots]}
                       for g in section.groups]}


def _range(params: Params) -> tuple[int | None, int | None]:
    start = api_time("start", params["start"]) if params.get("start") else None
    end = api_time("end", params["end"]) if params.get("end") else None
    if start is not None and end is not None and end < start:
        raise bad("end must not be before start")
    return start, end


def _scope(source: DataSource, params: Params) -> tuple[tuple[str, str], ...]:
    host = params.get("host") or "_"
    if host == "_":  # the static site's name for "the only host"
        return ()
    if host not in source.hosts:
        known = ", ".join(source.hosts) or "none: the data has a single host"
        raise bad(f"unknown host {host!r} (hosts: {known})")
    return (("node", host),)


def plot(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    section = _section(source, path["section"])
    found: Plot | None = next((p for p in section.plots if p.id == path["id"]), None)
    if found is None:
        raise ApiError(404, f"no plot {path['id']!r} in section {section.route!r}")
    start, end = _range(params)
    scope = _scope(source, params)
    span = default_span(source)
    empty = {**found.to_json(), "names": [], "levels": [], "window": None}
    if span is None:
        return empty
    step = span.step_ns
    first = span.start_ns if start is None else span.start_ns + max(0, -(-(start - span.start_ns) // step)) * step
    last = span.end_ns if end is None else min(span.end_ns, end)
    if last < first:
        return empty
    steps = (last - first) // step + 1
    if steps > MAX_PLOT_STEPS:
        step *= -(-steps // MAX_PLOT_STEPS)
    data = plot_data(source.store, found, TimeRange(first, last, step), scope)
    window = {"start": first // NS_PER_MS, "end": last // NS_PER_MS, "step": step // NS_PER_MS}
    return {**(data or empty), "window": window}


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
    from .promapi import prometheus_error, prometheus_routes

    endpoints = [("/api/metrics", metrics), ("/api/dashboard", sections), ("/api/dashboard/{section}", dashboard),
                 ("/api/plot/{section}/{id}", plot), ("/api/query", raw_query)]
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
