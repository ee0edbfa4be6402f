"""Memory handed back after big answers (an ASGI middleware of the live server).

A page's data over the live window (the overview of an hour of a large host is ~2 MB of JavaScript) is built from
tens of MB of short-lived arrays and objects in a worker thread; a range read from the data dir builds a whole
store (hundreds of MB for six hours of a large host). Two things keep that memory after the answer: a store's
tables and series refer to each other, so only the cyclic collector frees them (its full collections are rare:
the store of a 6 h read stayed for minutes), and glibc's heaps keep what was freed for the next allocation. So
after an answer of over 1 MB, or one during which the process grew by `GREW` bytes, garbage is collected and the
heap trimmed (tens of ms, in a worker thread): the RSS goes back to the window's instead of ratcheting up.
"""

from __future__ import annotations

import os

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rezgen.promql.limits import release_memory

BIG_ANSWER = 1 << 20  # bytes of a response body after which memory is handed back
GREW = 16 << 20  # resident bytes an answer added after which memory is handed back
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The process's resident memory (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class TrimAfterBigAnswers:
    def __init__(self, app: ASGIApp, threshold: int = BIG_ANSWER, grew: int = GREW):
        self.app = app
        self.threshold = threshold
        self.grew = grew

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = 0
        before = resident_bytes()

        async def counted(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if sent >= self.threshold or resident_bytes() - before >= self.grew:
                await run_in_threadpool(release_memory)
