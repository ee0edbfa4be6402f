"""HTTP GETs to one agent: gzip requested, a deadline over the whole exchange, failures as one-line reasons.

`requests`' own timeout bounds each socket read, not the whole answer; an agent that trickles bytes would stall a
poller, so the body is read against a deadline with `read1` (whatever one socket read brings: urllib3's `read(n)`
and `iter_content` block until n bytes came, so a byte a second kept a poll going for minutes). Bodies are capped
(real snapshots are 50-400 KB).
"""

from __future__ import annotations

import os
import time

import requests
import urllib3

from rezgen.errors import RezgenError

MAX_BODY = 64 << 20


class FetchError(RezgenError):
    """A request that got no usable answer; the message is one line, prefixed with the path."""


class Fetcher:
    """Not thread-safe except `close()`, which may be called from another thread to cut a wait short."""

    def __init__(self, base_url: str, timeout_s: float):
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._session = self._new_session()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Accept-Encoding"] = "gzip"  # ~8x smaller on the wire (protocol §1.1)
        session.headers["User-Agent"] = "rezgen"
        # The environment's settings (proxies, CA bundle) read once, not on every request: with `trust_env` requests
        # looks for ~/.netrc and the proxy variables at each GET, a tenth of a forwarder's CPU with 100 agents.
        session.proxies = requests.utils.get_environ_proxies(self.base_url)
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
        return session

    def reset(self) -> None:
        """Drop pooled connections: after a failure they are not worth keeping (a dead or restarted agent)."""
        self._session.close()
        self._session = self._new_session()

    def close(self) -> None:
        self._session.close()

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of `base_url + path`, or FetchError."""
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._session.get(self.base_url + path, timeout=self.timeout_s, stream=True) as response:
                chunks, size = [], 0
                while chunk := response.raw.read1(1 << 16, decode_content=True):
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise FetchError(f"{path}: body over {MAX_BODY >> 20} MB")
                    if time.monotonic() > deadline:
                        raise FetchError(f"{path}: no complete answer within {self.timeout_s:g} s")
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise FetchError(f"{path}: no answer within {self.timeout_s:g} s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise FetchError(f"{path}: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "without response" in text:
        return "connection closed without a response"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
                        urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError)):
        return "truncated or corrupt body"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]
