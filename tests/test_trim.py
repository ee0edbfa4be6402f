"""The live server hands memory back after big answers (rezgen.server.trim): a real uvicorn on 127.0.0.1 in this
process (its RSS read from /proc), serving an answer that leaves the heap fragmented (many mid-size arrays freed,
every 20th kept)."""

from __future__ import annotations

import gc
import threading

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


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def answer(request: Request) -> Response:
    """200 MB in 100 KB arrays (glibc's heap, below its mmap threshold), 1 in 20 kept: freed holes between them."""
    arrays = [np.ones(100_000 // 8) for _ in range(2000)]
    KEPT.extend(arrays[::20])
    del arrays
    size = int(request.query_params["size"])
    return Response(b"x" * size, media_type="text/plain")


def grown_after(size: int, trimmed: bool) -> float:
    app = Starlette(routes=[Route("/", answer)], middleware=[Middleware(TrimAfterBigAnswers)] if trimmed else [])
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        for _ in range(100):  # until it listens
            if server.started:
                break
            threading.Event().wait(0.05)
        gc.collect()
        trim_heap()  # what earlier answers freed is not there to reuse
        before = rss_mb()
        response = httpx.get(f"{url}?size={size}", timeout=60)
        assert response.status_code == 200 and response.content == b"x" * size  # passed through as it was
        threading.Event().wait(1)  # the trim follows the answer's last byte
        return rss_mb() - before
    finally:
        server.should_exit = True
        thread.join(10)
        KEPT.clear()


@pytest.mark.skipif(not hasattr(__import__("ctypes").CDLL(None), "malloc_trim"), reason="needs glibc's malloc_trim")
def test_the_memory_a_big_answer_freed_goes_back_to_the_system() -> None:
    assert grown_after(BIG_ANSWER, trimmed=True) < 40  # the kept 10 MB and the answer, not the freed 190 MB
    assert grown_after(BIG_ANSWER, trimmed=False) > 100  # what the heap keeps without a trim


def test_a_small_answer_is_left_alone_and_passed_through() -> None:
    assert grown_after(1000, trimmed=True) > 100  # not worth a trim: a small answer's work is small
