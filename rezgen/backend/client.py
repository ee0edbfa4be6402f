"""The backend's HTTP API, with `requests`: range queries, series, label values. Every failure (unreachable,
timeout, an error answer) is one `BackendError` line."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import orjson
import requests

from rezgen.promql.values import PromQLError

MAX_POINTS = 10_000  # steps per range request (Prometheus refuses more than 11,000 points per series)
NS_PER_MS = 1_000_000
REUSE_SECONDS = 5.0  # how long a range query's answer is reused
REUSE_ANSWERS = 64  # answers kept for reuse (at most)


class BackendError(PromQLError):
    """The backend could not answer (a chart shows it in its card; the CLI prints it as one line)."""


RangeSeries = tuple[dict[str, str], np.ndarray, np.ndarray]  # labels, step indices, values


class BackendClient:
    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._recent: dict[tuple[str, int, int, int], tuple[float, list[RangeSeries]]] = {}
        self._lock = threading.Lock()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        # POST where Prometheus takes it (long queries fit a form, not a URL); label values are GET only.
        get = path.startswith("/api/v1/label/")
        try:
            answer = self._session.request("GET" if get else "POST", f"{self.url}{path}",
                                           params=params if get else None, data=None if get else params,
                                           timeout=self.timeout)
        except requests.Timeout:
            raise BackendError(f"the backend {self.url} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise BackendError(f"the backend {self.url} cannot be reached: {_reason(exc)}") from None
        try:
            body = orjson.loads(answer.content)  # answers run to megabytes: orjson reads them several times faster
        except orjson.JSONDecodeError:
            raise BackendError(f"the backend {self.url} answered {answer.status_code} without JSON "
                               f"({answer.text[:200].strip()!r})") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise BackendError(f"the backend answered {answer.status_code}: {error or answer.text[:200]}")
        return body.get("data")

    def query_range(self, query: str, start_ns: int, end_ns: int, step_ns: int) -> list[RangeSeries]:
        """Each series of the range query's matrix: its labels, the steps (k of start + k*step) it has a point
        at, and its values there. Long ranges are asked for in pieces of at most MAX_POINTS steps. The answers of
        the last few seconds are reused: a page's plots ask for the same bucket rates more than once (a mean and
        a percentile chart of one histogram)."""
        key = (query, start_ns, end_ns, step_ns)
        with self._lock:
            now = time.monotonic()
            for old in [k for k, (at, _) in self._recent.items() if now - at > REUSE_SECONDS]:
                del self._recent[old]
            if key in self._recent:
                return self._recent[key][1]
        answer = self._query_range(query, start_ns, end_ns, step_ns)
        with self._lock:
            self._recent[key] = (time.monotonic(), answer)
            while len(self._recent) > REUSE_ANSWERS:
                self._recent.pop(next(iter(self._recent)))
        return answer

    def _query_range(self, query: str, start_ns: int, end_ns: int, step_ns: int) -> list[RangeSeries]:
        steps = (end_ns - start_ns) // step_ns + 1
        merged: dict[tuple[tuple[str, str], ...], list[tuple[np.ndarray, np.ndarray]]] = {}
        for first in range(0, steps, MAX_POINTS):
            last = min(steps, first + MAX_POINTS) - 1
            data = self._get("/api/v1/query_range", {
                "query": query, "start": _seconds(start_ns + first * step_ns),
                "end": _seconds(start_ns + last * step_ns), "step": _seconds(step_ns)})
            if not isinstance(data, dict) or data.get("resultType") != "matrix":
                kind = data.get("resultType") if isinstance(data, dict) else None
                raise BackendError(f"the backend answered a {kind} where a matrix was expected")
            for series in data["result"]:
                pairs = series.get("values") or []
                # numpy parses the numbers' strings itself, several times faster than float() one by one.
                times = np.rint(np.array([t for t, _ in pairs], dtype=np.float64) * 1000).astype(np.int64) * NS_PER_MS
                values = np.array([v for _, v in pairs], dtype=np.float64)
                index = (times - start_ns + step_ns // 2) // step_ns
                merged.setdefault(tuple(sorted(series["metric"].items())), []).append((index, values))
        return [(dict(key), np.concatenate([i for i, _ in parts]), np.concatenate([v for _, v in parts]))
                for key, parts in merged.items()]

    def series(self, match: str, start_ns: int | None = None, end_ns: int | None = None) -> list[dict[str, str]]:
        params: dict[str, Any] = {"match[]": match}
        if start_ns is not None:
            params["start"] = _seconds(start_ns)
        if end_ns is not None:
            params["end"] = _seconds(end_ns)
        return list(self._get("/api/v1/series", params) or [])

    def label_values(self, name: str, match: str | None = None) -> list[str]:
        params = {"match[]": match} if match else {}
        return sorted(str(v) for v in self._get(f"/api/v1/label/{name}/values", params) or [])

    def raw_times(self, selector: str, at_ns: int) -> np.ndarray:
        """The sample times (ns) of the first series a range selector such as `up[2m]` finds at `at_ns`."""
        data = self._get("/api/v1/query", {"query": selector, "time": _seconds(at_ns)})
        if not isinstance(data, dict) or data.get("resultType") != "matrix" or not data["result"]:
            return np.zeros(0, dtype=np.int64)
        return np.array([round(float(t) * 1000) for t, _ in data["result"][0]["values"]], dtype=np.int64) * NS_PER_MS

    def instant(self, query: str, at_ns: int | None = None) -> list[tuple[dict[str, str], float]]:
        params: dict[str, Any] = {"query": query}
        if at_ns is not None:
            params["time"] = _seconds(at_ns)
        data = self._get("/api/v1/query", params)
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            return []
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]


def _seconds(t_ns: int) -> str:
    return f"{t_ns // NS_PER_MS / 1000:.3f}"


def _reason(exc: requests.RequestException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    # urllib3 nests the cause; its last part is the one a person needs ("Connection refused").
    return text.rsplit(": ", 1)[-1].rstrip("')\"") or type(exc).__name__
