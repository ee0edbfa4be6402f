"""The Prometheus HTTP API (`/api/v1/*`) over a data source, so Grafana and promtool can query rezgen.

Requests and responses follow Prometheus: GET or form-encoded POST, times as unix seconds or RFC 3339 (kept to the
millisecond, as Prometheus does), the `{"status": "success", "data": ...}` envelope, and errors as
`{"status": "error", "errorType": ..., "error": ...}` with 400 for bad parameters (bad_data) and 422 for queries
that fail to evaluate (execution). "Now" is the newest sample of the data, so an instant query without `time`
shows the end of a recording.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import ROUND_FLOOR
from functools import partial
from typing import Any

import promql_parser as pp
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rezgen.promql.deadline import deadline
from rezgen.promql.engine import instant_query, parse, range_query
from rezgen.promql.limits import DEFAULT_LIMITS, MAX_POINTS_PER_SERIES, QueryLimits
from rezgen.promql.result import error_json, matrix_json, scalar_json, string_json, vector_json
from rezgen.promql.selectors import select
from rezgen.promql.values import PromQLError
from rezgen.server.handling import (
    NS_PER_MS,
    ApiError,
    Compute,
    Params,
    api_time,
    bad,
    decimal_seconds,
    handler,
    json_response,
    too_big,
)
from rezgen.server.source import DataSource
from rezgen.store.store import HistogramSeries, Series
from rezgen.timeparse import parse_duration

# Points in one answer: as JSON each costs ~200 bytes of Python objects while the body is built (4M points took the
# server from 0.2 to 1.1 GB), so 2M keeps an answer near 0.4 GB.
MAX_SAMPLES = 2_000_000
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def prometheus_error(error: ApiError) -> Response:
    return json_response(error_json(error.message, error.kind), error.status)


def api_duration(name: str, text: str | None) -> int:
    """Float seconds or a duration string (`15s`, `1m30s`) as whole milliseconds in ns; may be zero or negative."""
    text = (text or "").strip()
    invalid = bad(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration')
    seconds = decimal_seconds(text, invalid)
    if seconds is not None:
        if too_big(seconds):
            raise bad(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration. It overflows int64')
        return int((seconds * 1000).to_integral_value(ROUND_FLOOR)) * NS_PER_MS
    if len(text) > 64:
        raise invalid
    try:
        ns = parse_duration(text)
    except ValueError as exc:
        if "must be positive" in str(exc):
            return 0
        raise invalid from None
    if ns > 2**62:
        raise bad(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration. It overflows int64')
    return ns // NS_PER_MS * NS_PER_MS


def data_now(source: DataSource) -> int:
    """The newest sample time (to the next millisecond), or the wall clock before there is any data."""
    bounds = source.time_range()
    if bounds is None:
        return int(time.time() * 1000) * NS_PER_MS
    return -(-bounds[1] // NS_PER_MS) * NS_PER_MS


# -- queries ---------------------------------------------------------------------------------------------------------


def _parse_query(text: str | None) -> pp.Expr:
    try:
        return parse(text or "")
    except PromQLError as exc:
        raise bad(f'invalid parameter "query": {str(exc).removeprefix("invalid query: ")}') from None


def _check_size(series: list[Any]) -> None:
    if sum(len(s.times) for s in series) > MAX_SAMPLES:
        raise ApiError(422, "query processing would load too many samples into memory in query execution "
                       f"(more than {MAX_SAMPLES:,} points)", "execution")


def query(source: DataSource, params: Params, path: dict[str, str], limits: QueryLimits = DEFAULT_LIMITS) -> Any:
    at = api_time("time", params["time"]) if params.get("time") else data_now(source)
    tree = _parse_query(params.get("query"))
    with deadline(limits.timeout_s):
        result = instant_query(source.store, tree, at, max_samples=limits.max_samples)
    if result.kind == "scalar":
        return scalar_json(at, float(result.series[0].values[0]))
    if result.kind == "string":
        return string_json(at, result.string or "")
    _check_size(result.series)
    return vector_json(result.series) if result.kind == "vector" else matrix_json(result.series)


def query_range(source: DataSource, params: Params, path: dict[str, str], limits: QueryLimits = DEFAULT_LIMITS
                ) -> Any:
    start = api_time("start", params.get("start"))
    end = api_time("end", params.get("end"))
    if end < start:
        raise bad("end timestamp must not be before start time")
    step = api_duration("step", params.get("step"))
    if step <= 0:
        raise bad("zero or negative query resolution step widths are not accepted. Try a positive integer")
    if (end - start) // step > MAX_POINTS_PER_SERIES:
        raise bad(f"exceeded maximum resolution of {MAX_POINTS_PER_SERIES:,} points per timeseries. Try decreasing "
                  "the query resolution (?step=XX)")
    tree = _parse_query(params.get("query"))
    inner = tree
    while isinstance(inner, pp.ParenExpr):
        inner = inner.expr
    if isinstance(inner, (pp.MatrixSelector, pp.SubqueryExpr, pp.StringLiteral)):
        kind = "string" if isinstance(inner, pp.StringLiteral) else "range vector"
        raise bad(f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector')
    with deadline(limits.timeout_s):
        result = range_query(source.store, tree, start, end, step, max_samples=limits.max_samples)
    _check_size(result.series)
    return matrix_json(result.series)


# -- series, labels, metadata ----------------------------------------------------------------------------------------


def _matching(source: DataSource, params: Params, required: bool) -> list[Series]:
    """Series matching any `match[]` selector (every series without one) with a sample in [start, end]."""
    start = api_time("start", params["start"], unbounded=True) if params.get("start") else -(2**62)
    end = api_time("end", params["end"], unbounded=True) if params.get("end") else 2**62
    if end < start:
        raise bad("end timestamp must not be before start time")
    matches = params.getlist("match[]")
    if required and not matches:
        raise bad("no match[] parameter provided")
    selectors = []
    for text in matches:
        try:
            tree = parse(text)
        except PromQLError as exc:
            raise bad(f'invalid parameter "match[]": {str(exc).removeprefix("invalid query: ")}') from None
        if not isinstance(tree, pp.VectorSelector) or tree.offset is not None or tree.at is not None:
            raise bad(f'invalid parameter "match[]": {text!r} is not a series selector')
        selectors.append(tree)
    found: dict[int, Series] = {}
    for selector in selectors:
        found.update((id(s), s) for s in select(source.store, selector))
    candidates = list(found.values()) if selectors else list(source.store)
    return [s for s in candidates if _has_samples(s, start - 1, end)]


def _has_samples(series: Series, after: int, until: int) -> bool:
    if isinstance(series, HistogramSeries):
        return len(series.window(after, until).times) > 0
    return len(series.points(after, until)[0]) > 0


def prometheus_labels(series: Series) -> dict[str, str]:
    """Labels as Prometheus shows them: the name under __name__, and no empty values (empty means absent)."""
    return {k: v for k, v in sorted(series.key.prometheus_labels().items()) if v != ""}


def series(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    unique = {tuple(prometheus_labels(s).items()) for s in _matching(source, params, required=True)}
    return {"status": "success", "data": [dict(labels) for labels in sorted(unique)]}


def labels(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    names = {name for s in _matching(source, params, required=False) for name in prometheus_labels(s)}
    return {"status": "success", "data": sorted(names)}


def label_values(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    name = path["name"]
    if not LABEL_NAME.fullmatch(name):
        raise bad(f'invalid label name: "{name}"')
    values = {prometheus_labels(s).get(name) for s in _matching(source, params, required=False)}
    return {"status": "success", "data": sorted(v for v in values if v is not None)}


def metadata(source: DataSource, params: Params, path: dict[str, str]) -> Any:
    wanted = params.get("metric") or None
    try:
        limit = int(params.get("limit") or -1)
    except ValueError:
        raise bad(f'invalid parameter "limit": {params.get("limit")!r} is not a number') from None
    out: dict[str, list[dict[str, str]]] = {}
    for name in source.store.metrics() if wanted is None else [wanted]:
        found = source.store.series_of(name)
        if not found or 0 <= limit <= len(out):
            continue
        first = found[0]
        out[name] = [{"type": first.kind.value, "unit": first.meta.unit or "",
                      "help": first.meta.description or source.describe(name) or ""}]
    return {"status": "success", "data": out}


def prometheus_routes(source: Callable[[], DataSource], limits: QueryLimits = DEFAULT_LIMITS) -> list[BaseRoute]:
    endpoints: list[tuple[str, Compute]] = [
        ("/api/v1/query", partial(query, limits=limits)), ("/api/v1/query_range", partial(query_range, limits=limits)),
        ("/api/v1/series", series),
        ("/api/v1/labels", labels), ("/api/v1/label/{name}/values", label_values), ("/api/v1/metadata", metadata),
    ]
    return [Route(path, handler(source, compute, prometheus_error), methods=["GET", "POST"])
            for path, compute in endpoints]
