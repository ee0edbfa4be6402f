"""Request handling shared by rezgen's API (api.py) and the Prometheus API (promapi.py): parameters and times,
JSON answers and errors, and running a computation off the event loop under the data source's lock.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from rezgen.promql.deadline import QueryTimeout
from rezgen.promql.engine import OUT_OF_MEMORY
from rezgen.promql.limits import MAX_TIME_NS, release_memory
from rezgen.promql.values import PromQLError
from rezgen.server.source import DataSource
from rezgen.timeparse import parse_time

log = logging.getLogger(__name__)

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


# -- request plumbing -----------------------------------------------------------------------


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
        return error(ApiError(422, OUT_OF_MEMORY, "execution"))
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
    seconds = decimal_seconds(text, invalid)
    if seconds is not None:
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


def decimal_seconds(text: str, invalid: ApiError) -> Decimal | None:
    """`text` as a decimal number of seconds, or None when it is not written as a number."""
    if not NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise invalid from None


def too_big(seconds: Decimal) -> bool:
    # adjusted() and copy_abs() need no arithmetic context: `1e999999999` must not raise decimal.Overflow.
    return seconds.adjusted() > 12 or seconds.copy_abs() > MAX_SECONDS


def _out_of_range(name: str, text: str, positive: bool, unbounded: bool) -> int:
    if unbounded:
        return 2**62 if positive else -(2**62)
    raise bad(f'invalid parameter "{name}": timestamp "{text}" is out of range (years 1824 to 2116)')
