"""The live server hands memory back after big answers (rezgen.server.trim): a real uvicorn on 127.0.0.1 in this
process (its RSS read from /proc), serving answers that leave memory behind the way page data does: a fragmented
heap (many mid-size arrays freed, every 20th kept), and garbage in reference cycles (a store's tables and series
refer to each other), which only the cyclic collector frees."""

from __future__ import annotations

import ctypes
import gc
import threading
from collections.abc import Callable

import httpx
import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rezgen.promql.limits import trim_heap
from rezgen.server.listen import listen
from rezgen.server.trim import BIG_ANSWER, TrimAfterBigAnswers

KEPT: list[np.ndarray] = []
pytestmark = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_trim"), reason="needs glibc's malloc_trim")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def fragmenting(request: Request) -> Response:
    """200 MB in 100 KB arrays (glibc's heap, below its mmap threshold), 1 in 20 kept: freed holes between them."""
    arrays = [np.ones(100_000 // 8) for _ in range(2000)]
    KEPT.extend(arrays[::20])
    del arrays
    return Response(b"x" * int(request.query_params["size"]), media_type="text/plain")


class Node:
    def __init__(self, data: np.ndarray):
        self.data = data
        self.other: Node | None = None


def cyclic(request: Request) -> Response:
    """150 MB held by objects in reference cycles, dropped: garbage only a collection frees. A small answer."""
    for _ in range(150):
        a, b = Node(np.ones(1 << 17)), Node(np.ones(1))
        a.other, b.other = b, a
    return Response(b"done", media_type="text/plain")


def grown_after(handler: Callable[[Request], Response], size: int, trimmed: bool) -> float:
    app = Starlette(routes=[Route("/", handler)], middleware=[Middleware(TrimAfterBigAnswers)] if trimmed else [])
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    enabled = gc.isenabled()
    gc.disable()  # the collector's own runs would make the outcome depend on when they happen
    try:
        for _ in range(200):  # until it listens
            if server.started:
                break
            threading.Event().wait(0.05)
        gc.collect()
        trim_heap()  # what earlier answers freed is not there to reuse
        before = rss_mb()
        response = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/?size={size}", timeout=60)
        assert response.status_code == 200 and len(response.content) in (size, 4)  # passed through as it was
        threading.Event().wait(1)  # the hand-back follows the answer's last byte
        return rss_mb() - before
    finally:
        if enabled:
            gc.enable()
        server.should_exit = True
        thread.join(10)
        KEPT.clear()
        gc.collect()


def test_the_memory_a_big_answer_freed_goes_back_to_the_system() -> None:
    assert grown_after(fragmenting, BIG_ANSWER, trimmed=True) < 40  # the kept 10 MB and the answer, not 190 MB
    assert grown_after(fragmenting, BIG_ANSWER, trimmed=False) > 100  # what the heap keeps without a trim


def test_garbage_in_reference_cycles_left_by_an_answer_is_collected_and_handed_back() -> None:
    assert grown_after(cyclic, 0, trimmed=True) < 40
    assert grown_after(cyclic, 0, trimmed=False) > 100  # until the collector's next full run
