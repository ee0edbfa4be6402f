"""One remote-write target: a queue bounded in data time, and a thread that sends it.

- `put` never blocks on the target (ingest must not wait on a TSDB): it appends a chunk and, when the queue spans
  more than `bound_ns` of data time or holds more than `max_bytes` (10 min of 100 big hosts would be
  ~8 GB even compressed), drops the oldest chunks, counting their samples in `dropped`. The chunks of the request
  being sent stay until it ends (memory: the bound plus one request); the sender applies the bound to them after a
  failed attempt.
- Chunks wait snappy-compressed (`Packed`, compressed once on the caller's thread for every target: ~8x less
  memory, and the sending thread does little more than wait on the network). The thread joins queued chunks into
  requests of up to `MAX_REQUEST_BYTES` of protobuf (`wire.join_blocks`: one snappy block, not compressed again).
- 2xx: sent. 5xx, 429 and connection errors: retried with back-off (0.25 s doubling to 10 s), the chunks kept.
  Other 4xx: the server refuses this data (out of order, too old, too large…); retrying cannot help, so the
  request's samples are counted as `rejected` and the message logged (`rezgen.remote.sender`) once per distinct reason.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from rezgen.remote.samples import Chunk
from rezgen.remote.wire import join_blocks, snappy_block

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4 << 20  # of protobuf, before snappy
MAX_QUEUE_BYTES = 256 << 20  # per target, compressed (~130 KB per snapshot of a 2,000-series host)
TIMEOUT_S = 10.0
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.25, 10.0
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "User-Agent": "rezgen",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}


@dataclass(frozen=True)
class Packed:
    """A `Chunk` as it waits: its protobuf snappy-compressed (`block`) and that protobuf's length (`size`)."""

    timestamp_ns: int
    samples: int
    size: int
    block: bytes

    @classmethod
    def of(cls, chunk: Chunk) -> Packed:
        return cls(chunk.timestamp_ns, chunk.samples, len(chunk.data), snappy_block(chunk.data))


@dataclass(frozen=True)
class TargetStatus:
    url: str
    connected: bool  # the last request reached the server and was answered (2xx or 4xx)
    lag_s: float  # wall time minus the data time of the oldest sample not yet sent (0: nothing waits)
    queued: int  # samples waiting
    sent: int  # samples the server accepted
    dropped: int  # samples dropped from a full queue (the server was away for longer than the bound)
    rejected: int  # samples the server refused (4xx)
    requests: int
    last_error: str | None

    def json(self) -> dict[str, Any]:
        return {"url": self.url, "connected": self.connected, "lag_s": round(self.lag_s, 3), "queued": self.queued,
                "sent": self.sent, "dropped": self.dropped, "rejected": self.rejected, "requests": self.requests,
                "error": self.last_error}


class Sender:
    def __init__(self, url: str, bound_ns: int, max_bytes: int = MAX_QUEUE_BYTES):
        self.url = url
        self.bound_ns = bound_ns
        self.max_bytes = max_bytes
        self._queue: collections.deque[Packed] = collections.deque()
        self._in_flight = 0  # chunks at the head of the queue in the request being sent
        self._queued_samples = 0
        self._queued_bytes = 0
        self._newest_ns = 0
        self._cond = threading.Condition()
        self._stop = False
        self._connected = False
        self._sent = self._dropped = self._rejected = self._requests = 0
        self._last_error: str | None = None
        self._said: set[str] = set()
        self._thread = threading.Thread(target=self._run, name=f"remote write {url}", daemon=True)
        self._session = requests.Session()

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_s: float = 2.0) -> None:
        """Give the queue `drain_s` to go out, then stop."""
        deadline = time.monotonic() + drain_s
        with self._cond:
            while self._queue and self._connected and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stop = True
            self._cond.notify_all()
        self._session.close()
        if self._thread.ident is not None:
            self._thread.join(TIMEOUT_S + 1)

    def put(self, chunk: Packed) -> None:
        with self._cond:
            self._queue.append(chunk)
            self._queued_samples += chunk.samples
            self._queued_bytes += len(chunk.block)
            self._newest_ns = max(self._newest_ns, chunk.timestamp_ns)
            self._bound(keep=self._in_flight)
            self._cond.notify()

    def status(self) -> TargetStatus:
        with self._cond:
            lag = max(0.0, time.time() - self._queue[0].timestamp_ns / 1e9) if self._queue else 0.0
            return TargetStatus(self.url, self._connected, lag, self._queued_samples, self._sent, self._dropped,
                                self._rejected, self._requests, self._last_error)

    def _bound(self, keep: int) -> None:
        """Drop the oldest chunks while the queue is over its bounds, but not the first `keep` (being sent: they
        are sent or dropped when that request ends, so every sample is counted once)."""
        queue = self._queue
        while len(queue) > keep and (self._newest_ns - queue[keep].timestamp_ns > self.bound_ns
                                     or self._queued_bytes > self.max_bytes):
            chunk = queue[keep]
            del queue[keep]
            self._queued_samples -= chunk.samples
            self._queued_bytes -= len(chunk.block)
            self._dropped += chunk.samples

    def _take(self) -> list[Packed] | None:
        with self._cond:
            while not self._queue and not self._stop:
                self._cond.wait()
            if self._stop:
                return None
            taken: list[Packed] = []
            size = 0
            for chunk in self._queue:
                if taken and size + chunk.size > MAX_REQUEST_BYTES:
                    break
                taken.append(chunk)
                size += chunk.size
            self._in_flight = len(taken)
            return taken

    def _done(self, count: int, *, sent: bool) -> None:
        with self._cond:
            samples = 0
            for _ in range(count):
                chunk = self._queue.popleft()
                samples += chunk.samples
                self._queued_bytes -= len(chunk.block)
            self._queued_samples -= samples
            if sent:
                self._sent += samples
            else:
                self._rejected += samples
            self._in_flight = 0
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while (taken := self._take()) is not None:
            body = join_blocks([(chunk.size, chunk.block) for chunk in taken])
            outcome, message = self._post(body)
            if outcome == "retry":
                with self._cond:
                    self._in_flight = 0
                    self._connected = False
                    self._last_error = message
                    self._bound(keep=0)
                    self._cond.wait(backoff)  # stop() cuts the wait short
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self._say_once(message)
                continue
            backoff = FIRST_BACKOFF_S
            self._done(len(taken), sent=outcome == "sent")
            with self._cond:
                self._connected = True
                self._last_error = None if outcome == "sent" else message
            if outcome == "rejected":
                self._say_once(message)
            else:
                self._said.clear()  # a later failure is news again

    def _post(self, body: bytes) -> tuple[str, str]:
        self._requests += 1
        try:
            response = self._session.post(self.url, data=body, headers=HEADERS, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            text = str(exc)
            reason = "connection refused" if "refused" in text else (text.splitlines() or [type(exc).__name__])[0]
            return "retry", f"{reason[:200]}; retrying"
        if 200 <= response.status_code < 300:
            return "sent", ""
        answer = " ".join(response.text.split())[:300]
        if response.status_code >= 500 or response.status_code == 429:
            return "retry", f"HTTP {response.status_code} ({answer}); retrying"
        return "rejected", f"HTTP {response.status_code} ({answer}); these samples are dropped, not retried"

    def _say_once(self, message: str) -> None:
        if message in self._said:
            return
        self._said.add(message)
        logger.warning("remote write %s: %s", self.url, message)
