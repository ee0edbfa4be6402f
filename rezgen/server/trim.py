"""Memory handed back after big answers (an ASGI middleware of the live server).

A page's data over the live window (the overview of an hour of a large host is ~2 MB of JavaScript) is built from
tens of MB of short-lived arrays and objects, in a worker thread. Once freed, glibc's heaps and Arrow's pool keep
that memory for the next allocation, so the process's RSS ratchets up by the largest answer's working set; a trim
after each big answer hands it back, at the cost of about a millisecond.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rezgen.promql.limits import trim_heap

BIG_ANSWER = 1 << 20  # bytes of a response body after which the heap is trimmed


class TrimAfterBigAnswers:
    def __init__(self, app: ASGIApp, threshold: int = BIG_ANSWER):
        self.app = app
        self.threshold = threshold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = 0

        async def counted(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if sent >= self.threshold:
                trim_heap()
