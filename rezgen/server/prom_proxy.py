"""`/api/v1/*` of `serve --prometheus URL`: the read endpoints of the Prometheus HTTP API passed through to the
backend, so the Query page, Grafana and promtool work against the same server as the dashboards.

Only reads go through (queries, series, labels, metadata), by GET or form POST, with the client's parameters as
they came (repeated `match[]` kept). The backend's answer is relayed with its status and JSON body; an answer
over `MAX_ANSWER_BYTES` is cut off with a 422, and a backend that cannot be reached or does not answer in time is
a 502 / 504 in Prometheus's error envelope. Any other `/api/v1` path is a JSON 404 (405 for a wrong method).
"""

from __future__ import annotations

import requests
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from rezgen.promql.result import error_json
from rezgen.server.handling import ApiError, read_params

MAX_ANSWER_BYTES = 64 << 20  # an answer is held whole before it is relayed: this bounds the server's memory
READS = ("/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
         "/api/v1/label/{name}/values", "/api/v1/metadata", "/api/v1/query_exemplars", "/api/v1/status/buildinfo")


def _error(message: str, kind: str, status: int) -> Response:
    return JSONResponse(error_json(message, kind), status_code=status)


class BackendProxy:
    def __init__(self, url: str, timeout_s: float):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def relay(self, method: str, path: str, params: list[tuple[str, str]]) -> Response:
        """The backend's answer to `params` sent to `path` by `method` (GET: in the URL, POST: as a form), a
        blocking call: run it in a thread."""
        post = method == "POST"
        try:
            with self._session.request(method, f"{self.url}{path}", params=None if post else params,
                                       data=params if post else None, timeout=self.timeout_s, stream=True) as answer:
                body = bytearray()
                for chunk in answer.iter_content(1 << 16):
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        return _error(f"the backend's answer is over {MAX_ANSWER_BYTES >> 20} MB; ask for a shorter "
                                      "range, a larger step or fewer series", "execution", 422)
                kind = answer.headers.get("content-type", "application/json")
                return Response(bytes(body), status_code=answer.status_code, media_type=kind)
        except requests.Timeout:
            return _error(f"the backend {self.url} did not answer within {self.timeout_s:g} s", "timeout", 504)
        except requests.RequestException as exc:
            return _error(f"the backend {self.url} cannot be reached ({type(exc).__name__})", "unavailable", 502)


def proxy_routes(url: str, timeout_s: float) -> list[BaseRoute]:
    proxy = BackendProxy(url, timeout_s)

    async def relay(request: Request) -> Response:
        try:
            params = list((await read_params(request)).multi_items())
        except ApiError as exc:
            return _error(exc.message, exc.kind, exc.status)
        # The same path on the backend, as the client encoded it (a label name is passed on as it came).
        path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        return await run_in_threadpool(proxy.relay, "POST" if request.method == "POST" else "GET", path, params)

    async def unknown(request: Request) -> Response:
        if any(route.matches(request.scope)[0] is not Match.NONE for route in reads):
            return _error(f"method {request.method} not allowed", "bad_data", 405)
        return _error(f"unknown API endpoint {request.url.path} (only reads are passed to the backend)",
                      "not_found", 404)

    reads = [Route(path, relay, methods=["GET", "POST"]) for path in READS]
    return [*reads, Route("/api/v1/{rest:path}", unknown, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])]
